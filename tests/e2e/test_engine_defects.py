"""Engine defects found by testing as a user would (issue 11), over real pipes.

Memory figures are read from /proc/<pid>/status (VmRSS). Every wait is for a condition with a
deadline; the margins are wide, since what is checked is "the memory came back", not how fast.
"""

from __future__ import annotations

import json
import subprocess
import time

from mcp_pipe import (DEFAULT_TIMEOUT, binary, error_text, is_error, ok, run, structured, text_of)

MIB = 1024 * 1024

# Defines a function (its globals are then in a cycle through f.__globals__) and holds about
# 300 MB: one 200 MB block (mmapped by malloc) and 100 MB of 2 KB blocks (glibc's heap).
BIG_SESSION = (
    "def f():\n"
    "    return len(blob)\n"
    "blob = b'x' * (200 << 20)\n"
    "chunks = [bytes([i % 256]) * 2048 for i in range(50_000)]\n"
    "f()\n"
)


def rss(server) -> int:
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def wait_rss_below(server, limit: int, timeout: float = DEFAULT_TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    while True:
        now = rss(server)
        if now < limit:
            return now
        assert server.proc.poll() is None, server.diagnostics()
        assert time.monotonic() < deadline, (
            f"RSS stayed at {now / MIB:.0f} MiB, above {limit / MIB:.0f} MiB, for {timeout} s\n{server.diagnostics()}")
        time.sleep(0.05)


def warm_up(server) -> int:
    """Runs a few calls so the steady state is reached; returns RSS then."""
    for _ in range(20):
        ok(server, "1 + 1")
    ok(server, "1", session_id="warm", persistent=True)
    return rss(server)


# --- 1. memory of dropped sessions -------------------------------------------------------------

def test_an_expired_session_with_a_function_gives_its_memory_back(spawn):
    s = spawn("--session-ttl", "1")
    s.initialize()
    base = warm_up(s)
    ok(s, BIG_SESSION, session_id="big", persistent=True)
    grown = rss(s)
    assert grown > base + 250 * MIB, f"the session did not hold its memory: {base / MIB:.0f} -> {grown / MIB:.0f} MiB"
    # No further call: expiry alone must free it.
    after = wait_rss_below(s, base + 60 * MIB)
    print(f"RSS: steady {base / MIB:.0f} MiB, with the session {grown / MIB:.0f} MiB, after expiry below {after / MIB:.0f} MiB")
    listed = s.python("list_sessions")
    assert "big" not in text_of(listed)


def test_clearing_a_busy_session_frees_its_memory_when_its_code_returns(server):
    base = warm_up(server)
    ok(server, BIG_SESSION, session_id="busy", persistent=True)
    started, release = server.work / "started", server.work / "release"
    busy = server.send_python(
        code=f"import os, time\nopen({str(started)!r}, 'w').close()\n"
             f"while not os.path.exists({str(release)!r}): time.sleep(0.01)\n'returned'",
        session_id="busy", persistent=True, timeout=60)
    server.wait_for_file(started, request_id=busy)
    assert not is_error(server.python("clear_session", session_id="busy"))
    grown = rss(server)
    release.touch()
    answer = server.wait_response(busy)
    assert structured(answer["result"])["result"] == "'returned'"
    after = wait_rss_below(server, base + 60 * MIB)
    print(f"RSS: steady {base / MIB:.0f} MiB, busy session {grown / MIB:.0f} MiB, after its code returned below {after / MIB:.0f} MiB")


# --- 2. a flood of pipelined requests -------------------------------------------------------------

def test_a_flood_of_pipelined_executes_leaves_rss_near_the_steady_state(server):
    count = 30_000
    for _ in range(300):
        ok(server, "1 + 1", session_id="flood", persistent=True)
    base = rss(server)
    # The first job holds the session until every request is queued behind it: a fast client
    # ahead of a busy engine, whatever the machine's load.
    gate = server.work / "gate"
    lines = [json.dumps({"jsonrpc": "2.0", "id": "gate", "method": "tools/call", "params": {
        "name": "python", "arguments": {"input": {
            "operation": "execute", "session_id": "flood", "persistent": True, "timeout": 120,
            "code": f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.01)"}}}})]
    for i in range(count):
        lines.append(json.dumps({"jsonrpc": "2.0", "id": f"f{i}", "method": "tools/call", "params": {
            "name": "python", "arguments": {"input": {"operation": "execute", "code": "1 + 1",
                                                      "session_id": "flood", "persistent": True}}}}))
    since = server.mark()
    server.send_raw("\n".join(lines) + "\n")
    listed = server.python("list_sessions")  # answered after every line before it was read
    assert "flood" in text_of(listed)
    gate.touch()
    peak = base
    deadline = time.monotonic() + 120
    while not server.responses_for(f"f{count - 1}"):
        peak = max(peak, rss(server))
        assert time.monotonic() < deadline, server.diagnostics()
        time.sleep(0.05)
    assert len(server.find(lambda m: isinstance(m, dict) and "result" in m, since=since)) == count + 2
    after = wait_rss_below(server, base + 10 * MIB)
    print(f"RSS: steady {base / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB, after the flood {after / MIB:.0f} MiB")


# --- 3. an over-long request is answered with its id ----------------------------------------------

def test_an_overlong_request_is_answered_with_its_own_id(spawn):
    s = spawn("--max-message-bytes", "4096")
    s.initialize()
    for request_id in ("long-one", 77):
        s.send_raw(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                               "params": {"name": "python", "arguments": {"input": {
                                   "operation": "execute", "code": "x = '" + "a" * 20000 + "'"}}}}))
        answer = s.wait_response(request_id)
        assert answer["error"]["code"] == -32600
        assert "--max-message-bytes" in answer["error"]["message"]
    # The server goes on.
    assert "result" in s.request("ping")


# --- 5. expiry never blocks the protocol ------------------------------------------------------------

def test_expiring_a_session_with_a_slow_finalizer_does_not_delay_pings(spawn):
    # --session-ttl 0.5 also checks that fractions work (it used to mean "never").
    s = spawn("--session-ttl", "0.5")
    s.initialize()
    started, finished = s.work / "del-started", s.work / "del-finished"
    ok(s, "import time\n"
          "class Slow:\n"
          "    def __del__(self):\n"
          f"        open({str(started)!r}, 'w').close()\n"
          "        t = time.monotonic()\n"
          "        while time.monotonic() - t < 6: pass\n"
          f"        open({str(finished)!r}, 'w').close()\n"
          "obj = Slow()\n", session_id="slow", persistent=True)
    # Other calls go on meanwhile (the old server expired sessions while reading one of them).
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while not started.exists():
        ok(s, "1")
        assert time.monotonic() < deadline, f"the session never expired\n{s.diagnostics()}"
    sent = time.monotonic()
    assert "result" in s.request("ping")
    took = time.monotonic() - sent
    assert not finished.exists(), f"the ping waited {took:.1f} s, until the finalizer had finished"
    print(f"ping answered in {took * 1000:.1f} ms while the finalizer ran")


# --- 6. durations -------------------------------------------------------------------------------------

def test_durations_below_a_millisecond_are_refused_clearly():
    for option in ("--timeout", "--downstream-timeout", "--session-ttl"):
        done = subprocess.run([binary(), option, "0.0001"], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        assert done.returncode != 0, (option, done.returncode, done.stderr)
        assert b"0.001" in done.stderr and option.encode() in done.stderr, done.stderr
        assert done.stdout == b""


# --- 7. a main-thread execution nested in one ----------------------------------------------------------

def test_a_nested_main_thread_execution_is_refused_at_once(server):
    code = ("try:\n"
            "    mcp.call('python', {'input': {'operation': 'execute', 'code': '1', 'run_on_main_thread': True}})\n"
            "    print('ran')\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    started = time.monotonic()
    sc = ok(server, code, run_on_main_thread=True, timeout=60)
    assert time.monotonic() - started < DEFAULT_TIMEOUT
    assert "ToolError" in sc["stdout"] and "main thread" in sc["stdout"], sc["stdout"]


# --- 8. a call queued behind a session stuck in C ------------------------------------------------------

def test_a_call_queued_behind_a_stuck_session_says_it_never_ran(server):
    started, ran = server.work / "stuck-started", server.work / "queued-ran"
    # libc sleep() through ctypes releases the GIL and cannot be interrupted from Python.
    stuck = server.send_python(code=f"import ctypes\nopen({str(started)!r}, 'w').close()\nctypes.CDLL(None).sleep(4)",
                               session_id="stuck", persistent=True, timeout=1)
    server.wait_for_file(started, request_id=stuck)
    queued = server.python(code=f"open({str(ran)!r}, 'w').close()", session_id="stuck", persistent=True, timeout=1)
    sc = structured(queued)
    message = error_text(queued)
    assert sc["timed_out"] is True and sc["success"] is False
    assert "did not run" in message and "'stuck'" in message, message
    assert "ran past its timeout" not in message, message
    assert not sc.get("still_running"), sc
    first = structured(server.wait_response(stuck)["result"])
    assert first["timed_out"] is True and first.get("still_running") is True
    # Once the session is free again, the queued code still has not run, and never will.
    ok(server, "'free again'", session_id="stuck", persistent=True, timeout=30)
    assert not ran.exists()
