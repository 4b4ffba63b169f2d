#pragma once
// The embedded modules user code sees: `mcp` (tools, progress) and `_pymcp` (the runtime's native
// half: executions, output, interruptible waits, the cell's result). Everything `mcp` does goes
// to the ExecutionHost of the execution in the calling thread's context (the runtime's
// ContextVar); with none there it raises RuntimeError. No registry, no protocol types here.
// Call with the GIL held.

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "python_mcp/python/execution.hpp"

namespace pymcp::bridge {

// Finishes the `mcp` module once the runtime is loaded (attribute access to servers, search).
void attach_runtime();

// The BaseException subclass posted to interrupt an execution.
PyObject* execution_interrupted_type();

// Drops what the runtime keeps for a persistent session's cells (their source lines): the
// engine calls it when the session is cleared or expires. Takes the GIL; never throws.
void forget_session_cells(const std::string& session_id);

pybind11::object wrap_execution(const std::shared_ptr<python::Execution>& execution);

}  // namespace pymcp::bridge
