#pragma once
// Collects one stream (stdout or stderr) of one execution, bounded: past `limit` bytes it keeps
// the first half and the last half and counts what fell in between, so a 100 MB print costs
// `limit` bytes of memory and the model still sees how the output began and ended.
//
// Overflow (spool_to): once the text passes `limit`, everything written, from the first byte, is
// also appended to a file (created then, mode 0600), up to a maximum size, so the whole text can
// be read later (resources/read) while memory stays at `limit` plus a 64 KiB write buffer. The
// file is not created for output that fits. A file that cannot be written is given up (removed);
// the text is then only cut, as without spooling.
//
// Thread-safe (user threads, the fd capture reader and the executing thread all write). The
// spool file is written under mutex_ (a leaf lock: nothing else is taken under it; the disk write
// is a buffered append to the page cache). close() makes later writes return false, so output
// of threads that outlive their execution goes to the log instead of vanishing silently; it
// also flushes and closes the spool file. Never throws except std::bad_alloc.

#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "python_mcp/engine/engine.hpp"

namespace pymcp::python {

class OutputBuffer {
public:
    explicit OutputBuffer(size_t limit) : limit_(limit < 64 ? 64 : limit) {}
    ~OutputBuffer();
    OutputBuffer(const OutputBuffer&) = delete;
    OutputBuffer& operator=(const OutputBuffer&) = delete;

    // Keep the whole text in `path` once it passes the limit (at most `max_bytes` of it; 0 or an
    // empty path: no file). Call before the first write.
    void spool_to(std::string path, size_t max_bytes);

    bool write(std::string_view data);
    void close();
    // The kept text, cut on UTF-8 boundaries, with a marker where bytes were cut; with the spool
    // file (flushed) when the text was cut and the file holds it.
    engine::StreamText snapshot() const;
    size_t total_bytes() const;

private:
    // Spooling, under mutex_. begin_spool writes what is kept so far (nothing was cut yet).
    void spool_locked(std::string_view data);
    bool begin_spool_locked();
    void flush_spool_locked() const;
    void abandon_spool_locked() const;

    const size_t limit_;
    mutable std::mutex mutex_;
    std::string head_;  // GUARDED_BY(mutex_)
    std::string tail_;  // GUARDED_BY(mutex_), a ring once full
    size_t tail_pos_ = 0;
    size_t total_ = 0;
    bool closed_ = false;
    // The spool file: fd -1 until the limit is passed. Mutable: snapshot() flushes it.
    std::string spool_path_;           // GUARDED_BY(mutex_)
    size_t spool_max_ = 0;             // GUARDED_BY(mutex_)
    mutable int spool_fd_ = -1;        // GUARDED_BY(mutex_)
    mutable std::string spool_buf_;    // GUARDED_BY(mutex_): written at 64 KiB, and by snapshot/close
    mutable size_t spool_bytes_ = 0;   // GUARDED_BY(mutex_): bytes in the file and spool_buf_
    mutable bool spool_failed_ = false;  // GUARDED_BY(mutex_): given up (file removed)
    bool spool_full_ = false;          // GUARDED_BY(mutex_): reached spool_max_
};

}  // namespace pymcp::python
