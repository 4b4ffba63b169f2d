#include "python_mcp/jsonrpc/stdio_transport.hpp"

#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "python_mcp/jsonrpc/line_reader.hpp"
#include "python_mcp/jsonrpc/message.hpp"

namespace pymcp::jsonrpc {

namespace {
// How often a bounded write that cannot proceed looks at its cancellation token.
constexpr int kPollSliceMs = 20;
}  // namespace

StdioTransport::StdioTransport(int in_fd, int out_fd, size_t max_message_bytes)
    : in_fd_(in_fd), out_fd_(out_fd), max_message_bytes_(max_message_bytes) {}

void StdioTransport::run(MessageHandler& handler) {
    LineReader lines(in_fd_, max_message_bytes_);
    std::string line;
    while (!closing_.load()) {
        auto status = lines.next(line);
        if (status == LineReader::Status::Line) handler.on_text(line, kMainStream);
        else if (status == LineReader::Status::TooLong) handler.on_oversized(lines.overlong_prefix(), max_message_bytes_, kMainStream);
        else break;
    }
}

bool StdioTransport::send(const pymcp::json& message, StreamId) {
    std::string line = serialize(message);
    line.push_back('\n');
    return write_line(line, nullptr, nullptr) == SendStatus::Sent;
}

SendStatus StdioTransport::send_bounded(const pymcp::json& message, StreamId, std::chrono::steady_clock::time_point deadline,
                                        const CancellationToken& cancel) {
    std::string line = serialize(message);
    line.push_back('\n');
    return write_line(line, &deadline, &cancel);
}

SendStatus StdioTransport::write_line(const std::string& line, const std::chrono::steady_clock::time_point* deadline,
                                      const CancellationToken* cancel) {
    std::unique_lock lock(write_mutex_, std::defer_lock);
    if (deadline) {
        // Waiting for the lock counts against the deadline too: another sender may be stuck on
        // a peer that stopped reading.
        while (!lock.try_lock()) {
            if (cancel->cancelled()) return SendStatus::Cancelled;
            if (std::chrono::steady_clock::now() >= *deadline) return SendStatus::TimedOut;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    } else {
        lock.lock();
    }
    if (broken_) return SendStatus::Closed;
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        size_t chunk = left;
        if (deadline) {
            // poll() promising POLLOUT on a pipe means PIPE_BUF bytes fit: a write that size
            // cannot block, so a peer that stopped reading never holds us past the deadline.
            pollfd pfd{out_fd_, POLLOUT, 0};
            int ready = ::poll(&pfd, 1, kPollSliceMs);
            if (ready < 0 && errno == EINTR) continue;
            if (ready == 0) {
                bool cancelled = cancel->cancelled();
                if (!cancelled && std::chrono::steady_clock::now() < *deadline) continue;
                if (left != line.size()) broken_ = true;  // half a line: the framing is lost
                return cancelled ? SendStatus::Cancelled : SendStatus::TimedOut;
            }
            chunk = std::min<size_t>(left, PIPE_BUF);
        }
        ssize_t n = ::write(out_fd_, p, chunk);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
            broken_ = true;
            return SendStatus::Closed;
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    return SendStatus::Sent;
}

void StdioTransport::close() {
    closing_ = true;
    std::lock_guard lock(write_mutex_);  // a send in progress completes first
    broken_ = true;
}

}  // namespace pymcp::jsonrpc
