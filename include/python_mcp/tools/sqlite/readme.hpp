#pragma once
// The sqlite tool's manual (operation "readme"), stating this server's data folder, busy
// timeout and unlock token.

#include <string>

#include "python_mcp/tools/sqlite_tool.hpp"

namespace pymcp::tools::sqlite {

std::string build_readme(const SqliteToolOptions& options);

}  // namespace pymcp::tools::sqlite
