#!/usr/bin/env bash
# Configures (once) and builds outq into ${OUTQ_BUILD_DIR:-build} with Ninja and ccache.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${OUTQ_BUILD_DIR:-$root/build}
if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${OUTQ_BUILD_TYPE:-RelWithDebInfo} >/dev/null
fi
cmake --build "$build" -- -j"$(nproc)"
