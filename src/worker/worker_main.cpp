// The worker process's server: one Peer over the worker's private copies of stdin/stdout, the
// session's SessionEngine behind it, and a host per execution that forwards everything the code
// asks of the outside to the server, which serves it with the call's real host.
//
// Threads: the reading thread (the transport's run(); handlers only submit and post), the
// engine's threads (completions, host calls from running code), and a short-lived watcher per
// execution answered while its code still ran. Everything here lives until _exit.

#include "python_mcp/worker/worker_main.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "python_mcp/jsonrpc/peer.hpp"
#include "python_mcp/jsonrpc/stdio_transport.hpp"
#include "python_mcp/worker/wire.hpp"

namespace pymcp::worker {

using jsonrpc::CallError;
using pymcp::json;

namespace {

constexpr size_t kMaxMessageBytes = size_t{1} << 30;
// Host calls wait as long as the tool takes: the execution's own cancellation ends them.
constexpr std::chrono::milliseconds kNoTimeout = std::chrono::hours(24 * 400);

// Output to the server, batched: a write after a quiet moment (1 ms) goes out at once (so what
// code printed just before it crashed still reaches the server), writes in a burst are merged and
// sent by the flusher thread 2 ms later, or at once past 64 KiB. A notification per print cost
// ~12 us each way, eight times the in-process cost of a print loop.
// Threads: write() from any thread; the flusher thread; flush() from any thread.
// Lock order: send_mutex_ (held while sending, so batches leave in order) -> mutex_ (a leaf).
class OutputBatcher {
public:
    explicit OutputBatcher(jsonrpc::Peer& peer) : peer_(peer), thread_([this] { loop(); }) { thread_.detach(); }

    void write(long long x, int stream, std::string_view text) {
        std::unique_lock lock(mutex_);
        if (!pending_.empty() && pending_.back().x == x && pending_.back().stream == stream)
            pending_.back().text.append(text);
        else
            pending_.push_back(Segment{x, stream, std::string(text)});
        bytes_ += text.size();
        bool quiet = Clock::now() - last_send_ > kQuiet;
        if (quiet || bytes_ >= kMaxBatch) {
            lock.unlock();
            flush();
            return;
        }
        if (!scheduled_) {
            scheduled_ = true;
            wake_.notify_one();
        }
    }

    // Sends everything pending (before an execution's answer, progress or host call).
    void flush() {
        std::lock_guard send(send_mutex_);
        std::vector<Segment> taken;
        {
            std::lock_guard lock(mutex_);
            taken.swap(pending_);
            bytes_ = 0;
            last_send_ = Clock::now();
        }
        for (auto& s : taken) peer_.notify(method::kOutput, json{{"s", s.stream}, {"t", std::move(s.text)}, {"x", s.x}});
    }

private:
    using Clock = std::chrono::steady_clock;
    struct Segment {
        long long x;
        int stream;
        std::string text;
    };
    static constexpr std::chrono::milliseconds kQuiet{1};
    static constexpr std::chrono::milliseconds kDelay{2};
    static constexpr size_t kMaxBatch = 64 * 1024;

    void loop() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return scheduled_; });
            lock.unlock();
            std::this_thread::sleep_for(kDelay);  // the batching window itself, not a synchronisation
            lock.lock();
            scheduled_ = false;
            lock.unlock();
            flush();
            lock.lock();
        }
    }

    jsonrpc::Peer& peer_;
    std::mutex send_mutex_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<Segment> pending_;   // GUARDED_BY(mutex_)
    size_t bytes_ = 0;               // GUARDED_BY(mutex_)
    bool scheduled_ = false;         // GUARDED_BY(mutex_)
    Clock::time_point last_send_{};  // GUARDED_BY(mutex_)
    std::thread thread_;
};

// The ExecutionHost of one execution in the worker: every call goes to the server over the pipe,
// tagged with the execution's number. Thread-safe (the Peer is).
class ForwardingHost final : public engine::ExecutionHost {
public:
    ForwardingHost(jsonrpc::Peer& peer, OutputBatcher& output, long long x) : peer_(peer), output_(output), x_(x) {}

    void output(engine::OutputStream stream, std::string_view text) override {
        output_.write(x_, stream == engine::OutputStream::Stdout ? 0 : 1, text);
    }
    void progress(double done, std::optional<double> total, const std::string& message) override {
        output_.flush();  // live output and progress share one increasing value: keep their order
        json p{{"done", done}, {"message", message}, {"x", x_}};
        if (total) p["total"] = *total;
        peer_.notify(method::kProgress, std::move(p));
    }
    json call_tool(const std::string& name, json arguments, const std::string& session,
                   const CancellationToken& cancel) override {
        return forward(method::kCallTool,
                       json{{"arguments", std::move(arguments)}, {"name", name}, {"session", session}, {"x", x_}}, cancel);
    }
    json list_tools() override { return forward(method::kListTools, json{{"x", x_}}, {}); }
    std::string wait_for_server(const std::string& server, const CancellationToken& cancel) override {
        return forward(method::kWaitForServer, json{{"server", server}, {"x", x_}}, cancel).get<std::string>();
    }
    json ask_client(const std::string& method, json params, const CancellationToken& cancel) override {
        return forward(method::kAskClient, json{{"method", method}, {"params", std::move(params)}, {"x", x_}}, cancel);
    }

private:
    // The server's answer; a refusal or a broken pipe is a HostError, as in the server.
    json forward(const char* method, json params, const CancellationToken& cancel) {
        jsonrpc::CallOptions options;
        options.timeout = kNoTimeout;
        options.cancel = cancel;
        options.cancel_reason = "the execution was interrupted";
        output_.flush();
        try {
            return peer_.call(method, std::move(params), options);
        } catch (const CallError& e) {
            if (e.kind() == CallError::Kind::Rpc) throw engine::HostError(e.what());
            throw engine::HostError(std::string("the call did not complete: ") + e.what());
        }
    }

    jsonrpc::Peer& peer_;
    OutputBatcher& output_;
    const long long x_;
};

// The worker's method table and its executions' cancellation sources.
// Lock order: mutex_ is a leaf.
class WorkerServer {
public:
    WorkerServer(const ProtocolFds& fds, python::SessionEngine& engine, WorkerServeOptions options)
        : transport_(fds.in, fds.out, kMaxMessageBytes), peer_(transport_, jsonrpc::PeerOptions{"worker", {}, {}, {}, {}}),
          engine_(engine), options_(options), output_(peer_) {
        peer_.on_notification(method::kExecute, [this](const json& p) { execute(p); });
        peer_.on_notification(method::kCancel, [this](const json& p) { cancel(p); });
        peer_.on_request(method::kReadOutput, [this](const json& p, jsonrpc::Responder reply) {
            auto taken = engine_.read_output(p.at("session").get<std::string>());
            reply.result(taken ? to_json(*taken) : json(nullptr));
        });
    }

    void run() {
        std::thread([this] {
            peer_.notify(method::kReady, json{{"pid", ::getpid()}});
            transport_.run(peer_);
            // The server is gone or ended us: nothing here may outlive it, running code included.
            ::_exit(0);
        }).detach();
    }

private:
    void execute(const json& p) {
        long long x = p.at("x").get<long long>();
        engine::ExecRequest request = request_from_json(p.at("request"));
        CancellationSource source;
        request.cancel = source.token();
        {
            std::lock_guard lock(mutex_);
            cancels_.emplace(x, source);
        }
        auto host = std::make_shared<ForwardingHost>(peer_, output_, x);
        std::string session = request.session_id;
        try {
            engine_.submit(request, host, [this, x, session](engine::ExecOutcome outcome) {
                finished(x, session, std::move(outcome));
            });
        } catch (const std::exception& e) {
            forget(x);
            peer_.notify(method::kDone, json{{"refused", e.what()}, {"x", x}});
        }
    }

    void cancel(const json& p) {
        long long x = p.at("x").get<long long>();
        std::optional<CancellationSource> source;
        {
            std::lock_guard lock(mutex_);
            if (auto it = cancels_.find(x); it != cancels_.end()) source = it->second;
        }
        if (source) source->cancel("the execution was cancelled");
    }

    void forget(long long x) {
        std::lock_guard lock(mutex_);
        cancels_.erase(x);
    }

    // The engine answered. Code still running (a time-out or cancel it ignored) gets the rest of
    // the grace to stop; the server kills the worker when it did not.
    void finished(long long x, const std::string& session, engine::ExecOutcome outcome) {
        forget(x);
        if (!outcome.still_running) {
            send_done(x, session, std::move(outcome));
            return;
        }
        std::thread([this, x, session, outcome = std::move(outcome)]() mutable {
            auto deadline = std::chrono::steady_clock::now() + options_.kill_grace;
            while (engine_.unfinished_jobs() > 0 && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            outcome.still_running = engine_.unfinished_jobs() > 0;
            send_done(x, session, std::move(outcome));
        }).detach();
    }

    void send_done(long long x, const std::string& session, const engine::ExecOutcome& outcome) {
        output_.flush();  // the execution's output before its answer (the server unbinds it then)
        size_t variables = 0;
        for (const auto& s : engine_.list_sessions())
            if (s.id == session && s.persistent) variables = s.variables;
        peer_.notify(method::kDone, json{{"outcome", to_json(outcome)}, {"variables", variables}, {"x", x}});
    }

    jsonrpc::StdioTransport transport_;
    jsonrpc::Peer peer_;
    python::SessionEngine& engine_;
    const WorkerServeOptions options_;
    OutputBatcher output_;
    std::mutex mutex_;
    std::map<long long, CancellationSource> cancels_;  // GUARDED_BY(mutex_)
};

}  // namespace

void serve_worker(const ProtocolFds& fds, python::SessionEngine& engine, WorkerServeOptions options) {
    auto* server = new WorkerServer(fds, engine, options);  // lives until _exit
    server->run();
}

}  // namespace pymcp::worker
