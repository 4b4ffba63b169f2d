#pragma once
// The Streamable HTTP transport's checks, apart from its sockets and sessions so they can be
// tested one by one: which origins and hosts are local, the bearer token, media types, which
// era a POST speaks, and the modern revision's header/body agreement. Stateless; nothing here
// throws except std::bad_alloc.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "python_mcp/http/http_server.hpp"
#include "python_mcp/support/json.hpp"

namespace pymcp::jsonrpc {

// 2026-07-28: the HTTP headers do not match the body (HTTP 400).
inline constexpr int kHeaderMismatch = -32020;

namespace http_util {

// "localhost", "127.0.0.1" (any 127/8 address), "::1" or "[::1]".
bool is_loopback_name(std::string_view host);
// A Host header value ("localhost:8080", "[::1]:80", "127.0.0.1") naming this machine.
bool loopback_authority(std::string_view authority);
// An Origin ("http://localhost:3000") whose host is a loopback name. "null" is not.
bool loopback_origin(std::string_view origin);
// `Authorization: Bearer <token>`, compared in constant time.
bool bearer_matches(const std::string* authorization, const std::string& token);
// "application/json; charset=utf-8" is application/json.
bool media_type_is(std::string_view value, std::string_view type);
// Whether an Accept header lets `type` through (also through */* or type/*).
bool accepts(std::string_view accept, std::string_view type);
// The "=?base64?...?=" sentinel of mirrored header values, decoded; other values unchanged;
// nullopt when the sentinel holds no valid base64.
std::optional<std::string> decode_header_value(std::string_view value);

// A POST of the modern era: its request names a protocol version in `_meta`, or its
// MCP-Protocol-Version header names none of the legacy revisions.
bool is_modern_post(const http::Request& request, const pymcp::json& body, const std::vector<std::string>& legacy);
// Why a modern request's mirrored headers (MCP-Protocol-Version, Mcp-Method, Mcp-Name) disagree
// with its body, or are missing; nullopt when they agree.
std::optional<std::string> header_mismatch(const http::Request& request, const pymcp::json& body);
// The HTTP status of a modern answer sent as application/json: 400 for the modern protocol
// errors (-32020 .. -32022), 404 for an unknown method, 200 otherwise.
int modern_error_status(const std::string& answer);

}  // namespace http_util
}  // namespace pymcp::jsonrpc
