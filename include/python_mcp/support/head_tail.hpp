#pragma once
// Text bounded the way results are: past a limit, its head and its tail with a marker between
// that says how much was left out, cut on UTF-8 boundaries. Stateless; throws only bad_alloc.

#include <cstddef>
#include <string>

namespace pymcp {

// `text` itself when it fits in `limit` bytes; else its first and last limit/2 bytes (moved back
// to a character boundary) around "\n... [N bytes cut] ...\n".
std::string head_tail(const std::string& text, std::size_t limit);

}  // namespace pymcp
