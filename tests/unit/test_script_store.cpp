// ScriptStore: saved scripts in one folder. Round trips, name rules, links that lead outside,
// atomic saves and listings.

#include "python_mcp/tools/script_store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "python_mcp/mcp/tool_registry.hpp"

namespace pymcp::tools {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using mcp::ToolError;
using pymcp::json;

fs::path make_temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "script_store_test_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    return pattern;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary);
    out << text;
}

std::vector<std::string> files_in(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

class ScriptStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = make_temp_dir();
        dir_ = root_ / "scripts";  // not created: the first save creates it
        outside_ = root_ / "outside";
        fs::create_directories(outside_);
        store_ = std::make_unique<ScriptStore>(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }

    std::string error_of(const std::function<void()>& f) {
        try {
            f();
        } catch (const ToolError& e) {
            return e.what();
        }
        return "";
    }

    fs::path root_, dir_, outside_;
    std::unique_ptr<ScriptStore> store_;
};

TEST_F(ScriptStoreTest, SaveLoadListDeleteRoundTrip) {
    const std::string code = "import math\nprint(math.pi)\n# ünïcödé ✓\n";
    json saved = store_->save("report", code);
    EXPECT_EQ(saved["filename"], "report.py");
    EXPECT_EQ(saved["size"], code.size());
    EXPECT_TRUE(saved["saved"].get<bool>());
    EXPECT_EQ(fs::path(saved["path"].get<std::string>()), dir_ / "report.py");
    EXPECT_EQ(read_file(dir_ / "report.py"), code);

    json loaded = store_->load("report");
    EXPECT_EQ(loaded["filename"], "report.py");
    EXPECT_EQ(loaded["code"], code);
    EXPECT_EQ(loaded["size"], code.size());
    EXPECT_EQ(store_->load("report.py")["code"], code);
    EXPECT_EQ(store_->read_code("report"), code);
    EXPECT_EQ(store_->existing_path("report"), dir_ / "report.py");

    store_->save("another.py", "x = 1\n");
    json listed = store_->list();
    EXPECT_EQ(listed["count"], 2);
    ASSERT_EQ(listed["scripts"].size(), 2u);
    EXPECT_EQ(listed["scripts"][0]["filename"], "another.py");
    EXPECT_EQ(listed["scripts"][1]["filename"], "report.py");
    EXPECT_EQ(listed["scripts"][1]["size"], code.size());
    EXPECT_THAT(listed["scripts"][1]["modified"].get<std::string>(), ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z"));
    EXPECT_EQ(fs::path(listed["directory"].get<std::string>()), dir_);

    json deleted = store_->remove("report");
    EXPECT_EQ(deleted["filename"], "report.py");
    EXPECT_TRUE(deleted["deleted"].get<bool>());
    EXPECT_FALSE(fs::exists(dir_ / "report.py"));
    EXPECT_EQ(store_->list()["count"], 1);
    EXPECT_THAT(error_of([&] { store_->load("report"); }), HasSubstr("report.py"));
    EXPECT_THROW(store_->remove("report"), ToolError);
}

TEST_F(ScriptStoreTest, PyIsAddedWhenMissing) {
    EXPECT_EQ(store_->normalize("a"), "a.py");
    EXPECT_EQ(store_->normalize("a.py"), "a.py");
    EXPECT_EQ(store_->normalize("data.txt"), "data.txt.py");
    EXPECT_EQ(store_->normalize("py"), "py.py");
    EXPECT_EQ(store_->normalize("données"), "données.py");
    EXPECT_EQ(store_->save("x.y", "1")["filename"], "x.y.py");
}

TEST_F(ScriptStoreTest, ListOfAMissingFolderIsEmpty) {
    json listed = store_->list();
    EXPECT_EQ(listed["count"], 0);
    EXPECT_TRUE(listed["scripts"].empty());
    EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(ScriptStoreTest, BadNamesAreRefusedEverywhere) {
    store_->save("fine", "ok");
    const std::vector<std::string> bad = {
        "",
        "../x",
        "..",
        "../../etc/passwd",
        "a/b",
        "/abs",
        "/tmp/x.py",
        "a\\b",
        ".hidden",
        ".hidden.py",
        std::string("x\0y", 3),
        "a..b",
        "a\xEF\xBC\x8F" "b",          // U+FF0F fullwidth solidus
        "a\xE2\x88\x95" "b",          // U+2215 division slash
        "\xEF\xBC\x8E\xEF\xBC\x8E",   // U+FF0E fullwidth full stops
        "a\nb",
        "a\x7f",
        "bad\xff",                    // invalid UTF-8
        std::string(300, 'a'),
    };
    for (const auto& name : bad) {
        SCOPED_TRACE(::testing::PrintToString(name));
        EXPECT_FALSE(error_of([&] { store_->normalize(name); }).empty());
        EXPECT_THAT(error_of([&] { store_->save(name, "evil = True\n"); }), HasSubstr("invalid script name"));
        EXPECT_FALSE(error_of([&] { store_->load(name); }).empty());
        EXPECT_FALSE(error_of([&] { store_->remove(name); }).empty());
        EXPECT_FALSE(error_of([&] { store_->read_code(name); }).empty());
    }
    // Nothing was written anywhere: the folder still holds only the good script, nothing beside it.
    EXPECT_EQ(files_in(dir_), (std::vector<std::string>{"fine.py"}));
    EXPECT_EQ(files_in(root_), (std::vector<std::string>{"outside", "scripts"}));
    EXPECT_TRUE(files_in(outside_).empty());
}

TEST_F(ScriptStoreTest, ALinkPointingOutsideIsRefused) {
    fs::create_directories(dir_);
    write_file(outside_ / "secret.py", "SECRET = 42\n");
    fs::create_symlink(outside_ / "secret.py", dir_ / "evil.py");
    EXPECT_THAT(error_of([&] { store_->load("evil"); }), HasSubstr("outside"));
    EXPECT_FALSE(error_of([&] { store_->read_code("evil.py"); }).empty());
    EXPECT_FALSE(error_of([&] { store_->existing_path("evil"); }).empty());
    EXPECT_FALSE(error_of([&] { store_->save("evil", "overwritten\n"); }).empty());
    EXPECT_FALSE(error_of([&] { store_->remove("evil"); }).empty());
    EXPECT_EQ(read_file(outside_ / "secret.py"), "SECRET = 42\n");
    // A relative link that climbs out is the same.
    fs::create_symlink("../outside/secret.py", dir_ / "climb.py");
    EXPECT_FALSE(error_of([&] { store_->load("climb"); }).empty());
    // A dangling link to outside cannot be used to create a file there: the save is refused or
    // replaces the link itself.
    fs::create_symlink(outside_ / "new.py", dir_ / "dangling.py");
    std::string err = error_of([&] { store_->save("dangling", "x\n"); });
    EXPECT_FALSE(fs::exists(outside_ / "new.py"));
    if (err.empty()) {
        EXPECT_FALSE(fs::is_symlink(dir_ / "dangling.py"));
        EXPECT_EQ(read_file(dir_ / "dangling.py"), "x\n");
    }
}

TEST_F(ScriptStoreTest, ListDoesNotShowLinksLeadingOutside) {
    fs::create_directories(dir_);
    write_file(outside_ / "secret.py", "SECRET = 42\n");
    fs::create_symlink(outside_ / "secret.py", dir_ / "evil.py");
    store_->save("good", "1\n");
    // Listing a script that load refuses would only invite a failing load, and it shows the
    // size and date of a file outside the folder.
    json result = store_->list();
    std::vector<std::string> listed;
    for (const auto& s : result["scripts"]) listed.push_back(s["filename"]);
    EXPECT_EQ(listed, (std::vector<std::string>{"good.py"}));
}

TEST_F(ScriptStoreTest, ALinkInsideTheFolderIsFine) {
    store_->save("real", "value = 'real'\n");
    fs::create_symlink("real.py", dir_ / "alias.py");
    EXPECT_EQ(store_->load("alias")["code"], "value = 'real'\n");
}

TEST_F(ScriptStoreTest, SaveIsAtomicAndLeavesNoTemporaryFile) {
    store_->save("s", "version 1\n");
    EXPECT_EQ(files_in(dir_), (std::vector<std::string>{"s.py"}));
    std::string big(1 << 20, 'x');
    store_->save("s", big);
    EXPECT_EQ(read_file(dir_ / "s.py"), big);
    store_->save("s", "");
    EXPECT_EQ(read_file(dir_ / "s.py"), "");
    EXPECT_EQ(store_->load("s")["size"], 0);
    EXPECT_EQ(files_in(dir_), (std::vector<std::string>{"s.py"}));
}

TEST_F(ScriptStoreTest, ListSkipsHiddenTemporaryAndNonPythonFiles) {
    store_->save("b", "2");
    store_->save("a", "1");
    write_file(dir_ / ".b.py.abc123.tmp", "half written");
    write_file(dir_ / ".hidden.py", "hidden");
    write_file(dir_ / "notes.txt", "not a script");
    fs::create_directories(dir_ / "folder.py");
    json listed = store_->list();
    std::vector<std::string> names;
    for (const auto& s : listed["scripts"]) names.push_back(s["filename"]);
    EXPECT_EQ(names, (std::vector<std::string>{"a.py", "b.py"}));
    EXPECT_EQ(listed["count"], 2);
}

TEST_F(ScriptStoreTest, SaveFailureIsAToolError) {
    write_file(root_ / "not_a_dir", "x");
    ScriptStore broken(root_ / "not_a_dir" / "scripts");
    std::string err = error_of([&] { broken.save("s", "1"); });
    EXPECT_THAT(err, HasSubstr("cannot save script 's.py'"));
}

TEST_F(ScriptStoreTest, MissingScriptErrorsNameIt) {
    EXPECT_THAT(error_of([&] { store_->load("ghost"); }), HasSubstr("ghost.py"));
    EXPECT_THAT(error_of([&] { store_->remove("ghost"); }), HasSubstr("ghost.py"));
    fs::create_directories(dir_ / "dir.py");
    EXPECT_FALSE(error_of([&] { store_->load("dir"); }).empty());
}

TEST_F(ScriptStoreTest, RefusalsStateTheRuleWhateverTheNameHolds) {
    // The name is quoted with control characters and stray bytes escaped, so a NUL cannot cut the
    // message short before the rule, a newline cannot start a new line, and a huge name is cut.
    std::string err = error_of([&] { store_->save(std::string("a\0b", 3), "1"); });
    EXPECT_THAT(err, HasSubstr("'a\\x00b'"));
    EXPECT_THAT(err, HasSubstr("NUL byte"));
    err = error_of([&] { store_->load("a\nb"); });
    EXPECT_THAT(err, HasSubstr("'a\\x0ab'"));
    EXPECT_THAT(err, HasSubstr("control character"));
    EXPECT_EQ(err.find('\n'), std::string::npos);
    err = error_of([&] { store_->load("bad\xff"); });
    EXPECT_THAT(err, HasSubstr("bad\\xff"));
    EXPECT_THAT(err, HasSubstr("UTF-8"));
    err = error_of([&] { store_->load("caf\xC3\xA9/x"); });  // valid UTF-8 is kept as it is
    EXPECT_THAT(err, HasSubstr("'caf\xC3\xA9/x'"));
    err = error_of([&] { store_->load(std::string(100000, 'a')); });
    EXPECT_THAT(err, HasSubstr("longer than 239 bytes"));
    EXPECT_LT(err.size(), 500u);
}

TEST_F(ScriptStoreTest, TheLongestNameThatIsAcceptedCanBeSaved) {
    // A save writes ".<name>.<random>.tmp" first, 16 bytes more: the limit leaves room for it, so
    // a long name gets the rule, not "File name too long" from the temporary file.
    const std::string longest = std::string(236, 'a') + ".py";  // 239 bytes
    EXPECT_EQ(store_->save(longest, "1\n")["filename"], longest);
    EXPECT_EQ(store_->load(longest)["code"], "1\n");
    std::string e;
    for (int i = 0; i < 118; ++i) e += "\xC3\xA9";  // 236 bytes of U+00E9
    EXPECT_EQ(store_->save(e, "2\n")["filename"], e + ".py");
    for (const std::string& name : {std::string(237, 'a'), std::string(240, 'a') + ".py", e + "\xC3\xA9"}) {
        EXPECT_THAT(error_of([&] { store_->save(name, "x"); }), HasSubstr("longer than 239 bytes"));
        EXPECT_THAT(error_of([&] { store_->load(name); }), HasSubstr("longer than 239 bytes"));
    }
    EXPECT_EQ(files_in(dir_).size(), 2u);
}

}  // namespace
}  // namespace pymcp::tools
