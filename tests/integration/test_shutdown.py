"""Stopping a worker: SIGTERM again and again under a trickle of jobs never sends
a job twice, and the last line's counters (`msg="worker stopped" sent= dead=
retried= left_pending=`) say what really happened in Redis."""
import json
import random
import threading
import time

from harness import GROUP, Env, job, wait_until


def _stopped_counters(w):
    record = w.stopped_record()
    assert record is not None, "no msg=\"worker stopped\" line; the log ends:\n%s" % w.log_tail(10)
    missing = [k for k in ("sent", "dead", "retried", "left_pending") if k not in record]
    assert not missing, "the worker stopped line lacks %s: %s" % (missing, record)
    return {k: int(record[k]) for k in ("sent", "dead", "retried", "left_pending")}


def test_fifty_sigterms_under_a_trickle_of_jobs_send_no_job_twice():
    """Jobs arrive one every 20-50 ms while workers take turns: a new one starts, the
    previous one gets SIGTERM (and must exit 0), 50 times. No job is sent twice and
    every job ends with one result."""
    with Env() as env:
        config = env.config(visibility_timeout_ms=3000, shutdown_grace_ms=5000)
        ids = []
        done = threading.Event()
        producer_client = env.redis.client()

        def produce():
            rng = random.Random(7)
            n = 0
            while not done.is_set():
                job_id = "t%05d" % n
                producer_client.xadd(env.key("jobs"), {"job": json.dumps(job(job_id))})
                ids.append(job_id)
                n += 1
                time.sleep(rng.uniform(0.02, 0.05))

        producer = threading.Thread(target=produce, daemon=True)
        current = env.worker(config | {"consumer": "turn00"}, name="turn00")
        producer.start()
        exits = []
        rng = random.Random(11)
        try:
            for n in range(1, 51):
                following = env.worker(config | {"consumer": "turn%02d" % n}, name="turn%02d" % n)
                time.sleep(rng.uniform(0.3, 0.8))
                current.sigterm()
                exits.append((current.name, current.wait(timeout=20)))
                current = following
        finally:
            done.set()
            producer.join(timeout=10)
            producer_client.close()
        results = env.wait_results(list(ids), timeout=60)
        current.sigterm()
        exits.append((current.name, current.wait(timeout=20)))
        counts = env.request_counts()
        twice = sorted((k, n) for k, n in counts.items() if n > 1)
        never = sorted(set(ids) - set(counts))
        not_sent = sorted(i for i, r in results.items() if r.get("status") != "sent")
        events = env.result_event_counts()
        not_one_event = sorted(i for i in ids if events.get(i, 0) != 1)
        bad_exits = [(name, code) for name, code in exits if code != 0]
        print("%d jobs across %d stops; %d sent twice" % (len(ids), len(exits) - 1, len(twice)), flush=True)
        problems = []
        if twice:
            problems.append("%d of %d jobs sent more than once across 50 SIGTERMs, e.g. %s"
                            % (len(twice), len(ids), twice[:5]))
        if never or not_sent:
            problems.append("jobs never sent %s, results not sent %s" % (never[:5], not_sent[:5]))
        if not_one_event:
            problems.append("%d ids without exactly one results event, e.g. %s" % (len(not_one_event),
                                                                                  not_one_event[:5]))
        if bad_exits:
            problems.append("workers that did not exit 0: %s" % bad_exits[:5])
        assert not problems, "; ".join(problems)
        assert env.r.xpending(env.key("jobs"), GROUP)["pending"] == 0


def test_a_drain_whose_last_writes_fail_reports_true_counters():
    """SIGTERM with 10 slow sends in flight, then Redis goes away before their answers:
    their outcomes cannot be written and the grace period ends. The last line's sent=
    and dead= count only outcomes written (as the result hashes show), retried= only
    retries written, and left_pending= equals what XPENDING shows for the worker."""
    with Env(persistent=True) as env:
        config = env.config(consumer="drainer", shutdown_grace_ms=3000, visibility_timeout_ms=30000)
        config["providers"]["webhook"]["http"]["request_timeout_ms"] = 5000
        fast = ["f%02d" % i for i in range(8)]
        env.enqueue(job(i) for i in fast)
        env.enqueue([job("refused", text="x", sandbox={"status": 400}),
                     job("flaky", text="x", sandbox={"status": 500, "times": 1})])
        w = env.worker(config, name="drainer")
        early = env.wait_results(fast + ["refused", "flaky"], timeout=30)
        assert early["flaky"]["attempts"] == "2" and early["refused"]["status"] == "dead", early
        slow = ["s%02d" % i for i in range(10)]
        env.enqueue(job(i, text="slow", sandbox={"delay_ms": 1500}) for i in slow)
        wait_until(lambda: len([r for r in env.hook_requests() if r["headers"]["idempotency-key"] in slow]) >= 10,
                   30, "the slow jobs to be in flight")
        w.sigterm()
        env.redis.stop()  # before the answers (1.5 s after the requests): nothing more can be written
        code = w.wait(timeout=30)
        env.redis.start()
        env.r = env.redis.client()
        counters = _stopped_counters(w)
        all_ids = fast + ["refused", "flaky"] + slow
        results = {i: env.result(i) for i in all_ids}
        written_sent = sum(1 for r in results.values() if r.get("status") == "sent")
        written_dead = sum(1 for r in results.values() if r.get("status") == "dead")
        written_retries = sum(int(r["attempts"]) - 1 for r in results.values() if r.get("status") == "sent")
        pending = env.pending_of("drainer")
        print("worker stopped line: %s; in Redis: %d sent, %d dead, %d retries, %d pending for drainer"
              % (counters, written_sent, written_dead, written_retries, pending), flush=True)
        assert pending > 0, "the scenario: some outcomes could not be written (%s)" % results
        truth = {"sent": written_sent, "dead": written_dead, "retried": written_retries, "left_pending": pending}
        wrong = {k: (counters[k], truth[k]) for k in truth if counters[k] != truth[k]}
        assert not wrong, "counters (logged, true): %s" % wrong
        assert code == 0, "exit code %s" % code


def test_a_second_sigterm_reports_what_it_leaves_pending():
    """SIGTERM, then SIGTERM again (stop now) with 10 sends in flight: the worker exits 0
    and its left_pending= is what XPENDING shows for its consumer (never 0 while
    entries are pending); sent= counts nothing it did not write. The cancelled sends
    had their requests written, so each is an ambiguous retry in the delayed set (or,
    when even that could not be written, still pending): none is lost."""
    with Env() as env:
        config = env.config(consumer="quitter", shutdown_grace_ms=10000, visibility_timeout_ms=30000)
        config["providers"]["webhook"]["http"]["request_timeout_ms"] = 10000
        ids = ["q%02d" % i for i in range(10)]
        env.enqueue(job(i, text="slow", sandbox={"delay_ms": 5000}) for i in ids)
        w = env.worker(config, name="quitter")
        wait_until(lambda: len(env.hook_requests()) >= 10, 30, "10 sends in flight")
        w.sigterm()
        time.sleep(0.3)
        w.sigterm()
        code = w.wait(timeout=15)
        counters = _stopped_counters(w)
        pending = env.pending_of("quitter")
        written = sum(1 for i in ids if env.result(i))
        delayed = env.r.zcard("outq:{t}:delayed")
        print("worker stopped line: %s; XPENDING for quitter: %d; results written: %d; delayed: %d"
              % (counters, pending, written, delayed), flush=True)
        assert counters["left_pending"] == pending, \
            "left_pending=%d but XPENDING shows %d for the consumer" % (counters["left_pending"], pending)
        assert counters["sent"] == written, "sent=%d but %d results written" % (counters["sent"], written)
        assert counters["retried"] == delayed, "retried=%d but %d in the delayed set" % (counters["retried"], delayed)
        assert pending + written + delayed == 10, "every job is pending, finished or delayed"
        for token in env.r.zrange("outq:{t}:delayed", 0, -1):
            item = env.r.hgetall("outq:{t}:delayed:" + (token.decode() if isinstance(token, bytes) else token))
            item = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                    for k, v in item.items()}
            assert "ambiguous" in item.get("history", "") and int(item.get("ambiguous_since", "0")) > 0, item
        assert code == 0, "exit code %s" % code
