#!/usr/bin/env bash
# The suite against an AddressSanitizer + UndefinedBehaviorSanitizer build of
# outq (GCC, in ${OUTQ_ASAN_BUILD_DIR:-build-asan}): the unit tests, then the
# integration suite with the sanitized worker, CLI and web server. Errors halt
# the process, leaks are checked at exit, and every report is also written
# under $reports: any report fails the run, whatever the test said.
#
#   scripts/sanitize.sh            unit and integration tests (what scripts/test.sh --full runs)
#   scripts/sanitize.sh --unit     the unit tests only
#
# Ends with "N passed, N failed". Assertions about time or CPU share are not
# meaningful under the sanitizers (they measure the sanitizer): the integration
# run sets OUTQ_SANITIZED=1, which those tests read to only print their figures.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
unit_only=0
case ${1:-} in
  "") ;;
  --unit) unit_only=1 ;;
  *) echo "usage: scripts/sanitize.sh [--unit]" >&2; exit 2 ;;
esac
build=${OUTQ_ASAN_BUILD_DIR:-$root/build-asan}
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
if ! cmake --build "$build" -- -j"$(nproc)" >"$build/build.log" 2>&1; then
  tail -30 "$build/build.log"
  echo "0 passed, 1 failed"
  exit 1
fi
reports=$(mktemp -d /tmp/outq-sanitizer.XXXXXX)
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:log_path=$reports/asan:log_exe_name=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan:log_exe_name=1"
passed=0 failed=0

echo "== unit tests (sanitized)"
"$build/tests/outq_unit_tests" --no-intro=true >"$reports/unit.txt" 2>&1
tail -3 "$reports/unit.txt"
line=$(grep -E '^\[doctest\] test cases:' "$reports/unit.txt" | tail -1)
if [[ $line =~ ([0-9]+)\ passed\ \|\ ([0-9]+)\ failed ]]; then
  passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
else
  failed=$((failed + 1)); echo "sanitized unit tests did not report (a sanitizer stopped them?)"
fi

if ((!unit_only)); then
  echo "== integration tests (the sanitized outq)"
  OUTQ_SANITIZED=1 /usr/bin/python3 "$root/tests/integration/run.py" --build-dir "$build" >"$reports/integration.txt" 2>&1
  grep -E '^(PASS|FAIL|integration:)' "$reports/integration.txt" | tail -5
  line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed' "$reports/integration.txt" | tail -1)
  if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
  else
    failed=$((failed + 1)); echo "sanitized integration tests did not report"
  fi
fi

found=$(find "$reports" -name 'asan*' -o -name 'ubsan*' | sort)
if [[ -n $found ]]; then
  failed=$((failed + 1))
  echo "FAIL sanitizer reports:"
  for f in $found; do echo "--- $f"; head -40 "$f"; done
else
  passed=$((passed + 1)); echo "PASS no sanitizer report"
fi
echo "$passed passed, $failed failed"
((failed == 0))
