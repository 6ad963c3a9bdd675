"""The circuit breaker's Lua scripts (src/outq/queue/circuit.cpp), run in a real
redis-server with an explicit clock: the threshold, the growth and cap of each
consecutive opening, the account's pause (set, and only ever extended), closing
(which lifts only a circuit's pause), the probe lease (one winner among several
clients) and the TTL of the hash. The scripts are read from the C++ source, so
the test runs the very text the worker sends."""
import os
import re
import threading
import time

import redis

from test_limiter_script import _Redis

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

SCOPE = "outq:{t@webhook/a}:"
CIRCUIT, PAUSE, PROBE = SCOPE + "circuit", SCOPE + "pause", SCOPE + "circuit:probe"


def _script(name):
    src = open(os.path.join(ROOT, "src", "outq", "queue", "circuit.cpp")).read()
    m = re.search(r'const char\* const %s = R"lua\((.*?)\)lua";' % name, src, re.S)
    assert m, name
    return m.group(1)


FAILURE, SUCCESS, PROBE_SCRIPT = (_script("circuit_failure_script"), _script("circuit_success_script"),
                                  _script("circuit_probe_script"))


def fail(r, now, threshold=3, base=1000, cap=8000, reason="HTTP 503 from webhook"):
    """[state, failures, opens, open_ms, remaining_ms, opened]"""
    return r.eval(FAILURE, 3, CIRCUIT, PAUSE, PROBE, threshold, base, cap, reason, now)


def succeed(r, now):
    """[state before, closed]"""
    return r.eval(SUCCESS, 3, CIRCUIT, PAUSE, PROBE, now)


def probe(r, now, owner="w1", lease=30000):
    """[verdict, wait_ms]"""
    return r.eval(PROBE_SCRIPT, 2, CIRCUIT, PROBE, owner, lease, now)


def test_circuit_opens_at_the_threshold_and_pauses_the_account():
    with _Redis() as r:
        assert fail(r, 1000) == ["closed", 1, 0, 0, 0, 0]
        assert fail(r, 1001) == ["closed", 2, 0, 0, 0, 0]
        assert not r.exists(PAUSE)
        assert fail(r, 1002) == ["open", 3, 1, 1000, 1000, 1]
        h = r.hgetall(CIRCUIT)
        assert h == {"state": "open", "failures": "3", "opens": "1", "opened_at": "1002", "open_ms": "1000",
                     "reason": "HTTP 503 from webhook"}, h
        assert r.get(PAUSE) == "circuit: HTTP 503 from webhook"
        assert 900 < r.pttl(PAUSE) <= 1000
        # A failure while open (a request sent before it opened) is counted and changes nothing else.
        assert fail(r, 1500) == ["open", 4, 1, 1000, 502, 0]
        assert r.hget(CIRCUIT, "opened_at") == "1002"


def test_each_consecutive_opening_doubles_up_to_the_cap():
    with _Redis() as r:
        for now in (0, 1, 2):
            fail(r, now)
        assert r.hget(CIRCUIT, "open_ms") == "1000"
        now, lengths = 2, [1000]
        for _ in range(5):
            now += lengths[-1]  # the opening is over: half-open, and the probe fails
            state, _, opens, open_ms, remaining, opened = fail(r, now)
            assert (state, opened, remaining) == ("open", 1, open_ms)
            lengths.append(open_ms)
        assert lengths == [1000, 2000, 4000, 8000, 8000, 8000], lengths
        assert r.hget(CIRCUIT, "opens") == "6"


def test_the_pause_is_only_ever_extended():
    with _Redis() as r:
        # A longer pause (a 429's Retry-After) stays as it is: value and time.
        r.set(PAUSE, "HTTP 429", px=60000)
        for now in (0, 1, 2):
            fail(r, now)
        assert r.get(PAUSE) == "HTTP 429"
        assert r.pttl(PAUSE) > 59000
        # An operator's pause until resumed is never touched.
        r.delete(CIRCUIT)
        r.set(PAUSE, "maintenance")
        for now in (10, 11, 12):
            fail(r, now)
        assert r.get(PAUSE) == "maintenance"
        assert r.pttl(PAUSE) == -1
        # A shorter one is extended to the opening.
        r.delete(CIRCUIT)
        r.set(PAUSE, "HTTP 429", px=100)
        for now in (20, 21, 22):
            fail(r, now)
        assert r.get(PAUSE) == "circuit: HTTP 503 from webhook"
        assert r.pttl(PAUSE) > 900


def test_a_success_closes_and_lifts_only_a_circuit_pause():
    with _Redis() as r:
        assert succeed(r, 0) == ["closed", 0]  # nothing to close
        fail(r, 0)
        assert succeed(r, 1) == ["closed", 1]  # the failures are forgotten
        assert not r.exists(CIRCUIT)
        for now in (10, 11, 12):
            fail(r, now)
        # Still open: a late success of a request sent before it opened leaves it alone.
        assert succeed(r, 500) == ["open", 0]
        assert r.exists(CIRCUIT) and r.exists(PAUSE)
        assert probe(r, 1012) == ["won", 0]
        assert succeed(r, 1100) == ["half_open", 1]
        assert not r.exists(CIRCUIT) and not r.exists(PROBE)
        assert not r.exists(PAUSE)
        # An operator paused the account meanwhile: closing the circuit does not lift that pause.
        for now in (2000, 2001, 2002):
            fail(r, now)
        r.set(PAUSE, "provider maintenance")
        assert succeed(r, 3100) == ["half_open", 1]
        assert r.get(PAUSE) == "provider maintenance"
        # After a close the next opening starts from the base again.
        for now in (4000, 4001, 4002):
            fail(r, now)
        assert r.hget(CIRCUIT, "open_ms") == "1000"


def test_the_probe_lease_is_exclusive_across_clients():
    with _Redis() as r:
        assert probe(r, 0) == ["closed", 0]  # no circuit: send as usual
        for now in (0, 1, 2):
            fail(r, now)
        assert probe(r, 500) == ["open", 502]
        clients = [redis.Redis(port=r.connection_pool.connection_kwargs["port"], decode_responses=True)
                   for _ in range(3)]
        barrier = threading.Barrier(3)
        answers = [None] * 3

        def take(i):
            barrier.wait()
            answers[i] = probe(clients[i], 1002, owner="pod-%d" % i, lease=30000)

        threads = [threading.Thread(target=take, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        verdicts = sorted(a[0] for a in answers)
        assert verdicts == ["busy", "busy", "won"], answers
        winner = [i for i in range(3) if answers[i][0] == "won"][0]
        assert r.get(PROBE) == "pod-%d" % winner
        assert all(29000 < a[1] <= 30000 for a in answers if a[0] == "busy"), answers
        # The same attempt asking again (a lost reply) still holds it; nobody else does.
        assert probe(r, 1003, owner="pod-%d" % winner) == ["won", 0]
        assert probe(r, 1003, owner="pod-9")[0] == "busy"
        # The probe failed: open again, longer, and the lease is dropped for the next half-open phase.
        assert fail(r, 1100)[:4] == ["open", 4, 2, 2000]
        assert not r.exists(PROBE)
        assert probe(r, 3100, owner="pod-9") == ["won", 0]


def test_the_circuit_hash_has_a_ttl():
    with _Redis() as r:
        fail(r, 0, base=1000, cap=8000)
        # Failures below the threshold are forgotten after max_open_ms without another.
        assert 7000 < r.pttl(CIRCUIT) <= 8000
        fail(r, 1)
        fail(r, 2)
        # Open: the opening plus max_open_ms for the half-open phase to find a probe.
        assert 8000 < r.pttl(CIRCUIT) <= 9000
        assert 0 < r.pttl(PAUSE) <= 1000
        assert probe(r, 1002, lease=5000) == ["won", 0]
        assert 4000 < r.pttl(PROBE) <= 5000


def test_the_scripts_run_on_redis_clock_without_an_override():
    with _Redis() as r:
        for _ in range(3):
            fail(r, "", base=200)
        state, failures, opens, open_ms, remaining, opened = fail(r, "", base=200)  # a late failure while open
        assert (state, failures, opens, open_ms, opened) == ("open", 4, 1, 200, 0) and 0 < remaining <= 200
        assert probe(r, "")[0] == "open"
        assert succeed(r, "") == ["open", 0]
        time.sleep(0.25)
        assert probe(r, "") == ["won", 0]
        assert succeed(r, "") == ["half_open", 1]
        assert r.keys("outq:*") == []
