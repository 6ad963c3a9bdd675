"""The backbone end to end: plain XADD producers, real redis-server, real
worker processes, the sandbox as provider."""
import json
import signal
import subprocess
import time

from harness import OUTQ, Env, job, wait_until


def test_thousand_plain_xadd_jobs_all_end_sent_once():
    with Env() as env:
        ids = ["j%04d" % i for i in range(1000)]
        env.enqueue(job(i, text="message %s" % i) for i in ids)
        env.worker()
        results = env.wait_results(ids, timeout=120)
        assert all(r["status"] == "sent" for r in results.values()), [r for r in results.values() if r["status"] != "sent"][:3]
        assert all(r["provider_message_id"].startswith("wh-") for r in results.values())
        keys = [r["headers"]["idempotency-key"] for r in env.hook_requests()]
        assert sorted(keys) == ids, "each job sent exactly once with its id as Idempotency-Key"
        events = env.r.xlen(env.key("results"))
        assert events == 1000, events
        assert env.r.xlen(env.key("jobs")) == 0  # acked and deleted


def test_provider_500_then_200_is_a_retried_success():
    with Env() as env:
        env.enqueue([job("flaky", text="x", sandbox={"status": 500, "times": 1})])
        env.worker()
        r = env.wait_results(["flaky"])["flaky"]
        assert r["status"] == "sent" and r["attempts"] == "2", r
        assert [q["headers"]["x-outq-attempt"] for q in env.hook_requests()] == ["1", "2"]


def test_permanent_400_is_a_dead_letter_with_the_providers_words():
    with Env() as env:
        env.enqueue([job("rejected", sandbox={"status": 400, "body": "{\"error\":\"bad field x\"}"},
                         **{"text": "x"}) | {"meta": {"order": 7}}])
        env.worker()
        r = env.wait_results(["rejected"])["rejected"]
        assert r["status"] == "dead" and r["error_class"] == "permanent", r
        assert "bad field x" in r["response"] and r["http_status"] == "400", r
        assert json.loads(r["meta"]) == {"order": 7}
        [dead] = env.dead_letters()
        assert dead["error_class"] == "permanent" and "bad field x" in dead["response"], dead
        assert json.loads(dead["job"])["id"] == "rejected"  # the original job, as enqueued
        assert r["dead_entry"] == dead["entry_id"]
        assert len(env.hook_requests()) == 1


def test_retries_exhausted_keep_the_attempt_history():
    with Env() as env:
        env.enqueue([job("down", text="x", sandbox={"status": 503})])
        env.worker()
        r = env.wait_results(["down"])["down"]
        assert r["status"] == "dead" and r["error_class"] == "attempts_exhausted", r
        [dead] = env.dead_letters()
        history = json.loads(dead["history"])
        assert [h["status"] for h in history] == [503, 503, 503], history
        assert len(env.hook_requests()) == 3


def test_malformed_jobs_become_validation_dead_letters_and_the_worker_goes_on():
    with Env() as env:
        env.enqueue(["this is not json",
                     {"v": 1, "id": "no-provider", "account": "a", "message": {}},
                     {"v": 1, "id": "unknown-provider", "provider": "fax", "account": "a", "message": {}},
                     {"v": 1, "id": "unknown-account", "provider": "webhook", "account": "zz", "message": {}},
                     {"v": 1, "id": "bad-message", "provider": "webhook", "account": "a", "message": "hi"},
                     {"v": 1, "id": "bad-time", "provider": "webhook", "account": "a", "message": {},
                      "not_before": "tomorrow"}])
        env.r.xadd(env.key("jobs"), {"payload": "no job field"})
        env.worker()
        wait_until(lambda: env.r.xlen(env.key("dead")) == 7, 30, "7 dead letters")
        env.enqueue([job("valid-after")])
        assert env.wait_results(["valid-after"])["valid-after"]["status"] == "sent"
        errors = {d["id"]: d for d in env.dead_letters()}
        assert all(d["error_class"] == "validation" for d in errors.values())
        assert "provider" in errors["no-provider"]["error"]
        assert "provider" in errors["unknown-provider"]["error"] and "fax" in errors["unknown-provider"]["error"]
        assert "account" in errors["unknown-account"]["error"]
        assert "message" in errors["bad-message"]["error"]
        assert "not_before" in errors["bad-time"]["error"]
        assert any("invalid JSON" in d["error"] for d in errors.values())
        assert any("no 'job' field" in d["error"] for d in errors.values())
        assert [q["headers"]["idempotency-key"] for q in env.hook_requests()] == ["valid-after"]


def test_duplicate_enqueue_is_sent_once():
    with Env() as env:
        env.worker()
        env.enqueue([job("twice")])
        env.wait_results(["twice"])
        env.enqueue([job("twice")])
        wait_until(lambda: env.r.xlen(env.key("jobs")) == 0 and not env.r.xpending(env.key("jobs"), "outq")["pending"],
                   30, "the duplicate to be acknowledged")
        assert len(env.hook_requests()) == 1


def test_expires_at_and_not_before():
    with Env() as env:
        now_ms = int(time.time() * 1000)
        env.enqueue([job("expired") | {"expires_at": now_ms - 1000},
                     job("later") | {"not_before": now_ms + 1500}])
        env.worker()
        results = env.wait_results(["expired", "later"])
        assert results["expired"]["status"] == "dead" and results["expired"]["error_class"] == "expired"
        assert results["later"]["status"] == "sent"
        [request] = env.hook_requests()
        assert request["headers"]["idempotency-key"] == "later"
        assert request["at_ms"] >= now_ms + 1500, request["at_ms"] - now_ms


def test_kill9_mid_batch_then_another_worker_finishes_everything():
    with Env() as env:
        ids = ["k%03d" % i for i in range(300)]
        env.enqueue(job(i, text="slow", sandbox={"delay_ms": 200}) for i in ids)
        config = env.config(visibility_timeout_ms=2000)
        first = env.worker(config, name="first")
        wait_until(lambda: len(env.hook_requests()) >= 64, 30, "the first worker to be mid-batch")
        first.kill9()
        pending = env.r.xpending(env.key("jobs"), "outq")["pending"]
        assert pending > 0, "the killed worker left jobs pending"
        env.worker(config, name="second")
        results = env.wait_results(ids, timeout=120)
        assert all(r["status"] == "sent" for r in results.values())
        assert env.r.xpending(env.key("jobs"), "outq")["pending"] == 0
        assert "reclaimed" in env.workers[1].log()


def test_redis_restart_under_the_worker():
    with Env(persistent=True) as env:
        ids = ["r%03d" % i for i in range(200)]
        env.enqueue(job(i, text="x", sandbox={"delay_ms": 20}) for i in ids[:100])
        w = env.worker()
        wait_until(lambda: len(env.hook_requests()) >= 20, 30, "jobs to flow")
        env.redis.stop()  # SIGTERM: Redis flushes the AOF and exits
        time.sleep(1.0)
        env.redis.start()
        env.r = env.redis.client()
        env.enqueue(job(i, text="x") for i in ids[100:])
        results = env.wait_results(ids, timeout=120)
        assert all(r["status"] == "sent" for r in results.values())
        assert w.proc.poll() is None, "the worker survived the restart"


def test_redis_restart_without_data_recreates_the_group():
    with Env(persistent=False) as env:
        w = env.worker()
        env.enqueue([job("before")])
        env.wait_results(["before"])
        env.redis.stop()
        time.sleep(0.5)
        env.redis.start()
        env.r = env.redis.client()
        env.enqueue([job("after")])
        assert env.wait_results(["after"], timeout=60)["after"]["status"] == "sent"
        assert w.proc.poll() is None
        assert "recreating" in w.log() or "created consumer group" in w.log()


def test_dead_replay_sends_again_and_links_the_dead_letter():
    with Env() as env:
        env.enqueue([job("replay-me", text="x", sandbox={"status": 400, "times": 1})])
        env.worker()
        assert env.wait_results(["replay-me"])["replay-me"]["status"] == "dead"
        [dead] = env.dead_letters()
        dry = json.loads(env.cli("dead", "replay", "replay-me", "--dry-run", "--json").stdout)
        assert dry["dry_run"] is True and [d["dead_entry"] for d in dry["replayed"]] == [dead["entry_id"]]
        assert env.result("replay-me")["status"] == "dead", "a dry run changes nothing"
        out = json.loads(env.cli("dead", "replay", "replay-me", "--json").stdout)
        assert [d["dead_entry"] for d in out["replayed"]] == [dead["entry_id"]]
        r = wait_until(lambda: env.result("replay-me").get("status") == "sent" and env.result("replay-me"), 30,
                       "the replayed job to be sent")
        assert r["replay_of"] == dead["entry_id"], r
        assert env.r.hget(env.key("replayed"), dead["entry_id"]) == out["replayed"][0]["job_entry"]
        again = env.cli("dead", "replay", "replay-me", check=False)
        assert again.returncode != 0 and "already replayed" in again.stderr


def test_sigterm_drains_in_flight_jobs_and_exits_zero():
    with Env() as env:
        ids = ["d%02d" % i for i in range(20)]
        env.enqueue(job(i, text="slow", sandbox={"delay_ms": 800}) for i in ids)
        w = env.worker(env.config(shutdown_grace_ms=5000))
        wait_until(lambda: len(env.hook_requests()) >= 20, 30, "all jobs in flight")
        w.signal(signal.SIGTERM)
        assert w.wait(timeout=15) == 0
        results = {i: env.result(i) for i in ids}
        assert all(r.get("status") == "sent" for r in results.values()), results
        assert env.r.xpending(env.key("jobs"), "outq")["pending"] == 0


def test_rediss_tls_connection():
    with Env(tls=True) as env:
        env.enqueue([job("over-tls")])
        env.worker()
        assert env.wait_results(["over-tls"])["over-tls"]["status"] == "sent"


def test_config_error_names_the_key():
    with Env() as env:
        config = env.config()
        config["concurency"] = 5
        w = env.worker(config)
        assert w.wait(timeout=15) != 0
        assert "concurency" in w.log()


def test_cli_stats_result_and_dead_list():
    with Env() as env:
        env.enqueue([job("ok1"), job("bad1", sandbox={"status": 422})])
        env.worker()
        env.wait_results(["ok1", "bad1"])
        stats = json.loads(env.cli("stats", "--json").stdout)
        assert stats["dead"] == 1 and stats["pending"] == 0 and stats["queue"] == "t", stats
        result = json.loads(env.cli("result", "ok1", "--json").stdout)
        assert result["status"] == "sent" and result["attempts"] == 1
        missing = env.cli("result", "nope", check=False)
        assert missing.returncode == 1 and "no result" in missing.stderr
        dead = json.loads(env.cli("dead", "list", "--json").stdout)
        assert [d["id"] for d in dead] == ["bad1"]
        shown = json.loads(env.cli("dead", "show", "bad1", "--json").stdout)
        assert shown["error_class"] == "permanent" and shown["http_status"] == 422
        human = env.cli("dead", "list").stdout
        assert "bad1" in human and "permanent" in human


def test_cli_enqueue_validates_before_writing():
    with Env() as env:
        good = json.dumps(job("cli-1"))
        bad = json.dumps({"v": 1, "id": "cli-2", "provider": "webhook", "message": {}})
        out = subprocess.run([OUTQ, "enqueue", "-", "--redis", env.redis.url, "--queue", env.queue],
                             input=good + "\n" + bad + "\n", capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and "job.account" in out.stderr, out.stderr
        assert env.r.xlen(env.key("jobs")) == 0, "nothing enqueued when any job is bad"
        env.cli("enqueue", "-", check=False)
        out = subprocess.run([OUTQ, "enqueue", "-", "--redis", env.redis.url, "--queue", env.queue, "--json"],
                             input=good + "\n", capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and json.loads(out.stdout)["enqueued"] == 1
