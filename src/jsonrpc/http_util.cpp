#include "python_mcp/jsonrpc/http_util.hpp"

#include <algorithm>
#include <cctype>

namespace pymcp::jsonrpc::http_util {

namespace {


// The host of "host", "host:port", "[v6]" or "[v6]:port"; empty when malformed.
std::string_view host_of(std::string_view authority) {
    if (authority.starts_with('[')) {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return {};
        std::string_view rest = authority.substr(close + 1);
        if (!rest.empty() && !rest.starts_with(':')) return {};
        return authority.substr(0, close + 1);
    }
    auto colon = authority.find(':');
    return authority.substr(0, colon);
}

const pymcp::json* meta_field(const pymcp::json& body, const char* key) {
    if (!body.is_object()) return nullptr;
    auto params = body.find("params");
    if (params == body.end() || !params->is_object()) return nullptr;
    auto meta = params->find("_meta");
    if (meta == params->end() || !meta->is_object()) return nullptr;
    auto field = meta->find(key);
    return field == meta->end() ? nullptr : &*field;
}

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

}  // namespace

bool is_loopback_name(std::string_view host) {
    std::string h = http::lower_ascii(host);
    if (h == "localhost" || h == "::1" || h == "[::1]") return true;
    return h.starts_with("127.") && std::all_of(h.begin(), h.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; });
}

bool loopback_authority(std::string_view authority) {
    std::string_view host = host_of(http::trim_blanks(authority));
    return !host.empty() && is_loopback_name(host);
}

bool loopback_origin(std::string_view origin) {
    origin = http::trim_blanks(origin);
    auto scheme_end = origin.find("://");
    if (scheme_end == std::string_view::npos) return false;
    std::string scheme = http::lower_ascii(origin.substr(0, scheme_end));
    if (scheme != "http" && scheme != "https") return false;
    std::string_view authority = origin.substr(scheme_end + 3);
    if (authority.find('/') != std::string_view::npos || authority.find('@') != std::string_view::npos) return false;
    return loopback_authority(authority);
}

bool bearer_matches(const std::string* authorization, const std::string& token) {
    if (!authorization) return false;
    std::string_view v = http::trim_blanks(*authorization);
    if (v.size() < 7 || http::lower_ascii(v.substr(0, 7)) != "bearer ") return false;
    std::string_view given = http::trim_blanks(v.substr(7));
    // Constant time in the token's content; the length is not a secret worth hiding.
    unsigned char diff = given.size() == token.size() ? 0 : 1;
    for (size_t i = 0; i < token.size(); ++i)
        diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
    return diff == 0;
}

bool media_type_is(std::string_view value, std::string_view type) {
    return http::lower_ascii(http::trim_blanks(value.substr(0, value.find(';')))) == http::lower_ascii(type);
}

bool accepts(std::string_view accept, std::string_view type) {
    std::string wanted = http::lower_ascii(type);
    std::string family = wanted.substr(0, wanted.find('/')) + "/*";
    size_t start = 0;
    while (start <= accept.size()) {
        size_t comma = accept.find(',', start);
        std::string_view item = accept.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        std::string range = http::lower_ascii(http::trim_blanks(item.substr(0, item.find(';'))));
        if (range == wanted || range == family || range == "*/*") return true;
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return false;
}

std::optional<std::string> decode_header_value(std::string_view value) {
    if (!(value.starts_with("=?base64?") && value.ends_with("?=") && value.size() >= 11)) return std::string(value);
    std::string_view data = value.substr(9, value.size() - 11);
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    size_t padding = 0;
    for (char c : data) {
        if (c == '=') {
            ++padding;
            continue;
        }
        int v = base64_value(c);
        if (v < 0 || padding > 0) return std::nullopt;
        buffer = (buffer << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
        }
    }
    if (padding > 2 || (data.size() % 4) != 0) return std::nullopt;
    return out;
}

bool is_modern_post(const http::Request& request, const pymcp::json& body, const std::vector<std::string>& legacy) {
    if (meta_field(body, "io.modelcontextprotocol/protocolVersion")) return true;
    const std::string* version = request.header("mcp-protocol-version");
    return version && std::find(legacy.begin(), legacy.end(), *version) == legacy.end();
}

std::optional<std::string> header_mismatch(const http::Request& request, const pymcp::json& body) {
    if (!body.is_object() || !body.contains("id")) return std::nullopt;  // notifications: no rules
    const std::string* version = request.header("mcp-protocol-version");
    if (!version) return "the MCP-Protocol-Version header is missing";
    const pymcp::json* meta_version = meta_field(body, "io.modelcontextprotocol/protocolVersion");
    if (!meta_version || !meta_version->is_string())
        return "MCP-Protocol-Version header value '" + *version + "' has no match in the body (_meta[\"io.modelcontextprotocol/protocolVersion\"])";
    if (*meta_version != *version)
        return "MCP-Protocol-Version header value '" + *version + "' does not match body value '" +
               meta_version->get<std::string>() + "'";
    const std::string method = body.value("method", "");
    const std::string* method_header = request.header("mcp-method");
    if (!method_header) return "the Mcp-Method header is missing";
    if (*method_header != method)
        return "Mcp-Method header value '" + *method_header + "' does not match body value '" + method + "'";
    const char* name_field = method == "tools/call" || method == "prompts/get" ? "name"
                             : method == "resources/read"                    ? "uri"
                                                                             : nullptr;
    if (!name_field) return std::nullopt;
    const pymcp::json& params = body.value("params", pymcp::json::object());
    if (!params.is_object() || !params.contains(name_field) || !params[name_field].is_string()) return std::nullopt;
    const std::string* name_header = request.header("mcp-name");
    if (!name_header) return "the Mcp-Name header is missing";
    auto decoded = decode_header_value(*name_header);
    if (!decoded) return "the Mcp-Name header holds invalid base64";
    if (*decoded != params[name_field].get<std::string>())
        return "Mcp-Name header value '" + *decoded + "' does not match body value '" +
               params[name_field].get<std::string>() + "'";
    return std::nullopt;
}

int modern_error_status(const std::string& answer) {
    auto parsed = pymcp::json::parse(answer, nullptr, false);
    if (!parsed.is_object() || !parsed.contains("error") || !parsed["error"].is_object()) return 200;
    int code = parsed["error"].value("code", 0);
    if (code == -32020 || code == -32021 || code == -32022) return 400;
    if (code == -32601) return 404;
    return 200;
}

}  // namespace pymcp::jsonrpc::http_util
