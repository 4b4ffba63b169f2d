#include "python_mcp/python/execution.hpp"

#include <algorithm>
#include <chrono>

namespace pymcp::python {

Execution::Execution(std::string session_id, bool persistent, size_t max_output,
                     std::shared_ptr<engine::ExecutionHost> host, std::shared_ptr<BackgroundOutputStore> background)
    : session_id_(std::move(session_id)),
      persistent_(persistent),
      caller_session_(persistent ? session_id_ : std::string("\x01transient")),
      max_output_(max_output),
      out_(max_output),
      err_(max_output),
      host_(std::move(host)),
      background_(std::move(background)),
      token_(cancel_.token()) {}

bool Execution::write(int stream, std::string_view text) {
    if ((stream == 0 ? out_ : err_).write(text)) {
        host_->output(stream == 0 ? engine::OutputStream::Stdout : engine::OutputStream::Stderr, text);
        return true;
    }
    // The run has ended: a thread it started is still printing.
    return background_ && background_->write(session_id_, max_output_, stream, text);
}

void Execution::set_ok(std::optional<std::string> value) {
    cell_.status = CellResult::Status::Ok;
    cell_.value = std::move(value);
    cell_.error.reset();
}

void Execution::set_error(engine::ExecError error, bool interrupted) {
    cell_.status = interrupted ? CellResult::Status::Interrupted : CellResult::Status::Error;
    cell_.value.reset();
    cell_.error = std::move(error);
}

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

void Execution::begin_pause() {
    std::lock_guard lock(pause_mutex_);
    if (pauses_++ == 0) pause_began_ = Clock::now();
}

void Execution::end_pause() {
    std::function<void()> hook;
    {
        std::lock_guard lock(pause_mutex_);
        if (pauses_ == 0 || --pauses_ > 0) return;
        paused_ += Clock::now() - pause_began_;
        if (std::exchange(deadline_waits_, false)) hook = resume_hook_;
    }
    if (hook) hook();
}

Execution::Clock::duration Execution::paused_for() const {
    std::lock_guard lock(pause_mutex_);
    return paused_ + (pauses_ > 0 ? Clock::now() - pause_began_ : Clock::duration{});
}

std::optional<Execution::Clock::time_point> Execution::postpone(Clock::time_point due) {
    std::lock_guard lock(pause_mutex_);
    if (pauses_ > 0) {
        deadline_waits_ = true;
        return Clock::time_point::max();
    }
    due += paused_;
    if (due > Clock::now()) return due;
    return std::nullopt;
}

void Execution::set_resume_hook(std::function<void()> hook) {
    std::lock_guard lock(pause_mutex_);
    resume_hook_ = std::move(hook);
}

std::string Execution::bounded_tool_name(const std::string& name) {
    if (name.size() <= kMaxToolNameBytes) return name;
    size_t cut = kMaxToolNameBytes;
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    return name.substr(0, cut) + "... [" + std::to_string(name.size() - cut) + " more bytes]";
}

void Execution::record_call(engine::NestedCallRecord record) {
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
                             engine::NestedCallTally{omitted_.size() < kMaxTallies ? record.tool : kOtherTools});
    ++it->calls;
    if (record.is_error) ++it->errors;
    it->total_ms += record.duration_ms;
}

std::vector<engine::NestedCallRecord> Execution::take_calls() {
    std::lock_guard lock(calls_mutex_);
    return std::move(calls_);
}

std::vector<engine::NestedCallTally> Execution::take_omitted_calls() {
    std::lock_guard lock(calls_mutex_);
    return std::move(omitted_);
}

bool Execution::add_display(engine::ContentItem item) {
    std::lock_guard lock(display_mutex_);
    if (item.kind == engine::ContentItem::Kind::Image) {
        if (images_kept_ >= max_images_ || item.data.size() > max_image_bytes_ - image_bytes_kept_) {
            ++images_dropped_;
            image_bytes_dropped_ += item.data.size();
            return false;
        }
        ++images_kept_;
        image_bytes_kept_ += item.data.size();
    } else {
        if (texts_kept_ >= kMaxDisplayTexts) {
            ++texts_dropped_;
            return false;
        }
        ++texts_kept_;
        // A huge text is cut like output: head and tail, within max_output.
        OutputBuffer text(max_output_);
        text.write(item.data);
        item.data = text.snapshot().text;
    }
    display_.push_back(std::move(item));
    return true;
}

size_t Execution::image_bytes_left() const {
    std::lock_guard lock(display_mutex_);
    return images_kept_ >= max_images_ ? 0 : max_image_bytes_ - image_bytes_kept_;
}

void Execution::take_display(engine::ExecOutcome& outcome) {
    std::lock_guard lock(display_mutex_);
    outcome.display = std::move(display_);
    display_.clear();
    outcome.images_dropped = images_dropped_;
    outcome.image_bytes_dropped = image_bytes_dropped_;
    outcome.texts_dropped = texts_dropped_;
}

void Execution::close_output() {
    out_.close();
    err_.close();
}

}  // namespace pymcp::python
