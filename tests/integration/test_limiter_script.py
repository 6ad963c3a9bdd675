"""The Lua scripts of the rate limiter, run in a real redis-server with an
explicit clock, must decide exactly like the pure C++ functions they transcribe
(sliding_window_reserve and sliding_window_wait, unit-tested with a fake clock):
same scenarios, same numbers. The scripts are read from the C++ source, so the test runs the very
text the worker sends."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import redis

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _script(name):
    src = open(os.path.join(ROOT, "src", "outq", "queue_protocol.cpp")).read()
    m = re.search(r'const char\* const %s = R"lua\((.*?)\)lua";' % name, src, re.S)
    assert m, name
    return m.group(1)


class _Redis:
    def __enter__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.dir = tempfile.mkdtemp(prefix="outq-lua-")
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        return self.client

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


SCOPE = "outq:{t}:limit:webhook:a:"


def limit(r, now, requests=3, window=1000, max_in_flight=0, lease="l", lease_ttl=60000, burst=1, horizon=0):
    return r.eval(_script("limit_script"), 3, SCOPE + "window", SCOPE + "leases", SCOPE + "pause",
                  requests, window, max_in_flight, lease, lease_ttl, now, burst, horizon)


def _scores(r):
    return [int(s) for _, s in r.zrange(SCOPE + "window", 0, -1, withscores=True)]


def _most_in_a_window(scores, window):
    """The most scores in any span [s, s + window) of the sorted scores."""
    return max((sum(1 for t in scores if s <= t < s + window) for s in scores), default=0)


def test_limiter_script_paces_like_the_function():
    with _Redis() as r:
        assert limit(r, 1000, requests=50, lease="p1") == [0, "go"]
        assert limit(r, 1005, requests=50, lease="p2") == [15, "rate"]
        assert limit(r, 1020, requests=50, lease="p3") == [0, "go"]


def test_limiter_script_burst_matches_the_function():
    with _Redis() as r:
        r.zadd(SCOPE + "window", {"a": 1000, "b": 1000, "c": 1000})
        assert limit(r, 1000, requests=50, burst=5, lease="d") == [0, "go"]
        assert limit(r, 1000, requests=50, burst=5, lease="e") == [0, "go"]
        assert limit(r, 1000, requests=50, burst=5, lease="f") == [100, "rate"]  # 5 per 5 x 20 ms
        assert limit(r, 1100, requests=50, burst=5, lease="f") == [0, "go"]


def test_limiter_script_matches_the_sliding_window_function():
    with _Redis() as r:
        # The same scenario as the unit test: entries at 100, 200, 300, limit 3, window 1000.
        r.zadd(SCOPE + "window", {"l0": 100, "l1": 200, "l2": 300})
        assert limit(r, 500, lease="x") == [100 + 1000 - 500 + 1, "rate"]
        assert limit(r, 500, requests=4, lease="x") == [50, "rate"]  # room, but paced 250 ms
        assert limit(r, 1099, lease="x") == [2, "rate"]
        assert limit(r, 1100, lease="y") == [0, "go"]  # 100 left the window at now - window
        # A 10 s simulation with a request every 3 ms: the worst 1 s window holds at most 50.
        r.delete(SCOPE + "window")
        sent = []
        for now in range(20000, 30000, 3):
            if limit(r, now, requests=50, lease="s%d" % now)[0] == 0:
                sent.append(now)
        worst = max(sum(1 for t in sent if s <= t < s + 1000) for s in sent)
        assert worst <= 50, worst
        assert 470 <= len(sent) <= 500, len(sent)


def test_limiter_script_pause_and_concurrency_cap():
    with _Redis() as r:
        pause = _script("pause_script")
        assert r.eval(pause, 1, SCOPE + "pause", 2000, "HTTP 429") > 1900
        # a shorter pause never shortens a longer one
        assert r.eval(pause, 1, SCOPE + "pause", 500, "HTTP 429") > 1900
        wait, reason, why = limit(r, 1000)
        assert reason == "paused" and 1900 < wait <= 2000 and why == "HTTP 429", (wait, reason, why)
        r.delete(SCOPE + "pause")
        assert r.eval(pause, 1, SCOPE + "pause", 0, "manual") == -1  # open-ended
        assert limit(r, 1000)[:2] == [-1, "paused"]
        r.delete(SCOPE + "pause")
        # two leases allowed at once; the third waits until one is given back or expires
        assert limit(r, 1000, requests=0, max_in_flight=2, lease="a", lease_ttl=5000) == [0, "go"]
        assert limit(r, 1001, requests=0, max_in_flight=2, lease="b", lease_ttl=5000) == [0, "go"]
        assert limit(r, 1002, requests=0, max_in_flight=2, lease="c", lease_ttl=5000)[1] == "concurrency"
        r.zrem(SCOPE + "leases", "a")
        assert limit(r, 1003, requests=0, max_in_flight=2, lease="c", lease_ttl=5000) == [0, "go"]
        assert limit(r, 7000, requests=0, max_in_flight=2, lease="d", lease_ttl=5000) == [0, "go"]  # b, c expired


def test_limiter_script_reservations_at_one_instant_follow_the_functions_paced_schedule():
    with _Redis() as r:
        now = 5000
        expected = []
        for i in range(150):  # the unit test's schedule: 20 ms apart, each window of 50 1001 ms after the last
            at = now + (i // 50) * 1001 + (i % 50) * 20
            expected.append(at)
            reply = limit(r, now, requests=50, lease="r%d" % i, horizon=10000)
            assert reply == ([0, "go"] if at == now else [at - now, "reserved"]), (i, reply)
        assert _scores(r) == expected
        # the key outlives the last reservation by a window (PEXPIRE runs on the real clock)
        assert r.pttl(SCOPE + "window") > expected[-1] - now + 1000 - 500
        r.delete(SCOPE + "window")
        for i in range(150):  # burst 5: groups of 5 every 5 x 20 ms
            at = now + (i // 50) * 1001 + (i % 50) // 5 * 100
            reply = limit(r, now, requests=50, burst=5, lease="b%d" % i, horizon=10000)
            assert reply == ([0, "go"] if at == now else [at - now, "reserved"]), (i, reply)


def test_limiter_script_counts_reservations_ahead_like_the_function():
    with _Redis() as r:
        # the unit test's scenarios, with the same numbers
        r.zadd(SCOPE + "window", {"a": 1000, "b": 1020})  # b is reserved ahead
        assert limit(r, 1005, requests=50, lease="c", horizon=1000) == [1040 - 1005, "reserved"]
        r.delete(SCOPE + "window")
        r.zadd(SCOPE + "window", {"a": 1000, "b": 1300})
        assert limit(r, 1000, requests=50, burst=5, lease="c", horizon=1000) == [300, "reserved"]  # not before b
        r.delete(SCOPE + "window")
        r.zadd(SCOPE + "window", {"a": 0, "b": 1500})
        assert limit(r, 1100, requests=2, lease="c", horizon=1000) == [2000 - 1100, "reserved"]
        assert _scores(r) == [1500, 2000]  # 0 left the window, the reservations stay
        r.delete(SCOPE + "window")
        r.zadd(SCOPE + "window", {"a": 1000, "b": 1100, "c": 1200})
        assert limit(r, 1000, lease="d", horizon=2000) == [1001, "reserved"]  # 1000 + 1000 + 1
        r.delete(SCOPE + "window")
        # a limit lowered under a full window: the limit-th latest must leave it, not the oldest
        r.zadd(SCOPE + "window", {"a": 100, "b": 200, "c": 300, "d": 400})
        assert limit(r, 500, lease="e") == [200 + 1000 + 1 - 500, "rate"]


def test_limiter_script_records_nothing_beyond_the_horizon():
    with _Redis() as r:
        assert limit(r, 1000, lease="a", horizon=500) == [0, "go"]
        assert limit(r, 1000, lease="b", horizon=500) == [333, "reserved"]  # paced 1000/3 ms
        ttl = r.pttl(SCOPE + "window")
        assert limit(r, 1000, lease="c", horizon=500) == [666, "rate"]  # 1666 is beyond 1000 + 500
        assert _scores(r) == [1000, 1333]
        assert r.pttl(SCOPE + "window") <= ttl  # not extended for a request it did not record
        assert limit(r, 1000, lease="c", horizon=666) == [666, "reserved"]  # the horizon itself is within
        assert limit(r, 1000, lease="d", horizon=1000) == [1001, "rate"]  # the window: 1000 + 1000 + 1
        assert limit(r, 1000, lease="d", horizon=2000) == [1001, "reserved"]
        assert limit(r, 1000, lease="e", horizon=1000) == [1334, "rate"]  # 1333 + 1000 + 1
        assert _scores(r) == [1000, 1333, 1666, 2001]
        # horizon 0 (the default) is the polling limiter
        assert limit(r, 1500, lease="f") == [2334 - 1500, "rate"]
        assert len(_scores(r)) == 4


def test_limiter_script_window_never_drops_a_reservation_ahead():
    with _Redis() as r:
        for i in range(6):
            limit(r, 1000, lease="a%d" % i, horizon=5000)
        expected = [1000, 1333, 1666, 2001, 2334, 2667]
        assert _scores(r) == expected
        # later calls: what left the window is removed, what is ahead of the clock stays
        assert limit(r, 2100, lease="b", horizon=0) == [3002 - 2100, "rate"]
        assert _scores(r) == expected[1:]
        assert limit(r, 2400, lease="b", horizon=0) == [3002 - 2400, "rate"]
        assert _scores(r) == expected[2:]
        # the key lives until the last reservation has left the window (PEXPIRE on the real clock)
        assert r.pttl(SCOPE + "window") > 2667 - 1000 + 1000 - 500


def test_limiter_script_twice_the_limit_at_one_instant_never_overfills_a_window():
    with _Redis() as r:
        for requests, window, burst in [(10, 1000, 1), (10, 1000, 3), (10, 1000, 10), (7, 300, 2)]:
            r.delete(SCOPE + "window")
            replies = [limit(r, 1000, requests=requests, window=window, burst=burst, lease="x%d" % i,
                             horizon=10 * window) for i in range(2 * requests)]
            assert all(reason in ("go", "reserved") for _, reason in replies), replies
            scores = _scores(r)
            assert len(scores) == 2 * requests
            assert sorted(1000 + wait for wait, _ in replies) == scores
            assert _most_in_a_window(scores, window) <= requests, (requests, window, burst, scores)
            span = window // requests * min(burst, requests)
            assert _most_in_a_window(scores, span) <= burst, (requests, window, burst, scores)


def test_limiter_script_paused_account_reserves_nothing():
    with _Redis() as r:
        assert limit(r, 1000, lease="a", horizon=5000) == [0, "go"]
        assert limit(r, 1000, lease="b", horizon=5000) == [333, "reserved"]
        ttl = r.pttl(SCOPE + "window")
        r.set(SCOPE + "pause", "HTTP 429", px=3000)
        wait, reason, why = limit(r, 1000, lease="c", horizon=5000)
        assert reason == "paused" and 2900 < wait <= 3000 and why == "HTTP 429", (wait, reason, why)
        assert _scores(r) == [1000, 1333]
        assert r.pttl(SCOPE + "window") <= ttl
        r.delete(SCOPE + "window")
        assert limit(r, 1000, lease="c", horizon=5000)[1] == "paused"
        assert not r.exists(SCOPE + "window")


def test_limiter_script_with_max_in_flight_reserves_nothing_ahead():
    with _Redis() as r:
        # a cap on requests in flight: the polling limiter, whatever the horizon
        assert limit(r, 1000, max_in_flight=5, lease="a", lease_ttl=5000, horizon=5000) == [0, "go"]
        assert limit(r, 1000, max_in_flight=5, lease="b", lease_ttl=5000, horizon=5000) == [333, "rate"]
        assert _scores(r) == [1000]
        assert r.zrange(SCOPE + "leases", 0, -1) == ["a"]
        assert limit(r, 1333, max_in_flight=5, lease="b", lease_ttl=5000, horizon=5000) == [0, "go"]
        assert limit(r, 1666, max_in_flight=2, lease="c", lease_ttl=5000, horizon=5000) == [20, "concurrency"]
        assert _scores(r) == [1000, 1333]
        assert r.zrange(SCOPE + "leases", 0, -1) == ["a", "b"]


def test_limiter_script_reserving_several_in_one_call_matches_one_call_each():
    """count > 1 records the same times as that many calls with one each, in one call."""
    script = _script("limit_script")
    with _Redis() as one, _Redis() as many:
        for limit, window, burst in [(50, 1000, 1), (10, 1000, 3), (200, 30000, 1)]:
            for r in (one, many):
                r.flushall()
            singles = []
            for n in range(40):
                reply = one.eval(script, 3, "w", "l", "p", limit, window, 0, "m%d" % n, 0, 1000, burst,
                                        5000, 1)
                if reply[1] == "rate":
                    break
                singles.append(reply[0])
            reply = many.eval(script, 3, "w", "l", "p", limit, window, 0, "m", 0, 1000, burst, 5000, 40)
            batch = [reply[0]] + [int(x) for x in reply[3:]]
            assert batch == singles, (limit, window, burst, batch[:12], singles[:12])
            assert many.zcard("w") == len(singles)
            # A window never holds more than the limit.
            scores = sorted(s for _, s in many.zrange("w", 0, -1, withscores=True))
            assert all(sum(1 for t in scores if a <= t < a + window) <= limit for a in scores)
