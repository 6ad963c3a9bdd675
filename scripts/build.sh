#!/usr/bin/env bash
# Configures (once) and builds outq with Ninja and ccache.
#   scripts/build.sh                      the development build (RelWithDebInfo, tests) in ${OUTQ_BUILD_DIR:-build}
#   scripts/build.sh --release [PREFIX]   a Release build of the worker alone in ${OUTQ_BUILD_DIR:-build-release},
#                                         installed stripped into PREFIX (default: BUILD/install): PREFIX/bin/outq
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
release=0 prefix=
case ${1:-} in
  "") ;;
  --release) release=1 prefix=${2:-} ;;
  *) echo "usage: scripts/build.sh [--release [PREFIX]]" >&2; exit 2 ;;
esac
if ((release)); then
  build=${OUTQ_BUILD_DIR:-$root/build-release}
  if [[ ! -f $build/build.ninja ]]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOUTQ_BUILD_TESTS=OFF >/dev/null
  fi
  cmake --build "$build" -- -j"$(nproc)"
  cmake --install "$build" --strip --prefix "${prefix:-$build/install}" >/dev/null
  exit 0
fi
build=${OUTQ_BUILD_DIR:-$root/build}
if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${OUTQ_BUILD_TYPE:-RelWithDebInfo} >/dev/null
fi
cmake --build "$build" -- -j"$(nproc)"
