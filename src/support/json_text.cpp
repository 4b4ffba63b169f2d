#include "python_mcp/support/json_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>

namespace pymcp {

namespace {
constexpr char kReplacementChar[] = "\xEF\xBF\xBD";
constexpr char kHex[] = "0123456789abcdef";
}  // namespace

std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) {
    unsigned c = p[0];
    std::size_t n;
    std::uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (static_cast<std::size_t>(end - p) < n) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        if ((p[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if (n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return n;
}

std::string sanitize_utf8(const char* s, std::size_t n) {
    std::string out;
    out.reserve(n);
    auto p = reinterpret_cast<const unsigned char*>(s);
    const auto* end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            out += static_cast<char>(*p++);
            continue;
        }
        std::size_t len = utf8_sequence_length(p, end);
        if (len) {
            out.append(reinterpret_cast<const char*>(p), len);
            p += len;
        } else {
            out += kReplacementChar;
            ++p;
        }
    }
    return out;
}

bool append_json_string(std::string& out, const char* s, std::size_t n) {
    auto p = reinterpret_cast<const unsigned char*>(s);
    const auto* end = p + n;
    bool clean = true;
    out += '"';
    while (p < end) {
        const auto* run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') ++p;
        out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
        if (p == end) break;
        unsigned c = *p;
        if (c >= 0x80) {
            std::size_t len = utf8_sequence_length(p, end);
            if (len) {
                out.append(reinterpret_cast<const char*>(p), len);
                p += len;
            } else {
                out += kReplacementChar;
                ++p;
                clean = false;
            }
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                out += "\\u00";
                out += kHex[c >> 4];
                out += kHex[c & 15];
        }
        ++p;
    }
    out += '"';
    return clean;
}

void append_json_integer(std::string& out, long long v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_json_unsigned(std::string& out, unsigned long long v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_json_real(std::string& out, double v) {
    if (!std::isfinite(v)) {
        out += "null";
        return;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
    if (std::none_of(buf, r.ptr, [](char c) { return c == '.' || c == 'e'; })) out += ".0";
}

void append_json(std::string& out, const json& value) {
    switch (value.type()) {
        case json::value_t::null:
        case json::value_t::discarded:
            out += "null";
            return;
        case json::value_t::boolean:
            out += value.get<bool>() ? "true" : "false";
            return;
        case json::value_t::number_integer:
            append_json_integer(out, value.get<json::number_integer_t>());
            return;
        case json::value_t::number_unsigned:
            append_json_unsigned(out, value.get<json::number_unsigned_t>());
            return;
        case json::value_t::number_float:
            append_json_real(out, value.get<json::number_float_t>());
            return;
        case json::value_t::string: {
            const auto& s = value.get_ref<const json::string_t&>();
            append_json_string(out, s.data(), s.size());
            return;
        }
        case json::value_t::array: {
            out += '[';
            bool first = true;
            for (const auto& item : value.get_ref<const json::array_t&>()) {
                if (!first) out += ',';
                first = false;
                append_json(out, item);
            }
            out += ']';
            return;
        }
        case json::value_t::object: {
            out += '{';
            bool first = true;
            for (const auto& [key, item] : value.get_ref<const json::object_t&>()) {
                if (!first) out += ',';
                first = false;
                append_json_string(out, key.data(), key.size());
                out += ':';
                append_json(out, item);
            }
            out += '}';
            return;
        }
        case json::value_t::binary:
            // Never built here (no CBOR/BSON input); dump() writes it as an object like this.
            out += "{\"bytes\":[";
            {
                bool first = true;
                for (auto b : value.get_binary()) {
                    if (!first) out += ',';
                    first = false;
                    append_json_unsigned(out, b);
                }
            }
            out += "],\"subtype\":null}";
            return;
    }
}

}  // namespace pymcp
