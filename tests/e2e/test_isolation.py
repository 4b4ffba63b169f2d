"""Process isolation (issue 16): sessions in worker processes, over real pipes.

A crash (SIGSEGV, abort) or code stuck in a C call (a blocking read, a C sleep) costs its own
session only: the call is answered with why, the session is reported lost (list_sessions), its
next call starts fresh, and every other session keeps its variables. Workers never outlive the
server, are reaped, and never write to the server's stdout (the conftest checks every line).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from mcp_pipe import SANITIZED, McpServer, error_text, is_error, ok, run, structured, text_of

GRACE = "0.5"  # --kill-grace: short, so the stuck cases end quickly
# The sanitizer stage: a deliberate segfault in a worker must end it like in a plain build, not
# become an ASan report (handle_segv=0 leaves SIGSEGV to the kernel).
CRASH_ENV = ({"ASAN_OPTIONS": os.environ["ASAN_OPTIONS"] + ":handle_segv=0"}
             if SANITIZED and "ASAN_OPTIONS" in os.environ else {})


def proc_children(pid: int) -> dict[int, str]:
    """{child pid: state letter} of every live process whose parent is `pid`."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out[int(entry.name)] = fields[0]
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def eventually(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def proc_server(spawn) -> McpServer:
    s = spawn("--isolation", "process", "--kill-grace", GRACE, env=CRASH_ENV)
    s.initialize()
    return s


def sessions(s: McpServer) -> dict[str, dict]:
    return {e["session_id"]: e for e in structured(s.python("list_sessions"))["sessions"]}


def set_up_two_sessions(s: McpServer) -> int:
    """Session 'victim' and session 'bystander', each with a variable; the victim's worker pid."""
    ok(s, "keep = 'still here'", session_id="bystander", persistent=True)
    return int(ok(s, "import os\nx = 1\nos.getpid()", session_id="victim", persistent=True)["result"])


def assert_lost_and_recovered(s: McpServer, result: dict, victim_pid: int, words: tuple[str, ...]):
    assert is_error(result), result
    text = error_text(result)
    for word in words:
        assert word in text, text
    assert "victim" in text and "lost" in text, text
    entry = sessions(s)["victim"]
    assert entry["isolation"] == "process" and entry["losses"] == 1, entry
    assert all(w in entry["lost"] for w in words[:1]), entry
    eventually(lambda: not alive(victim_pid), "the old worker to be gone")
    # The next call starts fresh: the variable is gone, the session works.
    fresh = run(s, "x", session_id="victim", persistent=True)
    assert is_error(fresh) and "NameError" in error_text(fresh), fresh
    assert ok(s, "y = 2\ny", session_id="victim", persistent=True)["result"] == "2"
    # The other session never noticed.
    assert ok(s, "keep", session_id="bystander", persistent=True)["result"] == "'still here'"


def test_segfault_costs_one_session(proc_server):
    s = proc_server
    pid = set_up_two_sessions(s)
    result = run(s, "import ctypes\nprint('before the crash', flush=True)\nctypes.string_at(0)",
                 session_id="victim", persistent=True)
    assert "before the crash" in structured(result)["stdout"]
    assert_lost_and_recovered(s, result, pid, ("SIGSEGV",))


def test_abort_costs_one_session(proc_server):
    s = proc_server
    pid = set_up_two_sessions(s)
    result = run(s, "import os\nos.abort()", session_id="victim", persistent=True)
    assert_lost_and_recovered(s, result, pid, ("SIGABRT",))


def test_sigkill_as_from_the_oom_killer_costs_one_session(proc_server):
    s = proc_server
    pid = set_up_two_sessions(s)
    result = run(s, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", session_id="victim", persistent=True)
    assert_lost_and_recovered(s, result, pid, ("SIGKILL",))


def test_a_worker_never_writes_to_the_server_stdout(proc_server):
    s = proc_server
    # After the run, a thread of it writes straight to fd 1 and fd 2: that goes to the server's
    # log, never to its stdout (the conftest checks every stdout line of the test).
    code = ("import os, threading, time\n"
            "def late():\n    time.sleep(0.2)\n    os.write(1, b'raw stdout from a worker\\n')\n"
            "    os.write(2, b'raw stderr from a worker\\n')\n"
            "threading.Thread(target=late).start()\n'started'")
    ok(s, code, session_id="noisy", persistent=True)
    eventually(lambda: "raw stderr from a worker" in s.stderr_text(), "the worker's stray bytes in the server's log")
    eventually(lambda: "raw stdout from a worker" in s.stderr_text(), "the worker's stray stdout in the server's log")
    assert ok(s, "1", session_id="noisy", persistent=True)["result"] == "1"


def test_blocking_read_nobody_writes_is_killed_after_the_grace(proc_server):
    s = proc_server
    pid = set_up_two_sessions(s)
    result = run(s, "import os\nr, w = os.pipe()\nprint('reading', flush=True)\nos.read(r, 1)",
                 session_id="victim", persistent=True, timeout=1)
    assert structured(result)["timed_out"] is True, result
    assert "reading" in structured(result)["stdout"]
    assert_lost_and_recovered(s, result, pid, ("did not stop", "killed", "timeout"))


def test_long_c_sleep_is_killed_after_the_grace(proc_server):
    s = proc_server
    pid = set_up_two_sessions(s)
    started = time.monotonic()
    result = run(s, "import ctypes\nctypes.CDLL(None).sleep(3600)", session_id="victim", persistent=True, timeout=1)
    assert time.monotonic() - started < 60
    assert_lost_and_recovered(s, result, pid, ("did not stop", "killed", "timeout"))


def start_c_sleep(s, session_id: str = "victim") -> int:
    """Sends an hour's C sleep to `session_id` and returns its request id once the sleep runs: a
    cancel or restart that comes before the code starts stops it before it runs."""
    marker = s.work / "sleeping"
    rid = s.send_python(code=f"import ctypes\nopen({str(marker)!r}, 'w').close()\nctypes.CDLL(None).sleep(3600)",
                        session_id=session_id, persistent=True)
    eventually(marker.exists, "the sleep to start")
    return rid


def test_cancelled_c_sleep_is_killed_and_the_session_lost(proc_server):
    s = proc_server
    pid = set_up_two_sessions(s)
    rid = start_c_sleep(s)
    s.notify("notifications/cancelled", {"requestId": rid, "reason": "test"})
    eventually(lambda: sessions(s)["victim"].get("losses") == 1, "the session to be reported lost")
    assert "cancelled" in sessions(s)["victim"]["lost"]
    eventually(lambda: not alive(pid), "the worker to be killed")
    assert ok(s, "keep", session_id="bystander", persistent=True)["result"] == "'still here'"
    assert ok(s, "'fresh'", session_id="victim", persistent=True)["result"] == "'fresh'"


def test_interrupt_that_works_keeps_the_session(proc_server):
    s = proc_server
    ok(s, "x = 5", session_id="calm", persistent=True)
    result = run(s, "import time\nwhile True: time.sleep(0.01)", session_id="calm", persistent=True, timeout=0.5)
    assert structured(result)["timed_out"] is True and "killed" not in error_text(result), result
    assert ok(s, "x", session_id="calm", persistent=True)["result"] == "5"
    assert "losses" not in sessions(s)["calm"]


def test_restart_session_kills_running_code_and_starts_fresh(proc_server):
    s = proc_server
    pid = set_up_two_sessions(s)
    rid = start_c_sleep(s)
    restarted = s.python("restart_session", session_id="victim")
    assert structured(restarted)["restarted"] is True, restarted
    answer = s.wait_response(rid)
    assert answer["result"]["isError"] and "restart_session" in error_text(answer["result"]), answer
    eventually(lambda: not alive(pid), "the worker to be killed")
    fresh = run(s, "x", session_id="victim", persistent=True)
    assert "NameError" in error_text(fresh)
    assert "restart_session" in sessions(s)["victim"]["lost"]
    missing = s.python("restart_session", session_id="nobody")
    assert structured(missing)["restarted"] is False


def test_restart_session_in_thread_mode_says_it_needs_process_isolation(server):
    ok(server, "x = 1", session_id="t", persistent=True)
    result = server.python("restart_session", session_id="t")
    assert is_error(result) and "needs process isolation" in text_of(result), result
    assert ok(server, "x", session_id="t", persistent=True)["result"] == "1"


def test_per_call_isolation_field_and_mismatch(server):
    pid = int(ok(server, "import os\nos.getpid()", session_id="p", persistent=True, isolation="process")["result"])
    assert pid != server.proc.pid and pid in proc_children(server.proc.pid)
    assert ok(server, "import os\nos.getpid()", session_id="t", persistent=True)["result"] == str(server.proc.pid)
    # An existing session keeps its mode: asking for the other one is a clear error.
    result = run(server, "1", session_id="p", persistent=True, isolation="thread")
    assert is_error(result) and "keeps the mode" in error_text(result), result
    bad = run(server, "1", isolation="forked")
    assert is_error(bad) and "'isolation' must be" in error_text(bad), bad
    by_id = sessions(server)
    assert by_id["p"]["isolation"] == "process" and by_id["t"]["isolation"] == "thread"
    # After clear_session the name may start again in the other mode.
    server.python("clear_session", session_id="p")
    eventually(lambda: not alive(pid), "the cleared session's worker to end")
    assert ok(server, "import os\nos.getpid()", session_id="p", persistent=True, isolation="thread")["result"] == \
        str(server.proc.pid)


def test_mcp_call_output_and_images_from_a_worker(proc_server):
    s = proc_server
    sc = ok(s, "import sys\nprint('out line')\nprint('err line', file=sys.stderr)\n"
               "r = mcp.call('python', {'code': '6 * 7', 'session_id': 'other'})\n"
               "names = [t['name'] for t in mcp.list_tools()]\n"
               "from PIL import Image\ndisplay(Image.new('RGB', (7, 5)))\n"
               "(r['structuredContent']['result'], 'sqlite' in names)",
            session_id="w", persistent=True)
    assert sc["stdout"] == "out line\n" and sc["stderr"] == "err line\n", sc
    assert sc["result"] == "('42', True)", sc
    assert [c["tool"] for c in sc["mcp_calls"]] == ["python"], sc
    assert sc["display"][0]["mimeType"] == "image/png", sc
    raise_it = run(s, "mcp.call('no_such_tool', {})", session_id="w", persistent=True)
    assert is_error(raise_it) and "no_such_tool" in error_text(raise_it)


def test_live_output_from_a_worker(proc_server):
    s = proc_server
    since = s.mark()
    rid = s.send_request("tools/call", {"name": "python", "arguments": {
        "code": "print('live line', flush=True)\nimport time\ntime.sleep(0.3)\n'done'"},
        "_meta": {"progressToken": "live-1"}})
    s.wait_for(lambda m: m.get("method") == "notifications/progress" and "live line" in m["params"].get("message", ""),
               since=since, what="live output")
    assert s.wait_response(rid)["result"]["structuredContent"]["result"] == "'done'"


def test_no_zombie_after_crashes_and_kill_9_of_the_server_leaves_no_worker(spawn):
    s = spawn("--isolation", "process", "--kill-grace", GRACE, env=CRASH_ENV)
    s.initialize()
    for i in range(3):
        run(s, "import os\nos.abort()", session_id=f"c{i}", persistent=True)
    workers = [int(ok(s, "import os\nos.getpid()", session_id=f"s{i}", persistent=True)["result"]) for i in range(2)]
    # One of them busy in a C call when the server dies: it must end all the same.
    start_c_sleep(s, "s0")
    eventually(lambda: all(st != "Z" for st in proc_children(s.proc.pid).values()), "crashed workers to be reaped")
    children = set(proc_children(s.proc.pid))
    assert set(workers) <= children, (workers, children)
    os.kill(s.proc.pid, signal.SIGKILL)
    s.proc.wait(timeout=20)
    eventually(lambda: not any(alive(p) for p in children), "every worker to end with the server")


def test_idle_workers_and_the_spare_end_after_the_session_ttl(spawn):
    s = spawn("--isolation", "process", "--session-ttl", "0.5")
    s.initialize()
    pid = int(ok(s, "import os\nos.getpid()", session_id="idle", persistent=True)["result"])
    eventually(lambda: not alive(pid), "the idle session's worker to end")
    assert "idle" not in sessions(s)
    eventually(lambda: not proc_children(s.proc.pid), "the spare to end too, with no session left")
    # A new session still starts (a worker is started for it).
    assert ok(s, "1 + 1", session_id="again", persistent=True)["result"] == "2"


@pytest.mark.skipif(SANITIZED, reason="--memory-limit cannot work under AddressSanitizer (its shadow memory)")
def test_memory_limit_applies_to_each_worker_on_its_own(spawn):
    s = spawn("--isolation", "process", "--memory-limit", "400")
    s.initialize()
    ok(s, "keep = 'still here'", session_id="bystander", persistent=True)
    limits = ok(s, "open('/proc/self/limits').read()", session_id="hog", persistent=True)["result"]
    assert str(400 * 1024 * 1024) in limits, limits
    hog = run(s, "x = bytearray(600 * 1024 ** 2)", session_id="hog", persistent=True)
    assert is_error(hog) and structured(hog)["error"]["type"] == "MemoryError", hog
    # Two workers may each use most of their own limit: it is not shared.
    ok(s, "a = bytearray(250 * 1024 ** 2)", session_id="hog", persistent=True)
    ok(s, "b = bytearray(250 * 1024 ** 2)", session_id="bystander", persistent=True)
    assert ok(s, "keep", session_id="bystander", persistent=True)["result"] == "'still here'"
    assert "losses" not in sessions(s)["hog"]


def test_workers_end_with_a_server_that_exits_normally(spawn):
    s = spawn("--isolation", "process")
    s.initialize()
    for i in range(2):
        ok(s, "x = 1", session_id=f"s{i}", persistent=True)
    children = set(proc_children(s.proc.pid))
    assert len(children) >= 2
    s.close_stdin()
    assert s.wait_exit(20) == 0
    eventually(lambda: not any(alive(p) for p in children), "every worker to end with the server")


def test_fresh_namespace_runs_in_a_worker_get_no_persistent_session_note(proc_server):
    s = proc_server
    for _ in range(2):
        sc = ok(s, "y = 1\ny", session_id="np")
        assert "note" not in sc, sc  # not "Session 'np' is a persistent session ..."
    assert sessions(s)["np"]["persistent"] is False
    ok(s, "z = 1", session_id="np", persistent=True)
    assert "persistent session" in ok(s, "1", session_id="np")["note"]


def test_jobs_and_read_output_in_a_worker(proc_server):
    s = proc_server
    handle = structured(s.python("start_job", code="import time\nfor i in range(3):\n    print(i, flush=True)\n"
                                                   "    time.sleep(0.05)\n'job done'", session_id="j", persistent=True))
    done = structured(s.python("wait_job", job_id=handle["job_id"], wait=20))
    assert done["state"] == "succeeded" and done["result"] == "'job done'" and done["stdout"] == "0\n1\n2\n", done
    ok(s, "import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.1), print('late'))).start()",
       session_id="j", persistent=True)
    eventually(lambda: sessions(s)["j"]["busy"] is False, "the run to end")
    taken = eventually(lambda: (lambda r: r if r["bytes"] else None)(structured(s.python("read_output", session_id="j"))),
                       "the background output")
    assert taken["stdout"] == "late\n", taken
