"""The control channel (issue 16, item 4): a pause or resume reaches every worker
at once on outq:{Q}:control, not when each would next read the account. Observed
through each worker's /metrics gauge outq_account_paused{provider,account}: 3
real workers, `outq pause` / `outq resume` on the CLI and a 429 pause set by one
worker show on every worker within a second; a subscriber connection killed by
Redis (CLIENT KILL TYPE pubsub) is dialled again and still hears a later resume;
the pause script publishes only when the pause changed."""
import http.client
import os
import re
import time

from harness import ROOT, Env, free_port, job, wait_until

WITHIN_S = 1.0


def _gauge(port, account="a"):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
    except OSError:
        return None
    m = re.search(r'^outq_account_paused\{provider="webhook",account="%s"\} (\S+)$' % account, text, re.M)
    return float(m.group(1)) if m else None


def _workers(env, n=3):
    ports = []
    for i in range(n):
        port = free_port()
        env.worker(env.config(metrics_listen="127.0.0.1:%d" % port), name="w%d" % i)
        ports.append(port)
    # Every worker is subscribed (and serving /metrics) before the test acts.
    wait_until(lambda: env.r.pubsub_numsub(env.key("control"))[0][1] == n, 20, "%d subscribers" % n)
    wait_until(lambda: all(_gauge(p) == 0 for p in ports), 20, "every /metrics")
    return ports


def _all_show(ports, value, what, since):
    """Waits (at most WITHIN_S after `since`) until every worker's gauge for a is `value`."""
    deadline = since + WITHIN_S
    while True:
        got = [_gauge(p) for p in ports]
        if all(g == value for g in got):
            return time.monotonic() - since
        if time.monotonic() > deadline:
            raise AssertionError("%s: after %.2f s the gauges are %s, not all %s"
                                 % (what, time.monotonic() - since, got, value))
        time.sleep(0.02)


def test_outq_pause_and_resume_reach_every_worker_within_a_second():
    with Env() as env:
        ports = _workers(env)
        env.cli("pause", "webhook", "a", "--for", "10m", "--reason", "maintenance")
        _all_show(ports, 1, "outq pause --for 10m", time.monotonic())
        assert all(_gauge(p, "b") == 0 for p in ports)  # the other account is not paused
        # Before the channel, the gauge stayed 1 until the 10 minutes were over.
        env.cli("resume", "webhook", "a")
        _all_show(ports, 0, "outq resume", time.monotonic())
        env.cli("pause", "webhook", "a")  # until resumed
        _all_show(ports, 1, "outq pause until resumed", time.monotonic())
        env.cli("resume", "webhook", "a")
        _all_show(ports, 0, "outq resume of a pause until resumed", time.monotonic())
        # An operator's shorter pause replaces a longer one, on the workers too.
        env.cli("pause", "webhook", "a", "--for", "10m")
        _all_show(ports, 1, "outq pause --for 10m", time.monotonic())
        env.cli("pause", "webhook", "a", "--for", "1s")
        time.sleep(1.5)
        _all_show(ports, 0, "the end of the shortened pause", time.monotonic())


def test_a_429_pause_set_by_one_worker_shows_on_the_others_within_a_second():
    with Env() as env:
        ports = _workers(env)
        env.enqueue([job("c429", text="x", sandbox={"status": 429, "times": 1, "retry_after": "60"})])
        pause_key = "outq:{%s@webhook/a}:pause" % env.queue
        wait_until(lambda: env.r.exists(pause_key), 20, "the 429 pause")
        seen = time.monotonic()
        took = _all_show(ports, 1, "a 429 pause of one worker", seen)
        ttl = env.r.pttl(pause_key)
        assert 50000 < ttl <= 60000, ttl
        # Exactly one worker got the 429; the others heard of it.
        setters = [w for w in env.workers if 'msg="account paused"' in w.log()]
        assert len(setters) == 1, [w.name for w in setters]
        env.cli("resume", "webhook", "a")
        _all_show(ports, 0, "outq resume of a 429 pause", time.monotonic())
        assert env.wait_results(["c429"], timeout=20)["c429"]["status"] == "sent"
        print("429 pause on every worker after %.3f s" % took)


def test_a_killed_subscriber_connection_is_dialled_again_and_still_hears_a_resume():
    with Env() as env:
        ports = _workers(env)
        env.cli("pause", "webhook", "a", "--for", "10m")
        _all_show(ports, 1, "outq pause", time.monotonic())
        offsets = [w.log_size() for w in env.workers]
        killed = env.r.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        assert killed == 3, killed
        wait_until(lambda: env.r.pubsub_numsub(env.key("control"))[0][1] == 3, 10, "3 subscribers again")
        names = [c["name"] for c in env.r.client_list(_type="pubsub")]
        assert sorted(n.split("-")[1] for n in names) == ["sub"] * 3, names
        env.cli("resume", "webhook", "a")
        _all_show(ports, 0, "outq resume after the reconnect", time.monotonic())
        for w, offset in zip(env.workers, offsets):
            lines = w.lines_since(offset)
            lost = [l for l in lines if "control channel unavailable" in l]
            back = [l for l in lines if "control channel works again" in l]
            assert len(lost) == 1 and len(back) == 1, (w.name, lines)
            assert all(w.alive() for w in env.workers)


def test_the_pause_script_publishes_only_when_the_pause_changed():
    src = open(os.path.join(ROOT, "src", "outq", "queue_protocol.cpp")).read()
    script = re.search(r'const char\* const pause_script = R"lua\((.*?)\)lua";', src, re.S).group(1)
    with Env() as env:
        r = env.r
        channel = env.key("control")
        sub = r.pubsub()
        sub.subscribe(channel)
        assert sub.get_message(timeout=2)["type"] == "subscribe"
        key = "outq:{%s@webhook/a}:pause" % env.queue

        def pause(ms, reason="HTTP 429"):
            message = "v1\tpause\twebhook\ta\t%d\t%s" % (ms if ms > 0 else -1, reason)
            return r.eval(script, 1, key, ms, reason, channel, message)

        def published():
            got = []
            while True:
                m = sub.get_message(timeout=0.3)
                if m is None:
                    return got
                got.append(m["data"])

        assert pause(5000) > 4900  # a new pause: published
        assert published() == ["v1\tpause\twebhook\ta\t5000\tHTTP 429"]
        assert pause(1000) > 4000  # shorter: the pause stands, nothing said
        assert published() == []
        assert pause(20000) > 19000  # longer: extended, published
        assert published() == ["v1\tpause\twebhook\ta\t20000\tHTTP 429"]
        assert pause(0, "RateLimit") == -1  # until resumed: published
        assert published() == ["v1\tpause\twebhook\ta\t-1\tRateLimit"]
        assert pause(0, "RateLimit") == -1  # already until resumed: nothing said
        assert pause(9000) == -1
        assert published() == []
        # Without a channel (an older caller) it pauses and publishes nothing.
        r.delete(key)
        assert r.eval(script, 1, key, 3000, "HTTP 429") > 2900
        assert published() == []
        # A user that may not PUBLISH still pauses; the reply is the same.
        r.delete(key)
        r.execute_command("ACL", "SETUSER", "nopub", "reset", "on", ">pw", "~*", "resetchannels", "+@all")
        import redis as redis_py
        limited = redis_py.Redis(host="127.0.0.1", port=env.redis.port, username="nopub", password="pw",
                                 decode_responses=True)
        try:
            assert limited.eval(script, 1, key, 3000, "HTTP 429", channel, "v1\tresume\twebhook\ta") > 2900
        finally:
            limited.close()
        assert published() == []
        sub.close()
