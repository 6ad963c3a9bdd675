"""Shared rate limits and Retry-After pauses across worker processes."""
import json
import time
from datetime import datetime, timezone
from email.utils import formatdate

from harness import Env, job, wait_until


def _ms(iso):
    """Unix ms of a log line's ts= (2026-12-01T08:16:07.430Z)."""
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() * 1000)


def _limited_config(env, requests=50, per_ms=1000, burst=None):
    config = env.config()
    limit = {"requests": requests, "per_ms": per_ms}
    if burst is not None:
        limit["burst"] = burst
    config["providers"]["webhook"]["accounts"]["a"]["rate_limit"] = limit
    return config


def test_three_workers_share_one_limit_of_50_per_second():
    with Env() as env:
        config = _limited_config(env, burst=2)
        ids = ["rl%03d" % i for i in range(400)]
        env.enqueue(job(i) for i in ids)
        for n in range(3):
            env.worker(config, name="w%d" % n)
        env.wait_results(ids, timeout=120)
        times = sorted(r["at_ms"] for r in env.hook_requests("a"))
        assert len(times) == 400
        worst = max(sum(1 for t in times[i:i + 60] if t < start + 1000) for i, start in enumerate(times))
        # The bound: the limit plus the burst (2 here), measured at the sandbox's arrival
        # stamps, which trail the decisions on Redis' clock by a few ms.
        assert worst <= 50 + 2, "a 1 s window saw %d requests" % worst
        # Paced window/limit apart, the fleet runs at the limit from the first request.
        rate = (len(times) - 1) / ((times[-1] - times[0]) / 1000)
        assert 45 <= rate <= 55, "overall rate %.1f/s for a limit of 50/s" % rate
        assert len({w.name for w in env.workers}) == 3 and all(w.proc.poll() is None for w in env.workers)


def _hold_on_a_while_b_flows(env, workers, a_jobs, b_jobs, signal_job):
    """Accounts a (20/s) and b (100/s) flowing through `workers` processes; once a
    flows, `signal_job` (for a) gets an answer that must hold a off for 2 s. Checks
    that no process calls a during those 2 s while b keeps its rate; returns the
    signal job's result and how many requests b made in the hold."""
    config = _limited_config(env, requests=20)
    config["providers"]["webhook"]["accounts"]["b"]["rate_limit"] = {"requests": 100, "per_ms": 1000}
    a_ids = ["a%03d" % i for i in range(a_jobs)]
    b_ids = ["b%03d" % i for i in range(b_jobs)]
    env.enqueue(job(i) for i in a_ids)
    env.enqueue(job(i, account="b") for i in b_ids)
    for n in range(workers):
        env.worker(config, name="w%d" % n)
    wait_until(lambda: len(env.hook_requests("a")) >= 10, 30, "account a to flow")
    env.enqueue([signal_job])
    # Jobs of a behind the signal: a lane sends in enqueue order, so these are
    # what is left of a once the hold ends.
    late_ids = ["a-late%02d" % i for i in range(10)]
    env.enqueue(job(i) for i in late_ids)
    signal_id = signal_job["id"]
    env.wait_results(a_ids + late_ids + b_ids + [signal_id], timeout=120)
    t = next(r["at_ms"] for r in env.sandbox.requests() if r["headers"].get("idempotency-key") == signal_id)
    # Permits granted before the pause existed may still be on their way: requests
    # up to 50 ms after the pause was set (the worker's "account paused" line) are
    # exempt. The pause itself must follow the answer promptly.
    paused_at = min(_ms(rec["ts"]) for w in env.workers for rec in w.log_records()
                    if rec.get("msg") == "account paused" and rec.get("account") == "a" and _ms(rec["ts"]) >= t - 5)
    assert paused_at - t < 1000, "the pause was set %d ms after the answer" % (paused_at - t)
    a_during = [r for r in env.hook_requests("a") if max(t, paused_at) + 50 < r["at_ms"] < t + 2000]
    assert a_during == [], "account a was called %d times while held" % len(a_during)
    assert [r for r in env.hook_requests("a") if r["at_ms"] >= t + 2000], "account a resumed after the hold"
    b_all = sorted(r["at_ms"] for r in env.hook_requests("b"))
    b_during = [at for at in b_all if t < at < t + 2000]
    # The signal may wait behind all of a's jobs (a lane sends in order), so b must
    # have work for longer than a's whole run plus the hold, or its count says nothing.
    assert b_all[-1] > t + 2250, "test set-up: b ran out of jobs %d ms into a's hold" % (b_all[-1] - t)
    # b's own rate over its whole run, as a yardstick measured beside the hold: a
    # loaded machine slows b everywhere, a hold that slows b slows it only there.
    b_rate = (len(b_all) - 1) * 1000.0 / max(1, b_all[-1] - b_all[0])
    print("account b: %d requests in a's 2 s hold, %.1f/s over its run" % (len(b_during), b_rate))
    return env.result(signal_id), len(b_during), b_rate


def test_429_retry_after_pauses_the_account_for_every_worker_and_not_others():
    with Env() as env:
        # b runs at its own full rate of 100/s the whole time, so its rate during a's pause shows.
        trigger, b_during, b_rate = _hold_on_a_while_b_flows(
            env, 3, 100, 1000, job("trigger", text="x", sandbox={"status": 429, "times": 1, "retry_after": "2"}))
        assert b_during >= min(170, 1.7 * b_rate), (
            "account b kept its rate (100/s, %.1f/s over its run): %d requests in a's 2 s pause" % (b_rate, b_during))
        assert trigger["status"] == "sent" and trigger["attempts"] == "2", trigger


def test_ratelimit_headers_saying_none_left_pause_the_account_before_any_429():
    with Env() as env:
        # A success that says the window is used up for the next 2 s (IETF draft headers).
        last, b_during, b_rate = _hold_on_a_while_b_flows(env, 2, 60, 800, job("last", text="x", sandbox={
            "status": 200, "times": 1,
            "headers": {"RateLimit-Limit": "20", "RateLimit-Remaining": "0", "RateLimit-Reset": "2"}}))
        assert b_during >= min(150, 1.5 * b_rate), (
            "account b kept its rate (%.1f/s over its run): %d requests in a's hold" % (b_rate, b_during))
        assert last["status"] == "sent" and last["attempts"] == "1", last


def test_http_date_retry_after_is_honoured():
    with Env() as env:
        until = time.time() + 3
        env.enqueue([job("dated", text="x", sandbox={"status": 429, "times": 1,
                                                      "retry_after": formatdate(until, usegmt=True)})])
        env.worker()
        r = env.wait_results(["dated"], timeout=60)["dated"]
        assert r["status"] == "sent" and r["attempts"] == "2", r
        first, second = sorted(q["at_ms"] for q in env.hook_requests())
        # HTTP-dates have whole seconds: the retry waits until that second at least.
        assert second >= int(until) * 1000 - 50, (second - first)


def test_thirty_rate_limited_answers_do_not_use_failure_attempts():
    with Env() as env:
        config = env.config()
        config["providers"]["webhook"]["retry"] = {"base_ms": 20, "cap_ms": 100, "max_attempts": 2,
                                                   "max_rate_limited": 40}
        env.enqueue([job("patient", text="x", sandbox={"status": 429, "times": 30, "retry_after": "0"})])
        env.worker(config)
        r = env.wait_results(["patient"], timeout=120)["patient"]
        assert r["status"] == "sent", r
        assert r["attempts"] == "31", r  # 30 rate-limited + the success; max_attempts 2 never reached


def test_a_job_that_expires_while_waiting_for_its_limit_is_not_sent_late():
    with Env() as env:
        env.worker(_limited_config(env, requests=2, per_ms=1000))  # paced 500 ms apart
        env.enqueue([job("warm-up")])
        env.wait_results(["warm-up"])
        time.sleep(0.6)
        soon = int(time.time() * 1000) + 300
        env.enqueue([job("first"), dict(job("second"), expires_at=soon)])
        r = env.wait_results(["first", "second"])
        assert r["first"]["status"] == "sent", r["first"]
        second = r["second"]
        assert second["status"] == "dead" and second["error_class"] == "expired", second
        assert "waited for its rate limit" in second["error"], second["error"]
        assert [q["headers"]["idempotency-key"] for q in env.hook_requests()] == ["warm-up", "first"]


def test_manual_pause_for_a_duration_and_resume_from_the_cli():
    with Env() as env:
        env.worker()
        env.enqueue([job("before")])
        env.wait_results(["before"])
        env.cli("pause", "webhook", "a", "--for", "30s", "--reason", "maintenance window")
        stats = env.cli_json("stats")
        text = json.dumps(stats)
        assert "maintenance window" in text and "webhook" in text, stats
        env.enqueue([job("held"), job("other", account="b")])
        env.wait_results(["other"])  # account b is not paused
        time.sleep(1.0)
        assert env.result("held") == {}, "a paused account sends nothing"
        assert [q["headers"]["idempotency-key"] for q in env.hook_requests("a")] == ["before"]
        out = env.cli("resume", "webhook", "a").stdout
        assert "1 held job(s) due now" in out, out
        r = env.wait_results(["held"], timeout=5)["held"]  # at once, not when the 30 s would have ended
        assert r["status"] == "sent" and r["attempts"] == "1", r  # held back without using an attempt
        # A pause with an end lifts by itself.
        env.cli("pause", "webhook", "a", "--for", "1s")
        t0 = time.time()
        env.enqueue([job("after-pause")])
        r = env.wait_results(["after-pause"], timeout=30)["after-pause"]
        assert r["status"] == "sent" and time.time() - t0 >= 0.8, (r, time.time() - t0)


def test_resume_brings_back_every_held_job_of_that_account_only():
    """Paging through a delayed set larger than one page (1000) while moving jobs."""
    with Env() as env:
        future = int(time.time() * 1000) + 3600 * 1000
        pipe = env.r.pipeline(transaction=False)
        for i in range(3000):
            account = "a" if i % 6 else "b"  # 2500 of a, 500 of b, interleaved
            token = "%d-0" % (1000 + i)
            pipe.hset(env.key("delayed:" + token), mapping={"job": json.dumps(job("h%d" % i, account=account))})
            pipe.zadd(env.key("delayed"), {token: future + i})
        pipe.execute()
        env.cli("pause", "webhook", "a")
        out = env.cli("resume", "webhook", "a").stdout
        assert "2500 held job(s) due now" in out, out
        now = time.time() * 1000
        scores = env.r.zrange(env.key("delayed"), 0, -1, withscores=True)
        due_now = {t.decode() if isinstance(t, bytes) else t for t, s in scores if s <= now}
        assert len(due_now) == 2500 and len(scores) == 3000, (len(due_now), len(scores))
        wrong = [t for t in due_now if not (int(t.split("-")[0]) - 1000) % 6]
        assert not wrong, wrong[:5]  # only account a's
