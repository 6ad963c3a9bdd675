#!/usr/bin/env bash
# Runs outq on its embedded default: a local redis-server (unless OUTQ_REDIS_URL
# is set) and the bundled provider sandbox, enqueues sample jobs, runs the worker
# and shows what happened to each job. Ctrl-C stops everything it started.
#   scripts/run.sh          keep the worker running after the samples (Ctrl-C to stop)
#   scripts/run.sh --once   exit once every sample job has an outcome
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/lib.sh"
once=false
[[ ${1:-} == --once ]] && once=true

bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh" >/dev/null
outq=${OUTQ_BUILD_DIR:-$root/build}/worker/outq

work=$(mktemp -d /tmp/outq-run.XXXXXX)
redis_pid= sandbox_pid= worker_pid=
cleanup() {
  trap - EXIT INT TERM
  stop_pid "$worker_pid"; stop_pid "$sandbox_pid"; stop_pid "$redis_pid"
  if $once; then
    rm -rf "$work"
  else
    # The worker ran for as long as you kept it: its log is kept (Redis' data is not).
    rm -rf "$work/appendonlydir" "$work/dump.rdb"
    echo "worker log kept: $work/worker.log"
  fi
}
trap cleanup EXIT
trap 'echo; echo "stopping..."; exit 0' INT TERM

if [[ -n ${OUTQ_REDIS_URL:-} ]]; then
  redis_url=$OUTQ_REDIS_URL
else
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --logfile "$work/redis.log" &
  redis_pid=$!
  wait_for_port "$redis_port" 10 || { echo "redis-server did not start" >&2; exit 1; }
  redis_url=redis://127.0.0.1:$redis_port/0
fi

sandbox_port=$(free_port)
/usr/bin/python3 "$root/tests/fakes/sandbox.py" --host 127.0.0.1 --port "$sandbox_port" >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
wait_for_port "$sandbox_port" 10 || { echo "sandbox did not start" >&2; cat "$work/sandbox.log" >&2; exit 1; }

queue=demo
cat >"$work/outq.json" <<JSON
{
  "redis": {"url": "$redis_url"},
  "queue": "$queue",
  "concurrency": 64,
  "visibility_timeout_ms": 30000,
  "shutdown_grace_ms": 5000,
  "providers": {
    "webhook": {
      "retry": {"base_ms": 200, "cap_ms": 2000, "max_attempts": 3},
      "http": {"request_timeout_ms": 3000},
      "accounts": {"demo": {"url": "http://127.0.0.1:$sandbox_port/hook/demo"}}
    },
    "mews": {"accounts": {"hotel": {"platform_address": "http://127.0.0.1:$sandbox_port",
      "client_token": "demo-client-token", "access_token": "demo-access-token", "batch_wait_ms": 50}}},
    "mediaconnect": {"accounts": {"support": {"base_url": "http://127.0.0.1:$sandbox_port/capi",
      "token_url": "http://127.0.0.1:$sandbox_port/user/oauth/token",
      "client_id": "demo-client", "client_secret": "demo-secret"}}},
    "onebox": {"accounts": {"helpdesk": {"host": "http://127.0.0.1:$sandbox_port", "token": "ob-static"}}},
    "superoffice": {"accounts": {"crm": {"base_url": "http://127.0.0.1:$sandbox_port/Cust12345",
      "auth": "basic", "username": "demo", "password": "demo"}}}
  }
}
JSON

run_id=$(date +%s)
now_ms=$(($(date +%s%N) / 1000000))
cat >"$work/jobs.jsonl" <<JSONL
{"v":1,"id":"demo-$run_id-ok","provider":"webhook","account":"demo","message":{"text":"Your room is ready"},"meta":{"booking":1}}
{"v":1,"id":"demo-$run_id-flaky","provider":"webhook","account":"demo","message":{"text":"Provider fails once","sandbox":{"status":503,"times":1}}}
{"v":1,"id":"demo-$run_id-limited","provider":"webhook","account":"demo","message":{"text":"Rate limited once","sandbox":{"status":429,"times":1,"retry_after":"1"}}}
{"v":1,"id":"demo-$run_id-rejected","provider":"webhook","account":"demo","message":{"text":"Provider rejects","sandbox":{"status":400,"body":"{\"error\":\"Text contains a forbidden word\"}"}}}
{"v":1,"id":"demo-$run_id-later","provider":"webhook","account":"demo","message":{"text":"Sent two seconds later"},"not_before":$((now_ms + 2000))}
{"v":1,"id":"demo-$run_id-expired","provider":"webhook","account":"demo","message":{"text":"Too late"},"expires_at":$((now_ms - 1000))}
{"v":1,"id":"demo-$run_id-mews","provider":"mews","account":"hotel","message":{"MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba","Text":"Your room is ready"}}
{"v":1,"id":"demo-$run_id-mediaconnect","provider":"mediaconnect","account":"support","message":{"product":"CO27409","caseType":"B","messageSubject":"Cancel","messageContent":"Please cancel my subscription."}}
{"v":1,"id":"demo-$run_id-onebox","provider":"onebox","account":"helpdesk","message":{"ConnectionId":583,"Subject":"Hello","MethodId":"DIRECT","From":"469218373611012","To":"389961471775568","ConversationId":222536,"Content":{"Body":"Hello","BodyText":"Hello","ContentType":"text/plain","Encoding":"UTF-8"}}}
{"v":1,"id":"demo-$run_id-superoffice","provider":"superoffice","account":"crm","message":{"ChatSessionId":103,"Type":"ToCustomer","Message":"Your order shipped","Author":"outq"}}
JSONL
ids=(ok flaky limited rejected later expired bad-account mews mediaconnect onebox superoffice)
echo "== enqueueing sample jobs on outq:{$queue}:jobs (redis $redis_url)"
"$outq" enqueue "$work/jobs.jsonl" --redis "$redis_url" --queue "$queue"
# A producer mistake, sent with plain XADD as any language would: unknown account.
redis-cli -u "$redis_url" XADD "outq:{$queue}:jobs" '*' job \
  "{\"v\":1,\"id\":\"demo-$run_id-bad-account\",\"provider\":\"webhook\",\"account\":\"nope\",\"message\":{}}" >/dev/null

echo "== starting the worker (log: $work/worker.log)"
"$outq" run --config "$work/outq.json" >"$work/worker.log" 2>&1 &
worker_pid=$!

deadline=$((SECONDS + 60))
for id in "${ids[@]}"; do
  until "$outq" result "demo-$run_id-$id" --redis "$redis_url" --queue "$queue" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then echo "timed out waiting for demo-$run_id-$id" >&2; tail -20 "$work/worker.log" >&2; exit 1; fi
    kill -0 "$worker_pid" 2>/dev/null || { echo "worker exited" >&2; tail -20 "$work/worker.log" >&2; exit 1; }
    sleep 0.2
  done
done

echo "== what happened to each job"
printf '%-28s %-6s %-8s %-6s %-20s %s\n' JOB STATUS ATTEMPTS HTTP CLASS "DETAIL"
for id in "${ids[@]}"; do
  "$outq" result "demo-$run_id-$id" --redis "$redis_url" --queue "$queue" --json | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
detail = r.get("provider_message_id") and "provider id " + r["provider_message_id"] or r.get("error", "")
if r.get("status") == "dead" and r.get("response"):
    detail += "; provider said: " + r["response"][:80]
retried = " (retried)" if r.get("status") == "sent" and r.get("attempts", 1) > 1 else ""
print("%-28s %-6s %-8s %-6s %-20s %s" % (r["id"], r["status"], r.get("attempts", 0), r.get("http_status", "-"),
      r.get("error_class", "-"), (detail or "") + retried))'
done
echo
"$outq" stats --redis "$redis_url" --queue "$queue"
echo
if $once; then
  echo "done; redis-server and the sandbox are stopped (run without --once to keep them and enqueue more)"
  exit 0
fi
# Where the live view starts: the results stream's end before anything is said.
last_event=$(redis-cli -u "$redis_url" XREVRANGE "outq:{$queue}:results" + - COUNT 1 | head -1)
echo "dead letters: $outq dead list --redis $redis_url --queue $queue"
echo "The worker keeps running; each new outcome is shown below as it is written. Enqueue more with:"
echo "  redis-cli -u $redis_url XADD 'outq:{$queue}:jobs' '*' job '{\"provider\":\"webhook\",\"account\":\"demo\",\"message\":{\"text\":\"hi\"}}'"
echo "Ctrl-C stops the worker, the sandbox and redis."
# One line per outcome from the results stream, from its end now, for as long as the worker runs.
/usr/bin/python3 - "$redis_url" "outq:{$queue}:results" "$worker_pid" "${last_event:-0-0}" <<'PY'
import os, sys, time
import redis
url, key, worker, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
try:
    while True:
        try:
            os.kill(worker, 0)
        except OSError:
            break
        try:
            reply = r.xread({key: last}, block=1000, count=100)
        except (redis.RedisError, OSError):
            break
        for _, entries in reply or []:
            for entry_id, e in entries:
                last = entry_id
                print("%s  %-32s %-10s %s" % (time.strftime("%H:%M:%S"), e.get("id", "?"), e.get("status", "?"),
                                              e.get("error_class") or e.get("existing") or ""), flush=True)
except KeyboardInterrupt:
    pass
PY
wait "$worker_pid"
