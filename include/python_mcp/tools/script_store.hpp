#pragma once
// Saved Python scripts: UTF-8 .py files in one folder (--scripts-dir).
//
// Names are checked before any path is built (not empty, at most 239 bytes with '.py', which is
// added when missing; no separators, no '..', no hidden files, no look-alike characters) and a
// resolved path must stay inside the folder, so a name can never reach another file. Saves are atomic (temporary file, fsync,
// rename). Thread-safe: every operation is a single filesystem step on its own file.
// Operations throw mcp::ToolError with a message naming the rule or the failure.

#include "python_mcp/support/json.hpp"

#include <filesystem>
#include <string>

namespace pymcp::tools {

class ScriptStore {
public:
    explicit ScriptStore(std::filesystem::path directory);

    const std::filesystem::path& directory() const { return directory_; }
    // "report" -> "report.py"; throws ToolError naming the broken rule.
    std::string normalize(const std::string& name) const;
    // The checked path of an existing script; throws ToolError when missing.
    std::filesystem::path existing_path(const std::string& name) const;

    pymcp::json save(const std::string& name, const std::string& code);  // {filename, path, size, saved}
    pymcp::json load(const std::string& name) const;                     // {filename, code, size, path}
    pymcp::json list() const;  // {scripts: [{filename, size, modified, path}], count, directory}
    pymcp::json remove(const std::string& name);                         // {filename, deleted}
    std::string read_code(const std::string& name) const;

private:
    std::filesystem::path path_for(const std::string& filename) const;

    std::filesystem::path directory_;
};

}  // namespace pymcp::tools
