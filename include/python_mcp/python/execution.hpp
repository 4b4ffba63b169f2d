#pragma once
// One run of user code: its output buffers, its interrupt state, its nested-call log and the
// call context that nested mcp.calls derive theirs from. Shared (shared_ptr) by the engine's job,
// by Python (the runtime's ContextVar holds it, so threads the code started still find it) and by
// the interrupter.
//
// Thread-safe: buffers and the call log have their own locks; the interrupt state is atomic plus
// a CancellationSource. sleep() blocks without the GIL (the binding releases it). Nothing throws
// except check_interrupt(), which raises the Python ExecutionInterrupted (via the bridge).

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "python_mcp/mcp/call_context.hpp"
#include "python_mcp/python/output_buffer.hpp"
#include "python_mcp/support/cancellation.hpp"

namespace pymcp::python {

class Execution {
public:
    enum class Interrupt { None, Timeout, Cancelled, Shutdown };

    Execution(std::string session_id, bool persistent, size_t max_output, const mcp::CallContext& request);

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
    bool write(int stream, std::string_view text) { return (stream == 0 ? out_ : err_).write(text); }

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

    // Waits `seconds` or until interrupted; returns true when interrupted.
    bool sleep(double seconds) const;

    mcp::CallContext nested_context() const { return request_.nested(token_, caller_session_); }
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
    void record_call(mcp::NestedCallRecord record);
    std::vector<mcp::NestedCallRecord> take_calls();
    std::vector<mcp::NestedCallTally> take_omitted_calls();

    // After the run: later writes (threads that outlive it) go to the log.
    void close_output();

private:
    const std::string session_id_;
    const bool persistent_;
    const std::string caller_session_;
    std::vector<std::string> argv_;
    OutputBuffer out_;
    OutputBuffer err_;
    mcp::CallContext request_;
    CancellationSource cancel_;
    CancellationToken token_;
    std::atomic<Interrupt> interrupt_{Interrupt::None};
    std::atomic<bool> in_user_code_{false};
    std::mutex calls_mutex_;
    std::vector<mcp::NestedCallRecord> calls_;    // GUARDED_BY(calls_mutex_)
    std::vector<mcp::NestedCallTally> omitted_;   // GUARDED_BY(calls_mutex_); <= kMaxTallies + 1, first-call order
};

}  // namespace pymcp::python
