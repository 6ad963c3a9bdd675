"""Chaos test of the whole delivery path: a persistent redis-server, three real
`outq run` workers on the webhook provider, a recording fake provider with
injected faults, thousands of plain-XADD jobs, and a schedule of kills,
graceful stops, stalls and Redis restarts. At the end every job id is checked
against the invariants of docs/protocol.md, and every duplicate acceptance by
the provider must be explained by one of a closed list of classes proven from
the recorded evidence (see tests/chaos/README.md).

    /usr/bin/python3 tests/chaos/chaos.py [--duration S] [--jobs N] [--long] [--seed N] [--keep]
                                          [--actions kill9,sigterm,...] [--explain N]

The worker binary is $OUTQ_BUILD_DIR/worker/outq (default build/worker/outq).
Exit 0 on pass, 1 on fail; the last line is `chaos: PASS ...` or `chaos: FAIL ...`.
"""
import argparse
import collections
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import redis  # noqa: E402
from harness import RedisServer  # noqa: E402

QUEUE = "chaos"
GROUP = "outq.v2"  # the consumer group of format 2 (docs/protocol.md)

# Worker timing. The Redis stalls are longer than the command timeout (so the
# worker's round trips time out mid-transaction) and every stall or outage is far
# shorter than the visibility timeout (so a live worker never loses its jobs to a
# stall of Redis); a SIGSTOP of a worker is longer than the visibility timeout
# plus the reclaim interval (so another worker does take its jobs over).
COMMAND_TIMEOUT_MS = 400
REQUEST_TIMEOUT_MS = 800
VISIBILITY_MS = 6000
GRACE_MS = 5000
CONCURRENCY = 24
PAUSE_WRITE_MS = 1200
PAUSE_ALL_MS = 1000
DEBUG_SLEEP_S = 1.5
SIGSTOP_S = VISIBILITY_MS / 1000.0 + VISIBILITY_MS / 2000.0 + 1.5  # at most; see TAKEOVER_CONT_S
TAKEOVER_CONT_S = 0.15  # a SIGSTOPped worker resumes this long after another worker took its entries over
HOLD_S = 0.5  # before a SIGSTOP, that worker's requests are answered after this long (in time)
TAKEOVER_SLOW_S = 0.6  # the take-over sends of the stopped worker's jobs are answered after this long
REDIS_DOWN_S = 0.5
AFTER_SIGTERM_S = (0.02, 0.06, 0.12, 0.2, 0.28)  # low-load jobs moved to just after each SIGTERM

# Per-request fault weights of the fake provider.
FAULTS = [
    ("ok", 0.70),
    ("http5xx", 0.07),            # 500/502/503 after reading the body: not accepted
    ("rate429", 0.015),           # 429 + Retry-After: 1 (pauses that account fleet-wide): not accepted
    ("slow", 0.06),               # 200 after 100-450 ms, within the request timeout: accepted
    ("slow_timeout", 0.035),      # 200 after 1.25-1.8x the request timeout: accepted, ambiguous to the worker
    ("reset_before_body", 0.05),  # RST after the headers, body unread: not accepted
    ("reset_after_body", 0.07),   # RST after reading the body, no answer: accepted, ambiguous to the worker
]
ACCOUNTS = ["a%d" % i for i in range(12)]
KINDS = ["kill9", "sigterm", "sigstop", "redis_restart_term", "redis_restart_kill", "pause_write", "pause_all",
         "debug_sleep"]

PROFILES = {
    "default": dict(duration=120.0, jobs=6000, high_s=10.0, low_s=12.0, low_rate=5.0, upfront=0.35,
                    drain_timeout=90.0),
    "long": dict(duration=600.0, jobs=30000, high_s=10.0, low_s=12.0, low_rate=5.0, upfront=0.15,
                 drain_timeout=150.0),
}

T0 = time.monotonic()
WALL0 = time.time()  # Redis' clock (stream entry ids) is this machine's wall clock


def now():
    """Seconds since the start of the run (monotonic): every recorded time uses it."""
    return time.monotonic() - T0


class Abort(Exception):
    """Raised in the main thread by SIGTERM/SIGALRM so that `finally` stops everything."""


# --------------------------------------------------------------------------
# The recording fake provider
# --------------------------------------------------------------------------

class FakeProvider:
    """A threaded HTTP/1.1 keep-alive server on 127.0.0.1 that records every request
    and applies a fault drawn from a seeded RNG per (job id, n-th request of it)."""

    def __init__(self, seed, attribution):
        self.seed = seed
        self.attribution = attribution
        self.lock = threading.Lock()
        self.records = []
        self.per_key = collections.Counter()
        self.conns = 0
        self.stopped = False
        # Targeted faults for the SIGSTOP action: requests of one worker held (answered
        # slowly, in time), and the next request of given job ids answered slowly.
        self.hold_pid = None
        self.forced = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept_loop, name="provider-accept", daemon=True)
        self.names = [f for f, _ in FAULTS]
        self.cum = []
        total = 0.0
        for _, w in FAULTS:
            total += w
            self.cum.append(total)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept_loop(self):
        while not self.stopped:
            try:
                conn, addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.conns += 1
                conn_id = self.conns
            threading.Thread(target=self._serve, args=(conn, addr, conn_id), daemon=True).start()

    def _draw(self, key, conn_id):
        with self.lock:
            n = self.per_key[key]
            self.per_key[key] += 1
            forced = self.forced.pop(key, None)
        if forced:
            return forced
        if self.hold_pid is not None and self.attribution.pid(conn_id) == self.hold_pid:
            return "slow", HOLD_S, 200
        rng = random.Random("%s:%s:%d" % (self.seed, key, n))
        x = rng.random() * self.cum[-1]
        fault = self.names[-1]
        for name, edge in zip(self.names, self.cum):
            if x < edge:
                fault = name
                break
        delay = 0.0
        if fault == "slow":
            delay = rng.uniform(0.10, 0.45)
        elif fault == "slow_timeout":
            delay = rng.uniform(1.25, 1.8) * REQUEST_TIMEOUT_MS / 1000.0
        status = rng.choice([500, 502, 503]) if fault == "http5xx" else 429 if fault == "rate429" else 200
        return fault, delay, status

    @staticmethod
    def _reset(conn):
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        conn.close()

    def _serve(self, conn, addr, conn_id):
        attributed = self.attribution.submit(conn_id, addr[1])
        conn.settimeout(120)
        buf = b""
        index = 0
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                key = headers.get("idempotency-key", "")
                try:
                    attempt = int(headers.get("x-outq-attempt", "0"))
                except ValueError:
                    attempt = 0
                fault, delay, status = self._draw(key, conn_id)
                rec = {"id": key, "attempt": attempt, "t": now(), "fault": fault, "delay": delay,
                       "path": parts[1] if len(parts) > 1 else "", "conn": conn_id, "index": index,
                       "port": addr[1], "pid": None, "body_read": False, "accepted": False,
                       "status": None, "answered": None, "answer_ok": None, "end": None}
                with self.lock:
                    rec["seq"] = len(self.records)
                    self.records.append(rec)
                if fault == "reset_before_body":
                    attributed.wait(1.0)
                    rec["end"] = now()
                    self._reset(conn)
                    return
                while len(buf) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        rec["end"] = now()
                        return
                    buf += chunk
                buf = buf[length:]
                rec["body_read"] = True
                rec["accepted"] = fault not in ("http5xx", "rate429")
                if fault == "reset_after_body":
                    attributed.wait(1.0)
                    rec["end"] = now()
                    self._reset(conn)
                    return
                if delay:
                    time.sleep(delay)
                if index == 0:
                    # Attributed before the first answer: a client may close its
                    # connection right after (the socket and its owner are gone then).
                    attributed.wait(1.0)
                body = b'{"id":"fp-%d","received":true}' % rec["seq"] if status == 200 else b'{"error":"chaos"}'
                reason = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                          503: "Service Unavailable"}[status]
                extra = "Retry-After: 1\r\n" if status == 429 else ""
                answer = ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
                          % (status, reason, len(body), extra)).encode() + body
                rec["status"] = status
                try:
                    conn.sendall(answer)
                    rec["answer_ok"] = True
                except OSError:
                    rec["answer_ok"] = False
                    return
                finally:
                    rec["answered"] = rec["end"] = now()
                index += 1
                if headers.get("connection", "").lower() == "close":
                    return
        except (OSError, ValueError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def snapshot(self):
        with self.lock:
            out = [dict(r) for r in self.records]
        for r in out:
            r["pid"] = self.attribution.pid(r["conn"])
        return out


class PortAttribution:
    """Maps a provider connection to the PID of the worker process whose socket it
    is: /proc/net/tcp gives the client socket's inode from its loopback port,
    /proc/<pid>/fd of the live workers its owner. One thread resolves the new
    connections in batches, off the request path; a connection waits for it only
    before its first answer or a reset (the client may close the socket after)."""

    def __init__(self, server_port_fn, live_pids_fn):
        self.server_port_fn = server_port_fn
        self.live_pids_fn = live_pids_fn
        self.cv = threading.Condition()
        self.queue = []
        self.events = {}
        self.result = {}  # connection id -> pid (None: not found)
        self.inode_pid = {}
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, name="attribution", daemon=True)
        self.thread.start()

    def submit(self, conn_id, peer_port):
        ev = threading.Event()
        with self.cv:
            self.events[conn_id] = ev
            self.queue.append((conn_id, peer_port, 0))
            self.cv.notify()
        return ev

    def pid(self, conn_id):
        return self.result.get(conn_id)

    def stop(self):
        with self.cv:
            self.stopped = True
            self.cv.notify()

    def _loop(self):
        while True:
            with self.cv:
                while not self.queue and not self.stopped:
                    self.cv.wait(0.5)
                if self.stopped:
                    return
                batch, self.queue = self.queue, []
            try:
                found = self._resolve(batch)
            except Exception:  # noqa: BLE001 - attribution is evidence, not a test step
                found = {}
            again = []
            with self.cv:
                for conn_id, port, tries in batch:
                    if conn_id in found or tries >= 4:
                        self.result[conn_id] = found.get(conn_id)
                        self.events.pop(conn_id).set()
                    else:
                        again.append((conn_id, port, tries + 1))
                self.queue.extend(again)
            if again:
                # /proc/net/tcp is read in pages while the table changes: a socket can
                # be skipped. Look again shortly.
                time.sleep(0.005)

    def _resolve(self, batch):
        with open("/proc/net/tcp") as f:
            text = f.read()
        remote = "0100007F:%04X" % self.server_port_fn()
        inodes = {}
        for conn_id, port, _ in batch:
            i = text.find(": 0100007F:%04X %s " % (port, remote))
            if i < 0:
                continue
            fields = text[i:text.find("\n", i)].split()
            if len(fields) > 9 and fields[9] != "0":
                inodes[conn_id] = fields[9]
        if any(inode not in self.inode_pid for inode in inodes.values()):
            for pid in self.live_pids_fn():
                try:
                    fds = os.listdir("/proc/%d/fd" % pid)
                except OSError:
                    continue
                for fd in fds:
                    try:
                        link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                    except OSError:
                        continue
                    if link.startswith("socket:["):
                        self.inode_pid[link[8:-1]] = pid
        return {conn_id: self.inode_pid[inode] for conn_id, inode in inodes.items() if inode in self.inode_pid}


# --------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------

class Slot:
    """One of the three worker places; each (re)start is a new process (a new PID)."""

    def __init__(self, name, config_path):
        self.name = name
        self.config_path = config_path
        self.gen = 0
        self.proc = None
        self.state = "down"  # running, stopped (SIGSTOP), terminating, down
        self.restart_at = None
        self.cont_at = None
        self.term_at = None
        self.log_path = None
        self.stop_action = None
        self.takeover_seen = None  # set by the PEL watcher: another worker took this one's entries
        self.takeovers = 0


class Chaos:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="outq-chaos-")
        self.build = os.environ.get("OUTQ_BUILD_DIR", os.path.join(ROOT, "build"))
        self.outq = os.path.join(self.build, "worker", "outq")
        self.rng = random.Random("chaos:%d" % args.seed)
        self.redis = RedisServer(self.dir, persistent=True)
        self.redis_extra = ["--enable-debug-command", "yes"]
        self.redis_lock = threading.Lock()  # the producer's XADDs never meet a restart
        self.slots = []
        self.pids = {}  # pid -> {"slot", "gen", "start", "end", "how", "code", "log"}
        self.live = set()
        self.live_lock = threading.Lock()
        self.actions = []  # {"t", "end", "action", "slot", "pid", "detail"}
        self.failures = collections.defaultdict(list)  # category -> lines
        self.attribution = PortAttribution(lambda: self.provider.port, self.live_pids)
        self.provider = FakeProvider(args.seed, self.attribution)
        self.ids = []
        self.enqueued_at = {}
        self.producer_error = None
        self.stop_producer = threading.Event()
        self.helpers = []
        self.keep = False  # set on a failure: the run's directory stays for the logs
        self.steals = []  # pending entries moved between live owners without being idle (see watch_pel)
        self.stop_watch = threading.Event()
        self.watch_errors = []
        self.watch_samples = 0
        self.job_of = {}  # stream entry id -> job id, for entries seen pending
        self.pel_snapshots = collections.deque(maxlen=100)  # (time, {entry: consumer}), ten a second
        self.owner_log = collections.defaultdict(list)  # job id -> [(time, owner pid)] at each owner seen anew

    # --- processes ------------------------------------------------------
    def live_pids(self):
        with self.live_lock:
            return list(self.live)

    def config(self):
        return {
            "redis": {"url": self.redis.url, "command_timeout_ms": COMMAND_TIMEOUT_MS, "connect_timeout_ms": 400},
            "queue": QUEUE, "concurrency": CONCURRENCY, "fetch_batch": CONCURRENCY,
            "visibility_timeout_ms": VISIBILITY_MS, "shutdown_grace_ms": GRACE_MS, "max_deliveries": 10,
            "log_level": "info",
            "providers": {"webhook": {
                "retry": {"base_ms": 50, "cap_ms": 500, "max_attempts": 30, "max_rate_limited": 60,
                          "max_retry_after_ms": 2000},
                "http": {"request_timeout_ms": REQUEST_TIMEOUT_MS, "connect_timeout_ms": 500,
                         "max_connections": 16},
                # The chaos provider fails often on purpose: the breaker opens and
                # probes, but its openings stay short so the drain stays bounded.
                "circuit": {"open_ms": 300, "max_open_ms": 2000},
                "accounts": {a: {"url": "%s/hook/%s" % (self.provider.url, a)} for a in ACCOUNTS}}},
        }

    def start_worker(self, slot):
        slot.gen += 1
        slot.log_path = os.path.join(self.dir, "%s.%d.log" % (slot.name, slot.gen))
        env = {k: v for k, v in os.environ.items() if k != "OUTQ_REDIS_URL" and "proxy" not in k.lower()}
        with open(slot.log_path, "ab") as log:
            slot.proc = subprocess.Popen([self.outq, "run", "--config", slot.config_path], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        slot.state = "running"
        slot.restart_at = slot.cont_at = slot.term_at = None
        pid = slot.proc.pid
        self.pids[pid] = {"slot": slot.name, "gen": slot.gen, "start": now(), "end": None, "how": None,
                          "code": None, "log": slot.log_path}
        with self.live_lock:
            self.live.add(pid)

    def _ended(self, slot, how, code):
        info = self.pids[slot.proc.pid]
        info.update(end=now(), how=how, code=code)
        with self.live_lock:
            self.live.discard(slot.proc.pid)
        slot.state = "down"

    def record(self, action, slot=None, pid=None, detail="", end=None):
        a = {"t": now(), "end": end, "action": action, "slot": slot.name if slot else None, "pid": pid,
             "detail": detail}
        self.actions.append(a)
        return a

    def pick(self):
        choices = [s for s in self.slots if s.state == "running"]
        return self.rng.choice(choices) if choices else None

    def tend(self):
        """Reaps exits, restarts, SIGCONTs; called often from the main thread."""
        t = now()
        for s in self.slots:
            if s.proc is not None and s.state in ("running", "stopped", "terminating"):
                code = s.proc.poll()
                if code is not None:
                    if s.state == "terminating":
                        self._ended(s, "sigterm", code)
                        if code != 0:
                            self.failures["worker exit code after SIGTERM"].append(
                                "%s pid %d exited %s after SIGTERM (log %s)" % (s.name, s.proc.pid, code, s.log_path))
                    else:
                        self._ended(s, "crashed", code)
                        self.failures["worker exited by itself"].append(
                            "%s pid %d exited %s without being told to:\n%s"
                            % (s.name, s.proc.pid, code, tail(s.log_path, 15)))
                    s.restart_at = t + 0.2
            if s.state == "terminating" and t - s.term_at > GRACE_MS / 1000.0 + 10:
                self.failures["worker did not exit after SIGTERM"].append(
                    "%s pid %d still running %.1f s after SIGTERM" % (s.name, s.proc.pid, t - s.term_at))
                s.proc.kill()
                s.proc.wait(timeout=10)
                self._ended(s, "sigterm-timeout", None)
                s.restart_at = t + 0.2
            if (s.state == "stopped" and s.takeover_seen is not None and t >= s.takeover_seen + TAKEOVER_CONT_S
                    and t - s.stop_action["t"] >= VISIBILITY_MS / 1e3):
                s.cont_at = t  # resume right after another worker took its jobs over: they are in flight there
            if s.state == "stopped" and s.cont_at is not None and t >= s.cont_at:
                self._watch_resume(s.proc.pid)
                os.kill(s.proc.pid, signal.SIGCONT)
                s.state = "running"
                s.stop_action["end"] = now()
                s.stop_action["detail"] = "%.1f s, %d of its pending entries taken over meanwhile" % (
                    s.stop_action["end"] - s.stop_action["t"], s.takeovers)
                s.takeovers = 0
                s.cont_at = None
            if s.state == "down" and s.restart_at is not None and t >= s.restart_at:
                self.start_worker(s)

    # --- chaos actions ----------------------------------------------------
    def act(self, kind):
        if kind == "kill9":
            s = self.pick()
            if not s:
                return self.record("kill9", detail="skipped: no running worker")
            pid = s.proc.pid
            os.kill(pid, signal.SIGKILL)
            s.proc.wait(timeout=10)
            self._ended(s, "kill9", -9)
            s.restart_at = now() + self.rng.uniform(0.3, 1.0)
            return self.record("kill9", s, pid)
        if kind == "sigterm":
            s = self.pick()
            if not s:
                return self.record("sigterm", detail="skipped: no running worker")
            os.kill(s.proc.pid, signal.SIGTERM)
            s.state = "terminating"
            s.term_at = now()
            return self.record("sigterm", s, s.proc.pid)
        if kind == "sigstop":
            # Targeted: the worker's sends are answered slowly for a moment so that it
            # holds several jobs when it stops; the other worker's take-over sends of
            # those jobs are answered slowly too, and the stopped worker resumes right
            # after the take-over, while they are in flight (see tend/watch_pel).
            s = self.pick()
            if not s:
                return self.record("sigstop", detail="skipped: no running worker")
            pid = s.proc.pid
            self.provider.hold_pid = pid
            time.sleep(HOLD_S * 0.8)
            os.kill(pid, signal.SIGSTOP)
            self.provider.hold_pid = None
            s.state = "stopped"
            s.takeover_seen = None
            s.cont_at = now() + SIGSTOP_S
            s.stop_action = self.record("sigstop", s, pid, "at most %.1f s" % SIGSTOP_S)
            th = threading.Thread(target=self._slow_takeovers, args=(pid,), daemon=True)
            th.start()
            self.helpers.append(th)
            return s.stop_action
        if kind in ("redis_restart_term", "redis_restart_kill"):
            with self.redis_lock:
                a = self.record(kind, detail="down %.1f s" % REDIS_DOWN_S)
                self.redis.stop(kill=kind.endswith("kill"))
                time.sleep(REDIS_DOWN_S)  # a real outage
                self.redis.start(self.redis_extra)
                self.producer_client = self.redis.client()
                self.ctl = self.redis.client()
                a["end"] = now()
            return a
        if kind in ("pause_write", "pause_all"):
            ms, mode = (PAUSE_WRITE_MS, "WRITE") if kind == "pause_write" else (PAUSE_ALL_MS, "ALL")
            a = self.record(kind, detail="CLIENT PAUSE %d %s" % (ms, mode), end=now() + ms / 1e3)
            try:
                self.ctl.execute_command("CLIENT", "PAUSE", ms, mode)
            except redis.RedisError as e:
                a["detail"] = "skipped: %r" % e
            return a
        if kind == "debug_sleep":
            a = self.record(kind, detail="DEBUG SLEEP %.1f" % DEBUG_SLEEP_S, end=now() + DEBUG_SLEEP_S)
            client = self.redis.client()

            def sleep():
                try:
                    client.execute_command("DEBUG", "SLEEP", DEBUG_SLEEP_S)
                except Exception as e:  # noqa: BLE001
                    a["detail"] += " (%r)" % e
                finally:
                    client.close()
            th = threading.Thread(target=sleep, daemon=True)
            th.start()
            self.helpers.append(th)
            return a
        raise ValueError(kind)

    def _watch_resume(self, pid):
        """MONITOR from just before a SIGSTOPped worker resumes until 2 s after: its
        heartbeat's XCLAIMs name the entries it claims, and the pending-list samples say
        who held them. Returns once MONITOR runs and a sample was taken after it."""
        ready = threading.Event()
        th = threading.Thread(target=self._monitor, args=(pid, ready), daemon=True)
        th.start()
        self.helpers.append(th)
        ready.wait(1.0)
        samples = self.watch_samples
        deadline = time.monotonic() + 0.5
        while self.watch_samples == samples and time.monotonic() < deadline:
            time.sleep(0.005)

    def _monitor(self, pid, ready):
        consumer = "%s-%d" % (socket.gethostname(), pid)
        claims, acks = [], []  # (t, [entry ids])
        try:
            client = self.redis.client()
            with client.monitor() as m:
                started = now()
                ready.set()
                while now() < started + 2.5:
                    c = m.next_command()
                    args = c["command"].split(" ")
                    t = c["time"] - WALL0
                    name = args[0].upper()
                    if name == "XCLAIM" and len(args) > 5 and args[3] == consumer:
                        claims.append((t, args[4], [a for a in args[5:] if a.upper() != "JUSTID"]))
                    elif name == "XACK" and len(args) > 3:
                        acks.append((t, args[3:]))
            client.close()
        except (redis.RedisError, OSError, ValueError, AttributeError) as e:
            self.watch_errors.append("monitor: %r" % e)
            ready.set()
            return
        snapshots = list(self.pel_snapshots)
        for t, min_idle, entries in claims:
            if min_idle != "0":
                continue  # may not take effect; a real transfer still shows in the pending-list samples
            before = [snap for snap in snapshots if started <= snap[0] <= t]
            if not before:
                continue
            t_sample, owners = before[-1]
            acked = set(e for ta, ids in acks if t_sample <= ta <= t for e in ids)
            for e in entries:
                owner = owners.get(e)
                if owner and owner != consumer and e not in acked:
                    self.steals.append({"t": t, "entry": e, "id": None, "from": pid_of_consumer(owner), "to": pid,
                                        "idle_before": -1, "gap": t - t_sample, "how": "XCLAIM min-idle %s" % min_idle})

    def _slow_takeovers(self, pid):
        """The next request of each job the stopped worker holds is answered slowly."""
        time.sleep(0.5)  # requests already on their way have arrived
        try:
            client = self.redis.client()
            key = "outq:{%s}:jobs" % QUEUE
            rows = client.xpending_range(key, GROUP, "-", "+", 1000, consumername="%s-%d" % (socket.gethostname(), pid))
            for row in rows:
                found = client.xrange(key, row["message_id"], row["message_id"])
                if found:
                    job_id = json.loads(found[0][1].get("job", "{}")).get("id")
                    if job_id:
                        with self.provider.lock:
                            self.provider.forced[job_id] = ("slow", TAKEOVER_SLOW_S, 200)
            client.close()
        except (redis.RedisError, OSError, ValueError) as e:
            self.watch_errors.append("slow take-overs: %r" % e)

    # --- plan ------------------------------------------------------------------
    def plan(self):
        a = self.args
        phases, t, kind = [], 0.0, "high"
        while t < a.duration - 1e-9:
            end = min(a.duration, t + (a.high_s if kind == "high" else a.low_s))
            phases.append((kind, t, end))
            t, kind = end, "low" if kind == "high" else "high"
        upfront = int(a.jobs * a.upfront)
        counts = []
        low_total = 0
        for kind, s, e in phases:
            if kind == "low":
                n = int(round(a.low_rate * (e - s)))
                low_total += n
                counts.append(n)
            else:
                counts.append(None)
        high_time = sum(e - s for (k, s, e) in phases if k == "high")
        rest = max(0, a.jobs - upfront - low_total)
        arrivals = [0.0] * upfront
        assigned = 0
        high_phases = [i for i, c in enumerate(counts) if c is None]
        for n_i, i in enumerate(high_phases):
            k, s, e = phases[i]
            n = rest - assigned if n_i == len(high_phases) - 1 else int(rest * (e - s) / high_time)
            counts[i] = n
            assigned += n
        for (kind, s, e), n in zip(phases, counts):
            for j in range(n):
                arrivals.append(s + (j + 0.5) * (e - s) / max(n, 1))
        arrivals.sort()
        # Chaos: high-load phases get a kill -9 and up to two Redis/SIGSTOP actions,
        # low-load phases get graceful SIGTERMs (jobs keep trickling in meanwhile). A
        # SIGTERM's drain (at most the grace) ends before the next Redis action.
        specials = ["redis_restart_term", "debug_sleep", "sigstop", "pause_write", "redis_restart_kill",
                    "debug_sleep", "pause_all", "sigstop"]
        extra = ["debug_sleep", "sigstop", "pause_write", "redis_restart_term", "debug_sleep", "redis_restart_kill",
                 "pause_all"]
        queue = list(specials)
        events = []
        for kind, s, e in phases:
            length = e - s
            if kind == "high":
                if length >= 3.0:
                    events.append((s + self.rng.uniform(1.0, 3.0), "kill9"))
                for lo, hi in ((3.5, 5.0), (6.5, 8.0)):
                    if length < hi + 1.0:
                        break
                    if not queue:
                        queue = list(extra)
                    action = queue.pop(0)
                    at = s + self.rng.uniform(lo, hi)
                    if action == "sigstop" and at + SIGSTOP_S > a.duration - 1.0:
                        queue.insert(0, action)
                        action = "debug_sleep"
                    events.append((at, action))
            else:
                for lo, hi in ((1.0, 2.0), (5.5, 6.5)):
                    if length >= hi + GRACE_MS / 1000.0 + 0.5:
                        events.append((s + self.rng.uniform(lo, hi), "sigterm"))
        events.sort()
        if self.args.actions:
            events = [e for e in events if e[1] in self.args.actions]
        # Targeted: a few of the low-load jobs arrive right after each SIGTERM, while the
        # stopping worker's last XREADGROUP is still blocked.
        for at, kind in events:
            if kind != "sigterm":
                continue
            later = [i for i, x in enumerate(arrivals) if at + 1.0 <= x <= at + 4.0][:len(AFTER_SIGTERM_S)]
            for i, offset in zip(later, AFTER_SIGTERM_S):
                arrivals[i] = at + offset
        arrivals.sort()
        return phases, arrivals, events

    # --- producer -------------------------------------------------------------------
    def produce(self, arrivals):
        key = "outq:{%s}:jobs" % QUEUE
        try:
            i = 0
            while i < len(arrivals) and not self.stop_producer.is_set():
                t = now() - self.t_start
                due = i
                while due < len(arrivals) and arrivals[due] <= t:
                    due += 1
                if due == i:
                    time.sleep(min(0.05, max(0.0, arrivals[i] - t)))
                    continue
                with self.redis_lock:
                    pipe = self.producer_client.pipeline(transaction=False)
                    batch = self.ids[i:due]
                    for job_id in batch:
                        n = int(job_id.rsplit("-", 1)[1])
                        job = {"v": 1, "id": job_id, "provider": "webhook", "account": ACCOUNTS[n % len(ACCOUNTS)],
                               "message": {"n": n, "text": "chaos message %d" % n}}
                        pipe.xadd(key, {"job": json.dumps(job, separators=(",", ":"))})
                    pipe.execute()
                    t_done = now()
                    for job_id in batch:
                        self.enqueued_at[job_id] = t_done
                i = due
        except Exception as e:  # noqa: BLE001 - reported as a failure
            self.producer_error = "%r\n%s" % (e, traceback.format_exc())

    # --- the pending-list watcher -----------------------------------------------------------
    def watch_pel(self):
        """Samples the group's pending list ten times a second. An entry that changes
        owner after being idle for far less than the visibility timeout cannot have been
        taken over by XAUTOCLAIM (min idle = the visibility timeout): a worker XCLAIMed
        an entry that another worker holds, i.e. took back a job it had lost."""
        key = "outq:{%s}:jobs" % QUEUE
        client, owners, job_of = None, {}, self.job_of
        while not self.stop_watch.is_set():
            try:
                if client is None:
                    client = self.redis.client()
                t_before = now()
                rows = client.xpending_range(key, GROUP, "-", "+", 5000)
                t = now()
                self.pel_snapshots.append((t_before, {row["message_id"]: row["consumer"] for row in rows}))
                self.watch_samples += 1
                new_entries = [row["message_id"] for row in rows if row["message_id"] not in job_of]
                if new_entries:
                    pipe = client.pipeline(transaction=False)
                    for eid in new_entries:
                        pipe.xrange(key, eid, eid)
                    for eid, found in zip(new_entries, pipe.execute()):
                        job_of[eid] = None
                        if found:
                            try:
                                job_of[eid] = json.loads(found[0][1].get("job", "{}")).get("id")
                            except ValueError:
                                pass
                seen = {}
                for row in rows:
                    eid, owner, idle = row["message_id"], row["consumer"], row["time_since_delivered"]
                    before = owners.get(eid)
                    seen[eid] = (owner, idle, t)
                    if job_of.get(eid) is not None and (not before or before[0] != owner):
                        self.owner_log[job_of[eid]].append((t, pid_of_consumer(owner)))
                    if not before or before[0] == owner:
                        continue
                    gap = t - before[2]
                    move = {"t": t, "entry": eid, "id": job_of.get(eid), "from": pid_of_consumer(before[0]),
                            "to": pid_of_consumer(owner), "idle_before": before[1], "gap": gap}
                    if gap <= 1.0 and before[1] + gap * 1000 < VISIBILITY_MS - 1000:
                        self.steals.append(move)
                # A SIGSTOPped worker cannot ack: an entry leaving its pending list was
                # taken over (and maybe finished at once) by another worker.
                stopped = {sl.proc.pid: sl for sl in self.slots
                           if sl.state == "stopped" and sl.stop_action and t - sl.stop_action["t"] > 1.0}
                for eid, (owner, _, _) in owners.items():
                    sl = stopped.get(pid_of_consumer(owner))
                    if sl is not None and (eid not in seen or seen[eid][0] != owner):
                        sl.takeovers += 1
                        if sl.takeover_seen is None:
                            sl.takeover_seen = now()
                owners = seen
            except Exception as e:  # noqa: BLE001 - Redis restarts and stalls; anything else is reported
                self.watch_errors.append(repr(e))
                if client is not None:
                    try:
                        client.close()
                    except Exception:  # noqa: BLE001
                        pass
                client, owners = None, {}
                self.stop_watch.wait(0.2)
            self.stop_watch.wait(0.1)

    # --- the run ----------------------------------------------------------------------
    def run(self):
        a = self.args
        if not os.access(self.outq, os.X_OK):
            return 1, "chaos: FAIL no worker binary at %s (build first or set OUTQ_BUILD_DIR)" % self.outq
        self.redis.start(self.redis_extra)
        self.ctl = self.redis.client()
        self.producer_client = self.redis.client()
        self.provider.start()
        cfg = self.config()
        for i in range(3):
            path = os.path.join(self.dir, "w%d.json" % i)
            with open(path, "w") as f:
                json.dump(cfg, f, indent=1)
            self.slots.append(Slot("w%d" % i, path))
        phases, arrivals, events = self.plan()
        self.ids = ["c%d-%05d" % (a.seed, n) for n in range(len(arrivals))]
        print("chaos: %d jobs (%d up front), %.0f s of chaos in %d phases, %d actions: %s; redis port %d, "
              "provider port %d, dir %s" % (len(arrivals), sum(1 for x in arrivals if x == 0.0), a.duration,
                                             len(phases), len(events),
                                             ", ".join("%s %d" % kv for kv in sorted(
                                                 collections.Counter(e for _, e in events).items())),
                                             self.redis.port, self.provider.port, self.dir), flush=True)
        print("chaos: worker %s; command_timeout %d ms, request_timeout %d ms, visibility %d ms, grace %d ms, "
              "concurrency %d" % (self.outq, COMMAND_TIMEOUT_MS, REQUEST_TIMEOUT_MS, VISIBILITY_MS, GRACE_MS,
                                  CONCURRENCY), flush=True)
        for s in self.slots:
            self.start_worker(s)
        self.t_start = now()
        producer = threading.Thread(target=self.produce, args=(arrivals,), name="producer", daemon=True)
        producer.start()
        watcher = threading.Thread(target=self.watch_pel, name="pel-watcher", daemon=True)
        watcher.start()
        self.helpers.append(watcher)
        next_report = 10.0
        pending = list(events)
        while now() - self.t_start < a.duration:
            t = now() - self.t_start
            while pending and pending[0][0] <= t:
                _, kind = pending.pop(0)
                act = self.act(kind)
                print("chaos: t=%7.3f %s %s%s%s" % (act["t"], act["action"], act["slot"] or "",
                                                    " pid %d" % act["pid"] if act["pid"] else "",
                                                    " " + act["detail"] if act["detail"] else ""), flush=True)
            self.tend()
            if t >= next_report:
                next_report += 10.0
                self.progress(t)
            time.sleep(0.02)
        self.record("chaos_end")
        # Drain: every worker running, no more chaos, until every job has its outcome.
        producer.join(timeout=60)
        if self.producer_error:
            self.failures["producer"].append(self.producer_error)
        for s in self.slots:
            if s.state == "stopped":
                s.cont_at = now()
            if s.state == "down":
                s.restart_at = now()
        drained = self.drain(a.drain_timeout)
        self.stop_watch.set()
        for th in self.helpers:
            th.join(timeout=10)
        self.record("final_sigterm")
        for s in self.slots:
            self.tend()
            if s.state == "running":
                os.kill(s.proc.pid, signal.SIGTERM)
                s.state = "terminating"
                s.term_at = now()
        deadline = time.monotonic() + GRACE_MS / 1000.0 + 15
        while any(s.state == "terminating" for s in self.slots) and time.monotonic() < deadline:
            for s in self.slots:
                if s.state == "terminating" and s.proc.poll() is not None:
                    code = s.proc.returncode
                    self._ended(s, "sigterm", code)
                    if code != 0:
                        self.failures["worker exit code after SIGTERM"].append(
                            "%s pid %d exited %s after the final SIGTERM" % (s.name, s.proc.pid, code))
            time.sleep(0.05)
        for s in self.slots:
            if s.state == "terminating":
                self.failures["worker did not exit after SIGTERM"].append(
                    "%s pid %d did not exit after the final SIGTERM" % (s.name, s.proc.pid))
        self.t_end = now()
        return self.check(drained)

    def progress(self, t):
        recs = self.provider.records
        try:
            done = self.ctl.xlen("outq:{%s}:results" % QUEUE)
        except redis.RedisError:
            done = "?"
        print("chaos: t=%3.0fs enqueued %d, requests %d, results events %s, workers %s"
              % (t, len(self.enqueued_at), len(recs), done,
                 " ".join("%s:%s" % (s.name, s.state) for s in self.slots)), flush=True)

    def drain(self, timeout):
        missing = set(self.ids)
        deadline = time.monotonic() + timeout
        k = lambda s: "outq:{%s}:%s" % (QUEUE, s)  # noqa: E731
        while time.monotonic() < deadline:
            self.tend()
            try:
                if missing:
                    ordered = sorted(missing)
                    pipe = self.ctl.pipeline(transaction=False)
                    for i in ordered:
                        pipe.get(k("result:" + i))
                    for i, value in zip(ordered, pipe.execute()):
                        if value is not None and not value.startswith('{"status":"sending"'):
                            missing.discard(i)
                if not missing:
                    if (self.ctl.xpending(k("jobs"), GROUP)["pending"] == 0 and self.ctl.zcard(k("delayed")) == 0
                            and self.ctl.xlen(k("jobs")) == 0):
                        print("chaos: drained %.1f s after the chaos ended" % (now() - self.t_start - self.args.duration),
                              flush=True)
                        return True
            except redis.RedisError:
                pass
            time.sleep(0.5)
        print("chaos: not drained after %.0f s: %d jobs without a result" % (timeout, len(missing)), flush=True)
        return False

    # --- the verdict ---------------------------------------------------------------------
    def check(self, drained):
        k = lambda s: "outq:{%s}:%s" % (QUEUE, s)  # noqa: E731
        r = self.redis.client()
        ids = self.ids
        pipe = r.pipeline(transaction=False)
        for i in ids:
            pipe.get(k("result:" + i))
        results = {i: (json.loads(v) if v is not None else {}) for i, v in zip(ids, pipe.execute())}
        pending = r.xpending(k("jobs"), GROUP)["pending"]
        stream_left = r.xlen(k("jobs"))
        delayed_left = r.zcard(k("delayed"))
        delayed_hashes = [key for key in r.scan_iter(match=k("delayed:*"), count=1000)]
        events = collections.defaultdict(list)
        for eid, fields in xrange_all(r, k("results")):
            events[fields.get("id")].append((eid, fields))
        dead = collections.defaultdict(list)
        for eid, fields in xrange_all(r, k("dead")):
            dead[fields.get("id")].append((eid, fields))
        r.close()
        records = self.provider.snapshot()
        by_id = collections.defaultdict(list)
        for rec in records:
            by_id[rec["id"]].append(rec)
        for lst in by_id.values():
            lst.sort(key=lambda x: (x["t"], x["seq"]))
        retries = self.retry_log()
        F = self.failures

        idset = set(ids)
        status_counts = collections.Counter()
        for i in ids:
            res = results[i]
            if not res:
                F["job without a result"].append(i)
                continue
            status_counts[res.get("status")] += 1
            if res.get("status") not in ("sent", "dead") or res.get("id") != i:
                F["malformed result"].append("%s: %s" % (i, res))
            accepted = [x for x in by_id.get(i, []) if x["accepted"]]
            if res.get("status") == "dead" and accepted:
                F["dead although the provider accepted it"].append(
                    "%s (%s: %s)" % (i, res.get("error_class"), res.get("error", "")[:120]))
            if res.get("status") == "sent" and not accepted:
                F["sent without any accepted request"].append(i)
            n_events = len(events.get(i, []))
            if n_events != 1:
                F["results events != 1"].append(i)
            if len(dead.get(i, [])) > 1:
                F["more than one dead letter"].append(i)
        for other in set(events) - idset:
            F["results event for an unknown id"].append(str(other))
        if pending:
            F["left pending (XPENDING)"].append("%d entries" % pending)
        if stream_left:
            F["left in the jobs stream"].append("%d entries" % stream_left)
        if delayed_left:
            F["left in the delayed set"].append("%d members" % delayed_left)
        if delayed_hashes:
            F["delayed job hashes left"].append("%d, e.g. %s" % (len(delayed_hashes), delayed_hashes[:3]))
        unique = {}
        for m in self.steals:
            m["id"] = m["id"] or self.job_of.get(m["entry"])
            unique.setdefault(m["entry"], m)
        self.steals = sorted(unique.values(), key=lambda m: m["t"])
        for m in self.steals:
            F["entry taken back from the worker that took it over"].append(
                "%s (entry %s) at t=%.3f: %s -> %s" % (m["id"], m["entry"], m["t"], self.who(m["from"]),
                                                       self.who(m["to"])))
        unknown = sorted(set(by_id) - idset)
        if unknown:
            F["requests for unknown ids"].append(", ".join(unknown[:10]))

        # Duplicate acceptances: each accepted request after the first is explained
        # against the accepted request before it.
        classes = collections.Counter()
        unexplained = []
        examples = collections.defaultdict(list)
        dup_ids = 0
        for i in ids:
            # In the order the worker sent them: attempts are sequential for a job (a
            # later attempt goes out only after the earlier one's outcome was written);
            # copies of one attempt (take-overs, resends) by arrival.
            accepted = sorted((x for x in by_id.get(i, []) if x["accepted"]),
                              key=lambda x: (x["attempt"], x["t"], x["seq"]))
            if len(accepted) < 2:
                continue
            dup_ids += 1
            for prev, nxt in zip(accepted, accepted[1:]):
                cls, why = self.explain(i, prev, nxt, by_id[i], retries)
                classes[cls or "UNEXPLAINED"] += 1
                if cls and i not in examples[cls]:
                    examples[cls].append(i)
                if not cls:
                    unexplained.append((i, prev, nxt, why))

        # --- report ---
        el = self.t_end
        print("chaos: ---- summary (%.0f s run) ----" % el, flush=True)
        print("chaos: jobs %d, results %s, provider requests %d on %d connections, %d attributed to a worker process"
              % (len(ids), dict(status_counts), len(records), self.provider.conns,
                 sum(1 for x in records if x["pid"])), flush=True)
        per_fault = collections.Counter(x["fault"] for x in records)
        acc_fault = collections.Counter(x["fault"] for x in records if x["accepted"])
        print("chaos: faults (requests/accepted): " + ", ".join(
            "%s %d/%d" % (f, per_fault[f], acc_fault[f]) for f, _ in FAULTS), flush=True)
        done = [x for x in self.actions if x["action"] in KINDS]
        per_action = collections.Counter(x["action"] for x in done if not x["detail"].startswith("skipped"))
        skipped = collections.Counter(x["action"] for x in done if x["detail"].startswith("skipped"))
        print("chaos: actions: " + ", ".join("%s %d" % kv for kv in sorted(per_action.items()))
              + ("; skipped: " + ", ".join("%s %d" % kv for kv in sorted(skipped.items())) if skipped else "")
              + "; pending list sampled %d times (%d failed)" % (self.watch_samples, len(self.watch_errors)),
              flush=True)
        print("chaos: duplicate acceptances: %d ids, %d extra acceptances: %s"
              % (dup_ids, sum(classes.values()), ", ".join("%s %d" % kv for kv in sorted(classes.items())) or "none"),
              flush=True)
        for cls in sorted(examples):
            for i in examples[cls][:self.args.explain]:
                print(self.timeline(i, by_id[i], retries, "example of %s" % cls), flush=True)

        ev_multi = [i for i in ids if len(events.get(i, [])) > 1]
        twice_same = [i for i in ev_multi if len({f.get("completed_at") for _, f in events[i]}) == 1]
        twice_diff = [i for i in ev_multi if i not in twice_same]
        if ev_multi:
            print("chaos: ids with more than one results event: %d; identical events (one outcome transaction "
                  "applied by Redis, then written again by the worker): %d; different events (two deliveries of "
                  "one job each wrote an outcome): %d" % (len(ev_multi), len(twice_same), len(twice_diff)),
                  flush=True)
        if unexplained:
            print("chaos: ---- unexplained duplicate acceptances: %d (first %d) ----"
                  % (len(unexplained), min(8, len(unexplained))), flush=True)
            for i, prev, nxt, why in unexplained[:8]:
                print(self.timeline(i, by_id[i], retries, "unexplained duplicate acceptance: %s" % why), flush=True)
            F["unexplained duplicate acceptance"] = ["%s" % i for i, _, _, _ in unexplained]
        if ev_multi:
            print("chaos: ---- jobs with more than one results event ----", flush=True)
            for i in twice_same[:4] + twice_diff[:4]:
                evs = events[i]
                same = i in twice_same
                head = ("%d results events, %s" % (len(evs), "identical: one outcome transaction applied twice"
                                                   if same else "different: two deliveries each wrote an outcome"))
                extra = "\n".join("      event %s %s" % (eid, json.dumps(f, sort_keys=True)) for eid, f in evs)
                for a in self.actions:
                    if a["action"] == "sigstop" and a["end"] is not None and any(
                            a["t"] - 1 <= int(eid.split("-")[0]) / 1000.0 - WALL0 <= a["end"] + 15 for eid, _ in evs):
                        extra += ("\n      (%s pid %d was SIGSTOPped t=%.3f..%.3f, longer than the visibility "
                                  "timeout: it wrote an outcome for a job another worker had taken over)"
                                  % (a["slot"], a["pid"], a["t"], a["end"]))
                print(self.timeline(i, by_id.get(i, []), retries, head, redis_times=[eid for eid, _ in evs]) + "\n"
                      + extra, flush=True)
        if self.steals:
            print("chaos: ---- pending entries taken back from the worker that had taken them over ----", flush=True)
            for m in self.steals[:8]:
                if m.get("how"):
                    print("chaos: t=%.3f entry %s (job %s): %s, resumed after a SIGSTOP, sent %s for it while %s "
                          "held it (taken over): a heartbeat claiming back an entry it had lost"
                          % (m["t"], m["entry"], m["id"], self.who(m["to"]), m["how"], self.who(m["from"])),
                          flush=True)
                else:
                    print("chaos: t=%.3f entry %s (job %s): owner %s -> %s although it was idle only %d ms (not an "
                          "XAUTOCLAIM: an XCLAIM of an entry another worker held)"
                          % (m["t"], m["entry"], m["id"], self.who(m["from"]), self.who(m["to"]), m["idle_before"]),
                          flush=True)
        # What the failures look like, by mechanism (the evidence is printed above).
        after_term = sum(1 for _, _, _, why in unexplained if "graceful SIGTERM" in why)
        resumed = sum(1 for _, _, _, why in unexplained if "had been SIGSTOPped" in why)
        print("chaos: signatures: duplicate acceptances after a graceful SIGTERM of the first sender %d; "
              "sends by a worker resumed after losing the job %d; results events written twice by one worker "
              "(transaction applied, then retried) %d; by two deliveries %d; entries claimed back by a resumed "
              "worker's heartbeat %d" % (after_term, resumed, len(twice_same), len(twice_diff), len(self.steals)),
              flush=True)
        for cat in sorted(F):
            if cat in ("unexplained duplicate acceptance", "results events != 1",
                       "entry taken back from the worker that took it over"):
                continue
            for line in F[cat][:5]:
                print("chaos: %s: %s" % (cat, line), flush=True)
        if not drained:
            F.setdefault("not drained", []).append("jobs still unfinished after the drain timeout")
        if F:
            parts = []
            for cat in sorted(F):
                items = F[cat]
                names = [x.split(" ")[0] for x in items[:6]] if cat in (
                    "unexplained duplicate acceptance", "results events != 1", "job without a result",
                    "dead although the provider accepted it", "more than one dead letter",
                    "sent without any accepted request", "entry taken back from the worker that took it over") else []
                parts.append("%s: %d%s" % (cat, len(items), (" (" + ", ".join(names) + (", ..." if len(items) > 6
                                                                                    else "") + ")") if names else ""))
            print("chaos: logs kept in %s" % self.dir, flush=True)
            self.keep = True
            return 1, "chaos: FAIL " + "; ".join(parts)
        return 0, ("chaos: PASS %d jobs, %d requests, %d duplicate acceptances all explained (%s), %d actions, %.0f s"
                   % (len(ids), len(records), sum(classes.values()),
                      ", ".join("%s %d" % kv for kv in sorted(classes.items())) or "none",
                      sum(per_action.values()), el))

    def lost_log(self):
        """pid -> wall times at which that worker said it lost jobs to another worker (its
        refresh found them taken over, or an outcome could not be written for that reason):
        the worker's own word that it could not keep its entries within the visibility
        timeout. Read once."""
        if getattr(self, "_lost", None) is not None:
            return self._lost
        pat = re.compile(r'^ts=(\S+) level=\w+ msg="(?:lost jobs to another worker|outcome not written: another '
                         r'worker took the job over)', re.M)
        out = collections.defaultdict(list)
        for pid, info in self.pids.items():
            try:
                with open(info["log"], errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            for m in pat.finditer(text):
                try:
                    out[pid].append(datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                        tzinfo=datetime.timezone.utc).timestamp())
                except ValueError:
                    pass
        self._lost = out
        return out

    def retry_log(self):
        """(job id, attempt) -> [(class, error, pid, wall time)] from every worker's "send
        failed, will retry" lines: the worker's own word that it counted that attempt as
        failed, and when (each log file is one process, so the pid is exact)."""
        pat = re.compile(r'^ts=(\S+) level=\w+ msg="send failed, will retry" id=("(?:[^"\\]|\\.)*"|\S+) '
                         r'attempt=(\d+) class=(\S+)(?: in_ms=\S+)?(?: error=("(?:[^"\\]|\\.)*"|\S+))?', re.M)
        out = collections.defaultdict(list)
        for pid, info in self.pids.items():
            try:
                with open(info["log"], errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            for m in pat.finditer(text):
                try:
                    at = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                        tzinfo=datetime.timezone.utc).timestamp()
                except ValueError:
                    at = None
                out[(m.group(2).strip('"'), int(m.group(3)))].append(
                    (m.group(4), (m.group(5) or "").strip('"'), pid, at))
        return out

    # --- duplicate classes ---------------------------------------------------------------
    def explain(self, job_id, prev, nxt, reqs, retries):
        """The class of the acceptance `nxt` after the earlier acceptance `prev`, or
        (None, why not) when the evidence proves none of them."""
        # keepalive_resend: prev was reset after its body on a reused keep-alive
        # connection, and the very next request of this id is the same attempt from
        # the same process on a fresh connection, right away: the HTTP client re-sent
        # it without telling the worker, which then saw only the resend's fate (an
        # acceptance, or a failure it counted and retried).
        later = [x for x in reqs if (x["t"], x["seq"]) > (prev["t"], prev["seq"])]
        resend = later[0] if later else None
        if (prev["fault"] == "reset_after_body" and prev["index"] > 0 and resend is not None
                and resend["attempt"] == prev["attempt"] and resend["index"] == 0
                and (resend["pid"] is None or resend["pid"] == prev["pid"])
                and resend["t"] - (prev["end"] or prev["t"]) < 1.0
                and (resend is nxt or nxt["attempt"] > prev["attempt"])):
            return "keepalive_resend", ""
        # The worker that sent prev logged that attempt as failed, and nxt carries a
        # higher attempt number: it retried after counting prev as a failure.
        logged = [e for e in retries.get((job_id, prev["attempt"]), []) if prev["pid"] is None or e[2] == prev["pid"]]
        if nxt["attempt"] > prev["attempt"] and logged:
            gave_up = min(e[3] for e in logged if e[3] is not None) if any(e[3] for e in logged) else None
            answered = WALL0 + prev["answered"] if prev["answered"] is not None else None
            ambiguous_logged = any(e[0] == "ambiguous" for e in logged)
            # ambiguous: prev's answer never reached the worker intact (reset after the
            # body, an answer slower than the request timeout, or one that left the
            # provider only after the worker had given up), and the worker rightly
            # recorded an ambiguous attempt before retrying.
            if ambiguous_logged and (prev["fault"] in ("reset_after_body", "slow_timeout") or (
                    answered is not None and gave_up is not None and answered >= gave_up - 0.002)):
                return "ambiguous", ""
            # counted_resend: the answer left the provider in time, but only just (or the
            # sender was SIGSTOPped meanwhile), and the worker counted it as failed.
            if answered is not None and gave_up is not None and (
                    gave_up - answered <= 0.25
                    or self.stopped_during(prev["pid"], prev["t"] - 0.5, gave_up - WALL0)):
                return "counted_resend", ""
        # killed: the process that sent prev was killed -9 between prev and nxt.
        for a in self.actions:
            if a["action"] != "kill9" or a["pid"] is None:
                continue
            if not (prev["t"] - 0.5 <= a["t"] <= nxt["t"]):
                continue
            if prev["pid"] is None or a["pid"] == prev["pid"]:
                return "killed", ""
        # stalled: the process that sent prev was SIGSTOPped, with prev in flight (sent
        # at most a request timeout and a flush before the stop), for longer than the
        # visibility timeout, so another process rightly took the job over and sent nxt.
        if prev["pid"] is None or nxt["pid"] != prev["pid"]:
            for a in self.actions:
                if a["action"] != "sigstop" or a["pid"] is None:
                    continue
                end = a["end"] if a["end"] is not None else now()
                if end - a["t"] < VISIBILITY_MS / 1e3:
                    continue
                if (a["t"] - REQUEST_TIMEOUT_MS / 1e3 - 2.0 <= prev["t"] <= end and a["t"] <= nxt["t"]
                        and (prev["pid"] is None or a["pid"] == prev["pid"])):
                    return "stalled", ""
        # redis_outage: Redis was restarted (down, then loading its AOF), stalled or paused
        # while prev's sender held the job, and that sender said afterwards that it lost jobs
        # to another worker: it could not refresh its entries within the visibility timeout
        # (the documented window of a worker that loses Redis past the visibility timeout),
        # so another worker rightly took the job over and sent nxt.
        # The job may also have come back to prev's sender from that other worker (which
        # was stopped before sending it): the pending-list samples show the other owner.
        held_elsewhere = nxt["pid"] != prev["pid"] or any(
            p is not None and p != prev["pid"] and prev["t"] <= t <= nxt["t"] for t, p in self.owner_log.get(job_id, []))
        if prev["pid"] is not None and held_elsewhere:
            outage = any(a["action"] in ("redis_restart_kill", "redis_restart_term", "debug_sleep", "pause_all",
                                         "pause_write") and prev["t"] - VISIBILITY_MS / 1e3 <= a["t"] <= nxt["t"]
                         for a in self.actions)
            lost = any(prev["t"] <= at - WALL0 <= nxt["t"] + 5.0 for at in self.lost_log().get(prev["pid"], []))
            if outage and lost:
                return "redis_outage", ""
        # Not explained: say what the evidence shows.
        why = []
        if prev["pid"]:
            info = self.pids.get(prev["pid"], {})
            terms = [a for a in self.actions if a["action"] == "sigterm" and a["pid"] == prev["pid"]]
            for a in terms:
                if prev["t"] - GRACE_MS / 1e3 <= a["t"] <= nxt["t"]:
                    d = a["t"] - prev["t"]
                    why.append("the first sender %s pid %d got a graceful SIGTERM at t=%.3f, %.3f s %s the first "
                               "acceptance" % (info.get("slot"), prev["pid"], a["t"], abs(d),
                                               "after" if d >= 0 else "before"))
        else:
            why.append("the first request could not be attributed to a worker")
        for a in self.actions:
            if (a["action"] == "sigstop" and a["pid"] is not None and a["pid"] == nxt["pid"] and a["t"] <= nxt["t"]
                    and (a["end"] or now()) - a["t"] >= VISIBILITY_MS / 1e3 and prev["t"] <= (a["end"] or now())):
                why.append("the second sender %s had been SIGSTOPped t=%.3f..%.3f, longer than the visibility "
                           "timeout, and still sent a job another worker had taken over and delivered"
                           % (self.who(nxt["pid"]), a["t"], a["end"] or now()))
        for cls, _, pid, at in retries.get((job_id, prev["attempt"]), []):
            for a in self.actions:
                if (pid != prev["pid"] and a["action"] == "sigstop" and a["pid"] == pid and a["end"] is not None
                        and a["end"] - a["t"] >= VISIBILITY_MS / 1e3 and at
                        and at - WALL0 - 1.0 <= a["end"] and a["t"] <= nxt["t"]):
                    why.append("attempt %d was counted as failed (%s) by %s, which had been SIGSTOPped "
                               "t=%.3f..%.3f, longer than the visibility timeout: a retry written for a job it had "
                               "lost" % (prev["attempt"], cls, self.who(pid), a["t"], a["end"]))
        if not logged:
            why.append("no worker logged attempt %d of %s as failed" % (prev["attempt"], job_id))
        elif prev["answered"] is not None and any(e[3] for e in logged):
            why.append("its sender logged that attempt as failed %.3f s after the provider had answered it"
                       % (min(e[3] for e in logged if e[3]) - WALL0 - prev["answered"]))
        why.append("first accepted: fault %s, answer %s" % (prev["fault"], prev["status"]))
        return None, "; ".join(why)

    def who(self, pid):
        info = self.pids.get(pid)
        return "%s/pid %s" % (info["slot"], pid) if info else "pid %s" % pid

    def stopped_during(self, pid, t0, t1):
        for a in self.actions:
            if a["action"] == "sigstop" and (pid is None or a["pid"] == pid):
                end = a["end"] if a["end"] is not None else now()
                if a["t"] <= t1 and end >= t0:
                    return True
        return False

    def timeline(self, job_id, reqs, retries, head, redis_times=()):
        lines = ["chaos: %s: %s (enqueued t=%.3f)" % (job_id, head, self.enqueued_at.get(job_id, -1))]
        for x in reqs:
            info = self.pids.get(x["pid"], {})
            who = "%s/pid %s" % (info.get("slot", "?"), x["pid"] or "?")
            ans = ("%s %s at +%.3f" % (x["status"], "sent" if x["answer_ok"] else "unsent", x["answered"] - x["t"])
                   if x["answered"] is not None else "no answer")
            lines.append("      t=%8.3f %-14s attempt %d %-17s %-8s conn #%d req %d, %s" % (
                x["t"], who, x["attempt"], x["fault"], "ACCEPTED" if x["accepted"] else "-", x["conn"], x["index"],
                ans))
        for (jid, att), lst in sorted(retries.items()):
            if jid == job_id:
                for cls, err, pid, at in lst:
                    lines.append("      t=%8.3f worker %s/pid %d logged attempt %d failed: class=%s %s"
                                 % ((at - WALL0) if at else -1, self.pids[pid]["slot"], pid, att, cls, err))
        for eid in redis_times:
            lines.append("      t=%8.3f results event %s written" % (int(eid.split("-")[0]) / 1000.0 - WALL0, eid))
        if reqs:
            lo, hi = reqs[0]["t"] - 3, reqs[-1]["t"] + 3
            for a in self.actions:
                if lo <= a["t"] <= hi or (a["end"] and lo <= a["end"] <= hi):
                    lines.append("      t=%8.3f action %s %s %s %s" % (
                        a["t"], a["action"], a["slot"] or "", ("pid %d" % a["pid"]) if a["pid"] else "",
                        a["detail"]))
        return "\n".join(lines)

    # --- cleanup -----------------------------------------------------------------------------
    def close(self):
        self.stop_producer.set()
        self.stop_watch.set()
        for s in self.slots:
            if s.proc is not None and s.proc.poll() is None:
                try:
                    os.kill(s.proc.pid, signal.SIGCONT)
                    os.kill(s.proc.pid, signal.SIGKILL)
                    s.proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired) as e:
                    print("cleanup: worker pid %d: %r" % (s.proc.pid, e), flush=True)
        self.provider.stop()
        self.attribution.stop()
        try:
            self.redis.stop(kill=True)
        except Exception as e:  # noqa: BLE001
            print("cleanup: redis: %r" % e, flush=True)
        if not self.keep and not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def pid_of_consumer(name):
    """The worker's default consumer name is <hostname>-<pid>."""
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def xrange_all(r, key):
    last = "-"
    while True:
        chunk = r.xrange(key, last, "+", count=5000)
        if not chunk:
            return
        for item in chunk:
            yield item
        last = "(" + chunk[-1][0]


def tail(path, n):
    try:
        with open(path, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-n:])
    except OSError:
        return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long", action="store_true", help="the long profile (about 10 minutes, 30,000 jobs)")
    parser.add_argument("--duration", type=float, help="seconds of load and chaos (default 120, --long 600)")
    parser.add_argument("--jobs", type=int, help="jobs to enqueue (default 6000, --long 30000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault and chaos schedules")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs, AOF)")
    parser.add_argument("--explain", type=int, default=0, metavar="N",
                        help="print the request timelines of N example ids of every duplicate class")
    parser.add_argument("--actions", help="comma-separated chaos actions to keep (default all): " + ", ".join(KINDS))
    args = parser.parse_args()
    if args.actions:
        args.actions = set(x.strip() for x in args.actions.split(",") if x.strip())
        if not args.actions <= set(KINDS):
            parser.error("--actions: unknown %s" % ", ".join(sorted(args.actions - set(KINDS))))
    profile = PROFILES["long" if args.long else "default"]
    for key, value in profile.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.jobs < 1 or args.duration < 10:
        parser.error("--jobs must be >= 1 and --duration >= 10")

    def abort(signum, frame):
        raise Abort("signal %d" % signum)

    signal.signal(signal.SIGTERM, abort)
    signal.signal(signal.SIGALRM, abort)
    signal.signal(signal.SIGINT, abort)  # also when started in the background (SIGINT ignored)
    signal.alarm(int(args.duration + args.drain_timeout + 120))  # a hang is a failure, and still cleans up
    chaos = Chaos(args)
    code, last = 1, "chaos: FAIL the test did not finish"
    try:
        code, last = chaos.run()
    except (Abort, KeyboardInterrupt) as e:
        chaos.keep = True
        code, last = 1, "chaos: FAIL interrupted (%s); every process it started was stopped" % (e or "Ctrl-C")
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        chaos.keep = True
        code, last = 1, "chaos: FAIL the test itself crashed (traceback above)"
    finally:
        signal.alarm(0)
        try:
            chaos.close()
        finally:
            print(last, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
