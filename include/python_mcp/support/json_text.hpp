#pragma once
// Writing JSON text fast, and the UTF-8 rules it keeps.
//
// append_json() is what goes on the wire (jsonrpc::serialize): nlohmann's dump() decodes every
// byte of every string through a UTF-8 state machine and was the largest single cost of
// answering a small request. Here runs of plain ASCII are copied whole and only bytes >= 0x80
// are checked. Output is compact JSON, object keys in the json's (sorted) order; malformed UTF-8
// becomes U+FFFD, as dump() with error_handler_t::replace does; a float is written in its
// shortest round-trip form and always looks like one ("2.0", not "2"); NaN and infinities, which
// JSON lacks, are null. Stateless functions; nothing throws but std::bad_alloc.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include "python_mcp/support/json.hpp"

namespace pymcp {

// Length of the well-formed UTF-8 sequence starting at p (a byte >= 0x80), 0 when malformed:
// no overlong forms, no surrogates, nothing above U+10FFFF.
std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end);

// `s` with each malformed byte replaced by U+FFFD.
std::string sanitize_utf8(const char* s, std::size_t n);
inline std::string sanitize_utf8(std::string_view s) { return sanitize_utf8(s.data(), s.size()); }

// Appends s as a JSON string literal. Returns false when malformed UTF-8 had to be replaced.
bool append_json_string(std::string& out, const char* s, std::size_t n);
void append_json_integer(std::string& out, long long v);
void append_json_unsigned(std::string& out, unsigned long long v);
void append_json_real(std::string& out, double v);

// Appends `value` as compact JSON text (the rules above).
void append_json(std::string& out, const json& value);

// Malformed JSON text; what() says what and at which byte.
class JsonSyntaxError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Parses one JSON text (RFC 8259, strictly: what nlohmann's parse() accepts, with the same
// values: integers as int64, else uint64, else double; a duplicate key keeps its last value;
// strings must be well-formed UTF-8 with paired surrogate escapes). Nesting deeper than
// `max_depth` arrays/objects is refused before it is built, so hostile input cannot recurse
// far. nlohmann's lexer reads a byte at a time through an adapter and was a fifth of answering
// a small request. Throws JsonSyntaxError; a number beyond a double's range is one too.
json parse_json(std::string_view text, std::size_t max_depth);

}  // namespace pymcp
