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
            os.write(2, s.encode("utf-8", "backslashreplace"))
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
        # What ex.write does with text UTF-8 cannot encode (lone surrogates): \udc80, as
        # Python's own stdout with errors='backslashreplace'.
        return "backslashreplace"

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


# ---------------------------------------------------------------------------------------------
# Asking the client: input(), getpass.getpass(), mcp.ask() send elicitation/create (form mode),
# mcp.sample() sends sampling/createMessage, through mcp._ask_client (the C++ bridge: the GIL is
# released and the execution's time-out pauses while the person answers).

_NO_ELICITATION = ("the MCP client did not declare the 'elicitation' capability, so the user cannot be "
                   "asked either")


def _elicit(message, schema):
    """The accepted form's content (a dict); AskDeclined / AskCancelled for the user's refusal."""
    result = mcp._ask_client("elicitation/create", {"message": message, "requestedSchema": schema})
    action = result.get("action") if isinstance(result, dict) else None
    if action == "accept":
        content = result.get("content")
        return content if isinstance(content, dict) else {}
    short = message if len(message) <= 80 else message[:77] + "..."
    if action == "decline":
        raise mcp.AskDeclined(f"the user declined to answer: {short!r}")
    if action == "cancel":
        raise mcp.AskCancelled(f"the user dismissed the question without answering: {short!r}")
    raise mcp.AskError("the client's answer to elicitation/create has no valid 'action' (accept, decline or "
                       f"cancel): {str(result)[:300]}")


def _one_string(name, title, description=None):
    prop = {"type": "string", "title": title}
    if description:
        prop["description"] = description
    return {"type": "object", "properties": {name: prop}}


def _input(prompt=""):
    """input(prompt): asks the user through the MCP client (elicitation) when it can; the prompt
    and the answer are echoed to stdout as a terminal shows them."""
    text = str(prompt) if prompt else ""
    if text:
        sys.stdout.write(text)
    if current.get() is None:
        raise EOFError("input() cannot read here: " + _STDIN_MESSAGE)
    try:
        content = _elicit(text.strip() or "The running Python code asks for input.",
                          _one_string("answer", "Answer"))
    except mcp.AskUnavailable:
        raise EOFError("input() cannot read here: " + _STDIN_MESSAGE + " And " + _NO_ELICITATION + ".") from None
    answer = content.get("answer", "")
    answer = answer if isinstance(answer, str) else str(answer)
    sys.stdout.write(answer + "\n")
    return answer


_real_getpass = None


def _getpass(prompt="Password: ", stream=None):
    """getpass.getpass(): asks the user through the MCP client (elicitation, one string field
    described as a secret; MCP forms have no masked field). Only the prompt goes to stdout."""
    if current.get() is None:
        return _real_getpass(prompt, stream)
    text = str(prompt) if prompt else ""
    try:
        content = _elicit(text.strip() or "Password:", _one_string(
            "password", "Password", "Secret: the client shows and sends it in plain text (MCP forms have no "
            "masked field)."))
    except mcp.AskUnavailable:
        raise EOFError("getpass() cannot read here: " + _STDIN_MESSAGE + " And " + _NO_ELICITATION + ".") from None
    if text:
        sys.stdout.write(text + "\n")
    value = content.get("password", "")
    return value if isinstance(value, str) else str(value)


def _patch_getpass(module):
    global _real_getpass
    if getattr(module.getpass, "__module__", None) != __name__:
        _real_getpass = module.getpass
        module.getpass = _getpass


def ask(message, schema=None):
    """Asks the user through the MCP client (elicitation/create, form mode) and returns the answer.
    Without `schema`: one text field; returns the string. With `schema` (a JSON Schema object:
    {"type": "object", "properties": {name: {"type": "string"|"number"|"integer"|"boolean", ...}},
    "required": [...]}): returns the form's content dict. Raises mcp.AskDeclined / mcp.AskCancelled
    when the user refuses, mcp.AskUnavailable when the client cannot elicit, mcp.AskError when the
    request fails. The call's timeout pauses while the user answers."""
    if not isinstance(message, str):
        raise TypeError(f"mcp.ask(message): message must be a str, not {type(message).__name__}")
    if schema is None:
        content = _elicit(message, {"type": "object", "properties": {"answer": {"type": "string", "title": "Answer"}},
                                    "required": ["answer"]})
        value = content.get("answer", "")
        return value if isinstance(value, str) else str(value)
    if not isinstance(schema, dict) or schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise TypeError('mcp.ask(message, schema): schema must be a JSON Schema object such as '
                        '{"type": "object", "properties": {"name": {"type": "string"}}}')
    return _elicit(message, schema)


class Sample(str):
    """mcp.sample()'s answer: the text of the client model's reply (a str), with .model,
    .stop_reason, .role and .content (the reply's content object as the client sent it)."""

    model = None
    stop_reason = None
    role = "assistant"
    content = None

    @property
    def text(self):
        return str(self)

    def __repr__(self):
        return f"Sample({str.__repr__(self)}, model={self.model!r}, stop_reason={self.stop_reason!r})"


def _sample_message(item):
    if isinstance(item, str):
        return {"role": "user", "content": {"type": "text", "text": item}}
    if isinstance(item, dict) and item.get("role") in ("user", "assistant") and "content" in item:
        content = item["content"]
        if isinstance(content, str):
            content = {"type": "text", "text": content}
        return {"role": item["role"], "content": content}
    raise TypeError("mcp.sample(messages): each message must be a str (from the user) or a dict "
                    "{'role': 'user'|'assistant', 'content': str or a content dict}")


def sample(messages, max_tokens=1024, system=None, temperature=None, model_hint=None):
    """Asks the client's model (sampling/createMessage) and returns its reply as a Sample: the
    text (a str) with .model, .stop_reason and .content. `messages` is a str (one user message)
    or a list of str / {'role', 'content'} dicts. Raises mcp.AskUnavailable when the client did
    not declare 'sampling', mcp.AskError when it refuses or fails. The call's timeout pauses while
    the client answers (clients usually ask their user to approve)."""
    items = [messages] if isinstance(messages, (str, dict)) else list(messages)
    if not items:
        raise ValueError("mcp.sample(messages): give at least one message")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ValueError("mcp.sample(max_tokens=...): a positive int")
    params = {"messages": [_sample_message(m) for m in items], "maxTokens": max_tokens}
    if system is not None:
        params["systemPrompt"] = str(system)
    if temperature is not None:
        params["temperature"] = float(temperature)
    if model_hint is not None:
        params["modelPreferences"] = {"hints": [{"name": str(model_hint)}]}
    result = mcp._ask_client("sampling/createMessage", params)
    if not isinstance(result, dict):
        raise mcp.AskError(f"the client's answer to sampling/createMessage is not an object: {str(result)[:300]}")
    content = result.get("content")
    blocks = content if isinstance(content, list) else [content]
    text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    out = Sample(text)
    out.model = result.get("model")
    out.stop_reason = result.get("stopReason")
    out.role = result.get("role", "assistant")
    out.content = content
    return out


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
# slices so that an interrupt reaches code blocked in them. The slices wait on ONE waiter lock that
# stays registered with the condition for the whole wait, as Condition.wait does for one long wait.
# Slicing by calling the real wait again loses wake-ups: a slice that times out while the notifier
# holds the lock is notified (its waiter popped) yet returns False, and the next slice then waits
# for a notify that already came (a Future.result() that never returned).
_real_cond_wait = threading.Condition.wait
_SLICE = 0.05


def _cond_wait(self, timeout=None):
    ex = current.get()
    if ex is None:
        return _real_cond_wait(self, timeout)
    if not self._is_owned():
        raise RuntimeError("cannot wait on un-acquired lock")
    deadline = None if timeout is None else time.monotonic() + timeout
    waiter = threading._allocate_lock()
    waiter.acquire()
    self._waiters.append(waiter)
    saved_state = self._release_save()
    notified = False
    try:
        while not notified:
            ex.check_interrupt()
            step = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            if step <= 0:
                notified = waiter.acquire(False)
                break
            notified = waiter.acquire(True, step)
        return notified
    finally:
        self._acquire_restore(saved_state)
        if not notified:
            try:
                self._waiters.remove(waiter)
            except ValueError:  # notified between the last slice and taking the lock back
                pass


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
    if sys.argv is not _sys_argv:
        sys.argv = _sys_argv


# sys.argv is process-global, and sessions run concurrently: a run_script with `args` must not
# change what another session's code sees. So sys.argv is a list whose every operation goes to
# the running execution's own list (a ContextVar, inherited by the threads it starts): the
# script's path and args for run_script, [''] for execute, as in the REPL. C code that reads the
# list's storage directly (PyList_GET_ITEM) sees [''].
_argv = contextvars.ContextVar("pymcp_argv", default=None)
_DEFAULT_ARGV = [""]  # outside any execution (imports at start-up, the server's own threads)


def _argv_list():
    a = _argv.get()
    return _DEFAULT_ARGV if a is None else a


class _Argv(list):
    """sys.argv: the running execution's own argument list (see above)."""

    __slots__ = ()

    def __iadd__(self, other):
        _argv_list().extend(other)
        return self

    def __imul__(self, n):
        _argv_list()[:] = _argv_list() * n
        return self

    def __radd__(self, other):
        return other + list(_argv_list())

    def __reduce_ex__(self, protocol):  # copy, deepcopy, pickle: a plain list of the values
        return (list, (list(_argv_list()),))


def _forward_to_argv(name):
    def method(self, *args, **kwargs):
        return getattr(_argv_list(), name)(*args, **kwargs)
    method.__name__ = method.__qualname__ = name
    return method


for _name in ("__getitem__", "__setitem__", "__delitem__", "__len__", "__iter__", "__reversed__",
              "__contains__", "__repr__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
              "__add__", "__mul__", "__rmul__", "append", "extend", "insert", "pop", "remove", "clear",
              "index", "count", "sort", "reverse", "copy"):
    setattr(_Argv, _name, _forward_to_argv(_name))
del _name
_sys_argv = _Argv([""])


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
    if "getpass" in sys.modules:
        _patch_getpass(sys.modules["getpass"])
    else:
        _FirstImportHook("getpass", _patch_getpass).install()
    if "linecache" not in sys.modules:
        _FirstImportHook("linecache", _feed_linecache).install()
    sys.setswitchinterval(0.001)
    sys.argv = _sys_argv
    sys.ps1, sys.ps2 = ">>> ", "... "
    # Headless plots: no display here, and a GUI backend would fail or block (the user's choice wins).
    if not os.environ.get("MPLBACKEND"):
        os.environ["MPLBACKEND"] = "Agg"
    if "matplotlib.pyplot" in sys.modules:
        _patch_pyplot(sys.modules["matplotlib.pyplot"])
    else:
        _FirstImportHook("matplotlib.pyplot", _patch_pyplot).install()
    if not hasattr(builtins, "display"):
        builtins.display = display
    # A cell's compiled code is cached by its text: models resend the same cells often.
    global _compiled
    _compiled = {}


# ---------------------------------------------------------------------------------------------
# Running a cell


_compiled = {}
_COMPILE_CACHE_MAX = 512
_COMPILE_CACHE_MAX_CELL = 256 * 1024  # bytes of source: bigger cells are compiled every time
_cell_numbers = itertools.count(1)  # next() is atomic under the GIL; += on a global is not
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE: code with a top-level await
_TOP_LEVEL_AWAIT = _ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def _compile_cell(code, filename):
    """(body, expr, name, is_async) for a cell: body runs it but its trailing expression, expr
    evaluates that one (None when the cell does not end with one), name is the filename its
    code carries, is_async tells that body or expr awaits at top level (as in IPython)."""
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
        expr = compile(_ast.Expression(last.value), filename, "eval", _TOP_LEVEL_AWAIT, dont_inherit=True)
    body = compile(tree, filename, "exec", _TOP_LEVEL_AWAIT, dont_inherit=True) if tree.body else None
    is_async = any(c is not None and c.co_flags & _CO_COROUTINE for c in (body, expr))
    hit = (body, expr, filename, is_async)
    if len(code) <= _COMPILE_CACHE_MAX_CELL:
        if len(_compiled) >= _COMPILE_CACHE_MAX:
            _compiled.clear()
        _compiled[key] = hit
    return hit


# Source lines of cells, for tracebacks and inspect.getsource of code that has no file. They are
# kept for recent cells only: every distinct cell kept forever cost ~350 bytes each, without
# bound (20,000 cells: +8.6 MB). Kept: the last _CELLS_PER_SESSION of each persistent session,
# the last _CELLS_TRANSIENT of fresh-namespace runs (their functions die with the namespace),
# and at most _CELLS_TOTAL / _CELL_BYTES_TOTAL in all, least recently run first out. A cell
# run by several sessions (the compile cache gives identical text one name) stays while one of
# them keeps it. A cleared or expired session's cells go with it (forget_session).
_CELLS_PER_SESSION = 200
_CELLS_TRANSIENT = 50
_CELLS_TOTAL = 1000
_CELL_BYTES_TOTAL = 16 * 1024 * 1024
_cells_lock = threading.Lock()  # the runtime's own code only; never held while user code runs
_cells = {}        # name -> [source bytes, set of owners], least recently run first
_owner_cells = {}  # owner (a session id, None for fresh namespaces) -> {name: None}, oldest first
_cell_bytes = 0


def _keep_cell(name, code, owner):
    global _cell_bytes
    with _cells_lock:
        entry = _cells.pop(name, None)
        if entry is None:
            entry = [len(code), set()]
            _cell_bytes += entry[0]
            _remember_source(name, code)
        _cells[name] = entry
        entry[1].add(owner)
        recent = _owner_cells.get(owner)
        if recent is None:
            recent = _owner_cells[owner] = {}
        recent.pop(name, None)
        recent[name] = None
        if len(recent) > (_CELLS_TRANSIENT if owner is None else _CELLS_PER_SESSION):
            _release_cell(next(iter(recent)), owner)
        while len(_cells) > _CELLS_TOTAL or (_cell_bytes > _CELL_BYTES_TOTAL and len(_cells) > 1):
            oldest = next(iter(_cells))
            if oldest == name:
                break
            _forget_cell(oldest)


def _release_cell(name, owner):  # _cells_lock held
    recent = _owner_cells.get(owner)
    if recent is not None:
        recent.pop(name, None)
        if not recent:
            del _owner_cells[owner]
    entry = _cells.get(name)
    if entry is not None:
        entry[1].discard(owner)
        if not entry[1]:
            _forget_cell(name)


def _forget_cell(name):  # _cells_lock held
    global _cell_bytes
    size, owners = _cells.pop(name)
    _cell_bytes -= size
    for owner in owners:
        recent = _owner_cells.get(owner)
        if recent is not None:
            recent.pop(name, None)
            if not recent:
                del _owner_cells[owner]
    _cell_sources.pop(name, None)
    cache = getattr(sys.modules.get("linecache"), "cache", None)
    if isinstance(cache, dict):
        cache.pop(name, None)


def forget_session(session_id):
    """Called by the engine when a persistent session is cleared or expires."""
    with _cells_lock:
        for name in list(_owner_cells.get(session_id, ())):
            _release_cell(name, session_id)


# linecache costs milliseconds to import (tokenize, re), which every server start would pay
# before its first execute. So cell sources wait in _cell_sources until something imports it
# (our own error formatting, or user code's traceback/inspect): a _FirstImportHook sees that import
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


def _feed_linecache(module):
    module.cache.update(_cell_sources)
    _cell_sources.clear()


class _AfterImportLoader:
    """A module's own loader, plus a function run on the module once it has executed."""

    def __init__(self, loader, after):
        self._loader = loader
        self._after = after

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._after(module)

    def __getattr__(self, name):  # get_source, get_filename... as the real loader
        return getattr(self._loader, name)


class _FirstImportHook:
    """A sys.meta_path finder for the first import of one module: it finds the module's spec
    with the other finders, wraps its loader so `after(module)` runs once the module executed,
    and takes itself off sys.meta_path. Costs nothing until that import happens."""

    def __init__(self, name, after):
        self._name = name
        self._after = after

    def install(self):
        sys.meta_path.insert(0, self)

    def find_spec(self, name, path=None, target=None):
        if name != self._name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None and spec.loader is not None:
                spec.loader = _AfterImportLoader(spec.loader, self._after)
                return spec
        return None


# ---------------------------------------------------------------------------------------------
# Rich results: figures and images as image content, display(). Nothing here imports matplotlib,
# PIL or pandas: a value of theirs, or pyplot in sys.modules, means the cell already did, so a
# cell without figures pays a dict lookup. pyplot's figures are process-global: a cell takes the
# figures opened since it started (other sessions' figures open at that moment are left alone).

_figure_baseline = contextvars.ContextVar("pymcp_figures", default=frozenset())
_FIGURE_DPI = 100
_PLAIN_TYPES = frozenset((int, float, str, bytes, bool, list, tuple, dict, set, frozenset, complex, type))


def _open_figures():
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    return frozenset(helpers.Gcf.figs) if helpers is not None else frozenset()


def _figure_png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_FIGURE_DPI)
    return buf.getvalue()


def _add_image(ex, data, mime):
    """Hands an image to the execution; one that would not fit the call's byte budget is first
    shrunk to half its size when Pillow is there. False when it was dropped."""
    if len(data) > ex.image_bytes_left():
        data = _downscaled(data, mime) or data
    return ex.add_display("image", mime, data)


def _downscaled(data, mime):
    try:
        from PIL import Image
        img = Image.open(io.BytesIO(data))
        img = img.resize((max(1, img.width // 2), max(1, img.height // 2)))
        buf = io.BytesIO()
        img.save(buf, format="JPEG" if mime == "image/jpeg" else "PNG")
        return buf.getvalue()
    except Exception:  # noqa: BLE001 - no Pillow, or an image it cannot read: keep the original
        return None


def _capture_figures(ex):
    """Each figure opened since the cell started becomes an image, then is closed (as Jupyter's
    inline backend does). Errors become a line on the cell's stderr, never the cell's failure."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    plt = sys.modules.get("matplotlib.pyplot")
    if helpers is None or plt is None:
        return
    baseline = _figure_baseline.get()
    for num, manager in list(helpers.Gcf.figs.items()):
        if num in baseline:
            continue
        fig = manager.canvas.figure
        try:
            if not ex.interrupted() and (fig.axes or fig.texts or fig.images):
                _add_image(ex, _figure_png(fig), "image/png")
        except Exception as e:  # noqa: BLE001
            ex.write(1, f"python-mcp: figure {num} could not be rendered: {type(e).__name__}: {e}\n")
        finally:
            plt.close(fig)


def _figure_of(value):
    """The matplotlib Figure a value is or belongs to (an Axes), else None."""
    mfig = sys.modules.get("matplotlib.figure")
    if mfig is None:
        return None
    if isinstance(value, mfig.Figure):
        return value
    maxes = sys.modules.get("matplotlib.axes")
    if maxes is not None and isinstance(value, maxes.Axes):
        return value.figure
    return None


def _image_of(value):
    """(mime, bytes) of a value that shows as an image (a Figure, an Axes, a PIL image, an object
    with _repr_png_ / _repr_jpeg_), else None. An open figure is closed once rendered."""
    fig = _figure_of(value)
    if fig is not None:
        data = _figure_png(fig)
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close(fig)  # taken now: not again at the end of the cell
        return "image/png", data
    cls = type(value)
    for attr, mime in (("_repr_png_", "image/png"), ("_repr_jpeg_", "image/jpeg")):
        method = getattr(cls, attr, None)  # on the type: a __getattr__ that answers anything is not asked
        if method is None:
            continue
        data = method(value)
        if isinstance(data, tuple):  # (data, metadata), as IPython allows
            data = data[0]
        if isinstance(data, str):
            import base64
            data = base64.b64decode(data)
        if isinstance(data, (bytes, bytearray)) and data:
            return mime, bytes(data)
    return None


def _content_image(value):
    """(mime, bytes) of an MCP image content item (a downstream tool's, as mcp.call or mcp.Content
    gives it: {"type": "image", "data": base64, "mimeType": "image/..."}), else None."""
    if not isinstance(value, dict) or value.get("type") != "image":
        return None
    data, mime = value.get("data"), value.get("mimeType")
    if not isinstance(data, str) or not isinstance(mime, str) or not mime.startswith("image/"):
        return None
    import base64
    import binascii
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    return (mime, raw) if raw else None


def _content_items(value):
    """A trailing list of MCP content items with at least one image (what mcp.<server>.<tool>()
    returns for an image tool): [(kind, mime, payload)], else None."""
    if not isinstance(value, list) or not value or len(value) > 1000:
        return None
    items = []
    for v in value:
        image = _content_image(v)
        if image is not None:
            items.append(("image",) + image)
        elif isinstance(v, dict) and v.get("type") == "text" and isinstance(v.get("text"), str):
            items.append(("text", "text/plain", v["text"]))
        else:
            return None
    return items if any(k == "image" for k, _, _ in items) else None


def _show_content(ex, value):
    """True when the trailing value is an image content item, or a list of content items with an
    image, and went out as content."""
    if type(value) is list:
        items = _content_items(value)
        if items is None:
            return False
        for kind, mime, payload in items:
            if kind == "image":
                _add_image(ex, payload, mime)
            else:
                ex.add_display("text", mime, _text(payload))
        return True
    image = _content_image(value)
    if image is None:
        return False
    _add_image(ex, image[1], image[0])
    return True


def _show_as_image(ex, value):
    """True when the trailing value went out as an image (it then has no repr in the result)."""
    if type(value) in _PLAIN_TYPES:
        return (type(value) is dict or type(value) is list) and _show_content(ex, value)
    if isinstance(value, dict):  # mcp.Content
        return _show_content(ex, value)
    try:
        image = _image_of(value)
    except Exception as e:  # noqa: BLE001 - a broken _repr_png_: the repr, as before
        ex.write(1, f"python-mcp: the value could not be shown as an image: {type(e).__name__}: {e}\n")
        return False
    if image is None:
        return False
    _add_image(ex, image[1], image[0])
    return True


def _patched_show(real_show):
    def show(*args, **kwargs):
        """In python-mcp: the open figures become images of the result (then are closed)."""
        ex = current.get()
        if ex is None:
            return real_show(*args, **kwargs)
        _capture_figures(ex)
        return None
    show.__wrapped__ = real_show
    show.__name__ = show.__qualname__ = "show"
    return show


def _patch_pyplot(module):
    real = getattr(module, "show", None)
    if real is not None and getattr(real, "__wrapped__", None) is None:
        module.show = _patched_show(real)


_TABLE_ROWS = 60  # a DataFrame shows its first and last rows, with its shape


def _table_text(df):
    shape = f"[{df.shape[0]} rows x {df.shape[1]} columns]"
    part = df if len(df) <= _TABLE_ROWS else df.iloc[list(range(_TABLE_ROWS // 2)) + list(range(-_TABLE_ROWS // 2, 0))]
    try:
        text = part.to_markdown()
    except ImportError:  # no tabulate
        text = part.to_string()
    if len(df) > _TABLE_ROWS:
        text += f"\n(showing the first and last {_TABLE_ROWS // 2} rows)"
    return text + "\n" + shape


def _display_text(obj):
    """(mime, text) for display() of a value that is not an image."""
    if isinstance(obj, str):
        return "text/plain", obj
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, (pd.DataFrame, pd.Series)):
        return "text/markdown", _table_text(obj if isinstance(obj, pd.DataFrame) else obj.to_frame())
    cls = type(obj)
    for attr, mime in (("_repr_markdown_", "text/markdown"), ("_repr_svg_", "image/svg+xml"),
                       ("_repr_html_", "text/html")):
        method = getattr(cls, attr, None)
        if method is None:
            continue
        text = method(obj)
        if isinstance(text, tuple):
            text = text[0]
        if isinstance(text, str) and text:
            return mime, text
    return "text/plain", repr(obj)


def display(*objs):
    """Adds each object to the result, after the text, while the code runs: a matplotlib Figure or
    Axes, a PIL image or an object with _repr_png_/_repr_jpeg_ as an image; a pandas DataFrame as
    a table; an object with _repr_markdown_/_repr_svg_/_repr_html_ as that text; an MCP image
    content item (a downstream tool's, from mcp.call or mcp.Content) as that image; anything else
    as its repr. Outside an execution it prints."""
    ex = current.get()
    for obj in objs:
        if ex is None:
            print(obj)
            continue
        image = _content_image(obj) if isinstance(obj, dict) else None
        if image is None and type(obj) not in _PLAIN_TYPES:
            image = _image_of(obj)
        if image is not None:
            _add_image(ex, image[1], image[0])
        else:
            mime, text = _display_text(obj)
            ex.add_display("text", mime, _text(text))


def new_namespace():
    return {"__name__": "__main__", "__builtins__": builtins, "mcp": mcp}


def _user_traceback(exc):
    """The traceback as Python prints it, chained exceptions (cause, context, groups) included,
    without this runtime's own frames and the event loop's plumbing above an async cell."""
    import traceback  # on the first error only: it costs milliseconds at start-up
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    suspended = getattr(exc, "_pymcp_suspended_at", None)
    if suspended:  # an interrupted async cell: where it was awaiting
        te.stack = traceback.StackSummary.extract(iter(suspended))
        del exc._pymcp_suspended_at
    todo, seen = [te], set()
    while todo:  # not recursive: a chain may be long
        t = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        t.stack = traceback.StackSummary.from_list(_user_frames(t.stack))
        todo.extend(x for x in (t.__cause__, t.__context__) if x is not None)
        todo.extend(getattr(t, "exceptions", None) or ())
    return _text("".join(te.format()))


def _user_frames(frames):
    frames = [f for f in frames if f.filename != _RUNTIME_FILE]
    aio = sys.modules.get("asyncio")
    aio_dir = os.path.dirname(getattr(aio, "__file__", "") or "") if aio is not None else ""
    if aio_dir:  # run_until_complete, Future.result, Task.__step: before the cell's first frame
        while frames and os.path.dirname(frames[0].filename) == aio_dir:
            frames.pop(0)
    return frames


def _text(s):
    """`s` as text the server can send: a lone surrogate becomes \\udXXX."""
    if s.isascii():  # O(1) in CPython
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


# Top-level await: the cell runs as one coroutine on an event loop of its own, in the executing
# thread (one loop per cell; tasks still pending when the cell ends are cancelled, as asyncio.run
# does). The loop's waits are cut into 50 ms slices that check for an interrupt, so a time-out or
# cancellation stops `await asyncio.sleep(100)` at once; the interrupter's exception alone would
# wait for the loop to wake.
_selector_class = None


def _interruptible_selector(ex):
    global _selector_class
    if _selector_class is None:
        import selectors

        class _Selector(selectors.DefaultSelector):
            def select(self, timeout=None):
                if timeout is not None and timeout <= 0:
                    return super().select(timeout)
                deadline = None if timeout is None else time.monotonic() + timeout
                while True:
                    self.execution.check_interrupt()
                    step = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
                    if step <= 0:
                        return []
                    ready = super().select(step)
                    if ready:
                        return ready

        _selector_class = _Selector
    selector = _selector_class()
    selector.execution = ex
    return selector


async def _cell_coroutine(body, expr, namespace):
    if body is not None:
        started = eval(body, namespace)  # a coroutine when the body awaits, else it just ran
        if body.co_flags & _CO_COROUTINE:
            await started
    if expr is None:
        return None
    value = eval(expr, namespace)
    if expr.co_flags & _CO_COROUTINE:
        value = await value
    return value


def _suspended_at(coro):
    """[(frame, line)] of a suspended coroutine and of what it awaits, outermost first."""
    frames = []
    while coro is not None and len(frames) < 100:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append((frame, frame.f_lineno))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def _finish_loop(asyncio, loop):
    """Cancels the tasks the cell left and lets them run their cleanup, as asyncio.run does;
    after an interrupt only what can run without waiting runs (the selector raises again)."""
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except BaseException:  # noqa: BLE001 - interrupted while cleaning up: the loop closes anyway
        pass


def _execute(ex, body, expr, is_async, namespace):
    """Runs a compiled cell; returns (value, repr of the value or None). The repr is part of
    the user's code: it may loop, and must be interruptible too."""
    loop = asyncio = None
    if is_async:
        import asyncio  # before the user-code window: an interrupt must not land in an import
        loop = asyncio.SelectorEventLoop(_interruptible_selector(ex))
    try:
        # Interrupts are posted only while this is set (see Execution::in_user_code).
        ex.set_in_user_code(True)
        try:
            if loop is not None:
                main = loop.create_task(_cell_coroutine(body, expr, namespace))
                try:
                    value = loop.run_until_complete(main)
                except _pymcp.ExecutionInterrupted as e:
                    # It lands in the loop's wait; where the cell was waiting is more use.
                    e._pymcp_suspended_at = _suspended_at(main.get_coro())
                    raise
                finally:
                    _finish_loop(asyncio, loop)
            else:
                if body is not None:
                    exec(body, namespace)
                value = eval(expr, namespace) if expr is not None else None
            return value, (None if value is None or _show_as_image(ex, value) else repr(value))
        finally:
            ex.set_in_user_code(False)
    finally:
        if loop is not None:
            loop.close()


def run(ex, code, namespace, filename):
    """Runs one cell for execution `ex` and reports how it ended on `ex` itself, once:
    ex.set_ok(repr of the trailing expression or None), or ex.set_error(type, message,
    traceback, interrupted). Returns None; the C++ side reads the report (CellResult)."""
    install()
    token = current.set(ex)
    script = not filename.startswith("<")
    # run_script: sys.argv is the script's path and its args, __file__ its path (restored
    # afterwards in a persistent session, whose later cells are not the script).
    argv_token = _argv.set((ex.argv or [filename]) if script else [""])
    figures_token = _figure_baseline.set(_open_figures())
    owner = ex.cell_owner
    saved_file = namespace.get("__file__", _MISSING) if script else _MISSING
    try:
        try:
            body, expr, name, is_async = _compile_cell(code, filename)
            if not script:
                _keep_cell(name, code, owner)
            if script:
                namespace["__file__"] = filename
            value, result = _execute(ex, body, expr, is_async, namespace)
            if result is not None:
                result = _text(result)
            if expr is not None and value is not None:
                namespace["_"] = value
            ex.set_ok(result)
        except _pymcp.ExecutionInterrupted as e:
            ex.set_error(ex.interrupt_reason() or "interrupted", _text(str(e)), _user_traceback(e), True)
        except SystemExit as e:
            code_ = e.code
            msg = "SystemExit" if code_ is None else f"SystemExit: {code_}"
            ex.set_error("SystemExit", _text(str(code_)) if code_ is not None else "", _text(msg + "\n"))
        except BaseException as e:  # noqa: BLE001 - everything user code raises is reported
            if ex.interrupted():
                ex.set_error(ex.interrupt_reason(), _text(str(e)), _user_traceback(e), True)
            else:
                ex.set_error(type(e).__name__, _text(str(e)), _user_traceback(e))
    finally:
        _capture_figures(ex)
        _figure_baseline.reset(figures_token)
        if script and owner is not None:
            if saved_file is _MISSING:
                namespace.pop("__file__", None)
            else:
                namespace["__file__"] = saved_file
        _argv.reset(argv_token)
        current.reset(token)


_MISSING = object()


def count_variables(namespace):
    return sum(1 for k in namespace if not (k.startswith("__") and k.endswith("__")) and k != "mcp")


# ---------------------------------------------------------------------------------------------
# mcp.call's params: values that are not plain JSON types


def json_substitute(o):
    """The JSON-able stand-in the C++ converter (py_json.cpp) uses for a value that is not a
    plain JSON type, as pandas' to_json does: NaN/NaT/NA -> None, datetime/date/time and
    Timestamps -> ISO 8601 text, numpy numbers -> int/float/bool, numpy arrays -> lists,
    Decimal -> int or float. NotImplemented when `o` has no JSON form. Only called for types
    the C++ fast path does not know, so ordinary params never get here; numpy and pandas are
    never imported here: a value of theirs means they already are."""
    t = type(o)
    module = t.__module__ or ""
    if module == "numpy":
        return _numpy_substitute(o)
    if module.startswith("pandas"):
        if t.__name__ in ("NaTType", "NAType"):  # before datetime: NaT is a datetime subclass
            return None
    dt = sys.modules.get("datetime")
    if dt is not None and isinstance(o, (dt.datetime, dt.date, dt.time)):
        return o.isoformat()  # pd.Timestamp too: full precision, the UTC offset kept when aware
    dec = sys.modules.get("decimal")
    if dec is not None and isinstance(o, dec.Decimal):
        if not o.is_finite():
            return None
        if o.as_tuple().exponent >= 0 and -2**63 <= o < 2**64:
            return int(o)
        return float(o)
    return NotImplemented


def _numpy_substitute(o):
    kind = getattr(getattr(o, "dtype", None), "kind", "")
    if getattr(o, "ndim", 0) > 0:  # an array
        # datetime64 and timedelta64 element by element: tolist() would give nanoseconds as ints
        return list(o) if kind in "Mm" else o.tolist()
    if kind == "M":  # datetime64: NaT != NaT, like NaN
        return None if o != o else str(o)
    if kind in "biufO":  # numbers, bools, and what a 0-d object array holds
        return o.item()
    return NotImplemented  # complex, timedelta64, bytes_, void


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
    names = {"call", "list_tools", "search_tools", "ToolError", "display", "ask", "sample", "Sample", "AskError",
             "AskDeclined", "AskCancelled", "AskUnavailable", "progress"}
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
