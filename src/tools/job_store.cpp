#include "python_mcp/tools/job_store.hpp"

#include <algorithm>

namespace pymcp::tools {

namespace {

// Moves `i` back to the start of a UTF-8 character, so a cut never splits one.
size_t char_start(const std::string& text, size_t i) {
    while (i > 0 && i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
    return i;
}

}  // namespace

const char* job_state_name(JobState state) {
    switch (state) {
        case JobState::Running: return "running";
        case JobState::Succeeded: return "succeeded";
        case JobState::Failed: return "failed";
        case JobState::TimedOut: return "timed_out";
        case JobState::Cancelled: return "cancelled";
    }
    return "unknown";
}

Job::Job(std::string id, std::string session_id, bool persistent, size_t limit, CancellationSource cancel)
    : id_(std::move(id)), session_id_(std::move(session_id)), persistent_(persistent), limit_(std::max<size_t>(limit, 64)),
      cancel_(std::move(cancel)) {}

void Job::append(std::string_view text) {
    if (text.empty()) return;
    std::lock_guard lock(mutex_);
    const size_t head_limit = limit_ / 2;
    if (head_.size() < head_limit) head_.append(text.substr(0, head_limit - head_.size()));
    window_.append(text);
    total_ += text.size();
    // Trimmed only when twice the limit, so appending stays amortised O(size of text).
    if (window_.size() > 2 * limit_) window_.erase(0, window_.size() - limit_);
}

JobOutput Job::output_since(size_t offset) const {
    std::lock_guard lock(mutex_);
    JobOutput out;
    out.next_offset = total_;
    if (offset >= total_) return out;
    const size_t window_start = total_ - window_.size();
    size_t from = std::max(offset, window_start);
    size_t at = from - window_start;
    if (from > offset) at = char_start(window_, at);  // cut by the window: start on a character
    out.text = window_.substr(at);
    out.skipped_bytes = (window_start + at) - offset;
    return out;
}

std::string Job::output_head_tail() const {
    std::lock_guard lock(mutex_);
    if (total_ <= limit_ && window_.size() == total_) return window_;
    size_t tail_from = char_start(window_, window_.size() - std::min(window_.size(), limit_ / 2));
    size_t head_end = char_start(head_, head_.size());
    size_t cut = total_ - head_end - (window_.size() - tail_from);
    return head_.substr(0, head_end) + "\n... [" + std::to_string(cut) + " bytes cut] ...\n" + window_.substr(tail_from);
}

size_t Job::output_bytes() const {
    std::lock_guard lock(mutex_);
    return total_;
}

void Job::finish(JobState state, pymcp::json result) {
    {
        std::lock_guard lock(mutex_);
        if (state_ != JobState::Running) return;
        state_ = state == JobState::Running ? JobState::Failed : state;
        result_ = std::move(result);
        ended_ = Clock::now();
    }
    finished_cv_.notify_all();
}

JobState Job::state() const {
    std::lock_guard lock(mutex_);
    return state_;
}

bool Job::done() const { return state() != JobState::Running; }

std::optional<pymcp::json> Job::result() const {
    std::lock_guard lock(mutex_);
    return result_;
}

double Job::elapsed_seconds() const {
    std::lock_guard lock(mutex_);
    auto end = state_ == JobState::Running ? Clock::now() : ended_;
    return std::chrono::duration<double>(end - started_).count();
}

bool Job::wait_until(Clock::time_point deadline) const {
    std::unique_lock lock(mutex_);
    return finished_cv_.wait_until(lock, deadline, [&] { return state_ != JobState::Running; });
}

bool Job::cancel() const {
    if (done()) return false;
    cancel_.cancel("cancelled by cancel_job");
    return true;
}

std::string JobStore::next_id() {
    std::lock_guard lock(mutex_);
    return "job-" + std::to_string(next_++);
}

void JobStore::add(std::shared_ptr<Job> job) {
    std::lock_guard lock(mutex_);
    jobs_.emplace(added_++, std::move(job));
    prune_locked();
}

void JobStore::remove(const std::string& id) {
    std::lock_guard lock(mutex_);
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it)
        if (it->second->id() == id) {
            jobs_.erase(it);
            return;
        }
}

void JobStore::prune() {
    std::lock_guard lock(mutex_);
    prune_locked();
}

void JobStore::prune_locked() {
    size_t finished = 0;
    for (const auto& [_, job] : jobs_) finished += job->done() ? 1 : 0;
    for (auto it = jobs_.begin(); it != jobs_.end() && finished > history_;) {
        if (it->second->done()) {
            it = jobs_.erase(it);
            --finished;
        } else {
            ++it;
        }
    }
}

std::shared_ptr<Job> JobStore::find(const std::string& id) const {
    std::lock_guard lock(mutex_);
    for (const auto& [_, job] : jobs_)
        if (job->id() == id) return job;
    return nullptr;
}

std::vector<std::shared_ptr<Job>> JobStore::list() const {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Job>> all;
    for (const auto& [_, job] : jobs_) all.push_back(job);
    return all;
}

std::vector<std::shared_ptr<Job>> JobStore::running_in(const std::string& session_id) const {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Job>> running;
    for (const auto& [_, job] : jobs_)
        if (job->session_id() == session_id && !job->done()) running.push_back(job);
    return running;
}

std::vector<std::string> JobStore::cancel_session(const std::string& session_id) {
    std::vector<std::string> ids;
    for (const auto& job : running_in(session_id))  // cancel outside the lock: callbacks run here
        if (job->cancel()) ids.push_back(job->id());
    return ids;
}

}  // namespace pymcp::tools
