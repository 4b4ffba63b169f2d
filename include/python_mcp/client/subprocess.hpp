#pragma once
// A child process with its stdin, stdout and stderr connected to pipes held by us.
//
// spawn() looks the command up on PATH (the child's PATH when `env` sets one), then forks; the
// child makes itself leader of its own process group, resets its signal mask and dispositions,
// asks for a death signal when the spawning thread dies, closes every other fd, applies cwd, and
// execs with our environment plus `env`. Failures before exec (command missing, cwd missing,
// not executable) come back as SpawnError from spawn() itself, never as a crash or a silent
// exit 127.
//
// The death signal (PR_SET_PDEATHSIG) fires when the *thread* that spawned the child exits, not
// the process: spawn from a thread that lives at least as long as the child should.
//
// Threads: a Subprocess is move-only; one owner at a time. The process-state operations
// (signal, try_wait, wait_for, terminate, running, exit_status) are internally locked and may be
// called from several threads at once; signals are never sent after the child was reaped, so a
// recycled pid is never hit. The fd accessors and take_*() are for the owner only: a thread that
// reads an fd should take it and close it itself. Reaping a child whose process group still has
// members first SIGKILLs the group, so nothing the child left behind outlives it.
// Lock order: the internal mutex is a leaf (nothing else is locked while it is held).
// Throws: spawn() throws SpawnError; everything else is noexcept apart from std::bad_alloc.

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace pymcp::client {

class SpawnError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SpawnOptions {
    std::string command;                      // a name looked up on PATH, or a path
    std::vector<std::string> args;            // argv[1..]; argv[0] is `command` as given
    std::map<std::string, std::string> env;   // set on top of our environment
    std::string cwd;                          // empty: ours
    int death_signal = SIGKILL;               // sent when the spawning thread dies; 0 for none
    // RLIMIT_AS for the child (soft, hard), e.g. the limit in force before python-mcp lowered its
    // own with --memory-limit: Node reserves far more address space than it uses and dies at
    // start under a few hundred MiB. If raising it is not allowed, the soft limit is raised to
    // the hard one. Unset: inherited.
    std::optional<std::pair<unsigned long, unsigned long>> address_space_limit;
};

// Where `command` would be executed from: itself when it contains a '/', else the first
// executable regular file on `path_var`. nullopt when there is none.
std::optional<std::string> find_executable(const std::string& command, const std::string& path_var);

// "exit status 1", "signal 9 (Killed)".
std::string describe_wait_status(int status);

class Subprocess {
public:
    // Throws SpawnError: "command 'x' not found", "cannot change directory to '/d': ...", ...
    static Subprocess spawn(const SpawnOptions& options);

    Subprocess();
    Subprocess(Subprocess&& other) noexcept;
    Subprocess& operator=(Subprocess&& other) noexcept;
    Subprocess(const Subprocess&) = delete;
    Subprocess& operator=(const Subprocess&) = delete;
    // A child still running is killed (SIGKILL to its group) and reaped; our fds are closed.
    ~Subprocess();

    bool valid() const { return static_cast<bool>(state_); }
    pid_t pid() const;

    // Our ends of the pipes (-1 once taken or closed).
    int stdin_fd() const;
    int stdout_fd() const;
    int stderr_fd() const;
    // Hands the fd over to the caller, who must close it.
    int take_stdin();
    int take_stdout();
    int take_stderr();
    void close_stdin();

    // Sends `sig` to the child's process group; false once the child has been reaped.
    bool signal(int sig);
    // Reaps the child if it has exited; its wait status then.
    std::optional<int> try_wait();
    std::optional<int> wait_for(std::chrono::milliseconds timeout);
    // The wait status once reaped.
    std::optional<int> exit_status() const;
    bool running();

    // Closes stdin, waits `grace` for the child to exit, SIGTERM to the group, waits `grace`,
    // SIGKILL to the group, reaps. Returns the wait status.
    int terminate(std::chrono::milliseconds grace);

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace pymcp::client
