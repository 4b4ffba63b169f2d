#pragma once
// The `python` tool: the operations of the original tool (execute, scripts, sessions, readme) on
// top of an Engine and a ScriptStore. Formats each outcome as a readable text block plus
// structuredContent per the published outputSchema.
//
// Each execution gets a ToolCallHost made from its call (tool calls through the registry,
// progress, and live output when the request carried a progressToken); the host is finished
// (live output flushed) before the result is sent.
//
// Thread-safe: call() runs concurrently on request threads; the own state is the description,
// which the registry holds, the registry pointer (set once by register_in) and the live-output
// timer (thread-safe). Throws mcp::ToolError for bad arguments (the registry turns it into an
// isError result).

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "python_mcp/engine/engine.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/deadline_timer.hpp"
#include "python_mcp/tools/job_store.hpp"
#include "python_mcp/tools/live_output.hpp"
#include "python_mcp/tools/overflow_store.hpp"
#include "python_mcp/tools/script_store.hpp"
#include "python_mcp/tools/tool_args.hpp"
#include "python_mcp/tools/tool_call_host.hpp"

namespace pymcp::tools {

class Scheduler;

struct PythonToolOptions {
    std::chrono::milliseconds default_timeout{60000};
    size_t default_max_output = 64 * 1024;
    size_t default_max_images = 8;                   // --max-images
    size_t default_max_image_bytes = 2 * 1024 * 1024;  // --max-image-bytes
    UnlockGate gate;
    std::string readme;  // the full documentation returned by the readme operation
    LiveOutputOptions live_output;
    // Jobs: how long execute/run_script wait before answering with a job handle (--wait), and
    // how many finished jobs are kept for job_status.
    std::chrono::milliseconds default_wait{50000};
    size_t job_history = 100;
    // Overflow: where cut output is kept whole (null: only cut). Shared with the server, which
    // serves the files as resources.
    std::shared_ptr<OverflowStore> overflow;
    // Schedules (issue 13): schedule_script, list_schedules, unschedule; null: not available.
    Scheduler* scheduler = nullptr;
    // Tasks (2025-11-25 tasks utility): the ttl given when the client asks for none, the most
    // granted, and the poll interval suggested while a task runs.
    std::chrono::milliseconds task_default_ttl{std::chrono::hours(1)};
    std::chrono::milliseconds task_max_ttl{std::chrono::hours(24)};
    std::chrono::milliseconds task_poll_interval{1000};
};

class PythonTool {
public:
    PythonTool(engine::Engine& engine, ScriptStore& scripts, PythonToolOptions options);

    // At most kMaxDescriptionChars: the list of callable tools is cut first (the readme
    // operation has the full documentation).
    static constexpr size_t kMaxDescriptionChars = 4096;
    mcp::ToolDefinition definition(const std::string& callable_tools_summary = {}) const;
    // Registers the tool and keeps its description's list of callable tools current.
    void register_in(mcp::ToolRegistry& registry);
    // The registered handler: `execute` is queued on the engine, the rest runs via run_blocking.
    void handle(const mcp::ToolCall& call);
    // Every operation, on the calling thread (blocks until an execution finishes).
    mcp::json call(const mcp::json& arguments, mcp::CallContext& context);
    // tasks/* for the Server: the task jobs of this tool's JobStore.
    std::shared_ptr<mcp::TaskBackend> task_backend() const;

private:
    // Queues `execute` when the engine can take it without a thread; false for other operations.
    bool submit_execute(const mcp::ToolCall& call);
    engine::ExecRequest make_request(const mcp::json& input, const std::string& code, const std::string& filename,
                                     const mcp::CallContext& context) const;
    // The execution's host: the registry for tool calls, the context for progress, live output
    // when the request carried a progressToken. Throws ToolError before register_in().
    std::shared_ptr<ToolCallHost> make_host(const mcp::CallContext& context);
    // max_images / max_image_bytes of the call, else the server's defaults. Throws ToolError.
    void apply_image_budget(const mcp::json& input, engine::ExecRequest& request) const;
    // What the result must say about the call beyond the outcome ("" when nothing): fields
    // accepted but not applied, a fresh namespace although the named session is persistent.
    std::string notes_for(const mcp::json& input, const engine::ExecRequest& request) const;
    // The outcome as a tool result; its spool files are taken over by `overflow` (may be null) and
    // linked; a structuredContent past kMaxStructuredBytes is replaced by a summary.
    static mcp::json format(const engine::ExecRequest& request, engine::ExecOutcome outcome, const std::string& note,
                            OverflowStore* overflow);
    static mcp::json format_core(const engine::ExecRequest& request, engine::ExecOutcome outcome, const std::string& note);
    static void bound_structured(mcp::json& result, const engine::ExecRequest& request, OverflowStore* overflow);
    static constexpr size_t kMaxStructuredBytes = 1000 * 1000;  // under the 1 MiB hosts accept, with room for the envelope
    mcp::json read_output(const mcp::json& input);
    mcp::json restart_session(const mcp::json& input);
    mcp::json list_sessions();
    mcp::json list_scripts();
    mcp::json execute(const mcp::json& input, const std::string& code, const std::string& filename,
                      mcp::CallContext& context);
    std::string summarize_tools(const mcp::ToolRegistry& registry) const;

    // --- Jobs (issue 13): the wait budget and the job operations (python_tool_jobs block). ---
    using Answer = std::function<void(mcp::json)>;
    // Submits the execution; `answer` is called once: with the formatted result when it ends
    // within `wait`, else with a job handle at `wait` (0: at once), the code running on. A call
    // made as a task (context.task()) runs as a task job at once; the job is returned.
    std::shared_ptr<Job> start_execution(engine::ExecRequest request, std::string note, const mcp::CallContext& context,
                                         std::chrono::milliseconds wait, Answer answer);
    // A task-augmented call (python_tool_tasks block): answers with the CreateTaskResult at once.
    mcp::json start_task(const mcp::ToolCall& call);
    std::shared_ptr<Job> new_task_job(const mcp::CallContext& context, std::string session_id) const;
    std::chrono::milliseconds task_ttl(const mcp::CallContext& context) const;
    std::chrono::milliseconds wait_field(const mcp::json& input) const;
    std::string queued_behind_note(const engine::ExecRequest& request) const;
    mcp::json job_operation(const std::string& op, const mcp::json& input, mcp::CallContext& context);
    std::shared_ptr<Job> find_job(const mcp::json& input) const;
    mcp::json list_jobs() const;

    engine::Engine& engine_;
    ScriptStore& scripts_;
    const PythonToolOptions options_;
    const mcp::ToolRegistry* registry_ = nullptr;  // set once by register_in
    // Jobs: shared with completions and budget timers, which may run after this tool is gone.
    const std::shared_ptr<JobStore> jobs_;
    // Flushes live output; its own thread, so a client that stops reading stalls nothing else.
    std::unique_ptr<DeadlineTimer> live_timer_ = std::make_unique<DeadlineTimer>();
    // Fires wait budgets (answers calls with job handles); completions cancel theirs through a
    // weak_ptr. Declared last: destroyed (and joined) first.
    std::shared_ptr<DeadlineTimer> budget_timer_ = std::make_shared<DeadlineTimer>();
};

}  // namespace pymcp::tools
