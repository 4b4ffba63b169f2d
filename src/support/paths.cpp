#include "python_mcp/support/paths.hpp"

#include <cstdlib>
#include <pwd.h>
#include <unistd.h>

namespace pymcp {

std::filesystem::path default_data_root() {
    const char* xdg = std::getenv("XDG_DATA_HOME");
    if (xdg && *xdg == '/') return std::filesystem::path(xdg) / "python-mcp";
    const char* home = std::getenv("HOME");
    std::string base;
    if (home && *home) {
        base = home;
    } else if (const passwd* pw = ::getpwuid(::getuid())) {
        base = pw->pw_dir;
    } else {
        base = "/tmp";
    }
    return std::filesystem::path(base) / ".local" / "share" / "python-mcp";
}

void ensure_directory(const std::filesystem::path& dir) { std::filesystem::create_directories(dir); }

namespace {

// Decodes one UTF-8 code point at s[i]; returns -1 on malformed input.
long decode_utf8(const std::string& s, size_t& i) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    int extra;
    long cp;
    if (c < 0x80) { ++i; return c; }
    if ((c & 0xE0) == 0xC0) { extra = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { extra = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { extra = 3; cp = c & 0x07; }
    else return -1;
    if (i + extra >= s.size()) return -1;
    for (int k = 1; k <= extra; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    static const long min_for[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    i += extra + 1;
    return cp;
}

bool is_lookalike(long cp) {
    switch (cp) {
        case 0x2215:  // division slash
        case 0x2044:  // fraction slash
        case 0xFF0F:  // fullwidth solidus
        case 0x29F8:  // big solidus
        case 0xFF3C:  // fullwidth reverse solidus
        case 0x2216:  // set minus
        case 0x29F5:  // reverse solidus operator
        case 0xFE68:  // small reverse solidus
        case 0xFF0E:  // fullwidth full stop
        case 0x2024:  // one dot leader
        case 0xFE52:  // small full stop
        case 0x2025:  // two dot leader
        case 0x2026:  // horizontal ellipsis
        case 0x200B: case 0x200C: case 0x200D: case 0x2060: case 0xFEFF:  // invisible characters
        case 0x202A: case 0x202B: case 0x202C: case 0x202D: case 0x202E:  // bidi overrides
            return true;
        default:
            return false;
    }
}

}  // namespace

std::string check_plain_file_name(const std::string& name) {
    if (name.empty()) return "the name is empty";
    if (name.size() > 255) return "the name is longer than 255 bytes";
    if (name[0] == '.') return "the name must not start with '.' (no hidden files, no '..')";
    for (size_t i = 0; i < name.size();) {
        long cp = decode_utf8(name, i);
        if (cp < 0) return "the name is not valid UTF-8";
        if (cp == 0) return "the name contains a NUL byte";
        if (cp < 0x20 || cp == 0x7F) return "the name contains a control character";
        if (cp == '/' || cp == '\\') return "the name must not contain a path separator ('/' or '\\')";
        if (is_lookalike(cp)) return "the name contains a character that looks like '/', '\\' or '.' or is invisible";
    }
    if (name.find("..") != std::string::npos) return "the name must not contain '..'";
    return {};
}

std::string quoted_name(const std::string& name) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < name.size();) {
        if (out.size() >= 120) return out + "...";
        size_t next = i;
        long cp = decode_utf8(name, next);
        if (cp >= 0x20 && cp != 0x7F) {
            out.append(name, i, next - i);
            i = next;
        } else {  // a control character, DEL, or a byte that does not start valid UTF-8
            const auto c = static_cast<unsigned char>(name[i]);
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
            ++i;
        }
    }
    return out;
}

}  // namespace pymcp
