// The `mcp` and `_pymcp` embedded modules. Defined at global scope in a source of the OBJECT
// library that goes into the executable, so the linker keeps their static registration.

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "python_mcp/bridge/bridge.hpp"
#include "python_mcp/python/py_json.hpp"

namespace py = pybind11;
using pymcp::json;
using pymcp::python::Execution;
using pymcp::engine::ExecError;

namespace pymcp::bridge {
namespace {

PyObject* g_interrupted = nullptr;  // _pymcp.ExecutionInterrupted
PyObject* g_tool_error = nullptr;   // mcp.ToolError
PyObject* g_current = nullptr;      // the runtime's ContextVar
PyObject* g_ask_error = nullptr;        // mcp.AskError: a request to the client failed
PyObject* g_ask_unavailable = nullptr;  // mcp.AskUnavailable(AskError): nobody can be asked

std::shared_ptr<Execution> current_execution() {
    if (!g_current) return nullptr;
    PyObject* value = nullptr;
    if (PyContextVar_Get(g_current, nullptr, &value) != 0 || !value) {
        PyErr_Clear();
        return nullptr;
    }
    auto holder = py::reinterpret_steal<py::object>(value);
    if (holder.is_none()) return nullptr;
    try {
        return holder.cast<std::shared_ptr<Execution>>();
    } catch (const py::cast_error&) {
        return nullptr;
    }
}

// The execution whose code (or a thread it started) is calling, or a RuntimeError naming `what`:
// the host that serves the call is the execution's own, so there is nobody to ask without one.
std::shared_ptr<Execution> require_execution(const char* what) {
    auto execution = current_execution();
    if (!execution)
        throw std::runtime_error(std::string(what) +
                                 " is only available to code the python tool runs (and threads it started): this "
                                 "thread has no execution in its context");
    return execution;
}

[[noreturn]] void raise_tool_error(const std::string& message, const json& result) {
    py::object error = py::reinterpret_borrow<py::object>(g_tool_error)(message);
    error.attr("result") = result.is_null() ? py::object(py::none()) : python::json_to_py(result);
    error.attr("message") = message;
    PyErr_SetObject(g_tool_error, error.ptr());
    throw py::error_already_set();
}

std::string error_text(const json& result) {
    std::string text;
    if (result.contains("content") && result["content"].is_array())
        for (const auto& c : result["content"])
            if (c.is_object() && c.value("type", "") == "text" && c.contains("text") && c["text"].is_string()) {
                if (!text.empty()) text += "\n";
                text += c["text"].get<std::string>();
            }
    return text.empty() ? "the tool reported an error" : text;
}

py::object call_tool(const std::string& name, py::object params) {
    auto execution = require_execution("mcp.call");
    json arguments = params.is_none() ? json::object() : python::py_to_json(params, "params");
    if (!arguments.is_object())
        throw py::type_error("mcp.call(name, params): params must be a dict, not " +
                             std::string(Py_TYPE(params.ptr())->tp_name));
    json result;
    std::string failure;
    auto start = std::chrono::steady_clock::now();
    {
        py::gil_scoped_release nogil;
        try {
            result = execution->host().call_tool(name, std::move(arguments), execution->caller_session(),
                                                 execution->token());
        } catch (const std::exception& e) {
            failure = e.what();
        }
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const json* flag = nullptr;  // result["isError"], when the result says
    if (result.is_object())
        if (auto it = result.find("isError"); it != result.end()) flag = &*it;
    const bool tool_failed = flag && flag->is_boolean() && flag->get<bool>();
    bool is_error = !failure.empty() || tool_failed;
    execution->record_call({name, ms, is_error});
    if (execution->interrupted()) {
        PyErr_SetString(g_interrupted,
                        ("interrupted while calling tool '" + Execution::bounded_tool_name(name) + "'").c_str());
        throw py::error_already_set();
    }
    if (!failure.empty()) raise_tool_error(failure, nullptr);
    if (tool_failed) raise_tool_error(error_text(result), result);
    // Every result has the same three keys, whatever the tool (downstream servers may omit isError).
    if (result.is_object() && !flag) result["isError"] = false;
    return python::json_to_py(result);
}

// mcp.call(name, params=None) as a plain vectorcall C function: pybind11's dispatcher (an
// argument tuple, type loaders, overload bookkeeping) cost a twentieth of a trivial in-process
// call. Errors become the Python exceptions pybind11 would have raised.
PyObject* call_entry(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    PyObject* slots[2] = {nullptr, Py_None};  // name, params
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "mcp.call() takes at most 2 arguments (%zd given)", nargs);
        return nullptr;
    }
    for (Py_ssize_t i = 0; i < nargs; ++i) slots[i] = args[i];
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; ++i) {
        PyObject* key = PyTuple_GET_ITEM(kwnames, i);
        int slot = PyUnicode_CompareWithASCIIString(key, "name") == 0     ? 0
                   : PyUnicode_CompareWithASCIIString(key, "params") == 0 ? 1
                                                                          : -1;
        if (slot < 0) {
            PyErr_Format(PyExc_TypeError, "mcp.call() got an unexpected keyword argument '%U'", key);
            return nullptr;
        }
        if (slot < nargs) {
            PyErr_Format(PyExc_TypeError, "mcp.call() got multiple values for argument '%U'", key);
            return nullptr;
        }
        slots[slot] = args[nargs + i];
    }
    if (!slots[0]) {
        PyErr_SetString(PyExc_TypeError, "mcp.call() missing required argument 'name' (pos 1)");
        return nullptr;
    }
    if (!PyUnicode_Check(slots[0])) {
        PyErr_Format(PyExc_TypeError, "mcp.call(name, params): name must be a str, not %s", Py_TYPE(slots[0])->tp_name);
        return nullptr;
    }
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(slots[0], &size);
    if (!utf8) return nullptr;
    try {
        return call_tool(std::string(utf8, static_cast<size_t>(size)), py::reinterpret_borrow<py::object>(slots[1]))
            .release()
            .ptr();
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (py::builtin_exception& e) {
        e.set_error();
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

PyMethodDef g_call_def = {
    "call", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&call_entry)), METH_FASTCALL | METH_KEYWORDS,
    "call($module, /, name, params=None)\n--\n\n"
    "Calls the MCP tool `name` with `params` (a dict; built-ins also take the original "
    "{'input': {...}} form) and returns its result as a dict. Raises mcp.ToolError when the "
    "tool fails, is unknown, or the params are invalid."};

// Pauses the execution's time-out for as long as it lives (a person is answering).
class DeadlinePause {
public:
    explicit DeadlinePause(Execution& execution) : execution_(execution) { execution_.begin_pause(); }
    ~DeadlinePause() { execution_.end_pause(); }
    DeadlinePause(const DeadlinePause&) = delete;
    DeadlinePause& operator=(const DeadlinePause&) = delete;

private:
    Execution& execution_;
};

// mcp._ask_client(method, params): sends a request to the client of the call running this code
// (elicitation/create, sampling/createMessage) and returns its result. The GIL is released and
// the execution's time-out pauses while the client (its person) answers; an interrupt (the
// client cancelled the call, shutdown) ends the wait. Raises mcp.AskUnavailable when nobody
// can be asked (nothing was sent), mcp.AskError when the request failed.
py::object ask_client(const std::string& method, py::object params) {
    auto execution = require_execution("asking the MCP client (input(), mcp.ask, mcp.sample)");
    json request = python::py_to_json(params, "params");
    json result;
    std::string failure;
    bool unavailable = false;
    {
        py::gil_scoped_release nogil;
        DeadlinePause pause(*execution);
        try {
            result = execution->host().ask_client(method, std::move(request), execution->token());
        } catch (const engine::HostError& e) {
            unavailable = true;
            failure = e.what();
        } catch (const std::exception& e) {
            failure = e.what();
        }
    }
    if (execution->interrupted()) {
        PyErr_SetString(g_interrupted, ("interrupted while waiting for the client's answer to " + method).c_str());
        throw py::error_already_set();
    }
    if (!failure.empty()) {
        PyErr_SetString(unavailable ? g_ask_unavailable : g_ask_error, failure.c_str());
        throw py::error_already_set();
    }
    return python::json_to_py(result);
}

// A downstream server still starting has no tools in the registry yet: the host waits for it
// (bounded, and cut short by an interrupt). Returns why the server cannot be had (it failed to
// start, is disabled...), or "" when it may be there now.
std::string wait_for_server(const std::string& server) {
    auto execution = require_execution("mcp._wait_for_server");
    if (server.empty()) return {};
    py::gil_scoped_release nogil;
    return execution->host().wait_for_server(server, execution->token());
}

json host_tools(Execution& execution) {
    py::gil_scoped_release nogil;
    return execution.host().list_tools();
}

std::string meta_text(const json& tool, const char* key) {
    auto meta = tool.find("_meta");
    if (meta == tool.end() || !meta->is_object()) return {};
    auto it = meta->find(key);
    return it != meta->end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool has_server_tools(const json& tools, const std::string& server) {
    for (const auto& t : tools)
        if (meta_text(t, "server") == server) return true;
    return false;
}

py::list list_tools(py::object server) {
    auto execution = require_execution("mcp.list_tools");
    std::string wanted = server.is_none() ? std::string() : server.cast<std::string>();
    json tools = host_tools(*execution);
    if (!wanted.empty() && !has_server_tools(tools, wanted)) {
        wait_for_server(wanted);
        tools = host_tools(*execution);
    }
    py::list out;
    for (const auto& t : tools) {
        std::string srv = meta_text(t, "server"), tool = meta_text(t, "tool");
        if (!wanted.empty() && srv != wanted) continue;
        std::string name = t.value("name", "");
        py::dict d;
        d["name"] = name;
        d["description"] = t.value("description", "");
        d["input_schema"] = python::json_to_py(t.value("inputSchema", json::object()));
        if (auto o = t.find("outputSchema"); o != t.end()) d["output_schema"] = python::json_to_py(*o);
        d["server"] = srv.empty() ? py::object(py::none()) : py::object(py::str(srv));
        d["tool"] = py::str(tool.empty() ? name : tool);
        out.append(std::move(d));
    }
    return out;
}

// mcp.progress(done, total=None, message=None): notifications/progress for the tools/call that
// runs this code (when it carried a progressToken). The GIL is released: sending may wait for
// the client.
void progress(double done, std::optional<double> total, std::optional<std::string> message) {
    auto execution = require_execution("mcp.progress");
    if (!std::isfinite(done) || (total && !std::isfinite(*total)))
        throw py::value_error("mcp.progress(done, total): numbers must be finite");
    py::gil_scoped_release nogil;
    execution->host().progress(done, total, message.value_or(""));
}

// Execution.write(stream, text): text as UTF-8. A str UTF-8 cannot encode (a lone surrogate, as
// in print('\ud800')) is written as Python's own stdout does with errors='backslashreplace'
// ("\ud800"), instead of failing the print. The usual case costs no copy on the Python side.
bool write_text(Execution& execution, int stream, py::handle text) {
    if (!PyUnicode_Check(text.ptr()))
        throw py::type_error(std::string("write() argument must be str, not ") + Py_TYPE(text.ptr())->tp_name);
    Py_ssize_t size = 0;
    if (const char* utf8 = PyUnicode_AsUTF8AndSize(text.ptr(), &size))
        return execution.write(stream, std::string_view(utf8, static_cast<size_t>(size)));
    PyErr_Clear();
    auto bytes = py::reinterpret_steal<py::object>(PyUnicode_AsEncodedString(text.ptr(), "utf-8", "backslashreplace"));
    if (!bytes) throw py::error_already_set();
    return execution.write(stream, std::string_view(PyBytes_AS_STRING(bytes.ptr()),
                                                    static_cast<size_t>(PyBytes_GET_SIZE(bytes.ptr()))));
}

}  // namespace

void forget_session_cells(const std::string& session_id) {
    py::gil_scoped_acquire gil;
    try {
        py::module_::import("_pymcp_runtime").attr("forget_session")(session_id);
    } catch (const py::error_already_set&) {
        // Only source lines for tracebacks are at stake: never worth failing a clear_session.
    }
}

PyObject* execution_interrupted_type() { return g_interrupted; }

py::object wrap_execution(const std::shared_ptr<Execution>& execution) { return py::cast(execution); }

void attach_runtime() {
    py::module_ runtime = py::module_::import("_pymcp_runtime");
    py::module_ m = py::module_::import("mcp");
    g_current = runtime.attr("current").ptr();
    Py_INCREF(g_current);
    m.attr("__getattr__") = runtime.attr("module_getattr");
    m.attr("__dir__") = runtime.attr("module_dir");
    m.attr("search_tools") = runtime.attr("search_tools");
    m.attr("Content") = runtime.attr("Content");
    m.attr("display") = runtime.attr("display");
    m.attr("ask") = runtime.attr("ask");
    m.attr("sample") = runtime.attr("sample");
    m.attr("Sample") = runtime.attr("Sample");
}

}  // namespace pymcp::bridge

PYBIND11_EMBEDDED_MODULE(_pymcp, m) {
    m.doc() = "python-mcp runtime internals";
    pymcp::bridge::g_interrupted =
        PyErr_NewExceptionWithDoc("_pymcp.ExecutionInterrupted",
                                  "Raised in running code when its time-out passes or the client cancels it. "
                                  "A BaseException, so `except Exception` does not swallow it.",
                                  PyExc_BaseException, nullptr);
    m.attr("ExecutionInterrupted") = py::reinterpret_borrow<py::object>(pymcp::bridge::g_interrupted);
    py::class_<Execution, std::shared_ptr<Execution>>(m, "Execution")
        .def("write", &pymcp::bridge::write_text)
        .def("sleep",
             [](Execution& e, double seconds) {
                 if (seconds < 0) throw py::value_error("sleep length must be non-negative");
                 bool interrupted;
                 {
                     py::gil_scoped_release nogil;
                     interrupted = e.sleep(seconds);
                 }
                 if (interrupted) {
                     PyErr_SetString(pymcp::bridge::g_interrupted, "interrupted during time.sleep()");
                     throw py::error_already_set();
                 }
             })
        .def("check_interrupt",
             [](Execution& e) {
                 if (e.interrupted()) {
                     PyErr_SetString(pymcp::bridge::g_interrupted, "interrupted while waiting");
                     throw py::error_already_set();
                 }
             })
        .def("interrupted", &Execution::interrupted)
        // The cell's result, reported once by the runtime (pymcp_runtime.run).
        .def("set_ok", &Execution::set_ok, py::arg("value"))
        .def(
            "set_error",
            [](Execution& e, std::string type, std::string message, std::string traceback, bool interrupted) {
                e.set_error(ExecError{std::move(type), std::move(message), std::move(traceback)}, interrupted);
            },
            py::arg("type"), py::arg("message"), py::arg("traceback"), py::arg("interrupted") = false)
        // Rich content: kind "image" (data: the image's bytes) or "text" (data: str). False when
        // the item was dropped, past the call's image budget.
        .def(
            "add_display",
            [](Execution& e, const std::string& kind, std::string mime, py::object data) {
                pymcp::engine::ContentItem item;
                if (kind == "image") {
                    item.kind = pymcp::engine::ContentItem::Kind::Image;
                    item.data = data.cast<py::bytes>();
                } else if (kind == "text") {
                    item.data = data.cast<std::string>();
                } else {
                    throw py::value_error("add_display: kind must be 'image' or 'text'");
                }
                item.mime = std::move(mime);
                return e.add_display(std::move(item));
            },
            py::arg("kind"), py::arg("mime"), py::arg("data"))
        .def("image_bytes_left", &Execution::image_bytes_left)
        .def("set_in_user_code", &Execution::set_in_user_code)
        .def("interrupt_reason", &Execution::interrupt_reason)
        .def_property_readonly("session_id", &Execution::session_id)
        // Whose cell sources the runtime keeps: the session for persistent runs, None otherwise.
        .def_property_readonly("cell_owner",
                               [](const Execution& e) -> py::object {
                                   return e.persistent() ? py::object(py::str(e.session_id())) : py::object(py::none());
                               })
        .def_property_readonly("argv", [](const Execution& e) { return e.argv(); });
}

PYBIND11_EMBEDDED_MODULE(mcp, m) {
    m.doc() =
        "Call MCP tools from Python.\n\n"
        "mcp.call(name, params) -> result dict {content, structuredContent, isError}\n"
        "mcp.list_tools(server=None) -> [{name, description, input_schema, server, tool}]\n"
        "mcp.progress(done, total=None, message=None): progress to the client\n"
        "mcp.search_tools(query) -> [{name, server, description}]\n"
        "mcp.<server>.<tool>(**arguments) -> the unwrapped result\n"
        "mcp.ask(message, schema=None) -> the user's answer (elicitation)\n"
        "mcp.sample(messages, max_tokens=1024, ...) -> the client's model's text (sampling)\n"
        "mcp.ToolError: raised when a tool fails; .result holds the whole result.\n"
        "mcp.AskError (AskDeclined, AskCancelled, AskUnavailable): a question got no answer.";
    pymcp::bridge::g_tool_error = PyErr_NewExceptionWithDoc(
        "mcp.ToolError", "A tool call failed. `.result` is the tool's whole result (or None).", PyExc_Exception,
        nullptr);
    m.attr("ToolError") = py::reinterpret_borrow<py::object>(pymcp::bridge::g_tool_error);
    // Asking the client (input(), getpass, mcp.ask, mcp.sample; the runtime raises the subclasses).
    pymcp::bridge::g_ask_error = PyErr_NewExceptionWithDoc(
        "mcp.AskError", "A question to the MCP client (input(), getpass, mcp.ask, mcp.sample) did not get an answer.",
        PyExc_Exception, nullptr);
    m.attr("AskError") = py::reinterpret_borrow<py::object>(pymcp::bridge::g_ask_error);
    pymcp::bridge::g_ask_unavailable = PyErr_NewExceptionWithDoc(
        "mcp.AskUnavailable",
        "Nobody can be asked: the MCP client did not declare the capability (elicitation, sampling), or the code "
        "does not run for a client's call. Nothing was sent.",
        pymcp::bridge::g_ask_error, nullptr);
    m.attr("AskUnavailable") = py::reinterpret_borrow<py::object>(pymcp::bridge::g_ask_unavailable);
    for (const char* name : {"AskDeclined", "AskCancelled"}) {
        const bool declined = std::string_view(name) == "AskDeclined";
        PyObject* type = PyErr_NewExceptionWithDoc(
            declined ? "mcp.AskDeclined" : "mcp.AskCancelled",
            declined ? "The user declined to answer (elicitation action 'decline')."
                     : "The user dismissed the question without choosing (elicitation action 'cancel').",
            pymcp::bridge::g_ask_error, nullptr);
        m.attr(name) = py::reinterpret_steal<py::object>(type);
    }
    m.def("_ask_client", &pymcp::bridge::ask_client, py::arg("method"), py::arg("params"),
          "Sends a request to the client of the call running this code and returns its result (the "
          "time-out pauses meanwhile). Use input(), getpass.getpass(), mcp.ask() or mcp.sample().");
    m.attr("call") = py::reinterpret_steal<py::object>(
        PyCFunction_NewEx(&pymcp::bridge::g_call_def, m.ptr(), m.attr("__name__").ptr()));
    m.def("_wait_for_server", &pymcp::bridge::wait_for_server, py::arg("server"),
          "Waits (bounded) for a configured downstream server that is still starting; returns why "
          "it cannot be had, or \"\" when it may be there now.");
    m.def("progress", &pymcp::bridge::progress, py::arg("done"), py::arg("total") = py::none(),
          py::arg("message") = py::none(),
          "Reports progress to the client that called the python tool (notifications/progress, when "
          "its request asked for progress): done, optionally of total, with a message. Values are "
          "kept strictly increasing.");
    m.def("list_tools", &pymcp::bridge::list_tools, py::arg("server") = py::none(),
          "Every tool code can call, with its description and input schema; only one server's "
          "with server='name'.");
}
