#include "python_mcp/client/mcp_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "python_mcp/jsonrpc/line_reader.hpp"
#include "python_mcp/jsonrpc/message.hpp"

namespace pymcp::client {

const std::vector<std::string> kSupportedProtocolVersions = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                             "2024-11-05"};

namespace {

using clock = std::chrono::steady_clock;

// How long the reader thread may block writing an answer (ping) before the child counts as stuck.
constexpr auto kReaderWriteTimeout = std::chrono::seconds(10);
// How long a notification may block on a full pipe.
constexpr auto kNotifyTimeout = std::chrono::seconds(5);

std::string shorten(const std::string& text, size_t max = 200) {
    if (text.size() <= max) return text;
    return text.substr(0, max) + "... (" + std::to_string(text.size()) + " bytes)";
}

std::string seconds_text(std::chrono::milliseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(d.count()) / 1000.0);
    return buf;
}

// Writes with SIGPIPE blocked in this thread and any SIGPIPE it raised consumed, so a child
// that died never kills us, whatever the process's SIGPIPE disposition is.
class SigpipeGuard {
public:
    SigpipeGuard() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGPIPE);
        sigset_t pending;
        sigemptyset(&pending);
        ::sigpending(&pending);
        already_pending_ = sigismember(&pending, SIGPIPE) == 1;
        ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
    }
    ~SigpipeGuard() {
        if (raised_ && !already_pending_) {
            timespec zero{0, 0};
            while (::sigtimedwait(&set_, nullptr, &zero) < 0 && errno == EINTR) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    void raised() { raised_ = true; }

private:
    sigset_t set_{};
    sigset_t old_{};
    bool already_pending_ = false;
    bool raised_ = false;
};

// ---- the id of an answer too deep (or otherwise unreadable) to parse ----------------------------

constexpr size_t npos = std::string_view::npos;

size_t skip_space(std::string_view s, size_t i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    return i;
}

// Past the string literal that starts at s[i] ('"'); npos when it is not closed.
size_t skip_string(std::string_view s, size_t i) {
    for (++i; i < s.size(); ++i) {
        if (s[i] == '\\') ++i;
        else if (s[i] == '"') return i + 1;
    }
    return npos;
}

// Past the value that starts at s[i]; npos when the text ends first. Containers are skipped by
// counting brackets (outside strings), never by recursion, so any depth is safe.
size_t skip_value(std::string_view s, size_t i) {
    if (i >= s.size()) return npos;
    if (s[i] == '"') return skip_string(s, i);
    if (s[i] != '{' && s[i] != '[') {
        while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !std::isspace(static_cast<unsigned char>(s[i])))
            ++i;
        return i;
    }
    size_t depth = 0;
    while (i < s.size()) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, i);
            if (i == npos) return npos;
            continue;
        }
        if (c == '{' || c == '[') ++depth;
        else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
        ++i;
    }
    return npos;
}

// The integer id of a response whose text could not be parsed, read from the top level of the
// object only: nothing is built and nothing recurses. The id may be anywhere among the top-level
// keys (the TypeScript SDK writes it last). nullopt unless the text starts as an object with an
// integer "id" and a "result" or "error".
std::optional<int64_t> unreadable_response_id(std::string_view s) {
    size_t i = skip_space(s, 0);
    if (i >= s.size() || s[i] != '{') return std::nullopt;
    std::optional<int64_t> id;
    bool answer = false;
    for (++i;;) {
        i = skip_space(s, i);
        if (i >= s.size() || s[i] != '"') break;
        size_t key_end = skip_string(s, i);
        if (key_end == npos) break;
        std::string_view key = s.substr(i + 1, key_end - i - 2);
        i = skip_space(s, key_end);
        if (i >= s.size() || s[i] != ':') break;
        i = skip_space(s, i + 1);
        size_t value_end = skip_value(s, i);
        if (value_end == npos) break;
        if (key == "id") {
            int64_t v = 0;
            auto [end, ec] = std::from_chars(s.data() + i, s.data() + value_end, v);
            if (ec == std::errc() && end == s.data() + value_end) id = v;
        } else if (key == "result" || key == "error") {
            answer = true;
        }
        i = skip_space(s, value_end);
        if (i >= s.size() || s[i] != ',') break;
        ++i;
    }
    if (id && answer) return id;
    return std::nullopt;
}

// ---- stderr for error messages -------------------------------------------------------------------

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Blank lines, lines without a letter or digit ("^", "}"), and npm's notices and warnings, which
// npx prints after the real error (a new npm version is available...).
bool stderr_noise(const std::string& line) {
    bool text = false;
    for (char c : line) text = text || std::isalnum(static_cast<unsigned char>(c));
    if (!text) return true;
    std::string l = lower(line.substr(line.find_first_not_of(" \t")));
    return l.rfind("npm notice", 0) == 0 || l.rfind("npm warn", 0) == 0;
}

bool stderr_explains(const std::string& line) {
    static const char* const kWords[] = {"error", "enoent", "eacces", "eaddrinuse", "cannot", "can't", "unable",
                                         "not found", "no such", "denied", "refused", "fatal", "exception",
                                         "panic", "failed", "missing", "invalid"};
    std::string l = lower(line);
    for (const char* w : kWords)
        if (l.find(w) != std::string::npos) return true;
    return false;
}

}  // namespace

std::string stderr_excerpt(const std::vector<std::string>& tail) {
    constexpr size_t kShown = 5;    // relevant lines shown: the first four and the last
    constexpr size_t kFallback = 3;  // lines shown when none looks like an error
    std::vector<std::string> relevant, plain;
    for (const auto& line : tail) {
        if (stderr_noise(line)) continue;
        plain.push_back(line);
        if (stderr_explains(line)) relevant.push_back(line);
    }
    std::vector<std::string> shown;
    if (relevant.size() > kShown) {
        shown.assign(relevant.begin(), relevant.begin() + kShown - 1);
        shown.push_back("...");
        shown.push_back(relevant.back());
    } else if (!relevant.empty()) {
        shown = relevant;
    } else {
        shown.assign(plain.end() - static_cast<std::ptrdiff_t>(std::min(plain.size(), kFallback)), plain.end());
    }
    if (shown.empty()) return {};
    std::string out = "; stderr: ";
    for (size_t i = 0; i < shown.size(); ++i) out += (i ? " | " : "") + shorten(shown[i], 300);
    return out;
}

struct Pending {
    std::condition_variable cv;
    bool done = false;       // a response arrived
    bool failed = false;     // the connection ended
    bool cancelled = false;  // the caller's token fired
    std::string rejected;    // the answer came but could not be read (too deep, say): why
    json response;
    std::deque<ProgressUpdate> progress;
};

struct McpClient::Impl {
    McpClientOptions options;
    Subprocess process;  // process-state operations are internally locked
    pid_t pid = -1;

    // The child's stdin: non-blocking, one writer at a time (`writing`). A writer waits for its
    // turn and then for room in the pipe with its own deadline and cancellation, so a call whose
    // request cannot be written (the server stopped reading) still ends when its caller gives
    // up. The fd is closed only when no writer is using it (else that writer closes it on its way
    // out), so no write can ever hit a recycled fd number.
    std::mutex write_mutex;
    std::condition_variable write_turn;  // `writing` cleared, or the fd closed
    int in_fd = -1;                      // GUARDED_BY(write_mutex)
    bool writing = false;                // GUARDED_BY(write_mutex)
    std::atomic<bool> close_in{false};   // close_stdin() came while a writer was in the pipe
    int wake_fd = -1;                    // eventfd: wakes a writer's poll (cancellation, close_stdin)

    enum class Write { Done, Closed, Cancelled, TimedOut };

    mutable std::mutex mutex;
    std::map<int64_t, std::shared_ptr<Pending>> pending;  // GUARDED_BY(mutex)
    int64_t next_id = 1;                                  // GUARDED_BY(mutex)
    bool closed = false;                                  // GUARDED_BY(mutex)
    bool closed_reported = false;                         // GUARDED_BY(mutex)
    std::string close_reason;                             // GUARDED_BY(mutex)
    std::deque<std::string> stderr_tail;                  // GUARDED_BY(mutex)
    std::string protocol_version;                         // GUARDED_BY(mutex)
    json server_info;                                     // GUARDED_BY(mutex)
    json capabilities;                                    // GUARDED_BY(mutex)
    int readers_running = 2;                              // GUARDED_BY(mutex)
    bool stderr_finished = false;                         // GUARDED_BY(mutex); notified by readers_done
    std::condition_variable readers_done;

    std::string prefix() const { return "server '" + options.name + "'"; }

    ~Impl() {
        if (wake_fd >= 0) ::close(wake_fd);
    }

    void wake() {
        if (wake_fd >= 0) ::eventfd_write(wake_fd, 1);
    }

    // Wakes this writer (waiting for its turn or in poll) when `cancel` fires.
    CancelRegistration watch(const CancellationToken& cancel) {
        return cancel.on_cancel([this] {
            {
                std::lock_guard lock(write_mutex);  // no lost wake-up between predicate and wait
            }
            write_turn.notify_all();
            wake();
        });
    }

    // Writes one message. Done; Closed when the pipe is closed or broken; Cancelled or TimedOut
    // when the caller gave up first. Nothing of the message was written when it waited only for
    // its turn; once part of a line is out, giving up leaves half a message in the stream, and a
    // pipe that stays full to the deadline means the child stopped reading: either way the
    // connection is ended (every waiting request fails; the manager restarts the server on the
    // next call), since whatever we wrote next would be glued to that half line.
    Write write(const json& message, clock::time_point deadline, const CancellationToken& cancel = {}) {
        std::string line = jsonrpc::serialize(message);
        line.push_back('\n');
        CancelRegistration registration;  // taken only when this writer has to wait
        bool watching = false;
        std::unique_lock lock(write_mutex);
        if (writing) {
            lock.unlock();
            registration = watch(cancel);
            watching = true;
            lock.lock();
            write_turn.wait_until(lock, deadline,
                                  [&] { return !writing || in_fd < 0 || close_in.load() || cancel.cancelled(); });
        }
        if (in_fd < 0 || close_in.load()) return Write::Closed;
        if (cancel.cancelled()) return Write::Cancelled;
        if (writing) return Write::TimedOut;  // still another writer's turn: nothing of ours was sent
        writing = true;
        const int fd = in_fd;
        lock.unlock();
        size_t written = 0;
        Write result = pump(fd, line, written, deadline, cancel, registration, watching);
        lock.lock();
        writing = false;
        bool broken = result == Write::TimedOut || (result == Write::Cancelled && written > 0);
        if (broken || result == Write::Closed || close_in.load()) {
            ::close(in_fd);
            in_fd = -1;
            close_in = false;
        }
        write_turn.notify_all();
        lock.unlock();
        if (broken) {
            mark_closed(prefix() + (result == Write::TimedOut
                                        ? " stopped reading its stdin (a message to it could not be written in time)"
                                        : " stopped reading its stdin: a request to it was cancelled half-written, so "
                                          "the connection was ended"));
            process.signal(SIGKILL);
        }
        return result;
    }

    // Writes line[written..] to `fd`, polling for room when the pipe is full, until it is all
    // out, the deadline passes, `cancel` fires or close_stdin() asks. SIGPIPE is blocked and
    // consumed in this thread, so a child that died never kills us whatever the disposition.
    Write pump(int fd, const std::string& line, size_t& written, clock::time_point deadline,
               const CancellationToken& cancel, CancelRegistration& registration, bool& watching) {
        SigpipeGuard guard;
        while (written < line.size()) {
            ssize_t n = ::write(fd, line.data() + written, line.size() - written);
            if (n > 0) {
                written += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno != EAGAIN) {
                if (errno == EPIPE) guard.raised();
                return Write::Closed;
            }
            if (!watching) {
                registration = watch(cancel);
                watching = true;
            }
            if (cancel.cancelled()) return Write::Cancelled;
            if (close_in.load()) return Write::Closed;
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
            if (left.count() <= 0) return Write::TimedOut;
            pollfd p[2] = {{fd, POLLOUT, 0}, {wake_fd, POLLIN, 0}};
            ::poll(p, 2, static_cast<int>(std::min<long>(left.count(), 1000)));
            eventfd_t drained;
            if (p[1].revents & POLLIN) ::eventfd_read(wake_fd, &drained);
        }
        return Write::Done;
    }

    // Throws the ClientError for request `id`, whose message write() did not get out whole.
    [[noreturn]] void fail_unsent(Write written, int64_t id, Pending& p, const std::string& method) {
        if (written == Write::Cancelled) {
            // Nothing was sent, or half a line and the connection is ended: no
            // notifications/cancelled either way.
            std::lock_guard lock(mutex);
            pending.erase(id);
            throw ClientError(ClientError::Kind::Cancelled, "cancelled");
        }
        std::string reason;
        bool ended;
        {
            std::unique_lock lock(mutex);
            // Usually the child just died: give the reader a moment to say how.
            if (written == Write::Closed) p.cv.wait_for(lock, std::chrono::milliseconds(300), [&] { return p.failed; });
            pending.erase(id);
            reason = close_reason;
            ended = closed;
        }
        if (written == Write::TimedOut && !ended)  // waited for another writer's turn: the connection is fine
            throw ClientError(ClientError::Kind::Timeout, prefix() + " did not answer '" + method + "' in time");
        throw ClientError(ClientError::Kind::Closed, reason.empty() ? prefix() + " closed its stdin" : reason);
    }

    void close_stdin() {
        std::lock_guard lock(write_mutex);
        if (writing) {
            close_in = true;  // the writer closes it when it leaves the pipe
            wake();
        } else if (in_fd >= 0) {
            ::close(in_fd);
            in_fd = -1;
        }
        write_turn.notify_all();
    }

    // Ends the connection: every waiting request fails with `reason`; on_closed runs once.
    void mark_closed(const std::string& reason) {
        bool report = false;
        {
            std::lock_guard lock(mutex);
            if (!closed) {
                closed = true;
                close_reason = reason;
                for (auto& [_, p] : pending) {
                    p->failed = true;
                    p->cv.notify_all();
                }
            }
            if (!closed_reported) {
                closed_reported = true;
                report = true;
            }
        }
        if (report && options.on_closed) {
            try {
                options.on_closed(close_reason_copy());
            } catch (const std::exception& e) {
                spdlog::error("[{}] on_closed failed: {}", options.name, e.what());
            }
        }
    }

    std::string close_reason_copy() const {
        std::lock_guard lock(mutex);
        return close_reason;
    }

    std::vector<std::string> stderr_lines() const {
        std::lock_guard lock(mutex);
        return {stderr_tail.begin(), stderr_tail.end()};
    }

    std::string stderr_hint() const { return stderr_excerpt(stderr_lines()); }

    void reader_finished() {
        std::lock_guard lock(mutex);
        --readers_running;
        readers_done.notify_all();
    }

    void handle_message(json&& message) {
        auto kind = jsonrpc::classify(message);
        switch (kind.kind) {
            case jsonrpc::Kind::Response: {
                const json& id = message["id"];
                if (!id.is_number_integer()) {
                    spdlog::debug("[{}] answer for an id we never sent: {}", options.name, id.dump());
                    return;
                }
                std::lock_guard lock(mutex);
                auto it = pending.find(id.get<int64_t>());
                if (it == pending.end()) {
                    // A request that timed out or was cancelled: its answer is dropped.
                    spdlog::debug("[{}] late answer for request {}", options.name, id.dump());
                    return;
                }
                it->second->response = std::move(message);  // moved: a deep answer is never copied here
                it->second->done = true;
                it->second->cv.notify_all();
                return;
            }
            case jsonrpc::Kind::Request: {
                const std::string method = message["method"];
                json answer;
                if (method == "ping") {
                    answer = jsonrpc::make_result(message["id"], json::object());
                } else {
                    spdlog::debug("[{}] refusing server request '{}'", options.name, method);
                    answer = jsonrpc::make_error(message["id"], jsonrpc::kMethodNotFound,
                                                 "Method not found: " + method);
                }
                write(answer, clock::now() + kReaderWriteTimeout);
                return;
            }
            case jsonrpc::Kind::Notification: {
                const std::string method = message["method"];
                const json params = message.value("params", json::object());
                if (method == "notifications/tools/list_changed") {
                    if (options.on_tools_changed) {
                        try {
                            options.on_tools_changed();
                        } catch (const std::exception& e) {
                            spdlog::error("[{}] on_tools_changed failed: {}", options.name, e.what());
                        }
                    }
                } else if (method == "notifications/progress") {
                    auto token = params.find("progressToken");
                    auto progress = params.find("progress");
                    if (token == params.end() || !token->is_number_integer() || progress == params.end() ||
                        !progress->is_number())
                        return;
                    ProgressUpdate update;
                    update.progress = progress->get<double>();
                    if (auto t = params.find("total"); t != params.end() && t->is_number()) update.total = t->get<double>();
                    if (auto m = params.find("message"); m != params.end() && m->is_string()) update.message = *m;
                    std::lock_guard lock(mutex);
                    auto it = pending.find(token->get<int64_t>());
                    if (it == pending.end()) return;
                    it->second->progress.push_back(std::move(update));
                    it->second->cv.notify_all();
                } else if (method == "notifications/message") {
                    spdlog::debug("[{}] log {}: {}", options.name, params.value("level", std::string("?")),
                                  shorten(params.value("data", json()).dump(), 1000));
                } else {
                    spdlog::debug("[{}] notification {}", options.name, method);
                }
                return;
            }
            case jsonrpc::Kind::Invalid:
                spdlog::warn("[{}] ignoring an invalid JSON-RPC message ({}): {}", options.name, kind.problem,
                             shorten(message.dump()));
                return;
        }
    }

    // A line that failed to parse but is the answer to a request we wait for (nested deeper than
    // max_depth, invalid UTF-8): that request fails at once with `why`, rather than waiting for
    // its time-out. The line was whole, so the stream is still in step. False when it is not an
    // answer we wait for.
    bool reject_answer(const std::string& line, const std::string& why) {
        auto id = unreadable_response_id(line);
        if (!id) return false;
        std::lock_guard lock(mutex);
        auto it = pending.find(*id);
        if (it == pending.end()) return false;
        spdlog::warn("[{}] the answer to request {} cannot be read ({}): {}", options.name, *id, why, shorten(line));
        it->second->rejected = prefix() + " sent an answer python-mcp cannot read: " + why;
        it->second->cv.notify_all();
        return true;
    }

    void read_stdout(int fd) {
        jsonrpc::LineReader reader(fd, options.max_line_bytes);
        std::string line;
        std::string reason;
        for (;;) {
            auto status = reader.next(line);
            if (status == jsonrpc::LineReader::Status::Line) {
                if (line.empty()) continue;
                json message;
                try {
                    message = jsonrpc::parse_message(line, jsonrpc::ParseLimits{options.max_depth});
                } catch (const std::exception& e) {
                    if (reject_answer(line, e.what())) continue;
                    // The reference clients skip such lines too (a stray print from the server).
                    spdlog::warn("[{}] ignoring a line on stdout that is not JSON-RPC ({}): {}", options.name,
                                 e.what(), shorten(line));
                    continue;
                }
                try {
                    if (message.is_array()) {
                        for (auto& m : message) handle_message(std::move(m));
                    } else {
                        handle_message(std::move(message));
                    }
                } catch (const std::exception& e) {
                    spdlog::warn("[{}] could not handle a message ({}): {}", options.name, e.what(), shorten(line));
                }
                continue;
            }
            if (status == jsonrpc::LineReader::Status::TooLong) {
                // Some answer is lost and we cannot tell which: the connection is unusable.
                std::string why = prefix() + " broke the protocol: it sent a message longer than " +
                                  std::to_string(options.max_line_bytes) + " bytes";
                spdlog::error("[{}] {}; stopping it", options.name, why);
                mark_closed(why);
                process.signal(SIGKILL);
                continue;  // drain until EOF
            }
            // EOF or a read error: the child is gone or closed stdout. Give it a moment to exit
            // so the message can say how it ended.
            auto st = process.wait_for(std::chrono::milliseconds(200));
            if (st) reason = prefix() + " exited (" + describe_wait_status(*st) + ")";
            else reason = prefix() + " closed its stdout";
            // And for its last stderr lines (what it died of) to be read, unless something it
            // started holds stderr open.
            std::unique_lock lock(mutex);
            readers_done.wait_for(lock, std::chrono::milliseconds(500), [&] { return stderr_finished; });
            break;
        }
        ::close(fd);
        mark_closed(reason + stderr_hint());
        reader_finished();
    }

    void read_stderr(int fd) {
        jsonrpc::LineReader reader(fd, options.max_stderr_line_bytes);
        std::string line;
        for (;;) {
            auto status = reader.next(line);
            if (status == jsonrpc::LineReader::Status::Line) {
                spdlog::info("[{}] {}", options.name, line);
                std::lock_guard lock(mutex);
                stderr_tail.push_back(line.size() > 1024 ? shorten(line, 1024) : line);
                while (stderr_tail.size() > options.stderr_tail_lines) stderr_tail.pop_front();
            } else if (status == jsonrpc::LineReader::Status::TooLong) {
                spdlog::info("[{}] (a stderr line longer than {} bytes was skipped)", options.name,
                             options.max_stderr_line_bytes);
            } else {
                break;
            }
        }
        ::close(fd);
        {
            std::lock_guard lock(mutex);
            stderr_finished = true;
        }
        reader_finished();
    }
};

McpClient::McpClient(Subprocess process, McpClientOptions options) : impl_(std::make_shared<Impl>()) {
    impl_->options = std::move(options);
    impl_->pid = process.pid();
    int in = process.take_stdin();
    int out = process.take_stdout();
    int err = process.take_stderr();
    impl_->process = std::move(process);
    if (in >= 0) ::fcntl(in, F_SETFL, ::fcntl(in, F_GETFL) | O_NONBLOCK);
    impl_->in_fd = in;
    impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (impl_->wake_fd < 0)  // then a writer notices cancellation within poll's 1 s slices
        spdlog::warn("[{}] eventfd failed: {}", impl_->options.name, std::strerror(errno));
    auto impl = impl_;
    reader_ = std::thread([impl, out] { impl->read_stdout(out); });
    stderr_reader_ = std::thread([impl, err] { impl->read_stderr(err); });
}

McpClient::~McpClient() {
    if (!close_status_) close(std::chrono::milliseconds(500));
}

pid_t McpClient::pid() const { return impl_->pid; }

bool McpClient::closed() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->closed;
}

std::string McpClient::close_reason() const { return impl_->close_reason_copy(); }

std::string McpClient::protocol_version() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->protocol_version;
}

json McpClient::server_info() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->server_info;
}

json McpClient::server_capabilities() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->capabilities;
}

std::vector<std::string> McpClient::recent_stderr() const { return impl_->stderr_lines(); }

bool McpClient::notify(const std::string& method, const json& params) {
    return impl_->write(jsonrpc::make_notification(method, params), clock::now() + kNotifyTimeout) == Impl::Write::Done;
}

json McpClient::request(const std::string& method, const json& params, clock::time_point deadline,
                        const CancellationToken& cancel, const std::function<void(const ProgressUpdate&)>& on_progress) {
    auto& impl = *impl_;
    const auto quiet_limit = deadline - clock::now();  // what each progress notification restarts
    auto p = std::make_shared<Pending>();
    int64_t id;
    {
        std::lock_guard lock(impl.mutex);
        if (impl.closed) throw ClientError(ClientError::Kind::Closed, impl.close_reason);
        id = impl.next_id++;
        impl.pending.emplace(id, p);
    }
    auto forget = [&] {
        std::lock_guard lock(impl.mutex);
        impl.pending.erase(id);
    };
    if (cancel.cancelled()) {
        forget();
        throw ClientError(ClientError::Kind::Cancelled, "cancelled");
    }
    json sent_params = params;
    if (on_progress) {
        if (!sent_params.is_object()) sent_params = json::object();
        sent_params["_meta"]["progressToken"] = id;
    }
    const auto written = impl.write(jsonrpc::make_request(id, method, std::move(sent_params)), deadline, cancel);
    if (written != Impl::Write::Done) impl.fail_unsent(written, id, *p, method);

    std::weak_ptr<Impl> weak = impl_;
    CancelRegistration registration = cancel.on_cancel([weak, p] {
        if (auto strong = weak.lock()) {
            std::lock_guard lock(strong->mutex);
            p->cancelled = true;
            p->cv.notify_all();
        }
    });

    enum class Outcome { Done, Rejected, Failed, Cancelled, Timeout } outcome;
    json response;
    {
        std::unique_lock lock(impl.mutex);
        for (;;) {
            bool woke = p->cv.wait_until(lock, deadline, [&] {
                return p->done || !p->rejected.empty() || p->failed || p->cancelled || !p->progress.empty();
            });
            if (!p->progress.empty()) {
                auto updates = std::move(p->progress);
                p->progress.clear();
                lock.unlock();
                if (on_progress) deadline = std::max(deadline, clock::now() + quiet_limit);
                for (const auto& u : updates) {
                    if (!on_progress) break;  // a server using a token we never gave it
                    try {
                        on_progress(u);
                    } catch (const std::exception& e) {
                        spdlog::warn("[{}] progress callback failed: {}", impl.options.name, e.what());
                    }
                }
                lock.lock();
                continue;
            }
            if (p->done) outcome = Outcome::Done;
            else if (!p->rejected.empty()) outcome = Outcome::Rejected;
            else if (p->failed) outcome = Outcome::Failed;
            else if (p->cancelled) outcome = Outcome::Cancelled;
            else if (!woke) outcome = Outcome::Timeout;
            else continue;
            break;
        }
        impl.pending.erase(id);
        response = std::move(p->response);
    }
    registration.reset();  // no lock held: the callback takes impl.mutex

    switch (outcome) {
        case Outcome::Done:
            break;
        case Outcome::Rejected:
            throw ClientError(ClientError::Kind::Protocol, p->rejected);
        case Outcome::Failed:
            throw ClientError(ClientError::Kind::Closed, impl.close_reason_copy());
        case Outcome::Cancelled: {
            std::string reason = cancel.reason();
            notify("notifications/cancelled",
                   json{{"requestId", id}, {"reason", reason.empty() ? "cancelled" : reason}});
            throw ClientError(ClientError::Kind::Cancelled, "cancelled");
        }
        case Outcome::Timeout:
            notify("notifications/cancelled", json{{"requestId", id}, {"reason", "timed out"}});
            throw ClientError(ClientError::Kind::Timeout, impl.prefix() + " did not answer '" + method + "' in time");
    }
    if (auto error = response.find("error"); error != response.end()) {
        int code = 0;
        std::string message = "(no message)";
        json data;
        if (error->is_object()) {
            if (auto c = error->find("code"); c != error->end() && c->is_number_integer()) code = c->get<int>();
            if (auto m = error->find("message"); m != error->end() && m->is_string()) message = m->get<std::string>();
            if (auto d = error->find("data"); d != error->end()) data = *d;
        }
        throw ClientError(ClientError::Kind::Rpc, message, code, std::move(data));
    }
    return std::move(response["result"]);
}

json McpClient::initialize(const json& client_info, clock::time_point deadline, const CancellationToken& cancel) {
    json params{{"protocolVersion", kSupportedProtocolVersions.front()},
                {"capabilities", json::object()},
                {"clientInfo", client_info}};
    json result = request("initialize", params, deadline, cancel);
    if (!result.is_object())
        throw ClientError(ClientError::Kind::Protocol, impl_->prefix() + " answered initialize with a non-object");
    auto version = result.find("protocolVersion");
    std::string v = version != result.end() && version->is_string() ? version->get<std::string>() : "";
    bool known = false;
    for (const auto& s : kSupportedProtocolVersions) known = known || s == v;
    if (!known) {
        std::string supported;
        for (const auto& s : kSupportedProtocolVersions) supported += (supported.empty() ? "" : ", ") + s;
        throw ClientError(ClientError::Kind::Protocol,
                          impl_->prefix() + " wants MCP protocol version '" + (version != result.end() ? version->dump() : "") +
                              "', which python-mcp does not speak (it speaks " + supported + ")");
    }
    {
        std::lock_guard lock(impl_->mutex);
        impl_->protocol_version = v;
        impl_->server_info = result.value("serverInfo", json());
        impl_->capabilities = result.value("capabilities", json::object());
    }
    if (!notify("notifications/initialized"))
        throw ClientError(ClientError::Kind::Closed, impl_->close_reason_copy());
    return result;
}

std::vector<json> McpClient::list_tools(clock::time_point deadline, const CancellationToken& cancel) {
    std::vector<json> tools;
    std::set<std::string> cursors_seen;
    json cursor;
    for (int page = 0; page < 10000; ++page) {
        json params = json::object();
        if (!cursor.is_null()) params["cursor"] = cursor;
        json result = request("tools/list", params, deadline, cancel);
        if (!result.is_object() || !result.contains("tools") || !result["tools"].is_array())
            throw ClientError(ClientError::Kind::Protocol, impl_->prefix() + " sent a tools/list result without a tools array");
        for (auto& t : result["tools"]) tools.push_back(std::move(t));
        auto next = result.find("nextCursor");
        if (next == result.end() || next->is_null()) return tools;
        if (!next->is_string())
            throw ClientError(ClientError::Kind::Protocol, impl_->prefix() + " sent a nextCursor that is not a string");
        if (!cursors_seen.insert(next->get<std::string>()).second)
            throw ClientError(ClientError::Kind::Protocol, impl_->prefix() + " repeated a tools/list cursor (a loop)");
        cursor = *next;
    }
    throw ClientError(ClientError::Kind::Protocol, impl_->prefix() + " sent more than 10000 pages of tools");
}

json McpClient::call_tool(const std::string& tool, const json& arguments, std::chrono::milliseconds timeout,
                          const CancellationToken& cancel, const std::function<void(const ProgressUpdate&)>& on_progress) {
    json params{{"name", tool}, {"arguments", arguments.is_null() ? json::object() : arguments}};
    json result;
    try {
        result = request("tools/call", params, clock::now() + timeout, cancel, on_progress);
    } catch (const ClientError& e) {
        if (e.kind() == ClientError::Kind::Timeout)
            throw ClientError(ClientError::Kind::Timeout, impl_->prefix() + " did not answer within " + seconds_text(timeout));
        throw;
    }
    if (!result.is_object())
        throw ClientError(ClientError::Kind::Protocol, impl_->prefix() + " sent a tools/call result that is not an object");
    return result;
}

void McpClient::kill(const std::string& reason) {
    impl_->mark_closed(reason);
    impl_->close_stdin();
    impl_->process.signal(SIGKILL);
}

int McpClient::close(std::chrono::milliseconds grace, const std::string& reason) {
    if (close_status_) return *close_status_;
    impl_->mark_closed(reason);
    impl_->close_stdin();
    int status = impl_->process.terminate(grace);
    close_status_ = status;
    // The readers end when every holder of the pipes' write ends is gone. Something the child
    // started outside its process group could keep them open: do not hang on it.
    bool done;
    {
        std::unique_lock lock(impl_->mutex);
        done = impl_->readers_done.wait_for(lock, std::chrono::seconds(2), [&] { return impl_->readers_running == 0; });
    }
    if (done) {
        reader_.join();
        stderr_reader_.join();
    } else {
        spdlog::warn("[{}] something the server started still holds its pipes; leaving the readers behind",
                     impl_->options.name);
        reader_.detach();
        stderr_reader_.detach();
    }
    return status;
}

}  // namespace pymcp::client
