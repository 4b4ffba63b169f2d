#pragma once
// The one table of tools: the protocol's tools/list and tools/call and Python's mcp.call all go
// through it. Entries can be added, replaced and removed at run time (downstream servers come and
// go); listeners hear about every change so the server can send notifications/tools/list_changed.
//
// Thread-safe: a shared_mutex guards the table; dispatch() copies the entry out and runs the
// handler with no lock held, so handlers may call back into the registry (nested calls) and may
// run for minutes. Listeners run on the thread that changed the table, with no lock held.
// call() throws UnknownToolError and InvalidParamsError; a handler's ToolError (or any other
// exception) becomes a result with isError: true.

#include "python_mcp/support/json.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "python_mcp/mcp/call_context.hpp"
#include "python_mcp/mcp/tool_call.hpp"

namespace pymcp::mcp {

using json = pymcp::json;

struct ToolDefinition {
    std::string name;
    std::string title;
    std::string description;
    json input_schema = json{{"type", "object"}};
    json output_schema;  // null when results are unstructured
    json annotations;    // null when none
    json icons;          // [{src, mimeType?, sizes?}] (2025-11-25), null when none
    json meta;           // the tool's _meta, null when none
    // Listed in tools/list and callable by the client. Downstream tools are registered unexposed
    // unless --expose-downstream: Python code reaches them, the client sees only our own tools.
    bool exposed = true;
    // 2025-11-25 tasks: "optional" or "required" when the tool can run as a task (its handler
    // then answers a call whose context().task() is set with create_task_result); "" (absent,
    // which the spec reads as "forbidden") otherwise.
    std::string task_support;

    // `with_tasks`: the client negotiated tasks, so `execution.taskSupport` is listed.
    json to_json(bool with_tasks = false) const;
};

// The tool ran and failed: becomes {content: [{type: text, text: message}], isError: true}.
// `result` may carry a whole prepared result (with structuredContent) instead.
class ToolError : public std::runtime_error {
public:
    explicit ToolError(const std::string& message, json result = nullptr)
        : std::runtime_error(message), result_(std::move(result)) {}
    const json& result() const { return result_; }

private:
    json result_;
};

class UnknownToolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class InvalidParamsError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The one handler shape: the handler answers the ToolCall (at once, later, or through
// ToolCall::run_blocking for work that may block). See tool_call.hpp.
using ToolHandler = std::function<void(ToolCall call)>;

// Result helpers.
json text_content(const std::string& text);
json tool_result(const std::string& text, json structured = nullptr, bool is_error = false);
json error_result(const std::string& message);

class ToolRegistry {
public:
    // Adds the tool, or replaces the one of the same name (keeping its place in the order).
    void add(ToolDefinition definition, ToolHandler handler);
    bool remove(const std::string& name);
    // Removes every tool whose name starts with `prefix`; returns how many.
    size_t remove_prefix(const std::string& prefix);
    // One tool for update().
    struct Addition {
        ToolDefinition definition;
        ToolHandler handler;
    };
    // Removes the tools named in `remove` (absent names are ignored), then adds or replaces each
    // of `add` (a replaced tool keeps its place in the order), all under one lock, and tells the
    // listeners once, if anything changed. Returns how many tools were removed, added or
    // replaced. A downstream server registering 2,000 tools one add() at a time woke every
    // listener 2,000 times (the python tool rebuilds its description from the whole list on each),
    // which was quadratic: seconds, not milliseconds.
    size_t update(const std::vector<std::string>& remove, std::vector<Addition> add);
    // Changes only the description (the python tool's list of callable tools, say).
    bool set_description(const std::string& name, const std::string& description);

    // In the order tools were first added; stable across calls.
    std::vector<ToolDefinition> list() const;
    std::optional<ToolDefinition> find(const std::string& name) const;
    // Cheap checks for the hot path (no copy of the schemas).
    bool contains(const std::string& name) const;
    bool is_exposed(const std::string& name) const;
    std::string task_support(const std::string& name) const;  // "" for an unknown tool
    size_t size() const;

    // Hands the call to its tool. An unknown tool is rejected (-32602) unless the miss handler,
    // run where the call may block, finds it; arguments that are not an object are rejected.
    // Exceptions a handler throws become its answer (ToolCall::map_exception).
    void dispatch(ToolCall call) const;
    // dispatch() for a caller that waits: blocking work runs on the calling thread. Returns the
    // CallToolResult; throws UnknownToolError or InvalidParamsError for a rejected call.
    json call(const std::string& name, json arguments, const CallContext& context) const;

    // Asked by call() and resolve() when a name is not (yet) in the table: a downstream server
    // that is still starting waits here (bounded) and returns true when the caller should look
    // again. It may instead throw UnknownToolError saying why a name it owns cannot be had
    // (e.g. the server's command does not exist); call() and resolve() pass that on, so the
    // caller sees the reason rather than a bare "Unknown tool". Set once at start-up.
    void set_miss_handler(std::function<bool(const std::string& name, const CancellationToken&)> handler);
    // find(), but first giving the miss handler its chance (whose UnknownToolError passes on).
    std::optional<ToolDefinition> resolve(const std::string& name, const CancellationToken& cancel) const;

    size_t subscribe(std::function<void()> listener);
    void unsubscribe(size_t id);

private:
    struct Entry {
        ToolDefinition definition;
        ToolHandler handler;
        uint64_t order = 0;
    };
    void changed() const;
    std::shared_ptr<const Entry> entry(const std::string& name) const;
    static void invoke(const Entry& entry, const ToolCall& call);

    mutable std::shared_mutex mutex_;
    std::map<std::string, std::shared_ptr<const Entry>> tools_;  // GUARDED_BY(mutex_)
    uint64_t next_order_ = 0;                                     // GUARDED_BY(mutex_)
    std::function<bool(const std::string&, const CancellationToken&)> miss_handler_;
    mutable std::mutex listeners_mutex_;
    std::map<size_t, std::function<void()>> listeners_;  // GUARDED_BY(listeners_mutex_)
    size_t next_listener_ = 1;                            // GUARDED_BY(listeners_mutex_)
};

}  // namespace pymcp::mcp
