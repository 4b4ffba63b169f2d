#include "python_mcp/support/protocol_fds.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace pymcp {
namespace {

ProtocolFds g_fds;

int dup_cloexec(int fd) {
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) throw std::system_error(errno, std::generic_category(), "duplicating a standard fd");
    return copy;
}

// A child made by fork() (os.fork in user code) must not hold the protocol pipe: if it lived on,
// the client would never see EOF, and anything it wrote would corrupt the stream.
void close_protocol_fds_in_child() {
    if (g_fds.in >= 0) ::close(g_fds.in);
    if (g_fds.out >= 0) ::close(g_fds.out);
}

}  // namespace

ProtocolFds take_protocol_fds() {
    ProtocolFds fds;
    // A parent may start us with a standard fd closed; keep the numbers 0-2 occupied so the
    // duplicates below never land on them.
    for (int fd = 0; fd <= 2; ++fd)
        if (::fcntl(fd, F_GETFD) < 0) ::open("/dev/null", O_RDWR);
    fds.in = dup_cloexec(0);
    fds.out = dup_cloexec(1);
    fds.log = dup_cloexec(2);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) throw std::system_error(errno, std::generic_category(), "opening /dev/null");
    if (::dup2(devnull, 0) < 0 || ::dup2(2, 1) < 0)
        throw std::system_error(errno, std::generic_category(), "redirecting fd 0 and fd 1");
    ::close(devnull);
    g_fds = fds;
    ::pthread_atfork(nullptr, nullptr, close_protocol_fds_in_child);
    return fds;
}

const ProtocolFds& protocol_fds() { return g_fds; }

int reopen_pipe_nonblocking(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) return -1;
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    return ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
}

}  // namespace pymcp
