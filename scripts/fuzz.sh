#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan (in ${OUTQ_FUZZ_BUILD_DIR:-build-fuzz})
# and runs them on their seed corpus (tests/fuzz/corpus/<target>/), new inputs kept in a
# scratch corpus beside the build.
#   scripts/fuzz.sh                    every target, 20 s each
#   scripts/fuzz.sh TARGET [SECONDS]   one target (a name of tests/fuzz/fuzz_<target>.cpp)
#   scripts/fuzz.sh all SECONDS        every target, SECONDS each
# A crash leaves its input as build-fuzz/crash-<target>-*: add it to the target's corpus
# (it is then run on every call) and fix the bug. Exits non-zero on any finding.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Every tests/fuzz/fuzz_<target>.cpp (CMakeLists.txt lists the same: OUTQ_FUZZ_TARGETS).
mapfile -t targets < <(cd "$root/tests/fuzz" && ls fuzz_*.cpp | sed 's/^fuzz_//; s/\.cpp$//')
which=${1:-all} seconds=${2:-20}
if [[ $which != all ]]; then
  [[ " ${targets[*]} " == *" $which "* ]] || { echo "fuzz.sh: unknown target $which (${targets[*]})" >&2; exit 2; }
  targets=("$which")
fi
[[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a number" >&2; exit 2; }
command -v clang++ >/dev/null || { echo "fuzz.sh: needs clang (scripts/install-deps.sh installs it)" >&2; exit 2; }
build=${OUTQ_FUZZ_BUILD_DIR:-$root/build-fuzz}
if [[ ! -f $build/build.ninja ]]; then
  flags="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  flags+=" -fsanitize-ignorelist=$root/tests/fuzz/ubsan-ignorelist.txt"  # RapidJSON 1.1.0's own (see the file)
  CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOUTQ_FUZZ=ON -DOUTQ_BUILD_TESTS=OFF -DCMAKE_CXX_FLAGS="$flags" >/dev/null
fi
cmake --build "$build" --target "${targets[@]/#/fuzz_}" -- -j"$(nproc)" >/dev/null
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=()
for t in "${targets[@]}"; do
  scratch=$build/corpus/$t
  mkdir -p "$scratch"
  log=$build/fuzz-$t.log
  if "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/crash-$t-" "$scratch" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1; then
    echo "fuzz $t: ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?') runs in ${seconds} s"
  else
    echo "fuzz $t: FAILED (log $log)"; tail -n 30 "$log"; failed+=("$t")
  fi
done
((${#failed[@]} == 0)) || { echo "fuzz: findings in ${failed[*]}"; exit 1; }
