#include "python_mcp/tools/job_store.hpp"

#include <algorithm>
#include <charconv>

#include "python_mcp/mcp/tool_registry.hpp"

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
        ended_wall_ = std::chrono::system_clock::now();
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

std::chrono::system_clock::time_point Job::updated_wall() const {
    std::lock_guard lock(mutex_);
    return state_ == JobState::Running ? created_wall_ : ended_wall_;
}

bool Job::expired(std::chrono::system_clock::time_point now) const {
    return task_ttl_ && done() && now - created_wall_ >= *task_ttl_;
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

// Plain jobs: the oldest finished ones past the history. Tasks: finished ones past their ttl,
// then the oldest finished ones past kMaxFinishedTasks.
void JobStore::prune_locked() {
    const auto now = std::chrono::system_clock::now();
    std::erase_if(jobs_, [&](const auto& entry) { return entry.second->expired(now); });
    size_t finished = 0, finished_tasks = 0;
    for (const auto& [_, job] : jobs_)
        if (job->done()) ++(job->is_task() ? finished_tasks : finished);
    for (auto it = jobs_.begin(); it != jobs_.end() && (finished > history_ || finished_tasks > kMaxFinishedTasks);) {
        const bool task = it->second->is_task();
        size_t& count = task ? finished_tasks : finished;
        if (it->second->done() && count > (task ? kMaxFinishedTasks : history_)) {
            it = jobs_.erase(it);
            --count;
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

std::vector<std::shared_ptr<Job>> JobStore::tasks_after(uint64_t after, size_t limit) const {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Job>> page;
    for (const auto& [_, job] : jobs_)
        if (job->is_task() && job_number(job->id()) > after && page.size() < limit) page.push_back(job);
    return page;
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

// ================================================================================================
// Tasks over jobs (2025-11-25 tasks utility)
// ================================================================================================

uint64_t job_number(const std::string& id) {
    if (id.rfind("job-", 0) != 0) return 0;
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(id.data() + 4, id.data() + id.size(), n);
    return ec == std::errc() && end == id.data() + id.size() ? n : 0;
}

namespace {

const char* task_status_of(JobState state) {
    switch (state) {
        case JobState::Running: return "working";
        case JobState::Succeeded: return "completed";
        case JobState::Cancelled: return "cancelled";
        case JobState::Failed:
        case JobState::TimedOut: return "failed";
    }
    return "failed";
}

std::string bounded_line(std::string text) {
    text = text.substr(0, text.find('\n'));
    if (text.size() > 300) text = text.substr(0, char_start(text, 297)) + "...";
    return text;
}

// What a finished task's statusMessage says of its result: the error (an execution's
// structuredContent.error: "Type: message"), else the text's first line, bounded.
std::string result_summary(const pymcp::json& result) {
    if (!result.is_object()) return {};
    auto sc = result.find("structuredContent");
    if (sc != result.end() && sc->is_object() && sc->contains("error") && (*sc)["error"].is_object()) {
        const pymcp::json& e = (*sc)["error"];
        std::string type = e.value("type", ""), message = e.value("message", "");
        return bounded_line(type + (message.empty() ? "" : ": " + message));
    }
    if (!result.contains("content") || !result["content"].is_array()) return {};
    for (const auto& block : result["content"])
        if (block.is_object() && block.value("type", "") == "text" && block.contains("text") && block["text"].is_string())
            return bounded_line(block["text"].get<std::string>());
    return {};
}

}  // namespace

mcp::TaskInfo task_info(const Job& job, std::chrono::milliseconds poll_interval) {
    mcp::TaskInfo info;
    info.id = job.id();
    const JobState state = job.state();
    info.status = task_status_of(state);
    info.created_at = job.created_wall();
    info.updated_at = job.updated_wall();
    info.ttl = job.task_ttl();
    if (state == JobState::Running) {
        info.poll_interval = poll_interval;
        info.status_message = "running in session '" + job.session_id() + "' (job " + job.id() + "), " +
                              std::to_string(job.output_bytes()) + " bytes of output so far";
    } else {
        std::string line = result_summary(job.result().value_or(nullptr));
        info.status_message = std::string(job_state_name(state)) + (line.empty() ? "" : ": " + line);
    }
    return info;
}

std::shared_ptr<Job> JobTasks::find_task(const std::string& id) const {
    jobs_->prune();  // expired tasks go first, so an expired id is not found
    auto job = jobs_->find(id);
    if (!job) throw mcp::TaskError("Failed to retrieve task: Task not found ('" + id + "' is unknown or has expired)");
    if (!job->is_task())
        throw mcp::TaskError("Failed to retrieve task: '" + id + "' is a job started without the tasks utility, not a "
                             "task; the python tool's job_status and wait_job follow it");
    return job;
}

mcp::TaskInfo JobTasks::get(const std::string& id) { return task_info(*find_task(id), poll_interval_); }

// Cursors are "after:<job number>": ids only grow, so a page boundary survives pruning.
mcp::TaskPage JobTasks::list(const std::string& cursor) {
    uint64_t after = 0;
    if (!cursor.empty()) {
        after = cursor.rfind("after:", 0) == 0 ? job_number("job-" + cursor.substr(6)) : 0;
        if (after == 0) throw mcp::TaskError("Invalid cursor: '" + cursor + "' was not made by this server");
    }
    jobs_->prune();
    auto page = jobs_->tasks_after(after, page_size_ + 1);
    mcp::TaskPage out;
    for (size_t i = 0; i < page.size() && i < page_size_; ++i) out.tasks.push_back(task_info(*page[i], poll_interval_));
    if (page.size() > page_size_) out.next_cursor = "after:" + std::to_string(job_number(page[page_size_ - 1]->id()));
    return out;
}

// The spec wants the task cancelled before the answer. The engine answers an interrupted
// execution at once; code stuck in a C call cannot be stopped in-process, so after a grace the
// job is ended as cancelled by hand (the code may still hold its session until the call returns).
mcp::TaskInfo JobTasks::cancel(const std::string& id) {
    auto job = find_task(id);
    if (job->done())
        throw mcp::TaskError(std::string("Cannot cancel task: already in terminal status '") +
                             task_status_of(job->state()) + "'");
    job->cancel();
    if (!job->wait_until(Job::Clock::now() + std::chrono::seconds(2)))
        job->finish(JobState::Cancelled,
                    mcp::error_result("Cancelled by tasks/cancel. The code did not stop within 2 s (a long call into C "
                                      "code cannot be interrupted) and may hold session '" + job->session_id() +
                                      "' until it returns.\n" + job->output_head_tail()));
    return task_info(*job, poll_interval_);
}

pymcp::json JobTasks::result(const std::string& id, const CancellationToken& cancel) {
    auto job = find_task(id);
    // In slices, so a cancelled tasks/result stops waiting (the task goes on).
    while (!job->wait_until(Job::Clock::now() + std::chrono::milliseconds(100)))
        if (cancel.cancelled()) throw mcp::TaskError("tasks/result was cancelled");
    return job->result().value_or(mcp::error_result("the task ended without a result"));
}

}  // namespace pymcp::tools
