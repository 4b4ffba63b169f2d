"""Schedules over real pipes (issue 13): schedule_script runs a saved script every N seconds or on
a cron expression; list_schedules shows its runs; unschedule stops it. Schedules and runs live
in <data dir>/schedules.sqlite3, survive restarts, never overlap, and a run cut off by kill -9
shows as 'interrupted' at the next start. Waits poll the server with deadlines (no sleeps)."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from mcp_pipe import DEFAULT_TIMEOUT, is_error, structured, text_of
from mcp_pipe import wait_until as wait_until_within

FAST = ("--min-schedule-interval", "0.05")


def py(server, operation, **fields):
    response = server.call("python", {"input": {"operation": operation, **fields}})
    assert "result" in response, f"{operation}: JSON-RPC error {response}"
    return response["result"]


def ok(server, operation, **fields):
    r = py(server, operation, **fields)
    assert not is_error(r), text_of(r)
    return structured(r)


def wait_until(condition, what, timeout=DEFAULT_TIMEOUT * 2):
    return wait_until_within(condition, what, timeout)


def schedule_of(server, schedule_id):
    for s in ok(server, "list_schedules")["schedules"]:
        if s["schedule_id"] == schedule_id:
            return s
    return None


def runs_in_db(db: Path, schedule_id: int) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return c.execute("SELECT status, started_unix, duration_ms FROM runs WHERE schedule_id = ? ORDER BY id",
                         (schedule_id,)).fetchall()


def finished_runs(server, schedule_id, n):
    s = schedule_of(server, schedule_id)
    done = [r for r in (s or {}).get("runs", []) if r["status"] != "running"]
    return done if len(done) >= n else None


def dirs(server):
    """Options that point another server at this one's data and scripts."""
    return ("--data-dir", str(server.data_home / "python-mcp" / "databases"),
            "--scripts-dir", str(server.scripts_dir))


def test_a_schedule_runs_and_its_runs_are_listed(spawn):
    s = spawn(*FAST)
    s.initialize()
    ok(s, "save_script", filename="hello.py", code="import sys\nprint('hello', sys.argv[1:])\n6 * 7")
    sc = ok(s, "schedule_script", filename="hello", every=0.1, args=["a", "b"])
    assert sc["schedule_id"] >= 1 and sc["next_run"] and sc["filename"] == "hello.py"
    assert sc["database"].endswith("schedules.sqlite3") and sc["args"] == ["a", "b"]
    runs = wait_until(lambda: finished_runs(s, sc["schedule_id"], 3), "three runs")
    for run in runs:
        assert run["status"] == "success" and run["result"] == "42"
        assert run["output"] == "hello ['a', 'b']\n" and run["duration_ms"] is not None
        assert run["started_at"].endswith("Z")
    listed = py(s, "list_schedules")
    assert "hello.py" in text_of(listed) and "schedules.sqlite3" in text_of(listed)
    assert structured(listed)["database"] == sc["database"]


def test_failures_and_timeouts_are_recorded(spawn):
    s = spawn(*FAST)
    s.initialize()
    ok(s, "save_script", filename="boom.py", code="print('before')\nraise ValueError('bad data')")
    ok(s, "save_script", filename="slow.py", code="import time\ntime.sleep(30)")
    boom = ok(s, "schedule_script", filename="boom.py", every=0.2)["schedule_id"]
    slow = ok(s, "schedule_script", filename="slow.py", every=0.2, timeout=0.3)["schedule_id"]
    run = wait_until(lambda: finished_runs(s, boom, 1), "a failed run")[0]
    assert run["status"] == "failure" and "ValueError: bad data" in run["error"] and run["output"] == "before\n"
    run = wait_until(lambda: finished_runs(s, slow, 1), "a timed-out run")[0]
    assert run["status"] == "timeout"


def test_a_named_session_keeps_its_state_between_runs(spawn):
    s = spawn(*FAST)
    s.initialize()
    ok(s, "save_script", filename="count.py", code="n = globals().get('n', 0) + 1\nn")
    sid = ok(s, "schedule_script", filename="count.py", every=0.1, session_id="ticker")["schedule_id"]
    runs = wait_until(lambda: finished_runs(s, sid, 3), "three runs")
    results = [int(r["result"]) for r in reversed(runs)]  # oldest first
    assert results == list(range(results[0], results[0] + len(results)))
    assert ok(s, "execute", code="n", session_id="ticker", persistent=True)["result"] is not None


def test_no_overlap_when_a_run_outlasts_the_interval(spawn):
    s = spawn(*FAST)
    s.initialize()
    ok(s, "save_script", filename="long.py", code="import time\ntime.sleep(0.6)\n'ok'")
    sc = ok(s, "schedule_script", filename="long.py", every=0.1)
    wait_until(lambda: finished_runs(s, sc["schedule_id"], 3), "three runs")
    runs = [r for r in runs_in_db(Path(sc["database"]), sc["schedule_id"]) if r[0] != "running"]
    for (_, start_a, dur_a), (_, start_b, _) in zip(runs, runs[1:]):
        assert start_b >= start_a + dur_a / 1000 - 0.001, f"runs overlapped: {runs}"
    assert schedule_of(s, sc["schedule_id"])["skipped"] > 0  # the ticks during a run were skipped


def test_a_schedule_survives_a_restart_with_the_same_data_dir(spawn):
    first = spawn(*FAST)
    first.initialize()
    ok(first, "save_script", filename="mark.py", code="import os\nos.getpid()")
    sid = ok(first, "schedule_script", filename="mark.py", every=0.1)["schedule_id"]
    before = wait_until(lambda: finished_runs(first, sid, 2), "runs in the first server")
    first.close()
    second = spawn(*FAST, *dirs(first))
    second.initialize()
    assert schedule_of(second, sid) is not None
    pid = str(second.proc.pid)
    after = wait_until(lambda: [r for r in (finished_runs(second, sid, 1) or []) if r["result"] == pid] or None,
                       "a run in the restarted server")
    assert after and before[0]["result"] != pid


def test_kill_9_during_a_run_records_it_as_interrupted_at_the_next_start(spawn):
    first = spawn(*FAST)
    first.initialize()
    marker = first.work / "started"
    ok(first, "save_script", filename="hang.py",
       code=f"import time\nopen({str(marker)!r}, 'w').close()\ntime.sleep(60)")
    sc = ok(first, "schedule_script", filename="hang.py", every=0.2)
    first.wait_for_file(marker)
    assert [r[0] for r in runs_in_db(Path(sc["database"]), sc["schedule_id"])] == ["running"]
    first.send_signal(signal.SIGKILL)
    first.wait_exit(10)
    marker.unlink()
    second = spawn(*FAST, *dirs(first))
    second.initialize()
    kept = schedule_of(second, sc["schedule_id"])
    assert kept is not None and kept["filename"] == "hang.py"
    statuses = [r[0] for r in runs_in_db(Path(sc["database"]), sc["schedule_id"])]
    assert statuses[0] == "interrupted", statuses
    assert "interrupted" in second.stderr_text()  # the start-up log says so
    second.wait_for_file(marker)  # re-armed: it runs again


def test_unschedule_stops_it(spawn):
    s = spawn(*FAST)
    s.initialize()
    log = s.work / "runs.log"
    ok(s, "save_script", filename="tally.py", code=f"open({str(log)!r}, 'a').write('x')")
    ok(s, "save_script", filename="clock.py", code="1")
    target = ok(s, "schedule_script", filename="tally.py", every=0.05)["schedule_id"]
    wait_until(lambda: log.exists() and log.stat().st_size >= 2, "two runs")
    r = ok(s, "unschedule", schedule_id=target)
    assert r["deleted"] is True
    clock = ok(s, "schedule_script", filename="clock.py", every=0.05)["schedule_id"]
    wait_until(lambda: finished_runs(s, clock, 3), "the clock schedule runs")
    size = log.stat().st_size
    wait_until(lambda: finished_runs(s, clock, 5), "more clock runs")
    assert log.stat().st_size == size
    assert schedule_of(s, target) is None
    assert is_error(py(s, "unschedule", schedule_id=target))


def test_bad_input_gets_a_clear_error(spawn):
    s = spawn(*FAST)
    s.initialize()
    ok(s, "save_script", filename="x.py", code="1")
    cases = [
        (dict(filename="missing.py", every=5), "no script named 'missing.py'"),
        (dict(filename="x.py"), "give 'every'"),
        (dict(filename="x.py", every=5, cron="* * * * *"), "not both"),
        (dict(filename="x.py", cron="61 * * * *"), "minute field '61'"),
        (dict(filename="x.py", cron="* * * *"), "5 fields"),
        (dict(filename="x.py", cron="0 0 30 2 *"), "never matches"),
        (dict(filename="x.py", every=0.01), "'every' must be"),
        (dict(filename="x.py", every=1, args="a b"), "list of strings"),
        (dict(filename="x.py", every=1, timeout=-1), "'timeout'"),
        (dict(filename="x.py", every=1, evry=2), "did you mean 'every'"),
    ]
    for fields, expected in cases:
        r = py(s, "schedule_script", **fields)
        assert is_error(r) and expected in text_of(r), (fields, text_of(r))
    assert is_error(py(s, "unschedule")) and "schedule_id" in text_of(py(s, "unschedule"))
    assert ok(s, "list_schedules")["count"] == 0


def test_python_reads_the_runs_table(spawn):
    s = spawn(*FAST)
    s.initialize()
    ok(s, "save_script", filename="v.py", code="print('value', 7)")
    sc = ok(s, "schedule_script", filename="v.py", every=0.1)
    wait_until(lambda: finished_runs(s, sc["schedule_id"], 2), "two runs")
    code = ("import sqlite3\n"
            f"c = sqlite3.connect({sc['database']!r})\n"
            "c.execute(\"SELECT count(*), min(status), max(output) FROM runs WHERE status = 'success'\").fetchone()")
    got = ok(s, "execute", code=code)
    assert got["success"] and ", 'success', 'value 7\\n')" in got["result"], got
    code = ("r = mcp.call('sqlite', {'database': 'schedules.sqlite3', "
            "'sql': 'SELECT s.script, r.status FROM runs r JOIN schedules s ON s.id = r.schedule_id LIMIT 1'})\n"
            "r['structuredContent']['rows']")
    got = ok(s, "execute", code=code)
    assert got["result"] == "[['v.py', 'success']]", got


def test_no_schedules_option_and_an_unreadable_database(spawn, tmp_path):
    off = spawn("--no-schedules")
    off.initialize()
    r = py(off, "list_schedules")
    assert is_error(r) and "--no-schedules" in text_of(r)
    db = tmp_path / "schedules.sqlite3"
    db.write_bytes(b"this is not a database" * 100)
    s = spawn("--data-dir", str(tmp_path))
    s.initialize()
    r = py(s, "list_schedules")
    assert is_error(r) and str(db) in text_of(r) and "schedules are off" in text_of(r)
    assert "schedules are off" in s.stderr_text()
    assert ok(s, "execute", code="1 + 1")["result"] == "2"  # the rest of the server works
    assert db.read_bytes().startswith(b"this is not a database")  # and the file is left alone


def test_unschedule_during_a_run_interrupts_it_and_answers(spawn):
    # Cancelling the run completes it on the cancelling thread: unschedule once held the
    # scheduler's lock across that and deadlocked (seen 1 in 25 runs of test_unschedule_stops_it).
    s = spawn(*FAST)
    s.initialize()
    marker = s.work / "started"
    ok(s, "save_script", filename="hang.py", code=f"import time\nopen({str(marker)!r}, 'w').close()\ntime.sleep(60)")
    sid = ok(s, "schedule_script", filename="hang.py", every=0.1)["schedule_id"]
    s.wait_for_file(marker)
    assert ok(s, "unschedule", schedule_id=sid)["deleted"] is True
    assert ok(s, "list_schedules")["count"] == 0
    assert ok(s, "execute", code="1")["result"] == "1"
