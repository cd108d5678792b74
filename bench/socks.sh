#!/usr/bin/env bash
# gssocks beside Dante's sockd (GSS-API build) in one run, with our client
# package as the load generator: bulk per level and enctype against the
# crypto floor, concurrency, setup, idle sessions, socksify + curl, perf
# profile. Writes the report to -out (make bench-socks: bench/socks.md).
#   bench/socks.sh [-quick] [-size 1073741824] [-runs 3] [-idle 10000] [-out FILE]
#   bench/socks.sh -soak 5m -sessions 1000 [-out FILE]
# Run as root for 10 000 idle sessions (the descriptor hard limit is raised).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bash scripts/install-deps.sh >/dev/null
exec go run ./bench/socksbench "$@"
