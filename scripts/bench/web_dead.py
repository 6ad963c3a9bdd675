#!/usr/bin/env python3
"""How fast `outq web` answers over 100,000 dead letters (issue 20): the first page
unfiltered, by a field filter (provider, account, class, status), and a free-text
search (which reads at most 20,000 letters per request and says how far it got).

  /usr/bin/python3 scripts/bench/web_dead.py [--n 100000] [--outq build/worker/outq]

One redis-server and one `outq web` on loopback ports, stopped by PID; the letters
are written with XADD (the fields a worker writes, a 300-byte job each); each
request is timed 5 times and the median printed."""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import send_n  # noqa: E402 - processes, the pipelining RESP client, free ports

QUEUE = "bench"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100000)
    p.add_argument("--outq", default=os.path.join(send_n.ROOT, "build", "worker", "outq"))
    args = p.parse_args()
    procs = send_n.Processes()
    work = tempfile.mkdtemp(prefix="outq-bench-web-")
    try:
        _, port = send_n.start_redis(procs, work)
        r = send_n.Redis(port)
        commands = []
        for i in range(args.n):
            account = "acct-%d" % (i % 100)
            status = ("422", "400", "503", "")[i % 4]
            error = "HTTP %s from webhook: field %d rejected" % (status, i) if status else "timeout after send"
            job = json.dumps({"v": 1, "id": "job-%d" % i, "provider": "webhook", "account": account,
                              "message": {"text": "Your room is ready, guest %d. " % i + "x" * 200}})
            commands.append(("XADD", "outq:{%s}:dead" % QUEUE, "*", "id", "job-%d" % i, "provider", "webhook",
                             "account", account, "error_class", "permanent" if status else "ambiguous",
                             "error", error, "http_status", status, "failed_at", str(1764583200000 + i), "job", job))
        r.pipeline(commands)
        web_port = send_n.free_port()
        log = os.path.join(work, "web.log")
        procs.start("outq web", [args.outq, "web", "--redis", "redis://127.0.0.1:%d" % port, "--queue", QUEUE,
                                 "--listen", "127.0.0.1:%d" % web_port], stdout=subprocess.DEVNULL,
                    stderr=open(log, "w"))
        time.sleep(0.3)

        def timed(path):
            times, body = [], None
            for _ in range(5):
                c = http.client.HTTPConnection("127.0.0.1", web_port, timeout=60)
                t = time.perf_counter()
                c.request("GET", path, headers={"Host": "127.0.0.1:%d" % web_port})
                res = c.getresponse()
                body = json.loads(res.read())
                times.append((time.perf_counter() - t) * 1000)
                c.close()
                assert res.status == 200, body
            return statistics.median(times), body

        print("outq web over %d dead letters (median of 5, ms)" % args.n)
        for label, path in [("first page, unfiltered", "/api/dead"),
                            ("first page, account (1 in 100)", "/api/dead?account=acct-7"),
                            ("first page, status 5xx (1 in 4)", "/api/dead?status=5xx"),
                            ("first page, class + account", "/api/dead?class=ambiguous&account=acct-3"),
                            ("free text, one match (a 20,000-letter step)", "/api/dead?q=guest%2099999."),
                            ("overview", "/api/overview")]:
            ms, body = timed(path)
            extra = ""
            if "letters" in body:
                extra = "%d shown, scanned %d of %d%s" % (len(body["letters"]), body["scanned"], body["total"],
                                                          ", more" if body["more"] else "")
            print("  %-45s %8.1f   %s" % (label, ms, extra))
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
