"""Measures (does not assert) what 1,000 schedule runs leave behind (issue 13): the server's RSS
and open fds after a warm-up of 100 runs and after 1,000, with a schedule every 0.05 s running a
script that prints a line and returns a value. Prints one JSON line.

    PYMCP_BIN=build/python-mcp /usr/bin/python3.11 tests/bench/bench_schedules.py [runs]
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from mcp_pipe import McpServer, structured  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    s = McpServer(["--min-schedule-interval", "0.05"])
    try:
        s.initialize()
        s.python("save_script", filename="bench.py", code="import sys\nprint('run', sys.argv[1:])\n{'n': 42}")
        sc = structured(s.python("schedule_script", filename="bench.py", every=0.05, args=["x"]))
        # The runs table keeps the last 100 per schedule: count the runs by their ids instead.
        db = sc["database"]

        def done() -> int:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                return c.execute("SELECT coalesce(max(id), 0) FROM runs WHERE status != 'running'").fetchone()[0]

        def wait_for(n: int) -> None:
            while done() < n:
                time.sleep(0.2)

        start = time.monotonic()
        wait_for(100)
        warm = {"runs": done(), "rss_kib": rss_kib(s.proc.pid), "fds": fds(s.proc.pid)}
        wait_for(total)
        end = {"runs": done(), "rss_kib": rss_kib(s.proc.pid), "fds": fds(s.proc.pid)}
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            rows = c.execute("SELECT count(*) FROM runs").fetchone()[0]
            statuses = dict(c.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        print(json.dumps({"after_warmup": warm, "after": end, "seconds": round(time.monotonic() - start, 1),
                          "rows_kept": rows, "statuses": statuses,
                          "db_bytes": sum(p.stat().st_size for p in Path(db).parent.glob("schedules.sqlite3*"))}))
    finally:
        s.close()
        s.cleanup()


if __name__ == "__main__":
    main()
