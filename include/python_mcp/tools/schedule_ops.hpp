#pragma once
// The python tool's schedule operations (issue 13): schedule_script, list_schedules, unschedule,
// on a Scheduler. Reads the tool's fields (plain or {"input": ...} already unwrapped), answers a
// tool result (text + structuredContent). Throws mcp::ToolError for bad input or when schedules
// are off (scheduler null or unavailable), with the reason.

#include "python_mcp/support/json.hpp"
#include "python_mcp/tools/scheduler.hpp"

namespace pymcp::tools {

bool is_schedule_operation(const std::string& op);
pymcp::json schedule_operation(Scheduler* scheduler, const std::string& op, const pymcp::json& input);

}  // namespace pymcp::tools
