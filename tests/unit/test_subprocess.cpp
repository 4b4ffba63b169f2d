// Subprocess: spawning, pipes, errors before exec, what the child inherits, termination and
// reaping.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "python_mcp/client/subprocess.hpp"

using namespace pymcp::client;
using namespace std::chrono_literals;

namespace {

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

void write_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        ASSERT_GT(n, 0);
        off += static_cast<size_t>(n);
    }
}

// Alive and not a zombie.
bool process_alive(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return false;
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

bool proc_entry_exists(pid_t pid) { return std::filesystem::exists("/proc/" + std::to_string(pid)); }

Subprocess sh(const std::string& script, SpawnOptions options = {}) {
    options.command = "sh";
    options.args = {"-c", script};
    return Subprocess::spawn(options);
}

}  // namespace

TEST(Subprocess, CatRoundTrip) {
    SpawnOptions options;
    options.command = "cat";  // looked up on PATH
    auto p = Subprocess::spawn(options);
    ASSERT_TRUE(p.valid());
    EXPECT_GT(p.pid(), 0);
    write_all(p.stdin_fd(), "hello\nworld\n");
    p.close_stdin();
    EXPECT_EQ(read_all(p.stdout_fd()), "hello\nworld\n");
    auto st = p.wait_for(5s);
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(WIFEXITED(*st));
    EXPECT_EQ(WEXITSTATUS(*st), 0);
    EXPECT_EQ(describe_wait_status(*st), "exit status 0");
    EXPECT_FALSE(p.running());
    EXPECT_FALSE(proc_entry_exists(p.pid()));  // reaped: no zombie
}

TEST(Subprocess, MissingCommandIsAClearError) {
    SpawnOptions options;
    options.command = "pymcp-no-such-command-4711";
    try {
        Subprocess::spawn(options);
        FAIL() << "spawn succeeded";
    } catch (const SpawnError& e) {
        EXPECT_STREQ(e.what(), "command 'pymcp-no-such-command-4711' not found");
    }
    options.command = "/nonexistent/dir/server";
    EXPECT_THROW(Subprocess::spawn(options), SpawnError);
}

TEST(Subprocess, NotExecutableAndBadCwd) {
    auto dir = std::filesystem::temp_directory_path() / ("pymcp-sp-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto file = dir / "plain.txt";
    std::ofstream(file) << "not a program\n";
    SpawnOptions options;
    options.command = file.string();
    try {
        Subprocess::spawn(options);
        FAIL() << "spawn succeeded";
    } catch (const SpawnError& e) {
        EXPECT_NE(std::string(e.what()).find("not an executable"), std::string::npos) << e.what();
    }
    options.command = "true";
    options.cwd = (dir / "missing").string();
    try {
        Subprocess::spawn(options);
        FAIL() << "spawn succeeded";
    } catch (const SpawnError& e) {
        EXPECT_NE(std::string(e.what()).find("cannot change directory to"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
    }
    std::filesystem::remove_all(dir);
}

TEST(Subprocess, StderrIsCapturedSeparately) {
    auto p = sh("echo to-out; echo to-err >&2");
    p.close_stdin();
    EXPECT_EQ(read_all(p.stdout_fd()), "to-out\n");
    EXPECT_EQ(read_all(p.stderr_fd()), "to-err\n");
    EXPECT_TRUE(p.wait_for(5s).has_value());
}

TEST(Subprocess, EnvMergesAndCwdApplies) {
    ::setenv("PYMCP_TEST_INHERITED", "from-parent", 1);
    SpawnOptions options;
    options.env = {{"PYMCP_TEST_SET", "from-config"}, {"PYMCP_TEST_INHERITED", "overridden"}};
    options.cwd = "/tmp";
    auto p = sh("echo \"$PYMCP_TEST_SET|$PYMCP_TEST_INHERITED|$(pwd)|${PATH:+has-path}\"", options);
    EXPECT_EQ(read_all(p.stdout_fd()), "from-config|overridden|/tmp|has-path\n");
    p.wait_for(5s);
}

TEST(Subprocess, PathFromEnvIsUsedForLookup) {
    auto dir = std::filesystem::temp_directory_path() / ("pymcp-path-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto script = dir / "pymcp-test-tool";
    std::ofstream(script) << "#!/bin/sh\necho found-me\n";
    std::filesystem::permissions(script, std::filesystem::perms::owner_all);
    SpawnOptions options;
    options.command = "pymcp-test-tool";
    options.env = {{"PATH", dir.string() + ":/usr/bin:/bin"}};
    auto p = Subprocess::spawn(options);
    EXPECT_EQ(read_all(p.stdout_fd()), "found-me\n");
    p.wait_for(5s);
    EXPECT_EQ(find_executable("pymcp-test-tool", dir.string()), script.string());
    EXPECT_EQ(find_executable("pymcp-test-tool", "/usr/bin"), std::nullopt);
    std::filesystem::remove_all(dir);
}

TEST(Subprocess, ChildGetsCleanSignalsAndNoStrayFds) {
    // What python-mcp's process may look like: SIGPIPE ignored (Python does that), a signal
    // blocked, an fd open without close-on-exec.
    struct sigaction old_pipe {};
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ign, &old_pipe);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    ::pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    int stray = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
    int high = ::fcntl(stray, F_DUPFD, 100);
    ::close(stray);
    ASSERT_GE(high, 100);

    auto p = sh("grep -E '^(SigIgn|SigBlk):' /proc/self/status; ls /proc/self/fd | tr '\\n' ' '");
    std::string out = read_all(p.stdout_fd());
    p.wait_for(5s);

    ::close(high);
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    ::sigaction(SIGPIPE, &old_pipe, nullptr);

    EXPECT_NE(out.find("SigIgn:\t0000000000000000"), std::string::npos) << out;
    EXPECT_NE(out.find("SigBlk:\t0000000000000000"), std::string::npos) << out;
    EXPECT_EQ(out.find(" " + std::to_string(high) + " "), std::string::npos) << out;
    // ls itself opens one directory fd (3); nothing else beyond 0-2.
    EXPECT_EQ(out.substr(out.find("0 1 2")), "0 1 2 3 ") << out;
}

TEST(Subprocess, TerminateEscalatesToKillAndReapsTheGroup) {
    // Ignores SIGTERM and stdin EOF; has a child of its own in its process group.
    auto p = sh("trap '' TERM; sleep 30 & echo $!; while true; do sleep 0.05; done");
    std::string first;
    char c;
    while (::read(p.stdout_fd(), &c, 1) == 1 && c != '\n') first.push_back(c);
    pid_t grandchild = std::stoi(first);
    ASSERT_TRUE(process_alive(grandchild));
    pid_t pid = p.pid();

    auto began = std::chrono::steady_clock::now();
    int status = p.terminate(200ms);
    auto took = std::chrono::steady_clock::now() - began;
    EXPECT_TRUE(WIFSIGNALED(status)) << describe_wait_status(status);
    EXPECT_EQ(WTERMSIG(status), SIGKILL) << describe_wait_status(status);
    EXPECT_GE(took, 400ms);
    EXPECT_LT(took, 3s);
    EXPECT_FALSE(proc_entry_exists(pid));  // reaped
    for (int i = 0; i < 100 && process_alive(grandchild); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_FALSE(process_alive(grandchild));  // the group went too
    EXPECT_FALSE(p.signal(SIGTERM));          // never signals a reaped pid
}

TEST(Subprocess, TerminateIsQuickWhenStdinEofEndsTheChild) {
    SpawnOptions options;
    options.command = "cat";
    auto p = Subprocess::spawn(options);
    auto began = std::chrono::steady_clock::now();
    int status = p.terminate(2s);
    EXPECT_LT(std::chrono::steady_clock::now() - began, 1s);
    EXPECT_TRUE(WIFEXITED(status));
}

TEST(Subprocess, SigtermIsEnoughForAWellBehavedChild) {
    auto p = sh("while true; do sleep 0.05; done");  // ignores EOF, dies on SIGTERM
    int status = p.terminate(200ms);
    EXPECT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST(Subprocess, DestructorKillsAndReaps) {
    pid_t pid;
    {
        SpawnOptions options;
        options.command = "sleep";
        options.args = {"30"};
        auto p = Subprocess::spawn(options);
        pid = p.pid();
        ASSERT_TRUE(process_alive(pid));
    }
    EXPECT_FALSE(proc_entry_exists(pid));
}

TEST(Subprocess, MoveOnly) {
    static_assert(!std::is_copy_constructible_v<Subprocess>);
    static_assert(std::is_nothrow_move_constructible_v<Subprocess>);
    SpawnOptions options;
    options.command = "cat";
    auto a = Subprocess::spawn(options);
    pid_t pid = a.pid();
    Subprocess b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.pid(), pid);
    Subprocess c;
    c = std::move(b);
    EXPECT_EQ(c.pid(), pid);
    EXPECT_TRUE(c.running());
    c.terminate(1s);
    EXPECT_FALSE(proc_entry_exists(pid));
}

TEST(Subprocess, DeathSignalFollowsTheSpawningThread) {
    // PR_SET_PDEATHSIG fires when the spawning thread exits: the child goes with it.
    Subprocess p;
    std::thread([&] {
        SpawnOptions options;
        options.command = "sleep";
        options.args = {"30"};
        p = Subprocess::spawn(options);
    }).join();
    auto st = p.wait_for(5s);
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(WIFSIGNALED(*st));
    EXPECT_EQ(WTERMSIG(*st), SIGKILL);
}

TEST(Subprocess, AddressSpaceLimitIsSetForTheChild) {
    SpawnOptions options;
    options.command = "sh";
    options.args = {"-c", "grep 'Max address space' /proc/self/limits"};
    struct rlimit ours {};
    ASSERT_EQ(::getrlimit(RLIMIT_AS, &ours), 0);
    options.address_space_limit = std::make_pair(3ul << 30, static_cast<unsigned long>(ours.rlim_max));
    auto p = Subprocess::spawn(options);
    std::string out = read_all(p.stdout_fd());
    p.wait_for(5s);
    EXPECT_NE(out.find(std::to_string(3ul << 30)), std::string::npos) << out;
}

TEST(Subprocess, ExitStatusIsReported) {
    auto p = sh("exit 3");
    auto st = p.wait_for(5s);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(describe_wait_status(*st), "exit status 3");
}
