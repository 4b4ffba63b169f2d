#include "python_mcp/tools/tool_args.hpp"

#include <cmath>

#include "python_mcp/mcp/tool_registry.hpp"

namespace pymcp::tools {

using mcp::ToolError;

ToolInput::ToolInput(const json& arguments) : fields_(&arguments) {
    auto it = arguments.find("input");
    if (it == arguments.end()) return;
    if (!it->is_object()) throw ToolError("'input' must be an object holding the tool's fields");
    if (arguments.size() == 1) {
        fields_ = &*it;
        return;
    }
    json merged = arguments;
    merged.erase("input");
    for (auto& [k, v] : it->items()) merged[k] = v;
    merged_ = std::move(merged);
}

namespace {

const json* field(const json& input, const char* key) {
    auto it = input.find(key);
    if (it == input.end() || it->is_null()) return nullptr;
    return &*it;
}

}  // namespace

std::optional<std::string> get_string(const json& input, const char* key) {
    const json* v = field(input, key);
    if (!v) return std::nullopt;
    if (!v->is_string()) throw ToolError(std::string("'") + key + "' must be a string");
    return v->get<std::string>();
}

std::optional<bool> get_bool(const json& input, const char* key) {
    const json* v = field(input, key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) throw ToolError(std::string("'") + key + "' must be true or false");
    return v->get<bool>();
}

std::optional<double> get_number(const json& input, const char* key) {
    const json* v = field(input, key);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw ToolError(std::string("'") + key + "' must be a number");
    return v->get<double>();
}

std::optional<long long> get_integer(const json& input, const char* key) {
    const json* v = field(input, key);
    if (!v) return std::nullopt;
    if (v->is_number_integer()) return v->get<long long>();
    if (v->is_number_float()) {
        double d = v->get<double>();
        if (std::floor(d) == d && std::abs(d) < 9e15) return static_cast<long long>(d);
    }
    throw ToolError(std::string("'") + key + "' must be an integer");
}

std::string require_string(const json& input, const char* key, const std::string& what_for) {
    auto v = get_string(input, key);
    if (!v) throw ToolError(std::string("'") + key + "' is required " + what_for);
    return *v;
}

void UnlockGate::check(const json& input, const std::string& readme) const {
    if (!required) return;
    auto given = input.find("tool_unlock_token");
    if (given != input.end() && given->is_string() && *given == token) return;
    throw ToolError("This tool needs its tool_unlock_token (--require-unlock-token is on). Read its documentation "
                    "below, then call again with \"tool_unlock_token\": \"" + token + "\".\n\n" + readme);
}

}  // namespace pymcp::tools
