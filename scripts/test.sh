#!/usr/bin/env bash
# Sets up and builds python_mcp if needed, then runs the whole test suite with ctest:
# GoogleTest unit and engine tests, the end-to-end pytest suites (tests/e2e) and the interop
# suites with real MCP clients (tests/interop). Extra arguments go to ctest, e.g.
#   scripts/test.sh -L e2e          scripts/test.sh -R interop_sdk_client
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/scripts/setup.sh" </dev/null

# --- stage: Release build, all suites -----------------------------------------------------------
ctest --test-dir "$root/build" --output-on-failure -j2 "$@"

# --- HOOK: sanitizer stage (not implemented yet) ------------------------------------------------
# To be added: configure build-asan/ with -DPYMCP_SANITIZE=ON (ASan + UBSan), build it and run
# the suites against that binary.

# --- HOOK: fuzz stage (not implemented yet) -----------------------------------------------------
# To be added: configure build-fuzz/ with clang and -DPYMCP_FUZZ=ON, build the libFuzzer targets
# and run each for a bounded time over tests/fuzz/corpus.
