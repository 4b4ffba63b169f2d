// JSON-RPC layer: bounded parsing, envelope classification, id keys, wire serialisation and the
// newline-delimited line reader over a real pipe.

#include "python_mcp/jsonrpc/line_reader.hpp"
#include "python_mcp/jsonrpc/message.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace pymcp::jsonrpc {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// parse_message

int parse_error_code(std::string_view line, ParseLimits limits = {}) {
    try {
        parse_message(line, limits);
    } catch (const RpcError& e) {
        return e.code();
    }
    return 0;
}

TEST(ParseMessage, ParsesAValidRequest) {
    json m = parse_message(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":[1,2,{"b":"c"}]}})");
    ASSERT_TRUE(m.is_object());
    EXPECT_EQ(m["jsonrpc"], "2.0");
    EXPECT_EQ(m["id"], 1);
    EXPECT_EQ(m["method"], "ping");
    EXPECT_EQ(m["params"]["a"][2]["b"], "c");
}

TEST(ParseMessage, ParsesUnicodeAndEscapes) {
    json m = parse_message(R"({"s":"caf\u00e9 \"q\" \\ \n","t":"日本語"})");
    EXPECT_EQ(m["s"], "caf\xC3\xA9 \"q\" \\ \n");
    EXPECT_EQ(m["t"], "日本語");
}

TEST(ParseMessage, InvalidJsonIsParseError) {
    for (const char* bad : {"{", "}", "{\"a\":}", "[1,2", "not json", "{\"a\":1,}", "'single'", "{\"a\" 1}",
                            "{\"jsonrpc\":\"2.0\"} trailing"}) {
        SCOPED_TRACE(bad);
        EXPECT_EQ(parse_error_code(bad), kParseError);
    }
}

TEST(ParseMessage, NumberTooLargeForADoubleIsParseError) {
    // Found by the fuzzer (tests/fuzz/corpus/regression-number-overflow): nlohmann throws
    // out_of_range, not parse_error, for these, and it escaped parse_message.
    for (const char* big : {R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":1e400}})", "[-1e400]",
                            "1E999999"}) {
        SCOPED_TRACE(big);
        EXPECT_EQ(parse_error_code(big), kParseError);
    }
    EXPECT_NO_THROW(parse_message("[1e308, 18446744073709551615, -9223372036854775808]"));
}

TEST(ParseMessage, ParseErrorMessageIsReadable) {
    try {
        parse_message("{\"a\":");
        FAIL() << "expected a parse error";
    } catch (const RpcError& e) {
        EXPECT_EQ(e.code(), kParseError);
        EXPECT_THAT(std::string(e.what()), HasSubstr("Parse error"));
        // nlohmann's internal "[json.exception...]" prefix is not shown to clients.
        EXPECT_THAT(std::string(e.what()), ::testing::Not(HasSubstr("json.exception")));
    }
}

TEST(ParseMessage, InvalidUtf8IsParseError) {
    EXPECT_EQ(parse_error_code("{\"a\":\"\xff\xfe\"}"), kParseError);
    EXPECT_EQ(parse_error_code("{\"a\":\"\xc3\"}"), kParseError);            // truncated sequence
    EXPECT_EQ(parse_error_code("{\"a\":\"\xed\xa0\x80\"}"), kParseError);    // UTF-16 surrogate as UTF-8
    EXPECT_EQ(parse_error_code("{\"a\":\"\xc0\xaf\"}"), kParseError);        // overlong '/'
}

std::string nested_arrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(ParseMessage, DepthAtTheLimitIsAccepted) {
    ParseLimits limits;
    limits.max_depth = 128;
    EXPECT_NO_THROW(parse_message(nested_arrays(128), limits));
    std::string objects;
    for (int i = 0; i < 128; ++i) objects += "{\"a\":";
    objects += "1";
    for (int i = 0; i < 128; ++i) objects += "}";
    EXPECT_NO_THROW(parse_message(objects, limits));
}

TEST(ParseMessage, DepthPastTheLimitIsParseError) {
    ParseLimits limits;
    limits.max_depth = 128;
    EXPECT_EQ(parse_error_code(nested_arrays(129), limits), kParseError);
    limits.max_depth = 3;
    EXPECT_EQ(parse_error_code(R"({"a":{"b":[1]}})", limits), 0);
    EXPECT_EQ(parse_error_code(R"({"a":{"b":[[1]]}})", limits), kParseError);
    try {
        parse_message(nested_arrays(10), limits);
        FAIL();
    } catch (const RpcError& e) {
        EXPECT_THAT(std::string(e.what()), HasSubstr("deeper than 3"));
    }
}

TEST(ParseMessage, HundredThousandDeepArraysDoNotCrash) {
    std::string deep = nested_arrays(100000);
    EXPECT_EQ(parse_error_code(deep), kParseError);
    // Unbalanced (no closing brackets at all) as well.
    EXPECT_EQ(parse_error_code(std::string(100000, '[')), kParseError);
    // And mixed objects.
    std::string objects;
    for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
    EXPECT_EQ(parse_error_code(objects), kParseError);
}

TEST(ParseMessage, BracketsInsideStringsAreNotCounted) {
    ParseLimits limits;
    limits.max_depth = 2;
    std::string brackets(500, '[');
    json m = parse_message("{\"a\":\"" + brackets + "\",\"b\":\"" + std::string(500, '{') + "\"}", limits);
    EXPECT_EQ(m["a"], brackets);
    // An escaped quote does not end the string early.
    json e = parse_message(R"({"a":"x\"[[[[[[[[\\"})", limits);
    EXPECT_EQ(e["a"], "x\"[[[[[[[[\\");
    // Closing brackets inside strings do not lower the depth either.
    EXPECT_EQ(parse_error_code(R"([[["]]]]]]]]",[1]]])", limits), kParseError);
    // An escaped backslash right before the closing quote ends the string.
    EXPECT_EQ(parse_error_code(R"({"a":"\\","b":[[[1]]]})", limits), kParseError);
    EXPECT_EQ(parse_error_code(R"({"a":"\\","b":[1]})", limits), 0);
}

// ---------------------------------------------------------------------------------------------
// classify

Kind kind_of(const std::string& text) { return classify(json::parse(text)).kind; }

TEST(Classify, RequestsNotificationsResponses) {
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","id":1,"method":"ping"})"), Kind::Request);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","id":"abc","method":"ping","params":{}})"), Kind::Request);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","id":0,"method":"m","params":[1,2]})"), Kind::Request);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","id":-5,"method":"m"})"), Kind::Request);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","id":18446744073709551615,"method":"m"})"), Kind::Request);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","id":"","method":"m"})"), Kind::Request);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","method":"notifications/initialized"})"), Kind::Notification);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","method":"n","params":{"x":1}})"), Kind::Notification);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","id":1,"result":{}})"), Kind::Response);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","id":"x","result":null})"), Kind::Response);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}})"), Kind::Response);
    EXPECT_EQ(kind_of(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"m"}})"), Kind::Response);
}

TEST(Classify, RequestIdsOfEveryOtherJsonTypeAreInvalid) {
    for (const char* id : {"null", "1.5", "1.0", "-0.5", "1e3", "true", "false", "{}", "{\"a\":1}", "[]", "[1]"}) {
        SCOPED_TRACE(id);
        auto c = classify(json::parse(std::string(R"({"jsonrpc":"2.0","method":"m","id":)") + id + "}"));
        EXPECT_EQ(c.kind, Kind::Invalid);
        EXPECT_THAT(c.problem, HasSubstr("id"));
    }
}

TEST(Classify, EnvelopeProblemsAreInvalidWithAReason) {
    struct Case {
        const char* text;
        const char* problem_mentions;
    };
    const Case cases[] = {
        {R"([])", "object"},
        {R"("str")", "object"},
        {R"(1)", "object"},
        {R"(null)", "object"},
        {R"({"id":1,"method":"m"})", "jsonrpc"},
        {R"({"jsonrpc":"1.0","id":1,"method":"m"})", "jsonrpc"},
        {R"({"jsonrpc":2.0,"id":1,"method":"m"})", "jsonrpc"},
        {R"({"jsonrpc":null,"id":1,"method":"m"})", "jsonrpc"},
        {R"({"jsonrpc":"2.0","id":1,"method":1})", "method"},
        {R"({"jsonrpc":"2.0","id":1,"method":null})", "method"},
        {R"({"jsonrpc":"2.0","id":1,"method":["m"]})", "method"},
        {R"({"jsonrpc":"2.0","method":true})", "method"},
        {R"({"jsonrpc":"2.0","id":1,"method":"m","params":"x"})", "params"},
        {R"({"jsonrpc":"2.0","id":1,"method":"m","params":1})", "params"},
        {R"({"jsonrpc":"2.0","id":1,"method":"m","params":null})", "params"},
        {R"({"jsonrpc":"2.0","id":1,"method":"m","params":true})", "params"},
        {R"({"jsonrpc":"2.0","method":"n","params":"x"})", "params"},
        {R"({"jsonrpc":"2.0","id":1})", "method"},
        {R"({"jsonrpc":"2.0"})", "method"},
        {R"({"jsonrpc":"2.0","result":{}})", "method"},  // a response needs an id
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.text);
        auto r = classify(json::parse(c.text));
        EXPECT_EQ(r.kind, Kind::Invalid);
        EXPECT_THAT(r.problem, HasSubstr(c.problem_mentions));
    }
}

TEST(IdKey, DistinguishesTypes) {
    EXPECT_NE(id_key(json(1)), id_key(json("1")));
    EXPECT_EQ(id_key(json(1)), id_key(json::parse("1")));
    EXPECT_EQ(id_key(json("a")), id_key(json::parse("\"a\"")));
    EXPECT_NE(id_key(json("")), id_key(json("\"\"")));
    EXPECT_NE(id_key(json(-1)), id_key(json(1)));
    // Signed and unsigned spellings of the same integer are the same request id.
    EXPECT_EQ(id_key(json::parse("7")), id_key(json(7u)));
    EXPECT_EQ(id_key(json(7)), id_key(json(7u)));
}

TEST(Builders, ResultErrorRequestNotification) {
    EXPECT_EQ(make_result(3, json{{"x", 1}}), json::parse(R"({"jsonrpc":"2.0","id":3,"result":{"x":1}})"));
    EXPECT_EQ(make_error("a", kInvalidParams, "bad"),
              json::parse(R"({"jsonrpc":"2.0","id":"a","error":{"code":-32602,"message":"bad"}})"));
    EXPECT_EQ(make_error(nullptr, kParseError, "p", json{{"d", 1}})["error"]["data"]["d"], 1);
    EXPECT_EQ(make_request(1, "m", nullptr), json::parse(R"({"jsonrpc":"2.0","id":1,"method":"m"})"));
    EXPECT_EQ(make_notification("n", json{{"a", 1}}),
              json::parse(R"({"jsonrpc":"2.0","method":"n","params":{"a":1}})"));
    EXPECT_EQ(classify(make_request(1, "m", json::object())).kind, Kind::Request);
    EXPECT_EQ(classify(make_notification("n", nullptr)).kind, Kind::Notification);
    EXPECT_EQ(classify(make_result(1, nullptr)).kind, Kind::Response);
    EXPECT_EQ(classify(make_error(nullptr, -1, "x")).kind, Kind::Response);
}

// ---------------------------------------------------------------------------------------------
// serialize

TEST(Serialize, OneLineAndInvalidUtf8Replaced) {
    json m{{"text", std::string("a\nb\r\x01") + "\xff\xfe" + "ok"}, {"u", "日本"}};
    std::string line;
    ASSERT_NO_THROW(line = serialize(m));
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(line.find('\r'), std::string::npos);
    // The output is valid JSON again, with U+FFFD where the bad bytes were.
    json back = json::parse(line);
    EXPECT_THAT(back["text"].get<std::string>(), HasSubstr("\xEF\xBF\xBD"));
    EXPECT_THAT(back["text"].get<std::string>(), HasSubstr("ok"));
    EXPECT_EQ(back["u"], "日本");
    EXPECT_EQ(json::parse(serialize(json{{"a", 1}})), json({{"a", 1}}));
}

// ---------------------------------------------------------------------------------------------
// LineReader over a pipe

class Pipe {
public:
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
        read_ = fds[0];
        write_ = fds[1];
    }
    ~Pipe() {
        if (writer_.joinable()) writer_.join();
        close_write();
        if (read_ >= 0) ::close(read_);
    }
    int read_fd() const { return read_; }
    // Writes everything from a thread of its own (pipes hold only 64 KiB), in chunks of `chunk`
    // bytes, then closes the write end when `then_close`.
    void write_async(std::string data, size_t chunk = 1 << 20, bool then_close = true) {
        if (writer_.joinable()) writer_.join();
        writer_ = std::thread([this, data = std::move(data), chunk, then_close] {
            size_t off = 0;
            while (off < data.size()) {
                size_t n = std::min(chunk, data.size() - off);
                ssize_t w = ::write(write_, data.data() + off, n);
                if (w <= 0) break;
                off += static_cast<size_t>(w);
            }
            if (then_close) close_write();
        });
    }
    void close_write() {
        if (write_ >= 0) ::close(write_);
        write_ = -1;
    }

private:
    int read_ = -1;
    int write_ = -1;
    std::thread writer_;
};

struct Item {
    LineReader::Status status;
    std::string line;
};

std::vector<Item> read_all(int fd, size_t max_line) {
    LineReader reader(fd, max_line);
    std::vector<Item> items;
    for (int i = 0; i < 100000; ++i) {
        std::string line;
        auto s = reader.next(line);
        if (s == LineReader::Status::Line) items.push_back({s, line});
        else items.push_back({s, {}});
        if (s == LineReader::Status::Eof || s == LineReader::Status::Error) break;
    }
    return items;
}

using S = LineReader::Status;

TEST(LineReader, ReadsLinesCrLfAndALastLineWithoutNewline) {
    Pipe p;
    p.write_async("first\nsecond\r\n\nthird has \r inside\r\nlast");
    auto items = read_all(p.read_fd(), 1000);
    ASSERT_EQ(items.size(), 6u);
    EXPECT_EQ(items[0].status, S::Line);
    EXPECT_EQ(items[0].line, "first");
    EXPECT_EQ(items[1].line, "second");
    EXPECT_EQ(items[2].status, S::Line);
    EXPECT_EQ(items[2].line, "");
    EXPECT_EQ(items[3].line, "third has \r inside");
    EXPECT_EQ(items[4].status, S::Line);
    EXPECT_EQ(items[4].line, "last");
    EXPECT_EQ(items[5].status, S::Eof);
}

TEST(LineReader, EofOnEmptyInputAndStaysEof) {
    Pipe p;
    p.close_write();
    LineReader reader(p.read_fd(), 100);
    std::string line;
    EXPECT_EQ(reader.next(line), S::Eof);
    EXPECT_EQ(reader.next(line), S::Eof);
}

TEST(LineReader, LastLineWithCrAndNoNewline) {
    Pipe p;
    p.write_async("only\r");
    auto items = read_all(p.read_fd(), 100);
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].status, S::Line);
    EXPECT_EQ(items[0].line, "only");
    EXPECT_EQ(items[1].status, S::Eof);
}

TEST(LineReader, LinesArrivingOneByteAtATime) {
    Pipe p;
    std::string data;
    for (int i = 0; i < 50; ++i) data += "{\"n\":" + std::to_string(i) + "}\n";
    p.write_async(data, 1);
    auto items = read_all(p.read_fd(), 100);
    ASSERT_EQ(items.size(), 51u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(items[i].line, "{\"n\":" + std::to_string(i) + "}");
    EXPECT_EQ(items[50].status, S::Eof);
}

TEST(LineReader, ExactlyTheLimitIsALine) {
    Pipe p;
    p.write_async(std::string(100, 'a') + "\n" + std::string(101, 'b') + "\nok\n");
    auto items = read_all(p.read_fd(), 100);
    ASSERT_EQ(items.size(), 4u);
    EXPECT_EQ(items[0].status, S::Line);
    EXPECT_EQ(items[0].line, std::string(100, 'a'));
    EXPECT_EQ(items[1].status, S::TooLong);
    EXPECT_EQ(items[2].status, S::Line);
    EXPECT_EQ(items[2].line, "ok");
    EXPECT_EQ(items[3].status, S::Eof);
}

TEST(LineReader, OverLongLineReportedOnceAndTheNextLineStillRead) {
    for (size_t big : {size_t(5000), size_t(3) << 20}) {  // within one read, and across many reads
        SCOPED_TRACE(big);
        Pipe p;
        p.write_async("before\n" + std::string(big, 'x') + "\nafter\n" + std::string(big, 'y') + "\nend\n", 4096);
        auto items = read_all(p.read_fd(), 1000);
        ASSERT_EQ(items.size(), 6u);
        EXPECT_EQ(items[0].status, S::Line);
        EXPECT_EQ(items[0].line, "before");
        EXPECT_EQ(items[1].status, S::TooLong);
        EXPECT_EQ(items[2].status, S::Line);
        EXPECT_EQ(items[2].line, "after");
        EXPECT_EQ(items[3].status, S::TooLong);
        EXPECT_EQ(items[4].status, S::Line);
        EXPECT_EQ(items[4].line, "end");
        EXPECT_EQ(items[5].status, S::Eof);
    }
}

TEST(LineReader, OverLongLineInTheSameWriteAsTheNextMessage) {
    Pipe p;
    p.write_async(std::string(300000, 'z') + "\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n");
    auto items = read_all(p.read_fd(), 1000);
    ASSERT_EQ(items.size(), 3u);
    EXPECT_EQ(items[0].status, S::TooLong);
    EXPECT_EQ(items[1].status, S::Line);
    EXPECT_EQ(items[1].line, R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
    EXPECT_EQ(items[2].status, S::Eof);
}

TEST(LineReader, OverLongLastLineWithoutNewline) {
    Pipe p;
    p.write_async("a\n" + std::string(600000, 'q'));
    auto items = read_all(p.read_fd(), 1000);
    ASSERT_EQ(items.size(), 3u);
    EXPECT_EQ(items[0].line, "a");
    EXPECT_EQ(items[1].status, S::TooLong);
    EXPECT_EQ(items[2].status, S::Eof);
}

TEST(LineReader, ManyLinesAcrossChunkBoundaries) {
    Pipe p;
    std::string data;
    std::vector<std::string> expected;
    for (int i = 0; i < 20000; ++i) {
        std::string line = "line-" + std::to_string(i) + std::string(static_cast<size_t>(i % 97), '.');
        expected.push_back(line);
        data += line + ((i % 3 == 0) ? "\r\n" : "\n");
    }
    p.write_async(data, 7777);
    auto items = read_all(p.read_fd(), 200);
    ASSERT_EQ(items.size(), expected.size() + 1);
    for (size_t i = 0; i < expected.size(); ++i) {
        ASSERT_EQ(items[i].status, S::Line) << i;
        ASSERT_EQ(items[i].line, expected[i]) << i;
    }
    EXPECT_EQ(items.back().status, S::Eof);
}

TEST(LineReader, ReadErrorIsError) {
    LineReader reader(-1, 100);  // EBADF
    std::string line;
    EXPECT_EQ(reader.next(line), S::Error);
}

}  // namespace
}  // namespace pymcp::jsonrpc
