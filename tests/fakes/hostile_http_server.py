"""An HTTP/1.1 server on raw sockets that misbehaves the way real servers,
proxies and middleboxes sometimes do, for the HTTP client's tests. Loopback
only, one thread per connection, bounded: at most `max_connections` open at
once (more are closed at accept), each closed after `idle_s` without a
request, every one closed at stop().

It counts accepted connections and complete requests (head and body read),
and every answer's body names the request it answers:
    {"n": <request number on the server>, "conn": <connection number>, "i": <request number on that connection>}

The request path picks the behaviour (the query is ignored unless said):
    /ok                 200
    /continue           100 Continue, then the 200 in a separate write
    /early-hints?ms=N   103 Early Hints with Link headers, then the 200 N ms later (default 100)
    /reset-reused       a connection's first request: 200; a later one is read whole
                        (head and body), then the connection is reset (RST)
    /extra?size=N       200 (padded to exactly N bytes, head and body, when N is given),
                        then, in the same write, a complete second response nobody asked for
    /upgrade            101 Switching Protocols (never asked for), then bytes of another protocol
    /keep-alive?timeout=N   200 with "Keep-Alive: timeout=N, max=100" (as Apache httpd and Node.js
                        send), and the connection is closed after N s idle, as they do
"""
import json
import socket
import struct
import threading
import time
import urllib.parse

MAX_HEAD = 64 * 1024


def response(status, reason, body=b"", headers=()):
    head = "HTTP/1.1 %d %s\r\n" % (status, reason)
    for name, value in headers:
        head += "%s: %s\r\n" % (name, value)
    if status >= 200:
        head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return (head + "\r\n").encode("latin-1") + body


class HostileHTTPServer:
    def __init__(self, max_connections=16, idle_s=5.0):
        self.max_connections = max_connections
        self.idle_s = idle_s
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.paths = []
        self._open = set()
        self._threads = []
        self._stopping = False
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(32)
        self.port = self._listener.getsockname()[1]

    def start(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stopping = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress
        except OSError:
            pass
        self._listener.close()
        with self.lock:
            conns = list(self._open)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self):
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self.lock:
                if len(self._open) >= self.max_connections:
                    conn.close()
                    continue
                self.connections += 1
                number = self.connections
                self._open.add(conn)
            t = threading.Thread(target=self._serve, args=(conn, number), daemon=True)
            t.start()
            self._threads.append(t)

    def _read_request(self, conn, pending):
        """(path, rest of the buffer) after one whole request, or None at EOF or idle timeout."""
        while b"\r\n\r\n" not in pending:
            if len(pending) > MAX_HEAD:
                return None
            chunk = conn.recv(65536)
            if not chunk:
                return None
            pending += chunk
        head, pending = pending.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(pending) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            pending += chunk
        return lines[0].split(" ")[1], pending[length:]

    def _serve(self, conn, number):
        conn.settimeout(self.idle_s)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        on_connection = 0
        try:
            while not self._stopping:
                got = self._read_request(conn, pending)
                if got is None:
                    return
                target, pending = got
                on_connection += 1
                with self.lock:
                    self.requests += 1
                    n = self.requests
                    self.paths.append(target)
                url = urllib.parse.urlparse(target)
                query = dict(urllib.parse.parse_qsl(url.query))
                body = json.dumps({"n": n, "conn": number, "i": on_connection}).encode()
                if not self._answer(conn, url.path, query, body, on_connection):
                    return
        except OSError:
            return
        finally:
            with self.lock:
                self._open.discard(conn)
            conn.close()

    def _answer(self, conn, path, query, body, on_connection):
        """Writes the answer; False when the connection is to end."""
        ok = response(200, "OK", body)
        if path == "/ok":
            conn.sendall(ok)
        elif path == "/continue":
            conn.sendall(response(100, "Continue"))
            conn.sendall(ok)
        elif path == "/early-hints":
            conn.sendall(response(103, "Early Hints", headers=[("Link", "</style.css>; rel=preload; as=style"),
                                                               ("Link", "</app.js>; rel=preload; as=script")]))
            time.sleep(int(query.get("ms", "100")) / 1000)
            conn.sendall(ok)
        elif path == "/reset-reused":
            if on_connection == 1:
                conn.sendall(ok)
            else:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return False
        elif path == "/extra":
            size = int(query.get("size", "0"))
            if size:
                def padded(n):
                    return response(200, "OK", body[:-1] + b',"pad":"' + b"x" * n + b'"}')
                pad = max(0, size - len(padded(0)))
                while pad > 0 and len(padded(pad)) > size:  # Content-Length may have gained a digit
                    pad -= 1
                ok = padded(pad)
            conn.sendall(ok + response(200, "OK", b'{"unsolicited":true}'))
        elif path == "/keep-alive":
            timeout = float(query.get("timeout", "5"))
            conn.sendall(response(200, "OK", body, headers=[("Keep-Alive", "timeout=%g, max=100" % timeout)]))
            conn.settimeout(timeout)  # the next request must come before then, or the connection ends
        elif path == "/upgrade":
            conn.sendall(response(101, "Switching Protocols", headers=[("Upgrade", "websocket"),
                                                                       ("Connection", "Upgrade")]))
            conn.sendall(b"\x81\x05hello")  # a WebSocket text frame
        else:
            conn.sendall(response(404, "Not Found", b'{"error":"no such path"}'))
        return True
