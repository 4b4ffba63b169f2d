#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_server.cpp into tests/fuzz/corpus/.

Each seed is a byte stream as a client writes it to the server's stdin: newline-delimited
JSON-RPC, usually starting with initialize. The seeds cover every method and tool (each python
operation, sqlite, the fake `strict` and unexposed `hidden` tools of the target), cancellation,
batches, ids of every JSON type, and invalid input (bad JSON, invalid UTF-8, deep nesting,
over-long lines, CRLF, blank lines). Regression inputs of findings are kept beside them as
corpus/regression-* and are written by hand, not by this script.

Run it after changing the protocol or a tool's arguments; it rewrites only seed-* files:
    /usr/bin/python3.11 tests/fuzz/make_corpus.py
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
MAX_LINE = 2048  # kMaxLine in fuzz_server.cpp

_next = [0]


def msg(method: str, params=None, id=None, *, notify=False) -> dict:
    m = {"jsonrpc": "2.0", "method": method}
    if not notify:
        if id is None:
            _next[0] += 1
            id = _next[0]
        m["id"] = id
    if params is not None:
        m["params"] = params
    return m


def init(version: str = "2025-11-25") -> list:
    return [
        msg("initialize", {"protocolVersion": version, "capabilities": {},
                           "clientInfo": {"name": "fuzz", "version": "1"}}),
        msg("notifications/initialized", notify=True),
    ]


def call(name: str, arguments=None, id=None, meta=None) -> dict:
    params = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    if meta is not None:
        params["_meta"] = meta
    return msg("tools/call", params, id)


def py(id=None, **fields) -> dict:
    return call("python", {"input": fields}, id)


def py_flat(**fields) -> dict:
    return call("python", fields)


def sql(id=None, **fields) -> dict:
    return call("sqlite", {"input": fields}, id)


def line(m) -> bytes:
    if isinstance(m, bytes):
        return m
    if isinstance(m, str):
        return m.encode()
    return json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode()


def stream(*messages, version: str = "2025-11-25", initialize: bool = True, end: bytes = b"\n") -> bytes:
    lines = (init(version) if initialize else []) + list(messages)
    return end.join(line(m) for m in lines) + end


SEEDS: dict[str, bytes] = {}


def seed(name: str, data: bytes) -> None:
    assert name not in SEEDS, name
    SEEDS[name] = data


# --- lifecycle ----------------------------------------------------------------------------------
for v in VERSIONS:
    seed(f"init-{v}", stream(msg("ping"), msg("tools/list"), version=v))
seed("init-unknown-version", stream(msg("tools/list"), version="1999-01-01"))
seed("init-twice", stream(*init("2025-06-18")))
seed("init-bad-params", stream(msg("initialize", {"protocolVersion": 20251125}), msg("initialize", []),
                               msg("initialize"), msg("ping"), initialize=False))
seed("before-init", stream(msg("ping"), msg("tools/list"), msg("server/discover"),
                           py(code="1"), msg("logging/setLevel", {"level": "debug"}), initialize=False))
seed("unknown-method", stream(msg("resources/list"), msg("prompts/list"), msg("completion/complete", {})))
seed("logging", stream(msg("logging/setLevel", {"level": "debug"}), msg("logging/setLevel", {"level": "nope"}),
                       msg("logging/setLevel", {}), msg("logging/setLevel", []),
                       msg("logging/setLevel", {"level": "emergency"})))
seed("tools-list-params", stream(msg("tools/list", {"cursor": "x"}), msg("tools/list", []), msg("tools/list", {"_meta": {}})))

# --- python: every operation ----------------------------------------------------------------
seed("python-execute", stream(py(operation="execute", code="x = 1\nx + 1"),
                              py_flat(operation="execute", code="print('hi')"),
                              py_flat(code="6*7"),
                              py(code="print(1);", session_id="s1", persistent=True, timeout=2.5, max_output=64,
                                 run_on_main_thread=False)))
seed("python-execute-outcomes", stream(py(code="raise ValueError('x')"), py(code="stuck()"),
                                       py(code="import sys; print('e', file=sys.stderr) # stderr"),
                                       py(code="mcp.call('sqlite', {})"), py(code="é" * 300, max_output=64),
                                       py(code="🙂" * 100 + "x", max_output=65)))
seed("python-execute-bad-args", stream(py(), py(code=1), py(code="1", timeout=-1), py(code="1", timeout=0),
                                       py(code="1", timeout="5"), py(code="1", timeout=1e308),
                                       py(code="1", max_output=10), py(code="1", max_output=64.5),
                                       py(code="1", persistent="yes"), py(code="1", session_id=7),
                                       py(code="1", session_id=""), py(operation="nope"), py(operation=3),
                                       call("python", {"input": 5}), call("python", {"input": []}),
                                       call("python", {}), call("python", []), call("python", "x"),
                                       call("python", None)))
seed("python-sessions", stream(*(py(code=f"v{i} = {i}", session_id=f"s{i}", persistent=True) for i in range(5)),
                               py(operation="list_sessions"), py(operation="clear_session", session_id="s1"),
                               py(operation="clear_session", session_id="nope"), py(operation="clear_session"),
                               py(operation="list_sessions")))
seed("python-scripts", stream(py(operation="save_script", filename="report", code="print('r')"),
                              py(operation="save_script", filename="report.py", code="print('r2')"),
                              py(operation="load_script", filename="report"), py(operation="list_scripts"),
                              py(operation="run_script", filename="report.py", timeout=3),
                              py(operation="delete_script", filename="report"),
                              py(operation="load_script", filename="report"),
                              py(operation="run_script", filename="missing")))
seed("python-script-names", stream(*(py(operation=op, filename=name, code="1")
                                     for op in ("save_script", "load_script", "delete_script", "run_script")
                                     for name in ("../x", "/etc/passwd", ".hidden", "a/b.py", "..", "a\u0000b",
                                                  "a\\b", "\uff0e\uff0e\uff0fx", "x" * 300, "", "ok.py"))))
seed("python-readme", stream(py(operation="readme"), py_flat(operation="readme"),
                             py(operation="readme", tool_unlock_token="py-token")))
seed("python-unlock", stream(py(code="1", tool_unlock_token="py-token"), py(code="1", tool_unlock_token="bad"),
                             py(operation="list_scripts", tool_unlock_token="py-token"), py(code="1")))
seed("python-cancel", stream(py(code="time.sleep(60)", id=41),
                             msg("notifications/cancelled", {"requestId": 41, "reason": "user"}, notify=True),
                             msg("ping")))
seed("python-cancel-script", stream(py(operation="save_script", filename="s", code="sleep()"),
                                    call("python", {"operation": "run_script", "filename": "s"}, id="run"),
                                    msg("notifications/cancelled", {"requestId": "run"}, notify=True)))
seed("python-duplicate-inflight", stream(call("python", {"code": "sleep(1)"}, id=7),
                                         call("python", {"code": "sleep(1)"}, id=7),
                                         call("python", {"code": "1"}, id="7")))
seed("python-sessions-full", stream(*(py(code="sleep(9)", session_id=f"full{i}", persistent=True) for i in range(5))))

# --- sqlite ----------------------------------------------------------------------------------
seed("sqlite-basic", stream(sql(sql="CREATE TABLE t(a INTEGER, b TEXT)"),
                            sql(sql="INSERT INTO t VALUES (?, ?)", params=[1, "x"]),
                            sql(sql="INSERT INTO t VALUES (:a, :b)", bindings={"a": 2, "b": None}),
                            sql(sql="SELECT * FROM t", max_rows=1),
                            sql(sql=["INSERT INTO t VALUES (?, ?)", "INSERT INTO t VALUES (?, ?)"],
                                params=[[3, "c"], [4, "d"]]),
                            sql(sql="SELECT a, b, 1.5, x'00ff', NULL FROM t", read_only=True),
                            sql(sql="DELETE FROM t", read_only=True),
                            call("sqlite", {"sql": "SELECT 1"})))
seed("sqlite-files", stream(sql(sql="CREATE TABLE IF NOT EXISTS u(x)", database="research.db"),
                            sql(sql="SELECT count(*) FROM u", database="research.db"),
                            sql(sql="SELECT 1", database="../escape.db"), sql(sql="SELECT 1", database=""),
                            sql(sql="SELECT 1", database=".hidden.db"), sql(sql="SELECT 1", database="a/b.db"),
                            sql(sql="SELECT 1", database=":memory:")))
seed("sqlite-errors", stream(sql(), sql(sql=1), sql(sql=[]), sql(sql=[1]), sql(sql="SELEC 1"),
                             sql(sql="SELECT ?", params={"a": 1}, bindings={"a": 1}), sql(sql="SELECT ?", params=5),
                             sql(sql="SELECT ?, ?", params=[1]), sql(sql="SELECT 1", params=[1, 2]),
                             sql(sql="SELECT 1", max_rows=-1), sql(sql="SELECT 1", max_rows="x"),
                             sql(sql="SELECT 1", read_only="no"), sql(sql="SELECT 1", database=5),
                             sql(operation="readme"), sql(operation="drop"), sql(sql="SELECT 1", tool_unlock_token="sql-token"),
                             sql(sql="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c",
                                 id="loop"),
                             msg("notifications/cancelled", {"requestId": "loop"}, notify=True)))
seed("sqlite-values", stream(sql(sql="SELECT ?, ?, ?, ?, ?, ?", params=[None, True, 9223372036854775807,
                                                                         -9223372036854775808, 1e300, "\u0000"]),
                             sql(sql="SELECT ?", params=[[1, 2]]), sql(sql="SELECT ?", params=[{"a": 1}]),
                             sql(sql="SELECT :x, @y, $z", bindings={"x": 1, ":y": 2, "$z": 3}),
                             sql(sql="SELECT char(255), char(0), zeroblob(4), randomblob(3)"),
                             sql(sql="SELECT 1; SELECT 2;  ; "), sql(sql="BEGIN; SELECT 1"), sql(sql="COMMIT")))

# --- other tools --------------------------------------------------------------------------------
seed("strict-tool", stream(call("strict", {"n": 5, "text": "hello"}, meta={"progressToken": "p1"}),
                           call("strict", {"n": 5, "mode": "invalid"}), call("strict", {"n": 5, "mode": "throw"}),
                           call("strict", {"n": 5, "mode": "tool_error", "text": "t"}, meta={"progressToken": 3}),
                           call("strict", {"n": 500}), call("strict", {"n": "5"}), call("strict", {}),
                           call("strict", {"input": {"n": 1.0}}), msg("logging/setLevel", {"level": "error"}),
                           call("strict", {"n": 2}, meta={"progressToken": 1.5}), call("strict", {"n": 2}, meta=[])))
seed("unknown-and-hidden-tools", stream(call("hidden"), call("nope", {}), call("", {}), msg("tools/call", {"name": 5}),
                                        msg("tools/call", {}), msg("tools/call", []), msg("tools/call"),
                                        msg("tools/call", {"name": "python", "arguments": 5})))

# --- notifications and responses from the client ----------------------------------------------
seed("notifications", stream(msg("notifications/cancelled", {"requestId": 999}, notify=True),
                             msg("notifications/cancelled", {"requestId": "x", "reason": 5}, notify=True),
                             msg("notifications/cancelled", {}, notify=True),
                             msg("notifications/cancelled", [], notify=True),
                             msg("notifications/progress", {"progressToken": 1, "progress": 1}, notify=True),
                             msg("notifications/roots/list_changed", notify=True),
                             {"jsonrpc": "2.0", "id": 5, "result": {}},
                             {"jsonrpc": "2.0", "id": 6, "error": {"code": 1, "message": "m"}},
                             {"jsonrpc": "2.0", "id": None, "error": {"code": 1, "message": "m"}},
                             msg("ping")))

# --- batches ----------------------------------------------------------------------------------
batch = [msg("ping"), msg("tools/list"), py(code="1"), msg("notifications/initialized", notify=True),
         sql(sql="SELECT 1"), call("strict", {"n": 1}), {"jsonrpc": "2.0"}, 5, [msg("ping")]]
seed("batch-2025-03-26", stream(batch, [msg("notifications/initialized", notify=True)], [],
                                [msg("ping", id=1), msg("ping", id=1)], version="2025-03-26"))
seed("batch-refused", stream(batch, [], version="2025-11-25"))
seed("batch-before-init", stream([msg("initialize", {"protocolVersion": "2025-03-26"})], initialize=False))
seed("batch-cancel", stream([py(code="sleep()", id="b1"), msg("ping")],
                            msg("notifications/cancelled", {"requestId": "b1"}, notify=True), version="2025-03-26"))

# --- ids of every type ----------------------------------------------------------------------------
ids = [0, -1, 1, "1", "", "ünïcødé", "123", 9007199254740992, 9223372036854775807, -9223372036854775808,
       18446744073709551615]
seed("ids-valid", stream(*(msg("ping", id=i) for i in ids), *(call("strict", {"n": 1}, id=i) for i in ids)))
bad_ids = [None, 1.5, 1.0, True, False, [], {}, [1], {"a": 1}, 1e20]
seed("ids-invalid", stream(*({"jsonrpc": "2.0", "method": "ping", "id": i} for i in bad_ids),
                           *({"jsonrpc": "2.0", "id": i} for i in bad_ids), {"jsonrpc": "2.0", "id": 3}))

# --- invalid messages ---------------------------------------------------------------------------
seed("invalid-json", stream("{", "}", "[", "nul", "{\"jsonrpc\":\"2.0\",", "\"str\"", "123", "true", "null",
                            "{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}}", "{'a':1}", "{\"a\":1,}",
                            "\ufeff{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":2}", msg("ping")))
seed("invalid-envelopes", stream({"jsonrpc": "1.0", "method": "ping", "id": 1}, {"method": "ping", "id": 2},
                                 {"jsonrpc": "2.0", "method": 5, "id": 3}, {"jsonrpc": "2.0", "method": "ping", "id": 4, "params": 5},
                                 {"jsonrpc": "2.0", "method": "ping", "id": 5, "params": "x"},
                                 {"jsonrpc": 2.0, "method": "ping", "id": 6}, {"jsonrpc": "2.0", "id": 7, "params": {}},
                                 [], {}, msg("ping")))
seed("invalid-utf8", stream(b'{"jsonrpc":"2.0","method":"ping","id":"\xff\xfe"}',
                            b'{"jsonrpc":"2.0","method":"tools/call","id":2,"params":{"name":"python","arguments":{"code":"\xc3"}}}',
                            b'\xef\xbb\xbf{"jsonrpc":"2.0","method":"ping","id":3}', b'\xc0\xaf', b'"\xed\xa0\x80"',
                            b'{"jsonrpc":"2.0","method":"ping","id":"\\ud800"}', msg("ping")))
seed("escapes", stream({"jsonrpc": "2.0", "method": "ping", "id": "\u0000\n\r\t\"\\/\u2028\U0001F600"},
                       b'{"jsonrpc":"2.0","method":"p\\u0069ng","id":"\\ud83d\\ude00"}',
                       b'{"jsonrpc":"2.0","method":"ping","id":"\\uDFFF"}'))
seed("deep-nesting", stream("[" * 127 + "]" * 127, "[" * 129 + "]" * 129, "{\"a\":" * 200 + "1" + "}" * 200,
                            msg("ping", {"x": json.loads("[" * 120 + "]" * 120)}),
                            "[" * 1000, '"' + "[" * 500 + '"', "\"\\\"" + "[" * 200, msg("ping")))
seed("framing", b"\n\r\n  \t \n" + line(init()[0]) + b"\r\n" + line(msg("ping")) + b"\r\r\n" +
     line(msg("ping")) + b"\n" + b"x" * (MAX_LINE + 1) + b"\n" + b"y" * MAX_LINE + b"\n" +
     b"z" * (MAX_LINE - 1) + b"\r\n" + line(msg("ping")))
seed("overlong", stream(py(code="x" * (MAX_LINE + 100)), msg("ping"), "[" * 3000, msg("ping")))
seed("numbers", stream(msg("ping", {"a": 1e308, "b": -0.0, "c": 1.7976931348623157e308, "d": 5e-324,
                                    "e": 123456789012345678901234567890}),
                       msg("ping", {"n": [0, -0, 1E2, 1e-2, 0.1]}), msg("ping")))
seed("big-structures", stream(msg("ping", {"a": list(range(300))}), msg("ping", {str(i): i for i in range(150)}),
                              py(code="x", **{f"extra{i}": i for i in range(50)})))


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for old in CORPUS.glob("seed-*"):
        old.unlink()
    for name, data in SEEDS.items():
        (CORPUS / f"seed-{name}").write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {CORPUS}")


if __name__ == "__main__":
    main()
