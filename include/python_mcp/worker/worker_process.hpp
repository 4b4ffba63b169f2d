#pragma once
// The server's handle on one worker process (`python-mcp --worker`): the child, the Peer over its
// stdin/stdout pipes, and the executions it runs, each bound to the host of its call so that
// what the code asks of the outside (output, progress, mcp.call, list_tools, wait_for_server,
// ask_client) is served by the server exactly as for code running in-process.
//
// Threads: start() starts two threads that end when the worker does: the reader (the transport's
// run(), then reaping the child and reporting its end through on_exit) and the stderr reader
// (the worker's log lines into the server's log; the worker's own stdout and stderr never reach
// the server's stdout). Host requests run on `host_pool` (they block); output and progress run on
// the reader (cheap). Everything else is thread-safe.
// Lock order: mutex_ is a leaf; on_done/on_exit run with no lock held.
// Throws: spawn() throws client::SpawnError; call() throws jsonrpc::CallError.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "python_mcp/client/subprocess.hpp"
#include "python_mcp/engine/engine.hpp"
#include "python_mcp/jsonrpc/peer.hpp"
#include "python_mcp/jsonrpc/stdio_transport.hpp"
#include "python_mcp/support/elastic_pool.hpp"

namespace pymcp::worker {

struct WorkerLaunch {
    std::string executable = "/proc/self/exe";
    std::vector<std::string> args;  // after argv[0]; must include --worker
    // RLIMIT_AS for the worker before it sets its own --memory-limit (the server's own may be lower).
    std::optional<std::pair<unsigned long, unsigned long>> address_space_limit;
};

// An execution on a worker: its host and what it printed so far (for the answer when the worker
// dies before it answers).
struct BoundExecution {
    std::shared_ptr<engine::ExecutionHost> host;
    size_t max_output = 64 * 1024;
    std::mutex mutex;
    std::string out, err;  // GUARDED_BY(mutex), the first max_output bytes of each
    size_t out_total = 0, err_total = 0;  // GUARDED_BY(mutex)
};

class WorkerProcess {
public:
    using DoneHandler = std::function<void(long long x, const pymcp::json& params)>;
    using ExitHandler = std::function<void(WorkerProcess& worker, const std::string& why)>;

    static std::shared_ptr<WorkerProcess> spawn(const WorkerLaunch& launch, ElasticPool& host_pool);
    ~WorkerProcess();
    WorkerProcess(const WorkerProcess&) = delete;
    WorkerProcess& operator=(const WorkerProcess&) = delete;

    // Starts the threads (each holds a reference). Call once, right after spawn().
    void start(const std::shared_ptr<WorkerProcess>& self, DoneHandler on_done, ExitHandler on_exit);
    // Python is up in the worker (true), or it ended / the time passed (false).
    bool wait_ready(std::chrono::milliseconds timeout);
    pid_t pid() const { return pid_; }
    bool exited() const { return exited_.load(); }

    void bind(long long x, std::shared_ptr<BoundExecution> execution);
    void unbind(long long x);
    bool execute(long long x, const engine::ExecRequest& request);
    void cancel(long long x);
    pymcp::json call(const std::string& method, pymcp::json params, std::chrono::milliseconds timeout);

    // SIGKILL to the worker's process group; `why` is what its end is reported as.
    void kill(const std::string& why);

private:
    WorkerProcess(client::Subprocess child, ElasticPool& host_pool);
    void register_methods();
    void on_output(const pymcp::json& params);
    void on_progress(const pymcp::json& params);
    // Runs `work(host, cancel)` on the host pool and answers with its result.
    void serve(const pymcp::json& params, jsonrpc::Responder reply,
               std::function<pymcp::json(engine::ExecutionHost&, const pymcp::json&, const CancellationToken&)> work);
    std::shared_ptr<BoundExecution> bound(const pymcp::json& params);
    void read_loop(const ExitHandler& on_exit);
    void stderr_loop(int fd);
    std::string reap();

    client::Subprocess child_;
    const pid_t pid_;
    ElasticPool& host_pool_;
    jsonrpc::StdioTransport transport_;
    DoneHandler on_done_;  // set by start(), before the reader runs
    jsonrpc::Peer peer_;

    mutable std::mutex mutex_;
    std::condition_variable ready_cv_;
    bool ready_ = false;                                          // GUARDED_BY(mutex_)
    std::map<long long, std::shared_ptr<BoundExecution>> bound_;  // GUARDED_BY(mutex_)
    std::string kill_reason_;                                     // GUARDED_BY(mutex_)
    std::atomic<bool> exited_{false};
};

// "signal 11 (SIGSEGV: Segmentation fault)", "exit status 3".
std::string describe_worker_status(int status);

}  // namespace pymcp::worker
