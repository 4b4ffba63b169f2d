"""The MCP stdio protocol core, end to end over real pipes (issue 2).

Every test also gets the teardown check that each stdout line was a valid JSON-RPC 2.0 message.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import tempfile
import time

import pytest

from mcp_pipe import (LATEST_VERSION, SUPPORTED_VERSIONS, McpServer, binary, is_response,
                      same_id)

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def error_code(response: dict) -> int:
    assert "error" in response, f"expected a JSON-RPC error, got {response}"
    return response["error"]["code"]


def assert_alive(s: McpServer) -> None:
    response = s.request("ping", timeout=5)
    assert response.get("result") == {}, response


# --- lifecycle ----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_initialize_echoes_a_supported_version(spawn, version):
    result = spawn().initialize(version)
    assert result["protocolVersion"] == version


@pytest.mark.parametrize("version", ["1999-01-01", "2026-07-28", "latest"])
def test_initialize_answers_an_unknown_version_with_the_latest(spawn, version):
    result = spawn().initialize(version)
    assert result["protocolVersion"] == LATEST_VERSION


def test_initialize_describes_the_server(spawn):
    s = spawn()
    result = s.initialize()
    info = result["serverInfo"]
    assert info["name"] == "python-mcp"
    assert isinstance(info["version"], str) and re.match(r"^\d+\.\d+", info["version"]), info
    assert isinstance(result["capabilities"].get("tools"), dict), result["capabilities"]
    assert isinstance(result.get("instructions"), str) and len(result["instructions"]) > 40, result
    assert "python" in result["instructions"].lower()


def test_initialize_twice_is_refused_and_the_session_goes_on(server):
    again = server.request("initialize", {"protocolVersion": LATEST_VERSION, "capabilities": {},
                                          "clientInfo": {"name": "x", "version": "1"}})
    assert "error" in again
    assert_alive(server)


def test_ping_answers_an_empty_result(server):
    for request_id in (1, "p"):
        response = server.request("ping", id=request_id)
        assert response == {"jsonrpc": "2.0", "id": request_id, "result": {}}


def test_server_discover_without_its_meta_is_refused_at_once(spawn):
    # Claude Code sends server/discover first and waits ~3 s if the server stays silent; with its
    # 2026-07-28 _meta it is answered (test_modern_era.py), without it refused as invalid params.
    s = spawn()
    start = time.monotonic()
    response = s.request("server/discover", {}, id="discover-1", timeout=5)
    assert time.monotonic() - start < 1.0
    assert response["id"] == "discover-1"
    assert error_code(response) == INVALID_PARAMS
    assert s.proc.poll() is None
    # ...and the same process then initializes normally.
    assert s.initialize()["protocolVersion"] == LATEST_VERSION
    assert s.request("tools/list")["result"]["tools"]


def test_tools_list_before_initialize_is_an_immediate_error(spawn):
    s = spawn()
    start = time.monotonic()
    response = s.request("tools/list", id=7, timeout=5)
    assert time.monotonic() - start < 1.0
    assert "error" in response and response["id"] == 7
    assert s.proc.poll() is None
    s.initialize()
    assert s.request("tools/list")["result"]["tools"]


# --- tools/list ---------------------------------------------------------------------------------

def test_tools_list_is_deterministic_and_complete(server):
    first = server.request("tools/list")["result"]
    second = server.request("tools/list")["result"]
    assert first == second
    assert "nextCursor" not in first  # small lists are unpaginated
    tools = first["tools"]
    names = [t["name"] for t in tools]
    assert len(names) == len(set(names))
    assert {"python", "sqlite"} <= set(names), names
    for tool in tools:
        assert TOOL_NAME.match(tool["name"]), tool["name"]
        assert isinstance(tool.get("description"), str) and tool["description"], tool["name"]
        schema = tool["inputSchema"]
        assert isinstance(schema, dict) and schema.get("type") == "object", (tool["name"], schema)
        assert isinstance(tool.get("annotations"), dict), f"{tool['name']} has no annotations"
        if "outputSchema" in tool:
            assert tool["outputSchema"].get("type") == "object", tool["name"]
    python = next(t for t in tools if t["name"] == "python")
    out = python.get("outputSchema")
    assert isinstance(out, dict), "the python tool's results are structured: it needs an outputSchema"


def test_tools_list_order_is_the_same_in_another_process(spawn):
    a, b = spawn(), spawn()
    a.initialize()
    b.initialize()
    names_a = [t["name"] for t in a.request("tools/list")["result"]["tools"]]
    names_b = [t["name"] for t in b.request("tools/list")["result"]["tools"]]
    assert names_a == names_b


def test_logging_set_level(server):
    assert server.request("logging/setLevel", {"level": "warning"})["result"] == {}
    assert error_code(server.request("logging/setLevel", {"level": "loud"})) == INVALID_PARAMS


# --- malformed input ----------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    b"{not json",
    b'{"jsonrpc":"2.0","id":1,"method":"ping"',
    b"\x00\x01garbage",
    b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"s":"\xff\xfe"}}',  # invalid UTF-8
], ids=["not-json", "truncated", "binary", "invalid-utf8"])
def test_unparsable_line_is_a_parse_error_with_id_null(server, line):
    since = server.mark()
    server.send_raw(line)
    response = server.wait_for(lambda m: is_response(m) and m["id"] is None, since=since,
                               what="the parse error")
    assert error_code(response) == PARSE_ERROR
    assert_alive(server)


@pytest.mark.parametrize("message,echo_id", [
    ({"jsonrpc": "1.0", "id": 11, "method": "ping"}, 11),
    ({"id": 12, "method": "ping"}, 12),
    ({"jsonrpc": "2.0", "id": 13, "method": 5}, 13),
    ({"jsonrpc": "2.0", "id": 14, "method": "ping", "params": "text"}, 14),
    ({"jsonrpc": "2.0", "id": 15}, 15),
    ({"jsonrpc": "2.0", "id": None, "method": "ping"}, None),
    ({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}, None),
    ({"jsonrpc": "2.0", "id": True, "method": "ping"}, None),
    ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}, None),
    (42, None),
    ("ping", None),
    (None, None),
], ids=["jsonrpc-1.0", "no-jsonrpc", "method-number", "params-string", "no-method", "id-null",
        "id-float", "id-bool", "id-object", "number", "string", "null"])
def test_invalid_request_is_refused(server, message, echo_id):
    since = server.mark()
    server.send(message)
    response = server.wait_for(lambda m: is_response(m) and same_id(m["id"], echo_id), since=since,
                               what=f"the error for {message!r}")
    assert error_code(response) == INVALID_REQUEST
    assert_alive(server)


def test_unknown_method_is_method_not_found(server):
    response = server.request("no/such/method", {}, id="m1")
    assert response["id"] == "m1"
    assert error_code(response) == METHOD_NOT_FOUND


def test_unknown_tool_is_invalid_params(server):
    response = server.call("no_such_tool", {})
    assert error_code(response) == INVALID_PARAMS
    assert "no_such_tool" in response["error"]["message"]


@pytest.mark.parametrize("params", [
    {},
    {"name": 5},
    {"name": "python", "arguments": "print(1)"},
], ids=["no-name", "name-number", "arguments-string"])
def test_malformed_tools_call_is_invalid_params(server, params):
    response = server.request("tools/call", params)
    assert error_code(response) == INVALID_PARAMS


def test_notifications_are_never_answered(server):
    since = server.mark()
    for method in ("notifications/initialized", "notifications/whatever", "ping", "tools/list",
                   "no/such/method"):
        server.notify(method, {})
    server.notify("notifications/cancelled", {"requestId": 424242, "reason": "nothing runs"})
    server.notify("notifications/cancelled", {"requestId": "never-sent"})
    server.notify("notifications/cancelled", {})
    ping = server.request("ping", id="after-notifications")
    assert ping["result"] == {}
    # The reader handles lines in order: anything it answered would have come before this.
    stray = server.find(lambda m: isinstance(m, list) or (is_response(m) and m["id"] != "after-notifications"),
                        since=since)
    assert stray == []


def test_client_responses_are_not_answered(server):
    since = server.mark()
    server.send({"jsonrpc": "2.0", "id": 99, "result": {}})
    server.send({"jsonrpc": "2.0", "id": 98, "error": {"code": -1, "message": "x"}})
    server.request("ping", id="after")
    assert server.find(lambda m: is_response(m) and m["id"] != "after", since=since) == []


def test_an_id_can_be_reused_after_its_request_completed(server):
    assert server.request("ping", id=5)["result"] == {}
    assert server.request("ping", id=5)["result"] == {}
    first = server.call("python", {"input": {"operation": "execute", "code": "1 + 1"}}, id="again")
    second = server.call("python", {"input": {"operation": "execute", "code": "2 + 2"}}, id="again")
    assert first["result"]["structuredContent"]["result"] == "2"
    assert second["result"]["structuredContent"]["result"] == "4"


# --- batches ------------------------------------------------------------------------------------

def test_batch_is_answered_under_2025_03_26(spawn):
    s = spawn()
    s.initialize("2025-03-26")
    since = s.mark()
    s.send([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": "two", "method": "tools/list"},
        {"jsonrpc": "2.0", "method": "notifications/whatever"},
        {"jsonrpc": "2.0", "id": 3, "method": "no/such/method"},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
         "params": {"name": "python", "arguments": {"input": {"operation": "execute", "code": "6 * 7"}}}},
    ])
    answer = s.wait_for(lambda m: isinstance(m, list), since=since, what="the batch answer")
    by_id = {json.dumps(r["id"]): r for r in answer}
    assert sorted(by_id) == sorted(['1', '"two"', '3', '4']), answer
    assert by_id["1"]["result"] == {}
    assert by_id['"two"']["result"]["tools"]
    assert by_id["3"]["error"]["code"] == METHOD_NOT_FOUND
    assert by_id["4"]["result"]["structuredContent"]["result"] == "42"
    # Nothing of the batch was answered outside the array.
    assert s.find(lambda m: is_response(m), since=since) == []
    assert_alive(s)


def test_empty_batch_is_invalid_under_2025_03_26(spawn):
    s = spawn()
    s.initialize("2025-03-26")
    since = s.mark()
    s.send_raw(b"[]")
    response = s.wait_for(lambda m: is_response(m) and m["id"] is None, since=since, what="the error")
    assert error_code(response) == INVALID_REQUEST
    assert_alive(s)


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18"])
def test_batch_is_refused_in_later_revisions(spawn, version):
    s = spawn()
    s.initialize(version)
    since = s.mark()
    s.send([{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "method": "ping"}])
    response = s.wait_for(lambda m: is_response(m) and m["id"] is None, since=since, what="the refusal")
    assert error_code(response) == INVALID_REQUEST
    assert s.find(lambda m: isinstance(m, list) or (is_response(m) and m["id"] is not None),
                  since=since) == [], "a refused batch must not be executed"
    assert_alive(s)


# --- hostile sizes ------------------------------------------------------------------------------

def test_over_long_line_gets_a_clean_error_and_the_server_goes_on(spawn):
    s = spawn("--max-message-bytes", "1000")
    s.initialize()
    # A message just under the cap still works.
    near = s.request("ping", {"pad": "x" * 850}, id="near-cap")
    assert near["result"] == {}
    for size in (5_000, 3_000_000):
        since = s.mark()
        line = json.dumps({"jsonrpc": "2.0", "id": "big", "method": "ping", "params": {"pad": "x" * size}})
        # The over-long line and the next request arrive in one write.
        s.send_raw(line.encode() + b"\n" + b'{"jsonrpc":"2.0","id":"next","method":"ping"}')
        # Answered under its own id (read from the line's start), once.
        error = s.wait_response("big", since=since)
        assert error_code(error) in (INVALID_REQUEST, PARSE_ERROR)
        assert "1000" in error["error"]["message"], "the error should name the limit"
        assert s.wait_response("next", since=since)["result"] == {}
        assert len(s.find(lambda m: is_response(m) and m["id"] == "big", since=since)) == 1


@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")], ids=["arrays", "objects"])
def test_deeply_nested_json_gets_a_clean_error(server, opener, closer):
    depth = 100_000
    for line in (opener * depth + "1" + closer * depth,
                 '{"jsonrpc":"2.0","id":"deep","method":"ping","params":{"x":' + opener * depth + "1"
                 + closer * depth + "}}"):
        since = server.mark()
        server.send_raw(line)
        response = server.wait_for(lambda m: is_response(m) and m.get("error") is not None, since=since,
                                   what="the error for deep nesting")
        assert error_code(response) in (PARSE_ERROR, INVALID_REQUEST)
        assert_alive(server)


# --- ids ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("request_id", [0, 7, -3, 2 ** 53, "7", "", "ü-id ✓", "1e3"],
                         ids=["zero", "int", "negative", "big", "digits", "empty", "unicode", "numberish"])
def test_ids_are_echoed_with_their_type(server, request_id):
    since = server.mark()
    server.send({"jsonrpc": "2.0", "id": request_id, "method": "ping"})
    response = server.wait_for(lambda m: is_response(m) and m["id"] == request_id, since=since,
                               what="the ping answer")
    assert type(response["id"]) is type(request_id)


def test_integer_and_string_ids_of_the_same_digits_are_distinct(server):
    since = server.mark()
    server.send_python(code="'int'", id=1)
    server.send_python(code="'str'", id="1")
    as_int = server.wait_response(1, since=since)
    as_str = server.wait_response("1", since=since)
    assert as_int["result"]["structuredContent"]["result"] == "'int'"
    assert as_str["result"]["structuredContent"]["result"] == "'str'"


# --- shutdown -----------------------------------------------------------------------------------

SLEEPER = "import pathlib, time\npathlib.Path({marker!r}).touch()\ntime.sleep(30)\n"


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "while-python-sleeps"])
@pytest.mark.parametrize("how", ["stdin-eof", "SIGTERM", "SIGINT"])
def test_shutdown_is_prompt_and_clean(server, how, busy):
    if busy:
        marker = server.work / "sleeping"
        call = server.send_python(code=SLEEPER.format(marker=str(marker)), session_id="sleeper",
                                  persistent=True)
        server.wait_for_file(marker, request_id=call)
    start = time.monotonic()
    if how == "stdin-eof":
        server.close_stdin()
    else:
        server.send_signal(getattr(signal, how))
    code = server.wait_exit(timeout=10)
    elapsed = time.monotonic() - start
    assert code == 0, f"exit code {code}\n{server.diagnostics()}"
    assert elapsed < 2.0, f"took {elapsed:.2f} s to exit"
    assert server.stdout_closed(timeout=2), "something still holds the protocol pipe"


def test_requests_piped_before_eof_are_answered(spawn):
    # The README's demo: `printf '<initialize>\n<tools/call>\n' | python-mcp`. Requests already
    # read when stdin ends are answered (quick ones, within the 2 s shutdown budget), then exit 0.
    s = spawn()
    s.send_raw(b"\n".join(json.dumps(m).encode() for m in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": LATEST_VERSION, "capabilities": {},
                    "clientInfo": {"name": "demo", "version": "1"}}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "python", "arguments": {"code": "import sys; print(sys.version); 6*7"}}},
        {"jsonrpc": "2.0", "id": 3, "method": "ping"},
    )))
    start = time.monotonic()
    s.close_stdin()
    assert s.wait_exit(timeout=10) == 0
    assert time.monotonic() - start < 2.0
    assert s.stdout_closed(timeout=2)
    assert "result" in s.wait_response(1, timeout=0.1)
    assert s.wait_response(3, timeout=0.1)["result"] == {}
    call = s.wait_response(2, timeout=0.1)
    assert call["result"]["structuredContent"]["result"] == "42", call


def test_sigint_then_sigterm_like_claude_code(server):
    marker = server.work / "sleeping"
    call = server.send_python(code=SLEEPER.format(marker=str(marker)))
    server.wait_for_file(marker, request_id=call)
    start = time.monotonic()
    server.send_signal(signal.SIGINT)
    try:
        code = server.proc.wait(timeout=0.1)
    except subprocess.TimeoutExpired:
        server.send_signal(signal.SIGTERM)
        code = server.wait_exit(timeout=10)
    assert code == 0
    assert time.monotonic() - start < 2.0


# --- command line -------------------------------------------------------------------------------

def run_cli(*args: str) -> tuple[int, str]:
    """Runs the binary with `args`; stdin stays open, so it must exit by itself, not on EOF."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([binary(), *args], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"python-mcp {' '.join(args)} did not exit by itself")
        finally:
            proc.stdin.close()
        out.seek(0)
        return code, out.read().decode("utf-8", errors="replace")


def test_help_lists_the_options_and_exits_0():
    code, out = run_cli("--help")
    assert code == 0, out
    for option in ("--help", "--version", "--log-level", "--log-file", "--max-message-bytes",
                   "--timeout", "--max-output", "--scripts-dir"):
        assert option in out, f"--help does not mention {option}:\n{out}"


def test_version_exits_0_and_matches_server_info(spawn):
    code, out = run_cli("--version")
    assert code == 0, out
    version = spawn().initialize()["serverInfo"]["version"]
    assert version in out, f"--version printed {out!r}, serverInfo says {version}"


def test_unknown_option_is_refused():
    code, out = run_cli("--no-such-option")
    assert code != 0


def test_a_python_that_cannot_start_leaves_the_rest_of_the_server_working(spawn):
    # The protocol is served before the interpreter starts, so a broken Python installation (here
    # a PYTHONHOME that does not exist) costs the python tool only: initialize, tools/list, the
    # sqlite tool and script listing still work, and Python calls say why they cannot run.
    s = spawn(env={"PYTHONHOME": "/nonexistent-python-home"})
    s.initialize()
    names = [t["name"] for t in s.request("tools/list")["result"]["tools"]]
    assert names[:2] == ["python", "sqlite"]
    rows = s.call("sqlite", {"sql": "SELECT 41 + 1 AS v"})["result"]["structuredContent"]["rows"]
    assert rows == [[42]]
    for _ in range(2):  # and again: the failure is remembered, not retried into a crash
        result = s.python(code="x = 1", session_id="a", persistent=True)
        assert result["isError"] is True
        text = "".join(c["text"] for c in result["content"])
        assert "Python is not available in this server: cannot start Python" in text, result
    sessions = s.python("list_sessions")
    assert sessions["isError"] is True
    assert "Python is not available" in sessions["content"][0]["text"]
    assert s.python("list_scripts")["isError"] is False
    assert s.request("ping")["result"] == {}
