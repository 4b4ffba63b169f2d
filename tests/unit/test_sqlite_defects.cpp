// Regression tests for the sqlite tool's defects of issue 11: user-written transactions under
// concurrency, and per-statement params for a one-element statement list.
#include "python_mcp/tools/sqlite_tool.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pymcp::tools {
namespace {

namespace fs = std::filesystem;
using mcp::json;
using ::testing::HasSubstr;

fs::path make_temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "sqlite_defects_test_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    return pattern;
}

class SqliteDefectsTest : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = make_temp_dir();
        tool_ = std::make_unique<SqliteTool>(SqliteToolOptions{root_ / "data", {}, 5000});
    }
    void TearDown() override {
        tool_.reset();
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    json call(const json& arguments) {
        mcp::CallContext context;
        return tool_->call(arguments, context);
    }
    std::string error_of(const json& arguments) {
        try {
            call(arguments);
        } catch (const mcp::ToolError& e) {
            return e.what();
        }
        ADD_FAILURE() << "no ToolError for " << arguments.dump();
        return {};
    }
    static json rows_of(const json& result) { return json::parse(result["content"][0]["text"].get<std::string>()); }

    fs::path root_;
    std::unique_ptr<SqliteTool> tool_;
};

// Reads for a while inside the transaction, so that others write meanwhile: the case where a
// deferred transaction's upgrade to a writer failed at once.
constexpr const char* kSlowRead =
    "SELECT v, (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
    "SELECT count(*) FROM c) AS n FROM counter";

// The ways a user writes a read-then-write transaction of their own.
json user_transaction(int form) {
    const std::string read = kSlowRead;
    switch (form % 4) {
        case 0: return "BEGIN; " + read + "; UPDATE counter SET v = v + 1; COMMIT";
        case 1: return json::array({"BEGIN", read, "UPDATE counter SET v = v + 1", "COMMIT"});
        case 2: return "begin deferred transaction; " + read + "; UPDATE counter SET v = v + 1; END";
        default: return "/* mine */ BEGIN TRANSACTION t1; " + read + "; UPDATE counter SET v = v + 1; COMMIT";
    }
}

// Issue 11, defect 1: a deferred transaction that reads and then writes cannot wait for the
// write lock in WAL mode (SQLite answers SQLITE_BUSY at once), so 8 writers failed with
// "database is locked" within milliseconds although the readme promises a 5 s wait.
TEST_F(SqliteDefectsTest, UserTransactionsFromEightThreadsAllCommit) {
    call({{"sql", "CREATE TABLE counter (v INTEGER); INSERT INTO counter VALUES (0)"}, {"database", "tx.db"}});
    constexpr int kThreads = 8, kPerThread = 60;
    std::atomic<int> failures{0};
    std::mutex first_error_mutex;
    std::string first_error;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kPerThread; ++i) {
                try {
                    mcp::CallContext context;
                    json r = tool_->call({{"sql", user_transaction(t + i)}, {"database", "tx.db"}}, context);
                    if (r["structuredContent"]["rows_affected"] != 1) throw std::runtime_error("rows_affected " + r.dump());
                } catch (const std::exception& e) {
                    std::lock_guard lock(first_error_mutex);
                    if (failures++ == 0) first_error = e.what();
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0) << "first error: " << first_error;
    EXPECT_EQ(rows_of(call({{"sql", "SELECT v FROM counter"}, {"database", "tx.db"}}))[0]["v"], kThreads * kPerThread);
}

TEST_F(SqliteDefectsTest, UserTransactionsKeepTheirMeaning) {
    call({{"sql", "CREATE TABLE t (x)"}, {"database", "keep.db"}});
    // Explicit kinds run as written; a read-only call's BEGIN stays a plain read transaction.
    call({{"sql", "BEGIN IMMEDIATE; INSERT INTO t VALUES (1); COMMIT"}, {"database", "keep.db"}});
    call({{"sql", "BEGIN EXCLUSIVE; INSERT INTO t VALUES (2); COMMIT"}, {"database", "keep.db"}});
    json ro = call({{"sql", "BEGIN; SELECT count(*) AS n FROM t; COMMIT"}, {"database", "keep.db"}, {"read_only", true}});
    EXPECT_EQ(rows_of(ro)[0]["n"], 2);
    // ROLLBACK undoes, and a failure inside the user's transaction rolls it back whole.
    call({{"sql", "BEGIN; INSERT INTO t VALUES (3); ROLLBACK"}, {"database", "keep.db"}});
    EXPECT_THAT(error_of({{"sql", "BEGIN; INSERT INTO t VALUES (4); SELEC 1; COMMIT"}, {"database", "keep.db"}}),
                HasSubstr("syntax error"));
    // Two transactions in one call, each its own.
    call({{"sql", "BEGIN; INSERT INTO t VALUES (5); COMMIT; BEGIN; INSERT INTO t VALUES (6); COMMIT"},
          {"database", "keep.db"}});
    json all = call({{"sql", "SELECT x FROM t ORDER BY x"}, {"database", "keep.db"}});
    EXPECT_EQ(all["structuredContent"]["rows"], json::parse("[[1],[2],[5],[6]]"));
    // A transaction cannot span calls: one left open is rolled back with an error.
    EXPECT_THAT(error_of({{"sql", "BEGIN; INSERT INTO t VALUES (7)"}, {"database", "keep.db"}}),
                HasSubstr("transaction open"));
    EXPECT_THAT(error_of({{"sql", "BEGIN"}, {"database", "keep.db"}}), HasSubstr("transaction open"));
    EXPECT_EQ(rows_of(call({{"sql", "SELECT count(*) AS n FROM t"}, {"database", "keep.db"}}))[0]["n"], 4);
}

// Issue 11, defect 2: with one SQL string in a list, a list of lists was taken as flat values.
TEST_F(SqliteDefectsTest, ParamsListOfListsForAOneStatementList) {
    // Written as parsed JSON: a braced {{"x", 1}} would be an object.
    json r = call(json::parse(R"({"sql": ["SELECT ? AS a, ? AS b"], "params": [["x", 1]]})"));
    EXPECT_EQ(rows_of(r), json::parse(R"([{"a":"x","b":1}])"));
    // Several statements, one list each (unchanged), with an empty list or null for none.
    call({{"sql", "CREATE TABLE p (a, b)"}});
    call({{"sql", {"INSERT INTO p VALUES (?, ?)", "DELETE FROM p WHERE a = 'none'", "INSERT INTO p VALUES (?, 0)"}},
          {"params", json::array({{"k", 1}, nullptr, json::array({"m"})})}});
    EXPECT_EQ(call({{"sql", "SELECT a, b FROM p ORDER BY a"}})["structuredContent"]["rows"],
              json::parse(R"([["k",1],["m",0]])"));
}

TEST_F(SqliteDefectsTest, ParamsListOfListsWithTheWrongShapeIsRefused) {
    std::string e = error_of(json::parse(R"({"sql": ["SELECT ?", "SELECT ?"], "params": [[1]]})"));
    EXPECT_THAT(e, HasSubstr("one list per 'sql' item"));
    EXPECT_THAT(e, HasSubstr("1 list(s) for 2"));
    e = error_of(json::parse(R"({"sql": ["SELECT ?"], "params": [[1], [2]]})"));
    EXPECT_THAT(e, HasSubstr("2 list(s) for 1"));
    // A list's own count is still checked.
    EXPECT_THAT(error_of(json::parse(R"({"sql": ["SELECT ?, ?"], "params": [[1]]})")),
                HasSubstr("2 positional parameter(s)"));
    EXPECT_THAT(error_of(json::parse(R"({"sql": ["SELECT ?"], "params": [[1, 2]]})")),
                HasSubstr("params[0] has 2 value(s)"));
}

TEST_F(SqliteDefectsTest, FlatParamsKeepTheirMeaning) {
    // A single SQL string takes flat values: a list among them binds as its JSON text.
    json r = call(json::parse(R"({"sql": "SELECT json_array_length(?) AS n", "params": [[1, 2, 3]]})"));
    EXPECT_EQ(rows_of(r)[0]["n"], 3);
    // In a statement list, values that are not all lists are flat too.
    r = call(json::parse(R"({"sql": ["SELECT ? AS a", "SELECT json_array_length(?) AS n"], "params": [5, [1, 2]]})"));
    EXPECT_EQ(rows_of(r)[0]["n"], 2);
    r = call(json::parse(R"({"sql": ["SELECT ? AS a"], "params": [null]})"));
    EXPECT_TRUE(rows_of(r)[0]["a"].is_null());
}

}  // namespace
}  // namespace pymcp::tools
