#include "python_mcp/tools/script_store.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/atomic_file.hpp"
#include "python_mcp/support/paths.hpp"
#include "python_mcp/support/time_format.hpp"

namespace fs = std::filesystem;
using pymcp::json;
using pymcp::mcp::ToolError;

namespace pymcp::tools {

namespace {

// A save writes ".<name>.<10 random>.tmp" first: the name must leave room for those 16 bytes
// within the file system's 255.
constexpr size_t kMaxScriptNameBytes = 255 - 16;

std::string iso_time(fs::file_time_type t) { return iso8601_utc(std::chrono::file_clock::to_sys(t)); }

bool inside(const fs::path& folder, const fs::path& p) {
    std::error_code ec;
    auto real_folder = fs::weakly_canonical(folder, ec);
    auto real = fs::weakly_canonical(p, ec);
    if (ec) return false;
    auto rel = real.lexically_relative(real_folder);
    return !rel.empty() && *rel.begin() != ".." && rel.is_relative();
}

}  // namespace

ScriptStore::ScriptStore(fs::path directory, fs::path shipped_directory)
    : directory_(std::move(directory)), shipped_directory_(std::move(shipped_directory)) {}

fs::path ScriptStore::shipped_path(const std::string& filename) const {
    if (shipped_directory_.empty()) return {};
    fs::path p = shipped_directory_ / filename;
    std::error_code ec;
    return fs::is_regular_file(p, ec) ? p : fs::path();
}

void ScriptStore::refuse_shipped(const std::string& filename, const char* operation) const {
    if (shipped_path(filename).empty()) return;
    throw ToolError(std::string(operation) + " refused: '" + filename +
                    "' is a script shipped with python-mcp (read-only, in " + shipped_directory_.string() +
                    "). Save your own version under another name, e.g. 'my_" + filename + "'.");
}

// The shipped scripts that no user script of the same name hides, as list() entries, by name.
json ScriptStore::shipped_entries(const json& user_scripts) const {
    json out = json::array();
    std::error_code ec;
    if (shipped_directory_.empty() || !fs::is_directory(shipped_directory_, ec)) return out;
    std::vector<fs::directory_entry> entries(fs::directory_iterator(shipped_directory_, ec), fs::directory_iterator());
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.path() < b.path(); });
    for (const auto& e : entries) {
        const std::string fname = e.path().filename().string();
        if (fname.empty() || fname[0] == '.' || e.path().extension() != ".py" || !e.is_regular_file(ec)) continue;
        bool hidden = std::any_of(user_scripts.begin(), user_scripts.end(),
                                  [&](const json& s) { return s["filename"] == fname; });
        if (hidden) continue;
        out.push_back(json{{"filename", fname},
                           {"size", e.file_size(ec)},
                           {"modified", iso_time(e.last_write_time(ec))},
                           {"path", e.path().string()},
                           {"shipped", true}});
    }
    return out;
}

std::string ScriptStore::normalize(const std::string& name) const {
    std::string n = name;
    if (n.size() < 3 || n.compare(n.size() - 3, 3, ".py") != 0) n += ".py";
    // Checked before the general rules, so that an empty name is called empty (not ".py", a
    // hidden file) and every long name is quoted the one limit that applies to scripts.
    std::string problem;
    if (name.empty())
        problem = "the name is empty";
    else if (n.size() > kMaxScriptNameBytes)
        problem = "the name is longer than " + std::to_string(kMaxScriptNameBytes) + " bytes (with '.py')";
    else
        problem = check_plain_file_name(n);
    if (!problem.empty())
        throw ToolError("invalid script name '" + quoted_name(name) + "': " + problem +
                        ". Script names are plain file names like 'report.py' inside the scripts folder.");
    return n;
}

fs::path ScriptStore::path_for(const std::string& filename) const {
    fs::path p = directory_ / filename;
    std::error_code ec;
    if (fs::is_symlink(p, ec) && !inside(directory_, p))
        throw ToolError("script '" + filename + "' is a link that points outside the scripts folder; refused");
    return p;
}

fs::path ScriptStore::existing_path(const std::string& name) const {
    std::string filename = normalize(name);
    fs::path p = path_for(filename);
    std::error_code ec;
    if (!fs::is_regular_file(p, ec) && !shipped_path(filename).empty()) return shipped_path(filename);
    if (!fs::is_regular_file(p, ec))
        throw ToolError("no script named '" + filename + "' in " + directory_.string() +
                        " (list_scripts shows what there is)");
    return p;
}

json ScriptStore::save(const std::string& name, const std::string& code) {
    std::string filename = normalize(name);
    refuse_shipped(filename, "save_script");
    try {
        ensure_directory(directory_);
        fs::path p = path_for(filename);
        write_file_atomically(p, code);
        return json{{"filename", filename}, {"path", p.string()}, {"size", code.size()}, {"saved", true}};
    } catch (const ToolError&) {
        throw;
    } catch (const std::exception& e) {
        throw ToolError("cannot save script '" + filename + "': " + e.what());
    }
}

std::string ScriptStore::read_code(const std::string& name) const {
    fs::path p = existing_path(name);
    std::ifstream in(p, std::ios::binary);
    if (!in) throw ToolError("cannot read script " + p.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

json ScriptStore::load(const std::string& name) const {
    std::string filename = normalize(name);
    std::string code = read_code(filename);
    fs::path p = existing_path(filename);
    return json{{"filename", filename}, {"code", code}, {"size", code.size()}, {"path", p.string()},
                {"shipped", !shipped_directory_.empty() && p.parent_path() == shipped_directory_}};
}

json ScriptStore::list() const {
    json scripts = json::array();
    std::error_code ec;
    if (fs::is_directory(directory_, ec)) {
        std::vector<fs::directory_entry> entries;
        for (const auto& e : fs::directory_iterator(directory_, ec)) {
            const std::string fname = e.path().filename().string();
            if (fname.empty() || fname[0] == '.' || e.path().extension() != ".py") continue;
            if (!e.is_regular_file(ec)) continue;
            if (e.is_symlink(ec) && !inside(directory_, e.path())) continue;  // never list what it cannot load
            entries.push_back(e);
        }
        std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.path() < b.path(); });
        for (const auto& e : entries) {
            scripts.push_back(json{{"filename", e.path().filename().string()},
                                   {"size", e.file_size(ec)},
                                   {"modified", iso_time(e.last_write_time(ec))},
                                   {"path", e.path().string()},
                                   {"shipped", false}});
        }
    }
    size_t count = scripts.size();
    json shipped = shipped_entries(scripts);
    json r{{"scripts", std::move(scripts)}, {"count", count}, {"directory", directory_.string()}};
    if (!shipped_directory_.empty()) {
        // Apart from `scripts`, whose count and folder clients already rely on.
        r["shipped_count"] = shipped.size();
        r["shipped"] = std::move(shipped);
        r["shipped_directory"] = shipped_directory_.string();
    }
    return r;
}

json ScriptStore::remove(const std::string& name) {
    fs::path p = existing_path(name);
    if (!shipped_directory_.empty() && p.parent_path() == shipped_directory_) refuse_shipped(p.filename().string(), "delete_script");
    std::error_code ec;
    if (!fs::remove(p, ec) || ec) throw ToolError("cannot delete script " + p.string() + ": " + ec.message());
    return json{{"filename", p.filename().string()}, {"deleted", true}};
}

}  // namespace pymcp::tools
