#include "python_mcp/http/http_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>

namespace pymcp::http {

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim_blanks(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}


namespace {

using Clock = std::chrono::steady_clock;

// poll() in slices so a stop() is noticed within one slice.
constexpr int kSliceMs = 250;
constexpr size_t kTooLargeHead = 4096;  // bytes of an over-long body kept for the id scan
constexpr size_t kThreadStack = 1024 * 1024;

enum class ReadStatus { Ok, Closed, Timeout, HeaderTooLarge, Bad, LengthRequired };


bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Waits until fd is readable or the deadline passes; false on time-out or stop.
bool wait_readable(int fd, Clock::time_point deadline, const std::atomic<bool>& stopping) {
    for (;;) {
        if (stopping.load()) return false;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd pfd{fd, POLLIN, 0};
        int r = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, kSliceMs)));
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return false;
    }
}

// Appends what one read() gives; 0 at EOF, -1 on error.
ssize_t read_some(int fd, std::string& buffer) {
    char chunk[16384];
    for (;;) {
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n > 0) buffer.append(chunk, static_cast<size_t>(n));
        return n;
    }
}

bool parse_request_line(std::string_view line, Request& request) {
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return false;
    request.method = line.substr(0, sp1);
    request.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    request.version = line.substr(sp2 + 1);
    if (request.method.empty() || request.target.empty()) return false;
    if (!std::all_of(request.method.begin(), request.method.end(), is_token_char)) return false;
    return request.version == "HTTP/1.1" || request.version == "HTTP/1.0";
}

// The request line and headers (without the blank line). Sets declared_length.
ReadStatus parse_head(std::string_view head, Request& request) {
    auto eol = head.find("\r\n");
    if (!parse_request_line(head.substr(0, eol), request)) return ReadStatus::Bad;
    bool have_length = false;
    while (eol != std::string_view::npos) {
        size_t start = eol + 2;
        eol = head.find("\r\n", start);
        std::string_view line = head.substr(start, eol == std::string_view::npos ? std::string_view::npos : eol - start);
        if (line.empty()) continue;
        auto colon = line.find(':');
        // A folded line (obsolete) or a name with spaces is refused, as RFC 9112 allows.
        if (colon == 0 || colon == std::string_view::npos) return ReadStatus::Bad;
        std::string_view name = line.substr(0, colon);
        if (!std::all_of(name.begin(), name.end(), is_token_char)) return ReadStatus::Bad;
        std::string value(trim_blanks(line.substr(colon + 1)));
        std::string key = lower_ascii(name);
        if (key == "transfer-encoding") return ReadStatus::LengthRequired;
        if (key == "content-length") {
            if (value.empty() || value.size() > 15 || !std::all_of(value.begin(), value.end(), ::isdigit))
                return ReadStatus::Bad;
            size_t n = std::stoull(value);
            if (have_length && n != request.declared_length) return ReadStatus::Bad;
            have_length = true;
            request.declared_length = n;
        }
        request.headers.emplace_back(std::move(key), std::move(value));
    }
    return ReadStatus::Ok;
}

struct Reader {
    int fd;
    std::string& buffer;  // bytes read past the previous request (pipelining)
    const ServerOptions& options;
    const std::atomic<bool>& stopping;

    ReadStatus head(Request& request) {
        auto deadline = Clock::now() + options.keep_alive_timeout;
        bool started = !buffer.empty();
        if (started) deadline = Clock::now() + options.header_timeout;
        size_t end;
        while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
            if (buffer.size() > options.max_header_bytes) return ReadStatus::HeaderTooLarge;
            if (!wait_readable(fd, deadline, stopping)) return started ? ReadStatus::Timeout : ReadStatus::Closed;
            ssize_t n = read_some(fd, buffer);
            if (n <= 0) return ReadStatus::Closed;
            if (!started) {
                started = true;
                deadline = Clock::now() + options.header_timeout;  // slow headers are dropped
            }
        }
        if (end > options.max_header_bytes) return ReadStatus::HeaderTooLarge;
        ReadStatus status = parse_head(std::string_view(buffer).substr(0, end), request);
        buffer.erase(0, end + 4);
        return status;
    }

    // The body: whole, or (too large) its head kept and the rest read away.
    ReadStatus body(Request& request) {
        size_t want = request.declared_length;
        request.too_large = want > options.max_body_bytes;
        size_t keep = request.too_large ? std::min(want, kTooLargeHead) : want;
        size_t taken = std::min(buffer.size(), want);
        request.body.assign(buffer, 0, std::min(taken, keep));
        buffer.erase(0, taken);
        size_t left = want - taken;
        while (left > 0) {
            if (!wait_readable(fd, Clock::now() + options.body_idle_timeout, stopping)) return ReadStatus::Timeout;
            std::string chunk;
            ssize_t n = read_some(fd, chunk);
            if (n <= 0) return ReadStatus::Closed;
            size_t used = std::min(chunk.size(), left);
            if (request.body.size() < keep)
                request.body.append(chunk, 0, std::min(used, keep - request.body.size()));
            left -= used;
            if (used < chunk.size()) buffer.append(chunk, used, std::string::npos);
        }
        return ReadStatus::Ok;
    }
};

std::string response_head(int status, const Headers& headers, bool keep_alive) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
    for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
    out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    return out;
}

}  // namespace

const char* status_text(int status) {
    switch (status) {
        case 200: return "OK";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 406: return "Not Acceptable";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 415: return "Unsupported Media Type";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Status";
    }
}

// --- Request ------------------------------------------------------------------------------------

const std::string* Request::header(std::string_view lower_name) const {
    for (const auto& [name, value] : headers)
        if (name == lower_name) return &value;
    return nullptr;
}

bool Request::keep_alive() const {
    const std::string* c = header("connection");
    std::string v = c ? lower_ascii(*c) : std::string();
    if (version == "HTTP/1.0") return v.find("keep-alive") != std::string::npos;
    return v.find("close") == std::string::npos;
}

std::string_view Request::path() const {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
}

// --- Exchange -----------------------------------------------------------------------------------

bool Exchange::write_all(std::string_view data) {
    if (broken_) return false;
    while (!data.empty()) {
        ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {  // gone, or stopped reading past SO_SNDTIMEO
            broken_ = true;
            return false;
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

bool Exchange::respond(int status, std::string_view content_type, std::string_view body, const Headers& extra) {
    if (responded_) return false;
    responded_ = true;
    Headers headers = extra;
    if (!content_type.empty()) headers.emplace_back("Content-Type", std::string(content_type));
    headers.emplace_back("Content-Length", std::to_string(body.size()));
    std::string out = response_head(status, headers, keep_alive_);
    out.append(body);
    return write_all(out);
}

bool Exchange::start_stream(int status, std::string_view content_type, const Headers& extra) {
    if (responded_) return false;
    responded_ = streaming_ = true;
    Headers headers = extra;
    headers.emplace_back("Content-Type", std::string(content_type));
    headers.emplace_back("Cache-Control", "no-cache");
    headers.emplace_back("X-Accel-Buffering", "no");
    headers.emplace_back("Transfer-Encoding", "chunked");
    return write_all(response_head(status, headers, keep_alive_));
}

bool Exchange::write_chunk(std::string_view data) {
    if (!streaming_ || data.empty()) return streaming_ && !broken_;
    char size[32];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out(size, static_cast<size_t>(n));
    out.append(data);
    out.append("\r\n");
    return write_all(out);
}

bool Exchange::end_stream() {
    if (!streaming_) return false;
    streaming_ = false;
    return write_all("0\r\n\r\n");
}

bool Exchange::client_gone() {
    if (broken_) return true;
    pollfd pfd{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&pfd, 1, 0) <= 0) return false;
    if (pfd.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return true;
    char c;
    ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

// --- HttpServer ---------------------------------------------------------------------------------

HttpServer::HttpServer(ServerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    std::string port = std::to_string(options_.port);
    if (int rc = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found); rc != 0)
        throw std::runtime_error("--http " + options_.host + ": " + ::gai_strerror(rc));
    std::string error = "no address";
    for (addrinfo* a = found; a && listen_fd_ < 0; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
            listen_fd_ = fd;
        } else {
            error = std::strerror(errno);
            ::close(fd);
        }
    }
    ::freeaddrinfo(found);
    if (listen_fd_ < 0) throw std::runtime_error("--http cannot listen on " + options_.host + ":" + port + ": " + error);
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) throw std::runtime_error("--http: pipe2 failed");
    {
        std::lock_guard lock(mutex_);
        accept_running_ = true;
    }
    std::thread([this] { accept_loop(); }).detach();
}

void HttpServer::accept_loop() {
    while (!stopping_.load()) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
        int r = ::poll(fds, 2, -1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || stopping_.load() || (fds[1].revents & POLLIN)) break;
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(50));
            continue;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        // A client that stops reading must not hold a writer forever.
        timeval send_timeout{30, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
        if (!spawn(fd)) {
            Exchange busy(fd, false);
            busy.respond(503, "text/plain", "too many connections\n", {{"Retry-After", "1"}});
            ::close(fd);
        }
    }
    std::lock_guard lock(mutex_);
    accept_running_ = false;
    idle_.notify_all();
}

// A detached thread with a small stack per connection; false when at the limit or no thread.
bool HttpServer::spawn(int fd) {
    {
        std::lock_guard lock(mutex_);
        if (open_fds_.size() >= options_.max_connections) return false;
        open_fds_.push_back(fd);
    }
    struct Start {
        HttpServer* self;
        int fd;
    };
    auto* start = new Start{this, fd};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kThreadStack);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, [](void* arg) -> void* {
        std::unique_ptr<Start> s(static_cast<Start*>(arg));
        s->self->serve(s->fd);
        return nullptr;
    }, start);
    pthread_attr_destroy(&attr);
    if (rc == 0) return true;
    delete start;
    forget(fd);
    return false;
}

void HttpServer::forget(int fd) {
    std::lock_guard lock(mutex_);
    std::erase(open_fds_, fd);
    idle_.notify_all();
}

void HttpServer::serve(int fd) {
    std::string buffer;
    Reader reader{fd, buffer, options_, stopping_};
    for (;;) {
        Request request;
        ReadStatus status = reader.head(request);
        if (status == ReadStatus::Ok) status = reader.body(request);
        if (status == ReadStatus::Closed || (status == ReadStatus::Timeout && request.method.empty())) break;
        Exchange exchange(fd, request.keep_alive() && status == ReadStatus::Ok && !stopping_.load());
        if (status != ReadStatus::Ok) {
            int code = status == ReadStatus::HeaderTooLarge ? 431
                       : status == ReadStatus::LengthRequired ? 411
                       : status == ReadStatus::Timeout       ? 408
                                                             : 400;
            exchange.respond(code, "text/plain", std::string(status_text(code)) + "\n");
            break;
        }
        try {
            handler_(request, exchange);
        } catch (const std::exception& e) {
            spdlog::error("http: handling {} {} failed: {}", request.method, request.target, e.what());
            exchange.close_after();
        }
        if (!exchange.responded()) exchange.respond(500, "text/plain", "no response\n");
        if (!exchange.keep_alive()) break;
    }
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    forget(fd);
}

void HttpServer::stop(std::chrono::milliseconds timeout) {
    if (stopping_.exchange(true)) return;
    if (wake_pipe_[1] >= 0) {
        [[maybe_unused]] auto n = ::write(wake_pipe_[1], "x", 1);
    }
    std::unique_lock lock(mutex_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);  // their threads see the client gone
    idle_.wait_for(lock, timeout, [&] { return open_fds_.empty() && !accept_running_; });
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
}

size_t HttpServer::open_connections() const {
    std::lock_guard lock(mutex_);
    return open_fds_.size();
}

}  // namespace pymcp::http
