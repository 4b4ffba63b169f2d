#include "python_mcp/jsonrpc/message.hpp"

#include "python_mcp/support/json_text.hpp"

namespace pymcp::jsonrpc {

// Keys appended in ascending order (see append_field): these are built for every message.
json make_result(const json& id, json result) {
    json m(json::value_t::object);
    append_field(m, "id", id);
    append_field(m, "jsonrpc", "2.0");
    append_field(m, "result", std::move(result));
    return m;
}

json make_error(const json& id, int code, const std::string& message, const json& data) {
    json error(json::value_t::object);
    append_field(error, "code", code);
    if (!data.is_null()) append_field(error, "data", data);
    append_field(error, "message", message);
    json m(json::value_t::object);
    append_field(m, "error", std::move(error));
    append_field(m, "id", id);
    append_field(m, "jsonrpc", "2.0");
    return m;
}

json make_request(const json& id, const std::string& method, json params) {
    json m(json::value_t::object);
    append_field(m, "id", id);
    append_field(m, "jsonrpc", "2.0");
    append_field(m, "method", method);
    if (!params.is_null()) append_field(m, "params", std::move(params));
    return m;
}

json make_notification(const std::string& method, json params) {
    json m(json::value_t::object);
    append_field(m, "jsonrpc", "2.0");
    append_field(m, "method", method);
    if (!params.is_null()) append_field(m, "params", std::move(params));
    return m;
}

namespace {

bool valid_id(const json& id) { return id.is_string() || id.is_number_integer(); }

}  // namespace

Classified classify(const json& m) {
    if (!m.is_object()) return {Kind::Invalid, "a JSON-RPC message must be a JSON object"};
    auto version = m.find("jsonrpc");
    if (version == m.end() || *version != "2.0") return {Kind::Invalid, "\"jsonrpc\" must be \"2.0\""};
    auto method = m.find("method");
    auto id = m.find("id");
    if (method != m.end()) {
        if (!method->is_string()) return {Kind::Invalid, "\"method\" must be a string"};
        auto params = m.find("params");
        if (params != m.end() && !params->is_object() && !params->is_array())
            return {Kind::Invalid, "\"params\" must be an object or an array"};
        if (id == m.end()) return {Kind::Notification, {}};
        if (!valid_id(*id)) return {Kind::Invalid, "\"id\" must be a string or an integer"};
        return {Kind::Request, {}};
    }
    if (id != m.end() && (m.contains("result") || m.contains("error"))) return {Kind::Response, {}};
    return {Kind::Invalid, "a request needs a \"method\""};
}

std::string id_key(const json& id) { return id.dump(); }

json parse_message(std::string_view line, const ParseLimits& limits) {
    // Nesting depth first, in one pass that skips strings: nlohmann's parser is iterative but
    // a very deep value would still cost memory and recursion when destroyed or dumped.
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (in_string) {
            if (c == '\\') ++i;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        else if (c == '[' || c == '{') {
            if (++depth > limits.max_depth)
                throw RpcError(kParseError, "Parse error: JSON nested deeper than " +
                                                std::to_string(limits.max_depth) + " levels");
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    try {
        return json::parse(line);
    } catch (const json::exception& e) {
        // parse_error, and out_of_range for a number too large for a double ("1e400", found by
        // the fuzzer): valid JSON grammar, but not a value we can hold, so a parse error too.
        std::string what = e.what();
        // nlohmann's messages start with "[json.exception.parse_error.101] "; keep the useful part.
        if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
        throw RpcError(kParseError, "Parse error: " + what);
    }
}

std::string serialize(const json& message) {
    std::string out;
    out.reserve(256);
    append_json(out, message);
    return out;
}

}  // namespace pymcp::jsonrpc
