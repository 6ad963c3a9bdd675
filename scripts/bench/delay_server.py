"""A fake provider for scripts/bench/send-n.sh where nginx cannot play the part:
an HTTP/1.1 keep-alive server on loopback that answers every POST to PATH with
200, DELAY ms after the request arrived (--slow: 1,000 requests in flight), and
with --mews-echo answers like Mews messages/add: one added message per message
of the request, with its Identifier (--mews-batch: batched requests). Otherwise
the answer is the fixed body of --body. With --hang, requests to PATH are read
and never answered: the connection stays open until the client gives up (the
hanging account of scripts/bench/isolation.py --noisy-neighbour). GET /status answers in nginx's
stub_status format, so the bench counts requests the same way for both.
Written on asyncio.Protocol (no stream objects) so that one process keeps
thousands of connections and ~5,000 answers per second cheaply.

    /usr/bin/python3 delay_server.py --port P [--delay-ms 200] [--path /api/connector/v1/messages/add]
                                     [--body FILE | --mews-echo | --hang]

Prints "listening" when ready; on SIGTERM prints "requests=N" and exits 0.
"""
import argparse
import asyncio
import json
import signal
import sys
import uuid


class Connection(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.transport = None
        self.buf = bytearray()
        self.need = None  # body bytes still expected by the current request
        self.kind = "unknown"

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.transport = None

    def data_received(self, data):
        self.buf += data
        while True:
            if self.need is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buf) > 65536:
                        self.transport.close()
                    return
                head = bytes(self.buf[:end]).split(b"\r\n")
                del self.buf[:end + 4]
                parts = head[0].split(b" ")
                self.kind = "post" if len(parts) == 3 and parts[0] == b"POST" and parts[1] == self.server.path else (
                    "status" if len(parts) == 3 and parts[0] == b"GET" and parts[1] == b"/status" else "unknown")
                self.need = 0
                for line in head[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        self.need = int(value.strip())
            if len(self.buf) < self.need:
                return
            body = bytes(self.buf[:self.need])
            del self.buf[:self.need]
            self.need = None
            self.server.requests += 1
            if self.kind == "post" and self.server.hang:
                continue  # read, counted, never answered
            if self.kind == "post":
                answer = self.server.answer_to(body)
            elif self.kind == "status":  # answered at once, then the connection is closed
                self.reply(self.server.status())
                self.transport.close()
                return
            else:
                answer = self.server.not_found
            if self.server.delay > 0:
                asyncio.get_running_loop().call_later(self.server.delay, self.reply, answer)
            else:
                self.reply(answer)

    def reply(self, answer):
        # Every answer of a connection is the same bytes, so the order in which
        # equal-deadline timers fire cannot mix up pipelined requests.
        if self.transport is not None:
            self.transport.write(answer)


class Server:
    def __init__(self, args):
        body = open(args.body, "rb").read() if args.body else b'{"ok":true}'
        self.path = args.path.encode()
        self.delay = args.delay_ms / 1000.0
        self.requests = 0
        self.answer = self.response(body)
        self.not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        self.mews_echo = args.mews_echo
        self.hang = args.hang

    @staticmethod
    def response(body):
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: keep-alive\r\n\r\n%s" % (len(body), body))

    def answer_to(self, body):
        if not self.mews_echo:
            return self.answer
        try:
            messages = json.loads(body)["Messages"]
            added = [{"Identifier": m.get("Identifier"),
                      "Message": {"Id": str(uuid.uuid4()), "MessageThreadId": m["MessageThreadId"],
                                  "Text": m["Text"], "Sender": "Application",
                                  "CreatedUtc": "2026-01-01T00:00:00.000Z"}} for m in messages]
        except (ValueError, KeyError, TypeError, AttributeError):
            return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n"
                    b'{"Message":"Invalid request."}')
        return self.response(json.dumps({"Messages": added}, separators=(",", ":")).encode())

    def status(self):
        # nginx stub_status: "server accepts handled requests" then the three numbers.
        body = b"Active connections: 0\nserver accepts handled requests\n 0 0 %d\n" % self.requests
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=200)
    parser.add_argument("--path", default="/api/connector/v1/messages/add")
    parser.add_argument("--body", help="file holding the answer body")
    parser.add_argument("--mews-echo", action="store_true", help="answer like Mews messages/add, per Identifier")
    parser.add_argument("--hang", action="store_true", help="never answer requests to PATH (GET /status still answers)")
    args = parser.parse_args()
    server = Server(args)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: Connection(server), "127.0.0.1", args.port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("listening", flush=True)
    await stop.wait()
    listener.close()
    print("requests=%d" % server.requests, file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
