#pragma once
// MCP's stdio framing over two file descriptors: one JSON-RPC message per line, UTF-8, no
// newline inside a message. The server uses it on its private copies of stdin/stdout; the
// downstream client on a child's stdout/stdin.
//
// Threads: run() on one reading thread; send()/send_bounded()/close() from any thread. Senders
// take turns (one in the fd at a time), so messages never interleave. A bounded send waits for
// its turn and for room in the pipe until its deadline or its cancellation, in 20 ms slices (the
// fd may be a blocking one shared with others, so it is never switched to O_NONBLOCK here and a
// wake-up fd would not help the turn wait). close() ends bounded sends at once and waits for an
// unbounded one to finish, so nothing is cut when the process exits right after.
// Lock order: mutex_ is a leaf; the stall callback runs after it is released.
// A line longer than the limit is skipped (its first bytes go to on_oversized) without holding
// more than the limit in memory. EPIPE and a closed fd make later sends return Closed; nothing
// throws except std::bad_alloc. The transport owns neither fd.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "python_mcp/jsonrpc/transport.hpp"

namespace pymcp::jsonrpc {

struct StdioOptions {
    // A deadline for send() too (0: none, it waits as long as the peer takes). The downstream
    // client bounds its every write, so a child that stopped reading never holds a thread.
    std::chrono::milliseconds send_timeout{0};
    // Called (on the sending thread, no lock held) when a bounded send gave up while waiting for
    // room in the pipe: the peer stopped reading. `partial` means half a message is in the stream
    // and the transport is broken (later sends return Closed); otherwise nothing was written. The
    // owner decides what a stall means (the downstream client ends the connection).
    std::function<void(SendStatus why, bool partial)> on_stall;
    // Writes run with SIGPIPE blocked in the writing thread and a SIGPIPE they raised consumed,
    // for processes that do not ignore it (a test binary, a library user): a peer that died must
    // not kill us. Costs three system calls per message, so the server (which ignores SIGPIPE)
    // leaves it off.
    bool block_sigpipe = false;
};

class StdioTransport final : public Transport {
public:
    StdioTransport(int in_fd, int out_fd, size_t max_message_bytes, StdioOptions options = {});

    void run(MessageHandler& handler) override;
    bool send(const pymcp::json& message, StreamId stream = kMainStream) override;
    // Gives up at the deadline or on cancellation, whether waiting for its turn or for room in
    // the pipe. A message cut off after its first byte leaves the stream unusable, so the
    // transport is then broken (later sends return Closed).
    SendStatus send_bounded(const pymcp::json& message, StreamId stream, std::chrono::steady_clock::time_point deadline,
                            const CancellationToken& cancel) override;
    void close() override;
    bool broken() const { return broken_.load(); }

private:
    using time_point = std::chrono::steady_clock::time_point;

    SendStatus write_line(const std::string& line, std::optional<time_point> deadline, const CancellationToken& cancel);
    SendStatus take_turn(std::unique_lock<std::mutex>& lock, std::optional<time_point> deadline,
                         const CancellationToken& cancel);
    SendStatus pump(const std::string& line, size_t& written, std::optional<time_point> deadline,
                    const CancellationToken& cancel);
    SendStatus wait_writable(std::optional<time_point> deadline, const CancellationToken& cancel);

    int in_fd_;
    int out_fd_;
    size_t max_message_bytes_;
    StdioOptions options_;
    bool nonblocking_;  // out_fd_ was O_NONBLOCK when we got it: write whole, poll on EAGAIN

    std::mutex mutex_;
    std::condition_variable turn_;  // writing_ cleared, or close()
    bool writing_ = false;          // GUARDED_BY(mutex_): a sender is in the fd
    std::atomic<bool> broken_{false};
    std::atomic<bool> closing_{false};
};

}  // namespace pymcp::jsonrpc
