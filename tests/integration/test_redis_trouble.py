"""Redis in trouble under a running worker: gone for a while, out of memory,
restarted under idle connections, stalled past the command deadline, or
configured to evict keys. The worker must stay quiet and cheap while it waits,
lose nothing, and write every outcome exactly once."""
import os
import threading
import time

import redis as redis_py

from harness import GROUP, Env, job, wait_until

# The bounds the tests hold the worker to (module constants, so a debugging run can relax one).
OUTAGE_MAX_LOG_LINES = 50  # log lines while Redis is down for 10 s
OUTAGE_MAX_CPU_SHARE = 0.10  # of one core, while Redis is down


def _assert_each_once(env, ids, results):
    """One accepted request per id at the sandbox, one result per id, nothing left over."""
    counts = env.request_counts()
    missing = sorted(set(ids) - set(counts))
    assert not missing, "%d jobs never reached the provider, e.g. %s" % (len(missing), missing[:5])
    twice = sorted(k for k, n in counts.items() if n > 1)
    assert not twice, "%d jobs sent more than once, e.g. %s" % (len(twice), [(k, counts[k]) for k in twice[:5]])
    assert all(r.get("status") == "sent" for r in results.values()), \
        [(i, r) for i, r in results.items() if r.get("status") != "sent"][:3]
    events = env.result_event_counts()
    doubled = sorted(k for k in ids if events.get(k, 0) != 1)
    assert not doubled, "results stream: %d ids without exactly one event, e.g. %s" % (
        len(doubled), [(k, events.get(k, 0)) for k in doubled[:5]])


def _settle_nothing_left(env, timeout=30):
    """Waits until nothing is pending or delayed and the jobs stream is empty."""
    def empty():
        return (env.r.xpending(env.key("jobs"), GROUP)["pending"] == 0 and env.r.zcard(env.key("delayed")) == 0
                and env.r.xlen(env.key("jobs")) == 0)
    try:
        wait_until(empty, timeout, "nothing pending, delayed or waiting")
    except AssertionError as e:
        raise AssertionError("%s: pending %s, delayed %s, stream %s" % (
            e, env.r.xpending(env.key("jobs"), GROUP)["pending"], env.r.zcard(env.key("delayed")),
            env.r.xlen(env.key("jobs"))))


def test_redis_down_10s_with_50_jobs_in_flight_is_quiet_cheap_and_loses_nothing():
    """Redis stops (AOF, data kept) for 10 s while 50 jobs are in flight: the worker
    writes fewer than 50 log lines and uses under 10 % of a core meanwhile, then
    finishes every job exactly once."""
    with Env(persistent=True) as env:
        ids = ["down%02d" % i for i in range(50)]
        # The sandbox answers 1.5 s after each request (the request timeout is 2 s): the
        # answers arrive while Redis is down, so the worker holds 50 outcomes it cannot write.
        env.enqueue(job(i, text="x", sandbox={"delay_ms": 1500}) for i in ids)
        # The outage (10 s) is well inside the visibility timeout: nothing may be taken over.
        # All 50 out at once: no slow start for the new account.
        w = env.worker(env.config(visibility_timeout_ms=30000, lanes={"start_window": 64}))
        wait_until(lambda: len(env.hook_requests()) >= 50, 30, "50 jobs in flight")
        assert not any(env.has_outcome(i) for i in ids), "the jobs were in flight at the stop"
        env.r.close()
        offset = w.log_size()
        cpu0, t0 = w.cpu_seconds(), time.monotonic()
        env.redis.stop()  # SHUTDOWN: the AOF is flushed
        time.sleep(10)  # the outage itself, not a wait for something
        cpu1, t1 = w.cpu_seconds(), time.monotonic()
        outage_lines = w.lines_since(offset)
        env.redis.start()
        env.r = env.redis.client()
        assert w.alive(), "the worker survived the outage"
        cpu_share = (cpu1 - cpu0) / (t1 - t0)
        figures = "%d log lines and %.0f %% of a core (%.2f s CPU) during a %.1f s outage" % (
            len(outage_lines), 100 * cpu_share, cpu1 - cpu0, t1 - t0)
        print(figures, flush=True)
        # Under the sanitizers (scripts/sanitize.sh) a CPU share measures the sanitizer: only the lines count.
        cpu_bound = OUTAGE_MAX_CPU_SHARE if not os.environ.get("OUTQ_SANITIZED") else float("inf")
        assert len(outage_lines) < OUTAGE_MAX_LOG_LINES and cpu_share < cpu_bound, "%s; first lines:\n%s" % (
            figures, "\n".join(outage_lines[:5]))
        results = env.wait_results(ids, timeout=60)
        _assert_each_once(env, ids, results)
        _settle_nothing_left(env)


# Commands that write (or may write) and that the worker sends; their attempts (executed
# or refused) are counted from INFO commandstats under these names.
WRITE_COMMANDS = ("multi", "exec", "eval", "evalsha", "fcall", "set", "del", "unlink", "hset", "expire", "pexpire",
                  "xadd", "xack", "xdel", "xclaim", "xautoclaim", "zadd", "zrem", "zremrangebyscore")
OOM_MAX_WRITES_PER_S = 20


def _write_calls(env):
    stats = env.commandstats()
    return {name: stats.get(name, 0) for name in WRITE_COMMANDS}


def test_redis_at_maxmemory_is_not_hammered_and_nothing_is_lost():
    """Redis answers -OOM to writes (maxmemory reached, noeviction) while jobs are being
    completed: fewer than 20 write commands a second from the worker while it lasts;
    once memory is raised again every job ends with one result, sent once."""
    with Env() as env:
        ids = ["oom%03d" % i for i in range(200)]
        env.enqueue(job(i, text="x", sandbox={"delay_ms": 300}) for i in ids)
        # A long visibility timeout: the refresh of in-flight entries (every third of it) is
        # not what this test counts.
        # No lane buffer: the worker holds only what it sends, so jobs are still to be
        # claimed (MSETNX, refused at -OOM) and written when memory runs out.
        w = env.worker(env.config(concurrency=32, fetch_batch=32, visibility_timeout_ms=30000, lanes={"buffer": 1}))
        wait_until(lambda: sum(env.has_outcome(i) for i in ids[:64]) >= 30, 30,
                   "jobs to be completing")
        # 4 MB of data, then maxmemory 2 MB below what Redis uses: every write the worker
        # sends is refused with -OOM until the limit is raised again (the margin is wider
        # than the clients' buffers, which come and go with the worker's batches).
        for n in range(128):
            env.r.set("outq-test:filler:%d" % n, "x" * 32768)
        env.r.config_set("maxmemory-policy", "noeviction")
        env.r.config_set("maxmemory", str(int(env.r.info("memory")["used_memory"]) - 2 * 1024 * 1024))
        try:
            env.r.set("outq-test:probe", "1")
            raise AssertionError("Redis still accepts writes: used %s, maxmemory %s" % (
                env.r.info("memory")["used_memory"], env.r.config_get("maxmemory")))
        except redis_py.ResponseError as e:
            assert "OOM" in str(e), e
        oom_at = time.monotonic()
        time.sleep(1.0)  # the first retries may come quickly; the steady state is what counts
        before, t0 = _write_calls(env), time.monotonic()
        time.sleep(8.0)
        after, t1 = _write_calls(env), time.monotonic()
        done_during = sum(env.has_outcome(i) for i in ids)
        deltas = {k: after[k] - before[k] for k in WRITE_COMMANDS if after[k] != before[k]}
        rate = sum(deltas.values()) / (t1 - t0)
        print("at maxmemory: %.1f write commands/s from the worker over %.1f s: %s" % (rate, t1 - t0, deltas),
              flush=True)
        assert w.alive(), "the worker survived -OOM"
        assert rate < OOM_MAX_WRITES_PER_S, "%.1f write commands a second at maxmemory (over %.1f s, from %.1f s "\
            "after -OOM began): %s" % (rate, t1 - t0, t0 - oom_at, deltas)
        env.r.config_set("maxmemory", "0")
        env.r.delete(*["outq-test:filler:%d" % n for n in range(128)])
        # Jobs fetched but not claimable at -OOM may be left pending: taken over after the
        # visibility timeout (30 s) at worst.
        results = env.wait_results(ids, timeout=75)
        assert done_during < len(ids), "jobs were still to be written when memory ran out"
        _assert_each_once(env, ids, results)
        _settle_nothing_left(env)


def test_a_pause_set_right_after_a_redis_restart_takes_effect():
    """Every connection of the worker has been used when Redis restarts (data kept); the
    first 429 after the restart must still pause the account: a command that meets a
    connection the restart closed goes again on a fresh one."""
    with Env(persistent=True) as env:
        pause_key = "outq:{t@webhook/a}:pause"
        w = env.worker()
        # A 429 with a 1 s Retry-After: the account pause is written once before the restart,
        # so the connection that writes pauses is open (and idle) when Redis goes away.
        env.enqueue([job("warm", text="x", sandbox={"status": 429, "times": 1, "retry_after": "1"})])
        assert env.wait_results(["warm"], timeout=30)["warm"]["status"] == "sent"
        wait_until(lambda: not env.r.exists(pause_key), 10, "the first pause to end")
        env.restart_redis(down_s=0.5)
        env.enqueue([job("other", text="y")])  # the worker reads from the restarted Redis
        env.wait_results(["other"], timeout=30)
        env.enqueue([job("limited", text="z", sandbox={"status": 429, "times": 1, "retry_after": "30"})])
        wait_until(lambda: any(r["headers"].get("idempotency-key") == "limited" for r in env.hook_requests()), 30,
                   "the 429 to be answered")
        try:
            wait_until(lambda: env.r.pttl(pause_key) > 0, 10, "the account pause %s" % pause_key)
        except AssertionError as e:
            lines = [line for line in w.log().splitlines() if "pause" in line]
            raise AssertionError("%s; the worker's lines about pauses:\n%s" % (e, "\n".join(lines[-5:])))
        ttl = env.r.pttl(pause_key)
        assert 0 < ttl <= 30000, ttl
        assert w.alive()


def test_an_outcome_write_that_timed_out_but_was_applied_is_not_written_twice():
    """Redis stalls (DEBUG SLEEP 0.7 s, again and again) longer than command_timeout_ms
    (300) while outcomes of sent, dead and retried jobs are being written: a write that
    timed out may have been applied all the same. Each job still gets exactly one
    results-stream event, at most one dead letter and one result, and is sent no more
    often than its answers call for."""
    with Env(redis_args=["--enable-debug-command", "yes"]) as env:
        sent = ["ok%02d" % i for i in range(21)]
        dead = ["bad%02d" % i for i in range(21)]
        retried = ["again%02d" % i for i in range(21)]

        def wave(n):  # a third of each kind, answered over about a second
            out = []
            for k in range(7):
                delay = k * 150
                out.append(job(sent[7 * n + k], text="x", sandbox={"delay_ms": delay}))
                out.append(job(dead[7 * n + k], text="x", sandbox={"status": 400, "delay_ms": delay + 50}))
                out.append(job(retried[7 * n + k], text="x",
                               sandbox={"status": 500, "times": 1, "delay_ms": delay + 100}))
            return out

        config = env.config()
        config["redis"]["command_timeout_ms"] = 300
        config["providers"]["webhook"]["http"]["request_timeout_ms"] = 5000
        w = env.worker(config)
        env.enqueue([job("first")])
        env.wait_results(["first"], timeout=30)
        staller = env.redis.client()
        stalls = []

        def stall():
            end = time.monotonic() + 6.0
            while time.monotonic() < end:
                staller.execute_command("DEBUG", "SLEEP", "0.7")
                stalls.append(time.monotonic())
                time.sleep(0.15)

        t = threading.Thread(target=stall, daemon=True)
        t.start()
        for n in range(3):  # outcomes are written all through the stalls
            env.enqueue(wave(n))
            time.sleep(1.5)
        t.join(timeout=30)
        staller.close()
        ids = sent + dead + retried
        results = env.wait_results(ids, timeout=60)
        _settle_nothing_left(env)
        timeouts = w.log().count("deadline exceeded")
        print("%d stalls of 0.7 s; the worker met %d Redis deadlines" % (len(stalls), timeouts), flush=True)
        assert len(stalls) >= 4, "the stalls ran (%d)" % len(stalls)
        wrong = [(i, results[i].get("status")) for i in sent + retried if results[i].get("status") != "sent"]
        wrong += [(i, results[i].get("status")) for i in dead if results[i].get("status") != "dead"]
        assert not wrong, wrong[:5]
        events = env.result_event_counts()
        letters = env.dead_letter_counts()
        counts = env.request_counts()
        expected = {i: 1 for i in sent + dead} | {i: 2 for i in retried}
        problems = []
        not_one = sorted((i, events.get(i, 0)) for i in ids if events.get(i, 0) != 1)
        if not_one:
            problems.append("results stream: %d ids without exactly one event, e.g. %s" % (len(not_one), not_one[:5]))
        doubled = sorted((i, n) for i, n in letters.items() if n > 1)
        if doubled:
            problems.append("%d ids with more than one dead letter, e.g. %s" % (len(doubled), doubled[:5]))
        if sorted(letters) != sorted(dead):
            problems.append("dead letters for %s" % sorted(set(letters) ^ set(dead))[:5])
        off = sorted((i, counts.get(i, 0), n) for i, n in expected.items() if counts.get(i, 0) != n)
        if off:
            problems.append("%d ids sent a wrong number of times (id, got, expected): %s" % (len(off), off[:5]))
        assert not problems, "; ".join(problems)
        assert all(results[i].get("dead_entry") for i in dead)


def test_an_evicting_maxmemory_policy_is_warned_about_and_the_worker_still_works():
    """With maxmemory-policy allkeys-lru Redis may evict jobs, pending entries and results
    under memory pressure: the worker says so at start (level warn or error, naming
    maxmemory-policy) and works all the same."""
    with Env() as env:
        env.r.config_set("maxmemory", str(512 * 1024 * 1024))
        env.r.config_set("maxmemory-policy", "allkeys-lru")
        w = env.worker()
        env.enqueue([job("evictable")])
        assert env.wait_results(["evictable"], timeout=30)["evictable"]["status"] == "sent"

        def warning():
            return [line for line in w.log().splitlines()
                    if "maxmemory-policy" in line and ("level=warn" in line or "level=error" in line)]
        try:
            wait_until(warning, 10, "a warning about maxmemory-policy")
        except AssertionError as e:
            raise AssertionError("%s; the worker's log:\n%s" % (e, w.log_tail(10)))
        assert w.alive()
        assert len(env.hook_requests()) == 1


def test_bad_delayed_set_members_are_dropped_without_blocking_the_jobs_behind_them():
    """A delayed-set member whose hash is missing, or whose key holds another type
    (written by hand), is dropped from the set; the due jobs behind it still move and
    are sent, and the foreign key is left as it was."""
    with Env() as env:
        env.r.zadd(env.key("delayed"), {"gone": 1, "wrong-type": 2})
        env.r.set(env.key("delayed:wrong-type"), "not a hash")
        soon = int(time.time() * 1000) + 500
        env.enqueue([dict(job("behind"), not_before=soon)])
        w = env.worker()
        assert env.wait_results(["behind"], timeout=30)["behind"]["status"] == "sent"
        wait_until(lambda: env.r.zcard(env.key("delayed")) == 0, 10, "the bad members to be dropped")
        assert env.r.get(env.key("delayed:wrong-type")) == "not a hash"
        assert w.alive()
        assert "level=error" not in w.log(), w.log_tail(10)
