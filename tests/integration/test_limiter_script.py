"""The Lua scripts of the rate limiter, run in a real redis-server with an
explicit clock, must decide exactly like the pure C++ function they transcribe
(sliding_window_wait, unit-tested with a fake clock): same scenarios, same
numbers. The scripts are read from the C++ source, so the test runs the very
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


def limit(r, now, requests=3, window=1000, max_in_flight=0, lease="l", lease_ttl=60000, burst=1):
    return r.eval(_script("limit_script"), 3, SCOPE + "window", SCOPE + "leases", SCOPE + "pause",
                  requests, window, max_in_flight, lease, lease_ttl, now, burst)


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
