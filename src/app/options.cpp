#include "python_mcp/app/options.hpp"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <iostream>

#include "python_mcp/support/logging.hpp"
#include "python_mcp/support/paths.hpp"

namespace pymcp::app {

std::chrono::milliseconds seconds_to_ms(double seconds) {
    return std::chrono::milliseconds(static_cast<long long>(std::ceil(seconds * 1000.0 - 1e-6)));
}

namespace {
// A duration in seconds: fractions allowed, at least 1 ms (or exactly 0 when `zero_ok`), at most
// a year (so the conversion to milliseconds cannot overflow).
CLI::Validator duration_check(bool zero_ok) {
    return CLI::Validator(
        [zero_ok](std::string& text) -> std::string {
            double v = 0;
            try {
                size_t used = 0;
                v = std::stod(text, &used);
                if (used != text.size()) throw std::invalid_argument(text);
            } catch (const std::exception&) {
                return "'" + text + "' is not a number of seconds";
            }
            if (zero_ok && v == 0) return "";
            if (!(v >= 0.001 && v <= kMaxDurationSeconds))
                return "'" + text + "' is out of range: give seconds from 0.001 (1 ms) to " +
                       std::to_string(static_cast<long long>(kMaxDurationSeconds)) + (zero_ok ? ", or 0" : "");
            return "";
        },
        zero_ok ? "SECONDS (0, or 0.001 ..)" : "SECONDS (0.001 ..)");
}

std::string existing_directory(const std::string& value) {
    std::error_code ec;
    if (!std::filesystem::is_directory(value, ec)) return "no such directory: " + value;
    return {};
}

// The Python environment's options (venv, extra sys.path folders, working directory, Dask).
// Whether a venv suits this Python is checked at start (python/python_environment.cpp).
void add_environment_options(CLI::App& app, Options& o) {
    app.add_option("--venv", o.venv,
                   "A virtual environment made by python3.11 (python3.11 -m venv DIR): its site-packages "
                   "(with .pth files) come before the system's")
        ->envname("PYTHON_MCP_VENV")->check(existing_directory);
    app.add_option("--python-path", o.python_path, "A folder to put first on sys.path (repeatable)")
        ->check(existing_directory);
    app.add_option("--workdir", o.workdir, "Working directory of executions (default: the server's own)")
        ->check(existing_directory);
    app.add_option("--dask-scheduler", o.dask_scheduler,
                   "Address of a Dask scheduler (tcp://host:8786): mcp.dask() returns a client connected to it")
        ->envname("PYTHON_MCP_DASK_SCHEDULER");
}

// Command-line paths are relative to where the server was started; --workdir changes the current
// directory at start, so every path is made absolute first.
void absolute_paths(Options& o) {
    auto absolute = [](std::filesystem::path& p) {
        if (!p.empty()) p = std::filesystem::absolute(p).lexically_normal();
    };
    absolute(o.venv);
    absolute(o.workdir);
    for (auto& p : o.python_path) absolute(p);
    if (o.workdir.empty()) return;
    absolute(o.scripts_dir);
    absolute(o.data_dir);
    absolute(o.results_dir);
    if (!o.config_file.empty()) o.config_file = std::filesystem::absolute(o.config_file).string();
    if (!o.log_file.empty()) o.log_file = std::filesystem::absolute(o.log_file).string();
}

// --http and its token. The token may come from the environment so it stays out of `ps`.
// Schedules (issue 13): off switch, and the shortest interval schedule_script accepts.
void add_schedule_options(CLI::App& app, Options& o) {
    app.add_flag("--no-schedules", o.no_schedules,
                 "Do not run schedules (schedule_script, list_schedules and unschedule then say so)");
    app.add_option("--min-schedule-interval", o.min_schedule_interval,
                   "Shortest 'every' schedule_script accepts, in seconds (fractions allowed)")
        ->check(CLI::Range(0.01, 86400.0))->capture_default_str();
}

void add_http_options(CLI::App& app, Options& o, std::string& address) {
    app.add_option("--http", address,
                   "Serve MCP over Streamable HTTP at http://[HOST:]PORT/mcp instead of stdio (HOST defaults to "
                   "127.0.0.1; PORT 0 picks a free port; both are printed to stderr)")
        ->check([](const std::string& v) {
            std::string host;
            unsigned port = 0;
            return parse_http_address(v, host, port);
        });
    app.add_option("--http-token", o.http_token,
                   "Bearer token HTTP clients must send (default: a random one, printed to stderr at start)")
        ->envname("PYTHON_MCP_HTTP_TOKEN")
        ->check([](const std::string& v) {
            if (v.size() < 16) return std::string("the HTTP token must have at least 16 characters");
            for (char c : v)
                if (c <= ' ' || c > '~') return std::string("the HTTP token must be printable ASCII without spaces");
            return std::string();
        });
    app.add_flag("--http-insecure-no-token", o.http_no_token,
                 "TESTS ONLY: serve --http without a bearer token (loopback HOST only; any local process "
                 "may then run code as you)");
}

bool is_loopback_host(const std::string& host) {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// "" or why --http-insecure-no-token cannot be used with the other options.
std::string check_no_token(const Options& o) {
    if (!o.http_no_token) return "";
    if (!o.http) return "--http-insecure-no-token needs --http";
    if (!o.http_token.empty()) return "--http-insecure-no-token and --http-token (or PYTHON_MCP_HTTP_TOKEN) exclude each other";
    if (!is_loopback_host(o.http_host)) return "--http-insecure-no-token is only allowed on a loopback address, not " + o.http_host;
    return "";
}

}  // namespace

std::string parse_http_address(const std::string& text, std::string& host, unsigned& port) {
    std::string port_text = text;
    host = "127.0.0.1";
    if (!text.empty() && text.front() == '[') {  // [v6]:port
        auto close = text.find("]:");
        if (close == std::string::npos) return "'" + text + "': give [IPv6]:PORT";
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
    } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (host.empty() || host.find(':') != std::string::npos) return "'" + text + "': give HOST:PORT or [IPv6]:PORT";
    }
    if (port_text.empty() || port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(port_text) > 65535)
        return "'" + text + "': the port must be a number from 0 to 65535";
    port = static_cast<unsigned>(std::stoul(port_text));
    return "";
}

// --isolation, --kill-grace, and the hidden --worker mode (the server starts its workers with it).
static void add_isolation_options(CLI::App& app, Options& o, double& kill_grace_s) {
    app.add_option("--isolation", o.isolation,
                   "Where sessions run: thread (in the server) or process (each in a worker process of its own, "
                   "so a crash or stuck C code costs one session); a call's 'isolation' field overrides it")
        ->check(CLI::IsMember({"thread", "process"}))
        ->capture_default_str();
    app.add_option("--kill-grace", kill_grace_s,
                   "Process isolation: seconds interrupted code gets to stop before its worker is killed")
        ->check(duration_check(false))
        ->capture_default_str();
    app.add_flag("--worker", o.worker, "internal: run as a session's worker process")->group("");
}

std::variant<Options, int> parse_options(int argc, char** argv) {
    Options o;
    std::string scripts_dir, data_dir, results_dir;
    double timeout_s = 60, session_ttl_s = 0, downstream_timeout_s = 120, wait_s = 50, kill_grace_s = 2;
    CLI::App app{"python-mcp: an MCP server (stdio) that runs Python in an embedded CPython 3.11 with persistent "
                 "sessions; code calls other MCP tools in-process through the `mcp` module.",
                 "python-mcp"};
    app.set_version_flag("--version", std::string("python-mcp ") + PYMCP_VERSION);
    app.add_option("--scripts-dir", scripts_dir, "Folder of saved scripts (default: $XDG_DATA_HOME/python-mcp/python_scripts)");
    app.add_option("--data-dir", data_dir, "Folder where sqlite database names resolve (default: $XDG_DATA_HOME/python-mcp/databases)");
    app.add_option("--timeout", timeout_s, "Default execute timeout in seconds (fractions allowed)")
        ->check(duration_check(false))->capture_default_str();
    app.add_option("--wait", wait_s,
                   "Default seconds execute/run_script wait for the result; code still running then goes on as a job "
                   "and the call returns its job_id (0: at once)")
        ->check(duration_check(true))->capture_default_str();
    app.add_option("--max-output", o.max_output, "Default bytes of stdout and of stderr kept per execution (head and tail)")
        ->check(CLI::Range(static_cast<size_t>(64), static_cast<size_t>(1) << 32))->capture_default_str();
    app.add_option("--max-images", o.max_images, "Default number of images (figures, display()) returned per execution")
        ->check(CLI::Range(static_cast<size_t>(0), static_cast<size_t>(10000)))->capture_default_str();
    app.add_option("--max-image-bytes", o.max_image_bytes, "Default bytes of images returned per execution, all together")
        ->check(CLI::Range(static_cast<size_t>(0), static_cast<size_t>(1) << 32))->capture_default_str();
    app.add_option("--results-dir", results_dir,
                   "Folder where output past max_output is kept whole (default: $XDG_DATA_HOME/python-mcp/results)");
    app.add_option("--max-overflow-bytes", o.max_overflow_bytes,
                   "Bytes of kept overflow files in all (oldest dropped first; one file at most a quarter); 0: off")
        ->check(CLI::Range(static_cast<size_t>(0), static_cast<size_t>(1) << 40))->capture_default_str();
    app.add_option("--max-overflow-files", o.max_overflow_files, "Most overflow files kept (oldest dropped first)")
        ->check(CLI::Range(static_cast<size_t>(1), static_cast<size_t>(1000000)))->capture_default_str();
    app.add_option("--max-message-bytes", o.max_message_bytes, "Longest accepted JSON-RPC input line in bytes")
        ->check(CLI::Range(static_cast<size_t>(256), static_cast<size_t>(1) << 34))->capture_default_str();
    app.add_option("--max-sessions", o.max_sessions, "Most persistent sessions at once")
        ->check(CLI::Range(1, 100000))->capture_default_str();
    app.add_option("--session-ttl", session_ttl_s, "Seconds an idle session lives, fractions allowed (0: until cleared)")
        ->check(duration_check(true))->capture_default_str();
    app.add_flag("--require-unlock-token", o.require_unlock_token,
                 "Require each tool's tool_unlock_token (stated in its readme), as the original tools did");
    app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error, critical or off (logs go to stderr)")
        ->check([](const std::string& v) {
            try {
                parse_log_level(v);
                return std::string();
            } catch (const std::exception& e) {
                return std::string(e.what());
            }
        })
        ->capture_default_str();
    app.add_option("--log-file", o.log_file, "Also write logs to this file");
    app.add_option("--config", o.config_file,
                   "Downstream MCP servers, in Claude Desktop's format: {\"mcpServers\": {name: {command, args, env, cwd}}}");
    app.add_flag("--expose-downstream", o.expose_downstream,
                 "Also list downstream tools to the client as <server>.<tool> and forward calls to them");
    app.add_option("--downstream-timeout", downstream_timeout_s, "Seconds a downstream tool call may take (fractions allowed)")
        ->check(duration_check(false))->capture_default_str();
    app.add_option("--memory-limit", o.memory_limit_mb,
                   "Address-space limit in MiB (RLIMIT_AS): allocations beyond it raise MemoryError (0: none)")
        ->capture_default_str();
    add_environment_options(app, o);
    add_schedule_options(app, o);
    add_isolation_options(app, o, kill_grace_s);
    std::string http_address;
    add_http_options(app, o, http_address);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version print to stdout and exit 0 before the protocol starts; errors go to stderr.
        return app.exit(e, std::cout, std::cerr);
    }
    if (!http_address.empty()) {
        o.http = true;
        parse_http_address(http_address, o.http_host, o.http_port);
    }
    if (std::string problem = check_no_token(o); !problem.empty()) {
        std::cerr << problem << "\n";
        return 2;
    }
    o.timeout = seconds_to_ms(timeout_s);
    o.wait = seconds_to_ms(wait_s);
    o.session_ttl = seconds_to_ms(session_ttl_s);
    o.downstream_timeout = seconds_to_ms(downstream_timeout_s);
    o.kill_grace = seconds_to_ms(kill_grace_s);
    auto root = default_data_root();
    o.scripts_dir = scripts_dir.empty() ? root / "python_scripts" : std::filesystem::path(scripts_dir);
    o.data_dir = data_dir.empty() ? root / "databases" : std::filesystem::path(data_dir);
    o.results_dir = results_dir.empty() ? root / "results" : std::filesystem::path(results_dir);
    absolute_paths(o);
    return o;
}

}  // namespace pymcp::app
