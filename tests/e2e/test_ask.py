"""Code asking the client (issue 17): input(), getpass.getpass() and mcp.ask() over
elicitation/create, mcp.sample() over sampling/createMessage, with this harness as the client
that answers over real pipes."""

from __future__ import annotations

import time

from mcp_pipe import structured

ELICIT = {"elicitation": {}}


def _run_asking(s, code, answers, method="elicitation/create", **fields):
    """Runs `code`, answers each request the server sends with the next of `answers` (a result
    dict), returns (the requests seen, the python result's structuredContent)."""
    since = s.mark()
    call_id = s.send_python(code=code, **fields)
    seen = []
    for answer in answers:
        request = s.wait_server_request(method, since=since)
        since = s.mark()
        seen.append(request)
        s.answer(request, answer)
    response = s.wait_response(call_id)
    return seen, structured(response["result"])


def test_input_asks_the_user_and_echoes_like_a_terminal(spawn):
    s = spawn()
    s.initialize(capabilities=ELICIT)
    seen, sc = _run_asking(s, "name = input('Your name? ')\nprint('hello', name)",
                           [{"action": "accept", "content": {"answer": "Ada"}}])
    params = seen[0]["params"]
    assert params["message"] == "Your name?"
    assert params["requestedSchema"]["properties"]["answer"]["type"] == "string"
    assert "mode" not in params  # form mode, understood by clients older than 2025-11-25
    assert sc["success"] is True, sc
    assert sc["stdout"] == "Your name? Ada\nhello Ada\n"


def test_getpass_asks_for_a_secret_without_echoing_it(spawn):
    s = spawn()
    s.initialize(capabilities=ELICIT)
    seen, sc = _run_asking(s, "import getpass\npw = getpass.getpass('Token: ')\nprint(len(pw))",
                           [{"action": "accept", "content": {"password": "s3cret!"}}])
    prop = seen[0]["params"]["requestedSchema"]["properties"]["password"]
    assert prop["type"] == "string" and "plain text" in prop["description"]
    assert sc["success"] is True, sc
    assert sc["stdout"] == "Token: \n7\n"
    assert "s3cret" not in sc["stdout"]


def test_mcp_ask_returns_the_value_or_the_form(spawn):
    s = spawn()
    s.initialize(capabilities=ELICIT)
    code = """
color = mcp.ask('Favourite colour?')
form = mcp.ask('Details', {'type': 'object', 'properties': {'n': {'type': 'integer'}, 'ok': {'type': 'boolean'}}})
print(repr(color), form)
"""
    seen, sc = _run_asking(s, code, [{"action": "accept", "content": {"answer": "blue"}},
                                     {"action": "accept", "content": {"n": 3, "ok": True}}])
    assert seen[1]["params"]["requestedSchema"]["properties"]["n"] == {"type": "integer"}
    assert sc["stdout"] == "'blue' {'n': 3, 'ok': True}\n", sc


def test_decline_and_cancel_raise_their_own_exceptions(spawn):
    s = spawn()
    s.initialize(capabilities=ELICIT)
    code = """
for ask in (lambda: input('a? '), lambda: mcp.ask('b?')):
    try:
        ask()
    except mcp.AskDeclined as e:
        print('declined', isinstance(e, mcp.AskError))
    except mcp.AskCancelled as e:
        print('cancelled', isinstance(e, mcp.AskError))
"""
    _, sc = _run_asking(s, code, [{"action": "decline"}, {"action": "cancel"}])
    assert sc["stdout"].splitlines()[-2:] == ["a? declined True", "cancelled True"], sc


def test_the_timeout_pauses_while_the_user_answers(spawn):
    # A 2 s timeout, a user who takes 4 s: the time spent answering does not count.
    s = spawn()
    s.initialize(capabilities=ELICIT)
    since = s.mark()
    call_id = s.send_python(code="x = mcp.ask('slow?')\nprint('got', x)", timeout=2)
    request = s.wait_server_request("elicitation/create", since=since)
    time.sleep(4)  # the person thinking: the quantity under test, not a synchronisation
    s.answer(request, {"action": "accept", "content": {"answer": "yes"}})
    sc = structured(s.wait_response(call_id)["result"])
    assert sc["success"] is True and sc["stdout"] == "got yes\n", sc


def test_the_timeout_still_ends_code_that_runs_on_after_the_answer(spawn):
    s = spawn()
    s.initialize(capabilities=ELICIT)
    since = s.mark()
    call_id = s.send_python(code="mcp.ask('q?')\nwhile True: pass", timeout=1)
    s.answer(s.wait_server_request("elicitation/create", since=since), {"action": "accept",
                                                                         "content": {"answer": "a"}})
    sc = structured(s.wait_response(call_id)["result"])
    assert sc["timed_out"] is True, sc


def test_without_the_capability_input_is_eof_and_ask_is_unavailable(server):
    since = server.mark()
    result = server.python(code="""
try:
    input('x? ')
except EOFError as e:
    print('EOF:', e)
try:
    mcp.ask('y?')
except mcp.AskUnavailable as e:
    print('unavailable:', e)
try:
    mcp.sample('hi')
except mcp.AskUnavailable as e:
    print('no sampling:', e)
""")
    out = structured(result)["stdout"]
    assert "EOF: input() cannot read here" in out and "did not declare the 'elicitation' capability" in out
    assert "unavailable: the MCP client did not declare the 'elicitation' capability" in out
    assert "no sampling: the MCP client did not declare the 'sampling' capability" in out
    assert not server.find(lambda m: isinstance(m, dict) and m.get("method") == "elicitation/create",
                           since=since)


def test_sample_sends_the_messages_and_returns_the_text(spawn):
    s = spawn()
    s.initialize(capabilities={"sampling": {}})
    code = """
r = mcp.sample(['Hi', {'role': 'assistant', 'content': 'Hello'}, 'Sum 2+2'], max_tokens=50,
               system='Be brief', temperature=0.2, model_hint='claude')
print(r, r.model, r.stop_reason, isinstance(r, str))
"""
    seen, sc = _run_asking(s, code, [{"role": "assistant", "content": {"type": "text", "text": "4"},
                                      "model": "m-1", "stopReason": "endTurn"}],
                           method="sampling/createMessage")
    p = seen[0]["params"]
    assert p["maxTokens"] == 50 and p["systemPrompt"] == "Be brief" and p["temperature"] == 0.2
    assert p["modelPreferences"] == {"hints": [{"name": "claude"}]}
    assert [m["role"] for m in p["messages"]] == ["user", "assistant", "user"]
    assert p["messages"][2]["content"] == {"type": "text", "text": "Sum 2+2"}
    assert sc["stdout"] == "4 m-1 endTurn True\n", sc


def test_a_client_error_to_sampling_is_an_ask_error(spawn):
    s = spawn()
    s.initialize(capabilities={"sampling": {}})
    since = s.mark()
    call_id = s.send_python(code="try:\n    mcp.sample('x')\nexcept mcp.AskError as e:\n    print(type(e).__name__, e)")
    request = s.wait_server_request("sampling/createMessage", since=since)
    s.send({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -1, "message": "User rejected sampling"}})
    sc = structured(s.wait_response(call_id)["result"])
    assert sc["stdout"].startswith("AskError ") and "User rejected sampling" in sc["stdout"], sc
