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
    try {
        return parse_json(line, limits.max_depth);
    } catch (const JsonSyntaxError& e) {
        throw RpcError(kParseError, std::string("Parse error: ") + e.what());
    }
}

std::string serialize(const json& message) {
    std::string out;
    out.reserve(256);
    append_json(out, message);
    return out;
}

}  // namespace pymcp::jsonrpc
