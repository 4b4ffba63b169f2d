#pragma once
// The worker side of process isolation: `python-mcp --worker` (started by the server, never by
// hand) runs one session in its own SessionEngine and serves the server over its stdin/stdout
// pipes (taken private like the server's, so user code cannot write into them).
//
// serve_worker() starts the reading thread and returns; main() then gives its thread to
// run_on_main_thread executions. When the server's end of the pipe closes (the server exited,
// was killed, or ended this worker) the process _exits at once, whatever its code is doing.

#include <chrono>

#include "python_mcp/python/session_engine.hpp"
#include "python_mcp/support/protocol_fds.hpp"

namespace pymcp::worker {

struct WorkerServeOptions {
    // How long code that was interrupted (time-out, cancel) gets to stop before the worker tells
    // the server it did not (the server then kills it).
    std::chrono::milliseconds kill_grace{2000};
};

// `engine` lives until the process exits.
void serve_worker(const ProtocolFds& fds, python::SessionEngine& engine, WorkerServeOptions options);

}  // namespace pymcp::worker
