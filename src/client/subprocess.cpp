#include "python_mcp/client/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>
#include <thread>

extern char** environ;

namespace pymcp::client {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// Moves a new fd out of 0-2 so the child's dup2 onto 0-2 can never clobber another pipe end.
int above_stdio(int fd) {
    if (fd > 2) return fd;
    int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int err = errno;
    ::close(fd);
    if (moved < 0) throw SpawnError("cannot create a pipe: " + errno_text(err));
    return moved;
}

struct Pipe {
    int read = -1;
    int write = -1;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw SpawnError("cannot create a pipe: " + errno_text(errno));
        read = fds[0];
        write = fds[1];
        try {
            read = above_stdio(read);
            write = above_stdio(write);
        } catch (...) {
            close_fd(read);
            close_fd(write);
            throw;
        }
    }
    ~Pipe() {
        close_fd(read);
        close_fd(write);
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
};

bool is_executable_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// What the child reports through the exec-error pipe when it fails before exec.
enum ChildStage : int { kStageChdir = 1, kStageExec = 2, kStageSetup = 3 };

// Everything below runs in the child between fork and exec: async-signal-safe calls only (no
// malloc, no locks, no C++ exceptions).
[[noreturn]] void child_fail(int error_fd, int stage) {
    int report[2] = {stage, errno};
    ssize_t ignored = ::write(error_fd, report, sizeof report);
    (void)ignored;
    ::_exit(127);
}

void close_other_fds(int keep, int open_max) {
    // close_range(2) where the kernel has it (5.9+); otherwise one close() per possible fd.
    bool done = (keep <= 3 || ::syscall(SYS_close_range, 3u, static_cast<unsigned>(keep - 1), 0u) == 0) &&
                ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0u, 0u) == 0;
    if (done) return;
    for (int fd = 3; fd < open_max; ++fd)
        if (fd != keep) ::close(fd);
}

[[noreturn]] void run_child(const char* path, char* const* argv, char* const* envp, const char* cwd,
                            int in_fd, int out_fd, int err_fd, int error_fd, int death_signal,
                            pid_t parent, int open_max, const struct rlimit* address_space) {
    // Own process group, so signals for the server reach whatever it starts (npx starts node).
    ::setpgid(0, 0);
    if (death_signal > 0) {
        if (::prctl(PR_SET_PDEATHSIG, death_signal) != 0) child_fail(error_fd, kStageSetup);
        if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    }
    // Dispositions first (an ignored SIGPIPE or SIGCHLD would survive exec), then the mask.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        ::sigaction(sig, &dfl, nullptr);  // fails harmlessly for the C library's reserved ones
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    if (address_space && ::setrlimit(RLIMIT_AS, address_space) != 0) {
        struct rlimit now {};
        if (::getrlimit(RLIMIT_AS, &now) == 0) {
            now.rlim_cur = now.rlim_max;
            ::setrlimit(RLIMIT_AS, &now);
        }
    }
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) child_fail(error_fd, kStageSetup);
    close_other_fds(error_fd, open_max);
    if (cwd && ::chdir(cwd) != 0) child_fail(error_fd, kStageChdir);
    ::execve(path, argv, envp);
    child_fail(error_fd, kStageExec);
}

}  // namespace

std::optional<std::string> find_executable(const std::string& command, const std::string& path_var) {
    if (command.empty()) return std::nullopt;
    if (command.find('/') != std::string::npos) {
        if (is_executable_file(command)) return command;
        return std::nullopt;
    }
    size_t start = 0;
    for (;;) {
        size_t end = path_var.find(':', start);
        std::string dir = path_var.substr(start, end == std::string::npos ? std::string::npos : end - start);
        // POSIX: an empty PATH entry is the current directory.
        std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + command;
        if (is_executable_file(candidate)) return candidate;
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return std::nullopt;
}

std::string describe_wait_status(int status) {
    if (status < 0) return "unknown status (reaped elsewhere)";
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char* name = ::sigdescr_np(sig);
        return "signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : std::string());
    }
    return "wait status " + std::to_string(status);
}

struct Subprocess::State {
    pid_t pid = -1;
    int in = -1;
    int out = -1;
    int err = -1;
    int pidfd = -1;  // readable once the child has exited; -1 where pidfd_open is missing

    std::mutex mutex;            // guards status and the reaping itself
    std::optional<int> status;   // GUARDED_BY(mutex); set once reaped

    ~State() {
        close_fd(in);
        close_fd(out);
        close_fd(err);
        close_fd(pidfd);
    }

    // Requires mutex held.
    std::optional<int> try_wait_locked() {
        if (status) return status;
        siginfo_t info{};
        // Look without reaping first: while the exited child is a zombie its process group id
        // cannot be reused, so whatever it left running in the group can still be killed safely.
        if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
            if (errno == ECHILD) status = -1;  // someone else reaped it (os.wait in user code)
            return status;
        }
        if (info.si_pid == 0) return std::nullopt;
        ::kill(-pid, SIGKILL);
        int st = 0;
        while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        status = st;
        return status;
    }
};

Subprocess::Subprocess() = default;
Subprocess::Subprocess(Subprocess&& other) noexcept = default;
Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
    if (this != &other) {
        Subprocess old(std::move(*this));  // the old child is killed and reaped
        state_ = std::move(other.state_);
    }
    return *this;
}

Subprocess::~Subprocess() {
    if (!state_) return;
    close_stdin();
    std::lock_guard lock(state_->mutex);
    if (!state_->status) {
        ::kill(-state_->pid, SIGKILL);
        ::kill(state_->pid, SIGKILL);
        int st = 0;
        while (::waitpid(state_->pid, &st, 0) < 0 && errno == EINTR) {
        }
        state_->status = st;
    }
}

Subprocess Subprocess::spawn(const SpawnOptions& options) {
    if (options.command.empty()) throw SpawnError("empty command");

    // The environment: ours, with options.env on top.
    std::vector<std::string> env_strings;
    for (char** e = environ; e && *e; ++e) {
        std::string entry(*e);
        auto eq = entry.find('=');
        if (eq != std::string::npos && options.env.count(entry.substr(0, eq))) continue;
        env_strings.push_back(std::move(entry));
    }
    for (const auto& [key, value] : options.env) env_strings.push_back(key + "=" + value);

    std::string path_var;
    if (auto it = options.env.find("PATH"); it != options.env.end()) path_var = it->second;
    else if (const char* p = ::getenv("PATH")) path_var = p;
    else path_var = "/usr/local/bin:/usr/bin:/bin";

    // A relative path with a slash is run after the chdir, so look for it there.
    std::string lookup = options.command;
    if (lookup.find('/') != std::string::npos && lookup[0] != '/' && !options.cwd.empty())
        lookup = options.cwd + "/" + lookup;
    auto found = find_executable(lookup, path_var);
    if (!found) {
        if (lookup.find('/') != std::string::npos) {
            struct stat st {};
            if (::stat(lookup.c_str(), &st) == 0)
                throw SpawnError("command '" + options.command + "' is not an executable file");
        }
        throw SpawnError("command '" + options.command + "' not found");
    }
    std::string exec_path = *found;
    if (options.command.find('/') != std::string::npos) exec_path = options.command;

    // Everything the child needs, prepared before fork: it must not allocate.
    std::vector<std::string> argv_strings;
    argv_strings.push_back(options.command);
    argv_strings.insert(argv_strings.end(), options.args.begin(), options.args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
    struct rlimit limit {};
    int open_max = 65536;
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
        open_max = static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 65536));

    struct rlimit address_space {};
    if (options.address_space_limit) {
        address_space.rlim_cur = options.address_space_limit->first;
        address_space.rlim_max = options.address_space_limit->second;
    }

    Pipe in, out, err, report;
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw SpawnError("cannot fork: " + errno_text(errno));
    if (pid == 0)
        run_child(exec_path.c_str(), argv.data(), envp.data(), cwd, in.read, out.write, err.write, report.write,
                  options.death_signal, parent, open_max, options.address_space_limit ? &address_space : nullptr);

    ::setpgid(pid, pid);  // also here, so no signal sent right after spawn() misses the group
    auto state = std::make_unique<State>();
    state->pid = pid;
    state->pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    close_fd(in.read);
    close_fd(out.write);
    close_fd(err.write);
    close_fd(report.write);
    std::swap(state->in, in.write);
    std::swap(state->out, out.read);
    std::swap(state->err, err.read);

    // The report pipe closes on exec; a failure before it sends {stage, errno}. The wait is
    // bounded because a process forked by another thread at the same moment may hold the write
    // end until it execs.
    int message[2] = {0, 0};
    size_t got = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got < sizeof message) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{report.read, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        ssize_t n = ::read(report.read, reinterpret_cast<char*>(message) + got, sizeof message - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    Subprocess result;
    result.state_ = std::move(state);
    if (got == sizeof message) {
        result.wait_for(std::chrono::seconds(5));
        std::string why = errno_text(message[1]);
        switch (message[0]) {
            case kStageChdir:
                throw SpawnError("cannot change directory to '" + options.cwd + "': " + why);
            case kStageExec:
                throw SpawnError("cannot execute '" + exec_path + "': " + why);
            default:
                throw SpawnError("cannot set up the child process: " + why);
        }
    }
    return result;
}

pid_t Subprocess::pid() const { return state_ ? state_->pid : -1; }
int Subprocess::stdin_fd() const { return state_ ? state_->in : -1; }
int Subprocess::stdout_fd() const { return state_ ? state_->out : -1; }
int Subprocess::stderr_fd() const { return state_ ? state_->err : -1; }

int Subprocess::take_stdin() { return state_ ? std::exchange(state_->in, -1) : -1; }
int Subprocess::take_stdout() { return state_ ? std::exchange(state_->out, -1) : -1; }
int Subprocess::take_stderr() { return state_ ? std::exchange(state_->err, -1) : -1; }

void Subprocess::close_stdin() {
    if (state_) close_fd(state_->in);
}

bool Subprocess::signal(int sig) {
    if (!state_) return false;
    std::lock_guard lock(state_->mutex);
    if (state_->status) return false;
    if (::kill(-state_->pid, sig) == 0) return true;
    return ::kill(state_->pid, sig) == 0;
}

std::optional<int> Subprocess::try_wait() {
    if (!state_) return std::nullopt;
    std::lock_guard lock(state_->mutex);
    return state_->try_wait_locked();
}

std::optional<int> Subprocess::exit_status() const {
    if (!state_) return std::nullopt;
    std::lock_guard lock(state_->mutex);
    return state_->status;
}

bool Subprocess::running() { return state_ && !try_wait(); }

std::optional<int> Subprocess::wait_for(std::chrono::milliseconds timeout) {
    if (!state_) return std::nullopt;
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + timeout;
    auto step = std::chrono::milliseconds(1);
    for (;;) {
        int pidfd;
        {
            std::lock_guard lock(state_->mutex);
            if (auto st = state_->try_wait_locked()) return st;
            pidfd = state_->pidfd;
        }
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) return std::nullopt;
        if (pidfd >= 0) {
            // Readable once the child has exited. Bounded slices, so a pidfd closed by another
            // thread's reaping costs at most one slice.
            pollfd p{pidfd, POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 50)));
        } else {
            std::this_thread::sleep_for(std::min(step, left));
            step = std::min(step * 2, std::chrono::milliseconds(20));
        }
    }
}

int Subprocess::terminate(std::chrono::milliseconds grace) {
    if (!state_) return -1;
    close_stdin();
    if (auto st = wait_for(grace)) return *st;
    signal(SIGTERM);
    if (auto st = wait_for(grace)) return *st;
    signal(SIGKILL);
    for (;;)
        if (auto st = wait_for(std::chrono::seconds(1))) return *st;
}

}  // namespace pymcp::client
