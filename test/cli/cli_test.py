#!/usr/bin/env python3
"""End-to-end tests of the `wscoro` command-line tool: `wscoro serve` driven by `wscoro client`
through pipes, by plain HTTP, and by a minimal WebSocket peer written here (independent of the
library) for the client's --echo mode.

Run: cli_test.py --wscoro PATH [unittest arguments, e.g. CliTest.test_echo]
Every wait is bounded; every process started is killed in cleanup.
"""
import base64
import hashlib
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

WSCORO = None
TIMEOUT = 10.0


class Proc:
    """A child process whose stdout/stderr lines are collected by reader threads."""

    def __init__(self, args, stdin=subprocess.PIPE):
        self.p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.out, self.err = [], []
        self.cv = threading.Condition()
        self.readers = [threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
                        for stream, sink in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for r in self.readers:
            r.start()

    def _pump(self, stream, sink):
        for line in stream:
            with self.cv:
                sink.append(line.rstrip("\n"))
                self.cv.notify_all()

    def wait_for(self, pred, timeout=TIMEOUT):
        """Waits until pred(out_lines, err_lines) is true; returns whether it became true."""
        with self.cv:
            return self.cv.wait_for(lambda: pred(self.out, self.err), timeout)

    def wait_out(self, text, timeout=TIMEOUT):
        return self.wait_for(lambda out, err: any(text in l for l in out), timeout)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def wait(self, timeout=TIMEOUT):
        """Waits for the exit, then for the readers to take the last lines (they end at EOF)."""
        code = self.p.wait(timeout)
        for r in self.readers:
            r.join(timeout)
        return code

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class CliTest(unittest.TestCase):
    def start(self, args, stdin=subprocess.PIPE):
        proc = Proc(args, stdin=stdin)
        self.addCleanup(proc.kill)
        return proc

    def serve(self, *args):
        proc = self.start([WSCORO, "serve", "--host", "127.0.0.1", "--port", "0", *args],
                          stdin=subprocess.DEVNULL)
        self.assertTrue(proc.wait_for(lambda out, err: out), "no listening line: %r" % proc.err)
        m = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)(/\S*)", proc.out[0])
        self.assertIsNotNone(m, proc.out[0])
        proc.port = int(m.group(1))
        proc.url = "ws://127.0.0.1:%d%s" % (proc.port, m.group(2))
        return proc

    def client(self, url, *args):
        return self.start([WSCORO, "client", url, *args])

    def http_get(self, port, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=TIMEOUT) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, port, name):
        _, text = self.http_get(port, "/metrics")
        m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
        self.assertIsNotNone(m, name)
        return int(m.group(1))

    # --- tests ---------------------------------------------------------------------------------

    def test_echo(self):
        srv = self.serve("--mode", "echo")
        r = subprocess.run([WSCORO, "client", srv.url], input="hi\nsecond line\n", capture_output=True,
                           text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["hi", "second line"])
        self.assertIn("connected to", r.stderr)

    def test_broadcast_three_clients(self):
        srv = self.serve("--mode", "broadcast")
        clients = [self.client(srv.url) for _ in range(3)]
        for c in clients:
            self.assertTrue(c.wait_for(lambda out, err: any("connected" in l for l in err)), c.err)
        # The server counts the three before anyone speaks, so nobody misses the broadcast.
        deadline = time.monotonic() + TIMEOUT
        while self.metric(srv.port, "wscoro_connections") < 3 and time.monotonic() < deadline:
            clients[0].wait_for(lambda out, err: False, 0.05)
        clients[0].send("hello all")
        for c in clients:
            self.assertTrue(c.wait_out("hello all"), c.out)
        for c in clients:
            c.close_stdin()
        for c in clients:
            self.assertEqual(c.wait(), 0, c.err)

    def test_chat_mode_json(self):
        srv = self.serve()  # chat is the default mode
        alice = self.client(srv.url)
        self.assertTrue(alice.wait_out('"type":"welcome"'), alice.out)
        alice.send('{"type":"nick","nick":"alice"}')
        self.assertTrue(alice.wait_out('"nick":"alice"'), alice.out)
        bob = self.client(srv.url, "--json")
        self.assertTrue(bob.wait_out('"type": "welcome"'), bob.out)
        alice.send("hello bob")
        self.assertTrue(bob.wait_out('"text": "hello bob"'), bob.out)
        alice.close_stdin()
        self.assertEqual(alice.wait(), 0, alice.err)
        self.assertTrue(bob.wait_out('"type": "leave"'), bob.out)

    def test_client_echo_mode_against_an_independent_peer(self):
        # A minimal RFC 6455 server written here: it sends a text and a binary message, expects
        # each back unchanged with the same opcode, then closes with 1000.
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(TIMEOUT)
        self.addCleanup(lsock.close)
        port = lsock.getsockname()[1]
        cli = self.client("ws://127.0.0.1:%d/echo" % port, "--echo")
        conn, _ = lsock.accept()
        conn.settimeout(TIMEOUT)
        self.addCleanup(conn.close)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            self.assertTrue(chunk, "client closed during the handshake")
            request += chunk
        key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", request).group(1)
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        self.assertTrue(request.startswith(b"GET /echo HTTP/1.1\r\n"), request)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")

        def send_frame(opcode, payload):
            header = bytes([0x80 | opcode])
            if len(payload) < 126:
                header += bytes([len(payload)])
            else:
                header += bytes([126]) + struct.pack("!H", len(payload))
            conn.sendall(header + payload)

        def recv_exact(n):
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                self.assertTrue(chunk, "connection closed early")
                data += chunk
            return data

        def recv_frame():
            b0, b1 = recv_exact(2)
            self.assertTrue(b1 & 0x80, "client frames must be masked")
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack("!H", recv_exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", recv_exact(8))[0]
            mask = recv_exact(4)
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(recv_exact(length)))
            return b0 & 0x0F, payload

        def recv_data_frame():
            while True:
                opcode, payload = recv_frame()
                if opcode in (0x9, 0xA):  # ping / pong
                    continue
                return opcode, payload

        send_frame(0x1, "héllo".encode())
        self.assertEqual(recv_data_frame(), (0x1, "héllo".encode()))
        send_frame(0x2, bytes(range(200)))
        self.assertEqual(recv_data_frame(), (0x2, bytes(range(200))))
        send_frame(0x8, struct.pack("!H", 1000))
        opcode, payload = recv_data_frame()
        self.assertEqual(opcode, 0x8)
        self.assertEqual(struct.unpack("!H", payload[:2])[0], 1000)
        conn.close()  # the server closes TCP first (RFC 6455 7.1.1)
        self.assertEqual(cli.wait(), 0, cli.err)
        self.assertIn("héllo", cli.out)
        self.assertTrue(any(l.startswith("<binary 200 bytes: 00 01 02") for l in cli.out), cli.out)

    def test_healthz_metrics_and_404(self):
        srv = self.serve("--mode", "echo")
        self.assertEqual(self.http_get(srv.port, "/healthz"), (200, "ok\n"))
        status, page = self.http_get(srv.port, "/")
        self.assertEqual(status, 200)
        self.assertIn("<title>wscoro chat</title>", page)
        self.assertEqual(self.http_get(srv.port, "/no-such-page")[0], 404)
        accepted = self.metric(srv.port, "wscoro_connections_accepted_total")
        received = self.metric(srv.port, "wscoro_messages_received_total")
        r = subprocess.run([WSCORO, "client", srv.url], input="one\ntwo\n", capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.metric(srv.port, "wscoro_connections_accepted_total"), accepted + 1)
        self.assertEqual(self.metric(srv.port, "wscoro_messages_received_total"), received + 2)
        self.assertGreaterEqual(self.metric(srv.port, "wscoro_messages_sent_total"), 2)
        _, text = self.http_get(srv.port, "/metrics")
        for name in ("wscoro_connections", 'wscoro_connections_refused_total{reason="max_connections"}',
                     "wscoro_send_queue_overflows_total", "wscoro_ping_rtt_seconds_count",
                     "wscoro_received_bytes_total", "wscoro_sent_bytes_total"):
            self.assertIn(name, text)

    def test_max_connections_refused_is_counted(self):
        srv = self.serve("--mode", "echo", "--max-connections", "1")
        first = self.client(srv.url)
        self.assertTrue(first.wait_for(lambda out, err: any("connected" in l for l in err)), first.err)
        r = subprocess.run([WSCORO, "client", srv.url], input="", capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("503", r.stderr)
        self.assertEqual(self.metric(srv.port, 'wscoro_connections_refused_total{reason="max_connections"}'), 1)
        first.send("still here")
        self.assertTrue(first.wait_out("still here"))

    def test_sigterm_closes_clients_with_1001_and_exits_zero(self):
        srv = self.serve("--mode", "echo")
        cli = self.client(srv.url)
        self.assertTrue(cli.wait_for(lambda out, err: any("connected" in l for l in err)), cli.err)
        srv.p.send_signal(signal.SIGTERM)
        self.assertEqual(srv.wait(), 0, srv.err)
        self.assertEqual(cli.wait(), 0, cli.err)
        self.assertTrue(any("close 1001" in l for l in cli.err), cli.err)

    def test_sigint_also_stops_gracefully(self):
        srv = self.serve()
        srv.p.send_signal(signal.SIGINT)
        self.assertEqual(srv.wait(), 0, srv.err)

    def test_bad_options_exit_2_with_one_line(self):
        for args in (["serve", "--mode", "shout"], ["serve", "--port", "70000"], ["serve", "--bogus"],
                     ["serve", "--ping-interval", "fast"], ["serve", "--path", "ws"], ["client"], []):
            r = subprocess.run([WSCORO, *args], capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, (args, r.stderr))

    def test_bad_url_and_refused_connection(self):
        r = subprocess.run([WSCORO, "client", "http://example.invalid/"], capture_output=True, text=True,
                           input="", timeout=TIMEOUT)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("scheme", r.stderr)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        r = subprocess.run([WSCORO, "client", "ws://127.0.0.1:%d/" % port], capture_output=True, text=True,
                           input="", timeout=TIMEOUT)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("refused", r.stderr)

    def test_help_lists_every_option_with_defaults(self):
        r = subprocess.run([WSCORO, "serve", "--help"], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0)
        for option in ("--host TEXT=0.0.0.0", "=8080", "--path TEXT=/ws", "=chat", "--max-connections",
                       "--threads", "--ping-interval DURATION=30s", "--pong-wait DURATION=60s",
                       "--max-message-size"):
            self.assertIn(option, r.stdout)
        r = subprocess.run([WSCORO, "client", "--help"], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0)
        for option in ("--echo", "--json", "-H,--header", "--reconnect", "--ping-interval"):
            self.assertIn(option, r.stdout)
        r = subprocess.run([WSCORO, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertIn("serve", r.stdout)
        self.assertIn("client", r.stdout)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "--wscoro":
        sys.exit("usage: cli_test.py --wscoro PATH [unittest args]")
    WSCORO = sys.argv[2]
    unittest.main(argv=[sys.argv[0], *sys.argv[3:]], verbosity=2)
