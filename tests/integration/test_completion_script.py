"""The completion script (src/outq/queue/completion.cpp), run in a real redis-server:
the deferred acknowledgement of sent entries and what it must not let through. The
script is read from the C++ source, so the test runs the very text the worker sends.
ARGV layout: group, ttl, results maxlen, dead maxlen, n, consumer, mode ('0', '1'
gated, 'd' sent entries acknowledged later), then per entry: action, id, release,
due, and four counted lists (result, dead letter, delayed item, results event)."""
import os
import re

from test_limiter_script import _Redis

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
JOBS, RESULTS, DEAD, DELAYED = "outq:{t}:jobs", "outq:{t}:results", "outq:{t}:dead", "outq:{t}:delayed"
GROUP = "outq.v2"


def _script():
    src = open(os.path.join(ROOT, "src", "outq", "queue", "completion.cpp")).read()
    m = re.search(r'const char\* const completion_script = R"lua\((.*?)\)lua";', src, re.S)
    assert m
    return m.group(1)


SCRIPT = _script()


def _lst(items):
    return [len(items)] + list(items)


def complete(r, consumer, mode, entries):
    """entries: [(action, entry id, job id, result value or None, delayed fields, event fields)]"""
    keys = [JOBS, RESULTS, DEAD, DELAYED]
    for _, eid, job_id, *_ in entries:
        keys += ["outq:{t}:result:" + job_id, "outq:{t}:delayed:" + eid]
    argv = [GROUP, 3600, 1000, 0, len(entries), consumer, mode]
    for action, eid, job_id, result, delayed, event in entries:
        argv += [action, eid, "0", 5000]
        argv += _lst([result] if result else []) + _lst([]) + _lst(delayed) + _lst(event)
    return r.eval(SCRIPT, len(keys), *keys, *argv)


def _pending_entry(r, consumer):
    eid = r.xadd(JOBS, {"job": '{"id":"j"}'})
    r.xgroup_create(JOBS, GROUP, id="0", mkstream=True) if not r.exists("created") else None
    r.set("created", 1)
    r.xreadgroup(GROUP, consumer, {JOBS: ">"})
    return eid


def test_sent_entries_are_left_pending_in_deferred_mode_and_acknowledged_otherwise():
    with _Redis() as r:
        eid = _pending_entry(r, "a")
        sent = '{"status":"sent","id":"j","entry":"%s","attempts":1}' % eid
        assert complete(r, "a", "d", [("sent", eid, "j", sent, [], ["id", "j", "status", "sent"])]) == [1]
        assert r.get("outq:{t}:result:j") == sent and r.xlen(RESULTS) == 1
        assert r.xpending(JOBS, GROUP)["pending"] == 1 and r.xlen(JOBS) == 1  # left for the writer's XACK
        r.xack(JOBS, GROUP, eid)
        eid2 = r.xadd(JOBS, {"job": '{"id":"k"}'})
        r.xreadgroup(GROUP, "a", {JOBS: ">"})
        assert complete(r, "a", "0", [("sent", eid2, "k", '{"status":"sent","id":"k"}', [],
                                       ["id", "k", "status", "sent"])]) == [1]
        assert r.xpending(JOBS, GROUP)["pending"] == 0  # not deferred: acknowledged and deleted at once


def test_a_put_back_of_an_entry_another_delivery_sent_makes_no_copy():
    """A worker stalled past the visibility timeout sends a job, wakes and writes its
    true sent outcome, leaving the entry for a deferred XACK; meanwhile the worker that
    took the entry over puts it back (its lane was full). That put-back must not make a
    copy: the copy would come back as a second results event (a `duplicate`)."""
    with _Redis() as r:
        eid = _pending_entry(r, "stalled")
        r.xclaim(JOBS, GROUP, "taker", 0, [eid])  # taken over
        sent = '{"status":"sent","id":"j","entry":"%s","attempts":1}' % eid
        assert complete(r, "stalled", "d", [("sent", eid, "j", sent, [], ["id", "j", "status", "sent"])]) == [1]
        assert complete(r, "taker", "0", [("delay", eid, "j", None, ["job", '{"id":"j"}', "attempts", "1"], [])]) == [0]
        assert r.zcard(DELAYED) == 0 and not r.exists("outq:{t}:delayed:" + eid), "a copy of a sent job"
        assert r.xpending(JOBS, GROUP)["pending"] == 0 and r.xlen(RESULTS) == 1


def test_a_put_back_of_a_second_copy_of_a_sent_job_is_still_made():
    """Another entry of the same job id (a duplicate enqueue) put back while the first
    copy was being sent keeps its delayed copy: it comes back and says `duplicate`."""
    with _Redis() as r:
        first = _pending_entry(r, "a")
        second = r.xadd(JOBS, {"job": '{"id":"j"}'})
        r.xreadgroup(GROUP, "a", {JOBS: ">"})
        sent = '{"status":"sent","id":"j","entry":"%s","attempts":1}' % first
        assert complete(r, "a", "d", [("sent", first, "j", sent, [], ["id", "j", "status", "sent"])]) == [1]
        assert complete(r, "a", "0", [("delay", second, "j", None, ["job", '{"id":"j"}'], [])]) == [1]
        assert r.zcard(DELAYED) == 1


def test_a_copy_the_taker_scheduled_is_dropped_when_the_stalled_worker_writes_sent():
    """The other order (chaos, CI of stop 26): the worker that took the entry over
    schedules a retry first (the stalled worker's request may have reached the provider)
    and releases the marker; then the stalled worker wakes, reads its 200 and writes
    `sent`. The retry copy must go with it, or it comes back as a `duplicate` event."""
    with _Redis() as r:
        eid = _pending_entry(r, "stalled")
        r.set("outq:{t}:result:j", '{"status":"sending","entry":"%s","since":1}' % eid)
        r.xclaim(JOBS, GROUP, "taker", 0, [eid])
        keys = [JOBS, RESULTS, DEAD, DELAYED, "outq:{t}:result:j", "outq:{t}:delayed:" + eid]
        argv = [GROUP, 3600, 1000, 0, 1, "taker", "0", "delay", eid, "1", 5000]
        argv += _lst([]) + _lst([]) + _lst(["job", '{"id":"j"}', "attempts", "1", "origin", eid]) + _lst([])
        assert r.eval(SCRIPT, len(keys), *keys, *argv) == [1]
        assert r.zcard(DELAYED) == 1 and not r.exists("outq:{t}:result:j")  # copy made, marker released
        sent = '{"status":"sent","id":"j","entry":"%s","attempts":1}' % eid
        assert complete(r, "stalled", "d", [("sent", eid, "j", sent, [], ["id", "j", "status", "sent"])]) == [1]
        assert r.get("outq:{t}:result:j") == sent and r.xlen(RESULTS) == 1
        assert r.zcard(DELAYED) == 0 and not r.exists("outq:{t}:delayed:" + eid), "the copy of a sent job stayed"


def test_a_sent_entry_still_holding_its_own_marker_leaves_the_delayed_set_alone():
    """The usual path: the marker is the entry's own, nobody took it over, and the
    script does not touch the delayed set (no call per sent job)."""
    with _Redis() as r:
        eid = _pending_entry(r, "a")
        r.set("outq:{t}:result:j", '{"status":"sending","entry":"%s","since":1}' % eid)
        r.zadd(DELAYED, {eid: 1})  # would be dropped if the script looked
        sent = '{"status":"sent","id":"j","entry":"%s","attempts":1}' % eid
        assert complete(r, "a", "d", [("sent", eid, "j", sent, [], ["id", "j", "status", "sent"])]) == [1]
        assert r.zcard(DELAYED) == 1
