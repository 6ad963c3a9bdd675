"""scripts/run.sh without --once: after the samples it shows each new outcome live, one
line per outcome, and keeps the worker's log when it stops."""
import os
import re
import signal
import subprocess

import redis as redis_py

from harness import ROOT, wait_until


def test_run_sh_shows_new_outcomes_live_and_keeps_the_log():
    out_path = "/tmp/outq-run-sh-test.%d.out" % os.getpid()
    with open(out_path, "w") as out:
        proc = subprocess.Popen(["bash", os.path.join(ROOT, "scripts", "run.sh")], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
                                env=dict(os.environ, OUTQ_BENCH_NO_BUILD="1"))
    try:
        def text():
            with open(out_path, errors="replace") as f:
                return f.read()
        wait_until(lambda: "each new outcome is shown below" in text() or proc.poll() is not None, 240,
                   "run.sh to finish its samples")
        assert proc.poll() is None, text()[-3000:]
        url = re.search(r"redis-cli -u (\S+) XADD", text()).group(1)
        r = redis_py.Redis.from_url(url, decode_responses=True)
        r.xadd("outq:{demo}:jobs", {"job": '{"id":"live-1","provider":"webhook","account":"demo",'
                                           '"message":{"text":"hi"}}'})
        wait_until(lambda: re.search(r"^\d\d:\d\d:\d\d\s+live-1\s+sent", text(), re.M), 30, "the live outcome line")
        r.close()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
        kept = re.search(r"worker log kept: (\S+)", text())
        assert kept, text()[-2000:]
        assert os.path.exists(kept.group(1)) and "job sent" in open(kept.group(1)).read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        text_out = open(out_path).read() if os.path.exists(out_path) else ""
        m = re.search(r"worker log kept: (\S+)", text_out)
        if m:
            subprocess.run(["rm", "-rf", os.path.dirname(m.group(1))])
        os.unlink(out_path)
