"""Measures what starting a job costs next to an execute (issue 13): round trips of
execute {code: "1"} and start_job {code: "1"} over real pipes, interleaved, medians in ms.
Also the same for main's binary when PYMCP_BIN_BASE is set (execute before jobs existed).
Usage: PYMCP_BIN=build/python-mcp /usr/bin/python3.11 tests/bench/bench_jobs.py [rounds]"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from mcp_pipe import McpServer  # noqa: E402


def timed(server, arguments):
    t = time.perf_counter()
    r = server.call("python", arguments)
    assert "result" in r, r
    return (time.perf_counter() - t) * 1000


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    s = McpServer([])
    s.initialize()
    try:
        for _ in range(50):  # warm up
            timed(s, {"operation": "execute", "code": "1"})
            timed(s, {"operation": "start_job", "code": "1"})
        ex, job = [], []
        for i in range(rounds):
            ex.append(timed(s, {"operation": "execute", "code": "1", "session_id": f"e{i % 4}"}))
            job.append(timed(s, {"operation": "start_job", "code": "1", "session_id": f"j{i % 4}"}))
        print(f"execute   median {statistics.median(ex):.3f} ms  p90 {sorted(ex)[int(rounds * .9)]:.3f}")
        print(f"start_job median {statistics.median(job):.3f} ms  p90 {sorted(job)[int(rounds * .9)]:.3f}")
        print(f"difference of medians {statistics.median(job) - statistics.median(ex):+.3f} ms")
    finally:
        s.close()
        s.cleanup()


if __name__ == "__main__":
    main()
