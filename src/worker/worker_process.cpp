#include "python_mcp/worker/worker_process.hpp"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <thread>

#include "python_mcp/worker/wire.hpp"

namespace pymcp::worker {

using pymcp::json;

namespace {

constexpr size_t kMaxMessageBytes = size_t{1} << 30;

jsonrpc::PeerOptions peer_options(pid_t pid) {
    jsonrpc::PeerOptions options;
    options.name = "worker " + std::to_string(pid);
    return options;
}

jsonrpc::StdioOptions stdio_options() {
    jsonrpc::StdioOptions options;
    options.block_sigpipe = true;  // a worker that died must not kill a process that does not ignore SIGPIPE
    return options;
}

void keep_head(std::string& kept, size_t& total, std::string_view text, size_t max) {
    total += text.size();
    if (kept.size() < max) kept.append(text.substr(0, max - kept.size()));
}

}  // namespace

std::string describe_worker_status(int status) {
    if (status >= 0 && WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char* abbrev = ::sigabbrev_np(sig);
        const char* text = ::sigdescr_np(sig);
        return "signal " + std::to_string(sig) + " (" + (abbrev ? std::string("SIG") + abbrev : std::string("?")) +
               (text ? std::string(": ") + text : std::string()) + ")";
    }
    return client::describe_wait_status(status);
}

std::shared_ptr<WorkerProcess> WorkerProcess::spawn(const WorkerLaunch& launch, ElasticPool& host_pool) {
    client::SpawnOptions options;
    options.command = launch.executable;
    options.args = launch.args;
    options.death_signal = SIGKILL;  // the spawning thread is the engine's spawner, which lives as long as the server
    options.address_space_limit = launch.address_space_limit;
    return std::shared_ptr<WorkerProcess>(new WorkerProcess(client::Subprocess::spawn(options), host_pool));
}

WorkerProcess::WorkerProcess(client::Subprocess child, ElasticPool& host_pool)
    : child_(std::move(child)),
      pid_(child_.pid()),
      host_pool_(host_pool),
      transport_(child_.stdout_fd(), child_.stdin_fd(), kMaxMessageBytes, stdio_options()),
      peer_(transport_, peer_options(pid_)) {
    register_methods();
}

WorkerProcess::~WorkerProcess() = default;  // the Subprocess kills and reaps a child still running

void WorkerProcess::register_methods() {
    peer_.on_notification(method::kReady, [this](const json&) {
        std::lock_guard lock(mutex_);
        ready_ = true;
        ready_cv_.notify_all();
    });
    peer_.on_notification(method::kDone, [this](const json& p) { on_done_(p.at("x").get<long long>(), p); });
    peer_.on_notification(method::kOutput, [this](const json& p) { on_output(p); });
    peer_.on_notification(method::kProgress, [this](const json& p) { on_progress(p); });
    peer_.on_request(method::kCallTool, [this](const json& p, jsonrpc::Responder reply) {
        serve(p, std::move(reply), [](engine::ExecutionHost& host, const json& q, const CancellationToken& cancel) {
            return host.call_tool(q.at("name").get<std::string>(), q.at("arguments"), q.at("session").get<std::string>(),
                                  cancel);
        });
    });
    peer_.on_request(method::kListTools, [this](const json& p, jsonrpc::Responder reply) {
        serve(p, std::move(reply), [](engine::ExecutionHost& host, const json&, const CancellationToken&) {
            return host.list_tools();
        });
    });
    peer_.on_request(method::kWaitForServer, [this](const json& p, jsonrpc::Responder reply) {
        serve(p, std::move(reply), [](engine::ExecutionHost& host, const json& q, const CancellationToken& cancel) {
            return json(host.wait_for_server(q.at("server").get<std::string>(), cancel));
        });
    });
    peer_.on_request(method::kAskClient, [this](const json& p, jsonrpc::Responder reply) {
        serve(p, std::move(reply), [](engine::ExecutionHost& host, const json& q, const CancellationToken& cancel) {
            return host.ask_client(q.at("method").get<std::string>(), q.at("params"), cancel);
        });
    });
}

std::shared_ptr<BoundExecution> WorkerProcess::bound(const json& params) {
    long long x = params.at("x").get<long long>();
    std::lock_guard lock(mutex_);
    auto it = bound_.find(x);
    return it == bound_.end() ? nullptr : it->second;
}

// Output after the execution was answered (threads it left running) is dropped here: the worker
// keeps it for read_output.
void WorkerProcess::on_output(const json& params) {
    auto execution = bound(params);
    if (!execution) return;
    const std::string& text = params.at("t").get_ref<const std::string&>();
    bool out = params.at("s").get<int>() == 0;
    {
        std::lock_guard lock(execution->mutex);
        if (out) keep_head(execution->out, execution->out_total, text, execution->max_output);
        else keep_head(execution->err, execution->err_total, text, execution->max_output);
    }
    execution->host->output(out ? engine::OutputStream::Stdout : engine::OutputStream::Stderr, text);
}

void WorkerProcess::on_progress(const json& params) {
    auto execution = bound(params);
    if (!execution) return;
    std::optional<double> total;
    if (params.contains("total")) total = params["total"].get<double>();
    execution->host->progress(params.at("done").get<double>(), total, params.at("message").get<std::string>());
}

void WorkerProcess::serve(const json& params, jsonrpc::Responder reply,
                          std::function<json(engine::ExecutionHost&, const json&, const CancellationToken&)> work) {
    auto execution = bound(params);
    if (!execution) {
        reply.error(kHostErrorCode, "the execution that made this call has ended");
        return;
    }
    try {
        host_pool_.post([execution, params, reply, work = std::move(work)] {
            try {
                reply.result(work(*execution->host, params, reply.cancellation()));
            } catch (const engine::HostError& e) {
                reply.error(kHostErrorCode, e.what());
            } catch (const std::exception& e) {
                reply.error(jsonrpc::kInternalError, e.what());
            }
        });
    } catch (const PoolError& e) {
        reply.error(kHostErrorCode, std::string(e.what()) + "; the call did not run");
    }
}

void WorkerProcess::start(const std::shared_ptr<WorkerProcess>& self, DoneHandler on_done, ExitHandler on_exit) {
    on_done_ = std::move(on_done);
    int err_fd = child_.take_stderr();
    std::thread([self, err_fd] { self->stderr_loop(err_fd); }).detach();
    std::thread([self, on_exit = std::move(on_exit)] { self->read_loop(on_exit); }).detach();
}

void WorkerProcess::read_loop(const ExitHandler& on_exit) {
    transport_.run(peer_);
    peer_.close("the worker process ended");
    std::string why = reap();
    {
        std::lock_guard lock(mutex_);
        exited_ = true;
        ready_cv_.notify_all();
    }
    if (on_exit) on_exit(*this, why);
}

// The worker closed its stdout: it is exiting (or was killed). Reaped here, so no zombie stays.
std::string WorkerProcess::reap() {
    auto status = child_.wait_for(std::chrono::seconds(2));
    if (!status) {
        child_.signal(SIGKILL);
        status = child_.wait_for(std::chrono::seconds(10));
    }
    std::lock_guard lock(mutex_);
    if (!kill_reason_.empty()) return kill_reason_;
    return "its worker process died: " + (status ? describe_worker_status(*status) : std::string("status unknown"));
}

void WorkerProcess::stderr_loop(int fd) {
    std::string pending;
    char buffer[4096];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        pending.append(buffer, static_cast<size_t>(n));
        for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1))
            spdlog::info("[worker {}] {}", pid_, pending.substr(0, nl));
        if (pending.size() > 65536) pending.clear();  // no newline in sight: not a log line worth keeping whole
    }
    if (!pending.empty()) spdlog::info("[worker {}] {}", pid_, pending);
    ::close(fd);
}

bool WorkerProcess::wait_ready(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    ready_cv_.wait_for(lock, timeout, [&] { return ready_ || exited_.load(); });
    return ready_ && !exited_.load();
}

void WorkerProcess::bind(long long x, std::shared_ptr<BoundExecution> execution) {
    std::lock_guard lock(mutex_);
    bound_[x] = std::move(execution);
}

void WorkerProcess::unbind(long long x) {
    std::lock_guard lock(mutex_);
    bound_.erase(x);
}

bool WorkerProcess::execute(long long x, const engine::ExecRequest& request) {
    return peer_.notify(method::kExecute, json{{"request", to_json(request)}, {"x", x}});
}

void WorkerProcess::cancel(long long x) { peer_.notify(method::kCancel, json{{"x", x}}); }

json WorkerProcess::call(const std::string& method, json params, std::chrono::milliseconds timeout) {
    jsonrpc::CallOptions options;
    options.timeout = timeout;
    return peer_.call(method, std::move(params), options);
}

void WorkerProcess::kill(const std::string& why) {
    {
        std::lock_guard lock(mutex_);
        if (kill_reason_.empty()) kill_reason_ = why;
    }
    child_.signal(SIGKILL);
}

}  // namespace pymcp::worker
