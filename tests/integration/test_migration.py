"""`outq migrate` (docs/protocol.md, "Upgrading from format 1"): a format 1 queue,
built with plain Redis commands exactly as a format 1 worker leaves it, is converted
in place; format 2 workers then send every job that was not finished exactly once,
and a format 1 worker started against the migrated queue takes nothing.

OUTQ_TEST_V1_BINARY=/path/to/outq (a format 1 build, commit 8398284) also runs the
real format 1 worker against a migrated queue; skipped when unset."""
import json
import os
import subprocess
import time

import redis

from harness import Env, job, wait_until

V1_GROUP = "outq"
FENCE = "18446744073709551615-18446744073709551615"
PAUSE_MS = 5000


def _now_ms():
    return int(time.time() * 1000)


def _ids(entries):
    return [entry_id for entry_id, _ in entries]


def build_format1_queue(env):
    """A queue as format 1 workers leave it. Returns what the tests check against."""
    r, key = env.r, env.key
    now = _now_ms()
    # Delivered to a consumer that died: two pending, one acknowledged but not deleted
    # (finished: it must not be sent again), and p-1's in-flight marker.
    p1, p2, acked = env.enqueue([job("p-1"), job("p-2"), job("acked-1")])
    r.xgroup_create(key("jobs"), V1_GROUP, id="0")
    r.xreadgroup(V1_GROUP, "ghost", {key("jobs"): ">"}, count=10)
    r.xack(key("jobs"), V1_GROUP, acked)
    r.set(key("inflight:p-1"), p1, px=30000)
    # Waiting: two new jobs, one on the paused account, and a second copy of a job that
    # finished (a duplicate enqueue: its result must keep it from being sent).
    env.enqueue([job("w-1"), job("w-2"), job("b-1", account="b"), job("done-1")])
    r.hset(key("result:done-1"), mapping={
        "id": "done-1", "status": "sent", "attempts": "1", "http_status": "200", "provider": "webhook",
        "account": "a", "enqueued_at": str(now - 5000), "completed_at": str(now - 4000), "meta": '{"order":1}'})
    r.pexpire(key("result:done-1"), 600000)
    # A dead letter and its result hash (dead_entry written first, as the format 1 script did).
    dead_job = json.dumps(job("dead-1"))
    dead_entry = r.xadd(key("dead"), {"id": "dead-1", "job": dead_job, "provider": "webhook", "account": "a",
                                      "error_class": "permanent", "error": "HTTP 400", "http_status": "400",
                                      "attempts": "1", "history": "[]", "failed_at": str(now - 3000)})
    r.hset(key("result:dead-1"), "dead_entry", dead_entry)
    r.hset(key("result:dead-1"), mapping={
        "id": "dead-1", "status": "dead", "attempts": "1", "http_status": "400", "error_class": "permanent",
        "error": "HTTP 400", "provider": "webhook", "account": "a", "enqueued_at": str(now - 3500),
        "completed_at": str(now - 3000)})
    r.pexpire(key("result:dead-1"), 600000)
    # A retry waiting in the delayed set, due now.
    token = "%d-0" % (now - 2000)
    r.hset(key("delayed:" + token), mapping={"job": json.dumps(job("d-1")), "attempts": "1", "rate_limited": "0",
                                              "enqueued_at": str(now - 2000)})
    r.zadd(key("delayed"), {token: now - 1000})
    # Account b is paused (a 429), account a has a limit window and a lease.
    r.set(key("limit:webhook:b:pause"), "429 from webhook", px=PAUSE_MS)
    r.zadd(key("limit:webhook:a:window"), {"req-1": now - 500, "req-2": now - 400})
    r.pexpire(key("limit:webhook:a:window"), 60000)
    r.zadd(key("limit:webhook:a:leases"), {"lease-1": now + 30000})
    r.pexpire(key("limit:webhook:a:leases"), 30000)
    return {"pending": [p1, p2], "acked": acked, "dead": r.xrange(key("dead")), "pause_end_ms": now + PAUSE_MS,
            "window": r.zrange(key("limit:webhook:a:window"), 0, -1, withscores=True), "built_ms": now}


def dump_all(env):
    """{key: (DUMP, has a TTL)} of every key: what a read-only command must leave as it was."""
    client = redis.Redis(host="127.0.0.1", port=env.redis.port)  # DUMP is binary
    try:
        return {k: (client.dump(k), client.pttl(k) != -1) for k in client.scan_iter(count=1000)}
    finally:
        client.close()


def migrate(env, *args, check=True):
    return env.cli("migrate", *args, check=check)


def migrate_json(env, *args):
    out = migrate(env, *args, "--json")
    return json.loads(out.stdout)


def test_migration_then_a_format2_worker_sends_every_unfinished_job_exactly_once():
    with Env() as env:
        built = build_format1_queue(env)
        refused = env.worker(name="too-early")
        assert refused.wait(15) == 1, "a format 2 worker must refuse a format 1 queue"
        assert "format 1" in refused.log() and "outq migrate" in refused.log(), refused.log_tail()

        report = migrate_json(env, "--force")  # the ghost consumer was just active
        assert report["outcome"] == "migrated" and not report["dry_run"], report
        assert report["results_converted"] == 2 and report["markers_deleted"] == 1, report
        assert report["accounts_moved"] == 2 and report["pauses_moved"] == 1 and report["windows_moved"] == 1, report
        assert report["entries_deleted"] == 1 and report["pending_delivered_again"] == 2, report
        assert report["group_created"] and report["fenced"], report
        assert env.r.get(env.key("format")) == "2"

        # The keys, as format 2 has them.
        assert env.r.exists(env.key("inflight:p-1")) == 0
        assert list(env.r.scan_iter(match=env.key("limit:*"))) == []
        pause_key = "outq:{%s@webhook/b}:pause" % env.queue
        assert env.r.get(pause_key) == "429 from webhook"
        assert 0 < env.r.pttl(pause_key) <= PAUSE_MS
        window_key = "outq:{%s@webhook/a}:window" % env.queue
        assert env.r.zrange(window_key, 0, -1, withscores=True) == built["window"]
        assert 0 < env.r.pttl(window_key) <= 60000
        assert env.r.exists("outq:{%s@webhook/a}:leases" % env.queue) == 0
        groups = {g["name"]: g for g in env.r.xinfo_groups(env.key("jobs"))}
        assert groups[V1_GROUP]["last-delivered-id"] == FENCE and groups[V1_GROUP]["pending"] == 0, groups
        assert groups["outq.v2"]["pending"] == 0, groups
        assert env.r.xrange(env.key("jobs"), built["acked"], built["acked"]) == [], "a finished entry is deleted"

        # The converted results: JSON values with their TTL, members in the order format 2 writes them.
        done = env.result_value("done-1")
        assert done == {"status": "sent", "id": "done-1", "attempts": 1, "http_status": 200, "provider": "webhook",
                        "account": "a", "enqueued_at": built["built_ms"] - 5000,
                        "completed_at": built["built_ms"] - 4000, "meta": {"order": 1}}, done
        assert list(done) == ["status", "id", "attempts", "http_status", "provider", "account", "enqueued_at",
                              "completed_at", "meta"]
        assert 590000 < env.r.pttl(env.key("result:done-1")) <= 600000
        dead = env.result_value("dead-1")
        assert dead["status"] == "dead" and dead["dead_entry"] == built["dead"][0][0], dead
        assert list(dead)[0] == "status" and list(dead)[-1] == "dead_entry", dead
        assert 590000 < env.r.pttl(env.key("result:dead-1")) <= 600000
        out = env.cli("result", "done-1")
        assert "sent" in out.stdout, out.stdout

        env.worker(name="v2")
        sent_ids = ["p-1", "p-2", "w-1", "w-2", "d-1"]
        results = env.wait_results(sent_ids, timeout=30)
        assert all(results[i]["status"] == "sent" for i in sent_ids), results
        # The pause still holds account b: its job waits for the pause's end (PTTL carried).
        counts = env.request_counts()
        if env.r.pttl(pause_key) > 0:  # (on a slow machine the pause may have ended by now)
            assert "b-1" not in counts, counts
        env.wait_results(["b-1"], timeout=30)
        b_request = [req for req in env.hook_requests("b") if req["headers"].get("idempotency-key") == "b-1"]
        assert b_request and b_request[0]["at_ms"] >= built["pause_end_ms"] - 50, (b_request, built["pause_end_ms"])

        wait_until(lambda: env.r.xlen(env.key("jobs")) == 0, 15, "the jobs stream to empty")
        counts = env.request_counts()
        assert counts == {i: 1 for i in sent_ids + ["b-1"]}, counts  # done-1 and acked-1 are not sent
        assert env.result_value("done-1") == done, "the duplicate left the result as it was"
        assert env.result("acked-1") == {}
        assert env.r.xrange(env.key("dead")) == built["dead"], "dead letters are kept as they were"


def _format1_fetch(env, consumer="v1-worker"):
    """Exactly what a format 1 worker does at start and in its loops (8398284:
    preflight, fetcher, reclaimer); returns the entries it would have taken."""
    r, jobs = env.r, env.key("jobs")
    try:
        r.xgroup_create(jobs, V1_GROUP, id="0", mkstream=True)
        created = True
    except redis.ResponseError as e:
        assert "BUSYGROUP" in str(e), e
        created = False
    taken = []
    for _, entries in r.xreadgroup(V1_GROUP, consumer, {jobs: ">"}, count=10) or []:
        taken += entries
    for _, entries in r.xreadgroup(V1_GROUP, consumer, {jobs: "0"}, count=10) or []:
        taken += entries  # its own pending entries, as at start
    _, claimed, *_ = r.xautoclaim(jobs, V1_GROUP, consumer, 0, "0-0", count=10)
    taken += claimed
    return created, taken


def test_migration_fences_format1_workers_they_read_and_claim_nothing():
    with Env() as env:
        build_format1_queue(env)
        migrate(env, "--force")
        worker = env.worker(name="v2")
        ids = ["late-%d" % n for n in range(20)]
        taken = []
        for n, job_id in enumerate(ids):  # new jobs keep coming while a format 1 worker polls
            env.enqueue([job(job_id)])
            created, got = _format1_fetch(env, "v1-%d" % (n % 3))
            assert not created, "the fenced group exists: a format 1 worker never creates it at 0"
            taken += got
        env.wait_results(ids + ["p-1", "p-2", "w-1", "w-2", "d-1"], timeout=30)
        assert taken == [], "a format 1 worker took %d entries: %s" % (len(taken), taken[:3])
        assert env.r.xpending(env.key("jobs"), V1_GROUP)["pending"] == 0
        counts = env.request_counts()
        assert all(counts[i] == 1 for i in ids), counts
        assert worker.alive()

        v1_binary = os.environ.get("OUTQ_TEST_V1_BINARY")
        if not v1_binary:
            print("skipped: the real format 1 worker (set OUTQ_TEST_V1_BINARY to a build of 8398284)", flush=True)
            return
        # The real format 1 worker against the migrated queue, beside the format 2 one.
        config_path = os.path.join(env.dir, "v1.json")
        with open(config_path, "w") as f:
            json.dump(env.config(), f)
        log_path = os.path.join(env.dir, "v1.log")
        with open(log_path, "wb") as log:
            v1 = subprocess.Popen([v1_binary, "run", "--config", config_path], stdout=log, stderr=log,
                                  stdin=subprocess.DEVNULL)
        try:
            more = ["v1-era-%d" % n for n in range(30)]
            for job_id in more:
                env.enqueue([job(job_id)])
                time.sleep(0.1)
            env.wait_results(more, timeout=30)
            time.sleep(1)
            assert v1.poll() is None, "the format 1 worker exited: %s" % open(log_path, errors="replace").read()[-2000:]
        finally:
            v1.terminate()
            v1.wait(timeout=30)
        v1_log = open(log_path, errors="replace").read()
        counts = env.request_counts()
        assert all(counts[i] == 1 for i in more), counts
        assert env.r.xpending(env.key("jobs"), V1_GROUP)["pending"] == 0
        stopped = [line for line in v1_log.splitlines() if 'msg="worker stopped"' in line]
        assert stopped and " sent=0 " in stopped[-1] + " ", v1_log[-2000:]


def test_migrate_dry_run_changes_nothing_a_second_run_is_harmless_an_active_format1_consumer_refuses():
    with Env() as env:
        build_format1_queue(env)
        before = dump_all(env)
        # The ghost consumer read just now: a format 1 worker may be running.
        out = migrate(env, check=False)
        assert out.returncode == 1 and "ghost" in out.stderr and "--force" in out.stderr, (out.returncode, out.stderr)
        assert dump_all(env) == before, "a refused migration writes nothing"
        out = migrate(env, "--dry-run", check=False)
        assert out.returncode == 1 and "ghost" in out.stderr, out.stderr

        plan = migrate_json(env, "--dry-run", "--force")
        assert plan["dry_run"] and plan["outcome"] == "would_migrate", plan
        assert (plan["results_converted"], plan["markers_deleted"], plan["accounts_moved"], plan["entries_deleted"],
                plan["pending_delivered_again"]) == (2, 1, 2, 1, 2), plan
        text = migrate(env, "--dry-run", "--force").stdout
        assert "dry run" in text and "results converted" in text, text
        assert dump_all(env) == before, "--dry-run writes nothing"

        done = migrate_json(env, "--force")
        for name in ("results_converted", "markers_deleted", "accounts_moved", "entries_deleted",
                     "pending_delivered_again"):
            assert done[name] == plan[name], (name, plan, done)
        after = dump_all(env)
        out = migrate(env)
        assert out.returncode == 0 and "already in format 2" in out.stdout, out.stdout
        assert migrate_json(env)["outcome"] == "already"
        assert dump_all(env) == after, "a second run changes nothing"

        # Resumed when the format says a run was interrupted; a fenced group's consumers
        # do not hold it up (no --force needed), and nothing is done twice.
        env.r.set(env.key("format"), "migrating")
        env.r.xreadgroup(V1_GROUP, "fenced-worker", {env.key("jobs"): ">"}, count=10)
        after = dump_all(env)
        resumed = migrate_json(env)
        assert resumed["resumed"] and not resumed["group_created"] and not resumed["fenced"], resumed
        assert (resumed["results_converted"], resumed["markers_deleted"], resumed["accounts_moved"],
                resumed["entries_deleted"], resumed["results_already_converted"]) == (0, 0, 0, 0, 2), resumed
        assert env.r.get(env.key("format")) == "2"
        assert {k: v for k, v in dump_all(env).items() if k != env.key("format").encode()} == \
            {k: v for k, v in after.items() if k != env.key("format").encode()}

        # Another format is refused; a new queue only gets its format key.
        env.r.set(env.key("format"), "3")
        out = migrate(env, check=False)
        assert out.returncode == 1 and "'3'" in out.stderr, out.stderr
    with Env(queue="fresh") as env:
        env.enqueue([job("n-1")])
        out = migrate(env)
        assert "is new" in out.stdout, out.stdout
        assert env.r.get(env.key("format")) == "2"


def test_migrate_interrupted_by_a_redis_error_is_resumed_by_running_it_again():
    with Env() as env:
        built = build_format1_queue(env)
        # A user that may not ZADD: the run stops at the accounts, after the groups, results and markers.
        env.r.execute_command("ACL", "SETUSER", "nozadd", "on", ">pw", "~*", "&*", "+@all", "-zadd")
        url = "redis://nozadd:pw@127.0.0.1:%d/0" % env.redis.port
        out = subprocess.run([os.path.join(os.environ["OUTQ_BUILD_DIR"], "worker", "outq"), "migrate", "--force",
                              "--redis", url, "--queue", env.queue], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "NOPERM" in out.stderr and "run outq migrate again" in out.stderr, out.stderr
        assert env.r.get(env.key("format")) == "migrating"
        # A copy that failed deleted nothing: the format 1 window is still there to copy.
        assert env.r.zrange(env.key("limit:webhook:a:window"), 0, -1, withscores=True) == built["window"]
        refused = env.worker(name="during")
        assert refused.wait(15) == 1 and "migrating" in refused.log(), refused.log_tail()

        report = migrate_json(env)  # the group is fenced: its ghost consumer does not hold it up
        assert report["resumed"] and report["accounts_moved"] == 2 and report["results_converted"] == 0, report
        assert report["results_already_converted"] == 2 and not report["fenced"], report
        assert env.r.get(env.key("format")) == "2"
        assert env.r.zrange("outq:{%s@webhook/a}:window" % env.queue, 0, -1, withscores=True) == built["window"]
        assert env.r.get("outq:{%s@webhook/b}:pause" % env.queue) == "429 from webhook"
        assert list(env.r.scan_iter(match=env.key("limit:*"))) == []
        env.worker(name="v2")
        ids = ["p-1", "p-2", "w-1", "w-2", "d-1", "b-1"]
        env.wait_results(ids, timeout=30)
        wait_until(lambda: env.r.xlen(env.key("jobs")) == 0, 15, "the jobs stream to empty")
        assert env.request_counts() == {i: 1 for i in ids}
