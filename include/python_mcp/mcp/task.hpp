#pragma once
// The 2025-11-25 tasks utility, as the MCP layer sees it: what a task-augmented tools/call asks
// for (TaskRequest, carried in the CallContext), what a task looks like on the wire (TaskInfo),
// and the TaskBackend a tools layer implements so tasks/get, tasks/result, tasks/list and
// tasks/cancel reach its own records (the python tool: its jobs). No tool and no Python here.
//
// Which tool may run as a task is its ToolDefinition::task_support; the Server refuses a task
// for any other tool (-32601) and hands the call to the tool with context.task() set. The tool
// then answers with create_task_result() at once and records the task in its backend.
//
// A TaskBackend is called from request threads (get/list/cancel/result); it must be thread-safe.
// Its errors are TaskError (-32602 to the client); anything else becomes -32603.

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "python_mcp/support/cancellation.hpp"
#include "python_mcp/support/json.hpp"

namespace pymcp::mcp {

// The only revision whose tasks this server speaks. 2026-07-28 moved tasks into an extension
// (io.modelcontextprotocol/tasks, another shape: resultType "task", tasks/update), not offered.
inline constexpr const char* kTasksProtocolVersion = "2025-11-25";
inline constexpr const char* kMetaRelatedTask = "io.modelcontextprotocol/related-task";

// `params.task` of a task-augmented request.
struct TaskRequest {
    std::optional<std::chrono::milliseconds> ttl;  // what the client asked for, if anything
};

// A task as tasks/get shows it (the spec's Task).
struct TaskInfo {
    std::string id;
    std::string status;  // working, input_required, completed, failed, cancelled
    std::string status_message;
    std::chrono::system_clock::time_point created_at;
    std::chrono::system_clock::time_point updated_at;
    std::optional<std::chrono::milliseconds> ttl;  // nullopt: unlimited (null on the wire)
    std::optional<std::chrono::milliseconds> poll_interval;

    json to_json() const;
    bool terminal() const { return status == "completed" || status == "failed" || status == "cancelled"; }
};

// {"task": Task}: the answer to a task-augmented request.
json create_task_result(const TaskInfo& task);

// A task id the backend does not know (or no longer keeps), a cursor it did not make, a cancel
// of a finished task: -32602 with this message.
class TaskError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One page of tasks/list.
struct TaskPage {
    std::vector<TaskInfo> tasks;
    std::string next_cursor;  // "" on the last page
};

class TaskBackend {
public:
    virtual ~TaskBackend() = default;
    virtual TaskInfo get(const std::string& id) = 0;
    // `cursor` is "" for the first page; an unknown cursor throws TaskError.
    virtual TaskPage list(const std::string& cursor) = 0;
    // Stops the task and returns it in status cancelled; TaskError when it already ended.
    virtual TaskInfo cancel(const std::string& id) = 0;
    // Blocks until the task is terminal (or `cancel` fires: then throws TaskError) and returns
    // the underlying request's result (for tools/call: the CallToolResult).
    virtual json result(const std::string& id, const CancellationToken& cancel) = 0;
};

}  // namespace pymcp::mcp
