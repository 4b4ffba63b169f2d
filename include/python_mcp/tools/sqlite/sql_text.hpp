#pragma once
// Reading SQL text without parsing it (where the next statement starts, its first keyword) and
// quoting user text in error messages.

#include <cstddef>
#include <string>
#include <string_view>

namespace pymcp::tools::sqlite {

// Skips blanks, comments and stray ';': what follows is the next statement, if any.
const char* skip_blank(const char* p, const char* end);

// True when [p, end) starts with `keyword` (upper case) as a whole word, in any case.
bool starts_with_keyword(const char* p, const char* end, std::string_view keyword);

// A statement as quoted in error messages: blanks collapsed, cut at a character boundary.
std::string snippet(std::string_view sql, std::size_t limit = 160);

// A user-given name as quoted in messages: control characters (a NUL would end what()) as \xNN.
std::string printable(std::string_view s);

}  // namespace pymcp::tools::sqlite
