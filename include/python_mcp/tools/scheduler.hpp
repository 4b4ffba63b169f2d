#pragma once
// Schedules (issue 13): saved scripts run every N seconds or on a cron expression, through the
// same Engine path as run_script, their outcomes stored in a ScheduleStore.
//
// One scheduler thread sleeps on a condition variable until the earliest due time; add() and
// remove() wake it, stop() ends it (no polling). A due schedule gets a run row, then its
// ExecRequest goes to Engine::submit with a host that has no client (output kept in the outcome,
// mcp.call through the registry, progress dropped); the engine's completion closes the row and
// computes the next due time. A schedule never runs twice at once: ticks that fall due while its
// run goes on are skipped and counted (schedules.skipped); the next run is the first tick after
// the run ended. Ticks missed while no server ran are not caught up.
//
// start() returns at once: the scheduler thread opens the store (creating it, checking it, marking
// runs a dead server cut off), takes the lock below and re-arms the schedules, so start-up never
// waits for SQLite; add/remove/list wait until that is done.
//
// At most one process runs a data dir's schedules: opening takes an flock on
// <db>.lock (released by the kernel even on kill -9); a second server gets schedules off with
// the reason, so nothing runs twice across processes either.
//
// Threads: the scheduler thread, engine completion threads, request threads (add/remove/list).
// Lock order: Core::mutex -> nothing (the store's lock is taken only with Core::mutex released);
// Core::open_mutex is a leaf.
// Engine::submit and the store are called without Core::mutex. Completions hold a shared_ptr to
// the core, so a completion after stop() is harmless. Throws mcp::ToolError for bad requests.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "python_mcp/engine/engine.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/json.hpp"
#include "python_mcp/tools/schedule_store.hpp"
#include "python_mcp/tools/script_store.hpp"

namespace pymcp::tools {

struct SchedulerOptions {
    std::filesystem::path database;  // <data dir>/schedules.sqlite3
    bool enabled = true;             // false: --no-schedules
    std::chrono::milliseconds default_timeout{60000};
    size_t max_output = 64 * 1024;  // bytes of each run's output kept (head and tail)
    size_t runs_kept = 100;         // per schedule
    double min_interval = 1.0;      // seconds (--min-schedule-interval)
};

// What schedule_script asks for, checked by Scheduler::add.
struct ScheduleRequest {
    std::string script;
    std::optional<double> every;
    std::string cron;
    std::optional<std::string> session_id;
    std::vector<std::string> args;
    std::optional<double> timeout;
};

struct ScheduleInfo {
    ScheduleRow row;
    std::string next_run;  // ISO 8601 UTC, "" when none
    bool running = false;
};

class Scheduler {
public:
    Scheduler(SchedulerOptions options, engine::Engine& engine, ScriptStore& scripts, const mcp::ToolRegistry& registry);
    ~Scheduler();  // stop()
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Starts the thread, which opens the database and re-arms the stored schedules. Never throws:
    // a database that cannot be used is logged and leaves schedules off (unavailable() says why).
    void start();
    // Ends the thread; runs in flight finish on their own (their rows are closed by them).
    void stop();

    // Why schedule operations cannot be used ("" when they can).
    std::string unavailable() const;
    std::filesystem::path database() const;

    // Checks and stores the schedule, arms it; its id and next run. Throws mcp::ToolError.
    ScheduleInfo add(const ScheduleRequest& request);
    // Disarms and deletes it with its runs; interrupts a run in progress. False when unknown.
    bool remove(int64_t id);
    std::vector<ScheduleInfo> list() const;
    std::vector<RunRow> recent_runs(int64_t id, size_t count) const;

private:
    struct Core;
    std::shared_ptr<Core> core_;
};

}  // namespace pymcp::tools
