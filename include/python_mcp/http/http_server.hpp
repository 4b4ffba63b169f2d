#pragma once
// A small HTTP/1.1 server on POSIX sockets, enough for MCP's Streamable HTTP transport: a request
// line, headers and a Content-Length body in; a whole response (Content-Length) or a chunked
// stream (Server-Sent Events) out; keep-alive between requests.
//
// It is deliberately strict and bounded: request line + headers at most max_header_bytes, a body
// at most max_body_bytes (a longer one is read away and reported as `too_large` with its first
// bytes kept, so the handler can answer 413 under the request's id), chunked request bodies are
// refused (411), and a client that sends its headers or body too slowly is dropped (timeouts).
//
// Threads: one accept thread, plus one thread per open connection (1 MiB stacks; at most
// max_connections, beyond which a new connection gets 503 and is closed). The handler runs on the
// connection's thread and may block it as long as the exchange lasts (an SSE stream). stop()
// may be called from any thread. Lock order: mutex_ is a leaf. start() throws std::runtime_error
// when it cannot listen; nothing else throws except std::bad_alloc.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pymcp::http {

// Header text helpers (HTTP names are ASCII, case-insensitive; values are trimmed of blanks).
std::string lower_ascii(std::string_view s);
std::string_view trim_blanks(std::string_view s);

struct Request {
    std::string method;
    std::string target;   // the path (and query), as sent
    std::string version;  // "HTTP/1.1" or "HTTP/1.0"
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
    std::string body;  // the whole body, or its first bytes when too_large
    bool too_large = false;
    size_t declared_length = 0;

    // The first header of that (lower-case) name, or nullptr.
    const std::string* header(std::string_view lower_name) const;
    // Whether the client wants the connection kept after this request.
    bool keep_alive() const;
    // The path without its query string.
    std::string_view path() const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// The answer side of one request, used only by the connection's thread. Either respond() once,
// or start_stream() then write_chunk()... then end_stream(). Writes fail (false) once the client
// is gone; the connection is then closed after the handler returns.
class Exchange {
public:
    Exchange(int fd, bool keep_alive) : fd_(fd), keep_alive_(keep_alive) {}

    bool respond(int status, std::string_view content_type, std::string_view body, const Headers& extra = {});
    bool start_stream(int status, std::string_view content_type, const Headers& extra = {});
    bool write_chunk(std::string_view data);
    bool end_stream();
    // True when the client closed its side (or reset the connection). Never blocks. A client that
    // already sent its next request (pipelining) is not gone.
    bool client_gone();
    bool responded() const { return responded_; }
    bool keep_alive() const { return keep_alive_ && !broken_; }
    // Keep-alive off for this connection: it closes after the response.
    void close_after() { keep_alive_ = false; }

private:
    bool write_all(std::string_view data);

    int fd_;
    bool keep_alive_;
    bool responded_ = false;
    bool streaming_ = false;
    bool broken_ = false;
};

struct ServerOptions {
    std::string host = "127.0.0.1";
    uint16_t port = 0;  // 0: any free port (see HttpServer::port())
    size_t max_header_bytes = 16 * 1024;
    size_t max_body_bytes = 32 * 1024 * 1024;
    size_t max_connections = 512;
    // The request line and headers must arrive within this time of the request's first byte.
    std::chrono::milliseconds header_timeout{10000};
    // A body that makes no progress for this long is given up (the connection closes).
    std::chrono::milliseconds body_idle_timeout{30000};
    // A kept-alive connection with no new request for this long is closed.
    std::chrono::milliseconds keep_alive_timeout{120000};
};

const char* status_text(int status);

class HttpServer {
public:
    using Handler = std::function<void(Request& request, Exchange& exchange)>;

    HttpServer(ServerOptions options, Handler handler);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and listens, then accepts on a thread of its own. Throws std::runtime_error.
    void start();
    uint16_t port() const { return port_; }
    // Stops accepting and shuts every open connection down (their handlers see the client gone);
    // waits up to `timeout` for the connection threads to end.
    void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
    size_t open_connections() const;

private:
    struct Connection;
    void accept_loop();
    void serve(int fd);
    bool spawn(int fd);
    void forget(int fd);

    ServerOptions options_;
    Handler handler_;
    int listen_fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    int wake_pipe_[2] = {-1, -1};  // wakes the accept thread's poll() at stop()

    mutable std::mutex mutex_;
    std::condition_variable idle_;
    std::vector<int> open_fds_;  // GUARDED_BY(mutex_)
    bool accept_running_ = false;  // GUARDED_BY(mutex_)
};

}  // namespace pymcp::http
