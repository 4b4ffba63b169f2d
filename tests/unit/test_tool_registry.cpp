// The one table of tools: order, replacement, removal, listeners, error conversion, the miss
// handler, and the one handler shape (ToolCall) answered at once, later, or from blocking work.

#include "python_mcp/mcp/tool_registry.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace pymcp::mcp {
namespace {

using ::testing::HasSubstr;

ToolDefinition def(const std::string& name, bool exposed = true) {
    ToolDefinition d;
    d.name = name;
    d.description = "desc of " + name;
    d.exposed = exposed;
    return d;
}

ToolHandler returns(const std::string& text) {
    return blocking_handler([text](const json&, CallContext&) { return tool_result(text); });
}

// Most tools here compute their result on the calling thread.
void add(ToolRegistry& r, ToolDefinition d, BlockingToolHandler h) { r.add(std::move(d), blocking_handler(std::move(h))); }

std::vector<std::string> names(const ToolRegistry& r) {
    std::vector<std::string> out;
    for (const auto& d : r.list()) out.push_back(d.name);
    return out;
}

std::string text_of(const json& result) { return result["content"][0]["text"].get<std::string>(); }

json call(const ToolRegistry& r, const std::string& name, const json& args = json::object()) {
    CallContext ctx;
    return r.call(name, args, ctx);
}

TEST(ToolRegistry, ListsInInsertionOrder) {
    ToolRegistry r;
    for (const char* n : {"zeta", "alpha", "mid", "beta"}) r.add(def(n), returns(n));
    EXPECT_EQ(names(r), (std::vector<std::string>{"zeta", "alpha", "mid", "beta"}));
    EXPECT_EQ(r.size(), 4u);
    EXPECT_TRUE(r.contains("mid"));
    EXPECT_FALSE(r.contains("nope"));
}

TEST(ToolRegistry, ReplaceKeepsThePlaceAndChangesTheHandler) {
    ToolRegistry r;
    for (const char* n : {"a", "b", "c"}) r.add(def(n), returns(n));
    ToolDefinition nb = def("b");
    nb.description = "new b";
    r.add(nb, returns("b2"));
    EXPECT_EQ(names(r), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(r.size(), 3u);
    EXPECT_EQ(r.find("b")->description, "new b");
    EXPECT_EQ(text_of(call(r, "b")), "b2");
    // Removed and added again: goes to the end.
    EXPECT_TRUE(r.remove("a"));
    EXPECT_FALSE(r.remove("a"));
    r.add(def("a"), returns("a"));
    EXPECT_EQ(names(r), (std::vector<std::string>{"b", "c", "a"}));
}

TEST(ToolRegistry, RemovePrefix) {
    ToolRegistry r;
    for (const char* n : {"git__status", "git__log", "gitx__other", "python", "git_", "agit__x"}) r.add(def(n), returns(n));
    EXPECT_EQ(r.remove_prefix("git__"), 2u);
    EXPECT_EQ(names(r), (std::vector<std::string>{"gitx__other", "python", "git_", "agit__x"}));
    EXPECT_EQ(r.remove_prefix("git__"), 0u);
    EXPECT_EQ(r.remove_prefix("nothing"), 0u);
    EXPECT_EQ(r.size(), 4u);
}

TEST(ToolRegistry, SetDescriptionChangesOnlyTheDescription) {
    ToolRegistry r;
    ToolDefinition d = def("t");
    d.title = "T";
    d.input_schema = json{{"type", "object"}, {"properties", {{"x", {{"type", "integer"}}}}}};
    d.annotations = json{{"readOnlyHint", true}};
    r.add(d, returns("result"));
    r.add(def("u"), returns("u"));
    EXPECT_TRUE(r.set_description("t", "brand new"));
    auto found = r.find("t");
    ASSERT_TRUE(found);
    EXPECT_EQ(found->description, "brand new");
    EXPECT_EQ(found->title, "T");
    EXPECT_EQ(found->input_schema, d.input_schema);
    EXPECT_EQ(found->annotations, d.annotations);
    EXPECT_EQ(names(r), (std::vector<std::string>{"t", "u"}));
    EXPECT_EQ(text_of(call(r, "t")), "result");
    EXPECT_FALSE(r.set_description("missing", "x"));
    EXPECT_FALSE(r.contains("missing"));
}

TEST(ToolRegistry, ExposedAndFind) {
    ToolRegistry r;
    r.add(def("open"), returns("o"));
    r.add(def("hidden", false), returns("h"));
    EXPECT_TRUE(r.is_exposed("open"));
    EXPECT_FALSE(r.is_exposed("hidden"));
    EXPECT_FALSE(r.is_exposed("missing"));
    EXPECT_TRUE(r.contains("hidden"));
    EXPECT_FALSE(r.find("missing"));
    // Hidden tools are still callable (from Python code) and listed by list().
    EXPECT_EQ(text_of(call(r, "hidden")), "h");
    EXPECT_EQ(names(r), (std::vector<std::string>{"open", "hidden"}));
}

TEST(ToolRegistry, DefinitionToJson) {
    ToolDefinition d;
    d.name = "n";
    json j = d.to_json();
    EXPECT_EQ(j["name"], "n");
    EXPECT_EQ(j["inputSchema"], json({{"type", "object"}}));
    EXPECT_FALSE(j.contains("title"));
    EXPECT_FALSE(j.contains("description"));
    EXPECT_FALSE(j.contains("outputSchema"));
    EXPECT_FALSE(j.contains("annotations"));
    EXPECT_FALSE(j.contains("_meta"));
    d.input_schema = nullptr;
    EXPECT_EQ(d.to_json()["inputSchema"], json({{"type", "object"}}));
    d.title = "Title";
    d.description = "D";
    d.output_schema = json{{"type", "object"}};
    d.annotations = json{{"readOnlyHint", true}};
    d.meta = json{{"server", "s"}};
    j = d.to_json();
    EXPECT_EQ(j["title"], "Title");
    EXPECT_EQ(j["description"], "D");
    EXPECT_EQ(j["outputSchema"]["type"], "object");
    EXPECT_TRUE(j["annotations"]["readOnlyHint"].get<bool>());
    EXPECT_EQ(j["_meta"]["server"], "s");
    EXPECT_FALSE(j.contains("exposed"));
}

TEST(ToolRegistry, ResultHelpers) {
    json r = tool_result("hello", json{{"a", 1}});
    EXPECT_EQ(r["content"], json::parse(R"([{"type":"text","text":"hello"}])"));
    EXPECT_EQ(r["structuredContent"]["a"], 1);
    EXPECT_FALSE(r["isError"].get<bool>());
    json e = error_result("bad");
    EXPECT_TRUE(e["isError"].get<bool>());
    EXPECT_EQ(text_of(e), "bad");
    EXPECT_FALSE(e.contains("structuredContent"));
}

TEST(ToolRegistry, ListenersHearEveryChange) {
    ToolRegistry r;
    std::atomic<int> heard{0};
    size_t id = r.subscribe([&] { ++heard; });
    r.add(def("a"), returns("a"));
    EXPECT_EQ(heard.load(), 1);
    r.add(def("a"), returns("a2"));  // replace
    EXPECT_EQ(heard.load(), 2);
    r.set_description("a", "changed");
    EXPECT_EQ(heard.load(), 3);
    r.add(def("b__1"), returns(""));
    r.add(def("b__2"), returns(""));
    EXPECT_EQ(heard.load(), 5);
    r.remove_prefix("b__");
    EXPECT_EQ(heard.load(), 6);
    r.remove("a");
    EXPECT_EQ(heard.load(), 7);
    // No change, no notification.
    r.remove("a");
    r.remove_prefix("zzz");
    r.set_description("missing", "x");
    EXPECT_EQ(heard.load(), 7);
    r.unsubscribe(id);
    r.add(def("c"), returns("c"));
    EXPECT_EQ(heard.load(), 7);
}

TEST(ToolRegistry, ListenersMayUseTheRegistry) {
    ToolRegistry r;
    std::vector<size_t> sizes;
    r.subscribe([&] {
        sizes.push_back(r.list().size());
        // The python tool keeps its description current from a listener like this one.
        if (r.contains("python")) r.set_description("python", "knows " + std::to_string(r.size()) + " tools");
    });
    r.add(def("python"), returns("p"));
    r.add(def("other"), returns("o"));
    EXPECT_FALSE(sizes.empty());
    EXPECT_EQ(sizes.back(), 2u);
    EXPECT_EQ(r.find("python")->description, "knows 2 tools");
}

TEST(ToolRegistry, CallPassesArgumentsAndContext) {
    ToolRegistry r;
    json seen;
    add(r, def("t"), [&](const json& args, CallContext& ctx) {
        seen = args;
        EXPECT_EQ(ctx.depth(), 0);
        return tool_result("ok", args);
    });
    json res = call(r, "t", json{{"x", 1}});
    EXPECT_EQ(seen, json({{"x", 1}}));
    EXPECT_EQ(res["structuredContent"]["x"], 1);
    // null arguments are an empty object.
    CallContext ctx;
    r.call("t", nullptr, ctx);
    EXPECT_EQ(seen, json::object());
}

TEST(ToolRegistry, CallConvertsToolErrorsToIsErrorResults) {
    ToolRegistry r;
    add(r, def("plain"), [](const json&, CallContext&) -> json { throw ToolError("plain failure"); });
    json prepared = tool_result("prepared text", json{{"why", "because"}}, true);
    add(r, def("prepared"), [&](const json&, CallContext&) -> json { throw ToolError("ignored", prepared); });
    add(r, def("other"), [](const json&, CallContext&) -> json { throw std::runtime_error("bad state"); });
    add(r, def("logic"), [](const json&, CallContext&) -> json { throw std::out_of_range("index 5"); });

    json res = call(r, "plain");
    EXPECT_TRUE(res["isError"].get<bool>());
    EXPECT_EQ(text_of(res), "plain failure");

    res = call(r, "prepared");
    EXPECT_EQ(res, prepared);

    res = call(r, "other");
    EXPECT_TRUE(res["isError"].get<bool>());
    EXPECT_THAT(text_of(res), HasSubstr("bad state"));
    EXPECT_THAT(text_of(res), HasSubstr("other"));  // names the tool

    res = call(r, "logic");
    EXPECT_TRUE(res["isError"].get<bool>());
    EXPECT_THAT(text_of(res), HasSubstr("index 5"));
}

TEST(ToolRegistry, NestedUnknownToolIsTheOuterToolsFailure) {
    ToolRegistry r;
    add(r, def("outer"), [&r](const json&, CallContext& ctx) { return r.call("missing_inner", json::object(), ctx); });
    json res = call(r, "outer");
    EXPECT_TRUE(res["isError"].get<bool>());
    EXPECT_THAT(text_of(res), HasSubstr("missing_inner"));
}

TEST(ToolRegistry, UnknownToolAndInvalidArguments) {
    ToolRegistry r;
    r.add(def("t"), returns("t"));
    try {
        call(r, "nope");
        FAIL() << "expected UnknownToolError";
    } catch (const UnknownToolError& e) {
        EXPECT_THAT(std::string(e.what()), HasSubstr("nope"));
    }
    for (const json& bad : {json("s"), json(1), json::array()}) {
        CallContext ctx;
        EXPECT_THROW(r.call("t", bad, ctx), InvalidParamsError) << bad.dump();
    }
}

TEST(ToolRegistry, HandlersMayCallBackIntoTheRegistry) {
    ToolRegistry r;
    add(r, def("inner"), [](const json& args, CallContext&) { return tool_result("inner", args); });
    add(r, def("outer"), [&r](const json&, CallContext& ctx) {
        CallContext child = ctx.nested(ctx.cancellation(), "s");
        json res = r.call("inner", json{{"v", 2}}, child);
        // Changing the table from inside a call does not deadlock either.
        r.add(def("added_during_call"), returns("x"));
        return res;
    });
    json res = call(r, "outer");
    EXPECT_EQ(res["structuredContent"]["v"], 2);
    EXPECT_TRUE(r.contains("added_during_call"));
}

TEST(ToolRegistry, ACallKeepsItsHandlerWhenTheToolIsReplacedMeanwhile) {
    ToolRegistry r;
    CancellationSource entered, release;
    add(r, def("t"), [&](const json&, CallContext&) {
        entered.cancel();
        release.token().wait_for(std::chrono::seconds(5));
        return tool_result("old");
    });
    json res;
    std::thread t([&] { res = call(r, "t"); });
    ASSERT_TRUE(entered.token().wait_for(std::chrono::seconds(5)));
    r.add(def("t"), returns("new"));
    r.remove("t");
    release.cancel();
    t.join();
    EXPECT_EQ(text_of(res), "old");
}

TEST(ToolRegistry, MissHandlerCanAddTheToolAndTheCallIsRetried) {
    ToolRegistry r;
    std::vector<std::string> asked;
    r.set_miss_handler([&](const std::string& name, const CancellationToken& cancel) {
        asked.push_back(name);
        EXPECT_FALSE(cancel.cancelled());
        if (name == "late__tool") {
            r.add(def("late__tool"), returns("arrived"));
            return true;
        }
        return false;
    });
    EXPECT_EQ(text_of(call(r, "late__tool")), "arrived");
    EXPECT_EQ(asked, (std::vector<std::string>{"late__tool"}));
    // Now present: the handler is not asked again.
    EXPECT_EQ(text_of(call(r, "late__tool")), "arrived");
    EXPECT_EQ(asked.size(), 1u);
    // Declined: unknown.
    EXPECT_THROW(call(r, "never"), UnknownToolError);
    EXPECT_EQ(asked.back(), "never");
    // Said "look again" but did not add it: still unknown, not a crash.
    r.set_miss_handler([](const std::string&, const CancellationToken&) { return true; });
    EXPECT_THROW(call(r, "ghost"), UnknownToolError);
}

TEST(ToolRegistry, MissHandlerGetsTheCallersToken) {
    ToolRegistry r;
    bool saw_cancelled = false;
    r.set_miss_handler([&](const std::string&, const CancellationToken& cancel) {
        saw_cancelled = cancel.cancelled();
        return false;
    });
    CancellationSource source;
    source.cancel();
    CallContext ctx(source.token(), 1, nullptr, nullptr);
    EXPECT_THROW(r.call("x", json::object(), ctx), UnknownToolError);
    EXPECT_TRUE(saw_cancelled);
}

TEST(ToolRegistry, ResolveAsksTheMissHandler) {
    ToolRegistry r;
    int asked = 0;
    r.set_miss_handler([&](const std::string& name, const CancellationToken&) {
        ++asked;
        if (name == "srv__t") r.add(def("srv__t"), returns("t"));
        return name == "srv__t";
    });
    EXPECT_FALSE(r.find("srv__t"));
    EXPECT_EQ(asked, 0);  // find() does not wait for anything
    auto found = r.resolve("srv__t", CancellationToken());
    ASSERT_TRUE(found);
    EXPECT_EQ(found->name, "srv__t");
    EXPECT_FALSE(r.resolve("other", CancellationToken()));
    EXPECT_EQ(asked, 2);
}

TEST(ToolRegistry, DispatchHandsTheCallToItsHandler) {
    ToolRegistry r;
    std::vector<ToolCall> kept;
    r.add(def("later"), [&](ToolCall call) {
        if (call.arguments().value("throw", false)) throw ToolError("refused: " + call.arguments().value("why", std::string()));
        if (call.arguments().value("crash", false)) throw std::runtime_error("crashed");
        if (call.arguments().value("invalid", false)) throw InvalidParamsError("bad field");
        kept.push_back(call);  // answered later, from anywhere
    });
    std::vector<json> delivered;
    std::vector<std::pair<int, std::string>> rejected;
    int offloaded = 0;
    auto dispatch = [&](const std::string& name, json args) {
        ToolReply reply{[&](json result) { delivered.push_back(std::move(result)); },
                        [&](int code, const std::string& m) { rejected.emplace_back(code, m); }};
        r.dispatch(ToolCall(name, std::move(args), CallContext{}, reply, [&](std::function<void()> work) {
            ++offloaded;
            work();
            return true;
        }));
    };
    dispatch("later", json{{"v", "1"}});
    EXPECT_TRUE(delivered.empty());
    ASSERT_EQ(kept.size(), 1u);
    kept[0].done(tool_result("later 1"));
    kept[0].done(tool_result("dropped"));  // answered once
    ASSERT_EQ(delivered.size(), 1u);
    EXPECT_EQ(text_of(delivered[0]), "later 1");
    EXPECT_EQ(offloaded, 0);

    dispatch("later", json{{"throw", true}, {"why", "no token"}});
    ASSERT_EQ(delivered.size(), 2u);
    EXPECT_TRUE(delivered[1]["isError"].get<bool>());
    EXPECT_EQ(text_of(delivered[1]), "refused: no token");

    dispatch("later", json{{"crash", true}});
    ASSERT_EQ(delivered.size(), 3u);
    EXPECT_THAT(text_of(delivered[2]), HasSubstr("crashed"));

    dispatch("later", json{{"invalid", true}});
    dispatch("later", json("not an object"));
    dispatch("missing", json::object());
    ASSERT_EQ(rejected.size(), 3u);
    EXPECT_EQ(rejected[0].first, -32602);
    EXPECT_THAT(rejected[0].second, HasSubstr("bad field"));
    EXPECT_THAT(rejected[1].second, HasSubstr("object"));
    EXPECT_THAT(rejected[2].second, HasSubstr("missing"));

    // Blocking work goes to the runner; the handler's result is the answer.
    r.add(def("blocking"), returns("from a thread"));
    dispatch("blocking", json::object());
    EXPECT_EQ(offloaded, 1);
    EXPECT_EQ(text_of(delivered.back()), "from a thread");

    // A call nobody answers is answered with an error when its last copy goes.
    kept.clear();
    dispatch("later", json::object());
    size_t before = delivered.size();
    kept.clear();
    ASSERT_EQ(delivered.size(), before + 1);
    EXPECT_TRUE(delivered.back()["isError"].get<bool>());
}

TEST(ToolRegistry, CallWaitsForAToolThatAnswersFromAnotherThread) {
    ToolRegistry r;
    r.add(def("threaded"), [](ToolCall call) {
        std::thread([call] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            call.done(tool_result("from elsewhere"));
        }).detach();
    });
    CallContext ctx;
    EXPECT_EQ(text_of(r.call("threaded", json::object(), ctx)), "from elsewhere");
}

TEST(ToolRegistry, ConcurrentCallsAndChanges) {
    ToolRegistry r;
    r.add(def("stable"), returns("stable"));
    std::atomic<bool> stop{false};
    std::atomic<int> calls{0}, failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            while (!stop) {
                try {
                    if (text_of(call(r, "stable")) != "stable") ++failures;
                    ++calls;
                    r.list();
                } catch (...) {
                    ++failures;
                }
            }
        });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int i = 0; i < 2000 || (calls < 500 && std::chrono::steady_clock::now() < deadline); ++i) {
        r.add(def("churn" + std::to_string(i % 10)), returns("c"));
        if (i % 3 == 0) r.remove_prefix("churn");
        r.set_description("stable", "round " + std::to_string(i));
    }
    stop = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(calls.load(), 0);
    EXPECT_EQ(names(r).front(), "stable");
}

}  // namespace
}  // namespace pymcp::mcp
