#pragma once
// Where the files shipped with python-mcp live, found relative to the running binary so that a
// package installed in any prefix (and a binary still in the build folder) finds its own.

#include <filesystem>

namespace pymcp::app {

// <exe dir>/../share/python-mcp/scripts_store when it exists (an installed binary); else the
// source tree's scripts_store when the binary is the one in its build folder; else empty.
std::filesystem::path shipped_scripts_dir();

}  // namespace pymcp::app
