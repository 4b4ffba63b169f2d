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

from mcp_pipe import McpServer  # noqa: E402


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
