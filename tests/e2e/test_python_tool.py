"""The `python` tool end to end over raw pipes (issue 3).

Calls are tools/call name "python" with {"input": {"operation": ..., ...}} (and unwrapped).
Every test also gets the teardown check that each stdout line was a valid JSON-RPC 2.0 message,
which is what proves that os.system, subprocesses and fd-level writes never reach the protocol.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from mcp_pipe import McpServer, error_text, is_error, is_response, ok, payload, run, structured, text_of

OPERATIONS = ("execute", "save_script", "load_script", "list_scripts", "delete_script", "run_script",
              "clear_session", "list_sessions", "readme")
FIELDS = ("code", "session_id", "persistent", "run_on_main_thread", "filename", "timeout", "max_output",
          "tool_unlock_token")
TIMED_OUT = re.compile(r"time[d]?[ _-]?out", re.IGNORECASE)


UNITS = {"": 1, "b": 1, "byte": 1, "bytes": 1, "kb": 1000, "kib": 1024, "mb": 1000 ** 2, "mib": 1024 ** 2}


def amounts_in_bytes(text: str) -> list[float]:
    """Sizes written in `text` ("9701 KiB", "9.5 MB", "9,934,473 bytes"), in bytes."""
    found = []
    for number, unit in re.findall(r"(\d[\d,_]*(?:\.\d+)?)\s*(bytes|byte|KiB|KB|MiB|MB|B)?\b", text):
        found.append(float(number.replace(",", "").replace("_", "")) * UNITS[unit.lower()])
    return found


def touch_then(marker: Path, body: str) -> str:
    """Code that announces it is running (creates `marker`) and then runs `body`."""
    return f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n{body}"


# --- the tool's description ---------------------------------------------------------------------

def test_input_schema_describes_every_operation_and_field(server):
    tools = server.request("tools/list")["result"]["tools"]
    python = next(t for t in tools if t["name"] == "python")
    schema = json.dumps(python["inputSchema"])
    for word in OPERATIONS + FIELDS + ("input",):
        assert f'"{word}"' in schema, f"the python inputSchema does not mention {word}"
    assert python["inputSchema"]["properties"]["input"]["type"] == "object"


def test_readme_documents_the_tool(server):
    result = server.python("readme")
    assert not is_error(result)
    text = text_of(result)
    assert len(text) > 1000
    for word in OPERATIONS + FIELDS + ("mcp.call",):
        assert word in text, f"the readme does not mention {word}"


# --- execute: results ---------------------------------------------------------------------------

def test_execute_returns_structured_output(server):
    result = run(server, "import sys\nprint('hello')\nprint('warn', file=sys.stderr)")
    assert not is_error(result)
    sc = structured(result)
    assert sc["stdout"] == "hello\n"
    assert sc["stderr"] == "warn\n"
    assert sc["success"] is True
    assert sc.get("error") in (None, {})
    assert sc["truncated"] is False
    assert isinstance(sc["duration_ms"], (int, float)) and sc["duration_ms"] >= 0
    assert isinstance(sc["session_id"], str) and sc["session_id"]
    assert isinstance(sc["persistent"], bool)
    assert "hello" in text_of(result) and "warn" in text_of(result)


def test_unwrapped_arguments_work_too(server):
    result = server.python(code="print(2 + 2)", wrap=False)
    assert structured(result)["stdout"] == "4\n"


def test_unlock_token_is_accepted_and_ignored_by_default(server):
    sc = ok(server, "print('ok')", tool_unlock_token="not-the-token")
    assert sc["stdout"] == "ok\n"


@pytest.mark.parametrize("code,expected", [
    ("a = 2\na * 21", "42"),
    ("'x' * 3", "'xxx'"),
    ("[1, 2][-1]", "2"),
    ("import math\nmath.pi > 3", "True"),
    ("x = 1\nif x:\n    x += 1\nx", "2"),
])
def test_trailing_expression_value_is_returned(server, code, expected):
    assert ok(server, code)["result"] == expected


@pytest.mark.parametrize("code", ["y = 5", "print('p')", "None", "def f():\n    return 1"])
def test_no_value_without_a_trailing_expression(server, code):
    assert ok(server, code)["result"] in (None, "")


def test_name_is_main(server):
    assert ok(server, "__name__")["result"] == "'__main__'"


def test_exception_is_a_tool_error_with_traceback(server):
    code = "print('before')\ndef inner():\n    raise ValueError('boom')\ninner()\n"
    result = run(server, code)
    assert is_error(result)
    sc = structured(result)
    assert sc["success"] is False
    assert sc["stdout"] == "before\n"
    error = sc["error"]
    assert error["type"] == "ValueError"
    assert "boom" in error["message"]
    tb = error["traceback"]
    assert "ValueError: boom" in tb
    assert "inner" in tb and "line 3" in tb and "line 4" in tb
    # Only the user's two frames (module level and inner): none of the server's own machinery.
    assert tb.count('File "') == 2, tb
    assert "ValueError" in text_of(result) and "boom" in text_of(result)


def test_syntax_error_is_a_tool_error(server):
    result = run(server, "def broken(:\n    pass")
    assert is_error(result)
    assert structured(result)["error"]["type"] == "SyntaxError"


# --- sessions -----------------------------------------------------------------------------------

def test_persistent_session_keeps_variables(server):
    ok(server, "x = 41\nitems = []", session_id="s1", persistent=True)
    ok(server, "items.append(x)", session_id="s1", persistent=True)
    sc = ok(server, "x + 1, items", session_id="s1", persistent=True)
    assert sc["result"] == "(42, [41])"
    assert sc["session_id"] == "s1" and sc["persistent"] is True


def test_sessions_are_separate(server):
    ok(server, "only_here = 1", session_id="one", persistent=True)
    result = run(server, "only_here", session_id="two", persistent=True)
    assert is_error(result) and structured(result)["error"]["type"] == "NameError"


def test_non_persistent_calls_get_a_fresh_namespace(server):
    ok(server, "temp = 1", persistent=False)
    result = run(server, "temp", persistent=False)
    assert is_error(result) and structured(result)["error"]["type"] == "NameError"


CONCURRENT = '''
import pathlib, sys, threading, time
mine, theirs = pathlib.Path({mine!r}), pathlib.Path({theirs!r})
for i in range(50):
    print("{tag}", i)
mine.touch()
deadline = time.monotonic() + 20
while not theirs.exists():
    if time.monotonic() > deadline:
        raise RuntimeError("the other session never ran at the same time as this one")
    time.sleep(0.002)
for i in range(50, 100):
    print("{tag}", i)
    time.sleep(0.001)
t = threading.Thread(target=lambda: print("{tag} from a thread"))
t.start()
t.join()
print("{tag} err", file=sys.stderr)
'''


def test_two_sessions_printing_at_once_are_never_mixed(server):
    a, b = server.work / "a-running", server.work / "b-running"
    since = server.mark()
    id_a = server.send_python(code=CONCURRENT.format(mine=str(a), theirs=str(b), tag="A"), session_id="A",
                              persistent=True)
    id_b = server.send_python(code=CONCURRENT.format(mine=str(b), theirs=str(a), tag="B"), session_id="B",
                              persistent=True)
    for request_id, tag in ((id_a, "A"), (id_b, "B")):
        result = server.wait_response(request_id, since=since)["result"]
        sc = structured(result)
        assert sc["success"] is True, result
        expected = "".join(f"{tag} {i}\n" for i in range(100)) + f"{tag} from a thread\n"
        assert sc["stdout"] == expected
        assert sc["stderr"] == f"{tag} err\n"


def test_calls_to_one_session_run_in_arrival_order(server):
    since = server.mark()
    first = server.send_python(code="import time\ntime.sleep(0.3)\norder = ['a']", session_id="q",
                               persistent=True)
    second = server.send_python(code="order.append('b')", session_id="q", persistent=True)
    third = server.send_python(code="order", session_id="q", persistent=True)
    for request_id in (first, second):
        assert not is_error(server.wait_response(request_id, since=since)["result"])
    assert structured(server.wait_response(third, since=since)["result"])["result"] == "['a', 'b']"


def session_entries(result: dict) -> list[dict]:
    assert not is_error(result), result
    data = payload(result)
    assert data["count"] == len(data["sessions"]), data
    return data["sessions"]


def session_named(entries: list[dict], name: str) -> dict | None:
    found = [e for e in entries if e["session_id"] == name]
    assert len(found) <= 1, entries
    return found[0] if found else None


def test_list_sessions_and_clear_session(server):
    ok(server, "a = 1\nb = 2\nc = [3]", session_id="keep", persistent=True)
    ok(server, "z = 1", session_id="other", persistent=True)
    entry = session_named(session_entries(server.python("list_sessions")), "keep")
    assert entry is not None
    assert entry["variables"] == 3, entry
    assert entry["busy"] is False
    assert entry["created"] and entry["last_used"], entry

    cleared = payload(server.python("clear_session", session_id="keep"))
    assert cleared["cleared"] is True and cleared["variables_freed"] == 3, cleared
    entries = session_entries(server.python("list_sessions"))
    assert session_named(entries, "keep") is None
    assert session_named(entries, "other") is not None
    result = run(server, "a", session_id="keep", persistent=True)
    assert is_error(result) and structured(result)["error"]["type"] == "NameError"


def test_list_sessions_reports_a_busy_session(server):
    marker = server.work / "busy"
    call = server.send_python(code=touch_then(marker, "import time\ntime.sleep(30)"), session_id="busy-one",
                              persistent=True)
    server.wait_for_file(marker, request_id=call)
    entry = session_named(session_entries(server.python("list_sessions")), "busy-one")
    assert entry is not None and entry["busy"] is True, entry
    server.notify("notifications/cancelled", {"requestId": call})


# --- what user code cannot break ----------------------------------------------------------------

@pytest.mark.parametrize("code,kind", [
    ("import sys\nsys.exit(3)", "SystemExit"),
    ("exit()", "SystemExit"),
    ("quit()", "SystemExit"),
    ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    ("def r():\n    return r()\nr()", "RecursionError"),
])
def test_exits_and_interrupts_are_errors_and_the_session_survives(server, code, kind):
    ok(server, "keep = 'still here'", session_id="tough", persistent=True)
    result = run(server, code, session_id="tough", persistent=True)
    assert is_error(result), result
    assert structured(result)["error"]["type"] == kind
    assert ok(server, "keep", session_id="tough", persistent=True)["result"] == "'still here'"
    assert server.proc.poll() is None


def test_os_exit_does_not_end_the_server(server):
    result = run(server, "import os\nos._exit(1)")
    assert is_error(result)
    assert server.proc.poll() is None
    assert ok(server, "1 + 1")["result"] == "2"


def test_input_raises_a_clear_error(server):
    result = run(server, "name = input('name? ')", session_id="in", persistent=True)
    assert is_error(result)
    message = error_text(result).lower()
    assert "stdin" in message or "protocol" in message, message
    # also after exit() closed sys.stdin
    run(server, "exit()", session_id="in", persistent=True)
    result = run(server, "input()", session_id="in", persistent=True)
    assert is_error(result)
    message = error_text(result).lower()
    assert "stdin" in message or "protocol" in message, f"after exit(): {message}"


def test_fd_level_output_never_reaches_the_protocol_stream(server):
    code = ("import os, subprocess, sys\n"
            "os.system('echo hi-from-system')\n"
            "subprocess.run(['echo', 'hi-from-subprocess'], check=True)\n"
            "os.write(1, b'hi-from-fd1\\n')\n"
            "os.write(2, b'hi-from-fd2\\n')\n"
            "print('done')\n")
    sc = ok(server, code)
    for raw in server.raw_lines:
        assert raw.startswith((b"{", b"[")), raw
    # Only one execution runs, so fd-level output is captured into the result.
    assert "hi-from-system" in sc["stdout"]
    assert "hi-from-subprocess" in sc["stdout"]
    assert "hi-from-fd1" in sc["stdout"]
    assert "hi-from-fd2" in sc["stderr"]
    assert "done" in sc["stdout"]


def test_forked_child_does_not_hold_the_protocol_pipe(server):
    # The child lives 20 s; the server's stdout must still close as soon as the server exits.
    code = "import os, time\npid = os.fork()\nif pid == 0:\n    time.sleep(20)\n    os._exit(0)\npid > 0"
    result = run(server, code)
    assert structured(result)["result"] == "True", result
    server.close_stdin()
    assert server.wait_exit(timeout=5) == 0
    assert server.stdout_closed(timeout=3), "a forked child kept the protocol pipe open"


def test_huge_output_is_truncated_keeping_head_and_tail(server):
    since = server.mark()
    sc = ok(server, "print('HEAD' + 'x' * 10_000_000 + 'TAIL')")
    assert sc["truncated"] is True
    out = sc["stdout"]
    assert out.startswith("HEAD")
    assert "TAIL" in out[-100:]
    assert len(out) < 70_000, f"kept {len(out)} characters; default max_output is 64 KiB"
    cut_bytes = 10_000_009 - 65_536
    stated = amounts_in_bytes(out.replace("HEAD", "").replace("TAIL", ""))
    assert any(abs(n - cut_bytes) <= 0.02 * cut_bytes for n in stated), \
        f"the result should say how much was cut (about {cut_bytes} bytes); it states {stated}"
    line = next(r for r in server.raw_lines[since:] if b'"HEAD' in r)
    assert len(line) < 1_000_000


def test_max_output_is_honoured(server):
    sc = ok(server, "print('A' * 2000 + 'B' * 5000 + 'Z' * 2000)", max_output=1000)
    assert sc["truncated"] is True
    out = sc["stdout"]
    assert out.startswith("A") and out.rstrip().endswith("Z")
    assert len(out) < 1400


def test_small_output_is_not_truncated(server):
    sc = ok(server, "print('y' * 1000)", max_output=1000 + 100)
    assert sc["truncated"] is False and sc["stdout"] == "y" * 1000 + "\n"


# --- timeouts and cancellation ------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "while True:\n    pass",
    "while True:\n    try:\n        while True:\n            pass\n    except Exception:\n        pass",
    "import time\ntime.sleep(60)",
], ids=["busy-loop", "loop-catching-Exception", "sleep"])
def test_timeout_stops_the_code_and_the_session_survives(server, body):
    ok(server, "counter = 1", session_id="t", persistent=True)
    start = time.monotonic()
    result = run(server, body, session_id="t", persistent=True, timeout=1)
    elapsed = time.monotonic() - start
    assert is_error(result), result
    assert TIMED_OUT.search(error_text(result)), error_text(result)
    assert 0.9 <= elapsed < 4.0, f"answered after {elapsed:.2f} s for a 1 s timeout"
    assert ok(server, "counter + 1", session_id="t", persistent=True)["result"] == "2"
    # No stale interrupt hits the next execution, even one that takes a while.
    sc = ok(server, "import time\nfor _ in range(6):\n    time.sleep(0.1)\n'fine'", session_id="t", persistent=True)
    assert sc["result"] == "'fine'"


def cancel_and_follow_up(server: McpServer, body: str) -> float:
    """Starts `body` in session c, cancels it once it runs, and checks that the session answers
    the next call and that the cancelled request is never answered. Returns the seconds from the
    cancel notification to the follow-up's answer."""
    ok(server, "state = 'kept'", session_id="c", persistent=True)
    marker = server.work / "running"
    call = server.send_python(code=touch_then(marker, body), session_id="c", persistent=True)
    server.wait_for_file(marker, request_id=call)
    start = time.monotonic()
    server.notify("notifications/cancelled", {"requestId": call, "reason": "test"})
    # Calls to one session run in order: this answer proves the cancelled code has stopped.
    follow_up = run(server, "state", session_id="c", persistent=True)
    elapsed = time.monotonic() - start
    assert structured(follow_up)["result"] == "'kept'"
    assert server.request("ping")["result"] == {}
    server.expect_silence(lambda m: is_response(m) and m["id"] == call, what="answer to the cancelled request")
    return elapsed


def test_cancel_stops_a_busy_loop(server):
    elapsed = cancel_and_follow_up(server, "while True:\n    pass")
    assert elapsed < 1.0, f"{elapsed:.2f} s from cancel to the next answer"


def test_cancel_stops_a_loop_that_catches_exception(server):
    body = "while True:\n    try:\n        sum(range(1000))\n    except Exception:\n        pass"
    assert cancel_and_follow_up(server, body) < 1.0


def test_cancel_interrupts_time_sleep_quickly(server):
    elapsed = cancel_and_follow_up(server, "import time\ntime.sleep(60)")
    assert elapsed < 0.5, f"{elapsed:.2f} s from cancel to the next answer"


def test_cancel_amid_concurrent_imports_leaves_every_import_working(server):
    """Cancelling code in the middle of an import must not leave a module lock held: an
    interrupt raised inside importlib's own locking frames can, and then every later import of
    that module, in any session, waits forever. Four sessions import the same sequence of new
    modules as fast as they can (so they keep meeting on one module's lock) and are cancelled
    together, in several rounds; afterwards every session imports every module any of them
    reached."""
    finder = (
        "import importlib, importlib.abc, importlib.util, sys\n"
        "class ChurnFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        return importlib.util.spec_from_loader(name, self) if name.startswith('churn_') else None\n"
        "    def create_module(self, spec):\n"
        "        return None\n"
        "    def exec_module(self, module):\n"
        "        module.value = sum(range(200))\n"
        "if not any(type(f).__name__ == 'ChurnFinder' for f in sys.meta_path):\n"
        "    sys.meta_path.insert(0, ChurnFinder())\n"
        "reached = 0\n")
    for k in range(4):
        ok(server, finder, session_id=f"imp{k}", persistent=True)
    for round_ in range(6):
        loop = ("i = 0\nwhile True:\n    reached = max(reached, i)\n"
                f"    importlib.import_module(f'churn_{round_}_{{i}}')\n    i += 1\n")
        calls = []
        for k in range(4):
            marker = server.work / f"importing-{round_}-{k}"
            calls.append((server.send_python(code=touch_then(marker, loop), session_id=f"imp{k}", persistent=True),
                          marker))
        for call, marker in calls:
            server.wait_for_file(marker, request_id=call)
        for call, _ in calls:
            server.notify("notifications/cancelled", {"requestId": call, "reason": "test"})
        # A time-out on each follow-up: a session stuck on a lock answers "busy" instead of
        # leaving this test waiting.
        top = max(int(ok(server, "reached", session_id=f"imp{k}", persistent=True, timeout=10)["result"])
                  for k in range(4))
        for k in range(4):
            sc = ok(server, f"sum(importlib.import_module(f'churn_{round_}_{{j}}').value for j in range({top + 2}))",
                    session_id=f"imp{k}", persistent=True, timeout=10)
            assert sc["result"] == str((top + 2) * sum(range(200))), f"round {round_}, session imp{k}: {sc}"
        for call, _ in calls:
            assert not server.responses_for(call), f"cancelled request {call} was answered"


def test_switch_interval_is_back_after_executions_that_waited_for_a_busy_gil(server):
    """While an execution waits for a GIL other executions hold, the switch interval is cut so it
    gets its turn sooner; afterwards the normal interval (or the one user code set) is back."""
    marker = server.work / "spinning"
    busy = server.send_python(code=touch_then(marker, "while True:\n    pass"), session_id="spin", persistent=True)
    server.wait_for_file(marker, request_id=busy)
    for _ in range(20):
        ok(server, "x = 1", session_id="quick", persistent=True)
    assert ok(server, "import sys\nsys.getswitchinterval()", session_id="quick", persistent=True)["result"] == "0.001"
    ok(server, "sys.setswitchinterval(0.004)", session_id="quick", persistent=True)
    for _ in range(5):
        ok(server, "x = 2", session_id="other", persistent=True)
    assert ok(server, "sys.getswitchinterval()", session_id="quick", persistent=True)["result"] == "0.004"
    server.notify("notifications/cancelled", {"requestId": busy, "reason": "test"})
    ok(server, "import sys\nsys.setswitchinterval(0.001)", session_id="spin", persistent=True)
    assert ok(server, "sys.getswitchinterval()", session_id="quick", persistent=True)["result"] == "0.001"


def test_cancel_of_a_finished_or_unknown_request_is_ignored(server):
    response = server.call("python", {"input": {"operation": "execute", "code": "1"}}, id="done")
    server.notify("notifications/cancelled", {"requestId": "done"})
    server.notify("notifications/cancelled", {"requestId": 123456})
    assert ok(server, "2")["result"] == "2"
    assert len(server.responses_for("done")) == 1 and "result" in response


def test_protocol_answers_while_python_is_cpu_bound(server):
    marker = server.work / "spinning"
    call = server.send_python(code=touch_then(marker, "while True:\n    pass"), session_id="spin",
                              persistent=True, timeout=60)
    server.wait_for_file(marker, request_id=call)
    for _ in range(5):
        start = time.monotonic()
        assert server.request("ping", timeout=5)["result"] == {}
        assert time.monotonic() - start < 0.5
    assert server.request("tools/list", timeout=5)["result"]["tools"]
    # Another session is served meanwhile (GIL permitting).
    assert ok(server, "'other'", session_id="elsewhere", persistent=True)["result"] == "'other'"
    server.notify("notifications/cancelled", {"requestId": call})
    assert ok(server, "'free'", session_id="spin", persistent=True)["result"] == "'free'"


def test_uninterruptible_c_call_is_answered_at_its_deadline(server):
    # libc sleep() through ctypes releases the GIL and cannot be interrupted from Python.
    start = time.monotonic()
    result = run(server, "import ctypes\nctypes.CDLL(None).sleep(4)", session_id="stuck", persistent=True,
                 timeout=1)
    elapsed = time.monotonic() - start
    assert is_error(result) and TIMED_OUT.search(error_text(result)), result
    assert elapsed < 3.0, f"answered after {elapsed:.2f} s for a 1 s timeout"
    # The session is reported busy until the C call returns; other sessions keep working.
    entry = session_named(session_entries(server.python("list_sessions")), "stuck")
    assert entry is not None and entry["busy"] is True, entry
    assert ok(server, "'free'", session_id="elsewhere", persistent=True)["result"] == "'free'"
    # Once the call has returned, the session works again.
    deadline = time.monotonic() + 15
    while True:
        entry = session_named(session_entries(server.python("list_sessions")), "stuck")
        if entry is None or entry["busy"] is False:
            break
        assert time.monotonic() < deadline, "the session stayed busy after the C call returned"
        time.sleep(0.05)
    assert ok(server, "'back'", session_id="stuck", persistent=True)["result"] == "'back'"


def test_code_holding_the_gil_does_not_block_the_protocol_or_shutdown(server):
    # A catastrophic regex runs in C holding the GIL for a long time.
    marker = server.work / "regex"
    body = "import re\nre.match(r'(a+)+$', 'a' * 40 + 'b')"
    call = server.send_python(code=touch_then(marker, body), session_id="gil", persistent=True, timeout=1)
    server.wait_for_file(marker, request_id=call)
    start = time.monotonic()
    assert server.request("ping", timeout=5)["result"] == {}
    assert time.monotonic() - start < 0.5, "ping waited for the GIL"
    result = server.wait_response(call, timeout=10)["result"]
    assert is_error(result) and TIMED_OUT.search(error_text(result)), result
    assert time.monotonic() - start < 3.0
    server.close_stdin()
    start = time.monotonic()
    assert server.wait_exit(timeout=10) == 0
    assert time.monotonic() - start < 2.0, "shutdown waited for code that holds the GIL"


# --- run_on_main_thread -------------------------------------------------------------------------

def test_run_on_main_thread(server):
    code = "import os, threading\n(threading.current_thread() is threading.main_thread(), threading.get_native_id() == os.getpid())"
    assert ok(server, code, run_on_main_thread=True)["result"] == "(True, True)"
    # with a persistent session, state is kept across main-thread runs
    ok(server, "import threading\nfirst = threading.get_ident()", session_id="main", persistent=True,
       run_on_main_thread=True)
    sc = ok(server, "threading.get_ident() == first", session_id="main", persistent=True, run_on_main_thread=True)
    assert sc["result"] == "True"


def test_protocol_flows_while_the_main_thread_runs_code(server):
    marker = server.work / "main-busy"
    call = server.send_python(code=touch_then(marker, "import time\ntime.sleep(1.5)\n'main done'"),
                              run_on_main_thread=True)
    server.wait_for_file(marker, request_id=call)
    start = time.monotonic()
    assert server.request("ping", timeout=5)["result"] == {}
    assert time.monotonic() - start < 0.5
    assert ok(server, "'worker'")["result"] == "'worker'"
    result = server.wait_response(call)["result"]
    assert structured(result)["result"] == "'main done'"


# --- scripts ------------------------------------------------------------------------------------

SCRIPT = "print('hi from script é')\nvalue = 6 * 7\n"


def test_script_round_trip(server):
    saved = server.python("save_script", filename="hello", code=SCRIPT)
    assert not is_error(saved), saved
    info = payload(saved)
    expected_path = server.scripts_dir / "hello.py"
    assert info["filename"] == "hello.py"
    assert info["size"] == len(SCRIPT.encode("utf-8"))
    assert info["saved"] is True
    assert Path(info["path"]) == expected_path
    assert expected_path.read_text("utf-8") == SCRIPT

    loaded = payload(server.python("load_script", filename="hello.py"))
    assert loaded["filename"] == "hello.py" and loaded["code"] == SCRIPT
    assert loaded["size"] == len(SCRIPT.encode("utf-8")) and Path(loaded["path"]) == expected_path

    server.python("save_script", filename="second.py", code="1")
    listing = payload(server.python("list_scripts"))
    assert listing["count"] == 2
    assert Path(listing["directory"]) == server.scripts_dir
    by_name = {s["filename"]: s for s in listing["scripts"]}
    assert set(by_name) == {"hello.py", "second.py"}
    assert by_name["hello.py"]["size"] == len(SCRIPT.encode("utf-8"))
    assert by_name["hello.py"]["modified"] and Path(by_name["hello.py"]["path"]) == expected_path

    ran = server.python("run_script", filename="hello")
    assert structured(ran)["stdout"] == "hi from script é\n"

    # run_script in a persistent session leaves the script's variables there
    server.python("run_script", filename="hello.py", session_id="rs", persistent=True)
    assert ok(server, "value", session_id="rs", persistent=True)["result"] == "42"

    deleted = payload(server.python("delete_script", filename="hello.py"))
    assert deleted["filename"] == "hello.py" and deleted["deleted"] is True
    assert not expected_path.exists()
    assert is_error(server.python("load_script", filename="hello.py"))
    listing = payload(server.python("list_scripts"))
    assert listing["count"] == 1 and [s["filename"] for s in listing["scripts"]] == ["second.py"]


def test_save_replaces_a_script_atomically(server):
    server.python("save_script", filename="v.py", code="'one'")
    server.python("save_script", filename="v.py", code="'two'")
    assert payload(server.python("load_script", filename="v.py"))["code"] == "'two'"
    leftovers = [p.name for p in server.scripts_dir.iterdir() if p.name != "v.py"]
    assert leftovers == [], "temporary files were left behind"


def test_scripts_dir_option(spawn, tmp_path):
    directory = tmp_path / "my scripts"
    s = spawn("--scripts-dir", str(directory))
    s.initialize()
    info = payload(s.python("save_script", filename="here.py", code="print(1)"))
    assert Path(info["path"]) == directory / "here.py"
    assert (directory / "here.py").read_text() == "print(1)"
    assert not s.scripts_dir.exists()


# "ABSOLUTE" stands for an absolute path: /etc/passwd where the operation only reads, a path in
# the test's own temporary directory where a broken server would write or delete (tests run as root).
BAD_NAMES = ["../x", "ABSOLUTE", ".hidden", "a/b.py", "..", "../../../x.py", "sub/../x.py"]


def where_it_would_land(server: McpServer, name: str) -> Path:
    return Path(os.path.normpath(server.scripts_dir / name))


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("operation", ["save_script", "load_script", "delete_script", "run_script"])
def test_path_traversal_names_are_refused(server, operation, name):
    if name == "ABSOLUTE":
        name = "/etc/passwd" if operation in ("load_script", "run_script") else str(server.tmp / "victim.py")
    victims = []
    if operation == "delete_script":
        for target in (where_it_would_land(server, name), where_it_would_land(server, name + ".py")):
            if (server.tmp in target.parents and not target.exists()
                    and target != server.scripts_dir and target not in server.scripts_dir.parents):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("victim")
                victims.append(target)
    fields = {"filename": name}
    if operation == "save_script":
        fields["code"] = "print('escaped')"
    result = server.python(operation, **fields)
    assert is_error(result), f"{operation} accepted {name!r}: {result}"
    message = error_text(result)
    assert re.search(r"separator|hidden|\.\.|traversal|not allowed|invalid|must not", message, re.IGNORECASE), message
    assert "root:" not in message
    written = [p for p in server.tmp.rglob("*") if p.is_file() and p.name != "stderr.log"
               and "escaped" in p.read_text(errors="replace")]
    assert written == [], written
    for victim in victims:
        assert victim.exists(), f"{operation} {name!r} deleted {victim}"


# --- mcp.call: tools from Python ----------------------------------------------------------------

# The seed document's pipeline, steps 3-4, as written there (the unlock token is accepted).
SEED_PIPELINE = '''
import json
from datetime import datetime
urls = ['https://a.example/1', 'https://b.example/2', 'https://c.example/3']

mcp.call('sqlite', {
    'input': {
        'sql': 'CREATE TABLE IF NOT EXISTS urls (url TEXT, timestamp TEXT)',
        'database': 'research.db',
        'tool_unlock_token': '29e63eb5'
    }
})

for url in urls:
    mcp.call('sqlite', {
        'input': {
            'sql': 'INSERT INTO urls VALUES (?, ?)',
            'params': [url, datetime.now().isoformat()],
            'database': 'research.db',
            'tool_unlock_token': '29e63eb5'
        }
    })

result = mcp.call('sqlite', {
    'input': {
        'sql': 'SELECT COUNT(*) as count FROM urls',
        'database': 'research.db',
        'tool_unlock_token': '29e63eb5'
    }
})

count = json.loads(result['content'][0]['text'])[0]['count']
print(f"Stored {count} URLs")
'''


def test_seed_pipeline_calls_sqlite_through_mcp_call(server):
    sc = ok(server, SEED_PIPELINE)
    assert sc["stdout"] == "Stored 3 URLs\n"
    assert [c["tool"] for c in sc["mcp_calls"]] == ["sqlite"] * 5
    # A bare database name lives in the user data folder, not in the current directory.
    assert list(server.data_home.rglob("research.db")), "research.db is not under XDG_DATA_HOME"
    assert not (server.work / "research.db").exists()


def test_mcp_calls_log_keeps_the_first_20_and_counts_the_rest(server):
    sc = ok(server, "for i in range(1000):\n    mcp.call('sqlite', {'sql': 'SELECT ?', 'params': [i]})\n"
                    "try:\n    mcp.call('sqlite', {'sql': 'SELEKT'})\nexcept mcp.ToolError:\n    pass\n"
                    "mcp.call('python', {'operation': 'list_sessions'})")
    assert len(sc["mcp_calls"]) == 20
    assert all(c["tool"] == "sqlite" and not c["isError"] for c in sc["mcp_calls"])
    omitted = {t["tool"]: t for t in sc["mcp_calls_omitted"]}
    assert omitted["sqlite"]["calls"] == 981 and omitted["sqlite"]["errors"] == 1
    assert omitted["python"] == {"tool": "python", "calls": 1, "errors": 0, "total_ms": omitted["python"]["total_ms"]}
    assert omitted["sqlite"]["total_ms"] > 0
    assert [t["tool"] for t in sc["mcp_calls_omitted"]] == ["sqlite", "python"]  # in first-call order


def test_mcp_call_runs_python_in_another_session(server):
    ok(server, "secret = 'from other'", session_id="other", persistent=True)
    code = ("r = mcp.call('python', {'input': {'operation': 'execute', 'code': 'secret',"
            " 'session_id': 'other', 'persistent': True}})\nr['structuredContent']['result']")
    assert ok(server, code, session_id="caller", persistent=True)["result"] == '"\'from other\'"'


def test_mcp_call_errors_raise_tool_error(server):
    code = ("try:\n    mcp.call('no_such_tool', {})\nexcept mcp.ToolError as e:\n    caught = 'unknown'\n"
            "try:\n    mcp.call('python', {'input': {'operation': 'execute', 'code': '1/0'}})\n"
            "except mcp.ToolError as e:\n    caught += ' tool-error'\ncaught")
    assert ok(server, code)["result"] == "'unknown tool-error'"


def test_mcp_call_takes_its_arguments_by_position_or_keyword_and_refuses_wrong_ones(server):
    assert ok(server, "mcp.call(name='sqlite', params={'sql': 'SELECT 2'})['structuredContent']['rows']")["result"] == "[[2]]"
    assert ok(server, "mcp.call('sqlite', params={'input': {'sql': 'SELECT 3'}})['structuredContent']['rows']")["result"] == "[[3]]"
    assert ok(server, "import inspect\nstr(inspect.signature(mcp.call))")["result"] == "'(name, params=None)'"
    wrong = {
        "mcp.call()": "missing required argument 'name'",
        "mcp.call(1)": "name must be a str, not int",
        "mcp.call('sqlite', {}, 3)": "takes at most 2 arguments (3 given)",
        "mcp.call('sqlite', parms={})": "unexpected keyword argument 'parms'",
        "mcp.call('sqlite', name='sqlite')": "multiple values for argument 'name'",
        "mcp.call('sqlite', [1])": "params must be a dict, not list",
        "mcp.call('sqlite', {'sql': {1, 2}})": "Object of type set at params['sql'] is not JSON serializable",
    }
    for code, message in wrong.items():
        sc = structured(run(server, code))
        assert not sc["success"] and sc["error"]["type"] in ("TypeError", "ValueError"), (code, sc["error"])
        assert message in sc["error"]["message"], (code, sc["error"])
    assert ok(server, "mcp.call('sqlite', {'sql': 'SELECT 4'})['structuredContent']['rows']")["result"] == "[[4]]"


def test_mcp_call_into_its_own_session_is_refused_not_deadlocked(server):
    code = ("try:\n    mcp.call('python', {'input': {'operation': 'execute', 'code': '1',"
            " 'session_id': 'me', 'persistent': True}})\n    outcome = 'ran'\n"
            "except mcp.ToolError as e:\n    outcome = 'refused'\noutcome")
    assert ok(server, code, session_id="me", persistent=True, timeout=10)["result"] == "'refused'"


# --- tool_unlock_token ----------------------------------------------------------------------------

def test_require_unlock_token_gates_calls_with_the_readme(spawn):
    s = spawn("--require-unlock-token")
    s.initialize()
    readme = s.python("readme")  # needs no token
    assert not is_error(readme)
    readme_text = text_of(readme)
    refused = s.python(code="print('ran')")
    assert is_error(refused)
    assert "tool_unlock_token" in text_of(refused)
    assert "save_script" in text_of(refused), "the refusal should carry the readme"
    assert is_error(s.python(code="print('ran')", tool_unlock_token="wrong-token"))
    # The readme states the token: one of its hex words opens the gate.
    candidates = {w for w in re.findall(r"\b[0-9a-f]{6,16}\b", readme_text) if re.search(r"\d", w)}
    opened = [t for t in sorted(candidates)
              if not is_error(s.python(code="print('ran')", tool_unlock_token=t))]
    assert len(opened) == 1, f"tokens in the readme that work: {opened} (candidates {sorted(candidates)})"
    sc = structured(s.python(code="print('ran')", tool_unlock_token=opened[0]))
    assert sc["stdout"] == "ran\n"


# --- more things user code does -----------------------------------------------------------------

def test_output_after_the_execution_ended_never_reaches_the_protocol(server):
    marker = server.work / "late-done"
    # Self-contained thread (imports inside): this test is about the stream only.
    code = ("import threading\n"
            "def late():\n"
            "    import os, pathlib, time\n"
            "    time.sleep(0.2)\n"
            "    print('late print')\n"
            "    os.write(1, b'late fd write\\n')\n"
            f"    pathlib.Path({str(marker)!r}).touch()\n"
            "threading.Thread(target=late, daemon=True).start()\n"
            "'started'")
    assert ok(server, code)["result"] == "'started'"
    server.wait_for_file(marker)
    assert server.request("ping")["result"] == {}
    for raw in server.raw_lines:
        assert b"late" not in raw, raw


def test_a_background_thread_keeps_its_globals_after_a_non_persistent_run(server):
    # As in any Python program, a thread started by the code may use the module-level names
    # (imports, functions) after the code that started it has returned.
    marker = server.work / "bg-done"
    code = ("import pathlib, threading, time\n"
            f"target = pathlib.Path({str(marker)!r})\n"
            "def helper():\n"
            "    return 'helped'\n"
            "def background():\n"
            "    time.sleep(0.3)\n"
            "    target.write_text(helper())\n"
            "threading.Thread(target=background, daemon=True).start()\n")
    ok(server, code)
    server.wait_for_file(marker, timeout=10)
    deadline = time.monotonic() + 5
    while marker.read_text() != "helped":
        assert time.monotonic() < deadline, "the thread did not finish writing"
        time.sleep(0.01)


def test_unicode_output_round_trips(server):
    text = "héllo ✓ 🐍 日本"
    sc = ok(server, f"print({text!r})\n{text!r}")
    assert sc["stdout"] == text + "\n"
    assert sc["result"] == repr(text)


def test_invalid_utf8_and_lone_surrogates_keep_the_stream_valid(server):
    run(server, "import os\nos.write(1, b'bad \\xff\\xfe bytes\\n')")
    run(server, "import sys\nsys.stdout.write('lone \\ud800 surrogate')")
    run(server, "'\\ud800'")
    assert ok(server, "'still fine'")["result"] == "'still fine'"


def test_huge_trailing_value_is_kept_small(server):
    since = server.mark()
    result = run(server, "'x' * 10_000_000")
    line = next(r for r in server.raw_lines[since:] if b"xxxxxxxx" in r)
    assert len(line) < 1_000_000, f"a {len(line)}-byte response for one value"
    assert not is_error(result)


def test_a_failing_repr_is_reported_not_fatal(server):
    result = run(server, "class A:\n    def __repr__(self):\n        raise ValueError('bad repr')\nA()")
    assert "bad repr" in error_text(result) or structured(result)["success"] is True
    assert ok(server, "1")["result"] == "1"


def test_rebinding_sys_stdout_does_not_break_other_executions(server):
    ok(server, "import sys, io\nsys.stdout = io.StringIO()\nsys.stderr = io.StringIO()", session_id="rude",
       persistent=True)
    sc = ok(server, "import sys\nprint('visible')\nprint('err', file=sys.stderr)", session_id="polite",
            persistent=True)
    assert sc["stdout"] == "visible\n" and sc["stderr"] == "err\n"


def test_same_id_while_in_flight_is_refused(server):
    marker = server.work / "first"
    since = server.mark()
    server.send_python(code=touch_then(marker, "import time\ntime.sleep(0.5)\n'first'"), id="dup")
    server.wait_for_file(marker)
    server.send_python(code="'second'", id="dup")
    # The refusal is immediate; the first call answers after its sleep.
    server.wait_for(lambda m: is_response(m) and m["id"] == "dup" and "result" in m, since=since,
                    what="the first call's answer")
    answers = server.find(lambda m: is_response(m) and m["id"] == "dup", since=since)
    errors = [a for a in answers if "error" in a]
    results = [a for a in answers if "result" in a]
    assert len(errors) == 1 and errors[0]["error"]["code"] == -32600, answers
    assert len(results) == 1 and results[0]["result"]["structuredContent"]["result"] == "'first'"


def test_cancelling_a_queued_call_means_it_never_runs(server):
    marker = server.work / "holding"
    since = server.mark()
    first = server.send_python(code=touch_then(marker, "import time\ntime.sleep(0.5)\nran = []"),
                               session_id="queue", persistent=True)
    server.wait_for_file(marker, request_id=first)
    queued = server.send_python(code="ran.append('queued')", session_id="queue", persistent=True)
    server.notify("notifications/cancelled", {"requestId": queued})
    assert not is_error(server.wait_response(first, since=since)["result"])
    assert ok(server, "ran", session_id="queue", persistent=True)["result"] == "[]"
    server.expect_silence(lambda m: is_response(m) and m["id"] == queued, what="answer to the cancelled call")


def test_timeout_option_sets_the_default(spawn):
    s = spawn("--timeout", "1")
    s.initialize()
    start = time.monotonic()
    result = run(s, "while True:\n    pass")
    assert is_error(result) and TIMED_OUT.search(error_text(result)), result
    assert time.monotonic() - start < 4.0


def test_max_output_option_sets_the_default(spawn):
    s = spawn("--max-output", "1000")
    s.initialize()
    sc = ok(s, "print('m' * 5000)")
    assert sc["truncated"] is True and len(sc["stdout"]) < 1400


def test_tracebacks_and_getsource_show_the_cell_that_defined_the_code(server):
    # Each cell has its own <python-input-N> name: a function defined in an earlier cell keeps its
    # own source lines, in tracebacks and in inspect.getsource (linecache is imported lazily and
    # must still see them).
    ok(server, "def f():\n    return 1 / 0\n", session_id="src", persistent=True)
    sc = ok(server, "import inspect, traceback, io\nprint(inspect.getsource(f))\nbuf = io.StringIO()\n"
                    "try:\n    f()\nexcept ZeroDivisionError:\n    traceback.print_exc(file=buf)\nprint(buf.getvalue())",
            session_id="src", persistent=True)
    assert "def f():\n    return 1 / 0\n" in sc["stdout"]
    assert "return 1 / 0" in sc["stdout"].split("Traceback", 1)[1]
    result = run(server, "f()", session_id="src", persistent=True)
    trace = structured(result)["error"]["traceback"]
    assert re.search(r'File "<python-input-\d+>", line 2, in f\n    return 1 / 0', trace), trace
    assert "<python-input>\"" not in trace
