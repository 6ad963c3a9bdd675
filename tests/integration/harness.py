"""Integration test harness: a real redis-server on a free loopback port, the
provider sandbox in-process, and real `outq` worker processes. Everything a
test starts is stopped by PID when its `Env` closes, failures included."""
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


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
    def __init__(self, directory, persistent=False, tls_pki=None):
        self.dir = directory
        self.port = free_port()
        self.persistent = persistent
        self.pki = tls_pki
        self.proc = None
        if tls_pki:
            self.cert, self.key = tls_pki.issue("redis")

    def start(self):
        args = ["redis-server", "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
                "--appendonly", "yes" if self.persistent else "no", "--appendfsync", "always"]
        if self.pki:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.cert, "--tls-key-file",
                     self.key, "--tls-ca-cert-file", self.pki.ca_cert, "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        wait_until(lambda: self._ping(client), 15, "redis-server to start")
        return self

    def _ping(self, client):
        try:
            return client.ping()
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def client(self):
        if self.pki:
            return redis.Redis(port=self.port, ssl=True, ssl_ca_certs=self.pki.ca_cert, decode_responses=True)
        return redis.Redis(port=self.port, decode_responses=True)

    @property
    def url(self):
        return "%s://127.0.0.1:%d/0" % ("rediss" if self.pki else "redis", self.port)

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Worker:
    def __init__(self, env, config, name):
        self.env = env
        self.name = name
        self.config_path = os.path.join(env.dir, "%s.json" % name)
        with open(self.config_path, "w") as f:
            json.dump(config, f)
        self.log_path = os.path.join(env.dir, "%s.log" % name)
        self.proc = None

    def start(self, extra_env=None):
        log = open(self.log_path, "ab")
        environment = dict(os.environ)
        environment.update(extra_env or {})
        self.proc = subprocess.Popen([OUTQ, "run", "--config", self.config_path], stdout=log, stderr=log,
                                     env=environment)
        log.close()
        return self

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout):
        return self.proc.wait(timeout=timeout)

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Env:
    """with Env() as env: env.redis, env.sandbox, env.worker(...), env.enqueue(...)"""

    def __init__(self, queue="t", persistent=False, tls=False):
        self.dir = tempfile.mkdtemp(prefix="outq-it-")
        self.queue = queue
        self.pki = TestPKI(os.path.join(self.dir, "pki")) if tls else None
        self.redis = RedisServer(self.dir, persistent=persistent, tls_pki=self.pki)
        self.sandbox = Sandbox()
        self.workers = []

    def __enter__(self):
        self.redis.start()
        self.r = self.redis.client()
        self.sandbox.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        for w in self.workers:
            w.stop()
        self.sandbox.stop()
        self.redis.stop()
        if exc_type is not None:
            for w in self.workers:
                print("--- log of %s (last 40 lines) ---\n%s" % (w.name, "\n".join(w.log().splitlines()[-40:])))
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    # --- configuration and processes ---------------------------------------
    def config(self, **overrides):
        webhook = {"retry": {"base_ms": 20, "cap_ms": 200, "max_attempts": 3},
                   "http": {"request_timeout_ms": 2000, "connect_timeout_ms": 1000},
                   "accounts": {"a": {"url": "http://127.0.0.1:%d/hook/a" % self.sandbox.port},
                                "b": {"url": "http://127.0.0.1:%d/hook/b" % self.sandbox.port}}}
        redis_cfg = {"url": self.redis.url, "command_timeout_ms": 2000, "connect_timeout_ms": 1000}
        if self.pki:
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
        pipe = self.r.pipeline(transaction=False)
        for job in jobs:
            pipe.xadd(self.key("jobs"), {"job": job if isinstance(job, str) else json.dumps(job)})
        return pipe.execute()

    def result(self, job_id):
        return self.r.hgetall(self.key("result:" + job_id))

    def wait_results(self, ids, timeout=60):
        ids = list(ids)

        def done():
            pipe = self.r.pipeline(transaction=False)
            for i in ids:
                pipe.exists(self.key("result:" + i))
            return all(pipe.execute())

        wait_until(done, timeout, "results of %d jobs" % len(ids))
        return {i: self.result(i) for i in ids}

    def dead_letters(self):
        return [dict(fields, entry_id=eid) for eid, fields in self.r.xrange(self.key("dead"))]

    def cli(self, *args, check=True):
        out = subprocess.run([OUTQ] + list(args) + ["--redis", self.redis.url, "--queue", self.queue],
                             capture_output=True, text=True, timeout=60)
        if check:
            assert out.returncode == 0, "outq %s failed (%d): %s %s" % (args, out.returncode, out.stdout, out.stderr)
        return out

    def hook_requests(self, account=None):
        return [r for r in self.sandbox.requests()
                if r["path"].startswith("/hook/") and (account is None or r["path"] == "/hook/" + account)]


def job(job_id, account="a", **message):
    return {"v": 1, "id": job_id, "provider": "webhook", "account": account, "message": message or {"text": "hi"}}
