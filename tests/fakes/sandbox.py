"""The provider sandbox: a real local HTTP/1.1 server that the worker sends to
in scripts/run.sh and the tests. It records every request and can be told, per
message, to answer with an error, a Retry-After, slowly, or not at all.

    POST /hook/<anything>   the generic webhook provider
        body: the job's message; an optional object field "sandbox" is a directive:
          status (int), times (how many of the first requests with this key get it;
          absent = always), delay_ms, drop (close without answering), retry_after,
          body (response body). Requests are counted per Idempotency-Key header.
        default answer: 200 {"id":"wh-<n>","received":true}
    POST /api/connector/v1/messages/add   Mews Connector (validated; Text "sandbox:{...}" = directive)
    GET  /_sandbox/requests   recorded requests (JSON array)
    POST /_sandbox/reset      clear records and counters
    GET  /_sandbox/health

Run: python3 tests/fakes/sandbox.py --host 127.0.0.1 --port 0 [--port-file F]
"""
import argparse
import http.server
import json
import re
import signal
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.records = []
        self.counts = {}
        self.counter = 0

    def reset(self):
        with self.lock:
            self.records.clear()
            self.counts.clear()
            self.counter = 0

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]

    def next_id(self):
        with self.lock:
            self.counter += 1
            return self.counter


class _Drop(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write; small separate writes meet Nagle +
    # delayed ACK and cost 40 ms each.
    wbufsize = 65536
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("sandbox: " + fmt % args + "\n")

    def _send(self, status, body, headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body):
        rec = {"at_ms": int(time.time() * 1000), "method": self.command, "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        with self.server.state.lock:
            self.server.state.records.append(rec)

    def _apply(self, directive, key, default):
        """Applies a sandbox directive; returns (status, body, headers) or raises _Drop."""
        if not isinstance(directive, dict):
            return default
        n = self.server.state.count(key)
        times = directive.get("times")
        if times is not None and n > int(times):
            return default
        if directive.get("delay_ms"):
            time.sleep(int(directive["delay_ms"]) / 1000)
        if directive.get("drop"):
            raise _Drop()
        if "status" not in directive:
            return default
        status = int(directive["status"])
        headers = []
        if directive.get("retry_after") is not None:
            headers.append(("Retry-After", str(directive["retry_after"])))
        body = directive.get("body", json.dumps({"error": "sandbox status %d" % status}))
        return status, body, headers

    def do_GET(self):
        if self.path == "/_sandbox/requests":
            with self.server.state.lock:
                data = json.dumps(self.server.state.records)
            return self._send(200, data)
        if self.path == "/_sandbox/health":
            return self._send(200, "ok")
        return self._send(404, '{"error":"not found"}')

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        if self.path == "/_sandbox/reset":
            self.server.state.reset()
            return self._send(200, '{"reset":true}')
        self._record(raw)
        try:
            if self.path.startswith("/hook/"):
                return self._webhook(raw)
            if self.path == "/api/connector/v1/messages/add":
                return self._mews_add(raw)
            return self._send(404, '{"error":"no such endpoint"}')
        except _Drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _webhook(self, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            return self._send(400, '{"error":"invalid json"}')
        key = self.headers.get("Idempotency-Key") or self.path
        default = (200, None, [])
        status, text, headers = self._apply(body.get("sandbox") if isinstance(body, dict) else None, key, default)
        if text is None:
            text = json.dumps({"id": "wh-%d" % self.server.state.next_id(), "received": True})
        return self._send(status, text, headers)

    def _mews_error(self, status, message, headers=()):
        rid = str(uuid.uuid4())
        return self._send(status, json.dumps({"Message": message, "RequestId": rid, "Details": None}),
                          [("Request-Id", rid)] + list(headers))

    def _mews_add(self, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            return self._mews_error(400, "Invalid JSON.")
        for field in ("ClientToken", "AccessToken", "Client"):
            if not isinstance(body.get(field), str) or not body[field]:
                return self._mews_error(400, "Invalid %s." % field)
        if body["AccessToken"] == "invalid":
            return self._mews_error(401, "Invalid AccessToken.")
        messages = body.get("Messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= 1000:
            return self._mews_error(400, "Messages must hold 1 to 1000 items.")
        out = []
        for m in messages:
            if not isinstance(m, dict) or not UUID_RE.match(str(m.get("MessageThreadId", ""))):
                return self._mews_error(400, "Invalid MessageThreadId.")
            text = m.get("Text")
            if not isinstance(text, str) or not text:
                return self._mews_error(400, "Invalid Text.")
            if text.startswith("sandbox:"):
                try:
                    directive = json.loads(text[len("sandbox:"):])
                except ValueError:
                    directive = None
                status, answer, headers = self._apply(directive, "mews:" + str(m.get("Identifier")),
                                                      (200, None, []))
                if status != 200:
                    return self._mews_error(status, answer or "Sandbox error.", headers)
            out.append({"Identifier": m.get("Identifier"),
                        "Message": {"Id": str(uuid.uuid4()), "MessageThreadId": m["MessageThreadId"], "Text": text,
                                    "Sender": "Application",
                                    "CreatedUtc": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
                                    .replace("+00:00", "Z")}})
        return self._send(200, json.dumps({"Messages": out}), [("Request-Id", str(uuid.uuid4()))])


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the worker opens many connections at once


class Sandbox:
    def __init__(self, host="127.0.0.1", port=0, verbose=False):
        self.server = _Server((host, port), Handler)
        self.server.state = _State()
        self.server.verbose = verbose
        self.port = self.server.server_address[1]
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def requests(self):
        with self.server.state.lock:
            return list(self.server.state.records)

    def reset(self):
        self.server.state.reset()


def main():
    parser = argparse.ArgumentParser(description="outq provider sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    sandbox = Sandbox(args.host, args.port, args.verbose)
    if args.port_file:
        with open(args.port_file, "w") as f:
            f.write(str(sandbox.port))
    print("sandbox listening on %s:%d" % (args.host, sandbox.port), flush=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        sandbox.server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        sandbox.server.server_close()


if __name__ == "__main__":
    main()
