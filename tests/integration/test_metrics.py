"""Metrics and health by the book (issue 15, items 12 and 13), through the real worker:
the exposition passes `promtool check metrics`, every family has HELP and TYPE, totals are
counters named _total, label values come only from the configuration; only GET and HEAD
are served; /healthz (liveness) does not fail because Redis is down or every slot is busy;
/readyz (readiness) needs Redis and a fetcher that reads or legitimately waits; and
`outq health [--ready]` answers with its exit status."""
import http.client
import json
import os
import re
import shutil
import subprocess
import time

from harness import OUTQ, Env, free_port, job, wait_until


def _metrics_config(env, **overrides):
    port = free_port()
    config = env.config(metrics_listen="127.0.0.1:%d" % port, **overrides)
    return config, port


def _request(port, path, method="GET"):
    """(status, body text), or (None, error) when nothing answers."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request(method, path)
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        headers = dict(r.getheaders())
        c.close()
        return r.status, body, headers
    except OSError as e:
        return None, str(e), {}


def _status(port, path):
    return _request(port, path)[0]


def _outq_health(*args):
    environment = {k: v for k, v in os.environ.items() if k not in ("OUTQ_REDIS_URL", "OUTQ_CONFIG")}
    return subprocess.run([OUTQ, "health"] + list(args), capture_output=True, timeout=30, env=environment)


def _families(text):
    """name → (type, help) from the # TYPE and # HELP lines."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    helps = dict(re.findall(r"^# HELP (\S+) (.+)$", text, re.M))
    return {name: (types.get(name), helps.get(name)) for name in set(types) | set(helps)}


def test_the_exposition_passes_promtool_and_follows_the_conventions():
    assert shutil.which("promtool"), "promtool missing: apt-get install prometheus (scripts/install-deps.sh)"
    with Env() as env:
        config, port = _metrics_config(env)
        env.worker(config)
        sent = ["m-sent-%d" % i for i in range(3)]
        # Accounts and providers a producer made up: dead letters, and no series of their own.
        made_up = [job("m-made-up-%d" % i, account="producer-made-%d" % i) for i in range(5)]
        made_up.append(dict(job("m-no-provider"), provider="producer-provider"))
        env.enqueue([job(i) for i in sent] + made_up)
        env.wait_results(sent + [j["id"] for j in made_up])
        text = wait_until(lambda: (lambda s, b, h: b if s == 200 and "outq_queue_waiting_jobs{" in b else None)(
            *_request(port, "/metrics")), 20, "the queue gauges")

        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        assert check.returncode == 0, (check.stdout + check.stderr).decode()
        assert not (check.stdout + check.stderr).strip(), (check.stdout + check.stderr).decode()

        families = _families(text)
        for name, (kind, help_text) in families.items():
            assert kind and help_text, name
            assert (kind == "counter") == name.endswith("_total"), (name, kind)
        samples = [line for line in text.splitlines() if line and not line.startswith("#")]
        for line in samples:
            family = re.match(r"[a-z_]+", line).group(0)
            family = re.sub(r"_(bucket|sum|count)$", "", family) if family not in families else family
            assert family in families, line
        assert families["outq_http_requests_total"][0] == "counter"
        assert families["outq_send_duration_seconds"][0] == "histogram"
        assert 'outq_jobs_total{provider="webhook",account="a",outcome="sent"} 3' in samples
        assert 'outq_send_duration_seconds_count{provider="webhook",account="a"} 3' in samples
        assert "producer-made" not in text and "producer-provider" not in text
        unknown = [s for s in samples if s.startswith("outq_jobs_total{") and 'account="_unknown_"' in s]
        assert sum(float(s.rsplit(" ", 1)[1]) for s in unknown) == 6, unknown
        assert any(s.startswith('outq_jobs_total{provider="_unknown_",account="_unknown_"') for s in unknown)
        for gauge in ("waiting_jobs", "pending_jobs", "delayed_jobs", "dead_letters", "oldest_waiting_age_seconds"):
            assert any(s.startswith('outq_queue_%s{queue="t"} ' % gauge) for s in samples), gauge
        assert any(s.startswith('outq_redis_roundtrip_seconds_count{connection="control"} ') for s in samples)
        assert "outq_ready 1" in samples
        assert any(s.startswith("outq_limiter_waiting_jobs ") for s in samples)


def test_the_endpoint_serves_only_get_and_head():
    with Env() as env:
        port = free_port()
        w = env.worker(env.config(metrics_listen="0.0.0.0:%d" % port))
        wait_until(lambda: _status(port, "/metrics") == 200, 10, "the metrics endpoint")
        # A wildcard listen address is asked on the loopback.
        out = _outq_health("--config", w.config_path)
        assert out.returncode == 0 and out.stdout.startswith(b"healthy: /healthz (HTTP 200)"), (out.stdout, out.stderr)
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            status, _, headers = _request(port, "/metrics", method)
            assert status == 405, (method, status)
            assert headers.get("Allow") == "GET, HEAD", headers
        status, body, headers = _request(port, "/metrics", "HEAD")
        assert status == 200 and body == "" and int(headers["Content-Length"]) > 0, (status, headers)
        assert _request(port, "/readyz", "HEAD")[0] in (200, 503)


def test_readiness_needs_redis_and_liveness_does_not():
    with Env() as env:
        config, port = _metrics_config(env)
        env.redis.stop()  # the worker starts without Redis
        w = env.worker(config)
        path = w.config_path
        wait_until(lambda: _status(port, "/healthz") is not None, 10, "the endpoint")
        for _ in range(3):
            assert _status(port, "/healthz") == 200
            status, body, _ = _request(port, "/readyz")
            assert status == 503 and "starting" in body, (status, body)
            time.sleep(0.5)
        out = _outq_health("--config", path)
        assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
        out = _outq_health("--ready", "--config", path)
        assert out.returncode == 1 and b"not ready" in out.stdout, (out.returncode, out.stdout, out.stderr)

        env.redis.start()
        wait_until(lambda: _status(port, "/readyz") == 200, 30, "ready once Redis answers")
        out = _outq_health("--ready", "--metrics-url", "http://127.0.0.1:%d" % port, "--json")
        assert out.returncode == 0, (out.stdout, out.stderr)
        assert json.loads(out.stdout) == {"probe": "readyz", "ok": True, "status": 200, "reason": "ok"}

        # Redis goes away while the worker runs: unready within one sampler round, alive throughout.
        env.redis.stop()
        deadline = time.monotonic() + 30
        while _status(port, "/readyz") != 503:
            assert time.monotonic() < deadline, "still ready 30 s after Redis went away"
            assert _status(port, "/healthz") == 200
            time.sleep(0.25)
        for _ in range(8):
            assert _status(port, "/healthz") == 200
            time.sleep(0.5)
        out = _outq_health("--ready", "--config", path)
        assert out.returncode == 1, (out.stdout, out.stderr)
        assert _outq_health("--config", path).returncode == 0

        env.redis.start()
        wait_until(lambda: _status(port, "/readyz") == 200, 30, "ready again once Redis is back")


def test_outq_health_without_an_address_is_a_usage_error_and_a_silent_worker_is_unhealthy():
    out = _outq_health()
    assert out.returncode == 2 and b"metrics-url" in out.stderr, (out.returncode, out.stderr)
    out = _outq_health("--metrics-url", "http://127.0.0.1:%d" % free_port(), "--timeout", "1s")
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)


def test_a_worker_with_every_slot_busy_is_ready_and_alive():
    with Env() as env:
        config, port = _metrics_config(env, concurrency=2, fetch_batch=2)
        config["providers"]["webhook"]["http"]["request_timeout_ms"] = 60000
        # Two accounts whose requests hang (a lane that has never been answered keeps one
        # request out), no reserve: together they take both slots.
        config["lanes"] = {"reserve": 0}
        env.worker(config)
        env.enqueue([job("m-slow-%d" % i, account="ab"[i % 2], sandbox={"delay_ms": 45000}) for i in range(3)])
        wait_until(lambda: "\noutq_in_flight_jobs 2\n" in _request(port, "/metrics")[1], 15, "both slots busy")
        busy_since = time.monotonic()
        # Longer than any "no Redis success for 30 s" rule: the fetcher waits for a slot, Redis is fine.
        while time.monotonic() - busy_since < 36:
            assert _status(port, "/healthz") == 200
            time.sleep(1)
        status, body, _ = _request(port, "/readyz")
        assert status == 200 and "every slot busy" in body, (status, body)
        assert _status(port, "/healthz") == 200
        assert "\noutq_in_flight_jobs 2\n" in _request(port, "/metrics")[1]


def test_a_paused_account_shows_in_outq_account_paused_for_its_pause_only():
    """A 429 with Retry-After pauses account a: outq_account_paused is 1 for a (and 0 for
    b) while the pause lasts, and 0 again once it has ended."""
    with Env() as env:
        config, port = _metrics_config(env)
        env.worker(config)
        env.enqueue([job("p1", account="a", text="x", sandbox={"status": 429, "times": 1, "retry_after": "2"})])

        def gauge(account):
            text = _request(port, "/metrics")[1]
            m = re.search(r'^outq_account_paused\{provider="webhook",account="%s"\} (\S+)$' % account, text, re.M)
            return float(m.group(1)) if m else None

        wait_until(lambda: gauge("a") == 1, 10, "account a to show as paused")
        assert gauge("b") == 0
        env.wait_results(["p1"])
        wait_until(lambda: gauge("a") == 0, 10, "the pause to end in the gauge")


def test_every_outcome_and_circuit_series_carries_its_configured_account_never_unknown():
    """Delays (a not_before in the future, a pause) and duplicates are counted under the
    job's account, and the circuit gauge starts with a 0 for each configured account."""
    with Env() as env:
        config, port = _metrics_config(env)
        env.worker(config)
        wait_until(lambda: _status(port, "/readyz") == 200, 20, "the worker to be ready")
        text = _request(port, "/metrics")[1]
        for account in ("a", "b"):
            assert re.search(r'^outq_account_circuit_open\{provider="webhook",account="%s"\} 0$' % account,
                             text, re.M), text
        later = int(time.time() * 1000) + 60000
        env.enqueue([dict(job("later", account="b"), not_before=later), job("once"), job("once")])
        env.wait_results(["once"])

        def count(outcome, account):
            m = re.search(r'^outq_jobs_total\{provider="webhook",account="%s",outcome="%s"\} (\S+)$'
                          % (account, outcome), _request(port, "/metrics")[1], re.M)
            return float(m.group(1)) if m else 0

        wait_until(lambda: count("delay", "b") == 1 and count("duplicate", "a") == 1, 10,
                   "the delay and the duplicate under their accounts")
        unknown = [line for line in _request(port, "/metrics")[1].splitlines()
                   if "_unknown_" in line and not line.startswith("#")]
        assert not unknown, unknown
