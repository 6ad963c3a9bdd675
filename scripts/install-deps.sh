#!/usr/bin/env bash
# Installs the Debian 12 packages outq needs, when missing.
#   scripts/install-deps.sh               to build, test and run (the development machine, CI)
#   scripts/install-deps.sh --build-only  to build the release binary alone (the image's builder stage)
#   scripts/install-deps.sh --image       also podman and debootstrap, to build the image (test.sh --full)
set -euo pipefail
build_only=0 image=0
case ${1:-} in
  "") ;;
  --build-only) build_only=1 ;;
  --image) image=1 ;;
  *) echo "usage: scripts/install-deps.sh [--build-only|--image]" >&2; exit 2 ;;
esac
packages=(g++ cmake ninja-build ccache pkg-config libboost1.81-dev rapidjson-dev libhiredis-dev libssl-dev ca-certificates)
if ((!build_only)); then
  # jq: the shell producer helpers (clients/shell); prometheus: promtool for the metrics test and the
  # alert rules; python3-yaml: the deploy/ manifests' tests; systemd: systemd-analyze verify of the unit;
  # clang and libclang-rt-dev: the libFuzzer targets with ASan and UBSan (scripts/fuzz.sh); chromium and
  # python3-websocket: the web dashboard's tests drive a headless browser over its DevTools protocol.
  packages+=(doctest-dev openssl redis-server redis-tools python3 python3-redis curl clang-format
             jq prometheus python3-yaml systemd clang libclang-rt-dev chromium python3-websocket)
fi
((image)) && packages+=(podman debootstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
((build_only)) && exit 0

# The Node producer helper's test (tests/integration/test_clients.py) needs clients/node's
# pinned `redis` package; only where node and npm are installed (without node the test
# says so and skips). node_modules is not committed (clients/node/.gitignore).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
node_dir=$root/clients/node
if command -v node >/dev/null && command -v npm >/dev/null &&
   [[ ! -f $node_dir/node_modules/.package-lock.json || $node_dir/package-lock.json -nt $node_dir/node_modules/.package-lock.json ]]; then
  echo "npm ci in clients/node" >&2
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    echo "install-deps: npm ci in clients/node failed; test_clients.py will try again" >&2
fi
