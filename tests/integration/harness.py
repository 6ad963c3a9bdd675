"""Integration test harness: a real redis-server on a free loopback port, the
provider sandbox in-process, and real `outq` worker processes. Everything a
test starts is stopped by PID when its `Env` closes, failures included."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))
from sandbox import Sandbox  # noqa: E402
from tls_certs import TestPKI  # noqa: E402

BUILD = os.environ.get("OUTQ_BUILD_DIR", os.path.join(ROOT, "build"))
OUTQ = os.path.join(BUILD, "worker", "outq")
# The binaries are a sanitizer build (scripts/sanitize.sh): figures that measure
# time, CPU, memory or what the binary links are the sanitizer's, not outq's, and
# are only printed.
SANITIZED = bool(os.environ.get("OUTQ_SANITIZED"))
GROUP = "outq.v2"  # the consumer group of format 2 (docs/protocol.md)


def load_jsonc(path):
    """The worker's config dialect: JSON with // comments (outside strings)."""
    with open(path) as f:
        text = f.read()
    out, i, n, in_string = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return json.loads("".join(out))


def _acl_entry(entry):
    """An ACL LOG entry (a flat list of names and values, or a dict) as a dict."""
    if isinstance(entry, dict):
        return entry
    return dict(zip(entry[::2], entry[1::2]))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _quietly(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - cleanup goes on
        print("cleanup: %s failed: %r" % (getattr(fn, "__qualname__", fn), e), flush=True)


def http_status(port, path):
    """The status of GET path on a loopback port (a worker's /readyz), None when it does not answer."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        c.request("GET", path)
        status = c.getresponse().status
        c.close()
        return status
    except OSError:
        return None


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.05)


class RedisServer:
    """redis-server on a free loopback port; restartable on the same port (with
    its data when persistent: AOF, fsync always)."""

    def __init__(self, directory, persistent=False, tls_pki=None):
        self.dir = directory
        self.port = free_port()
        self.persistent = persistent
        self.pki = tls_pki
        self.proc = None
        self.log_path = os.path.join(directory, "redis.log")
        self.starts = 0
        self.always_args = ()  # more redis-server options for every start (Env(redis_args=...))
        if tls_pki:
            self.cert, self.key = tls_pki.issue("redis")

    def _args(self, extra):
        args = ["redis-server", "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
                "--appendonly", "yes" if self.persistent else "no", "--appendfsync", "always",
                "--logfile", self.log_path]
        if self.pki:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.cert, "--tls-key-file",
                     self.key, "--tls-ca-cert-file", self.pki.ca_cert, "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        return args + list(self.always_args) + list(extra)

    def start(self, extra_args=()):
        """Starts redis-server and waits until it answers PING (not LOADING any more).
        extra_args: more redis-server options for this start only."""
        # The first start may lose the free port to another process: pick another one then.
        # A restart must keep the port (the worker's URL names it).
        for _ in range(1 if self.starts else 3):
            self.proc = subprocess.Popen(self._args(extra_args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         stdin=subprocess.DEVNULL)
            client = self.client()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.proc.poll() is None and not self._ping(client):
                time.sleep(0.05)
            client.close()
            if self.proc.poll() is None and time.monotonic() < deadline:
                self.starts += 1
                return self
            self.stop(kill=True)
            if "Address already in use" in self.log_tail() and not self.starts:
                self.port = free_port()
                continue
            break
        raise AssertionError("redis-server did not start on port %d:\n%s" % (self.port, self.log_tail()))

    def _ping(self, client):
        try:
            return client.ping()
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def client(self, **extra):
        kw = dict(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=30,
                  socket_connect_timeout=5, **extra)
        if self.pki:
            return redis.Redis(ssl=True, ssl_ca_certs=self.pki.ca_cert, **kw)
        return redis.Redis(**kw)

    @property
    def url(self):
        return "%s://127.0.0.1:%d/0" % ("rediss" if self.pki else "redis", self.port)

    def stop(self, kill=False):
        """SIGTERM (Redis' SHUTDOWN: the AOF is flushed) or SIGKILL, then wait."""
        if self.proc and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-lines:])
        except OSError:
            return ""


class Worker:
    """One `outq run` process; stdout and stderr go to <name>.log in the test's directory."""

    def __init__(self, env, config, name):
        self.env = env
        self.name = name
        self.config_path = os.path.join(env.dir, "%s.json" % name)
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=1)
        self.log_path = os.path.join(env.dir, "%s.log" % name)
        self.proc = None

    def start(self, extra_env=None):
        environment = {k: v for k, v in os.environ.items() if k != "OUTQ_REDIS_URL" and "proxy" not in k.lower()}
        environment.update(extra_env or {})
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([OUTQ, "run", "--config", self.config_path], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, env=environment)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def sigterm(self):
        self.signal(signal.SIGTERM)

    def wait(self, timeout):
        """The exit code; fails the test (with the log) when it does not exit in time."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s (pid %d) did not exit within %ss" % (self.name, self.proc.pid, timeout))

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout=30):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])

    # --- helpers for logs, counters and resource use ---------------------------
    def log_size(self):
        """Bytes in the log so far: an offset for lines_since()."""
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def lines_since(self, offset):
        """The log lines written after `offset` (from log_size())."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return []
        return data.decode("utf-8", "replace").splitlines()

    def log_records(self):
        """Every logfmt line of the log, parsed (see parse_logfmt)."""
        return [parse_logfmt(line) for line in self.log().splitlines() if line.startswith("ts=")]

    def stopped_record(self):
        """The fields of the last `msg="worker stopped"` line, or None."""
        found = [r for r in self.log_records() if r.get("msg") == "worker stopped"]
        return found[-1] if found else None

    def cpu_seconds(self):
        """User + system CPU time the live process used so far (all its threads)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # After the ")" of the command name: field 3 is state, utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


ACL_USERS = ("outq-worker", "outq-producer", "outq-operator", "outq-dashboard", "outq-keda")


def _acl_mode():
    """OUTQ_TEST_ACL=1 (scripts/test.sh --full): every Env runs as deploy/redis/outq-users.acl
    says, the workers as outq-worker, env.enqueue as outq-producer, env.cli as outq-operator."""
    return os.environ.get("OUTQ_TEST_ACL") == "1"


class Env:
    """with Env() as env: env.redis, env.sandbox, env.worker(...), env.enqueue(...)"""

    def __init__(self, queue="t", persistent=False, tls=False, https_sandbox=False, redis_args=(), acl=None):
        """tls: Redis over TLS (rediss://); https_sandbox: the sandbox serves HTTPS with
        a certificate from the test CA, and the accounts of env.config() trust that CA.
        redis_args: more redis-server options for every start (restarts included).
        acl: run under the least-privilege users of deploy/redis (default: OUTQ_TEST_ACL=1);
        env.r stays the default user, for what the tests inspect."""
        self.dir = tempfile.mkdtemp(prefix="outq-it-")
        self.queue = queue
        self.acl = _acl_mode() if acl is None else acl
        self.producer = None
        self.pki = TestPKI(os.path.join(self.dir, "pki")) if tls or https_sandbox else None
        self.redis = RedisServer(self.dir, persistent=persistent, tls_pki=self.pki if tls else None)
        self.redis.always_args = tuple(redis_args)
        if self.acl:
            # The users live in an ACL file (ACL SAVE), so a restarted Redis has them at once.
            aclfile = os.path.join(self.dir, "users.acl")
            open(aclfile, "w").close()
            self.redis.always_args += ("--aclfile", aclfile)
        self.https = https_sandbox
        if https_sandbox:
            cert, key = self.pki.issue("sandbox")
            self.sandbox = Sandbox(tls_cert=cert, tls_key=key)
        else:
            self.sandbox = Sandbox()
        self.workers = []

    def __enter__(self):
        try:
            self.redis.start()
            self.r = self.redis.client()
            if self.acl:
                self.create_acl_users()
            self.sandbox.start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    # --- least-privilege users (deploy/redis) ----------------------------------
    def create_acl_users(self):
        """The users of deploy/redis/outq-users.acl for this queue, by deploy/redis/create-users.sh
        (saved in the ACL file, kept over restarts); password = "pw-" + name."""
        environment = dict(os.environ)
        for name in ACL_USERS:
            environment["OUTQ_%s_PASSWORD" % name[5:].upper()] = "pw-" + name
        args = ["bash", os.path.join(ROOT, "deploy", "redis", "create-users.sh"), "--queue", self.queue, "--save",
                "-h", "127.0.0.1", "-p", str(self.redis.port)]
        if self.redis.pki:
            args += ["--tls", "--cacert", self.pki.ca_cert]
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, env=environment)
        assert out.returncode == 0, "create-users.sh failed: %s %s" % (out.stdout, out.stderr)
        if self.producer is not None:
            _quietly(self.producer.close)
        self.producer = self.redis.client(username="outq-producer", password="pw-outq-producer")

    def user_url(self, name):
        """The Redis URL of this Env's Redis as one of the deploy/redis users."""
        return self.redis.url.replace("://", "://%s:pw-%s@" % (name, name), 1)

    def producer_url(self):
        """Where a producer connects: as outq-producer under the deploy/redis users."""
        return self.user_url("outq-producer") if self.acl else self.redis.url

    def producer_client(self):
        """A new redis-py client as the producer (outq-producer under the deploy/redis users)."""
        if self.acl:
            return self.redis.client(username="outq-producer", password="pw-outq-producer")
        return self.redis.client()

    def acl_refusals(self):
        """ACL LOG entries of the deploy/redis users: what Redis refused them."""
        return [e for e in self.r.execute_command("ACL", "LOG", "128") if _acl_entry(e).get("username") in ACL_USERS]

    def start_replica(self):
        """A redis-server replicating this Env's Redis, synced (stop it by PID: .stop(kill=True))."""
        self.r.config_set("repl-diskless-sync-delay", 0)  # sync at once, not after 5 s
        replica = RedisServer(os.path.join(self.dir, "replica%d" % len(os.listdir(self.dir))))
        os.makedirs(replica.dir, exist_ok=True)
        replica.always_args = ("--replicaof", "127.0.0.1", str(self.redis.port))
        replica.start()
        # Synced as the primary sees it (online: it has the replica's ACK), which is what WAIT counts.
        wait_until(lambda: any(isinstance(v, dict) and v.get("state") == "online"
                               for k, v in self.r.info("replication").items() if k.startswith("slave")),
                   20, "the replica to sync")
        return replica

    def restart_redis(self, down_s=0.5, extra_args=()):
        """SHUTDOWN (SIGTERM) of redis-server, down for `down_s`, then start on the same
        port (with `extra_args` added for this start) and wait until it answers PING."""
        self.redis.stop()
        time.sleep(down_s)  # a real outage, not a wait for something
        self.redis.start(extra_args)
        _quietly(self.r.close)
        self.r = self.redis.client()

    def __exit__(self, exc_type, exc, tb):
        # Every process this test started is stopped by PID, whatever failed before.
        for w in self.workers:
            _quietly(w.stop)
        refusals = []
        if self.acl and exc_type is None:
            try:
                refusals = self.acl_refusals()
            except redis.RedisError:
                pass  # a test that left Redis down or changed its users: nothing to read
        if exc_type is not None:
            for w in self.workers:
                print("--- log of %s (pid %s, last 60 lines) ---\n%s"
                      % (w.name, w.proc.pid if w.proc else "-", w.log_tail(60)), flush=True)
            print("--- redis log (last 10 lines) ---\n%s" % self.redis.log_tail(10), flush=True)
        _quietly(self.sandbox.stop)
        _quietly(self.redis.stop)
        if hasattr(self, "r"):
            _quietly(self.r.close)
        if self.producer is not None:
            _quietly(self.producer.close)
        shutil.rmtree(self.dir, ignore_errors=True)
        if refusals:
            raise AssertionError("Redis refused the deploy/redis users: %s" % refusals)
        return False

    # --- configuration and processes ---------------------------------------
    def config(self, **overrides):
        webhook = {"retry": {"base_ms": 20, "cap_ms": 200, "max_attempts": 3},
                   "http": {"request_timeout_ms": 2000, "connect_timeout_ms": 1000},
                   "accounts": {"a": {"url": self.sandbox.url + "/hook/a"},
                                "b": {"url": self.sandbox.url + "/hook/b"}}}
        if self.https:
            for account in webhook["accounts"].values():
                account["tls"] = {"ca_file": self.pki.ca_cert}
        redis_cfg = {"url": self.user_url("outq-worker") if self.acl else self.redis.url, "command_timeout_ms": 2000, "connect_timeout_ms": 1000}
        if self.redis.pki:
            redis_cfg["tls_ca_file"] = self.pki.ca_cert
        c = {"redis": redis_cfg, "queue": self.queue, "concurrency": 64, "fetch_batch": 64,
             "visibility_timeout_ms": 10000, "shutdown_grace_ms": 5000, "providers": {"webhook": webhook}}
        for k, v in overrides.items():
            c[k] = v
        return c

    def worker(self, config=None, name=None, start=True, extra_env=None):
        w = Worker(self, config or self.config(), name or "worker%d" % len(self.workers))
        self.workers.append(w)
        return w.start(extra_env) if start else w

    # --- the producer's and the operator's side ------------------------------
    def key(self, suffix):
        return "outq:{%s}:%s" % (self.queue, suffix)

    def enqueue(self, jobs):
        pipe = (self.producer or self.r).pipeline(transaction=False)
        for job in jobs:
            pipe.xadd(self.key("jobs"), {"job": job if isinstance(job, str) else json.dumps(job)})
        return pipe.execute()

    def result_value(self, job_id):
        """The job's result value (format 2: JSON) as a dict; None when there is none."""
        raw = self.r.get(self.key("result:" + job_id))
        return None if raw is None else json.loads(raw)

    def result(self, job_id):
        """The job's outcome with every member as text (numbers and `meta` as JSON text), as
        the tests compare them; {} while it has none (no value, or a `sending` marker)."""
        value = self.result_value(job_id)
        if not value or value.get("status") == "sending":
            return {}
        return {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in value.items()}

    def has_outcome(self, job_id):
        """Whether the job has an outcome (not only a `sending` marker)."""
        return bool(self.outcomes_of([job_id])[0])

    def outcomes_of(self, ids):
        """For each id, whether its result value holds an outcome; one pipeline."""
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.get(self.key("result:" + i))
        return [raw is not None and not raw.startswith('{"status":"sending"') for raw in pipe.execute()]

    def wait_results(self, ids, timeout=60):
        """Waits until every id has an outcome; returns {id: result()}. On timeout the
        message says how many are missing and names a few."""
        ids = list(ids)
        missing = list(ids)

        def done():
            missing[:] = [i for i, there in zip(list(missing), self.outcomes_of(missing)) if not there]
            return not missing

        try:
            wait_until(done, timeout, "results of %d jobs" % len(ids))
        except AssertionError as e:
            raise AssertionError("%s: %d without a result, e.g. %s; stream length %s, pending %s"
                                 % (e, len(missing), missing[:5], self._safe(lambda: self.r.xlen(self.key("jobs"))),
                                    self._safe(lambda: self.r.xpending(self.key("jobs"), GROUP)["pending"])))
        return {i: self.result(i) for i in ids}

    @staticmethod
    def _safe(fn):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - only for messages
            return repr(e)

    def dead_letters(self):
        return [dict(fields, entry_id=eid) for eid, fields in self.r.xrange(self.key("dead"))]

    def cli(self, *args, check=True, input=None):
        """Runs `outq <args> --redis URL --queue Q`; returns the CompletedProcess."""
        environment = {k: v for k, v in os.environ.items() if k != "OUTQ_REDIS_URL"}
        url = self.user_url("outq-operator") if self.acl else self.redis.url
        out = subprocess.run([OUTQ] + list(args) + ["--redis", url, "--queue", self.queue],
                             capture_output=True, text=True, timeout=60, input=input, env=environment)
        if check:
            assert out.returncode == 0, "outq %s failed (%d): %s %s" % (args, out.returncode, out.stdout, out.stderr)
        return out

    def cli_json(self, *args):
        out = self.cli(*args, "--json")
        try:
            return json.loads(out.stdout)
        except ValueError:
            raise AssertionError("outq %s --json printed no JSON: %r" % (args, out.stdout[:500]))

    def hook_requests(self, account=None):
        return [r for r in self.sandbox.requests()
                if r["path"].startswith("/hook/") and (account is None or r["path"] == "/hook/" + account)]

    # --- helpers for exactly-once checks ---------------------------------------
    def request_counts(self, account=None):
        """{Idempotency-Key: how many webhook requests the sandbox received with it}."""
        counts = {}
        for r in self.hook_requests(account):
            key = r["headers"].get("idempotency-key")
            counts[key] = counts.get(key, 0) + 1
        return counts

    def result_event_counts(self):
        """{job id: how many events outq:{Q}:results holds for it}."""
        counts = {}
        for _, fields in self.r.xrange(self.key("results")):
            counts[fields.get("id")] = counts.get(fields.get("id"), 0) + 1
        return counts

    def dead_letter_counts(self):
        """{job id: how many dead letters outq:{Q}:dead holds for it}."""
        counts = {}
        for _, fields in self.r.xrange(self.key("dead")):
            counts[fields.get("id")] = counts.get(fields.get("id"), 0) + 1
        return counts

    def pending_of(self, consumer):
        """How many entries of the jobs stream are pending for `consumer` (XPENDING); 0
        while the group does not exist."""
        try:
            summary = self.r.xpending(self.key("jobs"), GROUP)
        except redis.ResponseError as e:
            if "NOGROUP" in str(e):
                return 0
            raise
        for c in summary.get("consumers") or []:
            name = c["name"].decode() if isinstance(c["name"], bytes) else c["name"]
            if name == consumer:
                return int(c["pending"])
        return 0

    def pending_entries(self, count=10000):
        """[(entry id, consumer, times delivered)] of every pending entry of the jobs stream
        ([] while the group does not exist)."""
        try:
            rows = self.r.xpending_range(self.key("jobs"), GROUP, "-", "+", count)
        except redis.ResponseError as e:
            if "NOGROUP" in str(e):
                return []
            raise
        return [(row["message_id"], row["consumer"], row["times_delivered"]) for row in rows]

    def commandstats(self):
        """{command name: attempts} from INFO commandstats: calls (executed, failed_calls
        included: Redis counts a call that replied an error in both) + rejected_calls
        (refused before running: -OOM, -NOPERM, a queued command of a refused MULTI)."""
        out = {}
        for name, stats in self.r.info("commandstats").items():
            if isinstance(stats, dict) and name.startswith("cmdstat_"):
                out[name[len("cmdstat_"):]] = int(stats.get("calls", 0)) + int(stats.get("rejected_calls", 0))
        return out


def parse_logfmt(line):
    """One logfmt line (`ts=… level=info msg="…" key=value`) as a dict of strings."""
    out, i, n = {}, 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        eq = line.find("=", i)
        if eq < 0:
            break
        key = line[i:eq]
        i = eq + 1
        if i < n and line[i] == '"':
            i += 1
            value = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    i += 1
                    value.append("\n" if line[i] == "n" else line[i])
                else:
                    value.append(line[i])
                i += 1
            i += 1
            out[key] = "".join(value)
        else:
            end = line.find(" ", i)
            end = n if end < 0 else end
            out[key] = line[i:end]
            i = end
    return out


def job(job_id, account="a", **message):
    return {"v": 1, "id": job_id, "provider": "webhook", "account": account, "message": message or {"text": "hi"}}
