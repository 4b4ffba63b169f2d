#include "python_mcp/tools/sqlite/location.hpp"

#include <system_error>
#include <vector>

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/paths.hpp"
#include "python_mcp/tools/sqlite/sql_text.hpp"

namespace pymcp::tools::sqlite {

namespace fs = std::filesystem;
using mcp::ToolError;

namespace {

constexpr std::size_t kMaxDatabaseFileNameBytes = 255 - 8;  // room for the "-journal" suffix

bool inside(const fs::path& root, const fs::path& p, bool allow_root) {
    fs::path rel = p.lexically_relative(root);
    if (rel.empty()) return false;
    if (rel == ".") return allow_root;
    return *rel.begin() != "..";
}

std::vector<std::string> split_path(const std::string& name) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        std::size_t slash = name.find('/', start);
        parts.push_back(name.substr(start, slash - start));
        if (slash == std::string::npos) return parts;
        start = slash + 1;
    }
}

[[noreturn]] void refuse_name(const std::string& name, const std::string& why) {
    throw ToolError("database name '" + printable(name) + "' is refused: " + why +
                    ". Use a plain name such as 'research.db' (sub-folders allowed; no '..', no hidden names), "
                    "an absolute path, or ':memory:'.");
}

void check_parts(const std::string& name, const std::vector<std::string>& parts) {
    for (const std::string& part : parts) {
        std::string why = check_plain_file_name(part);
        // SQLite keeps "<file>-journal", "-wal" and "-shm" beside the file: they must fit in 255 bytes.
        if (why.empty() && &part == &parts.back() && part.size() > kMaxDatabaseFileNameBytes)
            why = "the file name is longer than " + std::to_string(kMaxDatabaseFileNameBytes) + " bytes";
        if (!why.empty()) refuse_name(name, parts.size() > 1 ? "'" + printable(part) + "': " + why : why);
    }
}

// Follows the name one component at a time, resolving symbolic links as it goes, so that no
// link (to a folder or to the file) can lead outside the data folder. Creates missing folders.
Location resolve_in_data_dir(const std::string& name, const fs::path& data_dir) {
    std::vector<std::string> parts = split_path(name);
    check_parts(name, parts);
    try {
        ensure_directory(data_dir);
        const fs::path root = fs::canonical(data_dir);
        fs::path at = root;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            const bool last = i + 1 == parts.size();
            fs::path next = at / parts[i];
            fs::file_status status = fs::symlink_status(next);
            if (fs::is_symlink(status)) {
                std::error_code ec;
                fs::path target = fs::canonical(next, ec);
                if (ec) refuse_name(name, "'" + parts[i] + "' is a symbolic link that points nowhere");
                if (!inside(root, target, !last)) refuse_name(name, "a symbolic link leads outside the data folder");
                next = target;
            } else if (!last && !fs::exists(status)) {
                fs::create_directory(next);
            }
            at = std::move(next);
        }
        return {at.string(), at.string(), true};
    } catch (const fs::filesystem_error& e) {
        throw ToolError("cannot prepare the data folder for database '" + printable(name) + "': " + e.what());
    }
}

}  // namespace

Location locate(const std::string& name, const fs::path& data_dir) {
    if (name.empty()) throw ToolError("'database' is empty: omit it for ':memory:', or name a file");
    if (name.find('\0') != std::string::npos) refuse_name(name, "it contains a NUL byte");
    if (name.front() != '/') return resolve_in_data_dir(name, data_dir);
    // Absolute: opened as given. Its journal mode is the owner's business, so no WAL switch;
    // the pool is named by the resolved path so two spellings of one file share it.
    std::error_code ec;
    fs::path key = fs::weakly_canonical(name, ec);
    return {name, ec ? name : key.string(), false};
}

}  // namespace pymcp::tools::sqlite
