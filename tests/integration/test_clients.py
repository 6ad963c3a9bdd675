"""The producer helpers of clients/ (Python, Node, shell) against a real redis-server, the
sandbox and a real worker: enqueue one and wait, enqueue many and wait for all, an outcome
that is dead (and cancelled), a timeout, the backlog cap (refuse, or wait for room; the
jobs stream never trimmed), invalid jobs refused before any write, and the waiting
pattern that does not miss an outcome written between its first read and its follow:
once made certain (the helper's first read of the result is answered as it was, but only
after the worker wrote the outcome), and many times with the worker running.
A helper that follows the stream from `$` fails the first for certain (and the second only
now and then); one that does not read the result before following fails the second.

The Node helper needs node and clients/node/node_modules (scripts/install-deps.sh runs
`npm ci` there; this test runs it when it is missing). Without node its tests say so and
do nothing else; a failed npm install is a failure."""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from harness import ROOT, Env, job, wait_until

CLIENTS = os.path.join(ROOT, "clients")
sys.path.insert(0, os.path.join(CLIENTS, "python"))
import outq_client  # noqa: E402

NODE_DIR = os.path.join(CLIENTS, "node")
SHELL_DIR = os.path.join(CLIENTS, "shell")
REAL_REDIS_CLI = shutil.which("redis-cli")


def _ids(prefix, n):
    return ["%s-%03d" % (prefix, i) for i in range(n)]


def _wait_outcome_raw(r, key, timeout=30):
    """Until the key holds an outcome (not a `sending` marker)."""
    def done():
        raw = r.get(key)
        return raw is not None and json.loads(raw).get("status") in ("sent", "dead", "cancelled")
    wait_until(done, timeout, "an outcome in %s" % key)


class _StaleFirstGet:
    """A redis client whose first GET of `key` answers what Redis held then, but returns
    only once the worker has written the job's outcome: the outcome lands between the
    helper's first read and its follow of the results stream, every time."""

    def __init__(self, r, key, watcher):
        self._r, self._key, self._watcher, self.armed, self.stale = r, key, watcher, True, None

    def __getattr__(self, name):
        return getattr(self._r, name)

    def get(self, key):
        value = self._r.get(key)
        if self.armed and key == self._key:
            self.armed = False
            self.stale = value
            _wait_outcome_raw(self._watcher, key)
        return value


class _Recorder:
    """A redis client that records the names of the methods used on it."""

    def __init__(self, r):
        self._r, self.used = r, []

    def __getattr__(self, name):
        self.used.append(name)
        return getattr(self._r, name)


# --- Python --------------------------------------------------------------------------
def _py(env, **options):
    return outq_client.Client(env.producer_client(), queue=env.queue, **options)


def test_clients_python_enqueue_one_and_wait_is_sent():
    with Env() as env:
        env.worker()
        outq = _py(env)
        entry = outq.enqueue(dict(job("py-one"), meta={"order": 42}))
        assert entry and "-" in entry, entry
        outcome = outq.wait("py-one", timeout=30)
        assert outcome["status"] == "sent" and outcome["id"] == "py-one", outcome
        assert outcome["meta"] == {"order": 42} and outcome["provider_message_id"].startswith("wh-"), outcome
        assert outq.result("py-one") == outcome
        assert [q["headers"]["idempotency-key"] for q in env.hook_requests()] == ["py-one"]


def test_clients_python_enqueue_many_200_and_wait_for_all():
    with Env() as env:
        outq = _py(env)
        ids = _ids("py-many", 190)
        jobs = [job(i, text="m %s" % i) for i in ids] + [
            {"provider": "webhook", "account": "a", "message": {"text": "no id %d" % n}} for n in range(10)]
        before = env.commandstats().get("xadd", 0)
        recorder = _Recorder(env.redis.client())
        entries = outq_client.Client(recorder, queue=env.queue).enqueue_many(jobs)
        assert recorder.used == ["pipeline"], "one pipeline, not %s" % recorder.used
        assert len(entries) == 200 and len(set(entries)) == 200, entries[:3]
        assert entries == sorted(entries, key=lambda e: tuple(int(p) for p in e.split("-"))), "in order"
        assert env.commandstats()["xadd"] - before == 200
        assert [json.loads(f["job"]) for _, f in env.r.xrange(env.key("jobs"))] == jobs  # as given, in order
        env.worker()
        # A job without an id has its entry id as job id.
        wanted = ids + entries[190:]
        outcomes = outq.wait_many(wanted, timeout=60)
        assert sorted(outcomes) == sorted(wanted), len(outcomes)
        assert all(o["status"] == "sent" for o in outcomes.values()), [o for o in outcomes.values() if o["status"] != "sent"][:3]
        assert all(outcomes[e]["id"] == e for e in entries[190:])
        keys = sorted(q["headers"]["idempotency-key"] for q in env.hook_requests())
        assert keys == sorted(wanted), "each job sent once"


def test_clients_python_wait_returns_dead_and_cancelled_outcomes():
    with Env() as env:
        env.worker()
        outq = _py(env)
        outq.enqueue(job("py-dead", text="x", sandbox={"status": 400, "body": "{\"error\":\"nope\"}"}))
        outq.enqueue(job("py-no-account", account="zz"))
        dead = outq.wait("py-dead", timeout=30)
        assert dead["status"] == "dead" and dead["error_class"] == "permanent" and dead["dead_entry"], dead
        unknown = outq.wait("py-no-account", timeout=30)
        assert unknown["status"] == "dead" and unknown["error_class"] == "validation", unknown
        env.cli("cancel", "py-cancelled")
        assert outq.wait("py-cancelled", timeout=5)["status"] == "cancelled"


def test_clients_python_wait_times_out_on_a_job_that_never_comes():
    with Env() as env:
        env.worker()
        outq = _py(env, poll_s=0.2)
        env.r.set(env.key("result:py-held"), json.dumps({"status": "sending", "entry": "1-0", "since": 1}))
        for job_id, timeout in (("py-never", 1.0), ("py-held", 0.5)):
            t0 = time.monotonic()
            try:
                outcome = outq.wait(job_id, timeout=timeout)
            except TimeoutError as e:
                assert job_id in str(e), e
            else:
                raise AssertionError("wait(%r) returned %r instead of raising TimeoutError" % (job_id, outcome))
            elapsed = time.monotonic() - t0
            assert timeout <= elapsed < timeout + 1.5, elapsed
        assert outq.result("py-held") is None and outq.state("py-held")["status"] == "sending"
        try:
            outq.wait_many(["py-never", "py-never-2"], timeout=0.5)
        except TimeoutError as e:
            assert sorted(e.missing) == ["py-never", "py-never-2"] and e.outcomes == {}, e
        else:
            raise AssertionError("wait_many did not raise TimeoutError")


def test_clients_python_backlog_cap_refuses_or_waits_and_never_trims():
    with Env() as env:
        outq = _py(env, max_backlog=5)
        outq.enqueue_many([job(i) for i in _ids("py-cap", 4)])
        outq.enqueue(job("py-cap-004"))
        for attempt in (lambda: outq.enqueue(job("py-over")), lambda: outq.enqueue_many([job("py-over")])):
            try:
                attempt()
            except outq_client.BacklogFull as e:
                assert e.backlog == 5 and e.max_backlog == 5 and "max_backlog=5" in str(e), e
            else:
                raise AssertionError("a sixth job was accepted over max_backlog=5")
        assert env.r.xlen(env.key("jobs")) == 5, "nothing written, nothing trimmed"
        # A batch that passes the cap is refused whole, even when part of it would fit.
        env.r.xdel(env.key("jobs"), env.r.xrange(env.key("jobs"))[0][0])
        try:
            outq.enqueue_many([job("py-over-1"), job("py-over-2")])
            raise AssertionError("two jobs accepted with room for one")
        except outq_client.BacklogFull:
            pass
        assert env.r.xlen(env.key("jobs")) == 4
        # Waiting for room: the worker drains the stream, then the jobs go in.
        waiting = _py(env, max_backlog=5, backlog_wait=30)
        threading.Timer(0.5, env.worker).start()
        t0 = time.monotonic()
        entries = waiting.enqueue_many([job("py-late-1"), job("py-late-2"), job("py-late-3")])
        assert len(entries) == 3 and time.monotonic() - t0 >= 0.4
        assert waiting.wait_many(["py-late-1", "py-late-2", "py-late-3"], timeout=30)["py-late-3"]["status"] == "sent"
        wait_until(lambda: outq.backlog() == 0, 10, "the worker to delete the entries it finished")
        # A producer without a cap is not limited.
        _py(env).enqueue_many([job(i) for i in _ids("py-free", 8)])


def test_clients_python_invalid_jobs_are_refused_before_any_write():
    with Env() as env:
        outq = _py(env)
        cases = [
            ({"id": "", "provider": "webhook", "account": "a", "message": {}}, "job.id: must be 1-200 bytes"),
            ({"id": "x" * 201, "provider": "webhook", "account": "a", "message": {}}, "job.id: must be 1-200 bytes"),
            ({"id": "é" * 101, "provider": "webhook", "account": "a", "message": {}}, "not 202"),
            ({"id": "tab\there", "provider": "webhook", "account": "a", "message": {}}, "job.id: control character 0x09"),
            ({"id": "del\x7f", "provider": "webhook", "account": "a", "message": {}}, "control character 0x7F"),
            ({"id": " lead", "provider": "webhook", "account": "a", "message": {}}, "job.id: leading or trailing space"),
            ({"id": 7, "provider": "webhook", "account": "a", "message": {}}, "job.id: must be a string"),
            ({"id": "x", "account": "a", "message": {}}, "job.provider: missing"),
            ({"id": "x", "provider": "webhook", "message": {}}, "job.account: missing"),
            ({"id": "x", "provider": "", "account": "a", "message": {}}, "job.provider: must be a non-empty"),
            ({"id": "x", "provider": "webhook", "account": "a"}, "job.message: missing"),
            ({"id": "x", "provider": "webhook", "account": "a", "message": "hi"}, "job.message: must be"),
            ({"v": 2, "id": "x", "provider": "webhook", "account": "a", "message": {}}, "job.v: only 1"),
            ("not a dict", "job: must be a dict"),
            ({"id": "x", "provider": "webhook", "account": "a", "message": {"text": "\udc00"}}, "lone surrogate"),
        ]
        for bad, words in cases:
            try:
                outq.enqueue(bad)
            except outq_client.InvalidJob as e:
                assert words in str(e), (bad, str(e))
            else:
                raise AssertionError("accepted %r" % (bad,))
        try:
            outq.enqueue_many([job("ok-1"), job("ok-2"), {"id": "bad", "provider": "webhook", "message": {}}])
        except outq_client.InvalidJob as e:
            assert str(e).startswith("jobs[2].account: missing"), e
        else:
            raise AssertionError("a batch with an invalid job was accepted")
        assert not env.r.exists(env.key("jobs")), "nothing was written"
        assert outq.enqueue(job("é" * 100))  # 200 bytes: accepted


def test_clients_python_wait_sees_an_outcome_written_between_its_first_read_and_its_follow():
    with Env() as env:
        env.worker()
        watcher = env.redis.client()
        for n in range(3):
            job_id = "py-window-%d" % n
            stale = _StaleFirstGet(env.redis.client(), env.key("result:" + job_id), watcher)
            outq = outq_client.Client(stale, queue=env.queue, poll_s=60)  # only the stream can wake it
            outq.enqueue(job(job_id, text="x", sandbox={"delay_ms": 150}))
            t0 = time.monotonic()
            outcome = outq.wait(job_id, timeout=5)
            assert outcome["status"] == "sent", outcome
            assert stale.armed is False and (stale.stale is None or '"sending"' in stale.stale), stale.stale
            assert time.monotonic() - t0 < 4, "woken by the stream, not by the timeout's last read"
        # The same for wait_many, whose first read is one MGET.
        ids = ["py-window-many-1", "py-window-many-2"]

        class StaleFirstMget(_StaleFirstGet):
            def mget(self, keys):
                values = self._r.mget(keys)
                if self.armed:
                    self.armed = False
                    for key in keys:
                        _wait_outcome_raw(self._watcher, key)
                return values

        stale = StaleFirstMget(env.redis.client(), None, watcher)
        outq = outq_client.Client(stale, queue=env.queue, poll_s=60)
        outq.enqueue_many([job(i, text="x", sandbox={"delay_ms": 150}) for i in ids])
        t0 = time.monotonic()
        outcomes = outq.wait_many(ids, timeout=5)
        assert sorted(outcomes) == ids and stale.armed is False
        assert time.monotonic() - t0 < 4, "woken by the stream, not by the timeout's last read"


def test_clients_python_enqueue_then_wait_many_times_with_the_worker_running():
    with Env() as env:
        env.worker()
        outq = _py(env, poll_s=60)  # a missed outcome would end in TimeoutError, not a poll
        env.enqueue([job("warm-up")])
        outq.wait("warm-up", timeout=30)
        rng = random.Random(15)
        for n in range(300):
            job_id = "py-race-%03d" % n
            outq.enqueue(job(job_id))
            time.sleep(rng.random() * 0.004)  # the first read lands before, on or after the outcome
            assert outq.wait(job_id, timeout=5)["status"] == "sent"
        assert len(env.hook_requests()) == 301


# --- Node ----------------------------------------------------------------------------
_NODE_DRIVER = r"""
import { createClient } from "redis";
import * as outq from %(module)s;
import { createInterface } from "node:readline";

const [url, queue] = process.argv.slice(2);
const redis = await createClient({ url }).connect();
const watcher = await redis.duplicate().connect();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isOutcome = (raw) => raw !== null && ["sent", "dead", "cancelled"].includes(JSON.parse(String(raw)).status);

// A client whose first GET (or MGET) answers what Redis held then, returned only once every
// key read holds an outcome: the outcome lands between the first read and the follow.
function staleFirstRead(state) {
  const wrapper = {
    async sendCommand(args) {
      const answer = await redis.sendCommand(args);
      if (state.armed && (args[0] === "GET" || args[0] === "MGET")) {
        state.armed = false;
        state.stale = answer;
        for (const key of args.slice(1)) {
          const t0 = Date.now();
          while (!isOutcome(await watcher.sendCommand(["GET", key]))) {
            if (Date.now() - t0 > 30000) throw new Error("no outcome in " + key);
            await sleep(5);
          }
        }
      }
      return answer;
    },
    multi: () => redis.multi(),
    duplicate: (...a) => redis.duplicate(...a),
  };
  return wrapper;
}

async function run(cmd) {
  const state = { armed: !!cmd.staleFirstRead, stale: null };
  const c = new outq.OutqClient(cmd.staleFirstRead ? staleFirstRead(state) : redis, { queue, ...(cmd.options || {}) });
  const t0 = Date.now();
  let value;
  try {
    switch (cmd.op) {
      case "enqueue": value = await c.enqueue(cmd.job); break;
      case "enqueueMany": value = await c.enqueueMany(cmd.jobs); break;
      case "wait": value = await c.wait(cmd.id, { timeoutMs: cmd.timeoutMs }); break;
      case "waitMany": value = await c.waitMany(cmd.ids, { timeoutMs: cmd.timeoutMs }); break;
      case "result": value = await c.result(cmd.id); break;
      case "backlog": value = await c.backlog(); break;
      case "enqueueWaitLoop": {  // enqueue, a pause of 0..maxSleepMs, wait: n times
        value = [];
        for (const j of cmd.jobs) {
          await c.enqueue(j);
          await sleep(Math.random() * (cmd.maxSleepMs || 0));
          value.push((await c.wait(j.id, { timeoutMs: cmd.timeoutMs })).status);
        }
        break;
      }
      default: throw new Error("unknown op " + cmd.op);
    }
  } finally {
    await c.close();
  }
  return { value, ms: Date.now() - t0, armed: state.armed, stale: state.stale };
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  let answer;
  const t0 = Date.now();
  try {
    answer = await run(JSON.parse(line));
  } catch (e) {
    answer = { error: e.name, message: e.message, missing: e.missing, outcomes: e.outcomes, backlog: e.backlog,
               ms: Date.now() - t0 };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await watcher.close();
await redis.close();
"""

_node_ready = None


def _node_available():
    """True when node and the helper's node_modules are there (npm ci is run when they are
    missing: an install that fails is a failure); False, said aloud, without node."""
    global _node_ready
    if _node_ready is not None:
        return _node_ready
    if not shutil.which("node"):
        print("SKIP: node is not installed; the Node helper (clients/node) was not tested", flush=True)
        _node_ready = False
        return False
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "redis")):
        npm = shutil.which("npm")
        assert npm, "node is installed but npm is not: cannot install clients/node's dependencies"
        out = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, "npm ci in clients/node failed: %s %s" % (out.stdout, out.stderr)
    _node_ready = True
    return True


class _Node:
    """The Node helper in one node process, driven one JSON command a line."""

    def __init__(self, env):
        self.dir = tempfile.mkdtemp(prefix="outq-node-", dir=env.dir)
        os.symlink(os.path.join(NODE_DIR, "node_modules"), os.path.join(self.dir, "node_modules"))
        module = json.dumps("file://" + os.path.join(NODE_DIR, "outq.mjs"))
        with open(os.path.join(self.dir, "driver.mjs"), "w") as f:
            f.write(_NODE_DRIVER % {"module": module})
        self.proc = subprocess.Popen(["node", os.path.join(self.dir, "driver.mjs"), env.producer_url(), env.queue],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return False

    def __call__(self, op, **cmd):
        cmd["op"] = op
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("the node driver ended: %s" % self.proc.stderr.read())
        return json.loads(line)

    def ok(self, op, **cmd):
        answer = self(op, **cmd)
        assert "error" not in answer, "node %s: %s" % (op, answer)
        return answer["value"]


def test_clients_node_enqueue_one_and_wait_is_sent():
    if not _node_available():
        return
    with Env() as env, _Node(env) as node:
        env.worker()
        entry = node.ok("enqueue", job=dict(job("js-one"), meta={"order": 42}))
        assert "-" in entry, entry
        outcome = node.ok("wait", id="js-one", timeoutMs=30000)
        assert outcome["status"] == "sent" and outcome["meta"] == {"order": 42}, outcome
        assert node.ok("result", id="js-one") == outcome
        assert [q["headers"]["idempotency-key"] for q in env.hook_requests()] == ["js-one"]


def test_clients_node_enqueue_many_200_and_wait_for_all():
    if not _node_available():
        return
    with Env() as env, _Node(env) as node:
        ids = _ids("js-many", 190)
        jobs = [job(i, text="m %s" % i) for i in ids] + [
            {"provider": "webhook", "account": "a", "message": {"text": "no id %d" % n}} for n in range(10)]
        entries = node.ok("enqueueMany", jobs=jobs)
        assert len(entries) == 200 and len(set(entries)) == 200, entries[:3]
        assert [json.loads(f["job"]) for _, f in env.r.xrange(env.key("jobs"))] == jobs
        assert [e for e, _ in env.r.xrange(env.key("jobs"))] == entries
        env.worker()
        wanted = ids + entries[190:]
        outcomes = node.ok("waitMany", ids=wanted, timeoutMs=60000)
        assert sorted(outcomes) == sorted(wanted) and all(o["status"] == "sent" for o in outcomes.values())
        assert sorted(q["headers"]["idempotency-key"] for q in env.hook_requests()) == sorted(wanted)


def test_clients_node_wait_returns_dead_and_times_out():
    if not _node_available():
        return
    with Env() as env, _Node(env) as node:
        env.worker()
        node.ok("enqueue", job=job("js-dead", text="x", sandbox={"status": 400}))
        dead = node.ok("wait", id="js-dead", timeoutMs=30000)
        assert dead["status"] == "dead" and dead["error_class"] == "permanent", dead
        env.cli("cancel", "js-cancelled")
        assert node.ok("wait", id="js-cancelled", timeoutMs=5000)["status"] == "cancelled"
        answer = node("wait", id="js-never", timeoutMs=1000, options={"pollMs": 200})
        assert answer.get("error") == "WaitTimeoutError" and "js-never" in answer["message"], answer
        assert 1000 <= answer["ms"] < 2500, answer
        answer = node("waitMany", ids=["js-dead", "js-never"], timeoutMs=500)
        assert answer.get("error") == "WaitTimeoutError" and answer["missing"] == ["js-never"], answer
        assert answer["outcomes"]["js-dead"]["status"] == "dead", answer


def test_clients_node_backlog_cap_refuses_or_waits_and_invalid_jobs_are_refused():
    if not _node_available():
        return
    with Env() as env, _Node(env) as node:
        cap = {"maxBacklog": 3}
        node.ok("enqueueMany", jobs=[job(i) for i in _ids("js-cap", 3)], options=cap)
        for op, arg in (("enqueue", {"job": job("js-over")}), ("enqueueMany", {"jobs": [job("js-over")]})):
            answer = node(op, options=cap, **arg)
            assert answer.get("error") == "BacklogFullError" and answer["backlog"] == 3, answer
        assert env.r.xlen(env.key("jobs")) == 3, "nothing written, nothing trimmed"
        threading.Timer(0.5, env.worker).start()
        answer = node("enqueueMany", jobs=[job("js-late-1"), job("js-late-2")],
                      options={"maxBacklog": 3, "backlogWaitMs": 30000})
        assert "error" not in answer and len(answer["value"]) == 2 and answer["ms"] >= 400, answer
        assert node.ok("waitMany", ids=["js-late-1", "js-late-2"], timeoutMs=30000)["js-late-2"]["status"] == "sent"
        wait_until(lambda: env.r.xlen(env.key("jobs")) == 0, 10, "an empty stream")
        for bad, words in (({"id": "a\tb", "provider": "webhook", "account": "a", "message": {}}, "job.id: control character 0x09"),
                           ({"id": "x" * 201, "provider": "webhook", "account": "a", "message": {}}, "1-200 bytes"),
                           ({"id": "x", "provider": "webhook", "message": {}}, "job.account: missing"),
                           ({"id": "x", "account": "a", "message": {}}, "job.provider: missing"),
                           ({"id": "x", "provider": "webhook", "account": "a"}, "job.message: missing")):
            answer = node("enqueue", job=bad)
            assert answer.get("error") == "InvalidJobError" and words in answer["message"], (bad, answer)
        answer = node("enqueueMany", jobs=[job("js-ok"), {"id": "y", "provider": "webhook", "account": "a"}])
        assert answer.get("error") == "InvalidJobError" and answer["message"].startswith("jobs[1].message"), answer
        time.sleep(0.2)
        assert env.r.get(env.key("result:js-ok")) is None and not env.r.xlen(env.key("jobs"))


def test_clients_node_wait_sees_an_outcome_written_between_its_first_read_and_its_follow():
    if not _node_available():
        return
    with Env() as env, _Node(env) as node:
        env.worker()
        for n in range(3):
            job_id = "js-window-%d" % n
            node.ok("enqueue", job=job(job_id, text="x", sandbox={"delay_ms": 150}))
            answer = node("wait", id=job_id, timeoutMs=5000, staleFirstRead=True, options={"pollMs": 60000})
            assert "error" not in answer and answer["value"]["status"] == "sent", answer
            assert answer["armed"] is False and (answer["stale"] is None or "sending" in answer["stale"]), answer
            assert answer["ms"] < 4000, "woken by the stream, not by the timeout's last read: %s" % answer
        ids = ["js-window-many-1", "js-window-many-2"]
        node.ok("enqueueMany", jobs=[job(i, text="x", sandbox={"delay_ms": 150}) for i in ids])
        answer = node("waitMany", ids=ids, timeoutMs=5000, staleFirstRead=True, options={"pollMs": 60000})
        assert "error" not in answer and sorted(answer["value"]) == ids and answer["armed"] is False, answer
        assert answer["ms"] < 4000, "woken by the stream, not by the timeout's last read: %s" % answer


def test_clients_node_enqueue_then_wait_many_times_with_the_worker_running():
    if not _node_available():
        return
    with Env() as env, _Node(env) as node:
        env.worker()
        env.enqueue([job("warm-up")])
        env.wait_results(["warm-up"])
        jobs = [job("js-race-%03d" % n) for n in range(300)]
        statuses = node.ok("enqueueWaitLoop", jobs=jobs, timeoutMs=5000, maxSleepMs=4, options={"pollMs": 60000})
        assert statuses == ["sent"] * 300, statuses
        assert len(env.hook_requests()) == 301


# --- shell ---------------------------------------------------------------------------
def _sh(env, script, *args, input=None, path_first=None, extra_env=None, timeout=120):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OUTQ_")}
    environment.update(OUTQ_REDIS_URL=env.producer_url(), OUTQ_QUEUE=env.queue)
    if path_first:
        environment["PATH"] = path_first + os.pathsep + environment["PATH"]
    environment.update(extra_env or {})
    return subprocess.run(["bash", os.path.join(SHELL_DIR, script)] + list(args), input=input, capture_output=True,
                          text=True, timeout=timeout, env=environment)


def _lines(out):
    return out.stdout.splitlines()


def test_clients_shell_enqueue_one_and_wait_is_sent():
    with Env() as env:
        env.worker()
        out = _sh(env, "outq-enqueue.sh", json.dumps(dict(job("sh-one"), meta={"order": 42})))
        assert out.returncode == 0 and len(_lines(out)) == 1 and "-" in out.stdout, (out.stdout, out.stderr)
        out = _sh(env, "outq-wait.sh", "--timeout", "30", "sh-one")
        assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
        [line] = _lines(out)
        outcome = json.loads(line)
        assert outcome["status"] == "sent" and outcome["meta"] == {"order": 42}, outcome
        assert _lines(_sh(env, "outq-wait.sh", "--status", "sh-one")) == ["sh-one\tsent"]
        # The job's text is written byte for byte (jq only reads it: a big number is not rounded).
        text = '{"id":"sh-big","provider":"webhook","account":"a",\n "message":{"text":"é \\" \\\\"},"meta":{"n":12345678901234567890}}'
        assert _sh(env, "outq-enqueue.sh", text).returncode == 0
        out = _sh(env, "outq-wait.sh", "sh-big")
        assert out.returncode == 0 and json.loads(out.stdout)["meta"] == {"n": 12345678901234567890}, out


def test_clients_shell_enqueue_many_200_and_wait_for_all():
    with Env() as env:
        ids = _ids("sh-many", 190)
        lines = [json.dumps(job(i, text="m %s" % i)) for i in ids[:-1]] + [
            '{"id":"%s","provider":"webhook","account":"a","message":{"text":"\\" \\\\ \\u00e9 é"},'
            '"meta":{"n":123456789012345678901234567890,"f":1.10}}' % ids[-1]] + [
            json.dumps({"provider": "webhook", "account": "a", "message": {"text": "no id %d" % n}}) for n in range(10)]
        out = _sh(env, "outq-enqueue.sh", input="\n".join(lines[:100]) + "\n\n" + "\n".join(lines[100:]) + "\n")
        assert out.returncode == 0, out.stderr
        entries = _lines(out)
        assert len(entries) == 200 and entries == [e for e, _ in env.r.xrange(env.key("jobs"))]
        assert [f["job"] for _, f in env.r.xrange(env.key("jobs"))] == lines
        env.worker()
        wanted = ids + entries[190:]
        out = _sh(env, "outq-wait.sh", "--status", "-t", "60", "-", input="\n".join(wanted) + "\n")
        assert out.returncode == 0, (out.stdout[-500:], out.stderr)
        assert _lines(out) == ["%s\tsent" % i for i in wanted]
        assert sorted(q["headers"]["idempotency-key"] for q in env.hook_requests()) == sorted(wanted)
        # --job-ids prints job ids (the entry id for a job without one): a pipe into outq-wait.sh.
        out = _sh(env, "outq-enqueue.sh", "--job-ids", input=json.dumps(job("sh-pipe")) + "\n"
                  + json.dumps({"provider": "webhook", "account": "a", "message": {}}) + "\n")
        printed = _lines(out)
        assert printed[0] == "sh-pipe" and printed[1].count("-") == 1, printed
        out = _sh(env, "outq-wait.sh", "--status", "-", input=out.stdout)
        assert out.returncode == 0 and _lines(out) == ["sh-pipe\tsent", "%s\tsent" % printed[1]], (out.stdout, out.stderr)


def test_clients_shell_wait_exits_1_on_dead_cancelled_and_timeout_2_on_usage():
    with Env() as env:
        env.worker()
        assert _sh(env, "outq-enqueue.sh", json.dumps(job("sh-dead", text="x", sandbox={"status": 400}))).returncode == 0
        out = _sh(env, "outq-wait.sh", "-t", "30", "sh-dead")
        assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
        assert json.loads(out.stdout)["error_class"] == "permanent", out.stdout
        env.cli("cancel", "sh-cancelled")
        out = _sh(env, "outq-wait.sh", "--status", "sh-cancelled")
        assert out.returncode == 1 and _lines(out) == ["sh-cancelled\tcancelled"], (out.stdout, out.stderr)
        t0 = time.monotonic()
        out = _sh(env, "outq-wait.sh", "-t", "1", "sh-never")
        elapsed = time.monotonic() - t0
        assert out.returncode == 1 and out.stdout == "" and "sh-never" in out.stderr and "timed out" in out.stderr, out
        assert 1 <= elapsed < 3, elapsed
        # Mixed: the outcome that came is printed, the missing one named, exit 1.
        out = _sh(env, "outq-wait.sh", "--status", "-t", "0.3", "sh-dead", "sh-never")
        assert out.returncode == 1 and _lines(out) == ["sh-dead\tdead"] and "sh-never" in out.stderr, out
        for script, args in (("outq-wait.sh", []), ("outq-wait.sh", ["--bogus", "x"]), ("outq-wait.sh", ["-t", "soon", "x"]),
                             ("outq-enqueue.sh", ["--max-backlog", "0", "{}"]), ("outq-enqueue.sh", ["--nope"])):
            out = _sh(env, script, *args)
            assert out.returncode == 2 and out.stderr, (script, args, out)
        for script in ("outq-wait.sh", "outq-enqueue.sh"):
            out = _sh(env, script, "--help")
            assert out.returncode == 0 and "Usage:" in out.stdout and "Exit status" in out.stdout, out
        out = _sh(env, "outq-wait.sh", "x", extra_env={"OUTQ_REDIS_URL": "redis://127.0.0.1:1"})
        assert out.returncode == 3, out


def test_clients_shell_backlog_cap_refuses_or_waits_and_invalid_jobs_are_refused():
    with Env() as env:
        three = "\n".join(json.dumps(job(i)) for i in _ids("sh-cap", 3)) + "\n"
        assert _sh(env, "outq-enqueue.sh", "--max-backlog", "3", input=three).returncode == 0
        out = _sh(env, "outq-enqueue.sh", "--max-backlog", "3", json.dumps(job("sh-over")))
        assert out.returncode == 1 and "backlog full" in out.stderr and out.stdout == "", out
        assert env.r.xlen(env.key("jobs")) == 3, "nothing written, nothing trimmed"
        threading.Timer(0.5, env.worker).start()
        t0 = time.monotonic()
        out = _sh(env, "outq-enqueue.sh", "--max-backlog", "3", "--backlog-wait", "30",
                  json.dumps(job("sh-late-1")), json.dumps(job("sh-late-2")))
        assert out.returncode == 0 and len(_lines(out)) == 2 and time.monotonic() - t0 >= 0.4, out
        assert _sh(env, "outq-wait.sh", "-t", "30", "sh-late-1", "sh-late-2").returncode == 0
        wait_until(lambda: env.r.xlen(env.key("jobs")) == 0, 10, "an empty stream")
        bad = [('{"id":"a\\tb","provider":"webhook","account":"a","message":{}}', "job.id: control character 0x09"),
               (json.dumps({"id": "x" * 201, "provider": "webhook", "account": "a", "message": {}}), "job.id: must be 1-200 bytes"),
               ('{"id":" x","provider":"webhook","account":"a","message":{}}', "job.id: leading or trailing space"),
               ('{"id":"x","provider":"webhook","message":{}}', "job.account: missing"),
               ('{"id":"x","account":"a","message":{}}', "job.provider: missing"),
               ('{"id":"x","provider":"webhook","account":"a"}', "job.message: missing"),
               ('{"id":"x","provider":"webhook","account":"a","message":"hi"}', "job.message: must be"),
               ('{"id":"x", not json', "not valid JSON")]
        for text, words in bad:
            out = _sh(env, "outq-enqueue.sh", json.dumps(job("sh-fine")), text)
            assert out.returncode == 2 and "argument 2: " + words in out.stderr, (text, out)
        out = _sh(env, "outq-enqueue.sh", input=json.dumps(job("sh-fine")) + "\n" + bad[3][0] + "\n")
        assert out.returncode == 2 and "line 2: job.account: missing" in out.stderr, out
        time.sleep(0.3)
        assert env.r.xlen(env.key("jobs")) == 0 and env.r.get(env.key("result:sh-fine")) is None, "nothing written"


_STALE_REDIS_CLI = r"""#!/usr/bin/env bash
# redis-cli whose first MGET answers what Redis held then, but only once every key it read
# holds an outcome: the outcome lands between outq-wait.sh's first read and its follow.
real=%(real)s
marker=$OUTQ_TEST_STALE_MARKER
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do [[ ${args[i]} == MGET ]] && break; done
if ((i == ${#args[@]})) || [[ ! -e $marker ]]; then exec "$real" "$@"; fi
rm -f "$marker"
out=$("$real" "$@"; echo .)
for key in "${args[@]:i+1}"; do
  for ((n = 0; n < 3000; n++)); do
    "$real" "${args[@]:0:i}" GET "$key" | grep -Eq '"status":"(sent|dead|cancelled)"' && break
    sleep 0.01
  done
  echo stale >>"$marker.done"
done
printf '%%s' "${out%%.}"
"""


def test_clients_shell_wait_sees_an_outcome_written_between_its_first_read_and_its_follow():
    with Env() as env:
        env.worker()
        bindir = os.path.join(env.dir, "stale-bin")
        os.mkdir(bindir)
        with open(os.path.join(bindir, "redis-cli"), "w") as f:
            f.write(_STALE_REDIS_CLI % {"real": json.dumps(REAL_REDIS_CLI)})
        os.chmod(os.path.join(bindir, "redis-cli"), 0o755)
        marker = os.path.join(env.dir, "stale-once")
        for ids in (["sh-window-1"], ["sh-window-2", "sh-window-3"]):
            lines = "".join(json.dumps(job(i, text="x", sandbox={"delay_ms": 150})) + "\n" for i in ids)
            assert _sh(env, "outq-enqueue.sh", input=lines).returncode == 0
            open(marker, "w").close()
            t0 = time.monotonic()
            # XREAD blocks for the whole timeout: only the stream can wake it in time.
            out = _sh(env, "outq-wait.sh", "--status", "-t", "8", *ids, path_first=bindir,
                      extra_env={"OUTQ_TEST_STALE_MARKER": marker})
            assert out.returncode == 0 and _lines(out) == ["%s\tsent" % i for i in ids], (out.stdout, out.stderr)
            assert not os.path.exists(marker), "the stale first read happened"
            with open(marker + ".done") as f:
                assert len(f.read().split()) == len(ids)
            os.unlink(marker + ".done")
            assert time.monotonic() - t0 < 6, "woken by the stream, not by the timeout"


def test_clients_shell_enqueue_then_wait_many_times_with_the_worker_running():
    with Env() as env:
        env.worker()
        env.enqueue([job("warm-up")])
        env.wait_results(["warm-up"])
        rng = random.Random(15)
        for n in range(30):
            job_id = "sh-race-%02d" % n
            # The sandbox's answer comes 0-40 ms later: across outq-wait.sh's first reads and its follow.
            delay = rng.randrange(0, 40)
            assert _sh(env, "outq-enqueue.sh", json.dumps(job(job_id, text="x", sandbox={"delay_ms": delay}))).returncode == 0
            out = _sh(env, "outq-wait.sh", "--status", "-t", "8", job_id)
            assert out.returncode == 0 and out.stdout == "%s\tsent\n" % job_id, (n, out.stdout, out.stderr)
        assert len(env.hook_requests()) == 31


def test_clients_node_replicas_option_waits_for_a_replica_or_says_it_did_not_come():
    if not _node_available():
        return
    with Env() as env, _Node(env) as node:
        options = {"replicas": 1, "replicaTimeoutMs": 300}
        lonely = node("enqueue", job=job("js-lonely"), options=options)
        assert lonely.get("error") == "NotReplicatedError", lonely
        assert env.r.xlen(env.key("jobs")) == 1  # written all the same
        replica = env.start_replica()
        try:
            options["replicaTimeoutMs"] = 5000  # WAIT returns as soon as the replica has them
            assert "-" in node.ok("enqueue", job=job("js-safe"), options=options)
            assert len(node.ok("enqueueMany", jobs=[job("js-m1"), job("js-m2")], options=options)) == 2
        finally:
            replica.stop(kill=True)


def test_clients_shell_replicas_option_waits_for_a_replica_or_exits_4():
    with Env() as env:
        lonely = _sh(env, "outq-enqueue.sh", "--replicas", "1", "--replica-timeout-ms", "300",
                     json.dumps(job("sh-lonely")))
        assert lonely.returncode == 4 and "0 of 1 replica" in lonely.stderr, (lonely.returncode, lonely.stderr)
        assert len(_lines(lonely)) == 1 and env.r.xlen(env.key("jobs")) == 1  # written, its entry printed
        assert _sh(env, "outq-enqueue.sh", "--replicas", "x", "{}").returncode == 2
        assert _sh(env, "outq-enqueue.sh", "--replicas", "1", "--replica-timeout-ms", "0", "{}").returncode == 2
        replica = env.start_replica()
        try:
            safe = _sh(env, "outq-enqueue.sh", "--replicas", "1", "--replica-timeout-ms", "5000", input=json.dumps(job("sh-s1")) + "\n"
                       + json.dumps(job("sh-s2")) + "\n")
            assert safe.returncode == 0 and len(_lines(safe)) == 2, (safe.returncode, safe.stdout, safe.stderr)
        finally:
            replica.stop(kill=True)


def test_clients_python_and_node_put_a_job_in_the_same_partition_as_the_worker():
    """The partition rule (docs/protocol.md, "Partitions") in every helper: zlib's CRC-32
    of the id mod P, and the tag of each partition. The C++ unit tests pin the worker's
    tags of `default` × 6 to the same strings; here Python and Node agree on many queues,
    counts and ids (UTF-8 ids included), so a producer in either language writes where
    the worker reads."""
    cases = [(q, p) for q in ("default", "t", "orders", "émail") for p in (2, 3, 6, 12, 256)]
    ids = ["order-42", "", "été", "x" * 200, "p00007"]
    python = {"tags": [[outq_client.partition_tag(q, i, p) for i in range(p)] for q, p in cases],
              "ids": [[outq_client.partition_of(i, p) for i in ids] for _, p in cases]}
    assert python["tags"][cases.index(("default", 6))] == [
        "default#0.84", "default#1.32", "default#2.69", "default#3.174", "default#4.168", "default#5.97"]
    if not _node_available():
        return
    script = ("import(%s).then((m) => { const cases = %s, ids = %s; console.log(JSON.stringify({"
              "tags: cases.map(([q, p]) => Array.from({length: p}, (_, i) => m.partitionTag(q, i, p))),"
              "ids: cases.map(([, p]) => ids.map((id) => m.partitionOf(id, p)))})); });"
              % (json.dumps("file://" + os.path.join(NODE_DIR, "outq.mjs")), json.dumps(cases), json.dumps(ids)))
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == python
