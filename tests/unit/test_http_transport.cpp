// The Streamable HTTP transport (jsonrpc::HttpEndpoint on the small HTTP/1.1 server) in front of
// a real mcp::Server with test tools, driven over loopback sockets by a minimal HTTP client:
// the guards (token, Origin, Host, sizes, media types), legacy sessions, per-POST streams as JSON
// or SSE, the GET stream, DELETE, and the modern era's header rules and stream cancellation.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "python_mcp/jsonrpc/http_transport.hpp"
#include "python_mcp/mcp/protocol_versions.hpp"
#include "python_mcp/jsonrpc/http_util.hpp"
#include "python_mcp/mcp/server.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "support/eventually.hpp"

namespace pymcp::jsonrpc {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using pymcp::testing::eventually;

const bool kQuietLogs = [] {
    spdlog::set_level(spdlog::level::warn);
    return true;
}();

const std::string kToken = "test-token-0123456789";

struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;                            // de-chunked
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? "" : it->second;
    }
    json json_body() const { return json::parse(body); }
    // The data lines of an SSE body, parsed.
    std::vector<json> events() const {
        std::vector<json> out;
        size_t pos = 0;
        while ((pos = body.find("data: ", pos)) != std::string::npos) {
            size_t end = body.find('\n', pos);
            out.push_back(json::parse(body.substr(pos + 6, end - pos - 6)));
            pos = end;
        }
        return out;
    }
};

// One HTTP/1.1 connection to the endpoint; reads whole responses (Content-Length or chunked).
class Client {
public:
    explicit Client(uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ADD_FAILURE() << "connect";
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        port_ = port;
    }
    ~Client() { ::close(fd_); }

    void send_raw(const std::string& text) { ASSERT_EQ(::send(fd_, text.data(), text.size(), MSG_NOSIGNAL), (ssize_t)text.size()); }

    Response request(const std::string& method, const std::string& body, std::map<std::string, std::string> headers = {},
                     bool auth = true) {
        std::string req = method + " /mcp HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) + "\r\n";
        if (auth) headers.emplace("Authorization", "Bearer " + kToken);
        if (method == "POST") {
            headers.emplace("Content-Type", "application/json");
            headers.emplace("Accept", "application/json, text/event-stream");
        }
        for (auto& [k, v] : headers) req += k + ": " + v + "\r\n";
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        send_raw(req);
        return read_response();
    }

    Response read_response() {
        Response r;
        size_t end;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
            if (!fill()) return r;
        std::string head = buf_.substr(0, end);
        buf_.erase(0, end + 4);
        r.status = std::stoi(head.substr(9, 3));
        size_t pos = head.find("\r\n");
        while (pos != std::string::npos) {
            size_t next = head.find("\r\n", pos + 2);
            std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
            auto colon = line.find(':');
            std::string name = line.substr(0, colon);
            for (auto& c : name) c = static_cast<char>(std::tolower(c));
            r.headers[name] = line.substr(colon + 2);
            pos = next;
        }
        if (r.header("transfer-encoding") == "chunked") {
            for (;;) {
                size_t eol;
                while ((eol = buf_.find("\r\n")) == std::string::npos)
                    if (!fill()) return r;
                size_t size = std::stoul(buf_.substr(0, eol), nullptr, 16);
                while (buf_.size() < eol + 2 + size + 2)
                    if (!fill()) return r;
                r.body += buf_.substr(eol + 2, size);
                buf_.erase(0, eol + 2 + size + 2);
                if (size == 0) return r;
            }
        }
        size_t length = r.headers.count("content-length") ? std::stoul(r.header("content-length")) : 0;
        while (buf_.size() < length)
            if (!fill()) return r;
        r.body = buf_.substr(0, length);
        buf_.erase(0, length);
        return r;
    }
    // Reads until `text` has arrived on the connection (an open SSE stream), or time-out.
    bool read_until(const std::string& text) {
        while (raw_.find(text) == std::string::npos)
            if (!fill()) return false;
        return true;
    }
    bool closed_by_server() {
        char c;
        return ::recv(fd_, &c, 1, 0) == 0;
    }
    void close() { ::shutdown(fd_, SHUT_RDWR); }

private:
    bool fill() {
        char chunk[8192];
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buf_.append(chunk, n);
        raw_.append(chunk, n);
        return true;
    }
    int fd_;
    uint16_t port_;
    std::string buf_;
    std::string raw_;
};

mcp::ToolDefinition def(const std::string& name) {
    mcp::ToolDefinition d;
    d.name = name;
    d.description = name;
    return d;
}

std::string rpc(const json& id, const std::string& method, json params = json::object()) {
    return make_request(id, method, std::move(params)).dump();
}

std::string initialize_body(const std::string& version = "2025-11-25") {
    return rpc(1, "initialize",
               json{{"protocolVersion", version}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}});
}

json modern_meta() {
    return json{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"}, {"io.modelcontextprotocol/clientCapabilities", json::object()}};
}

class HttpTransportTest : public ::testing::Test {
protected:
    void SetUp() override {
        registry_.add(def("echo"), mcp::blocking_handler([](const json& a, mcp::CallContext&) { return mcp::tool_result(a.dump(), a); }));
        registry_.add(def("progress"), mcp::blocking_handler([](const json&, mcp::CallContext& ctx) {
            ctx.report_progress(1, 2);
            ctx.report_progress(2, 2);
            return mcp::tool_result("done");
        }));
        registry_.add(def("wait"), mcp::blocking_handler([this](const json&, mcp::CallContext& ctx) {
            ++waits_;
            ctx.report_progress(1);  // so the client knows it runs
            bool cancelled = ctx.cancellation().wait_for(10s);
            if (cancelled) ++cancelled_;
            return mcp::tool_result(cancelled ? "cancelled" : "waited");
        }));
        server_ = std::make_unique<mcp::Server>(registry_, mcp::ServerOptions{});
        HttpTransportOptions options;
        options.legacy_versions.assign(mcp::kLegacyProtocolVersions.begin(), mcp::kLegacyProtocolVersions.end());
        options.token = kToken;
        options.server.max_body_bytes = 4096;
        endpoint_ = std::make_unique<HttpEndpoint>(options, [this](const std::shared_ptr<Transport>& t) {
            auto c = server_->connect(*t);
            c->hold(t);
            return HttpBinding{c, &c->peer(), [c] { c->peer().cancel_incoming("ended"); }};
        });
        endpoint_->start();
    }
    void TearDown() override {
        endpoint_->stop();
        endpoint_.reset();
        server_.reset();
    }

    // initialize + notifications/initialized; the session id.
    std::string open_session(Client& c) {
        Response r = c.request("POST", initialize_body());
        EXPECT_EQ(r.status, 200) << r.body;
        std::string sid = r.header("mcp-session-id");
        EXPECT_EQ(sid.size(), 32u);
        Response n = c.request("POST", make_notification("notifications/initialized", nullptr).dump(), {{"Mcp-Session-Id", sid}});
        EXPECT_EQ(n.status, 202);
        return sid;
    }

    mcp::ToolRegistry registry_;
    std::unique_ptr<mcp::Server> server_;
    std::unique_ptr<HttpEndpoint> endpoint_;
    std::atomic<int> waits_{0};
    std::atomic<int> cancelled_{0};
};

TEST_F(HttpTransportTest, GuardsTokenOriginHostSizeAndMediaTypes) {
    Client c(endpoint_->port());
    EXPECT_EQ(c.request("POST", initialize_body(), {}, /*auth=*/false).status, 401);
    EXPECT_EQ(c.request("POST", initialize_body(), {{"Authorization", "Bearer wrong-token-0123456789"}}, false).status, 401);
    EXPECT_EQ(c.request("POST", initialize_body(), {{"Origin", "https://evil.example"}}).status, 403);
    EXPECT_EQ(c.request("POST", initialize_body(), {{"Origin", "http://localhost.evil.example"}}).status, 403);
    EXPECT_EQ(c.request("POST", initialize_body(), {{"Origin", "http://localhost:5173"}}).status, 200);
    EXPECT_EQ(c.request("POST", initialize_body(), {{"Content-Type", "text/plain"}}).status, 415);
    EXPECT_EQ(c.request("POST", initialize_body(), {{"Accept", "text/html"}}).status, 406);
    Response big = c.request("POST", R"({"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"x":")" + std::string(5000, 'a') + "\"}}");
    EXPECT_EQ(big.status, 413);
    EXPECT_EQ(big.json_body()["id"], 77);
    Client d(endpoint_->port());
    EXPECT_EQ(d.request("POST", "{not json").status, 400);
    EXPECT_EQ(d.request("PUT", "").status, 405);
    Client e(endpoint_->port());
    e.send_raw("POST /mcp HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer " + kToken + "\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(e.read_response().status, 403);
}

TEST_F(HttpTransportTest, SessionsAreRequiredKnownAndEndedByDelete) {
    Client c(endpoint_->port());
    EXPECT_EQ(c.request("POST", rpc(2, "tools/list")).status, 400);  // no session, not initialize
    EXPECT_EQ(c.request("POST", rpc(2, "tools/list"), {{"Mcp-Session-Id", "feedface"}}).status, 404);
    std::string sid = open_session(c);
    EXPECT_EQ(endpoint_->session_count(), 1u);
    Response list = c.request("POST", rpc(2, "tools/list"), {{"Mcp-Session-Id", sid}});
    EXPECT_EQ(list.status, 200);
    EXPECT_EQ(list.header("content-type"), "application/json");
    EXPECT_EQ(list.json_body()["result"]["tools"].size(), 3u);
    EXPECT_EQ(c.request("POST", rpc(3, "tools/list"), {{"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", "2030-01-01"}}).status, 400);
    EXPECT_EQ(c.request("DELETE", "", {{"Mcp-Session-Id", sid}}).status, 204);
    EXPECT_EQ(endpoint_->session_count(), 0u);
    EXPECT_EQ(c.request("POST", rpc(4, "tools/list"), {{"Mcp-Session-Id", sid}}).status, 404);
    // A refused initialize opens no session.
    EXPECT_EQ(c.request("POST", rpc(5, "initialize", json::object())).header("mcp-session-id"), "");
    EXPECT_TRUE(eventually([&] { return endpoint_->session_count() == 0; }));  // dropped after the answer
}

TEST_F(HttpTransportTest, TwoSessionsShareNothing) {
    Client a(endpoint_->port()), b(endpoint_->port());
    std::string sa = open_session(a), sb = open_session(b);
    EXPECT_NE(sa, sb);
    // The same request id in both sessions at once: each gets its own answer.
    Response ra = a.request("POST", rpc(7, "tools/call", json{{"name", "echo"}, {"arguments", {{"who", "a"}}}}), {{"Mcp-Session-Id", sa}});
    Response rb = b.request("POST", rpc(7, "tools/call", json{{"name", "echo"}, {"arguments", {{"who", "b"}}}}), {{"Mcp-Session-Id", sb}});
    EXPECT_EQ(ra.json_body()["result"]["structuredContent"]["who"], "a");
    EXPECT_EQ(rb.json_body()["result"]["structuredContent"]["who"], "b");
}

TEST_F(HttpTransportTest, ProgressTurnsTheAnswerIntoAnSseStreamOnItsPost) {
    Client c(endpoint_->port());
    std::string sid = open_session(c);
    Response r = c.request("POST", rpc(5, "tools/call", json{{"name", "progress"}, {"_meta", {{"progressToken", "tok"}}}}),
                           {{"Mcp-Session-Id", sid}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("content-type"), "text/event-stream");
    auto events = r.events();
    ASSERT_EQ(events.size(), 3u) << r.body;
    EXPECT_EQ(events[0]["method"], "notifications/progress");
    EXPECT_EQ(events[0]["params"]["progressToken"], "tok");
    EXPECT_EQ(events[1]["params"]["progress"], 2);
    EXPECT_EQ(events[2]["id"], 5);
    // The connection is kept for the next request (the chunked stream ended cleanly).
    EXPECT_EQ(c.request("POST", rpc(6, "tools/list"), {{"Mcp-Session-Id", sid}}).status, 200);
    // A JSON-only client gets the answer alone.
    Response j = c.request("POST", rpc(7, "tools/call", json{{"name", "progress"}, {"_meta", {{"progressToken", "t2"}}}}),
                           {{"Mcp-Session-Id", sid}, {"Accept", "application/json"}});
    EXPECT_EQ(j.header("content-type"), "application/json");
    EXPECT_EQ(j.json_body()["id"], 7);
}

TEST_F(HttpTransportTest, CancelledRequestEndsItsStreamWithoutAnAnswer) {
    Client c(endpoint_->port()), side(endpoint_->port());
    std::string sid = open_session(c);
    c.send_raw("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kToken +
               "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: " + sid +
               "\r\nContent-Length: " +
               std::to_string(rpc(9, "tools/call", json{{"name", "wait"}, {"_meta", {{"progressToken", 1}}}}).size()) + "\r\n\r\n" +
               rpc(9, "tools/call", json{{"name", "wait"}, {"_meta", {{"progressToken", 1}}}}));
    ASSERT_TRUE(c.read_until("notifications/progress"));
    Response n = side.request("POST", make_notification("notifications/cancelled", json{{"requestId", 9}}).dump(),
                              {{"Mcp-Session-Id", sid}});
    EXPECT_EQ(n.status, 202);
    ASSERT_TRUE(c.read_until("0\r\n\r\n"));  // the stream ends
    EXPECT_TRUE(eventually([&] { return cancelled_ == 1; }));
}

TEST_F(HttpTransportTest, GetStreamCarriesToolListChanges) {
    Client c(endpoint_->port()), g(endpoint_->port());
    std::string sid = open_session(c);
    g.send_raw("GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kToken +
               "\r\nAccept: text/event-stream\r\nMcp-Session-Id: " + sid + "\r\n\r\n");
    ASSERT_TRUE(g.read_until("text/event-stream"));
    Client dup(endpoint_->port());
    EXPECT_EQ(dup.request("GET", "", {{"Accept", "text/event-stream"}, {"Mcp-Session-Id", sid}}).status, 409);
    EXPECT_EQ(dup.request("GET", "", {{"Accept", "text/event-stream"}}).status, 400);
    registry_.add(def("later"), mcp::blocking_handler([](const json&, mcp::CallContext&) { return mcp::tool_result("x"); }));
    EXPECT_TRUE(g.read_until("notifications/tools/list_changed"));
}

TEST_F(HttpTransportTest, ModernPostsAreStatelessWithCheckedHeaders) {
    Client c(endpoint_->port());
    std::map<std::string, std::string> h{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "server/discover"}};
    Response d = c.request("POST", rpc("d", "server/discover", json{{"_meta", modern_meta()}}), h);
    EXPECT_EQ(d.status, 200) << d.body;
    EXPECT_EQ(d.json_body()["result"]["supportedVersions"][0], "2026-07-28");
    EXPECT_EQ(d.header("mcp-session-id"), "");
    EXPECT_EQ(endpoint_->session_count(), 0u);
    // Mirrored headers must match the body.
    Response m = c.request("POST", rpc(2, "tools/list", json{{"_meta", modern_meta()}}), h);
    EXPECT_EQ(m.status, 400);
    EXPECT_EQ(m.json_body()["error"]["code"], kHeaderMismatch);
    Response n = c.request("POST", rpc(3, "tools/call", json{{"name", "echo"}, {"_meta", modern_meta()}}),
                           {{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}});
    EXPECT_EQ(n.json_body()["error"]["code"], kHeaderMismatch);  // no Mcp-Name
    Response ok = c.request("POST", rpc(4, "tools/call", json{{"name", "echo"}, {"_meta", modern_meta()}}),
                            {{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "=?base64?ZWNobw==?="}});
    EXPECT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(ok.json_body()["result"]["resultType"], "complete");
    // Modern errors carry their HTTP status.
    json old_meta = modern_meta();
    old_meta["io.modelcontextprotocol/protocolVersion"] = "1900-01-01";
    Response v = c.request("POST", rpc(5, "tools/list", json{{"_meta", old_meta}}),
                           {{"MCP-Protocol-Version", "1900-01-01"}, {"Mcp-Method", "tools/list"}});
    EXPECT_EQ(v.status, 400);
    EXPECT_EQ(v.json_body()["error"]["code"], -32022);
    Response u = c.request("POST", rpc(6, "no/such", json{{"_meta", modern_meta()}}),
                           {{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "no/such"}});
    EXPECT_EQ(u.status, 404);
    EXPECT_EQ(u.json_body()["error"]["code"], -32601);
    EXPECT_EQ(c.request("GET", "", {{"Accept", "text/event-stream"}, {"MCP-Protocol-Version", "2026-07-28"}}).status, 405);
}

TEST_F(HttpTransportTest, ClosingAModernStreamCancelsItsRequest) {
    Client c(endpoint_->port());
    std::string body = rpc(1, "tools/call", json{{"name", "wait"}, {"_meta", [] {
                                                    json m = modern_meta();
                                                    m["progressToken"] = 1;
                                                    return m;
                                                }()}});
    c.send_raw("POST /mcp HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + kToken +
               "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
               "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: wait\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body);
    ASSERT_TRUE(c.read_until("notifications/progress"));
    c.close();
    EXPECT_TRUE(eventually([&] { return cancelled_ == 1; }));
}

TEST(HttpUtil, OriginsHostsTokensAndHeaderValues) {
    using namespace http_util;
    EXPECT_TRUE(loopback_origin("http://localhost"));
    EXPECT_TRUE(loopback_origin("https://127.0.0.1:8443"));
    EXPECT_TRUE(loopback_origin("http://[::1]:3000"));
    EXPECT_FALSE(loopback_origin("null"));
    EXPECT_FALSE(loopback_origin("http://localhost.evil.com"));
    EXPECT_FALSE(loopback_origin("http://127.0.0.1.evil.com"));
    EXPECT_FALSE(loopback_origin("file://localhost"));
    EXPECT_TRUE(loopback_authority("localhost:8080"));
    EXPECT_FALSE(loopback_authority("example.com"));
    std::string good = "Bearer abc", bad = "Bearer abd", basic = "Basic abc";
    EXPECT_TRUE(bearer_matches(&good, "abc"));
    EXPECT_FALSE(bearer_matches(&bad, "abc"));
    EXPECT_FALSE(bearer_matches(&basic, "abc"));
    EXPECT_FALSE(bearer_matches(nullptr, "abc"));
    EXPECT_TRUE(accepts("application/json, text/event-stream", "text/event-stream"));
    EXPECT_TRUE(accepts("*/*", "application/json"));
    EXPECT_FALSE(accepts("text/html", "application/json"));
    EXPECT_TRUE(media_type_is("Application/JSON; charset=utf-8", "application/json"));
    EXPECT_EQ(decode_header_value("=?base64?SGVsbG8sIOS4lueVjA==?="), "Hello, 世界");
    EXPECT_EQ(decode_header_value("plain"), "plain");
    EXPECT_EQ(decode_header_value("=?base64?!!?="), std::nullopt);
}

}  // namespace
}  // namespace pymcp::jsonrpc
