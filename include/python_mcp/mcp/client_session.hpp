#pragma once
// One client's state: what it negotiated in initialize (protocol revision, its capabilities and
// info), its log level, whether it is ready for requests from us, and the way back to it (the
// connection's Peer). Each connected client has its own; nothing of one client is process-wide.
//
// Threads: set by the connection's reading thread (initialize, notifications/initialized,
// logging/setLevel); read from any thread (tool calls, their progress and requests to the
// client). mutex_ is a leaf; request() waits without holding it. request() throws
// ClientRequestError; nothing else throws except std::bad_alloc.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "python_mcp/jsonrpc/peer.hpp"
#include "python_mcp/mcp/call_context.hpp"

namespace pymcp::mcp {

// RFC 5424 severities as MCP names them, lowest first; -1 for an unknown name.
int log_level_rank(const std::string& level);

class ClientSession final : public ClientChannel {
public:
    // Holds the peer weakly: work that outlives the connection finds nobody to talk to.
    explicit ClientSession(std::weak_ptr<jsonrpc::Peer> peer) : peer_(std::move(peer)) {}

    void notify(const std::string& method, json params) override;
    // A notification on one of the connection's streams (HTTP: the POST a request came in on).
    void notify_on(const std::string& method, json params, jsonrpc::StreamId stream);
    bool wants_log(const std::string& level) const override;
    json client_capabilities() const override;
    // A request to this client. Refused (ClientRequestError) before notifications/initialized,
    // or when the client did not declare the capability the method needs.
    json request(const std::string& method, json params, std::chrono::milliseconds timeout,
                 const CancellationToken& cancel) override;

    // initialize: the negotiated revision and what the client said about itself.
    void initialize(std::string protocol_version, json capabilities, json client_info);
    bool initialized() const { return initialized_.load(); }
    std::string protocol_version() const;
    json client_info() const;
    // notifications/initialized: requests to the client are allowed from now on.
    void mark_ready() { ready_ = true; }
    bool ready() const { return ready_.load(); }
    void set_log_level(int rank) { log_rank_ = rank; }

private:
    std::weak_ptr<jsonrpc::Peer> peer_;
    std::atomic<bool> initialized_{false};
    std::atomic<bool> ready_{false};
    std::atomic<int> log_rank_{1};  // info
    mutable std::mutex mutex_;
    std::string protocol_version_;  // GUARDED_BY(mutex_)
    json capabilities_ = json::object();  // GUARDED_BY(mutex_)
    json client_info_ = json::object();   // GUARDED_BY(mutex_)
};

}  // namespace pymcp::mcp
