"""kill -9 of the server in the middle of writes (issue 7, "Hardening").

SIGKILL gives the server no chance to finish anything, so what is on disk afterwards is exactly
what its write protocol guarantees: a saved script is the old or the new version, never torn
(temporary file, fsync, rename), and a sqlite database passes PRAGMA integrity_check with each
transaction applied whole or not at all. Many rounds, each killed at a random moment inside the
write (aimed with the measured duration of one write, and at the moment the temporary file
appears), each checked by a fresh server.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import time
from pathlib import Path

from mcp_pipe import McpServer, is_error, is_response, payload, same_id, script_version, time_a_big_save


def kill9(s: McpServer) -> None:
    s.send_signal(signal.SIGKILL)
    assert s.wait_exit(timeout=10) == -signal.SIGKILL


def answered_ok(s: McpServer, request_id, since: int) -> bool:
    answers = [m for m in s.messages[since:] if is_response(m) and same_id(m["id"], request_id)]
    return bool(answers) and "result" in answers[0] and not is_error(answers[0]["result"])


def wait_for_temp_file(directory: Path, prefix: str, s: McpServer, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not any(p.name.startswith(prefix) for p in directory.iterdir()):
        assert s.proc.poll() is None
        if time.monotonic() > deadline:
            return  # the save may have finished already; the round still counts
        time.sleep(0.0005)


def test_kill_9_during_save_script_leaves_the_old_or_the_new_script(spawn, tmp_path):
    scripts = tmp_path / "scripts"
    size = 3 * 1024 * 1024
    rng = random.Random(5)
    s = spawn("--scripts-dir", str(scripts))
    s.initialize()
    save_time = time_a_big_save(s, size)
    s.close()
    current, outcomes = 1, {"old": 0, "new": 0}
    for n in range(2, 26):
        s = spawn("--scripts-dir", str(scripts))
        s.initialize()
        since = s.mark()
        request = s.send_python("save_script", filename="big.py", code=script_version(n, size))
        if n % 2:
            time.sleep(rng.uniform(0, save_time * 1.5))
        else:
            wait_for_temp_file(scripts, ".big.py.", s)
            time.sleep(rng.uniform(0, 0.01))
        kill9(s)
        text = (scripts / "big.py").read_text()
        if text == script_version(n, size):
            outcomes["new"] += 1
            current = n
        else:
            assert text == script_version(current, size), f"a torn script after kill -9 in round {n}"
            assert not answered_ok(s, request, since), f"round {n}: answered as saved, but the old text is there"
            outcomes["old"] += 1
    # Both outcomes happened: the kills did land before and after the rename.
    assert outcomes["old"] and outcomes["new"], outcomes
    # A fresh server sees exactly one script (left-over temporary files are hidden) with the last text.
    s = spawn("--scripts-dir", str(scripts))
    s.initialize()
    listing = payload(s.python("list_scripts"))
    assert [e["filename"] for e in listing["scripts"]] == ["big.py"], listing
    assert payload(s.python("load_script", filename="big.py"))["code"] == script_version(current, size)
    assert not is_error(s.python("save_script", filename="big.py", code="print('after the crashes')"))
    assert s.python("run_script", filename="big.py")["structuredContent"]["stdout"] == "after the crashes\n"


ROWS = 60_000


def insert_batch(n: int) -> list[str]:
    """One transaction (a list of statements runs as one): two halves of batch n and a counter."""
    half = ROWS // 2
    cte = "WITH RECURSIVE c(x) AS (SELECT {lo} UNION ALL SELECT x + 1 FROM c WHERE x < {hi}) "
    return [cte.format(lo=1, hi=half) + f"INSERT INTO t (batch, x, pad) SELECT {n}, x, randomblob(200) FROM c",
            cte.format(lo=half + 1, hi=ROWS) + f"INSERT INTO t (batch, x, pad) SELECT {n}, x, randomblob(200) FROM c",
            "UPDATE meta SET batches = batches + 1"]


def sql(s: McpServer, statement, **fields) -> list:
    result = s.call("sqlite", {"sql": statement, "database": "crash.db", **fields}, timeout=60)
    assert "result" in result and not is_error(result["result"]), result
    return json.loads(result["result"]["content"][0]["text"])


def check_database(s: McpServer, committed: set[int], maybe: int | None) -> set[int]:
    """integrity_check is ok, each batch is whole, the counter matches; returns the batches present."""
    assert sql(s, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    per_batch = {r["batch"]: r["n"] for r in sql(s, "SELECT batch, COUNT(*) AS n FROM t GROUP BY batch")}
    assert all(n == ROWS for n in per_batch.values()), f"a partly applied transaction: {per_batch}"
    batches = sql(s, "SELECT batches FROM meta")[0]["batches"]
    assert batches == len(per_batch), f"counter {batches} but {len(per_batch)} batches"
    present = set(per_batch)
    assert committed <= present, f"answered transactions lost: {committed - present}"
    assert present <= committed | ({maybe} if maybe is not None else set()), present
    return present


def test_kill_9_during_a_sqlite_transaction_is_all_or_nothing(spawn, tmp_path):
    data = tmp_path / "data"
    rng = random.Random(9)
    s = spawn("--data-dir", str(data))
    s.initialize()
    sql(s, ["CREATE TABLE t (batch INTEGER, x INTEGER, pad BLOB)", "CREATE TABLE meta (batches INTEGER)",
            "INSERT INTO meta VALUES (0)"])
    start = time.monotonic()
    sql(s, insert_batch(0))
    write_time = time.monotonic() - start
    s.close()
    committed, outcomes = {0}, {"applied": 0, "not applied": 0}
    maybe = None
    for n in range(1, 13):
        s = spawn("--data-dir", str(data))
        s.initialize()
        committed = check_database(s, committed, maybe)
        since = s.mark()
        request = s.send_call("sqlite", {"sql": insert_batch(n), "database": "crash.db"})
        time.sleep(rng.uniform(0.05, write_time * 1.1))
        kill9(s)
        if answered_ok(s, request, since):
            committed.add(n)
            maybe = None
        else:
            maybe = n
    s = spawn("--data-dir", str(data))
    s.initialize()
    present = check_database(s, committed, maybe)
    s.close()
    # The same database through the standard library, no python-mcp involved.
    db = sqlite3.connect(data / "crash.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (ROWS * len(present),)
    finally:
        db.close()
    # The rounds were killed both before and after their commit.
    assert len(present) - 1 < 12, "every transaction finished before the kill: the test did not test"
