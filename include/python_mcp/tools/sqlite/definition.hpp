#pragma once
// What tools/list shows of the sqlite tool: name, description, input and output schemas,
// annotations.

#include "python_mcp/mcp/tool_registry.hpp"

namespace pymcp::tools::sqlite {

mcp::ToolDefinition tool_definition();

}  // namespace pymcp::tools::sqlite
