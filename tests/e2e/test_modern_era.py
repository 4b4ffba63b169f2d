"""The 2026-07-28 era over stdio, as a dual-era client (Claude Code) speaks it: server/discover
first, then stateless requests carrying _meta; and the legacy handshake still working in the same
process after the probe."""
from __future__ import annotations

import time

from mcp_pipe import payload

MODERN = "2026-07-28"


def meta(**extra):
    m = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "pymcp-e2e", "version": "1"},
    }
    m.update(extra)
    return m


def test_discover_probe_is_answered_at_once_with_a_modern_result(spawn):
    s = spawn()
    start = time.monotonic()
    response = s.request("server/discover", {"_meta": meta()}, id="discover-1", timeout=5)
    assert time.monotonic() - start < 1.0
    result = response["result"]
    assert result["resultType"] == "complete"
    assert result["supportedVersions"][0] == MODERN
    assert "2025-11-25" in result["supportedVersions"]
    assert result["capabilities"]["tools"] == {"listChanged": True}
    assert isinstance(result["ttlMs"], int) and result["cacheScope"] in ("public", "private")
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "python-mcp"
    assert "python" in result["instructions"]


def test_modern_requests_after_the_probe_run_python_without_initialize(spawn):
    s = spawn()
    s.request("server/discover", {"_meta": meta()}, id="d")
    tools = s.request("tools/list", {"_meta": meta()})["result"]
    assert tools["resultType"] == "complete" and tools["cacheScope"] == "private"
    assert {"python", "sqlite"} <= {t["name"] for t in tools["tools"]}
    call = s.request("tools/call", {"name": "python", "_meta": meta(),
                                    "arguments": {"input": {"operation": "execute", "code": "print(2 ** 10)"}}})
    assert call["result"]["resultType"] == "complete"
    assert payload(call["result"])["stdout"] == "1024\n"
    # Removed in the modern era, and versions it does not speak are named in the refusal.
    assert s.request("ping", {"_meta": meta()})["error"]["code"] == -32601
    bad = s.request("tools/list", {"_meta": meta(**{"io.modelcontextprotocol/protocolVersion": "2099-01-01"})})
    assert bad["error"]["code"] == -32022 and MODERN in bad["error"]["data"]["supported"]
    missing = s.request("tools/list", {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}})
    assert missing["error"]["code"] == -32602
    assert s.proc.poll() is None


def test_legacy_handshake_still_works_after_the_probe(spawn):
    s = spawn()
    assert "result" in s.request("server/discover", {"_meta": meta()}, id="discover-1")
    init = s.initialize("2025-06-18")
    assert init["protocolVersion"] == "2025-06-18"
    listed = s.request("tools/list")["result"]
    assert "resultType" not in listed and "ttlMs" not in listed
    assert s.request("ping")["result"] == {}
