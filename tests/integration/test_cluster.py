"""Redis Cluster (issue 19) on real redis-server nodes in cluster mode. Without
redis.cluster, a worker pointed at a node that does not own the queue's slot refuses to
start at once, saying why and what to set; with it, the worker routes by slot and
follows a live reshard."""
import collections
from datetime import datetime, timezone
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

import redis
from redis.cluster import RedisCluster

import harness
from harness import Env, RedisServer, free_port, job, wait_until


def _cluster_port():
    """A free loopback port whose cluster bus port (port + 10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
        finally:
            probe.close()
    raise AssertionError("no free port pair for a cluster node")


def _cluster(env, n=2):
    """n real redis-server nodes in cluster mode, the slots split evenly, met and agreed."""
    nodes = []
    for i in range(n):
        node = RedisServer(os.path.join(env.dir, "cluster%d" % i))
        node.port = _cluster_port()
        os.makedirs(node.dir, exist_ok=True)
        node.always_args = ("--cluster-enabled", "yes", "--cluster-config-file",
                            os.path.join(node.dir, "nodes.conf"), "--cluster-node-timeout", "2000")
        node.start()
        nodes.append(node)
    per = 16384 // n
    for i, node in enumerate(nodes):
        last = 16383 if i == n - 1 else (i + 1) * per - 1
        c = node.client()
        c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)
        if i:
            c.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0].port)
        c.close()
    wait_until(lambda: all(_state(node) == "ok" for node in nodes), 30, "the cluster to agree")
    return nodes


def _state(node):
    try:
        c = node.client()
        info = c.execute_command("CLUSTER", "INFO")
        c.close()
    except redis.RedisError:
        return None
    text = info if isinstance(info, str) else info.decode()
    return dict(line.split(":", 1) for line in text.split() if ":" in line).get("cluster_state")


def test_a_cluster_node_that_does_not_own_the_queues_slot_is_refused_at_start_saying_why():
    with Env() as env:
        nodes = _cluster(env)
        try:
            slot = nodes[0].client().execute_command("CLUSTER", "KEYSLOT", env.key("jobs"))
            owner, other = (nodes[0], nodes[1]) if slot < 8192 else (nodes[1], nodes[0])
            config = env.config()
            config["redis"]["url"] = other.url
            w = env.worker(config)
            code = w.wait(timeout=20)
            log = w.log()
            assert code == 1, (code, w.log_tail(10))
            assert "refusing to start" in log and "does not own the queue's slot" in log, w.log_tail(10)
            assert "127.0.0.1:%d" % owner.port in log, w.log_tail(10)  # the node to point at
            assert len(log.splitlines()) < 10, w.log_tail(20)
        finally:
            for node in nodes:
                node.stop(kill=True)


def _owner(nodes, key):
    """The node whose slots hold `key`, as the cluster's own map says."""
    c = nodes[0].client()
    try:
        slot = c.execute_command("CLUSTER", "KEYSLOT", key)
        ranges = c.execute_command("CLUSTER", "SLOTS")
    finally:
        c.close()
    port = next(int(r[2][1]) for r in ranges if int(r[0]) <= slot <= int(r[1]))
    return next(n for n in nodes if n.port == port)


def test_a_worker_given_one_node_of_a_cluster_routes_every_command_by_slot_and_sends_every_job():
    """redis.cluster.nodes names one node that owns neither the queue's slot nor the
    account's: the worker reads the slot map, consumes the queue on its owner, keeps the
    rate limit's keys on theirs, and every job is sent once with one result; the CLI,
    given the same config, reads the queue's stats across the nodes."""
    with Env() as env:
        nodes = _cluster(env, 3)
        try:
            owner = _owner(nodes, env.key("jobs"))
            limit_owner = _owner(nodes, "outq:{%s@webhook/a}:x" % env.queue)
            others = [n for n in nodes if n is not owner and n is not limit_owner]
            assert others, "the scenario: a node that owns neither the queue nor the account"
            env.r = owner.client()
            config = env.config()
            config["redis"] = {"cluster": {"nodes": [others[0].url]}, "command_timeout_ms": 2000}
            config["providers"]["webhook"]["accounts"]["a"]["rate_limit"] = {"requests": 2000, "per_ms": 1000}
            ids = ["cl%04d" % i for i in range(300)]
            env.enqueue(job(i) for i in ids)
            w = env.worker(config)
            results = env.wait_results(ids, timeout=60)
            assert all(r["status"] == "sent" for r in results.values())
            counts = env.request_counts()
            assert sorted(counts) == sorted(ids) and set(counts.values()) == {1}, \
                sorted((k, n) for k, n in counts.items() if n != 1)[:5]
            assert set(env.result_event_counts().values()) == {1}
            # The limiter's keys live on the account's node, not the queue's.
            lc = limit_owner.client()
            assert any(k.startswith("outq:{%s@webhook/a}" % env.queue) for k in lc.keys("outq:*")), lc.keys("*")
            lc.close()
            path = os.path.join(env.dir, "cluster.json")
            with open(path, "w") as f:
                json.dump(config, f)
            out = subprocess.run([harness.OUTQ, "stats", "--json", "--config", path], capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, (out.stdout, out.stderr)
            stats = json.loads(out.stdout)
            assert stats["consumers"] >= 1, stats
            assert w.alive()
            w.sigterm()
            assert w.wait(timeout=20) == 0, w.log_tail(10)
        finally:
            for node in nodes:
                node.stop(kill=True)


def _cluster_config(env, nodes, metrics, per_second=300):
    """A worker config on the cluster's nodes, its metrics on `metrics`, account a limited."""
    config = env.config(metrics_listen="127.0.0.1:%d" % metrics)
    config["redis"] = {"cluster": {"nodes": [n.url for n in nodes]}, "command_timeout_ms": 2000}
    config["providers"]["webhook"]["accounts"]["a"]["rate_limit"] = {"requests": per_second, "per_ms": 1000}
    return config


def _redirects(port):
    """outq_redis_cluster_redirects_total by kind, from the worker's /metrics."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^outq_redis_cluster_redirects_total\{kind="(\w+)"\} (\S+)$', text, re.M)}


def _move_slot(nodes, slot, src, dst, pause):
    """A live reshard of one slot, as redis-cli --cluster reshard does it: IMPORTING on
    the target, MIGRATING on the source, the keys moved a few at a time (jobs keep flowing
    in between, meeting ASK and TRYAGAIN), then the slot assigned to the target everywhere."""
    sc, dc = src.client(), dst.client()
    try:
        src_id, dst_id = sc.execute_command("CLUSTER", "MYID"), dc.execute_command("CLUSTER", "MYID")
        dc.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        sc.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        while True:
            keys = sc.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 20)
            if not keys:
                break
            sc.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            time.sleep(pause)
        for n in nodes:
            c = n.client()
            c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            c.close()
        return moved
    finally:
        sc.close()
        dc.close()


def _check_reshard(env, label, ids, during, keys_moved, counts, results, events, metrics, w):
    """What a live reshard must leave: every job sent once, with one result and one event,
    the fault proven by the worker's own redirect counts, the worker still running."""
    redirects = _redirects(metrics)
    print("%s: %d keys moved, %d of %d jobs sent before it ended; redirects %s"
          % (label, keys_moved, during, len(ids), redirects), flush=True)
    assert during < len(ids), "the scenario: jobs still flowing when the slot moved"
    assert all(r["status"] == "sent" for r in results.values())
    twice = sorted((k, n) for k, n in counts.items() if n > 1)
    assert not twice and sorted(counts) == sorted(ids), twice[:5]
    assert all(events.get(i) == 1 for i in ids), sorted(i for i in ids if events.get(i) != 1)[:5]
    assert redirects.get("moved", 0) > 0, redirects
    assert w.alive()
    w.sigterm()
    assert w.wait(timeout=20) == 0, w.log_tail(10)
    return redirects


def test_a_live_reshard_of_the_queues_slot_loses_nothing_and_sends_nothing_twice():
    """While 1,500 jobs flow (a limit of 300 a second), the queue's slot moves to another
    primary key by key. The worker follows ASK and TRYAGAIN during the move and MOVED
    after it (each counted in its metrics), without a restart: every job is sent once and
    has one result, read on the new owner."""
    with Env() as env:
        nodes = _cluster(env, 3)
        try:
            owner = _owner(nodes, env.key("jobs"))
            target = next(n for n in nodes if n is not owner)
            env.r = owner.client()
            metrics = free_port()
            config = _cluster_config(env, nodes, metrics)
            ids = ["rs%04d" % i for i in range(1500)]
            env.enqueue(job(i) for i in ids)
            w = env.worker(config)
            wait_until(lambda: len(env.request_counts()) >= 200, 30, "sends before the reshard")
            slot = env.r.execute_command("CLUSTER", "KEYSLOT", env.key("jobs"))
            keys_moved = _move_slot(nodes, slot, owner, target, pause=0.05)
            env.r = target.client()
            during = len(env.request_counts())
            results = env.wait_results(ids, timeout=90)
            redirects = _check_reshard(env, "reshard", ids, during, keys_moved, env.request_counts(), results,
                                       env.result_event_counts(), metrics, w)
            assert redirects.get("ask", 0) + redirects.get("wait", 0) > 0, redirects
        finally:
            for node in nodes:
                node.stop(kill=True)


def _add_replica(env, nodes, primary):
    """A fourth node, met and made a replica of `primary`, synced."""
    node = RedisServer(os.path.join(env.dir, "cluster-replica"))
    node.port = _cluster_port()
    os.makedirs(node.dir, exist_ok=True)
    node.always_args = ("--cluster-enabled", "yes", "--cluster-config-file", os.path.join(node.dir, "nodes.conf"),
                        "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0")
    node.start()
    c = node.client()
    c.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0].port)
    primary_id = primary.client().execute_command("CLUSTER", "MYID")

    def knows_primary():
        return primary_id in c.execute_command("CLUSTER", "NODES")

    wait_until(knows_primary, 30, "the new node to learn of the primary")
    c.execute_command("CLUSTER", "REPLICATE", primary_id)
    p = primary.client()
    def synced():
        replica = p.info("replication").get("slave0")
        return isinstance(replica, dict) and replica.get("state") == "online"

    wait_until(synced, 30, "the replica to sync")
    p.close()
    c.close()
    return node


def _cluster_follows(kill):
    """The queue's primary has a replica; while jobs flow it takes over — CLUSTER
    FAILOVER (the old primary answers MOVED or ends the blocked read) or a kill -9 of the
    primary (the cluster promotes the replica after cluster-node-timeout). The worker
    reads the map again and goes on with the new primary, without a restart. Every job
    the replica acknowledged (WAIT) ends sent; with a controlled failover none is sent
    twice, after a kill only those whose outcome the replica had not received."""
    with Env() as env:
        nodes = _cluster(env, 3)
        replica = None
        try:
            owner = _owner(nodes, env.key("jobs"))
            replica = _add_replica(env, nodes, owner)
            env.r = owner.client()
            metrics = free_port()
            config = _cluster_config(env, nodes, metrics)
            ids = ["fo%04d" % i for i in range(1200)]
            env.enqueue(job(i) for i in ids)
            assert env.r.execute_command("WAIT", 1, 5000) == 1, "the replica did not acknowledge the jobs"
            w = env.worker(config)
            wait_until(lambda: harness.http_status(metrics, "/readyz") == 200, 30, "the worker to be ready on the cluster")
            wait_until(lambda: len(env.request_counts()) >= 200, 30, "sends before the failover")
            rc = replica.client()
            if kill:
                owner.stop(kill=True)
            else:
                rc.execute_command("CLUSTER", "FAILOVER")
            statuses = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and rc.execute_command("ROLE")[0] != "master":
                statuses.append(harness.http_status(metrics, "/readyz"))
                time.sleep(0.1)
            assert rc.execute_command("ROLE")[0] == "master", "no failover happened"
            during = len(env.request_counts())
            env.r = rc
            results = env.wait_results(ids, timeout=90)
            counts = env.request_counts()
            redirects = _redirects(metrics)
            wait_until(lambda: harness.http_status(metrics, "/readyz") == 200, 30, "the worker to be ready again")
            duplicates = sum(n - 1 for n in counts.values() if n > 1)
            print("cluster %s: %d of %d jobs sent when it ended; %d duplicate sends; readiness seen %s; "
                  "redirects %s" % ("kill -9" if kill else "CLUSTER FAILOVER", during, len(ids), duplicates,
                                    sorted(set(str(x) for x in statuses)), redirects), flush=True)
            assert during < len(ids), "the scenario: jobs still flowing at the failover"
            assert all(r["status"] == "sent" for r in results.values())
            assert sorted(counts) == sorted(ids)
            if kill:
                assert duplicates <= 40, "%d duplicate sends" % duplicates
                assert 503 in statuses or None in statuses, "/readyz never said the primary was gone: %s" % statuses
            else:
                assert duplicates == 0, sorted((k, n) for k, n in counts.items() if n > 1)[:5]
                events = env.result_event_counts()
                assert all(events.get(i) == 1 for i in ids), sorted(i for i in ids if events.get(i) != 1)[:5]
                assert redirects.get("moved", 0) > 0, redirects
            assert w.alive(), "the worker restarted or died:\n" + w.log_tail(30)
            trouble = [line for line in w.log().splitlines() if "level=warn" in line or "level=error" in line]
            assert len(trouble) <= 30, "%d warnings: a loop?\n%s" % (len(trouble), "\n".join(trouble[:20]))
            w.sigterm()
            assert w.wait(timeout=20) == 0, w.log_tail(10)
        finally:
            for worker in env.workers:
                worker.stop()
            for node in nodes + ([replica] if replica else []):
                node.stop(kill=True)


def test_a_cluster_failover_of_the_queues_primary_is_followed_without_a_restart_and_loses_nothing():
    _cluster_follows(kill=False)


def test_a_kill9_of_the_queues_primary_is_followed_once_the_cluster_promotes_its_replica():
    _cluster_follows(kill=True)


sys.path.insert(0, os.path.join(harness.ROOT, "clients", "python"))
import outq_client  # noqa: E402


def _partitioned_config(env, node, partitions=6, **overrides):
    """A worker config on one node of the cluster, the queue split into `partitions`."""
    config = env.config(**overrides)
    config["queue_partitions"] = partitions
    config["providers"]["webhook"]["http"]["request_timeout_ms"] = 15000
    config["redis"] = {"cluster": {"nodes": [node.url]}, "command_timeout_ms": 2000}
    return config


def _events_by_id(rc, queue, partitions):
    """{job id: events} over every partition's results stream."""
    counts = collections.Counter()
    for i in range(partitions):
        for _, fields in rc.xrange("outq:{%s}:results" % outq_client.partition_tag(queue, i, partitions)):
            counts[fields.get("id")] += 1
    return counts


def test_a_queue_of_six_partitions_spreads_over_three_primaries_and_three_workers_send_each_job_once():
    """Six partitions of one queue on a 3-primary cluster: two on each primary (the tag
    rule, asserted on the cluster's own map). Three workers, each given a different single
    node, consume all six; 10,000 jobs written by the Python helper with plain XADDs are
    each sent once with one result and one event; the CLI's stats add the partitions up
    and `outq enqueue` puts a job in its id's partition."""
    with Env() as env:
        nodes = _cluster(env, 3)
        try:
            owners = collections.Counter(
                _owner(nodes, "outq:{%s}:jobs" % outq_client.partition_tag(env.queue, i, 6)).port for i in range(6))
            assert sorted(owners.values()) == [2, 2, 2], owners
            rc = RedisCluster(host="127.0.0.1", port=nodes[0].port, decode_responses=True)
            producer = outq_client.Client(rc, queue=env.queue, partitions=6)
            workers = [env.worker(_partitioned_config(env, nodes[i]), name="w%d" % i) for i in range(3)]
            ids = ["p%05d" % i for i in range(10000)]
            producer.enqueue_many([job(i) for i in ids])
            # Each partition got its ids' jobs: crc32(id) mod 6, as the worker checks.
            for i in range(6):
                tag = outq_client.partition_tag(env.queue, i, 6)
                assert rc.exists("outq:{%s}:jobs" % tag), tag
            results = producer.wait_many(ids, timeout=180)
            assert all(r["status"] == "sent" for r in results.values()), \
                collections.Counter(r["status"] for r in results.values())
            counts = env.request_counts()
            assert sorted(counts) == sorted(ids)
            # A request the sandbox (loaded by 10,000 jobs on two cores) did not answer in
            # time is retried as ambiguous: the result counts every attempt that may have
            # reached it. Any other second request is a duplicate send.
            unexplained = sorted(k for k, n in counts.items() if n > results[k]["attempts"])
            assert not unexplained, (len(unexplained), unexplained[:5], producer.state(unexplained[0]),
                                     [line for w in workers for line in w.log().splitlines()
                                      if unexplained[0] in line][:10])
            print("six partitions: %d jobs sent; %d requests retried as ambiguous"
                  % (len(ids), sum(n - 1 for n in counts.values())))
            wait_until(lambda: set(_events_by_id(rc, env.queue, 6).values()) == {1}, 10, "one event per job")
            assert all(w.alive() for w in workers), [w.log_tail(5) for w in workers]
            assert rc.get("outq:{%s}:partitions" % env.queue) == "6"
            path = os.path.join(env.dir, "partitioned.json")
            with open(path, "w") as f:
                json.dump(_partitioned_config(env, nodes[2]), f)

            def stats():
                out = subprocess.run([harness.OUTQ, "stats", "--json", "--config", path], capture_output=True,
                                     text=True, timeout=60)
                assert out.returncode == 0, (out.stdout, out.stderr)
                return json.loads(out.stdout)

            wait_until(lambda: stats()["pending"] == 0, 10, "the sent entries to be acknowledged")
            s = stats()
            assert s["partitions"] == 6 and s["waiting"] == 0 and s["dead"] == 0 and s["consumers"] >= 3, s
            out = subprocess.run([harness.OUTQ, "enqueue", "--config", path], input=json.dumps(job("by-cli")),
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, (out.stdout, out.stderr)
            assert producer.wait("by-cli", timeout=30)["status"] == "sent"
            home = outq_client.partition_tag(env.queue, outq_client.partition_of("by-cli", 6), 6)
            assert rc.get("outq:{%s}:result:by-cli" % home) is not None
            for w in workers:
                w.sigterm()
            for w in workers:
                assert w.wait(timeout=20) == 0, w.log_tail(10)
                sent = re.search(r'msg="worker stopped" sent=(\d+)', w.log())
                assert sent and int(sent.group(1)) > 0, ("every worker took part", w.log_tail(5))
            rc.close()
        finally:
            for node in nodes:
                node.stop(kill=True)


def test_a_job_in_the_wrong_partition_is_a_dead_letter_naming_its_own_and_a_replay_sends_it_there():
    """A producer that put a job with an id in another partition than crc32(id) mod P
    would let a second enqueue of the id miss the first one's result: the worker refuses it
    as a validation dead letter naming the right partition, and `outq dead replay` (which
    reads every partition's dead letters) sends it to the right one, where it is sent."""
    with Env() as env:
        nodes = _cluster(env, 3)
        try:
            rc = RedisCluster(host="127.0.0.1", port=nodes[0].port, decode_responses=True)
            home = outq_client.partition_of("lost", 3)
            wrong = (home + 1) % 3
            wrong_tag = outq_client.partition_tag(env.queue, wrong, 3)
            rc.xadd("outq:{%s}:jobs" % wrong_tag, {"job": json.dumps(job("lost"))})
            config = _partitioned_config(env, nodes[0], partitions=3)
            w = env.worker(config)
            dead_key = "outq:{%s}:dead" % wrong_tag
            wait_until(lambda: rc.xlen(dead_key) == 1, 30, "the misplaced job's dead letter")
            (_, letter), = rc.xrange(dead_key)
            assert letter["error_class"] == "validation", letter
            assert "belongs to partition %d" % home in letter["error"], letter
            assert env.request_counts() == {}
            path = os.path.join(env.dir, "partitioned.json")
            with open(path, "w") as f:
                json.dump(config, f)
            out = subprocess.run([harness.OUTQ, "dead", "list", "--json", "--config", path], capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert [d["id"] for d in json.loads(out.stdout)] == ["lost"], out.stdout
            out = subprocess.run([harness.OUTQ, "dead", "replay", "lost", "--config", path], capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, (out.stdout, out.stderr)
            producer = outq_client.Client(rc, queue=env.queue, partitions=3)
            assert producer.wait("lost", timeout=30)["status"] == "sent"
            assert env.request_counts() == {"lost": 1}
            w.sigterm()
            assert w.wait(timeout=20) == 0, w.log_tail(10)
            rc.close()
        finally:
            for node in nodes:
                node.stop(kill=True)


def test_a_worker_of_another_partition_count_is_refused_saying_what_the_queue_has():
    with Env() as env:
        nodes = _cluster(env, 3)
        try:
            w = env.worker(_partitioned_config(env, nodes[0], partitions=3))
            rc = RedisCluster(host="127.0.0.1", port=nodes[0].port, decode_responses=True)
            wait_until(lambda: rc.get("outq:{%s}:partitions" % env.queue) == "3", 20, "the count recorded")
            other = env.worker(_partitioned_config(env, nodes[1], partitions=4))
            assert other.wait(timeout=20) == 1, other.log_tail(10)
            assert "has 3 partitions" in other.log() and "queue_partitions to 3" in other.log(), other.log_tail(10)
            assert w.alive()
            w.sigterm()
            assert w.wait(timeout=20) == 0, w.log_tail(10)
            rc.close()
        finally:
            for node in nodes:
                node.stop(kill=True)


def _log_ms(iso):
    """Unix ms of a log line's ts= (2026-12-01T08:16:07.430Z)."""
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() * 1000)


def test_a_429_pauses_the_account_for_every_partition_of_every_worker():
    """Account a's jobs spread over six partitions and two workers; one 429 with
    Retry-After: 2 holds a off everywhere (the pause lives under the account's tag, not
    a partition's), and a flows again after it."""
    with Env() as env:
        nodes = _cluster(env, 3)
        try:
            rc = RedisCluster(host="127.0.0.1", port=nodes[0].port, decode_responses=True)
            producer = outq_client.Client(rc, queue=env.queue, partitions=6)
            workers = []
            for i in range(2):
                config = _partitioned_config(env, nodes[i])
                config["providers"]["webhook"]["accounts"]["a"]["rate_limit"] = {"requests": 40, "per_ms": 1000}
                workers.append(env.worker(config, name="w%d" % i))
            ids = ["h%03d" % i for i in range(40)]
            producer.enqueue_many([job(i) for i in ids])
            wait_until(lambda: len(env.hook_requests("a")) >= 20, 30, "account a to flow")
            producer.enqueue(job("trigger", text="x", sandbox={"status": 429, "times": 1, "retry_after": "2"}))
            # Jobs behind the trigger, in every partition: what is left of a once the pause ends
            # (a lane sends in the order it got them, so jobs enqueued before the trigger are
            # mostly sent before it).
            late = ["late%03d" % i for i in range(200)]
            producer.enqueue_many([job(i) for i in late])
            producer.wait_many(ids + ["trigger"] + late, timeout=120)
            t = next(r["at_ms"] for r in env.sandbox.requests() if r["headers"].get("idempotency-key") == "trigger")
            # Permits granted before the pause existed may still be on their way: requests up to
            # 50 ms after a worker set it (its "account paused" line) are exempt.
            paused_at = min(_log_ms(rec["ts"]) for w in workers for rec in w.log_records()
                            if rec.get("msg") == "account paused" and rec.get("account") == "a"
                            and _log_ms(rec["ts"]) >= t - 5)
            held = [r for r in env.hook_requests("a") if max(t, paused_at) + 50 < r["at_ms"] < t + 2000]
            assert held == [], "account a was called %d times during its pause, e.g. %s" % (
                len(held), [r["headers"].get("idempotency-key") for r in held[:5]])
            after = [r for r in env.hook_requests("a") if r["at_ms"] >= t + 2000]
            partitions = {outq_client.partition_of(r["headers"].get("idempotency-key"), 6) for r in after}
            print("429 over partitions: %d requests of a after the pause, from partitions %s" % (
                len(after), sorted(partitions)), flush=True)
            assert len(partitions) > 1, "account a flowed again after the pause, from every partition: %s" % partitions
            for w in workers:
                w.sigterm()
            for w in workers:
                assert w.wait(timeout=20) == 0, w.log_tail(10)
            rc.close()
        finally:
            for node in nodes:
                node.stop(kill=True)


def test_a_live_reshard_of_one_partitions_slot_loses_nothing_and_sends_nothing_twice():
    """Three partitions; while 1,500 jobs flow, partition 1's slot moves to another
    primary key by key. The worker follows it for that partition while the other two go
    on: every job is sent once with one result and one event, without a restart."""
    with Env() as env:
        nodes = _cluster(env, 3)
        try:
            rc = RedisCluster(host="127.0.0.1", port=nodes[0].port, decode_responses=True)
            producer = outq_client.Client(rc, queue=env.queue, partitions=3)
            jobs_key = "outq:{%s}:jobs" % outq_client.partition_tag(env.queue, 1, 3)
            owner = _owner(nodes, jobs_key)
            target = next(n for n in nodes if n is not owner)
            metrics = free_port()
            config = _partitioned_config(env, nodes[0], partitions=3, metrics_listen="127.0.0.1:%d" % metrics)
            config["redis"]["cluster"]["nodes"] = [n.url for n in nodes]
            config["providers"]["webhook"]["accounts"]["a"]["rate_limit"] = {"requests": 300, "per_ms": 1000}
            ids = ["rp%04d" % i for i in range(1500)]
            producer.enqueue_many([job(i) for i in ids])
            w = env.worker(config)
            wait_until(lambda: len(env.request_counts()) >= 200, 30, "sends before the reshard")
            keys_moved = _move_slot(nodes, key_slot_of(jobs_key), owner, target, pause=0.05)
            during = len(env.request_counts())
            results = producer.wait_many(ids, timeout=90)
            _check_reshard(env, "partition reshard", ids, during, keys_moved, env.request_counts(), results,
                           _events_by_id(rc, env.queue, 3), metrics, w)
            rc.close()
        finally:
            for node in nodes:
                node.stop(kill=True)


def key_slot_of(key):
    return outq_client.key_slot(key)
