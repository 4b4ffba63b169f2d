// libFuzzer target over the whole request path, without Python (issue 7).
//
// One input is a byte stream as a client would write it to the server's stdin. Each run:
//   1. framing: the bytes go through a SOCK_SEQPACKET socket in chunks of input-derived sizes
//      into a real jsonrpc::LineReader (so lines are split across reads), and what it returns is
//      checked against a reference model of the framing rules (lines, CRLF, the length cap,
//      a last line without newline);
//   2. every line is checked on its own: parse_message, classify, and serialize round-trips;
//   3. the lines are fed to a real mcp::Server, in order, the way the reader thread does, with a
//      registry holding the real PythonTool (over FakeEngine, which answers at once with a canned
//      outcome, so the tool's argument validation and result formatting run for real), the real
//      SqliteTool (':memory:' and a private data folder) and the real ScriptStore (a private
//      folder on tmpfs), plus a fake tool that validates its arguments, reports progress and logs,
//      and an unexposed tool;
//   4. server.begin_shutdown() and wait_idle(): every tool call must finish (a hang is a finding);
//   5. invariants over everything the sink received:
//      - every message is one line of valid JSON (invalid UTF-8 from tools was replaced) and a
//        valid JSON-RPC 2.0 message: a response (object, "jsonrpc": "2.0", an id, exactly one of
//        result/error, error {code: integer, message: string}, id null only on errors), a
//        notification from the server, or a non-empty batch of responses;
//      - no request gets more than one answer, nothing is answered that was not asked (counted per
//        id, so ids reused one after another are fine), every request that is not a tools/call
//        gets exactly one answer (a tools/call may be cancelled, by notifications/cancelled or by
//        the shutdown, and then gets none), and a tools/call result is a CallToolResult;
//      - nothing was written outside the private folders (script and database names must not
//        escape them).
// Any violation prints the reason and aborts, so libFuzzer keeps the input as a crash.
//
// Lines that could make SQLite touch files outside the sandbox (ATTACH, VACUUM INTO, an absolute
// or file: database path) are not fed to the server: see docs/hardening.md.

#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "python_mcp/jsonrpc/line_reader.hpp"
#include "python_mcp/jsonrpc/message.hpp"
#include "python_mcp/mcp/server.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/engine/engine.hpp"
#include "python_mcp/tools/python_tool.hpp"
#include "python_mcp/tools/script_store.hpp"
#include "python_mcp/tools/sqlite_tool.hpp"
#include "python_mcp/tools/tool_args.hpp"

namespace fs = std::filesystem;
using pymcp::json;
using namespace pymcp;

namespace {

// The reader's line cap for the fuzz runs: small, so over-long lines are common.
constexpr size_t kMaxLine = 2048;
// How long the tool calls of one input may take to finish after begin_shutdown().
constexpr auto kIdleTimeout = std::chrono::seconds(10);

std::string excerpt(std::string_view s, size_t n = 400) {
    std::string out(s.substr(0, n));
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20) c = '.';
    if (s.size() > n) out += "...";
    return out;
}

[[noreturn]] void violated(const std::string& what, std::string_view detail = {}) {
    std::fprintf(stderr, "\n*** python-mcp fuzz invariant violated: %s\n", what.c_str());
    if (!detail.empty()) std::fprintf(stderr, "*** %s\n", excerpt(detail, 2000).c_str());
    std::fflush(stderr);
    std::abort();
}

// ---------------------------------------------------------------------------------------------
// A fake engine::Engine: answers at once with an outcome derived from the request, so the python
// tool's validation and formatting run for real. Like SessionEngine it refuses a new persistent
// session beyond kMaxSessions (EngineError), calls `done` from its own thread, and a "sleep" in
// the code waits until the call is cancelled (as real code would until interrupted).

class FakeEngine final : public engine::Engine {
public:
    static constexpr size_t kMaxSessions = 3;

    FakeEngine() = default;
    ~FakeEngine() override {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        if (worker_.joinable()) worker_.join();
    }

    // Quick code is answered inside submit(); code that waits ("sleep", "thread") goes to the
    // worker thread, so `done` also comes from another thread, as with SessionEngine.
    void submit(const engine::ExecRequest& request, std::shared_ptr<engine::ExecutionHost>, Completion done) override {
        admit(request);
        if (request.code.find("sleep") == std::string::npos && request.code.find("thread") == std::string::npos) {
            done(outcome(request, request.cancel));
            return;
        }
        {
            std::lock_guard lock(mutex_);
            jobs_.push_back(Job{request, request.cancel, std::move(done)});
            if (!worker_.joinable()) worker_ = std::thread([this] { run(); });
        }
        wake_.notify_one();
    }

    std::optional<size_t> clear_session(const std::string& session_id) override {
        std::lock_guard lock(mutex_);
        auto it = sessions_.find(session_id);
        if (it == sessions_.end()) return std::nullopt;
        size_t freed = it->second;
        sessions_.erase(it);
        return freed;
    }

    std::vector<engine::SessionInfo> list_sessions() override {
        std::lock_guard lock(mutex_);
        std::vector<engine::SessionInfo> out;
        for (const auto& [id, variables] : sessions_) {
            engine::SessionInfo info;
            info.id = id;
            info.variables = variables;
            info.created = info.last_used = std::chrono::system_clock::time_point{};
            info.busy = id.size() % 2 == 1;
            info.executions = variables;
            out.push_back(info);
        }
        return out;
    }

private:
    struct Job {
        engine::ExecRequest request;
        CancellationToken cancel;
        Completion done;
    };

    void admit(const engine::ExecRequest& request) {
        if (!request.persistent) return;
        std::lock_guard lock(mutex_);
        auto it = sessions_.find(request.session_id);
        if (it != sessions_.end()) {
            ++it->second;
            return;
        }
        if (sessions_.size() >= kMaxSessions)
            throw engine::EngineError("too many sessions: " + std::to_string(sessions_.size()) +
                                      " exist (--max-sessions " + std::to_string(kMaxSessions) + ")");
        sessions_.emplace(request.session_id, 1);
    }

    static engine::StreamText keep(const std::string& text, size_t max) {
        engine::StreamText s;
        s.total_bytes = text.size();
        if (text.size() <= max) {
            s.text = text;
            return s;
        }
        // Head and tail cut at byte positions, like OutputBuffer: may split a UTF-8 sequence,
        // so the server must cope with invalid UTF-8 in tool output.
        size_t head = max / 2, tail = max - head;
        s.cut_bytes = text.size() - head - tail;
        s.text = text.substr(0, head) + "\n[... " + std::to_string(s.cut_bytes) + " bytes cut ...]\n" +
                 text.substr(text.size() - tail);
        return s;
    }

    static engine::ExecOutcome outcome(const engine::ExecRequest& r, const CancellationToken& cancel) {
        using Status = engine::ExecOutcome::Status;
        engine::ExecOutcome o;
        o.duration_ms = static_cast<double>(r.code.size()) / 7.0;
        const std::string& code = r.code;
        if (code.find("sleep") != std::string::npos) {
            if (cancel.wait_for(std::chrono::seconds(30))) {
                o.status = Status::Cancelled;
                o.error = engine::ExecError{"ExecutionInterrupted", cancel.reason(), ""};
            } else {
                o.status = Status::TimedOut;
                o.error = engine::ExecError{"TimeoutError", "timed out", "  File \"<cell>\", line 1\n"};
            }
            return o;
        }
        if (cancel.cancelled()) {
            o.status = Status::Cancelled;
            o.error = engine::ExecError{"ExecutionInterrupted", cancel.reason(), ""};
            return o;
        }
        o.out = keep(code, std::max<size_t>(r.max_output, 1));
        if (code.find("stderr") != std::string::npos) o.err = keep("warning: " + code, std::max<size_t>(r.max_output / 2, 1));
        if (code.find("raise") != std::string::npos) {
            o.status = Status::Error;
            o.error = engine::ExecError{"ValueError", code.substr(0, 100),
                                        "Traceback (most recent call last):\n  File \"" + r.filename + "\", line 1\n" +
                                            code.substr(0, 50) + "\nValueError\n"};
        } else if (code.find("stuck") != std::string::npos) {
            o.status = Status::TimedOut;
            o.still_running = true;
            o.error = engine::ExecError{"TimeoutError", "still running", ""};
        } else if (!code.empty() && code.back() != ';') {
            o.result = "'" + r.session_id + "'";
        }
        if (code.find("mcp.call") != std::string::npos)
            o.mcp_calls.push_back(engine::NestedCallRecord{"sqlite", 1.5, code.size() % 2 == 0});
        return o;
    }

    void run() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;
            Job job = std::move(jobs_.front());
            jobs_.pop_front();
            lock.unlock();
            job.done(outcome(job.request, job.cancel));
            job = Job{};
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> jobs_;                   // GUARDED_BY(mutex_)
    std::map<std::string, size_t> sessions_;  // GUARDED_BY(mutex_), id -> variables
    bool stopping_ = false;                   // GUARDED_BY(mutex_)
    std::thread worker_;  // GUARDED_BY(mutex_), started by the first job that waits
};

// A fake tool that validates its arguments like the real ones do and uses the context's way back
// to the client: {"n": integer 0..100, "mode": "ok"|"invalid"|"throw"|"tool_error", "text": string}.
mcp::json strict_tool(const mcp::json& arguments, mcp::CallContext& context) {
    tools::ToolInput fields(arguments);
    const json& input = fields.fields();
    auto n = tools::get_integer(input, "n");
    if (!n) throw mcp::ToolError("'n' is required");
    if (*n < 0 || *n > 100) throw mcp::ToolError("'n' must be between 0 and 100");
    std::string mode = tools::get_string(input, "mode").value_or("ok");
    std::string text = tools::get_string(input, "text").value_or("");
    context.report_progress(0, static_cast<double>(*n), text);
    context.log("info", json{{"n", *n}, {"text", text}}, "strict");
    if (mode == "invalid") throw mcp::InvalidParamsError("'mode' invalid was asked for");
    if (mode == "throw") throw std::runtime_error("asked to throw: " + text);
    if (mode == "tool_error") throw mcp::ToolError(text, mcp::tool_result(text, json{{"n", *n}}, true));
    context.report_progress(static_cast<double>(*n), static_cast<double>(*n));
    return mcp::tool_result(text.empty() ? "(empty)" : text, json{{"n", *n}, {"text", text}});
}

// ---------------------------------------------------------------------------------------------
// The transport's sending half: keeps every serialised message, as the stdio transport would
// write it. The frames are fed to the connection's Peer directly, one by one, so the fuzzer can
// do its bookkeeping between them; run() has nothing to read.

class RecordingTransport final : public jsonrpc::Transport {
public:
    void run(jsonrpc::MessageHandler&) override {}
    void close() override {}
    bool send(const pymcp::json& message, jsonrpc::StreamId) override {
        std::string line = jsonrpc::serialize(message);
        std::lock_guard lock(mutex_);
        lines_.push_back(std::move(line));
        return true;
    }
    std::vector<std::string> take() {
        std::lock_guard lock(mutex_);
        return std::move(lines_);
    }

private:
    std::mutex mutex_;
    std::vector<std::string> lines_;
};

// ---------------------------------------------------------------------------------------------
// Framing

struct Framed {
    bool too_long = false;
    std::string line;
    bool operator==(const Framed&) const = default;
};

// The framing rules, written out plainly: lines end at '\n'; one '\r' before it is dropped; a
// line longer than the cap (counting that '\r') is reported as too long; a last line without
// '\n' counts when it is not empty.
std::vector<Framed> reference_frames(std::string_view data, size_t cap) {
    std::vector<Framed> out;
    size_t pos = 0;
    while (pos < data.size()) {
        size_t nl = data.find('\n', pos);
        size_t end = nl == std::string_view::npos ? data.size() : nl;
        std::string_view seg = data.substr(pos, end - pos);
        if (seg.size() > cap) {
            out.push_back({true, {}});
        } else {
            if (!seg.empty() && seg.back() == '\r') seg.remove_suffix(1);
            out.push_back({false, std::string(seg)});
        }
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return out;
}

uint64_t fnv1a(const uint8_t* data, size_t size) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ull;
    return h;
}

// Reads the input through a real LineReader over a SOCK_SEQPACKET socket: every write is one
// record and every read returns at most one, so the input-derived chunk sizes decide exactly
// where reads split lines. The records are queued without blocking when the socket buffer holds
// them all (the common case: no thread hand-off); a writer thread sends the rest otherwise.
std::vector<Framed> read_frames(const uint8_t* data, size_t size, size_t cap) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) violated("socketpair failed");
    uint64_t x = fnv1a(data, size) | 1;
    auto next_chunk = [&x] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return (x % 4 == 0) ? 1 + x % 7 : 1 + x % 1500;
    };
    size_t pos = 0;
    while (pos < size) {
        size_t chunk = std::min(next_chunk(), size - pos);
        ssize_t n = ::send(sv[1], data + pos, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // full: the writer thread goes on from here
        pos += static_cast<size_t>(n);
    }
    std::thread writer;
    auto write_rest = [&, pos]() mutable {
        while (pos < size) {
            size_t chunk = std::min(next_chunk(), size - pos);
            ssize_t n = ::send(sv[1], data + pos, chunk, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            pos += static_cast<size_t>(n);
        }
        ::shutdown(sv[1], SHUT_WR);
    };
    if (pos < size) writer = std::thread(write_rest);
    else ::shutdown(sv[1], SHUT_WR);
    std::vector<Framed> frames;
    {
        jsonrpc::LineReader reader(sv[0], cap);
        std::string line;
        for (;;) {
            auto status = reader.next(line);
            if (status == jsonrpc::LineReader::Status::Line) frames.push_back({false, line});
            else if (status == jsonrpc::LineReader::Status::TooLong) frames.push_back({true, {}});
            else if (status == jsonrpc::LineReader::Status::Eof) break;
            else violated("LineReader returned Error on a healthy socket");
            if (frames.size() > size + 1) violated("LineReader returned more lines than the input has bytes");
        }
    }
    if (writer.joinable()) writer.join();
    ::close(sv[0]);
    ::close(sv[1]);
    return frames;
}

// ---------------------------------------------------------------------------------------------
// Per-line checks and bookkeeping

bool contains_ci(const std::string& s, const char* word) {
    std::string lower(s);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower.find(word) != std::string::npos;
}

// True when a value could make SQLite create or open files outside the sandbox.
bool touches_outside(const json& v) {
    if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        return (!s.empty() && s.front() == '/') || contains_ci(s, "file:") || contains_ci(s, "attach") ||
               contains_ci(s, "vacuum");
    }
    if (v.is_array() || v.is_object())
        for (const auto& e : v)
            if (touches_outside(e)) return true;
    return false;
}

bool valid_id(const json& id) { return id.is_string() || id.is_number_integer(); }

struct Expected {
    size_t min = 0;  // answers that must come
    size_t max = 0;  // answers that may come
    bool only_tool_calls = true;
};

struct Ledger {
    std::map<std::string, Expected> by_id;

    void account(const json& m) {
        auto c = jsonrpc::classify(m);
        if (c.kind == jsonrpc::Kind::Invalid) {
            if (!m.is_object()) return;
            auto id = m.find("id");
            if (id != m.end() && valid_id(*id)) {
                auto& e = by_id[jsonrpc::id_key(*id)];
                ++e.min;
                ++e.max;
                e.only_tool_calls = false;
            }
            return;
        }
        if (c.kind != jsonrpc::Kind::Request) return;
        auto& e = by_id[jsonrpc::id_key(m["id"])];
        ++e.max;
        if (m["method"] != "tools/call") {
            ++e.min;
            e.only_tool_calls = false;
        }
    }
};

void check_line(const std::string& line) {
    json m;
    try {
        m = jsonrpc::parse_message(line);
    } catch (const jsonrpc::RpcError& e) {
        if (e.code() != jsonrpc::kParseError) violated("parse_message threw a code other than -32700", line);
        return;
    } catch (const std::exception& e) {
        // Its contract: RpcError(kParseError) for every bad line. Anything else escapes
        // Peer::on_text and ends the reader thread (std::terminate).
        violated(std::string("parse_message threw something other than RpcError: ") + e.what(), line);
    }
    (void)jsonrpc::classify(m);
    if (m.is_array())
        for (const auto& e : m) (void)jsonrpc::classify(e);
    // What we write must read back as the same value, on one line.
    std::string out = jsonrpc::serialize(m);
    if (out.find('\n') != std::string::npos) violated("serialize() produced a newline", out);
    json back;
    try {
        back = jsonrpc::parse_message(out, jsonrpc::ParseLimits{100000});
    } catch (const std::exception& e) {
        violated(std::string("serialize() output does not parse: ") + e.what(), out);
    }
    if (back != m) violated("parse(serialize(m)) != m", line);
}

void check_call_tool_result(const json& result, const std::string& raw) {
    if (!result.is_object()) violated("a tools/call result is not an object", raw);
    auto content = result.find("content");
    if (content == result.end() || !content->is_array()) violated("a tools/call result has no content array", raw);
    for (const auto& c : *content)
        if (!c.is_object() || !c.contains("type") || !c["type"].is_string())
            violated("a tools/call content block has no string type", raw);
    if (auto e = result.find("isError"); e != result.end() && !e->is_boolean())
        violated("a tools/call result's isError is not a boolean", raw);
    if (auto s = result.find("structuredContent"); s != result.end() && !s->is_object())
        violated("a tools/call result's structuredContent is not an object", raw);
}

// Validates one response object; returns its id key, or "" for id null.
std::string check_response(const json& m, const std::string& raw) {
    if (!m.is_object()) violated("a response is not an object", raw);
    if (m.value("jsonrpc", json()) != "2.0") violated("a response without \"jsonrpc\": \"2.0\"", raw);
    if (m.contains("method")) violated("a response carries a method", raw);
    auto id = m.find("id");
    if (id == m.end()) violated("a response without id", raw);
    if (!id->is_null() && !valid_id(*id)) violated("a response id that is neither string, integer nor null", raw);
    bool has_result = m.contains("result"), has_error = m.contains("error");
    if (has_result == has_error) violated("a response needs exactly one of result and error", raw);
    if (has_error) {
        const json& e = m["error"];
        if (!e.is_object() || !e.contains("code") || !e["code"].is_number_integer() || !e.contains("message") ||
            !e["message"].is_string())
            violated("a malformed error object", raw);
    } else if (id->is_null()) {
        violated("a successful response with id null", raw);
    }
    for (const auto& [key, _] : m.items())
        if (key != "jsonrpc" && key != "id" && key != "result" && key != "error")
            violated("a response with an unexpected member '" + key + "'", raw);
    return id->is_null() ? std::string() : jsonrpc::id_key(*id);
}

void check_output(const std::vector<std::string>& sent, const Ledger& ledger) {
    std::map<std::string, size_t> answers;
    std::vector<std::pair<std::string, const std::string*>> results;  // id key -> raw line
    for (const auto& raw : sent) {
        if (raw.find('\n') != std::string::npos) violated("a message spans lines", raw);
        json m;
        try {
            m = json::parse(raw);  // strict: invalid UTF-8 must have been replaced
        } catch (const std::exception& e) {
            violated(std::string("the server wrote invalid JSON: ") + e.what(), raw);
        }
        auto note = [&](const json& response) {
            std::string key = check_response(response, raw);
            if (key.empty()) return;
            ++answers[key];
            if (response.contains("result")) results.emplace_back(key, &raw);
        };
        if (m.is_array()) {
            if (m.empty()) violated("an empty batch answer", raw);
            for (const auto& e : m) note(e);
            continue;
        }
        if (!m.is_object()) violated("a message that is neither object nor array", raw);
        if (m.contains("method")) {
            // From the server: notifications only (no server-to-client requests yet).
            if (m.value("jsonrpc", json()) != "2.0") violated("a notification without \"jsonrpc\": \"2.0\"", raw);
            if (!m["method"].is_string()) violated("a notification whose method is not a string", raw);
            if (m.contains("id")) violated("the server sent a request (or a notification with an id)", raw);
            if (m.contains("result") || m.contains("error")) violated("a notification carries result/error", raw);
            if (auto p = m.find("params"); p != m.end() && !p->is_object() && !p->is_array())
                violated("notification params are neither object nor array", raw);
            const std::string& method = m["method"].get_ref<const std::string&>();
            if (method.rfind("notifications/", 0) != 0) violated("a server notification outside notifications/", raw);
            continue;
        }
        note(m);
    }
    for (const auto& [key, n] : answers) {
        auto it = ledger.by_id.find(key);
        size_t max = it == ledger.by_id.end() ? 0 : it->second.max;
        if (n > max)
            violated("id " + key + " answered " + std::to_string(n) + " time(s), but only " + std::to_string(max) +
                     " request(s) with it were sent");
    }
    for (const auto& [key, e] : ledger.by_id) {
        size_t n = answers.count(key) ? answers.at(key) : 0;
        if (n < e.min)
            violated("id " + key + " answered " + std::to_string(n) + " time(s), but " + std::to_string(e.min) +
                     " request(s) with it must be answered");
    }
    for (const auto& [key, raw] : results) {
        auto it = ledger.by_id.find(key);
        if (it == ledger.by_id.end() || !it->second.only_tool_calls) continue;
        json m = json::parse(*raw);
        if (m.is_array()) {
            for (const auto& e : m)
                if (e.contains("result") && jsonrpc::id_key(e["id"]) == key) check_call_tool_result(e["result"], *raw);
        } else {
            check_call_tool_result(m["result"], *raw);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The sandbox: scripts and databases live in a private folder, on tmpfs when there is one (the
// script store fsyncs every save).

struct Sandbox {
    fs::path root, scripts, data;

    Sandbox() {
        std::error_code ec;
        fs::path base = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0 ? fs::path("/dev/shm")
                                                                                            : fs::temp_directory_path();
        std::string tmpl = (base / "pymcp-fuzz-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) violated("mkdtemp failed");
        root = tmpl;
        scripts = root / "scripts";
        data = root / "databases";
        reset();
    }
    ~Sandbox() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }
    void reset() {
        std::error_code ec;
        fs::remove_all(scripts, ec);
        fs::remove_all(data, ec);
        fs::create_directories(scripts);
        fs::create_directories(data);
    }
    // Nothing but our two folders may appear in the root: a name that escaped its folder by one
    // level would land here.
    void check() const {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(root, ec)) {
            auto name = e.path().filename();
            if (name != "scripts" && name != "databases")
                violated("a file was created outside the script and database folders: " + e.path().string());
        }
    }
};

Sandbox* g_sandbox = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // Logging on at every level into a null sink: the formatting of hostile values runs too.
    auto logger = std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
    static Sandbox sandbox;
    g_sandbox = &sandbox;
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Sandbox& box = *g_sandbox;
    std::string_view input(reinterpret_cast<const char*>(data), size);

    // 1. Framing.
    auto frames = read_frames(data, size, kMaxLine);
    auto expected_frames = reference_frames(input, kMaxLine);
    if (frames != expected_frames)
        violated("LineReader framing differs from the reference: " + std::to_string(frames.size()) + " vs " +
                 std::to_string(expected_frames.size()) + " frames");

    // 3. The server with real tools over a fake engine.
    Ledger ledger;
    std::vector<std::string> sent;
    {
        FakeEngine engine;
        tools::ScriptStore scripts(box.scripts);
        tools::PythonToolOptions python_options;
        python_options.default_timeout = std::chrono::seconds(5);
        python_options.default_max_output = 256;
        python_options.readme = "python tool readme (fuzz)";
        // The unlock gates are on for inputs that mention the token (so seeds and regression
        // inputs decide, and mutations switch them on and off).
        python_options.gate = tools::UnlockGate{input.find("py-token") != std::string_view::npos, "py-token"};
        tools::PythonTool python(engine, scripts, python_options);
        tools::SqliteToolOptions sqlite_options;
        sqlite_options.data_dir = box.data;
        sqlite_options.busy_timeout_ms = 50;
        sqlite_options.gate = tools::UnlockGate{input.find("sql-token") != std::string_view::npos, "sql-token"};
        tools::SqliteTool sqlite(sqlite_options);

        // python last: its registry listener rebuilds its description on every later change.
        mcp::ToolRegistry registry;
        sqlite.register_in(registry);
        mcp::ToolDefinition strict;
        strict.name = "strict";
        strict.description = "validates {n, mode, text}";
        strict.input_schema = json{{"type", "object"}, {"required", {"n"}}};
        registry.add(strict, mcp::blocking_handler(strict_tool));
        mcp::ToolDefinition hidden;
        hidden.name = "hidden";
        hidden.exposed = false;
        registry.add(hidden, mcp::blocking_handler(
                                 [](const json&, mcp::CallContext&) -> json { return mcp::tool_result("hidden ran"); }));
        python.register_in(registry);

        RecordingTransport sink;
        mcp::ServerOptions options;
        options.max_request_threads = 8;
        options.instructions = "fuzz";
        {
            mcp::Server server(registry, options);
            auto connection = server.connect(sink);
            jsonrpc::Peer& peer = connection->peer();
            for (const auto& frame : frames) {
                if (frame.too_long) {
                    peer.on_oversized({}, kMaxLine, jsonrpc::kMainStream);
                    continue;
                }
                // 2. The line on its own.
                check_line(frame.line);
                // Bookkeeping: what must and may be answered.
                json parsed;
                bool parsed_ok = true;
                try {
                    parsed = jsonrpc::parse_message(frame.line);
                } catch (const jsonrpc::RpcError&) {
                    parsed_ok = false;
                }
                if (parsed_ok) {
                    if (touches_outside(parsed)) continue;  // not fed: see the header
                    if (parsed.is_array()) {
                        if (!parsed.empty() && connection->session().protocol_version() == "2025-03-26")
                            for (const auto& e : parsed)
                                if (!e.is_array()) ledger.account(e);
                    } else {
                        ledger.account(parsed);
                    }
                }
                peer.on_text(frame.line, jsonrpc::kMainStream);
            }
            // 4. Every call must end once the server shuts down.
            server.begin_shutdown();
            if (!server.wait_idle(kIdleTimeout))
                violated(std::to_string(server.in_flight()) +
                         " tool call(s) still counted as running after begin_shutdown() and " +
                         std::to_string(std::chrono::seconds(kIdleTimeout).count()) + " s");
        }
        sent = sink.take();
    }

    // 5. What the client saw.
    check_output(sent, ledger);
    box.check();
    box.reset();
    return 0;
}
