// The two-way JSON-RPC Peer over in-memory transports: a server Peer and a client Peer (or a raw
// recording end) talk as they would over stdio.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "python_mcp/jsonrpc/memory_transport.hpp"
#include "python_mcp/jsonrpc/peer.hpp"
#include "support/eventually.hpp"

using namespace pymcp;
using namespace pymcp::jsonrpc;
using namespace std::chrono_literals;
using pymcp::testing::eventually;

namespace {

// The far end as raw messages: what the peer under test sent, in order.
class Recorder final : public MessageHandler {
public:
    void on_text(std::string_view text, StreamId) override {
        {
            std::lock_guard lock(mutex_);
            messages_.push_back(parse_message(text));
        }
        cv_.notify_all();
    }
    void on_oversized(std::string_view, size_t, StreamId) override {}

    json next(std::chrono::milliseconds within = 5s) {
        std::unique_lock lock(mutex_);
        if (!cv_.wait_for(lock, within, [&] { return !messages_.empty(); })) return nullptr;
        json m = std::move(messages_.front());
        messages_.pop_front();
        return m;
    }
    size_t size() {
        std::lock_guard lock(mutex_);
        return messages_.size();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<json> messages_;
};

PeerOptions named(const std::string& name) {
    PeerOptions o;
    o.name = name;
    return o;
}

// A Peer on one end of an in-memory connection, its transport running on its own thread.
struct Side {
    std::unique_ptr<MemoryTransport> transport;
    std::unique_ptr<Peer> peer;
    std::thread thread;

    void start(MessageHandler& handler) {
        thread = std::thread([this, &handler] { transport->run(handler); });
    }
    void start() { start(*peer); }
    ~Side() {
        if (transport) transport->close();
        if (thread.joinable()) thread.join();
        if (peer) peer->close("test over");
    }
};

struct PeerTest : ::testing::Test {
    Side server, client;
    Recorder raw;

    void SetUp() override {
        auto [a, b] = MemoryTransport::pair(1000);
        server.transport = std::move(a);
        client.transport = std::move(b);
        server.peer = std::make_unique<Peer>(*server.transport, named("server"));
    }
    void connect_client_peer() {
        client.peer = std::make_unique<Peer>(*client.transport, named("client"));
        server.start();
        client.start();
    }
    void connect_raw() {
        server.start();
        client.start(raw);
    }
    void send(const std::string& text) { ASSERT_TRUE(client.transport->send_text(text)); }
};

}  // namespace

TEST_F(PeerTest, RequestIsAnsweredThroughTheMethodTable) {
    server.peer->on_request("echo", [](const json& params, Responder reply) { reply.result(params); });
    connect_client_peer();
    json result = client.peer->call("echo", json{{"x", 1}});
    EXPECT_EQ(result, (json{{"x", 1}}));
}

TEST_F(PeerTest, UnknownMethodIsMethodNotFound) {
    connect_client_peer();
    try {
        client.peer->call("nope", json::object());
        FAIL() << "expected an error";
    } catch (const CallError& e) {
        EXPECT_EQ(e.kind(), CallError::Kind::Rpc);
        EXPECT_EQ(e.code(), kMethodNotFound);
    }
}

TEST_F(PeerTest, HandlerThatNeverAnswersGetsInternalErrorOnce) {
    server.peer->on_request("forget", [](const json&, Responder) {});
    connect_raw();
    send(R"({"jsonrpc":"2.0","id":7,"method":"forget"})");
    json m = raw.next();
    ASSERT_TRUE(m.is_object());
    EXPECT_EQ(m["id"], 7);
    EXPECT_EQ(m["error"]["code"], kInternalError);
    EXPECT_TRUE(raw.next(200ms).is_null()) << "answered more than once";
}

TEST_F(PeerTest, SecondAnswerIsDropped) {
    server.peer->on_request("twice", [](const json&, Responder reply) {
        reply.result(json{{"n", 1}});
        reply.result(json{{"n", 2}});
        reply.error(kInternalError, "late");
    });
    connect_raw();
    send(R"({"jsonrpc":"2.0","id":"a","method":"twice"})");
    json m = raw.next();
    EXPECT_EQ(m["result"]["n"], 1);
    EXPECT_TRUE(raw.next(200ms).is_null());
}

TEST_F(PeerTest, HandlerExceptionBecomesTheAnswer) {
    server.peer->on_request("bad", [](const json&, Responder) { throw RpcError(kInvalidParams, "no good"); });
    connect_raw();
    send(R"({"jsonrpc":"2.0","id":1,"method":"bad"})");
    json m = raw.next();
    EXPECT_EQ(m["error"]["code"], kInvalidParams);
    EXPECT_EQ(m["error"]["message"], "no good");
}

TEST_F(PeerTest, CancelledRequestGetsNoAnswerAndItsTokenFires) {
    std::atomic<bool> saw_cancel{false};
    server.peer->on_request("slow", [&](const json&, Responder reply) {
        std::thread([reply, &saw_cancel] {
            reply.cancellation().wait_for(10s);
            saw_cancel = reply.cancellation().cancelled();
            reply.result(json::object());  // dropped: the client cancelled
        }).detach();
    });
    connect_raw();
    send(R"({"jsonrpc":"2.0","id":3,"method":"slow"})");
    send(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"bored"}})");
    EXPECT_TRUE(eventually([&] { return saw_cancel.load(); }));
    EXPECT_TRUE(server.peer->wait_idle(2s));
    EXPECT_TRUE(raw.next(200ms).is_null());
}

TEST_F(PeerTest, IdInUseIsRefusedAndReusableAfterwards) {
    std::mutex m;
    std::vector<Responder> held;
    server.peer->on_request("hold", [&](const json&, Responder reply) {
        std::lock_guard lock(m);
        held.push_back(reply);
    });
    connect_raw();
    send(R"({"jsonrpc":"2.0","id":5,"method":"hold"})");
    send(R"({"jsonrpc":"2.0","id":5,"method":"hold"})");
    json refused = raw.next();
    EXPECT_EQ(refused["error"]["code"], kInvalidRequest);
    {
        std::lock_guard lock(m);
        ASSERT_EQ(held.size(), 1u);
        held[0].result(json{{"done", true}});
        held.clear();
    }
    EXPECT_EQ(raw.next()["result"]["done"], true);
    send(R"({"jsonrpc":"2.0","id":5,"method":"hold"})");
    EXPECT_TRUE(eventually([&] {
        std::lock_guard lock(m);
        return held.size() == 1;
    }));
    std::lock_guard lock(m);
    held.clear();  // answered -32603 by the last copy
}

TEST_F(PeerTest, ProgressReachesTheCallerAndRestartsItsTimeout) {
    server.peer->on_request("work", [&](const json& params, Responder reply) {
        json token = params["_meta"]["progressToken"];
        std::thread([this, reply, token] {
            for (int i = 1; i <= 4; ++i) {
                std::this_thread::sleep_for(150ms);
                server.peer->notify("notifications/progress", json{{"progressToken", token}, {"progress", i}});
            }
            reply.result(json{{"ok", true}});
        }).detach();
    });
    connect_client_peer();
    std::vector<int> seen;
    CallOptions options;
    options.timeout = 400ms;  // shorter than the whole job, longer than the gaps
    options.on_progress = [&](const json& p) { seen.push_back(p["progress"]); };
    json result = client.peer->call("work", json::object(), options);
    EXPECT_EQ(result["ok"], true);
    EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4}));
}

TEST_F(PeerTest, TimeoutSendsCancelledToTheOtherSide) {
    std::atomic<bool> cancelled{false};
    server.peer->on_request("never", [&](const json&, Responder reply) {
        std::thread([reply, &cancelled] {
            cancelled = reply.cancellation().wait_for(10s);
        }).detach();
    });
    connect_client_peer();
    CallOptions options;
    options.timeout = 100ms;
    try {
        client.peer->call("never", json::object(), options);
        FAIL();
    } catch (const CallError& e) {
        EXPECT_EQ(e.kind(), CallError::Kind::Timeout);
    }
    EXPECT_TRUE(eventually([&] { return cancelled.load(); }));
}

TEST_F(PeerTest, CallerCancellationEndsTheCall) {
    server.peer->on_request("never", [](const json&, Responder reply) {
        std::thread([reply] { reply.cancellation().wait_for(10s); }).detach();
    });
    connect_client_peer();
    CancellationSource source;
    std::thread canceller([&] {
        std::this_thread::sleep_for(50ms);
        source.cancel("user pressed stop");
    });
    CallOptions options;
    options.cancel = source.token();
    try {
        client.peer->call("never", json::object(), options);
        FAIL();
    } catch (const CallError& e) {
        EXPECT_EQ(e.kind(), CallError::Kind::Cancelled);
        EXPECT_NE(std::string(e.what()).find("user pressed stop"), std::string::npos);
    }
    canceller.join();
}

TEST_F(PeerTest, BothSidesAskEachOther) {
    // The server answers `ask` by asking the client first (elicitation's shape).
    server.peer->on_request("ask", [&](const json&, Responder reply) {
        std::thread([this, reply] {
            json answer = server.peer->call("client/question", json{{"q", "name?"}});
            reply.result(json{{"client_said", answer["a"]}});
        }).detach();
    });
    client.peer = std::make_unique<Peer>(*client.transport, named("client"));
    client.peer->on_request("client/question", [](const json& p, Responder reply) {
        reply.result(json{{"a", "Ada, asked " + p["q"].get<std::string>()}});
    });
    server.start();
    client.start();
    json result = client.peer->call("ask", json::object());
    EXPECT_EQ(result["client_said"], "Ada, asked name?");
}

TEST_F(PeerTest, BatchesFollowThePolicy) {
    bool allow = false;
    PeerOptions options = named("server");
    options.batch_policy = [&]() -> std::optional<std::string> {
        if (allow) return std::nullopt;
        return std::string("Invalid Request: no batches in this revision");
    };
    server.peer = std::make_unique<Peer>(*server.transport, options);
    int runs = 0;
    server.peer->on_request("echo", [&](const json& p, Responder reply) {
        ++runs;
        reply.result(p);
    });
    connect_raw();
    const std::string batch =
        R"([{"jsonrpc":"2.0","id":1,"method":"echo","params":{"a":1}},{"jsonrpc":"2.0","method":"n"},)"
        R"({"jsonrpc":"2.0","id":2,"method":"missing"},[1]])";
    send(batch);
    json refused = raw.next();
    EXPECT_EQ(refused["error"]["code"], kInvalidRequest);
    EXPECT_EQ(runs, 0);
    allow = true;
    send(batch);
    json answers = raw.next();
    ASSERT_TRUE(answers.is_array()) << answers.dump();
    EXPECT_EQ(answers.size(), 3u);  // echo, method not found, nested batch; not the notification
    EXPECT_EQ(runs, 1);
}

TEST_F(PeerTest, OversizedRequestIsAnsweredWithItsOwnId) {
    connect_raw();
    std::string big = R"({"jsonrpc":"2.0","id":"long-one","method":"tools/call","params":{"x":")" +
                      std::string(5000, 'a') + "\"}}";
    send(big);
    json m = raw.next();
    EXPECT_EQ(m["id"], "long-one");
    EXPECT_EQ(m["error"]["code"], kInvalidRequest);
}

TEST_F(PeerTest, GateRefusesAllButUngatedMethods) {
    PeerOptions options = named("server");
    options.request_gate = [](const std::string& method) {
        return std::optional<RpcError>(RpcError(kInvalidRequest, "not ready for " + method));
    };
    server.peer = std::make_unique<Peer>(*server.transport, options);
    server.peer->on_request("open", [](const json&, Responder r) { r.result(json::object()); }, /*ungated=*/true);
    server.peer->on_request("closed", [](const json&, Responder r) { r.result(json::object()); });
    connect_client_peer();
    EXPECT_NO_THROW(client.peer->call("open", json::object()));
    EXPECT_THROW(client.peer->call("closed", json::object()), CallError);
}

TEST_F(PeerTest, CloseFailsWaitingCalls) {
    server.peer->on_request("never", [](const json&, Responder reply) {
        std::thread([reply] { reply.cancellation().wait_for(2s); }).detach();
    });
    connect_client_peer();
    std::thread closer([&] {
        std::this_thread::sleep_for(50ms);
        client.peer->close("server went away");
    });
    try {
        client.peer->call("never", json::object());
        FAIL();
    } catch (const CallError& e) {
        EXPECT_EQ(e.kind(), CallError::Kind::Closed);
    }
    closer.join();
    EXPECT_THROW(client.peer->call("never", json::object()), CallError);
}

TEST_F(PeerTest, CancelIncomingCancelsEveryRunningRequest) {
    std::atomic<bool> cancelled{false};
    server.peer->on_request("never", [&](const json&, Responder reply) {
        std::thread([reply, &cancelled] { cancelled = reply.cancellation().wait_for(10s); }).detach();
    });
    connect_raw();
    send(R"({"jsonrpc":"2.0","id":1,"method":"never"})");
    EXPECT_TRUE(eventually([&] { return server.peer->incoming_in_flight() == 1; }));
    server.peer->cancel_incoming("the server is shutting down");
    EXPECT_TRUE(eventually([&] { return cancelled.load(); }));
    EXPECT_TRUE(server.peer->wait_idle(2s));
    EXPECT_TRUE(raw.next(200ms).is_null()) << "a cancelled request is not answered";
}
