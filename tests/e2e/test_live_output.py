"""Live output over real pipes: what code prints reaches the client as notifications/progress
(`message`) while it runs, when the request carried a progressToken; batched, bounded, with
strictly increasing progress, and flushed before the result. mcp.progress shares the token.
Output of background threads after their run is kept for read_output."""

from __future__ import annotations

import time

from mcp_pipe import is_response, same_id, structured, text_of


def call_with_token(server, code, token, **fields):
    """Sends a python execute with _meta.progressToken; returns the request id."""
    args = {"operation": "execute", "code": code, **fields}
    return server.send_request("tools/call", {"name": "python", "arguments": args, "_meta": {"progressToken": token}})


def progress_for(server, token, since=0):
    return [m for m in server.find(lambda m: m.get("method") == "notifications/progress", since=since)
            if m["params"].get("progressToken") == token]


def index_of_response(server, request_id, since=0):
    with server._cond:
        for i, m in enumerate(server.messages[since:]):
            if is_response(m) and same_id(m["id"], request_id):
                return since + i
    raise AssertionError("no response")


def test_prints_arrive_before_the_result_while_the_code_runs(server):
    since = server.mark()
    # The code waits until the client has seen its first line: proof that it streams while
    # running, not after. The client answers by creating a file the code polls for.
    import tempfile, os
    flag = os.path.join(tempfile.mkdtemp(), "seen")
    code = (f"import os, time\nprint('first line', flush=True)\n"
            f"deadline = time.monotonic() + 30\n"
            f"while not os.path.exists({flag!r}) and time.monotonic() < deadline: time.sleep(0.01)\n"
            f"print('seen' if os.path.exists({flag!r}) else 'never seen')\n'done'")
    rid = call_with_token(server, code, "tok-1")
    first = server.wait_for(lambda m: m.get("method") == "notifications/progress"
                            and "first line" in m["params"].get("message", ""), since=since, what="live output")
    assert first["params"]["progressToken"] == "tok-1"
    open(flag, "w").close()
    response = server.wait_response(rid, since=since)
    result = response["result"]
    assert structured(result)["stdout"] == "first line\nseen\n"
    notes = progress_for(server, "tok-1", since)
    text = "".join(n["params"]["message"] for n in notes)
    assert "first line" in text and "seen" in text  # the last line was flushed before the result
    assert all(index_of_response(server, rid, since) > server.messages.index(n) for n in notes)
    values = [n["params"]["progress"] for n in notes]
    assert values == sorted(values) and len(set(values)) == len(values), values


def test_no_token_no_notifications(server):
    since = server.mark()
    result = server.python(code="for i in range(50): print(i)\nimport mcp\nmcp.progress(1, 2, 'half')")
    assert structured(result)["success"], text_of(result)
    assert server.find(lambda m: m.get("method") == "notifications/progress", since=since) == []


def test_rate_limited_and_bounded(server):
    since = server.mark()
    started = time.monotonic()
    # 200,000 lines (about 1.5 MB) as fast as possible for about a second.
    code = ("import time\nend = time.monotonic() + 1.0\ni = 0\n"
            "while time.monotonic() < end:\n    print('line', i, 'x' * 10); i += 1\n"
            "print('last line')")
    rid = call_with_token(server, code, 7)
    response = server.wait_response(rid, since=since, timeout=60)
    elapsed = time.monotonic() - started
    notes = progress_for(server, 7, since)
    assert notes, "no live output"
    # At most one message per 100 ms (plus the first and the final flush).
    assert len(notes) <= elapsed / 0.1 + 3, (len(notes), elapsed)
    for n in notes:
        assert len(n["params"]["message"].encode()) <= 4096 + 64
    assert any("more bytes" in n["params"]["message"] for n in notes)
    values = [n["params"]["progress"] for n in notes]
    assert all(b > a for a, b in zip(values, values[1:])), values
    # The result still has the output (cut only by max_output).
    assert "last line" in structured(response["result"])["stdout"]


def test_fd_level_output_streams_too(server):
    since = server.mark()
    rid = call_with_token(server, "import os\nos.system('echo hi from the shell')", "fd")
    server.wait_response(rid, since=since)
    text = "".join(n["params"]["message"] for n in progress_for(server, "fd", since))
    assert "hi from the shell" in text


def test_user_progress_and_output_share_one_increasing_value(server):
    since = server.mark()
    code = ("import mcp\nmcp.progress(1, 10, 'one')\nprint('between')\nimport time; time.sleep(0.3)\n"
            "mcp.progress(5, 10, 'five')\nmcp.progress(3, 10, 'three, lower')\nprint('after')")
    rid = call_with_token(server, code, "mix")
    server.wait_response(rid, since=since)
    notes = [n["params"] for n in progress_for(server, "mix", since)]
    values = [n["progress"] for n in notes]
    assert all(b > a for a, b in zip(values, values[1:])), values
    by_message = {n.get("message", "").strip(): n for n in notes}
    assert by_message["one"]["progress"] == 1 and by_message["one"]["total"] == 10
    assert by_message["five"]["progress"] == 5
    # Output repeats the last user progress (plus a tiny step) and total: the bar stays put.
    between = next(n for n in notes if "between" in n.get("message", ""))
    assert 1 < between["progress"] < 1.001 and between["total"] == 10
    # A lower user value is not dropped: its message is sent just above the last value.
    lower = by_message["three, lower"]
    assert 5 < lower["progress"] < 5.001


def test_background_thread_output_is_kept_for_read_output(server):
    code = ("import threading, time\n"
            "def later():\n    time.sleep(0.3)\n    print('from the background')\n"
            "threading.Thread(target=later).start()\n'started'")
    first = server.python(code=code, session_id="bg", persistent=True)
    assert structured(first)["success"]
    # Wait until the session lists the pending bytes.
    deadline = time.monotonic() + 20
    while True:
        sessions = structured(server.python("list_sessions"))["sessions"]
        entry = next((s for s in sessions if s["session_id"] == "bg"), None)
        if entry and entry["pending_output_bytes"] > 0:
            break
        assert time.monotonic() < deadline, sessions
        time.sleep(0.05)
    nxt = server.python(code="1", session_id="bg", persistent=True)
    assert "read_output" in structured(nxt)["note"]
    out = server.python("read_output", session_id="bg")
    assert structured(out)["stdout"] == "from the background\n"
    again = server.python("read_output", session_id="bg")
    assert structured(again)["stdout"] == "" and structured(again)["bytes"] == 0
    assert "No background output" in text_of(again)


def test_mcp_call_needs_an_execution_in_context(server):
    # A thread made with _thread (no context copied) has no execution: a clear error.
    code = ("import _thread, threading\nout = []\ndone = threading.Event()\n"
            "def f():\n"
            "    try: mcp.call('python', {'operation': 'list_sessions'})\n"
            "    except Exception as e: out.append(f'{type(e).__name__}: {e}')\n"
            "    done.set()\n"
            "_thread.start_new_thread(f, ())\ndone.wait(10)\nout[0]")
    result = server.python(code=code)
    assert "RuntimeError" in structured(result)["result"] and "execution" in structured(result)["result"]
