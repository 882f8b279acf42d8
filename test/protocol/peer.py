#!/usr/bin/python3
"""RFC 6455 conformance of the `wscoro` tool against an independent, strict peer: Python's
`websockets` (Debian's python3-websockets 10.4). websockets fails the connection on any protocol
violation it reads (masking, reserved bits, lengths, UTF-8, close codes, fragmentation), so every
exchange below also checks every frame wscoro wrote.

  PeerTest.test_server_*: websockets clients against `wscoro serve --mode echo`.
  PeerTest.test_client_*: a websockets server that `wscoro client URL --echo` talks to.

Run: /usr/bin/python3 peer.py --wscoro PATH [unittest arguments, e.g. PeerTest.test_client_echo]
Every wait is bounded (TIMEOUT); every process started is killed in cleanup.
"""
import asyncio
import re
import signal
import sys
import unittest

try:
    import websockets
    from websockets.exceptions import ConnectionClosedOK
except ImportError as e:  # a failure, never a skip: the strict peer is the point of these tests
    sys.exit("peer.py: cannot import websockets (%s); install Debian's python3-websockets and run "
             "with /usr/bin/python3 (a pyenv python3 on PATH does not have it)" % e)

WSCORO = None
TIMEOUT = 10.0
MiB = 1 << 20
SIZES = [0, 1, 125, 126, 127, 65535, 65536, MiB]


def text_of_size(n):
    """n bytes of UTF-8 with characters of 1 to 4 bytes, as a str."""
    pieces, out, size, i = ["a", "é", "€", "😀"], [], 0, 0
    while size + 4 <= n:
        p = pieces[i % 4]
        out.append(p)
        size += len(p.encode())
        i += 1
    out.append("z" * (n - size))
    return "".join(out)


def binary_of_size(n, seed=0):
    return bytes((i * 131 + seed) & 0xFF for i in range(n))


class Process:
    """A child process; stderr is collected for failure messages."""

    def __init__(self, proc):
        self.proc = proc
        self.err = []
        self.pump = asyncio.ensure_future(self._drain())

    async def _drain(self):
        async for line in self.proc.stderr:
            self.err.append(line.decode(errors="replace").rstrip("\n"))

    async def stop(self):
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.wait_for(self.pump, TIMEOUT)


class PeerTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        # unittest runs the loop in debug mode, which logs every callback slower than 0.1 s:
        # megabyte messages are, and the noise would hide real failures.
        asyncio.get_running_loop().set_debug(False)

    async def spawn(self, *args, stdout=asyncio.subprocess.PIPE):
        proc = await asyncio.create_subprocess_exec(WSCORO, *args, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=stdout, stderr=asyncio.subprocess.PIPE)
        p = Process(proc)
        self.addAsyncCleanup(p.stop)
        return p

    async def serve(self, *args):
        """`wscoro serve --mode echo` on a free port; returns (process, url)."""
        p = await self.spawn("serve", "--mode", "echo", "--host", "127.0.0.1", "--port", "0", *args)
        line = await asyncio.wait_for(p.proc.stdout.readline(), TIMEOUT)
        m = re.fullmatch(r"listening on (ws://127\.0\.0\.1:\d+/\S*)", line.decode().strip())
        self.assertIsNotNone(m, "no listening line: %r %r" % (line, p.err))
        return p, m.group(1)

    def connect(self, url, **kwargs):
        # compression: websockets offers permessage-deflate by default; wscoro must decline it.
        return websockets.connect(url, max_size=2 * MiB, open_timeout=TIMEOUT, close_timeout=TIMEOUT, **kwargs)

    async def recv(self, ws):
        return await asyncio.wait_for(ws.recv(), TIMEOUT)

    async def assert_echo(self, ws, message):
        await asyncio.wait_for(ws.send(message), TIMEOUT)
        got = await self.recv(ws)
        self.assertIs(type(got), type(message))  # str: a text frame, bytes: a binary frame
        self.assertTrue(got == message, "echo of %d bytes differs" % len(message))

    # --- websockets clients against `wscoro serve` ---------------------------------------------

    async def test_server_round_trips(self):
        srv, url = await self.serve()
        async with self.connect(url) as ws:
            self.assertEqual(ws.extensions, [], "no extension may be negotiated")
            self.assertIsNone(ws.response_headers.get("Sec-WebSocket-Extensions"))
            for n in SIZES:
                await self.assert_echo(ws, text_of_size(n))
                await self.assert_echo(ws, binary_of_size(n, n & 0xFF))
            # Pipelined: everything sent before anything is read; echoes keep order and opcode.
            sent = [m for n in SIZES for m in (text_of_size(n), binary_of_size(n, 7))]
            for m in sent:
                await asyncio.wait_for(ws.send(m), TIMEOUT)
            for m in sent:
                got = await self.recv(ws)
                self.assertIs(type(got), type(m))
                self.assertTrue(got == m, "pipelined echo of %d bytes differs" % len(m))
            await asyncio.wait_for(ws.close(1000, "bye"), TIMEOUT)
            self.assertEqual(ws.close_code, 1000)  # the server answered the close with our code

    async def test_server_fragments_and_pings(self):
        # The server pings every 20 ms, so its pings land between large echoes; websockets checks
        # every frame and answers the pings itself.
        srv, url = await self.serve("--ping-interval", "20ms")
        async with self.connect(url, ping_interval=None) as ws:
            # websockets sends an iterable as one fragmented message (a frame per item).
            pieces = ["Hel", "", "lo ", "wörld ", "€", "😀", ""]
            await asyncio.wait_for(ws.send(iter(pieces)), TIMEOUT)
            self.assertEqual(await self.recv(ws), "".join(pieces))
            chunks = [binary_of_size(k * 1000, k) for k in range(40)]  # 780 kB in 40 fragments
            await asyncio.wait_for(ws.send(iter(chunks)), TIMEOUT)
            self.assertEqual(await self.recv(ws), b"".join(chunks))
            for payload in (b"", b"ping", bytes(range(125))):
                pong = await asyncio.wait_for(ws.ping(payload), TIMEOUT)
                await asyncio.wait_for(pong, TIMEOUT)  # the pong carried the same payload
            # A ping sent while a fragmented message is under way (websockets sends it between
            # the fragments of the async iterable) is answered before the message completes.
            answered = []

            async def fragments():
                yield b"first"
                pong = await ws.ping(b"between")
                await asyncio.wait_for(pong, TIMEOUT)
                answered.append(True)
                yield b" last"

            await asyncio.wait_for(ws.send(fragments()), TIMEOUT)
            self.assertEqual(answered, [True])
            self.assertEqual(await self.recv(ws), b"first last")
            # Several rounds of large echoes while the server keeps pinging.
            big = binary_of_size(MiB, 3)
            for _ in range(5):
                await self.assert_echo(ws, big)
                await self.assert_echo(ws, text_of_size(70000))
            await asyncio.wait_for(ws.close(), TIMEOUT)
            self.assertEqual(ws.close_code, 1000)

    async def test_server_close_codes(self):
        srv, url = await self.serve()
        for code, reason in ((1000, ""), (1001, "going"), (3000, "app"), (4999, "ünïcode reason")):
            async with self.connect(url) as ws:
                await self.assert_echo(ws, "before close")
                await asyncio.wait_for(ws.close(code, reason), TIMEOUT)
                self.assertEqual(ws.close_code, code)
        # SIGTERM: every client gets 1001 and the server exits 0.
        async with self.connect(url) as ws:
            await self.assert_echo(ws, "still here")
            srv.proc.send_signal(signal.SIGTERM)
            with self.assertRaises(ConnectionClosedOK) as closed:
                await self.recv(ws)
            self.assertEqual(closed.exception.rcvd.code, 1001)
        self.assertEqual(await asyncio.wait_for(srv.proc.wait(), TIMEOUT), 0, srv.err)

    # --- a websockets server that `wscoro client --echo` talks to --------------------------------

    async def run_client_against(self, exchange, **serve_kwargs):
        """Runs `wscoro client URL --echo` against a websockets server whose handler runs
        `exchange(ws)` and then closes with 1000; the client must exit 0."""
        done = asyncio.get_running_loop().create_future()

        async def handler(ws):
            try:
                await exchange(ws)
                await asyncio.wait_for(ws.close(1000, "done"), TIMEOUT)
                done.set_result(None)
            except BaseException as e:  # surfaces in the test, not in websockets' logs
                if not done.done():
                    done.set_exception(e)
                raise

        async with websockets.serve(handler, "127.0.0.1", 0, max_size=2 * MiB, **serve_kwargs) as server:
            port = server.sockets[0].getsockname()[1]
            # stdout (every message printed) is not needed: the server checks the echoes.
            cli = await self.spawn("client", "ws://127.0.0.1:%d/peer" % port, "--echo",
                                   "--ping-interval", "20ms", stdout=asyncio.subprocess.DEVNULL)
            await asyncio.wait_for(done, 3 * TIMEOUT)
            status = await asyncio.wait_for(cli.proc.wait(), TIMEOUT)
            self.assertEqual(status, 0, cli.err)

    async def test_client_echo(self):
        async def exchange(ws):
            self.assertEqual(ws.extensions, [])
            self.assertIsNone(ws.request_headers.get("Sec-WebSocket-Extensions"))
            self.assertEqual(ws.request_headers.get("Sec-WebSocket-Version"), "13")
            for n in SIZES:
                await self.assert_echo(ws, text_of_size(n))
                await self.assert_echo(ws, binary_of_size(n, 5))
            sent = [m for n in SIZES for m in (binary_of_size(n, 9), text_of_size(n))]
            for m in sent:
                await asyncio.wait_for(ws.send(m), TIMEOUT)
            for m in sent:
                got = await self.recv(ws)
                self.assertIs(type(got), type(m))
                self.assertTrue(got == m, "pipelined echo of %d bytes differs" % len(m))

        # The server pings every 20 ms too: the client's pongs must come between its echoes.
        await self.run_client_against(exchange, ping_interval=0.02, ping_timeout=TIMEOUT)

    async def test_client_fragments_and_pings(self):
        async def exchange(ws):
            pieces = ["", "Hel", "lo ", "", "wörld", "😀"]
            await asyncio.wait_for(ws.send(iter(pieces)), TIMEOUT)
            self.assertEqual(await self.recv(ws), "".join(pieces))
            chunks = [binary_of_size(k * 3000, k) for k in range(30)]
            await asyncio.wait_for(ws.send(iter(chunks)), TIMEOUT)
            self.assertEqual(await self.recv(ws), b"".join(chunks))
            for payload in (b"", b"x", bytes(range(125))):
                pong = await asyncio.wait_for(ws.ping(payload), TIMEOUT)
                await asyncio.wait_for(pong, TIMEOUT)

            async def fragments():
                yield "first"
                pong = await ws.ping(b"between fragments")
                await asyncio.wait_for(pong, TIMEOUT)
                yield " last"

            await asyncio.wait_for(ws.send(fragments()), TIMEOUT)
            self.assertEqual(await self.recv(ws), "first last")

        await self.run_client_against(exchange, ping_interval=None)


def main():
    global WSCORO
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "--wscoro":
        sys.exit("usage: peer.py --wscoro PATH [unittest arguments]")
    WSCORO = args[1]
    major = int(websockets.__version__.split(".")[0])
    if major < 10:
        sys.exit("peer.py: websockets %s is too old (the asyncio API of 10.x is used)" % websockets.__version__)
    unittest.main(argv=[sys.argv[0]] + args[2:], verbosity=2)


if __name__ == "__main__":
    main()
