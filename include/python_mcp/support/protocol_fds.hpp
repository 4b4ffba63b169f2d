#pragma once
// Takes the process's stdin and stdout for the protocol before anything else can write to them.
//
// After take_protocol_fds(): `in` and `out` are private close-on-exec duplicates of the original
// fd 0 and fd 1, `log` a private duplicate of the original fd 2; fd 0 reads /dev/null and fd 1
// writes to the original stderr, so os.system, subprocesses, C extensions and stray prints can
// never reach the protocol stream. Forked children close the protocol fds (pthread_atfork).
// Call once, from main, before any other thread exists. Throws std::system_error.

namespace pymcp {

struct ProtocolFds {
    int in = -1;
    int out = -1;
    int log = -1;
};

ProtocolFds take_protocol_fds();

// The fds taken by take_protocol_fds(), or -1 before it ran.
const ProtocolFds& protocol_fds();

// A second, non-blocking, close-on-exec open file description of the pipe `fd` writes to (Linux
// reopens pipes through /proc/self/fd), so a writer can give up on a full pipe without changing
// the mode of the descriptor others share. -1 when `fd` is not a pipe (a file or a terminal does
// not fill up and stall for ever) or it cannot be reopened. The caller closes it.
int reopen_pipe_nonblocking(int fd);

}  // namespace pymcp
