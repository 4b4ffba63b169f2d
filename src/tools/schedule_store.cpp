#include "python_mcp/tools/schedule_store.hpp"

#include <sqlite3.h>

#include "python_mcp/support/json.hpp"

namespace pymcp::tools {

namespace {

// One prepared statement, finalized on scope exit. Throws ScheduleStoreError.
class Statement {
public:
    Statement(sqlite3* db, const char* sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) throw error();
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
    Statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
    Statement& bind(int i, const std::string& v) {
        return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    template <typename T>
    Statement& bind(int i, const std::optional<T>& v) {
        return v ? bind(i, *v) : check(sqlite3_bind_null(stmt_, i));
    }
    // True while there is a row.
    bool step() {
        int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw error();
    }
    int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
    double real(int col) const { return sqlite3_column_double(stmt_, col); }
    bool null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    std::string text(int col) const {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
    }
    std::optional<std::string> opt_text(int col) const { return null(col) ? std::nullopt : std::optional(text(col)); }
    std::optional<double> opt_real(int col) const { return null(col) ? std::nullopt : std::optional(real(col)); }

private:
    Statement& check(int rc) {
        if (rc != SQLITE_OK) throw error();
        return *this;
    }
    ScheduleStoreError error() const { return ScheduleStoreError(sqlite3_errmsg(db_)); }

    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when the scope is left by an exception.
class Transaction {
public:
    explicit Transaction(sqlite3* db) : db_(db) { run("BEGIN IMMEDIATE"); }
    ~Transaction() {
        if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() {
        run("COMMIT");
        done_ = true;
    }

private:
    void run(const char* sql) {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) throw ScheduleStoreError(sqlite3_errmsg(db_));
    }
    sqlite3* db_;
    bool done_ = false;
};

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS schedules(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  script TEXT NOT NULL,
  every_seconds REAL,
  cron TEXT,
  session_id TEXT,
  args TEXT NOT NULL DEFAULT '[]',
  timeout_seconds REAL,
  created_at TEXT NOT NULL,
  anchor_unix REAL NOT NULL,
  next_run_at TEXT,
  skipped INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS runs(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  schedule_id INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  started_unix REAL NOT NULL,
  duration_ms REAL,
  status TEXT NOT NULL,
  output TEXT NOT NULL DEFAULT '',
  result TEXT,
  error TEXT);
CREATE INDEX IF NOT EXISTS runs_by_schedule ON runs(schedule_id, id);
)sql";

}  // namespace

ScheduleStore::ScheduleStore(std::filesystem::path path, size_t runs_kept)
    : path_(std::move(path)), runs_kept_(runs_kept == 0 ? 1 : runs_kept) {
    const std::string where = "the schedules database " + path_.string() + ": ";
    int rc = sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    try {
        if (rc != SQLITE_OK) throw ScheduleStoreError(db_ ? sqlite3_errmsg(db_) : "cannot open");
        sqlite3_busy_timeout(db_, 5000);  // a reader holding the file (the sqlite tool) for a moment
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");
        {
            Statement check(db_, "PRAGMA quick_check");
            if (check.step() && check.text(0) != "ok") throw ScheduleStoreError("damaged: " + check.text(0));
        }
        create_tables();
    } catch (const ScheduleStoreError& e) {
        sqlite3_close(db_);
        db_ = nullptr;
        throw ScheduleStoreError(where + e.what());
    }
}

ScheduleStore::~ScheduleStore() { sqlite3_close(db_); }

void ScheduleStore::exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        std::string text = message ? message : sqlite3_errmsg(db_);
        sqlite3_free(message);
        throw ScheduleStoreError(text);
    }
}

void ScheduleStore::create_tables() {
    Transaction tx(db_);
    exec(kSchema);
    // Runs a dead process left open: it was cut off (kill -9, a crash, a power cut).
    exec("UPDATE runs SET status = 'interrupted' WHERE status = 'running'");
    interrupted_at_open_ = static_cast<size_t>(sqlite3_changes(db_));
    tx.commit();
}

int64_t ScheduleStore::add(const ScheduleRow& row) {
    std::lock_guard lock(mutex_);
    Statement s(db_, "INSERT INTO schedules(script, every_seconds, cron, session_id, args, timeout_seconds, created_at, "
                     "anchor_unix) VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, row.script).bind(2, row.every_seconds);
    s.bind(3, row.cron.empty() ? std::optional<std::string>() : std::optional(row.cron));
    s.bind(4, row.session_id).bind(5, pymcp::json(row.args).dump()).bind(6, row.timeout_seconds);
    s.bind(7, row.created_at).bind(8, row.anchor_unix);
    s.step();
    return sqlite3_last_insert_rowid(db_);
}

bool ScheduleStore::remove(int64_t id) {
    std::lock_guard lock(mutex_);
    Transaction tx(db_);
    Statement(db_, "DELETE FROM runs WHERE schedule_id = ?").bind(1, id).step();
    Statement s(db_, "DELETE FROM schedules WHERE id = ?");
    s.bind(1, id).step();
    bool removed = sqlite3_changes(db_) > 0;
    tx.commit();
    return removed;
}

std::vector<ScheduleRow> ScheduleStore::list() {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT id, script, every_seconds, cron, session_id, args, timeout_seconds, created_at, "
                     "anchor_unix, skipped FROM schedules ORDER BY id");
    std::vector<ScheduleRow> rows;
    while (s.step()) {
        ScheduleRow r;
        r.id = s.integer(0);
        r.script = s.text(1);
        r.every_seconds = s.opt_real(2);
        r.cron = s.text(3);
        r.session_id = s.opt_text(4);
        auto args = pymcp::json::parse(s.text(5), nullptr, false);
        if (args.is_array())
            for (const auto& a : args)
                if (a.is_string()) r.args.push_back(a.get<std::string>());
        r.timeout_seconds = s.opt_real(6);
        r.created_at = s.text(7);
        r.anchor_unix = s.real(8);
        r.skipped = s.integer(9);
        rows.push_back(std::move(r));
    }
    return rows;
}

void ScheduleStore::set_next_run(int64_t id, const std::string& at) {
    std::lock_guard lock(mutex_);
    Statement(db_, "UPDATE schedules SET next_run_at = ? WHERE id = ?").bind(1, at).bind(2, id).step();
}

void ScheduleStore::add_skipped(int64_t id, int64_t ticks) {
    std::lock_guard lock(mutex_);
    Statement(db_, "UPDATE schedules SET skipped = skipped + ? WHERE id = ?").bind(1, ticks).bind(2, id).step();
}

int64_t ScheduleStore::begin_run(int64_t schedule_id, const std::string& started_at, double started_unix) {
    std::lock_guard lock(mutex_);
    Statement s(db_, "INSERT INTO runs(schedule_id, started_at, started_unix, status) VALUES(?, ?, ?, 'running')");
    s.bind(1, schedule_id).bind(2, started_at).bind(3, started_unix).step();
    return sqlite3_last_insert_rowid(db_);
}

void ScheduleStore::end_run(int64_t run_id, int64_t schedule_id, const RunRow& o) {
    std::lock_guard lock(mutex_);
    Transaction tx(db_);
    Statement s(db_, "UPDATE runs SET duration_ms = ?, status = ?, output = ?, result = ?, error = ? WHERE id = ?");
    s.bind(1, o.duration_ms).bind(2, o.status).bind(3, o.output).bind(4, o.result).bind(5, o.error).bind(6, run_id);
    s.step();
    // The newest runs_kept runs stay; ids grow with time.
    Statement prune(db_, "DELETE FROM runs WHERE schedule_id = ?1 AND id <= (SELECT id FROM runs WHERE schedule_id = ?1 "
                         "ORDER BY id DESC LIMIT 1 OFFSET ?2)");
    prune.bind(1, schedule_id).bind(2, static_cast<int64_t>(runs_kept_)).step();
    tx.commit();
}

std::vector<RunRow> ScheduleStore::recent_runs(int64_t schedule_id, size_t count) {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT id, started_at, duration_ms, status, output, result, error FROM runs "
                     "WHERE schedule_id = ? ORDER BY id DESC LIMIT ?");
    s.bind(1, schedule_id).bind(2, static_cast<int64_t>(count));
    std::vector<RunRow> rows;
    while (s.step()) {
        RunRow r;
        r.id = s.integer(0);
        r.schedule_id = schedule_id;
        r.started_at = s.text(1);
        r.duration_ms = s.opt_real(2);
        r.status = s.text(3);
        r.output = s.text(4);
        r.result = s.opt_text(5);
        r.error = s.opt_text(6);
        rows.push_back(std::move(r));
    }
    return rows;
}

}  // namespace pymcp::tools
