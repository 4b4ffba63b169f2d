#include "python_mcp/client/server_config.hpp"

#include "python_mcp/support/json.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pymcp::client {

namespace {

using ojson = nlohmann::ordered_json;

std::optional<std::string> from_environment(const std::string& name) {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
}

// "line 3, column 7" for a byte offset into text.
std::string position_text(const std::string& text, size_t byte) {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < byte && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

const char* type_name(const ojson& v) {
    switch (v.type()) {
        case ojson::value_t::null: return "null";
        case ojson::value_t::object: return "an object";
        case ojson::value_t::array: return "an array";
        case ojson::value_t::string: return "a string";
        case ojson::value_t::boolean: return "a boolean";
        case ojson::value_t::number_integer:
        case ojson::value_t::number_unsigned:
        case ojson::value_t::number_float: return "a number";
        default: return "something else";
    }
}

bool valid_env_name(const std::string& name) {
    if (name.empty() || name.find('=') != std::string::npos) return false;
    return name.find('\0') == std::string::npos;
}

// One server entry; errors are appended with `where` ("config file 'f': server 'x'") in front.
std::optional<DownstreamServerConfig> parse_entry(const std::string& name, const ojson& entry, const std::string& where,
                                                  std::vector<std::string>& errors) {
    size_t errors_before = errors.size();
    auto fail = [&](const std::string& problem) { errors.push_back(where + ": " + problem); };
    if (name.empty()) {
        fail("a server name must not be empty");
        return std::nullopt;
    }
    if (!entry.is_object()) {
        fail(std::string("must be an object, not ") + type_name(entry));
        return std::nullopt;
    }
    DownstreamServerConfig config;
    config.name = name;

    if (auto it = entry.find("disabled"); it != entry.end()) {
        if (it->is_boolean()) config.disabled = it->get<bool>();
        else fail(std::string("\"disabled\" must be true or false, not ") + type_name(*it));
    }
    if (auto it = entry.find("type"); it != entry.end()) {
        if (!it->is_string() || it->get<std::string>() != "stdio") {
            fail("only stdio servers are supported (\"type\" is " + it->dump() + ")");
            return std::nullopt;
        }
    }
    auto command = entry.find("command");
    if (command == entry.end()) {
        if (entry.contains("url")) fail("remote servers (\"url\") are not supported; give a \"command\" to run");
        else fail("\"command\" is missing");
        return std::nullopt;
    }
    if (!command->is_string() || command->get<std::string>().empty()) {
        fail(std::string("\"command\" must be a non-empty string, not ") +
             (command->is_string() ? "an empty one" : type_name(*command)));
        return std::nullopt;
    }

    // Variables expand in every string; a disabled server keeps unset ones as written (it will
    // not run, and a key missing for it is no reason to complain).
    auto expand = [&](const std::string& text, const std::string& field) -> std::string {
        std::string error;
        auto out = expand_variables(text, from_environment, error);
        if (out) return *out;
        if (!config.disabled) fail(field + ": " + error);
        return text;
    };

    config.command = expand(command->get<std::string>(), "\"command\"");
    if (auto it = entry.find("args"); it != entry.end() && !it->is_null()) {
        if (!it->is_array()) {
            fail(std::string("\"args\" must be an array of strings, not ") + type_name(*it));
        } else {
            for (size_t i = 0; i < it->size(); ++i) {
                const auto& a = (*it)[i];
                if (!a.is_string()) {
                    fail("\"args\"[" + std::to_string(i) + "] must be a string, not " + type_name(a));
                    continue;
                }
                config.args.push_back(expand(a.get<std::string>(), "\"args\"[" + std::to_string(i) + "]"));
            }
        }
    }
    if (auto it = entry.find("env"); it != entry.end() && !it->is_null()) {
        if (!it->is_object()) {
            fail(std::string("\"env\" must be an object of strings, not ") + type_name(*it));
        } else {
            for (const auto& [key, value] : it->items()) {
                if (!valid_env_name(key)) {
                    fail("\"env\" has an invalid variable name " + ojson(key).dump());
                    continue;
                }
                if (!value.is_string()) {
                    fail("\"env\"." + key + " must be a string, not " + type_name(value));
                    continue;
                }
                config.env[key] = expand(value.get<std::string>(), "\"env\"." + key);
            }
        }
    }
    if (auto it = entry.find("cwd"); it != entry.end() && !it->is_null()) {
        if (!it->is_string()) fail(std::string("\"cwd\" must be a string, not ") + type_name(*it));
        else config.cwd = expand(it->get<std::string>(), "\"cwd\"");
    }
    if (errors.size() != errors_before) return std::nullopt;
    return config;
}

}  // namespace

std::optional<std::string> expand_variables(const std::string& text,
                                            const std::function<std::optional<std::string>(const std::string&)>& lookup,
                                            std::string& error) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c != '$') {
            out.push_back(c);
            continue;
        }
        if (text.compare(i, 3, "$${") == 0) {  // escaped: a literal ${
            out += "${";
            i += 2;
            continue;
        }
        if (i + 1 >= text.size() || text[i + 1] != '{') {
            out.push_back(c);
            continue;
        }
        size_t close = text.find('}', i + 2);
        if (close == std::string::npos) {
            error = "unclosed \"${\" in \"" + text + "\"";
            return std::nullopt;
        }
        std::string inner = text.substr(i + 2, close - i - 2);
        std::optional<std::string> fallback;
        if (auto d = inner.find(":-"); d != std::string::npos) {
            fallback = inner.substr(d + 2);
            inner = inner.substr(0, d);
        }
        if (inner.empty()) {
            error = "empty variable name in \"" + text + "\"";
            return std::nullopt;
        }
        auto value = lookup(inner);
        if (value && !(value->empty() && fallback)) {
            out += *value;
        } else if (fallback) {
            out += *fallback;
        } else {
            error = "environment variable " + inner + " is not set (write ${" + inner + ":-default} to give a default)";
            return std::nullopt;
        }
        i = close;
    }
    return out;
}

ConfigLoadResult parse_server_config(const std::string& text, const std::string& origin) {
    ConfigLoadResult result;
    ojson root;
    try {
        root = ojson::parse(text, nullptr, true, /*ignore_comments=*/true);
    } catch (const ojson::parse_error& e) {
        std::string what = e.what();
        if (auto pos = what.find("parse error"); pos != std::string::npos) what = what.substr(pos);
        if (auto pos = what.find(": "); pos != std::string::npos) what = what.substr(pos + 2);
        result.errors.push_back(origin + ": invalid JSON at " + position_text(text, e.byte > 0 ? e.byte - 1 : 0) +
                                ": " + what);
        return result;
    }
    if (!root.is_object()) {
        result.errors.push_back(origin + ": must hold a JSON object with \"mcpServers\", not " + type_name(root));
        return result;
    }
    auto servers = root.find("mcpServers");
    if (servers == root.end()) {
        result.errors.push_back(origin + ": has no \"mcpServers\" object");
        return result;
    }
    if (!servers->is_object()) {
        result.errors.push_back(origin + ": \"mcpServers\" must be an object, not " + type_name(*servers));
        return result;
    }
    for (const auto& [name, entry] : servers->items()) {
        size_t errors_before = result.errors.size();
        auto config = parse_entry(name, entry, origin + ": server '" + name + "'", result.errors);
        if (config) result.servers.push_back(std::move(*config));
        else if (result.errors.size() != errors_before) result.errors.back() += " (server skipped)";
    }
    return result;
}

ConfigLoadResult load_server_config(const std::filesystem::path& file) {
    std::string origin = "config file '" + file.string() + "'";
    try {
        std::error_code ec;
        if (std::filesystem::is_directory(file, ec)) return {{}, {origin + ": is a directory"}};
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            int err = errno;
            return {{}, {origin + ": cannot be read: " + std::strerror(err)}};
        }
        std::ostringstream text;
        text << in.rdbuf();
        if (in.bad()) return {{}, {origin + ": cannot be read"}};
        return parse_server_config(text.str(), origin);
    } catch (const std::exception& e) {
        return {{}, {origin + ": " + e.what()}};
    }
}

}  // namespace pymcp::client
