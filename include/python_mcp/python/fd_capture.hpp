#pragma once
// Captures what is written to fd 1 and fd 2 at the file-descriptor level (subprocesses,
// os.system, C extensions, os.write) so it never reaches the protocol stream, and hands it to the
// execution that wrote it when that can be known: while exactly one execution runs, its bytes go
// into its buffers; when several overlap, nobody can tell whose bytes they are, so they go to the
// server's log rather than into the wrong result.
//
// Threads: one reader thread polls the pipes; begin()/end() come from executing threads.
// mutex_ guards the active set and the reads (leaf lock: no other lock is taken under it, and
// OutputBuffer's own mutex is taken inside it). install() throws std::system_error.

#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "python_mcp/python/output_buffer.hpp"

namespace pymcp::python {

class FdCapture {
public:
    // Points fd 1 and fd 2 at pipes; unclaimed bytes are copied to `log_fd`. Once per process.
    static FdCapture& install(int log_fd);
    // nullptr when install() was not called (unit tests that do not capture).
    static FdCapture* instance();

    uint64_t begin(OutputBuffer* out, OutputBuffer* err);
    // Takes what is already in the pipes (everything the execution wrote before it ended), then
    // stops attributing bytes to it.
    void end(uint64_t token);

private:
    explicit FdCapture(int log_fd);
    void reader_loop();
    void drain_locked();
    void route_locked(int stream, const char* data, size_t n);

    struct Active {
        uint64_t token;
        OutputBuffer* out;
        OutputBuffer* err;
        bool overlapped;
    };

    int log_fd_;
    int read_fds_[2] = {-1, -1};
    std::mutex mutex_;
    std::vector<Active> active_;  // GUARDED_BY(mutex_)
    uint64_t next_token_ = 1;     // GUARDED_BY(mutex_)
    std::thread reader_;
};

}  // namespace pymcp::python
