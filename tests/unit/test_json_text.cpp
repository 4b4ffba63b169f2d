// The wire serializer (support/json_text.hpp): what it writes must parse back to the same value,
// match nlohmann's dump() wherever dump() is exact, and never emit malformed UTF-8.
#include "python_mcp/support/json_text.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <functional>
#include <optional>
#include <random>

using namespace pymcp;

namespace {
std::string text(const json& v) {
    std::string out;
    append_json(out, v);
    return out;
}
}  // namespace

TEST(JsonTextTest, MatchesDumpForEveryKindOfValueButFloats) {
    json doc = {
        {"null", nullptr},
        {"bools", {true, false}},
        {"ints", {0, -1, 42, std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max()}},
        {"unsigned", std::numeric_limits<unsigned long long>::max()},
        {"empty", {{"array", json::array()}, {"object", json::object()}, {"string", ""}}},
        {"escapes", "quote \" backslash \\ newline \n tab \t cr \r bs \b ff \f nul " + std::string(1, '\0') +
                        " unit \x1f del \x7f slash /"},
        {"unicode", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD"},
        {"nested", {{{"a", {1, {2, {3, {{"deep", "x"}}}}}}}}},
        {"key \"quoted\"\n", 1},
    };
    EXPECT_EQ(text(doc), doc.dump());
}

TEST(JsonTextTest, FloatsRoundTripAndAlwaysLookLikeFloats) {
    for (double v : {0.0, -0.0, 1.0, 2.5, -3.25, 0.1, 1.0 / 3.0, 1e-7, 1e16, 1e300, -1e-300, 123456789012345680000.0,
                     std::numeric_limits<double>::min(), std::numeric_limits<double>::max(),
                     std::numeric_limits<double>::denorm_min()}) {
        std::string t = text(json(v));
        json back = json::parse(t);
        ASSERT_TRUE(back.is_number_float()) << t;
        EXPECT_EQ(back.get<double>(), v) << t;
        EXPECT_EQ(std::signbit(back.get<double>()), std::signbit(v)) << t;
    }
    EXPECT_EQ(text(json(2.0)), "2.0");
    EXPECT_EQ(text(json(0.027)), "0.027");
}

TEST(JsonTextTest, NonFiniteFloatsBecomeNullAsJsonHasNoneOfThem) {
    json doc = {std::nan(""), std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
    EXPECT_EQ(text(doc), "[null,null,null]");
}

TEST(JsonTextTest, MalformedUtf8BecomesReplacementCharacters) {
    // A lone continuation byte, an overlong form, a surrogate, a truncated sequence, above U+10FFFF.
    const std::string bad = std::string("a\x80") + "b\xC0\xAF" + "c\xED\xA0\x80" + "d\xE2\x82" + "e\xF4\x90\x80\x80";
    std::string t = text(json(bad));
    json back = json::parse(t);  // parses: the output is valid UTF-8
    const std::string& s = back.get_ref<const std::string&>();
    const std::string r = "\xEF\xBF\xBD";
    // Each malformed byte is one U+FFFD (dump() folds a truncated sequence into one; both are valid).
    EXPECT_EQ(s, "a" + r + "b" + r + r + "c" + r + r + r + "d" + r + r + "e" + r + r + r + r);
    EXPECT_EQ(sanitize_utf8(bad), s);
    EXPECT_FALSE(append_json_string(t, bad.data(), bad.size()));
    EXPECT_TRUE(append_json_string(t, "caf\xC3\xA9", 5));
}

TEST(JsonTextTest, RandomDocumentsParseBackToThemselves) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> pick(0, 7);
    auto random_string = [&] {
        std::string s;
        int n = rng() % 12;
        for (int i = 0; i < n; ++i) s += static_cast<char>(rng() % 0x7F + 1);
        return s;
    };
    std::function<json(int)> make = [&](int depth) -> json {
        switch (depth > 3 ? pick(rng) % 5 : pick(rng)) {
            case 0: return nullptr;
            case 1: return (rng() & 1) == 1;
            case 2: return static_cast<long long>(rng()) - (1LL << 31);
            case 3: return static_cast<double>(rng()) / 977.0;
            case 4: return random_string();
            case 5: {
                json a = json::array();
                for (int i = rng() % 5; i > 0; --i) a.push_back(make(depth + 1));
                return a;
            }
            default: {
                json o = json::object();
                for (int i = rng() % 5; i > 0; --i) o[random_string()] = make(depth + 1);
                return o;
            }
        }
    };
    for (int i = 0; i < 500; ++i) {
        json doc = make(0);
        EXPECT_EQ(json::parse(text(doc)), doc);
    }
}

// --- reading ------------------------------------------------------------------------------------

namespace {
// nlohmann's verdict on `text`: the value, or nullopt when it refuses it.
std::optional<json> reference(std::string_view text) {
    try {
        return json::parse(text);
    } catch (const json::exception&) {
        return std::nullopt;
    }
}

std::optional<json> ours(std::string_view text, std::size_t depth = 1000) {
    try {
        return parse_json(text, depth);
    } catch (const JsonSyntaxError&) {
        return std::nullopt;
    }
}

void expect_same_verdict(std::string_view text) {
    auto want = reference(text);
    auto got = ours(text);
    ASSERT_EQ(want.has_value(), got.has_value()) << "input: " << json(std::string(text)).dump(-1, ' ', true,
                                                                                            json::error_handler_t::replace);
    if (want) {
        EXPECT_EQ(*got, *want) << text;
        EXPECT_EQ(got->dump(), want->dump()) << text;  // same types too (int, unsigned, float)
    }
}
}  // namespace

TEST(JsonTextTest, ParsesWhatNlohmannParsesToTheSameValues) {
    for (const char* text : {
             "0", "-0", "1", "-1", "0.5", "-0.0", "1e3", "1E+3", "1e-3", "2.5e-400", "-2.5e-400", "1e400", "-1e400",
             "1e309", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
             "18446744073709551615", "18446744073709551616", "123456789012345678901234567890", "0.000001e-320",
             "01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "1.5.2", "--1", "NaN", "Infinity",
             "true", "false", "null", "tru", "nul", "True", "\"\"", "\"a\"", "\"\\u0000\"", "\"\\u00e9\"",
             "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83dx\"", "\"\\ud83d\\u0041\"", "\"\\u12\"",
             "\"\\x41\"", "\"\\/\"", "\"tab\there\"", "\"nl\nhere\"", "\"caf\xC3\xA9\"", "\"\xC3\"", "\"\xFF\"",
             "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"", "\"\xC0\xAF\"", "\"unterminated", "[]", "{}", "[1,]", "[,1]",
             "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "{\"a\":1,\"a\":2}", "{\"b\":1,\"a\":2,\"c\":[{}]}", " \t\r\n[ 1 , 2 ] ",
             "[1] [2]", "[1]x", "", "   ", "[", "]", "{\"a\":", "[[[[]]]]", "\x7F", "[\"\x7F\"]", "1 2",
             "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"python\",\"arguments\":"
             "{\"code\":\"x = 1\\nprint(x)\",\"session_id\":\"s\"}}}",
         })
        expect_same_verdict(text);
}

TEST(JsonTextTest, AgreesWithNlohmannOnRandomAndMangledDocuments) {
    std::mt19937 rng(11);
    const std::string alphabet = "{}[]\",:0123456789-+.eEtrufalsn \\u\n\xC3\xA9\xFF abcxyz/";
    for (int i = 0; i < 4000; ++i) {
        json doc = {{"id", static_cast<int>(rng() % 1000)},
                    {"s", std::string(rng() % 5, 'x') + "\xC3\xA9\"\\\n"},
                    {"n", {static_cast<double>(rng()) / 7.0, -static_cast<long long>(rng()), nullptr, true}},
                    {"o", {{"k", json::array({json::object(), json::array()})}}}};
        std::string text = doc.dump();
        for (int edits = rng() % 4; edits > 0 && !text.empty(); --edits) {
            std::size_t at = rng() % text.size();
            switch (rng() % 3) {
                case 0: text[at] = alphabet[rng() % alphabet.size()]; break;
                case 1: text.erase(at, 1 + rng() % 3); break;
                default: text.insert(at, 1, alphabet[rng() % alphabet.size()]);
            }
        }
        expect_same_verdict(text);
    }
}

TEST(JsonTextTest, RefusesNestingDeeperThanTheLimitBeforeBuildingIt) {
    EXPECT_TRUE(ours("[[[1]]]", 3));
    EXPECT_FALSE(ours("[[[[1]]]]", 3));
    EXPECT_FALSE(ours("{\"a\":{\"b\":{\"c\":{}}}}", 3));
    std::string deep(1'000'000, '[');
    try {
        parse_json(deep, 128);
        FAIL() << "a million '[' parsed";
    } catch (const JsonSyntaxError& e) {
        EXPECT_NE(std::string(e.what()).find("deeper than 128"), std::string::npos) << e.what();
    }
}
