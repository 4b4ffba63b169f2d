#include "python_mcp/jsonrpc/message_writer.hpp"

#include <unistd.h>

#include <cerrno>

#include "python_mcp/jsonrpc/message.hpp"

namespace pymcp::jsonrpc {

bool FdMessageSink::send(const pymcp::json& message) {
    std::string line = serialize(message);
    line.push_back('\n');
    std::lock_guard lock(mutex_);
    if (broken_) return false;
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            broken_ = true;
            return false;
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    return true;
}

void FdMessageSink::close() {
    std::lock_guard lock(mutex_);
    broken_ = true;
}

}  // namespace pymcp::jsonrpc
