#include "python_mcp/python/interpreter.hpp"

#include <pybind11/embed.h>
#include <marshal.h>  // after Python.h (pybind11), which does not include it
#include <spdlog/spdlog.h>

#include <atomic>
#include <stdexcept>

namespace py = pybind11;

namespace pymcp::embedded {
extern const char* const kRuntimePy;
extern const unsigned char kRuntimeCode[];
extern const unsigned long kRuntimeCodeSize;
extern const long kRuntimeCodeMagic;
}

namespace pymcp::python {

namespace {
std::atomic<bool> g_started{false};

void check(PyStatus status, const char* what) {
    if (PyStatus_Exception(status))
        throw std::runtime_error(std::string("cannot start Python: ") + what + ": " +
                                 (status.err_msg ? status.err_msg : "unknown error"));
}
// The runtime's code object: unmarshalled from the build's precompiled copy when this
// interpreter reads that bytecode format, else compiled from the embedded source.
py::object runtime_code() {
    if (embedded::kRuntimeCodeSize > 0 && PyImport_GetMagicNumber() == embedded::kRuntimeCodeMagic) {
        PyObject* code = PyMarshal_ReadObjectFromString(reinterpret_cast<const char*>(embedded::kRuntimeCode),
                                                        static_cast<Py_ssize_t>(embedded::kRuntimeCodeSize));
        if (code && PyCode_Check(code)) return py::reinterpret_steal<py::object>(code);
        Py_XDECREF(code);
        PyErr_Clear();
        spdlog::warn("the precompiled Python runtime did not load; compiling it");
    }
    return py::module_::import("builtins").attr("compile")(embedded::kRuntimePy, "<pymcp-runtime>", "exec");
}

}  // namespace

void start_interpreter() {
    if (g_started.exchange(true)) return;
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;  // SIGINT/SIGTERM belong to the server
    config.parse_argv = 0;
    config.safe_path = 1;                // the current directory is not put first on sys.path
    config.configure_c_stdio = 0;
    check(PyConfig_SetBytesString(&config, &config.executable, PYMCP_PYTHON_EXECUTABLE), "executable");
    check(PyConfig_SetBytesString(&config, &config.program_name, PYMCP_PYTHON_EXECUTABLE), "program_name");
    try {
        // pybind11 frees the config; add_program_dir_to_path=false keeps our binary's folder off sys.path.
        py::initialize_interpreter(&config, 0, nullptr, false);
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("cannot start Python: ") + e.what());
    }
    {
        py::module_ types = py::module_::import("types");
        py::object module = types.attr("ModuleType")("_pymcp_runtime");
        module.attr("__file__") = "<pymcp-runtime>";
        py::module_::import("sys").attr("modules")["_pymcp_runtime"] = module;
        py::module_ builtins = py::module_::import("builtins");
        builtins.attr("exec")(runtime_code(), module.attr("__dict__"));
    }
    // The main thread keeps its thread state and gives up the GIL; every later entry into
    // Python takes it back with gil_scoped_acquire.
    PyEval_SaveThread();
}

bool interpreter_started() { return g_started.load(); }

ElasticPool::Hooks python_thread_hooks() {
    struct ThreadState {
        PyGILState_STATE gil;
        PyThreadState* saved;
    };
    static thread_local ThreadState state;
    return ElasticPool::Hooks{
        [] {
            // Registers a thread state for this thread that lives as long as the thread; pybind11's
            // gil_scoped_acquire finds and reuses it.
            state.gil = PyGILState_Ensure();
            state.saved = PyEval_SaveThread();
        },
        [] {
            PyEval_RestoreThread(state.saved);
            PyGILState_Release(state.gil);
        }};
}

MainThreadExecutor& MainThreadExecutor::instance() {
    static MainThreadExecutor executor;
    return executor;
}

void MainThreadExecutor::post(std::function<void()> task) {
    {
        std::lock_guard lock(mutex_);
        tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
}

void MainThreadExecutor::run() {
    runner_ = std::this_thread::get_id();
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [&] { return stopped_ || !tasks_.empty(); });
        if (stopped_) return;
        auto task = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        try {
            task();
        } catch (const std::exception& e) {
            spdlog::error("main-thread task failed: {}", e.what());
        }
        task = nullptr;
        lock.lock();
    }
}

void MainThreadExecutor::stop() {
    {
        std::lock_guard lock(mutex_);
        stopped_ = true;
    }
    wake_.notify_all();
}

}  // namespace pymcp::python
