// head_tail(): text past a limit keeps its head and tail, says how much was cut, and never
// splits a UTF-8 character.

#include <gtest/gtest.h>

#include <string>

#include "python_mcp/support/head_tail.hpp"
#include "python_mcp/support/json_text.hpp"

namespace pymcp {
namespace {

TEST(HeadTail, TextWithinTheLimitIsUnchanged) {
    EXPECT_EQ(head_tail("abcdef", 6), "abcdef");
    EXPECT_EQ(head_tail("", 0), "");
}

TEST(HeadTail, LongTextKeepsHeadAndTailAndCountsTheCut) {
    std::string text = std::string(50, 'a') + std::string(100, 'm') + std::string(50, 'z');
    std::string kept = head_tail(text, 100);
    EXPECT_EQ(kept, std::string(50, 'a') + "\n... [100 bytes cut] ...\n" + std::string(50, 'z'));
}

TEST(HeadTail, CutsFallOnCharacterBoundaries) {
    // "é" is two bytes: an odd limit / 2 lands inside one at both ends.
    std::string text;
    for (int i = 0; i < 100; ++i) text += "\xC3\xA9";
    std::string kept = head_tail(text, 51);
    EXPECT_EQ(sanitize_utf8(kept), kept);  // nothing malformed to replace
    EXPECT_NE(kept.find(" bytes cut] "), std::string::npos);
    EXPECT_LE(kept.size(), 51u + 40u);
}

}  // namespace
}  // namespace pymcp
