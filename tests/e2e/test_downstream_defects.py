"""Downstream servers misbehaving as a user meets them (issue 11), end to end: python-mcp with a
--config naming a tiny python3.11 MCP server, Python code calling it through mcp.call.

1. an answer nested deeper than 128 levels is accepted; one beyond the client's limit fails its
   call at once (not after --downstream-timeout);
2. a call stuck writing to a server that stopped reading ends with its execution's timeout, and
   the next call reaches a restarted server;
3. 2,000 tools are usable right after the server lists them (timing printed, not asserted);
4. a server that fails to start is explained by its error lines, not by `npm notice`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mcp_pipe import McpServer, error_text, is_error, ok, run

PYTHON = "/usr/bin/python3.11"

# Options: tools=N, stamp=PATH (time of the tools/list answer written there), npm-fail (prints
# what npx prints for a missing package, then exits 1).
SERVER = r'''
import json, sys, threading, time
opts = dict((a.split("=", 1) + ["1"])[:2] for a in sys.argv[1:])
if "npm-fail" in opts:
    sys.stderr.write("npm error code E404\n"
                     "npm error 404 Not Found - GET https://registry.npmjs.org/@nope%2fserver - Not found\n"
                     "npm error A complete log of this run can be found in: /tmp/npm.log\n"
                     "npm notice\n"
                     "npm notice New major version of npm available! 10.8.2 -> 11.6.0\n"
                     "npm notice To update run: npm install -g npm@11.6.0\n"
                     "npm notice\n")
    sys.exit(1)
def send(text):
    sys.stdout.write(text + "\n"); sys.stdout.flush()
def result(i, r): send(json.dumps({"jsonrpc": "2.0", "id": i, "result": r}))
deaf = False
for line in sys.stdin:
    m = json.loads(line)
    method, i, p = m.get("method"), m.get("id"), m.get("params") or {}
    if method == "initialize":
        result(i, {"protocolVersion": p["protocolVersion"], "capabilities": {"tools": {}},
                   "serverInfo": {"name": "tiny", "version": "1"}})
    elif method == "tools/list":
        tools = [{"name": n, "inputSchema": {"type": "object"}} for n in ("echo", "deep", "deaf")]
        tools += [{"name": "t%d" % k, "description": "tool %d" % k, "inputSchema": {"type": "object"}}
                  for k in range(int(opts.get("tools", "0")))]
        result(i, {"tools": tools})
        if "stamp" in opts:
            with open(opts["stamp"], "w") as f: f.write(repr(time.time()))
    elif method == "tools/call":
        name, args = p["name"], p.get("arguments") or {}
        if name == "deep":
            n = int(args["levels"]) - 3
            send('{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"deep"}],'
                 '"structuredContent":{"v":%s}}}' % (i, "[" * n + "]" * n))
        elif name == "deaf":
            result(i, {"content": [{"type": "text", "text": "deaf"}]}); deaf = True
        else:
            result(i, {"content": [{"type": "text", "text": "%s:%d" % (name, len(json.dumps(args)))}]})
    if deaf: threading.Event().wait()
'''


def start(spawn, tmp_path: Path, *args: str, timeout_s: int = 120) -> McpServer:
    script = tmp_path / "tiny_server.py"
    script.write_text(SERVER)
    config = tmp_path / "servers.json"
    config.write_text(json.dumps({"mcpServers": {"tiny": {"command": PYTHON, "args": ["-u", str(script), *args]}}}))
    server = spawn("--config", str(config), "--downstream-timeout", str(timeout_s))
    server.initialize()
    return server


def test_deep_answers_are_accepted_and_too_deep_ones_fail_at_once(spawn, tmp_path):
    s = start(spawn, tmp_path)
    sc = ok(s, """
import time
depths = []
for levels in (1000, 2048):  # 2048: the limit
    r = mcp.call('tiny.deep', {'levels': levels})
    v, depth = r['structuredContent']['v'], 4
    while v:
        v, depth = v[0], depth + 1
    depths.append(depth)
    del r, v
t0 = time.monotonic()
try:
    mcp.call('tiny.deep', {'levels': 100000})
    message = 'no error'
except mcp.ToolError as e:
    message = str(e)
(depths, message, round(time.monotonic() - t0, 3))
""", timeout=60)
    depths, message, took = eval(sc["result"])
    assert depths == [1000, 2048]
    assert "server 'tiny' sent an answer python-mcp cannot read" in message and "nested deeper than" in message, message
    print(f"100000-level answer failed its call after {took} s (--downstream-timeout 120)")


def test_a_write_stuck_on_a_deaf_server_ends_with_the_execution_and_the_server_restarts(spawn, tmp_path):
    s = start(spawn, tmp_path)
    ok(s, "mcp.call('tiny.deaf', {})", session_id="a")
    stuck = run(s, "mcp.call('tiny.echo', {'data': 'x' * (4 << 20)})", session_id="a", timeout=5)
    assert is_error(stuck), stuck
    # The same session is free again at once, and the server was restarted for it.
    sc = ok(s, "mcp.call('tiny.echo', {'a': 1})['content'][0]['text']", session_id="a", timeout=30)
    assert sc["result"] == "'echo:8'", sc
    assert "half-written" in s.stderr_text()


def test_two_thousand_tools_are_usable_right_after_the_list(spawn, tmp_path):
    stamp = tmp_path / "listed_at"
    began = time.time()
    s = start(spawn, tmp_path, "tools=2000", f"stamp={stamp}")
    sc = ok(s, "import time\nr = mcp.call('tiny.t1999', {'x': 1})\n(time.time(), r['content'][0]['text'])",
            timeout=120)
    answered_at, text = eval(sc["result"])
    assert text == 't1999:8'
    listed_at = float(stamp.read_text())
    print(f"2000 tools: first call answered {answered_at - listed_at:.3f} s after the server's tools/list answer "
          f"({answered_at - began:.3f} s after python-mcp was started)")
    sc = ok(s, "len([t for t in mcp.list_tools() if t['server'] == 'tiny'])")
    assert sc["result"] == "2003"


def test_a_failed_start_is_explained_by_the_error_lines(spawn, tmp_path):
    s = start(spawn, tmp_path, "npm-fail")
    result = run(s, """
try:
    mcp.call('tiny.echo', {})
    message = 'no error'
except mcp.ToolError as e:
    message = str(e)
message
""", timeout=60)
    text = error_text(result)
    assert "npm error 404 Not Found - GET https://registry.npmjs.org/@nope%2fserver" in text, text
    assert "npm notice" not in text, text
