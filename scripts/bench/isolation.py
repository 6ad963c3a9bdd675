"""Isolation between provider accounts (issue #16), measured on loopback.

--noisy-neighbour: one queue, two accounts of the webhook provider. "healthy"
  posts to nginx (the fast fake provider of send-n.sh); "sick" posts to
  delay_server.py --hang, which accepts the request and never answers, so each
  attempt ends at the sick account's http.request_timeout_ms (--sick-timeout-ms,
  default 20000) and is retried. The workers are started and ready (/readyz)
  first; then the sick account's --n-sick jobs (default 300) and after them the
  healthy account's --n jobs (default 3000) are enqueued in one pipeline. The
  same run is made without the sick jobs ("solo"). Per run: the healthy jobs/s
  (healthy jobs sent / (last healthy completed_at - first healthy enqueued_at))
  and the p50/p99 of completed_at - enqueued_at, read from the result keys
  (docs/protocol.md, format 2). The run stops once every healthy job has an
  outcome (or at --timeout); the sick jobs are left retrying; every process
  is stopped. Printed: noisy/solo ratios (goal: jobs/s >= 0.9x solo).
  --workers 1,3 runs each pair with 1 and with 3 worker processes.

--throttled: 20 accounts (--accounts) each limited to 200 requests/s
  (--limit; the account's "rate_limit": {"requests": 200, "per_ms": 1000}),
  40,000 jobs (--throttled-n) enqueued round-robin over them before one worker
  starts. Then, in the same run, one account limited to 200/s with 4,000 jobs
  (--single-n) for outq and for BullMQ with its own queue rate limiter
  (Worker option limiter: {max: 200, duration: 1000}). Per run: achieved rate
  (jobs sent / (last completion - worker start)) as a fraction of the sum of
  the limits (goal >= 98 %), Redis commands per job (INFO commandstats deltas,
  calls inside scripts included, the bench's own calls left out), worker CPU
  and Redis CPU per job, HTTP requests per job; then outq/BullMQ ratios.
  A fixed-window limiter (BullMQ's) may finish its last window early and so
  exceed 100 % by up to about limit/N.

--quick: small counts (a few seconds a mode; sick timeout 2 s). Without
--noisy-neighbour or --throttled both run. Needs redis-server, nginx, and for
BullMQ node and scripts/bench/peers/bullmq/node_modules (`npm ci` there, or
`npm install --no-save` where that fails, or run scripts/bench/send-n.sh
once); --only outq skips BullMQ. Loopback only;
every process started here is stopped by its PID.

    /usr/bin/python3 scripts/bench/isolation.py --quick --outq build/worker/outq
    /usr/bin/python3 scripts/bench/isolation.py --noisy-neighbour --workers 1,3
    /usr/bin/python3 scripts/bench/isolation.py --throttled --throttled-n 20000 --single-n 2000
"""
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import send_n as sn  # noqa: E402  (servers, the Redis client, CPU and commandstats accounting)

QUEUE = sn.QUEUE
RESULTS = "outq:{%s}:results" % QUEUE
JOBS = "outq:{%s}:jobs" % QUEUE


def pct(values, q):
    return sn.percentile(values, q)


def http_status(port, path, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
            line = s.makefile("rb").readline().split()
            return int(line[1]) if len(line) > 1 else None
    except (OSError, ValueError):
        return None


def start_hang_server(procs, work, path):
    port = sn.free_port()
    log = os.path.join(work, "hang_server.log")
    p = procs.start("hang server", ["/usr/bin/python3", os.path.join(HERE, "delay_server.py"), "--port", str(port),
                                    "--path", path, "--hang"], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    sn.wait_port(port, "hang server", p, log=log)
    return p, port


def base_config(args, redis_port, accounts, grace_ms):
    return {
        "redis": {"url": "redis://127.0.0.1:%d/0" % redis_port},
        "queue": QUEUE,
        "concurrency": args.concurrency,
        "fetch_batch": args.fetch_batch,
        "log_level": "warn",
        "shutdown_grace_ms": grace_ms,
        "results": {"stream_maxlen": 1000000},  # never trimmed during a run
        "providers": {"webhook": {"http": {"max_connections": args.connections}, "accounts": accounts}},
    }


def write_config(work, name, config):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return path


def job_commands(ids_accounts):
    parts = sn.MESSAGE.split("%I%")
    out = []
    for i, (jid, account) in enumerate(ids_accounts):
        job = '{"v":1,"id":"%s","provider":"webhook","account":"%s","message":%s}' % (
            jid, account, str(i).join(parts))
        out.append(("XADD", JOBS, "*", "job", job))
    return out


def results_of(r, ids):
    values = r.pipeline([("GET", "outq:{%s}:result:%s" % (QUEUE, i)) for i in ids])
    out = []
    for v in values:
        try:
            out.append(json.loads(v) if v else {})
        except ValueError:
            out.append({})
    return out


# ---------------------------------------------------------------- --noisy-neighbour

def quiet(args):
    if args.wait_quiet:
        load = sn.wait_for_quiet(args.wait_quiet)
        if load >= 0.25:
            print("  the machine is busy (%.2f cores used by others); measuring anyway" % load,
                  file=sys.stderr, flush=True)


def run_noisy(args, env, r, nworkers, with_sick):
    procs, work = env["procs"], env["work"]
    quiet(args)
    r.call("FLUSHALL")
    accounts = {"healthy": {"url": env["url"]},
                "sick": {"url": env["hang_url"], "http": {"request_timeout_ms": args.sick_timeout_ms}}}
    label = "%s-%dw" % ("noisy" if with_sick else "solo", nworkers)
    workers, logs = [], []
    for w in range(nworkers):
        config = base_config(args, env["redis_port"], accounts, 1000)  # the stop must not wait on hung sends
        mport = sn.free_port()
        config["metrics_listen"] = "127.0.0.1:%d" % mport
        path = write_config(work, "outq-%s-%d.json" % (label, w), config)
        log = os.path.join(work, "outq-%s-%d.log" % (label, w))
        p = procs.start("outq", [args.outq, "run", "--config", path], stdout=subprocess.DEVNULL,
                        stderr=open(log, "w"))
        workers.append((p, mport))
        logs.append(log)
    deadline = time.monotonic() + 30
    for (p, mport), log in zip(workers, logs):
        while http_status(mport, "/readyz") != 200:
            if p.poll() is not None or time.monotonic() > deadline:
                raise sn.Failure("outq worker not ready (status %s); log %s\n%s" % (p.poll(), log, sn.tail_of(log)))
            time.sleep(0.05)
    cpu0 = sn.cpu_seconds([p.pid for p, _ in workers])
    redis0 = sn.cpu_seconds([env["redis_pid"]])
    hang0 = sn.nginx_requests(env["hang_port"])
    sick_ids = ["sick-%d" % i for i in range(args.n_sick)] if with_sick else []
    healthy_ids = ["healthy-%d" % i for i in range(args.n)]
    r.pipeline(job_commands([(i, "sick") for i in sick_ids] + [(i, "healthy") for i in healthy_ids]))
    t0 = time.monotonic()
    last, healthy_done, sick_done, timed_out = "0-0", 0, 0, False
    while healthy_done < args.n:
        for p, _ in workers:
            if p.poll() is not None:
                raise sn.Failure("an outq worker exited (status %s) during the run" % p.returncode)
        if time.monotonic() - t0 > args.timeout:
            timed_out = True
            break
        reply = r.call("XREAD", "COUNT", "10000", "STREAMS", RESULTS, last)
        if not reply:
            time.sleep(0.02)
            continue
        for entry_id, fields in reply[0][1]:
            last = entry_id
            f = dict(zip(fields[::2], fields[1::2]))
            if f.get("id", "").startswith("healthy-"):
                healthy_done += 1
            else:
                sick_done += 1
    elapsed = time.monotonic() - t0
    cpu = sn.cpu_seconds([p.pid for p, _ in workers]) - cpu0
    redis_cpu = sn.cpu_seconds([env["redis_pid"]]) - redis0
    hang_requests = sn.nginx_requests(env["hang_port"]) - hang0 - 1
    statuses = [procs.stop(p, timeout=30) for p, _ in workers]
    values = results_of(r, healthy_ids)
    sent = [(int(v["enqueued_at"]), int(v["completed_at"])) for v in values if v.get("status") == "sent"]
    if sent:
        span = (max(c for _, c in sent) - min(e for e, _ in sent)) / 1000.0
        latency = [c - e for e, c in sent]
    else:
        span, latency = elapsed, []
    x = {"label": label, "workers": nworkers, "sick": len(sick_ids), "n": args.n, "ok": len(sent),
         "done": healthy_done, "timed_out": timed_out, "elapsed": elapsed, "span": span,
         "rate": len(sent) / span if span > 0 else 0.0, "p50": pct(latency, 0.5), "p99": pct(latency, 0.99),
         "max": max(latency) if latency else float("nan"), "cpu": cpu, "redis_cpu": redis_cpu,
         "hang_requests": hang_requests, "sick_outcomes": sick_done, "exit": statuses, "logs": logs}
    print("  %s: %d/%d healthy sent in %.2fs%s, %d requests to the hanging server, worker exit %s" % (
        label, len(sent), args.n, elapsed, " (TIMED OUT)" if timed_out else "", hang_requests, statuses),
        file=sys.stderr, flush=True)
    return x


def median_run(xs):
    """The median of each figure over repeated runs (a run that timed out marks the row)."""
    m = dict(xs[0])
    for key in ("span", "rate", "p50", "p99", "max", "cpu", "hang_requests"):
        m[key] = statistics.median(x[key] for x in xs)
    m["ok"] = min(x["ok"] for x in xs)
    m["timed_out"] = any(x["timed_out"] for x in xs)
    return m


def print_noisy(args, pairs):
    print()
    print("### --noisy-neighbour: healthy account alone vs. behind %d jobs of a hanging account "
          "(request timeout %d ms)" % (args.n_sick, args.sick_timeout_ms))
    print()
    print("N=%d healthy jobs, concurrency %d, fetch_batch %d, %d connections per origin per worker%s" % (
        args.n, args.concurrency, args.fetch_batch, args.connections,
        "; %d runs each, rows 'median' are medians of each figure" % args.repeat if args.repeat > 1 else ""))
    print()
    print("| workers | run | healthy sent | span s | healthy jobs/s | p50 ms | p99 ms | max ms | "
          "requests to the hanging server | worker CPU s |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    verdicts = []

    def row(x, name):
        print("| %d | %s | %d/%d%s | %.2f | %.0f | %.0f | %.0f | %.0f | %d | %.2f |" % (
            x["workers"], name, x["ok"], x["n"], " (timed out)" if x["timed_out"] else "", x["span"], x["rate"],
            x["p50"], x["p99"], x["max"], x["hang_requests"], x["cpu"]))
    for solos, noisies in pairs:
        sick = "with %d sick" % noisies[0]["sick"]
        if len(solos) > 1:
            for i, (a, b) in enumerate(zip(solos, noisies)):
                row(a, "solo #%d" % (i + 1))
                row(b, "%s #%d" % (sick, i + 1))
        solo, noisy = median_run(solos), median_run(noisies)
        row(solo, "solo, median" if len(solos) > 1 else "solo")
        row(noisy, sick + (", median" if len(solos) > 1 else ""))
        rate = noisy["rate"] / solo["rate"] if solo["rate"] else float("nan")
        p99 = noisy["p99"] / solo["p99"] if solo["p99"] else float("nan")
        print("| %d | noisy/solo | | | **%.3fx** | %.1fx | **%.1fx** | | | |" % (
            solo["workers"], rate, noisy["p50"] / solo["p50"] if solo["p50"] else float("nan"), p99))
        each = ""
        if len(solos) > 1:
            each = " (each pair: %s)" % ", ".join("%.3fx" % (b["rate"] / a["rate"] if a["rate"] else float("nan"))
                                                  for a, b in zip(solos, noisies))
        verdicts.append("%d worker(s): healthy jobs/s with the hanging neighbour %.3fx of solo%s (goal >= 0.9x): %s; "
                        "p99 %.1fx of solo%s" % (solo["workers"], rate, each, "met" if rate >= 0.9 else "NOT met",
                                                 p99, "; a noisy run TIMED OUT at --timeout %ds, so its rate is an "
                                                 "upper bound over the jobs that finished" % args.timeout
                                                 if noisy["timed_out"] else ""))
    print()
    for v in verdicts:
        print(v)


# ---------------------------------------------------------------- --throttled

def run_outq_limited(args, env, r, label, naccounts, n):
    procs, work = env["procs"], env["work"]
    r.call("FLUSHALL")
    names = ["acct%02d" % a for a in range(naccounts)]
    limit = {"requests": args.limit, "per_ms": 1000}
    if args.burst:
        limit["burst"] = args.burst
    accounts = {a: {"url": env["url"], "rate_limit": dict(limit)} for a in names}
    path = write_config(work, "outq-%s.json" % label, base_config(args, env["redis_port"], accounts, 10000))
    ids = ["t-%d" % i for i in range(n)]
    quiet(args)
    r.pipeline(job_commands([(jid, names[i % naccounts]) for i, jid in enumerate(ids)]))
    log = os.path.join(work, "outq-%s.log" % label)
    drain = sn.Drain(env, r)
    drain.start()
    worker = procs.start("outq", [args.outq, "run", "--config", path], stdout=subprocess.DEVNULL,
                         stderr=open(log, "w"))
    t0 = time.monotonic()
    timed_out = False
    while r.call("XLEN", RESULTS) < n:
        if worker.poll() is not None:
            raise sn.Failure("outq exited (status %s) during %s; log %s\n%s" % (
                worker.returncode, label, log, sn.tail_of(log)))
        if time.monotonic() - t0 > args.timeout:
            timed_out = True
            break
        time.sleep(0.05)
    m = drain.finish(worker)
    status = procs.stop(worker, timeout=30)
    values = results_of(r, ids)
    sent = [(int(v["enqueued_at"]), int(v["completed_at"])) for v in values if v.get("status") == "sent"]
    dead = sum(1 for v in values if v.get("status") == "dead")
    ns = argparse.Namespace(n=n)
    x = drain.result("outq", ns, m, sent, dead, status, 0.0, log)
    x["timed_out"] = timed_out
    x["completions"] = sorted(c for _, c in sent)
    return x


def run_bullmq_limited(args, env, r, n):
    r.call("FLUSHALL")
    quiet(args)
    ns = argparse.Namespace(n=n, bullmq_concurrency=args.bullmq_concurrency,
                            bullmq_connections=args.bullmq_concurrency, timeout=args.timeout,
                            bullmq_limiter=(args.limit, 1000))
    x = sn.run_bullmq(ns, env, r, "bullmq")
    x["timed_out"] = False
    ids = r.call("ZRANGE", "bull:%s:completed" % QUEUE, 0, -1)
    x["completions"] = sorted(int(v) for v in r.pipeline([("HGET", "bull:%s:%s" % (QUEUE, i), "finishedOn")
                                                          for i in ids]) if v)
    return x


def limited_row(x, limit_sum):
    rate = x["ok"] / x["wall"] if x["wall"] > 0 else 0.0
    x["rate"], x["share"] = rate, rate / limit_sum
    c = x["completions"]
    x["span"] = (c[-1] - c[0]) / 1000.0 if len(c) > 1 else 0.0
    x["rate2"] = (len(c) - 1) / x["span"] if x["span"] > 0 else 0.0
    x["share2"] = x["rate2"] / limit_sum
    n = max(1, x["ok"])
    x["cpu_job"], x["redis_cpu_job"] = x["cpu"] / n, x["redis_cpu"] / n
    x["cmds_job"] = x["redis_calls"] / n
    x["req_job"] = x["requests"] / n if x["requests"] is not None else float("nan")
    return x


def print_throttled(args, rows):
    print()
    print("### --throttled: accounts limited to %d requests/s each (rate_limit requests %d per_ms 1000%s)" % (
        args.limit, args.limit, ", burst %d" % args.burst if args.burst else ", burst default"))
    print()
    print("wall s, jobs/s, of the limits: from the worker's start (its start-up included) to the last completion; "
          "first->last: (jobs - 1) / (last - first completion), start-up left out (a fixed-window limiter "
          "can reach up to about one window more than its limit on this one)")
    print()
    print("| case | worker | jobs sent | sum of limits /s | wall s | jobs/s | of the limits | first->last jobs/s "
          "| first->last of the limits | worker CPU ms/1k jobs | redis CPU ms/1k jobs | redis cmds/job "
          "| HTTP req/job | other CPU s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case, x, limit_sum in rows:
        print("| %s | %s | %d/%d%s | %d | %.2f | %.0f | **%.1f %%** | %.0f | %.1f %% | %.1f | %.1f | %.2f | %.3f | %.2f |" % (
            case, x["worker"], x["ok"], x["n"], " (timed out)" if x.get("timed_out") else "", limit_sum, x["wall"],
            x["rate"], 100 * x["share"], x["rate2"], 100 * x["share2"], x["cpu_job"] * 1e6,
            x["redis_cpu_job"] * 1e6, x["cmds_job"], x["req_job"], x["other_cpu"]))
    single = {x["worker"]: x for case, x, _ in rows if case.startswith("1 account")}
    if "outq" in single and "bullmq" in single:
        o, b = single["outq"], single["bullmq"]

        def ratio(key):
            return o[key] / b[key] if b[key] else float("nan")
        print("| 1 account | outq/bullmq | | | %.2fx | **%.3fx** | | %.3fx | | **%.2fx** | %.2fx | **%.2fx** | |" % (
            ratio("wall"), ratio("rate"), ratio("rate2"), ratio("cpu_job"), ratio("redis_cpu_job"),
            ratio("cmds_job")))
    print()
    print("(other CPU s: what the rest of the machine used meanwhile, i.e. noise from other tenants)")
    print()
    for case, x, _ in rows:
        n = max(1, x["ok"])
        top = sorted(x["redis_stats"].items(), key=lambda kv: -kv[1][0])
        print("Redis calls per job, %s, %s: %s" % (case, x["worker"], ", ".join(
            "%s %.2f" % (name, c / n) for name, (c, _) in top if c / n >= 0.01)))
    print("(these include the bench's own polling, XLEN or ZCARD every 50 or 20 ms; the redis cmds/job column "
          "leaves it out)")
    print()
    for case, x, _ in rows:
        if x["worker"] == "outq":
            print("%s, outq: %.1f %% of the limits from its start, %.1f %% first->last (goal >= 98 %%): %s" % (
                case, 100 * x["share"], 100 * x["share2"], "met" if x["share"] >= 0.98 else "NOT met"))


# ---------------------------------------------------------------- main

def parse_args():
    p = argparse.ArgumentParser(prog="isolation.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--noisy-neighbour", action="store_true", help="healthy account vs. a hanging one (see above)")
    p.add_argument("--throttled", action="store_true", help="accounts at their rate limits (see above)")
    p.add_argument("--quick", action="store_true", help="small counts, a few seconds per mode")
    p.add_argument("--n", type=int, help="--noisy-neighbour: healthy jobs (default 3000; 300 with --quick)")
    p.add_argument("--n-sick", type=int, help="--noisy-neighbour: hanging account's jobs, enqueued first "
                   "(default 300; 30 with --quick)")
    p.add_argument("--sick-timeout-ms", type=int, help="the hanging account's http.request_timeout_ms "
                   "(default 20000; 2000 with --quick)")
    p.add_argument("--workers", default="1", help="--noisy-neighbour: worker processes, a comma list (default 1; "
                   "e.g. 1,3)")
    p.add_argument("--repeat", type=int, default=1, help="--noisy-neighbour: solo and noisy runs this many times "
                   "each, alternating; medians and every run printed (default 1)")
    p.add_argument("--accounts", type=int, default=20, help="--throttled: accounts (default 20)")
    p.add_argument("--limit", type=int, default=200, help="--throttled: requests per second per account (200)")
    p.add_argument("--burst", type=int, default=0, help="--throttled: the accounts' rate_limit.burst "
                   "(default: not set, outq's default)")
    p.add_argument("--throttled-n", type=int, help="--throttled: jobs over all accounts (default 40000; "
                   "4000 with --quick)")
    p.add_argument("--single-n", type=int, help="--throttled: jobs of the one-account case, outq and BullMQ "
                   "(default 4000; 400 with --quick)")
    p.add_argument("--only", choices=["outq"], help="--throttled: skip BullMQ")
    p.add_argument("--concurrency", type=int, default=256, help="outq jobs in flight per worker (256)")
    p.add_argument("--fetch-batch", type=int, default=256, help="outq fetch_batch (256)")
    p.add_argument("--connections", type=int, default=64, help="outq http.max_connections (64)")
    p.add_argument("--bullmq-concurrency", type=int, default=50, help="BullMQ Worker concurrency (50)")
    p.add_argument("--timeout", type=int, help="seconds a run may take before it is stopped and reported as "
                   "timed out (default 120; 30 with --quick)")
    p.add_argument("--wait-quiet", type=float, metavar="SECONDS", help="before each run, wait up to this long for "
                   "the machine's other processes to go quiet (default 20; 0 with --quick)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    p.add_argument("--outq", default=os.path.join(os.environ.get("OUTQ_BUILD_DIR", os.path.join(sn.ROOT, "build")),
                                                   "worker", "outq"), help="the worker binary")
    args = p.parse_args()
    if not args.noisy_neighbour and not args.throttled:
        args.noisy_neighbour = args.throttled = True
    q = args.quick
    args.n = args.n or (300 if q else 3000)
    args.n_sick = args.n_sick if args.n_sick is not None else (30 if q else 300)
    args.sick_timeout_ms = args.sick_timeout_ms or (2000 if q else 20000)
    args.throttled_n = args.throttled_n or (4000 if q else 40000)
    args.single_n = args.single_n or (400 if q else 4000)
    args.timeout = args.timeout or (30 if q else 120)
    if args.wait_quiet is None:
        args.wait_quiet = 0 if q else 20
    try:
        args.worker_counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        p.error("--workers: a comma list of numbers")
    if min(args.worker_counts) < 1 or args.n < 1 or args.n_sick < 0 or args.accounts < 1 or args.limit < 1 or args.repeat < 1:
        p.error("counts must be positive")
    return args


def main():
    args = parse_args()
    if not os.access(args.outq, os.X_OK):
        raise sn.Failure("no worker binary at %s (run scripts/build.sh, or pass --outq)" % args.outq)
    bullmq = args.throttled and args.only != "outq"
    if bullmq and not os.path.isdir(os.path.join(sn.PEER, "node_modules", "bullmq")):
        raise sn.Failure("BullMQ is not installed in %s (npm ci there, or pass --only outq)" % sn.PEER)
    procs = sn.Processes()
    work = tempfile.mkdtemp(prefix="outq-isolation.")
    stop_signal = []

    def on_signal(signum, _frame):
        stop_signal.append(signum)
        raise KeyboardInterrupt
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    failed = False
    try:
        redis, redis_port = sn.start_redis(procs, work)
        _, nginx_pids, port, status_port = sn.start_nginx(procs, work, sn.MEWS_ADD_PATH, False)
        env = {"procs": procs, "work": work, "redis_pid": redis.pid, "redis_port": redis_port, "ca": None,
               "provider_pids": nginx_pids, "status_port": status_port,
               "url": "http://127.0.0.1:%d%s" % (port, sn.MEWS_ADD_PATH)}
        r = sn.Redis(redis_port)
        print("%s UTC, %d cores (%s); this checkout at %s" % (
            time.strftime("%Y-%m-%d %H:%M", time.gmtime()), os.cpu_count(), sn.cpu_model(), sn.source_version()))
        print("worker binary %s, modified %s UTC (built from this checkout only if it is this checkout's build)" % (
            args.outq, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(os.stat(args.outq).st_mtime))))
        if args.noisy_neighbour:
            _, hang_port = start_hang_server(procs, work, sn.MEWS_ADD_PATH)
            env["hang_port"] = hang_port
            env["hang_url"] = "http://127.0.0.1:%d%s" % (hang_port, sn.MEWS_ADD_PATH)
            pairs = []
            for w in args.worker_counts:
                print("noisy-neighbour, %d worker(s): solo, then behind %d hanging jobs..." % (w, args.n_sick),
                      file=sys.stderr, flush=True)
                solos, noisies = [], []
                for _ in range(args.repeat):
                    solo = run_noisy(args, env, r, w, False)
                    noisy = run_noisy(args, env, r, w, True)
                    solos.append(solo)
                    noisies.append(noisy)
                    failed |= solo["ok"] != args.n or any(solo["exit"] + noisy["exit"])
                pairs.append((solos, noisies))
            print_noisy(args, pairs)
        if args.throttled:
            rows = []
            total = args.accounts * args.limit
            print("throttled: %d accounts x %d/s, %d jobs..." % (args.accounts, args.limit, args.throttled_n),
                  file=sys.stderr, flush=True)
            x = limited_row(run_outq_limited(args, env, r, "%daccounts" % args.accounts, args.accounts,
                                             args.throttled_n), total)
            rows.append(("%d accounts" % args.accounts, x, total))
            print("  %.2fs, %d/%d sent, %.0f jobs/s" % (x["wall"], x["ok"], x["n"], x["rate"]), file=sys.stderr)
            print("throttled: 1 account x %d/s, %d jobs, outq%s..." % (args.limit, args.single_n,
                                                                    " then BullMQ" if bullmq else ""),
                  file=sys.stderr, flush=True)
            x = limited_row(run_outq_limited(args, env, r, "1account", 1, args.single_n), args.limit)
            rows.append(("1 account", x, args.limit))
            print("  %.2fs, %d/%d sent, %.0f jobs/s" % (x["wall"], x["ok"], x["n"], x["rate"]), file=sys.stderr)
            if bullmq:
                x = limited_row(run_bullmq_limited(args, env, r, args.single_n), args.limit)
                rows.append(("1 account", x, args.limit))
                print("  bullmq %.2fs, %d/%d done, %.0f jobs/s" % (x["wall"], x["ok"], x["n"], x["rate"]),
                      file=sys.stderr)
            print_throttled(args, rows)
            failed |= any(x["exit"] != 0 for _, x, _ in rows)
        r.close()
        print("\nload average at the end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("interrupted (signal %s); stopping what was started" % (stop_signal or ["INT"])[0], file=sys.stderr)
        return 130
    except sn.Failure as e:
        args.keep = True
        print("isolation: %s" % e, file=sys.stderr)
        return 1
    finally:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        procs.stop_all()
        if args.keep:
            print("work directory kept: %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except sn.Failure as e:
        print("isolation: %s" % e, file=sys.stderr)
        sys.exit(1)
