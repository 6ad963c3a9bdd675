"""Bytes in Redis per waiting job, per result and results event, and per dead
letter, measured on a real redis-server with the real worker (run it through
memory.sh, which builds the worker first).

One redis-server without persistence on a free loopback port and the provider
sandbox (tests/fakes/sandbox.py, in this process) are started through the
integration test harness (tests/integration/harness.py); every process started
here is stopped by its PID on the way out, on failure and on a signal too.

1. Waiting jobs: with no worker running, N jobs (default 10,000) of the shape in
   docs/protocol.md (an 80-character text, a small meta) are added to
   outq:{bench}:jobs. Measured: INFO memory used_memory before and after, and
   MEMORY USAGE of the stream, each divided by N.
2. Results: a worker sends the N jobs to the sandbox's webhook until the results
   stream holds N events, then stops (SIGTERM), so that its connections are not
   counted. Measured: MEMORY USAGE of 200 result keys (the average), MEMORY
   USAGE of outq:{bench}:results / XLEN, and the used_memory growth since the
   empty database less every key that is not a result key: the resident cost
   of one result, the key space's own tables (main and expires dict) included.
   The result key is a hash (format 1) or a JSON string (format 2): TYPE says
   which, and both are measured the same way.
3. Dead letters: M jobs (default 2,000) for an account the worker does not
   have become dead letters of class validation without any HTTP call. Measured:
   MEMORY USAGE of outq:{bench}:dead / XLEN, MEMORY USAGE of 200 of their result
   keys, and the used_memory growth per dead job.
4. With --response-bytes B (default 250, 0 skips it): the database is flushed
   and N results are measured again with a provider answer of B bytes, which
   the result keeps as its response excerpt (real providers answer more than
   the sandbox's 33 bytes).

Every MEMORY USAGE is exact (SAMPLES 0). Prints a table, or JSON with --json;
--sizing also prints the sizing table of docs/operations.md from the figures.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402 - the project's redis-server, sandbox and worker processes

QUEUE = "bench"
SAMPLE = 200  # result keys whose MEMORY USAGE is averaged
TEXT_LENGTH = 80
RESULT_TTL_S = 7 * 86400  # results.ttl_seconds, the default
RATES = (1, 10, 100, 1000)  # jobs/s, for --sizing
TTLS = (("1 h", 3600), ("1 day", 86400), ("7 days", 7 * 86400))


class Failure(Exception):
    pass


def key(suffix):
    return "outq:{%s}:%s" % (QUEUE, suffix)


def job_json(prefix, i, account, response_bytes=0):
    """The job JSON of docs/protocol.md with an 80-character text; with response_bytes,
    a sandbox directive makes the provider answer that many bytes."""
    text = ("Order %06d: your parcel left our warehouse and arrives tomorrow before noon." % i)
    text = text.ljust(TEXT_LENGTH, ".")[:TEXT_LENGTH]
    message = {"text": text}
    if response_bytes:
        message["sandbox"] = {"status": 200, "body": provider_answer(i, response_bytes)}
    job = {"v": 1, "id": "%s-%06d" % (prefix, i), "provider": "webhook", "account": account,
           "message": message, "meta": {"order": i}}
    return json.dumps(job, separators=(",", ":"))


def provider_answer(i, size):
    """A JSON answer of exactly `size` bytes (at least the id member's length)."""
    head = '{"id":"msg-%06d","status":"queued","detail":"' % i
    return head + "x" * max(0, size - len(head) - 2) + '"}'


# ---------------------------------------------------------------- Redis readings

def used_memory(r):
    """INFO memory used_memory less the clients' buffers (this script's pipelines)."""
    info = r.info("memory")
    return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))


def redis_args(extra):
    """No slow log and no per-command latency histograms: both are allocated as commands
    run (a Redis 7 histogram is ~40 KB per command name) and would count as growth.
    extra: NAME=VALUE settings from --redis-config."""
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=10).stdout
    version = out.split("v=", 1)[1].split()[0] if "v=" in out else "0"
    args = ["--slowlog-log-slower-than", "-1"]
    if int(version.split(".")[0]) >= 7:
        args += ["--latency-tracking", "no"]
    for setting in extra:
        name, value = setting.split("=", 1)
        args += ["--" + name, value]
    return tuple(args)


def memory_usage(r, name):
    """MEMORY USAGE name SAMPLES 0 (every element counted); 0 when the key is absent."""
    return r.memory_usage(name, samples=0) or 0


def scan_keys(r, pattern="*"):
    return list(r.scan_iter(match=pattern, count=1000))


def other_keys_usage(r):
    """{key: MEMORY USAGE} of every key that is not a result key."""
    prefix = key("result:")
    return {k: memory_usage(r, k) for k in scan_keys(r) if not k.startswith(prefix)}


def enqueue(r, jobs, chunk=1000):
    for first in range(0, len(jobs), chunk):
        pipe = r.pipeline(transaction=False)
        for job in jobs[first:first + chunk]:
            pipe.xadd(key("jobs"), {"job": job})
        pipe.execute()


def result_sample(r, ids):
    """MEMORY USAGE, payload bytes, type, encoding and TTL of the result keys of `ids`
    (at most SAMPLE of them, spread evenly)."""
    step = max(1, len(ids) // SAMPLE)
    chosen = ids[::step][:SAMPLE]
    usage, payload, types, encodings, ttls, statuses = [], [], set(), set(), [], {}
    for job_id in chosen:
        name = key("result:" + job_id)
        kind = r.type(name)
        if kind == "hash":
            fields = r.hgetall(name)
            payload.append(sum(len(k.encode()) + len(v.encode()) for k, v in fields.items()))
            status = fields.get("status")
        elif kind == "string":
            value = r.get(name)
            payload.append(len(value.encode()))
            try:
                status = json.loads(value).get("status")
            except ValueError:
                status = value
        else:
            raise Failure("result key %s: type %s (expected hash or string)" % (name, kind))
        types.add(kind)
        encodings.add(r.object("encoding", name))
        usage.append(memory_usage(r, name))
        ttls.append(r.ttl(name))
        statuses[status] = statuses.get(status, 0) + 1
    return {"sampled": len(chosen), "memory_usage": sum(usage) / len(usage), "payload": sum(payload) / len(payload),
            "type": "/".join(sorted(types)), "encoding": "/".join(sorted(encodings)),
            "ttl_s": max(ttls), "statuses": statuses}


def check_sample(sample, status, what):
    """The sampled result keys all hold `status` and the configured TTL."""
    if sample["statuses"] != {status: sample["sampled"]}:
        raise Failure("%s: sampled result keys by status %s (expected %s)" % (what, sample["statuses"], status))
    if not RESULT_TTL_S - 600 < sample["ttl_s"] <= RESULT_TTL_S:
        raise Failure("%s: result keys have a TTL of %s s (expected %d)" % (what, sample["ttl_s"], RESULT_TTL_S))
    return sample


def count_by(entries, field):
    out = {}
    for _, fields in entries:
        out[fields.get(field)] = out.get(fields.get(field), 0) + 1
    return out


# ---------------------------------------------------------------- phases

class Run:
    def __init__(self, env, args):
        self.env = env
        self.r = env.r
        self.args = args
        self.deadline = time.monotonic() + args.timeout
        self.workers = 0

    def wait(self, predicate, what, worker=None):
        while not predicate():
            if worker is not None and not worker.alive():
                raise Failure("the worker exited (status %s) while waiting for %s:\n%s"
                              % (worker.proc.returncode, what, worker.log_tail(20)))
            if time.monotonic() > self.deadline:
                raise Failure("timed out (--timeout %ds) waiting for %s" % (self.args.timeout, what))
            time.sleep(0.1)

    def worker_until(self, done, what):
        """Runs one worker until done() holds, then stops it with SIGTERM (it must exit 0),
        so that its connections are gone before memory is measured."""
        # The results stream is never trimmed during the run (at the default cap of 100,000 a
        # larger --n would be), so that its length counts the outcomes.
        results = {"ttl_seconds": RESULT_TTL_S,
                   "stream_maxlen": max(100000, self.args.n + self.args.dead + 1000)}
        config = self.env.config(log_level="warn", concurrency=128, fetch_batch=128, results=results)
        self.workers += 1
        w = self.env.worker(config, name="worker%d" % self.workers)
        self.wait(done, what, w)
        w.sigterm()
        status = w.wait(30)
        if status != 0:
            raise Failure("the worker exited with status %d after SIGTERM:\n%s" % (status, w.log_tail(20)))
        self.wait(lambda: int(self.r.info("clients")["connected_clients"]) == 1,
                  "Redis to close the worker's connections")

    def waiting_jobs(self, n):
        before = used_memory(self.r)
        jobs = [job_json("order", i, "a") for i in range(n)]
        enqueue(self.r, jobs)
        after = used_memory(self.r)
        return {"count": n, "job_json": sum(len(j) for j in jobs) / n,
                "used_memory": (after - before) / n, "memory_usage": memory_usage(self.r, key("jobs")) / n}

    def results(self, n, base, prefix="order"):
        """The N jobs already waiting are sent; `base` is used_memory of the empty database."""
        results = key("results")
        self.worker_until(lambda: self.r.xlen(results) >= n and self.r.xlen(key("jobs")) == 0,
                          "%d results events" % n)
        statuses = count_by(self.r.xrange(results), "status")
        if statuses != {"sent": n}:
            raise Failure("results events by status: %s (expected %d sent)" % (statuses, n))
        total = used_memory(self.r)
        others = other_keys_usage(self.r)
        result_keys = len(scan_keys(self.r, key("result:*")))
        if result_keys != n:
            raise Failure("%d result keys for %d jobs" % (result_keys, n))
        sample = check_sample(result_sample(self.r, ["%s-%06d" % (prefix, i) for i in range(n)]), "sent", "results")
        events = self.r.xlen(results)
        return {"count": n, "key": sample,
                "resident": (total - base - sum(others.values())) / n,
                "event": memory_usage(self.r, results) / events, "events": events,
                "used_memory_per_job": (total - base) / n, "other_keys": others}

    def dead_letters(self, m, n_before):
        base = used_memory(self.r)
        others_before = other_keys_usage(self.r)
        results = key("results")
        jobs = [job_json("dead", i, "unconfigured") for i in range(m)]
        enqueue(self.r, jobs)
        dead = key("dead")
        self.worker_until(lambda: self.r.xlen(dead) >= m and self.r.xlen(results) >= n_before + m,
                          "%d dead letters" % m)
        total = used_memory(self.r)
        others = other_keys_usage(self.r)
        letters = self.r.xlen(dead)
        if letters != m:
            raise Failure("%d dead letters for %d jobs" % (letters, m))
        classes = count_by(self.r.xrange(dead), "error_class")
        if classes != {"validation": m}:
            raise Failure("dead letters by class %s (expected %d validation)" % (classes, m))
        grown = sum(others.values()) - sum(others_before.values())
        sample = result_sample(self.r, ["dead-%06d" % i for i in range(m)])
        return {"count": m, "job_json": sum(len(j) for j in jobs) / m,
                "memory_usage": memory_usage(self.r, dead) / letters,
                "event": (others.get(results, 0) - others_before.get(results, 0)) / m,
                "key": check_sample(sample, "dead", "dead letters"),
                "key_resident": (total - base - grown) / m,
                "used_memory_per_job": (total - base) / m}

    def large_responses(self, n, response_bytes):
        self.r.flushall()
        base = used_memory(self.r)
        enqueue(self.r, [job_json("big", i, "a", response_bytes) for i in range(n)])
        out = self.results(n, base, prefix="big")
        out["response_bytes"] = response_bytes
        return out


# ---------------------------------------------------------------- report

def outq_version(binary):
    try:
        out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return "unknown (%s)" % e


def git_commit():
    try:
        out = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h of %cI"], capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + (", with uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def result_format(sample):
    return {"hash": 1, "string": 2}.get(sample["type"], sample["type"])


def print_table(report):
    w, res, dead, big = report["waiting"], report["results"], report["dead"], report.get("large_responses")
    print("%s (checkout %s), Redis %s (%s): result format %s (%s), result TTL %d s"
          % (report["outq"], report["commit"], report["redis"]["version"], report["redis"]["allocator"],
             result_format(res["key"]), res["key"]["type"], RESULT_TTL_S))
    if report["redis_config"]:
        print("redis-server settings: %s" % " ".join(report["redis_config"]))

    def value(sample):
        return "value %.0f B, %s" % (sample["payload"], sample["encoding"])
    rows = [
        ("waiting job (jobs stream entry)", w["count"], w["memory_usage"], w["used_memory"],
         "job JSON %.0f B" % w["job_json"]),
        ("result key, sent", res["count"], res["key"]["memory_usage"], res["resident"], value(res["key"])),
        ("results event, sent", res["events"], res["event"], None, "capped at results.stream_maxlen"),
        ("sent job, all keys", res["count"], None, res["used_memory_per_job"], "result key + event"),
        ("dead letter (dead stream entry)", dead["count"], dead["memory_usage"], None,
         "job JSON %.0f B" % dead["job_json"]),
        ("result key, dead", dead["count"], dead["key"]["memory_usage"], dead["key_resident"], value(dead["key"])),
        ("results event, dead", dead["count"], dead["event"], None, ""),
        ("dead job, all keys", dead["count"], None, dead["used_memory_per_job"], "dead letter + result key + event"),
    ]
    if big:
        rows.append(("result key, sent, %d B answer" % big["response_bytes"], big["count"],
                     big["key"]["memory_usage"], big["resident"], value(big["key"])))
    print("%-34s %7s %13s %12s  %s" % ("bytes per", "count", "MEMORY USAGE", "used_memory", "note"))
    for name, count, usage, resident, note in rows:
        print("%-34s %7d %13s %12s  %s" % (name, count, "-" if usage is None else "%.0f" % usage,
                                          "-" if resident is None else "%.0f" % resident, note))
    print("MEMORY USAGE: the key's own bytes (SAMPLES 0), per entry for a stream, the average of %d for\n"
          "result keys. used_memory: Redis' growth (clients' buffers excluded) per item, the key space's\n"
          "tables included; for result keys the growth less every other key's MEMORY USAGE." % SAMPLE)
    m = report["redis"]
    print("at the end: used_memory %d B, used_memory_rss %d B, mem_fragmentation_ratio %s (%.0f s)"
          % (m["used_memory"], m["used_memory_rss"], m["mem_fragmentation_ratio"], report["seconds"]))


def size(n):
    return "%.1f MiB" % (n / (1 << 20)) if n < 1 << 30 else "%.1f GiB" % (n / (1 << 30))


def print_sizing(report, stream_maxlen=100000):
    """Markdown: result keys resident = rate x TTL x bytes per result (each cell: the sandbox's
    small answer, then the --response-bytes answer when measured)."""
    per = [report["results"]["resident"]]
    big = report.get("large_responses")
    if big:
        per.append(big["resident"])
    print("\nResult keys resident, rate x TTL x %s B per result:\n" % " / ".join("%.0f" % b for b in per))
    print("| jobs/s | " + " | ".join("TTL %s" % name for name, _ in TTLS) + " |")
    print("|---:|" + "---:|" * len(TTLS))
    for rate in RATES:
        cells = [" / ".join(size(rate * ttl * b) for b in per) for _, ttl in TTLS]
        print("| %s | %s |" % (format(rate, ","), " | ".join(cells)))
    event = report["results"]["event"]
    print("\nresults stream at its cap: %s events x %.0f B = %s" % (format(stream_maxlen, ","), event,
                                                                  size(stream_maxlen * event)))
    print("dead letters: %.0f B each in the dead stream (1,000,000: %s)"
          % (report["dead"]["memory_usage"], size(1e6 * report["dead"]["memory_usage"])))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000, metavar="N", help="waiting jobs, then results (default 10,000)")
    p.add_argument("--dead", type=int, default=2000, metavar="M", help="dead letters (default 2,000)")
    p.add_argument("--response-bytes", type=int, default=250, metavar="B",
                   help="provider answer size of the second results run (default 250; 0 skips it)")
    p.add_argument("--build-dir", metavar="DIR",
                   default=os.environ.get("OUTQ_BUILD_DIR", os.path.join(ROOT, "build")),
                   help="where worker/outq is (default $OUTQ_BUILD_DIR, else build/)")
    p.add_argument("--timeout", type=int, default=110, metavar="SECONDS",
                   help="seconds for the whole run (default 110)")
    p.add_argument("--redis-config", action="append", default=[], metavar="NAME=VALUE",
                   help="a redis-server setting for the run, e.g. hash-max-listpack-value=1024 (repeatable)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--sizing", action="store_true", help="also print the sizing table (markdown)")
    args = p.parse_args()
    if args.n < SAMPLE or args.dead < SAMPLE:
        p.error("--n and --dead must be at least %d" % SAMPLE)
    if args.response_bytes and args.response_bytes < 64:
        p.error("--response-bytes must be 0 or at least 64")
    for setting in args.redis_config:
        if "=" not in setting or setting.startswith("="):
            p.error("--redis-config %s: expected NAME=VALUE" % setting)
    return args


def main():
    args = parse_args()
    binary = os.path.join(args.build_dir, "worker", "outq")
    if not os.access(binary, os.X_OK):
        raise Failure("no worker binary at %s (run scripts/build.sh)" % binary)
    harness.OUTQ = binary

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    started = time.monotonic()
    with harness.Env(queue=QUEUE, redis_args=redis_args(args.redis_config)) as env:
        # the harness stops the workers, the sandbox and redis-server by PID, whatever happens
        run = Run(env, args)
        r = env.r
        base = used_memory(r)
        report = {"outq": outq_version(binary), "commit": git_commit(), "binary": binary,
                  "redis_config": args.redis_config}
        print("waiting jobs: %d..." % args.n, file=sys.stderr, flush=True)
        report["waiting"] = run.waiting_jobs(args.n)
        print("results: sending them to the sandbox...", file=sys.stderr, flush=True)
        report["results"] = run.results(args.n, base)
        print("dead letters: %d..." % args.dead, file=sys.stderr, flush=True)
        report["dead"] = run.dead_letters(args.dead, args.n)
        if args.response_bytes:
            print("results with a %d-byte answer: %d..." % (args.response_bytes, args.n), file=sys.stderr,
                  flush=True)
            report["large_responses"] = run.large_responses(args.n, args.response_bytes)
        info, server = r.info("memory"), r.info("server")
        report["redis"] = {"version": server["redis_version"], "allocator": info.get("mem_allocator"),
                           "used_memory": int(info["used_memory"]), "used_memory_rss": int(info["used_memory_rss"]),
                           "mem_fragmentation_ratio": info.get("mem_fragmentation_ratio")}
    report["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print_table(report)
    if args.sizing:
        print_sizing(report)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("memory: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        print("memory: interrupted (%s); everything started was stopped" % (e or "SIGINT"), file=sys.stderr)
        sys.exit(130)
