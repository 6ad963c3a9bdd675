"""Resident memory of one worker pod: the base RSS and the per-job overhead factor
behind the memory limit of deploy/kubernetes/deployment.yaml. A measurement, not
a test.

One redis-server (TLS, as rediss:// in production) on a free loopback port, the
provider sandbox (tests/fakes/sandbox.py, in this process, HTTPS) and the real
worker, started through tests/integration/harness.py; every process started here
is stopped by its PID on the way out, on failure and on a signal too.

The worker gets the production config's concurrency (C), fetch_batch (F),
lanes.buffer (B), max_job_bytes, and Mews batch and answer settings
(deploy/kubernetes/outq.json). Only scheduling knobs differ, so that one account may
hold the whole buffer (lanes.queue B, no rate limit, lanes.reserve 1): they decide how
many deliveries are held, not what one costs. Each wave has a fresh account, untrusted
until its first answer, so it takes at most C - 1 slots (the reserve); with fewer than
C in requests the fetcher reads on until B deliveries wait in its lane: the worker
holds C - 1 + B (+ a batch being admitted), near the bound C + B + F of
docs/operations.md ("Lanes", memory bound). Two worker processes:

1. webhook: after a warm-up on another account (small jobs, every slot used twice,
   so the connections and TLS sessions exist), VmRSS is the base. Then a wave of
   C + B + 3F jobs of exactly --job-bytes of JSON is added; the sandbox holds the
   answers of the first C for --hold-ms ("delay_ms" directives), the rest go out as
   slots free. Sampled every 50 ms until the wave is done: VmRSS, and the entries
   the worker holds (XPENDING) until the first answer. --waves waves, as the
   allocator's peak settles after a few.
2. mews: the same with Mews jobs (Text padded to --job-bytes), in batches of the
   config's batch_size; the sandbox answers batches --hold-ms late ("late" knob)
   until the first answer, repeating their messages as Mews does.

The worker also gets the env of deployment.yaml's container, if it has one, so what
is measured is what the pod runs. (glibc's mmap threshold is fixed by the worker
itself, worker/main.cpp: without that its heap grew from wave to wave.)

Printed: the base (the larger of the two), the per-job overhead factor
    job_factor = (VmHWM - base) / (jobs held x job bytes)        (webhook)
the Mews surplus per job in a request (batch body, its wire copy, the repeated answer)
    mews_factor = (Mews growth - job_factor x held x job bytes) / (C x job bytes)
and the memory formula of deployment.yaml evaluated for the config.

    /usr/bin/python3 scripts/bench/pod_memory.py [--job-bytes 262144] [--hold-ms 5000] [--waves 4] [--json]
        [--ignore-deployment-env] [--env NAME=VALUE]    # about 2 minutes with the defaults
"""
import argparse
import json
import math
import os
import signal
import sys
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CONFIG = os.path.join(ROOT, "deploy", "kubernetes", "outq.json")
DEPLOYMENT = os.path.join(ROOT, "deploy", "kubernetes", "deployment.yaml")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402 - the project's redis-server, sandbox and worker processes

QUEUE = "podmem"
MIB = 1 << 20


class Failure(Exception):
    pass


def proc_status(pid):
    """{VmRSS, VmHWM, RssAnon}: bytes, from /proc/PID/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon"):
                out[name] = int(value.split()[0]) * 1024
            elif name == "Threads":
                out[name] = int(value)
    return out


def deployment_env(path):
    """{name: value} of the worker container's env in deployment.yaml (plain values only):
    the allocator settings there change what a job costs, so they are measured too."""
    import yaml  # python3-yaml; only needed here
    with open(path) as f:
        for d in yaml.safe_load_all(f):
            if d and d.get("kind") == "Deployment":
                [c] = d["spec"]["template"]["spec"]["containers"]
                return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
    return {}


def padded_job(job_id, provider, account, make_message, size):
    """A job JSON of exactly `size` bytes: make_message(filler) builds the message."""
    def render(filler):
        job = {"v": 1, "id": job_id, "provider": provider, "account": account, "message": make_message(filler)}
        return json.dumps(job, separators=(",", ":"))
    base = len(render(""))
    if base > size:
        raise Failure("a job of %d bytes cannot hold its envelope (%d bytes)" % (size, base))
    text = render("x" * (size - base))
    assert len(text) == size
    return text


class Run:
    def __init__(self, env, args, prod):
        self.env = env
        self.args = args
        self.prod = prod
        self.c = prod["concurrency"]
        self.f = prod["fetch_batch"]
        self.b = prod["lanes"]["buffer"]
        mews = prod["providers"]["mews"]
        self.mews_account = dict(next(iter(mews["accounts"].values())))
        self.mews_http = dict(mews.get("http", {}))
        self.deadline = time.monotonic() + args.timeout
        self.worker_env = dict(args.deployment_env)
        self.worker_env.update(setting.split("=", 1) for setting in args.env)

    def check_time(self, what):
        if time.monotonic() > self.deadline:
            raise Failure("timed out (--timeout %ds) during %s" % (self.args.timeout, what))

    def config(self):
        """The production shape with sandbox accounts: "warm" for the warm-up, and a fresh
        account per wave ("w0", "w1", ...) that stays untrusted until its first answer, so it
        takes at most C - 1 slots (lanes.reserve 1) and the fetcher, with fewer than C in
        requests, reads on until B deliveries wait in its lane (lanes.queue B)."""
        env, hold = self.env, self.args.hold_ms
        cfg = env.config(log_level="warn", concurrency=self.c, fetch_batch=self.f, shutdown_grace_ms=1000,
                         visibility_timeout_ms=600000, max_job_bytes=self.prod["max_job_bytes"])
        cfg["metrics_listen"] = "127.0.0.1:%d" % harness.free_port()
        cfg["lanes"] = {"buffer": self.b, "queue": self.b, "reserve": 1, "start_window": self.c,
                        "slow_after_ms": 3600000}
        http = {"request_timeout_ms": hold + 60000, "max_connections": self.c,
                "max_response_bytes": self.prod["providers"]["webhook"].get("http", {}).get("max_response_bytes",
                                                                                           1048576)}
        tls = {"ca_file": env.pki.ca_cert}
        names = ["warm"] + ["w%d" % i for i in range(self.args.waves)]
        mews = {"platform_address": env.sandbox.url, "client_token": "ct", "access_token": "at",
                "batch_size": self.mews_account.get("batch_size", 100),
                "batch_wait_ms": self.mews_account.get("batch_wait_ms", 5), "tls": tls}
        cfg["providers"] = {
            "webhook": {"http": http, "retry": {"base_ms": 20, "cap_ms": 200},
                        "accounts": {n: {"url": env.sandbox.url + "/hook/" + n, "tls": tls} for n in names}},
            "mews": {"http": dict(self.mews_http, request_timeout_ms=hold + 60000, max_connections=self.c),
                     "retry": {"base_ms": 20, "cap_ms": 200}, "rate_limit": {"requests": 0},
                     "accounts": {n: dict(mews) for n in names}},
        }
        return cfg

    def wait_ready(self, w, url):
        while True:
            if not w.alive():
                raise Failure("the worker exited (%s):\n%s" % (w.proc.returncode, w.log_tail(20)))
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            self.check_time("start-up")
            time.sleep(0.1)

    def wait_results(self, ids, w, what):
        missing = list(ids)
        while missing:
            missing = [i for i, done in zip(missing, self.env.outcomes_of(missing)) if not done]
            if not w.alive():
                raise Failure("the worker exited during %s:\n%s" % (what, w.log_tail(20)))
            self.check_time(what)
            time.sleep(0.1)

    def pending(self):
        try:
            return int(self.env.r.xpending(self.env.key("jobs"), harness.GROUP)["pending"])
        except Exception:  # noqa: BLE001 - no group yet
            return 0

    def small_jobs(self, prefix, n, provider):
        if provider == "webhook":
            return [json.dumps({"v": 1, "id": "%s-%d" % (prefix, i), "provider": "webhook", "account": "warm",
                                "message": {"text": "warm-up"}}) for i in range(n)]
        return [json.dumps({"v": 1, "id": "%s-%d" % (prefix, i), "provider": "mews", "account": "warm",
                            "message": {"MessageThreadId": str(uuid.uuid4()), "Text": "warm-up"}}) for i in range(n)]

    def big_jobs(self, prefix, n, provider):
        """Jobs of exactly --job-bytes for account `prefix`. The first C webhook jobs (those the
        lane sends before it must stop) have their answers held --hold-ms; Mews answers are
        held by the sandbox's "late" knob instead (phase())."""
        size, hold = self.args.job_bytes, self.args.hold_ms
        if provider == "webhook":
            return [padded_job("%s-%05d" % (prefix, i), "webhook", prefix,
                               lambda filler, d=(hold if i < self.c else 0): {"sandbox": {"delay_ms": d},
                                                                             "text": filler}, size)
                    for i in range(n)]
        return [padded_job("%s-%05d" % (prefix, i), "mews", prefix,
                           lambda filler, t=str(uuid.uuid4()): {"MessageThreadId": t, "Text": "m" + filler}, size)
                for i in range(n)]

    def enqueue(self, jobs):
        r = self.env.r
        for first in range(0, len(jobs), 16):
            pipe = r.pipeline(transaction=False)
            for job in jobs[first:first + 16]:
                pipe.xadd(self.env.key("jobs"), {"job": job})
            pipe.execute()

    def phase(self, provider):
        """One worker process: base after a warm-up, then --waves waves of big jobs."""
        env = self.env
        env.r.flushall()
        env.sandbox.reset()
        cfg = self.config()
        w = env.worker(cfg, name="podmem-%s" % provider, extra_env=self.worker_env)
        url = "http://" + cfg["metrics_listen"]
        self.wait_ready(w, url)
        # Warm-up: two rounds of every slot, so the connections, TLS sessions and buffers
        # that any load needs exist before the base is read.
        for round_ in range(2):
            ids = ["warm%d-%d" % (round_, i) for i in range(2 * self.c)]
            self.enqueue(self.small_jobs("warm%d" % round_, 2 * self.c, provider))
            self.wait_results(ids, w, "the warm-up")
        time.sleep(2)  # the acknowledgements and the progress line
        base = proc_status(w.pid)
        out = {"provider": provider, "base_rss": base["VmRSS"], "base_hwm": base["VmHWM"], "waves": []}
        n = self.c + self.b + 3 * self.f
        for wave in range(self.args.waves):
            prefix = "w%d" % wave  # the wave's own account
            jobs = self.big_jobs(prefix, n, provider)
            if provider == "mews":
                with env.sandbox.server.state.lock:
                    env.sandbox.server.state.mews_late = {"requests": 1 << 30, "delay_ms": self.args.hold_ms}
            t0 = time.monotonic()
            self.enqueue(jobs)
            enqueued_s = time.monotonic() - t0
            held = peak = 0
            ids = ["%s-%05d" % (prefix, i) for i in range(n)]
            # Until the first answer: C - 1 in requests, B waiting, maybe a batch being admitted.
            while time.monotonic() - t0 < self.args.hold_ms / 1000 and not any(env.outcomes_of(ids[:1])):
                held = max(held, self.pending())
                peak = max(peak, proc_status(w.pid)["VmRSS"])
                time.sleep(0.05)
            if provider == "mews":
                with env.sandbox.server.state.lock:  # requests from now on are answered at once
                    env.sandbox.server.state.mews_late = {"requests": 0, "delay_ms": 0}
            missing = list(ids)
            while missing:  # the rest of the wave, RSS still sampled
                peak = max(peak, proc_status(w.pid)["VmRSS"])
                missing = [i for i, done in zip(missing, env.outcomes_of(missing)) if not done]
                if not w.alive():
                    raise Failure("the worker exited during wave %d:\n%s" % (wave, w.log_tail(20)))
                self.check_time("wave %d of %s" % (wave, provider))
                time.sleep(0.05)
            time.sleep(1)  # acknowledgements; what the allocator keeps afterwards is rss_after
            statuses = {}
            for i in ids[:: max(1, n // 50)]:
                s = env.result(i).get("status")
                statuses[s] = statuses.get(s, 0) + 1
            st = proc_status(w.pid)
            out["threads"] = st["Threads"]
            out["waves"].append({"jobs": n, "held": held, "peak_rss": peak, "hwm": st["VmHWM"],
                                 "rss_after": st["VmRSS"], "statuses_sampled": statuses,
                                 "enqueue_s": round(enqueued_s, 2)})
            print("%s wave %d: held %d, peak VmRSS %.1f MiB, VmHWM %.1f MiB, after %.1f MiB (base %.1f MiB), "
                  "enqueued in %.1f s, %s" % (provider, wave, held, peak / MIB, st["VmHWM"] / MIB, st["VmRSS"] / MIB,
                                              base["VmRSS"] / MIB, enqueued_s, statuses),
                  file=sys.stderr, flush=True)
        w.sigterm()
        if w.wait(30) != 0:
            raise Failure("the %s worker exited with status %s after SIGTERM:\n%s"
                          % (provider, w.proc.returncode, w.log_tail(20)))
        out["hwm"] = max(x["hwm"] for x in out["waves"])
        out["held"] = max(x["held"] for x in out["waves"])
        return out


def formula(prod, base_mib, job_factor, mews_factor):
    """deployment.yaml's memory formula for the config, in MiB."""
    c, f, b, j = prod["concurrency"], prod["fetch_batch"], prod["lanes"]["buffer"], prod["max_job_bytes"]
    responses = max(p.get("http", {}).get("max_response_bytes", 1048576)
                    for name, p in prod["providers"].items() if name != "mews")
    return {"jobs_mib": j * (c + b + f) * job_factor / MIB, "mews_mib": j * c * mews_factor / MIB,
            "responses_mib": c * responses / MIB, "base_mib": base_mib,
            "total_mib": base_mib + (j * (c + b + f) * job_factor + j * c * mews_factor + c * responses) / MIB}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=CONFIG, help="the production config (default deploy/kubernetes/outq.json)")
    p.add_argument("--job-bytes", type=int, default=0, help="bytes of each job's JSON (default: max_job_bytes)")
    p.add_argument("--hold-ms", type=int, default=5000, help="how long the sandbox holds each answer")
    p.add_argument("--waves", type=int, default=4,
                   help="waves of big jobs per worker process (Mews' peak creeps up over the first three)")
    p.add_argument("--build-dir", default=os.environ.get("OUTQ_BUILD_DIR", os.path.join(ROOT, "build")))
    p.add_argument("--timeout", type=int, default=600, help="seconds for the whole run")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="an environment variable for the worker, e.g. MALLOC_ARENA_MAX=2 (repeatable)")
    p.add_argument("--ignore-deployment-env", action="store_true",
                   help="do not give the worker the env of deployment.yaml's container (measured by default)")
    p.add_argument("--json", action="store_true")
    return p.parse_args()


def main():
    args = parse_args()
    binary = os.path.join(args.build_dir, "worker", "outq")
    if not os.access(binary, os.X_OK):
        raise Failure("no worker binary at %s" % binary)
    harness.OUTQ = binary
    prod = harness.load_jsonc(args.config)
    args.deployment_env = {} if args.ignore_deployment_env else deployment_env(DEPLOYMENT)
    args.job_bytes = args.job_bytes or prod["max_job_bytes"]
    if args.job_bytes > prod["max_job_bytes"]:
        raise Failure("--job-bytes %d is over max_job_bytes %d: the worker would dead-letter them"
                      % (args.job_bytes, prod["max_job_bytes"]))

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    started = time.monotonic()
    with harness.Env(queue=QUEUE, tls=True, https_sandbox=True) as env:
        # the harness stops the workers, the sandbox and redis-server by PID, whatever happens
        run = Run(env, args, prod)
        webhook = run.phase("webhook")
        mews = run.phase("mews")
    jb = args.job_bytes
    job_factor = (webhook["hwm"] - webhook["base_rss"]) / (webhook["held"] * jb)
    mews_growth = mews["hwm"] - mews["base_rss"]
    mews_factor = (mews_growth - job_factor * mews["held"] * jb) / (run.c * jb)
    base = max(webhook["base_rss"], mews["base_rss"])
    rounded = {"base_rss_mib": math.ceil(base / MIB), "job_factor": math.ceil(job_factor * 10) / 10,
               "mews_factor": max(0.0, math.ceil(mews_factor * 10) / 10)}
    env_used = dict(args.deployment_env)
    env_used.update(setting.split("=", 1) for setting in args.env)
    report = {"binary": binary, "config": os.path.relpath(args.config, ROOT), "job_bytes": jb, "env": env_used,
              "hold_ms": args.hold_ms, "concurrency": run.c, "fetch_batch": run.f, "lanes_buffer": run.b,
              "webhook": webhook, "mews": mews, "base_rss_mib": base / MIB, "job_factor": job_factor,
              "mews_factor": mews_factor, "rounded": rounded,
              "formula": formula(prod, rounded["base_rss_mib"], rounded["job_factor"], rounded["mews_factor"]),
              "seconds": round(time.monotonic() - started, 1)}
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    print("config %s: concurrency %d, fetch_batch %d, lanes.buffer %d, jobs of %d B, answers held %d ms, "
          "%d waves%s" % (report["config"], run.c, run.f, run.b, jb, args.hold_ms, args.waves,
                          "".join(", %s=%s" % kv for kv in sorted(env_used.items()))))
    for ph in (webhook, mews):
        print("%-8s base VmRSS %6.1f MiB  VmHWM %6.1f MiB  held %4d jobs  growth %6.1f MiB"
              % (ph["provider"], ph["base_rss"] / MIB, ph["hwm"] / MIB, ph["held"],
                 (ph["hwm"] - ph["base_rss"]) / MIB))
    print("base RSS %.1f MiB; job factor %.2f (growth / (held x job bytes)); Mews surplus %.2f per job in a request"
          % (base / MIB, job_factor, mews_factor))
    f = report["formula"]
    print("memory = %d MiB base + %.1f MiB jobs + %.1f MiB Mews + %.1f MiB answers = %.1f MiB"
          % (f["base_mib"], f["jobs_mib"], f["mews_mib"], f["responses_mib"], f["total_mib"]))
    print("deployment.yaml line:  # outq-memory: base_rss_mib=%d job_factor=%.1f mews_factor=%.1f"
          % (rounded["base_rss_mib"], rounded["job_factor"], rounded["mews_factor"]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("pod_memory: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        print("pod_memory: interrupted (%s); everything started was stopped" % (e or "SIGINT"), file=sys.stderr)
        sys.exit(130)
