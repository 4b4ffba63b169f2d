"""The 2025-11-25 tasks utility on the real binary (issue 13): what the SDK interop test does not
reach. Any python operation may run as a task; a call that cannot start is a failed task (the
client asked for a CreateTaskResult); the status notification; ttl bounds; plain jobs are not
tasks; and the task's job shows in list_jobs under the same id."""

from __future__ import annotations

from mcp_pipe import structured

RELATED = "io.modelcontextprotocol/related-task"


def task_call(server, arguments: dict, task: dict | None = None) -> dict:
    r = server.request("tools/call", {"name": "python", "arguments": arguments, "task": task or {}})
    assert "result" in r and "task" in r["result"], r
    return r["result"]["task"]


def test_an_execute_task_reports_its_status_and_result(server):
    since = server.mark()
    task = task_call(server, {"code": "print('hi')\n40 + 2"}, {"ttl": 30000})
    assert task["status"] == "working" and task["ttl"] == 30000 and task["pollInterval"] == 1000
    r = server.request("tasks/result", {"taskId": task["taskId"]})["result"]
    assert r["structuredContent"]["result"] == "42" and r["structuredContent"]["stdout"] == "hi\n"
    assert r["_meta"][RELATED] == {"taskId": task["taskId"]}
    note = server.wait_for(lambda m: m.get("method") == "notifications/tasks/status", since=since,
                           what="notifications/tasks/status")
    assert note["params"]["taskId"] == task["taskId"] and note["params"]["status"] == "completed"
    assert RELATED not in note["params"].get("_meta", {})
    got = server.request("tasks/get", {"taskId": task["taskId"]})["result"]
    assert got["status"] == "completed" and "pollInterval" not in got
    jobs = structured(server.call("python", {"operation": "list_jobs"})["result"])["jobs"]
    assert [j["state"] for j in jobs if j["job_id"] == task["taskId"]] == ["succeeded"]


def test_any_operation_runs_as_a_task(server):
    task = task_call(server, {"operation": "list_sessions"})
    r = server.request("tasks/result", {"taskId": task["taskId"]})["result"]
    assert r["isError"] is False and "sessions" in r["structuredContent"], r
    assert server.request("tasks/get", {"taskId": task["taskId"]})["result"]["status"] == "completed"


def test_a_call_that_cannot_start_is_a_failed_task(server):
    task = task_call(server, {"operation": "execute"})  # no code
    assert task["status"] == "failed" and "'code' is required" in task["statusMessage"], task
    r = server.request("tasks/result", {"taskId": task["taskId"]})["result"]
    assert r["isError"] is True and "'code' is required" in r["content"][0]["text"]
    # An error in the code fails the task too (the spec: isError results are failed tasks).
    t2 = task_call(server, {"code": "1 / 0"})
    r2 = server.request("tasks/result", {"taskId": t2["taskId"]})["result"]
    assert r2["isError"] is True and r2["structuredContent"]["error"]["type"] == "ZeroDivisionError"
    got = server.request("tasks/get", {"taskId": t2["taskId"]})["result"]
    assert got["status"] == "failed" and "ZeroDivisionError" in got["statusMessage"], got


def test_ttl_is_bounded_and_defaulted(server):
    assert task_call(server, {"code": "1"})["ttl"] == 3_600_000                       # none asked: 1 h
    assert task_call(server, {"code": "1"}, {"ttl": 10})["ttl"] == 1000              # at least 1 s
    assert task_call(server, {"code": "1"}, {"ttl": 10 ** 12})["ttl"] == 86_400_000  # at most 24 h


def test_plain_jobs_are_not_tasks(server):
    job = structured(server.python("start_job", code="1"))["job_id"]
    r = server.request("tasks/get", {"taskId": job})
    assert r["error"]["code"] == -32602 and "not a task" in r["error"]["message"], r
    listed = server.request("tasks/list", {})["result"]["tasks"]
    assert job not in [t["taskId"] for t in listed]


def test_a_legacy_client_may_send_params_task_and_gets_a_plain_result(spawn):
    s = spawn()
    init = s.initialize("2025-06-18")
    assert "tasks" not in init["capabilities"]
    r = s.request("tools/call", {"name": "python", "arguments": {"code": "3"}, "task": {}})["result"]
    assert "task" not in r and structured(r)["result"] == "3"
