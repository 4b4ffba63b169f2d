#!/usr/bin/env bash
# Sets up and builds python_mcp if needed, then runs the server on stdio.
# Usage: scripts/serve.sh [python-mcp options...]   (see build/python-mcp --help)
#
# It installs only what running needs (scripts/setup.sh without --with-tests): no test packages,
# no npm; it builds only the target python-mcp.
#
# stdout belongs to the MCP protocol from the first byte: set-up output goes to stderr, and
# set-up reads nothing from stdin (the client's messages wait for the server).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" </dev/null >&2
exec "$root/build/python-mcp" "$@"
