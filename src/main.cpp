// python-mcp: wiring, in the order main() reads: check the options and the Python environment,
// take the protocol fds, start logging and fd capture, build the tools, serve the protocol on the
// stdio transport, watch for the end, then start Python (the protocol is already served
// meanwhile) and give the main thread to run_on_main_thread executions.
//
// Threads: main (starts Python, then runs main-thread executions), reader (the stdio transport's
// run() -> the connection's Peer), watcher (signals and EOF -> shutdown), plus the pools owned by
// the Server and the engine. Everything built here lives until the watcher's _Exit.

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <functional>
#include <stdexcept>
#include <memory>
#include <optional>
#include <thread>

#include "python_mcp/app/install_paths.hpp"
#include "python_mcp/app/options.hpp"
#include "python_mcp/client/downstream.hpp"
#include "python_mcp/client/server_config.hpp"
#include "python_mcp/jsonrpc/http_transport.hpp"
#include "python_mcp/jsonrpc/stdio_transport.hpp"
#include "python_mcp/mcp/server.hpp"
#include "python_mcp/engine/deferred_engine.hpp"
#include "python_mcp/engine/isolation_router.hpp"
#include "python_mcp/python/fd_capture.hpp"
#include "python_mcp/python/interpreter.hpp"
#include "python_mcp/python/python_environment.hpp"
#include "python_mcp/python/session_engine.hpp"
#include "python_mcp/support/logging.hpp"
#include "python_mcp/support/protocol_fds.hpp"
#include "python_mcp/tools/python_tool.hpp"
#include "python_mcp/tools/scheduler.hpp"
#include "python_mcp/tools/script_store.hpp"
#include "python_mcp/tools/sqlite_tool.hpp"
#include "python_mcp/tools/user_tool.hpp"
#include "python_mcp/worker/process_engine.hpp"
#include "python_mcp/worker/worker_main.hpp"

namespace pymcp::embedded {
extern const char* const kToolReadme;
}

namespace {

int g_wake_pipe[2] = {-1, -1};  // signals and EOF wake the shutdown watcher

void on_signal(int sig) {
    char c = static_cast<char>(sig);
    [[maybe_unused]] auto n = ::write(g_wake_pipe[1], &c, 1);
}

void install_signal_handlers() {
    if (::pipe2(g_wake_pipe, O_CLOEXEC) != 0) {
        std::perror("python-mcp: pipe2");
        std::_Exit(1);
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    // A client that went away must not kill us mid-write: EPIPE is handled where we write.
    signal(SIGPIPE, SIG_IGN);
}

const char* const kInstructions =
    "python-mcp runs Python code locally in an embedded CPython 3.11. Use the `python` tool with "
    "operation 'execute' and persistent=true plus a session_id to keep variables between calls. Inside the code, "
    "`mcp.call(name, params)` calls other tools in-process (e.g. the built-in `sqlite` tool), so large data can be "
    "processed in code and only the summary returned. Call the python tool with operation 'readme' for the full "
    "documentation.";

// The Python environment the options ask for, checked; enters --workdir. Throws std::runtime_error.
pymcp::python::PythonEnvironment prepare_environment(const pymcp::app::Options& opt) {
    pymcp::python::PythonEnvironment env;
    if (!opt.venv.empty()) env.venv_site_packages = pymcp::python::venv_site_packages(opt.venv, pymcp::python::embedded_python_version());
    env.python_path = opt.python_path;
    env.dask_scheduler = opt.dask_scheduler;
    if (!opt.workdir.empty() && ::chdir(opt.workdir.c_str()) != 0)
        throw std::runtime_error("--workdir " + opt.workdir.string() + ": " + std::strerror(errno));
    return env;
}

// Everything that serves calls, none of it needing Python: `initialize`, `tools/list` and `ping`
// are answered while the interpreter starts; a python tool call in that window waits in
// `engine` (a DeferredEngine) for the real one.
struct Services {
    explicit Services(const pymcp::app::Options& opt);

    pymcp::mcp::ToolRegistry registry;
    pymcp::engine::DeferredEngine engine;
    pymcp::tools::ScriptStore scripts;
    std::unique_ptr<pymcp::tools::Scheduler> scheduler;  // schedules (issue 13)
    std::unique_ptr<pymcp::tools::PythonTool> python_tool;
    std::unique_ptr<pymcp::tools::SqliteTool> sqlite_tool;
    std::unique_ptr<pymcp::tools::UserTool> user_tool;
    std::unique_ptr<pymcp::client::DownstreamManager> downstream;
    std::shared_ptr<pymcp::tools::OverflowStore> overflow;  // null when --max-overflow-bytes is 0
};

pymcp::tools::SchedulerOptions scheduler_options(const pymcp::app::Options& opt) {
    pymcp::tools::SchedulerOptions o;
    o.database = opt.data_dir / "schedules.sqlite3";
    o.enabled = !opt.no_schedules;
    o.default_timeout = opt.timeout;
    o.max_output = opt.max_output;
    o.min_interval = opt.min_schedule_interval;
    return o;
}

Services::Services(const pymcp::app::Options& opt) : scripts(opt.scripts_dir, pymcp::app::shipped_scripts_dir()) {
    using namespace pymcp;
    tools::PythonToolOptions python_options;
    python_options.default_timeout = opt.timeout;
    python_options.default_wait = opt.wait;
    python_options.default_max_output = opt.max_output;
    python_options.default_max_images = opt.max_images;
    python_options.default_max_image_bytes = opt.max_image_bytes;
    python_options.gate = tools::UnlockGate{opt.require_unlock_token, "c0de5eed"};
    python_options.readme = embedded::kToolReadme;
    if (opt.max_overflow_bytes > 0) {
        overflow = std::make_shared<tools::OverflowStore>(
            tools::OverflowOptions{opt.results_dir, opt.max_overflow_bytes, opt.max_overflow_files});
        python_options.overflow = overflow;
    }
    scheduler = std::make_unique<tools::Scheduler>(scheduler_options(opt), engine, scripts, registry);
    python_options.scheduler = scheduler.get();
    python_tool = std::make_unique<tools::PythonTool>(engine, scripts, python_options);
    python_tool->register_in(registry);

    tools::SqliteToolOptions sqlite_options;
    sqlite_options.data_dir = opt.data_dir;
    // The original tool's token, so the seed's scripts run unchanged with --require-unlock-token.
    sqlite_options.gate = tools::UnlockGate{opt.require_unlock_token, "29e63eb5"};
    sqlite_tool = std::make_unique<tools::SqliteTool>(sqlite_options);
    sqlite_tool->register_in(registry);

    tools::UserToolOptions user_options;
    user_options.gate = tools::UnlockGate{opt.require_unlock_token, "a1b2c3d4"};  // the original's token
    user_tool = std::make_unique<tools::UserTool>(user_options);
    user_tool->register_in(registry);

    client::DownstreamOptions downstream_options;
    downstream_options.expose = opt.expose_downstream;
    downstream_options.call_timeout = opt.downstream_timeout;
    downstream = std::make_unique<client::DownstreamManager>(registry, downstream_options);
    if (!opt.config_file.empty()) {
        auto config = client::load_server_config(opt.config_file);
        for (const auto& error : config.errors) spdlog::error("{}", error);
        spdlog::info("{} downstream server(s) configured in {}", config.servers.size(), opt.config_file);
        downstream->start(std::move(config.servers));  // in the background: never delays initialize
    }
    // Re-armed now: runs that fall due before Python is up wait in the DeferredEngine.
    scheduler->start();
}

// Logging on the private stderr copy, then fd-level capture of fds 1 and 2. An exit code when
// either fails.
std::optional<int> start_logging_and_capture(const pymcp::ProtocolFds& fds, const pymcp::app::Options& opt) {
    try {
        pymcp::init_logging(fds.log, opt.log_level, opt.log_file);
    } catch (const std::exception& e) {
        std::string msg = std::string("python-mcp: cannot set up logging: ") + e.what() + "\n";
        [[maybe_unused]] auto n = ::write(fds.log, msg.data(), msg.size());
        return 2;
    }
    try {
        pymcp::python::FdCapture::install(fds.log);
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return 1;
    }
    return std::nullopt;
}

// glibc reserves 64 MiB of address space per malloc arena (one per thread under contention):
// under RLIMIT_AS a few busy threads would exhaust --memory-limit on reservations. Before any
// thread exists; the limit itself comes with Python (apply_memory_limit).
void limit_malloc_arenas(const pymcp::app::Options& opt) {
    if (opt.memory_limit_mb > 0) mallopt(M_ARENA_MAX, 2);
}

// --memory-limit applies from the interpreter's start on, before any user code runs: it is for
// what user code allocates (Python's own start-up is not cut short by a tight limit).
void apply_memory_limit(const pymcp::app::Options& opt) {
    if (opt.memory_limit_mb <= 0) return;
    rlimit rl{};
    // Only the soft limit: downstream children (Node aborts under a tight RLIMIT_AS) get the
    // limit the server started with back (DownstreamManager noted it when constructed).
    getrlimit(RLIMIT_AS, &rl);
    rl.rlim_cur = static_cast<rlim_t>(opt.memory_limit_mb) * 1024 * 1024;
    if (setrlimit(RLIMIT_AS, &rl) != 0) spdlog::warn("cannot set --memory-limit: {}", std::strerror(errno));
}

// The reader thread: the transport feeds the client's connection until stdin ends, then wakes
// the watcher.
void start_reader(pymcp::jsonrpc::StdioTransport& transport, pymcp::mcp::Server::Connection& client) {
    std::thread([&transport, &client] {
        transport.run(client.peer());
        char c = 0;  // EOF
        [[maybe_unused]] auto n = ::write(g_wake_pipe[1], &c, 1);
    }).detach();
}

// Tells the operator something on the private stderr copy, whatever the log level: where the
// HTTP endpoint listens and its token must reach them even with --log-level off.
void tell(int log_fd, const std::string& text) {
    std::string line = "python-mcp: " + text + "\n";
    [[maybe_unused]] auto n = ::write(log_fd, line.data(), line.size());
}

// The bearer token HTTP clients must send: --http-token / PYTHON_MCP_HTTP_TOKEN, or a random one
// told on stderr (never stdout).
std::string http_token(const pymcp::app::Options& opt, int log_fd) {
    if (!opt.http_token.empty()) return opt.http_token;
    if (opt.http_no_token) {  // tests only; options.cpp allows it on loopback alone
        tell(log_fd, "WARNING: --http-insecure-no-token: HTTP requests are served without a bearer token");
        return "";
    }
    unsigned char bytes[24];
    size_t got = 0;
    while (got < sizeof bytes)
        if (ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0); n > 0) got += static_cast<size_t>(n);
    std::string token;
    for (unsigned char b : bytes) token += "0123456789abcdef"[b >> 4], token += "0123456789abcdef"[b & 15];
    tell(log_fd, "HTTP bearer token (generated; set --http-token or PYTHON_MCP_HTTP_TOKEN to choose one): " + token);
    return token;
}

// --http: the Streamable HTTP endpoint instead of stdio (stdin is not read). Each HTTP session,
// and each modern-era POST, is its own connection to the server. Returns what stops it; exits 2
// when it cannot listen.
std::function<void()> start_http(const pymcp::app::Options& opt, pymcp::mcp::Server& server, int log_fd) {
    using namespace pymcp;
    jsonrpc::HttpTransportOptions options;
    options.server.host = opt.http_host;
    options.server.port = static_cast<uint16_t>(opt.http_port);
    options.server.max_body_bytes = opt.max_message_bytes;
    options.token = http_token(opt, log_fd);
    options.legacy_versions.assign(mcp::kLegacyProtocolVersions.begin(), mcp::kLegacyProtocolVersions.end());
    auto connector = [&server](const std::shared_ptr<jsonrpc::Transport>& transport) {
        auto connection = server.connect(*transport);
        connection->hold(transport);
        auto* handler = &connection->peer();
        return jsonrpc::HttpBinding{connection, handler, [connection] {
                                        connection->peer().cancel_incoming("the HTTP session ended");
                                    }};
    };
    auto* endpoint = new jsonrpc::HttpEndpoint(std::move(options), connector);  // lives until _Exit
    try {
        endpoint->start();
    } catch (const std::exception& e) {
        tell(log_fd, e.what());
        std::_Exit(2);
    }
    std::string host = opt.http_host.find(':') != std::string::npos ? "[" + opt.http_host + "]" : opt.http_host;
    tell(log_fd, "serving MCP over HTTP at http://" + host + ":" + std::to_string(endpoint->port()) + "/mcp");
    return [endpoint] { endpoint->stop(); };
}

// The watcher thread: waits for a signal or the end of input, then shuts down and _Exits.
// Running work is interrupted and gets a moment to finish cleanly (a script save or a sqlite
// transaction completes or rolls back); Python is never finalised (threads user code left
// behind could hang it). At end of input, calls still running get a moment to be answered (a
// script that pipes requests and closes stdin wants its answers); signals mean "stop now".
// Either way the process is gone within 2 s.
void start_watcher(pymcp::mcp::Server& server, Services& services, std::function<void()> close_protocol) {
    std::thread([&server, &services, close_protocol] {
        char c = 0;
        for (;;) {
            ssize_t n = ::read(g_wake_pipe[0], &c, 1);
            if (n == 1) break;
            if (n < 0 && errno == EINTR) continue;
            break;
        }
        spdlog::info("shutting down ({})",
                     c == 0 ? "end of input" : c == SIGTERM ? "SIGTERM" : c == SIGINT ? "SIGINT" : "signal");
        if (c == 0) {
            server.end_of_input();  // open subscriptions are not "calls still running"
            server.wait_idle(std::chrono::milliseconds(1000));
        }
        server.begin_shutdown();
        services.scheduler->stop();  // no new scheduled run; those running are interrupted next
        services.engine.interrupt_all();
        server.wait_idle(std::chrono::milliseconds(400));
        services.downstream->shutdown(std::chrono::milliseconds(200));
        spdlog::default_logger()->flush();
        close_protocol();
        std::_Exit(0);
    }).detach();
}

// Process isolation: each worker is this binary with --worker and the options that shape its
// Python (paths are absolute by now). The worker applies --memory-limit itself, so it starts with
// the address-space limit the server started with (noted here, before the server lowers its own).
pymcp::worker::ProcessEngineOptions process_engine_options(const pymcp::app::Options& opt) {
    pymcp::worker::ProcessEngineOptions o;
    auto& args = o.launch.args;
    args = {"--worker", "--log-level", opt.log_level, "--kill-grace", std::to_string(opt.kill_grace.count() / 1000.0)};
    if (!opt.venv.empty()) args.insert(args.end(), {"--venv", opt.venv.string()});
    for (const auto& p : opt.python_path) args.insert(args.end(), {"--python-path", p.string()});
    if (!opt.workdir.empty()) args.insert(args.end(), {"--workdir", opt.workdir.string()});
    if (!opt.dask_scheduler.empty()) args.insert(args.end(), {"--dask-scheduler", opt.dask_scheduler});
    if (opt.memory_limit_mb > 0) args.insert(args.end(), {"--memory-limit", std::to_string(opt.memory_limit_mb)});
    rlimit rl{};
    if (::getrlimit(RLIMIT_AS, &rl) == 0) o.launch.address_space_limit = std::make_pair(rl.rlim_cur, rl.rlim_max);
    o.kill_grace = opt.kill_grace;
    o.max_sessions = opt.max_sessions;
    o.session_ttl = opt.session_ttl;
    o.keep_spare = opt.isolation == "process";
    return o;
}

// --worker: one session's worker process. Its stdin/stdout are pipes to the server (taken
// private, like the server's), its stderr goes to the server's log. It ends with the server:
// the death signal, and _exit when the server's end of the pipe closes.
int run_worker(const pymcp::app::Options& opt, const pymcp::python::PythonEnvironment& environment) {
    using namespace pymcp;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() == 1) return 1;  // the server is already gone
    signal(SIGPIPE, SIG_IGN);
    ProtocolFds fds = take_protocol_fds();
    if (auto failed = start_logging_and_capture(fds, opt)) return *failed;
    limit_malloc_arenas(opt);
    try {
        python::start_interpreter();
        python::apply_python_environment(environment);
    } catch (const std::exception& e) {
        spdlog::critical("worker: {}", e.what());
        return 1;
    }
    python::EngineOptions engine_options;
    engine_options.max_sessions = 1 << 20;  // the server counts sessions
    engine_options.interrupt_grace = std::min(opt.kill_grace, std::chrono::milliseconds(300));
    auto* engine = new python::SessionEngine(engine_options);  // lives until _exit
    apply_memory_limit(opt);
    worker::serve_worker(fds, *engine, worker::WorkerServeOptions{opt.kill_grace - engine_options.interrupt_grace});
    python::MainThreadExecutor::instance().run();
    return 0;
}

// The interpreter starts on the main thread (run_on_main_thread executions need it), while the
// reader already serves the protocol. If Python cannot start, the server keeps answering
// (sqlite, scripts, downstream tools) and Python calls say why. The engine lives for the rest
// of the process.
void start_python(const pymcp::app::Options& opt, const pymcp::python::PythonEnvironment& environment,
                  Services& services, std::chrono::steady_clock::time_point started) {
    using namespace pymcp;
    static std::unique_ptr<python::SessionEngine> session_engine;
    static std::unique_ptr<worker::ProcessEngine> process_engine;
    static std::unique_ptr<engine::IsolationRouter> router;
    try {
        python::start_interpreter();
        python::apply_python_environment(environment);
        python::EngineOptions engine_options;
        engine_options.max_sessions = opt.max_sessions;
        engine_options.session_ttl = opt.session_ttl;
        session_engine = std::make_unique<python::SessionEngine>(engine_options);
        process_engine = std::make_unique<worker::ProcessEngine>(process_engine_options(opt));  // before the limit
        apply_memory_limit(opt);
        router = std::make_unique<engine::IsolationRouter>(
            *session_engine, *process_engine,
            opt.isolation == "process" ? engine::Isolation::Process : engine::Isolation::Thread);
        services.engine.ready(*router);
        spdlog::debug("Python ready {:.1f} ms after start",
                      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        apply_memory_limit(opt);
        services.engine.fail(std::string("Python is not available in this server: ") + e.what() +
                             " (see the server log; PYTHONHOME or PYTHONPATH in its environment may be wrong)");
    }
}

// The host hint on every tool (Claude Code: results longer than the hint, or 50,000 characters
// without one, are saved to a file and replaced by a preview; it honours hints up to 500,000).
// A python result's text holds stdout, stderr and the result, each up to max_output, plus notes
// and a traceback: room for four times max_output and 16 KiB, between 50,000 and 500,000.
size_t max_result_size_chars(const pymcp::app::Options& opt) {
    return std::clamp<size_t>(4 * opt.max_output + 16 * 1024, 50000, 500000);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace pymcp;
    const auto started = std::chrono::steady_clock::now();
    auto parsed = app::parse_options(argc, argv);
    if (auto* code = std::get_if<int>(&parsed)) return *code;
    const app::Options& opt = std::get<app::Options>(parsed);
    // A venv of another Python or a --workdir that cannot be entered stops the server at once,
    // with the reason on stderr (before the protocol starts).
    python::PythonEnvironment python_environment;
    try {
        python_environment = prepare_environment(opt);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "python-mcp: %s\n", e.what());
        return 2;
    }
    if (opt.worker) return run_worker(opt, python_environment);

    install_signal_handlers();
    ProtocolFds fds = take_protocol_fds();
    if (auto failed = start_logging_and_capture(fds, opt)) return *failed;

    auto* services = new Services(opt);  // lives until _Exit
    limit_malloc_arenas(opt);

    mcp::ServerOptions server_options;
    server_options.instructions = kInstructions;
    server_options.resources = services->overflow;
    server_options.tool_meta = pymcp::json{{"anthropic/maxResultSizeChars", max_result_size_chars(opt)}};
    auto* server = new mcp::Server(services->registry, server_options);
    server->set_task_backend(services->python_tool->task_backend());  // tasks are the python tool's jobs
    if (opt.http) {
        start_watcher(*server, *services, start_http(opt, *server, fds.log));
    } else {
        auto* transport = new jsonrpc::StdioTransport(fds.in, fds.out, opt.max_message_bytes);
        auto* client = new std::shared_ptr<mcp::Server::Connection>(server->connect(*transport));  // until _Exit
        start_reader(*transport, **client);
        start_watcher(*server, *services, [transport] { transport->close(); });
    }

    start_python(opt, python_environment, *services, started);
    python::MainThreadExecutor::instance().run();
    return 0;
}
