#!/usr/bin/env bash
# outq-wait.sh: waits for the outcomes of outq jobs (docs/protocol.md, format 2) with redis-cli.
# Needs redis-cli (Debian redis-tools) and jq. Run with --help for the usage.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: outq-wait.sh [options] JOB_ID ...
       outq-wait.sh [options] -          (job ids from stdin, one per line)

Waits until every job has an outcome (its result value outq:{QUEUE}:result:<id> has
status sent, dead or cancelled) or the timeout passes, then prints one line per job
that has one, in the order given: the outcome JSON (with --status: "ID<TAB>STATUS").
Jobs still without an outcome are named on stderr.

It never misses an outcome: before each read of the results it reads the last id of
the results stream, then follows the stream from that id (XREAD BLOCK, not $) and
reads the results again after each wake-up.

Options:
  -u, --url URL          Redis URL (default: $OUTQ_REDIS_URL, else redis://127.0.0.1:6379)
  -q, --queue NAME       queue (default: $OUTQ_QUEUE, else default)
  -t, --timeout S        seconds to wait in all (default 30; 0: look once)
      --status           print "ID<TAB>STATUS" lines instead of the outcome JSON
  -h, --help             this text

Exit status: 0 every job was sent; 1 a job is dead or cancelled, or the timeout
passed first; 2 usage error; 3 Redis error.

Examples:
  outq-wait.sh order-42
  outq-wait.sh -q mail -t 120 --status order-42 order-43
  outq-enqueue.sh --job-ids < jobs.jsonl | outq-wait.sh -t 600 -
EOF
}

die() { echo "outq-wait.sh: $2" >&2; exit "$1"; }

url=${OUTQ_REDIS_URL:-redis://127.0.0.1:6379}
queue=${OUTQ_QUEUE:-default}
timeout=30
status_only=0
ids=()
from_stdin=0
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -u|--url) (($# >= 2)) || die 2 "$1 needs a value"; url=$2; shift 2 ;;
    --url=*) url=${1#*=}; shift ;;
    -q|--queue) (($# >= 2)) || die 2 "$1 needs a value"; queue=$2; shift 2 ;;
    --queue=*) queue=${1#*=}; shift ;;
    -t|--timeout) (($# >= 2)) || die 2 "$1 needs a value"; timeout=$2; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --status) status_only=1; shift ;;
    --) shift; ids+=("$@"); break ;;
    -) from_stdin=1; shift ;;
    -*) die 2 "unknown option $1 (see --help)" ;;
    *) ids+=("$1"); shift ;;
  esac
done

command -v redis-cli >/dev/null || die 2 "redis-cli is missing (Debian: apt-get install redis-tools)"
command -v jq >/dev/null || die 2 "jq is missing (Debian: apt-get install jq)"
[[ $queue =~ ^[^{}:#@[:space:]]+$ ]] || die 2 "invalid queue name '$queue' (no {, }, :, #, @ or spaces)"
[[ $timeout =~ ^[0-9]+([.][0-9]+)?$ ]] || die 2 "--timeout must be seconds (e.g. 30 or 0.5), not '$timeout'"
if ((from_stdin)); then
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ -n $line ]] && ids+=("$line")
  done
fi
((${#ids[@]})) || { usage >&2; exit 2; }

results_key="outq:{$queue}:results"
result_prefix="outq:{$queue}:result:"
cli=(redis-cli --no-auth-warning -e -u "$url")
now_ms() { date +%s%3N; }
deadline=$(($(now_ms) + $(awk -v t="$timeout" 'BEGIN { printf "%d", t * 1000 }')))

declare -A outcome=() state=()
missing=()
for id in "${ids[@]}"; do  # each id once, in the order given
  [[ -n ${state[$id]+x} ]] && continue
  state[$id]=
  missing+=("$id")
done
ids=("${missing[@]}")

# Reads the results of the jobs in `missing` (MGET, 1000 at a time) and keeps the outcomes.
check() {
  local start chunk keys out verdicts i id
  local still=()
  for ((start = 0; start < ${#missing[@]}; start += 1000)); do
    chunk=("${missing[@]:start:1000}")
    keys=("${chunk[@]/#/$result_prefix}")
    out=$("${cli[@]}" MGET "${keys[@]}" 2>&1 && echo .) || die 3 "redis: $out"
    out=${out%.}  # the "." keeps the trailing empty lines (nil) that $(...) would strip
    mapfile -t values < <(printf '%s' "$out")
    ((${#values[@]} == ${#chunk[@]})) || die 3 "redis: MGET gave ${#values[@]} values for ${#chunk[@]} keys"
    # One status per value ("" for none), from one jq.
    verdicts=$(printf '%s\n' "${values[@]}" |
      jq -R -r 'if . == "" then "" else (try (fromjson | .status // "") catch "?") end') ||
      die 3 "jq failed on a result value"
    mapfile -t statuses <<<"$verdicts"
    for ((i = 0; i < ${#chunk[@]}; i++)); do
      id=${chunk[i]}
      case ${statuses[i]:-} in
        sent|dead|cancelled) state[$id]=${statuses[i]}; outcome[$id]=${values[i]} ;;
        *) still+=("$id") ;;
      esac
    done
  done
  missing=("${still[@]}")
}

last_event_id() {
  local out
  out=$("${cli[@]}" XREVRANGE "$results_key" + - COUNT 1 2>&1) || die 3 "redis: $out"
  last=${out%%$'\n'*}
  [[ -n $last ]] || last=0-0
  [[ $last =~ ^[0-9]+-[0-9]+$ ]] || die 3 "redis: XREVRANGE $results_key: $out"
}

while :; do
  last_event_id   # first the stream's last id, then the results: an outcome after this id wakes the XREAD
  check
  ((${#missing[@]})) || break
  left=$((deadline - $(now_ms)))
  ((left > 0)) || break
  out=$("${cli[@]}" XREAD COUNT 1 BLOCK "$left" STREAMS "$results_key" "$last" 2>&1) || die 3 "redis: $out"
done

rc=0
for id in "${ids[@]}"; do
  [[ -n ${state[$id]} ]] || continue
  if ((status_only)); then printf '%s\t%s\n' "$id" "${state[$id]}"; else printf '%s\n' "${outcome[$id]}"; fi
  [[ ${state[$id]} == sent ]] || rc=1
done
if ((${#missing[@]})); then
  echo "outq-wait.sh: timed out after ${timeout}s: ${#missing[@]} job(s) without an outcome: ${missing[*]:0:10}$( ((${#missing[@]} > 10)) && echo ' ...')" >&2
  rc=1
fi
exit "$rc"
