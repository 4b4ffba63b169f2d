"""Scale-out on Dask (issue 15): a real `dask scheduler` and two `dask worker`s on 127.0.0.1 (random
ports, no dashboards, idle and death time-outs so nothing outlives a crashed test), and the python
tool running a dask.dataframe groupby over partitioned CSVs on that cluster through mcp.dask().

Labelled `dask` (not `e2e`): the cluster is pure Python, so the sanitizer stage would only add
minutes. Needs python3-dask and python3-distributed (scripts/setup.sh --with-tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from mcp_pipe import error_text, is_error, structured

START_TIMEOUT = 120  # seconds for the scheduler and workers to come up on a loaded machine

# distributed 2022.12 on tornado 6.2 warns about its own event loop set-up.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Cluster:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.scheduler_file = tmp / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.logs = []

    def _start(self, name: str, *args: str) -> None:
        log = open(self.tmp / f"{name}.log", "wb")
        self.logs.append(log)
        self.procs.append(subprocess.Popen(["dask", *args], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                           cwd=self.tmp, start_new_session=True))

    def start(self) -> str:
        self._start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(self.scheduler_file), "--idle-timeout", "600")
        deadline = time.monotonic() + START_TIMEOUT
        while not self.scheduler_file.exists():
            assert self.procs[0].poll() is None, "the scheduler exited:\n" + self.log_text()
            assert time.monotonic() < deadline, "the scheduler did not start:\n" + self.log_text()
            time.sleep(0.1)
        for i in (1, 2):
            self._start(f"worker{i}", "worker", "--scheduler-file", str(self.scheduler_file), "--name", f"w{i}",
                        "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                        "--local-directory", str(self.tmp / f"w{i}"), "--death-timeout", "60")
        from distributed import Client
        with Client(scheduler_file=str(self.scheduler_file), timeout=START_TIMEOUT) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
            return client.scheduler.address

    def log_text(self) -> str:
        for log in self.logs:
            log.flush()
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in self.tmp.glob("*.log"))

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=20)
        for log in self.logs:
            log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        address = c.start()
        yield address
    finally:
        c.stop()
    assert all(p.poll() is not None for p in c.procs)


@pytest.fixture
def partitions(tmp_path) -> tuple[str, pd.DataFrame]:
    frames = []
    for i in range(4):
        df = pd.DataFrame({"key": [f"k{(i * 7 + j) % 5}" for j in range(50)],
                           "value": [i * 100 + j for j in range(50)]})
        df.to_csv(tmp_path / f"part-{i}.csv", index=False)
        frames.append(df)
    return str(tmp_path / "part-*.csv"), pd.concat(frames)


GROUPBY = """
import json
import dask.dataframe as dd
from distributed import get_worker
client = mcp.dask()
ddf = dd.read_csv({pattern!r})
sums = ddf.groupby('key')['value'].sum().compute()
# get_worker() fails outside a worker: this proves the partitions ran on the cluster.
where = ddf.map_partitions(lambda part: part.assign(worker=get_worker().address),
                           meta=ddf._meta.assign(worker='')).compute()
print(json.dumps({{'sums': {{k: int(v) for k, v in sums.items()}}, 'workers': sorted(set(where['worker'])),
                  'cluster': sorted(client.scheduler_info()['workers']), 'same': client is mcp.dask(),
                  'address': mcp.dask_scheduler}}))
"""


def run_groupby(server, pattern: str) -> dict:
    result = server.python(code=GROUPBY.format(pattern=pattern), timeout=150, wait=180)
    assert not is_error(result), error_text(result)
    return json.loads(structured(result)["stdout"])


def check(got: dict, expected: pd.DataFrame, address: str) -> None:
    want = {k: int(v) for k, v in expected.groupby("key")["value"].sum().items()}
    assert got["sums"] == want
    assert len(got["cluster"]) == 2
    assert got["workers"] and set(got["workers"]) <= set(got["cluster"])
    assert got["same"] is True and got["address"] == address


def test_groupby_over_partitioned_csvs_runs_on_the_cluster(spawn, cluster, partitions):
    pattern, expected = partitions
    server = spawn("--dask-scheduler", cluster)
    server.initialize()
    check(run_groupby(server, pattern), expected, cluster)


def test_scheduler_from_the_environment_variable(spawn, cluster, partitions):
    pattern, expected = partitions
    server = spawn(env={"PYTHON_MCP_DASK_SCHEDULER": cluster})
    server.initialize()
    check(run_groupby(server, pattern), expected, cluster)
