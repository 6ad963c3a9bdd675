"""Secrets never leave the worker (issue 21, item 3): recognisable credentials in a
webhook header, an OAuth client secret, the access tokens it is issued and the Redis
password are searched for in every log line at debug level, every Redis key and value
read by type, CLIENT LIST, the CLI's output (--json too), /metrics, every result and
every dead letter. A provider answer that echoes the request's headers (the sandbox's
echo_headers) is stored with the credential redacted."""
import http.client
import json
import os
import subprocess

from harness import OUTQ, Env, free_port, job, wait_until

HEADER_SECRET = "sk-live-HEADER-7f3a9c1e"
CLIENT_SECRET = "cs-OAUTH-5b8d2e7f"


def _everything_in_redis(r):
    """Every key's name and value, read by type (DUMP is compressed and could hide one)."""
    out = []
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        out.append(key)
        if kind == "string":
            out.append(r.get(key))
        elif kind == "hash":
            out.append(json.dumps(r.hgetall(key)))
        elif kind == "stream":
            out.append(json.dumps(r.xrange(key)))
        elif kind == "zset":
            out.append(json.dumps(r.zrange(key, 0, -1, withscores=True)))
        elif kind == "list":
            out.append(json.dumps(r.lrange(key, 0, -1)))
        elif kind == "set":
            out.append(json.dumps(sorted(r.smembers(key))))
    return "\n".join(out)


def test_no_credential_is_logged_stored_listed_or_shown_and_echoed_ones_are_redacted():
    with Env(acl=True) as env:  # the worker's Redis password is pw-outq-worker
        base = "http://127.0.0.1:%d" % env.sandbox.port
        config = env.config(log_level="debug")
        config["providers"]["webhook"]["accounts"]["a"]["headers"] = {
            "Authorization": {"env": "OUTQ_TEST_WEBHOOK_AUTH"}}
        config["providers"]["mediaconnect"] = {
            "retry": {"base_ms": 20, "cap_ms": 200, "max_attempts": 3},
            "accounts": {"main": {"base_url": base + "/capi", "token_url": base + "/user/oauth/token",
                                  "client_id": "mc-client", "client_secret": {"env": "OUTQ_TEST_MC_SECRET"}}}}
        metrics = free_port()
        config["metrics_listen"] = "127.0.0.1:%d" % metrics
        w = env.worker(config, extra_env={"OUTQ_TEST_WEBHOOK_AUTH": "Bearer " + HEADER_SECRET,
                                          "OUTQ_TEST_MC_SECRET": CLIENT_SECRET})
        env.enqueue([
            job("echo-dead", text="x", sandbox={"status": 400, "times": 1, "echo_headers": True}),
            job("echo-retry", text="x", sandbox={"status": 503, "times": 1, "echo_headers": True}),
            job("plain"),
            {"v": 1, "id": "mc-1", "provider": "mediaconnect", "account": "main",
             "message": {"product": "CO27409", "caseType": "B", "messageSubject": "s", "messageContent": "hello"}},
        ])
        results = env.wait_results(["echo-dead", "echo-retry", "plain", "mc-1"], timeout=60)
        assert results["echo-dead"]["status"] == "dead" and results["echo-retry"]["status"] == "sent", results
        assert results["mc-1"]["status"] == "sent", results["mc-1"]
        # The provider really echoed the header: the stored answer says so, redacted.
        [dead] = env.dead_letters()
        stored = json.dumps(dead) + json.dumps(results["echo-retry"])
        assert "request_headers" in stored and "[redacted]" in stored, stored[:2000]
        # The access tokens the sandbox issued (what it saw in Authorization headers).
        tokens = {q["headers"]["authorization"].split(" ", 1)[1] for q in env.sandbox.requests()
                  if q["path"].startswith("/capi") and "authorization" in q["headers"]}
        assert tokens, "no access token was used"
        secrets = [HEADER_SECRET, CLIENT_SECRET, "pw-outq-worker"] + sorted(tokens)

        seen = {"redis": _everything_in_redis(env.r),
                "client list": env.r.execute_command("CLIENT", "LIST"),
                "metrics": _get(metrics, "/metrics")}
        for args in (("stats", "--json"), ("dead", "list", "--json"), ("dead", "show", "echo-dead", "--json"),
                     ("dead", "show", "echo-dead"), ("result", "echo-retry"), ("result", "mc-1", "--json"),
                     ("job", "echo-dead", "--json"), ("list", "delayed", "--json")):
            out = env.cli(*args, check=False)
            seen["outq " + " ".join(args)] = out.stdout + out.stderr
        w.stop()
        seen["worker log"] = w.log()
        assert "level=debug" in seen["worker log"], "the log is not at debug level"
        leaks = ["%s in %s" % (s, where) for where, text in seen.items() for s in secrets if s in (text or "")]
        assert not leaks, leaks


def _get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path)
    body = c.getresponse().read().decode()
    c.close()
    return body
