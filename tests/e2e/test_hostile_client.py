"""A hostile or careless client, end to end over real pipes (issue 7, "Hardening").

A thousand malformed and hostile messages in one stream, 100 MB lines, a client that vanishes in
the middle of a call, and SIGTERM while a script is being saved. test_protocol.py already checks
each kind of malformed line on its own (parse errors, invalid envelopes, over-long lines at a
small --max-message-bytes, deep nesting, ids echoed with their type); here they come mixed, in
volume, with wrong types in every field of every method and tool, and the invariant is counted:
every request with a valid id gets exactly one answer, nothing else gets one except an id-null
error per unusable line, and the server goes on serving.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mcp_pipe import (LATEST_VERSION, McpServer, binary, is_error, is_response, payload, same_id, script_version,
                      structured, time_a_big_save)

# Under the ASan stage (tests/sanitizers/run.sh) the server is several times slower.
SLOW = 4.0 if os.environ.get("PYMCP_SANITIZED") else 1.0

# One value of every JSON type, and a few nasty ones of each.
VALUES = [None, True, False, 0, -1, 2 ** 63 - 1, 1.5, -0.0, 1e300, "", "x", "\u0000", "\ud7ff\u2028",
          " " * 3, [], [1, "a"], {}, {"a": {"b": [None]}}, "../../etc/passwd", "a" * 5000]

PYTHON_FIELDS = ["operation", "code", "session_id", "persistent", "run_on_main_thread", "filename", "timeout",
                 "max_output", "tool_unlock_token"]
SQLITE_FIELDS = ["sql", "params", "bindings", "database", "max_rows", "read_only", "operation", "tool_unlock_token"]
GOOD_PYTHON = {"operation": "execute", "code": "1 + 1", "session_id": "hostile", "persistent": True}
GOOD_SQLITE = {"sql": "SELECT 1 AS one", "database": ":memory:"}
BAD_IDS = [None, True, False, 1.5, -0.0, 1e2, [], [1], {}, {"id": 1}]
ODD_GOOD_IDS = [0, -1, 2 ** 63 - 1, -(2 ** 63), 2 ** 63, "", " ", "\u00e9\u2713", "0", "null", "1e3", "a" * 300]


class Barrage:
    """Builds the hostile stream and what each line must get back."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.lines: list[bytes] = []
        self.expected: dict[str, int] = {}   # json.dumps(id) -> answers due
        self.null_answers = 0                 # lines that must get exactly one id-null error
        self.counter = 0

    def fresh_id(self):
        self.counter += 1
        return self.rng.choice([f"h{self.counter}", 100_000 + self.counter])

    def request(self, method, params=None, *, id=None, omit_params=False):
        rid = self.fresh_id() if id is None else id
        message = {"jsonrpc": "2.0", "id": rid, "method": method}
        if not omit_params:
            message["params"] = params
        if params is None and not omit_params:
            del message["params"]
        self.lines.append(json.dumps(message).encode())
        key = json.dumps(rid)
        self.expected[key] = self.expected.get(key, 0) + 1

    def line_with_id(self, message: dict):
        """Any message with a fresh valid id: answered exactly once, whatever else is wrong."""
        rid = self.fresh_id()
        self.lines.append(json.dumps({"id": rid, **message}).encode())
        key = json.dumps(rid)
        self.expected[key] = self.expected.get(key, 0) + 1

    def raw(self, line: bytes, *, answered_with_null: bool):
        self.lines.append(line)
        if answered_with_null:
            self.null_answers += 1

    def notification(self, method, params=None):
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.lines.append(json.dumps(message).encode())


def build_barrage(seed: int = 7) -> Barrage:
    b = Barrage(seed)
    rng = b.rng
    # Invalid UTF-8, binary, truncated and non-JSON lines.
    for _ in range(200):
        junk = bytes(rng.randrange(128, 256) for _ in range(rng.randrange(0, 40)))
        cut = rng.randrange(len(junk) + 1)
        junk = junk[:cut] + rng.choice([b"\xff", b"\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80"]) + junk[cut:]
        b.raw(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"s":"' + junk + b'"}}', answered_with_null=True)
    for line in (b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"{", b"}", b"[", b"nul", b"tru",
                 b'{"jsonrpc":"2.0","id":1,"method":"ping"', b'{"a":1}{"b":2}', b"\x00", b'"unterminated',
                 b"{'single': 'quotes'}", b"NaN", b"Infinity", b'{"jsonrpc":"2.0","id":1,"method":"ping",}'):
        b.raw(line, answered_with_null=True)
    # Deeply nested arrays and objects, bare and inside a request.
    for depth in (10_000, 100_000, 300_000):
        b.raw(b"[" * depth + b"]" * depth, answered_with_null=True)
        b.raw(b'{"a":' * depth + b"1" + b"}" * depth, answered_with_null=True)
        line = (b'{"jsonrpc":"2.0","id":"deep","method":"ping","params":{"x":' + b"[" * depth + b"]" * depth
                + b"}}")
        # The parser refuses the line whole (depth limit), so its id is lost: an id-null error.
        b.raw(line, answered_with_null=True)
    # Envelopes that are JSON but not requests: every JSON type as the whole message.
    for value in VALUES:
        if isinstance(value, dict) and value:
            continue  # {"a": ...} is handled below as an object without jsonrpc
        b.raw(json.dumps(value).encode(), answered_with_null=True)
    # Ids of every JSON type: invalid ones get an id-null error, valid ones are echoed.
    for rid in BAD_IDS:
        for method in ("ping", "tools/list", "tools/call"):
            b.raw(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method}).encode(), answered_with_null=True)
    for rid in ODD_GOOD_IDS:
        b.request("ping", id=rid)
    # Wrong types in the envelope: with a valid id, the error echoes it.
    for value in VALUES:
        b.line_with_id({"jsonrpc": value, "method": "ping"})
        if not isinstance(value, str):
            b.line_with_id({"jsonrpc": "2.0", "method": value})
        b.line_with_id({"jsonrpc": "2.0", "method": "tools/list", "params": value})
    # Wrong types in every field of every method.
    for value in VALUES:
        b.request("initialize", {"protocolVersion": value, "capabilities": value, "clientInfo": value})
        b.request("tools/list", {"cursor": value})
        b.request("logging/setLevel", {"level": value})
        b.request("tools/call", {"name": value, "arguments": {}})
        b.request("tools/call", {"name": "python", "arguments": value})
        b.request("tools/call", {"name": "sqlite", "arguments": value})
        b.request("tools/call", {"name": "python", "arguments": {"input": value}})
        b.request("tools/call", {"name": "python", "arguments": GOOD_PYTHON, "_meta": value})
        for field in PYTHON_FIELDS:
            args = dict(GOOD_PYTHON, **{field: value})
            if field == "timeout" and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 30:
                continue  # a long but valid timeout on `1 + 1` is not hostile
            b.request("tools/call", {"name": "python", "arguments": rng.choice([args, {"input": args}])})
        for field in SQLITE_FIELDS:
            args = dict(GOOD_SQLITE, **{field: value})
            if field == "database" and isinstance(value, str) and value not in ("", "x"):
                continue  # only names that cannot be files
            b.request("tools/call", {"name": "sqlite", "arguments": rng.choice([args, {"input": args}])})
        b.notification("notifications/cancelled", {"requestId": value, "reason": value})
    # Cancellations for ids that were never sent or are long done, and odd cancellation shapes.
    for _ in range(100):
        b.notification("notifications/cancelled", {"requestId": rng.choice([rng.randrange(10 ** 9), f"gone-{rng.random()}"])})
    b.notification("notifications/cancelled", {})
    b.notification("notifications/cancelled")
    # Duplicate ids: the same id twice in a row (the second may find the first still running:
    # then it is refused; either way each gets exactly one answer).
    for i in range(30):
        rid = f"dup-{i}"
        b.request("tools/call", {"name": "python", "arguments": {"code": f"{i} * 2", "session_id": f"d{i % 3}",
                                                                  "persistent": True}}, id=rid)
        b.request(rng.choice(["ping", "tools/list"]), id=rid)
    # Client-side messages the server must not answer.
    b.lines.append(b'{"jsonrpc":"2.0","id":"from-client","result":{}}')
    b.lines.append(b'{"jsonrpc":"2.0","id":"from-client","error":{"code":1,"message":"x"}}')
    rng.shuffle(b.lines)
    return b


def test_a_thousand_hostile_messages(server):
    barrage = build_barrage()
    assert len(barrage.lines) >= 1000, len(barrage.lines)
    since = server.mark()
    start = time.monotonic()
    # In chunks of many lines per write, as a fast client would send them.
    for i in range(0, len(barrage.lines), 50):
        server.send_raw(b"\n".join(barrage.lines[i:i + 50]))
    server.request("ping", id="after-the-barrage", timeout=60)
    # Every request with a valid id: exactly one answer (python calls may still be finishing).
    deadline = time.monotonic() + 60
    while True:
        counts: dict[str, int] = {}
        nulls = 0
        for m in server.find(is_response, since=since):
            if m["id"] is None:
                nulls += 1
            else:
                counts[json.dumps(m["id"])] = counts.get(json.dumps(m["id"]), 0) + 1
        counts.pop('"after-the-barrage"', None)
        if all(counts.get(k, 0) >= n for k, n in barrage.expected.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    missing = {k: n - counts.get(k, 0) for k, n in barrage.expected.items() if counts.get(k, 0) != n}
    assert not missing, f"ids answered the wrong number of times (id: due - got): {dict(list(missing.items())[:10])}"
    unexpected = set(counts) - set(barrage.expected)
    assert not unexpected, f"answers to ids never sent: {sorted(unexpected)[:10]}"
    assert nulls == barrage.null_answers, f"{nulls} id-null errors for {barrage.null_answers} unusable lines"
    assert time.monotonic() - start < 90 * SLOW
    # Still serving, and the python tool works in the session the barrage used and in a new one.
    assert server.python(code="1 + 1", session_id="hostile", persistent=True)["structuredContent"]["result"] == "2"
    assert server.python(code="'calm'", session_id="after", persistent=True)["structuredContent"]["result"] == "'calm'"
    sql = server.call("sqlite", {"sql": "SELECT 2 AS two"})["result"]
    assert json.loads(sql["content"][0]["text"]) == [{"two": 2}]


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_100_mb_lines_are_refused_without_being_held_in_memory(server):
    before = vm_hwm_kib(server.proc.pid)
    hundred_mb = 100 * 1024 * 1024
    # The request's id is read from the line's start, so the first is answered under its own id.
    for body, answer_id in ((b'{"jsonrpc":"2.0","id":"big","method":"ping","params":{"pad":"' + b"x" * hundred_mb
                             + b'"}}', "big"),
                            (b"[" * hundred_mb, None),
                            (b"\xff" * hundred_mb, None)):
        since = server.mark()
        server.send_raw(body + b"\n" + b'{"jsonrpc":"2.0","id":"next","method":"ping"}')
        error = server.wait_for(lambda m: is_response(m) and m["id"] == answer_id, since=since, timeout=60,
                                what="the error for a 100 MB line")
        assert error["error"]["code"] in (-32600, -32700)
        assert str(32 * 1024 * 1024) in error["error"]["message"], error
        assert server.wait_response("next", since=since)["result"] == {}
        assert len(server.responses_for("big")) == 1
    # Reading up to the 32 MiB cap may take about twice that (string growth); holding a whole
    # 100 MB line would take more.
    grown_mib = (vm_hwm_kib(server.proc.pid) - before) / 1024
    assert grown_mib < 90, f"peak memory grew by {grown_mib:.0f} MiB while skipping 100 MB lines"
    assert server.python(code="'fine'")["structuredContent"]["result"] == "'fine'"


def test_a_100_mb_line_cut_by_eof_ends_the_server_cleanly(server):
    since = server.mark()
    server.send_raw(b'{"jsonrpc":"2.0","id":"ok","method":"ping"}')
    server.wait_response("ok", since=since)
    assert server.proc.stdin is not None
    server.proc.stdin.write(b'{"jsonrpc":"2.0","id":"cut","method":"ping","params":{"p":"' + b"y" * (100 * 1024 * 1024))
    server.proc.stdin.flush()
    start = time.monotonic()
    server.close_stdin()
    assert server.wait_exit(timeout=10) == 0
    assert time.monotonic() - start < 3 * SLOW
    # Over the cap, so at most the too-long error under its id (read from the line's start).
    assert all(r.get("error", {}).get("code") == -32600 for r in server.responses_for("cut"))


# --- a client that goes away ---------------------------------------------------------------------

def raw_server(tmp_path: Path) -> subprocess.Popen:
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.Popen([binary()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(tmp_path / "stderr.log", "wb"), env=env, cwd=str(tmp_path),
                            start_new_session=True)


def frame(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\n"


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": LATEST_VERSION, "capabilities": {}, "clientInfo": {"name": "gone", "version": "0"}}}


def call(id, code, **fields):
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "python", "arguments": {"code": code, **fields}}}


def wait_for_path(path: Path, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the server exited ({proc.returncode})"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.005)


@pytest.mark.parametrize("body", [
    "import time\ntime.sleep(30)",
    "while True:\n    print('chatter' * 100)",
], ids=["sleeping", "printing"])
def test_client_vanishing_mid_call_ends_the_server_cleanly(tmp_path, body):
    proc = raw_server(tmp_path)
    try:
        marker = tmp_path / "running"
        assert proc.stdin and proc.stdout
        proc.stdin.write(frame(INIT))
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1
        proc.stdin.write(frame({"jsonrpc": "2.0", "method": "notifications/initialized"}) +
                         frame(call(2, f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n{body}")))
        proc.stdin.flush()
        wait_for_path(marker, proc)
        # Both ends gone at once, as when the client process dies.
        proc.stdout.close()
        proc.stdin.close()
        start = time.monotonic()
        code = proc.wait(timeout=10)
        assert code == 0, f"exit code {code} (a negative one is the signal that killed it)"
        assert time.monotonic() - start < 2.5 * SLOW
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_client_that_stops_reading_does_not_kill_or_block_the_server(tmp_path):
    proc = raw_server(tmp_path)
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write(frame(INIT))
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1
        proc.stdout.close()  # answers now fail with EPIPE
        for i in range(200):
            proc.stdin.write(frame(call(10 + i, "print('x' * 10000)")) + frame({"jsonrpc": "2.0", "id": f"p{i}", "method": "ping"}))
        marker = tmp_path / "still-serving"
        proc.stdin.write(frame(call(9999, f"import pathlib\npathlib.Path({str(marker)!r}).touch()")))
        proc.stdin.flush()
        wait_for_path(marker, proc)  # it read and ran everything after its writes started failing
        assert proc.poll() is None
        proc.stdin.close()
        start = time.monotonic()
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - start < 2.5 * SLOW
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- SIGTERM while a script is saved ---------------------------------------------------------------

def test_sigterm_during_save_script_leaves_the_old_or_the_new_script(spawn, tmp_path):
    scripts = tmp_path / "scripts"
    size = 4 * 1024 * 1024
    rng = random.Random(11)
    s = spawn("--scripts-dir", str(scripts))
    s.initialize()
    save_time = time_a_big_save(s, size)  # to aim the signals inside a save
    current = 1
    outcomes = {"old": 0, "new": 0}
    for n in range(2, 12):
        s = spawn("--scripts-dir", str(scripts))
        s.initialize()
        since = s.mark()
        request = s.send_python("save_script", filename="big.py", code=script_version(n, size))
        time.sleep(rng.uniform(0, save_time * 1.2))
        s.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert s.wait_exit(timeout=10) == 0
        assert time.monotonic() - began < 2.0 * SLOW
        text = (scripts / "big.py").read_text()
        answered = [m for m in s.messages[since:] if is_response(m) and same_id(m["id"], request)]
        if text == script_version(n, size):
            outcomes["new"] += 1
            current = n
        else:
            assert text == script_version(current, size), f"torn script after SIGTERM in round {n}"
            assert not answered or is_error(answered[0]["result"]), "answered as saved, but the old text is there"
            outcomes["old"] += 1
        leftovers = [p.name for p in scripts.iterdir() if p.name != "big.py"]
        assert leftovers == [], f"temporary files left after SIGTERM: {leftovers}"
    # And a fresh server lists and loads it.
    s = spawn("--scripts-dir", str(scripts))
    s.initialize()
    assert payload(s.python("list_scripts"))["count"] == 1
    assert payload(s.python("load_script", filename="big.py"))["code"] == script_version(current, size)
