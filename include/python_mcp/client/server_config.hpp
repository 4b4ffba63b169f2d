#pragma once
// The downstream servers a user configured, read from a file in the form of Claude Desktop's
// claude_desktop_config.json:
//
//   {"mcpServers": {"<name>": {"command": "...", "args": [...], "env": {...}, "cwd": "...",
//                              "disabled": false}}}
//
// `${VAR}` (and `${VAR:-default}`) in command, args, env values and cwd expand from our
// environment; `$${` is a literal `${`. An unset variable without a default is an error for that
// server. Stateless functions; nothing here throws except std::bad_alloc.

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pymcp::client {

struct DownstreamServerConfig {
    std::string name;
    std::string command;
    std::vector<std::string> args;
    std::map<std::string, std::string> env;  // set on top of our environment
    std::string cwd;                         // empty: ours
    bool disabled = false;
};

struct ConfigLoadResult {
    std::vector<DownstreamServerConfig> servers;  // in the file's order, disabled ones included
    std::vector<std::string> errors;              // each names the file, the server and the field
};

// Never throws. A missing or unreadable file, invalid JSON or a missing "mcpServers" object
// gives one error and no servers; a bad server entry is skipped with an error and the others
// load.
ConfigLoadResult load_server_config(const std::filesystem::path& file);
// The same for text already read; `origin` names it in errors.
ConfigLoadResult parse_server_config(const std::string& text, const std::string& origin);

// Expands ${VAR} and ${VAR:-default} with `lookup`; nullopt and `error` set when a variable is
// unset (and has no default) or a `${` is not closed.
std::optional<std::string> expand_variables(const std::string& text,
                                            const std::function<std::optional<std::string>(const std::string&)>& lookup,
                                            std::string& error);

}  // namespace pymcp::client
