"""Drives the built python-mcp binary over real pipes, the way an MCP client does.

Standard library only. One McpServer is one server process:

* started from $PYMCP_BIN with a minimal environment (as real clients launch servers) and a
  private temporary HOME and XDG_DATA_HOME, so scripts and data never touch the real home;
* a reader thread records every stdout line, raw and parsed, with its arrival time;
* `protocol_problems()` lists every stdout line that is not a whole, valid JSON-RPC 2.0
  message: the conftest fixtures check it at the teardown of every test, so any stray byte on
  stdout fails the test that caused it.

Waiting is always for a condition (a response with an id, a file appearing, the process
exiting) with a deadline, never a blind sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

LATEST_VERSION = "2025-11-25"
SUPPORTED_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")

# Generous: the machine runs two suites at once and other people's builds.
DEFAULT_TIMEOUT = float(os.environ.get("PYMCP_E2E_TIMEOUT", "20"))

# Passed through to the server when set: the sanitizer runner's settings.
SANITIZER_ENV = ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC")
# Set by tests/sanitizers/run.sh: the server is an ASan build (--memory-limit cannot work under
# ASan, and timings are several times slower).
SANITIZED = bool(os.environ.get("PYMCP_SANITIZED"))


def binary() -> str:
    path = os.environ.get("PYMCP_BIN")
    if not path:
        raise RuntimeError("set PYMCP_BIN to the built python-mcp binary (ctest does this)")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"PYMCP_BIN={path} is not an executable file")
    return path


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def jsonrpc_problem(message: Any) -> str | None:
    """Why `message` (parsed from one stdout line) is not a valid JSON-RPC 2.0 message, or None.

    A line may be one message or a batch of responses (a non-empty array)."""
    if isinstance(message, list):
        if not message:
            return "empty array"
        for element in message:
            problem = jsonrpc_problem(element)
            if problem:
                return "in a batch: " + problem
            if "method" in element:
                return "a batch answer holds a request or notification"
        return None
    if not isinstance(message, dict):
        return "not a JSON object"
    if message.get("jsonrpc") != "2.0":
        return '"jsonrpc" is not "2.0"'
    if "method" in message:
        if not isinstance(message["method"], str):
            return '"method" is not a string'
        if "id" in message and not _is_id(message["id"]):
            return "a request id must be a string or an integer"
        if "params" in message and not isinstance(message["params"], (dict, list)):
            return '"params" is not an object or array'
        if "result" in message or "error" in message:
            return "a request carries result/error"
        return None
    if "id" not in message:
        return "neither a request, a notification nor a response (no method, no id)"
    if not (_is_id(message["id"]) or message["id"] is None):
        return "a response id must be a string, an integer or null"
    has_result, has_error = "result" in message, "error" in message
    if has_result == has_error:
        return "a response needs exactly one of result and error"
    if has_result and message["id"] is None:
        return "a successful response with id null"
    if has_error:
        error = message["error"]
        if not isinstance(error, dict):
            return '"error" is not an object'
        if not isinstance(error.get("code"), int) or isinstance(error.get("code"), bool):
            return "error.code is not an integer"
        if not isinstance(error.get("message"), str):
            return "error.message is not a string"
    return None


def is_response(message: Any) -> bool:
    return isinstance(message, dict) and "method" not in message and "id" in message


def same_id(a: Any, b: Any) -> bool:
    """Equal ids of the same JSON type: 1 and "1" differ."""
    return type(a) is type(b) and a == b


class McpServer:
    """One python-mcp process on pipes."""

    def __init__(self, args: Iterable[str] = (), *, env: dict[str, str] | None = None,
                 cwd: str | os.PathLike | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="pymcp-e2e-"))
        self.home = self.tmp / "home"
        self.data_home = self.tmp / "data"
        self.work = self.tmp / "work"  # scratch space for marker files
        for d in (self.home, self.data_home, self.work):
            d.mkdir()
        self.scripts_dir = self.data_home / "python-mcp" / "python_scripts"
        self.args = list(args)
        full_env = {
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.data_home),
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LOGNAME": os.environ.get("LOGNAME", "tester"),
            "USER": os.environ.get("USER", "tester"),
            "SHELL": "/bin/sh",
            "TERM": "dumb",
        }
        # Sanitizer runs (tests/sanitizers/run.sh): the ASan server must write its reports where
        # the runner looks, with the suppression file and Python's malloc (docs/hardening.md).
        for name in SANITIZER_ENV:
            if name in os.environ:
                full_env[name] = os.environ[name]
        full_env.update(env or {})
        self.stderr_path = self.tmp / "stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [binary(), *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=full_env,
            cwd=str(cwd or self.work),
            start_new_session=True,  # a Ctrl-C on pytest must not reach the server
        )
        self.raw_lines: list[bytes] = []
        self.messages: list[Any] = []
        self.arrivals: list[float] = []
        self._problems: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._send_lock = threading.Lock()
        self._next_id = 1
        self._reader = threading.Thread(target=self._read, name="mcp-stdout", daemon=True)
        self._reader.start()

    # --- reading ------------------------------------------------------------------------------
    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            line = stream.readline()
            if not line:
                break
            now = time.monotonic()
            problem = None
            parsed = None
            if not line.endswith(b"\n"):
                problem = "a half-written line (no newline before EOF)"
            try:
                parsed = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                problem = problem or f"not JSON ({e})"
            else:
                problem = problem or jsonrpc_problem(parsed)
            with self._cond:
                self.raw_lines.append(line)
                if problem:
                    self._problems.append(f"{problem}: {line[:300]!r}")
                else:
                    self.messages.append(parsed)
                    self.arrivals.append(now)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def protocol_problems(self) -> list[str]:
        with self._cond:
            return list(self._problems)

    def mark(self) -> int:
        """An index into self.messages: later waits can look only at what arrives after it."""
        with self._cond:
            return len(self.messages)

    def wait_for(self, predicate: Callable[[Any], bool], *, since: int = 0,
                 timeout: float = DEFAULT_TIMEOUT, what: str = "a message") -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.messages[since:]:
                    if predicate(message):
                        return message
                if self._eof:
                    raise AssertionError(f"the server closed stdout while waiting for {what}"
                                         f" (exit code {self.proc.poll()})\n{self.diagnostics()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout:.1f} s\n{self.diagnostics()}")
                self._cond.wait(left)

    def find(self, predicate: Callable[[Any], bool], *, since: int = 0) -> list[Any]:
        with self._cond:
            return [m for m in self.messages[since:] if predicate(m)]

    def responses_for(self, request_id: Any) -> list[Any]:
        return self.find(lambda m: is_response(m) and same_id(m["id"], request_id))

    def wait_response(self, request_id: Any, *, since: int = 0,
                      timeout: float = DEFAULT_TIMEOUT) -> dict:
        return self.wait_for(lambda m: is_response(m) and same_id(m["id"], request_id),
                             since=since, timeout=timeout, what=f"response to id {request_id!r}")

    def expect_silence(self, predicate: Callable[[Any], bool], *, since: int = 0,
                       within: float = 0.3, what: str = "message") -> None:
        """Asserts that no matching message arrives: absence has no event to wait for, so this
        watches for a bounded window (used only after a later answer already proved progress)."""
        deadline = time.monotonic() + within
        with self._cond:
            while True:
                found = [m for m in self.messages[since:] if predicate(m)]
                assert not found, f"unexpected {what}: {found[:3]}"
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    return
                self._cond.wait(left)

    # --- writing ------------------------------------------------------------------------------
    def new_id(self) -> int:
        with self._send_lock:
            self._next_id += 1
            return 1000 + self._next_id

    def send_raw(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not data.endswith(b"\n"):
            data += b"\n"
        assert self.proc.stdin is not None
        with self._send_lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        self.send_raw(json.dumps(message, separators=(",", ":")))

    def notify(self, method: str, params: Any = None) -> None:
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def send_request(self, method: str, params: Any = None, *, id: Any = None) -> Any:
        """Sends a request without waiting; returns its id."""
        request_id = self.new_id() if id is None else id
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return request_id

    def request(self, method: str, params: Any = None, *, id: Any = None,
                timeout: float = DEFAULT_TIMEOUT) -> dict:
        since = self.mark()
        request_id = self.send_request(method, params, id=id)
        return self.wait_response(request_id, since=since, timeout=timeout)

    def initialize(self, version: str = LATEST_VERSION, *, send_initialized: bool = True,
                   capabilities: dict | None = None) -> dict:
        """`capabilities`: what this client declares (e.g. {"elicitation": {}} to be asked things)."""
        response = self.request("initialize", {
            "protocolVersion": version,
            "capabilities": capabilities or {},
            "clientInfo": {"name": "pymcp-e2e", "version": "1.0"},
        })
        assert "result" in response, f"initialize failed: {response}"
        if send_initialized:
            self.notify("notifications/initialized")
        return response["result"]

    # --- requests from the server (elicitation, sampling, roots) -----------------------------
    def wait_server_request(self, method: str, *, since: int = 0,
                            timeout: float = DEFAULT_TIMEOUT) -> dict:
        """The next request the server sends us with this method (it carries an id to answer)."""
        return self.wait_for(lambda m: isinstance(m, dict) and m.get("method") == method and "id" in m,
                             since=since, timeout=timeout, what=f"a {method} request from the server")

    def answer(self, request: dict, result: Any) -> None:
        """Answers a request the server sent us."""
        self.send({"jsonrpc": "2.0", "id": request["id"], "result": result})

    # --- tools --------------------------------------------------------------------------------
    def send_call(self, name: str, arguments: dict, *, id: Any = None) -> Any:
        return self.send_request("tools/call", {"name": name, "arguments": arguments}, id=id)

    def call(self, name: str, arguments: dict, *, id: Any = None,
             timeout: float = DEFAULT_TIMEOUT) -> dict:
        return self.request("tools/call", {"name": name, "arguments": arguments}, id=id,
                            timeout=timeout)

    @staticmethod
    def python_arguments(operation: str = "execute", wrap: bool = True, **fields: Any) -> dict:
        inner = {"operation": operation, **fields}
        return {"input": inner} if wrap else inner

    def send_python(self, operation: str = "execute", *, id: Any = None, wrap: bool = True,
                    **fields: Any) -> Any:
        return self.send_call("python", self.python_arguments(operation, wrap, **fields), id=id)

    def python(self, operation: str = "execute", *, id: Any = None, wrap: bool = True,
               wait: float = DEFAULT_TIMEOUT, **fields: Any) -> dict:
        """Calls the python tool and returns the CallToolResult (fails on a JSON-RPC error)."""
        response = self.call("python", self.python_arguments(operation, wrap, **fields), id=id,
                             timeout=wait)
        assert "result" in response, f"python {operation} got a JSON-RPC error: {response}"
        return response["result"]

    def wait_for_file(self, path: Path, *, request_id: Any = None,
                      timeout: float = DEFAULT_TIMEOUT) -> None:
        """Waits until user code has created `path` (how a test knows code is running now);
        fails at once if the request it belongs to was already answered."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            if request_id is not None:
                answered = self.responses_for(request_id)
                assert not answered, f"request {request_id} ended before {path.name} appeared: {answered[0]}"
            assert self.proc.poll() is None, f"the server exited\n{self.diagnostics()}"
            assert time.monotonic() < deadline, f"{path} not created within {timeout} s\n{self.diagnostics()}"
            time.sleep(0.005)

    # --- process ------------------------------------------------------------------------------
    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        with self._send_lock:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the server did not exit within {timeout} s\n{self.diagnostics()}")

    def stdout_closed(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._eof, timeout)

    def stderr_text(self) -> str:
        try:
            self._stderr.flush()
            return self.stderr_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""

    def diagnostics(self, lines: int = 30) -> str:
        with self._cond:
            recent = self.raw_lines[-8:]
        shown = "\n".join(f"  < {r[:400]!r}" for r in recent)
        err = "\n".join(self.stderr_text().splitlines()[-lines:])
        return f"last stdout lines:\n{shown}\nstderr tail:\n{err}"

    def close(self) -> None:
        """Ends the process (EOF first, as clients do, then kill) and waits for the reader."""
        if self.proc.poll() is None:
            self.close_stdin()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.close()

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- CallToolResult helpers -----------------------------------------------------------------------

def wait_until(condition: Callable[[], Any], what: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Polls `condition` until it returns something true, and returns that; fails after `timeout`
    seconds naming `what`. For state the test cannot be told about (a file, a process list)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.02)


def text_of(result: dict) -> str:
    return "\n".join(c.get("text", "") for c in result.get("content", []) if c.get("type") == "text")


def structured(result: dict) -> dict:
    sc = result.get("structuredContent")
    assert isinstance(sc, dict), f"no structuredContent in {result}"
    return sc


def payload(result: dict) -> Any:
    """The structured answer of an operation: structuredContent, or else the text parsed as JSON."""
    sc = result.get("structuredContent")
    if sc is not None:
        return sc
    return json.loads(text_of(result))


def is_error(result: dict) -> bool:
    return result.get("isError") is True


def error_text(result: dict) -> str:
    """Everything a model would read about a failed call."""
    parts = [text_of(result)]
    sc = result.get("structuredContent")
    if isinstance(sc, dict) and isinstance(sc.get("error"), dict):
        parts += [str(sc["error"].get(k, "")) for k in ("type", "message")]
    return "\n".join(parts)



# --- helpers shared by the suites ---------------------------------------------------------------

def run(s: McpServer, code: str, **fields: Any) -> dict:
    """execute; returns the CallToolResult."""
    return s.python(code=code, **fields)


def ok(s: McpServer, code: str, **fields: Any) -> dict:
    """execute that must succeed; returns its structuredContent."""
    result = run(s, code, **fields)
    sc = structured(result)
    assert not is_error(result) and sc["success"] is True, f"execute failed: {result}"
    return sc


def script_version(n: int, size: int) -> str:
    """About `size` bytes of script whose every line says which version it is (torn files show)."""
    line = f"# version {n:06d} " + "=" * 60 + "\n"
    return line * (size // len(line)) + f"VERSION = {n}\n"


def time_a_big_save(s: McpServer, size: int) -> float:
    """Saves versions 0 and 1 of big.py; returns how long the second save took (to aim kills and
    signals inside a save)."""
    assert not is_error(s.python("save_script", filename="big.py", code=script_version(0, size)))
    start = time.monotonic()
    assert not is_error(s.python("save_script", filename="big.py", code=script_version(1, size)))
    return time.monotonic() - start
