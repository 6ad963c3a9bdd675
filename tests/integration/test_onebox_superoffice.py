"""Onebox and SuperOffice end to end against the sandbox."""
import base64
import json

from harness import Env, wait_until

ONEBOX_DIRECT = {"ConnectionId": 583, "Subject": "Hello", "MethodId": "DIRECT", "From": "469218373611012",
                 "To": "389961471775568", "ConversationId": 222536, "Attachments": [],
                 "Content": {"Body": "Hello", "BodyText": "Hello", "ContentType": "text/plain", "Encoding": "UTF-8"}}


def base(env):
    return "http://127.0.0.1:%d" % env.sandbox.port


def config_with(env, provider, accounts):
    config = env.config()
    config["providers"][provider] = {"retry": {"base_ms": 20, "cap_ms": 200, "max_attempts": 3},
                                     "accounts": accounts}
    return config


def job(provider, account, job_id, message):
    return {"v": 1, "id": job_id, "provider": provider, "account": account, "message": message}


def requests_to(env, suffix):
    return [r for r in env.sandbox.requests() if r["path"].endswith(suffix)]


def test_onebox_static_token_and_the_data_envelope():
    with Env() as env:
        env.enqueue([job("onebox", "static", "ob1", ONEBOX_DIRECT)])
        env.worker(config_with(env, "onebox", {"static": {"host": base(env), "token": "ob-static"}}))
        r = env.wait_results(["ob1"])["ob1"]
        assert r["status"] == "sent" and r["provider_message_id"].startswith("7"), r
        [sent] = requests_to(env, "/api/message")
        assert sent["headers"]["authorization"] == "Bearer ob-static"
        body = json.loads(sent["body"])
        assert body["ConnectionId"] == 583 and body["MethodId"] == "DIRECT" and body["ConversationId"] == 222536


def test_onebox_expired_token_is_refreshed_and_the_quota_answer_pauses_without_dead_letters():
    with Env() as env:
        accounts = {"oauth": {"host": base(env), "token_url": base(env) + "/user/oauth/token",
                              "client_id": "ob-client", "client_secret": "ob-secret"},
                    "quota": {"host": base(env), "token": "ob-quota", "quota_reopens_at": "18:00",
                              "quota_time_zone": "+00:00"}}
        env.worker(config_with(env, "onebox", accounts))
        env.enqueue([job("onebox", "oauth", "first", ONEBOX_DIRECT)])
        env.wait_results(["first"])
        env.sandbox.server.state.tokens.clear()  # the provider expires every token
        env.enqueue([job("onebox", "oauth", "second", ONEBOX_DIRECT)])
        r = env.wait_results(["second"])["second"]
        assert r["status"] == "sent" and r["attempts"] == "1", r
        assert len(requests_to(env, "/oauth/token")) == 2
        env.enqueue([job("onebox", "quota", "over-quota", ONEBOX_DIRECT)])
        wait_until(lambda: env.r.zcard(env.key("delayed")) == 1, 30, "the over-quota job to wait")
        assert env.result("over-quota") == {}, "kept, not dead"
        stats = json.loads(env.cli("stats", "--json").stdout)
        [pause] = [p for p in stats["pauses"] if p["scope"] == "onebox/quota"]
        assert "quota" in pause["reason"] and pause["remaining_ms"] > 0, pause


def test_onebox_token_api_of_another_shape_is_configured_by_its_field_names():
    """token_api names the fields of a token API that is not OAuth's: a JSON login
    with username/password, the token and its lifetime under "data"."""
    with Env() as env:
        shape = {"request": "json", "grant_type": "", "user_field": "username", "password_field": "password",
                 "token_field": "data.token", "expires_in_field": "data.ttl"}
        accounts = {"login": {"host": base(env), "token_url": base(env) + "/api/token", "client_id": "agent",
                              "client_secret": "pw", "token_api": shape},
                    "refused": {"host": base(env), "token_url": base(env) + "/api/token", "client_id": "agent",
                                "client_secret": "bad", "token_api": shape}}
        env.enqueue([job("onebox", "login", "ob-login-1", ONEBOX_DIRECT),
                     job("onebox", "login", "ob-login-2", ONEBOX_DIRECT)])
        env.worker(config_with(env, "onebox", accounts))
        results = env.wait_results(["ob-login-1", "ob-login-2"])
        assert all(r["status"] == "sent" for r in results.values()), results
        [token_request] = requests_to(env, "/api/token")  # one fetch, cached for both sends
        assert json.loads(token_request["body"]) == {"username": "agent", "password": "pw"}, token_request
        assert token_request["headers"]["content-type"] == "application/json"
        assert "authorization" not in token_request["headers"]
        sends = requests_to(env, "/api/message")
        assert len(sends) == 2 and all(s["headers"]["authorization"].startswith("Bearer ob-") for s in sends), sends
        env.enqueue([job("onebox", "refused", "ob-refused", ONEBOX_DIRECT)])
        r = env.wait_results(["ob-refused"])["ob-refused"]
        assert r["status"] == "dead" and r["error_class"] == "auth" and "wrong password" in r["error"], r
        assert len(requests_to(env, "/api/message")) == 2


def test_onebox_channel_rules_are_validation_errors():
    with Env() as env:
        direct_without_conversation = dict(ONEBOX_DIRECT)
        del direct_without_conversation["ConversationId"]
        env.enqueue([job("onebox", "static", "bad", direct_without_conversation)])
        env.worker(config_with(env, "onebox", {"static": {"host": base(env), "token": "ob-static"}}))
        r = env.wait_results(["bad"])["bad"]
        assert r["error_class"] == "validation" and "ConversationId" in r["error"], r
        assert requests_to(env, "/api/message") == []


def test_superoffice_basic_auth_chat_message_and_wrong_tenant():
    with Env() as env:
        accounts = {"tenant": {"base_url": base(env) + "/Cust12345", "auth": "basic", "username": "tje0",
                               "password": "Tje0"},
                    "wrong": {"base_url": base(env) + "/wrongtenant/Cust1", "auth": "basic", "username": "tje0",
                              "password": "Tje0"}}
        message = {"ChatSessionId": 103, "Type": "ToCustomer", "Message": "Your order shipped", "Author": "outq"}
        env.enqueue([job("superoffice", "tenant", "so1", message), job("superoffice", "wrong", "so2", message)])
        env.worker(config_with(env, "superoffice", accounts))
        results = env.wait_results(["so1", "so2"])
        assert results["so1"]["status"] == "sent" and int(results["so1"]["provider_message_id"]) > 500, results
        sent = requests_to(env, "/Cust12345/api/v1/ChatSession/103/Messages")[0]
        assert sent["headers"]["authorization"] == "Basic " + base64.b64encode(b"tje0:Tje0").decode()
        body = json.loads(sent["body"])
        assert body["Message"] == "Your order shipped" and body["WhenPosted"].endswith("Z"), body
        assert results["so2"]["status"] == "dead" and results["so2"]["error_class"] == "permanent", results
        assert "421" in results["so2"]["error"] or "tenant" in results["so2"]["error"].lower(), results


def _directive(**kw):
    return "sandbox:" + json.dumps(kw)


def test_onebox_and_superoffice_rate_limits_server_errors_and_drops_are_retried():
    with Env() as env:
        so_accounts = {"basic": {"base_url": base(env) + "/tenant", "auth": "basic", "username": "u",
                                 "password": "p"}}
        config = config_with(env, "onebox", {"static": {"host": base(env), "token": "ob-static"}})
        config["providers"]["superoffice"] = {"retry": {"base_ms": 20, "cap_ms": 200, "max_attempts": 3},
                                              "accounts": so_accounts}
        jobs = []
        for name, d in (("limited", {"status": 429, "times": 1, "retry_after": "1"}),
                        ("flaky", {"status": 503, "times": 1}), ("dropped", {"drop": True, "times": 1})):
            content = dict(ONEBOX_DIRECT["Content"], Body=_directive(**d))
            jobs.append(job("onebox", "static", "ob-" + name, dict(ONEBOX_DIRECT, Content=content)))
            jobs.append(job("superoffice", "basic", "so-" + name,
                            {"ChatSessionId": 7, "Message": _directive(**d), "Type": "ToCustomer"}))
        env.enqueue(jobs)
        env.worker(config)
        results = env.wait_results([j["id"] for j in jobs])
        for job_id, r in results.items():
            assert r["status"] == "sent" and r["attempts"] == "2", (job_id, r)
        assert len(requests_to(env, "/api/message")) == 6
        assert len(requests_to(env, "/Messages")) == 6
