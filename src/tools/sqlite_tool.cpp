#include "python_mcp/tools/sqlite_tool.hpp"

#include <sqlite3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "python_mcp/support/json_text.hpp"
#include "python_mcp/support/paths.hpp"

namespace pymcp::tools {

namespace fs = std::filesystem;
using mcp::json;
using mcp::ToolError;

namespace {

constexpr const char* kToolName = "sqlite";
constexpr int kConnectionsPerFile = 4;      // WAL: any number of readers, one writer at a time
constexpr size_t kMaxOpenDatabases = 16;   // files with a pool of connections kept open
constexpr size_t kStatementCacheSize = 64;  // per connection; whole single-statement SQL only
constexpr size_t kCacheableSqlBytes = 4096;
constexpr int kProgressEveryOps = 1000;  // VM instructions between cancellation checks
constexpr auto kPoolWaitSlice = std::chrono::milliseconds(10);
constexpr size_t kMaxDatabaseFileNameBytes = 255 - 8;  // room for the "-journal" suffix

[[noreturn]] void throw_cancelled() { throw ToolError("cancelled"); }

// ---------------------------------------------------------------------------------------------
// Text helpers

constexpr char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void append_base64(std::string& out, const unsigned char* p, size_t n) {
    out.reserve(out.size() + (n + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
        out += kBase64Alphabet[v >> 18];
        out += kBase64Alphabet[(v >> 12) & 63];
        out += kBase64Alphabet[(v >> 6) & 63];
        out += kBase64Alphabet[v & 63];
    }
    if (i == n) return;
    uint32_t v = uint32_t(p[i]) << 16 | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0);
    out += kBase64Alphabet[v >> 18];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += i + 1 < n ? kBase64Alphabet[(v >> 6) & 63] : '=';
    out += '=';
}

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;  // '-' and '_': the URL-safe alphabet, which Python also writes
    if (c == '/' || c == '_') return 63;
    return -1;
}

// Standard or URL-safe alphabet, padding optional, whitespace ignored.
std::optional<std::string> decode_base64(std::string_view text) {
    std::string out;
    out.reserve(text.size() / 4 * 3);
    uint32_t acc = 0;
    int bits = 0;
    bool padding = false;
    for (char c : text) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') { padding = true; continue; }
        int v = base64_value(c);
        if (v < 0 || padding) return std::nullopt;
        acc = ((acc << 6) | uint32_t(v)) & 0xFFFFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xFF);
        }
    }
    if (bits >= 6) return std::nullopt;  // a lone trailing character carries no whole byte
    return out;
}

// A user-given name as quoted in messages: control characters (a NUL would end what()) as \xNN.
std::string printable(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (char c : sanitize_utf8(s)) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u != 0x7F) {
            out += c;
            continue;
        }
        out += "\\x";
        out += hex[u >> 4];
        out += hex[u & 15];
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// SQL text

// Skips blanks, comments and stray ';': what follows is the next statement, if any.
const char* skip_blank(const char* p, const char* end) {
    while (p < end) {
        unsigned char c = static_cast<unsigned char>(*p);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == ';') {
            ++p;
        } else if (c == '-' && p + 1 < end && p[1] == '-') {
            p = std::find(p + 2, end, '\n');
        } else if (c == '/' && p + 1 < end && p[1] == '*') {
            static constexpr std::string_view kClose = "*/";
            const char* close = std::search(p + 2, end, kClose.begin(), kClose.end());
            p = close == end ? end : close + 2;
        } else {
            break;
        }
    }
    return p;
}

bool starts_with_keyword(const char* p, const char* end, std::string_view keyword) {
    if (size_t(end - p) < keyword.size()) return false;
    for (size_t i = 0; i < keyword.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(p[i])) != keyword[i]) return false;
    if (p + keyword.size() == end) return true;
    unsigned char next = static_cast<unsigned char>(p[keyword.size()]);
    return !(std::isalnum(next) || next == '_' || next >= 0x80);
}

// A statement as quoted in error messages: blanks collapsed, cut at a character boundary.
std::string snippet(std::string_view sql, size_t limit = 160) {
    std::string out;
    bool space = false;
    for (char c : sql) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (out.size() >= limit) {
            while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
            if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
            return out + "...";
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    while (!out.empty() && out.back() == ';') out.pop_back();
    return out;
}

// ---------------------------------------------------------------------------------------------
// Where a database lives

struct Location {
    std::string path;  // what sqlite3_open_v2 gets
    std::string key;   // the resolved path: the connection pool's name
    bool in_data_dir;  // opened with NOFOLLOW and switched to WAL
};

bool inside(const fs::path& root, const fs::path& p, bool allow_root) {
    fs::path rel = p.lexically_relative(root);
    if (rel.empty()) return false;
    if (rel == ".") return allow_root;
    return *rel.begin() != "..";
}

std::vector<std::string> split_path(const std::string& name) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (;;) {
        size_t slash = name.find('/', start);
        parts.push_back(name.substr(start, slash - start));
        if (slash == std::string::npos) return parts;
        start = slash + 1;
    }
}

[[noreturn]] void refuse_name(const std::string& name, const std::string& why) {
    throw ToolError("database name '" + printable(name) + "' is refused: " + why +
                    ". Use a plain name such as 'research.db' (sub-folders allowed; no '..', no hidden names), "
                    "an absolute path, or ':memory:'.");
}

// Follows the name one component at a time, resolving symbolic links as it goes, so that no
// link (to a folder or to the file) can lead outside the data folder. Creates missing folders.
Location resolve_in_data_dir(const std::string& name, const fs::path& data_dir) {
    std::vector<std::string> parts = split_path(name);
    for (const std::string& part : parts) {
        std::string why = check_plain_file_name(part);
        // SQLite keeps "<file>-journal", "-wal" and "-shm" beside the file: they must fit in 255 bytes.
        if (why.empty() && &part == &parts.back() && part.size() > kMaxDatabaseFileNameBytes)
            why = "the file name is longer than " + std::to_string(kMaxDatabaseFileNameBytes) + " bytes";
        if (!why.empty()) refuse_name(name, parts.size() > 1 ? "'" + printable(part) + "': " + why : why);
    }
    try {
        ensure_directory(data_dir);
        const fs::path root = fs::canonical(data_dir);
        fs::path at = root;
        for (size_t i = 0; i < parts.size(); ++i) {
            const bool last = i + 1 == parts.size();
            fs::path next = at / parts[i];
            fs::file_status status = fs::symlink_status(next);
            if (fs::is_symlink(status)) {
                std::error_code ec;
                fs::path target = fs::canonical(next, ec);
                if (ec) refuse_name(name, "'" + parts[i] + "' is a symbolic link that points nowhere");
                if (!inside(root, target, !last)) refuse_name(name, "a symbolic link leads outside the data folder");
                next = target;
            } else if (!last && !fs::exists(status)) {
                fs::create_directory(next);
            }
            at = std::move(next);
        }
        return {at.string(), at.string(), true};
    } catch (const fs::filesystem_error& e) {
        throw ToolError("cannot prepare the data folder for database '" + printable(name) + "': " + e.what());
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

// One SQLite connection and what a call needs on it. Used by one thread at a time (the pool
// hands it out); the handlers below run on that thread, inside sqlite3_step.
struct Connection {
    sqlite3* db = nullptr;
    int busy_timeout_ms = 5000;
    int busy_waited_ms = 0;
    const CancellationToken* cancel = nullptr;  // the running call's token; null between calls
    std::unordered_map<std::string, sqlite3_stmt*> statements;  // idle cached statements by SQL

    Connection() = default;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() {
        drop_statements();
        sqlite3_close_v2(db);
    }

    bool cancelled() const { return cancel && cancel->cancelled(); }

    void drop_statements() {
        for (auto& [sql, stmt] : statements) sqlite3_finalize(stmt);
        statements.clear();
    }

    sqlite3_stmt* take_statement(const std::string& sql) {
        auto it = statements.find(sql);
        if (it == statements.end()) return nullptr;
        sqlite3_stmt* stmt = it->second;
        statements.erase(it);
        return stmt;
    }

    void keep_statement(const std::string& sql, sqlite3_stmt* stmt) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);  // drops the SQLITE_STATIC pointers into the finished request
        if (statements.size() >= kStatementCacheSize) drop_statements();
        if (!statements.emplace(sql, stmt).second) sqlite3_finalize(stmt);
    }
};

// Waits for another connection's lock in short sleeps that end at once when the call is
// cancelled (sqlite3_busy_timeout would sleep through a cancellation).
int on_busy(void* arg, int attempt) {
    auto* c = static_cast<Connection*>(arg);
    if (attempt == 0) c->busy_waited_ms = 0;
    int left = c->busy_timeout_ms - c->busy_waited_ms;
    if (left <= 0) return 0;
    int delay = std::min({1 << std::min(attempt, 4), 20, left});
    bool cancelled = false;
    if (c->cancel) cancelled = c->cancel->wait_for(std::chrono::milliseconds(delay));
    else std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    c->busy_waited_ms += delay;
    return cancelled ? 0 : 1;
}

int on_progress(void* arg) { return static_cast<Connection*>(arg)->cancelled() ? 1 : 0; }

void run_pragma(sqlite3* db, const char* sql, const std::string& path) {
    char* error = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK)
        spdlog::debug("sqlite: {} failed on {}: {}", sql, path, error ? error : "?");
    sqlite3_free(error);
}

std::unique_ptr<Connection> open_connection(const std::string& path, int flags, bool wal, int busy_timeout_ms) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        sqlite3_close_v2(db);
        throw ToolError("cannot open database '" + printable(path) + "': " + message);
    }
    auto c = std::make_unique<Connection>();
    c->db = db;
    c->busy_timeout_ms = busy_timeout_ms;
    sqlite3_extended_result_codes(db, 1);
    // Keeps SQL from corrupting the file on purpose (writable_schema and the like).
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, static_cast<int*>(nullptr));
    sqlite3_busy_handler(db, &on_busy, c.get());
    sqlite3_progress_handler(db, kProgressEveryOps, &on_progress, c.get());
    if (wal) {
        // WAL lets readers run beside the one writer; NORMAL sync is safe with WAL (a power cut
        // may lose the last commits, never corrupts) and spares an fsync per call.
        run_pragma(db, "PRAGMA journal_mode=WAL", path);
        run_pragma(db, "PRAGMA synchronous=NORMAL", path);
    }
    spdlog::debug("sqlite: opened a connection to {}", path);
    return c;
}

// The connections of one database. Thread-safe; its mutex is never held while SQL runs.
class Pool {
public:
    Pool(std::string path, int flags, bool wal, int capacity, int busy_timeout_ms)
        : path_(std::move(path)), flags_(flags), wal_(wal), capacity_(capacity), busy_timeout_ms_(busy_timeout_ms) {}

    // Throws ToolError when the database cannot be opened or the call is cancelled while waiting.
    std::unique_ptr<Connection> acquire(const CancellationToken& cancel) {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (!idle_.empty()) {
                auto c = std::move(idle_.back());
                idle_.pop_back();
                return c;
            }
            if (open_ < capacity_) break;
            // Every connection is busy (`:memory:` has only one): wait in slices, so a cancelled
            // call does not sit here behind a long query.
            available_.wait_for(lock, kPoolWaitSlice);
            if (cancel.cancelled()) throw_cancelled();
        }
        ++open_;
        lock.unlock();
        try {
            return open_connection(path_, flags_, wal_, busy_timeout_ms_);
        } catch (...) {
            lock.lock();
            --open_;
            available_.notify_one();
            throw;
        }
    }

    void release(std::unique_ptr<Connection> c) noexcept {
        c->cancel = nullptr;
        if (!sqlite3_get_autocommit(c->db)) {
            // Calls roll back what they leave open; this is the last line of defence, and for
            // `:memory:` closing would throw the shared database away.
            sqlite3_exec(c->db, "ROLLBACK", nullptr, nullptr, nullptr);
        }
        std::unique_ptr<Connection> doomed;
        {
            std::lock_guard lock(mutex_);
            if (sqlite3_get_autocommit(c->db)) {
                idle_.push_back(std::move(c));
            } else {
                --open_;
                doomed = std::move(c);
            }
        }
        available_.notify_one();
        if (doomed) spdlog::warn("sqlite: closed a connection to {} stuck in a transaction", path_);
    }

private:
    const std::string path_;
    const int flags_;
    const bool wal_;
    const int capacity_;
    const int busy_timeout_ms_;
    std::mutex mutex_;
    std::condition_variable available_;
    std::vector<std::unique_ptr<Connection>> idle_;  // GUARDED_BY(mutex_)
    int open_ = 0;                                   // GUARDED_BY(mutex_)
};

// A connection borrowed for one call, with the call's cancellation token installed.
class Lease {
public:
    Lease(std::shared_ptr<Pool> pool, const CancellationToken& cancel)
        : pool_(std::move(pool)), connection_(pool_->acquire(cancel)) {
        connection_->cancel = &cancel;
    }
    ~Lease() { pool_->release(std::move(connection_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& connection() { return *connection_; }

private:
    std::shared_ptr<Pool> pool_;
    std::unique_ptr<Connection> connection_;
};

// ---------------------------------------------------------------------------------------------
// The request

// Built in place and never moved: statements bind pointers into `input`.
struct Request {
    explicit Request(const json& fields);
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;

    const json& input;             // the call's fields: statements bind their strings without copying
    std::vector<std::string> sql;  // one entry per list element (each may hold several statements)
    const json* params = nullptr;    // positional values: flat, or one list per `sql` element
    bool params_per_element = false;
    const json* bindings = nullptr;  // named values
    std::string database = ":memory:";
    std::optional<long long> max_rows;
    bool read_only = false;
};

bool is_list_of_lists(const json& params, size_t elements) {
    if (elements < 2 || !params.is_array() || params.size() != elements) return false;
    return std::all_of(params.begin(), params.end(), [](const json& p) { return p.is_array() || p.is_null(); });
}

Request::Request(const json& fields) : input(fields) {
    Request& r = *this;
    const json& in = r.input;
    auto sql = in.find("sql");
    if (sql == in.end() || sql->is_null())
        throw ToolError("'sql' is required: a statement, or a list of statements run in one transaction "
                        "(operation 'readme' explains the tool)");
    if (sql->is_string()) {
        r.sql.push_back(sql->get<std::string>());
    } else if (sql->is_array() && !sql->empty()) {
        for (size_t i = 0; i < sql->size(); ++i) {
            if (!(*sql)[i].is_string()) throw ToolError("'sql' item " + std::to_string(i) + " must be a string");
            r.sql.push_back((*sql)[i].get<std::string>());
        }
    } else {
        throw ToolError("'sql' must be a string or a non-empty list of strings");
    }

    auto params = in.find("params");
    auto bindings = in.find("bindings");
    if (bindings != in.end() && !bindings->is_null()) {
        if (!bindings->is_object()) throw ToolError("'bindings' must be an object of named values, e.g. {\"name\": 1}");
        r.bindings = &*bindings;
    }
    if (params != in.end() && !params->is_null()) {
        if (params->is_object()) {
            // Named values given as `params` (Python's sqlite3 takes a dict there too).
            if (r.bindings) throw ToolError("named values go in 'bindings' or in 'params', not both");
            r.bindings = &*params;
        } else if (params->is_array()) {
            r.params = &*params;
            r.params_per_element = is_list_of_lists(*params, r.sql.size());
        } else {
            throw ToolError("'params' must be a list of values (or an object of named values)");
        }
    }

    if (auto db = get_string(in, "database")) r.database = *db;
    r.max_rows = get_integer(in, "max_rows");
    if (r.max_rows && *r.max_rows < 0) throw ToolError("'max_rows' must be 0 (no limit) or more");
    r.read_only = get_bool(in, "read_only").value_or(false);
}

// ---------------------------------------------------------------------------------------------
// Binding values

// Hands each statement its values: positional ones in order from `params` (flat: the statements
// take them one after another; per element: each `sql` element has its own list), named ones
// from `bindings` by name, with or without the :, @ or $ prefix.
class Binder {
public:
    explicit Binder(const Request& request) : request_(request) {}

    void start_element(size_t element) {
        if (request_.params_per_element) {
            const json& list = (*request_.params)[element];
            positional_ = list.is_null() ? nullptr : &list;
            next_ = 0;
        } else if (element == 0) {
            positional_ = request_.params;
        }
        element_ = element;
    }

    void finish_element() {
        if (request_.params_per_element) check_all_used("params[" + std::to_string(element_) + "]");
    }

    void finish() {
        if (!request_.params_per_element) check_all_used("'params'");
    }

    void bind(sqlite3_stmt* stmt, int number) {
        const int count = sqlite3_bind_parameter_count(stmt);
        int positional = 0;
        bool named = false;
        for (int i = 1; i <= count; ++i) {
            const char* name = sqlite3_bind_parameter_name(stmt, i);
            // Unnamed slots below a ?NNN are positional too: SQLite numbers them.
            if (!name || name[0] == '?') positional = i;
            else named = true;
        }
        if (positional && named)
            throw ToolError("statement " + std::to_string(number) +
                            " mixes positional (?) and named (:name) parameters; use one kind");
        if (positional) bind_positional(stmt, number, positional);
        if (named) bind_named(stmt, number, count);
    }

private:
    void bind_positional(sqlite3_stmt* stmt, int number, int needed) {
        size_t have = positional_ ? positional_->size() - std::min(next_, positional_->size()) : 0;
        if (have < size_t(needed))
            throw ToolError("statement " + std::to_string(number) + " has " + std::to_string(needed) +
                            " positional parameter(s) but " + (have ? "only " : "") + std::to_string(have) +
                            " value(s) are left in 'params'");
        for (int i = 1; i <= needed; ++i)
            bind_value(stmt, i, (*positional_)[next_ + i - 1], number, "parameter " + std::to_string(i));
        next_ += size_t(needed);
    }

    void bind_named(sqlite3_stmt* stmt, int number, int count) {
        for (int i = 1; i <= count; ++i) {
            const char* name = sqlite3_bind_parameter_name(stmt, i);
            const json* value = lookup(name);
            if (!value)
                throw ToolError("statement " + std::to_string(number) + " needs a value for " + name +
                                ": add \"" + (name + 1) + "\" to 'bindings'");
            bind_value(stmt, i, *value, number, name);
        }
    }

    const json* lookup(const char* name) const {
        if (!request_.bindings) return nullptr;
        auto it = request_.bindings->find(name);
        if (it == request_.bindings->end()) it = request_.bindings->find(name + 1);
        return it == request_.bindings->end() ? nullptr : &*it;
    }

    void check_all_used(const std::string& what) const {
        if (!positional_ || next_ >= positional_->size()) return;
        throw ToolError(what + " has " + std::to_string(positional_->size()) + " value(s) but the SQL uses only " +
                        std::to_string(next_));
    }

    void bind_value(sqlite3_stmt* stmt, int i, const json& v, int number, const std::string& which) {
        int rc;
        switch (v.type()) {
            case json::value_t::null: rc = sqlite3_bind_null(stmt, i); break;
            case json::value_t::boolean: rc = sqlite3_bind_int64(stmt, i, v.get<bool>() ? 1 : 0); break;
            case json::value_t::number_integer: rc = sqlite3_bind_int64(stmt, i, v.get<int64_t>()); break;
            case json::value_t::number_unsigned: {
                uint64_t u = v.get<uint64_t>();
                rc = u <= uint64_t(INT64_MAX) ? sqlite3_bind_int64(stmt, i, int64_t(u))
                                              : sqlite3_bind_double(stmt, i, double(u));
                break;
            }
            case json::value_t::number_float: rc = sqlite3_bind_double(stmt, i, v.get<double>()); break;
            case json::value_t::string: {
                // The request outlives the statement's use, and keep_statement() clears bindings.
                const auto& s = v.get_ref<const std::string&>();
                rc = sqlite3_bind_text64(stmt, i, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
                break;
            }
            default: rc = bind_structured(stmt, i, v, number, which);
        }
        if (rc != SQLITE_OK)
            throw ToolError("statement " + std::to_string(number) + ": cannot bind " + which + ": " +
                            sqlite3_errmsg(sqlite3_db_handle(stmt)));
    }

    // {"$blob": "<base64>"} is a BLOB; any other object or list is bound as its JSON text, ready
    // for SQLite's JSON functions.
    int bind_structured(sqlite3_stmt* stmt, int i, const json& v, int number, const std::string& which) {
        if (v.is_object() && v.size() == 1 && v.contains("$blob")) {
            const json& b = v["$blob"];
            std::optional<std::string> bytes = b.is_string() ? decode_base64(b.get_ref<const std::string&>()) : std::nullopt;
            if (!bytes)
                throw ToolError("statement " + std::to_string(number) + ": " + which +
                                " has a \"$blob\" that is not base64 text");
            return sqlite3_bind_blob64(stmt, i, bytes->data(), bytes->size(), SQLITE_TRANSIENT);
        }
        std::string text = v.dump();
        return sqlite3_bind_text64(stmt, i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }

    const Request& request_;
    const json* positional_ = nullptr;
    size_t next_ = 0;
    size_t element_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Rows

// The rows of one statement, written straight into both result forms as they are stepped: the
// JSON text of row objects (content[0].text) and the arrays of structuredContent. Going through
// a json object per row and dump() would cost several times more.
class ResultSet {
public:
    ResultSet(sqlite3_stmt* stmt, size_t limit) : limit_(limit), rows_(json::array()) {
        const int n = sqlite3_column_count(stmt);
        for (int c = 0; c < n; ++c) {
            const char* name = sqlite3_column_name(stmt, c);
            std::string column = sanitize_utf8(name ? name : "");
            std::string key = c ? "," : "";
            append_json_string(key, column.data(), column.size());
            key += ':';
            keys_.push_back(std::move(key));
            columns_.push_back(std::move(column));
        }
        text_ = "[";
    }

    bool full() const { return limit_ && count_ >= limit_; }
    void mark_truncated() { truncated_ = true; }
    bool truncated() const { return truncated_; }
    size_t count() const { return count_; }

    void add_row(sqlite3_stmt* stmt) {
        json row = json::array();
        auto& cells = row.get_ref<json::array_t&>();
        cells.reserve(keys_.size());
        text_ += count_ ? ",{" : "{";
        for (size_t c = 0; c < keys_.size(); ++c) {
            text_ += keys_[c];
            cells.push_back(read_cell(stmt, int(c)));
        }
        text_ += '}';
        rows_.get_ref<json::array_t&>().push_back(std::move(row));
        ++count_;
    }

    std::string take_text() {
        text_ += ']';
        return std::move(text_);
    }
    json take_rows() { return std::move(rows_); }
    json take_columns() {
        json columns(json::value_t::array);
        auto& names = columns.get_ref<json::array_t&>();
        names.reserve(columns_.size());
        for (auto& c : columns_) names.emplace_back(std::move(c));
        return columns;
    }

private:
    json read_cell(sqlite3_stmt* stmt, int c) {
        switch (sqlite3_column_type(stmt, c)) {
            case SQLITE_INTEGER: {
                long long v = sqlite3_column_int64(stmt, c);
                append_json_integer(text_, v);
                return v;
            }
            case SQLITE_FLOAT: {
                double v = sqlite3_column_double(stmt, c);
                append_json_real(text_, v);
                return v;
            }
            case SQLITE_TEXT: {
                // column_text before column_bytes: the order the SQLite docs require.
                auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
                size_t n = size_t(sqlite3_column_bytes(stmt, c));
                if (!p) n = 0, p = "";
                bool clean = append_json_string(text_, p, n);
                return clean ? json(std::string(p, n)) : json(sanitize_utf8(p, n));
            }
            case SQLITE_BLOB: {
                auto p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, c));
                size_t n = size_t(sqlite3_column_bytes(stmt, c));
                std::string encoded;
                if (p) append_base64(encoded, p, n);
                text_ += "{\"$blob\":\"";
                text_ += encoded;
                text_ += "\"}";
                json blob = json::object();
                blob["$blob"] = std::move(encoded);
                return blob;
            }
            default:
                text_ += "null";
                return nullptr;
        }
    }

    size_t limit_;
    std::vector<std::string> keys_;  // `"name":` ready to paste, with the comma after the first
    std::vector<std::string> columns_;
    std::string text_;
    json rows_;
    size_t count_ = 0;
    bool truncated_ = false;
};

// ---------------------------------------------------------------------------------------------
// Running a request

// A prepared statement, finalized or handed back to the connection's cache when done.
class Statement {
public:
    Statement(Connection& c, sqlite3_stmt* stmt, std::string cache_key)
        : connection_(c), stmt_(stmt), cache_key_(std::move(cache_key)) {}
    ~Statement() {
        if (cache_key_.empty()) sqlite3_finalize(stmt_);
        else connection_.keep_statement(cache_key_, stmt_);
    }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    sqlite3_stmt* get() const { return stmt_; }

private:
    Connection& connection_;
    sqlite3_stmt* stmt_;
    std::string cache_key_;
};

// One call's statements on one connection. Several statements run in one transaction (unless
// the SQL opens its own with BEGIN); any failure rolls everything back before the error leaves.
class Execution {
public:
    Execution(Connection& c, const Request& request, size_t max_rows)
        : connection_(c), db_(c.db), request_(request), max_rows_(max_rows), binder_(request) {}

    json run() {
        sqlite3_set_last_insert_rowid(db_, 0);  // the pooled connection may remember another call's
        try {
            run_all();
        } catch (...) {
            rollback_if_open();
            throw;
        }
        return build_result();
    }

    int statements() const { return statements_; }

private:
    void run_all() {
        for (size_t i = 0; i < request_.sql.size(); ++i) {
            binder_.start_element(i);
            run_element(i);
            binder_.finish_element();
        }
        if (statements_ == 0) throw ToolError("'sql' holds no statement (only blanks or comments)");
        binder_.finish();
        if (connection_.cancelled()) throw_cancelled();
        if (wrapped_ && !sqlite3_get_autocommit(db_)) exec_control("COMMIT");
        if (!sqlite3_get_autocommit(db_))
            throw ToolError("the SQL left a transaction open (BEGIN without COMMIT), so it was rolled back; "
                            "each call must finish the transactions it starts");
    }

    void run_element(size_t element) {
        const std::string& sql = request_.sql[element];
        const char* const end = sql.data() + sql.size();
        const char* p = skip_blank(sql.data(), end);
        // Repeated single statements (bulk inserts from a loop) skip the parser.
        const bool cacheable = request_.sql.size() == 1 && sql.size() <= kCacheableSqlBytes;
        if (cacheable) {
            if (sqlite3_stmt* cached = connection_.take_statement(sql)) {
                Statement stmt(connection_, cached, sql);
                run_statement(stmt.get(), std::string_view(p, size_t(end - p)), end, end, element);
                return;
            }
        }
        while (p < end) {
            sqlite3_stmt* raw = nullptr;
            const char* tail = nullptr;
            int rc = sqlite3_prepare_v2(db_, p, int(end - p), &raw, &tail);
            if (rc != SQLITE_OK) {
                sqlite3_finalize(raw);
                fail(statements_ + 1, std::string_view(p, size_t(end - p)));
            }
            if (!raw) break;  // only blanks were left
            const char* next = skip_blank(tail, end);
            bool whole = cacheable && next == end && p == skip_blank(sql.data(), end);
            Statement stmt(connection_, raw, whole ? sql : std::string());
            run_statement(stmt.get(), std::string_view(p, size_t(tail - p)), tail, end, element);
            p = next;
        }
    }

    void run_statement(sqlite3_stmt* stmt, std::string_view text, const char* tail, const char* end,
                       size_t element) {
        const int number = ++statements_;
        if (request_.read_only && !sqlite3_stmt_readonly(stmt))
            throw ToolError("read_only is set and statement " + std::to_string(number) + " would change the database: " +
                            snippet(text));
        if (number == 1) open_transaction_if_needed(text, tail, end, element);
        binder_.bind(stmt, number);
        const long long changes_before = sqlite3_total_changes64(db_);
        if (sqlite3_column_count(stmt) > 0) collect_rows(stmt, number, text);
        else step_to_end(stmt, number, text);
        // sqlite3_changes64 keeps the count of the last INSERT/UPDATE/DELETE, stale after any
        // other statement: trust it only when this statement changed something.
        if (sqlite3_total_changes64(db_) != changes_before) rows_affected_ += sqlite3_changes64(db_);
    }

    void open_transaction_if_needed(std::string_view text, const char* tail, const char* end, size_t element) {
        bool more = element + 1 < request_.sql.size() || skip_blank(tail, end) != end;
        if (!more || starts_with_keyword(text.data(), text.data() + text.size(), "BEGIN")) return;
        // IMMEDIATE takes the write lock up front: a deferred transaction that reads first and
        // writes later can fail with SQLITE_BUSY_SNAPSHOT under WAL, with no busy wait.
        exec_control(request_.read_only ? "BEGIN" : "BEGIN IMMEDIATE");
        wrapped_ = true;
    }

    void collect_rows(sqlite3_stmt* stmt, int number, std::string_view text) {
        ResultSet rows(stmt, max_rows_);
        const bool read_only = sqlite3_stmt_readonly(stmt);
        for (;;) {
            int rc = sqlite3_step(stmt);
            if (rc == SQLITE_ROW) {
                if (!rows.full()) {
                    rows.add_row(stmt);
                    continue;
                }
                rows.mark_truncated();
                if (read_only) break;  // nothing left to apply: stop reading
                continue;              // a writing statement must run to its end
            }
            if (rc == SQLITE_DONE) break;
            fail(number, text);
        }
        result_.emplace(std::move(rows));
    }

    void step_to_end(sqlite3_stmt* stmt, int number, std::string_view text) {
        for (;;) {
            int rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE) return;
            if (rc != SQLITE_ROW) fail(number, text);
        }
    }

    void exec_control(const char* sql) {
        char* error = nullptr;
        int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
        std::string message = error ? error : sqlite3_errstr(rc);
        sqlite3_free(error);
        if (rc == SQLITE_OK) return;
        if (connection_.cancelled()) throw_cancelled();
        throw ToolError(std::string(sql) + " failed: " + sanitize_utf8(message));
    }

    [[noreturn]] void fail(int number, std::string_view text) {
        if (connection_.cancelled()) throw_cancelled();
        std::string message = sanitize_utf8(sqlite3_errmsg(db_));
        std::string where = statements_ > 1 || request_.sql.size() > 1 || wrapped_
                                ? "statement " + std::to_string(number) + " (" + snippet(text) + ")"
                                : "'" + snippet(text) + "'";
        std::string undo = wrapped_ ? "; the transaction was rolled back, nothing was applied" : "";
        spdlog::debug("sqlite: error in {}: {}", where, message);
        throw ToolError("SQL error in " + where + ": " + message + undo);
    }

    void rollback_if_open() noexcept {
        connection_.cancel = nullptr;  // a cancelled call's ROLLBACK must not be interrupted too
        if (sqlite3_get_autocommit(db_)) return;
        char* error = nullptr;
        if (sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, &error) != SQLITE_OK)
            spdlog::warn("sqlite: ROLLBACK failed: {}", error ? error : "?");
        sqlite3_free(error);
    }

    // Keys are appended in ascending order (see append_field).
    json build_result() {
        const long long rowid = sqlite3_last_insert_rowid(db_);
        json structured(json::value_t::object);
        std::string text;
        bool truncated = false;
        size_t shown = 0;
        if (result_) {
            truncated = result_->truncated();
            shown = result_->count();
            append_field(structured, "columns", result_->take_columns());
            append_field(structured, "last_insert_rowid", rowid);
            append_field(structured, "rows", result_->take_rows());
            text = result_->take_text();
        } else {
            append_field(structured, "columns", json::array());
            append_field(structured, "last_insert_rowid", rowid);
            append_field(structured, "rows", json::array());
            text = json{{"rows_affected", rows_affected_}, {"last_insert_rowid", rowid}}.dump();
        }
        append_field(structured, "rows_affected", rows_affected_);
        append_field(structured, "truncated", truncated);

        json content(json::value_t::array);
        json first(json::value_t::object);
        append_field(first, "text", std::move(text));
        append_field(first, "type", "text");
        content.push_back(std::move(first));
        if (truncated)
            content.push_back(mcp::text_content(
                "Only the first " + std::to_string(shown) +
                " rows are shown (max_rows). Narrow the query (WHERE, LIMIT, aggregates), pass a larger "
                "max_rows (0 = no limit), or process the rows in Python code, where no limit applies."));
        json result(json::value_t::object);
        append_field(result, "content", std::move(content));
        append_field(result, "isError", false);
        append_field(result, "structuredContent", std::move(structured));
        return result;
    }

    Connection& connection_;
    sqlite3* db_;
    const Request& request_;
    const size_t max_rows_;  // 0: no limit
    Binder binder_;
    int statements_ = 0;
    bool wrapped_ = false;  // we opened the transaction and must commit it
    std::optional<ResultSet> result_;
    long long rows_affected_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Documentation and schemas

json field_schemas() {
    return json{
        {"sql",
         {{"description",
           "SQL to run: one string (it may hold several statements separated by ';') or a list of strings. "
           "Several statements run in one transaction: all applied or none."},
          {"anyOf", json::array({json{{"type", "string"}},
                                 json{{"type", "array"}, {"items", {{"type", "string"}}}, {"minItems", 1}}})}}},
        {"params",
         {{"description",
           "Values for positional placeholders (? and ?NNN), taken in order by the statements. With a list "
           "of SQL strings, a list of lists gives each string its own values. BLOBs as {\"$blob\": \"<base64>\"}."},
          {"anyOf", json::array({json{{"type", "array"}}, json{{"type", "object"}}})}}},
        {"bindings",
         {{"type", "object"},
          {"description", "Values for named placeholders :name, @name, $name (keys with or without the prefix)."}}},
        {"database",
         {{"type", "string"},
          {"default", ":memory:"},
          {"description",
           "A file name inside the server's data folder (sub-folders allowed, e.g. 'research.db'), an absolute "
           "path, or ':memory:' (one in-memory database shared by every call until the server stops)."}}},
        {"max_rows",
         {{"type", "integer"},
          {"minimum", 0},
          {"description",
           "Most rows to return; 0 = no limit. Default: 1000 for calls from the client, no limit for calls "
           "from Python code. structuredContent.truncated says when rows were cut."}}},
        {"read_only",
         {{"type", "boolean"},
          {"default", false},
          {"description", "Refuse any statement that would change the database."}}},
        {"operation",
         {{"type", "string"},
          {"enum", json::array({"execute", "readme"})},
          {"default", "execute"},
          {"description", "'readme' returns the full documentation; otherwise 'sql' is run."}}},
        {"tool_unlock_token", {{"type", "string"}, {"description", "The token stated in the readme, when required."}}},
    };
}

json input_schema() {
    json fields = field_schemas();
    json wrapped{{"type", "object"},
                 {"description", "The same fields wrapped as in the original tool: {\"input\": {\"sql\": ...}}."},
                 {"properties", fields}};
    json properties = fields;
    properties["input"] = std::move(wrapped);
    return json{{"type", "object"}, {"properties", std::move(properties)}};
}

json output_schema() {
    return json{
        {"type", "object"},
        {"properties",
         {{"columns", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "Column names of the rows."}}},
          {"rows",
           {{"type", "array"},
            {"items", {{"type", "array"}}},
            {"description",
             "Rows of the last statement that returns rows, each an array in column order. BLOBs as "
             "{\"$blob\": \"<base64>\"}."}}},
          {"rows_affected", {{"type", "integer"}, {"description", "Rows inserted, updated or deleted by the call."}}},
          {"last_insert_rowid",
           {{"type", "integer"}, {"description", "Rowid of the last row inserted by the call; 0 when none."}}},
          {"truncated", {{"type", "boolean"}, {"description", "True when max_rows cut the rows."}}}}},
        {"required", json::array({"columns", "rows", "rows_affected", "last_insert_rowid", "truncated"})},
    };
}

constexpr const char* kDescription =
    "Run SQL on SQLite databases (SQLite " SQLITE_VERSION "). Give 'sql' (one statement, several separated by "
    "';', or a list: several statements run in one transaction, all or nothing), 'params' for ? placeholders "
    "or 'bindings' for :name ones, and 'database' (a file name in the server's data folder such as "
    "'research.db', an absolute path, or ':memory:', the default, shared by all calls). Rows come back as a "
    "JSON array of objects keyed by column name (content[0].text), and as columns + rows arrays in "
    "structuredContent; other statements report rows_affected and last_insert_rowid. Calls from the client "
    "return at most 1000 rows unless max_rows says otherwise; calls from Python code (mcp.call('sqlite', ...)) "
    "get every row. read_only: true refuses changes. Fields may be wrapped as {\"input\": {...}}. "
    "Call with operation 'readme' for the full documentation.";

std::string build_readme(const SqliteToolOptions& options) {
    std::string token_line =
        options.gate.required
            ? "Every call except operation 'readme' must carry \"tool_unlock_token\": \"" + options.gate.token + "\"."
            : "This server does not require tool_unlock_token; it is accepted and ignored.";
    return std::string(R"(# sqlite: SQL on SQLite )") + SQLITE_VERSION + R"(

Runs SQL on SQLite databases, for the MCP client directly and for Python code through
mcp.call('sqlite', {...}). Both see the same databases.

)" + token_line + R"(

## Arguments
Give the fields directly, or wrapped as in the original tool: {"input": {"sql": ..., ...}}.

- sql: one SQL string, or a list of SQL strings. A string may hold several statements separated
  by ';'. When a call has more than one statement they all run in ONE transaction: if any fails,
  everything is rolled back and nothing is applied. (SQL that starts with its own BEGIN manages
  its own transaction; it must end it with COMMIT or ROLLBACK in the same call.)
- params: values for positional placeholders ? and ?NNN. With several statements, each takes as
  many values as it has placeholders, in order. With a list of SQL strings, params may instead be
  a list of lists, one per string. An object here is taken as bindings.
- bindings: object of values for named placeholders :name, @name and $name; keys may be written
  with or without the prefix ("id" or ":id"). Every statement takes the names it uses; unused
  names are ignored. A statement cannot mix ? and :name placeholders.
- database: where the data lives (default ":memory:"):
  - ":memory:" is ONE in-memory database shared by every call (client and Python) until the
    server stops.
  - A relative name such as "research.db" or "projects/2025.db" is a file in the data folder
    )" + options.data_dir.string() + R"(
    (created when missing). Sub-folders are allowed; "..", names starting with '.', control
    characters and symbolic links leading outside the folder are refused. These files use WAL mode.
  - An absolute path ("/home/me/data.db") is used as given.
- max_rows: most rows to return; 0 means no limit. When omitted: 1000 for calls straight from the
  client (keeps the model's context small), no limit for calls from Python code. When rows were
  cut, structuredContent.truncated is true and a second text block says so. Process large results
  in Python, where all rows come back.
- read_only: true refuses every statement that would change the database (checked before it runs).
- operation: "readme" returns this text (no token needed). Omitted or "execute": run sql.
- tool_unlock_token: see above.

## Values
JSON null, true/false (stored as 1/0), integers, floats and strings map to SQLite NULL, INTEGER,
REAL and TEXT. A BLOB is written {"$blob": "<base64>"}, in params and bindings and in results.
Any other object or list is bound as its JSON text (handy with json_extract, json_each).
Integers come back as integers, REAL as floats (2.0, not 2), NULL as null.

## Results
- Statements that return rows (SELECT, PRAGMA, ... RETURNING): content[0].text is a JSON array of
  objects keyed by column name, e.g. [{"id": 1, "name": "a"}]. With several statements the rows
  of the LAST statement that returns rows are the result.
- Other statements: content[0].text is {"rows_affected": N, "last_insert_rowid": R}.
- structuredContent always holds {columns, rows (arrays in column order), rows_affected,
  last_insert_rowid, truncated}. rows_affected counts rows inserted, updated or deleted by the
  call's statements (not by triggers); last_insert_rowid is 0 when the call inserted nothing.
- Errors (SQL errors, bad arguments) come back as a tool error with SQLite's message and the
  statement it belongs to.

## Good to know
- Connections are pooled: per-connection state (PRAGMA settings such as foreign_keys, TEMP
  tables, ATTACH) is not guaranteed to carry over to the next call. Put such statements in the
  same call as the statements that need them. foreign_keys is off, as SQLite's default.
- Calls may run at the same time (threads, several Python sessions). Readers never wait; a writer
  waits up to )" + std::to_string(options.busy_timeout_ms) + R"( ms for another writer, then fails with "database is locked".
- Cancelling the request (notifications/cancelled, or a cancelled Python execution) stops a
  running statement at once; the call fails with "cancelled" and its transaction is rolled back.

## Examples (Python)
```python
import json
mcp.call('sqlite', {'input': {'sql': 'CREATE TABLE IF NOT EXISTS urls (url TEXT, seen TEXT)',
                              'database': 'research.db'}})
mcp.call('sqlite', {'input': {'sql': 'INSERT INTO urls VALUES (?, ?)',
                              'params': ['https://example.com', '2025-01-01'],
                              'database': 'research.db'}})
r = mcp.call('sqlite', {'input': {'sql': 'SELECT COUNT(*) AS count FROM urls', 'database': 'research.db'}})
count = json.loads(r['content'][0]['text'])[0]['count']

# Named values, and a transaction of several statements:
mcp.call('sqlite', {'sql': ['INSERT INTO urls VALUES (:u, :t)', 'DELETE FROM urls WHERE seen < :t'],
                    'bindings': {'u': 'https://a.example', 't': '2025-01-01'}, 'database': 'research.db'})
```
)";
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct SqliteTool::Impl {
    SqliteToolOptions options;
    std::string readme;
    std::shared_ptr<Pool> memory;  // ONE connection: a second would open a second, empty database
    struct PoolEntry {
        std::shared_ptr<Pool> pool;
        uint64_t last_used = 0;
    };
    std::mutex pools_mutex;
    std::map<std::string, PoolEntry> pools;  // GUARDED_BY(pools_mutex), by Location::key
    uint64_t pool_clock = 0;                 // GUARDED_BY(pools_mutex)

    std::shared_ptr<Pool> pool_for(const std::string& name) {
        if (name == ":memory:") return memory;
        Location where = locate(name);
        std::lock_guard lock(pools_mutex);
        PoolEntry& entry = pools[where.key];
        entry.last_used = ++pool_clock;
        auto& pool = entry.pool;
        if (!pool) {
            int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
            // The path was resolved link by link; NOFOLLOW stops a link swapped in afterwards.
            if (where.in_data_dir) flags |= SQLITE_OPEN_NOFOLLOW;
            pool = std::make_shared<Pool>(where.path, flags, where.in_data_dir, kConnectionsPerFile,
                                          options.busy_timeout_ms);
        }
        std::shared_ptr<Pool> chosen = pool;
        forget_least_used_pool();
        return chosen;
    }

    // A script touching many database files must not run the process out of file descriptors
    // (three per connection in WAL mode). A forgotten pool closes its connections once the calls
    // still holding one are done; the next call to that file opens a new pool.
    void forget_least_used_pool() {
        if (pools.size() <= kMaxOpenDatabases) return;
        auto oldest = std::min_element(pools.begin(), pools.end(), [](const auto& a, const auto& b) {
            return a.second.last_used < b.second.last_used;
        });
        spdlog::debug("sqlite: closing idle connections to {}", oldest->first);
        pools.erase(oldest);
    }

    Location locate(const std::string& name) const {
        if (name.empty()) throw ToolError("'database' is empty: omit it for ':memory:', or name a file");
        if (name.find('\0') != std::string::npos) refuse_name(name, "it contains a NUL byte");
        if (name.front() != '/') return resolve_in_data_dir(name, options.data_dir);
        // Absolute: opened as given. Its journal mode is the owner's business, so no WAL switch;
        // the pool is named by the resolved path so two spellings of one file share it.
        std::error_code ec;
        fs::path key = fs::weakly_canonical(name, ec);
        return {name, ec ? name : key.string(), false};
    }
};

SqliteTool::SqliteTool(SqliteToolOptions options) : impl_(std::make_unique<Impl>()) {
    if (!sqlite3_threadsafe()) throw std::runtime_error("the SQLite library was built without thread support");
    if (options.data_dir.empty()) options.data_dir = default_data_root() / "databases";
    impl_->options = std::move(options);
    impl_->readme = build_readme(impl_->options);
    impl_->memory = std::make_shared<Pool>(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                           false, 1, impl_->options.busy_timeout_ms);
}

SqliteTool::~SqliteTool() = default;

std::string SqliteTool::readme() const { return impl_->readme; }

mcp::ToolDefinition SqliteTool::definition() const {
    mcp::ToolDefinition d;
    d.name = kToolName;
    d.title = "SQLite";
    d.description = kDescription;
    d.input_schema = input_schema();
    d.output_schema = output_schema();
    d.annotations = json{{"title", "SQLite"},
                         {"readOnlyHint", false},
                         {"destructiveHint", true},
                         {"idempotentHint", false},
                         {"openWorldHint", false}};
    return d;
}

void SqliteTool::register_in(mcp::ToolRegistry& registry) {
    registry.add(definition(), mcp::blocking_handler([this](const json& arguments, mcp::CallContext& context) {
                     return call(arguments, context);
                 }));
}

json SqliteTool::call(const json& arguments, mcp::CallContext& context) {
    ToolInput fields(arguments);
    const json& input = fields.fields();
    if (!input.is_object()) throw ToolError("the arguments must be an object such as {\"sql\": \"SELECT 1\"}");
    const std::string operation = get_string(input, "operation").value_or("execute");
    if (operation == "readme") {
        json empty{{"columns", json::array()}, {"rows", json::array()}, {"rows_affected", 0},
                   {"last_insert_rowid", 0}, {"truncated", false}};
        return mcp::tool_result(impl_->readme, std::move(empty));
    }
    if (operation != "execute")
        throw ToolError("unknown operation '" + printable(operation) +
                        "': use 'readme' for the documentation, or omit 'operation' to run 'sql'");
    impl_->options.gate.check(input, impl_->readme);

    Request request(input);
    // Python code asked for the data to process it; the model's context is what the cap protects.
    const long long max_rows =
        request.max_rows.value_or(context.caller_session().empty() ? kClientDefaultMaxRows : 0);
    const CancellationToken& cancel = context.cancellation();
    if (cancel.cancelled()) throw_cancelled();

    const auto started = std::chrono::steady_clock::now();
    std::shared_ptr<Pool> pool = impl_->pool_for(request.database);
    Lease lease(std::move(pool), cancel);
    Execution execution(lease.connection(), request, size_t(max_rows));
    json result = execution.run();
    spdlog::debug("sqlite: {} statement(s) on {} in {:.2f} ms", execution.statements(), request.database,
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
    return result;
}

}  // namespace pymcp::tools
