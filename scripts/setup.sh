#!/usr/bin/env bash
# Installs whatever python_mcp needs and builds the Release binary in build/.
#
#   scripts/setup.sh               what building and running the server needs (scripts/serve.sh):
#                                  the toolchain, the libraries, the default Python packages;
#                                  builds the target python-mcp (tests off in a new build/)
#   scripts/setup.sh --print-packages [--with-tests]
#                                  prints what it would need (apt packages, then npm) and stops
#   scripts/setup.sh --with-tests  also what the tests need (scripts/test.sh): GoogleTest, pytest,
#                                  clang/llvm for the hardening stages, Dask for the scale-out
#                                  suite, node/npm and the interop npm packages; turns the tests
#                                  on in the same build/ and builds everything
#
# Idempotent and quick when nothing changed: apt is consulted only through dpkg-query (apt-get
# update runs only when a package is missing), `npm ci` runs only when tests/interop's
# package-lock.json changed since the last install, and the build is incremental.
# Works as root or as a user with sudo on a fresh Debian 12 machine.
#
# Everything this script prints goes to stderr: scripts/serve.sh runs it in front of the server,
# whose stdout belongs to the MCP protocol.
set -euo pipefail
exec 3>&1 1>&2   # fd 3: the caller's stdout, for --print-packages only

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'setup: %s\n' "$*"; }

with_tests=0
print_only=0
for arg in "$@"; do
  case "$arg" in
    --with-tests) with_tests=1 ;;
    --print-packages) print_only=1 ;;
    *) say "unknown option $arg (use --with-tests, --print-packages or nothing)"; exit 2 ;;
  esac
done

# --- apt packages -------------------------------------------------------------------------------
packages=(
  build-essential cmake pkg-config
  pybind11-dev nlohmann-json3-dev libspdlog-dev libcli11-dev
  python3-dev python3.11-dev libsqlite3-dev
  # The packages user code finds installed (python/python_tool_readme.md, "Installed packages").
  # pyarrow is not packaged in Debian 12.
  python3-numpy python3-pandas python3-requests python3-scipy python3-matplotlib python3-pil
  python3-openpyxl python3-lxml python3-bs4 python3-tabulate
)
test_packages=(
  libgtest-dev libgmock-dev python3-pytest
  # The hardening stages (docs/hardening.md): clang with libFuzzer and the sanitizer runtimes
  # (libclang_rt.fuzzer-x86_64.a is in libclang-rt-14-dev), llvm-symbolizer for readable reports.
  # gcc's ASan/UBSan runtimes (libasan8, libubsan1) come with build-essential.
  clang libclang-rt-14-dev llvm-14
  # The Dask suite (tests/e2e/test_dask_scale_out.py) runs a real scheduler and workers; users of
  # --dask-scheduler install Dask themselves, matching their cluster (README).
  python3-dask python3-distributed
)
if (( with_tests )); then packages+=("${test_packages[@]}"); fi

node_major() {
  command -v node >/dev/null 2>&1 || { echo 0; return; }
  local v
  v="$(node --version 2>/dev/null || true)"   # v20.11.1
  v="${v#v}"
  v="${v%%.*}"
  [[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo 0
}
if (( with_tests )); then
  if (( $(node_major) < 18 )); then
    packages+=(nodejs npm)
  elif ! command -v npm >/dev/null 2>&1; then
    packages+=(npm)
  fi
fi

if (( print_only )); then
  printf 'apt %s\n' "${packages[@]}" >&3
  if (( with_tests )); then printf 'npm ci tests/interop\nnpm ci tests/conformance\n' >&3; fi
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
  [[ "$status" == ii* ]] || missing+=("$p")
done

if (( ${#missing[@]} > 0 )); then
  say "installing missing packages: ${missing[*]}"
  if (( EUID == 0 )); then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    say "not root and sudo is not installed: install these packages and run again: ${missing[*]}"
    exit 1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
  hash -r
  if (( with_tests && $(node_major) < 18 )); then
    say "node $(node --version 2>/dev/null || echo missing) is older than 18 even after apt; install Node >= 18"
    exit 1
  fi
fi

# --- npm packages for the interop tests ---------------------------------------------------------
# tests/interop: the clients and servers python-mcp is tested against. tests/conformance: the MCP
# conformance suite, which needs Node >= 22 and so brings its own (the `node` npm package) in its
# node_modules; the system Node stays as it is.
npm_ci_if_changed() {
  local dir="$1"
  [[ -f "$dir/package-lock.json" ]] || return 0
  local lock_hash stamp
  lock_hash="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  stamp="$dir/node_modules/.pymcp-lock-sha256"
  if [[ ! -f "$stamp" || "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]]; then
    say "package-lock.json changed (or first run): npm ci in ${dir#"$root"/}"
    (cd "$dir" && npm ci --no-audit --no-fund </dev/null)
    printf '%s\n' "$lock_hash" >"$stamp"
  fi
}
if (( with_tests )); then
  npm_ci_if_changed "$root/tests/interop"
  npm_ci_if_changed "$root/tests/conformance"
fi

# --- Release build ------------------------------------------------------------------------------
# One Release build in build/ serves every purpose. Configure when there is no Release cache for
# this source tree yet (the server alone: tests off, so GoogleTest is not needed), and when the
# tests are wanted but not on in the cache; afterwards `cmake --build` re-runs configuration by
# itself whenever a CMakeLists.txt changes.
cache="$root/build/CMakeCache.txt"
if [[ ! -f "$cache" ]] \
   || ! grep -qx 'CMAKE_BUILD_TYPE:STRING=Release' "$cache" \
   || ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$root" "$cache"; then
  say "configuring build/ (Release$( (( with_tests )) && echo ', tests on'))"
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DPYMCP_BUILD_TESTS=$( (( with_tests )) && echo ON || echo OFF)
elif (( with_tests )) && ! grep -qx 'PYMCP_BUILD_TESTS:BOOL=ON' "$cache"; then
  say "turning the tests on in build/"
  cmake -S "$root" -B "$root/build" -DPYMCP_BUILD_TESTS=ON
fi
if (( with_tests )); then
  cmake --build "$root/build" -j"$(nproc)"
else
  cmake --build "$root/build" -j"$(nproc)" --target python-mcp
fi
say "ready: $root/build/python-mcp"
