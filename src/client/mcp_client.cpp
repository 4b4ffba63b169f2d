#include "python_mcp/client/mcp_client.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <mutex>
#include <set>
#include <utility>

#include "python_mcp/jsonrpc/line_reader.hpp"
#include "python_mcp/jsonrpc/peer.hpp"
#include "python_mcp/jsonrpc/stdio_transport.hpp"
#include "python_mcp/mcp/protocol_versions.hpp"
#include "python_mcp/support/time_format.hpp"

namespace pymcp::client {

namespace {

using clock = std::chrono::steady_clock;

// How long a write with no caller behind it (an answer to the server's ping, a notification)
// may wait for room in the child's stdin before the child counts as no longer reading.
constexpr auto kSendTimeout = std::chrono::seconds(10);

std::string shorten(const std::string& text, size_t max = 200) {
    if (text.size() <= max) return text;
    return text.substr(0, max) + "... (" + std::to_string(text.size()) + " bytes)";
}

// A notifications/progress params object as the caller's callback takes it; nullopt when it has
// no numeric progress.
std::optional<ProgressUpdate> progress_update(const json& params) {
    auto progress = params.find("progress");
    if (progress == params.end() || !progress->is_number()) return std::nullopt;
    ProgressUpdate update;
    update.progress = progress->get<double>();
    if (auto t = params.find("total"); t != params.end() && t->is_number()) update.total = t->get<double>();
    if (auto m = params.find("message"); m != params.end() && m->is_string()) update.message = *m;
    return update;
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

struct McpClient::Impl final : jsonrpc::MessageHandler {
    McpClientOptions options;
    Subprocess process;  // process-state operations are internally locked
    pid_t pid = -1;
    // The transport's output; closed by close_stdin() once the transport is closed, so no write
    // can hit a recycled fd number.
    int in_fd = -1;  // GUARDED_BY(mutex)
    std::unique_ptr<jsonrpc::StdioTransport> transport;
    std::unique_ptr<jsonrpc::Peer> peer;  // destroyed before the transport it uses

    mutable std::mutex mutex;
    mutable std::condition_variable changed;  // closed, stderr_finished, readers_running
    bool closed = false;                  // GUARDED_BY(mutex)
    std::string close_reason;             // GUARDED_BY(mutex)
    std::deque<std::string> stderr_tail;  // GUARDED_BY(mutex)
    std::string protocol_version;         // GUARDED_BY(mutex)
    json server_info;                     // GUARDED_BY(mutex)
    json capabilities;                    // GUARDED_BY(mutex)
    int readers_running = 2;              // GUARDED_BY(mutex)
    bool stderr_finished = false;         // GUARDED_BY(mutex)
    // The server's requests being handled (on_server_request), shared with their threads.
    std::shared_ptr<std::atomic<int>> server_requests = std::make_shared<std::atomic<int>>(0);

    std::string prefix() const { return "server '" + options.name + "'"; }

    // The transport and the Peer over the child's pipes (stdout_fd is read by the reader thread).
    void connect(int stdout_fd) {
        // Our own pipe: writes put in what fits and poll for room on EAGAIN.
        if (in_fd >= 0) ::fcntl(in_fd, F_SETFL, ::fcntl(in_fd, F_GETFL) | O_NONBLOCK);
        jsonrpc::StdioOptions stdio;
        stdio.send_timeout = kSendTimeout;
        stdio.block_sigpipe = true;  // a child that died must not kill a process that keeps SIGPIPE
        stdio.on_stall = [this](jsonrpc::SendStatus why, bool partial) { stalled(why, partial); };
        transport = std::make_unique<jsonrpc::StdioTransport>(stdout_fd, in_fd, options.max_line_bytes, std::move(stdio));

        jsonrpc::PeerOptions po;
        po.name = "[" + options.name + "]";
        po.parse_limits.max_depth = options.max_depth;
        po.batch_policy = [] { return std::optional<std::string>(); };  // whatever the server sends is read
        po.on_malformed = [name = options.name](const std::string& problem, std::string_view excerpt) {
            spdlog::warn("[{}] ignoring a line on stdout that is not JSON-RPC ({}): {}", name, problem, excerpt);
        };
        peer = std::make_unique<jsonrpc::Peer>(*transport, std::move(po));
        answer_server_requests();
        peer->on_notification("notifications/tools/list_changed", [this](const json&) {
            if (options.on_tools_changed) options.on_tools_changed();
        });
        peer->on_notification("notifications/message", [name = options.name](const json& params) {
            spdlog::debug("[{}] log {}: {}", name, params.value("level", std::string("?")),
                          shorten(params.value("data", json()).dump(), 1000));
        });
    }

    // The server's own requests: ping is answered here; elicitation/create,
    // sampling/createMessage and roots/list go to on_server_request (forwarded to our own client
    // by the downstream manager); anything else gets -32601 ("Method not found") from the Peer.
    void answer_server_requests() {
        peer->on_request("ping", [](const json&, jsonrpc::Responder reply) { reply.result(json::object()); });
        if (!options.on_server_request) return;
        for (const char* method : {"elicitation/create", "sampling/createMessage", "roots/list"})
            peer->on_request(method, [this, m = std::string(method)](const json& params, jsonrpc::Responder reply) {
                start_server_request(m, params, std::move(reply));
            });
    }

    // Reader thread: the handler may wait minutes for a person, so it runs on a thread of its own
    // (bounded by kMaxServerRequests), which answers through the Responder.
    void start_server_request(const std::string& method, const json& params, jsonrpc::Responder reply) {
        if (server_requests->fetch_add(1) >= McpClientOptions::kMaxServerRequests) {
            server_requests->fetch_sub(1);
            reply.error(jsonrpc::kInternalError, "python-mcp is already forwarding " +
                                                     std::to_string(McpClientOptions::kMaxServerRequests) +
                                                     " requests of this server; try again later");
            return;
        }
        auto run = [handler = options.on_server_request, method, params, reply, count = server_requests] {
            try {
                reply.result(handler(method, params, reply.cancellation()));
            } catch (const ServerRequestError& e) {
                reply.error(e.code(), e.what());
            } catch (const std::exception& e) {
                reply.error(jsonrpc::kInternalError, e.what());
            }
            count->fetch_sub(1);
        };
        try {
            std::thread(std::move(run)).detach();
        } catch (const std::system_error& e) {
            server_requests->fetch_sub(1);
            reply.error(jsonrpc::kInternalError, std::string("python-mcp cannot start a thread for it: ") + e.what());
        }
    }

    // MessageHandler: the transport's reader thread.
    void on_text(std::string_view text, jsonrpc::StreamId stream) override { peer->on_text(text, stream); }
    void on_oversized(std::string_view, size_t limit, jsonrpc::StreamId) override {
        // Some answer is lost and we cannot tell which: the connection is unusable.
        std::string why = prefix() + " broke the protocol: it sent a message longer than " + std::to_string(limit) +
                          " bytes";
        spdlog::error("[{}] {}; stopping it", options.name, why);
        end_connection(why);
    }

    // A write gave up in the pipe (the transport's stall callback, on the writing thread). Half a
    // line in the stream, or a pipe that stayed full to the deadline (the child stopped
    // reading), ends the connection; a request cancelled before any of it went out just fails.
    void stalled(jsonrpc::SendStatus why, bool partial) {
        if (why == jsonrpc::SendStatus::TimedOut)
            end_connection(prefix() + " stopped reading its stdin (a message to it could not be written in time)");
        else if (partial)
            end_connection(prefix() + " stopped reading its stdin: a request to it was cancelled half-written, so the "
                                      "connection was ended");
    }

    void end_connection(const std::string& reason) {
        mark_closed(reason);
        process.signal(SIGKILL);
    }

    // Ends the connection: every waiting request fails with the first reason given, later writes
    // are refused; on_closed runs once.
    void mark_closed(const std::string& reason) {
        {
            std::lock_guard lock(mutex);
            if (closed) return;
            closed = true;
            close_reason = reason;
        }
        changed.notify_all();
        peer->close(reason);
        transport->close();  // a write stuck in the pipe gives up within a poll slice
        if (!options.on_closed) return;
        try {
            options.on_closed(reason);
        } catch (const std::exception& e) {
            spdlog::error("[{}] on_closed failed: {}", options.name, e.what());
        }
    }

    void close_stdin() {
        transport->close();  // no write is in the fd after this, and none comes later
        int fd;
        {
            std::lock_guard lock(mutex);
            fd = std::exchange(in_fd, -1);
        }
        if (fd >= 0) ::close(fd);
    }

    bool is_closed() const {
        std::lock_guard lock(mutex);
        return closed;
    }

    std::string close_reason_copy() const {
        std::lock_guard lock(mutex);
        return close_reason;
    }

    // The reason of a connection found closed by a write. Usually the child just died and the
    // reader is about to say how, or another write was cut and its writer is ending the
    // connection: wait a moment for that.
    std::string reason_after_close() const {
        std::unique_lock lock(mutex);
        changed.wait_for(lock, std::chrono::milliseconds(300), [&] { return closed; });
        return closed ? close_reason : prefix() + " closed its stdin";
    }

    std::vector<std::string> stderr_lines() const {
        std::lock_guard lock(mutex);
        return {stderr_tail.begin(), stderr_tail.end()};
    }

    std::string stderr_hint() const { return stderr_excerpt(stderr_lines()); }

    // The ClientError for a call the Peer could not complete.
    ClientError client_error(const jsonrpc::CallError& e, const std::string& method) const {
        switch (e.kind()) {
            case jsonrpc::CallError::Kind::Rpc:
                return ClientError(ClientError::Kind::Rpc, e.what(), e.code(), e.data());
            case jsonrpc::CallError::Kind::Unreadable:
                return ClientError(ClientError::Kind::Protocol, prefix() + " sent an answer python-mcp cannot read: " + e.what());
            case jsonrpc::CallError::Kind::Cancelled:
                return ClientError(ClientError::Kind::Cancelled, "cancelled");
            case jsonrpc::CallError::Kind::Timeout:
                // A request that could not be written in time ended the connection (stalled()).
                if (is_closed()) return ClientError(ClientError::Kind::Closed, close_reason_copy());
                return ClientError(ClientError::Kind::Timeout, prefix() + " did not answer '" + method + "' in time");
            case jsonrpc::CallError::Kind::Closed:
                break;
        }
        return ClientError(ClientError::Kind::Closed, reason_after_close());
    }

    json call(const std::string& method, json params, clock::time_point deadline, const CancellationToken& cancel,
              const std::function<void(const ProgressUpdate&)>& on_progress) {
        {
            std::lock_guard lock(mutex);
            if (closed) throw ClientError(ClientError::Kind::Closed, close_reason);
        }
        jsonrpc::CallOptions call;
        call.timeout = std::max(std::chrono::milliseconds(0),
                                std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()));
        call.cancel = cancel;
        call.cancel_reason = "timed out";
        if (on_progress) {
            call.on_progress = [&on_progress](const json& params) {
                if (auto update = progress_update(params)) on_progress(*update);
            };
        }
        try {
            return peer->call(method, std::move(params), call);
        } catch (const jsonrpc::CallError& e) {
            throw client_error(e, method);
        }
    }

    void reader_finished() {
        {
            std::lock_guard lock(mutex);
            --readers_running;
        }
        changed.notify_all();
    }

    void read_stdout(int fd) {
        transport->run(*this);
        std::string reason;
        if (!is_closed()) {
            // EOF or a read error: the child is gone or closed stdout. Give it a moment to exit
            // so the message can say how it ended, and its last stderr lines (what it died of)
            // to be read, unless something it started holds stderr open.
            auto st = process.wait_for(std::chrono::milliseconds(200));
            reason = st ? prefix() + " exited (" + describe_wait_status(*st) + ")" : prefix() + " closed its stdout";
            std::unique_lock lock(mutex);
            changed.wait_for(lock, std::chrono::milliseconds(500), [&] { return stderr_finished; });
        }
        ::close(fd);
        if (!reason.empty()) mark_closed(reason + stderr_hint());
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
        changed.notify_all();
        reader_finished();
    }
};

McpClient::McpClient(Subprocess process, McpClientOptions options) : impl_(std::make_shared<Impl>()) {
    impl_->options = std::move(options);
    impl_->pid = process.pid();
    impl_->in_fd = process.take_stdin();
    int out = process.take_stdout();
    int err = process.take_stderr();
    impl_->process = std::move(process);
    impl_->connect(out);
    auto impl = impl_;
    reader_ = std::thread([impl, out] { impl->read_stdout(out); });
    stderr_reader_ = std::thread([impl, err] { impl->read_stderr(err); });
}

McpClient::~McpClient() {
    if (!close_status_) close(std::chrono::milliseconds(500));
}

pid_t McpClient::pid() const { return impl_->pid; }

bool McpClient::closed() const { return impl_->is_closed(); }

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

bool McpClient::notify(const std::string& method, const json& params) { return impl_->peer->notify(method, params); }

json McpClient::request(const std::string& method, const json& params, clock::time_point deadline,
                        const CancellationToken& cancel, const std::function<void(const ProgressUpdate&)>& on_progress) {
    return impl_->call(method, params, deadline, cancel, on_progress);
}

json McpClient::initialize(const json& client_info, clock::time_point deadline, const CancellationToken& cancel) {
    json params{{"protocolVersion", std::string(mcp::kLegacyProtocolVersions.front())},
                {"capabilities", impl_->options.capabilities},
                {"clientInfo", client_info}};
    json result = impl_->call("initialize", std::move(params), deadline, cancel, {});
    if (!result.is_object())
        throw ClientError(ClientError::Kind::Protocol, impl_->prefix() + " answered initialize with a non-object");
    auto version = result.find("protocolVersion");
    std::string v = version != result.end() && version->is_string() ? version->get<std::string>() : "";
    if (!mcp::is_legacy_protocol_version(v)) {
        std::string supported;
        for (auto s : mcp::kLegacyProtocolVersions) supported += (supported.empty() ? "" : ", ") + std::string(s);
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
        throw ClientError(ClientError::Kind::Closed, impl_->reason_after_close());
    return result;
}

std::vector<json> McpClient::list_tools(clock::time_point deadline, const CancellationToken& cancel) {
    std::vector<json> tools;
    std::set<std::string> cursors_seen;
    json cursor;
    for (int page = 0; page < 10000; ++page) {
        json params = json::object();
        if (!cursor.is_null()) params["cursor"] = cursor;
        json result = impl_->call("tools/list", std::move(params), deadline, cancel, {});
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
        result = impl_->call("tools/call", std::move(params), clock::now() + timeout, cancel, on_progress);
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
        done = impl_->changed.wait_for(lock, std::chrono::seconds(2), [&] { return impl_->readers_running == 0; });
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
