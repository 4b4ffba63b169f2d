"""Process isolation (issue 16), measured over real pipes:

1. execute latency of `x + 1` in a persistent session: in a worker process vs in-process
   (interleaved round trips, medians and p90 in ms; target: worker <= 2x in-process);
2. a segfault answered, and a fresh session ready (the next call's answer) after it
   (target <= 200 ms), repeated;
3. new-session start (first execute of a new session name: takes the warm spare), and without a
   spare (the first process session of a server started with --isolation thread);
4. N kill/restart cycles (restart_session while idle, then an execute that starts the fresh
   worker), then the server's fds, threads and zombie children, before and after.

Usage: PYMCP_BIN=build/python-mcp /usr/bin/python3.11 tests/bench/bench_isolation.py [rounds] [cycles]"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from mcp_pipe import McpServer  # noqa: E402


def timed(server, arguments):
    t = time.perf_counter()
    r = server.call("python", arguments, timeout=60)
    assert "result" in r, r
    return (time.perf_counter() - t) * 1000, r["result"]


def stats(name, values):
    values = sorted(values)
    print(f"{name:<44} median {statistics.median(values):8.3f} ms  p90 {values[int(len(values) * .9)]:8.3f} ms"
          f"  (n={len(values)})")


def census(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    zombies = children = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == pid:
                children += 1
                zombies += fields[0] == "Z"
    return {"fds": fds, "threads": threads, "children": children, "zombies": zombies}


def latency(s, rounds):
    for sid, iso in (("w", "process"), ("t", "thread")):
        timed(s, {"code": "x = 1", "session_id": sid, "persistent": True, "isolation": iso})
    for _ in range(50):
        timed(s, {"code": "x + 1", "session_id": "w", "persistent": True})
        timed(s, {"code": "x + 1", "session_id": "t", "persistent": True})
    worker, thread = [], []
    for _ in range(rounds):
        worker.append(timed(s, {"code": "x + 1", "session_id": "w", "persistent": True})[0])
        thread.append(timed(s, {"code": "x + 1", "session_id": "t", "persistent": True})[0])
    stats("execute in-process (thread)", thread)
    stats("execute in a worker (process)", worker)
    print(f"ratio of medians worker/in-process: {statistics.median(worker) / statistics.median(thread):.2f}x")


def crash_recovery(s, n):
    crash, fresh = [], []
    for i in range(n):
        ms, r = timed(s, {"code": "import ctypes; ctypes.string_at(0)", "session_id": "c", "persistent": True,
                          "isolation": "process"})
        assert r["isError"] and "SIGSEGV" in r["structuredContent"]["error"]["message"], r
        crash.append(ms)
        ms2, r = timed(s, {"code": "1", "session_id": "c", "persistent": True})
        assert not r["isError"], r
        fresh.append(ms + ms2)
    stats("segfault answered", crash)
    stats("segfault answered + fresh session answered", fresh)


def new_sessions(s, n):
    first = []
    for i in range(n):
        first.append(timed(s, {"code": "1", "session_id": f"n{i}", "persistent": True, "isolation": "process"})[0])
        s.call("python", {"operation": "clear_session", "session_id": f"n{i}"})
        time.sleep(0.3)  # let the spawner make the next spare: this measures a warm start, not a cold one
    stats("new session (warm spare), first execute", first)


def cycles(s, n):
    timed(s, {"code": "1", "session_id": "k", "persistent": True, "isolation": "process"})
    for _ in range(20):  # warm-up: the pools reach their working size first
        s.call("python", {"operation": "restart_session", "session_id": "k"})
        timed(s, {"code": "1", "session_id": "k", "persistent": True})
    time.sleep(1)
    before = census(s.proc.pid)
    t = time.perf_counter()
    for _ in range(n):
        s.call("python", {"operation": "restart_session", "session_id": "k"})
        timed(s, {"code": "1", "session_id": "k", "persistent": True})
    elapsed = time.perf_counter() - t
    deadline = time.monotonic() + 10
    after = census(s.proc.pid)
    while after != before and time.monotonic() < deadline:  # the last worker is reaped asynchronously
        time.sleep(0.05)
        after = census(s.proc.pid)
    print(f"{n} kill/restart cycles in {elapsed:.1f} s ({elapsed / n * 1000:.1f} ms each)")
    print(f"  before: {before}")
    print(f"  after:  {after}")


def cold_starts(n):
    """The first process session of a server started with --isolation thread: no spare yet."""
    first = []
    for _ in range(n):
        s = McpServer([])
        s.initialize()
        try:
            timed(s, {"code": "1"})  # the server's own Python is up
            first.append(timed(s, {"code": "1", "session_id": "cold", "persistent": True, "isolation": "process"})[0])
        finally:
            s.close()
            s.cleanup()
    stats("new session, no spare yet (cold worker start)", first)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    n_cycles = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    s = McpServer([])
    s.initialize()
    try:
        latency(s, rounds)
        crash_recovery(s, 20)
        new_sessions(s, 20)
        cycles(s, n_cycles)
    finally:
        s.close()
        s.cleanup()
    cold_starts(5)


if __name__ == "__main__":
    main()
