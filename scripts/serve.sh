#!/usr/bin/env bash
# Sets up and builds python_mcp if needed, then runs the server on stdio.
# Usage: scripts/serve.sh [python-mcp options...]   (see build/python-mcp --help)
#
# stdout belongs to the MCP protocol from the first byte: set-up output goes to stderr, and
# set-up reads nothing from stdin (the client's messages wait for the server).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" </dev/null >&2
exec "$root/build/python-mcp" "$@"
