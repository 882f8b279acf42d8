#!/usr/bin/python3
"""wscoro-bench-epoll against servers that are not the ones it benchmarks: Python's `websockets`
(an independent, strict implementation that pings, fragments and closes on its own) and raw
sockets that misbehave on purpose. Proves that the generator answers pings, reassembles
fragments, and counts every wrong reply, refused handshake and lost connection instead of
passing it over.

Run: peer_test.py --generator PATH [unittest arguments, e.g. PeerTest.test_pings_and_fragments]
Needs Debian's /usr/bin/python3 (python3-websockets 10.4). Every wait is bounded; the generator
is killed in cleanup; servers run on 127.0.0.1, port 0.
"""
import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import unittest

import websockets  # a failed import fails the test: never skipped

GENERATOR = None
RUN_TIMEOUT = 30.0  # seconds for one generator run, everything included


class ServerThread:
    """An asyncio server on its own thread; `start(factory)` where factory() -> awaitable server."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = None
        self.stopped = False

    def call(self, coro, timeout=10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        if self.stopped:
            return
        self.stopped = True

        async def close():
            if self.server is not None:
                self.server.close()
                await asyncio.wait_for(self.server.wait_closed(), 5)
        try:
            self.call(close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            if not self.thread.is_alive():
                self.loop.close()


def run_generator(url, *args):
    """Runs the generator to completion; returns (exit code, report or None, stderr)."""
    cmd = [GENERATOR, "--url", url, "--warmup", "0.1", "--duration", "0.6", *args]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=RUN_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    report = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    return p.returncode, report, err


def accept_for(key):
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


async def read_request(reader):
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    for line in head.decode().split("\r\n"):
        if line.lower().startswith("sec-websocket-key:"):
            return line.split(":", 1)[1].strip()
    return ""


def fragments(message, parts):
    step = max(1, len(message) // parts)
    return [message[i:i + step] for i in range(0, len(message), step)] or [message]


class PeerTest(unittest.TestCase):
    def setUp(self):
        self.new_server()

    def new_server(self):
        self.server = ServerThread()
        self.addCleanup(self.server.stop)

    def serve_ws(self, handler, **kw):
        async def start():
            self.server.server = await websockets.serve(handler, "127.0.0.1", 0, **kw)
            return self.server.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{self.server.call(start())}/"

    def serve_raw(self, handler):
        async def start():
            self.server.server = await asyncio.start_server(handler, "127.0.0.1", 0)
            return self.server.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{self.server.call(start())}/"

    def assert_clean(self, code, report, err):
        self.assertIsNotNone(report, err)
        self.assertEqual((report["errors"], report["verify_failures"]), (0, 0), err)
        self.assertEqual(code, 0, err)
        # The fields this generator adds to wscoro-bench's report (no --server-pid: no server's).
        self.assertEqual(report["generator"], "epoll")
        self.assertGreater(report["generator_cpu_s"], 0)
        self.assertGreaterEqual(report["generator_run_queue_wait_pct"], 0)
        self.assertIsNone(report["server_run_queue_wait_pct"])
        self.assertIsNone(report["server_rss_kb"])

    def test_pings_and_fragments(self):
        """Each echo comes back in several fragments (16-bit lengths too) while the server pings
        every 20 ms; every ping must be answered with its pong or the server drops the client."""
        pongs = []

        async def pinger(ws):
            while True:
                waiter = await ws.ping(os.urandom(8))
                await asyncio.wait_for(waiter, 2)  # unanswered: the test fails by a lost client
                pongs.append(1)
                await asyncio.sleep(0.02)

        async def echo(ws, path=None):  # noqa: ARG001
            task = asyncio.create_task(pinger(ws))
            try:
                async for m in ws:
                    await ws.send(fragments(m, 3))
            finally:
                task.cancel()

        url = self.serve_ws(echo, ping_interval=None, max_size=None)
        code, report, err = run_generator(url, "--scenario", "echo", "--connections", "3",
                                          "--depth", "4", "--size", "400")
        self.assert_clean(code, report, err)
        self.assertGreater(report["messages"], 0)
        self.assertGreater(len(pongs), 3 * 5, "the server's pings were not answered")

    def test_large_messages_with_64_bit_lengths(self):
        async def echo(ws, path=None):  # noqa: ARG001
            async for m in ws:
                await ws.send(m)

        url = self.serve_ws(echo, ping_interval=None, max_size=None)
        code, report, err = run_generator(url, "--scenario", "echo", "--connections", "2",
                                          "--depth", "2", "--size", "100000")
        self.assert_clean(code, report, err)
        self.assertGreater(report["messages"], 0)

    def test_broadcast_through_an_independent_relay(self):
        clients = set()

        async def relay(ws, path=None):  # noqa: ARG001
            clients.add(ws)
            try:
                async for m in ws:
                    websockets.broadcast(clients, m)
            finally:
                clients.discard(ws)

        url = self.serve_ws(relay, ping_interval=None)
        code, report, err = run_generator(url, "--scenario", "broadcast", "--connections", "5",
                                          "--size", "64", "--window", "4")
        self.assert_clean(code, report, err)
        self.assertGreater(report["deliveries"], 0)
        self.assertIsNotNone(report["latency_us"])

    def test_wrong_replies_are_counted(self):
        """A flipped byte, a byte too many and a text frame: each is a verification failure."""
        async def liar(ws, path=None):  # noqa: ARG001
            n = 0
            async for m in ws:
                n += 1
                if n == 5:
                    m = m[:-1] + bytes([m[-1] ^ 1])
                elif n == 9:
                    m = m + b"x"
                elif n == 13:
                    m = m.decode("latin-1")
                await ws.send(m)

        url = self.serve_ws(liar, ping_interval=None)
        code, report, err = run_generator(url, "--scenario", "echo", "--connections", "2",
                                          "--depth", "1", "--size", "64")
        self.assertIsNotNone(report, err)
        self.assertEqual(report["verify_failures"], 2 * 3, err)
        self.assertIn("corrupt payload", err)
        self.assertIn("wrong length", err)
        self.assertIn("text message", err)
        self.assertEqual(code, 1)

    def test_server_closing_during_the_run_is_an_error(self):
        async def quitter(ws, path=None):  # noqa: ARG001
            async def echo():
                async for m in ws:
                    await ws.send(m)
            try:
                await asyncio.wait_for(echo(), 0.3)
            except asyncio.TimeoutError:
                await ws.close(1011, "going away")

        url = self.serve_ws(quitter, ping_interval=None)
        code, report, err = run_generator(url, "--scenario", "echo", "--connections", "3")
        self.assertIsNotNone(report, err)
        self.assertEqual(report["errors"], 3, err)
        self.assertIn("1011", err)
        self.assertEqual(code, 1)

    def test_refused_or_forged_handshakes_fail_every_connection(self):
        for answer in ("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: {wrong}\r\n\r\n"):
            with self.subTest(answer=answer.split("\r\n")[0]):
                self.new_server()

                async def handler(reader, writer, answer=answer):
                    key = await read_request(reader)
                    writer.write(answer.format(wrong=accept_for(key + "x")).encode())
                    await writer.drain()
                    await reader.read()  # until the generator hangs up
                    writer.close()

                url = self.serve_raw(handler)
                code, report, err = run_generator(url, "--scenario", "echo", "--connections", "4")
                self.assertIsNotNone(report, err)
                self.assertEqual(report["errors"], 4, err)
                self.assertEqual(report["messages"], 0)
                self.assertEqual(code, 1)

    def test_masked_server_frame_is_a_protocol_error(self):
        async def handler(reader, writer):
            key = await read_request(reader)
            writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_for(key)}\r\n\r\n"
                          ).encode() + b"\x82\x81\x01\x02\x03\x04\x05")
            await writer.drain()
            await reader.read()
            writer.close()

        url = self.serve_raw(handler)
        code, report, err = run_generator(url, "--scenario", "echo", "--connections", "2")
        self.assertIsNotNone(report, err)
        self.assertEqual(report["errors"], 2, err)
        self.assertIn("masked frame from the server", err)
        self.assertEqual(code, 1)


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "--generator":
        sys.exit("usage: peer_test.py --generator PATH [unittest arguments]")
    GENERATOR = args[1]
    unittest.main(argv=[sys.argv[0]] + args[2:])
