"""Redis Cluster (issue 19): outq does not follow cluster redirects yet. Pointed at a
cluster node that does not own the queue's slot, the worker refuses to start at once,
with one line saying so and what to do, instead of retrying for ever."""
import os
import socket

import redis

from harness import Env, RedisServer, free_port, wait_until


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
