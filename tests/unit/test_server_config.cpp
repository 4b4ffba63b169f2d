// load_server_config: the Claude Desktop format, ${VAR} expansion, and clear errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "python_mcp/client/server_config.hpp"

using namespace pymcp::client;

namespace {

class ConfigFile : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("pymcp-config-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::filesystem::path write(const std::string& text) {
        auto path = dir_ / "claude_desktop_config.json";
        std::ofstream(path) << text;
        return path;
    }

    static bool has_error(const ConfigLoadResult& r, const std::string& part) {
        for (const auto& e : r.errors)
            if (e.find(part) != std::string::npos) return true;
        return false;
    }
    static std::string all_errors(const ConfigLoadResult& r) {
        std::string s;
        for (const auto& e : r.errors) s += e + "\n";
        return s;
    }

    std::filesystem::path dir_;
};

}  // namespace

TEST_F(ConfigFile, ValidFileInClaudeDesktopForm) {
    auto path = write(R"({
      "mcpServers": {
        "filesystem": {
          "command": "npx",
          "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/Desktop"]
        },
        "memory": {"command": "mcp-server-memory", "env": {"MEMORY_FILE_PATH": "/tmp/m.json"}, "cwd": "/tmp"},
        "bare": {"command": "/usr/bin/true", "type": "stdio"}
      },
      "globalShortcut": "Ctrl+Space"
    })");
    auto r = load_server_config(path);
    EXPECT_TRUE(r.errors.empty()) << all_errors(r);
    ASSERT_EQ(r.servers.size(), 3u);
    EXPECT_EQ(r.servers[0].name, "filesystem");  // the file's order
    EXPECT_EQ(r.servers[0].command, "npx");
    EXPECT_EQ(r.servers[0].args, (std::vector<std::string>{"-y", "@modelcontextprotocol/server-filesystem", "/home/me/Desktop"}));
    EXPECT_FALSE(r.servers[0].disabled);
    EXPECT_EQ(r.servers[1].name, "memory");
    EXPECT_EQ(r.servers[1].env.at("MEMORY_FILE_PATH"), "/tmp/m.json");
    EXPECT_EQ(r.servers[1].cwd, "/tmp");
    EXPECT_TRUE(r.servers[2].args.empty());
}

TEST_F(ConfigFile, VariablesExpandFromTheEnvironment) {
    ::setenv("PYMCP_CFG_TOKEN", "s3cret", 1);
    ::setenv("PYMCP_CFG_DIR", "/data", 1);
    ::setenv("PYMCP_CFG_EMPTY", "", 1);
    ::unsetenv("PYMCP_CFG_UNSET");
    auto path = write(R"({"mcpServers": {"s": {
        "command": "${PYMCP_CFG_DIR}/bin/server",
        "args": ["--root=${PYMCP_CFG_DIR}", "${PYMCP_CFG_UNSET:-fallback}", "${PYMCP_CFG_EMPTY:-for-empty}",
                 "cost: $5", "literal $${PYMCP_CFG_DIR}", "x${PYMCP_CFG_EMPTY}y"],
        "env": {"TOKEN": "Bearer ${PYMCP_CFG_TOKEN}"},
        "cwd": "${PYMCP_CFG_DIR}"}}})");
    auto r = load_server_config(path);
    EXPECT_TRUE(r.errors.empty()) << all_errors(r);
    ASSERT_EQ(r.servers.size(), 1u);
    const auto& s = r.servers[0];
    EXPECT_EQ(s.command, "/data/bin/server");
    EXPECT_EQ(s.args, (std::vector<std::string>{"--root=/data", "fallback", "for-empty", "cost: $5",
                                                "literal ${PYMCP_CFG_DIR}", "xy"}));
    EXPECT_EQ(s.env.at("TOKEN"), "Bearer s3cret");
    EXPECT_EQ(s.cwd, "/data");
}

TEST_F(ConfigFile, UnsetVariableSkipsOnlyThatServer) {
    ::unsetenv("PYMCP_CFG_MISSING");
    auto path = write(R"({"mcpServers": {
        "needs-key": {"command": "srv", "env": {"API_KEY": "${PYMCP_CFG_MISSING}"}},
        "fine": {"command": "srv2"},
        "off": {"command": "srv3", "args": ["${PYMCP_CFG_MISSING}"], "disabled": true}}})");
    auto r = load_server_config(path);
    ASSERT_EQ(r.errors.size(), 1u) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'needs-key'")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "\"env\".API_KEY")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "PYMCP_CFG_MISSING is not set")) << all_errors(r);
    EXPECT_TRUE(has_error(r, path.string())) << all_errors(r);
    ASSERT_EQ(r.servers.size(), 2u);
    EXPECT_EQ(r.servers[0].name, "fine");
    EXPECT_EQ(r.servers[1].name, "off");  // disabled: no complaint about its variables
    EXPECT_TRUE(r.servers[1].disabled);
}

TEST_F(ConfigFile, MissingFile) {
    auto r = load_server_config(dir_ / "nope.json");
    EXPECT_TRUE(r.servers.empty());
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_TRUE(has_error(r, "nope.json")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "No such file")) << all_errors(r);

    auto d = load_server_config(dir_);
    EXPECT_TRUE(has_error(d, "is a directory")) << all_errors(d);
}

TEST_F(ConfigFile, BadJsonNamesThePosition) {
    auto path = write("{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",}\n  }\n}\n");
    auto r = load_server_config(path);
    EXPECT_TRUE(r.servers.empty());
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_TRUE(has_error(r, "invalid JSON")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "line 3")) << all_errors(r);
    EXPECT_TRUE(has_error(r, path.string())) << all_errors(r);

    auto empty = load_server_config(write(""));
    EXPECT_TRUE(has_error(empty, "invalid JSON")) << all_errors(empty);
}

TEST_F(ConfigFile, CommentsAreTolerated) {
    auto r = load_server_config(write("{\n// my servers\n\"mcpServers\": {\"a\": {\"command\": \"x\"}}}"));
    EXPECT_TRUE(r.errors.empty()) << all_errors(r);
    EXPECT_EQ(r.servers.size(), 1u);
}

TEST_F(ConfigFile, WrongShapeOfTheFile) {
    EXPECT_TRUE(has_error(load_server_config(write("[]")), "must hold a JSON object"));
    EXPECT_TRUE(has_error(load_server_config(write("{}")), "no \"mcpServers\""));
    EXPECT_TRUE(has_error(load_server_config(write(R"({"mcpServers": []})")), "\"mcpServers\" must be an object"));
    auto r = load_server_config(write(R"({"mcpServers": {}})"));
    EXPECT_TRUE(r.errors.empty());
    EXPECT_TRUE(r.servers.empty());
}

TEST_F(ConfigFile, WrongTypesSkipTheEntryWithAClearError) {
    auto path = write(R"({"mcpServers": {
        "no-command": {"args": []},
        "num-command": {"command": 42},
        "empty-command": {"command": ""},
        "args-string": {"command": "x", "args": "--flag"},
        "args-number": {"command": "x", "args": ["ok", 7]},
        "env-array": {"command": "x", "env": ["A=1"]},
        "env-number": {"command": "x", "env": {"PORT": 8080}},
        "cwd-bool": {"command": "x", "cwd": true},
        "disabled-string": {"command": "x", "disabled": "yes"},
        "not-object": "npx server",
        "remote": {"url": "https://example.invalid/mcp"},
        "sse": {"type": "sse", "command": "x"},
        "good": {"command": "x", "args": null, "env": null}
    }})");
    auto r = load_server_config(path);
    ASSERT_EQ(r.servers.size(), 1u) << all_errors(r);
    EXPECT_EQ(r.servers[0].name, "good");
    EXPECT_EQ(r.errors.size(), 12u) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'no-command': \"command\" is missing")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'num-command': \"command\" must be a non-empty string, not a number")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'empty-command': \"command\" must be a non-empty string")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'args-string': \"args\" must be an array of strings, not a string")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'args-number': \"args\"[1] must be a string, not a number")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'env-array': \"env\" must be an object")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'env-number': \"env\".PORT must be a string, not a number")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'cwd-bool': \"cwd\" must be a string, not a boolean")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'disabled-string': \"disabled\" must be true or false")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'not-object': must be an object, not a string")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'remote': remote servers (\"url\") are not supported")) << all_errors(r);
    EXPECT_TRUE(has_error(r, "server 'sse': only stdio servers are supported")) << all_errors(r);
    for (const auto& e : r.errors) EXPECT_NE(e.find(path.string()), std::string::npos) << e;
}

TEST_F(ConfigFile, DisabledEntriesAreKeptAndMarked) {
    auto r = load_server_config(write(R"({"mcpServers": {
        "on": {"command": "a"}, "off": {"command": "b", "disabled": true}, "explicit-on": {"command": "c", "disabled": false}}})"));
    EXPECT_TRUE(r.errors.empty()) << all_errors(r);
    ASSERT_EQ(r.servers.size(), 3u);
    EXPECT_FALSE(r.servers[0].disabled);
    EXPECT_TRUE(r.servers[1].disabled);
    EXPECT_FALSE(r.servers[2].disabled);
}

TEST(ExpandVariables, Basics) {
    auto lookup = [](const std::string& name) -> std::optional<std::string> {
        if (name == "A") return std::string("alpha");
        return std::nullopt;
    };
    std::string error;
    EXPECT_EQ(expand_variables("${A}-${A}", lookup, error), "alpha-alpha");
    EXPECT_EQ(expand_variables("$A ${B:-b} $", lookup, error), "$A b $");
    EXPECT_EQ(expand_variables("${B:-}", lookup, error), "");
    EXPECT_EQ(expand_variables("${B}", lookup, error), std::nullopt);
    EXPECT_NE(error.find("B is not set"), std::string::npos);
    EXPECT_EQ(expand_variables("${A", lookup, error), std::nullopt);
    EXPECT_NE(error.find("unclosed"), std::string::npos);
    EXPECT_EQ(expand_variables("${}", lookup, error), std::nullopt);
}
