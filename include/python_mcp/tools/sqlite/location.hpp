#pragma once
// Where a database named in a call lives: a file in the data folder (followed link by link so
// nothing leads outside it), an absolute path used as given, or ':memory:' (handled by the pool
// table, not here).

#include <filesystem>
#include <string>

namespace pymcp::tools::sqlite {

struct Location {
    std::string path;  // what sqlite3_open_v2 gets
    std::string key;   // the resolved path: the connection pool's name
    bool in_data_dir;  // opened with NOFOLLOW and switched to WAL
};

// Resolves a database name other than ':memory:'. Creates the data folder and missing
// sub-folders. Throws mcp::ToolError for refused names and folders that cannot be made.
Location locate(const std::string& name, const std::filesystem::path& data_dir);

}  // namespace pymcp::tools::sqlite
