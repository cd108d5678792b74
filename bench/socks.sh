#!/usr/bin/env bash
# Side-by-side benchmark of gssocks and Dante's sockd (both with GSS-API)
# with the same client, Dante's socksify around curl: 1 GiB downloads at
# protection levels clear, integrity and confidentiality (median of 3),
# server CPU seconds per GiB, and the GSS-API connection rate.
# Usage: bench/socks.sh [-size 1073741824] [-runs 3] [-out bench/socks.md]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bash scripts/install-deps.sh >/dev/null
exec go run ./bench/socksbench "$@"
