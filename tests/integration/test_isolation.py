"""Isolation between accounts (issue #16): a provider account that hangs
never slows a healthy one sharing the queue and the workers."""
import json
import socket
import threading
import time

from harness import Env, job, wait_until


class HangingServer:
    """Accepts TCP connections on loopback, reads what comes, never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns = []
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def close(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            c.close()


def _every_job_accounted_for(env, ids):
    """ids neither lost nor duplicated: each has an outcome, or is in the stream, or parked in the delayed set."""
    seen = set()
    for _, fields in env.r.xrange(env.key("jobs")):
        seen.add(json.loads(fields["job"])["id"])
    for token in env.r.zrange(env.key("delayed"), 0, -1):
        fields = env.r.hgetall(env.key("delayed:" + token))
        if "job" in fields:
            seen.add(json.loads(fields["job"])["id"])
    missing = [i for i in ids if i not in seen and not env.has_outcome(i)]
    assert not missing, "jobs lost: %s" % missing[:10]


def _time_to_results(env, ids, timeout):
    start = time.monotonic()
    env.wait_results(ids, timeout=timeout)
    return time.monotonic() - start


def test_a_hanging_account_does_not_hold_back_a_healthy_one():
    hang = HangingServer()
    try:
        with Env() as env:
            config = env.config()
            config["providers"]["webhook"]["accounts"]["sick"] = {
                "url": hang.url, "http": {"request_timeout_ms": 20000}}
            config["providers"]["webhook"]["retry"]["max_attempts"] = 5
            config["shutdown_grace_ms"] = 1000
            for n in range(3):
                env.worker(config, name="w%d" % n)
            # Warm up, then the healthy account alone.
            env.enqueue(job("warm%d" % i) for i in range(100))
            env.wait_results(["warm%d" % i for i in range(100)], timeout=60)
            alone_ids = ["alone%04d" % i for i in range(3000)]
            env.enqueue(job(i) for i in alone_ids)
            alone = _time_to_results(env, alone_ids, 60)
            # The sick account's jobs first, then the healthy ones.
            sick_ids = ["sick%03d" % i for i in range(300)]
            env.enqueue(job(i, account="sick") for i in sick_ids)
            wait_until(lambda: hang.accepted >= 3, 10, "the hanging server to be called")
            ids = ["h%04d" % i for i in range(3000)]
            env.enqueue(job(i) for i in ids)
            beside = _time_to_results(env, ids, 60)
            bound = max(1.5 * alone, alone + 1.0)
            assert beside <= bound, "healthy jobs took %.2f s beside a hanging account, %.2f s alone" % (
                beside, alone)
            for w in env.workers:
                w.stop()
            _every_job_accounted_for(env, sick_ids)
            assert all(env.result_value(i)["status"] == "sent" for i in ids[:50])
    finally:
        hang.close()
