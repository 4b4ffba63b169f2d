"""Jobs over real pipes (issue 13): code still running at the call's wait budget goes on as a job;
the call answers with a handle, and job_status / wait_job / cancel_job / list_jobs follow it.
Calls that end within the budget answer exactly as before."""

from __future__ import annotations

import time

from mcp_pipe import DEFAULT_TIMEOUT, is_error, structured, text_of, wait_until

LOOP_3S = "import time\nfor i in range(30):\n    print('tick', i, flush=True)\n    time.sleep(0.1)\n'done'"
FOREVER = "import time\nprint('looping', flush=True)\nwhile True:\n    time.sleep(0.01)"


def py(server, operation, timeout=DEFAULT_TIMEOUT, **fields):
    """The python tool with any fields (including `wait`, which McpServer.python takes for itself)."""
    response = server.call("python", {"input": {"operation": operation, **fields}}, timeout=timeout)
    assert "result" in response, f"{operation}: JSON-RPC error {response}"
    return response["result"]




def follow_to_end(server, job_id, timeout=DEFAULT_TIMEOUT * 2):
    deadline = time.monotonic() + timeout
    while True:
        r = py(server, "wait_job", job_id=job_id, wait=5)
        if structured(r)["state"] != "running":
            return r
        assert time.monotonic() < deadline, f"job {job_id} did not end"


def test_execute_past_its_wait_returns_a_handle_and_the_code_goes_on(server):
    r = py(server, "execute", code=LOOP_3S, wait=1)
    assert not is_error(r)
    sc = structured(r)
    assert sc["state"] == "running" and sc["job_id"].startswith("job-")
    assert sc["session_id"] == "default" and sc["elapsed"] >= 1
    assert "wait_job" in text_of(r) and "wait_job" in sc["note"]
    assert "success" not in sc  # a handle, not a result
    # job_status: the output grows while it runs, each answer from the previous next_offset.
    first = structured(py(server, "job_status", job_id=sc["job_id"]))
    grew = wait_until(lambda: structured(py(server, "job_status", job_id=sc["job_id"]))["next_offset"] >
                      first["next_offset"] or None, "output growing")
    assert grew
    done = follow_to_end(server, sc["job_id"])
    dsc = structured(done)
    assert dsc["state"] == "succeeded" and dsc["success"] is True and dsc["result"] == "'done'"
    assert "tick 29" in dsc["stdout"] and dsc["job_id"] == sc["job_id"]
    # A finished job keeps answering with its result.
    again = py(server, "job_status", job_id=sc["job_id"])
    assert structured(again)["stdout"] == dsc["stdout"] and text_of(again).startswith(f"[job {sc['job_id']}: succeeded")


def test_job_status_output_since_offset_while_running(server):
    sc = structured(py(server, "start_job", code=LOOP_3S))
    assert sc["state"] == "running"
    a = wait_until(lambda: (lambda s: s if s["next_offset"] > 0 else None)(
        structured(py(server, "job_status", job_id=sc["job_id"]))), "first output")
    b = structured(py(server, "job_status", job_id=sc["job_id"], since_offset=a["next_offset"]))
    assert b["next_offset"] >= a["next_offset"]
    if b["state"] == "running":
        assert not b["output"].startswith("tick 0\n")
    follow_to_end(server, sc["job_id"])


def test_quick_calls_answer_as_before(server):
    r = py(server, "execute", code="print('hi')\n6*7")
    sc = structured(r)
    assert sc["success"] is True and sc["result"] == "42" and sc["stdout"] == "hi\n"
    for key in ("job_id", "state", "next_offset", "elapsed"):
        assert key not in sc
    assert py(server, "list_jobs")["structuredContent"]["count"] == 0


def test_cancel_job_stops_a_while_true(server):
    sc = structured(py(server, "start_job", code=FOREVER, timeout=600))
    wait_until(lambda: "looping" in structured(py(server, "job_status", job_id=sc["job_id"]))["output"], "running")
    c = structured(py(server, "cancel_job", job_id=sc["job_id"]))
    assert c["cancel_sent"] is True and c["state"] == "cancelled"
    # The session is free: a call to it runs now.
    assert structured(py(server, "execute", code="'free'"))["result"] == "'free'"


def test_list_jobs_and_unknown_job(server):
    a = structured(py(server, "start_job", code="1", session_id="s1"))
    b = structured(py(server, "start_job", code=FOREVER, session_id="s2", persistent=True))
    jobs = structured(py(server, "list_jobs"))["jobs"]
    assert [j["job_id"] for j in jobs] == [a["job_id"], b["job_id"]]
    assert jobs[1]["session_id"] == "s2"
    wait_until(lambda: structured(py(server, "job_status", job_id=a["job_id"]))["state"] == "succeeded", "a ends")
    py(server, "cancel_job", job_id=b["job_id"])
    r = py(server, "job_status", job_id="job-999")
    assert is_error(r) and "no job" in text_of(r) and "list_jobs" in text_of(r)


def test_clear_session_cancels_its_jobs(server):
    sc = structured(py(server, "start_job", code="x = 1\n" + FOREVER, session_id="work", persistent=True, timeout=600))
    wait_until(lambda: "looping" in structured(py(server, "job_status", job_id=sc["job_id"]))["output"], "running")
    cleared = structured(py(server, "clear_session", session_id="work"))
    assert cleared["jobs"] == [sc["job_id"]]
    done = wait_until(lambda: (lambda s: s if s["state"] != "running" else None)(
        structured(py(server, "job_status", job_id=sc["job_id"]))), "job cancelled")
    assert done["state"] == "cancelled"


def test_a_call_to_a_session_running_a_job_queues_behind_it(server, tmp_path):
    flag = tmp_path / "go"
    job_code = (f"import os, time\ndeadline = time.monotonic() + 60\n"
                f"while not os.path.exists({str(flag)!r}) and time.monotonic() < deadline: time.sleep(0.01)\nv = 5")
    sc = structured(py(server, "start_job", code=job_code, session_id="q", persistent=True))
    since = server.mark()
    rid = server.send_python("execute", code="v", session_id="q", persistent=True)
    # execute is queued on the reader thread: the answer to a later ping proves it was taken
    # while the job still waited for the flag.
    server.request("ping")
    assert not server.responses_for(rid)
    flag.write_text("")
    rs = structured(server.wait_response(rid, since=since)["result"])
    assert rs["result"] == "5"  # ran after the job, in its session
    assert sc["job_id"] in rs.get("note", "")


def test_wait_option_sets_the_default_budget(spawn):
    s = spawn("--wait", "0.5")
    s.initialize()
    r = py(s, "execute", code="import time\ntime.sleep(3)\n'late'")
    sc = structured(r)
    assert sc["state"] == "running"
    assert structured(follow_to_end(s, sc["job_id"]))["result"] == "'late'"


def test_bad_wait_is_refused(server):
    r = py(server, "execute", code="1", wait=-1)
    assert is_error(r) and "'wait' must be a number of seconds" in text_of(r)


def test_no_progress_for_a_request_answered_with_a_handle(server):
    """Live output and mcp.progress stop when the handle answers the request: progress for an
    answered request is not allowed. What is printed after goes to the job's output."""
    code = ("import time\nfor i in range(20):\n    print('line', i, flush=True)\n    mcp.progress(i, 20)\n"
            "    time.sleep(0.1)\n'end'")
    since = server.mark()
    rid = server.send_request("tools/call", {"name": "python", "arguments": {"operation": "execute", "code": code,
                                                                             "wait": 0.5},
                                             "_meta": {"progressToken": "tok-job"}})
    handle = structured(server.wait_response(rid, since=since)["result"])
    assert handle["state"] == "running"
    with server._cond:
        answered_at = next(i for i, m in enumerate(server.messages) if isinstance(m, dict) and "result" in m
                           and m.get("id") == rid)
    done = structured(follow_to_end(server, handle["job_id"]))
    assert done["result"] == "'end'" and "line 19" in done["stdout"]
    late = [m for m in server.find(lambda m: m.get("method") == "notifications/progress", since=answered_at)
            if m["params"].get("progressToken") == "tok-job"]
    assert late == []
    early = [m for m in server.find(lambda m: m.get("method") == "notifications/progress", since=since)
             if m["params"].get("progressToken") == "tok-job"]
    assert early, "progress was sent while the request was open"
