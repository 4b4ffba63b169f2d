#pragma once
// LeakSanitizer check for processes that end with std::_Exit (docs/hardening.md).
//
// The server and test_engine never finalise Python and leave with _Exit, which skips
// LeakSanitizer's at-exit check. In AddressSanitizer builds (-DPYMCP_SANITIZE=ON) call this just
// before _Exit: it runs the same check with the interpreter still alive (everything Python owns
// is reachable from its globals then) and writes any report like the at-exit check would
// (ASAN_OPTIONS log_path). Elsewhere it does nothing.

#if defined(__SANITIZE_ADDRESS__)
#define PYMCP_HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PYMCP_HAS_ASAN 1
#endif
#endif

#ifdef PYMCP_HAS_ASAN
#include <sanitizer/lsan_interface.h>
#endif

namespace pymcp {

inline void leak_check_before_exit() {
#ifdef PYMCP_HAS_ASAN
    __lsan_do_recoverable_leak_check();
#endif
}

}  // namespace pymcp
