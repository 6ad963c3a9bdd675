"""outq against BullMQ, side by side in one run (run it through send-n.sh,
which installs and builds what this needs).

Both workers drain the same N pre-enqueued jobs from the same redis-server,
each job being one HTTP POST of the same Mews-shaped JSON body to the same
nginx (or, with --slow, to a 200 ms delay server) plus a stored result. Redis
is flushed between the runs. --mews-batch compares outq's mews provider
(batched requests) with its webhook provider instead. Measured per worker: wall seconds from the
worker's start to the last completion, jobs/s, the worker process's CPU
(user+sys from /proc/<pid>/stat, all threads), peak RSS (VmHWM), the CPU the
Redis and provider processes spent meanwhile, and per-job latency
percentiles. Every process started here is stopped by its PID on the way out.
"""
import argparse
import errno
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
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PEER = os.path.join(HERE, "peers", "bullmq")
TICKS = os.sysconf("SC_CLK_TCK")
QUEUE = "bench"
THREAD_ID = "8d02142f-31cf-4115-90bf-ae5200c7a1ba"

# The job message (the request body), Mews messages/add shaped; "%I%" is the job index.
MESSAGE = ('{"ClientToken":"BENCH5A1F0C2B4E6D8F9A1B3C5D7E9F0A2B4C-BENCH00000000000000000000000000000",'
           '"AccessToken":"BENCH7C3E5A9B1D2F4A6C8E0B2D4F6A8C0E2-BENCH00000000000000000000000000000",'
           '"Client":"outq-bench 1.0.0",'
           '"Messages":[{"Text":"Your room is ready. Bench message %I%.",'
           '"MessageThreadId":"' + THREAD_ID + '","Identifier":"bench-%I%"}]}')
# The provider's answer: a fixed ~250-byte Mews AddedMessageResult.
ANSWER = ('{"Messages":[{"Identifier":"bench-0","Message":{"Id":"0b1e52f4-6a43-4c1e-9d57-b2f1c3a4d5e6",'
          '"MessageThreadId":"' + THREAD_ID + '","Text":"Your room is ready. Bench message 0.",'
          '"Sender":"Application","CreatedUtc":"2026-01-01T00:00:00.000Z"}}]}')
# The same message for the mews provider: its adapter adds the tokens and the envelope.
MEWS_MESSAGE = ('{"Text":"Your room is ready. Bench message %I%.","MessageThreadId":"' + THREAD_ID +
                '","Identifier":"bench-%I%"}')
MEWS_ADD_PATH = "/api/connector/v1/messages/add"
# BullMQ at its best on this workload: the fastest of `--bullmq-sweep` (Worker
# concurrency × undici Pool connections, same Redis and nginx), pinned here so
# a weak baseline cannot make a ratio. Re-derive it with --bullmq-sweep.
BULLMQ_BEST = {"concurrency": 50, "connections": 50}
BULLMQ_SWEEP = [(c, k) for c in (16, 50, 100, 200, 500) for k in (16, 50, 100) if k <= c]


class Failure(Exception):
    pass


# ---------------------------------------------------------------- processes

class Processes:
    """Every child this run starts; stop_all() ends them by PID, newest first."""

    def __init__(self):
        self.children = []  # (name, Popen)
        self.extra_pids = []  # grandchildren we know of (nginx workers)

    def start(self, name, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        for attempt in range(50):
            try:
                p = subprocess.Popen(argv, **kw)
                break
            except OSError as e:
                # A build running at the same time may be relinking the binary (EACCES/ETXTBSY).
                if attempt == 49 or e.errno not in (errno.EACCES, errno.ETXTBSY):
                    raise Failure("cannot start %s (%s): %s" % (name, argv[0], e))
                time.sleep(0.2)
        self.children.append((name, p))
        return p

    def stop(self, p, timeout=20):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def stop_all(self):
        for _, p in reversed(self.children):
            self.stop(p)
        for pid, start_time in self.extra_pids:
            if proc_start_time(pid) == start_time:  # still the process we saw, not a reused PID
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()  # fields from 3 (state) on


def proc_start_time(pid):
    try:
        return int(proc_stat(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds(pids):
    """user+sys CPU seconds of the processes (all their threads)."""
    total = 0
    for pid in pids:
        try:
            f = proc_stat(pid)
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError):
            pass
    return total / TICKS


def peak_rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def children_of(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(proc_stat(int(entry))[1]) == pid:
                    out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, proc, timeout=20, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure("%s exited at start (status %s)%s" % (
                what, proc.returncode, "; %s:\n%s" % (log, tail_of(log)) if log else ""))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failure("%s does not listen on %d after %ds" % (what, port, timeout))


# ---------------------------------------------------------------- a small pipelining Redis client

class Redis:
    """RESP2 over one socket: enough to pipeline 100k commands quickly."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb", buffering=1 << 20)
        self.calls = 0  # commands sent, to tell the bench's own from the workers' in INFO commandstats

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def read(self):
        line = self.reader.readline()
        if not line:
            raise Failure("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.reader.read(n + 2)
            return data[:-2].decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        if kind == b"-":
            return Failure("redis: " + rest.decode())
        raise Failure("redis: unexpected reply %r" % line)

    def pipeline(self, commands, chunk=5000):
        replies = []
        self.calls += len(commands)
        for first in range(0, len(commands), chunk):
            part = commands[first:first + chunk]
            self.sock.sendall(b"".join(self.encode(c) for c in part))
            replies.extend(self.read() for _ in part)
        for r in replies:
            if isinstance(r, Failure):
                raise r
        return replies

    def call(self, *args):
        return self.pipeline([args])[0]

    def close(self):
        self.reader.close()
        self.sock.close()


# ---------------------------------------------------------------- servers

def start_redis(procs, work):
    port = free_port()
    p = procs.start("redis-server", [
        "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", work, "--logfile", os.path.join(work, "redis.log"), "--daemonize", "no"])
    wait_port(port, "redis-server", p, log=os.path.join(work, "redis.log"))
    return p, port


def make_certificates(work):
    def openssl(*args):
        r = subprocess.run(("openssl",) + args, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode:
            raise Failure("openssl %s: %s" % (args[0], r.stderr.decode().strip()))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=outq bench CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(work, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return os.path.join(work, "ca.pem")


def start_nginx(procs, work, path, https):
    port, status_port = free_port(), free_port()
    prefix = os.path.join(work, "nginx")
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    tls = ""
    if https:
        tls = "ssl_certificate %s/server.pem; ssl_certificate_key %s/server.key;" % (work, work)
    answer = ANSWER.replace("\\", "\\\\").replace("'", "\\'")
    conf = f"""
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  server {{
    listen 127.0.0.1:{port}{" ssl" if https else ""};
    {tls}
    location = {path} {{ default_type application/json; return 200 '{answer}'; }}
    location / {{ return 404; }}
  }}
  server {{
    listen 127.0.0.1:{status_port};
    location = /status {{ stub_status; }}
  }}
}}
"""
    conf_file = os.path.join(prefix, "nginx.conf")
    with open(conf_file, "w") as f:
        f.write(conf)
    p = procs.start("nginx", ["nginx", "-p", prefix, "-c", conf_file, "-e", os.path.join(prefix, "logs/error.log")],
                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(prefix, "logs/stderr.log"), "w"))
    wait_port(port, "nginx", p, log=os.path.join(prefix, "logs/error.log"))
    wait_port(status_port, "nginx", p, log=os.path.join(prefix, "logs/error.log"))
    workers = []
    deadline = time.monotonic() + 5
    while not workers and time.monotonic() < deadline:
        workers = children_of(p.pid)
        time.sleep(0.02)
    procs.extra_pids += [(w, proc_start_time(w)) for w in workers]
    return p, [p.pid] + workers, port, status_port


def nginx_requests(status_port):
    """Total requests nginx has answered (stub_status), the status requests included."""
    with socket.create_connection(("127.0.0.1", status_port), timeout=5) as s:
        s.sendall(b"GET /status HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    lines = data.split(b"\r\n\r\n", 1)[1].decode().splitlines()
    return int(lines[2].split()[2])


def start_delay_server(procs, work, path, delay_ms, mews_echo):
    port = free_port()
    body = os.path.join(work, "answer.json")
    with open(body, "w") as f:
        f.write(ANSWER)
    argv = ["/usr/bin/python3", os.path.join(HERE, "delay_server.py"), "--port", str(port),
            "--delay-ms", str(delay_ms), "--path", path, "--body", body] + (["--mews-echo"] if mews_echo else [])
    p = procs.start("delay server", argv, stdout=subprocess.DEVNULL,
                    stderr=open(os.path.join(work, "delay_server.log"), "w"))
    wait_port(port, "delay server", p, log=os.path.join(work, "delay_server.log"))
    return p, [p.pid], port


# ---------------------------------------------------------------- the outq run

def account_config(args, provider, url, ca):
    """The account the jobs name and the job message, per provider. webhook POSTs the
    message (the whole Mews request) to the URL; mews builds the request itself from
    MessageThreadId/Text/Identifier, batching up to batch_size jobs per request."""
    if provider == "webhook":
        account = {"url": url}
        if ca:
            account["tls"] = {"ca_file": ca}
        return account, MESSAGE
    if provider == "mews":
        origin = url[:url.index("/", url.index("//") + 2)]
        account = {"platform_address": origin, "client_token": "bench-client-token", "access_token": "bench-access-token",
                   "batch_size": args.batch_size, "batch_wait_ms": args.batch_wait_ms,
                   "rate_limit": {"requests": 0}}  # Mews' documented 200 per 30 s would be the whole benchmark
        if ca:
            account["tls"] = {"ca_file": ca}
        return account, MEWS_MESSAGE
    raise Failure("provider %s: not supported by this benchmark" % provider)


def outq_config(args, provider, redis_port, url, ca, work):
    account, message = account_config(args, provider, url, ca)
    config = {
        "redis": {"url": "redis://127.0.0.1:%d/0" % redis_port},
        "queue": QUEUE,
        "concurrency": args.concurrency,
        "fetch_batch": args.fetch_batch,
        "log_level": "warn",
        "shutdown_grace_ms": 10000,
        "results": {"stream_maxlen": max(100000, 2 * args.n)},  # never trimmed below N during the run
        "providers": {provider: {"http": {"max_connections": args.connections},
                                 "accounts": {"bench": account}}},
    }
    path = os.path.join(work, "outq-%s.json" % provider)
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return path, message


def enqueue_outq(r, n, provider, message):
    parts = message.split("%I%")
    key = "outq:{%s}:jobs" % QUEUE
    commands = []
    for i in range(n):
        body = str(i).join(parts)
        job = '{"v":1,"id":"bench-%d","provider":"%s","account":"bench","message":%s}' % (i, provider, body)
        commands.append(("XADD", key, "*", "job", job))
    r.pipeline(commands)


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q * len(values))) - 1))]


def watch(proc, done, timeout, what, log):
    """Polls done() every 20 ms; returns when it is true. Fails when the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not done():
        if proc.poll() is not None:
            raise Failure("%s exited (status %s) before finishing; its log: %s\n%s" % (
                what, proc.returncode, log, tail_of(log)))
        if time.monotonic() > deadline:
            raise Failure("%s did not finish in %ds; its log: %s\n%s" % (what, timeout, log, tail_of(log)))
        time.sleep(0.02)


def tail_of(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def machine_busy_seconds():
    """CPU time all processes on the machine used so far (/proc/stat: everything but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / TICKS


def wait_for_quiet(max_wait, threshold=0.25):
    """Waits (at most max_wait seconds) until the machine's other processes use less than
    `threshold` cores over half a second: on a shared machine a compile next door is noise."""
    deadline = time.monotonic() + max_wait
    while True:
        busy0, t0 = machine_busy_seconds(), time.monotonic()
        time.sleep(0.5)
        load = (machine_busy_seconds() - busy0) / (time.monotonic() - t0)
        if load < threshold or time.monotonic() >= deadline:
            return load


def self_cpu_seconds():
    t = os.times()
    return t.user + t.system


def redis_commandstats(r):
    """{command: (calls, usec)} since CONFIG RESETSTAT (commands run inside Lua scripts included)."""
    stats = {}
    for line in r.call("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_"):].split(":", 1)
            f = dict(kv.split("=", 1) for kv in fields.split(","))
            stats[name] = (int(f["calls"]), int(f["usec"]))
    return stats


class Drain:
    """Measures one worker draining the queue: start() just before the worker starts,
    finish() as soon as every job has an outcome (the worker still running)."""

    def __init__(self, env, r):
        self.env, self.r = env, r

    def start(self):
        env, r = self.env, self.r
        r.call("CONFIG", "RESETSTAT")
        self.calls0 = r.calls
        self.redis0 = cpu_seconds([env["redis_pid"]])
        self.provider0 = cpu_seconds(env["provider_pids"])
        self.requests0 = nginx_requests(env["status_port"]) if env["status_port"] else None
        self.busy0, self.self0 = machine_busy_seconds(), self_cpu_seconds()
        self.started = time.time()

    def finish(self, worker):
        env, r = self.env, self.r
        self.detected = time.time()
        m = {"cpu": cpu_seconds([worker.pid]), "rss": peak_rss_mib(worker.pid),
             "redis_cpu": cpu_seconds([env["redis_pid"]]) - self.redis0,
             "provider_cpu": cpu_seconds(env["provider_pids"]) - self.provider0}
        ours = m["cpu"] + m["redis_cpu"] + m["provider_cpu"] + self_cpu_seconds() - self.self0
        m["other_cpu"] = max(0.0, machine_busy_seconds() - self.busy0 - ours)
        m["requests"] = nginx_requests(env["status_port"]) - self.requests0 - 1 if env["status_port"] else None
        polls = r.calls - self.calls0  # the bench's own commands (CONFIG RESETSTAT itself is not counted)
        m["redis_stats"] = redis_commandstats(r)
        m["redis_calls"] = sum(c for c, _ in m["redis_stats"].values()) - polls
        return m

    def result(self, name, args, m, sent, dead, status, enqueue_s, log):
        """sent: (enqueued ms, completed ms) of every job that ended well."""
        start_ms = self.started * 1000
        last = max((c for _, c in sent), default=self.detected * 1000)
        m.update({
            "worker": name, "n": args.n, "ok": len(sent), "dead": dead, "exit": status, "enqueue_s": enqueue_s,
            "wall": (last - start_ms) / 1000,
            # Jobs were all enqueued before the worker started: count from the worker's start.
            "latency": [c - max(e, start_ms) for e, c in sent],
            "log_lines": sum(1 for _ in open(log, errors="replace")), "log": log})
        return m


def run_outq(args, env, r, label, provider):
    config, message = outq_config(args, provider, env["redis_port"], env["url"], env["ca"], env["work"])
    t = time.monotonic()
    enqueue_outq(r, args.n, provider, message)
    enqueue_s = time.monotonic() - t
    log = os.path.join(env["work"], "%s.log" % label.replace(" ", "-"))
    drain = Drain(env, r)
    drain.start()
    worker = env["procs"].start("outq", [args.outq, "run", "--config", config], stdout=subprocess.DEVNULL,
                                stderr=open(log, "w"))
    profiler = None
    if args.perf:  # sampled on the CPU clock: no hardware counters needed (VMs)
        profiler = env["procs"].start("perf", [
            "perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "--call-graph", args.perf_call_graph,
            "-o", os.path.abspath(args.perf), "-p", str(worker.pid)], stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(env["work"], "perf.log"), "w"))
    results_key = "outq:{%s}:results" % QUEUE
    watch(worker, lambda: r.call("XLEN", results_key) >= args.n, args.timeout, "outq", log)
    if profiler:
        profiler.send_signal(signal.SIGINT)
    m = drain.finish(worker)
    status = env["procs"].stop(worker, timeout=30)
    if profiler:
        profiler.wait()
        print("  perf profile of the outq worker: %s (perf report -i %s --no-children)" % (args.perf, args.perf),
              file=sys.stderr)
    # Format 2: each result is one JSON value (docs/protocol.md).
    values = [json.loads(v) if v else {} for v in r.pipeline([("GET", "outq:{%s}:result:bench-%d" % (QUEUE, i))
                                                              for i in range(args.n)])]
    sent = [(int(v["enqueued_at"]), int(v["completed_at"])) for v in values if v.get("status") == "sent"]
    dead = sum(1 for v in values if v.get("status") == "dead")
    return drain.result(label, args, m, sent, dead, status, enqueue_s, log)


# ---------------------------------------------------------------- the BullMQ run

def bullmq_worker_argv(args, env):
    """The BullMQ worker's command line (run in PEER): its concurrency, pool and the provider's CA."""
    argv = ["node", "worker.mjs", "--port", str(env["redis_port"]), "--url", env["url"], "--queue", QUEUE,
            "--concurrency", str(args.bullmq_concurrency), "--connections", str(args.bullmq_connections)]
    if env["ca"]:
        argv += ["--ca", env["ca"]]
    return argv


def run_bullmq(args, env, r, label="bullmq", provider=None):
    log = os.path.join(env["work"], "bullmq.log")
    t = time.monotonic()
    enq = subprocess.run(["node", "enqueue.mjs", "--port", str(env["redis_port"]), "--n", str(args.n),
                          "--queue", QUEUE], cwd=PEER, env=dict(os.environ, OUTQ_BENCH_MESSAGE=MESSAGE),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if enq.returncode:
        raise Failure("BullMQ enqueue failed:\n" + enq.stdout.decode(errors="replace")[-3000:])
    enqueue_s = time.monotonic() - t
    waiting = r.call("LLEN", "bull:%s:wait" % QUEUE)
    if waiting != args.n:
        raise Failure("BullMQ enqueue: %s jobs waiting, expected %d" % (waiting, args.n))
    argv = bullmq_worker_argv(args, env)
    limiter = getattr(args, "bullmq_limiter", None)  # (max, duration ms): isolation.py --throttled
    if limiter:
        argv += ["--limit-max", str(limiter[0]), "--limit-duration", str(limiter[1])]
    drain = Drain(env, r)
    drain.start()
    worker = env["procs"].start("bullmq worker", argv, cwd=PEER, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    completed, failed = "bull:%s:completed" % QUEUE, "bull:%s:failed" % QUEUE

    def done():
        c, f = r.pipeline([("ZCARD", completed), ("ZCARD", failed)])
        return c + f >= args.n
    watch(worker, done, args.timeout, "the BullMQ worker", log)
    m = drain.finish(worker)
    status = env["procs"].stop(worker, timeout=30)
    ids = r.call("ZRANGE", completed, 0, -1)
    rows = r.pipeline([("HMGET", "bull:%s:%s" % (QUEUE, i), "timestamp", "finishedOn") for i in ids])
    sent = [(int(a), int(b)) for a, b in rows if a and b]
    return drain.result(label, args, m, sent, r.call("ZCARD", failed), status, enqueue_s, log)


# ---------------------------------------------------------------- report

def sweep_bullmq(args, env, r):
    """Every (concurrency, connections) of BULLMQ_SWEEP, --repeat runs each: the median jobs/s."""
    rows = []
    for c, k in BULLMQ_SWEEP:
        args.bullmq_concurrency, args.bullmq_connections = c, k
        rates = []
        for _ in range(args.repeat):
            r.call("FLUSHALL")
            if args.wait_quiet:
                wait_for_quiet(args.wait_quiet)
            x = run_bullmq(args, env, r)
            if x["ok"] != args.n:
                raise Failure("BullMQ concurrency %d connections %d: %d of %d sent" % (c, k, x["ok"], args.n))
            rates.append(args.n / x["wall"])
        rows.append((sorted(rates)[len(rates) // 2], c, k, rates))
        print("  concurrency %d, connections %d: %s jobs/s" % (c, k, ", ".join("%.0f" % v for v in rates)),
              file=sys.stderr, flush=True)
    print("| BullMQ concurrency | undici connections | median jobs/s | runs |")
    print("|---:|---:|---:|---|")
    for rate, c, k, rates in rows:
        print("| %d | %d | %.0f | %s |" % (c, k, rate, ", ".join("%.0f" % v for v in rates)))
    best = max(rows)
    print("fastest: concurrency %d, connections %d (%.0f jobs/s); pinned: %s" % (best[1], best[2], best[0], BULLMQ_BEST))
    return 0


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def summarize(runs, pick):
    """One row per worker: the median of each figure over the repetitions (peak RSS: the largest),
    or with pick == "best" the figures of its fastest run."""
    if pick == "best":
        runs = [min(runs, key=lambda x: x["wall"])]

    def med(key):
        return statistics.median(x[key] for x in runs)
    lat = [statistics.median(percentile(x["latency"], q) for x in runs) for q in (0.5, 0.99)]
    return {"worker": runs[0]["worker"], "n": runs[0]["n"], "ok": min(x["ok"] for x in runs),
            "wall": med("wall"), "rate": statistics.median(x["n"] / x["wall"] for x in runs),
            "cpu": med("cpu"), "rss": max(x["rss"] for x in runs), "redis_cpu": med("redis_cpu"),
            "provider_cpu": med("provider_cpu"), "other_cpu": med("other_cpu"), "p50": lat[0], "p99": lat[1],
            "redis_calls": med("redis_calls"), "requests": None if runs[0]["requests"] is None else med("requests")}


def print_runs(runs):
    print()
    print("each run:")
    for w, xs in runs.items():
        for i, x in enumerate(xs):
            print("  %-6s #%d: %6.0f jobs/s  wall %6.2fs  worker CPU %6.2fs (%4.0f ms/1k)  RSS %6.1f MiB  "
                  "redis %5.2fs  provider %5.2fs  other %5.2fs" % (
                      w, i + 1, x["n"] / x["wall"], x["wall"], x["cpu"], x["cpu"] * 1e6 / x["n"], x["rss"],
                      x["redis_cpu"], x["provider_cpu"], x["other_cpu"]))


def print_redis_stats(runs):
    print()
    for w, xs in runs.items():
        x = xs[-1]
        # A script's time includes the calls it makes, which are listed on their own too.
        stats = x["redis_stats"]
        total_us = sum(u for _, u in stats.values())
        print("Redis commands per job, %s (last run; %.1f us of command time per job, a script's inner calls "
              "also inside its own; redis-server process CPU %.1f us per job):" % (
                  w, total_us / x["n"], x["redis_cpu"] * 1e6 / x["n"]))
        top = sorted(stats.items(), key=lambda kv: -kv[1][1])
        print("  " + ", ".join("%s %.3f calls %.2f us" % (name, c / x["n"], u / x["n"]) for name, (c, u) in top
                               if u / x["n"] >= 0.01))


def source_version():
    """The commit the measured binary was built from, and whether its sources had local changes."""
    def git(*a):
        r = subprocess.run(["git", "-C", ROOT] + list(a), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return r.stdout.decode().strip() if r.returncode == 0 else ""
    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown source version"
    dirty = git("status", "--porcelain", "--", "src", "worker", "adapters", "CMakeLists.txt")
    return "commit %s%s" % (head, " + uncommitted changes in src/worker/adapters" if dirty else "")


def print_table(args, rows, provider_name):
    load = open("/proc/loadavg").read().split()[:3]
    print()
    print("outq built from %s" % source_version())
    print("%s UTC, %d cores (%s), load average at the end %s" % (
        time.strftime("%Y-%m-%d %H:%M", time.gmtime()), os.cpu_count(), cpu_model(), " ".join(load)))
    peer = ("mews batch_size %d, batch_wait_ms %d" % (args.batch_size, args.batch_wait_ms) if args.mews_batch
            else "BullMQ concurrency %d" % args.bullmq_concurrency)
    print("N=%d jobs, %s, provider %s%s, outq concurrency %d / fetch_batch %d / %d connections, %s%s" % (
              args.n, "https" if args.https else "http", provider_name,
              " (%g ms)" % args.delay_ms if args.slow else "", args.concurrency, args.fetch_batch, args.connections,
              peer,
              "" if args.repeat == 1 else ", %s of %d runs each" % ("fastest" if args.pick == "best" else "median",
                                                                    args.repeat)))
    print()
    short = "nginx" if provider_name == "nginx" else "provider"
    columns = [  # title, cell of a row, cell of the ratio row (outq/bullmq) or None
        ("worker", lambda x: x["worker"], "ratio"),
        ("jobs done", lambda x: "%d/%d" % (x["ok"], x["n"]), None),
        ("wall s", lambda x: "%.2f" % x["wall"], "wall"),
        ("jobs/s", lambda x: "%.0f" % x["rate"], "rate"),
        ("worker CPU s", lambda x: "%.2f" % x["cpu"], "cpu"),
        ("CPU ms/1k jobs", lambda x: "%.0f" % (x["cpu"] * 1e6 / x["n"]), "cpu_per_job"),
        ("peak RSS MiB", lambda x: "%.1f" % x["rss"], "rss"),
        ("redis CPU s", lambda x: "%.2f" % x["redis_cpu"], "redis_cpu"),
        ("%s CPU s" % short, lambda x: "%.2f" % x["provider_cpu"], "provider_cpu"),
        ("other CPU s", lambda x: "%.2f" % x["other_cpu"], None),
        ("redis cmds/job", lambda x: "%.1f" % (x["redis_calls"] / x["n"]), "redis_calls"),
        ("p50 ms", lambda x: "%.0f" % x["p50"], "p50"),
        ("p99 ms", lambda x: "%.0f" % x["p99"], "p99"),
    ]
    if rows[0]["requests"] is not None:
        columns.append(("HTTP req/job", lambda x: "%.3f" % (x["requests"] / x["n"]), None))
    print("| " + " | ".join(c[0] for c in columns) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|")
    for x in rows:
        print("| " + " | ".join(c[1](x) for c in columns) + " |")
    if len(rows) == 2:
        o, b = rows
        for x in rows:
            x["cpu_per_job"] = x["cpu"] / x["n"]
        cells = []
        for title, _, key in columns:
            if key == "ratio":
                cells.append("%s/%s" % (o["worker"], b["worker"]))
            elif key is None:
                cells.append("")
            elif not b[key]:
                cells.append("-")
            else:
                ratio = o[key] / b[key]
                cells.append(("**%.2fx**" if key in ("rate", "cpu_per_job", "rss") else "%.2fx") % ratio)
        print("| " + " | ".join(cells) + " |")
        speed, cpu = o["rate"] / b["rate"], o["cpu_per_job"] / b["cpu_per_job"]
        verdict = lambda ok: "met" if ok else "NOT met"
        print()
        if b["worker"] != "bullmq":
            pass
        elif args.slow:
            print("--slow: jobs/s is bounded by the provider, at most %.0f/s for outq (concurrency / delay); "
                  "this run is for the memory figure: outq peak RSS < 32 MiB with %d in flight: %.1f MiB, %s" % (
                      min(args.concurrency, args.connections) * 1000 / args.delay_ms,
                      min(args.concurrency, args.connections), o["rss"], verdict(o["rss"] < 32)))
        else:
            # The whole system: the worker, Redis and the provider, per job.
            system = lambda x: (x["cpu"] + x["redis_cpu"] + x["provider_cpu"]) / x["n"]
            whole = system(o) / system(b)
            print("goals (issue 22): jobs/s >= 5x BullMQ's: %.2fx, %s; whole-system CPU per job <= 1/6 of BullMQ's: "
                  "%.2fx, %s; worker CPU per job <= 1/8: %.2fx, %s; outq peak RSS < 16 MiB: %.1f MiB, %s; "
                  "Redis CPU per job: %.1f us (BullMQ %.1f)" % (
                      speed, verdict(speed >= 5), whole, verdict(whole <= 1 / 6), cpu, verdict(cpu <= 1 / 8),
                      o["rss"], verdict(o["rss"] < 16), o["redis_cpu"] * 1e6 / o["n"], b["redis_cpu"] * 1e6 / b["n"]))
    elif rows[0]["worker"].startswith("outq"):
        print()
        print("outq peak RSS < 32 MiB: %.1f MiB, %s" % (rows[0]["rss"], "met" if rows[0]["rss"] < 32 else "NOT met"))
    print("(other CPU s: what the rest of the machine used meanwhile; p50/p99: completion time of a job counted "
          "from the worker's start, all jobs being enqueued before it)")


# ---------------------------------------------------------------- main

def parse_args():
    p = argparse.ArgumentParser(prog="send-n.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, help="jobs per worker (default 100000; 200 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="outq only (no BullMQ, no npm); exits non-zero unless every job was sent")
    p.add_argument("--https", action="store_true", help="TLS to the provider (certificate from a CA made at run time)")
    p.add_argument("--slow", action="store_true",
                   help="1,000 jobs in flight against a provider answering after 200 ms (the memory figure)")
    p.add_argument("--mews-batch", action="store_true",
                   help="outq only: the mews provider batching --batch-size messages per request against the "
                        "webhook provider (one request per job), both to a server answering like Mews")
    p.add_argument("--batch-size", type=int, default=100, help="mews batch_size (default 100)")
    p.add_argument("--batch-wait-ms", type=int, default=5, help="mews batch_wait_ms (default 5)")
    p.add_argument("--only", choices=["outq", "bullmq"], help="run one worker only")
    p.add_argument("--repeat", type=int, default=1, help="run each worker R times; the table shows medians")
    p.add_argument("--pick", choices=["median", "best"], default="median",
                   help="with --repeat: the median of each figure (default) or each worker's fastest run")
    p.add_argument("--wait-quiet", type=float, metavar="SECONDS",
                   help="before each run, wait up to this long for other processes to go quiet "
                        "(default 30; 0 with --quick)")
    p.add_argument("--concurrency", type=int, help="outq jobs in flight (default 256; 1000 with --slow)")
    p.add_argument("--fetch-batch", type=int, default=256, help="outq XREADGROUP COUNT (default 256)")
    p.add_argument("--connections", type=int, help="outq http.max_connections (default 64; 1000 with --slow)")
    p.add_argument("--bullmq-concurrency", type=int,
                   help="default %d (BULLMQ_BEST); 1000 with --slow" % BULLMQ_BEST["concurrency"])
    p.add_argument("--bullmq-connections", type=int,
                   help="undici Pool connections (default %d, BULLMQ_BEST; with --slow its concurrency)"
                   % BULLMQ_BEST["connections"])
    p.add_argument("--bullmq-sweep", action="store_true",
                   help="BullMQ only: every pair of BULLMQ_SWEEP (concurrency, connections), --repeat times each; "
                        "prints the fastest (the value to pin as BULLMQ_BEST)")
    p.add_argument("--provider", choices=["webhook", "mews"], default="webhook",
                   help="outq provider the jobs name (default webhook; mews runs against a server answering "
                        "like Mews, since nginx's fixed answer does not name each message)")
    p.add_argument("--path", default=MEWS_ADD_PATH, help="request path on the fake provider")
    p.add_argument("--delay-ms", type=float, default=200, help="--slow: the provider's answer delay")
    p.add_argument("--timeout", type=int, default=900, help="seconds a worker may take for N jobs")
    p.add_argument("--perf", metavar="FILE", help="record a perf profile of the outq worker into FILE "
                   "(perturbs that run's figures)")
    p.add_argument("--perf-call-graph", default="dwarf,16384", help="perf record --call-graph (default dwarf,16384)")
    p.add_argument("--redis-stats", action="store_true",
                   help="also print Redis' commandstats per job for each worker (calls and microseconds)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    p.add_argument("--outq", default=os.path.join(os.environ.get("OUTQ_BUILD_DIR", os.path.join(ROOT, "build")),
                                                   "worker", "outq"), help="the worker binary")
    args = p.parse_args()
    if args.n is None:
        args.n = 200 if args.quick else 100000
    if args.quick:
        args.only = "outq"
    if args.wait_quiet is None:
        args.wait_quiet = 0 if args.quick else 30
    slow = args.slow
    args.concurrency = args.concurrency or (1000 if slow else 256)
    args.connections = args.connections or (1000 if slow else 64)
    args.bullmq_concurrency = args.bullmq_concurrency or (1000 if slow else BULLMQ_BEST["concurrency"])
    args.bullmq_connections = args.bullmq_connections or (
        args.bullmq_concurrency if slow else min(BULLMQ_BEST["connections"], args.bullmq_concurrency))
    if args.bullmq_sweep:
        args.only = "bullmq"
    if args.https and (args.slow or args.mews_batch or args.provider == "mews"):
        p.error("--https needs nginx as the provider: not with --slow, --mews-batch or --provider mews")
    if args.mews_batch and args.only == "bullmq":
        p.error("--mews-batch runs outq only")
    if args.n < 1 or args.repeat < 1:
        p.error("--n and --repeat must be positive")
    return args


def guarded(name, args, prefix, body):
    """Runs body(procs, work) in a new work directory and stops every process it started,
    by PID, at the end: also on Ctrl-C, SIGTERM, SIGHUP or a Failure (the work directory is
    then kept). Returns the exit status: body's, 130 when interrupted, 1 on a Failure."""
    procs = Processes()
    work = tempfile.mkdtemp(prefix=prefix)
    stop_signal = []

    def on_signal(signum, _frame):
        stop_signal.append(signum)
        raise KeyboardInterrupt
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        return body(procs, work)
    except KeyboardInterrupt:
        print("interrupted (signal %s); stopping what was started" % (stop_signal or ["INT"])[0], file=sys.stderr)
        return 130
    except Failure as e:
        args.keep = True
        print("%s: %s" % (name, e), file=sys.stderr)
        return 1
    finally:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        procs.stop_all()
        if args.keep:
            print("work directory kept: %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main():
    args = parse_args()
    if not os.access(args.outq, os.X_OK):
        raise Failure("no worker binary at %s (run scripts/build.sh)" % args.outq)
    return guarded("send-n", args, "outq-send-n.", lambda procs, work: drain_all(args, procs, work))


def drain_all(args, procs, work):
    redis, redis_port = start_redis(procs, work)
    ca = make_certificates(work) if args.https else None
    if args.slow or args.mews_batch or args.provider == "mews":
        mews = args.mews_batch or args.provider == "mews"
        provider, provider_pids, port = start_delay_server(procs, work, args.path,
                                                           args.delay_ms if args.slow else 0, mews)
        status_port = port
        provider_name = "delay server" if args.slow else "Mews echo server"
    else:
        provider, provider_pids, port, status_port = start_nginx(procs, work, args.path, args.https)
        provider_name = "nginx"
    env = {"procs": procs, "work": work, "redis_pid": redis.pid, "redis_port": redis_port, "ca": ca,
           "provider_pids": provider_pids, "status_port": status_port,
           "url": "%s://127.0.0.1:%d%s" % ("https" if args.https else "http", port, args.path)}
    r = Redis(redis_port)
    if args.bullmq_sweep:
        return sweep_bullmq(args, env, r)
    if args.mews_batch:  # outq's two providers on the same server: one request per job vs batches
        contenders = [("outq mews", run_outq, "mews"), ("outq webhook", run_outq, "webhook")]
    else:
        contenders = [(w, f, args.provider) for w, f in (("outq", run_outq), ("bullmq", run_bullmq))
                      if args.only in (None, w)]
    workers = [c[0] for c in contenders]
    runs = {w: [] for w in workers}
    failures = []
    for rep in range(args.repeat):
        for w, run, provider_kind in contenders:
            r.call("FLUSHALL")
            print("%s run %d/%d: enqueue %d jobs, then drain them..." % (w, rep + 1, args.repeat, args.n),
                  file=sys.stderr, flush=True)
            if args.wait_quiet:
                load = wait_for_quiet(args.wait_quiet)
                if load >= 0.25:
                    print("  the machine is busy (%.2f cores used by others); measuring anyway" % load,
                          file=sys.stderr, flush=True)
            x = run(args, env, r, w, provider_kind)
            runs[w].append(x)
            print("  enqueued in %.1fs; %d sent, %d dead/failed in %.2fs (%.0f jobs/s), worker exit status %s, "
                  "%d log lines" % (x["enqueue_s"], x["ok"], x["dead"], x["wall"], x["n"] / x["wall"],
                                    x["exit"], x["log_lines"]), file=sys.stderr, flush=True)
            if x["ok"] != args.n:
                failures.append("%s: %d of %d jobs sent, %d dead; log %s\n%s" % (
                    w, x["ok"], args.n, x["dead"], x["log"], tail_of(x["log"])))
            if x["exit"] != 0:
                failures.append("%s exited with status %s after SIGTERM; log %s\n%s" % (
                    w, x["exit"], x["log"], tail_of(x["log"])))
    r.close()
    if args.repeat > 1:
        print_runs(runs)
    print_table(args, [summarize(runs[w], args.pick) for w in workers], provider_name)
    if args.redis_stats:
        print_redis_stats(runs)
    if failures:
        args.keep = True
        print("\nFAILED:\n" + "\n".join(failures), file=sys.stderr)
        return 1
    if args.quick:
        print("quick: all %d jobs sent" % args.n)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("send-n: %s" % e, file=sys.stderr)
        sys.exit(1)
