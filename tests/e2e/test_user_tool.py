"""The `user` tool called from Python code (mcp.call), with this harness as the MCP client that
answers the server's elicitation/create requests, as the seed document's examples use it."""

from __future__ import annotations

from mcp_pipe import is_error, ok, structured

SEED_USER_CODE = '''
report_html = """
<html><body><h1>Processing Complete!</h1><p>Results saved &amp; indexed.</p></body></html>
"""
popup = mcp.call('user', {
    'input': {
        'operation': 'show_popup',
        'html': report_html,
        'title': 'Success',
        'tool_unlock_token': 'a1b2c3d4'
    }
})
print(popup['structuredContent']['action'])

key = mcp.call('user', {
    'input': {
        'operation': 'collect_api_key',
        'service_name': 'OpenAI',
        'tool_unlock_token': 'a1b2c3d4'
    }
})
print(len(key['structuredContent']['api_key']))

try:
    mcp.call('user', {'input': {'operation': 'collect_api_key', 'service_name': 'GitHub',
                                'tool_unlock_token': 'a1b2c3d4'}})
except mcp.ToolError as e:
    print('refused:', e.message)
'''


def test_seed_examples_reach_the_user_through_elicitation(spawn):
    s = spawn("--require-unlock-token")  # the seed's token for `user` must be the one we check
    s.initialize(capabilities={"elicitation": {}})
    since = s.mark()
    call_id = s.send_python(code=SEED_USER_CODE, tool_unlock_token="c0de5eed")

    popup = s.wait_server_request("elicitation/create", since=since)
    assert popup["params"]["message"] == "Success\n\nProcessing Complete!\n\nResults saved & indexed."
    assert popup["params"]["requestedSchema"] == {"type": "object", "properties": {}}
    s.answer(popup, {"action": "accept"})

    since = s.mark()
    key = s.wait_server_request("elicitation/create", since=since)
    assert "OpenAI" in key["params"]["message"]
    assert key["params"]["requestedSchema"]["required"] == ["api_key"]
    s.answer(key, {"action": "accept", "content": {"api_key": "sk-0123456789"}})

    since = s.mark()
    declined = s.wait_server_request("elicitation/create", since=since)
    s.answer(declined, {"action": "decline"})

    response = s.wait_response(call_id)
    sc = structured(response["result"])
    assert sc["success"] is True, response
    assert sc["stdout"] == ("accept\n13\n"
                            "refused: the user declined the request for the GitHub API key\n")


def test_code_hears_why_when_the_client_cannot_elicit(server):
    # `server` declared no capabilities: nothing may be sent to it, and code is told so.
    since = server.mark()
    sc = ok(server, '''
r = mcp.call('user', {'operation': 'show_popup', 'message': 'Done'})
print(r['structuredContent']['shown'])
try:
    mcp.call('user', {'input': {'operation': 'ask', 'message': 'Continue?'}})
except mcp.ToolError as e:
    print(e.message)
''')
    lines = sc["stdout"].splitlines()
    assert lines[0] == "False"
    assert "did not declare the 'elicitation' capability" in lines[1]
    assert not server.find(lambda m: m.get("method") == "elicitation/create", since=since)


def test_client_calls_ask_and_gets_the_answer(spawn):
    s = spawn()
    s.initialize(capabilities={"elicitation": {}})
    since = s.mark()
    call_id = s.send_call("user", {"operation": "ask", "message": "Name?",
                                   "schema": {"type": "object",
                                              "properties": {"name": {"type": "string"}}}})
    question = s.wait_server_request("elicitation/create", since=since)
    s.answer(question, {"action": "accept", "content": {"name": "Ada"}})
    result = s.wait_response(call_id)["result"]
    assert not is_error(result)
    assert result["structuredContent"] == {"action": "accept", "content": {"name": "Ada"}}
