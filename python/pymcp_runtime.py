# The Python half of python-mcp's runtime. Compiled into the server binary and run once, at
# start-up, as the module `_pymcp_runtime`. The C++ half (module `_pymcp`) provides the output
# buffers, the execution objects, the interrupt exception and the tool calls; this file wires
# them into the interpreter: stream proxies, REPL-style execution, patched waits and the
# friendly face of the `mcp` module (servers as attributes, tools as functions).
#
# Traps this file exists for (measured, see docs/architecture.md):
# - sys.stdout is process-global: the proxies route each write through a ContextVar to the
#   execution that made it; threads started by user code get their parent's context.
# - user code may rebind sys.stdout/sys.stderr/sys.stdin: install() runs before every execution.
# - exit()/quit() close sys.stdin; input() would read the protocol channel; os._exit() would end
#   the server.

import _ast  # not `ast`: the C module is all that is used, and starts faster
import builtins
import contextvars
import io
import itertools
import os
import posix
import sys
import threading
import time

import _pymcp
import _signal
import mcp

current = contextvars.ContextVar("pymcp_execution", default=None)
_SERVER_PID = os.getpid()
_RUNTIME_FILE = __file__ if "__file__" in globals() else "<pymcp-runtime>"
_real_sleep = time.sleep
_real_os_exit = os._exit


class _OutputProxy(io.TextIOBase):
    """sys.stdout / sys.stderr: writes go to the running execution's buffer."""

    def __init__(self, which, fallback_fd):
        self._which = which  # 0 stdout, 1 stderr
        self._fd = fallback_fd

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        ex = current.get()
        if ex is not None and ex.write(self._which, s):
            return len(s)
        # No execution (or it has ended): the server's stderr, i.e. its log.
        try:
            os.write(2, s.encode("utf-8", "replace"))
        except OSError:
            pass
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def writable(self):
        return True

    def readable(self):
        return False

    def fileno(self):
        return self._fd

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    @property
    def buffer(self):
        return _BinaryProxy(self)


class _BinaryProxy:
    def __init__(self, text):
        self._text = text

    def write(self, b):
        self._text.write(bytes(b).decode("utf-8", "replace"))
        return len(b)

    def flush(self):
        pass


_STDIN_MESSAGE = ("python-mcp's standard input is the MCP protocol channel, so code cannot read "
                  "stdin. Pass data in the code, in a file, or through mcp.call().")


class _NoStdin(io.TextIOBase):
    """sys.stdin: never reads the protocol channel; close() (called by exit()/quit()) does nothing."""

    def read(self, *args):
        raise EOFError(_STDIN_MESSAGE)

    def readline(self, *args):
        raise EOFError(_STDIN_MESSAGE)

    def readlines(self, *args):
        raise EOFError(_STDIN_MESSAGE)

    def readable(self):
        return True

    def close(self):
        pass

    def isatty(self):
        return False

    def fileno(self):
        return 0

    @property
    def encoding(self):
        return "utf-8"


def _input(prompt=""):
    if prompt:
        sys.stdout.write(str(prompt))
    raise EOFError("input() cannot read here: " + _STDIN_MESSAGE)


def _os_exit(status=0):
    if os.getpid() != _SERVER_PID:  # a forked child may really exit
        _real_os_exit(status)
    raise SystemExit(f"os._exit({status}) was called; it would end the whole python-mcp server, so "
                     "it was turned into SystemExit (the session stays usable)")


def _sleep(seconds):
    ex = current.get()
    if ex is None:
        return _real_sleep(seconds)
    # Interruptible: the server wakes this wait at once on time-out or cancellation.
    ex.sleep(float(seconds))


# Waits on threading.Condition (Event.wait, Queue.get, Barrier, Semaphore...) are cut into short
# slices so that an interrupt reaches code blocked in them.
_real_cond_wait = threading.Condition.wait


def _cond_wait(self, timeout=None):
    ex = current.get()
    if ex is None:
        return _real_cond_wait(self, timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        ex.check_interrupt()
        step = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
        if step <= 0:
            return _real_cond_wait(self, 0)
        if _real_cond_wait(self, step):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


_real_bootstrap_inner = threading.Thread._bootstrap_inner
_real_thread_start = threading.Thread.start


def _thread_start(self):
    # Python 3.11 threads do not inherit contextvars: without this, output of threads the user
    # starts would have no execution to go to.
    self._pymcp_context = contextvars.copy_context()
    return _real_thread_start(self)


def _bootstrap_inner(self):
    ctx = getattr(self, "_pymcp_context", None)
    if ctx is None:
        return _real_bootstrap_inner(self)
    return ctx.run(_real_bootstrap_inner, self)


_stdout = _OutputProxy(0, 1)
_stderr = _OutputProxy(1, 2)
_stdin = _NoStdin()


def install():
    """Puts the proxies back; cheap, so it runs before every execution."""
    if sys.stdout is not _stdout:
        sys.stdout = _stdout
    if sys.stderr is not _stderr:
        sys.stderr = _stderr
    if sys.stdin is not _stdin:
        sys.stdin = _stdin
    if builtins.input is not _input:
        builtins.input = _input


# The server's own signals: its shutdown (SIGINT, SIGTERM, SIGHUP) and a client that went away
# (SIGPIPE). Code on the main thread (run_on_main_thread) could otherwise take them over, and
# SIGTERM would then stop that code instead of the server. Elsewhere Python refuses anyway
# ("signal only works in main thread"); a forked child may do as it likes. The C module's
# function is the one replaced: signal.signal calls it, and importing `signal` (enum) at start-up
# would cost milliseconds.
_SERVER_SIGNALS = {_signal.SIGINT: "SIGINT", _signal.SIGTERM: "SIGTERM", _signal.SIGHUP: "SIGHUP",
                   _signal.SIGPIPE: "SIGPIPE"}
_real_signal = _signal.signal


def _guarded_signal(signalnum, handler, /):
    if os.getpid() == _SERVER_PID and signalnum in _SERVER_SIGNALS:
        raise ValueError(f"{_SERVER_SIGNALS[signalnum]} belongs to the python-mcp server (its shutdown, or a "
                         "client that went away); code running in it cannot handle that signal")
    return _real_signal(signalnum, handler)


_guarded_signal.__name__ = _guarded_signal.__qualname__ = "signal"
_guarded_signal.__doc__ = _real_signal.__doc__


# Pure-Python recursion does not use the C stack in 3.11, but C-level recursion does (repr, pickle,
# json of deeply nested data): with the limit raised far enough, it overflows a thread's 8 MiB
# stack and the whole server dies with every session. Measured: repr crashes between 30,000 and
# 60,000 levels; 20,000 leaves room.
_RECURSION_CAP = 20_000
_real_setrecursionlimit = sys.setrecursionlimit


def _setrecursionlimit(limit):
    if isinstance(limit, int) and limit > _RECURSION_CAP:
        sys.stderr.write(f"python-mcp: recursion limit {limit} lowered to {_RECURSION_CAP}: deeper C-level "
                         "recursion (repr, pickle, json) would overflow the thread's stack and crash the server\n")
        limit = _RECURSION_CAP
    return _real_setrecursionlimit(limit)


def _setup():
    sys.__stdout__ = _stdout
    sys.__stderr__ = _stderr
    sys.__stdin__ = _stdin
    install()
    os._exit = _os_exit
    posix._exit = _os_exit  # the same function under its module's own name
    _signal.signal = _guarded_signal
    sys.setrecursionlimit = _setrecursionlimit
    time.sleep = _sleep
    threading.Condition.wait = _cond_wait
    threading.Thread.start = _thread_start
    threading.Thread._bootstrap_inner = _bootstrap_inner
    if "linecache" not in sys.modules:
        sys.meta_path.insert(0, _LinecacheFeeder)
    sys.setswitchinterval(0.001)
    sys.argv = [""]
    sys.ps1, sys.ps2 = ">>> ", "... "
    # A cell's compiled code is cached by its text: models resend the same cells often.
    global _compiled
    _compiled = {}


# ---------------------------------------------------------------------------------------------
# Running a cell


_compiled = {}
_COMPILE_CACHE_MAX = 512
_cell_numbers = itertools.count(1)  # next() is atomic under the GIL; += on a global is not


def _compile_cell(code, filename):
    key = (code, filename)
    hit = _compiled.get(key)
    if hit is not None:
        return hit
    if filename == "<python-input>":
        # Each distinct cell gets its own name, as in Python 3.13's REPL: one shared name would
        # make tracebacks and inspect.getsource() show lines of whichever cell ran last.
        filename = f"<python-input-{next(_cell_numbers)}>"
    tree = compile(code, filename, "exec", _ast.PyCF_ONLY_AST | 0, dont_inherit=True)
    expr = None
    if tree.body and isinstance(tree.body[-1], _ast.Expr):
        last = tree.body.pop()
        expr = compile(_ast.Expression(last.value), filename, "eval", dont_inherit=True)
    body = compile(tree, filename, "exec", dont_inherit=True) if tree.body else None
    if len(_compiled) >= _COMPILE_CACHE_MAX:
        _compiled.clear()
    _compiled[key] = hit = (body, expr)
    # Source lines for tracebacks (and inspect) of code that has no file.
    if filename.startswith("<"):
        _remember_source(filename, code)
    return hit


# linecache costs milliseconds to import (tokenize, re), which every server start would pay
# before its first execute. So cell sources wait in _cell_sources until something imports it
# (our own error formatting, or user code's traceback/inspect): _LinecacheFeeder sees that import
# and hands them over as soon as the module has run.
_cell_sources = {}


def _remember_source(filename, code):
    entry = (len(code), None, code.splitlines(True), filename)
    lc = sys.modules.get("linecache")
    if lc is not None and isinstance(getattr(lc, "cache", None), dict):
        lc.cache[filename] = entry
    else:
        _cell_sources[filename] = entry
        # linecache may have finished importing (on another thread) since it was looked up.
        cache = getattr(sys.modules.get("linecache"), "cache", None)
        if isinstance(cache, dict):
            cache.update(_cell_sources)
            _cell_sources.clear()


class _FeedingLoader:
    """linecache's own loader, plus handing over the waiting sources once it ran."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.cache.update(_cell_sources)
        _cell_sources.clear()

    def __getattr__(self, name):  # get_source, get_filename... as the real loader
        return getattr(self._loader, name)


class _LinecacheFeeder:
    """A sys.meta_path finder for the first import of linecache only."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "linecache":
            return None
        if cls in sys.meta_path:
            sys.meta_path.remove(cls)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None and spec.loader is not None:
                spec.loader = _FeedingLoader(spec.loader)
                return spec
        return None


def new_namespace():
    return {"__name__": "__main__", "__builtins__": builtins, "mcp": mcp}


def _user_traceback(exc):
    """The traceback without this runtime's own frames."""
    import traceback  # on the first error only: it costs milliseconds at start-up
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != _RUNTIME_FILE]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def run(ex, code, namespace, filename):
    """Runs one cell for execution `ex`. Returns (status, result_repr, error) where status is
    'ok', 'error' or 'interrupted' and error is (type, message, traceback) or None."""
    install()
    token = current.set(ex)
    try:
        try:
            body, expr = _compile_cell(code, filename)
            # Interrupts are posted only between these two calls (see Execution::in_user_code).
            ex.set_in_user_code(True)
            try:
                if body is not None:
                    exec(body, namespace)
                value = eval(expr, namespace) if expr is not None else None
                result = None if value is None else repr(value)
            finally:
                ex.set_in_user_code(False)
            if expr is not None and value is not None:
                namespace["_"] = value
            return ("ok", result, None)
        except _pymcp.ExecutionInterrupted as e:
            return ("interrupted", None, (ex.interrupt_reason() or "interrupted", str(e), _user_traceback(e)))
        except SystemExit as e:
            code_ = e.code
            msg = "SystemExit" if code_ is None else f"SystemExit: {code_}"
            return ("error", None, ("SystemExit", str(code_) if code_ is not None else "", msg + "\n"))
        except BaseException as e:  # noqa: BLE001 - everything user code raises is reported
            if ex.interrupted():
                return ("interrupted", None, (ex.interrupt_reason(), str(e), _user_traceback(e)))
            return ("error", None, (type(e).__name__, str(e), _user_traceback(e)))
    finally:
        current.reset(token)


def count_variables(namespace):
    return sum(1 for k in namespace if not (k.startswith("__") and k.endswith("__")) and k != "mcp")


# ---------------------------------------------------------------------------------------------
# The friendly face of `mcp`: servers as attributes, tools as Python functions.

_KEYWORDS = frozenset(__import__("keyword").kwlist)


def _py_name(name):
    out = "".join(c if (c.isalnum() or c == "_") else "_" for c in name)
    if not out or out[0].isdigit() or out in _KEYWORDS:
        out = "_" + out
    return out


def _unwrap(result):
    """structuredContent when present, else the text parsed as JSON when it is JSON, else the
    text; several or non-text contents come back as a list of content objects."""
    if result.get("structuredContent") is not None:
        return result["structuredContent"]
    content = result.get("content") or []
    if len(content) == 1 and content[0].get("type") == "text":
        text = content[0].get("text", "")
        import json
        try:
            return json.loads(text)
        except ValueError:
            return text
    if not content:
        return None
    return [Content(c) for c in content]


class Content(dict):
    """A non-text content item (image, audio, resource...), a dict with attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def data_bytes(self):
        import base64
        return base64.b64decode(self["data"]) if "data" in self else b""

    def __repr__(self):
        kind = self.get("type", "?")
        if "data" in self:
            return f"<Content {kind} {self.get('mimeType', '')} {len(self['data'])} base64 chars>"
        return f"<Content {dict.__repr__(self)}>"


_JSON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool",
               "array": "list", "object": "dict", "null": "None"}


def _type_hint(schema):
    t = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(t, list):
        return " | ".join(_JSON_TYPES.get(x, x) for x in t)
    return _JSON_TYPES.get(t, "Any") if t else "Any"


class ToolFunction:
    """A downstream (or built-in) tool as a Python function: keyword arguments are checked against
    its inputSchema, the result is unwrapped, isError raises mcp.ToolError."""

    def __init__(self, info):
        self._info = info
        self.tool_name = info["name"]
        self.__name__ = _py_name(info.get("tool") or info["name"])
        self.__qualname__ = self.__name__
        schema = info.get("input_schema") or {}
        self._props = schema.get("properties") or {}
        self._required = list(schema.get("required") or [])
        self._open = schema.get("additionalProperties", True) is not False and not self._props
        # Python names for properties that are not identifiers
        self._arg_names = {_py_name(k): k for k in self._props}
        self.__doc__ = self._make_doc()
        try:
            import inspect
            params = []
            for pyname, real in self._arg_names.items():
                default = inspect.Parameter.empty if real in self._required else None
                params.append(inspect.Parameter(pyname, inspect.Parameter.KEYWORD_ONLY, default=default))
            self.__signature__ = inspect.Signature(params)
        except (ValueError, TypeError):
            pass

    def _make_doc(self):
        lines = [self._info.get("description") or "(no description)", "", "Parameters:"]
        if not self._props:
            lines.append("  (none)")
        for name, prop in self._props.items():
            req = "required" if name in self._required else "optional"
            desc = (prop.get("description") or "").strip() if isinstance(prop, dict) else ""
            lines.append(f"  {_py_name(name)} ({_type_hint(prop)}, {req}){': ' + desc if desc else ''}")
        lines += ["", f"Calls MCP tool '{self.tool_name}'. Returns structuredContent, or the text "
                  "(parsed as JSON when it is JSON); raises mcp.ToolError when the tool fails."]
        return "\n".join(lines)

    def __call__(self, *args, **kwargs):
        if args:
            if len(args) == 1 and isinstance(args[0], dict) and not kwargs:
                kwargs = dict(args[0])
            else:
                raise TypeError(f"{self.__name__}() takes keyword arguments only "
                                f"(or one dict of arguments)")
        arguments = {}
        for key, value in kwargs.items():
            real = self._arg_names.get(key, key)
            if self._props and real not in self._props:
                known = ", ".join(self._arg_names) or "none"
                raise TypeError(f"{self.__name__}() got an unexpected keyword argument '{key}' "
                                f"(parameters: {known})")
            arguments[real] = value
        missing = [_py_name(r) for r in self._required if r not in arguments]
        if missing:
            raise TypeError(f"{self.__name__}() missing required keyword argument(s): "
                            + ", ".join(repr(m) for m in missing))
        return _unwrap(mcp.call(self.tool_name, arguments))

    def __repr__(self):
        return f"<mcp tool {self.tool_name}>"


class ServerNamespace:
    """mcp.<server>: its tools as attributes; dir() lists them."""

    def __init__(self, server):
        self._server = server

    def _tools(self):
        return {_py_name(t.get("tool") or t["name"]): t for t in mcp.list_tools(server=self._server)}

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        tools = self._tools()
        if name in tools:
            return ToolFunction(tools[name])
        raise AttributeError(f"MCP server '{self._server}' has no tool '{name}'; it has: "
                             + (", ".join(sorted(tools)) or "none"))

    def __dir__(self):
        return sorted(self._tools())

    def __repr__(self):
        return f"<mcp server {self._server}: {len(self._tools())} tools>"


def _servers():
    return sorted({t["server"] for t in mcp.list_tools() if t.get("server")})


def module_getattr(name):
    """mcp.<name>: a downstream server's namespace, or a built-in tool as a function."""
    if name.startswith("__"):
        raise AttributeError(name)
    for server in _servers():
        if _py_name(server) == name:
            return ServerNamespace(server)
    for t in mcp.list_tools():
        if not t.get("server") and _py_name(t["name"]) == name:
            return ToolFunction(t)
    # Perhaps a server that is still starting: wait for it once, then look again.
    reason = mcp._wait_for_server(name)
    for server in _servers():
        if _py_name(server) == name:
            return ServerNamespace(server)
    if reason:
        raise AttributeError(f"module 'mcp' has no attribute '{name}': {reason}")
    raise AttributeError(f"module 'mcp' has no attribute '{name}' (servers: "
                         + (", ".join(_py_name(s) for s in _servers()) or "none") + ")")


def module_dir():
    names = {"call", "list_tools", "search_tools", "ToolError"}
    names.update(_py_name(s) for s in _servers())
    names.update(_py_name(t["name"]) for t in mcp.list_tools() if not t.get("server"))
    return sorted(names)


def search_tools(query, limit=10):
    """Tools whose name or description matches the words of `query`, best first, without
    their schemas: [{'name', 'server', 'description'}]."""
    words = [w for w in str(query).lower().split() if w]
    scored = []
    for t in mcp.list_tools():
        name = t["name"].lower()
        desc = (t.get("description") or "").lower()
        score = 0
        for w in words:
            if w in name:
                score += 3
            if w in desc:
                score += 1
        if score or not words:
            first_line = (t.get("description") or "").strip().split("\n")[0][:200]
            scored.append((-score, t["name"], {"name": t["name"], "server": t.get("server"),
                                                "description": first_line}))
    scored.sort(key=lambda x: (x[0], x[1]))
    return [s[2] for s in scored[:limit]]


_setup()
