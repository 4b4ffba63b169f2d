#pragma once
// Saved Python scripts: UTF-8 .py files in one folder (--scripts-dir).
//
// Names are checked before any path is built (not empty, at most 239 bytes with '.py', which is
// added when missing; no separators, no '..', no hidden files, no look-alike characters) and a
// resolved path must stay inside the folder, so a name can never reach another file. Saves are atomic (temporary file, fsync,
// rename). Thread-safe: every operation is a single filesystem step on its own file.
// Operations throw mcp::ToolError with a message naming the rule or the failure.
//
// A second, read-only folder holds the scripts shipped with python-mcp (scripts_store/): they are
// listed, loaded and run beside the user's. A user's script of the same name wins (one placed by
// hand); save_script and delete_script refuse a shipped script's name. list() keeps them apart
// from the user's (`scripts` and `count` mean the scripts folder, as before).

#include "python_mcp/support/json.hpp"

#include <filesystem>
#include <string>

namespace pymcp::tools {

class ScriptStore {
public:
    explicit ScriptStore(std::filesystem::path directory, std::filesystem::path shipped_directory = {});

    const std::filesystem::path& directory() const { return directory_; }
    const std::filesystem::path& shipped_directory() const { return shipped_directory_; }
    // "report" -> "report.py"; throws ToolError naming the broken rule.
    std::string normalize(const std::string& name) const;
    // The checked path of an existing script; throws ToolError when missing.
    std::filesystem::path existing_path(const std::string& name) const;

    pymcp::json save(const std::string& name, const std::string& code);  // {filename, path, size, saved}
    pymcp::json load(const std::string& name) const;                     // {filename, code, size, path}
    // {scripts: [{filename, size, modified, path, shipped: false}], count, directory} and, with a
    // shipped folder, {shipped: [{..., shipped: true}], shipped_count, shipped_directory}.
    pymcp::json list() const;
    pymcp::json remove(const std::string& name);                         // {filename, deleted}
    std::string read_code(const std::string& name) const;

private:
    std::filesystem::path path_for(const std::string& filename) const;
    // The shipped script `filename` (already normalized), or empty when there is none.
    std::filesystem::path shipped_path(const std::string& filename) const;
    void refuse_shipped(const std::string& filename, const char* operation) const;
    pymcp::json shipped_entries(const pymcp::json& user_scripts) const;

    std::filesystem::path directory_;
    std::filesystem::path shipped_directory_;  // empty: none
};

}  // namespace pymcp::tools
