#!/usr/bin/env bash
# Bytes in Redis per waiting job, per result and results event, and per dead
# letter (docs/operations.md, "Sizing Redis memory"): a redis-server without
# persistence, the provider sandbox and the real worker, on loopback; stops
# what it started. About 10 s with the defaults.
#
#   scripts/bench/memory.sh [--n 10000] [--dead 2000] [--response-bytes 250] [--json] [--sizing]
#   scripts/bench/memory.sh --help               # every option (scripts/bench/memory.py)
#
# The worker is ${OUTQ_BUILD_DIR:-build}/worker/outq (or --build-dir DIR), built
# first by scripts/build.sh unless OUTQ_BENCH_NO_BUILD=1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
for a in "$@"; do
  case $a in
    -h|--help) exec /usr/bin/python3 "$root/scripts/bench/memory.py" "$@" ;;
  esac
done
bash "$root/scripts/install-deps.sh"            # redis-server, python3-redis, the build's dependencies
if [[ ${OUTQ_BENCH_NO_BUILD:-0} != 1 ]]; then
  bash "$root/scripts/build.sh" >/dev/null
fi
exec /usr/bin/python3 "$root/scripts/bench/memory.py" "$@"
