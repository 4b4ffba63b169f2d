#!/usr/bin/env bash
# The MCP conformance suite (@modelcontextprotocol/conformance, pinned in package.json) against
# python-mcp --http, checked against expected-failures.yml: exit 0 when exactly the listed
# scenarios fail. ctest runs it (label interop); by hand:
#   PYMCP_BIN=build/python-mcp tests/conformance/run.sh
# The suite cannot send an Authorization header, so the server runs with the test-only
# --http-insecure-no-token on 127.0.0.1 (docs/security.md). Node >= 22 comes from node_modules
# (the `node` npm package), installed by scripts/setup.sh --with-tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${PYMCP_BIN:?set PYMCP_BIN to the built python-mcp binary (ctest does this)}"
[[ -x "$here/node_modules/.bin/conformance" && -x "$here/node_modules/.bin/node" ]] || {
  echo "tests/conformance/node_modules is missing: run scripts/setup.sh --with-tests" >&2; exit 1; }
export PATH="$here/node_modules/.bin:$PATH"

scratch="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

HOME="$scratch" XDG_DATA_HOME="$scratch" "$PYMCP_BIN" --http 127.0.0.1:0 --http-insecure-no-token \
  </dev/null >"$scratch/stdout" 2>"$scratch/stderr" &
server_pid=$!

# The server prints its URL on stderr once it listens; wait for that line (deadline 30 s).
url=""
deadline=$((SECONDS + 30))
while [[ -z "$url" ]]; do
  url="$(grep -o 'http://127\.0\.0\.1:[0-9]*/mcp' "$scratch/stderr" | head -1 || true)"
  if [[ -n "$url" ]]; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null || (( SECONDS > deadline )); then
    echo "python-mcp --http did not start:" >&2; cat "$scratch/stderr" >&2; exit 1
  fi
  sleep 0.05
done

status=0
conformance server --url "$url" --expected-failures "$here/expected-failures.yml" -o "$scratch/results" || status=$?
if [[ -s "$scratch/stdout" ]]; then echo "python-mcp wrote to stdout under --http:" >&2; cat "$scratch/stdout" >&2; status=1; fi
exit "$status"
