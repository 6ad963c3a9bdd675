#!/usr/bin/env bash
# outq against BullMQ in the same run (see scripts/bench/send_n.py for the workload).
#   scripts/bench/send-n.sh [--n 100000] [--https] [--slow] [--mews-batch] [--quick]
# Loopback only; installs what it needs from Debian and npm; stops what it started.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bash "$root/scripts/install-deps.sh"
for p in nginx; do
  command -v $p >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null
done
bash "$root/scripts/build.sh" >/dev/null
if [[ " $* " != *" --quick "* && " $* " != *" --mews-batch "* ]]; then
  command -v node >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  peers=$root/scripts/bench/peers/bullmq
  [[ -d $peers/node_modules/bullmq ]] || (cd "$peers" && npm ci --no-audit --no-fund >/dev/null 2>&1 || npm install --no-audit --no-fund >/dev/null)
fi
exec /usr/bin/python3 "$root/scripts/bench/send_n.py" "$@"
