// The two-way JSON-RPC Peer over in-memory transports: a server Peer and a client Peer (or a raw
// recording end) talk as they would over stdio. At the end, StdioTransport's bounded writes over
// real pipes.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "python_mcp/jsonrpc/memory_transport.hpp"
#include "python_mcp/jsonrpc/peer.hpp"
#include "python_mcp/jsonrpc/stdio_transport.hpp"
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
    // Declared before the Sides so it is destroyed after them: the client Side's reading thread,
    // joined in its destructor, may still be delivering into it.
    Recorder raw;
    Side server, client;

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

// ---- answers that cannot be parsed -------------------------------------------------------------

namespace {

// `levels` nested arrays as a JSON text (the array is level 1).
std::string nested(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

}  // namespace

TEST(ScanEnvelope, FindsTheIdAnywhereAndTellsAnswersFromRequests) {
    // The TypeScript SDK writes the id last, after a result of any depth.
    std::string deep = nested(100000);
    Envelope e = scan_envelope(R"({"result":{"v":)" + deep + R"(,"s":"}]\"{"},"jsonrpc":"2.0","id":7})");
    EXPECT_EQ(e.id, 7);
    EXPECT_TRUE(e.answer);
    e = scan_envelope(R"({"jsonrpc":"2.0","error":{"code":1,"message":"m"},"id":"e-1"})");
    EXPECT_EQ(e.id, "e-1");
    EXPECT_TRUE(e.answer);
    e = scan_envelope(R"({"jsonrpc":"2.0","id":3,"method":"x","params":{"v":)" + deep + "}}");
    EXPECT_EQ(e.id, 3);
    EXPECT_FALSE(e.answer) << "a request is no answer";
    e = scan_envelope(R"({"result":1,"method":"x","id":3})");
    EXPECT_FALSE(e.answer);
    // Invalid UTF-8 inside a string is skipped like any byte.
    e = scan_envelope("{\"result\":{\"t\":\"\xff\xfe\"},\"id\":9,\"jsonrpc\":\"2.0\"}");
    EXPECT_EQ(e.id, 9);
    EXPECT_TRUE(e.answer);
    EXPECT_EQ(request_id_from_prefix(R"({"result":)" + deep + R"(,"id":11})"), json(11));
    EXPECT_TRUE(scan_envelope("not json").id.is_null());
}

TEST_F(PeerTest, AnUnreadableAnswerFailsItsCallAtOnceAndTheConnectionStaysUsable) {
    PeerOptions options = named("client");
    options.parse_limits.max_depth = 16;
    client.peer = std::make_unique<Peer>(*client.transport, options);
    server.start(raw);
    client.start();
    CallOptions call;
    call.timeout = 60s;  // the failure must not wait for this
    auto deep = std::async(std::launch::async, [&] { return client.peer->call("deep", json::object(), call); });
    json request = raw.next();
    ASSERT_TRUE(request.is_object());
    // Too deep for the client's limit, id last.
    ASSERT_TRUE(server.transport->send_text(R"({"result":)" + nested(40) + R"(,"jsonrpc":"2.0","id":)" +
                                            request["id"].dump() + "}"));
    ASSERT_EQ(deep.wait_for(20s), std::future_status::ready) << "the call waited for its time-out";
    try {
        deep.get();
        FAIL() << "an unreadable answer was taken as a result";
    } catch (const CallError& e) {
        EXPECT_EQ(e.kind(), CallError::Kind::Unreadable);
        EXPECT_NE(std::string(e.what()).find("nested deeper than 16"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(raw.next(200ms).is_null()) << "an unreadable answer is not answered";
    auto next = std::async(std::launch::async, [&] { return client.peer->call("echo", json::object(), call); });
    request = raw.next();
    ASSERT_TRUE(request.is_object());
    ASSERT_TRUE(server.transport->send(make_result(request["id"], json{{"ok", 1}})));
    EXPECT_EQ(next.get()["ok"], 1);
}

TEST_F(PeerTest, AnUnreadableRequestWithTheIdOfOurCallDoesNotFailIt) {
    PeerOptions options = named("client");
    options.parse_limits.max_depth = 16;
    client.peer = std::make_unique<Peer>(*client.transport, options);
    server.start(raw);
    client.start();
    auto pending = std::async(std::launch::async, [&] { return client.peer->call("work", json::object()); });
    json request = raw.next();
    ASSERT_TRUE(request.is_object());
    // The other side's own request, with the same id number: ids are per direction.
    ASSERT_TRUE(server.transport->send_text(R"({"jsonrpc":"2.0","id":)" + request["id"].dump() +
                                            R"(,"method":"x","params":{"v":)" + nested(40) + "}}"));
    json refusal = raw.next();
    EXPECT_EQ(refusal["error"]["code"], kParseError);
    EXPECT_EQ(pending.wait_for(100ms), std::future_status::timeout);
    ASSERT_TRUE(server.transport->send(make_result(request["id"], json{{"done", true}})));
    EXPECT_EQ(pending.get()["done"], true);
}

TEST_F(PeerTest, MalformedTextsAreAnsweredUnlessTheOwnerSkipsThem) {
    connect_raw();
    send("this is no JSON");
    EXPECT_EQ(raw.next()["error"]["code"], kParseError);
    send(R"({"jsonrpc":"1.0","id":4,"method":"x"})");
    json invalid = raw.next();
    EXPECT_EQ(invalid["error"]["code"], kInvalidRequest);
    EXPECT_EQ(invalid["id"], 4);

    PeerOptions options = named("client");
    std::vector<std::string> skipped;
    options.on_malformed = [&](const std::string& problem, std::string_view excerpt) {
        skipped.push_back(problem + " | " + std::string(excerpt));
    };
    Peer quiet(*client.transport, options);
    quiet.on_text("Server started on stdio", kMainStream);
    quiet.on_text(R"({"jsonrpc":"1.0","id":4,"method":"x"})", kMainStream);
    ASSERT_EQ(skipped.size(), 2u);
    EXPECT_NE(skipped[0].find("Parse error"), std::string::npos) << skipped[0];
    EXPECT_NE(skipped[0].find("Server started on stdio"), std::string::npos) << skipped[0];
    EXPECT_NE(skipped[1].find("Invalid Request"), std::string::npos) << skipped[1];
    EXPECT_TRUE(raw.next(200ms).is_null()) << "a skipped line was answered";
}

TEST_F(PeerTest, ErrorObjectsOfOddShapesAreRpcErrors) {
    client.peer = std::make_unique<Peer>(*client.transport, named("client"));
    server.start(raw);
    client.start();
    auto call = std::async(std::launch::async, [&] { return client.peer->call("x", json::object()); });
    json request = raw.next();
    ASSERT_TRUE(request.is_object());
    ASSERT_TRUE(server.transport->send_text(R"({"jsonrpc":"2.0","id":)" + request["id"].dump() +
                                            R"(,"error":{"code":"bad","message":5}})"));
    try {
        call.get();
        FAIL();
    } catch (const CallError& e) {
        EXPECT_EQ(e.kind(), CallError::Kind::Rpc);
        EXPECT_EQ(e.code(), 0);
        EXPECT_STREQ(e.what(), "(no message)");
    }
}

TEST_F(PeerTest, ACallCancelledBeforeItStartsSendsNothing) {
    client.peer = std::make_unique<Peer>(*client.transport, named("client"));
    server.start(raw);
    client.start();
    CancellationSource source;
    source.cancel("too late");
    CallOptions options;
    options.cancel = source.token();
    try {
        client.peer->call("x", json::object(), options);
        FAIL();
    } catch (const CallError& e) {
        EXPECT_EQ(e.kind(), CallError::Kind::Cancelled);
    }
    EXPECT_TRUE(raw.next(200ms).is_null()) << "a cancelled call was sent";
}

namespace {

// A transport whose writes take until the caller's deadline (a peer that reads very slowly).
class SlowWriter final : public Transport {
public:
    void run(MessageHandler&) override {}
    bool send(const pymcp::json&, StreamId) override { return true; }
    SendStatus send_bounded(const pymcp::json&, StreamId, std::chrono::steady_clock::time_point deadline,
                            const CancellationToken&) override {
        if (!sent_request.exchange(true)) {
            std::this_thread::sleep_until(deadline);
            written_at = std::chrono::steady_clock::now();
        }
        return SendStatus::Sent;
    }
    void close() override {}
    std::atomic<bool> sent_request{false};
    std::chrono::steady_clock::time_point written_at;
};

}  // namespace

TEST(PeerDeadline, OneDeadlineCoversWritingTheRequestAndWaitingForTheAnswer) {
    SlowWriter transport;
    Peer peer(transport, named("client"));
    CallOptions options;
    options.timeout = 1500ms;
    try {
        peer.call("x", json::object(), options);
        FAIL();
    } catch (const CallError& e) {
        EXPECT_EQ(e.kind(), CallError::Kind::Timeout);
    }
    // The time-out was spent writing: no second 1.5 s of waiting for an answer.
    EXPECT_LT(std::chrono::steady_clock::now() - transport.written_at, 1000ms);
}

// ---- StdioTransport's bounded writes over real pipes --------------------------------------------

namespace {

struct Pipe {
    int fds[2] = {-1, -1};
    Pipe() { EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0); }
    ~Pipe() {
        close_read();
        if (fds[1] >= 0) ::close(fds[1]);
    }
    int read_end() const { return fds[0]; }
    int write_end() const { return fds[1]; }
    void close_read() {
        if (fds[0] >= 0) ::close(fds[0]);
        fds[0] = -1;
    }
    long unread() const {
        int n = -1;
        ::ioctl(fds[0], FIONREAD, &n);
        return n;
    }
};

json big_message(size_t bytes) { return make_notification("big", json{{"data", std::string(bytes, 'x')}}); }

struct Stalls {
    std::mutex m;
    std::vector<std::pair<SendStatus, bool>> seen;
    std::function<void(SendStatus, bool)> callback() {
        return [this](SendStatus why, bool partial) {
            std::lock_guard lock(m);
            seen.emplace_back(why, partial);
        };
    }
    std::vector<std::pair<SendStatus, bool>> get() {
        std::lock_guard lock(m);
        return seen;
    }
};

}  // namespace

TEST(StdioTransportWrites, QueuedAndStuckSendsEndWithTheirCancellation) {
    Pipe out;  // nobody reads it
    Stalls stalls;
    StdioOptions options;
    options.on_stall = stalls.callback();
    StdioTransport transport(-1, out.write_end(), 1 << 20, options);
    auto far = std::chrono::steady_clock::now() + 60s;
    CancellationSource big_cancel, small_cancel;
    auto big = std::async(std::launch::async, [&] {
        return transport.send_bounded(big_message(1 << 20), kMainStream, far, big_cancel.token());
    });
    ASSERT_TRUE(eventually([&] { return out.unread() > 0; }, 20s));
    auto small = std::async(std::launch::async, [&] {
        return transport.send_bounded(big_message(10), kMainStream, far, small_cancel.token());
    });
    EXPECT_EQ(small.wait_for(100ms), std::future_status::timeout);  // waiting for its turn
    small_cancel.cancel();
    ASSERT_EQ(small.wait_for(20s), std::future_status::ready);
    EXPECT_EQ(small.get(), SendStatus::Cancelled);
    EXPECT_FALSE(transport.broken()) << "nothing of the queued message was written";
    EXPECT_TRUE(stalls.get().empty()) << "a send waiting for its turn did not stall in the pipe";

    big_cancel.cancel();
    ASSERT_EQ(big.wait_for(20s), std::future_status::ready);
    EXPECT_EQ(big.get(), SendStatus::Cancelled);
    EXPECT_TRUE(transport.broken()) << "half a line was written";
    auto seen = stalls.get();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].first, SendStatus::Cancelled);
    EXPECT_TRUE(seen[0].second);
    EXPECT_FALSE(transport.send(big_message(1)));
}

TEST(StdioTransportWrites, CloseEndsASendStuckOnAFullPipe) {
    Pipe out;
    StdioTransport transport(-1, out.write_end(), 1 << 20);
    CancellationToken never;
    auto stuck = std::async(std::launch::async, [&] {
        return transport.send_bounded(big_message(1 << 20), kMainStream, std::chrono::steady_clock::now() + 120s, never);
    });
    ASSERT_TRUE(eventually([&] { return out.unread() > 0; }, 20s));
    auto closing = std::async(std::launch::async, [&] { transport.close(); });
    ASSERT_EQ(closing.wait_for(20s), std::future_status::ready) << "close() waited for the stuck send's deadline";
    ASSERT_EQ(stuck.wait_for(20s), std::future_status::ready);
    EXPECT_EQ(stuck.get(), SendStatus::Closed);
}

TEST(StdioTransportWrites, SendTimeoutBoundsPlainSendsToAPeerThatStoppedReading) {
    Pipe out;
    ASSERT_EQ(::fcntl(out.write_end(), F_SETFL, O_NONBLOCK), 0);
    Stalls stalls;
    StdioOptions options;
    options.send_timeout = 200ms;
    options.on_stall = stalls.callback();
    StdioTransport transport(-1, out.write_end(), 1 << 20, options);
    // Fill the pipe with whole messages until one no longer fits.
    bool sent = true;
    for (int i = 0; i < 1000 && sent; ++i) sent = transport.send(big_message(1000));
    EXPECT_FALSE(sent) << "the pipe never filled";
    auto seen = stalls.get();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].first, SendStatus::TimedOut);
}

TEST(StdioTransportWrites, NonBlockingPipeCarriesALargeMessageWhole) {
    Pipe out;
    ASSERT_EQ(::fcntl(out.write_end(), F_SETFL, O_NONBLOCK), 0);
    StdioTransport writer(-1, out.write_end(), 8 << 20);
    StdioTransport reader(out.read_end(), -1, 8 << 20);
    Recorder received;
    std::thread reading([&] { reader.run(received); });
    CancellationToken never;
    EXPECT_EQ(writer.send_bounded(big_message(4 << 20), kMainStream, std::chrono::steady_clock::now() + 60s, never),
              SendStatus::Sent);
    json m = received.next(20s);
    ASSERT_TRUE(m.is_object());
    EXPECT_EQ(m["params"]["data"].get_ref<const std::string&>().size(), 4u << 20);
    ::close(out.fds[1]);
    out.fds[1] = -1;  // EOF ends the reader
    reading.join();
}

TEST(StdioTransportWrites, APeerThatDiedIsClosedNotFatal) {
    Pipe out;
    out.close_read();
    StdioOptions options;
    options.block_sigpipe = true;  // this test binary keeps SIGPIPE's default (terminate)
    StdioTransport transport(-1, out.write_end(), 1 << 20, options);
    CancellationToken never;
    EXPECT_EQ(transport.send_bounded(big_message(10), kMainStream, std::chrono::steady_clock::now() + 5s, never),
              SendStatus::Closed);
    EXPECT_FALSE(transport.send(big_message(10)));
}
