#pragma once
// What the server and a session's worker process say to each other over the worker's pipes:
// JSON-RPC 2.0 (one message a line, the same Peer on both ends), with the engine's plain data
// (ExecRequest, ExecOutcome, BackgroundOutput) as JSON. Image bytes travel as base64 (a JSON
// string must be UTF-8). Stateless functions; from_json throws std::exception on a malformed
// document (json type errors), which the callers turn into an error answer.
//
// Server -> worker: notifications worker/execute {x, request}, worker/cancel {x}; requests
// worker/clear {session}, worker/read_output {session}.
// Worker -> server: notifications worker/ready {pid}, worker/done {x, outcome, variables} or
// {x, refused}, host/output {x, s, t}, host/progress {x, done, total, message}; requests
// host/call_tool {x, name, arguments, session}, host/list_tools {x}, host/wait_for_server {x,
// server}, host/ask_client {x, method, params}. `x` numbers an execution (the server's).

#include <string>
#include <string_view>

#include "python_mcp/engine/engine.hpp"
#include "python_mcp/support/json.hpp"

namespace pymcp::worker {

namespace method {
inline constexpr const char* kExecute = "worker/execute";
inline constexpr const char* kCancel = "worker/cancel";
inline constexpr const char* kClear = "worker/clear";
inline constexpr const char* kReadOutput = "worker/read_output";
inline constexpr const char* kReady = "worker/ready";
inline constexpr const char* kDone = "worker/done";
inline constexpr const char* kOutput = "host/output";
inline constexpr const char* kProgress = "host/progress";
inline constexpr const char* kCallTool = "host/call_tool";
inline constexpr const char* kListTools = "host/list_tools";
inline constexpr const char* kWaitForServer = "host/wait_for_server";
inline constexpr const char* kAskClient = "host/ask_client";
}  // namespace method

// The JSON-RPC error code of a HostError (the outside refused: nothing ran).
inline constexpr int kHostErrorCode = -32010;

pymcp::json to_json(const engine::ExecRequest& request);  // without `cancel` and `isolation`
engine::ExecRequest request_from_json(const pymcp::json& j);
pymcp::json to_json(const engine::ExecOutcome& outcome);
engine::ExecOutcome outcome_from_json(const pymcp::json& j);
pymcp::json to_json(const engine::BackgroundOutput& output);
engine::BackgroundOutput background_from_json(const pymcp::json& j);

std::string base64_encode(std::string_view bytes);
std::string base64_decode(std::string_view text);  // skips characters outside the alphabet

}  // namespace pymcp::worker
