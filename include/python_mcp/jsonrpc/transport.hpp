#pragma once
// How JSON-RPC messages travel: a Transport reads message texts and hands them to a
// MessageHandler, and sends whole messages on one of its outgoing streams.
//
// stdio has one stream (kMainStream: stdout). A Streamable HTTP transport has one per POST
// (the answer to that POST and the notifications of its request) plus the GET stream; a handler
// replies on the stream its message came in on, so each answer finds its way back.
//
// Threads: run() is called by one thread and calls the handler on it; send() and close() are
// thread-safe and may be called from any thread, also while run() is inside the handler.
// Nothing here throws out of send()/close(); run() returns when input ends or close() was called.

#include <chrono>
#include <cstdint>
#include <string_view>

#include "python_mcp/support/cancellation.hpp"
#include "python_mcp/support/json.hpp"

namespace pymcp::jsonrpc {

using StreamId = std::uint64_t;
inline constexpr StreamId kMainStream = 0;

class MessageHandler {
public:
    virtual ~MessageHandler() = default;
    // One message's text (a JSON value, or garbage the handler must answer with a parse error).
    virtual void on_text(std::string_view text, StreamId reply_stream) = 0;
    // A message longer than `limit` bytes was skipped; `head` holds its first bytes (bounded) so
    // the handler can still find the request's id and answer it.
    virtual void on_oversized(std::string_view head, size_t limit, StreamId reply_stream) = 0;
};

enum class SendStatus { Sent, Closed, TimedOut, Cancelled };

class Transport {
public:
    virtual ~Transport() = default;

    // Reads until the other side closes its end, a read fails, or close() is called.
    virtual void run(MessageHandler& handler) = 0;

    // Sends one message whole, never interleaved with another. False once the other side is gone
    // (or the stream has ended).
    virtual bool send(const pymcp::json& message, StreamId stream = kMainStream) = 0;

    // send() that gives up at `deadline` or when `cancel` fires, for peers that may stop reading
    // (a downstream server). A message cut off half-way leaves the stream unusable, so a
    // transport that cannot take a message back closes itself rather than return TimedOut
    // after a partial write. The default waits like send().
    virtual SendStatus send_bounded(const pymcp::json& message, StreamId stream,
                                    std::chrono::steady_clock::time_point deadline,
                                    const CancellationToken& cancel) {
        (void)deadline;
        (void)cancel;
        return send(message, stream) ? SendStatus::Sent : SendStatus::Closed;
    }

    // Ends run() and refuses later sends; waits for a send in progress, so nothing is left
    // half-written when the process exits right after. Idempotent.
    virtual void close() = 0;
};

}  // namespace pymcp::jsonrpc
