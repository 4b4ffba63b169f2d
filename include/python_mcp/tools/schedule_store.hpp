#pragma once
// The schedules database (issue 13): <data dir>/schedules.sqlite3, two tables, readable by any
// SQLite client (Python's sqlite3, the built-in sqlite tool as database 'schedules.sqlite3').
//
//   schedules(id INTEGER PRIMARY KEY, script TEXT, every_seconds REAL NULL, cron TEXT NULL,
//             session_id TEXT NULL, args TEXT (JSON list), timeout_seconds REAL NULL,
//             created_at TEXT, anchor_unix REAL, next_run_at TEXT NULL, skipped INTEGER)
//   runs(id INTEGER PRIMARY KEY, schedule_id INTEGER, started_at TEXT, started_unix REAL,
//        duration_ms REAL NULL, status TEXT, output TEXT, result TEXT NULL, error TEXT NULL)
//
// Times are ISO 8601 UTC text ("2026-01-02T03:04:05.678Z"); status is running, success, failure,
// timeout or interrupted. A run row is written when the run starts (status 'running', no
// duration) and closed when it ends, so a run cut off by a crash is still 'running' at the next
// start, where open() marks it 'interrupted'. Each schedule keeps its last `runs_kept` runs.
//
// WAL, synchronous=NORMAL (a kill -9 loses nothing committed; a power cut may lose the last
// commit), every change one transaction. Thread-safe: one connection behind mutex_ (a leaf lock).
// Throws ScheduleStoreError with the path and SQLite's message.

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;

namespace pymcp::tools {

class ScheduleStoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ScheduleRow {
    int64_t id = 0;
    std::string script;
    std::optional<double> every_seconds;
    std::string cron;                       // "" when every_seconds is set
    std::optional<std::string> session_id;  // none: a fresh namespace per run
    std::vector<std::string> args;
    std::optional<double> timeout_seconds;
    std::string created_at;
    double anchor_unix = 0;  // interval schedules tick at anchor + k * every
    int64_t skipped = 0;     // ticks that fell due while the previous run still went on
};

struct RunRow {
    int64_t id = 0;
    int64_t schedule_id = 0;
    std::string started_at;
    std::optional<double> duration_ms;
    std::string status;
    std::string output;
    std::optional<std::string> result;
    std::optional<std::string> error;
};

class ScheduleStore {
public:
    // Opens (creating when missing) and checks the database, and marks runs left 'running' by a
    // process that died as 'interrupted' (their number: interrupted_at_open()).
    ScheduleStore(std::filesystem::path path, size_t runs_kept);
    ~ScheduleStore();
    ScheduleStore(const ScheduleStore&) = delete;
    ScheduleStore& operator=(const ScheduleStore&) = delete;

    const std::filesystem::path& path() const { return path_; }
    size_t interrupted_at_open() const { return interrupted_at_open_; }

    int64_t add(const ScheduleRow& row);  // returns the new id (ids are never reused)
    bool remove(int64_t id);              // with its runs; false when there was none
    std::vector<ScheduleRow> list();
    void set_next_run(int64_t id, const std::string& at);
    void add_skipped(int64_t id, int64_t ticks);

    int64_t begin_run(int64_t schedule_id, const std::string& started_at, double started_unix);
    // Closes the run and drops the schedule's runs past runs_kept, in one transaction.
    void end_run(int64_t run_id, int64_t schedule_id, const RunRow& outcome);
    std::vector<RunRow> recent_runs(int64_t schedule_id, size_t count);  // newest first

private:
    void exec(const char* sql);
    void create_tables();

    const std::filesystem::path path_;
    const size_t runs_kept_;
    std::mutex mutex_;
    sqlite3* db_ = nullptr;  // GUARDED_BY(mutex_) once constructed
    size_t interrupted_at_open_ = 0;
};

}  // namespace pymcp::tools
