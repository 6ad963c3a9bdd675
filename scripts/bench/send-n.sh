#!/usr/bin/env bash
# outq against BullMQ in one run: both drain the same N pre-enqueued jobs (one
# HTTP POST of a Mews-shaped body each) from one redis-server to one nginx, and
# one table compares jobs/s, worker CPU, peak RSS, Redis/nginx CPU and latency.
# Loopback only; installs what it needs (Debian, npm); stops what it started.
#
#   scripts/bench/send-n.sh [--n 100000] [--https] [--slow] [--repeat R] [--only outq|bullmq]
#   scripts/bench/send-n.sh --n 200 --quick      # outq only, no npm; non-zero unless every job was sent
#   scripts/bench/send-n.sh --help               # every option (scripts/bench/send_n.py)
#
# OUTQ_BENCH_NO_BUILD=1 skips scripts/build.sh (when the caller has just built).
# OUTQ_BENCH_PY names another bench of this folder to run after the same set-up
# (scripts/bench/latency.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench=$root/scripts/bench
script=$bench/${OUTQ_BENCH_PY:-send_n.py}

need_node=1 passthrough=0
prev=
for a in "$@"; do
  case $a in
    --quick|--only=outq) need_node=0 ;;
    outq) [[ $prev == --only ]] && need_node=0 ;;
    -h|--help|--mews-batch) passthrough=1 ;;
  esac
  prev=$a
done
if ((passthrough)); then
  exec /usr/bin/python3 "$script" "$@"
fi

apt_install() {  # packages not yet installed, from Debian
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "installing: ${missing[*]}" >&2
  local sudo=; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

bash "$root/scripts/install-deps.sh"            # compiler, libraries, redis-server, openssl, python3
apt_install nginx
if ((need_node)); then
  # BullMQ's side: Node and npm from Debian unless already on PATH (Debian 12's nodejs 18 will do).
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then apt_install nodejs npm; fi
  if [[ ! -f $bench/peers/bullmq/node_modules/.package-lock.json ||
        $bench/peers/bullmq/package-lock.json -nt $bench/peers/bullmq/node_modules/.package-lock.json ]]; then
    echo "npm ci in scripts/bench/peers/bullmq" >&2
    # npm ci fails where the registry lacks another platform's optional packages (msgpackr-extract);
    # npm install --no-save then installs from the same lock file without rewriting it.
    (cd "$bench/peers/bullmq" &&
      { npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
        npm install --no-save --no-audit --no-fund --loglevel=error >/dev/null; })
  fi
fi
if [[ ${OUTQ_BENCH_NO_BUILD:-0} != 1 ]]; then
  bash "$root/scripts/build.sh" >/dev/null
fi
exec /usr/bin/python3 "$script" "$@"
