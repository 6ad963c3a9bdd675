"""Mediaconnect/ConnectID end to end against the sandbox: the OAuth 2.0 token
is fetched once however many sends wait for it, refreshed before it expires,
refreshed once on a 401, and a token endpoint failure is a classified dead
letter."""
import base64
import json
import time
import urllib.request

from harness import Env


def mc_config(env, **account):
    base = "http://127.0.0.1:%d" % env.sandbox.port
    config = env.config(concurrency=64)
    acc = {"base_url": base + "/capi", "token_url": base + "/user/oauth/token", "client_id": "mc-client",
           "client_secret": "mc-secret"}
    acc.update(account)
    config["providers"]["mediaconnect"] = {"retry": {"base_ms": 20, "cap_ms": 200, "max_attempts": 3},
                                           "accounts": {"main": acc}}
    return config


def mc_job(job_id, content="Cancel my subscription"):
    return {"v": 1, "id": job_id, "provider": "mediaconnect", "account": "main",
            "message": {"product": "CO27409", "caseType": "B", "messageSubject": "cancel",
                        "messageContent": content}}


def control(env, **body):
    req = urllib.request.Request("http://127.0.0.1:%d/_sandbox/mediaconnect" % env.sandbox.port,
                                 data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def paths(env, suffix):
    return [r for r in env.sandbox.requests() if r["path"].endswith(suffix)]


def test_one_token_fetch_for_many_concurrent_sends():
    with Env() as env:
        control(env, token_delay_ms=300)
        ids = ["c%02d" % i for i in range(50)]
        env.enqueue(mc_job(i, content="message %s" % i) for i in ids)
        env.worker(mc_config(env))
        results = env.wait_results(ids, timeout=60)
        assert all(r["status"] == "sent" for r in results.values()), results
        assert control(env)["token_requests"] == 1, "single flight: one token request for 50 waiting sends"
        assert all(r["provider_message_id"].isdigit() for r in results.values())
        sends = paths(env, "/v1/client/message")
        assert len(sends) == 50 and all(s["headers"]["authorization"].startswith("Bearer mc-") for s in sends)
        token = paths(env, "/oauth/token")[0]
        # HTTP Basic by default (RFC 6749 2.3.1); only the grant in the body.
        assert token["body"] == "grant_type=client_credentials", token
        assert token["headers"]["authorization"] == "Basic " + base64.b64encode(b"mc-client:mc-secret").decode()


def test_a_rejected_token_is_refreshed_once_and_the_send_repeated():
    with Env() as env:
        env.worker(mc_config(env, credentials_in="body"))
        env.enqueue([mc_job("first")])
        env.wait_results(["first"])
        control(env, revoke=True)
        env.enqueue([mc_job("second")])
        r = env.wait_results(["second"])["second"]
        assert r["status"] == "sent" and r["attempts"] == "1", r  # the stale token is not the job's fault
        assert control(env)["token_requests"] == 2
        statuses = [q for q in paths(env, "/v1/client/message")]
        assert len(statuses) == 3  # first, second with the revoked token (401), second again
        token = paths(env, "/oauth/token")[0]  # credentials_in "body": in the form, no Basic
        assert "client_id=mc-client&client_secret=mc-secret" in token["body"], token
        assert "authorization" not in token["headers"], token


def test_the_resend_after_a_token_refresh_takes_its_own_rate_limit_permit():
    with Env() as env:
        config = mc_config(env)
        config["providers"]["mediaconnect"]["accounts"]["main"]["rate_limit"] = {"requests": 1, "per_ms": 1000}
        env.worker(config)
        env.enqueue([mc_job("first")])
        env.wait_results(["first"])
        control(env, revoke=True)
        env.enqueue([mc_job("second")])
        r = env.wait_results(["second"])["second"]
        assert r["status"] == "sent" and r["attempts"] == "1", r
        times = [q["at_ms"] for q in paths(env, "/v1/client/message")]
        assert len(times) == 3, times  # first, second refused (401), second again
        gaps = [b - a for a, b in zip(times, times[1:])]
        # One request per second for the account: the resend waits for its own turn.
        assert min(gaps) >= 900, gaps


def test_the_token_is_refreshed_before_it_expires():
    with Env() as env:
        control(env, expires_in=6)  # refreshed 5 s early: after about a second
        env.worker(mc_config(env))
        env.enqueue([mc_job("early")])
        env.wait_results(["early"])
        time.sleep(1.5)
        env.enqueue([mc_job("later")])
        env.wait_results(["later"])
        assert control(env)["token_requests"] == 2
        assert len(paths(env, "/v1/client/message")) == 2, "no send met an expired token"


def test_token_endpoint_failure_is_a_classified_dead_letter():
    with Env() as env:
        env.enqueue([mc_job("refused")])
        env.worker(mc_config(env, client_id="bad"))
        r = env.wait_results(["refused"], timeout=60)["refused"]
        assert r["status"] == "dead" and r["error_class"] == "auth", r
        assert "invalid_client" in r["error"] or "token" in r["error"], r
        assert paths(env, "/v1/client/message") == []


def test_validation_names_the_field_before_any_request():
    with Env() as env:
        job = mc_job("too-long")
        job["message"]["messageSubject"] = "x" * 41
        env.enqueue([job])
        env.worker(mc_config(env))
        r = env.wait_results(["too-long"])["too-long"]
        assert r["error_class"] == "validation" and "messageSubject" in r["error"], r
        assert paths(env, "/oauth/token") == []


def test_documented_errors_429_500_and_400_are_classified():
    with Env() as env:
        d = lambda **kw: "sandbox:" + json.dumps(kw)  # noqa: E731 - a message text the sandbox obeys
        env.enqueue([mc_job("limited", d(status=429, times=1, retry_after="1")),
                     mc_job("flaky", d(status=500, times=1)),
                     mc_job("refused", d(status=400, body='{"error":"messageSubject too long"}'))])
        env.worker(mc_config(env))
        r = env.wait_results(["limited", "flaky", "refused"])
        assert r["limited"]["status"] == "sent" and r["limited"]["attempts"] == "2", r["limited"]
        assert r["flaky"]["status"] == "sent" and r["flaky"]["attempts"] == "2", r["flaky"]
        assert r["refused"]["status"] == "dead" and r["refused"]["error_class"] == "permanent", r["refused"]
        assert "messageSubject too long" in r["refused"]["response"], r["refused"]
        times = sorted(q["at_ms"] for q in paths(env, "/v1/client/message")
                       if json.loads(q["body"])["messageContent"].startswith("sandbox:{\"status\": 429"))
        assert len(times) == 2 and times[1] - times[0] >= 950, times  # Retry-After: 1 honoured
