"""The Redis calls a job costs (issue 14's budget, docs/performance.md), counted with INFO
commandstats over real runs, calls inside scripts included: at most 3 per job through a
backlog; for a trickle (one job at a time) exactly 5 per job plus the worker's per-second
duties (the mover's poll, a deferred acknowledgement), at most 5.5 in all; at most 2 per
second for an idle worker besides its blocking reads. The test's own calls (its XADDs,
the XLEN it waits with, INFO and CONFIG) are not counted."""
import time

import harness
from harness import Env, job, wait_until

BACKLOG_JOBS = 10000
BACKLOG_MAX_CALLS_PER_JOB = 3.0
TRICKLE_JOBS = 200
# Per job: XREADGROUP, MSETNX, and the completion script for a batch of one (EVALSHA, SET,
# XADD); the pause is known from the control channel (no PTTL), and sent entries are
# acknowledged once a second at most (XACK + XDEL for all of them). Per second, as when idle:
# the mover's ZRANGE and the reclaimer's XAUTOCLAIM.
TRICKLE_PER_JOB = ("xreadgroup", "msetnx", "evalsha", "set", "xadd")
TRICKLE_MAX_CALLS_PER_JOB = 5.5
IDLE_SECONDS = 10
IDLE_MAX_CALLS_PER_S = 2.0

# Commands the test itself sends while a count runs; the worker never sends these.
TEST_ONLY = ("xlen", "info", "config")


def _worker_calls(env, own_xadds=0):
    stats = env.commandstats()
    counted = {name: n for name, n in stats.items() if name.split("|")[0] not in TEST_ONLY and n}
    if own_xadds:
        counted["xadd"] = counted.get("xadd", 0) - own_xadds
    return counted


def _redis_usec(env):
    """Microseconds Redis spent in the commands the worker sent (INFO commandstats)."""
    return sum(int(stats.get("usec", 0)) for name, stats in env.r.info("commandstats").items()
               if isinstance(stats, dict) and name.startswith("cmdstat_")
               and name[len("cmdstat_"):].split("|")[0] not in TEST_ONLY)


def _describe(calls, per):
    return ", ".join("%s %.2f" % (name, n / per) for name, n in sorted(calls.items(), key=lambda kv: -kv[1]))


def test_a_backlog_costs_at_most_3_redis_calls_per_job():
    with Env() as env:
        ids = ["backlog%05d" % i for i in range(BACKLOG_JOBS)]
        for start in range(0, BACKLOG_JOBS, 1000):
            env.enqueue(job(i, text="x") for i in ids[start:start + 1000])
        env.r.config_resetstat()
        env.worker()
        wait_until(lambda: env.r.xlen(env.key("results")) >= BACKLOG_JOBS, 120, "every job's results event")
        calls = _worker_calls(env)
        total = sum(calls.values())
        print("backlog: %.2f Redis calls and %.1f us of Redis command time per job (%s)"
              % (total / BACKLOG_JOBS, _redis_usec(env) / BACKLOG_JOBS, _describe(calls, BACKLOG_JOBS)))
        assert total / BACKLOG_JOBS <= BACKLOG_MAX_CALLS_PER_JOB, calls
        results = env.wait_results(ids[:50] + ids[-50:])
        assert all(r["status"] == "sent" for r in results.values())


def test_a_trickle_job_costs_5_redis_calls_and_the_per_second_duties_little_more():
    with Env() as env:
        env.worker()
        wait_until(lambda: env.r.exists(env.key("format")), 10, "the worker to start")
        time.sleep(0.5)
        env.r.config_resetstat()
        for n in range(TRICKLE_JOBS):
            env.enqueue([job("trickle%03d" % n, text="x")])
            wait_until(lambda: env.r.xlen(env.key("results")) > n, 10, "the result of job %d" % n)
        calls = _worker_calls(env, own_xadds=TRICKLE_JOBS)
        total = sum(calls.values())
        print("trickle: %.2f Redis calls and %.1f us of Redis command time per job (%s)"
              % (total / TRICKLE_JOBS, _redis_usec(env) / TRICKLE_JOBS, _describe(calls, TRICKLE_JOBS)))
        per_job = sum(calls.get(name, 0) for name in TRICKLE_PER_JOB)
        assert per_job <= 5.05 * TRICKLE_JOBS, calls  # a blocking read that timed out now and then
        assert "pttl" not in calls or calls["pttl"] <= 3, "the pause read per claim: %s" % calls
        assert total / TRICKLE_JOBS <= TRICKLE_MAX_CALLS_PER_JOB, calls


def test_an_idle_worker_makes_at_most_2_redis_calls_a_second_besides_its_blocking_reads():
    with Env() as env:
        env.worker()
        wait_until(lambda: env.r.exists(env.key("format")), 10, "the worker to start")
        time.sleep(1)
        env.r.config_resetstat()
        time.sleep(IDLE_SECONDS)  # the idle time measured, not a wait for something
        calls = _worker_calls(env)
        blocking = calls.pop("xreadgroup", 0)
        total = sum(calls.values())
        print("idle: %.2f Redis calls per second besides %.2f blocking reads per second (%s)"
              % (total / IDLE_SECONDS, blocking / IDLE_SECONDS, _describe(calls, IDLE_SECONDS)))
        assert total / IDLE_SECONDS <= IDLE_MAX_CALLS_PER_S, calls


RATE_JOBS = 500
RATE_LIMIT = 100  # requests a second


def _calls_per_job(env, ids, config):
    env.r.config_resetstat()
    env.worker(config)
    wait_until(lambda: env.r.xlen(env.key("results")) >= len(ids), 120, "every job's results event")
    calls = _worker_calls(env)
    for w in env.workers:
        w.stop()
    env.workers.clear()
    return calls


def test_a_rate_limited_job_costs_one_limiter_call_and_at_most_3x_an_unlimited_one():
    """Issue 16 item 3: waiting for a rate limit costs Redis nothing; one limiter call per
    request (the landed polling limiter made 111 EVALs and 821 calls per job here)."""
    with Env() as env:
        plain = ["plain%03d" % i for i in range(RATE_JOBS)]
        env.enqueue(job(i, text="x") for i in plain)
        unlimited = _calls_per_job(env, plain, env.config())
        env.r.delete(env.key("results"))
        limited_ids = ["lim%03d" % i for i in range(RATE_JOBS)]
        env.enqueue(job(i, text="x") for i in limited_ids)
        config = env.config()
        config["providers"]["webhook"]["accounts"]["a"]["rate_limit"] = {"requests": RATE_LIMIT, "per_ms": 1000}
        started = time.monotonic()
        limited = _calls_per_job(env, limited_ids, config)
        took = time.monotonic() - started
        per_plain = sum(unlimited.values()) / RATE_JOBS
        per_limited = sum(limited.values()) / RATE_JOBS
        limiter_calls = limited.get("eval", 0) + limited.get("evalsha", 0) - unlimited.get("eval", 0) - \
            unlimited.get("evalsha", 0)
        print("unlimited: %.2f calls per job (%s)" % (per_plain, _describe(unlimited, RATE_JOBS)))
        print("limited to %d/s: %.2f calls per job (%s), %d script calls more, %.1f s"
              % (RATE_LIMIT, per_limited, _describe(limited, RATE_JOBS), limiter_calls, took))
        # Under the sanitizers a request takes long enough for some reservations to lapse.
        assert limiter_calls <= RATE_JOBS * 1.05 or harness.SANITIZED, \
            "script calls beyond one per request: %d" % limiter_calls
        assert per_limited <= 3 * per_plain, (per_limited, per_plain)
        times = sorted(r["at_ms"] for r in env.hook_requests("a") if r["headers"].get("idempotency-key", "")
                       .startswith("lim"))
        rate = (len(times) - 1) / ((times[-1] - times[0]) / 1000)
        assert RATE_LIMIT * 0.9 <= rate <= RATE_LIMIT * 1.05, "rate %.1f/s for a limit of %d/s" % (rate, RATE_LIMIT)
