#include "python_mcp/python/fd_capture.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <system_error>

#include "python_mcp/support/protocol_fds.hpp"

namespace pymcp::python {

namespace {
FdCapture* g_instance = nullptr;

void write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= static_cast<size_t>(w);
    }
}
bool same_file(int fd, dev_t dev, ino_t ino, dev_t rdev) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino && st.st_rdev == rdev;
}

void put_back(int from, int fd) {
    while (::dup2(from, fd) < 0 && errno == EINTR) {
    }
}

}  // namespace

FdCapture& FdCapture::install(int log_fd) {
    if (!g_instance) g_instance = new FdCapture(log_fd);  // lives until the process exits
    return *g_instance;
}

FdCapture* FdCapture::instance() { return g_instance; }

FdCapture::FdCapture(int log_fd) : log_fd_(log_fd), log_nonblocking_fd_(reopen_pipe_nonblocking(log_fd)) {
    for (int stream = 0; stream < 2; ++stream) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
        // The read end is ours alone and never blocks; the write end becomes fd 1 or fd 2, which
        // children inherit (dup2 clears close-on-exec on the new number).
        ::fcntl(p[0], F_SETFL, O_NONBLOCK);
        if (::dup2(p[1], stream + 1) < 0) throw std::system_error(errno, std::generic_category(), "dup2");
        ::fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
        read_fds_[stream] = p[0];
        write_fds_[stream] = p[1];  // kept (close-on-exec) to put fd 1/2 back if user code moves them
        struct stat st {};
        if (::fstat(p[1], &st) == 0) write_ids_[stream] = {st.st_dev, st.st_ino, st.st_rdev};
    }
    devnull_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull_fd_ >= 0) {
        struct stat st {};
        if (::fstat(devnull_fd_, &st) == 0) devnull_id_ = {st.st_dev, st.st_ino, st.st_rdev};
    }
    reader_ = std::thread([this] { reader_loop(); });
    reader_.detach();
}

void FdCapture::repair_standard_fds_locked() {
    // Cheap (three fstat calls); only a changed fd is touched.
    if (devnull_fd_ >= 0 && !same_file(0, devnull_id_.dev, devnull_id_.ino, devnull_id_.rdev))
        put_back(devnull_fd_, 0);
    for (int stream = 0; stream < 2; ++stream) {
        const FileId& id = write_ids_[stream];
        if (write_fds_[stream] >= 0 && !same_file(stream + 1, id.dev, id.ino, id.rdev))
            put_back(write_fds_[stream], stream + 1);  // dup2 leaves the new number inheritable
    }
}

uint64_t FdCapture::begin(Execution* execution) {
    std::lock_guard lock(mutex_);
    // No repair here: end() repairs after every execution, which is where code changes fds (a
    // thread left running that closes one later is repaired after the next execution).
    drain_locked();  // what came before belongs to nobody running now
    bool overlapped = !active_.empty();
    for (auto& a : active_) a.overlapped = true;
    uint64_t token = next_token_++;
    active_.push_back({token, execution, overlapped});
    return token;
}

void FdCapture::end(uint64_t token) {
    std::lock_guard lock(mutex_);
    drain_locked();
    repair_standard_fds_locked();
    active_.erase(std::remove_if(active_.begin(), active_.end(), [&](const Active& a) { return a.token == token; }),
                  active_.end());
}

void FdCapture::route_locked(int stream, const char* data, size_t n) {
    if (active_.size() == 1 && !active_[0].overlapped) {
        Execution* target = active_[0].execution;
        if (target && target->write(stream, std::string_view(data, n))) return;
    }
    to_log(data, n);
}

void FdCapture::to_log(const char* data, size_t n) {
    if (log_nonblocking_fd_ < 0) {
        write_all(log_fd_, data, n);
        return;
    }
    while (n > 0) {
        ssize_t w = ::write(log_nonblocking_fd_, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {  // full (nobody reads the log) or gone: drop rather than stall every execution
            dropped_bytes_ += n;
            return;
        }
        data += w;
        n -= static_cast<size_t>(w);
    }
}

void FdCapture::drain_locked() {
    char buf[65536];
    for (int stream = 0; stream < 2; ++stream) {
        for (;;) {
            ssize_t n = ::read(read_fds_[stream], buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            route_locked(stream, buf, static_cast<size_t>(n));
        }
    }
}

void FdCapture::reader_loop() {
    pollfd fds[2] = {{read_fds_[0], POLLIN, 0}, {read_fds_[1], POLLIN, 0}};
    for (;;) {
        int r = ::poll(fds, 2, -1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return;
        std::lock_guard lock(mutex_);
        drain_locked();
    }
}

}  // namespace pymcp::python
