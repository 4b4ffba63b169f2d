// ScriptStore's second, read-only folder: the scripts shipped with python-mcp (issue 15). Listed
// apart from the user's (count unchanged), loaded and run like them, names reserved for save and delete, a user's file of the same
// name wins.

#include "python_mcp/tools/script_store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "python_mcp/mcp/tool_registry.hpp"

namespace pymcp::tools {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using mcp::ToolError;
using pymcp::json;

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary);
    out << text;
}

class ShippedScripts : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "shipped_scripts_test_XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        root_ = pattern;
        fs::create_directories(root_ / "user");
        fs::create_directories(root_ / "shipped");
        write_file(root_ / "shipped" / "profile.py", "print('shipped profile')\n");
        write_file(root_ / "shipped" / "report.py", "print('shipped report')\n");
        write_file(root_ / "shipped" / "notes.txt", "not a script");
        write_file(root_ / "shipped" / ".hidden.py", "print('hidden')");
    }
    void TearDown() override { fs::remove_all(root_); }

    ScriptStore store() { return ScriptStore(root_ / "user", root_ / "shipped"); }
    std::string refusal(const std::function<void()>& op) {
        try {
            op();
        } catch (const ToolError& e) {
            return e.what();
        }
        ADD_FAILURE() << "no ToolError";
        return "";
    }

    fs::path root_;
};

TEST_F(ShippedScripts, ListedApartFromTheUsersSortedAndMarked) {
    auto s = store();
    s.save("mine.py", "print(1)");
    json r = s.list();
    // `scripts` and `count` keep meaning the user's folder.
    ASSERT_EQ(r["count"], 1);
    EXPECT_EQ(r["scripts"][0]["filename"], "mine.py");
    EXPECT_FALSE(r["scripts"][0]["shipped"].get<bool>());
    ASSERT_EQ(r["shipped_count"], 2);
    EXPECT_EQ(r["shipped"][0]["filename"], "profile.py");
    EXPECT_EQ(r["shipped"][1]["filename"], "report.py");
    EXPECT_TRUE(r["shipped"][0]["shipped"].get<bool>());
    EXPECT_EQ(r["shipped"][0]["path"], (root_ / "shipped" / "profile.py").string());
    EXPECT_EQ(r["shipped_directory"], (root_ / "shipped").string());
}

TEST_F(ShippedScripts, LoadAndRunFallBackToTheShippedFolder) {
    auto s = store();
    json loaded = s.load("profile");
    EXPECT_EQ(loaded["code"], "print('shipped profile')\n");
    EXPECT_TRUE(loaded["shipped"].get<bool>());
    EXPECT_EQ(s.existing_path("profile.py"), root_ / "shipped" / "profile.py");
    EXPECT_THROW(s.load("notes.txt"), ToolError);  // only .py names, as for the user's folder
    EXPECT_THROW(s.load(".hidden.py"), ToolError);
}

TEST_F(ShippedScripts, SaveAndDeleteOfAShippedNameAreRefused) {
    auto s = store();
    std::string saved = refusal([&] { s.save("report.py", "print('mine')"); });
    EXPECT_THAT(saved, HasSubstr("save_script refused"));
    EXPECT_THAT(saved, HasSubstr("shipped with python-mcp (read-only"));
    EXPECT_THAT(saved, HasSubstr("my_report.py"));
    std::string deleted = refusal([&] { s.remove("report"); });
    EXPECT_THAT(deleted, HasSubstr("delete_script refused"));
    EXPECT_TRUE(fs::exists(root_ / "shipped" / "report.py"));
    EXPECT_FALSE(fs::exists(root_ / "user" / "report.py"));
}

TEST_F(ShippedScripts, AUsersFileOfTheSameNameWinsUntilDeleted) {
    auto s = store();
    write_file(root_ / "user" / "report.py", "print('user report')\n");
    json loaded = s.load("report.py");
    EXPECT_EQ(loaded["code"], "print('user report')\n");
    EXPECT_FALSE(loaded["shipped"].get<bool>());
    json r = s.list();
    EXPECT_EQ(r["count"], 1);
    EXPECT_EQ(r["scripts"][0]["filename"], "report.py");
    ASSERT_EQ(r["shipped_count"], 1);  // the shipped report.py is hidden by the user's
    EXPECT_EQ(r["shipped"][0]["filename"], "profile.py");
    s.remove("report.py");
    EXPECT_FALSE(fs::exists(root_ / "user" / "report.py"));
    EXPECT_TRUE(s.load("report.py")["shipped"].get<bool>());
}

TEST_F(ShippedScripts, WithoutAShippedFolderNothingChanges) {
    ScriptStore plain(root_ / "user");
    EXPECT_EQ(plain.list()["count"], 0);
    EXPECT_FALSE(plain.list().contains("shipped_directory"));
    EXPECT_FALSE(plain.list().contains("shipped"));
    EXPECT_NO_THROW(plain.save("report.py", "print(2)"));
    EXPECT_FALSE(plain.load("report.py")["shipped"].get<bool>());
}

TEST_F(ShippedScripts, AMissingShippedFolderIsNoError) {
    ScriptStore s(root_ / "user", root_ / "nowhere");
    EXPECT_EQ(s.list()["count"], 0);
    EXPECT_EQ(s.list()["shipped_count"], 0);
    EXPECT_THROW(s.load("profile.py"), ToolError);
}

}  // namespace
}  // namespace pymcp::tools
