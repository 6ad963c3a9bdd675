"""Webhook signatures (Standard Webhooks) checked by a verifier written here
from the specification with Python's hmac, hashlib and base64: nothing of the
worker's own code is trusted to judge its output."""
import base64
import hashlib
import hmac
import os
import time

from harness import Env, job

# Two symmetric secrets, the current one from a file, the old one from the
# environment: both sign until the rotation is over.
CURRENT = "whsec_" + base64.b64encode(b"outq integration current key, 32B").decode()
OLD = "whsec_" + base64.b64encode(b"outq integration old key!").decode()


def key_of(secret):
    """The spec's secret serialization: base64 after the whsec_ prefix."""
    assert secret.startswith("whsec_")
    return base64.b64decode(secret[len("whsec_"):])


def verify(request, secret, now_s, tolerance_s=300):
    """Standard Webhooks verification: the timestamp within the tolerance, and one
    v1 signature of the header equal (constant-time) to HMAC-SHA256 of
    "{webhook-id}.{webhook-timestamp}.{body}" with the secret's key."""
    headers = request["headers"]
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert timestamp.isdigit() and abs(int(timestamp) - now_s) <= tolerance_s, timestamp
    signed = ("%s.%s.%s" % (msg_id, timestamp, request["body"])).encode("utf-8")
    expected = base64.b64encode(hmac.new(key_of(secret), signed, hashlib.sha256).digest()).decode()
    for entry in headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def test_requests_carry_standard_webhooks_signatures_for_every_secret():
    with Env() as env:
        secret_file = os.path.join(env.dir, "webhook-secret")
        with open(secret_file, "w") as f:
            f.write(CURRENT + "\n")
        config = env.config()
        config["providers"]["webhook"]["accounts"]["a"]["signing_secrets"] = [
            {"file": secret_file}, {"env": "OUTQ_IT_OLD_WEBHOOK_SECRET"}]
        env.enqueue([job("signed-1", text="caf\u00e9 \u20ac"),
                     job("order.42", text="a dotted id"),
                     job("flaky-signed", text="x", sandbox={"status": 500, "times": 1}),
                     job("unsigned", account="b", text="account b has no secret")])
        env.worker(config, extra_env={"OUTQ_IT_OLD_WEBHOOK_SECRET": OLD})
        results = env.wait_results(["signed-1", "order.42", "flaky-signed", "unsigned"])
        assert all(r["status"] == "sent" for r in results.values()), results
        now_s = int(time.time())
        signed = env.hook_requests("a")
        assert len(signed) == 4, signed  # flaky-signed twice
        for request in signed:
            entries = request["headers"]["webhook-signature"].split(" ")
            assert len(entries) == 2 and all(e.startswith("v1,") for e in entries), entries
            assert verify(request, CURRENT, now_s), request
            assert verify(request, OLD, now_s), request
            assert not verify(request, "whsec_" + base64.b64encode(b"some other key, not ours").decode(), now_s)
            # A changed body or id no longer verifies.
            assert not verify(dict(request, body=request["body"] + " "), CURRENT, now_s)
            tampered = dict(request, headers=dict(request["headers"], **{"webhook-id": "other"}))
            assert not verify(tampered, CURRENT, now_s)
        by_key = {}
        for request in signed:
            by_key.setdefault(request["headers"]["idempotency-key"], []).append(request)
        # webhook-id: the job id, the same on every attempt, with no '.' (the signed parts' separator).
        assert by_key["signed-1"][0]["headers"]["webhook-id"] == "signed-1"
        assert by_key["order.42"][0]["headers"]["webhook-id"] == "order%2E42"
        flaky = by_key["flaky-signed"]
        assert [r["headers"]["x-outq-attempt"] for r in flaky] == ["1", "2"]
        assert flaky[0]["headers"]["webhook-id"] == flaky[1]["headers"]["webhook-id"] == "flaky-signed"
        # Each attempt is signed with its own timestamp.
        assert all(abs(int(r["headers"]["webhook-timestamp"]) - r["at_ms"] // 1000) <= 2 for r in signed), signed
        [unsigned] = env.hook_requests("b")
        assert not any(h.startswith("webhook-") for h in unsigned["headers"]), unsigned["headers"]
