#pragma once
// Collects one stream (stdout or stderr) of one execution, bounded: past `limit` bytes it keeps
// the first half and the last half and counts what fell in between, so a 100 MB print costs
// `limit` bytes of memory and the model still sees how the output began and ended.
//
// Thread-safe (user threads, the fd capture reader and the executing thread all write).
// close() makes later writes return false, so output of threads that outlive their execution
// goes to the log instead of vanishing silently. Never throws except std::bad_alloc.

#include <mutex>
#include <string>
#include <string_view>

#include "python_mcp/engine/engine.hpp"

namespace pymcp::python {

class OutputBuffer {
public:
    explicit OutputBuffer(size_t limit) : limit_(limit < 64 ? 64 : limit) {}

    bool write(std::string_view data);
    void close();
    engine::StreamText snapshot() const;
    size_t total_bytes() const;  // the kept text, cut on UTF-8 boundaries, with a marker where bytes were cut

private:
    const size_t limit_;
    mutable std::mutex mutex_;
    std::string head_;  // GUARDED_BY(mutex_)
    std::string tail_;  // GUARDED_BY(mutex_), a ring once full
    size_t tail_pos_ = 0;
    size_t total_ = 0;
    bool closed_ = false;
};

}  // namespace pymcp::python
