#include "python_mcp/tools/python_tool.hpp"

#include "python_mcp/support/time_format.hpp"

#include <cmath>
#include <ctime>
#include <map>

namespace pymcp::tools {

using mcp::json;
using mcp::ToolError;

namespace {

const char* const kOperations[] = {"execute",   "save_script",   "load_script",   "list_scripts", "delete_script",
                                   "run_script", "clear_session", "list_sessions", "readme"};


json nullable(const char* type) { return json{{"type", json::array({type, "null"})}}; }

json input_schema() {
    json ops = json::array();
    for (const char* op : kOperations) ops.push_back(op);
    json fields = {
        {"operation", {{"type", "string"}, {"enum", ops}, {"description", "What to do. Default: execute when 'code' is given."}}},
        {"code", {{"type", "string"}, {"description", "Python source to run (execute) or to store (save_script). The value of a trailing expression is returned, as in a REPL."}}},
        {"session_id", {{"type", "string"}, {"description", "Session name (default 'default'). With persistent=true its variables survive between calls."}}},
        {"persistent", {{"type", "boolean"}, {"description", "Keep variables in the session between calls (default false: a fresh namespace per call)."}}},
        {"run_on_main_thread", {{"type", "boolean"}, {"description", "Run on the process's main thread, for libraries with thread affinity (default false)."}}},
        {"filename", {{"type", "string"}, {"description", "Script name for save/load/delete/run_script, e.g. 'report.py' ('.py' is added when missing)."}}},
        {"timeout", {{"type", "number"}, {"exclusiveMinimum", 0}, {"description", "Seconds before the code is interrupted (default: the server's --timeout)."}}},
        {"max_output", {{"type", "integer"}, {"minimum", 64}, {"description", "Bytes of stdout and of stderr kept (head and tail) before the middle is cut (default: the server's --max-output)."}}},
        {"tool_unlock_token", {{"type", "string"}, {"description", "Accepted for compatibility; required only when the server runs with --require-unlock-token (see the readme)."}}}};
    json schema{{"type", "object"}, {"properties", fields}};
    schema["properties"]["input"] = {{"type", "object"},
                                     {"description", "The original tool's wrapped form: the same fields inside 'input'."},
                                     {"properties", fields}};
    return schema;
}

json output_schema() {
    json error{{"type", json::array({"object", "null"})},
               {"properties", {{"type", {{"type", "string"}}}, {"message", {{"type", "string"}}}, {"traceback", {{"type", "string"}}}}}};
    json calls{{"type", "array"},
               {"items", {{"type", "object"}, {"properties", {{"tool", {{"type", "string"}}}, {"duration_ms", {{"type", "number"}}}, {"isError", {{"type", "boolean"}}}}}}}};
    json omitted{{"type", "array"},
                 {"items", {{"type", "object"}, {"properties", {{"tool", {{"type", "string"}}}, {"calls", {{"type", "integer"}}}, {"errors", {{"type", "integer"}}}, {"total_ms", {{"type", "number"}}}}}}}};
    return json{{"type", "object"},
                {"description", "execute/run_script: stdout, stderr, result, success, error, session_id, persistent, duration_ms, truncated, timed_out, mcp_calls (the first 20 nested tool calls), mcp_calls_omitted (later ones, counted per tool). Script and session operations: their own fields."},
                {"properties",
                 {{"stdout", {{"type", "string"}}},
                  {"stderr", {{"type", "string"}}},
                  {"result", nullable("string")},
                  {"success", {{"type", "boolean"}}},
                  {"error", error},
                  {"session_id", {{"type", "string"}}},
                  {"persistent", {{"type", "boolean"}}},
                  {"duration_ms", {{"type", "number"}}},
                  {"truncated", {{"type", "boolean"}}},
                  {"timed_out", {{"type", "boolean"}}},
                  {"still_running", {{"type", "boolean"}}},
                  {"mcp_calls", calls},
                  {"mcp_calls_omitted", omitted},
                  {"filename", {{"type", "string"}}},
                  {"path", {{"type", "string"}}},
                  {"size", {{"type", "integer"}}},
                  {"saved", {{"type", "boolean"}}},
                  {"code", {{"type", "string"}}},
                  {"deleted", {{"type", "boolean"}}},
                  {"scripts", {{"type", "array"}}},
                  {"count", {{"type", "integer"}}},
                  {"directory", {{"type", "string"}}},
                  {"sessions", {{"type", "array"}}},
                  {"cleared", {{"type", "boolean"}}},
                  {"variables_freed", {{"type", "integer"}}},
                  {"readme", {{"type", "string"}}}}}};
}

const char* const kDescription =
    "Run Python 3.11 code in an embedded interpreter on this machine, with variables kept between calls in "
    "named sessions (persistent=true). numpy, pandas and requests are installed. Code calls other tools "
    "in-process with mcp.call(name, params) (no import needed), so it can process data far larger than the "
    "conversation: query, transform and store in code, return only the summary. The value of a trailing "
    "expression is returned. Operations: execute (default), save_script, load_script, list_scripts, "
    "delete_script, run_script, clear_session, list_sessions, readme (full documentation). Arguments are "
    "accepted plain or wrapped as {\"input\": {...}}.";

std::string text_block(const python::ExecOutcome& o) {
    std::string text;
    if (!o.out.text.empty()) text += o.out.text;
    if (!o.err.text.empty()) {
        if (!text.empty() && text.back() != '\n') text += "\n";
        text += "[stderr]\n" + o.err.text;
    }
    if (o.result) {
        if (!text.empty() && text.back() != '\n') text += "\n";
        text += "[result] " + *o.result + "\n";
    }
    if (o.error) {
        if (!text.empty() && text.back() != '\n') text += "\n";
        if (o.status == python::ExecOutcome::Status::Error && !o.error->traceback.empty()) {
            text += "[error]\n" + o.error->traceback;
        } else {
            text += "[error] " + o.error->type + (o.error->message.empty() ? "" : ": " + o.error->message) + "\n";
            if (!o.error->traceback.empty()) text += "[interrupted at]\n" + o.error->traceback;
        }
    }
    if (text.empty()) text = "(no output)";
    return text;
}

}  // namespace

PythonTool::PythonTool(python::Engine& engine, ScriptStore& scripts, PythonToolOptions options)
    : engine_(engine), scripts_(scripts), options_(std::move(options)) {}

mcp::ToolDefinition PythonTool::definition(const std::string& callable_tools_summary) const {
    mcp::ToolDefinition d;
    d.name = "python";
    d.title = "Python (persistent sessions, calls other tools)";
    d.description = kDescription;
    if (!callable_tools_summary.empty()) d.description += "\n\n" + callable_tools_summary;
    d.input_schema = input_schema();
    d.output_schema = output_schema();
    d.annotations = json{{"title", d.title},
                         {"readOnlyHint", false},
                         {"destructiveHint", true},
                         {"idempotentHint", false},
                         {"openWorldHint", true}};
    return d;
}

std::string PythonTool::summarize_tools(const mcp::ToolRegistry& registry) const {
    std::vector<std::string> builtins;
    std::map<std::string, std::vector<std::string>> servers;
    for (const auto& t : registry.list()) {
        if (t.name == "python") continue;
        std::string server = t.meta.is_object() ? t.meta.value("server", "") : "";
        if (server.empty()) {
            builtins.push_back(t.name);
        } else {
            std::string tool = t.meta.value("tool", t.name);
            std::string line = tool;
            std::string first = t.description.substr(0, t.description.find('\n'));
            if (first.size() > 80) first = first.substr(0, 77) + "...";
            if (!first.empty()) line += " (" + first + ")";
            servers[server].push_back(line);
        }
    }
    std::string s = "Callable from code with mcp.call(name, params):";
    for (const auto& b : builtins) s += " " + b + ",";
    s += " python (another session).";
    if (!servers.empty()) {
        s += "\nDownstream MCP servers, also as functions mcp.<server>.<tool>(**arguments) returning the unwrapped result "
             "(help() shows parameters; mcp.search_tools('words') finds tools):";
        for (const auto& [server, tools] : servers) {
            s += "\n- " + server + ": ";
            size_t shown = 0;
            for (const auto& t : tools) {
                if (shown == 12) {
                    s += " ... (+" + std::to_string(tools.size() - shown) + " more)";
                    break;
                }
                s += (shown ? "; " : "") + t;
                ++shown;
            }
        }
    }
    return s;
}

void PythonTool::register_in(mcp::ToolRegistry& registry) {
    registry.add(
        definition(), [this](const json& args, mcp::CallContext& ctx) { return call(args, ctx); },
        [this](const json& args, const mcp::CallContext& ctx, mcp::ToolDone& done) { return call_async(args, ctx, done); });
    registry.set_description("python", definition(summarize_tools(registry)).description);
    registry.subscribe([this, &registry] {
        registry.set_description("python", definition(summarize_tools(registry)).description);
    });
}

json PythonTool::call(const json& arguments, mcp::CallContext& context) {
    ToolInput fields(arguments);
    const json& input = fields.fields();
    std::string op = get_string(input, "operation").value_or("");
    if (op.empty()) {
        if (!input.contains("code"))
            throw ToolError("'operation' is required: one of execute, save_script, load_script, list_scripts, "
                            "delete_script, run_script, clear_session, list_sessions, readme");
        op = "execute";
    }
    if (op == "readme") return mcp::tool_result(options_.readme, json{{"readme", options_.readme}});
    if (std::find(std::begin(kOperations), std::end(kOperations), op) == std::end(kOperations))
        throw ToolError("unknown operation '" + op + "': use one of execute, save_script, load_script, list_scripts, "
                        "delete_script, run_script, clear_session, list_sessions, readme");
    options_.gate.check(input, options_.readme);

    if (op == "execute") return execute(input, require_string(input, "code", "for execute"), "", context);
    if (op == "run_script") {
        std::string name = require_string(input, "filename", "for run_script");
        std::string code = scripts_.read_code(name);
        return execute(input, code, scripts_.existing_path(name).string(), context);
    }
    if (op == "save_script") {
        auto r = scripts_.save(require_string(input, "filename", "for save_script"),
                               require_string(input, "code", "for save_script"));
        return mcp::tool_result("Saved " + r["filename"].get<std::string>() + " (" + std::to_string(r["size"].get<size_t>()) +
                                    " bytes) to " + r["path"].get<std::string>(),
                                r);
    }
    if (op == "load_script") {
        auto r = scripts_.load(require_string(input, "filename", "for load_script"));
        return mcp::tool_result(r["code"].get<std::string>(), r);
    }
    if (op == "list_scripts") {
        auto r = scripts_.list();
        std::string text = std::to_string(r["count"].get<size_t>()) + " script(s) in " + r["directory"].get<std::string>();
        for (const auto& s : r["scripts"])
            text += "\n" + s["filename"].get<std::string>() + "\t" + std::to_string(s["size"].get<size_t>()) + " bytes\t" +
                    s["modified"].get<std::string>();
        if (r.contains("shipped")) {
            text += "\n" + std::to_string(r["shipped_count"].get<size_t>()) + " shipped script(s), read-only, in " +
                    r["shipped_directory"].get<std::string>();
            for (const auto& s : r["shipped"])
                text += "\n" + s["filename"].get<std::string>() + "\t" + std::to_string(s["size"].get<size_t>()) + " bytes";
        }
        return mcp::tool_result(text, r);
    }
    if (op == "delete_script") {
        auto r = scripts_.remove(require_string(input, "filename", "for delete_script"));
        return mcp::tool_result("Deleted " + r["filename"].get<std::string>(), r);
    }
    if (op == "clear_session") {
        std::string id = get_string(input, "session_id").value_or("default");
        auto freed = engine_.clear_session(id);
        json r{{"session_id", id}, {"cleared", freed.has_value()}, {"variables_freed", freed.value_or(0)}};
        return mcp::tool_result(freed ? "Cleared session '" + id + "': freed " + std::to_string(*freed) + " variable(s)"
                                      : "There is no session '" + id + "' (nothing to clear)",
                                r);
    }
    // list_sessions
    json sessions = json::array();
    std::string text;
    for (const auto& s : engine_.list_sessions()) {
        sessions.push_back(json{{"session_id", s.id},
                                {"variables", s.variables},
                                {"created", iso8601_utc(s.created)},
                                {"last_used", iso8601_utc(s.last_used)},
                                {"busy", s.busy},
                                {"executions", s.executions}});
        text += s.id + ": " + std::to_string(s.variables) + " variable(s), " + std::to_string(s.executions) +
                " execution(s), last used " + iso8601_utc(s.last_used) + (s.busy ? ", busy" : "") + "\n";
    }
    size_t count = sessions.size();
    if (text.empty()) text = "No persistent sessions.";
    return mcp::tool_result(text, json{{"sessions", std::move(sessions)}, {"count", count}});
}

python::ExecRequest PythonTool::make_request(const json& input, const std::string& code, const std::string& filename,
                                             const mcp::CallContext& context) const {
    python::ExecRequest req;
    req.code = code;
    req.filename = filename;
    req.session_id = get_string(input, "session_id").value_or("default");
    if (req.session_id.empty()) req.session_id = "default";
    req.persistent = get_bool(input, "persistent").value_or(false);
    req.run_on_main_thread = get_bool(input, "run_on_main_thread").value_or(false);
    req.timeout = options_.default_timeout;
    if (auto t = get_number(input, "timeout")) {
        if (!(*t > 0) || !std::isfinite(*t)) throw ToolError("'timeout' must be a positive number of seconds");
        req.timeout = std::chrono::milliseconds(static_cast<long long>(std::min(*t, 7.0 * 86400) * 1000));
    }
    req.max_output = options_.default_max_output;
    if (auto m = get_integer(input, "max_output")) {
        if (*m < 64) throw ToolError("'max_output' must be at least 64 (bytes)");
        req.max_output = static_cast<size_t>(*m);
    }
    if (context.has_caller_session(req.session_id) && req.persistent)
        throw ToolError("session '" + req.session_id +
                        "' is the one making this call (directly or through other calls); running code in it "
                        "now would wait for itself forever. Use another session_id.");
    return req;
}

json PythonTool::format(const python::ExecRequest& req, const python::ExecOutcome& o) {
    using Status = python::ExecOutcome::Status;
    const bool success = o.status == Status::Ok;
    const auto ms = [](double v) { return std::round(v * 1000) / 1000; };
    // Every object's keys are appended in ascending order (see append_field).
    json error = nullptr;
    if (o.error) {
        error = json(json::value_t::object);
        append_field(error, "message", o.error->message);
        append_field(error, "traceback", o.error->traceback);
        append_field(error, "type", o.error->type);
    }
    json calls(json::value_t::array);
    for (const auto& c : o.mcp_calls) {
        json call(json::value_t::object);
        append_field(call, "duration_ms", c.duration_ms);
        append_field(call, "isError", c.is_error);
        append_field(call, "tool", c.tool);
        calls.push_back(std::move(call));
    }
    json structured(json::value_t::object);
    append_field(structured, "duration_ms", ms(o.duration_ms));
    append_field(structured, "error", std::move(error));
    append_field(structured, "mcp_calls", std::move(calls));
    if (!o.mcp_calls_omitted.empty()) {
        json omitted(json::value_t::array);
        for (const auto& t : o.mcp_calls_omitted) {
            json tally(json::value_t::object);
            append_field(tally, "calls", t.calls);
            append_field(tally, "errors", t.errors);
            append_field(tally, "tool", t.tool);
            append_field(tally, "total_ms", ms(t.total_ms));
            omitted.push_back(std::move(tally));
        }
        append_field(structured, "mcp_calls_omitted", std::move(omitted));
    }
    append_field(structured, "persistent", req.persistent);
    append_field(structured, "result", o.result ? json(*o.result) : json(nullptr));
    append_field(structured, "session_id", req.session_id);
    append_field(structured, "stderr", o.err.text);
    append_field(structured, "stdout", o.out.text);
    if (o.still_running) append_field(structured, "still_running", true);
    append_field(structured, "success", success);
    append_field(structured, "timed_out", o.status == Status::TimedOut);
    append_field(structured, "truncated", o.out.cut_bytes > 0 || o.err.cut_bytes > 0 || o.result_cut_bytes > 0);
    return mcp::tool_result(text_block(o), std::move(structured), !success);
}

json PythonTool::execute(const json& input, const std::string& code, const std::string& filename,
                         mcp::CallContext& context) {
    auto req = make_request(input, code, filename, context);
    try {
        return format(req, engine_.execute(req, context));
    } catch (const python::EngineError& e) {
        throw ToolError(e.what());
    }
}

bool PythonTool::call_async(const json& arguments, const mcp::CallContext& context, mcp::ToolDone& done) {
    if (!engine_.can_submit()) return false;
    ToolInput fields(arguments);
    const json& input = fields.fields();
    std::string op = get_string(input, "operation").value_or(input.contains("code") ? "execute" : "");
    if (op != "execute") return false;  // the other operations touch files or the GIL: not on this thread
    options_.gate.check(input, options_.readme);
    auto req = make_request(input, require_string(input, "code", "for execute"), "", context);
    try {
        // `done` is copied, not moved: if the engine refuses, the registry still answers with it.
        engine_.submit(req, context, [req, done](python::ExecOutcome o) { done(format(req, o)); });
    } catch (const python::EngineError& e) {
        throw ToolError(e.what());
    }
    return true;
}

}  // namespace pymcp::tools
