#include "python_mcp/support/head_tail.hpp"

namespace pymcp {

std::string head_tail(const std::string& text, std::size_t limit) {
    if (text.size() <= limit) return text;
    // A continuation byte (10xxxxxx) is inside a character: step back to its first byte.
    const auto boundary = [&](std::size_t i) {
        while (i > 0 && i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
        return i;
    };
    std::size_t head = boundary(limit / 2);
    std::size_t tail = boundary(text.size() - limit / 2);
    return text.substr(0, head) + "\n... [" + std::to_string(tail - head) + " bytes cut] ...\n" + text.substr(tail);
}

}  // namespace pymcp
