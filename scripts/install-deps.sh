#!/usr/bin/env bash
# Installs the Debian 12 packages outq needs to build, test and run, when missing.
set -euo pipefail
# prometheus: for promtool, which checks the /metrics exposition in the integration tests.
packages=(g++ cmake ninja-build ccache pkg-config libboost1.81-dev rapidjson-dev libhiredis-dev doctest-dev
          libssl-dev openssl ca-certificates redis-server python3 python3-redis curl clang-format prometheus)
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
