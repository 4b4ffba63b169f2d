#pragma once
// MCP's stdio framing over two file descriptors: one JSON-RPC message per line, UTF-8, no
// newline inside a message. The server uses it on its private copies of stdin/stdout; the
// downstream client on a child's stdout/stdin.
//
// Threads: run() on one reading thread; send()/send_bounded()/close() from any thread, whole
// messages under one write lock so they never interleave. A line longer than the limit is
// skipped (its first bytes go to on_oversized) without holding more than the limit in memory.
// EPIPE and a closed fd make later sends return false; nothing throws except std::bad_alloc.
// The transport owns neither fd.

#include <atomic>
#include <mutex>

#include "python_mcp/jsonrpc/transport.hpp"

namespace pymcp::jsonrpc {

class StdioTransport final : public Transport {
public:
    StdioTransport(int in_fd, int out_fd, size_t max_message_bytes);

    void run(MessageHandler& handler) override;
    bool send(const pymcp::json& message, StreamId stream = kMainStream) override;
    // Writes with poll(): gives up at the deadline or on cancellation. A message cut off after
    // its first byte leaves the stream unusable, so the transport then closes its output.
    SendStatus send_bounded(const pymcp::json& message, StreamId stream, std::chrono::steady_clock::time_point deadline,
                            const CancellationToken& cancel) override;
    void close() override;
    bool broken() const { return broken_.load(); }

private:
    SendStatus write_line(const std::string& line, const std::chrono::steady_clock::time_point* deadline,
                          const CancellationToken* cancel);

    int in_fd_;
    int out_fd_;
    size_t max_message_bytes_;
    std::mutex write_mutex_;
    std::atomic<bool> broken_{false};
    std::atomic<bool> closing_{false};
};

}  // namespace pymcp::jsonrpc
