#!/usr/bin/env bash
# HTTP client micro-benchmark: requests per second and CPU microseconds per
# request of outq's http_client (through tests/tools/http_probe) over
# keep-alive, HTTP and HTTPS, against a local nginx; wrk against the same nginx
# in the same run is the ceiling. Loopback only; stops what it started.
#   scripts/bench/http-client.sh [--requests N] [--connections C] [--seconds S]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/scripts/lib.sh"
requests=200000 connections=16 seconds=10
while (($#)); do
  case $1 in
    --requests) requests=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

bash "$root/scripts/install-deps.sh"
for p in nginx wrk; do
  command -v $p >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null
done
bash "$root/scripts/build.sh" >/dev/null
probe=${OUTQ_BUILD_DIR:-$root/build}/tests/http_probe

work=$(mktemp -d /tmp/outq-httpbench.XXXXXX)
nginx_pid=
cleanup() { stop_pid "$nginx_pid"; rm -rf "$work"; }
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$work/server.key" -out "$work/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
echo "subjectAltName=IP:127.0.0.1" >"$work/ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -out "$work/server.pem" -days 2 -extfile "$work/ext" 2>/dev/null

http_port=$(free_port)
https_port=$(free_port)
body='{"Messages":[{"Identifier":"bench","Message":{"Id":"3fa85f64-5717-4562-b3fc-2c963f66afa6","MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba","Text":"Text of the message","Sender":"Application","CreatedUtc":"2024-04-11T08:54:47.193Z"}}]}'
mkdir -p "$work/logs"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fastcgi;
  uwsgi_temp_path $work/uwsgi;
  scgi_temp_path $work/scgi;
  server {
    listen 127.0.0.1:$http_port;
    listen 127.0.0.1:$https_port ssl;
    ssl_certificate $work/server.pem;
    ssl_certificate_key $work/server.key;
    location / { default_type application/json; return 200 '$body'; }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
wait_for_port "$http_port" 10 && wait_for_port "$https_port" 10 || { echo "nginx did not start" >&2; exit 1; }

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"ClientToken":"bench","AccessToken":"bench","Client":"bench","Messages":[]}'
wrk.headers["Content-Type"] = "application/json"
LUA

wrk_rate() {  # url → requests/s
  wrk -t1 -c"$connections" -d"${seconds}s" -s "$work/post.lua" "$1" | awk '/Requests\/sec/ {print $2}'
}
probe_run() {  # url extra-args… → json
  "$probe" --url "$1" --count "$requests" --concurrency "$connections" --max-connections "$connections" \
    --body '{"ClientToken":"bench","AccessToken":"bench","Client":"bench","Messages":[]}' "${@:2}"
}
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

echo "warming up..."
probe_run "http://127.0.0.1:$http_port/api/connector/v1/messages/add" >/dev/null
echo "measuring (each client $requests requests / ${seconds}s over $connections keep-alive connections)..."
wrk_http=$(wrk_rate "http://127.0.0.1:$http_port/api/connector/v1/messages/add")
wrk_https=$(wrk_rate "https://127.0.0.1:$https_port/api/connector/v1/messages/add")
p_http=$(probe_run "http://127.0.0.1:$http_port/api/connector/v1/messages/add")
p_https=$(probe_run "https://127.0.0.1:$https_port/api/connector/v1/messages/add" --ca "$work/ca.pem")

printf '\n%s, %s cores, %s\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf '%-8s %14s %14s %10s %18s %12s\n' scheme "outq req/s" "wrk req/s" "outq/wrk" "outq CPU us/req" connections
for scheme in http https; do
  if [[ $scheme == http ]]; then j=$p_http; w=$wrk_http; else j=$p_https; w=$wrk_https; fi
  ok=$(field "$j" ok)
  [[ $ok == "$requests" ]] || { echo "outq: only $ok of $requests requests succeeded: $j" >&2; exit 1; }
  rps=$(field "$j" requests_per_second)
  printf '%-8s %14.0f %14.0f %10.2f %18s %12s\n' "$scheme" "$rps" "$w" "$(echo "$rps / $w" | bc -l)" \
    "$(field "$j" cpu_us_per_request)" "$(field "$j" connections_opened)"
done
