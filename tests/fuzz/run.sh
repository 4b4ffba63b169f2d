#!/usr/bin/env bash
# Builds the libFuzzer target and runs it for a bounded time (issue 7).
#
# Configures build-fuzz/ with clang, -DPYMCP_FUZZ=ON and -DPYMCP_SANITIZE=ON (ASan + UBSan),
# builds only the fuzz target (it needs the Python-free libraries only), first replays every
# input of tests/fuzz/corpus (seeds and regression inputs: each must pass), then fuzzes for
# PYMCP_FUZZ_SECONDS (default 60) over a copy of the corpus in a temporary folder under the build
# folder (deleted afterwards), so new inputs found by the test command never touch the checkout.
#
# Usage: tests/fuzz/run.sh [seconds] [extra libFuzzer flags...]
#   PYMCP_FUZZ_SECONDS  fuzzing time when no argument is given (default 60)
#   PYMCP_FUZZ_JOBS     parallel fuzzing processes (default 1; each gets the whole time)
#   PYMCP_FUZZ_BUILD    build folder (default <repo>/build-fuzz)
#   PYMCP_FUZZ_WORK     keep the working corpus in this folder instead (created if missing; a
#                       longer run can be resumed and merged back: docs/hardening.md)
# A crash, leak, timeout or invariant violation fails the run; the input is saved as
# <build>/findings/crash-* (or leak-/timeout-/oom-) and printed as a reproduce command.
# A longer run, and what to do with a finding: docs/hardening.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tests/fuzz"
build="${PYMCP_FUZZ_BUILD:-$root/build-fuzz}"
seconds="${1:-${PYMCP_FUZZ_SECONDS:-60}}"
(( $# > 0 )) && shift
fuzz_jobs="${PYMCP_FUZZ_JOBS:-1}"

say() { printf 'fuzz: %s\n' "$*" >&2; }

start=$(date +%s)
if [[ ! -f "$build/CMakeCache.txt" ]] || ! grep -qx 'PYMCP_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  say "configuring $build (clang, -DPYMCP_FUZZ=ON -DPYMCP_SANITIZE=ON)"
  cmake -S "$root" -B "$build" \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DPYMCP_FUZZ=ON -DPYMCP_SANITIZE=ON -DPYMCP_BUILD_TESTS=OFF >&2
fi
say "building pymcp_fuzz_server"
cmake --build "$build" --target pymcp_fuzz_server -j"$(nproc)" >&2
fuzzer="$build/tests/fuzz/pymcp_fuzz_server"
built=$(date +%s)
say "build took $((built - start)) s"

# ASan/UBSan settings as in tests/sanitizers/run.sh; libFuzzer does its own leak checking per
# input (-detect_leaks=1), so LSan's at-exit check stays on too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:malloc_context_size=10:allocator_may_return_null=1:check_initialization_order=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Symbolised stacks in reports (llvm-14 is installed by scripts/setup.sh).
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" && -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

# Per-input limits: a whole input (tool calls included) must finish in seconds; an input may
# not grow the process beyond 2 GiB (an allocation of more is reported as a finding).
common=(-timeout=25 -rss_limit_mb=2560 -malloc_limit_mb=2048 -max_len=16384 -print_final_stats=1)

# 1. Replay every kept input: the seeds and the regression inputs of earlier findings. Named one
#    by one, so each runs exactly as stored (a corpus folder would be cut to -max_len).
inputs=("$here"/corpus/*)
say "replaying tests/fuzz/corpus (${#inputs[@]} inputs)"
"$fuzzer" "${common[@]}" "${inputs[@]}" >&2
replayed=$(date +%s)
say "replay took $((replayed - built)) s"

# 2. Fuzz for the bounded time over a working copy of the corpus.
findings="$build/findings"
mkdir -p "$findings"
if [[ -n "${PYMCP_FUZZ_WORK:-}" ]]; then
  work="$PYMCP_FUZZ_WORK"
  mkdir -p "$work"
else
  work="$(mktemp -d "$build/fuzz-run.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/corpus"
cp -n "$here/corpus"/* "$work/corpus/" 2>/dev/null || true
say "fuzzing for $seconds s (jobs: $fuzz_jobs) over $work/corpus"
status=0
if (( fuzz_jobs > 1 )); then
  (cd "$work" && "$fuzzer" "${common[@]}" -max_total_time="$seconds" -jobs="$fuzz_jobs" -workers="$fuzz_jobs" \
     -artifact_prefix="$findings/" "$@" corpus >&2) || status=$?
  cat "$work"/fuzz-*.log >&2 2>/dev/null || true
else
  (cd "$work" && "$fuzzer" "${common[@]}" -max_total_time="$seconds" -artifact_prefix="$findings/" "$@" corpus >&2) \
    || status=$?
fi
finished=$(date +%s)
say "fuzzing took $((finished - replayed)) s (total $((finished - start)) s)"
if (( status != 0 )); then
  say "FAILED: a finding was saved under $findings (crash-*, leak-*, timeout-*, oom-*)"
  say "reproduce: $fuzzer $findings/<file>; minimise and keep it as a regression input: docs/hardening.md"
  exit "$status"
fi
say "no finding"
