"""The provider sandbox itself (no worker): directives, Mews validation, the
control endpoints, keep-alive, and the process mode with its port file."""
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

from harness import ROOT, Sandbox

THREAD = "8d02142f-31cf-4115-90bf-ae5200c7a1ba"


class _Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method, path, body=None, headers=None):
        data = body if body is None or isinstance(body, (str, bytes)) else json.dumps(body)
        self.conn.request(method, path, body=data, headers=headers or {})
        r = self.conn.getresponse()
        text = r.read().decode()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, text

    def close(self):
        self.conn.close()


def _hook(client, key, message, path="/hook/a"):
    return client.call("POST", path, message, {"Idempotency-Key": key, "Content-Type": "application/json"})


def test_sandbox_webhook_directives():
    with Sandbox() as sb:
        c = _Client(sb.port)
        try:
            status, headers, body = _hook(c, "k1", {"text": "hi"})
            assert status == 200 and json.loads(body) == {"id": "wh-1", "received": True}, body
            assert headers["content-length"] == str(len(body))
            # status + times, counted per Idempotency-Key: the first n answers only
            flaky = {"text": "x", "sandbox": {"status": 503, "times": 2}}
            assert [_hook(c, "k2", flaky)[0] for _ in range(3)] == [503, 503, 200]
            assert json.loads(_hook(c, "k3", flaky)[2]) == {"error": "sandbox status 503"}
            # always (no times), Retry-After and a body override
            limited = {"sandbox": {"status": 429, "retry_after": "7", "body": "{\"error\":\"slow down\"}"}}
            for _ in range(2):
                status, headers, body = _hook(c, "k4", limited)
                assert (status, headers["retry-after"], body) == (429, "7", '{"error":"slow down"}')
            # no Idempotency-Key: counted per path
            once = {"sandbox": {"status": 500, "times": 1}}
            assert [c.call("POST", "/hook/nokey", once)[0] for _ in range(2)] == [500, 200]
            # delay
            t0 = time.monotonic()
            assert _hook(c, "k5", {"sandbox": {"delay_ms": 300}})[0] == 200
            assert time.monotonic() - t0 >= 0.29
            # bad input answers and never kills the server
            assert c.call("POST", "/hook/a", "not json")[0] == 400
            assert c.call("POST", "/hook/a", {"sandbox": {"status": "x"}})[0] == 400
            assert c.call("POST", "/hook/a", {"sandbox": {"delay_ms": -1}})[0] == 400
            assert c.call("PUT", "/hook/put", {"x": 1})[0] == 200
            assert c.call("POST", "/nowhere", {})[0] == 404
        finally:
            c.close()
        # drop: the connection closes without an answer, `times` honoured
        drop = {"sandbox": {"drop": True, "times": 1}}
        c = _Client(sb.port)
        try:
            try:
                _hook(c, "k6", drop)
                raise AssertionError("a dropped request got an answer")
            except (http.client.RemoteDisconnected, ConnectionResetError):
                pass
        finally:
            c.close()
        c = _Client(sb.port)
        try:
            assert _hook(c, "k6", drop)[0] == 200
        finally:
            c.close()
        # a bad Content-Length: 400, and the server goes on
        with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as s:
            s.sendall(b"POST /hook/a HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 400")
        with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as s:
            s.sendall(b"GARBAGE\r\n\r\n")
            s.recv(100)
        # recorded requests: lower-case headers, the body as text, control calls not recorded
        recs = sb.requests()
        first = recs[0]
        assert set(first) == {"at_ms", "method", "path", "headers", "body"}, first
        assert first["headers"]["idempotency-key"] == "k1" and json.loads(first["body"]) == {"text": "hi"}
        assert first["method"] == "POST" and first["path"] == "/hook/a"
        c = _Client(sb.port)
        try:
            status, _, body = c.call("GET", "/_sandbox/requests")
            assert status == 200 and len(json.loads(body)) == len(recs)
            assert c.call("GET", "/_sandbox/health")[::2] == (200, "ok")
            assert len(json.loads(c.call("GET", "/_sandbox/requests")[2])) == len(recs)
            assert c.call("POST", "/_sandbox/reset")[0] == 200
            assert sb.requests() == []
            # counters restart too
            assert _hook(c, "k2", flaky)[0] == 503
            assert json.loads(_hook(c, "new", {})[2])["id"] == "wh-1"
        finally:
            c.close()


def _mews(client, messages, **over):
    body = {"ClientToken": "ct", "AccessToken": "at", "Client": "outq 1.0", "Messages": messages}
    body.update(over)
    status, headers, text = client.call("POST", "/api/connector/v1/messages/add", body)
    assert headers.get("request-id"), headers
    return status, json.loads(text)


def test_sandbox_mews_messages_add():
    with Sandbox() as sb:
        c = _Client(sb.port)
        try:
            status, body = _mews(c, [{"Text": "hello", "MessageThreadId": THREAD, "Identifier": "m1"},
                                     {"Text": "again", "MessageThreadId": THREAD}])
            assert status == 200, body
            [one, two] = body["Messages"]
            assert one["Identifier"] == "m1" and two["Identifier"] is None
            msg = one["Message"]
            assert msg["MessageThreadId"] == THREAD and msg["Text"] == "hello" and msg["Sender"] == "Application"
            assert msg["CreatedUtc"].endswith("Z") and len(msg["Id"]) == 36
            for over, messages in [({"ClientToken": ""}, None), ({"Client": 5}, None), ({}, []),
                                   ({}, [{"Text": "x", "MessageThreadId": "nope"}]),
                                   ({}, [{"Text": "", "MessageThreadId": THREAD}]),
                                   ({}, [{"Text": "x", "MessageThreadId": THREAD}] * 1001)]:
                status, body = _mews(c, messages if messages is not None else
                                     [{"Text": "x", "MessageThreadId": THREAD}], **over)
                assert status == 400 and body["Message"] and body["RequestId"] and body["Details"] is None, body
            status, body = _mews(c, [{"Text": "x", "MessageThreadId": THREAD}], AccessToken="invalid")
            assert status == 401 and "AccessToken" in body["Message"], body
            directive = 'sandbox:{"status":500,"times":1}'
            statuses = [_mews(c, [{"Text": directive, "MessageThreadId": THREAD, "Identifier": "d1"}])[0]
                        for _ in range(2)]
            assert statuses == [500, 200]
            assert _mews(c, [{"Text": directive, "MessageThreadId": THREAD, "Identifier": "d2"}])[0] == 500
        finally:
            c.close()


def test_sandbox_process_mode_port_file_and_sigterm():
    directory = tempfile.mkdtemp(prefix="outq-sb-")
    port_file = os.path.join(directory, "port")
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests", "fakes", "sandbox.py"), "--host",
                             "127.0.0.1", "--port", "0", "--port-file", port_file],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("sandbox listening on http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        assert int(open(port_file).read()) == port
        c = _Client(port)
        try:
            for i in range(3):  # one connection, three requests
                assert _hook(c, "p%d" % i, {"n": i})[0] == 200
        finally:
            c.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr.read() == "", "quiet unless --verbose"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def test_sandbox_onebox_validation_follows_the_document():
    from sandbox import onebox_body_problem
    ok = {"ConnectionId": 572, "MethodId": None, "Subject": "s", "From": "a@x", "To": "b@x", "Cc": None,
          "Attachments": [{"Description": "d", "File": {"Date": "2020-04-01 00:00:00", "Name": "f.csv",
                                                        "Content": "eA=="}}],
          "Users": [{"IdentityId": "a@x", "Name": "A", "RoleId": "MSR1"}],
          "Content": {"Body": "Hello", "BodyText": "Hello", "ContentType": "text/plain", "Encoding": "UTF-8"}}
    assert onebox_body_problem(ok) is None
    social = dict(ok, Users=None, Attachments=[])
    broken = [(ok, {"ConnectionId": "x572"}, "ConnectionId"), (ok, {"MethodId": "FAX"}, "MethodId"),
              (ok, {"Subject": None}, "Subject"), (social, {"MethodId": "DIRECT"}, "ConversationId"),
              (social, {"MethodId": "COMMENT"}, "PreviousId"), (ok, {"Users": None}, "Users"),
              (ok, {"Attachments": [{"Description": "d"}]}, "Attachments[0]"),
              (ok, {"Users": [{"IdentityId": "a@x", "Name": "A", "RoleId": "MSR9"}]}, "Users[0]"),
              (ok, {"Content": {"Body": "x"}}, "Content")]
    for base, change, word in broken:
        problem = onebox_body_problem(dict(base, **change))
        assert problem and word in problem, (change, problem)
    # The document's own shapes: a DM reply by PreviousId (a numeric string), a new mention.
    assert onebox_body_problem(dict(social, MethodId="DIRECT", PreviousId="76428")) is None
    assert onebox_body_problem(dict(social, MethodId="DIRECT", ConversationId=222536)) is None
    assert onebox_body_problem(dict(social, MethodId="MENTION")) is None
    assert onebox_body_problem(dict(social, MethodId="COMMENT", PreviousId="76428")) is None
    assert onebox_body_problem([]) == "the body must be an object"


def test_sandbox_superoffice_validation_follows_the_chat_message_schema():
    from sandbox import superoffice_body_problem
    sample = {"ChatMessageId": 664, "ChatSessionId": 103, "Type": "Invalid", "Message": "officia",
              "Author": "voluptatem", "ReadByCustomer": 973, "SpecialType": "Block", "SpecialParam": "quo",
              "WhenPosted": "2007-12-18T17:54:08.0543344+01:00"}  # the seed's sample request
    assert superoffice_body_problem(sample, 103) is None
    assert superoffice_body_problem({"Message": "hi", "WhenPosted": "2026-11-23T07:00:00Z"}, 5) is None
    for change, word in [({"Type": "Sideways"}, "Type"), ({"ChatSessionId": 104}, "ChatSessionId"),
                         ({"ReadByCustomer": "1"}, "ReadByCustomer"), ({"Message": 5}, "Message"),
                         ({"WhenPosted": "yesterday"}, "WhenPosted"), ({"SpecialType": "Blocked"}, "SpecialType")]:
        problem = superoffice_body_problem(dict(sample, **change), 103)
        assert problem and word in problem, (change, problem)
