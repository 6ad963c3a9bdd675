"""The least-privilege Redis users of deploy/redis (deploy kit, issue 18), loaded by
deploy/redis/create-users.sh: the worker, producers, operators, dashboards and KEDA each do
their work under their own user with nothing refused (Redis' ACL LOG stays empty), and
each is refused what it must not do. `scripts/test.sh --full` runs the whole integration
suite this way as well (OUTQ_TEST_ACL=1)."""
import json
import os
import subprocess
import sys
import time

import redis

from harness import OUTQ, ROOT, Env, job, wait_until

sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import outq_client  # noqa: E402


def _as(env, user, *args, check=True):
    """`outq ARGS` as one of the deploy/redis users."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OUTQ_")}
    out = subprocess.run([OUTQ] + list(args) + ["--redis", env.user_url(user), "--queue", env.queue],
                         capture_output=True, text=True, timeout=60, env=environment)
    if check:
        assert out.returncode == 0, "outq %s as %s failed (%d): %s %s" % (args, user, out.returncode, out.stdout,
                                                                        out.stderr)
    return out


def test_worker_producer_and_operator_do_all_their_work_with_nothing_refused():
    with Env(acl=True) as env:
        config = env.config()
        config["providers"]["webhook"]["accounts"]["a"]["circuit"] = {"failures": 2, "open_ms": 300}
        w = env.worker(config)
        producer = outq_client.Client(env.producer_client(), queue=env.queue)
        later = int(time.time() * 1000) + 700
        producer.enqueue_many([
            job("plain"),
            job("retried", text="x", sandbox={"status": 500, "times": 1}),
            job("refused", text="x", sandbox={"status": 400, "times": 1}),
            job("limited", text="x", sandbox={"status": 429, "times": 1, "retry_after": "1"}),
            dict(job("later", account="b"), not_before=later),
        ])
        producer.enqueue(job("plain"))  # a duplicate: skipped, acknowledged
        for job_id, status in (("plain", "sent"), ("retried", "sent"), ("refused", "dead"), ("limited", "sent"),
                               ("later", "sent")):
            assert producer.wait(job_id, timeout=30)["status"] == status, job_id
        # A circuit opening and its probe closing it (account a: two 503s in a row).
        producer.enqueue_many([job("c1", text="x", sandbox={"status": 503, "times": 2})])
        assert producer.wait("c1", timeout=30)["status"] == "sent"
        # The operator: stats, dead letters, replay, pause and resume, a job's whereabouts.
        assert json.loads(_as(env, "outq-operator", "stats", "--json").stdout)
        dead = json.loads(_as(env, "outq-operator", "dead", "list", "--json").stdout)
        assert "refused" in json.dumps(dead), dead
        _as(env, "outq-operator", "dead", "replay", "refused")
        assert producer.wait("refused", timeout=30)["status"] == "sent"  # the sandbox answered 400 once
        _as(env, "outq-operator", "pause", "webhook", "b", "--for", "1s")
        _as(env, "outq-operator", "resume", "webhook", "b")
        _as(env, "outq-operator", "job", "plain")
        for kind in ("waiting", "delayed", "inflight"):
            _as(env, "outq-operator", "list", kind)
        # The shell producer under the producer user too.
        shell = subprocess.run(["bash", os.path.join(ROOT, "clients", "shell", "outq-enqueue.sh"), "--max-backlog", "100",
                                json.dumps(job("from-shell"))], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, OUTQ_REDIS_URL=env.producer_url(), OUTQ_QUEUE=env.queue))
        assert shell.returncode == 0, shell.stderr
        assert producer.wait("from-shell", timeout=30)["status"] == "sent"
        w.stop()
        assert w.proc.returncode == 0, w.log_tail(20)
        assert "NOPERM" not in w.log() and "refusing to start" not in w.log(), w.log_tail(30)
        assert env.acl_refusals() == [], env.acl_refusals()


def test_each_user_is_refused_what_it_must_not_do():
    with Env(acl=True) as env:
        env.worker()
        env.enqueue([job("x"), job("bad", text="x", sandbox={"status": 400, "times": 1})])
        env.wait_results(["x", "bad"])
        producer = env.producer_client()
        for forbidden in (lambda: producer.xrange(env.key("jobs")),         # another job's payload
                          lambda: producer.xrange(env.key("dead")),         # dead letters
                          lambda: producer.set(env.key("result:x"), "{}"),  # forging an outcome
                          lambda: producer.xadd(env.key("results"), {"id": "x"}),
                          lambda: producer.get("outq:{%s@webhook/a}:pause" % env.queue),
                          lambda: producer.xadd("outq:{other}:jobs", {"job": "{}"}),  # another queue
                          lambda: producer.flushall()):
            try:
                forbidden()
            except redis.exceptions.NoPermissionError:
                continue
            raise AssertionError("the producer was allowed %s" % forbidden.__code__.co_consts)
        # What the dashboard user may do: read; not replay, pause or cancel.
        assert json.loads(_as(env, "outq-dashboard", "stats", "--json").stdout)
        _as(env, "outq-dashboard", "dead", "list")
        _as(env, "outq-dashboard", "job", "x")
        for command in (("pause", "webhook", "a"), ("dead", "replay", "--all", "--yes"), ("job", "cancel", "nope")):
            out = _as(env, "outq-dashboard", *command, check=False)
            assert out.returncode != 0 and "NOPERM" in (out.stdout + out.stderr), (command, out.stdout, out.stderr)
        # KEDA reads the stream's length, and nothing else.
        keda = env.redis.client(username="outq-keda", password="pw-outq-keda")
        assert keda.xlen(env.key("jobs")) == env.r.xlen(env.key("jobs"))
        for forbidden in (lambda: keda.xrange(env.key("jobs")), lambda: keda.get(env.key("result:x"))):
            try:
                forbidden()
                raise AssertionError("KEDA's user may read more than XLEN")
            except redis.exceptions.NoPermissionError:
                pass
        # A worker user of another queue cannot start on this one: it is refused, says so, sends nothing.
        other = env.config()
        other["queue"] = "other"
        w = env.worker(other, name="other-queue")
        code = w.wait(timeout=20)
        assert code not in (0, None) and "level=error" in w.log(), w.log_tail(10)
        # Forget the refusals this test provoked on purpose.
        env.r.execute_command("ACL", "LOG", "RESET")


def test_create_users_refuses_a_queue_name_with_glob_or_tag_characters():
    for bad in ("a*", "a{b", "x y", "q@p"):
        out = subprocess.run(["bash", os.path.join(ROOT, "deploy", "redis", "create-users.sh"), "--queue", bad],
                             capture_output=True, text=True, timeout=30, env=dict(os.environ, OUTQ_WORKER_PASSWORD="x"))
        assert out.returncode == 2 and "queue name" in out.stderr, (bad, out.returncode, out.stderr)
