#pragma once
// Output that threads started by code write after their execution has ended (a background
// thread's later prints), kept per session name until the read_output operation takes it.
// Bounded twice: per name like max_output (head and tail, OutputBuffer), and in names
// (kMaxNames; past that, late output goes to the log as before).
//
// Thread-safe: mutex_ guards the table; an entry's buffers have their own (leaf) locks, taken
// with mutex_ held. Never throws except std::bad_alloc. Python-free.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "python_mcp/engine/engine.hpp"
#include "python_mcp/python/output_buffer.hpp"

namespace pymcp::python {

class BackgroundOutputStore {
public:
    static constexpr size_t kMaxNames = 256;

    // Keeps `text` for `session` (a new entry keeps `limit` bytes per stream). False when it
    // cannot be kept (too many names waiting): the caller logs it.
    bool write(const std::string& session, size_t limit, int stream, std::string_view text);
    // Takes and clears what waits for `session`; nullopt when nothing does.
    std::optional<engine::BackgroundOutput> take(const std::string& session);
    // Bytes waiting for `session` (everything written, also what was cut).
    size_t pending(const std::string& session) const;
    // Every name with output waiting, and its bytes, sorted by name.
    std::vector<std::pair<std::string, size_t>> pending_all() const;

private:
    struct Entry {
        explicit Entry(size_t limit) : out(limit), err(limit) {}
        OutputBuffer out;
        OutputBuffer err;
    };

    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;  // GUARDED_BY(mutex_)
};

}  // namespace pymcp::python
