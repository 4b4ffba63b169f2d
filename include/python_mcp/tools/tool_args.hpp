#pragma once
// Reading a built-in tool's arguments. The original tools take {"input": {...}}; the same fields
// unwrapped are accepted too. Type mistakes become ToolError with the field's name, which the
// registry turns into an isError result the model can read and fix.

#include "python_mcp/support/json.hpp"

#include <optional>
#include <string>

namespace pymcp::tools {

using json = pymcp::json;

// A tool's fields. {"input": {...}} -> the inner object (fields beside "input" are merged in,
// inner ones win); anything else is used as is. Only a merge copies: the fields usually refer
// into `arguments`, which must outlive this. Throws ToolError when "input" is present but not an
// object.
class ToolInput {
public:
    explicit ToolInput(const json& arguments);
    ToolInput(const ToolInput&) = delete;
    ToolInput& operator=(const ToolInput&) = delete;
    const json& fields() const { return merged_ ? *merged_ : *fields_; }

private:
    const json* fields_;
    std::optional<json> merged_;
};

std::optional<std::string> get_string(const json& input, const char* key);
std::optional<bool> get_bool(const json& input, const char* key);
std::optional<double> get_number(const json& input, const char* key);
std::optional<long long> get_integer(const json& input, const char* key);
std::string require_string(const json& input, const char* key, const std::string& what_for);

// An optional gate from the original tools: with --require-unlock-token every call must carry
// the tool's `tool_unlock_token`, which its readme states. Not authentication: it makes a model
// read the readme before it uses the tool.
struct UnlockGate {
    bool required = false;
    std::string token;
    // Throws ToolError carrying `readme` when required and the token is missing or wrong.
    void check(const json& input, const std::string& readme) const;
};

}  // namespace pymcp::tools
