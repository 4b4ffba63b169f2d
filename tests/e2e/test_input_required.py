"""Asking the client in the 2026-07-28 era (issue 18): a tools/call whose code asks is answered
with an input_required result (inputRequests + requestState); the execution stays parked and
the client's retry, carrying inputResponses and the state, resumes it. This harness is the
modern-era client, over real pipes."""

from __future__ import annotations

import time

from mcp_pipe import structured

MODERN = "2026-07-28"
ELICIT = {"elicitation": {}}
BOTH = {"elicitation": {}, "sampling": {}}


def meta(capabilities=None, **extra):
    m = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities if capabilities is not None else BOTH,
        "io.modelcontextprotocol/clientInfo": {"name": "pymcp-e2e", "version": "1"},
    }
    m.update(extra)
    return m


def python_args(code, **fields):
    return {"input": {"operation": "execute", "code": code, **fields}}


def call(s, name, arguments, *, capabilities=None, timeout=60, **params):
    body = {"name": name, "arguments": arguments, "_meta": meta(capabilities), **params}
    return s.request("tools/call", body, timeout=timeout)


def only_request(result):
    """The one (key, request) of an input_required result."""
    assert result["resultType"] == "input_required", result
    assert isinstance(result["requestState"], str) and result["requestState"]
    (key, request), = result["inputRequests"].items()
    return key, request


def test_input_is_asked_through_input_required_and_the_retry_resumes_the_same_execution(spawn):
    s = spawn()
    code = "runs = globals().get('runs', 0) + 1\nname = input('Your name? ')\nprint('hello', name, runs)"
    args = python_args(code, session_id="ir-input", persistent=True)
    first = call(s, "python", args)["result"]
    key, request = only_request(first)
    assert request["method"] == "elicitation/create"
    assert request["params"]["message"] == "Your name?"
    assert request["params"]["requestedSchema"]["properties"]["answer"]["type"] == "string"
    assert first["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "python-mcp"
    # The code is parked inside input(): its session is busy, not finished.
    sessions = call(s, "python", {"input": {"operation": "list_sessions"}})["result"]
    (mine,) = [x for x in structured(sessions)["sessions"] if x["session_id"] == "ir-input"]
    assert mine["busy"] is True
    final = call(s, "python", args, requestState=first["requestState"],
                 inputResponses={key: {"action": "accept", "content": {"answer": "Ada"}}})["result"]
    assert final["resultType"] == "complete"
    sc = structured(final)
    assert sc["success"] is True, sc
    # Ran once: the retry resumed the parked execution instead of running the code again.
    assert sc["stdout"] == "Your name? Ada\nhello Ada 1\n"


def test_decline_raises_in_the_code(spawn):
    s = spawn()
    code = "try:\n    mcp.ask('Continue?')\nexcept mcp.AskDeclined as e:\n    print('declined')"
    args = python_args(code)
    key, _ = only_request(first := call(s, "python", args)["result"])
    final = call(s, "python", args, requestState=first["requestState"],
                 inputResponses={key: {"action": "decline"}})["result"]
    assert structured(final)["stdout"] == "declined\n"


def test_two_questions_in_one_call_take_two_rounds_and_each_state_is_single_use(spawn):
    s = spawn()
    code = ("form = mcp.ask('Details', {'type': 'object', 'properties': {'n': {'type': 'integer'}}})\n"
            "reply = mcp.sample('Say hi', max_tokens=10)\n"
            "print(form['n'], reply, reply.model)")
    args = python_args(code)
    first = call(s, "python", args)["result"]
    key1, req1 = only_request(first)
    assert req1["method"] == "elicitation/create"
    assert req1["params"]["requestedSchema"]["properties"]["n"]["type"] == "integer"
    second = call(s, "python", args, requestState=first["requestState"],
                  inputResponses={key1: {"action": "accept", "content": {"n": 7}}})["result"]
    key2, req2 = only_request(second)
    assert req2["method"] == "sampling/createMessage"
    assert req2["params"]["maxTokens"] == 10
    assert key2 != key1 and second["requestState"] != first["requestState"]
    # The first state was used: presenting it again is refused.
    replay = call(s, "python", args, requestState=first["requestState"],
                  inputResponses={key1: {"action": "accept", "content": {"n": 7}}})
    assert replay["error"]["code"] == -32602
    sample = {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m1", "stopReason": "endTurn"}
    final = call(s, "python", args, requestState=second["requestState"], inputResponses={key2: sample})["result"]
    assert final["resultType"] == "complete"
    assert structured(final)["stdout"] == "7 hi m1\n"


def test_a_retry_without_the_answer_is_asked_again(spawn):
    s = spawn()
    args = python_args("print(input('Q? '))")
    first = call(s, "python", args)["result"]
    key, _ = only_request(first)
    again = call(s, "python", args, requestState=first["requestState"], inputResponses={})["result"]
    key2, request = only_request(again)
    assert key2 == key and request["params"]["message"] == "Q?"
    final = call(s, "python", args, requestState=again["requestState"],
                 inputResponses={key: {"action": "accept", "content": {"answer": "x"}}})["result"]
    assert structured(final)["stdout"] == "Q? x\nx\n"


def test_bad_states_are_refused_and_the_server_keeps_serving(spawn):
    s = spawn()
    args = python_args("print(input('Q? '))")
    unknown = call(s, "python", args, requestState="made-up", inputResponses={"input-1": {"action": "decline"}})
    assert unknown["error"]["code"] == -32602 and "requestState" in unknown["error"]["message"]
    assert call(s, "python", args, requestState=5)["error"]["code"] == -32602
    no_state = call(s, "python", args, inputResponses={"input-1": {"action": "decline"}})
    assert no_state["error"]["code"] == -32602
    # A real state presented on another request (other arguments) is refused, and stays usable.
    first = call(s, "python", args)["result"]
    key, _ = only_request(first)
    other = call(s, "python", python_args("print(2)"), requestState=first["requestState"])
    assert other["error"]["code"] == -32602
    final = call(s, "python", args, requestState=first["requestState"],
                 inputResponses={key: {"action": "accept", "content": {"answer": "ok"}}})["result"]
    assert structured(final)["stdout"] == "Q? ok\nok\n"


def test_without_the_capability_nothing_is_asked(spawn):
    s = spawn()
    code = "try:\n    input('Q? ')\nexcept EOFError as e:\n    print('eof')"
    result = call(s, "python", python_args(code), capabilities={})["result"]
    assert result["resultType"] == "complete"
    assert structured(result)["stdout"] == "Q? eof\n"


def test_a_client_that_never_retries_has_its_call_cancelled_and_the_session_freed(spawn):
    s = spawn()
    # The user tool's question waits its 'timeout' (2 s here) for the retry; then the whole call,
    # including the code that made it, is cancelled and its session is free again.
    code = "mcp.call('user', {'input': {'operation': 'ask', 'message': 'Still there?', 'timeout': 2}})"
    first = call(s, "python", python_args(code, session_id="ir-gone", persistent=True))["result"]
    key, request = only_request(first)
    assert request["params"]["message"] == "Still there?"

    def session_free():
        r = call(s, "python", python_args("print('free')", session_id="ir-gone", persistent=True),
                 timeout=60)["result"]
        return not r.get("isError") and structured(r)["stdout"] == "free\n"

    deadline = time.monotonic() + 60
    while not session_free():
        assert time.monotonic() < deadline, "the abandoned call's session never became free"
        time.sleep(0.2)  # polling a condition with a deadline, not a timing assumption
    late = call(s, "python", python_args(code, session_id="ir-gone", persistent=True), requestState=first["requestState"],
                inputResponses={key: {"action": "accept", "content": {}}})
    assert late["error"]["code"] == -32602


def test_cancelling_the_retry_cancels_the_resumed_code(spawn):
    s = spawn()
    code = "import time\nx = input('Q? ')\nprint('resumed', flush=True)\ntime.sleep(120)\nprint('never')"
    args = python_args(code, session_id="ir-cancel", persistent=True)
    first = call(s, "python", args)["result"]
    key, _ = only_request(first)
    since = s.mark()
    retry_id = s.send_request("tools/call", {
        "name": "python", "arguments": args, "_meta": meta(), "requestState": first["requestState"],
        "inputResponses": {key: {"action": "accept", "content": {"answer": "a"}}}})
    sessions = {"input": {"operation": "list_sessions"}}

    def busy():
        r = call(s, "python", sessions)["result"]
        return [x for x in structured(r)["sessions"] if x["session_id"] == "ir-cancel"][0]["busy"]

    assert busy()
    s.notify("notifications/cancelled", {"requestId": retry_id, "reason": "test"})
    deadline = time.monotonic() + 60
    while busy():
        assert time.monotonic() < deadline, "the resumed code was not interrupted"
        time.sleep(0.2)  # polling a condition with a deadline
    # A cancelled request gets no answer (the later list_sessions answers prove the reader moved on).
    s.expect_silence(lambda m: isinstance(m, dict) and m.get("id") == retry_id, since=since,
                     what="answer to the cancelled retry")


def test_the_user_tool_asks_in_the_modern_era(spawn):
    s = spawn()
    args = {"input": {"operation": "ask", "message": "Pick one"}}
    first = call(s, "user", args)["result"]
    key, request = only_request(first)
    assert request["params"]["message"].startswith("Pick one")
    final = call(s, "user", args, requestState=first["requestState"],
                 inputResponses={key: {"action": "accept", "content": {"answer": "b"}}})["result"]
    assert final["resultType"] == "complete" and not final.get("isError"), final
    assert "b" in str(final["structuredContent"])


def test_legacy_era_still_sends_requests_to_the_client(spawn):
    s = spawn()
    s.initialize(capabilities=ELICIT)
    since = s.mark()
    call_id = s.send_python(code="print(input('Q? '))")
    request = s.wait_server_request("elicitation/create", since=since)
    s.answer(request, {"action": "accept", "content": {"answer": "legacy"}})
    response = s.wait_response(call_id)
    assert "resultType" not in response["result"]
    assert structured(response["result"])["stdout"] == "Q? legacy\nlegacy\n"


# --- the python tool's wait budget (issue 17's leftover): paused while a question is out ------

def test_a_question_longer_than_the_wait_budget_does_not_turn_the_call_into_a_job(spawn):
    s = spawn()
    s.initialize(capabilities=ELICIT)
    since = s.mark()
    call_id = s.send_python(code="print(input('Q? '))", wait=1)
    request = s.wait_server_request("elicitation/create", since=since)
    time.sleep(2.5)  # the person takes longer than the 1 s budget (the stimulus, not a synchronisation)
    s.answer(request, {"action": "accept", "content": {"answer": "slow"}})
    sc = structured(s.wait_response(call_id)["result"])
    assert "job_id" not in sc, sc
    assert sc["stdout"] == "Q? slow\nslow\n"


def test_the_wait_budget_still_counts_outside_the_question(spawn):
    s = spawn()
    s.initialize(capabilities=ELICIT)
    since = s.mark()
    code = "import time\nx = input('Q? ')\nwhile True:\n    time.sleep(0.05)"
    call_id = s.send_python(code=code, wait=1)
    request = s.wait_server_request("elicitation/create", since=since)
    s.answer(request, {"action": "accept", "content": {"answer": "go"}})
    sc = structured(s.wait_response(call_id, timeout=30)["result"])
    assert sc["state"] == "running" and sc["job_id"], sc
    s.python("cancel_job", job_id=sc["job_id"])


def test_the_budget_pauses_in_the_modern_era_too(spawn):
    s = spawn()
    args = python_args("print(input('Q? '))", wait=1)
    first = call(s, "python", args)["result"]
    key, _ = only_request(first)
    time.sleep(2.5)  # the client's user takes longer than the budget
    final = call(s, "python", args, requestState=first["requestState"],
                 inputResponses={key: {"action": "accept", "content": {"answer": "late"}}})["result"]
    sc = structured(final)
    assert "job_id" not in sc, sc
    assert sc["stdout"] == "Q? late\nlate\n"
