"""Fixtures for the end-to-end suites.

`spawn(*args)` starts a python-mcp process (see mcp_pipe.McpServer); `server` is one that has
completed initialize. At the teardown of every test, each process is ended and every line it
wrote to stdout must have been a whole, valid JSON-RPC 2.0 message: a stray byte fails the test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mcp_pipe import SANITIZED, McpServer  # noqa: E402

# Tests that cannot hold under AddressSanitizer by its design, skipped by the sanitizer stage only
# (tests/sanitizers/run.sh sets PYMCP_SANITIZED); each entry carries its reason. See the file.
ASAN_SKIP_LIST = Path(__file__).resolve().parents[1] / "sanitizers" / "e2e_skip_under_asan.txt"


def _asan_skips() -> dict[str, str]:
    skips: dict[str, str] = {}
    if ASAN_SKIP_LIST.exists():
        for line in ASAN_SKIP_LIST.read_text().splitlines():
            test, _, reason = line.partition("#")
            if test.strip():
                skips[test.strip()] = reason.strip() or "not meaningful under ASan"
    return skips


def pytest_collection_modifyitems(config, items):
    if not SANITIZED:
        return
    skips = _asan_skips()
    for item in items:
        file = Path(str(item.fspath)).name
        for key in (f"{file}::{item.name}", f"{file}::{getattr(item, 'originalname', item.name)}"):
            if key in skips:
                item.add_marker(pytest.mark.skip(reason=f"under ASan: {skips[key]}"))
                break


@pytest.fixture
def spawn():
    servers: list[McpServer] = []

    def start(*args: str, **kwargs) -> McpServer:
        server = McpServer(args, **kwargs)
        servers.append(server)
        return server

    yield start

    problems = []
    for server in servers:
        server.close()
        for p in server.protocol_problems():
            problems.append(f"[{' '.join(server.args) or 'no options'}] {p}")
    for server in servers:
        server.cleanup()
    if problems:
        pytest.fail("stdout carried lines that are not valid JSON-RPC 2.0 messages:\n" + "\n".join(problems),
                    pytrace=False)


@pytest.fixture
def server(spawn) -> McpServer:
    s = spawn()
    s.initialize()
    return s
