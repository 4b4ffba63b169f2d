"""The set-up split (issue 15): the run command installs only what running needs, the test command
adds its own needs. Reads what scripts/setup.sh would install (--print-packages: nothing is
installed or built), and runs scripts/serve.sh in a copy of the tree whose setup.sh and binary are
stand-ins that record how they were called."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY = {"libgtest-dev", "libgmock-dev", "python3-pytest", "clang", "libclang-rt-14-dev", "llvm-14",
             "python3-dask", "python3-distributed", "nodejs", "npm"}
RUNTIME_PYTHON = {"python3-numpy", "python3-pandas", "python3-requests", "python3-scipy", "python3-matplotlib",
                  "python3-pil", "python3-openpyxl", "python3-lxml", "python3-bs4", "python3-tabulate"}


def needs(*args: str) -> tuple[set[str], list[str]]:
    run = subprocess.run([str(ROOT / "scripts" / "setup.sh"), "--print-packages", *args], capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    return {line.split()[1] for line in lines if line.startswith("apt ")}, [l for l in lines if not l.startswith("apt ")]


def test_runtime_setup_needs_no_test_tools():
    apt, other = needs()
    assert RUNTIME_PYTHON <= apt
    assert not (apt & TEST_ONLY), apt & TEST_ONLY
    assert other == []  # no npm


def test_test_setup_adds_the_test_tools():
    apt, other = needs("--with-tests")
    assert RUNTIME_PYTHON <= apt
    assert TEST_ONLY - {"nodejs", "npm"} <= apt  # node comes from apt only when missing or too old
    assert other == ["npm ci tests/interop", "npm ci tests/conformance"]


def test_serve_runs_the_runtime_setup_then_the_server(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "build").mkdir()
    shutil.copy(ROOT / "scripts" / "serve.sh", tmp_path / "scripts" / "serve.sh")
    setup = tmp_path / "scripts" / "setup.sh"
    setup.write_text(f"#!/bin/sh\necho \"setup args:[$*]\" > {tmp_path}/setup-called\necho 'setup chatter'\n")
    server = tmp_path / "build" / "python-mcp"
    server.write_text("#!/bin/sh\necho \"server args:[$*]\"\n")
    setup.chmod(0o755)
    server.chmod(0o755)
    run = subprocess.run([str(tmp_path / "scripts" / "serve.sh"), "--timeout", "5"], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "setup-called").read_text() == "setup args:[]\n"
    assert run.stdout == "server args:[--timeout 5]\n"  # set-up output never reaches stdout
    assert "setup chatter" in run.stderr


def test_ci_runs_the_test_command():
    assert "exec scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert '"$root/scripts/setup.sh" --with-tests' in (ROOT / "scripts" / "test.sh").read_text()
