#!/usr/bin/env python3
"""outq on a 3-primary Redis Cluster: one queue of P = 1 partition against the same
queue split into P = 3 (issue 19), in one run, on the same cluster, nginx and binary.

Each round: FLUSHALL on every primary, N jobs pre-enqueued with plain XADDs (each to
its id's partition, as docs/protocol.md "Partitions" says), one worker started with
redis.cluster.nodes and queue_partitions P, timed until every job has a result. The
table gives jobs/s, the worker's CPU per 1,000 jobs, and each primary's CPU per job
(from /proc, the three redis-server processes) with the calls it served (INFO
commandstats, calls inside scripts included).

What the figures mean on this machine: 2 cores run the worker, nginx and three
redis-servers, so jobs/s cannot grow with the shards here. The Redis CPU per job
*per shard* is the figure that carries over: with P = 1 one primary carries the
whole queue (its CPU per job is the whole Redis cost, and that one thread caps the
queue), with P = 3 each carries a third, so the queue's Redis capacity is the
primaries' sum instead of one thread's.

  scripts/bench/cluster.sh [--n 50000] [--partitions 1,3] [--repeat R]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
import send_n  # noqa: E402 - the bench's processes, RESP client, nginx and CPU readers
from outq_client import key_slot, partition_of, partition_tag  # noqa: E402

QUEUE = "bench"


def start_cluster(procs, work, n=3):
    """n redis-server nodes in cluster mode, the slots split evenly, met and agreed."""
    nodes = []
    for i in range(n):
        d = os.path.join(work, "node%d" % i)
        os.makedirs(d)
        for _ in range(100):
            port = send_n.free_port()
            if port + 10000 <= 65535:
                break
        p = procs.start("redis-server", [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", d, "--logfile", os.path.join(d, "redis.log"), "--daemonize", "no", "--cluster-enabled", "yes",
            "--cluster-config-file", os.path.join(d, "nodes.conf")])
        send_n.wait_port(port, "redis-server", p, log=os.path.join(d, "redis.log"))
        nodes.append({"port": port, "pid": p.pid, "client": send_n.Redis(port)})
    per = 16384 // n
    ranges = []
    for i, node in enumerate(nodes):
        first, last = i * per, (16383 if i == n - 1 else (i + 1) * per - 1)
        ranges.append((first, last))
        node["client"].call("CLUSTER", "ADDSLOTSRANGE", first, last)
        if i:
            node["client"].call("CLUSTER", "MEET", "127.0.0.1", nodes[0]["port"])
    deadline = time.monotonic() + 30
    while any("cluster_state:ok" not in node["client"].call("CLUSTER", "INFO") for node in nodes):
        if time.monotonic() > deadline:
            raise send_n.Failure("the cluster did not agree within 30 s")
        time.sleep(0.1)
    return nodes, ranges


def owner(ranges, key):
    slot = key_slot(key)
    return next(i for i, (first, last) in enumerate(ranges) if first <= slot <= last)


def enqueue(nodes, ranges, n, partitions, message):
    parts = message.split("%I%")
    by_node = [[] for _ in nodes]
    for i in range(n):
        job_id = "bench-%d" % i
        key = "outq:{%s}:jobs" % partition_tag(QUEUE, partition_of(job_id, partitions), partitions)
        body = str(i).join(parts)
        job = '{"v":1,"id":"%s","provider":"webhook","account":"bench","message":%s}' % (job_id, body)
        by_node[owner(ranges, key)].append(("XADD", key, "*", "job", job))
    for node, commands in zip(nodes, by_node):
        if commands:
            node["client"].pipeline(commands)


def results_written(nodes, ranges, partitions):
    total = 0
    for i in range(partitions):
        key = "outq:{%s}:results" % partition_tag(QUEUE, i, partitions)
        total += nodes[owner(ranges, key)]["client"].call("XLEN", key)
    return total


def calls_served(node):
    stats = send_n.redis_commandstats(node["client"])
    return sum(c for c, _ in stats.values())


def one_round(args, procs, work, nodes, ranges, url, partitions, label):
    for node in nodes:
        node["client"].call("FLUSHALL")
    enqueue(nodes, ranges, args.n, partitions, send_n.MESSAGE)
    config = {
        "redis": {"cluster": {"nodes": ["redis://127.0.0.1:%d" % nodes[0]["port"]]}},
        "queue": QUEUE, "queue_partitions": partitions,
        "concurrency": args.concurrency, "fetch_batch": args.fetch_batch, "log_level": "warn",
        "results": {"stream_maxlen": max(100000, 2 * args.n)},
        "providers": {"webhook": {"http": {"max_connections": args.connections},
                                  "accounts": {"bench": {"url": url}}}},
    }
    path = os.path.join(work, "%s.json" % label)
    with open(path, "w") as f:
        json.dump(config, f)
    for node in nodes:
        node["client"].call("CONFIG", "RESETSTAT")
    cpu0 = [send_n.cpu_seconds([node["pid"]]) for node in nodes]
    log = os.path.join(work, "%s.log" % label)
    started = time.monotonic()
    worker = procs.start("outq", [args.outq, "run", "--config", path], stdout=subprocess.DEVNULL,
                         stderr=open(log, "w"))
    send_n.watch(worker, lambda: results_written(nodes, ranges, partitions) >= args.n, args.timeout, "outq", log)
    wall = time.monotonic() - started
    worker_cpu = send_n.cpu_seconds([worker.pid])
    redis_cpu = [send_n.cpu_seconds([node["pid"]]) - c for node, c in zip(nodes, cpu0)]
    calls = [calls_served(node) for node in nodes]
    procs.stop(worker, timeout=30)
    return {"partitions": partitions, "wall": wall, "jobs_s": args.n / wall,
            "worker_ms_per_1k": worker_cpu * 1e6 / args.n, "redis_us": [c * 1e6 / args.n for c in redis_cpu],
            "calls": [c / args.n for c in calls]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50000, help="jobs per round (default 50000)")
    p.add_argument("--partitions", default="1,3", help="partition counts to compare (default 1,3)")
    p.add_argument("--repeat", type=int, default=1, help="rounds per count; the table shows medians")
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--fetch-batch", type=int, default=128)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--outq", default=os.path.join(send_n.ROOT, "build", "worker", "outq"))
    args = p.parse_args()
    counts = [int(x) for x in args.partitions.split(",")]
    procs = send_n.Processes()
    work = tempfile.mkdtemp(prefix="outq-bench-cluster-")
    try:
        nodes, ranges = start_cluster(procs, work)
        _, _, port, _ = send_n.start_nginx(procs, work, "/hook", False)
        url = "http://127.0.0.1:%d/hook" % port
        rows = []
        for r in range(args.repeat):
            for count in counts:  # alternated: drift on a shared machine hits both
                rows.append(one_round(args, procs, work, nodes, ranges, url, count, "p%d-%d" % (count, r)))
        print("\noutq on a 3-primary Redis Cluster, %d jobs per round, median of %d (this machine: %d cores)"
              % (args.n, args.repeat, os.cpu_count()))
        print("%-11s %9s %14s %27s %24s" % ("partitions", "jobs/s", "worker ms/1k", "Redis CPU µs/job per shard",
                                             "calls/job per shard"))
        for count in counts:
            mine = [row for row in rows if row["partitions"] == count]
            med = lambda key: statistics.median(row[key] for row in mine)  # noqa: E731
            shard_us = [statistics.median(row["redis_us"][i] for row in mine) for i in range(len(nodes))]
            shard_calls = [statistics.median(row["calls"][i] for row in mine) for i in range(len(nodes))]
            print("%-11d %9.0f %14.1f %27s %24s" % (
                count, med("jobs_s"), med("worker_ms_per_1k"), " / ".join("%.1f" % u for u in shard_us),
                " / ".join("%.2f" % c for c in shard_calls)))
            print("%-11s %9s %14s %27s" % ("", "", "", "(sum %.1f, busiest %.1f)" % (sum(shard_us), max(shard_us))))
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
