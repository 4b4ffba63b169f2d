// Issue 11 in the python tool, without Python: unknown fields refused (on the blocking and the
// non-blocking path) with the operation's fields named, nothing run; run_script's argv; notes;
// error text bounded.

#include "python_mcp/tools/python_tool.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/engine/engine.hpp"
#include "python_mcp/tools/script_store.hpp"

namespace pymcp::tools {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using mcp::json;
using engine::ExecOutcome;
using engine::ExecRequest;

class RecordingEngine final : public engine::Engine {
public:
    bool can_submit() const override { return async; }
    void submit(const ExecRequest& request, std::shared_ptr<engine::ExecutionHost>, Completion done) override {
        requests.push_back(request);
        done(next);
    }
    std::optional<size_t> clear_session(const std::string&) override { return 0; }
    std::vector<engine::SessionInfo> list_sessions() override { return sessions; }

    std::vector<ExecRequest> requests;
    std::vector<engine::SessionInfo> sessions;
    ExecOutcome next;
    bool async = false;
};

class PythonToolFieldsTest : public ::testing::TestWithParam<bool> {  // param: the non-blocking path
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "python_tool_fields_XXXXXX").string();
        ASSERT_TRUE(::mkdtemp(pattern.data()));
        root_ = pattern;
        scripts_ = std::make_unique<ScriptStore>(root_);
        PythonToolOptions options;
        options.default_max_output = 1000;
        options.readme = "readme";
        tool_ = std::make_unique<PythonTool>(engine_, *scripts_, options);
        tool_->register_in(registry_);
        engine_.async = GetParam();
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    json call(const json& arguments) {
        mcp::CallContext context;
        return registry_.call("python", arguments, context);
    }
    static std::string text(const json& r) { return r["content"][0]["text"].get<std::string>(); }

    fs::path root_;
    RecordingEngine engine_;
    mcp::ToolRegistry registry_;
    std::unique_ptr<ScriptStore> scripts_;
    std::unique_ptr<PythonTool> tool_;
};

TEST_P(PythonToolFieldsTest, AMisspelledFieldIsRefusedAndNothingRuns) {
    json r = call({{"input", {{"operation", "execute"}, {"code", "x = 1"}, {"persistant", true}}}});
    EXPECT_TRUE(r.value("isError", false));
    EXPECT_THAT(text(r), HasSubstr("unknown field 'persistant' for operation execute (did you mean 'persistent'?)"));
    EXPECT_THAT(text(r), HasSubstr("code, session_id, persistent"));
    EXPECT_TRUE(engine_.requests.empty());
    r = call({{"code", "1"}, {std::string(100000, 'q'), 1}});
    EXPECT_TRUE(r.value("isError", false));
    EXPECT_LT(text(r).size(), 1000u);  // the unknown name is quoted cut
}

TEST_P(PythonToolFieldsTest, OriginalFieldsAreAcceptedAndTheResultSaysWhatWasNotApplied) {
    engine::SessionInfo kept;
    kept.id = "kept";
    engine_.sessions = {kept};
    json r = call({{"code", "1"}, {"session_id", "kept"}, {"cwd", "/tmp"}, {"filename", "x.py"},
                   {"tool_unlock_token", "t"}});
    ASSERT_FALSE(r.value("isError", false)) << r.dump();
    std::string note = r["structuredContent"]["note"];
    EXPECT_THAT(note, HasSubstr("'filename' is not used by execute"));
    EXPECT_THAT(note, HasSubstr("'cwd' is accepted for compatibility"));
    EXPECT_THAT(note, HasSubstr("fresh namespace"));
    EXPECT_THAT(text(r), HasSubstr("[note] "));
    r = call({{"code", "1"}, {"session_id", "kept"}, {"persistent", true}});
    EXPECT_FALSE(r["structuredContent"].contains("note"));
}

TEST_P(PythonToolFieldsTest, RunScriptGetsItsPathAndArgsAsArgv) {
    { std::ofstream(root_ / "s.py") << "print(1)\n"; }
    json r = call({{"operation", "run_script"}, {"filename", "s"}, {"args", {"a", "b"}}});
    ASSERT_FALSE(r.value("isError", false)) << r.dump();
    ASSERT_EQ(engine_.requests.size(), 1u);
    EXPECT_EQ(engine_.requests[0].argv, (std::vector<std::string>{(root_ / "s.py").string(), "a", "b"}));
    EXPECT_THAT(text(call({{"operation", "run_script"}, {"filename", "s"}, {"args", {1}}})),
                HasSubstr("must be a list of strings"));
    EXPECT_THAT(text(call({{"operation", "run_script"}, {"filename", "s"}, {"args", {"a"}}, {"argv", {"b"}}})),
                HasSubstr("not both"));
}

TEST_P(PythonToolFieldsTest, ErrorTextIsBoundedLikeOutput) {
    engine_.next.status = ExecOutcome::Status::Error;
    engine_.next.error = engine::ExecError{"ToolError", std::string(1'000'000, 'm'), std::string(1'000'000, 't')};
    json r = call({{"code", "1"}, {"max_output", 2000}});
    EXPECT_LT(r.dump().size(), 20'000u);
    EXPECT_THAT(r["structuredContent"]["error"]["message"].get<std::string>(), HasSubstr("bytes cut]"));
    EXPECT_TRUE(r["structuredContent"]["truncated"].get<bool>());
}

INSTANTIATE_TEST_SUITE_P(BlockingAndNot, PythonToolFieldsTest, ::testing::Bool());

}  // namespace
}  // namespace pymcp::tools
