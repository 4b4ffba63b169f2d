#pragma once
// Two connected in-memory transport ends: what one sends, the other's run() reads. Tests drive a
// server with a client Peer on the other end, with no pipes and no process (clangd's LSPClient
// is the model). Messages travel as text, so parsing and framing limits are exercised as on the
// wire.
//
// Threads: run() on one thread per end; send()/send_text()/close() from any thread. close() of
// either end ends the connection for both. Nothing throws except std::bad_alloc.

#include <memory>
#include <string>
#include <utility>

#include "python_mcp/jsonrpc/transport.hpp"

namespace pymcp::jsonrpc {

class MemoryTransport final : public Transport {
public:
    // `max_message_bytes` (0: none) makes longer messages arrive as on_oversized, as on stdio.
    static std::pair<std::unique_ptr<MemoryTransport>, std::unique_ptr<MemoryTransport>> pair(
        size_t max_message_bytes = 0);

    void run(MessageHandler& handler) override;
    bool send(const pymcp::json& message, StreamId stream = kMainStream) override;
    void close() override;
    // Sends raw text (malformed input, batches written by hand).
    bool send_text(std::string text);

    struct Inbox;

private:
    MemoryTransport(std::shared_ptr<Inbox> in, std::shared_ptr<Inbox> out, size_t max_message_bytes);

    std::shared_ptr<Inbox> in_;
    std::shared_ptr<Inbox> out_;
    size_t max_message_bytes_;
};

}  // namespace pymcp::jsonrpc
