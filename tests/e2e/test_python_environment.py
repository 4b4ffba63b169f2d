"""The Python environment of the server (issue 15): the default packages, --venv (a real venv made
by /usr/bin/python3.11 -m venv, with a module and .pth files dropped into it: there is no package
index here), --python-path, --workdir, and mcp.dask() without --dask-scheduler."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mcp_pipe import error_text, is_error, structured, text_of

DEFAULT_MODULES = ["numpy", "pandas", "requests", "scipy", "matplotlib", "PIL", "openpyxl", "lxml",
                   "bs4", "tabulate"]


def run(server, code: str, **fields) -> dict:
    result = server.python(code=code, **fields)
    assert not is_error(result), error_text(result)
    return structured(result)


def result_json(server, code: str):
    """Runs `code`, whose last line prints one JSON value, and returns that value."""
    return json.loads(run(server, code)["stdout"])


def make_venv(where: Path) -> Path:
    subprocess.run(["/usr/bin/python3.11", "-m", "venv", "--without-pip", str(where)], check=True,
                   timeout=120)
    return where


def site_packages(venv: Path) -> Path:
    return venv / "lib" / "python3.11" / "site-packages"


# --- default packages -------------------------------------------------------------------------

def test_default_packages_import_and_are_listed_in_the_readme(server):
    readme = text_of(server.python("readme"))
    assert "## Installed packages" in readme
    section = readme.split("## Installed packages", 1)[1]
    for module in DEFAULT_MODULES:
        assert module in section, f"the readme's Installed packages section does not name {module}"
    assert "pyarrow" in section  # says that it is not there
    versions = result_json(server, "import importlib, json\n"
                                   f"mods = {DEFAULT_MODULES!r}\n"
                                   "print(json.dumps({m: getattr(importlib.import_module(m), '__version__', '?') "
                                   "for m in mods}))")
    assert sorted(versions) == sorted(DEFAULT_MODULES)


def test_matplotlib_draws_to_a_file_without_a_display(spawn, tmp_path):
    server = spawn()
    server.initialize()
    out = tmp_path / "chart.png"
    run(server, "from matplotlib.figure import Figure\n"
                "fig = Figure(); ax = fig.subplots(); ax.plot([1, 2, 3], [3, 1, 2])\n"
                f"fig.savefig({str(out)!r})")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- --venv --------------------------------------------------------------------------------------

def test_venv_modules_and_pth_files_are_honoured_ahead_of_the_system(spawn, tmp_path):
    venv = make_venv(tmp_path / "venv")
    site = site_packages(venv)
    (site / "h5_venv_probe.py").write_text("WHERE = 'venv'\n")
    # A venv copy of a package the system also has must win, as pip-installed upgrades do.
    (site / "tabulate.py").write_text("__version__ = 'from-the-venv'\n")
    extra = tmp_path / "pth-target"
    extra.mkdir()
    (extra / "h5_pth_probe.py").write_text("WHERE = 'pth'\n")
    (site / "h5-extra.pth").write_text(f"{extra}\n")
    # An executable .pth line runs as site.addsitedir runs it.
    (site / "h5-exec.pth").write_text("import os; os.environ['H5_PTH_RAN'] = 'yes'\n")

    server = spawn("--venv", str(venv))
    server.initialize()
    got = result_json(server, "import json, os, sys, tabulate, h5_venv_probe, h5_pth_probe\n"
                              "print(json.dumps({'venv': h5_venv_probe.WHERE, 'pth': h5_pth_probe.WHERE,\n"
                              "  'tabulate': tabulate.__version__, 'ran': os.environ.get('H5_PTH_RAN'),\n"
                              "  'path': sys.path}))")
    assert got["venv"] == "venv" and got["pth"] == "pth" and got["ran"] == "yes"
    assert got["tabulate"] == "from-the-venv"
    path = got["path"]
    system = path.index("/usr/lib/python3/dist-packages")
    assert path.index(str(site)) < system and path.index(str(extra)) < system
    assert path.index("/usr/lib/python3.11") < path.index(str(site)), "the standard library comes first"


def test_venv_from_the_environment_variable(spawn, tmp_path):
    venv = make_venv(tmp_path / "venv")
    (site_packages(venv) / "h5_env_probe.py").write_text("VALUE = 42\n")
    server = spawn(env={"PYTHON_MCP_VENV": str(venv)})
    server.initialize()
    assert result_json(server, "import h5_env_probe; print(h5_env_probe.VALUE)") == 42


def test_relative_venv_is_resolved_against_the_start_directory(spawn, tmp_path):
    start = tmp_path / "start"
    start.mkdir()
    venv = make_venv(start / "rel-venv")
    (site_packages(venv) / "h5_rel_probe.py").write_text("VALUE = 7\n")
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    server = spawn("--venv", "rel-venv", "--workdir", str(workdir), cwd=start)
    server.initialize()
    assert result_json(server, "import h5_rel_probe; print(h5_rel_probe.VALUE)") == 7


@pytest.mark.parametrize("cfg, lib", [
    ("home = /usr/bin\nversion = 3.12.1\n", "python3.12"),
    ("home = /usr/bin\nversion_info = 3.10.13.final.0\n", "python3.10"),
    (None, "python3.13"),  # no pyvenv.cfg: the lib/pythonX.Y folder tells
])
def test_venv_of_another_python_is_refused_at_start(spawn, tmp_path, cfg, lib):
    venv = tmp_path / "other"
    (venv / "lib" / lib / "site-packages").mkdir(parents=True)
    if cfg is not None:
        (venv / "pyvenv.cfg").write_text(cfg)
    server = spawn("--venv", str(venv))
    assert server.wait_exit(30) != 0
    err = server.stderr_text()
    version = lib.removeprefix("python")
    assert f"made by Python {version}" in err and "embeds Python 3.11" in err, err
    assert "python3.11 -m venv" in err, err


def test_a_folder_that_is_not_a_venv_is_refused(spawn, tmp_path):
    server = spawn("--venv", str(tmp_path))
    assert server.wait_exit(30) != 0
    assert "not a virtual environment" in server.stderr_text()


def test_missing_venv_is_refused(spawn, tmp_path):
    server = spawn("--venv", str(tmp_path / "nope"))
    assert server.wait_exit(30) != 0
    assert "no such directory" in server.stderr_text()


# --- --python-path -------------------------------------------------------------------------------

def test_python_path_folders_come_first_in_order(spawn, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for d, value in ((first, 1), (second, 2)):
        d.mkdir()
        (d / "h5_path_probe.py").write_text(f"VALUE = {value}\n")
    (second / "h5_only_second.py").write_text("VALUE = 'second'\n")
    server = spawn("--python-path", str(first), "--python-path", str(second))
    server.initialize()
    got = result_json(server, "import json, sys, h5_path_probe, h5_only_second\n"
                              "print(json.dumps([h5_path_probe.VALUE, h5_only_second.VALUE, sys.path[:2]]))")
    assert got == [1, "second", [str(first), str(second)]]


# --- --workdir ------------------------------------------------------------------------------------

def test_default_working_directory_is_the_servers(spawn, tmp_path):
    server = spawn(cwd=tmp_path)
    server.initialize()
    assert result_json(server, "import os, json; print(json.dumps(os.getcwd()))") == str(tmp_path)


def test_workdir_option_sets_the_working_directory(spawn, tmp_path):
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    (workdir / "input.txt").write_text("hello from the workdir")
    start = tmp_path / "start"
    start.mkdir()
    # A relative --scripts-dir keeps meaning the start directory's folder.
    server = spawn("--workdir", str(workdir), "--scripts-dir", "my-scripts", cwd=start)
    server.initialize()
    got = result_json(server, "import os, json\nprint(json.dumps([os.getcwd(), open('input.txt').read()]))")
    assert got == [str(workdir), "hello from the workdir"]
    saved = structured(server.python("save_script", filename="h5.py", code="print(1)"))
    assert Path(saved["path"]) == start / "my-scripts" / "h5.py"


def test_missing_workdir_is_refused_at_start(spawn, tmp_path):
    server = spawn("--workdir", str(tmp_path / "missing"))
    assert server.wait_exit(30) != 0
    err = server.stderr_text()
    assert "--workdir" in err and "no such directory" in err, err


# --- Dask, not configured ---------------------------------------------------------------------

def test_without_dask_scheduler_nothing_of_dask_is_loaded(server):
    got = result_json(server, "import sys, json\n"
                              "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
                              "try:\n"
                              "    mcp.dask()\n"
                              "    message = None\n"
                              "except RuntimeError as e:\n"
                              "    message = str(e)\n"
                              "print(json.dumps([loaded, message, mcp.dask_scheduler]))")
    loaded, message, address = got
    assert loaded == [] and address is None
    assert "--dask-scheduler" in message
