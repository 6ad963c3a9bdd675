"""Failover without a restart (issue 19, item 3): a primary, a replica and three
sentinels on loopback, all real redis-server processes. The worker finds the primary
through Sentinel at every dial, closes a connection that answers READONLY, MASTERDOWN
or UNBLOCKED, and follows a switchover (SENTINEL FAILOVER) and a kill -9 of the
primary without a restart; every job a replica had acknowledged (WAIT) ends with a
result. A worker on a plain URL whose node is demoted waits with a backoff, counted
in outq_redis_not_primary_replies_total, instead of a loop of READONLY errors."""
import http.client
import json
import os
import re
import subprocess
import time

import redis

from harness import GROUP, Env, RedisServer, free_port, http_status, job, wait_until

MASTER = "mymaster"


class Sentinel:
    """redis-server --sentinel on a free loopback port, monitoring `primary_port`."""

    def __init__(self, directory, primary_port):
        os.makedirs(directory, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(directory, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n" % (self.port, directory,
                                                                   os.path.join(directory, "sentinel.log")))
            f.write("sentinel monitor %s 127.0.0.1 %d 2\n" % (MASTER, primary_port))
            f.write("sentinel down-after-milliseconds %s 1000\n" % MASTER)
            f.write("sentinel failover-timeout %s 5000\n" % MASTER)
            f.write("sentinel parallel-syncs %s 1\n" % MASTER)
        self.proc = subprocess.Popen(["redis-server", self.conf, "--sentinel"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.client = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    def primary_port(self):
        try:
            found = self.client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        except redis.RedisError:
            return None
        return int(found[1]) if found else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.client.close()


class SentinelSet:
    """A primary, one replica and three sentinels, stopped by PID on exit."""

    def __init__(self, env):
        self.env = env
        self.nodes = []
        primary = RedisServer(os.path.join(env.dir, "node0"))
        os.makedirs(primary.dir, exist_ok=True)
        fast_sync = ("--repl-diskless-sync-delay", "0")  # a replica syncs at once, not after 5 s
        primary.always_args = fast_sync
        primary.start()
        replica = RedisServer(os.path.join(env.dir, "node1"))
        os.makedirs(replica.dir, exist_ok=True)
        replica.always_args = fast_sync + ("--replicaof", "127.0.0.1", str(primary.port))
        replica.start()
        self.nodes = [primary, replica]
        self.by_port = {n.port: n for n in self.nodes}
        wait_until(lambda: self._client(replica.port).info("replication").get("master_link_status") == "up", 20,
                   "the replica to sync")
        self.sentinels = [Sentinel(os.path.join(env.dir, "sentinel%d" % i), primary.port) for i in range(3)]
        wait_until(lambda: all(s.primary_port() == primary.port for s in self.sentinels), 20, "the sentinels")
        wait_until(lambda: all(self._knows_replica(s) for s in self.sentinels), 20, "the sentinels to see the replica")

    def _knows_replica(self, s):
        try:
            return len(s.client.execute_command("SENTINEL", "REPLICAS", MASTER)) == 1
        except redis.RedisError:
            return False

    @staticmethod
    def _client(port):
        return redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10)

    def primary(self):
        """A client of the node the sentinels name (the current primary)."""
        port = next(p for p in (s.primary_port() for s in self.sentinels) if p)
        return self._client(port), port

    def config(self, metrics_port=None):
        # Entries read from a primary that died before its replica had them come back after
        # the visibility timeout: short here, so the test does not wait long.
        c = self.env.config(visibility_timeout_ms=3000)
        c["redis"] = {"url": "redis://127.0.0.1:1/0", "command_timeout_ms": 2000, "connect_timeout_ms": 1000,
                      "sentinel": {"master": MASTER,
                                   "nodes": ["redis://127.0.0.1:%d" % s.port for s in self.sentinels]}}
        if metrics_port:
            c["metrics_listen"] = "127.0.0.1:%d" % metrics_port
        return c

    def enqueue_acknowledged(self, jobs):
        """XADD each job on the primary, then WAIT for the replica: returns the ids the replica has."""
        client, _ = self.primary()
        pipe = client.pipeline(transaction=False)
        for j in jobs:
            pipe.xadd(self.env.key("jobs"), {"job": json.dumps(j)})
        pipe.execute()
        acked = client.execute_command("WAIT", 1, 5000)
        assert acked == 1, "the replica did not acknowledge the jobs"
        client.close()
        return [j["id"] for j in jobs]

    def outcomes(self, ids):
        client, _ = self.primary()
        try:
            values = client.mget([self.env.key("result:" + i) for i in ids])
        finally:
            client.close()
        return {i: json.loads(v)["status"] for i, v in zip(ids, values) if v and '"sending"' not in v}

    def stop(self):
        for s in self.sentinels:
            s.stop()
        for n in self.nodes:
            n.stop(kill=True)


def _metric(port, name):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
    except OSError:
        return None
    m = re.search(r"^%s(?:\{\})? (\S+)$" % name, text, re.M)
    return float(m.group(1)) if m else None


def _follows(kill):
    with Env() as env:
        rs = SentinelSet(env)
        try:
            metrics = free_port()
            w = env.worker(rs.config(metrics))
            wait_until(lambda: http_status(metrics, "/readyz") == 200, 30, "the worker to be ready through Sentinel")
            first = rs.enqueue_acknowledged([job("before-%03d" % i, text="x", sandbox={"delay_ms": 20})
                                             for i in range(100)])
            wait_until(lambda: len(rs.outcomes(first)) >= 20, 30, "jobs to flow")
            old = rs.primary()[1]
            statuses = []
            if kill:
                rs.by_port[old].stop(kill=True)
            else:
                rs.sentinels[0].client.execute_command("SENTINEL", "FAILOVER", MASTER)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(s.primary_port() in (old, None) for s in rs.sentinels):
                statuses.append(http_status(metrics, "/readyz"))
                time.sleep(0.1)
            new = rs.primary()[1]
            assert new != old, "no failover happened"
            # Jobs enqueued after the failover go to the new primary; the worker must take them too.
            client, _ = rs.primary()
            for j in [job("after-%03d" % i) for i in range(50)]:
                client.xadd(env.key("jobs"), {"job": json.dumps(j)})
            client.close()
            after = ["after-%03d" % i for i in range(50)]
            wait_until(lambda: len(rs.outcomes(first + after)) == 150, 90, "every acknowledged job's result")
            outcomes = rs.outcomes(first + after)
            assert set(outcomes.values()) == {"sent"}, outcomes
            assert w.alive(), "the worker restarted or died:\n" + w.log_tail(30)
            counts = env.request_counts()
            assert all(counts.get(i, 0) >= 1 for i in first + after)
            duplicates = sum(n - 1 for n in counts.values() if n > 1)
            # Only what was in flight when the primary changed, or whose result the replica had
            # not received (a kill), may go out twice: far fewer than the jobs.
            assert duplicates <= 40, "%d duplicate sends" % duplicates
            wait_until(lambda: http_status(metrics, "/readyz") == 200, 30, "the worker to be ready again")
            switches = _metric(metrics, "outq_redis_sentinel_switches_total")
            print("failover %s: %d -> %d, %d duplicate sends, readiness seen %s, not-primary replies %s, "
                  "+switch-master heard %s" % (
                      "kill -9" if kill else "SENTINEL FAILOVER", old, new, duplicates,
                      sorted(set(str(s) for s in statuses)), _metric(metrics, "outq_redis_not_primary_replies_total"),
                      switches))
            # Sentinel's announcement moved the worker (not only a READONLY from the old primary).
            assert switches and switches >= 1, "the worker did not hear +switch-master: %s" % switches
            assert "sentinel announced a new primary" in w.log(), w.log_tail(20)
            if kill:
                assert 503 in statuses or None in statuses, "/readyz never said the primary was gone: %s" % statuses
        finally:
            for worker in env.workers:  # before their Redis goes
                worker.stop()
            rs.stop()


def test_sentinel_switchover_is_followed_without_a_restart_and_nothing_is_lost():
    _follows(kill=False)


def test_sentinel_promotes_after_kill9_of_the_primary_and_the_worker_follows():
    _follows(kill=True)


def test_a_demoted_node_on_a_plain_url_is_waited_out_with_a_backoff_and_counted():
    """No Sentinel: the URL's node becomes a replica (REPLICAOF). Writes answer READONLY;
    the worker closes the connection, backs off and tries again, a handful of times a
    second, not thousands; once the node is a primary again it goes on by itself."""
    with Env() as env:
        other = RedisServer(os.path.join(env.dir, "other"))
        os.makedirs(other.dir, exist_ok=True)
        other.start()
        try:
            metrics = free_port()
            w = env.worker(env.config(metrics_listen="127.0.0.1:%d" % metrics))
            env.enqueue([job("first")])
            env.wait_results(["first"])
            env.r.execute_command("REPLICAOF", "127.0.0.1", str(other.port))
            wait_until(lambda: env.r.info("replication").get("master_link_status") == "up", 20, "the demotion")
            other_client = other.client()
            other_client.xadd(env.key("jobs"), {"job": json.dumps(job("while-demoted"))})
            time.sleep(5)
            replies = _metric(metrics, "outq_redis_not_primary_replies_total")
            assert replies and replies >= 1, "no READONLY reply was seen: %s" % replies
            assert replies < 200, "%d not-primary replies in 5 s: a loop" % replies
            lines = [line for line in w.log().splitlines() if "READONLY" in line]
            assert len(lines) <= 10, "%d log lines about READONLY in 5 s" % len(lines)
            env.r.execute_command("REPLICAOF", "NO", "ONE")
            r = env.wait_results(["while-demoted"], timeout=60)["while-demoted"]
            assert r["status"] == "sent", r
            assert w.alive()
            other_client.close()
        finally:
            other.stop(kill=True)


def test_the_python_producer_can_ask_a_replica_to_acknowledge_its_jobs():
    """clients/python: Client(replicas=1) sends WAIT after its XADDs; with the replica
    gone it raises NotReplicated (the jobs are written on the primary all the same)."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    import outq_client
    with Env() as env:
        replica = env.start_replica()
        try:
            safe = outq_client.Client(env.producer_client(), queue=env.queue, replicas=1, replica_timeout_ms=2000)
            assert len(safe.enqueue_many([job("r1"), job("r2")])) == 2
            assert safe.enqueue(job("r3"))
            replica.stop(kill=True)
            wait_until(lambda: env.r.info("replication").get("connected_slaves") == 0, 20, "the replica to go")
            t0 = time.monotonic()
            try:
                safe.enqueue(job("r4"))
                raise AssertionError("no replica, yet enqueue said the job was replicated")
            except outq_client.NotReplicated as e:
                assert e.acknowledged == 0 and e.wanted == 1 and len(e.entries) == 1, vars(e)
            assert time.monotonic() - t0 >= 1.5  # it waited for the replica, then gave up
            assert env.r.xlen(env.key("jobs")) == 4  # written all the same
            try:
                outq_client.Client(env.r, replicas=1, replica_timeout_ms=0)
                raise AssertionError("WAIT 0 (for ever) accepted")
            except ValueError:
                pass
        finally:
            replica.stop(kill=True)
