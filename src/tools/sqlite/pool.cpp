#include "python_mcp/tools/sqlite/pool.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "python_mcp/tools/sqlite/location.hpp"

namespace pymcp::tools::sqlite {

namespace {

constexpr int kConnectionsPerFile = 4;     // WAL: any number of readers, one writer at a time
constexpr std::size_t kMaxOpenDatabases = 16;  // files with a pool of connections kept open
constexpr auto kPoolWaitSlice = std::chrono::milliseconds(10);
constexpr int kOpenFlags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pool

Pool::Pool(std::string path, int flags, bool wal, int capacity, int busy_timeout_ms)
    : path_(std::move(path)), flags_(flags), wal_(wal), capacity_(capacity), busy_timeout_ms_(busy_timeout_ms) {}

std::unique_ptr<Connection> Pool::acquire(const CancellationToken& cancel) {
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

void Pool::release(std::unique_ptr<Connection> c) noexcept {
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

// ---------------------------------------------------------------------------------------------
// Lease

Lease::Lease(std::shared_ptr<Pool> pool, const CancellationToken& cancel)
    : pool_(std::move(pool)), connection_(pool_->acquire(cancel)) {
    connection_->cancel = &cancel;
}

Lease::~Lease() { pool_->release(std::move(connection_)); }

// ---------------------------------------------------------------------------------------------
// PoolTable

PoolTable::PoolTable(std::filesystem::path data_dir, int busy_timeout_ms)
    : data_dir_(std::move(data_dir)),
      busy_timeout_ms_(busy_timeout_ms),
      memory_(std::make_shared<Pool>(":memory:", kOpenFlags, false, 1, busy_timeout_ms)) {}

std::shared_ptr<Pool> PoolTable::pool_for(const std::string& name) {
    if (name == ":memory:") return memory_;
    Location where = locate(name, data_dir_);
    std::lock_guard lock(mutex_);
    Entry& entry = pools_[where.key];
    entry.last_used = ++clock_;
    if (!entry.pool) {
        int flags = kOpenFlags;
        // The path was resolved link by link; NOFOLLOW stops a link swapped in afterwards.
        if (where.in_data_dir) flags |= SQLITE_OPEN_NOFOLLOW;
        entry.pool = std::make_shared<Pool>(where.path, flags, where.in_data_dir, kConnectionsPerFile,
                                            busy_timeout_ms_);
    }
    std::shared_ptr<Pool> chosen = entry.pool;
    forget_least_used_pool();
    return chosen;
}

// A script touching many database files must not run the process out of file descriptors
// (three per connection in WAL mode). A forgotten pool closes its connections once the calls
// still holding one are done; the next call to that file opens a new pool.
void PoolTable::forget_least_used_pool() {
    if (pools_.size() <= kMaxOpenDatabases) return;
    auto oldest = std::min_element(pools_.begin(), pools_.end(), [](const auto& a, const auto& b) {
        return a.second.last_used < b.second.last_used;
    });
    spdlog::debug("sqlite: closing idle connections to {}", oldest->first);
    pools_.erase(oldest);
}

}  // namespace pymcp::tools::sqlite
