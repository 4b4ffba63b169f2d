#pragma once
// MCP's Streamable HTTP transport, server side, on the small HTTP/1.1 server (http/http_server.hpp).
// One endpoint path (/mcp) serves both protocol eras:
//
// - Legacy (2025-03-26 .. 2025-11-25): `initialize` without an Mcp-Session-Id opens a session
//   (a Transport of its own, bound through the connector to its own MCP connection) and the
//   answer carries the new Mcp-Session-Id; later POSTs, the GET stream (server-initiated
//   messages) and DELETE (ends the session) name it: missing -> 400, unknown -> 404.
// - Modern (2026-07-28): a POST whose request carries `_meta` protocolVersion (or an
//   MCP-Protocol-Version header of no legacy revision) is served on a connection of its own that
//   lives as long as the POST; closing its response stream cancels the request. The mirrored
//   headers (MCP-Protocol-Version, Mcp-Method, Mcp-Name) must match the body: -32020 and 400.
//
// Every POST with requests gets its own StreamId: its answer goes back as application/json, or as
// text/event-stream when notifications for it (progress, log messages) come first and the client
// accepts SSE. Notifications and responses posted get 202. Every request needs the bearer token;
// an Origin header must name a loopback host (403 otherwise); a body over the limit gets 413.
//
// Threads: the HTTP server's connection threads. A session's messages reach its handler under
// the session's dispatch lock, one at a time (the session's "reading thread" is whichever
// connection thread holds that lock). send() is called from any thread and only queues; each
// stream's connection thread writes its own socket. Lock order: endpoint mutex -> session
// dispatch lock -> session mutex; handlers run with only the dispatch lock held.
// start() throws std::runtime_error; nothing else throws except std::bad_alloc.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "python_mcp/http/http_server.hpp"
#include "python_mcp/jsonrpc/message.hpp"
#include "python_mcp/jsonrpc/transport.hpp"

namespace pymcp::jsonrpc {

// What a session's transport is bound to: the handler its messages go to, what keeps that
// handler alive, and how to stop its work when the session ends (cancel requests in flight).
// The connector may keep the transport alive from what it binds (an MCP connection must not
// outlive its transport): the endpoint unbinds every session it ends, which breaks that cycle.
struct HttpBinding {
    std::shared_ptr<void> keep;
    MessageHandler* handler = nullptr;
    std::function<void()> end;
};
using HttpConnector = std::function<HttpBinding(const std::shared_ptr<Transport>& transport)>;

struct HttpTransportOptions {
    http::ServerOptions server;  // host, port, size limits (max_body_bytes: --max-message-bytes)
    std::string token;           // the bearer token every request must carry ("" only in tests)
    std::string path = "/mcp";
    size_t max_sessions = 1000;
    std::chrono::milliseconds session_idle_timeout{std::chrono::hours(1)};
    std::chrono::milliseconds sse_keepalive{15000};  // a comment line on quiet SSE streams
    ParseLimits parse_limits;
    // The legacy revisions: an MCP-Protocol-Version header naming one of them belongs to a
    // session; any other value is the modern era. Set by the wiring from
    // mcp::kLegacyProtocolVersions (the one list); HttpEndpoint refuses an empty one.
    std::vector<std::string> legacy_versions;
};

class HttpSession;

class HttpEndpoint {
public:
    HttpEndpoint(HttpTransportOptions options, HttpConnector connector);
    ~HttpEndpoint();
    HttpEndpoint(const HttpEndpoint&) = delete;
    HttpEndpoint& operator=(const HttpEndpoint&) = delete;

    void start();  // throws std::runtime_error when it cannot listen
    uint16_t port() const { return server_.port(); }
    // Ends every session (their requests are cancelled) and stops the HTTP server.
    void stop();
    size_t session_count() const;

private:
    struct Post;
    void handle(http::Request& request, http::Exchange& exchange);
    bool admit(const http::Request& request, http::Exchange& exchange) const;
    void on_post(http::Request& request, http::Exchange& exchange);
    void on_get(http::Request& request, http::Exchange& exchange);
    void on_delete(http::Request& request, http::Exchange& exchange);
    void serve_legacy(Post& post, http::Exchange& exchange);
    void serve_modern(Post& post, http::Exchange& exchange);
    std::shared_ptr<HttpSession> find_session(const http::Request& request, http::Exchange& exchange);
    std::shared_ptr<HttpSession> open_session(http::Exchange& exchange);
    std::shared_ptr<HttpSession> make_session();
    void drop_session(const std::string& id);
    void release(HttpSession& session);
    // A request's use of its session: released (for the idle sweep) however the handler returns.
    struct SessionUse {
        HttpEndpoint* self;
        HttpSession* session;
        ~SessionUse() { self->release(*session); }
    };
    void sweep_idle_sessions();

    HttpTransportOptions options_;
    HttpConnector connector_;
    http::HttpServer server_;

    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<HttpSession>> sessions_;  // GUARDED_BY(mutex_)
};

}  // namespace pymcp::jsonrpc
