"""--http-insecure-no-token: the test-only way to serve --http without a bearer token (for the
MCP conformance suite, which cannot send one). Allowed on a loopback address alone, never with a
token, and only with --http."""
import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

BIN = os.environ["PYMCP_BIN"]


def env(home):
    return {"HOME": home, "XDG_DATA_HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


@pytest.mark.parametrize("args, problem", [
    (["--http-insecure-no-token"], "needs --http"),
    (["--http", "0.0.0.0:0", "--http-insecure-no-token"], "only allowed on a loopback address"),
    (["--http", "127.0.0.1:0", "--http-token", "abcdefghijklmnopqrstuvwx", "--http-insecure-no-token"], "exclude each other"),
])
def test_refused_outside_loopback_or_beside_a_token(args, problem, tmp_path):
    r = subprocess.run([BIN, *args], stdin=subprocess.DEVNULL, capture_output=True, env=env(str(tmp_path)), timeout=60)
    assert r.returncode == 2
    assert problem in r.stderr.decode()
    assert r.stdout == b""


def test_loopback_server_answers_without_a_token_and_warns(tmp_path):
    p = subprocess.Popen([BIN, "--http", "127.0.0.1:0", "--http-insecure-no-token"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(str(tmp_path)))
    try:
        seen = ""
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            line = p.stderr.readline().decode()
            assert line, f"server ended early: {seen}"
            seen += line
            m = re.search(r"http://127\.0\.0\.1:\d+/mcp", line)
            url = m.group(0) if m else None
        assert "WARNING" in seen and "without a bearer token" in seen
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        req = urllib.request.Request(url, json.dumps(body).encode(), method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
            assert json.loads(r.read())["result"]["protocolVersion"] == "2025-06-18"
    finally:
        p.terminate()
        p.wait(timeout=30)
