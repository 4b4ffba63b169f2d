"""The Debian package (issue 15): `cpack -G DEB` on the Release build makes a .deb whose control
fields name the runtime packages, which holds the binary and the shipped scripts, and which runs
when extracted into a temporary root (dpkg-deb -x): --version, and one initialize + tools/call of
the python tool over stdio, finding its scripts relative to itself. Nothing is installed into the
system.

Run by ctest (label `package`) with PYMCP_BUILD_DIR and PYMCP_CPACK set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from mcp_pipe import McpServer, error_text, is_error, structured  # noqa: E402

BUILD = Path(os.environ.get("PYMCP_BUILD_DIR", Path(__file__).resolve().parents[2] / "build"))
CPACK = os.environ.get("PYMCP_CPACK", "cpack")
RUNTIME_DEPENDS = ["libpython3.11", "python3.11", "libsqlite3-0", "libspdlog1.10", "libfmt9", "libstdc++6", "libc6",
                   "python3-numpy", "python3-pandas", "python3-requests", "python3-scipy", "python3-matplotlib",
                   "python3-pil", "python3-openpyxl", "python3-lxml", "python3-bs4", "python3-tabulate"]


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cpack")
    run = subprocess.run([CPACK, "-G", "DEB", "--config", str(BUILD / "CPackConfig.cmake"), "-B", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    debs = list(out.glob("*.deb"))
    assert len(debs) == 1, run.stdout
    return debs[0]


def field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def dependency_names(depends: str) -> list[str]:
    names = []
    for clause in depends.split(","):
        for alternative in clause.split("|"):
            names.append(re.sub(r"\s*\(.*\)", "", alternative).strip())
    return names


def test_control_fields(deb):
    assert field(deb, "Package") == "python-mcp"
    assert re.fullmatch(r"\d+\.\d+\.\d+", field(deb, "Version"))
    assert field(deb, "Architecture") == subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                                                        text=True, check=True).stdout.strip()
    depends = dependency_names(field(deb, "Depends"))
    for package in RUNTIME_DEPENDS:
        assert package in depends, f"Depends lacks {package}: {depends}"
    # Every name is a real Debian 12 package: this machine has each of them installed.
    for package in depends:
        status = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package], capture_output=True, text=True)
        assert status.stdout.startswith("ii"), f"Depends names {package}, which is not an installed package here"
    # No build or test tools at run time.
    for package in ("libgtest-dev", "python3-pytest", "clang", "cmake", "npm"):
        assert package not in depends


def test_contents(deb):
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    paths = {line.split()[-1] for line in listing.splitlines()}
    assert "./usr/bin/python-mcp" in paths
    shipped = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "scripts_store").glob("*.py"))
    for name in shipped:
        assert f"./usr/share/python-mcp/scripts_store/{name}" in paths
    assert "./usr/share/doc/python-mcp/copyright" in paths


def test_extracted_package_runs(deb, tmp_path, monkeypatch):
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=120)
    binary = root / "usr" / "bin" / "python-mcp"
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("python-mcp "), version

    monkeypatch.setenv("PYMCP_BIN", str(binary))
    server = McpServer()
    try:
        server.initialize()
        result = server.python(code="import numpy, sys\nprint(sys.version_info[:2])\nint(numpy.arange(7).sum()) * 2",
                               wait=60)
        assert not is_error(result), error_text(result)
        got = structured(result)
        assert got["result"] == "42" and "(3, 11)" in got["stdout"]
        listing = structured(server.python("list_scripts"))
        store = root / "usr" / "share" / "python-mcp" / "scripts_store"
        assert Path(listing["shipped_directory"]) == store
        assert {s["filename"] for s in listing["shipped"]} == {p.name for p in store.glob("*.py")}
    finally:
        server.close()
        problems = server.protocol_problems()
        server.cleanup()
    assert not problems
