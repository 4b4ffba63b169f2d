#include "python_mcp/jsonrpc/stdio_transport.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "python_mcp/jsonrpc/line_reader.hpp"
#include "python_mcp/jsonrpc/message.hpp"

namespace pymcp::jsonrpc {

namespace {

using clock = std::chrono::steady_clock;

// How often a bounded send that cannot proceed looks at its cancellation token and at close().
constexpr auto kSlice = std::chrono::milliseconds(20);

// SIGPIPE blocked in this thread while it writes, and a SIGPIPE the writes raised consumed
// before it is unblocked, so a peer that died never kills us whatever the disposition is.
class SigpipeGuard {
public:
    explicit SigpipeGuard(bool active) : active_(active) {
        if (!active_) return;
        sigemptyset(&set_);
        sigaddset(&set_, SIGPIPE);
        sigset_t pending;
        sigemptyset(&pending);
        ::sigpending(&pending);
        already_pending_ = sigismember(&pending, SIGPIPE) == 1;  // not ours to consume
        ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
    }
    ~SigpipeGuard() {
        if (!active_) return;
        if (raised_ && !already_pending_) {
            timespec zero{0, 0};
            while (::sigtimedwait(&set_, nullptr, &zero) < 0 && errno == EINTR) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeGuard(const SigpipeGuard&) = delete;
    SigpipeGuard& operator=(const SigpipeGuard&) = delete;
    void raised() { raised_ = true; }

private:
    bool active_;
    sigset_t set_{};
    sigset_t old_{};
    bool already_pending_ = false;
    bool raised_ = false;
};

}  // namespace

StdioTransport::StdioTransport(int in_fd, int out_fd, size_t max_message_bytes, StdioOptions options)
    : in_fd_(in_fd),
      out_fd_(out_fd),
      max_message_bytes_(max_message_bytes),
      options_(std::move(options)),
      nonblocking_(out_fd >= 0 && (::fcntl(out_fd, F_GETFL) & O_NONBLOCK) != 0) {}

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
    static const CancellationToken never;
    std::optional<time_point> deadline;
    if (options_.send_timeout.count() > 0) deadline = clock::now() + options_.send_timeout;
    return write_line(line, deadline, never) == SendStatus::Sent;
}

SendStatus StdioTransport::send_bounded(const pymcp::json& message, StreamId, time_point deadline,
                                        const CancellationToken& cancel) {
    std::string line = serialize(message);
    line.push_back('\n');
    return write_line(line, deadline, cancel);
}

SendStatus StdioTransport::write_line(const std::string& line, std::optional<time_point> deadline,
                                      const CancellationToken& cancel) {
    std::unique_lock lock(mutex_);
    SendStatus turn = take_turn(lock, deadline, cancel);
    if (turn != SendStatus::Sent) return turn;  // nothing of ours was written: the stream is fine
    writing_ = true;
    lock.unlock();
    size_t written = 0;
    SendStatus result = pump(line, written, deadline, cancel);
    const bool partial = result != SendStatus::Sent && written > 0;
    lock.lock();
    writing_ = false;
    if (result == SendStatus::Closed || partial) broken_ = true;  // half a line: the framing is lost
    lock.unlock();
    turn_.notify_all();
    if ((result == SendStatus::TimedOut || result == SendStatus::Cancelled) && options_.on_stall)
        options_.on_stall(result, partial);
    return result;
}

// Waits until no other sender is in the fd. Sent means it is our turn.
SendStatus StdioTransport::take_turn(std::unique_lock<std::mutex>& lock, std::optional<time_point> deadline,
                                     const CancellationToken& cancel) {
    for (;;) {
        if (broken_.load() || closing_.load()) return SendStatus::Closed;
        if (!writing_) return SendStatus::Sent;
        if (!deadline) {
            turn_.wait(lock);
            continue;
        }
        // Another sender may be stuck on a peer that stopped reading: the wait for the turn
        // counts against our deadline and ends with our cancellation.
        if (cancel.cancelled()) return SendStatus::Cancelled;
        auto now = clock::now();
        if (now >= *deadline) return SendStatus::TimedOut;
        turn_.wait_until(lock, std::min(*deadline, now + kSlice));
    }
}

// Writes line[written..]. A bounded send on a blocking fd writes only after poll() promised
// room: POLLOUT on a pipe means PIPE_BUF bytes fit, so such a write cannot block and a peer that
// stopped reading never holds us past the deadline. On a non-blocking fd it writes what fits
// and polls on EAGAIN.
SendStatus StdioTransport::pump(const std::string& line, size_t& written, std::optional<time_point> deadline,
                                const CancellationToken& cancel) {
    SigpipeGuard guard(options_.block_sigpipe);
    while (written < line.size()) {
        size_t chunk = line.size() - written;
        if (deadline && !nonblocking_) {
            SendStatus room = wait_writable(deadline, cancel);
            if (room != SendStatus::Sent) return room;
            chunk = std::min<size_t>(chunk, PIPE_BUF);
        }
        ssize_t n = ::write(out_fd_, line.data() + written, chunk);
        if (n > 0) {
            written += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            SendStatus room = wait_writable(deadline, cancel);
            if (room != SendStatus::Sent) return room;
            continue;
        }
        if (n < 0 && errno == EPIPE) guard.raised();
        return SendStatus::Closed;
    }
    return SendStatus::Sent;
}

// Sent once the fd is writable (or has an error the next write reports). A bounded wait polls
// in slices and ends with the caller's cancellation, close() or the deadline; the pipe is looked
// at first, so a send whose peer keeps reading completes even if cancelled meanwhile.
SendStatus StdioTransport::wait_writable(std::optional<time_point> deadline, const CancellationToken& cancel) {
    for (;;) {
        int slice_ms = -1;
        if (deadline) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock::now());
            slice_ms = static_cast<int>(std::clamp<long long>(left.count(), 0, kSlice.count()));
        }
        pollfd pfd{out_fd_, POLLOUT, 0};
        int ready = ::poll(&pfd, 1, slice_ms);
        if (ready > 0) return SendStatus::Sent;
        if (ready < 0 && errno != EINTR) return SendStatus::Closed;
        if (!deadline) continue;
        if (cancel.cancelled()) return SendStatus::Cancelled;
        if (closing_.load()) return SendStatus::Closed;
        if (clock::now() >= *deadline) return SendStatus::TimedOut;
    }
}

void StdioTransport::close() {
    closing_ = true;  // refuses new sends, ends bounded ones within a slice
    {
        std::unique_lock lock(mutex_);
        turn_.wait(lock, [&] { return !writing_; });  // an unbounded send completes first
        broken_ = true;
    }
    turn_.notify_all();
}

}  // namespace pymcp::jsonrpc
