"""Script names and data-folder database names never leave their folders (issue 7, security).

Drives the real binary with its default folders, $XDG_DATA_HOME/python-mcp/python_scripts and
$XDG_DATA_HOME/python-mcp/databases, inside the test's private temporary tree, which also holds a
sentinel folder `outside/` (a script, a SQLite database, a text file, a sub-folder) and the
server's HOME and working directory.
Before and after every hostile name, the whole temporary tree except the two folders is
snapshotted (type, size, mtime, content hash, link target): any file created, modified or deleted
outside the folders fails the test, whatever the server answered.

A name is either refused with a tool error that names the rule, or -- for names that are plain
file names made of unusual but harmless characters (combining marks, non-ASCII dots that are not
look-alikes the server lists, ':' and the like) -- accepted as a file directly inside the folder,
which the test then checks on disk. Absolute database paths are documented as used as given
(docs/security.md); they are tested as that documented exception.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from mcp_pipe import McpServer, error_text, is_error, is_response, payload, structured

# --- the sentinel tree ----------------------------------------------------------------------------

SECRET = "SECRET_OUTSIDE = 42\n"


class Box:
    """A started, initialized server and the sentinel tree around its two folders."""

    def __init__(self, server: McpServer):
        self.server = server
        self.scripts = server.scripts_dir
        self.data = server.data_home / "python-mcp" / "databases"
        self.results = server.data_home / "python-mcp" / "results"  # overflow files (--results-dir)
        self.outside = server.tmp / "outside"
        (self.outside / "sub").mkdir(parents=True)
        (self.outside / "victim.py").write_text(SECRET)
        (self.outside / "secret.txt").write_text(SECRET)
        (self.outside / "sub" / "deep.py").write_text(SECRET)
        with sqlite3.connect(self.outside / "victim.db") as db:
            db.execute("CREATE TABLE secret (x)")
            db.execute("INSERT INTO secret VALUES (42)")
        db.close()
        self.scripts.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)  # the scheduler may have made it already
        # Made here, not at the first execute, so its parent's mtime does not change under a test.
        self.results.mkdir(parents=True, exist_ok=True)

    def snapshot(self) -> dict[str, tuple]:
        """Everything under the server's temporary tree except the folders it may write: scripts,
        databases (schedules.sqlite3 too) and the overflow results."""
        skip = {self.scripts, self.data, self.results, self.server.stderr_path}
        state: dict[str, tuple] = {}
        for top, dirs, files in os.walk(self.server.tmp, followlinks=False):
            here = Path(top)
            dirs[:] = [d for d in dirs if here / d not in skip]
            for name in dirs + files:
                p = here / name
                if p in skip:
                    continue
                st = p.lstat()
                entry: tuple = (stat.S_IFMT(st.st_mode), st.st_mtime_ns)
                if stat.S_ISREG(st.st_mode):
                    entry += (st.st_size, hashlib.sha256(p.read_bytes()).hexdigest())
                elif stat.S_ISLNK(st.st_mode):
                    entry += (os.readlink(p),)
                state[str(p.relative_to(self.server.tmp))] = entry
        return state

    def assert_unchanged(self, before: dict, what: str) -> None:
        after = self.snapshot()
        created = sorted(set(after) - set(before))
        deleted = sorted(set(before) - set(after))
        modified = sorted(k for k in set(before) & set(after) if before[k] != after[k])
        assert not (created or deleted or modified), (
            f"{what}: outside the folders, created {created}, deleted {deleted}, modified {modified}")

    def database_files(self) -> list[Path]:
        """Files in the databases folder, but the server's own schedule store (schedules.sqlite3,
        its -wal/-shm and .lock), which it opens at start."""
        return [p for p in self.data.rglob("*") if p.is_file() and not p.name.startswith("schedules.sqlite3")]

    def inside(self, folder: Path, path: str | Path) -> bool:
        real = Path(os.path.realpath(path))
        return Path(os.path.realpath(folder)) in real.parents

    # --- calls ----------------------------------------------------------------------------------
    def script(self, operation: str, name: str, code: str = "print('x')\n") -> dict:
        fields = {"filename": name}
        if operation == "save_script":
            fields["code"] = code
        return self.server.python(operation, **fields)

    def sql(self, database: str, sql: str = "CREATE TABLE IF NOT EXISTS t (x); INSERT INTO t VALUES (1)") -> dict:
        response = self.server.call("sqlite", {"sql": sql, "database": database})
        assert "result" in response, f"sqlite got a JSON-RPC error: {response}"
        return response["result"]

    def alive(self) -> None:
        assert "result" in self.server.request("ping"), "the server stopped answering"


@pytest.fixture
def box(spawn) -> Box:
    """A server of its own (for the tests that plant links)."""
    server = spawn()
    b = Box(server)  # before initialize: the server has touched no more than its data folder
    server.initialize()
    return b


@pytest.fixture(scope="module")
def shared_box():
    server = McpServer()
    b = Box(server)
    server.initialize()
    yield b
    server.close()
    problems = server.protocol_problems()
    server.cleanup()
    if problems:
        pytest.fail("stdout carried lines that are not valid JSON-RPC 2.0 messages:\n" + "\n".join(problems),
                    pytrace=False)


@pytest.fixture
def named_box(shared_box) -> Box:
    """One server for the many hostile-name cases (starting a process per name is slow under the
    sanitizers), with both folders emptied before each case."""
    for folder in (shared_box.scripts, shared_box.data):
        for p in folder.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    shared_box.alive()
    return shared_box


# What an error must say: the rule the name breaks (not just "invalid").
RULE = re.compile(r"is empty|longer than|must not start with|not valid UTF-8|NUL byte|control character|"
                  r"path separator|looks like|must not contain '\.\.'|outside|symbolic link|no script named")


def assert_refused(result: dict, what: str) -> str:
    assert is_error(result), f"{what} was accepted: {json.dumps(result)[:500]}"
    message = error_text(result)
    assert RULE.search(message), f"{what}: the error does not say why: {message}"
    assert "SECRET_OUTSIDE" not in message and "root:" not in message, message
    return message


# --- hostile names --------------------------------------------------------------------------------

# Refused by every script operation and as a database name (the '/' cases apart, see below).
REFUSED_NAMES = [
    "", ".", "..", "...", ".....", "../x", "../../x", "../../../../../../tmp/x", "..py",
    "a/../../b", "sub/../x", "../outside/victim", "../../../outside/victim.py",
    "./x", ".hidden", "x/.", "x/..",
    "a\\b", "..\\x", "..\\..\\outside\\victim", "C:\\Windows\\x", "\\\\server\\share\\x",
    "a\u0000b", "\u0000", "x.py\u0000.txt", "../x\u0000",
    "a\nb", "\n", "x\r\n", "a\tb", "\x7f", "a\x1bb",
    "..\uff0fx", "a\uff0fb", "\uff0e\uff0e\uff0fx", "\uff3c",            # fullwidth / . \
    "..\u2215x", "a\u2215b", "\u2216x",                                  # division slash, set minus
    "\u2024\u2024", "\u2024\u2024\u2215outside", "\u2025", "x\u2026",     # one/two dot leaders, ellipsis
    "..\u2044x", "a\u2044b",                                             # fraction slash
    "\u202eyp.exe", "x\u202d", "a\u200bb", "\ufeffx", "x\u2060",          # bidi overrides, invisibles
    "a" * 256, "\u00e9" * 128, "x" * 5000, "a" * 100000,
]

# Longer than 255 bytes only once '.py' is added.
SCRIPT_ONLY_REFUSED = ["a" * 253, "\u00e9" * 127]

# Names with a '/' that a database name may use for sub-folders but a script name may not.
SLASH_NAMES = ["a/b", "sub/x", "/etc/passwd", "//x"]

# Plain file names made of unusual characters: the server may refuse them or accept them as a file
# directly inside the folder; either way nothing outside changes.
EITHER_NAMES = [
    "e\u0301", "a\u0338b", "\u0338", "x\u0307\u0307", "caf\u00e9", "\u3002\u3002x", "\uff61x",
    "a\u00a0b", "\u2067x", "a\u2028b", "C:x", "a:b", "~", "$HOME", "%2e%2e%2fx", "*", "?", "-rf",
    "x.", "x .py", " ", "a" * 252, "\u00e9" * 126, "CON", "nul",
]


def name_id(name: str) -> str:
    text = ascii(name)
    return text if len(text) <= 48 else f"{text[:24]}...({len(name)} chars)"


def script_target(box: Box, name: str) -> str:
    return name if name.endswith(".py") else name + ".py"


@pytest.mark.parametrize("name", REFUSED_NAMES + SCRIPT_ONLY_REFUSED + SLASH_NAMES, ids=name_id)
def test_hostile_script_names_are_refused_by_every_operation(named_box, name):
    box = named_box
    # The name taken as a path from the folder would land in the snapshotted tree (or is absolute).
    before = box.snapshot()
    for operation in ("save_script", "load_script", "run_script", "delete_script"):
        assert_refused(box.script(operation, name, code="ESCAPED = True\n"), f"{operation} {name!r}")
        box.assert_unchanged(before, f"{operation} {name!r}")
    assert list(box.scripts.iterdir()) == [], "the scripts folder got a file"
    listing = payload(box.server.python("list_scripts"))
    assert listing["count"] == 0, listing
    box.alive()


@pytest.mark.parametrize("name", REFUSED_NAMES, ids=name_id)
def test_hostile_database_names_are_refused(named_box, name):
    box = named_box
    before = box.snapshot()
    message = assert_refused(box.sql(name), f"database {name!r}")
    assert "database" in message or "'database'" in message, message
    box.assert_unchanged(before, f"database {name!r}")
    leftovers = box.database_files()
    assert leftovers == [], f"database {name!r} left {leftovers}"
    # ... also from Python code, through mcp.call
    result = box.server.python("execute", code=f"mcp.call('sqlite', {{'sql': 'SELECT 1', 'database': {name!r}}})")
    assert is_error(result) and "ToolError" in error_text(result), result
    box.assert_unchanged(before, f"mcp.call database {name!r}")
    box.alive()


@pytest.mark.parametrize("name", EITHER_NAMES, ids=name_id)
def test_unusual_script_names_stay_inside_the_folder(named_box, name):
    box = named_box
    before = box.snapshot()
    code = f"VALUE = {name!r}\nVALUE\n"
    saved = box.script("save_script", name, code=code)
    if is_error(saved):
        assert_refused(saved, f"save_script {name!r}")
    else:
        info = payload(saved)
        path = Path(info["path"])
        assert path.parent == box.scripts and path.name == info["filename"] == script_target(box, name), info
        assert box.inside(box.scripts, path) and path.read_text("utf-8") == code
        assert payload(box.script("load_script", name))["code"] == code
        assert structured(box.script("run_script", name))["result"] == repr(name)
        listing = payload(box.server.python("list_scripts"))
        assert [s["filename"] for s in listing["scripts"]] == [info["filename"]], listing
        assert payload(box.script("delete_script", name))["deleted"] is True
        assert not path.exists()
    assert list(box.scripts.iterdir()) == []
    box.assert_unchanged(before, f"script {name!r}")


@pytest.mark.parametrize("name", EITHER_NAMES + SCRIPT_ONLY_REFUSED + ["a/b.db", "sub/deeper/x.db"], ids=name_id)
def test_unusual_database_names_stay_inside_the_folder(named_box, name):
    box = named_box
    before = box.snapshot()
    result = box.sql(name)
    if is_error(result):
        assert_refused(result, f"database {name!r}")
    else:
        path = box.data / name
        assert path.is_file() and box.inside(box.data, path), f"{name!r}: not at {path}"
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT x FROM t").fetchall() == [(1,)]
        db.close()
    box.assert_unchanged(before, f"database {name!r}")


def test_names_that_are_not_valid_unicode_are_refused(box):
    # A lone surrogate cannot be UTF-8: the JSON parser or the name check refuses it.
    before = box.snapshot()
    for arguments in ({"name": "python", "arguments": {"operation": "save_script", "filename": "\\ud800x",
                                                       "code": "1"}},
                      {"name": "sqlite", "arguments": {"sql": "SELECT 1", "database": "\\udfffx.db"}}):
        request_id = box.server.new_id()
        raw = ('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}'
               % (request_id, json.dumps(arguments).replace("\\\\u", "\\u")))
        since = box.server.mark()
        box.server.send_raw(raw)
        # -32700 carries id null (the id could not be trusted), a tool error carries ours.
        response = box.server.wait_for(
            lambda m: is_response(m) and (m["id"] == request_id or (m["id"] is None and "error" in m)),
            since=since, what=f"an answer to {request_id}")
        assert "error" in response or is_error(response["result"]), response
    box.alive()
    box.assert_unchanged(before, "lone surrogates")
    assert list(box.scripts.iterdir()) == [] and box.database_files() == []


# --- links planted inside the folders -------------------------------------------------------------

def test_script_links_leading_outside_are_never_followed(box):
    out = box.outside
    os.symlink(out / "victim.py", box.scripts / "evil.py")               # absolute, to a file
    os.symlink("../../../outside/victim.py", box.scripts / "climb.py")   # relative, climbing out
    os.symlink(out / "new.py", box.scripts / "dangling.py")              # to a file not there yet
    os.symlink(out / "sub", box.scripts / "dirlink.py")                   # to a folder
    os.symlink(out / "sub" / "deep.py", box.scripts / "deep.py")
    os.symlink("loop.py", box.scripts / "loop.py")                        # to itself
    before = box.snapshot()
    links = ["evil", "climb.py", "dangling", "dirlink.py", "deep", "loop"]

    for name in links:
        for operation in ("load_script", "run_script", "delete_script"):
            assert_refused(box.script(operation, name), f"{operation} through link {name!r}")
            box.assert_unchanged(before, f"{operation} {name!r}")
        saved = box.script("save_script", name, code="OVERWRITTEN = True\n")
        box.assert_unchanged(before, f"save_script {name!r}")
        target = box.scripts / script_target(box, name)
        if is_error(saved):
            assert_refused(saved, f"save_script through link {name!r}")
            assert target.is_symlink(), f"{name}: the link itself was removed by a refused save"
        else:
            # Accepted only where the link led nowhere: the save replaced the link itself by a
            # regular file inside the folder.
            assert name in ("dangling", "loop"), f"save_script through {name!r} was accepted: {saved}"
            assert not target.is_symlink() and target.read_text() == "OVERWRITTEN = True\n"
    # list_scripts never shows (size, date of) a file outside the folder.
    listing = payload(box.server.python("list_scripts"))
    for entry in listing["scripts"]:
        assert box.inside(box.scripts, entry["path"]), entry
        assert entry["filename"] not in ("evil.py", "climb.py", "dirlink.py", "deep.py"), listing
    assert not (out / "new.py").exists()
    assert (out / "victim.py").read_text() == SECRET
    box.alive()


def test_a_link_that_stays_inside_is_fine(box):
    box.script("save_script", "real", code="'real'\n")
    os.symlink("real.py", box.scripts / "alias.py")
    assert payload(box.script("load_script", "alias"))["code"] == "'real'\n"
    assert structured(box.script("run_script", "alias"))["result"] == "'real'"


def test_a_hard_link_is_a_file_in_the_folder_and_saves_never_write_through_it(box):
    # A hard link is a name in the folder for the same inode: reading it is reading a file in the
    # folder (whoever made the link could read the file). Saving and deleting must not change the
    # file outside: saves replace the name (write a temporary file, rename), deletes unlink it.
    hard_victim = box.outside / "hard_victim.py"
    hard_victim.write_text(SECRET)
    os.link(hard_victim, box.scripts / "hard.py")
    before = box.snapshot()
    assert not is_error(box.script("save_script", "hard", code="REPLACED = 1\n"))
    assert hard_victim.read_text() == SECRET
    assert (box.scripts / "hard.py").read_text() == "REPLACED = 1\n"
    os.unlink(box.scripts / "hard.py")
    os.link(hard_victim, box.scripts / "hard.py")
    assert not is_error(box.script("delete_script", "hard"))
    assert hard_victim.read_text() == SECRET and not (box.scripts / "hard.py").exists()
    after = box.snapshot()
    # os.link bumps the link count and ctime, not the size, content or mtime.
    assert after == before, "the hard-linked file outside changed"


def test_database_links_leading_outside_are_never_followed(box):
    out = box.outside
    os.symlink(out, box.data / "escape")                        # a folder link leading out
    os.symlink("../../../outside", box.data / "climb")          # relative
    os.symlink(out / "victim.db", box.data / "link.db")         # a file link to a real database
    os.symlink(out / "new.db", box.data / "dangling.db")        # to a file not there yet
    os.symlink("loop.db", box.data / "loop.db")
    (box.data / "inner").mkdir()
    os.symlink(out / "sub", box.data / "inner" / "deep")        # a link one level down
    before = box.snapshot()
    victim_rows = lambda: sqlite3.connect(out / "victim.db").execute("SELECT x FROM secret").fetchall()  # noqa: E731
    for name in ("escape/x.db", "escape/victim.db", "climb/victim.db", "link.db", "dangling.db", "loop.db",
                 "inner/deep/x.db", "escape", "climb/sub/../victim.db"):
        for sql in ("CREATE TABLE IF NOT EXISTS t (x); INSERT INTO t VALUES (1)",
                    "SELECT * FROM secret", "DROP TABLE secret"):
            assert_refused(box.sql(name, sql), f"database {name!r}")
            box.assert_unchanged(before, f"database {name!r}: {sql}")
    assert victim_rows() == [(42,)]
    assert not (out / "new.db").exists() and not (out / "x.db").exists()
    box.alive()


def test_database_side_files_planted_as_links_are_not_followed(box):
    # SQLite keeps side files next to a database (-wal, -shm, -journal). Links planted under those
    # names must not make it write outside the folder.
    out = box.outside
    for suffix in ("-wal", "-shm", "-journal"):
        (out / f"side{suffix}").write_text("untouched\n")
        os.symlink(out / f"side{suffix}", box.data / f"w.db{suffix}")
    before = box.snapshot()
    result = box.sql("w.db", "CREATE TABLE t (x); INSERT INTO t VALUES (1); SELECT count(*) AS n FROM t")
    box.assert_unchanged(before, "database w.db with planted side-file links")
    for suffix in ("-wal", "-shm", "-journal"):
        assert (out / f"side{suffix}").read_text() == "untouched\n"
    if is_error(result):
        assert "SECRET" not in error_text(result)
    box.alive()


def test_a_database_link_that_stays_inside_is_fine(box):
    (box.data / "real").mkdir()
    os.symlink("real", box.data / "alias")
    assert not is_error(box.sql("alias/a.db"))
    assert (box.data / "real" / "a.db").is_file()


def test_absolute_database_paths_are_used_as_given_as_documented(box):
    # The documented exception (docs/security.md, the sqlite readme): an absolute path names any
    # file the user may open, like code in the python tool could. It is not a data-folder name.
    path = box.outside / "chosen.db"
    result = box.sql(str(path))
    assert not is_error(result), result
    assert path.is_file()
    readme = box.server.call("sqlite", {"operation": "readme"})["result"]
    assert "absolute path" in error_text(readme) and "used as given" in error_text(readme)
