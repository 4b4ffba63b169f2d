// main() of the test_engine binary: one embedded interpreter per process. The tests run on a
// thread of their own while the main thread serves MainThreadExecutor, so executions with
// run_on_main_thread really run on the process's main thread, as in the server.

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>

#include "python_mcp/python/interpreter.hpp"
#include "python_mcp/support/leak_check.hpp"

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    spdlog::set_level(spdlog::level::warn);
    try {
        pymcp::python::start_interpreter();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "test_engine: %s\n", e.what());
        return 1;
    }
    auto& executor = pymcp::python::MainThreadExecutor::instance();
    int result = 1;
    std::thread tests([&] {
        result = RUN_ALL_TESTS();
        executor.stop();
    });
    executor.run();
    tests.join();
    std::fflush(stdout);
    std::fflush(stderr);
    // Finalising Python could hang on threads user code left behind; the server never does it
    // either. In ASan builds, check for leaks first (_Exit skips LeakSanitizer's at-exit check).
    pymcp::leak_check_before_exit();
    std::_Exit(result);
}
