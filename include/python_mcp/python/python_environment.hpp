#pragma once
// What the embedded Python sees beyond Debian's packages: a user's virtual environment, extra
// sys.path folders, and the Dask scheduler that mcp.dask() connects to (--venv, --python-path,
// --dask-scheduler; README "Command-line options", docs/python-api.md).
//
// venv_site_packages() reads files only (no Python) so main() can refuse a wrong venv before the
// protocol starts. apply_python_environment() runs once, after start_interpreter() and before
// any session exists; it takes the GIL itself. Both throw std::runtime_error with a message meant
// for the user.

#include <filesystem>
#include <string>
#include <vector>

namespace pymcp::python {

struct PythonEnvironment {
    std::filesystem::path venv_site_packages;        // empty: no venv
    std::vector<std::filesystem::path> python_path;  // put first on sys.path, in this order
    std::string dask_scheduler;                      // empty: mcp.dask() says how to configure one
};

// The "major.minor" a venv was made for: pyvenv.cfg's version_info or version, else its single
// lib/pythonX.Y folder. Empty when neither says.
std::string venv_python_version(const std::filesystem::path& venv);

// DIR/lib/python<expected>/site-packages of a venv made by Python `expected` ("3.11"); throws
// when DIR is not a venv, was made by another Python, or has no site-packages.
std::filesystem::path venv_site_packages(const std::filesystem::path& venv, const std::string& expected);

// "3.11": the version of the Python this server embeds.
std::string embedded_python_version();

void apply_python_environment(const PythonEnvironment& environment);

}  // namespace pymcp::python
