"""Measures what starting a task costs next to an execute (issue 13, the 2025-11-25 tasks
utility): round trips over real pipes, interleaved, medians in ms, of
  execute      tools/call {code: "1"}                      (answered with the result)
  task start   tools/call {code: "1"} + params.task        (answered with CreateTaskResult)
  task result  the same task start, then tasks/result      (blocks until the result)
Usage: PYMCP_BIN=build/python-mcp /usr/bin/python3.11 tests/bench/bench_tasks.py [rounds]"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from mcp_pipe import McpServer  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    s = McpServer([])
    s.initialize("2025-11-25")

    def execute(i):
        r = s.call("python", {"code": "1", "session_id": f"e{i % 4}"})
        assert "result" in r and r["result"]["structuredContent"]["result"] == "1", r

    def task(i):
        r = s.request("tools/call", {"name": "python", "arguments": {"code": "1", "session_id": f"t{i % 4}"},
                                     "task": {"ttl": 60000}})
        assert r["result"]["task"]["status"] in ("working", "completed"), r
        return r["result"]["task"]["taskId"]

    def task_and_result(i):
        r = s.request("tasks/result", {"taskId": task(i)})
        assert r["result"]["structuredContent"]["result"] == "1", r

    try:
        for i in range(50):  # warm up
            execute(i), task(i), task_and_result(i)
        ex, start, full = [], [], []
        for i in range(rounds):
            ex.append(timed(lambda: execute(i)))
            start.append(timed(lambda: task(i)))
            full.append(timed(lambda: task_and_result(i)))
        for name, v in (("execute", ex), ("task start", start), ("task + result", full)):
            print(f"{name:14} median {statistics.median(v):.3f} ms  p90 {sorted(v)[int(rounds * .9)]:.3f}")
        print(f"task start - execute: {statistics.median(start) - statistics.median(ex):+.3f} ms; "
              f"task + result - execute: {statistics.median(full) - statistics.median(ex):+.3f} ms")
    finally:
        s.close()
        s.cleanup()


if __name__ == "__main__":
    main()
