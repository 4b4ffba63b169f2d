#pragma once
// Test fixture: an MCP client connected to a Server over an in-memory transport, no pipes and no
// process (clangd's LSPClient is the model). It records every message the server sends, can send
// raw text, and has a client Peer for real calls and for answering the server's own requests
// (elicitation, sampling). Construct it after the server; it disconnects in its destructor.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "python_mcp/jsonrpc/memory_transport.hpp"
#include "python_mcp/jsonrpc/peer.hpp"
#include "python_mcp/mcp/server.hpp"

namespace pymcp::testing {

class McpTestClient final : public jsonrpc::MessageHandler {
public:
    using json = pymcp::json;

    explicit McpTestClient(mcp::Server& server, size_t max_message_bytes = 0) {
        auto [server_end, client_end] = jsonrpc::MemoryTransport::pair(max_message_bytes);
        server_end_ = std::move(server_end);
        client_end_ = std::move(client_end);
        connection_ = server.connect(*server_end_);
        jsonrpc::PeerOptions options;
        options.name = "test-client";
        peer_ = std::make_unique<jsonrpc::Peer>(*client_end_, options);
        server_thread_ = std::thread([this] { server_end_->run(connection_->peer()); });
        client_thread_ = std::thread([this] { client_end_->run(*this); });
    }
    ~McpTestClient() override { disconnect(); }

    void disconnect() {
        if (!client_end_) return;
        client_end_->close();
        if (server_thread_.joinable()) server_thread_.join();
        if (client_thread_.joinable()) client_thread_.join();
        peer_->close("test client disconnected");
    }

    // The server's side of this client: its session (negotiated version, capabilities, ...).
    mcp::ClientSession& session() { return connection_->session(); }
    mcp::Server::Connection& connection() { return *connection_; }
    // The client's Peer: call(), notify(), and on_request() for requests from the server (set
    // those before the server can send them).
    jsonrpc::Peer& peer() { return *peer_; }

    void send(const json& message) { client_end_->send(message); }
    void send_text(const std::string& text) { client_end_->send_text(text); }

    // Waits until the server has read everything sent so far and sent what it answers at once:
    // it reads in order, so the answer to a ping sent now comes after those. Sync pings are not
    // recorded. The Peer counts a request finished just after writing its answer (so waiting for
    // idle means answers are out), so Server::in_flight() may still count this ping for a moment:
    // check counts with eventually().
    void sync(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
        std::string id;
        {
            std::lock_guard lock(mutex_);
            id = kSyncPrefix + std::to_string(++syncs_sent_);
        }
        send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "ping"}});
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, timeout, [&] { return last_sync_ == id; });
    }

    // Everything the server sent so far, in order.
    std::vector<json> messages() const {
        std::lock_guard lock(mutex_);
        return messages_;
    }
    size_t size() const {
        std::lock_guard lock(mutex_);
        return messages_.size();
    }
    // The first message from index `from` on that satisfies `pred`, waiting up to `timeout`.
    std::optional<json> wait_for(const std::function<bool(const json&)>& pred,
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds(5000),
                                 size_t from = 0) const {
        std::unique_lock lock(mutex_);
        std::optional<json> found;
        changed_.wait_for(lock, timeout, [&] {
            for (size_t i = from; i < messages_.size(); ++i)
                if (pred(messages_[i])) {
                    found = messages_[i];
                    return true;
                }
            return false;
        });
        return found;
    }
    size_t count(const std::function<bool(const json&)>& pred) const {
        std::lock_guard lock(mutex_);
        size_t n = 0;
        for (const auto& m : messages_)
            if (pred(m)) ++n;
        return n;
    }

    // initialize (+ notifications/initialized) through the client Peer; the result.
    json initialize(const std::string& version = "2025-11-25", json capabilities = json::object()) {
        json result = peer_->call("initialize", json{{"protocolVersion", version},
                                                     {"capabilities", std::move(capabilities)},
                                                     {"clientInfo", {{"name", "test"}, {"version", "1"}}}});
        peer_->notify("notifications/initialized", nullptr);
        return result;
    }

    // MessageHandler: record, then let the client Peer route it.
    void on_text(std::string_view text, jsonrpc::StreamId stream) override {
        try {
            json m = jsonrpc::parse_message(text);
            {
                std::lock_guard lock(mutex_);
                auto id = m.is_object() ? m.find("id") : m.end();
                if (m.is_object() && id != m.end() && id->is_string() &&
                    id->get_ref<const std::string&>().rfind(kSyncPrefix, 0) == 0)
                    last_sync_ = id->get<std::string>();
                else
                    messages_.push_back(std::move(m));
            }
            changed_.notify_all();
        } catch (const std::exception&) {
            std::lock_guard lock(mutex_);
            messages_.push_back(json{{"unparsable", std::string(text)}});
        }
        peer_->on_text(text, stream);
    }
    void on_oversized(std::string_view, size_t, jsonrpc::StreamId) override {}

private:
    std::unique_ptr<jsonrpc::MemoryTransport> server_end_;
    std::unique_ptr<jsonrpc::MemoryTransport> client_end_;
    std::shared_ptr<mcp::Server::Connection> connection_;
    std::unique_ptr<jsonrpc::Peer> peer_;
    std::thread server_thread_;
    std::thread client_thread_;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<json> messages_;
    static constexpr const char* kSyncPrefix = "__sync-";
    unsigned long syncs_sent_ = 0;  // GUARDED_BY(mutex_)
    std::string last_sync_;         // GUARDED_BY(mutex_)
};

}  // namespace pymcp::testing
