#include "python_mcp/python/output_buffer.hpp"

namespace pymcp::python {

namespace {

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

std::string human_bytes(size_t n) {
    if (n < 10 * 1024) return std::to_string(n) + " bytes";
    if (n < 10 * 1024 * 1024) return std::to_string(n / 1024) + " KiB";
    return std::to_string(n / (1024 * 1024)) + " MiB";
}

}  // namespace

bool OutputBuffer::write(std::string_view data) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
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
    out.text = head + "\n\n... [" + human_bytes(out.cut_bytes) + " of output cut: kept the first " +
               human_bytes(head.size()) + " and the last " + human_bytes(tail.size()) + " of " +
               human_bytes(total_) + "; raise max_output to see more] ...\n\n" + tail;
    return out;
}

}  // namespace pymcp::python
