#include "python_mcp/tools/python_tool.hpp"

#include "python_mcp/support/head_tail.hpp"
#include "python_mcp/support/json_text.hpp"
#include "python_mcp/support/paths.hpp"
#include "python_mcp/support/time_format.hpp"
#include "python_mcp/tools/schedule_ops.hpp"
#include "python_mcp/tools/sqlite/base64.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <future>
#include <map>

namespace pymcp::tools {

using mcp::json;
using mcp::ToolError;

namespace {

const char* const kOperations[] = {"execute",    "save_script",   "load_script",   "list_scripts", "delete_script",
                                   "run_script", "clear_session", "list_sessions", "read_output",  "readme",
                                   // jobs (issue 13)
                                   "start_job",  "job_status",    "wait_job",      "cancel_job",   "list_jobs",
                                   // schedules (issue 13)
                                   "schedule_script", "list_schedules", "unschedule",
                                   // process isolation (issue 16)
                                   "restart_session"};

std::string operation_list() {
    std::string list;
    for (const char* op : kOperations) list += std::string(list.empty() ? "" : ", ") + op;
    return list;
}


// The fields each operation reads, besides `operation` and `tool_unlock_token`, which every one
// takes. A field no operation has is refused, naming the operation's fields: a misspelled
// "persistant": true silently ignored would lose the session's state without a word. A field of
// another operation is accepted and ignored (the original tool ignored them, and scripts written
// for it may send them; execute and run_script say so in a note). `cwd` and `env` (fields of
// later versions of the original tool) are accepted too, but not applied (kNotApplied); `argv`
// is the original's name for `args`.
const std::map<std::string, std::vector<std::string>, std::less<>> kOperationFields = {
    {"execute",
     {"code", "session_id", "persistent", "run_on_main_thread", "timeout", "max_output", "max_images", "max_image_bytes",
      "cwd", "env", "wait", "isolation"}},
    {"run_script",
     {"filename", "session_id", "persistent", "run_on_main_thread", "timeout", "max_output", "max_images",
      "max_image_bytes", "args", "argv", "cwd", "env", "wait", "isolation"}},
    // jobs (issue 13): start_job is execute answering with the job handle at once
    {"start_job",
     {"code", "session_id", "persistent", "run_on_main_thread", "timeout", "max_output", "max_images", "max_image_bytes",
      "cwd", "env", "isolation"}},
    {"job_status", {"job_id", "since_offset"}},
    {"wait_job", {"job_id", "wait", "since_offset"}},
    {"cancel_job", {"job_id"}},
    {"list_jobs", {}},
    // schedules (issue 13): a saved script every N seconds or on a cron expression
    {"schedule_script", {"filename", "every", "cron", "session_id", "args", "argv", "timeout"}},
    {"list_schedules", {}},
    {"unschedule", {"schedule_id"}},
    {"save_script", {"filename", "code"}},
    {"load_script", {"filename"}},
    {"delete_script", {"filename"}},
    {"list_scripts", {}},
    {"clear_session", {"session_id"}},
    {"restart_session", {"session_id"}},
    {"list_sessions", {}},
    {"read_output", {"session_id"}},
    {"readme", {}},  // takes any field of the tool: it only returns the documentation
};

const char* const kNotApplied =
    " accepted for compatibility with the original tool but not applied: the working directory and "
    "os.environ belong to the whole server process, shared by every session running at the same time. "
    "Use os.chdir() / os.environ in the code if you need them.";

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = up;
        }
    }
    return row[b.size()];
}

bool tool_field(std::string_view name) {
    if (name == "operation" || name == "tool_unlock_token") return true;
    for (const auto& [op, fields] : kOperationFields)
        if (std::find(fields.begin(), fields.end(), name) != fields.end()) return true;
    return false;
}

// Throws ToolError for a field the tool does not have, naming the fields `op` takes; returns the
// tool's fields that `op` does not use (accepted, ignored).
std::vector<std::string> check_fields(const json& input, const std::string& op) {
    std::vector<std::string> unused;
    auto known = kOperationFields.find(op);
    if (known == kOperationFields.end() || !input.is_object()) return unused;
    const auto& fields = known->second;
    for (auto it = input.begin(); it != input.end(); ++it) {
        const std::string& name = it.key();
        if (name == "operation" || name == "tool_unlock_token") continue;
        if (std::find(fields.begin(), fields.end(), name) != fields.end()) continue;
        if (tool_field(name)) {
            if (!it->is_null() && op != "readme") unused.push_back(name);
            continue;
        }
        std::string list = "operation";
        std::string guess;
        size_t best = 3;  // a guess needs at most 2 edits
        for (const auto& f : fields) {
            list += ", " + f;
            size_t d = edit_distance(name, f);
            if (d < best && d < f.size()) best = d, guess = f;
        }
        list += ", tool_unlock_token";
        std::string message = "unknown field '" + quoted_name(name) + "' for operation " + op;
        if (!guess.empty()) message += " (did you mean '" + guess + "'?)";
        throw ToolError(message + ". The fields of " + op + " are: " + list + ". Nothing was done.");
    }
    return unused;
}

// sys.argv for run_script: the script's path, then `args` (or the original's name, `argv`).
std::vector<std::string> script_argv(const json& input, const std::string& path) {
    std::vector<std::string> argv{path};
    const json* args = nullptr;
    std::string key;
    for (const char* k : {"args", "argv"}) {
        auto it = input.find(k);
        if (it == input.end() || it->is_null()) continue;
        if (args) throw ToolError("give 'args' or 'argv' (the same thing), not both");
        args = &*it;
        key = k;
    }
    if (!args) return argv;
    if (!args->is_array()) throw ToolError("'" + key + "' must be a list of strings: the script's sys.argv[1:]");
    for (const auto& a : *args) {
        if (!a.is_string())
            throw ToolError("'" + key + "' must be a list of strings: item " + std::to_string(argv.size() - 1) +
                            " is " + a.type_name());
        argv.push_back(a.get<std::string>());
    }
    return argv;
}

// Error text is bounded like output: past `limit` bytes, the head and the tail with a marker (a
// message quoting a 1 MB tool name must not make a 3 MB response). Cut on UTF-8 boundaries.
std::string bounded(const std::string& text, size_t limit, bool& cut) {
    if (text.size() <= limit) return text;
    cut = true;
    return head_tail(text, limit);
}

json nullable(const char* type) { return json{{"type", json::array({type, "null"})}}; }

json input_schema() {
    json ops = json::array();
    for (const char* op : kOperations) ops.push_back(op);
    json fields = {
        {"operation", {{"type", "string"}, {"enum", ops}, {"description", "What to do. Default: execute when 'code' is given."}}},
        {"code", {{"type", "string"}, {"description", "Python source to run (execute) or to store (save_script). The value of a trailing expression is returned, as in a REPL."}}},
        {"session_id", {{"type", "string"}, {"description", "Session name (default 'default'). With persistent=true its variables survive between calls. read_output: whose background output to read."}}},
        {"persistent", {{"type", "boolean"}, {"description", "Keep variables in the session between calls (default false: a fresh namespace per call)."}}},
        {"run_on_main_thread", {{"type", "boolean"}, {"description", "Run on the process's main thread, for libraries with thread affinity (default false)."}}},
        {"isolation", {{"type", "string"}, {"enum", {"thread", "process"}}, {"description", "Where a new session runs: 'thread' (in the server) or 'process' (a worker process of its own: a crash or stuck C code then costs this session only, see restart_session). Default: the server's --isolation. A session keeps the mode it was created with."}}},
        {"filename", {{"type", "string"}, {"description", "Script name for save/load/delete/run_script, e.g. 'report.py' ('.py' is added when missing)."}}},
        {"timeout", {{"type", "number"}, {"exclusiveMinimum", 0}, {"description", "Seconds before the code is interrupted (default: the server's --timeout)."}}},
        {"max_output", {{"type", "integer"}, {"minimum", 64}, {"description", "Bytes of stdout and of stderr kept (head and tail) before the middle is cut (default: the server's --max-output)."}}},
        {"max_images", {{"type", "integer"}, {"minimum", 0}, {"description", "Images (figures, display()) returned at most; later ones are dropped with a note (default: the server's --max-images)."}}},
        {"max_image_bytes", {{"type", "integer"}, {"minimum", 0}, {"description", "Bytes of all images together (before base64) returned at most (default: the server's --max-image-bytes)."}}},
        {"args", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "run_script: the script's arguments, its sys.argv[1:] (sys.argv[0] is its path). 'argv' is accepted as the same."}}},
        {"argv", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "The original tool's name for 'args'."}}},
        {"cwd", {{"type", "string"}, {"description", "Accepted for compatibility with the original tool, not applied (the working directory is shared by all sessions); the result says so."}}},
        {"env", {{"type", "object"}, {"description", "Accepted for compatibility with the original tool, not applied (os.environ is shared by all sessions); the result says so."}}},
        {"wait", {{"type", "number"}, {"minimum", 0}, {"description", "execute/run_script: seconds to wait for the result (default: the server's --wait, 50); code still running then goes on as a job and the call returns its job_id (0: at once). wait_job: seconds to block for the job to end."}}},
        {"job_id", {{"type", "string"}, {"description", "job_status, wait_job, cancel_job: the job, as a job handle or list_jobs names it."}}},
        {"since_offset", {{"type", "integer"}, {"minimum", 0}, {"description", "job_status, wait_job: the job's output from this byte offset (the previous answer's next_offset); default 0."}}},
        {"every", {{"type", "number"}, {"description", "schedule_script: seconds between runs (at least 1; or give 'cron')."}}},
        {"cron", {{"type", "string"}, {"description", "schedule_script: a 5-field cron expression in the server's local time, e.g. '0 * * * *' (hourly), '*/15 9-17 * * mon-fri'."}}},
        {"schedule_id", {{"type", "integer"}, {"description", "unschedule: the schedule, as schedule_script or list_schedules names it."}}},
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
    json display{{"type", "array"},
                 {"items", {{"type", "object"}, {"properties", {{"type", {{"type", "string"}}}, {"mimeType", {{"type", "string"}}}, {"bytes", {{"type", "integer"}}}}}}}};
    json overflow{{"type", "array"},
                  {"items", {{"type", "object"}, {"properties", {{"uri", {{"type", "string"}}}, {"name", {{"type", "string"}}}, {"path", {{"type", "string"}}}, {"mimeType", {{"type", "string"}}}, {"bytes", {{"type", "integer"}}}, {"complete", {{"type", "boolean"}}}}}}}};
    return json{{"type", "object"},
                {"description", "execute/run_script: overflow (when output or the result was cut to max_output: the whole text kept as a resource, uri and file path, also linked as resource_link content), stdout, stderr, result, success, display (a summary of the images and display() texts that follow the text in content: type, mimeType, bytes; images dropped over the budget are counted in images_dropped), error, session_id, persistent, duration_ms, truncated, timed_out, mcp_calls (the first 20 nested tool calls), mcp_calls_omitted (later ones, counted per tool), note (when something in the call was not done as asked, e.g. a fresh namespace although the named session is persistent, or when background output waits: background_output_bytes). read_output: session_id, stdout, stderr, bytes, truncated. Script and session operations: their own fields."},
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
                  {"display", display},
                  {"images_dropped", {{"type", "integer"}}},
                  {"overflow", overflow},
                  {"structured_content_bytes", {{"type", "integer"}}},
                  {"structured_content_truncated", {{"type", "boolean"}}},
                  {"mcp_calls_omitted", omitted},
                  {"note", {{"type", "string"}}},
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
                  {"readme", {{"type", "string"}}},
                  {"background_output_bytes", {{"type", "integer"}}},
                  {"bytes", {{"type", "integer"}}},
                  // jobs (issue 13)
                  {"job_id", {{"type", "string"}}},
                  {"state", {{"type", "string"}}},
                  {"elapsed", {{"type", "number"}}},
                  {"output", {{"type", "string"}}},
                  {"next_offset", {{"type", "integer"}}},
                  {"output_skipped_bytes", {{"type", "integer"}}},
                  {"cancel_sent", {{"type", "boolean"}}},
                  {"jobs", {{"type", "array"}}},
                  // schedules (issue 13)
                  {"schedule_id", {{"type", "integer"}}},
                  {"schedules", {{"type", "array"}}},
                  {"next_run", nullable("string")},
                  {"database", {{"type", "string"}}}}}};
}

const char* const kDescription =
    "Run Python 3.11 code in an embedded interpreter on this machine, with variables kept between calls in "
    "named sessions (persistent=true). numpy, pandas and requests are installed. Code calls other tools "
    "in-process with mcp.call(name, params) (no import needed), so it can process data far larger than the "
    "conversation: query, transform and store in code, return only the summary. The value of a trailing "
    "expression is returned. Operations: execute (default), save_script, load_script, list_scripts, "
    "delete_script, run_script, clear_session, restart_session (isolation 'process' sessions: kills its worker), "
    "list_sessions, read_output (what background threads printed after "
    "their run), readme (full documentation), and the job operations: code still running after 'wait' seconds (default 50) goes on as a job and the call returns its job_id, to follow with wait_job (start_job, wait_job, cancel_job, list_jobs and the job's state: see the readme), and schedules: schedule_script runs a saved script every N seconds or on a cron expression, list_schedules shows each one's runs, unschedule stops it. With a progressToken, what the code prints arrives while it runs, as "
    "notifications/progress messages. Arguments are "
    "accepted plain or wrapped as {\"input\": {...}}.";

// The outcome's rich content as MCP content items, after the text block: images as `image`
// content (base64 here, never in structuredContent, which stays small JSON), texts as `text`.
void append_display(json& content, const engine::ExecOutcome& o) {
    for (const auto& item : o.display) {
        json c(json::value_t::object);
        if (item.kind == engine::ContentItem::Kind::Image) {
            std::string data;
            data.reserve((item.data.size() + 2) / 3 * 4);
            sqlite::append_base64(data, reinterpret_cast<const unsigned char*>(item.data.data()), item.data.size());
            append_field(c, "data", std::move(data));
            append_field(c, "mimeType", item.mime);
            append_field(c, "type", "image");
        } else {
            append_field(c, "text", item.data);
            append_field(c, "type", "text");
        }
        content.push_back(std::move(c));
    }
}

// structuredContent's summary of the same items: what each is and its size, no data.
json display_summary(const engine::ExecOutcome& o) {
    json list(json::value_t::array);
    for (const auto& item : o.display) {
        json d(json::value_t::object);
        append_field(d, "bytes", item.data.size());
        append_field(d, "mimeType", item.mime);
        append_field(d, "type", item.kind == engine::ContentItem::Kind::Image ? "image" : "text");
        list.push_back(std::move(d));
    }
    return list;
}

// What was left out of the rich content, and how to get it ("" when nothing was).
std::string display_note(const engine::ExecRequest& req, const engine::ExecOutcome& o) {
    std::string note;
    if (o.images_dropped > 0)
        note = std::to_string(o.images_dropped) + " image(s) (" + std::to_string(o.image_bytes_dropped) +
               " bytes) were left out: this call returns at most " + std::to_string(req.max_images) + " images and " +
               std::to_string(req.max_image_bytes) +
               " bytes of images. Pass larger max_images / max_image_bytes, plot fewer figures, or save them to "
               "files (fig.savefig).";
    if (o.texts_dropped > 0)
        note += std::string(note.empty() ? "" : " ") + std::to_string(o.texts_dropped) +
                " display() text(s) were left out: at most 50 are returned per call.";
    return note;
}

std::string text_block(const engine::ExecOutcome& o, const std::string& note) {
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
        if (o.status == engine::ExecOutcome::Status::Error && !o.error->traceback.empty()) {
            text += "[error]\n" + o.error->traceback;
        } else {
            text += "[error] " + o.error->type + (o.error->message.empty() ? "" : ": " + o.error->message) + "\n";
            if (!o.error->traceback.empty()) text += "[interrupted at]\n" + o.error->traceback;
        }
    }
    if (text.empty()) text = "(no output)";
    if (!note.empty()) text += (text.back() == '\n' ? "" : "\n") + std::string("[note] ") + note + "\n";
    return text;
}

}  // namespace

PythonTool::PythonTool(engine::Engine& engine, ScriptStore& scripts, PythonToolOptions options)
    : engine_(engine), scripts_(scripts), options_(std::move(options)),
      jobs_(std::make_shared<JobStore>(options_.job_history)) {}

mcp::ToolDefinition PythonTool::definition(const std::string& callable_tools_summary) const {
    mcp::ToolDefinition d;
    d.name = "python";
    d.title = "Python (persistent sessions, calls other tools)";
    d.description = kDescription;
    if (!callable_tools_summary.empty()) d.description += "\n\n" + callable_tools_summary;
    if (d.description.size() > kMaxDescriptionChars) {
        // Hosts cut longer descriptions (Claude Code at 4,096): end on a whole line, say where the rest is.
        const std::string more = "\n... (more tools: mcp.list_tools(), mcp.search_tools('words'))";
        size_t cut = d.description.rfind('\n', kMaxDescriptionChars - more.size());
        if (cut == std::string::npos || cut < std::string_view(kDescription).size()) cut = kMaxDescriptionChars - more.size();
        while (cut > 0 && (static_cast<unsigned char>(d.description[cut]) & 0xC0) == 0x80) --cut;
        d.description = d.description.substr(0, cut) + more;
    }
    d.input_schema = input_schema();
    d.output_schema = output_schema();
    d.task_support = "optional";  // 2025-11-25 tasks: any operation may run as a task (a task job)
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
    registry_ = &registry;
    registry.add(definition(), [this](mcp::ToolCall call) { handle(call); });
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
            throw ToolError("'operation' is required: one of " + operation_list());
        op = "execute";
    }
    if (std::find(std::begin(kOperations), std::end(kOperations), op) == std::end(kOperations))
        throw ToolError("unknown operation '" + quoted_name(op) + "': use one of " + operation_list());
    if (op == "readme") {
        (void)check_fields(input, op);
        return mcp::tool_result(options_.readme, json{{"readme", options_.readme}});
    }
    (void)check_fields(input, op);  // execute and run_script report unused fields in their note
    options_.gate.check(input, options_.readme);

    if (op == "execute" || op == "start_job")
        return execute(input, require_string(input, "code", "for " + op), "", context);
    if (op == "job_status" || op == "wait_job" || op == "cancel_job" || op == "list_jobs")
        return job_operation(op, input, context);
    if (is_schedule_operation(op)) return schedule_operation(options_.scheduler, op, input);
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
    if (op == "list_scripts") return list_scripts();
    if (op == "delete_script") {
        auto r = scripts_.remove(require_string(input, "filename", "for delete_script"));
        return mcp::tool_result("Deleted " + r["filename"].get<std::string>(), r);
    }
    if (op == "clear_session") {
        std::string id = get_string(input, "session_id").value_or("default");
        auto cancelled = jobs_->cancel_session(id);  // jobs (issue 13): its running jobs end with it
        auto freed = engine_.clear_session(id);
        json r{{"session_id", id}, {"cleared", freed.has_value()}, {"variables_freed", freed.value_or(0)}};
        std::string text = freed ? "Cleared session '" + id + "': freed " + std::to_string(*freed) + " variable(s)"
                                 : "There is no session '" + id + "' (nothing to clear)";
        if (!cancelled.empty()) {
            r["jobs"] = cancelled;
            text += "; cancelled its running job(s):";
            for (const auto& j : cancelled) text += " " + j;
        }
        return mcp::tool_result(text, r);
    }
    if (op == "read_output") return read_output(input);
    if (op == "restart_session") return restart_session(input);
    return list_sessions();
}

json PythonTool::list_scripts() {
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

json PythonTool::list_sessions() {
    json sessions = json::array();
    std::string text;
    for (const auto& s : engine_.list_sessions()) {
        json entry{{"session_id", s.id},
                   {"variables", s.variables},
                   {"busy", s.busy},
                   {"executions", s.executions},
                   {"persistent", s.persistent},
                   {"pending_output_bytes", s.pending_output_bytes},
                   {"isolation", s.isolation}};
        if (s.losses) {  // process isolation: its worker was lost (and why), its variables with it
            entry["lost"] = s.lost;
            entry["losses"] = s.losses;
        }
        std::string lost_text = s.losses ? ", lost " + std::to_string(s.losses) + "x, last: " + s.lost : "";
        std::string waiting = s.pending_output_bytes
                                  ? ", " + std::to_string(s.pending_output_bytes) + " bytes of background output waiting (read_output)"
                                  : "";
        if (s.persistent) {
            entry["created"] = iso8601_utc(s.created);
            entry["last_used"] = iso8601_utc(s.last_used);
            text += s.id + ": " + std::to_string(s.variables) + " variable(s), " + std::to_string(s.executions) +
                    " execution(s), last used " + iso8601_utc(s.last_used) + (s.busy ? ", busy" : "") +
                    (s.isolation == "process" ? ", process isolation" : "") + lost_text + waiting + "\n";
        } else {
            text += s.id + " (no persistent session)" + lost_text + waiting + "\n";
        }
        sessions.push_back(std::move(entry));
    }
    size_t count = sessions.size();
    if (text.empty()) text = "No persistent sessions.";
    return mcp::tool_result(text, json{{"sessions", std::move(sessions)}, {"count", count}});
}

// Process isolation (issue 16): the session's worker is killed (running code with it) and the
// next call starts the session fresh. Thread isolation cannot kill code: a clear error.
json PythonTool::restart_session(const json& input) {
    std::string id = get_string(input, "session_id").value_or("default");
    if (id.empty()) id = "default";
    std::optional<size_t> lost;
    try {
        lost = engine_.restart_session(id);
    } catch (const engine::EngineError& e) {
        throw ToolError(e.what());
    }
    json r{{"restarted", lost.has_value()}, {"session_id", id}, {"variables_lost", lost.value_or(0)}};
    return mcp::tool_result(lost ? "Restarted session '" + id + "': its worker process was ended (" +
                                       std::to_string(*lost) + " variable(s) gone); the next call starts it fresh"
                                 : "There is no session '" + id + "' (nothing to restart)",
                            r);
}

json PythonTool::read_output(const json& input) {
    std::string id = get_string(input, "session_id").value_or("default");
    if (id.empty()) id = "default";
    auto taken = engine_.read_output(id);
    json r{{"session_id", id}};
    if (!taken) {
        r["stdout"] = "";
        r["stderr"] = "";
        r["bytes"] = 0;
        r["truncated"] = false;
        return mcp::tool_result("No background output waiting for session '" + id + "'.", r);
    }
    std::string text = taken->out.text;
    if (!taken->err.text.empty()) text += std::string(text.empty() || text.back() == '\n' ? "" : "\n") + "[stderr]\n" + taken->err.text;
    r["stdout"] = taken->out.text;
    r["stderr"] = taken->err.text;
    r["bytes"] = taken->out.total_bytes + taken->err.total_bytes;
    r["truncated"] = taken->out.cut_bytes > 0 || taken->err.cut_bytes > 0;
    return mcp::tool_result(text.empty() ? "(no output)" : text, r);
}

engine::ExecRequest PythonTool::make_request(const json& input, const std::string& code, const std::string& filename,
                                             const mcp::CallContext& context) const {
    engine::ExecRequest req;
    req.code = code;
    req.filename = filename;
    if (!filename.empty()) req.argv = script_argv(input, filename);
    req.session_id = get_string(input, "session_id").value_or("default");
    if (req.session_id.empty()) req.session_id = "default";
    req.persistent = get_bool(input, "persistent").value_or(false);
    req.run_on_main_thread = get_bool(input, "run_on_main_thread").value_or(false);
    req.isolation = get_string(input, "isolation").value_or("");
    if (!req.isolation.empty() && req.isolation != "thread" && req.isolation != "process")
        throw ToolError("'isolation' must be \"thread\" or \"process\", not \"" + quoted_name(req.isolation) + "\"");
    req.timeout = options_.default_timeout;
    if (auto t = get_number(input, "timeout")) {
        if (!(*t > 0) || !std::isfinite(*t)) throw ToolError("'timeout' must be a positive number of seconds");
        req.timeout = std::chrono::milliseconds(static_cast<long long>(std::min(*t, 7.0 * 86400) * 1000));
    }
    req.cancel = context.cancellation();
    req.max_output = options_.default_max_output;
    if (auto m = get_integer(input, "max_output")) {
        if (*m < 64) throw ToolError("'max_output' must be at least 64 (bytes)");
        req.max_output = static_cast<size_t>(*m);
    }
    apply_image_budget(input, req);
    if (options_.overflow) {
        req.spool_prefix = options_.overflow->reserve().prefix;
        req.spool_max_bytes = options_.overflow->max_file_bytes();
    }
    if (context.has_caller_session(req.session_id) && req.persistent)
        throw ToolError("session '" + req.session_id +
                        "' is the one making this call (directly or through other calls); running code in it "
                        "now would wait for itself forever. Use another session_id.");
    return req;
}

void PythonTool::apply_image_budget(const json& input, engine::ExecRequest& req) const {
    req.max_images = options_.default_max_images;
    req.max_image_bytes = options_.default_max_image_bytes;
    if (auto m = get_integer(input, "max_images")) {
        if (*m < 0) throw ToolError("'max_images' must be 0 or more");
        req.max_images = static_cast<size_t>(*m);
    }
    if (auto m = get_integer(input, "max_image_bytes")) {
        if (*m < 0) throw ToolError("'max_image_bytes' must be 0 or more (bytes)");
        req.max_image_bytes = static_cast<size_t>(*m);
    }
}

std::string PythonTool::notes_for(const json& input, const engine::ExecRequest& req) const {
    std::string note;
    const char* op = req.filename.empty() ? "execute" : "run_script";
    for (const auto& name : check_fields(input, op))
        note += "'" + name + "' is not used by " + op + " and was ignored. ";
    const bool cwd = input.contains("cwd") && !input["cwd"].is_null();
    const bool env = input.contains("env") && !input["env"].is_null();
    if (cwd || env) note += std::string(cwd && env ? "'cwd' and 'env' are" : cwd ? "'cwd' is" : "'env' is") + kNotApplied;
    if (!req.persistent && input.contains("session_id") && !input["session_id"].is_null()) {
        auto sessions = engine_.list_sessions();
        if (std::any_of(sessions.begin(), sessions.end(),
                        [&](const auto& s) { return s.id == req.session_id && s.persistent; }))
            note += std::string(note.empty() || note.back() == ' ' ? "" : " ") + "Session '" + req.session_id +
                    "' is a persistent session, but this call ran in a fresh namespace because 'persistent' was not "
                    "true: it did not see the session's variables and nothing it defined was kept. Pass "
                    "\"persistent\": true to run in the session.";
    }
    while (!note.empty() && note.back() == ' ') note.pop_back();
    return note;
}

namespace {

// Times as results show them (milliseconds or seconds): three decimals.
double round3(double v) { return std::round(v * 1000) / 1000; }

// The outcome's error as {message, traceback, type}, or null.
json error_json(const engine::ExecOutcome& o) {
    if (!o.error) return nullptr;
    json error(json::value_t::object);
    append_field(error, "message", o.error->message);
    append_field(error, "traceback", o.error->traceback);
    append_field(error, "type", o.error->type);
    return error;
}

// The nested calls logged one by one: [{duration_ms, isError, tool}].
json nested_calls_json(const engine::ExecOutcome& o) {
    json calls(json::value_t::array);
    for (const auto& c : o.mcp_calls) {
        json call(json::value_t::object);
        append_field(call, "duration_ms", c.duration_ms);
        append_field(call, "isError", c.is_error);
        append_field(call, "tool", c.tool);
        calls.push_back(std::move(call));
    }
    return calls;
}

// The nested calls past the logged ones, counted per tool.
json omitted_calls_json(const engine::ExecOutcome& o) {
    json omitted(json::value_t::array);
    for (const auto& t : o.mcp_calls_omitted) {
        json tally(json::value_t::object);
        append_field(tally, "calls", t.calls);
        append_field(tally, "errors", t.errors);
        append_field(tally, "tool", t.tool);
        append_field(tally, "total_ms", round3(t.total_ms));
        omitted.push_back(std::move(tally));
    }
    return omitted;
}

}  // namespace

json PythonTool::format_core(const engine::ExecRequest& req, engine::ExecOutcome o, const std::string& note) {
    using Status = engine::ExecOutcome::Status;
    const bool success = o.status == Status::Ok;
    bool error_cut = false;
    if (o.error) {
        o.error->message = bounded(o.error->message, req.max_output, error_cut);
        o.error->traceback = bounded(o.error->traceback, req.max_output, error_cut);
    }
    // Every object's keys are appended in ascending order (see append_field).
    json structured(json::value_t::object);
    if (o.background_output_bytes > 0) append_field(structured, "background_output_bytes", o.background_output_bytes);
    if (!o.display.empty()) append_field(structured, "display", display_summary(o));
    append_field(structured, "duration_ms", round3(o.duration_ms));
    append_field(structured, "error", error_json(o));
    if (o.images_dropped > 0) append_field(structured, "images_dropped", o.images_dropped);
    append_field(structured, "mcp_calls", nested_calls_json(o));
    if (!o.mcp_calls_omitted.empty()) append_field(structured, "mcp_calls_omitted", omitted_calls_json(o));
    std::string full_note = note;
    if (o.background_output_bytes > 0)
        full_note += std::string(full_note.empty() ? "" : " ") + std::to_string(o.background_output_bytes) +
                     " bytes of background output (printed by threads of earlier runs after those ended) wait in "
                     "session '" + req.session_id + "': read them with the read_output operation.";
    const std::string dropped = display_note(req, o);
    if (!dropped.empty()) full_note += std::string(full_note.empty() ? "" : " ") + dropped;
    if (!full_note.empty()) append_field(structured, "note", full_note);
    append_field(structured, "persistent", req.persistent);
    append_field(structured, "result", o.result ? json(*o.result) : json(nullptr));
    append_field(structured, "session_id", req.session_id);
    append_field(structured, "stderr", o.err.text);
    append_field(structured, "stdout", o.out.text);
    if (o.still_running) append_field(structured, "still_running", true);
    append_field(structured, "success", success);
    append_field(structured, "timed_out", o.status == Status::TimedOut);
    append_field(structured, "truncated",
                 o.out.cut_bytes > 0 || o.err.cut_bytes > 0 || o.result_cut_bytes > 0 || error_cut);
    json result = mcp::tool_result(text_block(o, full_note), std::move(structured), !success);
    append_display(result["content"], o);
    return result;
}

// ------------------------------------------------------------------------------------------------
// Overflow (issue 14): what was cut is kept whole in files served as resources; the result links
// them (resource_link content, structuredContent.overflow, a note in the text). structuredContent
// past kMaxStructuredBytes is replaced by a small object that says where the whole one is.
// ------------------------------------------------------------------------------------------------

namespace {

std::string size_text(size_t n) {
    char buf[32];
    if (n < 10 * 1024) return std::to_string(n) + " bytes";
    if (n < 10 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", n / 1024.0);
    else std::snprintf(buf, sizeof buf, "%.1f MiB", n / (1024.0 * 1024.0));
    return buf;
}

// The execution id of a spool prefix (<dir>/<id>-).
std::string id_of_prefix(const std::string& prefix) {
    std::string name = std::filesystem::path(prefix).filename().string();
    if (!name.empty() && name.back() == '-') name.pop_back();
    return name;
}

// The outcome's spool files, taken over by the store (those it could keep).
std::vector<OverflowLink> adopt_spools(OverflowStore& store, const engine::ExecRequest& req, const engine::ExecOutcome& o) {
    std::vector<OverflowLink> links;
    const std::string id = id_of_prefix(req.spool_prefix);
    const std::pair<const char*, const std::optional<engine::SpoolFile>*> parts[] = {
        {"stdout", &o.out.spool}, {"stderr", &o.err.spool}, {"result", &o.result_spool}};
    for (const auto& [part, file] : parts)
        if (*file)
            if (auto link = store.adopt(id, part, **file)) links.push_back(std::move(*link));
    return links;
}

json link_json(const OverflowLink& l) {
    json j(json::value_t::object);
    append_field(j, "bytes", l.bytes);
    append_field(j, "complete", l.complete);
    append_field(j, "mimeType", l.mime_type);
    append_field(j, "name", l.name);
    append_field(j, "path", l.path);
    append_field(j, "uri", l.uri);
    return j;
}

std::string part_of(const OverflowLink& l) { return l.uri.substr(l.uri.rfind('/') + 1); }

// One line per kept file: what it holds and the two ways to read it.
std::string overflow_text(const std::vector<OverflowLink>& links) {
    std::string text;
    for (const auto& l : links)
        text += "[overflow] The whole " + part_of(l) + " (" + size_text(l.bytes) + ")" +
                (l.complete ? "" : ", up to the per-file limit,") + " is kept: read it with resources/read " + l.uri +
                " (at most 16 MiB per read; add ?offset=N for the rest), or from code: open(" +
                json(l.path).dump() + "). It is dropped when newer overflow needs the room.\n";
    return text;
}

void add_links(json& result, const std::vector<OverflowLink>& links) {
    json& content = result["content"];
    std::string& text = content[0]["text"].get_ref<std::string&>();
    text += (text.empty() || text.back() == '\n' ? "" : "\n") + overflow_text(links);
    json items(json::value_t::array);
    for (const auto& l : links) {
        mcp::ResourceInfo info{l.uri, l.name, "", "The whole " + part_of(l) + " of a python call", l.mime_type, l.bytes};
        json item = mcp::resource_json(info);
        item["type"] = "resource_link";
        items.push_back(std::move(item));
    }
    content.insert(content.begin() + 1, items.begin(), items.end());
    json list(json::value_t::array);
    for (const auto& l : links) list.push_back(link_json(l));
    result["structuredContent"]["overflow"] = std::move(list);
}

// A cheap upper bound first: only a structuredContent that may be near the limit is serialised.
size_t structured_bytes(const json& s, size_t limit) {
    size_t estimate = 4096;
    for (const char* key : {"stdout", "stderr", "result", "note"})
        if (auto it = s.find(key); it != s.end() && it->is_string()) estimate += it->get_ref<const std::string&>().size();
    if (auto e = s.find("error"); e != s.end() && e->is_object())
        for (const auto& [k, v] : e->items())
            if (v.is_string()) estimate += v.get_ref<const std::string&>().size();
    if (estimate * 6 < limit) return estimate;  // JSON escaping grows a string 6 times at most
    std::string text;
    append_json(text, s);
    return text.size();
}

}  // namespace

json PythonTool::format(const engine::ExecRequest& req, engine::ExecOutcome o, const std::string& note,
                        OverflowStore* overflow) {
    std::vector<OverflowLink> links;
    if (overflow && !req.spool_prefix.empty()) links = adopt_spools(*overflow, req, o);
    json result = format_core(req, std::move(o), note);
    if (!links.empty()) add_links(result, links);
    bound_structured(result, req, overflow);
    return result;
}

// Hosts drop a structuredContent past 1 MiB (Claude Code): one that big (max_output raised) is
// kept as a file when it can be, and replaced by its small fields with a marker.
void PythonTool::bound_structured(json& result, const engine::ExecRequest& req, OverflowStore* overflow) {
    json& s = result["structuredContent"];
    const size_t bytes = structured_bytes(s, kMaxStructuredBytes);
    if (bytes <= kMaxStructuredBytes) return;
    std::optional<OverflowLink> kept;
    if (overflow && !req.spool_prefix.empty()) {
        std::string text;
        append_json(text, s);
        kept = overflow->keep(id_of_prefix(req.spool_prefix), "structured", text, "application/json", ".json");
    }
    json small(json::value_t::object);
    for (const char* key : {"duration_ms", "overflow", "persistent", "session_id", "success", "timed_out"})
        if (auto it = s.find(key); it != s.end()) small[key] = *it;
    if (kept) {
        if (!small.contains("overflow")) small["overflow"] = json::array();
        small["overflow"].push_back(link_json(*kept));
    }
    small["structured_content_bytes"] = bytes;
    small["structured_content_truncated"] = true;
    small["truncated"] = true;
    small["note"] = "structuredContent (" + size_text(bytes) + ") was over the 1 MiB hosts accept; it is replaced by this "
                    "summary. The text content above holds the output" +
                    (kept ? "; the whole structuredContent is kept as " + kept->uri + " (resources/read) and in " + kept->path
                          : std::string("; it was not kept (overflow is off or the file could not be written)")) +
                    ". A smaller max_output avoids this.";
    s = std::move(small);
}

json PythonTool::execute(const json& input, const std::string& code, const std::string& filename,
                         mcp::CallContext& context) {
    auto req = make_request(input, code, filename, context);
    std::string note = notes_for(input, req);
    auto wait = get_string(input, "operation").value_or("") == "start_job" ? std::chrono::milliseconds(0) : wait_field(input);
    // The answer (result or job handle) arrives from the completion or the budget timer.
    auto answered = std::make_shared<std::promise<json>>();
    auto answer = answered->get_future();
    start_execution(std::move(req), std::move(note), context, wait,
                    [answered](json r) { answered->set_value(std::move(r)); });
    return answer.get();
}

std::shared_ptr<ToolCallHost> PythonTool::make_host(const mcp::CallContext& context) {
    if (!registry_) throw ToolError("the python tool is not registered in a tool registry");
    std::shared_ptr<LiveOutput> live;
    // Nothing is sent without a token: a client that did not ask for progress gets none.
    if (context.has_client() && !context.progress_token().is_null())
        live = std::make_shared<LiveOutput>(options_.live_output, *live_timer_,
                                            [context](const std::string& text) {
                                                context.report_status(std::nullopt, std::nullopt, text);
                                            });
    return std::make_shared<ToolCallHost>(*registry_, context, std::move(live));
}

// `execute` is queued on the engine right here (a queued execution holds no thread); every other
// operation touches files or waits for the GIL, so it runs where blocking is allowed.
void PythonTool::handle(const mcp::ToolCall& call) {
    if (call.context().task()) {  // starting it reads scripts or waits for no GIL, but keep it off the reader
        call.run_blocking([this](const mcp::ToolCall& c) { return start_task(c); });
        return;
    }
    if (submit_execute(call)) return;
    call.run_blocking([this](const mcp::ToolCall& c) { return this->call(c.arguments(), c.context()); });
}

bool PythonTool::submit_execute(const mcp::ToolCall& call) {
    if (!engine_.can_submit()) return false;
    const mcp::CallContext& context = call.context();
    ToolInput fields(call.arguments());
    const json& input = fields.fields();
    std::string op = get_string(input, "operation").value_or(input.contains("code") ? "execute" : "");
    // The other operations touch files or the GIL: not on this thread.
    if (op != "execute" && op != "start_job") return false;
    (void)check_fields(input, op);
    options_.gate.check(input, options_.readme);
    auto req = make_request(input, require_string(input, "code", "for " + op), "", context);
    std::string note = notes_for(input, req);
    auto wait = op == "start_job" ? std::chrono::milliseconds(0) : wait_field(input);
    start_execution(std::move(req), std::move(note), context, wait, [call](json r) { call.done(std::move(r)); });
    return true;
}

// ================================================================================================
// Jobs (issue 13): the wait budget and the job operations. Kept apart from the result formatting
// above: a job's result is exactly what format() made when the execution ended.
// ================================================================================================

namespace {

// Who answers the call: the completion (within the budget) or the budget timer (a job handle).
// The budget pauses while the code waits for the client (a question to the user), as the
// execution's timeout does: a question must not turn the call into a job. Lock order: mutex
// before the timer's.
struct Budget {
    using Clock = DeadlineTimer::Clock;
    std::mutex mutex;
    bool answered = false;  // GUARDED_BY(mutex)
    uint64_t timer = 0;     // GUARDED_BY(mutex): 0 when none
    Clock::time_point deadline;           // GUARDED_BY(mutex): moved on by the time spent asking
    int asking = 0;                       // GUARDED_BY(mutex): questions to the client in progress
    Clock::time_point ask_began;          // GUARDED_BY(mutex)
    bool due = false;                     // GUARDED_BY(mutex): the timer came during a question
    std::function<void()> on_due;         // set once before the timer is armed
    std::weak_ptr<DeadlineTimer> timers;  // set once before the timer is armed
    // Claims the answer; true for the one caller that got it.
    bool claim() {
        std::lock_guard lock(mutex);
        return !std::exchange(answered, true);
    }
    // The timer came: false while a question is out (it comes again when the last one ends) or
    // before the moved deadline (re-armed for it); true when the budget is spent.
    bool spent() {
        std::lock_guard lock(mutex);
        if (answered) return false;  // the completion reads `timer` after claiming: leave it alone
        timer = 0;
        if (asking > 0) return !(due = true);
        if (Clock::now() >= deadline) return true;
        if (auto t = timers.lock()) timer = t->schedule(deadline, on_due);
        return false;
    }
    void begin_ask() {
        std::lock_guard lock(mutex);
        if (asking++ == 0) ask_began = Clock::now();
    }
    void end_ask() {
        std::lock_guard lock(mutex);
        if (--asking > 0) return;
        deadline += Clock::now() - ask_began;
        if (std::exchange(due, false) && !answered)
            if (auto t = timers.lock()) timer = t->schedule(deadline, on_due);
    }
};

// The execution's host as a job sees it: what the code prints goes to the job's buffer as well as
// to the call's host (live output). detach() is called when the call is answered with a job
// handle: the request is over, so the pending live output is flushed and nothing more is sent
// for it (no live output, no progress); the code's tool calls still work (they need no request).
// Threads: as ExecutionHost. mutex_ orders progress against detach, so no progress notification
// leaves after the handle's answer.
class JobHost final : public engine::ExecutionHost {
public:
    JobHost(std::shared_ptr<ToolCallHost> inner, std::shared_ptr<Job> job, std::weak_ptr<Budget> budget)
        : inner_(std::move(inner)), job_(std::move(job)), budget_(std::move(budget)) {}

    void output(engine::OutputStream stream, std::string_view text) override {
        job_->append(text);
        inner_->output(stream, text);  // dropped by LiveOutput once finished
    }
    void progress(double done, std::optional<double> total, const std::string& message) override {
        std::lock_guard lock(mutex_);
        if (!detached_) inner_->progress(done, total, message);
    }
    json call_tool(const std::string& name, json arguments, const std::string& session,
                   const CancellationToken& cancel) override {
        return inner_->call_tool(name, std::move(arguments), session, cancel);
    }
    json list_tools() override { return inner_->list_tools(); }
    std::string wait_for_server(const std::string& server, const CancellationToken& cancel) override {
        return inner_->wait_for_server(server, cancel);
    }
    json ask_client(const std::string& method, json params, const CancellationToken& cancel) override {
        struct Pause {  // the wait budget stops while the client is asked
            std::shared_ptr<Budget> budget;
            explicit Pause(std::shared_ptr<Budget> b) : budget(std::move(b)) { if (budget) budget->begin_ask(); }
            ~Pause() { if (budget) budget->end_ask(); }
        } pause(budget_.lock());
        return inner_->ask_client(method, std::move(params), cancel);
    }
    // Before the call's answer: flushes live output; later output and progress are not sent.
    void detach() {
        {
            std::lock_guard lock(mutex_);
            detached_ = true;
        }
        inner_->finish();
    }
    void finish() { inner_->finish(); }

private:
    const std::shared_ptr<ToolCallHost> inner_;
    const std::shared_ptr<Job> job_;
    const std::weak_ptr<Budget> budget_;  // weak: the budget's timer callback holds this host
    std::mutex mutex_;
    bool detached_ = false;  // GUARDED_BY(mutex_)
};

JobState job_state_of(engine::ExecOutcome::Status status) {
    using Status = engine::ExecOutcome::Status;
    switch (status) {
        case Status::Ok: return JobState::Succeeded;
        case Status::Error: return JobState::Failed;
        case Status::TimedOut: return JobState::TimedOut;
        case Status::Cancelled: return JobState::Cancelled;
    }
    return JobState::Failed;
}

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", s);
    return buf;
}

std::string poll_hint(const Job& job, size_t next_offset) {
    return "The code goes on running in session '" + job.session_id() + "'. Follow it with {\"operation\": \"wait_job\", "
           "\"job_id\": \"" + job.id() + "\", \"since_offset\": " + std::to_string(next_offset) +
           "} (blocks up to 'wait' seconds, default 50, then answers as job_status), look with job_status, stop it "
           "with cancel_job.";
}

// A job as job_status shows it. Running: its output since `since` and how to poll. Done: its
// result exactly as execute would have answered, with the job's fields added.
json job_report(const Job& job, size_t since, bool whole_output) {
    if (auto result = job.result()) {
        json r = std::move(*result);
        json& s = r["structuredContent"];
        s["job_id"] = job.id();
        s["state"] = job_state_name(job.state());
        s["elapsed"] = round3(job.elapsed_seconds());
        s["next_offset"] = job.output_bytes();
        std::string line = "[job " + job.id() + ": " + job_state_name(job.state()) + " after " +
                           seconds_text(job.elapsed_seconds()) + " s]\n";
        for (auto& block : r["content"])
            if (block.value("type", "") == "text") {
                block["text"] = line + block["text"].get<std::string>();
                break;
            }
        return r;
    }
    JobOutput out = job.output_since(since);
    if (whole_output) out.text = job.output_head_tail();
    double elapsed = round3(job.elapsed_seconds());
    json s{{"job_id", job.id()},
           {"session_id", job.session_id()},
           {"state", "running"},
           {"elapsed", elapsed},
           {"output", out.text},
           {"next_offset", out.next_offset},
           {"output_skipped_bytes", out.skipped_bytes}};
    std::string hint = poll_hint(job, out.next_offset);
    s["note"] = hint;
    std::string text = "[job " + job.id() + ": running for " + seconds_text(elapsed) + " s]\n" +
                       (out.skipped_bytes ? "... [" + std::to_string(out.skipped_bytes) + " bytes not kept] ...\n" : "") +
                       out.text + (out.text.empty() || out.text.back() == '\n' ? "" : "\n") + "[note] " + hint + "\n";
    return mcp::tool_result(text, std::move(s));
}

}  // namespace

std::chrono::milliseconds PythonTool::wait_field(const json& input) const {
    auto w = get_number(input, "wait");
    if (!w) return options_.default_wait;
    if (!(*w >= 0) || !std::isfinite(*w)) throw ToolError("'wait' must be a number of seconds, 0 or more");
    return std::chrono::milliseconds(static_cast<long long>(std::min(*w, 7.0 * 86400) * 1000));
}

std::string PythonTool::queued_behind_note(const engine::ExecRequest& req) const {
    if (!req.persistent) return {};
    std::string ids;
    for (const auto& job : jobs_->running_in(req.session_id))
        if (job->persistent()) ids += (ids.empty() ? "" : ", ") + job->id();
    if (ids.empty()) return {};
    return "Session '" + req.session_id + "' was running job " + ids +
           " when this call came: the call waited for it to end (one call at a time per session).";
}

std::shared_ptr<Job> PythonTool::start_execution(engine::ExecRequest req, std::string note,
                                                const mcp::CallContext& context, std::chrono::milliseconds wait,
                                                Answer answer) {
    // The job's own cancellation (cancel_job, clear_session), also fired by the request's.
    CancellationSource cancel(req.cancel);
    req.cancel = cancel.token();
    auto job = std::make_shared<Job>(jobs_->next_id(), req.session_id, req.persistent, req.max_output, cancel);
    if (auto behind = queued_behind_note(req); !behind.empty()) note += (note.empty() ? "" : " ") + behind;
    auto budget = std::make_shared<Budget>();
    auto host = std::make_shared<JobHost>(make_host(context), job, budget);
    // A task's status notification goes to the client that made it; plain jobs keep no context.
    std::optional<mcp::CallContext> task_client;
    if (context.task()) {
        job->set_task(task_ttl(context));
        task_client = context;
        wait = std::chrono::milliseconds(0);
    }
    const bool at_once = wait.count() == 0;
    if (at_once) {  // start_job: the handle, whatever happens next (added before the code can end)
        (void)budget->claim();
        jobs_->add(job);
        host->detach();
    }
    std::weak_ptr<DeadlineTimer> timer = budget_timer_;
    auto jobs = jobs_;
    // Weak: the budget keeps this callback, which must not keep the budget (the completion does).
    budget->on_due = [job, host, weak = std::weak_ptr<Budget>(budget), answer, jobs] {
        auto budget = weak.lock();
        if (!budget || !budget->spent() || !budget->claim()) return;
        jobs->add(job);
        host->detach();
        answer(job_report(*job, 0, true));
    };
    budget->timers = budget_timer_;
    try {
        engine_.submit(req, host, [req, note, host, job, budget, answer, jobs, timer, task_client,
                                   overflow = options_.overflow](engine::ExecOutcome o) {
            JobState state = job_state_of(o.status);
            json result = format(req, std::move(o), note, overflow.get());
            if (budget->claim()) {  // within the budget: answered as without jobs
                uint64_t id = std::exchange(budget->timer, 0);  // claim() ordered this against the scheduler
                if (auto t = timer.lock(); t && id) t->cancel(id);
                host->finish();  // live output that waits goes before the result, on this thread
                answer(std::move(result));
                return;
            }
            job->finish(state, std::move(result));
            jobs->prune();
            if (task_client) task_client->notify("notifications/tasks/status", task_info(*job, {}).to_json());
        });
    } catch (const engine::EngineError& e) {
        if (at_once) jobs_->remove(job->id());
        throw ToolError(e.what());
    }
    if (at_once) {
        if (!task_client) answer(job_report(*job, 0, true));
        return job;
    }
    std::lock_guard lock(budget->mutex);
    if (budget->answered) return job;  // ended already
    budget->deadline = DeadlineTimer::Clock::now() + wait;
    budget->timer = budget_timer_->schedule(budget->deadline, budget->on_due);
    return job;
}

// ================================================================================================
// Tasks (2025-11-25 tasks utility): a task-augmented call becomes a task job at once. execute,
// start_job and run_script run as the job's execution (no wait budget); any other operation runs
// on a request thread and its result ends the job. A call that cannot start (bad arguments, the
// engine refusing) is still answered with a task, which has failed with that error: the client
// asked for a CreateTaskResult, and tasks/result gives it the error as the call would have.
// ================================================================================================

std::shared_ptr<mcp::TaskBackend> PythonTool::task_backend() const {
    return std::make_shared<JobTasks>(jobs_, options_.task_poll_interval);
}

std::chrono::milliseconds PythonTool::task_ttl(const mcp::CallContext& context) const {
    auto asked = context.task() && context.task()->ttl ? *context.task()->ttl : options_.task_default_ttl;
    return std::clamp(asked, std::chrono::milliseconds(1000), options_.task_max_ttl);
}

std::shared_ptr<Job> PythonTool::new_task_job(const mcp::CallContext& context, std::string session_id) const {
    auto job = std::make_shared<Job>(jobs_->next_id(), std::move(session_id), false, options_.default_max_output,
                                     CancellationSource(context.cancellation()));
    job->set_task(task_ttl(context));
    jobs_->add(job);
    return job;
}

namespace {

// What an exception thrown by an operation would have answered (ToolCall::map_exception's rules
// for results).
json result_of_exception(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const ToolError& e) {
        return !e.result().is_null() ? e.result() : mcp::error_result(e.what());
    } catch (const std::exception& e) {
        return mcp::error_result(std::string("Tool 'python' failed: ") + e.what());
    } catch (...) {
        return mcp::error_result("Tool 'python' failed");
    }
}

}  // namespace

json PythonTool::start_task(const mcp::ToolCall& call) {
    mcp::CallContext& context = call.context();
    ToolInput fields(call.arguments());
    const json& input = fields.fields();
    std::string op = get_string(input, "operation").value_or(input.contains("code") ? "execute" : "");
    try {
        if (op == "execute" || op == "start_job" || op == "run_script") {
            (void)check_fields(input, op);
            options_.gate.check(input, options_.readme);
            std::string code, filename;
            if (op == "run_script") {
                std::string name = require_string(input, "filename", "for run_script");
                code = scripts_.read_code(name);
                filename = scripts_.existing_path(name).string();
            } else {
                code = require_string(input, "code", "for " + op);
            }
            auto req = make_request(input, code, filename, context);
            std::string note = notes_for(input, req);
            auto job = start_execution(std::move(req), std::move(note), context, std::chrono::milliseconds(0), [](json) {});
            return mcp::create_task_result(task_info(*job, options_.task_poll_interval));
        }
    } catch (...) {
        auto job = new_task_job(context, "");
        job->finish(JobState::Failed, result_of_exception(std::current_exception()));
        return mcp::create_task_result(task_info(*job, options_.task_poll_interval));
    }
    // Any other operation: its answer is the task's result.
    auto job = new_task_job(context, get_string(input, "session_id").value_or(""));
    auto run = [this, job, call] {
        json result;
        try {
            result = this->call(call.arguments(), call.context());
        } catch (...) {
            result = result_of_exception(std::current_exception());
        }
        const bool failed = result.value("isError", false);
        job->finish(failed ? JobState::Failed : JobState::Succeeded, std::move(result));
        jobs_->prune();
        call.context().notify("notifications/tasks/status", task_info(*job, {}).to_json());
    };
    if (!call.offload(run))
        job->finish(JobState::Failed, mcp::error_result("the server cannot start a thread for this task right now; it did not run"));
    return mcp::create_task_result(task_info(*job, options_.task_poll_interval));
}

std::shared_ptr<Job> PythonTool::find_job(const json& input) const {
    std::string id = require_string(input, "job_id", "for this operation");
    auto job = jobs_->find(id);
    if (!job)
        throw ToolError("there is no job '" + quoted_name(id) + "': list_jobs shows the jobs kept (the last " +
                        std::to_string(options_.job_history) + " finished ones and all running ones)");
    return job;
}

json PythonTool::list_jobs() const {
    json list = json::array();
    std::string text;
    for (const auto& job : jobs_->list()) {
        double elapsed = round3(job->elapsed_seconds());
        list.push_back(json{{"job_id", job->id()},
                            {"session_id", job->session_id()},
                            {"state", job_state_name(job->state())},
                            {"elapsed", elapsed},
                            {"output_bytes", job->output_bytes()}});
        text += job->id() + ": " + job_state_name(job->state()) + ", " + seconds_text(elapsed) +
                " s, session '" + job->session_id() + "', " + std::to_string(job->output_bytes()) + " bytes of output\n";
    }
    size_t count = list.size();
    return mcp::tool_result(text.empty() ? "No jobs." : text, json{{"jobs", std::move(list)}, {"count", count}});
}

json PythonTool::job_operation(const std::string& op, const json& input, mcp::CallContext& context) {
    if (op == "list_jobs") return list_jobs();
    auto job = find_job(input);
    size_t since = 0;
    if (auto o = get_integer(input, "since_offset")) {
        if (*o < 0) throw ToolError("'since_offset' must be 0 or more (a byte offset: the last answer's next_offset)");
        since = static_cast<size_t>(*o);
    }
    if (op == "cancel_job") {
        bool sent = job->cancel();
        // The engine answers a cancelled execution at once; code that ignores the interrupt (a
        // long C call) is reported as still running.
        job->wait_until(Job::Clock::now() + std::chrono::seconds(5));
        json r = job_report(*job, since, false);
        r["structuredContent"]["cancel_sent"] = sent;
        return r;
    }
    if (op == "wait_job") {
        auto deadline = Job::Clock::now() + wait_field(input);
        const auto& cancel = context.cancellation();
        // In slices, so the client's cancellation of wait_job ends the wait (not the job).
        while (!job->wait_until(std::min(deadline, Job::Clock::now() + std::chrono::milliseconds(100))) &&
               Job::Clock::now() < deadline && !cancel.cancelled()) {
        }
    }
    return job_report(*job, since, false);
}

}  // namespace pymcp::tools
