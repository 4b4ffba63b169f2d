#pragma once
// Captures what is written to fd 1 and fd 2 at the file-descriptor level (subprocesses,
// os.system, C extensions, os.write) so it never reaches the protocol stream, and hands it to the
// execution that wrote it when that can be known: while exactly one execution runs, its bytes go
// to it (its buffers, and its host's live output); when several overlap, nobody can tell whose bytes they are, so they go to the
// server's log rather than into the wrong result.
//
// Threads: one reader thread polls the pipes; begin()/end() come from executing threads.
// mutex_ guards the active set and the reads. Under it only leaf locks are taken: the
// execution's OutputBuffer, then its host's output() (LiveOutput's lock and its timer's), which
// never blocks on the client. install() throws std::system_error.
//
// User code may close or redirect the standard fds (os.close(1), os.dup2(f, 1), os.close(0)).
// end() puts them back (fd 0 on /dev/null, fd 1 and fd 2 on the capture pipes), so such a change
// lasts only until the execution ends, like a rebound sys.stdout.

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "python_mcp/python/execution.hpp"

namespace pymcp::python {

class FdCapture {
public:
    // Points fd 1 and fd 2 at pipes; unclaimed bytes are copied to `log_fd`. Once per process.
    static FdCapture& install(int log_fd);
    // nullptr when install() was not called (unit tests that do not capture).
    static FdCapture* instance();

    // `execution` must stay alive until end().
    uint64_t begin(Execution* execution);
    // Takes what is already in the pipes (everything the execution wrote before it ended), then
    // stops attributing bytes to it.
    void end(uint64_t token);

private:
    explicit FdCapture(int log_fd);
    void reader_loop();
    void drain_locked();
    void route_locked(int stream, const char* data, size_t n);
    void repair_standard_fds_locked();
    void to_log(const char* data, size_t n);

    struct FileId {
        dev_t dev = 0;
        ino_t ino = 0;
        dev_t rdev = 0;
    };

    struct Active {
        uint64_t token;
        Execution* execution;
        bool overlapped;
    };

    int log_fd_;
    // A private non-blocking writer on the log when it is a pipe: a client that never reads our
    // stderr must not stall the reader (and with it every begin()/end()); such bytes are dropped.
    int log_nonblocking_fd_ = -1;
    uint64_t dropped_bytes_ = 0;  // GUARDED_BY(mutex_)
    int read_fds_[2] = {-1, -1};
    int write_fds_[2] = {-1, -1};  // close-on-exec copies of the pipes' write ends, to restore fd 1/2
    int devnull_fd_ = -1;          // close-on-exec /dev/null, to restore fd 0
    FileId write_ids_[2];
    FileId devnull_id_;
    std::mutex mutex_;
    std::vector<Active> active_;  // GUARDED_BY(mutex_)
    uint64_t next_token_ = 1;     // GUARDED_BY(mutex_)
    std::thread reader_;
};

}  // namespace pymcp::python
