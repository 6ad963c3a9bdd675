#!/usr/bin/env bash
# outq-enqueue.sh: adds jobs to an outq queue (docs/protocol.md, format 2) with redis-cli.
# Needs redis-cli (Debian redis-tools) and jq. Run with --help for the usage.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: outq-enqueue.sh [options] [JOB_JSON ...]
       outq-enqueue.sh [options] < jobs.jsonl

Adds each job (a JSON object: provider, account, message and optionally id, meta, ...)
with XADD outq:{QUEUE}:jobs * job <json>, the job's text byte for byte. With no
JOB_JSON argument, or the single argument -, the jobs are read from stdin, one JSON
object per line (blank lines are skipped). Every job is checked first (id 1-200 bytes
without control characters or a leading/trailing space, provider, account, message):
one invalid job and nothing is written.

Prints one line per job, in order: its stream entry id (with --job-ids: its job id,
which is the entry id when the job has no "id"), so that
  outq-enqueue.sh --job-ids < jobs.jsonl | outq-wait.sh -
waits for them all.

Options:
  -u, --url URL          Redis URL (default: $OUTQ_REDIS_URL, else redis://127.0.0.1:6379)
  -q, --queue NAME       queue (default: $OUTQ_QUEUE, else default)
      --max-backlog N    backlog cap: write only while XLEN of the jobs stream plus the
                         jobs being added is at most N (the stream is never trimmed)
      --backlog-wait S   seconds to wait for room under the cap (default 0: refuse at once)
      --job-ids          print job ids instead of stream entry ids
      --replicas N       after the XADDs, WAIT for N replicas (on the same connection) to have
                         them; fewer within --replica-timeout-ms: exit 4 (the jobs are written
                         on the primary, which could lose them if it crashed now)
      --replica-timeout-ms MS  how long WAIT waits (default 1000)
  -h, --help             this text

Exit status: 0 every job was added; 1 refused, the backlog is over --max-backlog
(nothing written); 2 usage error or an invalid job (nothing written); 3 Redis error;
4 written, but fewer replicas than --replicas acknowledged them in time.

Examples:
  outq-enqueue.sh '{"id":"order-42","provider":"webhook","account":"demo","message":{"text":"hello"}}'
  outq-enqueue.sh -q mail --max-backlog 100000 --backlog-wait 60 < jobs.jsonl
EOF
}

die() { echo "outq-enqueue.sh: $2" >&2; exit "$1"; }

url=${OUTQ_REDIS_URL:-redis://127.0.0.1:6379}
queue=${OUTQ_QUEUE:-default}
max_backlog=
backlog_wait=0
print_job_ids=0
replicas=0
replica_timeout_ms=1000
args=()
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -u|--url) (($# >= 2)) || die 2 "$1 needs a value"; url=$2; shift 2 ;;
    --url=*) url=${1#*=}; shift ;;
    -q|--queue) (($# >= 2)) || die 2 "$1 needs a value"; queue=$2; shift 2 ;;
    --queue=*) queue=${1#*=}; shift ;;
    --max-backlog) (($# >= 2)) || die 2 "$1 needs a value"; max_backlog=$2; shift 2 ;;
    --max-backlog=*) max_backlog=${1#*=}; shift ;;
    --backlog-wait) (($# >= 2)) || die 2 "$1 needs a value"; backlog_wait=$2; shift 2 ;;
    --backlog-wait=*) backlog_wait=${1#*=}; shift ;;
    --job-ids) print_job_ids=1; shift ;;
    --replicas) (($# >= 2)) || die 2 "$1 needs a value"; replicas=$2; shift 2 ;;
    --replicas=*) replicas=${1#*=}; shift ;;
    --replica-timeout-ms) (($# >= 2)) || die 2 "$1 needs a value"; replica_timeout_ms=$2; shift 2 ;;
    --replica-timeout-ms=*) replica_timeout_ms=${1#*=}; shift ;;
    --) shift; args+=("$@"); break ;;
    -) args+=("$1"); shift ;;
    -*) die 2 "unknown option $1 (see --help)" ;;
    *) args+=("$1"); shift ;;
  esac
done

command -v redis-cli >/dev/null || die 2 "redis-cli is missing (Debian: apt-get install redis-tools)"
command -v jq >/dev/null || die 2 "jq is missing (Debian: apt-get install jq)"
[[ $queue =~ ^[^{}:#@[:space:]]+$ ]] || die 2 "invalid queue name '$queue' (no {, }, :, #, @ or spaces)"
[[ -z $max_backlog || $max_backlog =~ ^[1-9][0-9]*$ ]] || die 2 "--max-backlog must be a positive integer, not '$max_backlog'"
[[ $replicas =~ ^[0-9]+$ ]] || die 2 "--replicas must be an integer >= 0, not '$replicas'"
[[ $replica_timeout_ms =~ ^[1-9][0-9]*$ ]] || die 2 "--replica-timeout-ms must be a positive integer (WAIT 0 waits for ever), not '$replica_timeout_ms'"
[[ $backlog_wait =~ ^[0-9]+([.][0-9]+)?$ ]] || die 2 "--backlog-wait must be seconds (e.g. 30 or 0.5), not '$backlog_wait'"

jobs_key="outq:{$queue}:jobs"
cli=(redis-cli --no-auth-warning -u "$url")

# The jobs, as text: from the arguments, or one per non-blank line of stdin.
jobs=()
labels=()
from_stdin=0
if ((${#args[@]} == 0)) || [[ ${#args[@]} -eq 1 && ${args[0]} == - ]]; then
  from_stdin=1
  n=0
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*$ ]] && continue
    jobs+=("$line")
    labels+=("line $n")
  done
  ((${#jobs[@]})) || die 2 "no job on stdin"
else
  for ((i = 0; i < ${#args[@]}; i++)); do
    jobs+=("${args[i]}")
    labels+=("argument $((i + 1))")
  done
fi

# One jq over every job: "ok<TAB>job id" or "err<TAB>reason", one line per job, in order.
# The jobs are written as given (jq only reads them: it would round big numbers).
# shellcheck disable=SC2016  # a jq program, not shell
check='
def reason:
  if type != "object" then "must be a JSON object, not \(type)"
  elif has("v") and .v != 1 then "job.v: only 1 is accepted, not \(.v | tojson)"
  elif has("id") and (.id | type) != "string" then "job.id: must be a string, not \(.id | type)"
  elif has("id") and ((.id | utf8bytelength) < 1 or (.id | utf8bytelength) > 200)
    then "job.id: must be 1-200 bytes of UTF-8, not \(.id | utf8bytelength)"
  elif has("id") and (.id | explode | any(. < 32 or . == 127))
    then "job.id: control character 0x\(.id | explode | map(select(. < 32 or . == 127)) | .[0]
         | [(. / 16 | floor), (. % 16)] | map("0123456789ABCDEF"[.:.+1]) | join("")) (it is sent as a header value)"
  elif has("id") and (.id | startswith(" ") or endswith(" "))
    then "job.id: leading or trailing space (it is sent as a header value)"
  elif .provider == null then "job.provider: missing"
  elif (.provider | type) != "string" or .provider == "" then "job.provider: must be a non-empty string"
  elif .account == null then "job.account: missing"
  elif (.account | type) != "string" or .account == "" then "job.account: must be a non-empty string"
  elif has("message") | not then "job.message: missing"
  elif (.message | type) != "object" then "job.message: must be a JSON object, not \(.message | type)"
  elif has("max_attempts") and ((.max_attempts | type) != "number" or .max_attempts != (.max_attempts | floor)
                                or .max_attempts < 1 or .max_attempts > 100)
    then "job.max_attempts: must be an integer 1-100, not \(.max_attempts | tojson)"
  else empty end;
def verdict:
  (try fromjson catch "\u0000") as $j
  | if $j == "\u0000" then "err\tnot valid JSON"
    else ([$j | reason] | first // null) as $r
    | if $r then "err\t\($r)" else "ok\t\($j | if type == "object" then (.id // "") else "" end)" end
    end;
'
if ((from_stdin)); then  # lines have no newline: one raw string per line
  verdicts=$(printf '%s\n' "${jobs[@]}" | jq -R -r "$check verdict" 2>&1) ||
    die 2 "jq failed: $verdicts"
else  # arguments may hold newlines, and fit the argument list already
  verdicts=$(jq -n -r "$check"' $ARGS.positional[] | verdict' --args "${jobs[@]}" 2>&1) || die 2 "jq failed: $verdicts"
fi
mapfile -t verdicts <<<"$verdicts"
((${#verdicts[@]} == ${#jobs[@]})) || die 2 "jq gave ${#verdicts[@]} verdicts for ${#jobs[@]} jobs"
job_ids=()
bad=0
for ((i = 0; i < ${#jobs[@]}; i++)); do
  v=${verdicts[i]}
  if [[ $v == err$'\t'* ]]; then
    echo "outq-enqueue.sh: ${labels[i]}: ${v#err$'\t'}" >&2
    bad=1
  else
    job_ids+=("${v#ok$'\t'}")
  fi
done
((bad == 0)) || die 2 "invalid job(s): nothing written"

# The backlog cap: XLEN + the jobs being added, at most --max-backlog; wait for room or refuse.
if [[ -n $max_backlog ]]; then
  count=${#jobs[@]}
  ((count <= max_backlog)) || die 2 "$count jobs can never fit --max-backlog $max_backlog: split them"
  wait_ms=$(awk -v w="$backlog_wait" 'BEGIN { printf "%d", w * 1000 }')
  start_ms=$(date +%s%3N)
  pause=0.02
  while :; do
    backlog=$("${cli[@]}" XLEN "$jobs_key" 2>&1) || die 3 "redis: $backlog"
    [[ $backlog =~ ^[0-9]+$ ]] || die 3 "redis: XLEN $jobs_key: $backlog"
    ((backlog + count <= max_backlog)) && break
    if (($(date +%s%3N) - start_ms >= wait_ms)); then
      die 1 "backlog full: $jobs_key holds $backlog entries and adding $count would pass --max-backlog $max_backlog; nothing written"
    fi
    sleep "$pause"
    pause=$(awk -v p="$pause" 'BEGIN { p *= 2; if (p > 1) p = 1; print p }')
  done
fi

# One redis-cli connection, one XADD per job; each argument quoted for redis-cli's line reader.
quote() {  # sets q: $1 in double quotes, escaped as redis-cli's line reader wants it
  q=$1
  q=${q//\\/\\\\}
  q=${q//\"/\\\"}
  q=${q//$'\n'/\\n}
  q=${q//$'\r'/\\r}
  q="\"$q\""
}
xadds() {
  quote "$jobs_key"
  local key_q=$q j
  for j in "${jobs[@]}"; do
    quote "$j"
    printf 'XADD %s * job %s\n' "$key_q" "$q"
  done
  ((replicas == 0)) || printf 'WAIT %d %d\n' "$replicas" "$replica_timeout_ms"
}
out=$(xadds | "${cli[@]}" 2>&1) || die 3 "redis: $out"
mapfile -t entries <<<"$out"
status=0
for ((i = 0; i < ${#jobs[@]}; i++)); do
  e=${entries[i]:-}
  if [[ ! $e =~ ^[0-9]+-[0-9]+$ ]]; then
    echo "outq-enqueue.sh: ${labels[i]}: XADD failed: ${e:-no answer}" >&2
    status=3
    continue
  fi
  if ((print_job_ids)) && [[ -n ${job_ids[i]} ]]; then
    printf '%s\n' "${job_ids[i]}"
  else
    printf '%s\n' "$e"
  fi
done
if ((replicas > 0 && status == 0)); then
  acked=${entries[${#jobs[@]}]:-}
  if [[ ! $acked =~ ^[0-9]+$ ]] || ((acked < replicas)); then
    echo "outq-enqueue.sh: ${acked:-no} of $replicas replica(s) acknowledged the jobs within ${replica_timeout_ms} ms: they are written on the primary, which could lose them if it crashed now" >&2
    exit 4
  fi
fi
exit "$status"
