#pragma once
// Base64 for the sqlite tool's BLOB values ({"$blob": "<base64>"} in arguments and results).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pymcp::tools::sqlite {

// Appends the standard alphabet with '=' padding.
void append_base64(std::string& out, const unsigned char* p, std::size_t n);

// Standard or URL-safe alphabet, padding optional, whitespace ignored; nullopt when `text` is
// not base64.
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace pymcp::tools::sqlite
