#include "python_mcp/python/execution.hpp"

#include <algorithm>
#include <chrono>

namespace pymcp::python {

Execution::Execution(std::string session_id, bool persistent, size_t max_output, const mcp::CallContext& request)
    : session_id_(std::move(session_id)),
      persistent_(persistent),
      caller_session_(persistent ? session_id_ : std::string("\x01transient")),
      out_(max_output),
      err_(max_output),
      request_(request),
      token_(cancel_.token()) {}

void Execution::interrupt(Interrupt why) {
    Interrupt none = Interrupt::None;
    if (interrupt_.compare_exchange_strong(none, why)) cancel_.cancel(interrupt_reason());
}

std::string Execution::interrupt_reason() const {
    switch (interrupt_.load()) {
        case Interrupt::Timeout: return "TimeoutError";
        case Interrupt::Cancelled: return "Cancelled";
        case Interrupt::Shutdown: return "Shutdown";
        case Interrupt::None: break;
    }
    return {};
}

bool Execution::sleep(double seconds) const {
    if (seconds <= 0) return interrupted();
    auto d = std::chrono::duration<double>(seconds);
    if (d > std::chrono::hours(24 * 365)) d = std::chrono::hours(24 * 365);
    return token_.wait_for(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

std::string Execution::bounded_tool_name(const std::string& name) {
    if (name.size() <= kMaxToolNameBytes) return name;
    size_t cut = kMaxToolNameBytes;
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    return name.substr(0, cut) + "... [" + std::to_string(name.size() - cut) + " more bytes]";
}

void Execution::record_call(mcp::NestedCallRecord record) {
    record.tool = bounded_tool_name(record.tool);
    std::lock_guard lock(calls_mutex_);
    if (calls_.size() < kLoggedCalls) {
        calls_.push_back(std::move(record));
        return;
    }
    auto it = std::find_if(omitted_.begin(), omitted_.end(), [&](const auto& t) { return t.tool == record.tool; });
    if (it == omitted_.end() && omitted_.size() >= kMaxTallies)
        it = std::find_if(omitted_.begin(), omitted_.end(), [](const auto& t) { return t.tool == kOtherTools; });
    if (it == omitted_.end())
        it = omitted_.insert(omitted_.end(),
                             mcp::NestedCallTally{omitted_.size() < kMaxTallies ? record.tool : kOtherTools});
    ++it->calls;
    if (record.is_error) ++it->errors;
    it->total_ms += record.duration_ms;
}

std::vector<mcp::NestedCallRecord> Execution::take_calls() {
    std::lock_guard lock(calls_mutex_);
    return std::move(calls_);
}

std::vector<mcp::NestedCallTally> Execution::take_omitted_calls() {
    std::lock_guard lock(calls_mutex_);
    return std::move(omitted_);
}

void Execution::close_output() {
    out_.close();
    err_.close();
}

}  // namespace pymcp::python
