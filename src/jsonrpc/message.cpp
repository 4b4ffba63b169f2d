#include "python_mcp/jsonrpc/message.hpp"

#include <cctype>

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

namespace {


// Reads the top level of a message's text member by member, skipping values without parsing
// them: the text may be cut anywhere (the head of an over-long message) or be unparsable (nested
// deeper than the limit, invalid UTF-8). Stops at the end of the object or the first thing that
// is not JSON; what was read until then counts.
class EnvelopeScanner {
public:
    explicit EnvelopeScanner(std::string_view text) : s_(text) {}

    Envelope scan() {
        Envelope e;
        bool id_seen = false, method = false, answer = false;
        skip_space();
        if (!eat('{')) return e;
        for (;;) {
            skip_space();
            std::string key;
            if (!read_string(&key)) break;
            skip_space();
            if (!eat(':')) break;
            skip_space();
            method = method || key == "method";
            answer = answer || key == "result" || key == "error";
            if (key == "id" && !id_seen) {
                id_seen = true;
                e.id = read_id();
                if (e.id.is_null()) break;
            } else if (!skip_value()) {
                break;
            }
            skip_space();
            if (!eat(',')) break;
        }
        e.answer = answer && !method;
        return e;
    }

private:
    void skip_space() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
    }
    bool eat(char c) {
        if (i_ >= s_.size() || s_[i_] != c) return false;
        ++i_;
        return true;
    }
    // A whole string token; `out`, when given, gets its value (escapes such as "\u0069d" decoded).
    bool read_string(std::string* out) {
        size_t quote = i_;
        if (!eat('"')) return false;
        size_t start = i_;
        bool escaped = false;
        for (; i_ < s_.size(); ++i_) {
            if (s_[i_] == '\\') {
                escaped = true;
                ++i_;
            } else if (s_[i_] == '"') {
                ++i_;
                if (!out) return true;
                if (!escaped) {
                    *out = std::string(s_.substr(start, i_ - 1 - start));
                    return true;
                }
                try {
                    *out = parse_json(s_.substr(quote, i_ - quote), 1).get<std::string>();
                    return true;
                } catch (const std::exception&) {
                    return false;  // a malformed escape: not JSON
                }
            }
        }
        return false;
    }
    json read_id() {
        size_t start = i_;
        if (i_ < s_.size() && s_[i_] == '"') {
            if (!read_string(nullptr)) return nullptr;
        } else {
            while (i_ < s_.size() && (s_[i_] == '-' || (s_[i_] >= '0' && s_[i_] <= '9'))) ++i_;
            // A number cut by the end of the head may be missing digits; 1.5 or 1e3 is no id.
            if (i_ == start || i_ >= s_.size()) return nullptr;
            char next = s_[i_];
            if (next != ',' && next != '}' && next != ' ' && next != '\t' && next != '\r' && next != '\n')
                return nullptr;
        }
        try {
            json id = parse_json(s_.substr(start, i_ - start), 2);
            if (id.is_string() || id.is_number_integer()) return id;
        } catch (const std::exception&) {
        }
        return nullptr;
    }
    // Past one value (a scalar stops before the ',' or '}' after it). Containers by counting
    // brackets outside strings, never by recursion.
    bool skip_value() {
        int depth = 0;
        while (i_ < s_.size()) {
            char c = s_[i_];
            if (c == '"') {
                if (!read_string(nullptr)) return false;
                if (depth == 0) return true;
                continue;
            }
            if (c == '{' || c == '[') ++depth;
            else if (c == '}' || c == ']') {
                if (depth == 0) return true;  // the end of the enclosing object
                --depth;
            } else if (c == ',' && depth == 0) {
                return true;
            }
            ++i_;
            if (depth == 0 && (c == '}' || c == ']')) return true;
        }
        return false;
    }

    std::string_view s_;
    size_t i_ = 0;
};

}  // namespace

Envelope scan_envelope(std::string_view text) { return EnvelopeScanner(text).scan(); }

std::optional<json> request_id_from_prefix(std::string_view prefix) {
    json id = scan_envelope(prefix).id;
    if (id.is_null()) return std::nullopt;
    return id;
}

std::string serialize(const json& message) {
    std::string out;
    out.reserve(256);
    append_json(out, message);
    return out;
}

}  // namespace pymcp::jsonrpc
