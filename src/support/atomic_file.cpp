#include "python_mcp/support/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <system_error>

namespace pymcp {
namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& p) {
    throw std::system_error(errno, std::generic_category(), what + " " + p.string());
}

std::string random_suffix() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s;
    for (int i = 0; i < 10; ++i) s += alphabet[rng() % 36];
    return s;
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::string_view data) {
    const auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    // The temporary name starts with '.' so listings that skip hidden files never show it.
    const auto tmp = dir / ("." + path.filename().string() + "." + random_suffix() + ".tmp");
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot create", tmp);
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int saved = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            errno = saved;
            fail("cannot write", tmp);
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        int saved = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        errno = saved;
        fail("cannot fsync", tmp);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int saved = errno;
        ::unlink(tmp.c_str());
        errno = saved;
        fail("cannot rename onto", path);
    }
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace pymcp
