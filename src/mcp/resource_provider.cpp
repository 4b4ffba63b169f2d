#include "python_mcp/mcp/resource_provider.hpp"

#include <cstdint>

namespace pymcp::mcp {

json resource_json(const ResourceInfo& info) {
    json j(json::value_t::object);
    if (!info.description.empty()) append_field(j, "description", info.description);
    append_field(j, "mimeType", info.mime_type);
    append_field(j, "name", info.name);
    append_field(j, "size", info.size);
    if (!info.title.empty()) append_field(j, "title", info.title);
    append_field(j, "uri", info.uri);
    return j;
}

void append_base64(std::string& out, const std::string& data) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    const size_t n = data.size();
    out.reserve(out.size() + (n + 2) / 3 * 4);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = uint32_t(p[i]) << 16 | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
        out += i + 2 < n ? kAlphabet[v & 63] : '=';
    }
}

}  // namespace pymcp::mcp
