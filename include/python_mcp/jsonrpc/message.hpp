#pragma once
// JSON-RPC 2.0 messages: error codes, builders, validation and bounded parsing. Stateless.

#include "python_mcp/support/json.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pymcp::jsonrpc {

using json = pymcp::json;

enum ErrorCode : int {
    kParseError = -32700,
    kInvalidRequest = -32600,
    kMethodNotFound = -32601,
    kInvalidParams = -32602,
    kInternalError = -32603,
};

// Thrown by handlers to answer a request with a JSON-RPC error.
class RpcError : public std::runtime_error {
public:
    RpcError(int code, const std::string& message, json data = nullptr)
        : std::runtime_error(message), code_(code), data_(std::move(data)) {}
    int code() const { return code_; }
    const json& data() const { return data_; }

private:
    int code_;
    json data_;
};

json make_result(const json& id, json result);
json make_error(const json& id, int code, const std::string& message, const json& data = nullptr);
json make_request(const json& id, const std::string& method, json params);
json make_notification(const std::string& method, json params);

enum class Kind { Request, Notification, Response, Invalid };

struct Classified {
    Kind kind = Kind::Invalid;
    std::string problem;  // why it is Invalid
};

// Checks the envelope: jsonrpc "2.0", method a string, id a string or integer (not null, not a
// float, not a boolean), params an object or array when present.
Classified classify(const json& message);

// A request id usable as a map key: distinguishes 1 from "1".
std::string id_key(const json& id);

struct ParseLimits {
    size_t max_depth = 128;
};

// Parses one line. Throws RpcError(kParseError) for invalid JSON or invalid UTF-8, and for nesting
// deeper than limits.max_depth (checked before parsing so hostile input never recurses).
json parse_message(std::string_view line, const ParseLimits& limits = {});

// What the top level of a message's text says, read by scanning, never by parsing: for texts cut
// short (the head of a line too long to keep) or that cannot be parsed (nested too deep, invalid
// UTF-8). Containers are skipped by counting brackets outside strings, so any depth is safe and
// nothing recurses. Members are read in order until the text ends or stops being JSON; the id
// may come anywhere (the TypeScript SDK writes it last). Never throws.
struct Envelope {
    json id;              // the top-level "id" when a string or an integer that ends in the text, else null
    bool answer = false;  // a top-level "result" or "error" was seen and no "method"
};
Envelope scan_envelope(std::string_view text);

// The request id of a message known only by its first bytes (a line too long to read whole):
// scan_envelope's id, or nullopt.
std::optional<json> request_id_from_prefix(std::string_view prefix);

// Serialises for the wire: one line, no newline inside, invalid UTF-8 replaced rather than thrown.
std::string serialize(const json& message);

}  // namespace pymcp::jsonrpc
