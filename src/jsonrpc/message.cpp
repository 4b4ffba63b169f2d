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

// A forward scanner over the first bytes of a JSON text. Every step returns false when the
// text is malformed or ends before the token does (a token cut by the prefix's end is unknown).
class PrefixScanner {
public:
    explicit PrefixScanner(std::string_view text) : text_(text) {}

    bool at(char c) {
        skip_space();
        return pos_ < text_.size() && text_[pos_] == c;
    }
    bool take(char c) {
        if (!at(c)) return false;
        ++pos_;
        return true;
    }
    // A whole string token, quotes included.
    bool string_token(std::string_view& token) {
        skip_space();
        size_t start = pos_;
        if (pos_ >= text_.size() || text_[pos_] != '"') return false;
        for (++pos_; pos_ < text_.size(); ++pos_) {
            if (text_[pos_] == '\\') {
                ++pos_;  // the escaped character (the hex digits of a unicode escape are plain characters)
            } else if (text_[pos_] == '"') {
                ++pos_;
                token = text_.substr(start, pos_ - start);
                return true;
            } else if (static_cast<unsigned char>(text_[pos_]) < 0x20) {
                return false;
            }
        }
        return false;
    }
    // Any value, nested ones included, without recursion; `token` is its text.
    bool value(std::string_view& token) {
        skip_space();
        size_t start = pos_;
        size_t depth = 0;
        do {
            skip_space();
            if (pos_ >= text_.size()) return false;
            char c = text_[pos_];
            std::string_view ignored;
            if (c == '"') {
                if (!string_token(ignored)) return false;
            } else if (c == '{' || c == '[') {
                ++depth;
                ++pos_;
            } else if (c == '}' || c == ']') {
                if (depth == 0) return false;
                --depth;
                ++pos_;
            } else if (c == ',' || c == ':') {
                if (depth == 0) return false;
                ++pos_;
            } else if (!scalar()) {
                return false;
            }
        } while (depth > 0);
        token = text_.substr(start, pos_ - start);
        return true;
    }

private:
    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
            ++pos_;
    }
    // A number or literal; it must be followed by something, or it may have been cut short.
    bool scalar() {
        size_t start = pos_;
        while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '-' ||
                                       text_[pos_] == '+' || text_[pos_] == '.'))
            ++pos_;
        return pos_ > start && pos_ < text_.size();
    }

    std::string_view text_;
    size_t pos_ = 0;
};

std::optional<json> parse_token(std::string_view token) {
    try {
        return parse_json(token, 2);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

std::optional<json> request_id_from_prefix(std::string_view prefix) {
    PrefixScanner scan(prefix);
    if (!scan.take('{')) return std::nullopt;
    if (scan.at('}')) return std::nullopt;
    for (;;) {
        std::string_view key_token, value_token;
        if (!scan.string_token(key_token) || !scan.take(':') || !scan.value(value_token)) return std::nullopt;
        // Keys are compared decoded, so an escaped spelling of "id" counts too.
        auto key = parse_token(key_token);
        if (key && key->is_string() && key->get_ref<const std::string&>() == "id") {
            auto id = parse_token(value_token);
            if (id && (id->is_string() || id->is_number_integer())) return id;
            return std::nullopt;  // an id, but not one a response can carry
        }
        if (!scan.take(',')) return std::nullopt;
    }
}

std::string serialize(const json& message) {
    std::string out;
    out.reserve(256);
    append_json(out, message);
    return out;
}

}  // namespace pymcp::jsonrpc
