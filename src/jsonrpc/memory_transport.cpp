#include "python_mcp/jsonrpc/memory_transport.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>

#include "python_mcp/jsonrpc/message.hpp"

namespace pymcp::jsonrpc {

struct MemoryTransport::Inbox {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::string> texts;  // GUARDED_BY(mutex)
    bool closed = false;            // GUARDED_BY(mutex)

    bool push(std::string text) {
        {
            std::lock_guard lock(mutex);
            if (closed) return false;
            texts.push_back(std::move(text));
        }
        ready.notify_one();
        return true;
    }
    void shut() {
        {
            std::lock_guard lock(mutex);
            closed = true;
        }
        ready.notify_all();
    }
};

std::pair<std::unique_ptr<MemoryTransport>, std::unique_ptr<MemoryTransport>> MemoryTransport::pair(
    size_t max_message_bytes) {
    auto a = std::make_shared<Inbox>();
    auto b = std::make_shared<Inbox>();
    return {std::unique_ptr<MemoryTransport>(new MemoryTransport(a, b, max_message_bytes)),
            std::unique_ptr<MemoryTransport>(new MemoryTransport(b, a, max_message_bytes))};
}

MemoryTransport::MemoryTransport(std::shared_ptr<Inbox> in, std::shared_ptr<Inbox> out, size_t max_message_bytes)
    : in_(std::move(in)), out_(std::move(out)), max_message_bytes_(max_message_bytes) {}

void MemoryTransport::run(MessageHandler& handler) {
    for (;;) {
        std::string text;
        {
            std::unique_lock lock(in_->mutex);
            in_->ready.wait(lock, [&] { return !in_->texts.empty() || in_->closed; });
            if (in_->texts.empty()) return;  // closed and drained
            text = std::move(in_->texts.front());
            in_->texts.pop_front();
        }
        if (max_message_bytes_ > 0 && text.size() > max_message_bytes_)
            handler.on_oversized(std::string_view(text).substr(0, 4096), max_message_bytes_, kMainStream);
        else
            handler.on_text(text, kMainStream);
    }
}

bool MemoryTransport::send(const pymcp::json& message, StreamId) { return out_->push(serialize(message)); }

bool MemoryTransport::send_text(std::string text) { return out_->push(std::move(text)); }

void MemoryTransport::close() {
    in_->shut();
    out_->shut();
}

}  // namespace pymcp::jsonrpc
