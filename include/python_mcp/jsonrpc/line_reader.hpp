#pragma once
// Reads newline-delimited messages from a file descriptor with a cap on line length.
//
// Used by one thread at a time (the protocol reader, or a downstream client's reader). A line
// longer than the cap is skipped up to its newline and reported once as TooLong, so a hostile
// 100 MB line costs no more than the cap in memory; its first bytes (at most kPrefixBytes) are
// kept, so the caller can still find the request's id and answer it. Never throws; I/O errors
// end as Error.

#include <algorithm>
#include <string>
#include <vector>

namespace pymcp::jsonrpc {

class LineReader {
public:
    enum class Status { Line, TooLong, Eof, Error };

    LineReader(int fd, size_t max_line_bytes);

    // Blocks until a whole line (without its "\n" or "\r\n"), a skipped over-long line, EOF or an
    // error. A last line without a newline before EOF is returned as a Line.
    Status next(std::string& line);
    // The first bytes of the line last reported as TooLong.
    const std::string& overlong_prefix() const { return prefix_; }

    static constexpr size_t kPrefixBytes = 64 * 1024;

private:
    bool fill();

    int fd_;
    size_t max_line_;
    // Bytes read are buffer_[0, end_); the rest is room for the next read. Its size only grows:
    // resizing a string before every read zero-filled 256 KiB per message (289k instructions,
    // more than all the rest of answering a small request).
    std::vector<char> buffer_;
    size_t end_ = 0;
    size_t start_ = 0;     // first unread byte in buffer_
    size_t scanned_ = 0;   // bytes from start_ known to hold no newline
    std::string prefix_;   // see overlong_prefix()
    bool eof_ = false;
    bool error_ = false;
};

}  // namespace pymcp::jsonrpc
