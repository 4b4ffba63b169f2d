#include "python_mcp/tools/sqlite/sql_text.hpp"

#include <algorithm>
#include <cctype>

#include "python_mcp/support/json_text.hpp"

namespace pymcp::tools::sqlite {

const char* skip_blank(const char* p, const char* end) {
    while (p < end) {
        unsigned char c = static_cast<unsigned char>(*p);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == ';') {
            ++p;
        } else if (c == '-' && p + 1 < end && p[1] == '-') {
            p = std::find(p + 2, end, '\n');
        } else if (c == '/' && p + 1 < end && p[1] == '*') {
            static constexpr std::string_view kClose = "*/";
            const char* close = std::search(p + 2, end, kClose.begin(), kClose.end());
            p = close == end ? end : close + 2;
        } else {
            break;
        }
    }
    return p;
}

bool starts_with_keyword(const char* p, const char* end, std::string_view keyword) {
    if (std::size_t(end - p) < keyword.size()) return false;
    for (std::size_t i = 0; i < keyword.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(p[i])) != keyword[i]) return false;
    if (p + keyword.size() == end) return true;
    unsigned char next = static_cast<unsigned char>(p[keyword.size()]);
    return !(std::isalnum(next) || next == '_' || next >= 0x80);
}

std::string snippet(std::string_view sql, std::size_t limit) {
    std::string out;
    bool space = false;
    for (char c : sql) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (out.size() >= limit) {
            while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
            if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
            return out + "...";
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    while (!out.empty() && out.back() == ';') out.pop_back();
    return out;
}

std::string printable(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (char c : sanitize_utf8(s)) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u != 0x7F) {
            out += c;
            continue;
        }
        out += "\\x";
        out += hex[u >> 4];
        out += hex[u & 15];
    }
    return out;
}

}  // namespace pymcp::tools::sqlite
