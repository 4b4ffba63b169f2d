#pragma once
// Command-line options of python-mcp (CLI11). Every option is documented in README.md.

#include <chrono>
#include <filesystem>
#include <optional>
#include <variant>
#include <string>
#include <vector>

namespace pymcp::app {

struct Options {
    std::filesystem::path scripts_dir;  // default: <data root>/python_scripts
    std::filesystem::path data_dir;     // default: <data root>/databases
    // Durations are given in (fractional) seconds and kept in whole milliseconds, rounded up:
    // --session-ttl 0.5 is half a second, not 0 (which means "never").
    std::chrono::milliseconds timeout{60000};
    std::chrono::milliseconds wait{50000};  // --wait: execute's wait budget before a job handle
    size_t max_output = 64 * 1024;
    size_t max_images = 8;                   // per execution: figures and display() images returned
    size_t max_image_bytes = 2 * 1024 * 1024;  // per execution: their bytes together (before base64)
    // Overflow: output past max_output kept whole as resources (0 bytes: off).
    std::filesystem::path results_dir;            // default: <data root>/results
    size_t max_overflow_bytes = 512 * 1024 * 1024;
    size_t max_overflow_files = 256;
    size_t max_message_bytes = 32 * 1024 * 1024;
    size_t max_sessions = 64;
    std::chrono::milliseconds session_ttl{0};  // 0: sessions live until cleared
    bool require_unlock_token = false;
    std::string log_level = "info";
    std::string log_file;
    std::string config_file;
    bool expose_downstream = false;
    std::chrono::milliseconds downstream_timeout{120000};
    size_t memory_limit_mb = 0;  // per process: the server, and each worker process on its own
    // Schedules (issue 13): --no-schedules; --min-schedule-interval (seconds, default 1).
    bool no_schedules = false;
    double min_schedule_interval = 1.0;

    // --isolation: where sessions run unless a call asks otherwise ("thread": in the server;
    // "process": each in a worker process of its own, see docs/architecture.md).
    std::string isolation = "thread";
    // --kill-grace: how long interrupted code in a worker gets to stop before the worker is killed.
    std::chrono::milliseconds kill_grace{2000};
    // --worker (hidden): this process is a session's worker, started by the server over pipes.
    bool worker = false;

    // The Python environment (python/python_tool_readme.md "Installed packages", README options).
    // Paths are absolute after parse_options: --workdir changes the current directory at start.
    std::filesystem::path venv;                      // --venv / PYTHON_MCP_VENV: a python3.11 venv
    std::vector<std::filesystem::path> python_path;  // --python-path (repeatable): first on sys.path
    std::filesystem::path workdir;                   // --workdir: executions' working directory
    std::string dask_scheduler;                      // --dask-scheduler / PYTHON_MCP_DASK_SCHEDULER

    // --http [HOST:]PORT: serve MCP over Streamable HTTP (at /mcp) instead of stdio.
    bool http = false;
    std::string http_host = "127.0.0.1";
    unsigned http_port = 0;  // 0: any free port (printed to stderr at start)
    std::string http_token;  // --http-token / PYTHON_MCP_HTTP_TOKEN; empty: generated at start
    // --http-insecure-no-token: no bearer token at all. Test-only (the conformance suite cannot send
    // one); refused unless HOST is a loopback address and no --http-token is given.
    bool http_no_token = false;
};

// "[HOST:]PORT" ("8080", "0.0.0.0:8080", "[::1]:8080") into host and port; an error message
// when malformed.
std::string parse_http_address(const std::string& text, std::string& host, unsigned& port);

// Parses argv. Returns the options, or an exit code when the program should stop now
// (--help, --version: 0; a bad option: 2, after printing the error to stderr).
std::variant<Options, int> parse_options(int argc, char** argv);

// Seconds (as given on the command line) to milliseconds, rounded up so that no positive value
// becomes 0. The caller has checked the range (0 .. kMaxDurationSeconds).
std::chrono::milliseconds seconds_to_ms(double seconds);
inline constexpr double kMaxDurationSeconds = 366.0 * 24 * 3600;  // a year: beyond it is a typo

}  // namespace pymcp::app
