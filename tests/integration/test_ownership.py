"""A worker that stalls (SIGSTOP) past the visibility timeout loses its jobs to another
worker: once it runs again it must not send them too, nor take them back."""
import signal
import time

from harness import Env, job, wait_until


def test_a_worker_stalled_past_the_visibility_timeout_does_not_send_jobs_taken_over():
    """Worker A holds 12 jobs in memory waiting for rate-limit permits (1 request per
    800 ms, shared with B through Redis). A is stopped (SIGSTOP) for 5 s, more than 3x
    the visibility timeout (1.5 s); B takes the jobs over and sends them; A resumes.
    Over the whole run each job is requested exactly once and has one result, and no
    entry B took over goes back to A."""
    with Env() as env:
        config = env.config(visibility_timeout_ms=1500)
        # Waits up to 800 ms: short enough that a job keeps waiting in memory for its permit.
        config["providers"]["webhook"]["accounts"]["a"]["rate_limit"] = {"requests": 1, "per_ms": 800}
        ids = ["own%02d" % i for i in range(12)]
        env.enqueue(job(i) for i in ids)
        a = env.worker(config | {"consumer": "A"}, name="A")
        wait_until(lambda: len(env.hook_requests()) >= 1, 30, "A to send its first job")
        b = env.worker(config | {"consumer": "B"}, name="B")
        # Stop A right after one of its sends has its outcome written: the next permit is
        # about 800 ms away, so no request of A is on the wire while it is stopped.
        seen = len(env.hook_requests())

        def a_just_finished_one():
            requests = env.hook_requests()
            if len(requests) <= seen:
                return False
            last = requests[-1]["headers"]["idempotency-key"]
            return env.has_outcome(last) and len(env.hook_requests()) == len(requests)

        wait_until(a_just_finished_one, 30, "a send to complete")
        a.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        sent_before_stop = set(env.request_counts())
        try:
            owners = {}  # entry id -> owners seen, in order, after A resumes

            def sample():
                for entry, consumer, _ in env.pending_entries():
                    seq = owners.setdefault(entry, [])
                    if not seq or seq[-1] != consumer:
                        seq.append(consumer)

            time.sleep(5.0)
            at_resume = env.pending_entries()
            held_by_b = [e for e, c, _ in at_resume if c == "B"]
            for entry, consumer, _ in at_resume:  # the owners when A resumes come first
                owners[entry] = [consumer]
            a.signal(signal.SIGCONT)
        finally:
            a.signal(signal.SIGCONT)  # never leave a stopped process behind
        resumed_at = time.monotonic()
        sample()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            sample()
            if all(env.has_outcome(i) for i in ids) and not env.pending_entries():
                break
            time.sleep(0.1)
        results = env.wait_results(ids, timeout=5)
        time.sleep(1.0)  # a late duplicate from A would arrive by now
        counts = env.request_counts()
        print("A stopped %.1f s; B held %d entries when A resumed; requests per id: %s"
              % (resumed_at - stopped_at, len(held_by_b), sorted(counts.items())), flush=True)
        assert held_by_b, "the scenario: B took jobs over while A was stopped (before: %s)" % sorted(sent_before_stop)
        problems = []
        twice = sorted((k, n) for k, n in counts.items() if n > 1)
        if twice:
            problems.append("%d jobs sent more than once: %s" % (len(twice), twice))
        never = sorted(set(ids) - set(counts))
        if never:
            problems.append("never sent: %s" % never)
        back = sorted(e for e, seq in owners.items() if "B" in seq and "A" in seq[seq.index("B"):])
        if back:
            problems.append("%d entries went back from B to A: %s" % (len(back), [owners[e] for e in back][:5]))
        if env.pending_entries():
            problems.append("still pending at the end: %s" % env.pending_entries()[:5])
        not_sent = sorted(i for i, r in results.items() if r.get("status") != "sent")
        if not_sent:
            problems.append("results not sent: %s" % not_sent)
        events = env.result_event_counts()
        not_one = sorted(i for i in ids if events.get(i, 0) != 1)
        if not_one:
            problems.append("ids without exactly one results event: %s" % not_one)
        assert not problems, "; ".join(problems)
        assert a.alive() and b.alive()
