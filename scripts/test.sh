#!/usr/bin/env bash
# Runs the whole test suite: unit tests (doctest), integration tests (real
# redis-server, real HTTP sandbox, the real worker binary), the run.sh smoke
# test and a tiny run of the benchmark (correctness only). Ends with
# "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
full=0  # --full: the long chaos profile, the integration suite again under the deploy/redis ACL
        # users, the container image built with podman, 120 s of each fuzz target, and the unit and
        # integration suites against an ASan+UBSan build (scripts/sanitize.sh)
for arg in "$@"; do
  case $arg in
    --full) full=1 ;;
    *) echo "usage: scripts/test.sh [--full]" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export OUTQ_BUILD_DIR=${OUTQ_BUILD_DIR:-$root/build}

deps_args=()
((full)) && deps_args=(--image)
bash scripts/install-deps.sh "${deps_args[@]}" || { echo "0 passed, 1 failed"; exit 1; }
if ! bash scripts/build.sh; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

passed=0 failed=0
failures=()  # the checks run here that failed, named again at the end
logs=$(mktemp -d /tmp/outq-test.XXXXXX)

echo "== formatting (clang-format, .clang-format)"
if git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror >"$logs/format.txt" 2>&1; then
  passed=$((passed + 1)); echo "PASS formatting"
else
  failed=$((failed + 1)); failures+=("formatting"); echo "FAIL formatting"; head -20 "$logs/format.txt"
fi

echo "== unit tests"
"$OUTQ_BUILD_DIR/tests/outq_unit_tests" --no-intro=true 2>&1 | tee "$logs/unit.txt"
line=$(grep -E '^\[doctest\] test cases:' "$logs/unit.txt" | tail -1)
if [[ $line =~ ([0-9]+)\ passed\ \|\ ([0-9]+)\ failed ]]; then
  passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
else
  failed=$((failed + 1)); failures+=("unit tests did not report"); echo "unit tests did not report (crashed?)"
fi

fuzz_seconds=10
((full)) && fuzz_seconds=120
echo "== fuzzing (scripts/fuzz.sh: every target ${fuzz_seconds} s, ASan and UBSan, on its corpus)"
if bash scripts/fuzz.sh all "$fuzz_seconds" 2>&1 | tee "$logs/fuzz.txt" && ! grep -q FAILED "$logs/fuzz.txt"; then
  passed=$((passed + 1)); echo "PASS fuzzing"
else
  failed=$((failed + 1)); failures+=("fuzzing"); echo "FAIL fuzzing"
fi

# integration LOG [ENV=VALUE ...]: the integration suite, its count added to the totals.
integration() {
  local log=$1; shift
  env "$@" /usr/bin/python3 tests/integration/run.py --build-dir "$OUTQ_BUILD_DIR" 2>&1 | tee "$log"
  local line
  line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
  else
    failed=$((failed + 1)); failures+=("integration tests did not report ($*)"); echo "integration tests did not report (crashed?)"
  fi
}
echo "== integration tests"
if ((full)); then
  integration "$logs/integration.txt" OUTQ_IMAGE_TEST=1
  echo "== integration tests under the deploy/redis ACL users (OUTQ_TEST_ACL=1)"
  integration "$logs/integration-acl.txt" OUTQ_TEST_ACL=1
else
  integration "$logs/integration.txt"
fi

if ((full)); then
  echo "== the sanitized suite (scripts/sanitize.sh: ASan and UBSan, unit and integration tests)"
  bash scripts/sanitize.sh 2>&1 | tee "$logs/sanitize.txt"
  line=$(tail -1 "$logs/sanitize.txt")
  if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
    ((BASH_REMATCH[2] == 0)) || failures+=("the sanitized suite")
  else
    failed=$((failed + 1)); failures+=("the sanitized suite did not report")
  fi
fi

echo "== chaos (tests/chaos/chaos.py)"
chaos_args=() chaos_limit=420
if ((full)); then chaos_args=(--long) chaos_limit=1200; fi
timeout "$chaos_limit" /usr/bin/python3 tests/chaos/chaos.py "${chaos_args[@]}" 2>&1 | tee "$logs/chaos.txt"
if tail -1 "$logs/chaos.txt" | grep -q '^chaos: PASS'; then
  passed=$((passed + 1)); echo "PASS chaos"
else
  failed=$((failed + 1)); failures+=("chaos"); echo "FAIL chaos"
fi

echo "== scripts/run.sh --once (smoke)"
if timeout 180 bash scripts/run.sh --once >"$logs/run.txt" 2>&1 && grep -q "sent" "$logs/run.txt"; then
  passed=$((passed + 1)); echo "PASS run.sh --once"
else
  failed=$((failed + 1)); failures+=("run.sh --once"); echo "FAIL run.sh --once"; tail -40 "$logs/run.txt"
fi

echo "== scripts/bench/send-n.sh --n 200 --quick (the benchmark runs end to end; no speed is asserted)"
if OUTQ_BENCH_NO_BUILD=1 timeout 300 bash scripts/bench/send-n.sh --n 200 --quick >"$logs/bench.txt" 2>&1; then
  passed=$((passed + 1)); echo "PASS send-n.sh --quick"
else
  failed=$((failed + 1)); failures+=("send-n.sh --quick"); echo "FAIL send-n.sh --quick"; tail -40 "$logs/bench.txt"
fi

# The names of what failed, again, right above the count: a CI log is often
# read from its tail only.
{
  grep -h -E '^(TEST CASE: |.*: ERROR: )' "$logs/unit.txt" 2>/dev/null
  grep -h -E '^integration: failed ' "$logs"/integration*.txt 2>/dev/null
  printf '%s\n' "${failures[@]}"
} | sed '/^$/d; s/^/failed: /' | head -40
rm -rf "$logs"
echo "$passed passed, $failed failed"
((failed == 0))
