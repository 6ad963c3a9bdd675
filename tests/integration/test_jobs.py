"""Where a job is, through the real binary (issue 15, item 5): `outq job ID` (waiting,
in flight on which consumer, delayed until when and why, done), `job cancel` and its
alias `cancel`, `job retry-now`, `outq list waiting|delayed|inflight`, `stats --watch`
and the progress of a large enqueue."""
import json
import os
import pty
import select
import signal
import subprocess
import time

from harness import OUTQ, Env, job, wait_until


def _in_delayed(env, job_id):
    for token in env.r.zrange(env.key("delayed"), 0, -1):
        raw = env.r.hget(env.key("delayed:" + token), "job")
        if raw and json.loads(raw).get("id") == job_id:
            return token
    return None


def test_job_says_where_a_job_is_and_list_shows_each_kind():
    with Env() as env:
        config = env.config()
        config["providers"]["webhook"]["http"]["request_timeout_ms"] = 20000
        worker = env.worker(config)
        wait_until(lambda: env.r.exists(env.key("jobs")) and env.r.xinfo_groups(env.key("jobs")), 30, "the group")
        later = int(time.time() * 1000) + 3600 * 1000
        nb = job("nb-1")
        nb["not_before"] = later
        env.enqueue([job("slow-1", sandbox={"delay_ms": 6000}),
                     job("rl-1", account="b", sandbox={"status": 429, "retry_after": 3600, "times": 1}), nb])

        # In flight: the marker's entry and since, XPENDING's consumer.
        wait_until(lambda: (env.result_value("slow-1") or {}).get("status") == "sending"
                   and env.pending_entries(), 30, "slow-1 in flight")
        marker = env.result_value("slow-1")
        [(entry, consumer, deliveries)] = [p for p in env.pending_entries() if p[0] == marker["entry"]]
        where = env.cli_json("job", "slow-1")
        assert where["state"] == "in flight" and where["entry"] == entry and where["consumer"] == consumer, where
        assert where["since"] == marker["since"] and where["deliveries"] == deliveries, where
        text = env.cli("job", "slow-1").stdout
        assert "in flight" in text and consumer in text, text
        inflight = env.cli_json("list", "inflight")
        assert [(j["id"], j["consumer"]) for j in inflight["jobs"]] == [("slow-1", consumer)], inflight
        assert env.cli_json("list", "inflight", "--account", "b")["jobs"] == []

        # Delayed: until when and why.
        wait_until(lambda: _in_delayed(env, "rl-1") and _in_delayed(env, "nb-1"), 30, "rl-1 and nb-1 delayed")
        where = env.cli_json("job", "rl-1")
        assert where["state"] == "delayed" and where["due_at"] > time.time() * 1000 + 3000 * 1000, where
        assert where["why"].startswith("retry after rate_limited (HTTP 429)"), where
        assert where["token"] == _in_delayed(env, "rl-1"), where
        where = env.cli_json("job", "nb-1")
        assert where["state"] == "delayed" and where["due_at"] == later and "not_before" in where["why"], where
        delayed = env.cli_json("list", "delayed")
        assert [j["id"] for j in delayed["jobs"]] == ["rl-1", "nb-1"] or \
            [j["id"] for j in delayed["jobs"]] == ["nb-1", "rl-1"], delayed
        assert [j["id"] for j in env.cli_json("list", "delayed", "--account", "b")["jobs"]] == ["rl-1"]
        assert [j["id"] for j in env.cli_json("list", "delayed", "--limit", "1")["jobs"]].__len__() == 1
        assert "rate_limited" in env.cli("list", "delayed").stdout

        # Done: the result value.
        wait_until(lambda: (env.result_value("slow-1") or {}).get("status") == "sent", 30, "slow-1 sent")
        where = env.cli_json("job", "slow-1")
        assert where["state"] == "done" and where["status"] == "sent" and where["result"]["attempts"] == 1, where

        # Waiting: in the stream, not delivered (no worker running now).
        worker.stop()
        env.enqueue([job("w-1"), job("w-2"), job("w-3", account="b")])
        where = env.cli_json("job", "w-1")
        assert where["state"] == "waiting" and where["provider_account"] == "webhook/a", where
        assert [j["id"] for j in env.cli_json("list", "waiting")["jobs"]] == ["w-1", "w-2", "w-3"]
        assert [j["id"] for j in env.cli_json("list", "waiting", "--account", "b")["jobs"]] == ["w-3"]
        assert [j["id"] for j in env.cli_json("list", "waiting", "--provider", "mews")["jobs"]] == []
        out = env.cli("list", "wating", check=False)
        assert out.returncode == 2 and "did you mean 'waiting'?" in out.stderr, out.stderr

        # Nowhere: exit 1; a bounded scan says so.
        out = env.cli("job", "nope", check=False)
        assert out.returncode == 1 and "neither waiting nor delayed" in out.stderr, out.stderr
        out = env.cli("job", "nope", "--scan-limit", "1", "--json", check=False)
        assert out.returncode == 1 and "raise --scan-limit" in out.stderr, out.stderr
        assert json.loads(out.stdout)["scanned"] == {"delayed": 1, "delayed_complete": False, "stream": 1,
                                                     "stream_complete": False, "limit": 1}, out.stdout

        # cancel: `job cancel`, and `cancel` still works (an alias).
        assert env.cli_json("job", "cancel", "w-2")["cancelled"] is True
        assert env.cli_json("cancel", "w-3", "--reason", "alias")["cancelled"] is True
        assert env.result_value("w-3")["status"] == "cancelled"
        where = env.cli_json("job", "w-2")
        assert where["state"] == "done" and where["status"] == "cancelled", where

        # retry-now: a delayed job due now; one that is not delayed is an error.
        out = env.cli("job", "retry-now", "w-1", check=False)
        assert out.returncode == 1 and "is not delayed" in out.stderr, out.stderr
        env.r.delete("outq:{t@webhook/b}:pause")
        before = int(time.time() * 1000)
        moved = env.cli_json("job", "retry-now", "rl-1")
        assert moved["id"] == "rl-1" and moved["was_due_at"] > before + 3000 * 1000, moved
        assert env.r.zscore(env.key("delayed"), moved["token"]) <= time.time() * 1000
        env.worker(config)
        results = env.wait_results(["rl-1", "w-1"])
        assert results["rl-1"]["status"] == "sent" and results["w-1"]["status"] == "sent", results
        assert env.result_value("w-2")["status"] == "cancelled"
        assert _in_delayed(env, "nb-1"), "nb-1 stays delayed"


def test_retry_now_and_resume_wake_the_movers_at_once():
    """`job retry-now` and `resume` make delayed jobs due now and say so on the control
    channel (`due`), so the mover moves them at once, not at its next poll: with
    mover_poll_ms at a minute, both jobs are sent within seconds."""
    with Env() as env:
        config = env.config(mover_poll_ms=60000)
        config["providers"]["webhook"]["retry"].update({"base_ms": 3600000, "cap_ms": 3600000})  # up to an hour
        worker = env.worker(config)
        wait_until(lambda: env.r.exists(env.key("jobs")) and env.r.xinfo_groups(env.key("jobs")), 30, "the group")
        nb = job("nb-1")
        nb["not_before"] = int(time.time() * 1000) + 3600 * 1000
        env.enqueue([job("r-1", sandbox={"status": 500, "times": 1}),
                     job("rl-1", account="b", sandbox={"status": 429, "retry_after": 3600, "times": 1}), nb])
        wait_until(lambda: _in_delayed(env, "r-1") and _in_delayed(env, "rl-1") and _in_delayed(env, "nb-1"), 30,
                   "r-1, rl-1 and nb-1 delayed")
        # Its own not_before: moved now, it would only be delayed again. Said, not done.
        token = _in_delayed(env, "nb-1")
        out = env.cli("job", "retry-now", "nb-1", check=False)
        assert out.returncode == 1 and "waits for its own not_before" in out.stderr, out.stderr
        assert env.r.zscore(env.key("delayed"), token) == nb["not_before"]
        time.sleep(0.5)  # the mover has gone back to sleep, until its next poll a minute away

        started = time.monotonic()
        moved = env.cli_json("job", "retry-now", "r-1")
        assert moved["id"] == "r-1", moved
        assert env.wait_results(["r-1"], timeout=10)["r-1"]["status"] == "sent"
        assert time.monotonic() - started < 10

        started = time.monotonic()
        resumed = env.cli_json("resume", "webhook", "b")
        assert resumed["was_paused"] is True and resumed["held_jobs_due_now"] == 1, resumed
        assert env.wait_results(["rl-1"], timeout=10)["rl-1"]["status"] == "sent"
        assert time.monotonic() - started < 10
        worker.stop()


def test_stats_watch_refreshes_every_interval_until_sigint():
    with Env() as env:
        environment = {k: v for k, v in os.environ.items() if k != "OUTQ_REDIS_URL"}
        for extra, starts, blocks in (([], "--- ", 4), (["--json"], "{", 3)):
            proc = subprocess.Popen([OUTQ, "stats", "--watch", "--interval", "200ms", "--redis", env.redis.url,
                                     "--queue", env.queue] + extra,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
            try:
                lines = []
                while sum(1 for line in lines if line.startswith(starts)) < blocks:
                    line = proc.stdout.readline()
                    assert line, "stats --watch ended early: %s" % proc.stderr.read()
                    lines.append(line)
                proc.send_signal(signal.SIGINT)
                assert proc.wait(timeout=10) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if extra:
                for line in lines:
                    assert json.loads(line)["queue"] == "t"
            else:
                assert sum(1 for line in lines if line.startswith("waiting ")) >= 3, lines
        # On a terminal: the screen is cleared before each refresh, like top.
        leader, follower = pty.openpty()
        proc = subprocess.Popen([OUTQ, "stats", "--watch", "--interval", "200ms", "--redis", env.redis.url,
                                 "--queue", env.queue], stdout=follower, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, env=environment)
        os.close(follower)
        seen = b""
        try:
            deadline = time.monotonic() + 20
            while seen.count(b"\x1b[H\x1b[2J") < 3 and time.monotonic() < deadline:
                ready, _, _ = select.select([leader], [], [], 0.5)
                if ready:
                    seen += os.read(leader, 4096)
            assert seen.count(b"\x1b[H\x1b[2J") >= 3 and b"--- " not in seen, seen[-300:]
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(leader)


def test_enqueue_of_a_large_file_shows_progress_per_thousand():
    with Env() as env:
        text = "".join(json.dumps(job("bulk-%d" % i)) + "\n" for i in range(2500))
        out = env.cli("enqueue", "-", input=text)
        assert "outq: enqueued 1,000 of 2,500" in out.stderr and "outq: enqueued 2,000 of 2,500" in out.stderr, \
            out.stderr
        assert "enqueued 2500 job(s)" in out.stdout, out.stdout
        small = env.cli("enqueue", "-", input=json.dumps(job("one")))
        assert "outq: enqueued" not in small.stderr, small.stderr


def test_job_and_list_print_valid_json_whatever_bytes_a_job_holds():
    with Env() as env:
        raw = b'{"v":1,"id":"bin-\xff","provider":"webhook","account":"a\xfe\x1b","message":{"text":"\xe2\x82"}}'
        env.r.xadd(env.key("jobs"), {"job": raw})
        token = b"1700000000000-0"
        env.r.hset(env.key("delayed:").encode() + token,
                   mapping={"job": raw.replace(b"bin-", b"del-"),
                            "history": b'[{"at":1,"status":503,"class":"retryable","error":"bad \xff"}]'})
        env.r.zadd(env.key("delayed"), {token: 4102444800000})
        env.r.xadd(env.key("dead"), {"id": b"bin-\xff", "job": raw, "error": b"HTTP 400 \xff", "http_status": "400"})
        environment = {k: v for k, v in os.environ.items() if k != "OUTQ_REDIS_URL"}

        def outq_json(*args):
            out = subprocess.run([OUTQ] + list(args) + ["--json", "--redis", env.redis.url, "--queue", env.queue],
                                 capture_output=True, timeout=60, env=environment)
            try:
                return out.returncode, json.loads(out.stdout.decode("utf-8"))
            except ValueError as e:
                raise AssertionError("%s --json printed no valid JSON (%s): %r" % (args, e, out.stdout[:300]))

        code, where = outq_json("job", b"bin-\xff")
        assert code == 0 and where["state"] == "waiting" and where["id"] == "bin-\ufffd", where
        assert where["provider_account"] == "webhook/a\ufffd\x1b", where
        code, where = outq_json("job", b"del-\xff")
        assert code == 0 and where["state"] == "delayed" and where["why"].endswith("bad \ufffd (attempt 1)"), where
        code, listed = outq_json("list", "waiting")
        assert code == 0 and [j["id"] for j in listed["jobs"]] == ["bin-\ufffd"], listed
        code, listed = outq_json("list", "delayed")
        assert code == 0 and [j["id"] for j in listed["jobs"]] == ["del-\ufffd"], listed
        code, deleted = outq_json("dead", "purge", "--grep", "HTTP 400", "--dry-run")
        assert code == 0 and [x["id"] for x in deleted["would_delete"]] == ["bin-\ufffd"], deleted
        code, listed = outq_json("dead", "list", "--status", "4xx")
        assert code == 0 and listed[0]["replayed"] is None, listed
