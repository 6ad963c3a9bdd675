#!/usr/bin/env bash
# outq on a 3-primary Redis Cluster: one queue of 1 partition against 3 (scripts/bench/cluster.py).
# Loopback only; installs what it needs (Debian); stops what it started.
#
#   scripts/bench/cluster.sh [--n 50000] [--partitions 1,3] [--repeat R]
#
# OUTQ_BENCH_NO_BUILD=1 skips scripts/build.sh (when the caller has just built).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bash "$root/scripts/install-deps.sh"
if ! dpkg-query -W -f='${Status}' nginx 2>/dev/null | grep -q "install ok installed"; then
  sudo=; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
if [[ ${OUTQ_BENCH_NO_BUILD:-0} != 1 ]]; then
  bash "$root/scripts/build.sh" >/dev/null
fi
exec /usr/bin/python3 "$root/scripts/bench/cluster.py" "$@"
