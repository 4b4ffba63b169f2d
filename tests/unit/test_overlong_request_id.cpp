// A request line over --max-message-bytes is answered with its own id, read from the first
// bytes the line reader keeps (clients write "id" before "params").
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "python_mcp/jsonrpc/line_reader.hpp"
#include "python_mcp/jsonrpc/message.hpp"
#include "python_mcp/mcp/server.hpp"

namespace pymcp::jsonrpc {
namespace {

std::optional<json> id_of(const std::string& text) { return request_id_from_prefix(text); }

TEST(RequestIdFromPrefix, FindsStringAndIntegerIdsBeforeTheBulk) {
    EXPECT_EQ(id_of(R"({"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"x":"aaaa)"), json(42));
    EXPECT_EQ(id_of(R"( { "id" : "req-7" , "params": [1,2,)"), json("req-7"));
    EXPECT_EQ(id_of(R"({"jsonrpc":"2.0","method":"m","id":-3,"params":)"), json(-3));
    // Members before it, nested and with tricky strings, are skipped whole.
    EXPECT_EQ(id_of(R"({"meta":{"id":1,"a":[{"id":2},"}\"]"]},"s":"id\\","id":"outer","params":{)"), json("outer"));
    EXPECT_EQ(id_of(R"({"\u0069d":5,"params":)"), json(5));
    EXPECT_EQ(id_of(R"({"id":"with \"quote\" and \\ slash","p":1)"), json("with \"quote\" and \\ slash"));
}

TEST(RequestIdFromPrefix, GivesNothingWhenTheIdIsMissingCutOrNotAnId) {
    EXPECT_FALSE(id_of(R"({"jsonrpc":"2.0","method":"m","params":{"id":3,"big":"xxxx)"));  // nested only
    EXPECT_FALSE(id_of(R"({"jsonrpc":"2.0","id":12)"));      // the number may go on past the cut
    EXPECT_FALSE(id_of(R"({"jsonrpc":"2.0","id":"abc)"));    // the string is cut
    EXPECT_FALSE(id_of(R"({"id":1.5,"method":"m")"));        // not an id a response can carry
    EXPECT_FALSE(id_of(R"({"id":null,"method":"m")"));
    EXPECT_FALSE(id_of(R"({"id":true,"method":"m")"));
    EXPECT_FALSE(id_of(R"([{"id":1,"method":"m"},)"));       // a batch
    EXPECT_FALSE(id_of(R"(garbage "id":1,)"));
    EXPECT_FALSE(id_of(R"({"a" 1,"id":2,)"));                // malformed before it
    EXPECT_FALSE(id_of(""));
    EXPECT_FALSE(id_of(std::string(100000, '[')));            // deep nesting: no recursion, no id
}

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
        ::close(read_);
    }
    int read_fd() const { return read_; }
    void write_async(std::string data) {
        writer_ = std::thread([this, data = std::move(data)] {
            size_t off = 0;
            while (off < data.size()) {
                ssize_t w = ::write(write_, data.data() + off, std::min<size_t>(data.size() - off, 4096));
                if (w <= 0) break;
                off += static_cast<size_t>(w);
            }
            ::close(write_);
        });
    }

private:
    int read_ = -1, write_ = -1;
    std::thread writer_;
};

TEST(LineReaderPrefix, KeepsTheStartOfEachOverlongLine) {
    const std::string first = R"({"jsonrpc":"2.0","id":"big-1","method":"tools/call","params":{"x":")" +
                              std::string(3 << 20, 'a') + "\"}}";
    const std::string second = R"({"id":2,"method":"m","params":")" + std::string(5000, 'b') + "\"}";
    Pipe p;
    p.write_async(first + "\n" + second + "\n{\"ok\":1}\n");
    LineReader reader(p.read_fd(), 1024);
    std::string line;
    ASSERT_EQ(reader.next(line), LineReader::Status::TooLong);
    // The start of the line: at least the cap's worth (the reader knows the line is too long once
    // it holds more than the cap), at most kPrefixBytes, depending on how the bytes arrived.
    EXPECT_EQ(first.compare(0, reader.overlong_prefix().size(), reader.overlong_prefix()), 0);
    EXPECT_GT(reader.overlong_prefix().size(), 1024u);
    EXPECT_LE(reader.overlong_prefix().size(), LineReader::kPrefixBytes);
    EXPECT_EQ(request_id_from_prefix(reader.overlong_prefix()), json("big-1"));
    ASSERT_EQ(reader.next(line), LineReader::Status::TooLong);  // whole in the buffer at once
    EXPECT_EQ(request_id_from_prefix(reader.overlong_prefix()), json(2));
    ASSERT_EQ(reader.next(line), LineReader::Status::Line);
    EXPECT_EQ(line, "{\"ok\":1}");
}

// The server's answer with that id: test_server.cpp (OverlongLineGetsOneErrorWithItsIdWhenReadable)
// and test_peer.cpp (OversizedRequestIsAnsweredWithItsOwnId).

}  // namespace
}  // namespace pymcp::jsonrpc
