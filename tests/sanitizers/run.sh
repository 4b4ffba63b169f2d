#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the test suites (issue 7).
#
# Configures build-asan/ with -DPYMCP_SANITIZE=ON (gcc by default; CC/CXX pick another compiler,
# e.g. CC=clang CXX=clang++), builds it, and runs the ctest suites against that build: the unit
# tests, the engine tests and the end-to-end suites with the ASan server binary. Any sanitizer
# report from any process (a test binary, or a python-mcp server started by an e2e test) fails
# the run, also when the test that caused it passed: every report is written to a file under
# build-asan/sanitizer-reports/ and the run fails when that folder is not empty afterwards.
#
# Usage: tests/sanitizers/run.sh [ctest arguments...]
#   default ctest selection: every suite, -L 'unit|engine|e2e|interop' (the interop helpers pass
#   the sanitizer settings below through to the servers they start, like the e2e harness).
#   PYMCP_ASAN_JOBS   parallel build and ctest jobs (default: nproc)
#   PYMCP_ASAN_BUILD  build folder (default: <repo>/build-asan)
#   PYMCP_ASAN_EXCLUDE  ctest -E regex of tests to leave out (default: none)
#
# See docs/hardening.md for the options chosen below and the suppression file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tests/sanitizers"
build="${PYMCP_ASAN_BUILD:-$root/build-asan}"
jobs="${PYMCP_ASAN_JOBS:-$(nproc)}"
cc="${CC:-gcc}"
cxx="${CXX:-g++}"

say() { printf 'asan: %s\n' "$*" >&2; }

start=$(date +%s)

# --- configure and build --------------------------------------------------------------------
# RelWithDebInfo at -O1 -g1: line numbers in reports (-g1 keeps line tables, and compiles much
# faster than -g), asserts kept (no -DNDEBUG). Configuring again is quick when nothing changed.
say "configuring $build ($cxx, -DPYMCP_SANITIZE=ON)"
cmake -S "$root" -B "$build" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DPYMCP_SANITIZE=ON -DPYMCP_FUZZ=OFF -DPYMCP_BUILD_TESTS=ON >/dev/null

# --- sanitizer options -----------------------------------------------------------------------
# Set before the build too: gtest_discover_tests runs the test binaries at build time.
reports="$build/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
# ASan: report every error (halt on the first, the default), write reports to files, let a
# too-large allocation fail like glibc's malloc does (Python turns it into MemoryError) instead
# of aborting, keep leak checking on (with Python's own leaks suppressed, see lsan.supp).
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:\
check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:\
print_suppressions=0:log_path=$reports/report"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
# UBSan: -fno-sanitize-recover=undefined already makes every finding fatal; add stacks.
# (Reports of all three go to the one log_path above: ASan, LSan and UBSan share one runtime.)
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$here/ubsan.supp"
# Python allocates with malloc, so ASan sees every Python object (use-after-free of a PyObject
# from our code is caught) and LSan can scan Python's heap for pointers into ours: with pymalloc,
# blocks referenced only from pymalloc's mmap'd arenas would all look leaked.
export PYTHONMALLOC=malloc
# For tests that must know: e.g. --memory-limit (RLIMIT_AS) cannot work under ASan, whose
# shadow memory alone reserves terabytes of address space.
export PYMCP_SANITIZED=1
# Python is slower to start under ASan and the machine is shared: give e2e waits more room.
export PYMCP_E2E_TIMEOUT="${PYMCP_E2E_TIMEOUT:-60}"

for harness in tests/e2e/mcp_pipe.py tests/interop/lib/server.mjs; do
  if ! grep -q 'ASAN_OPTIONS' "$root/$harness" 2>/dev/null; then
    say "warning: $harness does not pass ASAN_OPTIONS/LSAN_OPTIONS/UBSAN_OPTIONS/PYTHONMALLOC"
    say "         to the servers it starts: their reports go to their stderr only (see docs/hardening.md)"
  fi
done

say "building $build (-j$jobs)"
cmake --build "$build" -j"$jobs" >&2
built=$(date +%s)
say "build took $((built - start)) s"

# --- run -------------------------------------------------------------------------------------
args=("$@")
if (( ${#args[@]} == 0 )); then
  # No test asserts Release-build speed (the benchmark measures that), so none is left out by
  # default; PYMCP_ASAN_EXCLUDE can still leave some out.
  args=(-L 'unit|engine|e2e|interop')
  if [[ -n "${PYMCP_ASAN_EXCLUDE:-}" ]]; then args+=(-E "$PYMCP_ASAN_EXCLUDE"); fi
fi
status=0
ctest --test-dir "$build" --output-on-failure -j"$jobs" "${args[@]}" || status=$?
finished=$(date +%s)
say "tests took $((finished - built)) s (total $((finished - start)) s)"

shopt -s nullglob
found=("$reports"/*)
if (( ${#found[@]} > 0 )); then
  say "sanitizer reports (${#found[@]} file(s)) in $reports:"
  for f in "${found[@]}"; do
    printf '==== %s\n' "$f" >&2
    head -n 60 "$f" >&2
  done
  status=1
fi
if (( status != 0 )); then
  say "FAILED"
else
  say "clean: no test failed and no sanitizer report"
fi
exit "$status"
