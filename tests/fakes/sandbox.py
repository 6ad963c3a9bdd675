"""The provider sandbox: a real local HTTP/1.1 server that the worker sends to
in scripts/run.sh and the tests. It records every request and can be told, per
message, to answer with an error, a Retry-After, slowly, or not at all.

    POST /hook/<anything>   the generic webhook provider (PUT and PATCH too)
        body: the job's message; an optional object field "sandbox" is a directive:
          status (int), times (how many of the first requests with this key get it;
          absent = always), delay_ms, drop (close without answering), retry_after,
          headers (object: extra response headers), body (response body), echo_headers (the response
          body is the request's headers, as a careless provider's error echoes them). Requests are counted per Idempotency-Key header
          (the path when there is none).
        default answer: 200 {"id":"wh-<n>","received":true}
    POST /api/connector/v1/messages/add   Mews Connector (validated; a Text
        "sandbox:{...}" is a directive, counted per Identifier; delay_ms delays the
        answer after the messages are stored (an ambiguous send); "omit": true makes
        Mews lose that message: neither stored nor in the answer)
    POST /api/connector/v1/messages/getAll   stored messages of the given threads,
        newest first, Limitation {Count, Cursor} pagination
    POST /user/oauth/token, POST /capi/v1/client/message   Mediaconnect/ConnectID: OAuth 2.0
        client credentials (form body or Basic; client_id "bad" is refused) and the
        message API (Bearer checked, the seed's field limits, IN/OUT message list)
    POST /api/message   Onebox (Bearer "ob-static", tokens from either token endpoint; "ob-quota"
        gets the quota answer, a revoked token the documented "Expired token" envelope)
    POST /api/token   a token API that is not OAuth's (Onebox's is undocumented): JSON
        {"username", "password"} in, {"status": "OK", "data": {"token", "ttl"}} out;
        password "bad" gets 401 {"message": "wrong password"}
    POST .../api/v1/ChatSession/{id}/Messages   SuperOffice (Basic, SOTicket + SO-AppToken or
        Bearer; a base path /wrongtenant answers 421)

    Faults for Mediaconnect, Onebox and SuperOffice, as for Mews: a message text
    (messageContent, Content.Body, Message) "sandbox:{...}" is a directive (status, times,
    retry_after, headers, delay_ms, drop), counted per text, answered after the
    auth check in the provider's own error shape.

    --tls-cert/--tls-key (or Sandbox(tls_cert=, tls_key=)) serve HTTPS instead:
    the handshake runs in the connection's thread, so a client that refuses the
    certificate never stalls the others.
    POST /_sandbox/mediaconnect   {"token_delay_ms", "expires_in", "revoke"} shapes the token endpoint
    POST /_sandbox/mews   {"get_all_faults": [{"status": 429, "retry_after": "1"}, ...]} answers the
        next getAll calls so, one each; {"omit": ["<Identifier>", ...]} makes Mews lose the next
        message with each Identifier (neither stored nor in the answer), once;
        {"refused_threads": ["<uuid>", ...]}: threads the integration did not create (a
        request with a message to one is refused whole: 403); {"heavy_above": n}: a request
        of more than n messages answers 408 (null: never); {"late": {"requests": n,
        "delay_ms": ms, "drop": false}}: the next n add requests are stored, then answered
        that late (with "drop": true, the connection is closed instead of an answer);
        answers {"messages": [every stored message]}
    GET  /_sandbox/requests   recorded requests (JSON array; control requests are not recorded)
    POST /_sandbox/reset      clear records and counters
    GET  /_sandbox/health     200 ok

Run:    /usr/bin/python3 tests/fakes/sandbox.py --host 127.0.0.1 --port 0 [--port-file F] [--verbose]
Import: Sandbox(host, port).start() / .stop() / .port / .requests() / .reset()
"""
import argparse
import base64
import http.server
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MEWS_ADD = "/api/connector/v1/messages/add"
MEWS_GET_ALL = "/api/connector/v1/messages/getAll"
MC_TOKEN = "/user/oauth/token"
MC_MESSAGE = "/capi/v1/client/message"
ONEBOX_MESSAGE = "/api/message"
ONEBOX_TOKEN = "/api/token"
SO_MESSAGES = re.compile(r"^.*/api/v1/ChatSession/(\d+)/Messages$")
MAX_BODY = 64 * 1024 * 1024


def _dumps(value):
    return json.dumps(value, separators=(",", ":"))


class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.records = []
        self.counts = {}
        self.counter = 0
        self.mews_messages = []  # every stored message, oldest first
        self.tokens = {}  # Mediaconnect access token -> expiry (time.time())
        self.token_requests = 0
        self.mc_config = {"token_delay_ms": 0, "expires_in": 3600}
        self.mews_get_all_faults = []  # answers for the next getAll calls
        self.mews_omit = set()  # Identifiers whose next message Mews loses
        self.mews_refused_threads = set()  # threads "the integration did not create"
        self.mews_heavy_above = None  # more messages than this in one request: 408
        self.mews_late = {"requests": 0, "delay_ms": 0}  # the next add requests: stored, answered late

    def reset(self):
        with self.lock:
            self.records.clear()
            self.counts.clear()
            self.counter = 0
            self.mews_messages.clear()
            self.tokens.clear()
            self.token_requests = 0
            self.mc_config = {"token_delay_ms": 0, "expires_in": 3600}
            self.mews_get_all_faults = []
            self.mews_omit = set()
            self.mews_refused_threads = set()
            self.mews_heavy_above = None
            self.mews_late = {"requests": 0, "delay_ms": 0}

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]

    def next_id(self):
        with self.lock:
            self.counter += 1
            return self.counter


class _Drop(Exception):
    """Close the connection without any answer."""


class _BadRequest(Exception):
    """The request itself cannot be read (framing): answer 400 and close."""


class _BadDirective(Exception):
    pass


def _int(directive, name, minimum=0):
    value = directive[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise _BadDirective("%s must be a number >= %d" % (name, minimum))
    return int(value)


def parse_directive(directive):
    """Checks a sandbox directive; returns a normalised dict or raises _BadDirective."""
    if not isinstance(directive, dict):
        raise _BadDirective("the directive must be an object")
    out = {}
    if "status" in directive:
        out["status"] = _int(directive, "status", 100)
        if out["status"] > 599:
            raise _BadDirective("status must be 100..599")
    if directive.get("times") is not None:
        out["times"] = _int(directive, "times")
    if directive.get("delay_ms") is not None:
        out["delay_ms"] = _int(directive, "delay_ms")
    out["drop"] = bool(directive.get("drop"))
    out["echo_headers"] = bool(directive.get("echo_headers"))
    out["omit"] = bool(directive.get("omit"))
    if directive.get("retry_after") is not None:
        out["retry_after"] = str(directive["retry_after"])
    if directive.get("headers") is not None:
        headers = directive["headers"]
        if not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and k.isascii() and k.replace("-", "").isalnum()
                and "\r" not in v and "\n" not in v for k, v in headers.items()):
            raise _BadDirective("headers must be an object of header names to string values")
        out["headers"] = sorted(headers.items())
    if directive.get("body") is not None:
        body = directive["body"]
        out["body"] = body if isinstance(body, str) else _dumps(body)
    return out


def _is_id(v):
    """The document's ids are numbers; its examples also write them as numeric strings."""
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v.isdigit())


def onebox_body_problem(body):
    """The documented api/message body (onebox-message-create.md): the mandatory
    fields and their types, and the channel rules (email: MethodId null, Users
    required; DIRECT: ConversationId, or PreviousId when replying; COMMENT:
    PreviousId; a new POST or MENTION needs neither). None when it is valid."""
    if not isinstance(body, dict):
        return "the body must be an object"
    if not _is_id(body.get("ConnectionId")):
        return "ConnectionId is required (number)"
    method = body.get("MethodId")
    if method not in (None, "DIRECT", "POST", "MENTION", "COMMENT"):
        return "MethodId must be null, DIRECT, POST, MENTION or COMMENT"
    email = method is None
    for field in ("Subject", "From", "To"):
        if not isinstance(body.get(field), str):
            return "%s is required (string)" % field
    for field in ("Cc", "Bcc"):
        if body.get(field) is not None and not isinstance(body[field], str):
            return "%s must be a string" % field
    for field in ("ConversationId", "PreviousId"):
        if body.get(field) is not None and not _is_id(body[field]):
            return "%s must be a number" % field
    if method == "DIRECT" and body.get("ConversationId") is None and body.get("PreviousId") is None:
        return "ConversationId is required for a direct message (or PreviousId for a reply)"
    if method == "COMMENT" and body.get("PreviousId") is None:
        return "PreviousId is required for a comment reply"
    for i, a in enumerate(body.get("Attachments") or []):
        f = a.get("File") if isinstance(a, dict) else None
        if not isinstance(a, dict) or not isinstance(a.get("Description"), str) or not isinstance(f, dict):
            return "Attachments[%d]: Description and File are required" % i
        if not isinstance(f.get("Name"), str) or not isinstance(f.get("Date"), str) or not (
                isinstance(f.get("Content"), str) or isinstance(f.get("Path"), str)):
            return "Attachments[%d].File: Name, Date and Content or Path are required" % i
    users = body.get("Users")
    if email and not users:
        return "Users is required for email"
    for i, u in enumerate(users or []):
        if not isinstance(u, dict):
            return "Users[%d] must be an object" % i
        if email and not all(isinstance(u.get(k), str) for k in ("IdentityId", "Name", "RoleId")):
            return "Users[%d]: IdentityId, Name and RoleId are required for email" % i
        if u.get("RoleId") is not None and u["RoleId"] not in ("MSR1", "MSR2", "MSR3", "MSR4"):
            return "Users[%d].RoleId must be MSR1..MSR4" % i
    content = body.get("Content")
    if not isinstance(content, dict) or not all(
            isinstance(content.get(k), str) for k in ("Body", "BodyText", "ContentType", "Encoding")):
        return "Content.Body, BodyText, ContentType and Encoding are required"
    return None


# SuperOffice's ChatMessageSpecialType names (the seed shows "Block").
SO_SPECIAL_TYPES = ("None", "Welcome", "Url", "Block", "NewSession", "TransferedSession", "Error", "SessionDeleted",
                    "FaqSuccessQuestion", "ClosedByUser", "ClosedByCustomer", "ClosedByIdle", "TransferRejected",
                    "ReopenedByCustomer", "ClickedOption", "BotMessage", "Options", "IllegalFileType")


def superoffice_body_problem(body, session):
    """The documented ChatMessage request body. None when it is valid."""
    if not isinstance(body, dict):
        return "The message must be an object"
    types = {"ChatMessageId": int, "ChatSessionId": int, "ReadByCustomer": int, "Type": str, "Message": str,
             "Author": str, "SpecialType": str, "SpecialParam": str, "WhenPosted": str}
    for field, kind in types.items():
        value = body.get(field)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return "%s must be %s" % (field, "an integer" if kind is int else "a string")
    if body.get("Type") not in (None, "Invalid", "ToCustomer", "ToUser", "Special"):
        return "Invalid Type"
    if body.get("SpecialType") is not None and body["SpecialType"] not in SO_SPECIAL_TYPES:
        return "Invalid SpecialType"
    if body.get("ChatSessionId") not in (None, session):
        return "ChatSessionId %s does not match the path's %d" % (body.get("ChatSessionId"), session)
    when = body.get("WhenPosted")
    if when is not None:
        try:
            datetime.fromisoformat(when)  # Python 3.11: Z, offsets, any fraction digits
        except ValueError:
            return "WhenPosted must be an ISO 8601 date-time"
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "outq-sandbox/1"
    # Headers and body leave in one write; small separate writes meet Nagle +
    # delayed ACK and cost 40 ms each.
    wbufsize = 65536
    disable_nagle_algorithm = True
    # Bounds a connection that stalls mid-request (idle keep-alive included).
    timeout = 300

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("sandbox: %s %s\n" % (self.address_string(), fmt % args))

    def _send(self, status, body, headers=(), content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("bad chunk size")
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                total += size
                if total > MAX_BODY:
                    raise _BadRequest("body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            raise _BadRequest("bad Content-Length")
        if length < 0 or length > MAX_BODY:
            raise _BadRequest("bad Content-Length")
        data = self.rfile.read(length)
        if len(data) != length:
            raise _Drop()  # the client went away mid-body
        return data

    def _record(self, body):
        rec = {"at_ms": int(time.time() * 1000), "method": self.command, "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        with self.server.state.lock:
            self.server.state.records.append(rec)

    def _apply(self, directive, key):
        """Applies a checked directive for the request counted under `key`. Returns
        None when it does not apply (the normal answer follows), else (status, body,
        headers) with body None for the default error body; raises _Drop."""
        n = self.server.state.count(key)
        times = directive.get("times")
        if times is not None and n > times:
            return None
        if directive.get("delay_ms"):
            time.sleep(directive["delay_ms"] / 1000)
        if directive["drop"]:
            raise _Drop()
        if directive.get("omit"):
            return "omit"
        if "status" not in directive:
            return None
        headers = []
        if "retry_after" in directive:
            headers.append(("Retry-After", directive["retry_after"]))
        headers.extend(directive.get("headers", ()))
        if directive.get("echo_headers"):
            echoed = {k: v for k, v in self.headers.items()}
            return directive["status"], _dumps({"error": "rejected", "request_headers": echoed}), headers
        return directive["status"], directive.get("body"), headers

    def _text_directive(self, text, provider):
        """A "sandbox:{...}" message text: None when it is not one or does not apply,
        else (status, body, headers); raises _BadDirective or _Drop."""
        if not isinstance(text, str) or not text.startswith("sandbox:"):
            return None
        try:
            checked = parse_directive(json.loads(text[len("sandbox:"):]))
        except ValueError as e:
            raise _BadDirective(str(e))
        answer = self._apply(checked, provider + ":" + text)
        return None if answer == "omit" else answer

    # --- dispatch ------------------------------------------------------------
    def do_GET(self):
        self._guarded(self._get)

    def do_POST(self):
        self._guarded(self._post)

    do_PUT = do_POST
    do_PATCH = do_POST

    def do_DELETE(self):
        self._guarded(self._post)

    def _guarded(self, fn):
        """No request may kill the server: framing errors answer 400 and close,
        anything unexpected answers 500; a drop closes without an answer."""
        try:
            fn()
        except _Drop:
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except _BadRequest as e:
            self.close_connection = True
            self._safe_send(400, _dumps({"error": str(e)}))
        except (ConnectionError, socket.timeout, BrokenPipeError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - the sandbox must survive its own bugs too
            self.close_connection = True
            if self.server.verbose:
                import traceback
                traceback.print_exc()
            self._safe_send(500, _dumps({"error": "sandbox internal error: %r" % (e,)}))

    def _safe_send(self, status, body):
        try:
            self._send(status, body)
        except OSError:
            pass

    def _get(self):
        path = self.path.split("?", 1)[0]
        if path == "/_sandbox/requests":
            with self.server.state.lock:
                data = _dumps(self.server.state.records)
            return self._send(200, data)
        if path == "/_sandbox/health":
            return self._send(200, "ok", content_type="text/plain")
        return self._send(404, '{"error":"not found"}')

    def _post(self):
        path = self.path.split("?", 1)[0]
        raw = self._read_body().decode("utf-8", "replace")
        if path == "/_sandbox/reset" and self.command == "POST":
            self.server.state.reset()
            return self._send(200, '{"reset":true}')
        if path == "/_sandbox/mediaconnect" and self.command == "POST":
            return self._mediaconnect_control(raw)
        if path == "/_sandbox/mews" and self.command == "POST":
            return self._mews_control(raw)
        if path == MC_TOKEN and self.command == "POST":
            self._record(raw)
            return self._mediaconnect_token(raw)
        if path == MC_MESSAGE and self.command == "POST":
            self._record(raw)
            return self._mediaconnect_message(raw)
        if path == ONEBOX_TOKEN and self.command == "POST":
            self._record(raw)
            return self._onebox_token(raw)
        if path == ONEBOX_MESSAGE and self.command == "POST":
            self._record(raw)
            return self._onebox_message(raw)
        so = SO_MESSAGES.match(path)
        if so and self.command == "POST":
            self._record(raw)
            return self._superoffice_message(raw, path, int(so.group(1)))
        self._record(raw)
        if path.startswith("/hook/") and self.command in ("POST", "PUT", "PATCH"):
            return self._webhook(raw)
        if path == MEWS_ADD and self.command == "POST":
            return self._mews_add(raw)
        if path == MEWS_GET_ALL and self.command == "POST":
            return self._mews_get_all(raw)
        return self._send(404, '{"error":"no such endpoint"}')

    # --- the generic webhook -----------------------------------------------------
    def _webhook(self, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            return self._send(400, '{"error":"invalid json"}')
        directive = body.get("sandbox") if isinstance(body, dict) else None
        answer = None
        if isinstance(directive, dict):
            try:
                checked = parse_directive(directive)
            except _BadDirective as e:
                return self._send(400, _dumps({"error": "invalid sandbox directive: %s" % e}))
            key = self.headers.get("Idempotency-Key") or self.path
            answer = self._apply(checked, key)
        if answer is None:
            text = _dumps({"id": "wh-%d" % self.server.state.next_id(), "received": True})
            return self._send(200, text)
        status, text, headers = answer
        if text is None:
            text = _dumps({"error": "sandbox status %d" % status})
        return self._send(status, text, headers)

    # --- Mews Connector messages/add -------------------------------------------
    def _mews_error(self, status, message, headers=(), request_id=None):
        rid = request_id or str(uuid.uuid4())
        return self._send(status, _dumps({"Message": message, "RequestId": rid, "Details": None}),
                          [("Request-Id", rid)] + list(headers))

    def _mews_add(self, raw):
        rid = str(uuid.uuid4())
        try:
            body = json.loads(raw)
        except ValueError:
            return self._mews_error(400, "Invalid JSON.", request_id=rid)
        if not isinstance(body, dict):
            return self._mews_error(400, "The request body must be an object.", request_id=rid)
        for field in ("ClientToken", "AccessToken", "Client"):
            if not isinstance(body.get(field), str) or not body[field]:
                return self._mews_error(400, "Invalid %s." % field, request_id=rid)
        if body["AccessToken"] == "invalid":
            return self._mews_error(401, "Invalid AccessToken.", request_id=rid)
        messages = body.get("Messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= 1000:
            return self._mews_error(400, "Messages must hold 1 to 1000 items.", request_id=rid)
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                return self._mews_error(400, "Messages[%d] must be an object." % i, request_id=rid)
            if not isinstance(m.get("MessageThreadId"), str) or not UUID_RE.match(m["MessageThreadId"]):
                return self._mews_error(400, "Invalid Messages[%d].MessageThreadId." % i, request_id=rid)
            if not isinstance(m.get("Text"), str) or not m["Text"]:
                return self._mews_error(400, "Invalid Messages[%d].Text." % i, request_id=rid)
            if m.get("Identifier") is not None and not isinstance(m["Identifier"], str):
                return self._mews_error(400, "Invalid Messages[%d].Identifier." % i, request_id=rid)
        with self.server.state.lock:
            heavy_above = self.server.state.mews_heavy_above
            refused = [m["MessageThreadId"] for m in messages
                       if m["MessageThreadId"] in self.server.state.mews_refused_threads]
        if heavy_above is not None and len(messages) > heavy_above:
            return self._mews_error(408, "Request is too heavy; use smaller batches.", request_id=rid)
        if refused:
            return self._mews_error(403, "You can only add messages to message threads that you have created "
                                         "(%s)." % refused[0], request_id=rid)
        # Directives: every message's counter advances; the first that applies answers.
        answer = None
        omitted = set()
        late_ms = 0
        for index, m in enumerate(messages):
            text = m["Text"]
            if not text.startswith("sandbox:"):
                continue
            try:
                checked = parse_directive(json.loads(text[len("sandbox:"):]))
            except (ValueError, _BadDirective) as e:
                return self._mews_error(400, "Invalid sandbox directive: %s" % e, request_id=rid)
            key = "mews:" + (m.get("Identifier") if m.get("Identifier") is not None else text)
            # Mews is slow after doing the work: the message is stored, the answer late.
            delay_ms = checked.pop("delay_ms", 0)
            applied = self._apply(checked, key)
            if delay_ms and self.server.state.counts.get(key, 0) <= checked.get("times", 1 << 30):
                late_ms = max(late_ms, delay_ms)
            if applied == "omit":
                omitted.add(index)  # Mews "loses" it: neither stored nor answered
            elif answer is None and applied is not None:
                answer = applied
        if answer is not None and answer[0] != 200:
            status, text, headers = answer
            if text is not None:
                return self._send(status, text, [("Request-Id", rid)] + headers)
            return self._mews_error(status, "Sandbox status %d." % status, headers, request_id=rid)
        with self.server.state.lock:
            for index, m in enumerate(messages):
                if m.get("Identifier") in self.server.state.mews_omit:
                    self.server.state.mews_omit.discard(m["Identifier"])
                    omitted.add(index)
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        out = [{"Identifier": m.get("Identifier"),
                "Message": {"Id": str(uuid.uuid4()), "MessageThreadId": m["MessageThreadId"], "Text": m["Text"],
                            "Sender": "Application", "CreatedUtc": now}}
               for i, m in enumerate(messages) if i not in omitted]
        with self.server.state.lock:
            self.server.state.mews_messages.extend(o["Message"] for o in out)
            late = self.server.state.mews_late
            drop = False
            if late["requests"] > 0:
                late["requests"] -= 1
                late_ms = max(late_ms, late["delay_ms"])
                drop = bool(late.get("drop"))
        if drop:
            raise _Drop()  # stored, and the answer is lost: the connection closes
        if late_ms:
            time.sleep(late_ms / 1000)
        return self._send(200, _dumps({"Messages": out}), [("Request-Id", rid)])

    # --- Mediaconnect / ConnectID ------------------------------------------------
    def _mediaconnect_control(self, raw):
        """{"token_delay_ms": n, "expires_in": s, "revoke": true}: shape the token endpoint."""
        body = json.loads(raw or "{}")
        st = self.server.state
        with st.lock:
            for k in ("token_delay_ms", "expires_in"):
                if k in body:
                    st.mc_config[k] = int(body[k])
            if body.get("revoke"):
                st.tokens.clear()
            answer = _dumps({"token_requests": st.token_requests, "config": st.mc_config})
        return self._send(200, answer)

    def _mediaconnect_token(self, raw):
        st = self.server.state
        form = dict(urllib.parse.parse_qsl(raw))
        client_id = form.get("client_id")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id = urllib.parse.unquote(base64.b64decode(auth[6:]).decode().split(":", 1)[0])
            except (ValueError, UnicodeDecodeError):
                client_id = None
        with st.lock:
            st.token_requests += 1
            delay, expires_in = st.mc_config["token_delay_ms"], st.mc_config["expires_in"]
        if delay:
            time.sleep(delay / 1000)
        if form.get("grant_type") != "client_credentials":
            return self._send(400, _dumps({"error": "unsupported_grant_type"}))
        if not client_id or client_id == "bad":
            return self._send(401, _dumps({"error": "invalid_client", "error_description": "unknown client"}))
        token = "mc-%s" % uuid.uuid4().hex
        with st.lock:
            st.tokens[token] = time.time() + expires_in
        return self._send(200, _dumps({"access_token": token, "token_type": "bearer", "expires_in": expires_in,
                                       "scope": form.get("scope", "read")}))

    def _mediaconnect_message(self, raw):
        st = self.server.state
        auth = self.headers.get("Authorization", "")
        with st.lock:
            expiry = st.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if expiry is None or expiry < time.time():
            return self._send(401, _dumps({"error": "invalid_token"}))
        try:
            body = json.loads(raw)
        except ValueError:
            return self._send(400, _dumps({"error": "invalid json"}))
        content = body.get("messageContent") if isinstance(body, dict) else None
        try:
            fault = self._text_directive(content, "mediaconnect")
        except _BadDirective as e:
            return self._send(400, _dumps({"error": "invalid sandbox directive: %s" % e}))
        if fault is not None:
            status, text, headers = fault
            return self._send(status, text or _dumps({"error": "sandbox status %d" % status}), headers)
        if not isinstance(content, str) or not content or len(content) > 32000:
            return self._send(400, _dumps({"error": "messageContent is required (<= 32000 characters)"}))
        for field, limit in (("product", 12), ("caseType", 1), ("messageSubject", 40)):
            if body.get(field) is not None and (not isinstance(body[field], str) or len(body[field]) > limit):
                return self._send(400, _dumps({"error": "%s must be a string of at most %d" % (field, limit)}))
        n = st.next_id()
        now = int(time.time() * 1000)
        return self._send(200, _dumps({"messages": [
            {"id": n, "date": now, "direction": "IN", "messageSubject": body.get("messageSubject"),
             "messageContent": content},
            {"id": n, "date": now - 3600000, "direction": "OUT", "messageSubject": "earlier",
             "messageContent": "An earlier answer from customer service."}]}))

    # --- Onebox api/message --------------------------------------------------------
    def _onebox_error(self, status, message, headers=()):
        return self._send(status, _dumps({"_meta": {"status": "ERROR", "count": 1},
                                          "records": {"errorCode": status, "userMessage": message, "devMessage": None,
                                                      "more": None, "applicationCode": None}}), headers)

    def _onebox_token(self, raw):
        """A login API of its own shape: JSON username/password, the token under data."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("username"), str) or \
                not isinstance(body.get("password"), str):
            return self._send(400, _dumps({"message": "username and password are required (JSON)"}))
        if body["password"] == "bad":
            return self._send(401, _dumps({"message": "wrong password"}))
        st = self.server.state
        token = "ob-%s" % uuid.uuid4().hex
        with st.lock:
            st.token_requests += 1
            st.tokens[token] = time.time() + 3600
        return self._send(200, _dumps({"status": "OK", "data": {"token": token, "ttl": 3600}}))

    def _onebox_message(self, raw):
        """Bearer: "ob-static" always works, "ob-quota" gets the quota answer,
        tokens from /user/oauth/token work until revoked (then "Expired token")."""
        st = self.server.state
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if token == "ob-quota":
            return self._onebox_error(401, "time limit reached please try again tomorrow at 18:00 - 06:00")
        with st.lock:
            known = token in st.tokens and st.tokens[token] >= time.time()
        if token != "ob-static" and not known:
            return self._onebox_error(401, "Expired token")
        try:
            body = json.loads(raw)
        except ValueError:
            return self._onebox_error(400, "Invalid JSON")
        problem = onebox_body_problem(body)
        if problem:
            return self._onebox_error(400, problem)
        try:
            content = body.get("Content")
            fault = self._text_directive(content.get("Body") if isinstance(content, dict) else None, "onebox")
        except _BadDirective as e:
            return self._onebox_error(400, "invalid sandbox directive: %s" % e)
        if fault is not None:
            status, text, headers = fault
            if text is not None:
                return self._send(status, text, headers)
            return self._onebox_error(status, "sandbox status %d" % status, headers)
        n = st.next_id()
        return self._send(200, _dumps({"limit": "1", "offset": 0, "count": 1, "total": 1, "data": [
            {"Id": str(70000 + n), "ConnectionId": str(body.get("ConnectionId")), "Subject": body.get("Subject"),
             "MethodId": body.get("MethodId"), "Date": time.strftime("%Y-%m-%d %H:%M:%S")}]}))

    # --- SuperOffice ChatSession/{id}/Messages -----------------------------------------
    def _superoffice_message(self, raw, path, session):
        """Any Basic user but "wrong", SOTicket with an SO-AppToken, or Bearer; a
        tenant path starting /wrongtenant answers 421 Misdirected Request."""
        if path.startswith("/wrongtenant/"):
            return self._send(421, _dumps({"Error": "Misdirected Request", "ErrorType": "Tenant"}))
        auth = self.headers.get("Authorization", "")
        scheme = auth.split(" ", 1)[0].lower()
        ok = False
        if scheme == "basic":
            try:
                ok = base64.b64decode(auth[6:]).decode().split(":", 1)[0] not in ("", "wrong")
            except (ValueError, UnicodeDecodeError):
                ok = False
        elif scheme == "soticket":
            ok = bool(self.headers.get("SO-AppToken"))
        elif scheme == "bearer":
            ok = len(auth) > 7
        if not ok:
            return self._send(401, _dumps({"Error": "Unauthorized"}))
        try:
            body = json.loads(raw)
        except ValueError:
            return self._send(400, _dumps({"Error": "Invalid JSON"}))
        problem = superoffice_body_problem(body, session)
        if problem:
            return self._send(400, _dumps({"Error": problem}))
        try:
            fault = self._text_directive(body.get("Message"), "superoffice")
        except _BadDirective as e:
            return self._send(400, _dumps({"Error": "invalid sandbox directive: %s" % e}))
        if fault is not None:
            status, text, headers = fault
            return self._send(status, text or _dumps({"Error": "sandbox status %d" % status}), headers)
        answer = dict(body)
        answer["ChatMessageId"] = 500 + self.server.state.next_id()
        answer["ChatSessionId"] = session
        return self._send(200, _dumps(answer))

    def _mews_control(self, raw):
        body = json.loads(raw or "{}")
        st = self.server.state
        with st.lock:
            st.mews_get_all_faults.extend(body.get("get_all_faults", []))
            st.mews_omit.update(body.get("omit", []))
            st.mews_refused_threads.update(body.get("refused_threads", []))
            if "heavy_above" in body:
                st.mews_heavy_above = body["heavy_above"]
            if "late" in body:
                st.mews_late = {"requests": int(body["late"]["requests"]),
                                "delay_ms": int(body["late"].get("delay_ms", 0)),
                                "drop": bool(body["late"].get("drop"))}
            answer = _dumps({"messages": list(st.mews_messages)})
        return self._send(200, answer)

    # --- Mews Connector messages/getAll (cursor pagination, newest first) ---------
    def _mews_get_all(self, raw):
        rid = str(uuid.uuid4())
        with self.server.state.lock:
            fault = self.server.state.mews_get_all_faults.pop(0) if self.server.state.mews_get_all_faults else None
        if fault is not None:
            headers = [("Retry-After", str(fault["retry_after"]))] if "retry_after" in fault else []
            return self._mews_error(int(fault["status"]), "Sandbox fault %d." % int(fault["status"]), headers,
                                    request_id=rid)
        try:
            body = json.loads(raw)
        except ValueError:
            return self._mews_error(400, "Invalid JSON.", request_id=rid)
        if not isinstance(body, dict):
            return self._mews_error(400, "The request body must be an object.", request_id=rid)
        for field in ("ClientToken", "AccessToken", "Client"):
            if not isinstance(body.get(field), str) or not body[field]:
                return self._mews_error(400, "Invalid %s." % field, request_id=rid)
        threads = body.get("MessageThreadIds")
        limitation = body.get("Limitation")
        if not isinstance(threads, list) or not 1 <= len(threads) <= 1000 or not isinstance(limitation, dict):
            return self._mews_error(400, "MessageThreadIds (1..1000) and Limitation are required.", request_id=rid)
        count = limitation.get("Count")
        if not isinstance(count, int) or not 1 <= count <= 1000:
            return self._mews_error(400, "Invalid Limitation.Count.", request_id=rid)
        with self.server.state.lock:
            found = [m for m in reversed(self.server.state.mews_messages) if m["MessageThreadId"] in threads]
        cursor = limitation.get("Cursor")
        if cursor:
            ids = [m["Id"] for m in found]
            found = found[ids.index(cursor) + 1:] if cursor in ids else []
        page = found[:count]
        answer = {"Messages": [{"Id": m["Id"], "MessageThreadId": m["MessageThreadId"], "Text": m["Text"],
                                "CreatedUtc": m["CreatedUtc"], "Sender": {"Discriminator": m["Sender"]}}
                               for m in page],
                  "Cursor": page[-1]["Id"] if page else None}
        return self._send(200, _dumps(answer), [("Request-Id", rid)])


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # server_close() must not wait for idle keep-alive connections
    allow_reuse_address = True
    request_queue_size = 1024  # the worker opens many connections at once

    tls_context = None  # an ssl.SSLContext: serve HTTPS

    def handle_error(self, request, client_address):
        # Resets and timeouts from clients are normal here; stay quiet unless asked.
        if self.verbose:
            super().handle_error(request, client_address)

    def finish_request(self, request, client_address):
        # Runs in the connection's own thread: a slow or failing TLS handshake
        # (a client that rejects the certificate) holds up nobody else.
        if self.tls_context is None:
            return super().finish_request(request, client_address)
        try:
            request.settimeout(10)
            secure = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            if self.verbose:
                sys.stderr.write("sandbox: TLS handshake with %s failed: %s\n" % (client_address, e))
            return
        try:
            secure.settimeout(None)
            super().finish_request(secure, client_address)
        finally:
            secure.close()


class Sandbox:
    def __init__(self, host="127.0.0.1", port=0, verbose=False, tls_cert=None, tls_key=None):
        self.host = host
        self.server = _Server((host, port), Handler)
        self.server.state = _State()
        self.server.verbose = verbose
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(tls_cert, tls_key)
            self.server.tls_context = ctx
        self.port = self.server.server_address[1]
        self._thread = None

    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self.server.tls_context else "http", self.host, self.port)

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server.server_close()

    def requests(self):
        with self.server.state.lock:
            return list(self.server.state.records)

    def reset(self):
        self.server.state.reset()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def _write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)  # a reader never sees an empty file


def main():
    parser = argparse.ArgumentParser(description="outq provider sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM; chain allowed)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    sandbox = Sandbox(args.host, args.port, args.verbose, args.tls_cert, args.tls_key)

    def _stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.port_file:
        _write_port_file(args.port_file, sandbox.port)
    print("sandbox listening on %s" % sandbox.url, flush=True)
    try:
        sandbox.server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        sandbox.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
