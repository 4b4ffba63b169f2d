#include "python_mcp/python/background_output.hpp"

namespace pymcp::python {

bool BackgroundOutputStore::write(const std::string& session, size_t limit, int stream, std::string_view text) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(session);
    if (it == entries_.end()) {
        if (entries_.size() >= kMaxNames) return false;
        it = entries_.emplace(session, std::make_unique<Entry>(limit)).first;
    }
    return (stream == 0 ? it->second->out : it->second->err).write(text);
}

std::optional<engine::BackgroundOutput> BackgroundOutputStore::take(const std::string& session) {
    std::unique_ptr<Entry> entry;
    {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(session);
        if (it == entries_.end()) return std::nullopt;
        entry = std::move(it->second);
        entries_.erase(it);
    }
    return engine::BackgroundOutput{entry->out.snapshot(), entry->err.snapshot()};
}

size_t BackgroundOutputStore::pending(const std::string& session) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(session);
    return it == entries_.end() ? 0 : it->second->out.total_bytes() + it->second->err.total_bytes();
}

std::vector<std::pair<std::string, size_t>> BackgroundOutputStore::pending_all() const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<std::string, size_t>> out;
    for (const auto& [name, entry] : entries_)
        out.emplace_back(name, entry->out.total_bytes() + entry->err.total_bytes());
    return out;
}

}  // namespace pymcp::python
