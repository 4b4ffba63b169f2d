"""End of stdin with a 2026-07-28 subscriptions/listen open (the SDK v2 client opens one for its
listChanged handlers and closes stdin without cancelling it). Calls still running get their moment
to finish and be answered; the open subscription is not such a call: it is answered with its
closing result at once, instead of holding the shutdown for the whole grace period and then
being answered together with the cancellation of the calls that were still running."""
from __future__ import annotations

from mcp_pipe import payload

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "pymcp-e2e", "version": "1"},
}


def test_an_open_listen_ends_at_once_at_end_of_input_and_running_calls_still_finish(spawn, tmp_path):
    s = spawn()
    since = s.mark()
    s.send_request("subscriptions/listen", {"_meta": META, "notifications": {"toolsListChanged": True}}, id="sub-1")
    s.wait_for(lambda m: m.get("method") == "notifications/subscriptions/acknowledged", since=since,
               what="the listen's acknowledgement")
    started, go = tmp_path / "started", tmp_path / "go"
    code = (f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\n"
            f"deadline = time.monotonic() + 30\n"
            f"while not pathlib.Path({str(go)!r}).exists() and time.monotonic() < deadline:\n"
            f"    time.sleep(0.01)\n'went'")
    call = s.send_request("tools/call", {"name": "python", "_meta": META,
                                         "arguments": {"input": {"operation": "execute", "code": code}}})
    s.wait_for_file(started, request_id=call)
    s.close_stdin()
    # The subscription ends first, while the call is still running: the client is told at once.
    closing = s.wait_response("sub-1", timeout=10)
    assert closing["result"]["resultType"] == "complete"
    assert not s.responses_for(call), "the call ended before the listen's closing result"
    # The running call still gets its grace period and its answer (the server waits for it, not
    # for the subscription).
    go.touch()
    answer = s.wait_response(call, timeout=10)
    assert payload(answer["result"])["result"] == "'went'"
    assert s.wait_exit(5) == 0
