#include "python_mcp/mcp/task.hpp"

#include "python_mcp/support/time_format.hpp"

namespace pymcp::mcp {

json TaskInfo::to_json() const {
    json j{{"taskId", id},
           {"status", status},
           {"createdAt", iso8601_utc(created_at)},
           {"lastUpdatedAt", iso8601_utc(updated_at)},
           {"ttl", ttl ? json(ttl->count()) : json(nullptr)}};
    if (!status_message.empty()) j["statusMessage"] = status_message;
    if (poll_interval) j["pollInterval"] = poll_interval->count();
    return j;
}

json create_task_result(const TaskInfo& task) { return json{{"task", task.to_json()}}; }

}  // namespace pymcp::mcp
