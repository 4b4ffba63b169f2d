#include "python_mcp/support/json_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

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

namespace {
// Copies the UTF-8 sequence at p (a byte >= 0x80) and moves past it, or writes U+FFFD for its
// first byte and moves one on; false when it had to replace.
bool copy_utf8_sequence(std::string& out, const unsigned char*& p, const unsigned char* end) {
    std::size_t len = utf8_sequence_length(p, end);
    if (!len) {
        out += kReplacementChar;
        ++p;
        return false;
    }
    out.append(reinterpret_cast<const char*>(p), len);
    p += len;
    return true;
}
}  // namespace

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
        copy_utf8_sequence(out, p, end);
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
            clean = copy_utf8_sequence(out, p, end) && clean;
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

// ---------------------------------------------------------------------------------------------
// Reading

namespace pymcp {

namespace {

class JsonReader {
public:
    JsonReader(std::string_view text, std::size_t max_depth)
        : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth) {}

    json parse() {
        skip_space();
        json v = value(0);
        skip_space();
        if (p_ != end_) fail("unexpected content after the value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw JsonSyntaxError("syntax error at byte " + std::to_string(p_ - begin_) + ": " + what);
    }

    void skip_space() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }

    void expect_word(const char* word, std::size_t n) {
        if (static_cast<std::size_t>(end_ - p_) < n || std::char_traits<char>::compare(p_, word, n) != 0)
            fail("invalid literal");
        p_ += n;
    }

    json value(std::size_t depth) {
        if (p_ == end_) fail("unexpected end of input; expected a value");
        switch (*p_) {
            case '{': return object(depth + 1);
            case '[': return array(depth + 1);
            case '"': {
                ++p_;
                json s(json::value_t::string);
                read_string(s.get_ref<json::string_t&>());
                return s;
            }
            case 't': expect_word("true", 4); return true;
            case 'f': expect_word("false", 5); return false;
            case 'n': expect_word("null", 4); return nullptr;
            default:
                if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) return number();
                fail("unexpected character; expected a value");
        }
    }

    void enter(std::size_t depth) const {
        if (depth > max_depth_) fail("JSON nested deeper than " + std::to_string(max_depth_) + " levels");
    }

    // After '{' or '[': true (and past it) when `close` follows at once.
    bool empty_container(char close) {
        skip_space();
        if (p_ < end_ && *p_ == close) {
            ++p_;
            return true;
        }
        return false;
    }

    // After an element: true past a ',' (another element follows), false past `close`.
    bool another_element(char close) {
        skip_space();
        if (p_ < end_ && *p_ == ',') {
            ++p_;
            skip_space();
            return true;
        }
        if (p_ < end_ && *p_ == close) {
            ++p_;
            return false;
        }
        fail(std::string(p_ == end_ ? "unexpected end of input; " : "") + "expected ',' or '" + close + "'");
    }

    json object(std::size_t depth) {
        enter(depth);
        ++p_;  // {
        json obj(json::value_t::object);
        if (empty_container('}')) return obj;
        auto& fields = obj.get_ref<json::object_t&>();
        do {
            if (p_ == end_ || *p_ != '"') fail("expected a string as object key");
            ++p_;
            std::string key;
            read_string(key);
            skip_space();
            if (p_ == end_ || *p_ != ':') fail("expected ':' after an object key");
            ++p_;
            skip_space();
            // The end first: keys usually come sorted (we wrote them) or few. The last of
            // duplicate keys wins, as with nlohmann.
            fields.insert_or_assign(fields.end(), std::move(key), value(depth));
        } while (another_element('}'));
        return obj;
    }

    json array(std::size_t depth) {
        enter(depth);
        ++p_;  // [
        json arr(json::value_t::array);
        if (empty_container(']')) return arr;
        auto& items = arr.get_ref<json::array_t&>();
        do {
            items.push_back(value(depth));
        } while (another_element(']'));
        return arr;
    }

    unsigned hex4() {
        if (end_ - p_ < 4) fail("incomplete \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = *p_++;
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
            else fail("invalid \\u escape");
        }
        return v;
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    // After the opening quote; leaves p_ after the closing one.
    void read_string(std::string& out) {
        for (;;) {
            const char* run = p_;
            while (p_ < end_) {
                auto c = static_cast<unsigned char>(*p_);
                if (c == '"' || c == '\\' || c < 0x20) break;
                if (c < 0x80) {
                    ++p_;
                    continue;
                }
                std::size_t n = utf8_sequence_length(reinterpret_cast<const unsigned char*>(p_),
                                                     reinterpret_cast<const unsigned char*>(end_));
                if (!n) fail("invalid UTF-8 in a string");
                p_ += n;
            }
            out.append(run, static_cast<std::size_t>(p_ - run));
            if (p_ == end_) fail("unexpected end of input in a string");
            char c = *p_++;
            if (c == '"') return;
            if (c != '\\') fail("control character in a string (must be escaped)");
            if (p_ == end_) fail("unexpected end of input in a string");
            switch (*p_++) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    std::uint32_t cp = hex4();
                    if (cp >= 0xDC00 && cp <= 0xDFFF) fail("a low surrogate \\u escape without a high one before it");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u')
                            fail("a high surrogate \\u escape without a low one after it");
                        p_ += 2;
                        std::uint32_t low = hex4();
                        if (low < 0xDC00 || low > 0xDFFF) fail("a high surrogate \\u escape without a low one after it");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default:
                    --p_;
                    fail("invalid escape in a string");
            }
        }
    }

    json number() {
        const char* start = p_;
        bool integral = true;
        if (*p_ == '-') ++p_;
        if (p_ == end_ || *p_ < '0' || *p_ > '9') fail("invalid number");
        if (*p_ == '0') ++p_;
        else
            while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
        if (p_ < end_ && *p_ == '.') {
            integral = false;
            ++p_;
            if (p_ == end_ || *p_ < '0' || *p_ > '9') fail("invalid number: a digit must follow '.'");
            while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
        }
        if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
            integral = false;
            ++p_;
            if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
            if (p_ == end_ || *p_ < '0' || *p_ > '9') fail("invalid number: a digit must follow the exponent");
            while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
        }
        if (integral) {
            long long i = 0;
            auto r = std::from_chars(start, p_, i);
            if (r.ec == std::errc() && r.ptr == p_) return i;
            if (*start != '-') {
                unsigned long long u = 0;
                auto ru = std::from_chars(start, p_, u);
                if (ru.ec == std::errc() && ru.ptr == p_) return u;
            }
        }
        // from_chars, not strtod: user code may change LC_NUMERIC for the whole process.
        double d = 0;
        auto r = std::from_chars(start, p_, d);
        if (r.ec == std::errc() && r.ptr == p_ && std::isfinite(d)) return d;
        if (r.ptr != p_ && r.ec != std::errc::result_out_of_range) fail("invalid number");
        // Out of range: below the smallest double rounds to zero, as strtod (and nlohmann) do;
        // above the largest is refused.
        if (decimal_magnitude(start, p_) < 0) return *start == '-' ? -0.0 : 0.0;
        fail("number overflow: " + std::string(start, p_) + " does not fit in a double");
    }

    // The power of ten of a number's leading digit (12.5 -> 1, 0.05 -> -2), for a well-formed one.
    static long long decimal_magnitude(const char* p, const char* end) {
        if (*p == '-') ++p;
        long long whole = 0, zeros = 0;
        bool seen_nonzero = false;
        for (; p < end && *p >= '0' && *p <= '9'; ++p) {
            if (seen_nonzero || *p != '0') {
                seen_nonzero = true;
                ++whole;
            }
        }
        if (p < end && *p == '.') {
            for (++p; p < end && *p >= '0' && *p <= '9' && !seen_nonzero; ++p) {
                if (*p == '0') ++zeros;
                else seen_nonzero = true;
            }
        }
        while (p < end && *p >= '0' && *p <= '9') ++p;
        long long exponent = 0;
        if (p < end && (*p == 'e' || *p == 'E')) {
            ++p;
            bool negative = p < end && *p == '-';
            if (p < end && (*p == '+' || *p == '-')) ++p;
            for (; p < end && *p >= '0' && *p <= '9'; ++p)
                if (exponent < 1'000'000'000) exponent = exponent * 10 + (*p - '0');
            if (negative) exponent = -exponent;
        }
        if (!seen_nonzero) return -1;  // zero: never out of range, but treat as small
        return (whole > 0 ? whole - 1 : -(zeros + 1)) + exponent;
    }

    const char* begin_;
    const char* p_;
    const char* end_;
    std::size_t max_depth_;
};

}  // namespace

json parse_json(std::string_view text, std::size_t max_depth) { return JsonReader(text, max_depth).parse(); }

}  // namespace pymcp
