#include "python_mcp/tools/schedule_ops.hpp"

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/tools/tool_args.hpp"

namespace pymcp::tools {

using mcp::ToolError;

namespace {

constexpr size_t kRunsShown = 5;        // runs per schedule in list_schedules
constexpr size_t kOutputShown = 2000;   // bytes of each shown run's output (the table has more)

std::string cut(const std::string& text, size_t limit) {
    if (text.size() <= limit) return text;
    size_t head = limit / 2, tail = text.size() - limit / 2;
    while (head > 0 && (static_cast<unsigned char>(text[head]) & 0xC0) == 0x80) --head;
    while (tail < text.size() && (static_cast<unsigned char>(text[tail]) & 0xC0) == 0x80) ++tail;
    return text.substr(0, head) + "\n... [" + std::to_string(tail - head) + " bytes cut; the runs table has them] ...\n" +
           text.substr(tail);
}

std::vector<std::string> string_list(const json& input, const char* key) {
    std::vector<std::string> out;
    auto it = input.find(key);
    if (it == input.end() || it->is_null()) return out;
    if (!it->is_array()) throw ToolError(std::string("'") + key + "' must be a list of strings: the script's sys.argv[1:]");
    for (const auto& a : *it) {
        if (!a.is_string()) throw ToolError(std::string("'") + key + "' must be a list of strings");
        out.push_back(a.get<std::string>());
    }
    return out;
}

ScheduleRequest request_from(const json& input) {
    ScheduleRequest r;
    r.script = require_string(input, "filename", "for schedule_script (a saved script's name, see list_scripts)");
    r.every = get_number(input, "every");
    r.cron = get_string(input, "cron").value_or("");
    if (input.contains("cron") && !input["cron"].is_null() && r.cron.empty()) throw ToolError("'cron' is empty");
    r.session_id = get_string(input, "session_id");
    r.timeout = get_number(input, "timeout");
    r.args = string_list(input, "args");
    if (r.args.empty()) r.args = string_list(input, "argv");
    return r;
}

json run_json(const RunRow& r) {
    return json{{"run_id", r.id},
                {"started_at", r.started_at},
                {"duration_ms", r.duration_ms ? json(*r.duration_ms) : json(nullptr)},
                {"status", r.status},
                {"output", cut(r.output, kOutputShown)},
                {"result", r.result ? json(*r.result) : json(nullptr)},
                {"error", r.error ? json(cut(*r.error, kOutputShown)) : json(nullptr)}};
}

json schedule_json(const ScheduleInfo& s) {
    const ScheduleRow& r = s.row;
    return json{{"schedule_id", r.id},
                {"filename", r.script},
                {"every", r.every_seconds ? json(*r.every_seconds) : json(nullptr)},
                {"cron", r.cron.empty() ? json(nullptr) : json(r.cron)},
                {"session_id", r.session_id ? json(*r.session_id) : json(nullptr)},
                {"args", r.args},
                {"timeout", r.timeout_seconds ? json(*r.timeout_seconds) : json(nullptr)},
                {"created_at", r.created_at},
                {"next_run", s.next_run.empty() ? json(nullptr) : json(s.next_run)},
                {"running", s.running},
                {"skipped", r.skipped}};
}

std::string when(const ScheduleRow& r) {
    if (!r.cron.empty()) return "cron '" + r.cron + "' (server local time)";
    char buf[48];
    std::snprintf(buf, sizeof buf, "every %g s", *r.every_seconds);
    return buf;
}

const char* const kTables =
    "Tables: schedules(id, script, every_seconds, cron, session_id, args, timeout_seconds, created_at, anchor_unix, "
    "next_run_at, skipped) and runs(id, schedule_id, started_at, started_unix, duration_ms, status, output, result, "
    "error); status is running, success, failure, timeout or interrupted; times are ISO 8601 UTC.";

json list_schedules(Scheduler& s) {
    json list = json::array();
    std::string text;
    for (const auto& info : s.list()) {
        json entry = schedule_json(info);
        json runs = json::array();
        text += "schedule " + std::to_string(info.row.id) + ": " + info.row.script + ", " + when(info.row) +
                (info.row.session_id ? ", session '" + *info.row.session_id + "'" : "") +
                (info.running ? ", running now" : info.next_run.empty() ? "" : ", next run " + info.next_run) +
                (info.row.skipped ? ", " + std::to_string(info.row.skipped) + " tick(s) skipped (a run was still going)" : "") + "\n";
        for (const auto& run : s.recent_runs(info.row.id, kRunsShown)) {
            runs.push_back(run_json(run));
            char ms[32];
            std::snprintf(ms, sizeof ms, "%.0f ms", run.duration_ms.value_or(0));
            text += "  " + run.started_at + " " + run.status + (run.duration_ms ? std::string(", ") + ms : "") +
                    (run.result ? ", result " + cut(*run.result, 200) : "") +
                    (run.error ? ", " + cut(run.error->substr(0, run.error->find('\n')), 200) : "") + "\n";
        }
        entry["runs"] = std::move(runs);
        list.push_back(std::move(entry));
    }
    size_t count = list.size();
    std::string db = s.database().string();
    if (text.empty()) text = "No schedules.\n";
    text += "Every run is stored in " + db + " (read it with sqlite3 in Python, or mcp.call('sqlite', {'database': "
            "'schedules.sqlite3', 'sql': ...})). " + kTables;
    return mcp::tool_result(text, json{{"schedules", std::move(list)}, {"count", count}, {"database", db}});
}

}  // namespace

bool is_schedule_operation(const std::string& op) {
    return op == "schedule_script" || op == "list_schedules" || op == "unschedule";
}

json schedule_operation(Scheduler* scheduler, const std::string& op, const json& input) {
    if (!scheduler) throw ToolError("schedules are not available in this server");
    if (op == "list_schedules") return list_schedules(*scheduler);
    if (op == "unschedule") {
        auto id = get_integer(input, "schedule_id");
        if (!id) throw ToolError("'schedule_id' is required for unschedule (list_schedules shows the ids)");
        if (!scheduler->remove(*id))
            throw ToolError("there is no schedule " + std::to_string(*id) + " (list_schedules shows them)");
        return mcp::tool_result("Unscheduled " + std::to_string(*id) + " (its runs were deleted with it)",
                                json{{"schedule_id", *id}, {"deleted", true}});
    }
    auto info = scheduler->add(request_from(input));
    json r = schedule_json(info);
    r["database"] = scheduler->database().string();
    std::string text = "Scheduled " + info.row.script + " " + when(info.row) + " as schedule " +
                       std::to_string(info.row.id) + "; next run " + (info.next_run.empty() ? "none" : info.next_run) +
                       " (UTC). Follow it with list_schedules; stop it with unschedule.";
    return mcp::tool_result(text, r);
}

}  // namespace pymcp::tools
