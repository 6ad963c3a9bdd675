"""outq against BullMQ, side by side in one run: the same Redis 7, the same
provider (nginx answering a Mews-shaped 200), the same N jobs of one HTTP POST
each plus a stored result. Prints one table with both rows and the ratios.
Run through scripts/bench/send-n.sh, which installs what this needs."""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("OUTQ_BUILD_DIR", os.path.join(ROOT, "build"))
TICK = os.sysconf("SC_CLK_TCK")
PATH = "/api/connector/v1/messages/add"
THREAD = "8d02142f-31cf-4115-90bf-ae5200c7a1ba"
TOKENS = ('"ClientToken":"E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",'
          '"AccessToken":"C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",'
          '"Client":"Sample Client 1.0.0"')
NGINX_BODY = ('{"Messages":[{"Identifier":"bench","Message":{"Id":"3fa85f64-5717-4562-b3fc-2c963f66afa6",'
              '"MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba","Text":"Text of the message",'
              '"Sender":"Application","CreatedUtc":"2024-04-11T08:54:47.193Z"}}]}')
started = []  # every process this run started, stopped by PID at exit


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nothing listens on %d" % port)


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    started.append(p)
    return p


def stop_all():
    for p in reversed(started):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def tree_cpu(pid):
    """CPU of a process and its children (nginx master + worker)."""
    total = cpu_seconds(pid)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    total += cpu_seconds(int(entry))
            except (OSError, IndexError):
                pass
    return total


def peak_rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0


def start_nginx(work, https):
    port = free_port()
    tls = ""
    if https:
        tls = "listen 127.0.0.1:%d ssl; ssl_certificate %s/server.pem; ssl_certificate_key %s/server.key;" % (
            port, work, work)
    listen = "" if https else "listen 127.0.0.1:%d;" % port
    os.makedirs(os.path.join(work, "logs"), exist_ok=True)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1; daemon off; pid %(w)s/nginx.pid; error_log %(w)s/logs/error.log warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 120s;
  client_body_temp_path %(w)s/body; proxy_temp_path %(w)s/proxy; fastcgi_temp_path %(w)s/fcgi;
  uwsgi_temp_path %(w)s/uwsgi; scgi_temp_path %(w)s/scgi;
  server { %(listen)s %(tls)s
    location %(path)s { default_type application/json; return 200 '%(body)s'; } } }
""" % {"w": work, "listen": listen, "tls": tls, "path": PATH, "body": NGINX_BODY})
    p = spawn(["nginx", "-c", conf, "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def make_certs(work):
    def run(*a):
        subprocess.run(a, cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days",
        "2", "-subj", "/CN=bench CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
        "/CN=127.0.0.1")
    with open(os.path.join(work, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext")
    return os.path.join(work, "ca.pem")


def outq_message(i):
    return '{%s,"Messages":[{"Text":"Text of the message %d","MessageThreadId":"%s","Identifier":"b%d"}]}' % (
        TOKENS, i, THREAD, i)


def enqueue_outq(r, n, provider, account, message_of):
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd("outq:{bench}:jobs", {"job": '{"v":1,"id":"b%d","provider":"%s","account":"%s","message":%s}' % (
            i, provider, account, message_of(i))})
        if i % 10000 == 9999:
            pipe.execute()
    pipe.execute()


def run_outq(args, work, r, redis_pid, provider_pid, url, ca, provider="webhook", account_cfg=None):
    account_cfg = account_cfg or {"url": url}
    config = {"redis": {"url": "redis://127.0.0.1:%d/0" % args.redis_port}, "queue": "bench",
              "concurrency": args.concurrency, "fetch_batch": min(args.concurrency, 1000), "log_level": "warn",
              "visibility_timeout_ms": 120000,
              "providers": {provider: {"http": {"max_connections": args.connections},
                                       "accounts": {"bench": account_cfg}}}}
    if ca:
        config["providers"][provider]["accounts"]["bench"]["tls"] = {"ca_file": ca}
    path = os.path.join(work, "outq.json")
    with open(path, "w") as f:
        json.dump(config, f)
    message_of = outq_message if provider == "webhook" else (
        lambda i: '{"Text":"Text of the message %d","MessageThreadId":"%s","Identifier":"b%d"}' % (i, THREAD, i))
    enqueue_outq(r, args.n, provider, "bench", message_of)
    redis_cpu0, provider_cpu0 = cpu_seconds(redis_pid), tree_cpu(provider_pid)
    t0 = time.monotonic()
    w = spawn([os.path.join(BUILD, "worker", "outq"), "run", "--config", path],
              stderr=open(os.path.join(work, "outq.log"), "w"))
    rss_peak = 0.0
    while r.xlen("outq:{bench}:results") < args.n:
        if w.poll() is not None:
            raise SystemExit("outq exited early; see " + os.path.join(work, "outq.log"))
        if time.monotonic() - t0 > args.timeout:
            raise SystemExit("outq did not finish %d jobs in %ds" % (args.n, args.timeout))
        rss_peak = max(rss_peak, peak_rss_mib(w.pid))
        time.sleep(0.02)
    wall = time.monotonic() - t0
    cpu, rss_peak = cpu_seconds(w.pid), max(rss_peak, peak_rss_mib(w.pid))
    redis_cpu, provider_cpu = cpu_seconds(redis_pid) - redis_cpu0, tree_cpu(provider_pid) - provider_cpu0
    w.send_signal(signal.SIGTERM)
    w.wait(timeout=30)
    pipe = r.pipeline(transaction=False)
    for i in range(args.n):
        pipe.hmget("outq:{bench}:result:b%d" % i, "status", "enqueued_at", "completed_at")
    rows = pipe.execute()
    sent = sum(1 for s, _, _ in rows if s == "sent")
    latencies = [int(c) - int(e) for s, e, c in rows if s == "sent"]
    return {"name": "outq", "jobs": args.n, "sent": sent, "wall": wall, "cpu": cpu, "rss": rss_peak,
            "redis_cpu": redis_cpu, "provider_cpu": provider_cpu,
            "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


def run_bullmq(args, work, r, redis_pid, provider_pid, url, ca):
    peers = os.path.join(HERE, "peers", "bullmq")
    subprocess.run(["node", "enqueue.mjs", str(args.redis_port), str(args.n)], cwd=peers, check=True)
    redis_cpu0, provider_cpu0 = cpu_seconds(redis_pid), tree_cpu(provider_pid)
    t0 = time.monotonic()
    cmd = ["node", "worker.mjs", str(args.redis_port), url, str(args.bullmq_concurrency)] + ([ca] if ca else [])
    w = spawn(cmd, cwd=peers, stderr=open(os.path.join(work, "bullmq.log"), "w"))
    rss_peak = 0.0
    while r.zcard("bull:bench:completed") + r.zcard("bull:bench:failed") < args.n:
        if w.poll() is not None:
            raise SystemExit("the BullMQ worker exited early; see " + os.path.join(work, "bullmq.log"))
        if time.monotonic() - t0 > args.timeout:
            raise SystemExit("BullMQ did not finish %d jobs in %ds" % (args.n, args.timeout))
        rss_peak = max(rss_peak, peak_rss_mib(w.pid))
        time.sleep(0.02)
    wall = time.monotonic() - t0
    cpu, rss_peak = cpu_seconds(w.pid), max(rss_peak, peak_rss_mib(w.pid))
    redis_cpu, provider_cpu = cpu_seconds(redis_pid) - redis_cpu0, tree_cpu(provider_pid) - provider_cpu0
    w.send_signal(signal.SIGTERM)
    w.wait(timeout=30)
    pipe = r.pipeline(transaction=False)
    for i in range(1, args.n + 1):
        pipe.hmget("bull:bench:%d" % i, "timestamp", "finishedOn")
    latencies = [int(f) - int(t) for t, f in pipe.execute() if t and f]
    return {"name": "bullmq", "jobs": args.n, "sent": r.zcard("bull:bench:completed"), "wall": wall, "cpu": cpu,
            "rss": rss_peak, "redis_cpu": redis_cpu, "provider_cpu": provider_cpu,
            "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


def print_table(rows):
    print("\n%s, %d cores, %s" % (time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), os.cpu_count(), cpu_model()))
    head = "%-7s %8s %8s %9s %9s %11s %8s %9s %10s %8s %8s"
    print(head % ("worker", "jobs", "wall s", "jobs/s", "cpu s", "cpu ms/1k", "RSS MiB", "redis s", "provider s",
                  "p50 ms", "p99 ms"))
    for x in rows:
        print("%-7s %8d %8.2f %9.0f %9.2f %11.1f %8.1f %9.2f %10.2f %8d %8d" % (
            x["name"], x["jobs"], x["wall"], x["jobs"] / x["wall"], x["cpu"], x["cpu"] * 1e6 / x["jobs"],
            x["rss"], x["redis_cpu"], x["provider_cpu"], x["p50"], x["p99"]))
    if len(rows) == 2:
        o, b = rows
        print("ratios outq/bullmq: jobs/s %.2fx, worker CPU per job %.2fx (lower is better), peak RSS %.2fx" % (
            (o["jobs"] / o["wall"]) / (b["jobs"] / b["wall"]), (o["cpu"] / o["jobs"]) / (b["cpu"] / b["jobs"]),
            o["rss"] / b["rss"]))


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100000)
    parser.add_argument("--quick", action="store_true", help="outq only, no BullMQ; fails unless every job is sent")
    parser.add_argument("--https", action="store_true")
    parser.add_argument("--slow", action="store_true", help="1,000 in flight against a 200 ms provider (memory)")
    parser.add_argument("--mews-batch", action="store_true", help="the Mews adapter with batching on")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--bullmq-concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="outq-bench-")
    try:
        args.redis_port = free_port()
        rp = spawn(["redis-server", "--port", str(args.redis_port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL)
        r = redis.Redis(port=args.redis_port, decode_responses=True)
        wait_port(args.redis_port)
        ca = make_certs(work) if args.https else None
        if args.slow or args.mews_batch:
            port = free_port()
            extra = ["--delay-ms", "200"] if args.slow else ["--mews-echo"]
            count_file = os.path.join(work, "provider-requests")
            provider = spawn(["/usr/bin/python3", os.path.join(HERE, "fake_provider.py"), "--port", str(port),
                              "--count-file", count_file] + extra)
            wait_port(port)
            if args.slow:
                args.concurrency = max(args.concurrency, 1000)
                args.connections = max(args.connections, 1000)
                args.bullmq_concurrency = 1000
        else:
            provider, port = start_nginx(work, args.https)
        url = "%s://127.0.0.1:%d%s" % ("https" if args.https else "http", port, PATH)
        rows = []
        if args.mews_batch:
            row = run_outq(args, work, r, rp.pid, provider.pid, url, ca, provider="mews",
                           account_cfg={"platform_address": "http://127.0.0.1:%d" % port, "client_token": "bench",
                                        "access_token": "bench", "batch_size": args.batch_size, "batch_wait_ms": 5,
                                        "rate_limit": {"requests": 0}})
            provider.send_signal(signal.SIGTERM)
            provider.wait(timeout=15)
            with open(count_file) as f:
                http_requests = int(f.read())
            print_table([row])
            print("mews batching: %d HTTP requests for %d jobs (%.3f requests per job, batch_size %d)" % (
                http_requests, args.n, http_requests / args.n, args.batch_size))
            return 0 if row["sent"] == args.n else 1
        rows.append(run_outq(args, work, r, rp.pid, provider.pid, url, ca))
        if args.quick:
            print_table(rows)
            ok = rows[0]["sent"] == args.n
            print("quick: %d of %d jobs sent" % (rows[0]["sent"], args.n))
            return 0 if ok else 1
        r.flushall()
        rows.append(run_bullmq(args, work, r, rp.pid, provider.pid, url, ca))
        print_table(rows)
        return 0 if rows[0]["sent"] == args.n else 1
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
