"""Faults in user code, end to end over real pipes (issue 7, "Hardening").

Each case makes the code do something hostile to its host, then checks that the server keeps
answering (a follow-up in the same session and in another session gets the right answer), that
the state is the one docs/python-api.md ("Faults") documents, and, at teardown (conftest), that
stdout carried only JSON-RPC. Cases already covered by test_python_tool.py are not repeated:
sys.exit/exit/quit/KeyboardInterrupt/RecursionError with the session kept, a plain os._exit, small
os.system/subprocess/os.write(1/2) output, a forked child not holding the protocol pipe, a 10 MB
print, input() after exit(), a rebound sys.stdout not leaking into another session.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from mcp_pipe import McpServer, error_text, is_error, is_response, ok, run, structured

# Under the ASan stage (tests/sanitizers/run.sh) the server is several times slower.
SLOW = 4.0 if os.environ.get("PYMCP_SANITIZED") else 1.0


def follow_up(s: McpServer, session: str | None = None) -> None:
    """The server still answers: the faulty session (when persistent) kept its variable, and
    another session works."""
    if session is not None:
        assert ok(s, "canary", session_id=session, persistent=True)["result"] == "'alive'"
    assert ok(s, "6 * 7", session_id="bystander", persistent=True)["result"] == "42"
    assert s.request("ping")["result"] == {}


def plant_canary(s: McpServer, session: str) -> None:
    ok(s, "canary = 'alive'", session_id=session, persistent=True)


def touch_then(marker: Path, body: str) -> str:
    return f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n{body}"


def pid_state(pid: int) -> str | None:
    """The process state letter from /proc (R, S, Z, ...), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.01)


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


# --- output floods ------------------------------------------------------------------------------

FLOODS = {
    "print": "import sys\nprint('HEAD', end='')\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)\n"
             "print('TAIL')",
    "fd-1": "import os\nos.write(1, b'HEAD')\nchunk = b'y' * 1_000_000\nfor _ in range(100):\n"
            "    view = memoryview(chunk)\n    while view:\n        view = view[os.write(1, view):]\n"
            "os.write(1, b'TAIL\\n')",
}


@pytest.mark.parametrize("how", sorted(FLOODS))
def test_printing_100_mb_is_cut_to_head_and_tail(server, how):
    plant_canary(server, "flood")
    since = server.mark()
    start = time.monotonic()
    sc = ok(server, FLOODS[how], session_id="flood", persistent=True, timeout=50)
    assert time.monotonic() - start < 30 * SLOW
    assert sc["truncated"] is True
    out = sc["stdout"]
    assert out.startswith("HEAD") and out.rstrip().endswith("TAIL"), (out[:20], out[-20:])
    assert len(out) < 70_000, f"kept {len(out)} characters of 100 MB"
    # No response line carries the flood.
    assert max(len(r) for r in server.raw_lines[since:]) < 1_000_000
    follow_up(server, "flood")


def test_fd_level_writes_without_newlines_and_from_c_stdio_are_captured(server):
    plant_canary(server, "fd")
    code = ("import ctypes, os\n"
            "os.write(1, b'no-newline-1')\n"
            "os.write(2, b'no-newline-2')\n"
            "libc = ctypes.CDLL(None)\n"
            "libc.printf(b'from-c-printf\\n')\n"
            "libc.fflush(None)\n"
            "os.write(1, b'\\xff\\xfe invalid utf-8\\n')\n")
    sc = ok(server, code, session_id="fd", persistent=True)
    assert "no-newline-1" in sc["stdout"] and "from-c-printf" in sc["stdout"], sc
    assert "invalid utf-8" in sc["stdout"]
    assert "no-newline-2" in sc["stderr"], sc
    follow_up(server, "fd")


def test_closed_or_redirected_standard_fds_last_only_until_the_execution_ends(server, tmp_path):
    plant_canary(server, "fds")
    ok(server, "import os\nos.close(0)\nos.close(1)\nos.close(2)", session_id="fds", persistent=True)
    # Next execution: fd 1 and fd 2 are the capture pipes again, fd 0 reads /dev/null.
    sc = ok(server, "import os, subprocess\nos.system('echo via-system; echo err-system >&2')\n"
                    "subprocess.run(['cat'], timeout=10).returncode", session_id="fds", persistent=True)
    assert "via-system" in sc["stdout"] and "err-system" in sc["stderr"], sc
    assert sc["result"] == "0", "cat should read an empty /dev/null on fd 0"

    redirect = tmp_path / "redirected"
    sc = ok(server, f"import os\nfd = os.open({str(redirect)!r}, os.O_WRONLY | os.O_CREAT)\nos.dup2(fd, 1)\n"
                    "os.write(1, b'into-the-file\\n')\nos.close(fd)", session_id="fds", persistent=True)
    assert "into-the-file" not in sc["stdout"]
    sc = ok(server, "import os\nos.write(1, b'back-in-the-result\\n')\nos.system('echo system-too')",
            session_id="other-fds", persistent=True)
    assert "back-in-the-result" in sc["stdout"] and "system-too" in sc["stdout"], sc
    assert redirect.read_text() == "into-the-file\n"
    follow_up(server, "fds")


# --- processes and threads ----------------------------------------------------------------------

def test_children_that_outlive_the_call_do_not_hold_the_server(server):
    plant_canary(server, "kids")
    # A chatty child that outlives the call, and one started in its own session (detached).
    code = ("import subprocess\n"
            "chatty = subprocess.Popen(['sh', '-c', 'while true; do echo tick; echo tock >&2; sleep 0.02; done'])\n"
            "quiet = subprocess.Popen(['sleep', '60'], start_new_session=True)\n"
            "(chatty.pid, quiet.pid)")
    start = time.monotonic()
    sc = ok(server, code, session_id="kids", persistent=True)
    assert time.monotonic() - start < 5 * SLOW, "the call waited for its children"
    pids = [int(p) for p in sc["result"].strip("()").split(",")]
    try:
        assert all(pid_state(p) not in (None, "Z") for p in pids)
        # The children keep writing: the protocol stays clean (teardown), calls go on.
        for _ in range(3):
            follow_up(server, "kids")
        # Shutdown does not wait for them, and the protocol pipe closes although they live on.
        server.close_stdin()
        started = time.monotonic()
        assert server.wait_exit(timeout=10) == 0
        assert time.monotonic() - started < 2.0 * SLOW
        assert server.stdout_closed(timeout=2), "a child kept the protocol pipe open"
        # Documented: the server does not kill what the code started.
        assert pid_state(pids[1]) not in (None, "Z"), "the detached child was killed"
    finally:
        for p in pids:
            kill_quietly(p)


def test_a_forked_child_that_does_not_exit_ends_with_the_cell(server):
    plant_canary(server, "fork")
    marker = server.work / "child-pid"
    # The child runs the rest of the cell too (it never calls os._exit) and falls off its end.
    code = (f"import os, pathlib\npid = os.fork()\n"
            f"if pid == 0:\n    pathlib.Path({str(marker)!r}).write_text(str(os.getpid()))\n"
            "pid")
    since = server.mark()
    call = server.send_python(code=code, session_id="fork", persistent=True)
    result = server.wait_response(call, since=since)["result"]
    assert not is_error(result), result
    parent_view = int(structured(result)["result"])
    server.wait_for_file(marker)
    wait_until(lambda: marker.read_text() != "", 5, "the child wrote its pid")
    child = int(marker.read_text())
    assert child == parent_view
    try:
        # The child exits (a zombie until the server reaps it, or gone) instead of living on as a
        # headless copy of the server.
        wait_until(lambda: pid_state(child) in (None, "Z"), 10, "the forked child did not exit")
        follow_up(server, "fork")
        # Exactly one answer: the child never answered the parent's request.
        assert len(server.responses_for(call)) == 1, server.responses_for(call)
    finally:
        kill_quietly(child)


def test_a_forked_child_can_exit_for_real_with_its_status(server):
    plant_canary(server, "fork2")
    code = ("import os\npid = os.fork()\nif pid == 0:\n    os._exit(7)\n"
            "_, status = os.waitpid(pid, 0)\nos.waitstatus_to_exitcode(status)")
    assert ok(server, code, session_id="fork2", persistent=True)["result"] == "7"
    follow_up(server, "fork2")


@pytest.mark.parametrize("how", ["stdin-eof", "SIGTERM"])
def test_non_daemon_threads_do_not_delay_shutdown(server, how):
    plant_canary(server, "threads")
    code = ("import threading, time\n"
            "def spin():\n    while True:\n        pass\n"
            "def block():\n    threading.Event().wait()\n"
            "def nap():\n    time.sleep(3600)\n"
            "started = [threading.Thread(target=f, daemon=False) for f in (spin, block, nap)]\n"
            "for t in started:\n    t.start()\n"
            "sum(t.is_alive() for t in started)")
    assert ok(server, code, session_id="threads", persistent=True)["result"] == "3"
    follow_up(server, "threads")
    start = time.monotonic()
    if how == "stdin-eof":
        server.close_stdin()
    else:
        server.send_signal(signal.SIGTERM)
    assert server.wait_exit(timeout=10) == 0
    assert time.monotonic() - start < 2.0 * SLOW, f"shutdown took {time.monotonic() - start:.2f} s"
    assert server.stdout_closed(timeout=2)


# --- the interpreter's own machinery ------------------------------------------------------------

DEL_RAISES = '''
class Grumpy:
    def __init__(self, how):
        self.how = how
    def __del__(self):
        import os, sys
        if self.how == "raise":
            raise ValueError("raised in __del__")
        if self.how == "exit":
            sys.exit(3)
        os._exit(4)
'''


def test_exceptions_in_del_are_reported_not_fatal(server):
    plant_canary(server, "del")
    ok(server, DEL_RAISES, session_id="del", persistent=True)
    sc = ok(server, "g = Grumpy('raise')\ndel g\n'after'", session_id="del", persistent=True)
    assert sc["result"] == "'after'"
    assert "Exception ignored" in sc["stderr"] and "raised in __del__" in sc["stderr"], sc
    for how in ("exit", "_exit"):
        sc = ok(server, f"g = Grumpy({how!r})\ndel g\n'after {how}'", session_id="del", persistent=True)
        assert sc["result"] == f"'after {how}'"
    # Objects whose __del__ misbehaves, destroyed outside any execution (clear_session).
    ok(server, DEL_RAISES, session_id="doomed", persistent=True)
    ok(server, "keep = [Grumpy('raise'), Grumpy('exit'), Grumpy('_exit')]", session_id="doomed",
       persistent=True)
    assert server.python("clear_session", session_id="doomed").get("isError") is not True
    assert server.proc.poll() is None
    follow_up(server, "del")


@pytest.mark.parametrize("replacement", [
    "None",
    "object()",
    "type('Broken', (), {'write': lambda self, s: 1 / 0, 'flush': lambda self: 1 / 0})()",
    "open('/dev/null', 'w')",
], ids=["None", "no-write", "write-raises", "devnull"])
def test_replacing_sys_stdout_and_stderr_lasts_one_execution(server, replacement):
    plant_canary(server, "rude")
    run(server, f"import sys\nsys.stdout = {replacement}\nsys.stderr = {replacement}\n"
                "sys.__stdout__ = sys.stdout\nsys.__stderr__ = sys.stderr\nprint('lost?')",
        session_id="rude", persistent=True)
    sc = ok(server, "import sys\nprint('visible')\nprint('err', file=sys.stderr)\n1 / 1",
            session_id="rude", persistent=True)
    assert sc["stdout"] == "visible\n" and sc["stderr"] == "err\n", sc
    # A traceback is still reported after the streams were replaced.
    run(server, f"import sys\nsys.stderr = {replacement}", session_id="rude", persistent=True)
    result = run(server, "1 / 0", session_id="rude", persistent=True)
    assert is_error(result) and structured(result)["error"]["type"] == "ZeroDivisionError"
    follow_up(server, "rude")


def test_closing_sys_stdin_and_fd_0(server):
    plant_canary(server, "stdin")
    ok(server, "import os, sys\nsys.stdin.close()\nsys.__stdin__.close()\nos.close(0)",
       session_id="stdin", persistent=True)
    for code in ("input('name? ')", "import sys\nsys.stdin.read()", "import sys\nsys.stdin.readline()"):
        result = run(server, code, session_id="stdin", persistent=True)
        assert is_error(result), result
        assert structured(result)["error"]["type"] == "EOFError"
        assert "protocol" in error_text(result).lower()
    sc = ok(server, "import subprocess\nsubprocess.run(['cat'], capture_output=True, timeout=10).stdout",
            session_id="stdin", persistent=True)
    assert sc["result"] == "b''"
    follow_up(server, "stdin")


# --- recursion ----------------------------------------------------------------------------------

DEEP = "deep = []\nfor _ in range(200_000):\n    deep = [deep]\n"


@pytest.mark.parametrize("operation", [
    "def r(n):\n    return r(n + 1)\nr(0)",
    DEEP + "repr(deep)",
    DEEP + "import json\njson.dumps(deep)",
    DEEP + "import pickle\npickle.dumps(deep)",
    DEEP + "deep == [deep]",
    "eval('(' * 200_000 + ')' * 200_000)",
], ids=["python", "repr", "json", "pickle", "compare", "parser"])
def test_deep_recursion_is_an_error_not_a_crash(server, operation):
    plant_canary(server, "deep")
    result = run(server, operation, session_id="deep", persistent=True)
    assert is_error(result), result
    assert structured(result)["error"]["type"] in ("RecursionError", "MemoryError", "SyntaxError"), result
    follow_up(server, "deep")


def test_a_raised_recursion_limit_allows_deep_python_recursion(server):
    code = ("import sys\nsys.setrecursionlimit(20_000)\n"
            "def depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\ndepth(15_000)")
    assert ok(server, code)["result"] == "15000"
    follow_up(server)


def test_a_huge_recursion_limit_does_not_let_c_recursion_crash_the_server(server):
    result = run(server, "import sys\nsys.setrecursionlimit(1_000_000)\n" + DEEP + "repr(deep)")
    assert is_error(result)
    follow_up(server)


# --- memory -------------------------------------------------------------------------------------

@pytest.mark.skipif(bool(os.environ.get("PYMCP_SANITIZED")), reason="RLIMIT_AS cannot work under ASan")
@pytest.mark.parametrize("hog", [
    "x = bytearray(3 * 1024 ** 3)",
    "hoard = []\nwhile True:\n    hoard.append(bytearray(8 * 1024 ** 2))",
    "import numpy\nx = numpy.ones(10 ** 9)",
], ids=["one-block", "growing", "numpy"])
def test_allocating_beyond_memory_limit_is_a_memory_error(spawn, hog):
    s = spawn("--memory-limit", "1024")
    s.initialize()
    plant_canary(s, "hog")
    if "numpy" in hog:
        ok(s, "import numpy", session_id="hog", persistent=True)
    result = run(s, hog, session_id="hog", persistent=True, timeout=40)
    assert s.proc.poll() is None, "the server was killed"
    assert is_error(result), result
    assert structured(result)["error"]["type"] in ("MemoryError", "numpy.core._exceptions._ArrayMemoryError",
                                                   "_ArrayMemoryError"), result
    # The session's namespace keeps what was assigned; the failed allocation itself is freed.
    run(s, "hoard = x = None", session_id="hog", persistent=True)
    follow_up(s, "hog")
    assert ok(s, "len(bytearray(100 * 1024 ** 2))", session_id="hog", persistent=True)["result"] == "104857600"


# --- os._exit -----------------------------------------------------------------------------------

def test_os_exit_keeps_the_session_and_works_from_threads(server):
    plant_canary(server, "exiting")
    result = run(server, "import os\nbefore = 'set'\nos._exit(0)\nafter = 'never'", session_id="exiting",
                 persistent=True)
    assert is_error(result) and structured(result)["error"]["type"] == "SystemExit"
    assert "os._exit" in error_text(result)
    assert ok(server, "before, 'after' in globals()", session_id="exiting", persistent=True)["result"] == \
        "('set', False)"
    # From a thread the code started: the thread ends, the server does not.
    marker = server.work / "thread-exited"
    code = ("import os, pathlib, threading\n"
            "def leave():\n"
            "    try:\n        os._exit(1)\n"
            f"    finally:\n        pathlib.Path({str(marker)!r}).touch()\n"
            "t = threading.Thread(target=leave)\nt.start()\nt.join()\n'joined'")
    assert ok(server, code, session_id="exiting", persistent=True)["result"] == "'joined'"
    assert marker.exists()
    assert server.proc.poll() is None
    follow_up(server, "exiting")


# --- signal handlers ----------------------------------------------------------------------------

INSTALL_HANDLERS = ("import signal\n"
                    "signal.signal(signal.SIGTERM, lambda *a: print('mine'))\n"
                    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                    "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
                    "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n")


def test_signal_handlers_from_a_worker_thread_are_refused(server):
    plant_canary(server, "sig")
    result = run(server, INSTALL_HANDLERS, session_id="sig", persistent=True)
    assert is_error(result) and structured(result)["error"]["type"] == "ValueError", result
    follow_up(server, "sig")


def test_signal_handlers_on_the_main_thread_do_not_take_over_shutdown(server):
    plant_canary(server, "sig")
    result = run(server, INSTALL_HANDLERS + "'installed'", session_id="sig", persistent=True, run_on_main_thread=True)
    sc = structured(result)
    # Refused outright: the runtime keeps the server's signals (and the engine would undo a
    # handler installed some other way when the execution ends).
    assert is_error(result), result
    assert sc["error"]["type"] == "ValueError" and "belongs to the python-mcp server" in sc["error"]["message"], result
    # Other signals are the code's to handle.
    assert ok(server, "import signal\nsignal.signal(signal.SIGUSR1, signal.SIG_IGN)\n"
                      "signal.signal(signal.SIGUSR1, signal.SIG_DFL) == signal.SIG_IGN",
              session_id="sig", persistent=True, run_on_main_thread=True)["result"] == "True"
    # Interrupts do not use signals: timeout and cancellation still stop code on both kinds of thread.
    for main in (True, False):
        start = time.monotonic()
        result = run(server, "while True:\n    pass", session_id="sig", persistent=True, timeout=1,
                     run_on_main_thread=main)
        assert is_error(result) and structured(result)["error"]["type"] == "TimeoutError", result
        assert time.monotonic() - start < 4 * SLOW
    marker = server.work / "spinning"
    call = server.send_python(code=touch_then(marker, "while True:\n    pass"), session_id="sig", persistent=True,
                              run_on_main_thread=True)
    server.wait_for_file(marker, request_id=call)
    server.notify("notifications/cancelled", {"requestId": call})
    follow_up(server, "sig")
    # And SIGTERM still ends the server, promptly and cleanly.
    start = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit(timeout=10) == 0
    assert time.monotonic() - start < 2.0 * SLOW
    assert not server.find(lambda m: is_response(m) and m["id"] == call)


def test_sigterm_while_main_thread_code_holds_a_handler_still_shuts_down(server):
    marker = server.work / "holding"
    tried = "try:\n" + "".join("    " + line + "\n" for line in INSTALL_HANDLERS.splitlines()) + \
            "except ValueError:\n    pass\n"
    call = server.send_python(code=tried + touch_then(marker, "import time\ntime.sleep(30)"),
                              run_on_main_thread=True)
    server.wait_for_file(marker, request_id=call)
    start = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(timeout=3)
    except Exception:
        code = None
    assert code == 0 and time.monotonic() - start < 2.0 * SLOW


# --- output nobody claims, and a client that never reads stderr -----------------------------------

def start_with_unread_stderr(tmp_path: Path):
    """A server whose stderr is a pipe nobody reads (some clients never drain it)."""
    import json
    import subprocess
    from mcp_pipe import LATEST_VERSION, binary
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    proc = subprocess.Popen([binary()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=str(tmp_path), start_new_session=True)
    lines = []

    def exchange(message: dict, timeout: float = 20) -> dict:
        import select
        assert proc.stdin and proc.stdout
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        assert ready, f"no answer to {message.get('method')} within {timeout} s: the server stalled"
        line = proc.stdout.readline()
        lines.append(line)
        answer = json.loads(line)
        assert answer.get("id") == message["id"], answer
        return answer

    exchange({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": LATEST_VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    return proc, exchange, lines


FLOOD_AFTER_THE_CALL = ("import os, pathlib, threading, time\n"
                        "def flood():\n"
                        "    for _ in range(100):\n"
                        "        os.write(1, b'z' * 100_000)\n"
                        "        os.write(2, b'e' * 10_000)\n"
                        "    pathlib.Path({marker!r}).touch()\n"
                        "threading.Thread(target=lambda: (time.sleep(0.2), flood()), daemon=True).start()\n"
                        "'started'")


def flood_unclaimed_output(tmp_path: Path, exchange) -> None:
    marker = tmp_path / "flooded"
    code = FLOOD_AFTER_THE_CALL.format(marker=str(marker))
    answer = exchange({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                       "params": {"name": "python", "arguments": {"code": code}}})
    assert answer["result"]["structuredContent"]["result"] == "'started'"
    wait_until(marker.exists, 20, "the background thread did not finish writing")


def test_unclaimed_output_never_stalls_a_server_whose_stderr_is_not_read(tmp_path):
    proc, exchange, lines = start_with_unread_stderr(tmp_path)
    try:
        # 11 MB written to fd 1/2 while no execution runs go to the log (stderr), which is full.
        flood_unclaimed_output(tmp_path, exchange)
        for i in range(3):
            answer = exchange({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                               "params": {"name": "python", "arguments": {"code": f"{i} + 1", "session_id": f"s{i}",
                                                                          "persistent": True}}})
            assert answer["result"]["structuredContent"]["result"] == str(i + 1)
        assert exchange({"jsonrpc": "2.0", "id": 20, "method": "ping"})["result"] == {}
        assert all(line.startswith(b"{") for line in lines)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_shutdown_is_prompt_when_stderr_is_full_and_not_read(tmp_path):
    proc, exchange, _ = start_with_unread_stderr(tmp_path)
    try:
        flood_unclaimed_output(tmp_path, exchange)
        assert proc.stdin
        proc.stdin.close()
        start = time.monotonic()
        import subprocess
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0 and time.monotonic() - start < 2.0 * SLOW, f"exit code {code}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_posix_exit_does_not_end_the_server(server):
    result = run(server, "import posix\nposix._exit(3)")
    assert is_error(result) and structured(result)["error"]["type"] == "SystemExit"
    follow_up(server)
