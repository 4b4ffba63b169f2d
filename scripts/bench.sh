#!/usr/bin/env bash
# Benchmarks python-mcp side by side with its peers, against the targets of issue 6.
#
#   scripts/bench.sh            full run (~5 min): writes docs/benchmarks.md and tests/bench/results.json
#   scripts/bench.sh --quick    a few samples of every measure (~15 s): <build dir>/bench-quick/{benchmarks.md,results.json}
#
# Other options:
#   --build-dir DIR     build and use DIR/python-mcp instead of build/
#   --only m1,m2        run some measures only (names: node tests/bench/run.mjs --help)
#   --json FILE --md FILE   write the results elsewhere
#
# It builds the Release binary (cmake -DCMAKE_BUILD_TYPE=Release into build/, target python-mcp),
# runs `npm ci` in tests/interop when its node_modules is missing (the pinned clients and peer
# servers: @modelcontextprotocol/sdk, @modelcontextprotocol/server-everything,
# mcp-server-code-runner), then tests/bench/run.mjs. docs/benchmarks.md is generated: never edit
# it by hand. Needs the packages scripts/setup.sh installs (cmake, a C++20 compiler, python3.11-dev,
# node >= 18, npm).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

build="$root/build"
run_args=()
quick=0
custom_out=0
while (( $# > 0 )); do
  case "$1" in
    --build-dir) build="$(cd "$2" 2>/dev/null && pwd || echo "$2")"; shift 2 ;;
    --quick) run_args+=(--quick); quick=1; shift ;;
    --json|--md) run_args+=("$1" "$2"); custom_out=1; shift 2 ;;
    --only) run_args+=("$1" "$2"); shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'bench: %s\n' "$*" >&2; }

# --- Release build ------------------------------------------------------------------------------
cache="$build/CMakeCache.txt"
if [[ ! -f "$cache" ]] || ! grep -qx 'CMAKE_BUILD_TYPE:STRING=Release' "$cache"; then
  say "configuring $build (Release)"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPYMCP_BUILD_TESTS=OFF >&2
fi
say "building $build/python-mcp"
cmake --build "$build" -j2 --target python-mcp >&2

# --- npm packages (pinned by tests/interop/package-lock.json) -----------------------------------
interop="$root/tests/interop"
if [[ ! -f "$interop/node_modules/@modelcontextprotocol/sdk/package.json" \
   || ! -f "$interop/node_modules/@modelcontextprotocol/server-everything/package.json" \
   || ! -f "$interop/node_modules/mcp-server-code-runner/package.json" ]]; then
  say "npm ci in tests/interop"
  (cd "$interop" && npm ci --no-audit --no-fund </dev/null) >&2
fi

# --- the benchmark ------------------------------------------------------------------------------
if (( quick && !custom_out )); then
  run_args+=(--json "$build/bench-quick/results.json" --md "$build/bench-quick/benchmarks.md")
fi
export PYMCP_BIN="$build/python-mcp"
exec node "$root/tests/bench/run.mjs" "${run_args[@]}"
