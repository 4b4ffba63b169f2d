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

#include <map>
#include <mutex>
#include <thread>

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

// The ExecutionHost of one execution in the worker: every call goes to the server over the pipe,
// tagged with the execution's number. Thread-safe (the Peer is).
class ForwardingHost final : public engine::ExecutionHost {
public:
    ForwardingHost(jsonrpc::Peer& peer, long long x) : peer_(peer), x_(x) {}

    void output(engine::OutputStream stream, std::string_view text) override {
        peer_.notify(method::kOutput, json{{"s", stream == engine::OutputStream::Stdout ? 0 : 1},
                                            {"t", std::string(text)}, {"x", x_}});
    }
    void progress(double done, std::optional<double> total, const std::string& message) override {
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
        try {
            return peer_.call(method, std::move(params), options);
        } catch (const CallError& e) {
            if (e.kind() == CallError::Kind::Rpc) throw engine::HostError(e.what());
            throw engine::HostError(std::string("the call did not complete: ") + e.what());
        }
    }

    jsonrpc::Peer& peer_;
    const long long x_;
};

// The worker's method table and its executions' cancellation sources.
// Lock order: mutex_ is a leaf.
class WorkerServer {
public:
    WorkerServer(const ProtocolFds& fds, python::SessionEngine& engine, WorkerServeOptions options)
        : transport_(fds.in, fds.out, kMaxMessageBytes), peer_(transport_, jsonrpc::PeerOptions{"worker", {}, {}, {}, {}}),
          engine_(engine), options_(options) {
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
        auto host = std::make_shared<ForwardingHost>(peer_, x);
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
        size_t variables = 0;
        for (const auto& s : engine_.list_sessions())
            if (s.id == session && s.persistent) variables = s.variables;
        peer_.notify(method::kDone, json{{"outcome", to_json(outcome)}, {"variables", variables}, {"x", x}});
    }

    jsonrpc::StdioTransport transport_;
    jsonrpc::Peer peer_;
    python::SessionEngine& engine_;
    const WorkerServeOptions options_;
    std::mutex mutex_;
    std::map<long long, CancellationSource> cancels_;  // GUARDED_BY(mutex_)
};

}  // namespace

void serve_worker(const ProtocolFds& fds, python::SessionEngine& engine, WorkerServeOptions options) {
    auto* server = new WorkerServer(fds, engine, options);  // lives until _exit
    server->run();
}

}  // namespace pymcp::worker
