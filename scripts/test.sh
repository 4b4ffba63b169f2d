#!/usr/bin/env bash
# Sets up and builds python_mcp if needed, then runs the whole test suite with ctest:
# GoogleTest unit and engine tests, the end-to-end pytest suites (tests/e2e) and the interop
# suites with real MCP clients (tests/interop); then the hardening stages (ASan/UBSan, fuzzing).
# Extra arguments go to the Release stage's ctest, e.g.
#   scripts/test.sh -L e2e          scripts/test.sh -R interop_sdk_client
# (add PYMCP_SKIP_SANITIZERS=1 PYMCP_SKIP_FUZZ=1 for just that).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Stages, each timed (stderr):
#   release     scripts/setup.sh --with-tests (packages, npm, Release build in build/) + every
#               ctest suite (unit, engine, e2e, interop, package) but the `long` ones
#   long        the `long` suites (minutes of waiting, little CPU: a 5-minute job) on the same
#               Release build, started after the release stage and run in the background of the
#               sanitizer and fuzz stages; waited for at the end
#   sanitizers  tests/sanitizers/run.sh: ASan + UBSan build in build-asan/, unit/engine/e2e/interop
#   fuzz        tests/fuzz/run.sh: libFuzzer build in build-fuzz/, corpus replay + 60 s of fuzzing
# Every stage runs even when an earlier one failed; the command fails if any did. For local runs
# only (CI sets none of these): PYMCP_SKIP_SANITIZERS=1, PYMCP_SKIP_FUZZ=1 skip those stages.
# See docs/testing.md and docs/hardening.md.

now() { date +%s; }
fmt() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
say() { printf 'test.sh: %s\n' "$*" >&2; }
failed_mark() { if (( $1 != 0 )); then echo "  FAILED (exit $1)"; fi; }
t0=$(now)
summary=()
failed=()

# --- stage: Release build, all suites -----------------------------------------------------------
"$root/scripts/setup.sh" --with-tests </dev/null
t1=$(now)
summary+=("$(printf '%-30s' 'release build (setup.sh --with-tests)') $(fmt $((t1 - t0)))")
status=0
ctest --test-dir "$root/build" --output-on-failure -j2 -LE long "$@" || status=$?
t2=$(now)
summary+=("$(printf '%-30s' 'release suites (ctest -j2)') $(fmt $((t2 - t1)))$(failed_mark "$status")")
if (( status != 0 )); then failed+=(release); fi

# --- stage: long suites, in the background ------------------------------------------------------
# Only when no arguments picked suites: `scripts/test.sh -R x` means just those.
long_log="$root/build/long-suites.log"
long_pid=
if (( $# == 0 )); then
  ctest --test-dir "$root/build" --output-on-failure -L long >"$long_log" 2>&1 </dev/null &
  long_pid=$!
  say "long suites started in the background (log: $long_log)"
fi

# --- stage: ASan + UBSan build, unit/engine/e2e/interop suites ----------------------------------
if [[ "${PYMCP_SKIP_SANITIZERS:-}" == 1 ]]; then
  say "sanitizer stage skipped (PYMCP_SKIP_SANITIZERS=1)"
  summary+=("$(printf '%-30s' sanitizers) skipped")
else
  status=0
  PYMCP_ASAN_JOBS=2 "$root/tests/sanitizers/run.sh" </dev/null || status=$?
  t3=$(now)
  summary+=("$(printf '%-30s' 'sanitizers (build + suites)') $(fmt $((t3 - t2)))$(failed_mark "$status")")
  if (( status != 0 )); then failed+=(sanitizers); fi
fi

# --- stage: libFuzzer build, corpus replay, bounded fuzzing -------------------------------------
t4=$(now)
if [[ "${PYMCP_SKIP_FUZZ:-}" == 1 ]]; then
  say "fuzz stage skipped (PYMCP_SKIP_FUZZ=1)"
  summary+=("$(printf '%-30s' fuzz) skipped")
else
  status=0
  "$root/tests/fuzz/run.sh" </dev/null || status=$?   # 60 s unless PYMCP_FUZZ_SECONDS is set
  t5=$(now)
  summary+=("$(printf '%-30s' 'fuzz (build + replay + 60 s)') $(fmt $((t5 - t4)))$(failed_mark "$status")")
  if (( status != 0 )); then failed+=(fuzz); fi
fi

if [[ -n "$long_pid" ]]; then
  status=0
  wait "$long_pid" || status=$?
  cat "$long_log" >&2
  summary+=("$(printf '%-30s' 'long suites (background)') ended $(fmt $(($(now) - t2))) after the release stage$(failed_mark "$status")")
  if (( status != 0 )); then failed+=(long); fi
fi

say "stage timings:"
for line in "${summary[@]}"; do say "  $line"; done
say "  $(printf '%-30s' total) $(fmt $(($(now) - t0)))"
if (( ${#failed[@]} > 0 )); then
  say "FAILED stages: ${failed[*]}"
  exit 1
fi
say "all stages passed"
