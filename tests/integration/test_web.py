"""The web dashboard (issue 20): `outq web` against a real redis-server, with dead
letters a real worker wrote, first through its JSON API, then in Debian's chromium
(headless, driven over the DevTools protocol): the counts, a text filter, a replay
with the token that a worker then sends, a hostile message shown as text, a change
refused without the token. Screenshots of each page go to $OUTQ_ARTEFACTS
(default /tmp/outq-artefacts)."""
import http.client
import json
import os
import re
import subprocess
import time

import harness
from harness import Env, job, wait_until

TOKEN = "web-token-1f2e3d"
ARTEFACTS = os.environ.get("OUTQ_ARTEFACTS", "/tmp/outq-artefacts")


class Web:
    """`outq web` on a free loopback port, stopped by its PID."""

    def __init__(self, env, *extra, token=TOKEN):
        self.log_path = os.path.join(env.dir, "web%d.log" % time.monotonic_ns())
        environment = {k: v for k, v in os.environ.items() if k not in ("OUTQ_REDIS_URL", "OUTQ_WEB_TOKEN")}
        if token:
            environment["OUTQ_WEB_TOKEN"] = token
        self.proc = subprocess.Popen([harness.OUTQ, "web", "--redis", env.redis.url, "--queue", env.queue,
                                      "--listen", "127.0.0.1:0"] + list(extra),
                                     stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"), env=environment)

        def port():
            m = re.search(r'msg="web dashboard listening" address=127\.0\.0\.1:(\d+)', open(self.log_path).read())
            return int(m.group(1)) if m else None

        wait_until(lambda: port() or self.proc.poll() is not None, 20, "outq web to listen")
        assert self.proc.poll() is None, open(self.log_path).read()
        self.port = port()
        self.base = "http://127.0.0.1:%d" % self.port

    def request(self, method, path, body=None, token=None, host=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": host or "127.0.0.1:%d" % self.port}
        if token:
            headers["X-Outq-Token"] = token
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        return self.proc.returncode


def _dead_letters(env, n, config=None):
    """n jobs the sandbox refuses once (400), so each is a dead letter whose replay is sent;
    one of them carries a hostile message text."""
    ids = ["dl%02d" % i for i in range(n)]
    jobs = [job(i, sandbox={"status": 400, "times": 1, "body": "{\"error\":\"field %d rejected\"}" % k},
                text="<script>document.title='owned'</script>" if k == 0 else "hello %d" % k)
            for k, i in enumerate(ids)]
    env.enqueue(jobs)
    w = env.worker(config)
    results = env.wait_results(ids)
    assert {r["status"] for r in results.values()} == {"dead"}, results
    return ids, w


def test_web_api_counts_filters_and_replays_only_with_the_token():
    with Env() as env:
        ids, w = _dead_letters(env, 12)
        web = Web(env)
        try:
            status, o = web.get("/api/overview")
            assert status == 200 and o["dead"] == 12 and o["partitions"] == 1 and o["consumers"] >= 1, o
            assert o["consumers_alive"] == 1, o  # the one worker, reading now
            status, page = web.get("/api/dead?limit=5")
            assert status == 200 and len(page["letters"]) == 5 and page["more"] and page["total"] == 12, page
            status, older = web.get("/api/dead?limit=5&before=" + page["next_before"])
            assert [l["entry"] for l in older["letters"]] and \
                not set(l["entry"] for l in older["letters"]) & set(l["entry"] for l in page["letters"])
            status, found = web.get("/api/dead?q=field%207%20rejected")
            assert [l["id"] for l in found["letters"]] == ["dl07"], found
            status, bad = web.get("/api/dead?limit=9999")
            assert status == 400 and "limit" in bad["error"]
            letter = found["letters"][0]
            status, one = web.get("/api/dead/%d/%s" % (letter["partition"], letter["entry"]))
            assert status == 200 and json.loads(one["fields"]["job"])["id"] == "dl07", one
            body = {"letters": [{"partition": letter["partition"], "entry": letter["entry"]}]}
            # DNS rebinding: a page of another site, its name pointed at 127.0.0.1, sends its own Host.
            status, refused = web.get("/api/overview", host="attacker.example:%d" % web.port)
            assert status == 421, refused
            status, refused = web.post("/api/dead/replay", body)
            assert status == 401 and "token" in refused["error"], refused
            status, refused = web.post("/api/dead/replay", body, token="wrong")
            assert status == 401, refused
            assert env.r.hlen(env.key("replayed")) == 0
            status, done = web.post("/api/dead/replay", body, token=TOKEN)
            assert status == 200 and done["results"][0]["outcome"].startswith("replayed as"), done
            assert env.wait_results(["dl07"])["dl07"]["status"] == "sent"
            # Replay all matching: bound to what its dry run counted.
            status, dry = web.post("/api/dead/replay-matching", {"filter": {"q": "rejected"}, "dry_run": True},
                                   token=TOKEN)
            assert status == 200 and dry["count"] == 11, dry
            env.r.xadd(env.key("dead"), {"id": "late", "provider": "webhook", "account": "a",
                                         "error_class": "permanent", "error": "late rejected",
                                         "job": json.dumps(job("late"))})
            status, changed = web.post("/api/dead/replay-matching",
                                       {"filter": {"q": "rejected"}, "upto": dry["upto"], "count": 10}, token=TOKEN)
            assert status == 409, changed
            status, done = web.post("/api/dead/replay-matching",
                                    {"filter": {"q": "rejected"}, "upto": dry["upto"], "count": dry["count"]},
                                    token=TOKEN)
            assert status == 200 and done["replayed"] == 11, done  # the late letter is past `upto`: not replayed
            results = env.wait_results(ids)
            assert {r["status"] for r in results.values()} == {"sent"}, results
            assert env.result("late") == {}
            # A job by id, and the accounts: a pause and a resume, each only with the token.
            status, j = web.get("/api/job/dl07")
            assert status == 200 and j["result"]["status"] == "sent" and j["partition"] == 0, j
            status, j = web.get("/api/job/never-enqueued")
            assert status == 200 and j["result"] is None, j
            change = {"provider": "webhook", "account": "b", "reason": "partner maintenance"}
            status, refused = web.post("/api/accounts/pause", change)
            assert status == 401, refused
            status, done = web.post("/api/accounts/pause", change, token=TOKEN)
            assert status == 200 and done["paused"], done
            assert env.r.get("outq:{%s@webhook/b}:pause" % env.queue) == "partner maintenance"
            status, accounts = web.get("/api/accounts")
            b = next(a for a in accounts["accounts"] if a["account"] == "webhook/b")
            assert b["paused"] and b["pause_reason"] == "partner maintenance" and b["pause_remaining_ms"] is None, b
            status, done = web.post("/api/accounts/resume", {"provider": "webhook", "account": "b"}, token=TOKEN)
            assert status == 200 and done["was_paused"], done
            assert env.r.get("outq:{%s@webhook/b}:pause" % env.queue) is None
        finally:
            web.stop()
        ro = Web(env, "--read-only")
        try:
            status, refused = ro.post("/api/dead/replay", {"letters": []}, token=TOKEN)
            assert status == 403 and "read-only" in refused["error"], refused
        finally:
            ro.stop()
        w.sigterm()


def _limited_config(env, **overrides):
    """Snapshots every 200 ms, and a rate limit on account a for the page to show beside its use."""
    c = env.config(snapshot_interval_ms=200, **overrides)
    c["providers"]["webhook"]["accounts"]["a"]["rate_limit"] = {"requests": 500, "per_ms": 1000, "max_in_flight": 20}
    return c


def test_web_shows_the_last_hour_latency_and_limits_from_the_workers_snapshots():
    with Env() as env:
        sent = [job("ok%02d" % i) for i in range(30)]
        refused = [job("no%02d" % i, sandbox={"status": 400, "body": "{\"error\":\"bad field\"}"}) for i in range(4)]
        stranger = [job("st%02d" % i, account="nobody") for i in range(3)]  # not configured: a validation letter
        env.enqueue(sent + refused + stranger)
        w = env.worker(_limited_config(env, consumer="snapshot-worker"))
        env.wait_results([j["id"] for j in sent + refused + stranger])
        dead_class = {l["id"]: l["error_class"] for _, l in env.r.xrange(env.key("dead"))}
        web = Web(env)
        try:
            def overview():
                status, o = web.get("/api/overview")
                assert status == 200, o
                return o if o["last_hour"]["sent"] == 30 and o["last_hour"]["dead"] == 7 else None

            o = wait_until(overview, 20, "the workers' counts to reach the dashboard")
            assert len(o["activity"]) == 60 and o["activity"][0]["t"] < o["activity"][-1]["t"], o["activity"][:2]
            assert sum(m["sent"] for m in o["activity"]) == 30
            [worker] = o["workers"]
            assert worker["consumer"] == "snapshot-worker" and worker["concurrency"] == 64, worker
            assert worker["sent"] == 30 and worker["dead"] == 7 and worker["age_ms"] < 5000, worker

            status, accounts = web.get("/api/accounts")
            assert status == 200, accounts
            by_name = {a["account"]: a for a in accounts["accounts"]}
            a = by_name["webhook/a"]
            assert a["limits"] == {"requests": 500, "window_ms": 1000, "burst": 1, "max_in_flight": 20}, a
            assert not a["limits_differ"]
            assert a["last_hour"]["sent"] == 30 and a["last_hour"]["dead"] == 4, a
            assert a["last_hour"]["dead_by_class"] == {dead_class["no00"]: 4}, a
            latency = a["latency_ms"]
            assert latency["exchanges"] == 34 and latency["minutes"] == 15, latency
            assert 0 < latency["p50"] <= latency["p99"] <= 2000, latency
            # An account no configuration names is counted as _unknown_, never by the producer's name.
            unknown = by_name["webhook/_unknown_"]
            assert unknown["last_hour"]["dead_by_class"] == {dead_class["st00"]: 3}, unknown
            assert unknown["limits"] is None and "webhook/nobody" not in by_name
            for key in env.r.scan_iter("outq:{%s}:activity:*" % env.queue):
                assert 0 < env.r.ttl(key) <= 7200
                assert not any("nobody" in f for f in env.r.hkeys(key))
            snapshot = env.key("worker:snapshot-worker")
            assert 0 < env.r.pttl(snapshot) <= 1600, env.r.pttl(snapshot)
        finally:
            web.stop()
        # A stopped worker takes its snapshot away; its last counts stay in the buckets.
        w.sigterm()
        assert w.wait(30) == 0
        assert not env.r.exists(env.key("worker:snapshot-worker"))


def test_web_refuses_to_listen_off_loopback_without_a_token():
    with Env() as env:
        environment = {k: v for k, v in os.environ.items() if k != "OUTQ_WEB_TOKEN"}
        out = subprocess.run([harness.OUTQ, "web", "--redis", env.redis.url, "--queue", env.queue,
                              "--listen", "0.0.0.0:0"], capture_output=True, text=True, timeout=20, env=environment)
        assert out.returncode == 2 and "needs an operator token" in out.stderr, (out.returncode, out.stderr)


def test_web_pages_in_a_real_browser_show_the_counts_filter_escape_and_replay_with_the_token():
    import browser  # here: the other tests of this file need no chromium

    os.makedirs(ARTEFACTS, exist_ok=True)
    with Env() as env:
        ids, w = _dead_letters(env, 6, _limited_config(env))
        env.enqueue([job("fine%02d" % i) for i in range(20)])
        env.wait_results(["fine%02d" % i for i in range(20)])
        web = Web(env)
        b = browser.Browser(env.dir)
        try:
            wait_until(lambda: web.get("/api/overview")[1]["last_hour"]["sent"] == 20, 20, "the snapshot")
            b.open(web.base + "/#overview")
            b.wait_js("document.body.dataset.loaded === 'overview'", what="the overview to load")
            assert b.js("document.getElementById('count-dead').textContent") == "6"
            assert b.js("document.getElementById('queue-name').textContent") == env.queue
            # Loaded again until the worker's read shows (a loaded CI machine can be slow to read).
            b.wait_js("document.getElementById('count-consumers_alive').textContent === '1' || (route(), false)",
                      what="the one worker alive")
            # The chart: a column per minute of the last hour, its bars adding up to what was sent and dead.
            assert b.js("document.querySelectorAll('#activity-chart g').length") == 60
            assert b.js("[...document.querySelectorAll('#activity-chart g')]"
                        ".reduce((n, g) => n + Number(g.dataset.sent), 0)") == 20
            assert b.js("[...document.querySelectorAll('#activity-chart g')]"
                        ".reduce((n, g) => n + Number(g.dataset.dead), 0)") == 6
            assert b.js("document.querySelectorAll('#activity-chart rect.sent').length") >= 1
            assert b.js("document.querySelectorAll('#worker-rows tr').length") == 1
            assert "sent 20, retried 0, dead 6" in b.js("document.getElementById('activity-summary').textContent")
            b.screenshot(os.path.join(ARTEFACTS, "web-overview.png"))

            b.open(web.base + "/#dead")
            b.wait_js("document.querySelectorAll('#dead-rows tr').length === 6", what="six dead letters listed")
            # The hostile text is text: no script element was made of it, and it did not run.
            assert b.js("document.querySelectorAll('#dead-rows script, #letter script').length") == 0
            assert b.js("document.title") == "outq"
            b.screenshot(os.path.join(ARTEFACTS, "web-dead-letters.png"))
            b.js("""(() => { const f = document.getElementById('dead-filter');
                     f.querySelector('[name=q]').value = 'field 3 rejected'; f.requestSubmit(); })()""")
            b.wait_js("document.querySelectorAll('#dead-rows tr').length === 1", what="the filter to leave one")
            assert b.js("document.querySelector('#dead-rows tr').children[2].textContent") == "dl03"

            # The hostile letter, opened: its job is shown as text.
            b.js("""(() => { const f = document.getElementById('dead-filter');
                     f.querySelector('[name=q]').value = 'script'; f.requestSubmit(); })()""")
            b.wait_js("document.querySelectorAll('#dead-rows tr').length === 1 && "
                      "document.querySelector('#dead-rows tr').children[2].textContent === 'dl00'",
                      what="the hostile letter")
            b.js("document.querySelector('#dead-rows tr').click()")
            b.wait_js("!document.getElementById('letter').hidden", what="the letter to open")
            shown = b.js("document.getElementById('letter-fields').textContent")
            assert "<script>document.title='owned'</script>" in shown, shown
            assert b.js("document.querySelectorAll('#letter-fields script').length") == 0
            assert b.js("document.title") == "outq"
            b.screenshot(os.path.join(ARTEFACTS, "web-dead-letter.png"))

            # Without the token the replay is refused, and the page says why.
            b.js("document.getElementById('letter-replay').click()")
            b.wait_js("!document.getElementById('error').hidden", what="the refusal to show")
            assert "token" in b.js("document.getElementById('error').textContent")
            assert env.r.hlen(env.key("replayed")) == 0
            # With it, the letter is replayed and a worker sends it.
            b.js("""(() => { const t = document.getElementById('token'); t.value = '%s';
                     t.dispatchEvent(new Event('change')); })()""" % TOKEN)
            b.js("document.getElementById('letter-replay').click()")
            b.wait_js("document.getElementById('replay-status').textContent.includes('replayed as')",
                      what="the replay to be reported")
            assert env.wait_results(["dl00"])["dl00"]["status"] == "sent"
            assert [r for r in env.hook_requests() if r["headers"].get("idempotency-key") == "dl00"][-1]

            # The job page finds it sent.
            b.open(web.base + "/#job")
            b.js("""(() => { const f = document.getElementById('job-form');
                     f.querySelector('[name=id]').value = 'dl00'; f.requestSubmit(); })()""")
            b.wait_js("document.body.dataset.job === 'dl00'", what="the job to be looked up")
            assert "sent" in b.js("document.getElementById('job-fields').textContent")
            b.screenshot(os.path.join(ARTEFACTS, "web-job.png"))

            # The accounts page: a paused account, resumed with the token (still in the page's field).
            env.r.set("outq:{%s@webhook/a}:pause" % env.queue, "by <i>hand</i>")
            b.open(web.base + "/#accounts")
            b.wait_js("document.body.dataset.loaded === 'accounts'", what="the accounts to load")
            row = "document.querySelector('#account-rows tr[data-account=\"webhook/a\"]')"
            assert "until resumed (by <i>hand</i>)" in b.js(row + ".children[1].textContent")
            assert b.js(row + ".querySelector('.limit').textContent") == "500 per 1 s; at most 20 in flight"
            assert re.match(r"p50 [\d.]+ ms, p99 [\d.]+ ms \(\d+ requests\)$",
                            b.js(row + ".querySelector('.latency').textContent"))
            assert re.match(r"sent 2[01], retried 0, dead 6 \(\w+ 6\)$", b.js(row + ".querySelector('.last-hour').textContent"))
            assert b.js("document.querySelectorAll('#account-rows i').length") == 0
            b.screenshot(os.path.join(ARTEFACTS, "web-accounts.png"))
            b.js(row + ".querySelector('button.resume').click()")
            b.wait_js("document.getElementById('account-status').textContent.includes('was_paused')",
                      what="the resume to be reported")
            assert env.r.get("outq:{%s@webhook/a}:pause" % env.queue) is None
        finally:
            b.close()
            web.stop()
        w.sigterm()
