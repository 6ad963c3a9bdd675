#!/usr/bin/env python3
"""Open-loop latency: outq against BullMQ, a producer at a fixed rate.

Job i is due to be enqueued at t0 + i/rate (its schedule). The producer adds
whatever is due at once, so a slow enqueue or a slow worker never slows the
schedule (no coordinated omission), and every latency is counted from the
schedule, in microseconds of the wall clock:

  provider: schedule -> the request of the job reaching the provider
            (scripts/bench/stamp_server.cpp, which answers at once)
  result:   schedule -> the job's completion event read from Redis by an
            observer process (outq: `outq:{Q}:results`; BullMQ: its
            `bull:Q:events` stream, event `completed`)

The producer for outq and both observers are scripts/bench/loadgen.cpp (C++,
hiredis); BullMQ's producer is peers/bullmq/produce.mjs (its own Queue API).
Both C++ tools are compiled into the run's work directory.

Phases, per worker, in one run on the same redis-server and provider:
  1. its maximum: N pre-enqueued jobs drained (as send-n.sh), jobs/s;
  2. open loop at half its own maximum, for --seconds;
  3. open loop at one common rate both sustain (half of the slower's maximum);
  4. with --delayed MS: delayed jobs (outq `not_before`, BullMQ `delay`) at
     --delayed-rate, latency counted from each job's due time to the provider.
Each open-loop phase starts with --warmup seconds (2) at its rate whose jobs
are sent but not counted: the first requests of a worker open its
connections (and warm BullMQ's JIT).

  scripts/bench/latency.sh [--seconds 10] [--only outq|bullmq] [--rate-outq R --rate-bullmq R] [--delayed 1000]

Loopback only; stops every process it started, by its PID.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

import send_n
from send_n import Failure, Processes, Redis, free_port, percentile, wait_port, start_redis, tail_of

HERE = os.path.dirname(os.path.abspath(__file__))
QUEUE = send_n.QUEUE


def now_us():
    return time.time_ns() // 1000


# ---------------------------------------------------------------- phases

def produce_outq(env, rate, count, t0, sched, delay_ms):
    """The open-loop producer for outq (loadgen produce, on the same schedule). Returns (due us, lag)."""
    message = os.path.join(env["work"], "message.json")
    with open(message, "w") as f:
        f.write(send_n.MESSAGE)
    out = os.path.join(env["work"], "lag.txt")
    p = subprocess.run([env["loadgen"], "produce", "--port", str(env["redis_port"]), "--rate", str(rate),
                        "--count", str(count), "--t0-us", str(t0), "--message", message, "--delay-ms", str(delay_ms),
                        "--out", out], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode:
        raise Failure("the outq producer failed: " + p.stderr.decode(errors="replace"))
    with open(out) as f:
        words = f.read().split()  # lag p99 <us> worst <us>
    # outq is given whole milliseconds: counted from that due time
    due = [((s + 999) // 1000 + delay_ms) * 1000 for s in sched] if delay_ms else sched
    return due, {"p99_us": int(words[2]), "worst_us": int(words[4])}


def produce_bullmq(env, rate, count, t0, sched, delay_ms):
    """The open-loop producer for BullMQ (peers/bullmq/produce.mjs, on the same schedule). Returns (due us, lag)."""
    argv = ["node", "produce.mjs", "--port", str(env["redis_port"]), "--rate", str(rate), "--count", str(count),
            "--t0-us", str(t0), "--queue", QUEUE, "--delay-ms", str(delay_ms)]
    p = subprocess.run(argv, cwd=send_n.PEER, env=dict(os.environ, OUTQ_BENCH_MESSAGE=send_n.MESSAGE),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode:
        raise Failure("BullMQ producer failed:\n" + p.stdout.decode(errors="replace")[-3000:])
    stats = json.loads(p.stdout.decode().strip().splitlines()[-1])
    return [s + delay_ms * 1000 for s in sched], {"p99_us": None, "mean_us": stats["mean_lag_us"],
                                                  "worst_us": stats["worst_lag_us"]}


def start_stamp_server(env, count, label):
    out = os.path.join(env["work"], "stamps-%s.txt" % label)
    p = env["procs"].start("stamp server", [env["stamp_bin"], "--port", str(env["port"]), "--jobs", str(count),
                                            "--out", out],
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(env["work"], "stamp.log"), "a"))
    wait_port(env["port"], "stamp server", p)
    return p, out


def read_pairs(path):
    arrivals, footer = {}, ""
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                footer = line[1:].strip()
                continue
            i, at = line.split()
            arrivals[int(i)] = int(at)
    return arrivals, footer


def start_worker(args, env, kind, label):
    log = os.path.join(env["work"], "%s.log" % label)
    if kind == "outq":
        config, _ = send_n.outq_config(args, "webhook", env["redis_port"], env["url"], None, env["work"])
        p = env["procs"].start("outq", [args.outq, "run", "--config", config], stdout=subprocess.DEVNULL,
                               stderr=open(log, "w"))
    else:
        p = env["procs"].start("bullmq worker", send_n.bullmq_worker_argv(args, env), cwd=send_n.PEER,
                               stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    time.sleep(1.5)  # connected, group created, blocking read waiting
    if p.poll() is not None:
        raise Failure("%s exited at start; log %s\n%s" % (kind, log, tail_of(log)))
    return p, log


def open_loop(args, env, r, kind, rate, delay_ms=0, label=None):
    label = label or "%s-%d%s" % (kind, rate, "-delayed" if delay_ms else "")
    seconds = args.seconds + args.warmup
    count = max(1, int(rate * seconds))
    first = int(rate * args.warmup)  # the warm-up's jobs are sent and waited for, not counted
    r.call("FLUSHALL")
    if args.wait_quiet:
        send_n.wait_for_quiet(args.wait_quiet)
    stamp, stamp_out = start_stamp_server(env, count, label)
    worker, log = start_worker(args, env, kind, label)
    obs_out = os.path.join(env["work"], "observed-%s.txt" % label)
    observer = env["procs"].start("observer", [env["loadgen"], "observe", "--port", str(env["redis_port"]),
                                               "--kind", kind, "--count", str(count), "--out", obs_out],
                                  stdout=subprocess.PIPE)
    if observer.stdout.readline().strip() != b"ready":
        raise Failure("the observer did not start")
    cpu0 = send_n.cpu_seconds([worker.pid])
    redis0 = send_n.cpu_seconds([env["redis_pid"]])
    t0 = now_us() + 200_000
    sched = [t0 + int(i * 1e6 / rate) for i in range(count)]  # as loadgen and produce.mjs compute it
    produce = produce_outq if kind == "outq" else produce_bullmq
    due, lag = produce(env, rate, count, t0, sched, delay_ms)
    produced = now_us()
    deadline = time.monotonic() + args.timeout
    while observer.poll() is None:
        if time.monotonic() > deadline:
            observer.send_signal(signal.SIGTERM)
            observer.wait(10)
            break
        if worker.poll() is not None:
            raise Failure("%s exited during the run; log %s\n%s" % (kind, log, tail_of(log)))
        time.sleep(0.05)
    cpu = send_n.cpu_seconds([worker.pid]) - cpu0
    redis_cpu = send_n.cpu_seconds([env["redis_pid"]]) - redis0
    env["procs"].stop(worker, timeout=30)
    env["procs"].stop(stamp)
    arrivals, footer = read_pairs(stamp_out)
    observed, _ = read_pairs(obs_out)
    start = due if delay_ms else sched
    provider = [(arrivals[i] - start[i]) / 1000 for i in range(first, count) if i in arrivals]
    result = [(observed[i] - start[i]) / 1000 for i in range(first, count) if i in observed]
    span = (max(arrivals.values()) - min(arrivals.values())) / 1e6 if len(arrivals) > 1 else float("nan")
    return {"worker": kind, "label": label, "rate": rate, "count": count - first, "delay_ms": delay_ms,
            "provider": provider, "result": result, "missing": count - len(observed), "lag": lag,
            "achieved": (len(arrivals) - 1) / span if span and span == span else float("nan"),
            "produce_s": (produced - t0) / 1e6, "stamps": footer,
            "cpu_us_per_job": cpu * 1e6 / count, "redis_cpu_us_per_job": redis_cpu * 1e6 / count}


def maximum(args, env, r, kind):
    r.call("FLUSHALL")
    if args.wait_quiet:
        send_n.wait_for_quiet(args.wait_quiet)
    stamp, _ = start_stamp_server(env, 1, "%s-max" % kind)
    a = argparse.Namespace(**vars(args))
    a.n = args.max_n if kind == "outq" else args.max_n_bullmq
    run = send_n.run_outq if kind == "outq" else send_n.run_bullmq
    x = run(a, env, r, kind, "webhook")
    env["procs"].stop(stamp)
    if x["ok"] != a.n:
        raise Failure("%s: %d of %d jobs sent in its maximum run; log %s" % (kind, x["ok"], a.n, x["log"]))
    return a.n / x["wall"]


def fmt_ms(v):
    return "%.2f" % v if v == v else "—"


def lag_text(lag):
    """How late the producer's adds were acknowledged (part of every latency above)."""
    first = ("p99 %.2f" % (lag["p99_us"] / 1000)) if lag.get("p99_us") is not None else (
        "mean %.2f" % (lag["mean_us"] / 1000))
    return "%s / worst %.2f" % (first, lag["worst_us"] / 1000)


def print_rows(rows):
    print()
    print("| worker | phase | offered jobs/s | reached jobs/s | jobs | provider p50 / p99 / p99.9 / max ms "
          "| result p50 / p99 / p99.9 ms | not done | producer lag ms | worker CPU µs/job | Redis CPU µs/job |")
    print("|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|")
    for x in rows:
        p, res = x["provider"], x["result"]
        print("| %s | %s | %d | %.0f | %d | %s / %s / %s / %s | %s / %s / %s | %d | %s | %.1f | %.1f |" % (
            x["worker"], x["phase"], x["rate"], x["achieved"], x["count"],
            fmt_ms(percentile(p, 0.5)), fmt_ms(percentile(p, 0.99)), fmt_ms(percentile(p, 0.999)),
            fmt_ms(max(p) if p else float("nan")),
            fmt_ms(percentile(res, 0.5)), fmt_ms(percentile(res, 0.99)), fmt_ms(percentile(res, 0.999)),
            x["missing"], lag_text(x["lag"]), x["cpu_us_per_job"], x["redis_cpu_us_per_job"]))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10, help="length of each open-loop phase (default 10)")
    p.add_argument("--warmup", type=float, default=2,
                   help="seconds at the phase's rate before it, sent and not counted (default 2): a worker's "
                        "first requests open its connections and warm its JIT")
    p.add_argument("--only", choices=["outq", "bullmq"])
    p.add_argument("--rate-outq", type=int, help="outq's maximum jobs/s, instead of measuring it")
    p.add_argument("--rate-bullmq", type=int, help="BullMQ's maximum jobs/s, instead of measuring it")
    p.add_argument("--max-n", type=int, default=50000, help="jobs drained to measure outq's maximum")
    p.add_argument("--max-n-bullmq", type=int, default=20000, help="jobs drained to measure BullMQ's maximum")
    p.add_argument("--delayed", type=int, default=0, metavar="MS",
                   help="also a phase of delayed jobs, each due MS after its schedule")
    p.add_argument("--delayed-rate", type=int, default=1000, help="jobs/s of the delayed phase (default 1000)")
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--fetch-batch", type=int, default=256)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--bullmq-concurrency", type=int, default=send_n.BULLMQ_BEST["concurrency"])
    p.add_argument("--bullmq-connections", type=int, default=send_n.BULLMQ_BEST["connections"])
    p.add_argument("--wait-quiet", type=float, default=10)
    p.add_argument("--timeout", type=int, default=120)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--outq", default=os.path.join(os.environ.get("OUTQ_BUILD_DIR", os.path.join(send_n.ROOT, "build")),
                                                   "worker", "outq"))
    args = p.parse_args()
    # what send_n's runs read
    args.https, args.perf, args.batch_size, args.batch_wait_ms, args.n = False, None, 100, 5, 0
    return args


def main():
    args = parse_args()
    return send_n.guarded("latency", args, "outq-latency.", lambda procs, work: measure(args, procs, work))


def measure(args, procs, work):
    tools = {}
    for tool, libs in (("stamp_server", []), ("loadgen", ["-lhiredis"])):
        tools[tool] = os.path.join(work, tool)
        c = subprocess.run(["g++", "-O2", "-std=c++17", "-o", tools[tool], os.path.join(HERE, tool + ".cpp")] + libs,
                           stderr=subprocess.PIPE)
        if c.returncode:
            raise Failure("cannot build %s:\n%s" % (tool, c.stderr.decode()))
    redis, redis_port = start_redis(procs, work)
    port = free_port()
    env = {"procs": procs, "work": work, "redis_pid": redis.pid, "redis_port": redis_port, "ca": None,
           "provider_pids": [], "status_port": None, "stamp_bin": tools["stamp_server"],
           "loadgen": tools["loadgen"], "port": port,
           "url": "http://127.0.0.1:%d%s" % (port, send_n.MEWS_ADD_PATH)}
    r = Redis(redis_port)
    kinds = [k for k in ("outq", "bullmq") if args.only in (None, k)]
    top = {}
    for k in kinds:
        given = args.rate_outq if k == "outq" else args.rate_bullmq
        if given:
            top[k] = given
        else:
            print("%s: its maximum, %d pre-enqueued jobs..." % (k, args.max_n if k == "outq" else args.max_n_bullmq),
                  file=sys.stderr, flush=True)
            env["provider_pids"] = []
            top[k] = maximum(args, env, r, k)
        print("  %s maximum %.0f jobs/s" % (k, top[k]), file=sys.stderr, flush=True)
    common = int(min(top.values()) / 2)
    rows = []
    for k in kinds:
        phases = [("half its maximum", int(top[k] / 2), 0)]
        if len(kinds) > 1:  # the slower one's half is the common rate: one phase, both names
            if int(top[k] / 2) == common:
                phases = [("half its maximum = common rate", common, 0)]
            else:
                phases.append(("common rate", common, 0))
        if args.delayed:
            phases.append(("delayed %d ms, due → provider" % args.delayed, args.delayed_rate, args.delayed))
        for name, rate, delay in phases:
            print("%s: %s, %d jobs/s for %gs..." % (k, name, rate, args.seconds), file=sys.stderr, flush=True)
            x = open_loop(args, env, r, k, rate, delay)
            x["phase"] = name
            rows.append(x)
            print("  provider p99 %.2f ms, result p99 %.2f ms, %d not done" % (
                percentile(x["provider"], 0.99), percentile(x["result"], 0.99), x["missing"]),
                file=sys.stderr, flush=True)
    r.close()
    print("\nmaximum jobs/s (drain of pre-enqueued jobs): " +
          ", ".join("%s %.0f" % (k, v) for k, v in top.items()))
    print_rows(rows)
    at_common = {x["worker"]: x for x in rows if "common rate" in x["phase"]}
    if len(at_common) == 2:
        o, b = at_common["outq"], at_common["bullmq"]
        for what in ("provider", "result"):
            print("common rate %d jobs/s, %s p99: outq/bullmq %.3fx" % (
                common, what, percentile(o[what], 0.99) / percentile(b[what], 0.99)))
    return 1 if any(x["missing"] for x in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
