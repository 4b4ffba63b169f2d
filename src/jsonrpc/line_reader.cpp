#include "python_mcp/jsonrpc/line_reader.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pymcp::jsonrpc {

namespace {
constexpr size_t kChunk = 256 * 1024;
}

LineReader::LineReader(int fd, size_t max_line_bytes) : fd_(fd), max_line_(max_line_bytes) {}

bool LineReader::fill() {
    if (start_ > 0 && start_ >= buffer_.size() / 2) {
        buffer_.erase(0, start_);
        start_ = 0;
    }
    size_t old = buffer_.size();
    buffer_.resize(old + kChunk);
    for (;;) {
        ssize_t n = ::read(fd_, buffer_.data() + old, kChunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            buffer_.resize(old);
            if (n == 0) eof_ = true;
            else error_ = true;
            return false;
        }
        buffer_.resize(old + static_cast<size_t>(n));
        return true;
    }
}

LineReader::Status LineReader::next(std::string& line) {
    bool skipping = false;
    for (;;) {
        const char* base = buffer_.data() + start_;
        size_t avail = buffer_.size() - start_;
        const void* nl = scanned_ < avail ? std::memchr(base + scanned_, '\n', avail - scanned_) : nullptr;
        if (nl) {
            size_t len = static_cast<const char*>(nl) - base;
            size_t consumed = len + 1;
            if (skipping || len > max_line_) {
                start_ += consumed;
                scanned_ = 0;
                return Status::TooLong;
            }
            if (len > 0 && base[len - 1] == '\r') --len;
            line.assign(base, len);
            start_ += consumed;
            scanned_ = 0;
            return Status::Line;
        }
        scanned_ = avail;
        if (avail > max_line_) {
            // Drop what we have of the over-long line and keep discarding until its newline.
            skipping = true;
            start_ = buffer_.size();
            scanned_ = 0;
        }
        if (eof_ || error_ || !fill()) {
            avail = buffer_.size() - start_;
            if (skipping) {
                start_ = buffer_.size();
                return Status::TooLong;
            }
            if (avail > 0) {
                line.assign(buffer_.data() + start_, avail);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                start_ = buffer_.size();
                scanned_ = 0;
                return Status::Line;
            }
            return error_ ? Status::Error : Status::Eof;
        }
    }
}

}  // namespace pymcp::jsonrpc
