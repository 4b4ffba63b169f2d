#include "python_mcp/python/python_environment.hpp"

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include <fstream>
#include <regex>
#include <stdexcept>

namespace fs = std::filesystem;
namespace py = pybind11;

namespace pymcp::python {

namespace {

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r");
    auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// "3.11.2" or "3.11.2.final.0" -> "3.11"; anything else -> "".
std::string major_minor(const std::string& version) {
    static const std::regex re(R"(^(\d+)\.(\d+)(\..*)?$)");
    std::smatch m;
    return std::regex_match(version, m, re) ? m[1].str() + "." + m[2].str() : std::string();
}

std::string version_from_cfg(const fs::path& cfg) {
    std::ifstream in(cfg);
    std::string line, version, version_info;
    while (std::getline(in, line)) {
        auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
        if (key == "version_info") version_info = major_minor(value);
        else if (key == "version") version = major_minor(value);
    }
    return version_info.empty() ? version : version_info;
}

// The X.Y of the only lib/pythonX.Y folder, or "" when there is none or more than one.
std::string version_from_lib(const fs::path& venv) {
    static const std::regex re(R"(^python(\d+\.\d+)$)");
    std::error_code ec;
    std::string found;
    for (const auto& e : fs::directory_iterator(venv / "lib", ec)) {
        std::smatch m;
        std::string name = e.path().filename().string();
        if (!std::regex_match(name, m, re) || !e.is_directory(ec)) continue;
        if (!found.empty()) return {};
        found = m[1].str();
    }
    return found;
}

// Runs with the GIL held, before any session exists. Entries of the venv's site-packages and of
// its .pth files go after the standard library and before the system's site folders, as in a
// venv made with --system-site-packages; --python-path folders go first, as PYTHONPATH would.
// mcp.dask() connects lazily: without --dask-scheduler nothing of Dask is imported.
const char* const kSetupCode = R"PY(
def _pymcp_environment(python_path, venv_site, dask_address):
    import site, sys, threading
    import mcp
    if venv_site:
        before = set(sys.path)
        site.addsitedir(venv_site)  # processes its .pth files, appends what they add
        added = [p for p in sys.path if p not in before]
        sys.path[:] = [p for p in sys.path if p in before]
        system = [i for i, p in enumerate(sys.path)
                  if p.rstrip('/').endswith(('site-packages', 'dist-packages'))]
        at = system[0] if system else len(sys.path)
        sys.path[at:at] = added
    sys.path[0:0] = [p for p in python_path if p not in sys.path]

    lock = threading.Lock()
    state = {'client': None}

    def dask(timeout=30):
        """The dask.distributed Client of this server's --dask-scheduler, connected on first use
        and shared by every session. It is the default scheduler of dask collections from then
        on, so .compute() runs on the cluster."""
        if not dask_address:
            raise RuntimeError("no Dask scheduler is configured: start python-mcp with "
                               "--dask-scheduler tcp://HOST:8786 (or PYTHON_MCP_DASK_SCHEDULER)")
        with lock:
            client = state['client']
            if client is None or client.status not in ('running', 'connecting'):
                try:
                    from distributed import Client
                except ImportError as e:
                    raise RuntimeError("dask.distributed is not installed: apt-get install "
                                       "python3-distributed, or pip install 'dask[distributed]' "
                                       "into the --venv (the cluster's version)") from e
                client = Client(dask_address, timeout=timeout, set_as_default=True)
                state['client'] = client
            return client

    mcp.dask = dask
    mcp.dask_scheduler = dask_address or None
)PY";

}  // namespace

std::string embedded_python_version() {
    return std::to_string(PY_MAJOR_VERSION) + "." + std::to_string(PY_MINOR_VERSION);
}

std::string venv_python_version(const fs::path& venv) {
    std::error_code ec;
    std::string v;
    if (fs::is_regular_file(venv / "pyvenv.cfg", ec)) v = version_from_cfg(venv / "pyvenv.cfg");
    return v.empty() ? version_from_lib(venv) : v;
}

fs::path venv_site_packages(const fs::path& venv, const std::string& expected) {
    std::error_code ec;
    const std::string where = "--venv " + venv.string() + ": ";
    if (!fs::is_directory(venv, ec)) throw std::runtime_error(where + "no such directory");
    const bool has_cfg = fs::is_regular_file(venv / "pyvenv.cfg", ec);
    std::string version = venv_python_version(venv);
    if (version.empty())
        throw std::runtime_error(where + (has_cfg ? "pyvenv.cfg names no Python version and there is no single lib/pythonX.Y"
                                                  : "not a virtual environment (no pyvenv.cfg, no lib/pythonX.Y)") +
                                 "; make one with: python" + expected + " -m venv --system-site-packages DIR");
    if (version != expected)
        throw std::runtime_error(where + "made by Python " + version + ", but this server embeds Python " + expected +
                                 ": its compiled packages cannot load here. Make one with: python" + expected +
                                 " -m venv --system-site-packages DIR");
    fs::path site = venv / "lib" / ("python" + expected) / "site-packages";
    if (!fs::is_directory(site, ec)) throw std::runtime_error(where + "has no " + site.string());
    return site;
}

void apply_python_environment(const PythonEnvironment& environment) {
    py::gil_scoped_acquire gil;
    try {
        py::dict scope;
        scope["__builtins__"] = py::module_::import("builtins");
        py::exec(kSetupCode, scope);
        std::vector<std::string> path;
        for (const auto& p : environment.python_path) path.push_back(p.string());
        scope["_pymcp_environment"](path, environment.venv_site_packages.string(), environment.dask_scheduler);
    } catch (const py::error_already_set& e) {
        throw std::runtime_error(std::string("cannot set up the Python environment: ") + e.what());
    }
}

}  // namespace pymcp::python
