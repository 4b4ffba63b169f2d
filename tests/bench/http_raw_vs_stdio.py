"""Raw-client round trip of a python execute over stdio and over --http (keep-alive, one legacy
session), median and p90 of N calls after a warm-up. Not a test: run by hand,
  PYMCP_BIN=build/python-mcp /usr/bin/python3.11 tests/bench/http_raw_vs_stdio.py [N]
Measures the server's own overhead (no SDK in the way). Nothing is asserted."""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
BIN = os.environ["PYMCP_BIN"]
TOKEN = "bench-token-0123456789abcdef"
INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
CALL = {"name": "python", "arguments": {"operation": "execute", "code": "x = 1 + 1"}}


def env():
    home = tempfile.mkdtemp(prefix="pymcp-bench-")
    return {"HOME": home, "XDG_DATA_HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def stats(ms):
    ms.sort()
    return ms[len(ms) // 2], ms[int(len(ms) * 0.9)]


def over_stdio():
    p = subprocess.Popen([BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env())
    def rpc(i, method, params):
        p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode())
        p.stdin.flush()
        while True:
            m = json.loads(p.stdout.readline())
            if m.get("id") == i:
                return m
    rpc(0, "initialize", INIT)
    p.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    ms = []
    for i in range(1, N + 21):
        t0 = time.perf_counter()
        rpc(i, "tools/call", CALL)
        if i > 20:
            ms.append((time.perf_counter() - t0) * 1000)
    p.stdin.close()
    p.wait()
    return stats(ms)


def over_http():
    p = subprocess.Popen([BIN, "--http", "127.0.0.1:0", "--http-token", TOKEN], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env())
    port = None
    deadline = time.monotonic() + 30
    while port is None and time.monotonic() < deadline:
        line = p.stderr.readline().decode()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
    c = http.client.HTTPConnection("127.0.0.1", port)
    hdr = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json",
           "Accept": "application/json, text/event-stream"}
    def post(i, method, params, extra={}):
        c.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}),
                  {**hdr, **extra})
        r = c.getresponse()
        body = r.read()
        return r, body
    r, _ = post(0, "initialize", INIT)
    sid = {"Mcp-Session-Id": r.getheader("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-06-18"}
    c.request("POST", "/mcp", '{"jsonrpc":"2.0","method":"notifications/initialized"}', {**hdr, **sid})
    c.getresponse().read()
    # The timed calls use a bare socket (http.client's header parsing alone costs tens of us).
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = "".join(f"{k}: {v}\r\n" for k, v in {**hdr, **sid}.items())
    buf = b""
    ms = []
    for i in range(1, N + 21):
        body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": CALL})
        req = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}Content-Length: {len(body)}\r\n\r\n{body}"
        t0 = time.perf_counter()
        sock.sendall(req.encode())
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        end = buf.index(b"\r\n\r\n") + 4
        length = int(re.search(rb"Content-Length: (\d+)", buf[:end]).group(1))
        while len(buf) < end + length:
            buf += sock.recv(65536)
        buf = buf[end + length:]
        if i > 20:
            ms.append((time.perf_counter() - t0) * 1000)
    sock.close()
    p.terminate()
    p.wait()
    return stats(ms)


s, h = over_stdio(), over_http()
print(f"execute round trip, {N} calls: stdio median {s[0]:.3f} ms (p90 {s[1]:.3f}), "
      f"http median {h[0]:.3f} ms (p90 {h[1]:.3f}), ratio {h[0] / s[0]:.2f}")
