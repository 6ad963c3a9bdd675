"""The backbone end to end: plain XADD producers, real redis-server, real
worker processes, the sandbox as provider."""
import json
import os
import socket
import sys
import subprocess
import threading
import time

import redis

import harness
from harness import GROUP, OUTQ, Env, job, wait_until
from hostile_http_server import HostileHTTPServer


def _settled(sample, quiet_s=0.3, timeout=10):
    """The value of sample() once it has stayed the same for quiet_s."""
    value, since = sample(), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, "the value never settled"
        time.sleep(0.05)
        now = sample()
        if now != value:
            value, since = now, time.monotonic()
    return value


def test_thousand_plain_xadd_jobs_all_end_sent_once():
    with Env() as env:
        ids = ["j%04d" % i for i in range(1000)]
        env.enqueue(job(i, text="message %s" % i) for i in ids)
        env.worker()
        results = env.wait_results(ids, timeout=120)
        assert all(r["status"] == "sent" for r in results.values()), [r for r in results.values() if r["status"] != "sent"][:3]
        assert all(r["provider_message_id"].startswith("wh-") for r in results.values())
        requests = env.hook_requests()
        keys = [r["headers"]["idempotency-key"] for r in requests]
        assert sorted(keys) == ids, "each job sent exactly once with its id as Idempotency-Key"
        for r in requests:  # the body is the job's message, under the right key
            assert json.loads(r["body"]) == {"text": "message %s" % r["headers"]["idempotency-key"]}, r
            assert r["headers"]["content-type"].startswith("application/json") and r["method"] == "POST", r
            assert r["headers"]["x-outq-attempt"] == "1", r
        assert len({r["provider_message_id"] for r in results.values()}) == 1000
        events = env.r.xlen(env.key("results"))
        assert events == 1000, events
        # Acknowledged and deleted, a moment after their results (writer.hpp).
        wait_until(lambda: env.r.xlen(env.key("jobs")) == 0, 5, "every entry acknowledged and deleted")


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


def test_a_reset_of_a_reused_connection_is_an_ambiguous_attempt_in_the_history_not_a_silent_resend():
    # The server reads every request after a connection's first one whole,
    # then resets the connection: the provider may have acted on it.
    with Env() as env, HostileHTTPServer() as hostile:
        config = env.config()
        config["providers"]["webhook"]["accounts"]["a"]["url"] = "http://127.0.0.1:%d/reset-reused" % hostile.port
        env.worker(config)
        env.enqueue([job("first")])
        assert env.wait_results(["first"])["first"]["attempts"] == "1"
        # On the kept connection: reset, an ambiguous attempt; the retry goes out on
        # a fresh connection and is answered.
        env.enqueue([job("second")])
        second = env.wait_results(["second"])["second"]
        assert second["status"] == "sent" and second["attempts"] == "2", second
        # On the connection the retry left: reset again, and with one attempt allowed
        # the dead letter shows it, as ambiguous, with the reused connection named.
        env.enqueue([dict(job("third"), max_attempts=1)])
        third = env.wait_results(["third"])["third"]
        assert third["status"] == "dead" and third["attempts"] == "1", third
        [dead] = env.dead_letters()
        [attempt] = json.loads(dead["history"])
        assert attempt["class"] == "ambiguous", attempt
        assert "closed_after_send" in attempt["error"] and "keep-alive connection idle" in attempt["error"], attempt
        assert hostile.requests == 4, "the server saw %d requests for 4 attempts" % hostile.requests


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


def test_a_job_longer_than_max_job_bytes_is_a_validation_dead_letter_kept_byte_for_byte():
    with Env() as env:
        big = json.dumps({"v": 1, "id": "too-big", "provider": "webhook", "account": "a",
                          "message": {"text": "x" * 5000}}, separators=(",", ":"))
        env.enqueue([big, job("small", text="y" * 3000)])
        env.worker(env.config(max_job_bytes=4096))
        r = env.wait_results(["too-big", "small"])
        assert r["small"]["status"] == "sent", r["small"]
        assert r["too-big"]["status"] == "dead" and r["too-big"]["error_class"] == "validation", r["too-big"]
        [dead] = env.dead_letters()
        assert dead["id"] == "too-big" and dead["provider"] == "webhook" and dead["account"] == "a", dead
        assert dead["error"] == "job: %d bytes, more than max_job_bytes (4096)" % len(big), dead["error"]
        assert dead["job"] == big  # kept as it came, for a replay once the limit is raised
        assert [q["headers"]["idempotency-key"] for q in env.hook_requests()] == ["small"]


def _peak_rss_mib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmHWM for %d" % pid)


def test_a_batch_of_50_mib_jobs_stays_in_redis_each_a_dead_letter_and_the_worker_stays_small():
    """Eight jobs of 50 MiB among small ones, fetch_batch 64: without the reply limit one read would
    bring 400 MiB into the worker. Each big job becomes a validation dead letter that keeps its job
    byte for byte, written in Redis; the small ones are sent; the worker's peak RSS stays small."""
    with Env() as env:
        big = [json.dumps({"v": 1, "id": "big%d" % i, "provider": "webhook", "account": "a",
                           "message": {"text": chr(ord("a") + i) * (50 << 20)}}, separators=(",", ":"))
               for i in range(8)]
        small = [job("small%02d" % i, text="s" * (200 << 10)) for i in range(40)]  # 200 KiB each
        env.enqueue(small[:20] + big + small[20:])
        w = env.worker(env.config(fetch_batch=64, max_job_bytes=1 << 20))
        r = env.wait_results(["big%d" % i for i in range(8)] + [j["id"] for j in small], timeout=60)
        assert all(r[j["id"]]["status"] == "sent" for j in small), r
        for i in range(8):
            assert r["big%d" % i]["status"] == "dead" and r["big%d" % i]["error_class"] == "validation", r["big%d" % i]
        peak = _peak_rss_mib(w.proc.pid)
        letters = {l["id"]: (entry, l) for entry, l in env.r.xrange(env.key("dead"))}
        assert sorted(letters) == ["big%d" % i for i in range(8)], sorted(letters)
        for i in range(8):
            entry, letter = letters["big%d" % i]
            assert letter["error"] == "job: %d bytes, more than max_job_bytes (1048576)" % len(big[i]), letter["error"]
            assert letter["provider"] == "webhook" and letter["account"] == "a", letter
            assert letter["job"] == big[i]  # byte for byte: it never left Redis
        assert env.r.xlen(env.key("jobs")) == 0 and env.r.xpending(env.key("jobs"), GROUP)["pending"] == 0
        print("peak RSS %.1f MiB" % peak)
        assert peak < 100 or harness.SANITIZED, "peak RSS %.0f MiB: a read brought the big jobs into the worker" % peak
        warned = [x for x in w.log_records() if x.get("msg") == "a read was too large to take; its jobs are sized in Redis"]
        assert warned, "the worker did not say it met a read too large"


def test_a_job_of_100000_fields_and_an_entry_of_100000_fields_are_taken_without_trouble():
    with Env() as env:
        wide = json.dumps({"v": 1, "id": "wide", "provider": "webhook", "account": "a",
                           "message": {"text": "hi", "extra": {"f%d" % i: i for i in range(100000)}}})
        env.r.xadd(env.key("jobs"), {"job": wide})
        fields = {"job": json.dumps(job("many-fields"))}
        fields.update({"x%d" % i: "y" for i in range(100000)})
        env.r.xadd(env.key("jobs"), fields)
        env.enqueue([job("after")])
        w = env.worker(env.config(max_job_bytes=4 << 20))
        r = env.wait_results(["wide", "many-fields", "after"], timeout=60)
        assert r["after"]["status"] == "sent" and r["many-fields"]["status"] == "sent", r
        assert r["wide"]["status"] in ("sent", "dead"), r["wide"]  # the provider's to refuse; never a crash
        assert w.alive()


def test_control_characters_in_the_id_and_non_utf8_text_are_validation_dead_letters_never_sent():
    """A job id goes out as the Idempotency-Key header: a control character in it
    (RFC 9110 5.5) is refused at intake, and so is a message string that is not
    UTF-8 (it would be forwarded as an invalid JSON body). Neither reaches the
    provider; the jobs after them are sent."""
    with Env() as env:
        raw = redis.Redis(host="127.0.0.1", port=env.redis.port, socket_timeout=30)  # bytes, not str
        try:
            bodies = [b'{"v":1,"id":"vt\\u000bid","provider":"webhook","account":"a","message":{"text":"x"}}',
                      b'{"v":1,"id":"soh\\u0001id","provider":"webhook","account":"a","message":{"text":"x"}}',
                      b'{"v":1,"id":"del\x7fid","provider":"webhook","account":"a","message":{"text":"x"}}',
                      b'{"v":1,"id":"latin1","provider":"webhook","account":"a","message":{"text":"caf\xe9"}}']
            entry_ids = [raw.xadd(env.key("jobs"), {"job": body}).decode() for body in bodies]
            env.enqueue([job("valid-after")])
            env.worker()
            assert env.wait_results(["valid-after"])["valid-after"]["status"] == "sent"
            wait_until(lambda: raw.xlen(env.key("dead")) == 4, 30, "4 dead letters")
            dead = {fields[b"id"].decode(): fields for _, fields in raw.xrange(env.key("dead"))}
        finally:
            raw.close()
        assert all(d[b"error_class"] == b"validation" for d in dead.values()), dead
        # The id cannot be used: the dead letter is under the stream entry id, naming the character.
        for entry_id, code in zip(entry_ids[:3], ("0x0B", "0x01", "0x7F")):
            error = dead[entry_id][b"error"].decode()
            assert error.startswith("job.id: control character %s" % code) and "RFC 9110" in error, error
        error = dead["latin1"][b"error"].decode()
        assert error.startswith("job.message.text: not valid UTF-8"), error
        result = env.result("latin1")
        assert result["status"] == "dead" and result["error_class"] == "validation", result
        assert [q["headers"].get("idempotency-key") for q in env.hook_requests()] == ["valid-after"]


def test_duplicate_enqueue_is_sent_once():
    with Env() as env:
        env.worker()
        env.enqueue([job("twice")])
        env.wait_results(["twice"])
        env.enqueue([job("twice")])
        wait_until(lambda: env.r.xlen(env.key("jobs")) == 0 and not env.r.xpending(env.key("jobs"), GROUP)["pending"],
                   30, "the duplicate to be acknowledged")
        assert len(env.hook_requests()) == 1
        # The results stream: the outcome, then the copy as a duplicate pointing at it.
        events = [fields for _, fields in env.r.xrange(env.key("results")) if fields.get("id") == "twice"]
        assert [e["status"] for e in events] == ["sent", "duplicate"], events
        assert events[1]["existing"] == "sent" and events[1]["entry"], events
        assert env.result("twice")["status"] == "sent"


def test_a_cancelled_job_is_skipped_and_a_job_with_a_value_cannot_be_cancelled():
    """outq cancel writes a cancelled result (and event) for a job no worker took yet; the
    worker that later takes the job acknowledges it without any request. A job that has
    ended (or that a worker holds) is refused, exit 1, its value unchanged."""
    with Env() as env:
        out = env.cli("cancel", "gone", "--reason", "customer withdrew", "--json")
        assert json.loads(out.stdout) == {"cancelled": True, "id": "gone", "reason": "customer withdrew"}, out.stdout
        env.enqueue([job("gone"), job("kept")])
        env.worker()
        env.wait_results(["kept"])
        wait_until(lambda: env.r.xlen(env.key("jobs")) == 0 and not env.r.xpending(env.key("jobs"), GROUP)["pending"],
                   30, "the cancelled copy to be acknowledged")
        assert [r["headers"]["idempotency-key"] for r in env.hook_requests()] == ["kept"]
        cancelled = env.result_value("gone")
        assert cancelled["status"] == "cancelled" and cancelled["reason"] == "customer withdrew", cancelled
        assert 0 < env.r.ttl(env.key("result:gone")) <= 7 * 24 * 3600
        events = [f for _, f in env.r.xrange(env.key("results")) if f.get("id") == "gone"]
        assert [e["status"] for e in events] == ["cancelled"], events  # the skipped copy adds none
        refused = env.cli("cancel", "kept", check=False)
        assert refused.returncode == 1 and "its status is sent" in refused.stderr, refused.stderr
        assert env.result("kept")["status"] == "sent"


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
        first = env.worker(config | {"consumer": "first"}, name="first")
        wait_until(lambda: len(env.hook_requests()) >= 64, 30, "the first worker to be mid-batch")
        first.kill9()
        pending = env.r.xpending(env.key("jobs"), GROUP)["pending"]
        assert pending > 0, "the killed worker left jobs pending"
        # Requests the dead worker had written may still be on their way into the
        # sandbox: the set of keys it sent is complete once the count stops moving.
        sent_by_first = _settled(lambda: {r["headers"]["idempotency-key"] for r in env.hook_requests()})
        finished_by_first = {i for i in ids if env.has_outcome(i)}
        env.worker(config | {"consumer": "second"}, name="second")
        results = env.wait_results(ids, timeout=120)
        assert all(r["status"] == "sent" for r in results.values())
        # Sent entries are acknowledged a moment after their results (writer.hpp).
        wait_until(lambda: env.r.xpending(env.key("jobs"), GROUP)["pending"] == 0, 5, "every entry acknowledged")
        counts = {}
        for r in env.hook_requests():
            counts[r["headers"]["idempotency-key"]] = counts.get(r["headers"]["idempotency-key"], 0) + 1
        assert sorted(counts) == ids, "every job reached the provider"
        twice = {k for k, n in counts.items() if n > 1}
        # Duplicates only where the unavoidable window allows them: sent by the killed
        # worker, outcome not committed. Nothing sent three times, nothing finished resent.
        assert twice <= sent_by_first - finished_by_first, sorted(twice - (sent_by_first - finished_by_first))[:5]
        assert max(counts.values()) <= 2, max(counts.items(), key=lambda kv: kv[1])
        assert "reclaimed" in env.workers[1].log()


def test_redis_restart_under_the_worker():
    with Env(persistent=True) as env:
        ids = ["r%03d" % i for i in range(300)]
        # 200 jobs of 300 ms at concurrency 64: about a second of traffic, cut by the restart.
        env.enqueue(job(i, text="x", sandbox={"delay_ms": 300}) for i in ids[:200])
        w = env.worker()
        wait_until(lambda: len(env.hook_requests()) >= 20, 30, "jobs to flow")
        done_before = sum(env.has_outcome(i) for i in ids[:200])
        assert done_before < 200, "the restart happens while jobs are flowing"
        env.restart_redis(down_s=1.0)  # SHUTDOWN (AOF flushed), 1 s outage, same port
        env.enqueue(job(i, text="x") for i in ids[200:])
        results = env.wait_results(ids, timeout=120)
        assert all(r["status"] == "sent" for r in results.values())
        assert w.alive(), "the worker survived the restart"
        keys = [q["headers"]["idempotency-key"] for q in env.hook_requests()]
        assert set(keys) == set(ids)
        # A 1 s outage is far shorter than the visibility timeout (10 s): nothing is sent twice.
        twice = sorted({k for k in keys if keys.count(k) > 1})
        assert not twice, "%d jobs sent twice across a 1 s Redis restart, e.g. %s" % (len(twice), twice[:5])


def test_redis_loading_its_data_after_a_restart_is_waited_out():
    """A restarted Redis with a large AOF answers -LOADING for a while: outcomes that
    finish meanwhile must be kept and committed once it has loaded. The restart is far
    shorter than the visibility timeout, so nothing may be sent twice."""
    with Env(persistent=True) as env:
        w = env.worker(env.config(visibility_timeout_ms=20000))
        warm = ["w%04d" % i for i in range(2000)]  # about 14,000 commands in the AOF
        env.enqueue(job(i) for i in warm)
        env.wait_results(warm, timeout=120)
        slow = ["s%02d" % i for i in range(40)]
        env.enqueue(job(i, text="x", sandbox={"delay_ms": 1500}) for i in slow)
        wait_until(lambda: len(env.hook_requests()) >= len(warm) + len(slow), 30, "the slow jobs to be in flight")
        # key-load-delay (µs per loaded command; a Redis test knob) stretches loading to
        # about 3 s. Redis serves clients every 1024 commands meanwhile, answering -LOADING,
        # so the slow jobs' outcomes (due 1.5 s after sending) meet a loading Redis.
        t0 = time.monotonic()
        env.restart_redis(down_s=0.2, extra_args=["--key-load-delay", "200"])
        loading_s = time.monotonic() - t0
        results = env.wait_results(slow, timeout=60)
        assert all(r["status"] == "sent" for r in results.values()), results
        counts = {}
        for q in env.hook_requests():
            counts[q["headers"]["idempotency-key"]] = counts.get(q["headers"]["idempotency-key"], 0) + 1
        twice = sorted(k for k, n in counts.items() if n > 1)
        assert not twice, ("%d jobs sent twice after a %.1f s Redis restart (visibility timeout 20 s), e.g. %s"
                           % (len(twice), loading_s, twice[:5]))
        assert w.alive()


def test_redis_restart_without_data_recreates_the_group():
    with Env(persistent=False) as env:
        w = env.worker()
        env.enqueue([job("before")])
        env.wait_results(["before"])
        env.restart_redis(down_s=0.5)  # no persistence: the stream and its group are gone
        assert not env.r.exists(env.key("jobs"))
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
        stream_before = env.r.xinfo_stream(env.key("jobs"))["last-generated-id"]
        dry = env.cli_json("dead", "replay", "replay-me", "--dry-run")
        assert dry["dry_run"] is True and [d["dead_entry"] for d in dry["replayed"]] == [dead["entry_id"]]
        # A dry run changes nothing: no new job, the result and the dead letter as they were.
        assert env.result("replay-me")["status"] == "dead", "a dry run changes nothing"
        assert env.r.xinfo_stream(env.key("jobs"))["last-generated-id"] == stream_before
        assert not env.r.exists(env.key("replayed")) and env.r.xlen(env.key("dead")) == 1
        time.sleep(0.3)  # a replay would be sent by now; nothing may be
        assert len(env.hook_requests()) == 1
        out = env.cli_json("dead", "replay", "replay-me")
        assert out["dry_run"] is False and [d["dead_entry"] for d in out["replayed"]] == [dead["entry_id"]], out
        assert out["replayed"][0]["id"] == "replay-me", out
        r = wait_until(lambda: env.result("replay-me").get("status") == "sent" and env.result("replay-me"), 30,
                       "the replayed job to be sent")
        assert r["replay_of"] == dead["entry_id"], r
        assert [q["headers"]["idempotency-key"] for q in env.hook_requests()] == ["replay-me", "replay-me"]
        assert env.r.xlen(env.key("dead")) == 1, "the dead letter itself stays"
        assert env.r.hget(env.key("replayed"), dead["entry_id"]) == out["replayed"][0]["job_entry"]
        again = env.cli("dead", "replay", "replay-me", check=False)
        assert again.returncode != 0 and "already replayed" in again.stderr


def test_sigterm_drains_in_flight_jobs_and_exits_zero():
    with Env() as env:
        ids = ["d%02d" % i for i in range(20)]
        env.enqueue(job(i, text="slow", sandbox={"delay_ms": 800}) for i in ids)
        w = env.worker(env.config(shutdown_grace_ms=5000))
        wait_until(lambda: len(env.hook_requests()) >= 20, 30, "all jobs in flight")
        signalled_ms = int(time.time() * 1000)
        w.sigterm()
        # The sandbox answers 800 ms after a request arrived: these were unanswered at SIGTERM.
        in_flight = [q for q in env.hook_requests() if q["at_ms"] + 800 > signalled_ms]
        assert in_flight, "no job was in flight at SIGTERM (the machine stalled?)"
        assert w.wait(timeout=15) == 0, w.log_tail()
        results = {i: env.result(i) for i in ids}
        assert all(r.get("status") == "sent" for r in results.values()), results
        assert env.r.xpending(env.key("jobs"), GROUP)["pending"] == 0
        assert len(env.hook_requests()) == 20, "each sent once"


def test_rediss_tls_connection():
    with Env(tls=True) as env:
        assert env.config()["redis"]["url"].startswith("rediss://")
        ids = ["tls%02d" % i for i in range(20)]
        env.enqueue(job(i) for i in ids)
        env.worker()
        results = env.wait_results(ids)
        assert all(r["status"] == "sent" for r in results.values()), results
        assert len(env.hook_requests()) == 20


def test_config_error_names_the_key():
    with Env() as env:
        config = env.config()
        config["concurency"] = 5
        w = env.worker(config, start=False)
        out = subprocess.run([OUTQ, "run", "--config", w.config_path], capture_output=True, text=True, timeout=30)
        assert out.returncode != 0, (out.returncode, out.stdout, out.stderr)
        assert "concurency" in out.stderr, out.stderr
        assert not env.r.exists(env.key("jobs")), "nothing touched in Redis"


def test_cli_stats_result_and_dead_list():
    with Env() as env:
        env.enqueue([job("ok1"), job("bad1", sandbox={"status": 422})])
        env.worker()
        env.wait_results(["ok1", "bad1"])
        wait_until(lambda: env.r.xpending(env.key("jobs"), GROUP)["pending"] == 0, 5, "ok1 acknowledged")
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


class _WrongClusterNode:
    """A Redis Cluster node that serves none of the queue's slots: it answers MOVED
    to every keyed command, and SCAN with its own keys (none)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = "redis://127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn):
        with conn, conn.makefile("rb") as f:
            while True:
                header = f.readline()  # *<n>, then n bulk strings
                if not header:
                    return
                args = []
                for _ in range(int(header[1:])):
                    size = int(f.readline()[1:])
                    args.append(f.read(size + 2)[:-2])
                if args[0].upper() == b"SCAN":
                    conn.sendall(b"*2\r\n$1\r\n0\r\n*0\r\n")
                else:
                    conn.sendall(b"-MOVED 3999 127.0.0.1:7001\r\n")

    def close(self):
        self.sock.close()


def test_cli_reports_redis_errors_instead_of_zeros():
    node = _WrongClusterNode()
    try:
        environment = {k: v for k, v in os.environ.items() if k != "OUTQ_REDIS_URL"}
        for command in (["stats"], ["stats", "--json"], ["result", "x"], ["dead", "list"]):
            out = subprocess.run([OUTQ] + command + ["--redis", node.url, "--queue", "t"], capture_output=True,
                                 text=True, timeout=30, env=environment)
            assert out.returncode == 1, (command, out.returncode, out.stdout)
            assert "MOVED 3999 127.0.0.1:7001" in out.stderr and out.stdout == "", (command, out.stdout, out.stderr)
    finally:
        node.close()
    with Env() as env:
        env.r.set(env.key("delayed"), "not a sorted set")
        env.r.hset(env.key("result:x"), "status", "sent")  # a format 1 result: not a string
        for command in (["stats"], ["result", "x"]):
            out = env.cli(*command, check=False)
            assert out.returncode == 1 and "WRONGTYPE" in out.stderr, (command, out.returncode, out.stdout, out.stderr)


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


def test_a_job_taken_over_too_often_becomes_a_dead_letter_without_being_sent():
    """A job whose every holder died (a poison message) must not loop through the fleet."""
    with Env() as env:
        env.r.xgroup_create(env.key("jobs"), GROUP, id="0", mkstream=True)
        poison_entry, tired_entry = env.enqueue([job("poison"), job("tired")])
        # A consumer that takes both and "dies"; the poison one is then taken over by
        # three more dying holders (each XCLAIM counts a delivery).
        env.r.xreadgroup(GROUP, "ghost", {env.key("jobs"): ">"}, count=10)
        for n in range(3):
            env.r.xclaim(env.key("jobs"), GROUP, "ghost%d" % n, 0, [poison_entry])
        env.worker(env.config(visibility_timeout_ms=500, max_deliveries=3))
        results = env.wait_results(["poison", "tired"], timeout=30)
        poison = results["poison"]
        assert poison["status"] == "dead" and poison["error_class"] == "attempts_exhausted", poison
        assert "taken over 4 times without an outcome" in poison["error"], poison["error"]
        assert results["tired"]["status"] == "sent", results["tired"]
        keys = [r["headers"].get("idempotency-key") for r in env.hook_requests()]
        assert keys == ["tired"], keys
        dead = env.dead_letters()
        assert len(dead) == 1 and json.loads(dead[0]["job"])["id"] == "poison", dead
        wait_until(lambda: env.r.xpending(env.key("jobs"), GROUP)["pending"] == 0, 5, "every entry acknowledged")
        assert "poison job" in env.workers[0].log()


def test_worker_sends_over_https_to_a_provider_with_a_test_ca_certificate():
    """End to end over TLS: the sandbox serves HTTPS with a certificate of a CA made
    for this test; the account trusts that CA; keep-alive holds across jobs."""
    with Env(https_sandbox=True) as env:
        assert env.sandbox.url.startswith("https://")
        ids = ["tls%03d" % i for i in range(200)]
        env.enqueue(job(i) for i in ids)
        env.enqueue([job("tls-retry", text="x", sandbox={"status": 503, "times": 1})])
        env.worker(env.config(concurrency=8))
        results = env.wait_results(ids + ["tls-retry"], timeout=60)
        assert all(r["status"] == "sent" for r in results.values())
        assert results["tls-retry"]["attempts"] == "2", results["tls-retry"]
        assert len(env.hook_requests()) == 202
        # Without the CA the same account is refused at the handshake: a dead letter
        # after the retries, with the certificate error in plain words, nothing sent.
        config = env.config()
        del config["providers"]["webhook"]["accounts"]["a"]["tls"]
        env.workers[0].stop()
        env.enqueue([job("untrusted")])
        env.worker(config, name="no-ca")
        r = env.wait_results(["untrusted"], timeout=60)["untrusted"]
        assert r["status"] == "dead", r
        assert "certificate" in r["error"].lower(), r["error"]
        assert len(env.hook_requests()) == 202


def test_a_job_without_id_keeps_its_first_entry_id_through_retries_and_delays():
    with Env() as env:
        [entry] = env.enqueue([{"v": 1, "provider": "webhook", "account": "a",
                                "message": {"text": "x", "sandbox": {"status": 500, "times": 1}}}])
        entry = entry.decode() if isinstance(entry, bytes) else entry
        [delayed] = env.enqueue([{"v": 1, "provider": "webhook", "account": "a", "message": {"text": "later"},
                                  "not_before": int(time.time() * 1000) + 800}])
        delayed = delayed.decode() if isinstance(delayed, bytes) else delayed
        env.worker()
        results = env.wait_results([entry, delayed], timeout=60)
        assert results[entry]["status"] == "sent" and results[entry]["attempts"] == "2", results[entry]
        assert results[entry]["id"] == entry
        assert results[delayed]["status"] == "sent" and results[delayed]["id"] == delayed, results[delayed]
        keys = [r["headers"]["idempotency-key"] for r in env.hook_requests()]
        assert sorted(keys) == sorted([entry, entry, delayed]), keys  # the same key on the retry
        assert len(env.r.keys(env.key("result:*"))) == 2, env.r.keys(env.key("result:*"))


def test_json_logs_one_object_per_line_with_a_job_sent_line_per_job_up_to_the_budget():
    """log_format json: every line the worker writes is one JSON object with ts, level and
    msg; each sent job has a "job sent" line (id, provider, account, attempts), at most
    log_sent_per_second of them a second, the rest counted on the next one (not_logged)."""
    with Env() as env:
        w = env.worker(env.config(log_format="json", log_sent_per_second=5))
        ids = ["log%02d" % i for i in range(30)]
        env.enqueue(job(i, text="x") for i in ids[:3])
        env.wait_results(ids[:3])
        env.enqueue(job(i, text="x") for i in ids[3:])
        env.wait_results(ids)
        time.sleep(1.2)  # the next second's budget: one more line carries the count
        env.enqueue([job("log-last", text="x")])
        env.wait_results(["log-last"])
        w.stop()
        lines = [line for line in w.log().splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]  # every line parses
        assert all({"ts", "level", "msg"} <= set(r) for r in records), records[:3]
        sent = [r for r in records if r["msg"] == "job sent"]
        assert {r["id"] for r in sent[:3]} == set(ids[:3]), sent[:3]
        assert all(r["provider"] == "webhook" and r["account"] == "a" and r["attempts"] == "1" for r in sent)
        logged = len(sent) + sum(int(r.get("not_logged", 0)) for r in sent)
        assert len(sent) < 31 and logged == 31, (len(sent), logged)
        assert any("not_logged" in r for r in sent), sent


def test_a_jobs_traceparent_is_kept_logged_and_forwarded_only_where_the_account_opts_in():
    """A job's W3C traceparent is stored in its result and its dead letter, is on the log
    lines about it, and goes to the provider as the traceparent header only for an account
    with http.forward_traceparent (off by default: the provider is a third party)."""
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with Env() as env:
        config = env.config()
        config["providers"]["webhook"]["accounts"]["a"]["http"] = {"forward_traceparent": True}
        w = env.worker(config)
        env.enqueue([job("tp-a", account="a", text="x") | {"traceparent": tp},
                     job("tp-b", account="b", text="x") | {"traceparent": tp},
                     job("tp-dead", account="a", sandbox={"status": 400}) | {"traceparent": tp},
                     job("tp-bad", account="a", text="x") | {"traceparent": "not-a-trace"}])
        results = env.wait_results(["tp-a", "tp-b", "tp-dead", "tp-bad"])
        assert results["tp-a"]["traceparent"] == tp and results["tp-b"]["traceparent"] == tp, results
        assert results["tp-bad"]["status"] == "dead" and results["tp-bad"]["error_class"] == "validation", results
        by_id = {r["headers"]["idempotency-key"]: r["headers"] for r in env.hook_requests()}
        assert by_id["tp-a"].get("traceparent") == tp and by_id["tp-dead"].get("traceparent") == tp, by_id
        assert "traceparent" not in by_id["tp-b"], by_id["tp-b"]
        [dead] = [d for d in env.dead_letters() if d["id"] == "tp-dead"]
        assert dead["traceparent"] == tp, dead
        w.stop()
        lines = [r for r in w.log_records() if r.get("id") in ("tp-a", "tp-dead")]
        assert {(r["msg"], r.get("traceparent")) for r in lines} >= {("job sent", tp), ("job dead", tp)}, lines


def test_a_result_key_of_another_type_holds_back_its_job_only():
    """A job whose result key holds a value format 2 never writes (a format 1 hash left
    behind) is neither sent nor touched, and says so in the log; the other jobs of its
    batch are sent as usual."""
    with Env() as env:
        env.r.hset(env.key("result:stray"), "status", "sent")
        env.enqueue([job("stray", text="x"), job("fine", text="x")])
        w = env.worker()
        env.wait_results(["fine"])
        wait_until(lambda: "holds a value of another type" in w.log(), 10, "the log line about the stray key")
        assert [r["headers"]["idempotency-key"] for r in env.hook_requests()] == ["fine"]
        assert env.r.type(env.key("result:stray")) == "hash" and env.r.hgetall(env.key("result:stray")) == {
            "status": "sent"}


def test_a_queue_of_three_partitions_on_one_redis_sends_each_job_once_and_stops_at_once():
    """Partitions need no cluster: on one Redis each has its keys under its own tag, the
    worker reads all three (one blocking read each), and a SIGTERM unblocks every read at
    once (CLIENT UNBLOCK of each fetch connection)."""
    sys.path.insert(0, os.path.join(harness.ROOT, "clients", "python"))
    import outq_client
    with Env() as env:
        producer = outq_client.Client(env.r, queue=env.queue, partitions=3)
        ids = ["tp%03d" % i for i in range(300)]
        producer.enqueue_many([job(i) for i in ids])
        for i in range(3):
            assert env.r.xlen("outq:{%s}:jobs" % outq_client.partition_tag(env.queue, i, 3)) > 0
        w = env.worker(env.config(queue_partitions=3))
        results = producer.wait_many(ids, timeout=60)
        assert {r["status"] for r in results.values()} == {"sent"}
        counts = env.request_counts()
        assert sorted(counts) == sorted(ids) and set(counts.values()) == {1}
        assert env.r.get(env.key("partitions")) == "3"
        # Idle, each partition's read blocks for 2 s (a stop ends it with CLIENT UNBLOCK, which
        # needs the connection's CLIENT ID), not for the 300 ms of a read that cannot be unblocked.
        env.r.config_resetstat()
        time.sleep(4)
        reads = env.r.info("commandstats").get("cmdstat_xreadgroup", {}).get("calls", 0)
        assert reads <= 3 * 4, "%d blocking reads in 4 idle seconds over 3 partitions" % reads
        w.sigterm()
        assert w.wait(timeout=10) == 0, w.log_tail(10)
        assert "left_pending=0" in w.log(), w.log_tail(5)
