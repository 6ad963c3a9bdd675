"""The HTTP client against real local servers: TLS verification, keep-alive
pooling, deadlines, limits, malformed answers and CONNECT proxies. The client
is driven through the http_probe tool (tests/tools/http_probe.cpp)."""
import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))
from hostile_http_server import HostileHTTPServer  # noqa: E402
from http_test_server import ConnectProxy, HTTPTestServer  # noqa: E402
from tls_certs import TestPKI  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("OUTQ_BUILD_DIR", os.path.join(ROOT, "build"))
_pki = None


def pki():
    global _pki
    if _pki is None:
        directory = tempfile.mkdtemp(prefix="outq-pki-")
        atexit.register(shutil.rmtree, directory, True)
        _pki = TestPKI(directory)
        _pki.server = _pki.issue("server")
        _pki.wrong_host = _pki.issue("wrong", san="DNS:wrong.example")
        _pki.expired = _pki.issue("expired", days=-1)
        _pki.self_signed = _pki.self_signed("selfsigned")
        _pki.client = _pki.issue("client", san="DNS:client.outq.test", client=True)
    return _pki


def probe(url, *args, env=None, timeout=60):
    cmd = [os.path.join(BUILD, "tests", "http_probe"), "--url", url] + [str(a) for a in args]
    full_env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    full_env.update(env or {})
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
    assert out.returncode == 0, "http_probe failed: %s %s" % (out.stdout, out.stderr)
    return json.loads(out.stdout)


class serving:
    def __init__(self, **kw):
        self.server = HTTPTestServer(**kw)

    def __enter__(self):
        return self.server.start()

    def __exit__(self, *exc):
        self.server.stop()


def test_tls_valid_certificate_and_keepalive_reuse():
    p = pki()
    with serving(cert=p.server[0], key=p.server[1]) as s:
        r = probe("https://127.0.0.1:%d/ok" % s.port, "--ca", p.ca_cert, "--count", 1000, "--concurrency", 4,
                  "--max-connections", 4)
        assert r["ok"] == 1000, r
        assert r["statuses"] == {"200": 1000}, r
        assert s.connections <= 4, "1000 requests used %d connections" % s.connections
        assert r["request_id"].startswith("req-"), r
        assert any(ua.startswith("outq/") for ua in s.user_agents), s.user_agents
        # localhost resolves and verifies by DNS name too
        r = probe("https://localhost:%d/ok" % s.port, "--ca", p.ca_cert)
        assert r["ok"] == 1, r


def test_plain_http_1000_sequential_requests_on_one_connection():
    with serving() as s:
        r = probe("http://127.0.0.1:%d/ok" % s.port, "--count", 1000, "--max-connections", 2)
        assert r["ok"] == 1000, r
        assert s.connections == 1, "sequential keep-alive used %d connections" % s.connections
        assert r["dns_lookups"] == 1, r


def test_tls_wrong_host_rejected():
    p = pki()
    with serving(cert=p.wrong_host[0], key=p.wrong_host[1]) as s:
        r = probe("https://127.0.0.1:%d/ok" % s.port, "--ca", p.ca_cert)
        assert r["failures"] == {"tls_certificate": 1}, r
        assert "mismatch" in r["last_error"], r
        assert s.requests == 0


def test_tls_untrusted_ca_and_self_signed_rejected():
    p = pki()
    with serving(cert=p.server[0], key=p.server[1]) as s:
        r = probe("https://127.0.0.1:%d/ok" % s.port)  # system trust store only
        assert r["failures"] == {"tls_certificate": 1}, r
        assert "local issuer" in r["last_error"], r
    with serving(cert=p.self_signed[0], key=p.self_signed[1]) as s:
        r = probe("https://127.0.0.1:%d/ok" % s.port, "--ca", p.ca_cert)
        assert r["failures"] == {"tls_certificate": 1}, r
        assert "self-signed" in r["last_error"] or "self signed" in r["last_error"], r
        # the explicit, logged switch turns verification off
        r = probe("https://127.0.0.1:%d/ok" % s.port, "--insecure")
        assert r["ok"] == 1, r


def test_tls_expired_certificate_rejected():
    p = pki()
    with serving(cert=p.expired[0], key=p.expired[1]) as s:
        r = probe("https://127.0.0.1:%d/ok" % s.port, "--ca", p.ca_cert)
        assert r["failures"] == {"tls_certificate": 1}, r
        assert "expired" in r["last_error"], r


def test_mutual_tls_client_certificate():
    p = pki()
    with serving(cert=p.server[0], key=p.server[1], client_ca=p.ca_cert) as s:
        r = probe("https://127.0.0.1:%d/ok" % s.port, "--ca", p.ca_cert, "--cert", p.client[0], "--key", p.client[1])
        assert r["ok"] == 1, r
        r = probe("https://127.0.0.1:%d/ok" % s.port, "--ca", p.ca_cert)
        assert r["ok"] == 0 and r["failures"], r


def test_server_closing_idle_connections_is_handled():
    with serving(idle_close_s=0.2) as s:
        r = probe("http://127.0.0.1:%d/ok" % s.port, "--count", 4, "--pause-ms", 500)
        assert r["ok"] == 4, r
        assert r["failures"] == {}, r
        assert s.connections == 4, s.connections


def test_idle_timeout_and_dns_cache_are_configurable_and_refreshed():
    with serving() as s:
        url = "http://localhost:%d/ok" % s.port  # a name, so there is something to resolve
        # Defaults (4 s idle, 60 s DNS): one connection, one lookup, despite the pauses.
        r = probe(url, "--count", 3, "--pause-ms", 400)
        assert r["ok"] == 3 and r["connections_opened"] == 1 and r["dns_lookups"] == 1, r
        # Shorter than the pauses: each request finds its idle connection closed by the
        # client and its address expired, so it dials afresh after a new lookup.
        r = probe(url, "--count", 3, "--pause-ms", 400, "--idle-timeout-ms", 200, "--dns-cache-ms", 300)
        assert r["ok"] == 3 and r["connections_opened"] == 3 and r["dns_lookups"] == 3, r
        # The DNS entry outlives the idle connection: new connections, one lookup.
        r = probe(url, "--count", 3, "--pause-ms", 400, "--idle-timeout-ms", 200)
        assert r["ok"] == 3 and r["connections_opened"] == 3 and r["dns_lookups"] == 1, r


def test_an_idle_timeout_the_server_announces_is_honoured_before_it_closes():
    with HostileHTTPServer() as s:
        # "Keep-Alive: timeout=2": the server closes idle connections after 2 s, the
        # client stops using them a second before. 0.6 s apart: one connection.
        r = probe("http://127.0.0.1:%d/keep-alive?timeout=2" % s.port, "--count", 3, "--pause-ms", 600)
        assert r["ok"] == 3 and r["connections_opened"] == 1, r
    with HostileHTTPServer() as s:
        # 1.3 s apart: past the client's 1 s, inside the server's 2 s, so the liveness
        # check cannot tell; the client dials afresh each time rather than race the close.
        r = probe("http://127.0.0.1:%d/keep-alive?timeout=2" % s.port, "--count", 3, "--pause-ms", 1300)
        assert r["ok"] == 3 and r["connections_opened"] == 3 and r["stale_closed"] == 0, r
        assert s.connections == 3, s.connections


def test_connection_close_is_honoured_and_chunked_bodies_read():
    with serving() as s:
        r = probe("http://127.0.0.1:%d/close" % s.port, "--count", 3)
        assert r["ok"] == 3 and s.connections == 3, (r, s.connections)
        r = probe("http://127.0.0.1:%d/chunked" % s.port)
        assert r["first_body"] == '{"chunked":true}', r


def test_retry_after_and_headers_reach_the_caller():
    with serving() as s:
        r = probe("http://127.0.0.1:%d/retry" % s.port)
        assert r["statuses"] == {"429": 1} and r["retry_after"] == "3", r


def test_request_timeout_after_send_is_ambiguous():
    with serving() as s:
        t0 = time.monotonic()
        r = probe("http://127.0.0.1:%d/never?s=5" % s.port, "--request-timeout-ms", 300)
        assert r["failures"] == {"timeout_after_send": 1}, r
        assert r["request_written_on_failure"] is True, r
        assert time.monotonic() - t0 < 4


def test_connect_timeout_before_send():
    # A listener whose accept queue is full drops new SYNs: connect hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        time.sleep(0.2)
        r = probe("http://127.0.0.1:%d/ok" % port, "--connect-timeout-ms", 300)
        assert r["failures"] == {"timeout_before_send": 1}, r
        assert r["request_written_on_failure"] is False, r
    finally:
        for c in fillers:
            c.close()
        listener.close()


def test_tls_handshake_timeout_before_send():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts TCP, never speaks TLS
    port = listener.getsockname()[1]
    try:
        r = probe("https://127.0.0.1:%d/ok" % port, "--handshake-timeout-ms", 300)
        assert r["failures"] == {"timeout_before_send": 1}, r
    finally:
        listener.close()


def test_refused_and_unresolvable():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = probe("http://127.0.0.1:%d/ok" % port)
    assert r["failures"] == {"connect": 1}, r
    assert "refused" in r["last_error"], r
    r = probe("http://no-such-host.invalid/ok")
    assert r["failures"] == {"resolve": 1}, r


def test_oversize_malformed_and_reset_responses():
    with serving() as s:
        base = "http://127.0.0.1:%d" % s.port
        r = probe(base + "/big?bytes=2000000", "--max-response-bytes", 1048576)
        assert r["failures"] == {"too_large": 1}, r
        r = probe(base + "/big?bytes=1000", "--max-response-bytes", 1048576)
        assert r["ok"] == 1, r
        r = probe(base + "/malformed")
        assert r["failures"] == {"protocol": 1}, r
        r = probe(base + "/reset")
        assert r["failures"] == {"closed_after_send": 1}, r
        r = probe(base + "/partial")
        assert list(r["failures"]) in (["closed_after_send"], ["protocol"]), r


def _numbers(r, field="n"):
    return [json.loads(b)[field] if b.startswith("{") else b for b in r["bodies"]]


def test_100_continue_is_skipped_and_the_final_answer_read():
    with HostileHTTPServer() as s:
        r = probe("http://127.0.0.1:%d/continue" % s.port, "--count", 3, "--bodies")
        assert r["statuses"] == {"200": 3} and r["failures"] == {}, r
        assert _numbers(r) == [1, 2, 3], r
        assert s.connections == 1, "the connection is kept: %d connections" % s.connections


def test_103_early_hints_then_a_late_200_and_the_next_request_gets_its_own_answer():
    with HostileHTTPServer() as s:
        r = probe("http://127.0.0.1:%d/early-hints?ms=150" % s.port, "--count", 2, "--bodies")
        assert r["statuses"] == {"200": 2} and r["failures"] == {}, r
        assert _numbers(r) == [1, 2], r  # each request its own answer, in order
        assert _numbers(r, "i") == [1, 2] and s.connections == 1, (r, s.connections)
        assert s.requests == 2, s.requests


def test_reset_of_a_reused_connection_after_the_request_was_read_is_ambiguous_not_resent():
    for extra in ([], ["--header", "Idempotency-Key: job-1"]):
        with HostileHTTPServer() as s:
            # The second request goes out on the kept connection; the server reads it
            # whole and resets. It may have acted on it: reported, never sent again.
            r = probe("http://127.0.0.1:%d/reset-reused" % s.port, "--count", 2, "--bodies", *extra)
            assert r["ok"] == 1 and r["failures"] == {"closed_after_send": 1}, (extra, r)
            assert r["request_written_on_failure"] is True, r
            assert "keep-alive connection idle" in r["last_error"], r
            assert s.requests == 2, "the server saw %d requests for 2 sends" % s.requests
            assert r["ambiguous_after_reuse"] == 1 and r["resent_before_write"] == 0, r
            assert r["reused"] == 1 and r["connections_opened"] == 1, r


def test_bytes_after_a_complete_response_end_the_connection():
    with HostileHTTPServer() as s:
        # An unsolicited second response in the same write as the answer.
        r = probe("http://127.0.0.1:%d/extra" % s.port, "--count", 3, "--bodies")
        assert r["statuses"] == {"200": 3} and _numbers(r) == [1, 2, 3], r
        assert s.connections == 3 and r["reused"] == 0, (r, s.connections)
    with HostileHTTPServer() as s:
        # The answer exactly fills the client's first read (512 bytes on a fresh
        # connection): the extra response waits in the socket, where only the
        # liveness check before the next request can see it, however soon that
        # request follows.
        r = probe("http://127.0.0.1:%d/extra?size=512" % s.port, "--count", 3, "--bodies")
        assert r["statuses"] == {"200": 3} and _numbers(r) == [1, 2, 3], r
        assert s.connections == 3 and r["reused"] == 0 and r["stale_closed"] == 2, (r, s.connections)


def test_101_switching_protocols_is_a_protocol_failure_and_closes_the_connection():
    with HostileHTTPServer() as s:
        r = probe("http://127.0.0.1:%d/upgrade" % s.port, "--count", 2)
        assert r["ok"] == 0 and r["failures"] == {"protocol": 2}, r
        assert "101" in r["last_error"] and r["request_written_on_failure"] is True, r
        assert s.connections == 2, s.connections


def test_https_through_connect_proxy_and_no_proxy():
    p = pki()
    proxy = ConnectProxy().start()
    try:
        with serving(cert=p.server[0], key=p.server[1]) as s:
            url = "https://localhost:%d/ok" % s.port
            env = {"HTTPS_PROXY": "http://user:pw@127.0.0.1:%d" % proxy.port}
            r = probe(url, "--ca", p.ca_cert, "--count", 20, env=env)
            assert r["ok"] == 20, r
            assert proxy.tunnels == ["localhost:%d" % s.port], proxy.tunnels
            assert proxy.authorizations == ["Basic dXNlcjpwdw=="], proxy.authorizations
            env["NO_PROXY"] = "example.com,localhost"
            r = probe(url, "--ca", p.ca_cert, env=env)
            assert r["ok"] == 1 and len(proxy.tunnels) == 1, (r, proxy.tunnels)
        with serving() as s:
            r = probe("http://127.0.0.1:%d/ok" % s.port, "--count", 3,
                      env={"HTTP_PROXY": "http://plain:secret@127.0.0.1:%d" % proxy.port})
            assert r["ok"] == 3, r
            assert proxy.forwarded and proxy.forwarded[0].startswith("http://127.0.0.1:%d/ok" % s.port), proxy.forwarded
            # Plain HTTP through the proxy carries its credentials on the request itself.
            assert proxy.authorizations[-1] == "Basic cGxhaW46c2VjcmV0", proxy.authorizations
    finally:
        proxy.stop()


if __name__ == "__main__":
    failed = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            t0 = time.monotonic()
            try:
                fn()
                print("PASS %s (%.1fs)" % (name, time.monotonic() - t0))
            except Exception as e:  # noqa: BLE001
                failed += 1
                print("FAIL %s: %r" % (name, e))
    sys.exit(1 if failed else 0)
