#include "python_mcp/tools/live_output.hpp"

#include <spdlog/spdlog.h>

namespace pymcp::tools {

LiveOutput::LiveOutput(LiveOutputOptions options, DeadlineTimer& timer, Send send)
    : options_(options), timer_(timer), send_(std::move(send)) {}

void LiveOutput::append(std::string_view text) {
    if (text.empty()) return;
    std::lock_guard lock(mutex_);
    if (finished_) return;
    // Keep a few bytes past the limit so bounded_message can cut on a character boundary.
    const size_t keep = options_.max_message + 3;
    size_t take = pending_.size() < keep ? std::min(keep - pending_.size(), text.size()) : 0;
    pending_.append(text.data(), take);
    dropped_ += text.size() - take;
    if (scheduled_) return;
    scheduled_ = true;
    auto when = std::max(DeadlineTimer::Clock::now(), last_sent_ + options_.interval);
    std::weak_ptr<LiveOutput> weak = weak_from_this();
    timer_.schedule(when, [weak] {
        if (auto self = weak.lock()) self->flush();
    });
}

void LiveOutput::flush() {
    std::lock_guard send_lock(send_mutex_);
    send_pending(false);
}

void LiveOutput::finish() {
    std::lock_guard send_lock(send_mutex_);
    send_pending(true);
}

void LiveOutput::send_pending(bool finishing) {
    std::string message;
    {
        std::lock_guard lock(mutex_);
        if (finished_) return;
        if (!finishing) scheduled_ = false;
        finished_ = finishing;
        if (pending_.empty()) return;
        size_t extra = dropped_;
        dropped_ = 0;
        message = bounded_message(std::move(pending_), options_.max_message, extra);
        pending_.clear();
        last_sent_ = DeadlineTimer::Clock::now();
        ++sent_;
    }
    try {
        send_(message);
    } catch (const std::exception& e) {
        spdlog::warn("live output: {}", e.what());
    }
}

size_t LiveOutput::messages_sent() const {
    std::lock_guard lock(mutex_);
    return sent_;
}

std::string LiveOutput::bounded_message(std::string text, size_t limit, size_t extra) {
    if (text.size() <= limit && extra == 0) return text;
    size_t cut = std::min(limit, text.size());
    while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    size_t more = text.size() - cut + extra;
    text.resize(cut);
    if (!text.empty() && text.back() != '\n') text += '\n';
    return text + "\xE2\x80\xA6 " + std::to_string(more) + " more bytes";
}

}  // namespace pymcp::tools
