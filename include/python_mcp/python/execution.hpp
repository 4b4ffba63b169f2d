#pragma once
// One run of user code: its output buffers, its interrupt state, its nested-call log, the cell's
// result as the runtime reports it, and the ExecutionHost that the code's output, progress and
// tool calls go to. Shared (shared_ptr) by the engine's job, by Python (the runtime's ContextVar
// holds it, so threads the code started still find it) and by the interrupter.
//
// Output: while the run lasts, each write goes to its bounded buffer and to the host (live
// output); once close_output() ran, writes of threads that outlive the run go to the session's
// BackgroundOutputStore (read_output), or to the log when that is full.
//
// Thread-safe: buffers, the store, the call log and the rich content (display) have their own locks (leaf locks, taken one
// at a time); the interrupt state is atomic plus a CancellationSource; the cell result is written
// by the running thread only, and read by it after the run. sleep() blocks without the GIL (the
// binding releases it). The deadline pause has its own leaf lock; its resume hook runs without
// it. Host calls are made without any of these locks. Nothing throws except
// std::bad_alloc.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "python_mcp/engine/engine.hpp"
#include "python_mcp/engine/execution_host.hpp"
#include "python_mcp/python/background_output.hpp"
#include "python_mcp/python/output_buffer.hpp"
#include "python_mcp/support/cancellation.hpp"

namespace pymcp::python {

// What the runtime reports about one cell, filled through the Execution's bound set_* methods
// (pymcp_runtime.run) and read once by the engine: no positional tuple, no status strings.
struct CellResult {
    enum class Status { None, Ok, Error, Interrupted };
    Status status = Status::None;   // None: the runtime never reported (it failed itself)
    std::optional<std::string> value;  // repr of the trailing expression, when not None
    std::optional<engine::ExecError> error;
};

class Execution {
public:
    enum class Interrupt { None, Timeout, Cancelled, Shutdown };

    // `host` must not be null. `background` may be (late output then goes to the log).
    Execution(std::string session_id, bool persistent, size_t max_output, std::shared_ptr<engine::ExecutionHost> host,
              std::shared_ptr<BackgroundOutputStore> background);

    const std::string& session_id() const { return session_id_; }
    bool persistent() const { return persistent_; }
    // The session name nested calls report as their caller: the session for persistent runs; a
    // name no session can have for fresh-namespace runs, which block no session.
    const std::string& caller_session() const { return caller_session_; }

    // run_script: sys.argv for the script (its path, then its args); empty for execute. Set
    // before the run starts, read only by it.
    void set_argv(std::vector<std::string> argv) { argv_ = std::move(argv); }
    const std::vector<std::string>& argv() const { return argv_; }

    OutputBuffer& out() { return out_; }
    OutputBuffer& err() { return err_; }
    // Text the code wrote (0 stdout, 1 stderr). False when nobody takes it (the caller logs it).
    bool write(int stream, std::string_view text);
    engine::ExecutionHost& host() const { return *host_; }

    // The runtime's report of the cell (running thread only).
    void set_ok(std::optional<std::string> value);
    void set_error(engine::ExecError error, bool interrupted);
    const CellResult& cell_result() const { return cell_; }

    // Rich content (figures, display()): images within the budget set before the run, text cut
    // to max_output each and at most kMaxDisplayTexts; the rest is counted as dropped. Any
    // thread of the run may add (display() from a worker thread).
    static constexpr size_t kMaxDisplayTexts = 50;
    void set_image_budget(size_t max_images, size_t max_bytes) {
        max_images_ = max_images;
        max_image_bytes_ = max_bytes;
    }
    // False when the item was dropped (over the budget).
    bool add_display(engine::ContentItem item);
    // Decoded bytes an image may still have without being dropped.
    size_t image_bytes_left() const;
    // Moves the kept items and the drop counts into `outcome`.
    void take_display(engine::ExecOutcome& outcome);

    // The first reason wins; wakes sleep() at once.
    void interrupt(Interrupt why);
    bool interrupted() const { return interrupt_.load() != Interrupt::None; }
    Interrupt interrupt_kind() const { return interrupt_.load(); }
    std::string interrupt_reason() const;
    const CancellationToken& token() const { return token_; }

    // True while the cell's own code runs, as opposed to the runtime around it (compiling, then
    // formatting the result or the error). The interrupter posts ExecutionInterrupted only while
    // this is set: an exception landing in the runtime's error handling (which may import
    // traceback) could leave an import lock held forever.
    void set_in_user_code(bool on) { in_user_code_.store(on); }
    bool in_user_code() const { return in_user_code_.load(); }

    // The time-out pauses while the code waits for the client's answer (input(), mcp.ask,
    // mcp.sample: a person answers): begin_pause()/end_pause() around each wait, from any thread
    // of the run, nested or overlapping (counted). paused_for() is the paused time so far, the
    // running pause included. The engine's deadline asks postpone(): when a pause is running it
    // answers "wait for the resume" (time_point::max) and end_pause() calls the resume hook once,
    // without a lock held, so the engine re-arms its deadline then.
    using Clock = std::chrono::steady_clock;
    void begin_pause();
    void end_pause();
    Clock::duration paused_for() const;
    // When the time-out given `due` (its unpaused due time) really falls: later by the pauses,
    // time_point::max while paused, or nullopt when it has passed.
    std::optional<Clock::time_point> postpone(Clock::time_point due);
    void set_resume_hook(std::function<void()> hook);

    // Waits `seconds` or until interrupted; returns true when interrupted.
    bool sleep(double seconds) const;

    // The first kLoggedCalls calls are kept one by one, later ones only counted per tool: a loop
    // of a million mcp.calls must neither grow memory nor flood the response (and the model's
    // context) with a million identical records. Every part is bounded: a tool name longer than
    // kMaxToolNameBytes is cut (with a marker saying how much), and past kMaxTallies distinct
    // tools the rest are counted together under kOtherTools, so 20 calls naming a 1 MB tool, or
    // a million calls naming a million tools, still make a small record.
    static constexpr size_t kLoggedCalls = 20;
    static constexpr size_t kMaxToolNameBytes = 200;
    static constexpr size_t kMaxTallies = 20;
    static constexpr const char* kOtherTools = "(other tools)";
    // `name` cut to kMaxToolNameBytes on a UTF-8 boundary, with "... [N more bytes]" when cut.
    static std::string bounded_tool_name(const std::string& name);
    void record_call(engine::NestedCallRecord record);
    std::vector<engine::NestedCallRecord> take_calls();
    std::vector<engine::NestedCallTally> take_omitted_calls();

    // After the run: later writes (threads that outlive it) go to the log.
    void close_output();

private:
    const std::string session_id_;
    const bool persistent_;
    const std::string caller_session_;
    std::vector<std::string> argv_;
    const size_t max_output_;
    OutputBuffer out_;
    OutputBuffer err_;
    const std::shared_ptr<engine::ExecutionHost> host_;
    const std::shared_ptr<BackgroundOutputStore> background_;
    CellResult cell_;
    CancellationSource cancel_;
    CancellationToken token_;
    std::atomic<Interrupt> interrupt_{Interrupt::None};
    std::atomic<bool> in_user_code_{false};
    size_t max_images_ = 8;
    size_t max_image_bytes_ = 2 * 1024 * 1024;
    mutable std::mutex display_mutex_;  // leaf lock
    std::vector<engine::ContentItem> display_;  // GUARDED_BY(display_mutex_)
    size_t images_kept_ = 0, image_bytes_kept_ = 0, images_dropped_ = 0, image_bytes_dropped_ = 0,
           texts_kept_ = 0, texts_dropped_ = 0;  // GUARDED_BY(display_mutex_)
    mutable std::mutex pause_mutex_;  // leaf lock
    int pauses_ = 0;                             // GUARDED_BY(pause_mutex_)
    Clock::time_point pause_began_;              // GUARDED_BY(pause_mutex_)
    Clock::duration paused_{};                   // GUARDED_BY(pause_mutex_): finished pauses
    bool deadline_waits_ = false;                // GUARDED_BY(pause_mutex_): postpone() said "max"
    std::function<void()> resume_hook_;          // GUARDED_BY(pause_mutex_)
    std::mutex calls_mutex_;
    std::vector<engine::NestedCallRecord> calls_;    // GUARDED_BY(calls_mutex_)
    std::vector<engine::NestedCallTally> omitted_;   // GUARDED_BY(calls_mutex_); <= kMaxTallies + 1, first-call order
};

}  // namespace pymcp::python
