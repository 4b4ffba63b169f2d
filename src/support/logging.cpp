#include "python_mcp/support/logging.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <string>

#include "python_mcp/support/protocol_fds.hpp"

namespace pymcp {
namespace {

// Writes to a raw fd so that logging never goes through the FILE* stderr, whose fd 2 is a
// capture pipe while the server runs.
class FdSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    // A pipe gets a non-blocking handle of its own (the fd we were given, shared with whoever
    // else holds it, keeps its mode): a client that never reads our stderr must not stall the
    // thread that logs, which may be the shutdown watcher or a tool call.
    explicit FdSink(int fd) : fd_(fd) {
        if (int nb = reopen_pipe_nonblocking(fd); nb >= 0) {
            fd_ = nb;
            non_blocking_ = true;
        }
    }
    ~FdSink() override {
        if (non_blocking_) ::close(fd_);
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        const char* data = formatted.data();
        size_t left = formatted.size();
        while (left > 0) {
            ssize_t n = ::write(fd_, data, left);
            if (n > 0) {
                data += n;
                left -= static_cast<size_t>(n);
                stalled_ = false;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN && !stalled_) {
                // A full pipe: a slow reader gets a moment to drain it; one that does not read
                // at all costs this wait once, then lines are dropped until a write goes through.
                pollfd p{fd_, POLLOUT, 0};
                if (::poll(&p, 1, kFullPipeWaitMs) > 0) continue;
                stalled_ = true;
            }
            return;  // a closed or stalled stderr must not take the server down
        }
    }
    void flush_() override {}

private:
    static constexpr int kFullPipeWaitMs = 100;
    int fd_;
    bool non_blocking_ = false;
    bool stalled_ = false;  // guarded by base_sink's mutex
};

}  // namespace

int parse_log_level(const std::string& level) {
    static const char* names[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    for (int i = 0; i < 7; ++i)
        if (level == names[i]) return i;
    throw std::invalid_argument("unknown log level '" + level +
                                "' (use trace, debug, info, warn, error, critical or off)");
}

void init_logging(int stderr_fd, const std::string& level, const std::string& log_file) {
    auto lvl = static_cast<spdlog::level::level_enum>(parse_log_level(level));
    std::vector<spdlog::sink_ptr> sinks;
    sinks.push_back(std::make_shared<FdSink>(stderr_fd));
    if (!log_file.empty()) sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file));
    auto logger = std::make_shared<spdlog::logger>("python-mcp", sinks.begin(), sinks.end());
    logger->set_level(lvl);
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
    logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(logger);
}

}  // namespace pymcp
