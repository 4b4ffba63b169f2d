#include "python_mcp/python/output_buffer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

namespace pymcp::python {

namespace {

constexpr size_t kSpoolBuffer = 64 * 1024;

// Writes all of `data` to `fd`; false on an error (EINTR retried).
bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

std::string human_bytes(size_t n) {
    if (n < 10 * 1024) return std::to_string(n) + " bytes";
    if (n < 10 * 1024 * 1024) return std::to_string(n / 1024) + " KiB";
    return std::to_string(n / (1024 * 1024)) + " MiB";
}

}  // namespace

OutputBuffer::~OutputBuffer() {
    if (spool_fd_ >= 0) ::close(spool_fd_);
}

void OutputBuffer::spool_to(std::string path, size_t max_bytes) {
    std::lock_guard lock(mutex_);
    spool_path_ = std::move(path);
    spool_max_ = spool_path_.empty() ? 0 : max_bytes;
}

bool OutputBuffer::begin_spool_locked() {
    spool_fd_ = ::open(spool_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (spool_fd_ < 0) {
        spdlog::warn("output past max_output is not kept: cannot create {}: {}", spool_path_, std::strerror(errno));
        spool_failed_ = true;
        return false;
    }
    // Nothing was cut yet: head and the tail (not yet a ring) are the whole text so far.
    spool_buf_.reserve(kSpoolBuffer);
    spool_buf_ = head_;
    spool_buf_ += tail_.substr(tail_pos_);
    spool_buf_ += tail_.substr(0, tail_pos_);
    spool_bytes_ = spool_buf_.size();
    return true;
}

void OutputBuffer::spool_locked(std::string_view data) {
    if (spool_failed_ || spool_full_) return;
    if (spool_fd_ < 0 && !begin_spool_locked()) return;
    if (spool_bytes_ > spool_max_) {  // a maximum below the limit: the file holds its first bytes
        spool_buf_.resize(spool_max_);
        spool_bytes_ = spool_max_;
    }
    if (spool_bytes_ + data.size() >= spool_max_) {
        data = data.substr(0, spool_max_ - spool_bytes_);
        spool_full_ = true;
    }
    spool_buf_ += data;
    spool_bytes_ += data.size();
    if (spool_buf_.size() >= kSpoolBuffer || spool_full_) flush_spool_locked();
}

void OutputBuffer::flush_spool_locked() const {
    if (spool_fd_ < 0 || spool_buf_.empty()) return;
    if (!write_all(spool_fd_, spool_buf_)) {
        spdlog::warn("output past max_output is not kept: cannot write {}: {}", spool_path_, std::strerror(errno));
        abandon_spool_locked();
        return;
    }
    spool_buf_.clear();
}

void OutputBuffer::abandon_spool_locked() const {
    ::close(spool_fd_);
    spool_fd_ = -1;
    ::unlink(spool_path_.c_str());
    spool_failed_ = true;
    spool_buf_.clear();
    spool_buf_.shrink_to_fit();
}

bool OutputBuffer::write(std::string_view data) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    if (spool_max_ > 0 && (spool_fd_ >= 0 || total_ + data.size() > limit_)) spool_locked(data);
    total_ += data.size();
    const size_t head_cap = limit_ / 2;
    if (head_.size() < head_cap) {
        size_t n = std::min(head_cap - head_.size(), data.size());
        head_.append(data.data(), n);
        data.remove_prefix(n);
    }
    if (data.empty()) return true;
    const size_t tail_cap = limit_ - head_cap;
    if (data.size() >= tail_cap) {
        tail_.assign(data.data() + data.size() - tail_cap, tail_cap);
        tail_pos_ = 0;
        return true;
    }
    if (tail_.size() < tail_cap) {
        size_t n = std::min(tail_cap - tail_.size(), data.size());
        tail_.append(data.data(), n);
        data.remove_prefix(n);
        tail_pos_ = tail_.size() % tail_cap;
    }
    while (!data.empty()) {  // ring: overwrite the oldest bytes
        size_t n = std::min(tail_cap - tail_pos_, data.size());
        tail_.replace(tail_pos_, n, data.data(), n);
        data.remove_prefix(n);
        tail_pos_ = (tail_pos_ + n) % tail_cap;
    }
    return true;
}

void OutputBuffer::close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    flush_spool_locked();
    if (spool_fd_ >= 0) {
        ::close(spool_fd_);
        spool_fd_ = -1;
    }
    spool_buf_.clear();
    spool_buf_.shrink_to_fit();
}

size_t OutputBuffer::total_bytes() const {
    std::lock_guard lock(mutex_);
    return total_;
}

engine::StreamText OutputBuffer::snapshot() const {
    std::lock_guard lock(mutex_);
    engine::StreamText out;
    out.total_bytes = total_;
    std::string tail = tail_.substr(tail_pos_) + tail_.substr(0, tail_pos_);
    size_t kept = head_.size() + tail.size();
    if (kept == total_) {
        out.text = head_ + tail;
        return out;
    }
    // Cut on character boundaries so the text stays valid UTF-8.
    std::string head = head_;
    size_t i = head.size(), trailing = 0;
    while (trailing < 4 && i > 0 && is_continuation(head[i - 1])) --i, ++trailing;
    if (i > 0) {
        auto lead = static_cast<unsigned char>(head[i - 1]);
        size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
        if (need != trailing) head.resize(lead >= 0xC0 ? i - 1 : i);
    }
    size_t skip = 0;
    while (skip < tail.size() && is_continuation(tail[skip])) ++skip;
    tail.erase(0, skip);
    out.cut_bytes = total_ - head.size() - tail.size();
    flush_spool_locked();
    const bool spooled = !spool_failed_ && spool_bytes_ > 0;
    if (spooled) out.spool = engine::SpoolFile{spool_path_, spool_bytes_, spool_bytes_ == total_};
    out.text = head + "\n\n... [" + human_bytes(out.cut_bytes) + " of output cut: kept the first " +
               human_bytes(head.size()) + " and the last " + human_bytes(tail.size()) + " of " +
               human_bytes(total_) +
               (spooled ? "; the whole text is kept: see the [overflow] note below" : "; raise max_output to see more") +
               "] ...\n\n" + tail;
    return out;
}

}  // namespace pymcp::python
