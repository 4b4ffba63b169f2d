#pragma once
// Sends whole JSON-RPC messages, one per line.
//
// MessageSink is what the protocol layers write to; FdMessageSink writes lines to a file
// descriptor under one mutex so concurrent senders never interleave, and tests use an in-memory
// sink. send() returns false once the peer is gone (EPIPE, closed fd); it never throws.

#include "python_mcp/support/json.hpp"

#include <atomic>
#include <mutex>

namespace pymcp::jsonrpc {

class MessageSink {
public:
    virtual ~MessageSink() = default;
    virtual bool send(const pymcp::json& message) = 0;
};

class FdMessageSink final : public MessageSink {
public:
    explicit FdMessageSink(int fd) : fd_(fd) {}
    bool send(const pymcp::json& message) override;
    bool broken() const { return broken_.load(); }
    // Waits for a send in progress, then refuses further sends: nothing is left half-written
    // when the process exits right after.
    void close();

private:
    int fd_;
    std::mutex mutex_;
    std::atomic<bool> broken_{false};
};

}  // namespace pymcp::jsonrpc
