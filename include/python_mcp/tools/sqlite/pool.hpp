#pragma once
// The sqlite tool's connections: a small pool per database file, the table of those pools, and
// the lease a call holds on one connection.

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "python_mcp/support/cancellation.hpp"
#include "python_mcp/tools/sqlite/connection.hpp"

namespace pymcp::tools::sqlite {

// The connections of one database, opened on demand up to `capacity`. Thread-safe; its mutex is
// never held while SQL runs or a connection opens. acquire() throws mcp::ToolError when the
// database cannot be opened or the call is cancelled while waiting for a connection.
class Pool {
public:
    Pool(std::string path, int flags, bool wal, int capacity, int busy_timeout_ms);

    std::unique_ptr<Connection> acquire(const CancellationToken& cancel);
    // Takes back a connection; one left inside a transaction is rolled back, or closed.
    void release(std::unique_ptr<Connection> c) noexcept;

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

// A connection borrowed for one call, with the call's cancellation token installed; given back
// when the lease ends. Not thread-safe: one call's thread uses it.
class Lease {
public:
    Lease(std::shared_ptr<Pool> pool, const CancellationToken& cancel);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& connection() { return *connection_; }

private:
    std::shared_ptr<Pool> pool_;
    std::unique_ptr<Connection> connection_;
};

// The pools of one tool, by database name: the one shared `:memory:` connection and up to
// kMaxOpenDatabases file pools (the least recently used is forgotten beyond that).
// Thread-safe. Lock order: mutex_, released before any Pool's own mutex; nothing else nests.
// pool_for() throws mcp::ToolError for refused names (see locate()).
class PoolTable {
public:
    PoolTable(std::filesystem::path data_dir, int busy_timeout_ms);

    std::shared_ptr<Pool> pool_for(const std::string& name);

private:
    struct Entry {
        std::shared_ptr<Pool> pool;
        uint64_t last_used = 0;
    };
    void forget_least_used_pool();  // with mutex_ held

    const std::filesystem::path data_dir_;
    const int busy_timeout_ms_;
    const std::shared_ptr<Pool> memory_;  // ONE connection: a second would open a second, empty database
    std::mutex mutex_;
    std::map<std::string, Entry> pools_;  // GUARDED_BY(mutex_), by Location::key
    uint64_t clock_ = 0;                  // GUARDED_BY(mutex_)
};

}  // namespace pymcp::tools::sqlite
