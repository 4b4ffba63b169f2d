#pragma once
// Where python-mcp keeps its files, and the checks that keep user-chosen names inside them.

#include <filesystem>
#include <string>

namespace pymcp {

// $XDG_DATA_HOME/python-mcp, or ~/.local/share/python-mcp when XDG_DATA_HOME is unset or relative.
std::filesystem::path default_data_root();

// Creates `dir` and its parents when missing. Throws std::filesystem::filesystem_error.
void ensure_directory(const std::filesystem::path& dir);

// Checks a file name chosen by a client (a script or database name) for a folder it must stay in:
// non-empty, valid UTF-8, at most 255 bytes, no NUL or control characters, no '/' or '\\', not
// starting with '.', and no Unicode look-alikes of '/', '\\' or '.' (fullwidth, division slash
// and the like). Returns an empty string when the name is fine, else the rule it breaks.
std::string check_plain_file_name(const std::string& name);

// A client's name as quoted in an error message: control characters (a NUL would end the message
// there), DEL and bytes that are not UTF-8 as \xNN; cut after 120 bytes with "...".
std::string quoted_name(const std::string& name);

}  // namespace pymcp
