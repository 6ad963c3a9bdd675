"""A real HTTP/1.1 server (optionally TLS) for the HTTP client's tests. It
counts accepted TCP connections and offers one path per behaviour:
/ok /slow?ms= /big?bytes= /chunked /close /malformed /reset /partial
/retry /never. Idle keep-alive connections are closed after `idle_close_s`."""
import http.server
import socket
import ssl
import struct
import threading
import time
import urllib.parse


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write (flushed after each request):
    # separate small writes meet Nagle + delayed ACK and cost 40 ms each.
    wbufsize = 65536
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def setup(self):
        self.timeout = self.server.idle_close_s
        super().setup()

    def _reply(self, status, body=b'{"ok":true}', headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        with self.server.lock:
            self.server.requests += 1
            self.server.user_agents.add(self.headers.get("User-Agent", ""))
        path = url.path
        if path == "/ok":
            self._reply(200, headers=[("Request-Id", "req-%d" % self.server.requests)])
        elif path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000)
            self._reply(200)
        elif path == "/big":
            self._reply(200, b"x" * int(q.get("bytes", "100")))
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"chun', b'ked":', b'true}'):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()  # really separate chunks on the wire
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/close":
            self.close_connection = True
            self._reply(200, headers=[("Connection", "close")])
        elif path == "/malformed":
            self.wfile.write(b"HTTP/1.1 two hundred OK\r\nContent-Length: x\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
        elif path == "/reset":
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif path == "/partial":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif path == "/retry":
            self._reply(429, b'{"error":"slow down"}', headers=[("Retry-After", "3")])
        elif path == "/never":
            time.sleep(float(q.get("s", "10")))
            self.close_connection = True
        else:
            self._reply(404, b'{"error":"no such path"}')

    do_PUT = do_POST


class HTTPTestServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cert=None, key=None, client_ca=None, idle_close_s=30):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.handshake_failures = 0
        self.user_agents = set()
        self.idle_close_s = idle_close_s
        self.tls = None
        if cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(cert, key)
            if client_ca:
                self.tls.verify_mode = ssl.CERT_REQUIRED
                self.tls.load_verify_locations(client_ca)
        self.port = self.server_address[1]
        self._thread = None

    def process_request(self, request, client_address):
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)

    def finish_request(self, request, client_address):
        if self.tls:
            try:
                request.settimeout(5)
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                with self.lock:
                    self.handshake_failures += 1
                return
        super().finish_request(request, client_address)

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()


class ConnectProxy:
    """A minimal forward proxy: CONNECT tunnels, and absolute-form requests for
    plain HTTP. Counts what it forwarded."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.tunnels = []
        self.forwarded = []
        self.authorizations = []
        self._stop = False

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self._stop = True
        self.sock.close()

    def _accept(self):
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        header, rest = head.split(b"\r\n\r\n", 1)
        lines = header.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        for line in lines[1:]:
            if line.lower().startswith("proxy-authorization:"):
                self.authorizations.append(line.split(":", 1)[1].strip())
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            self.tunnels.append(target)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
        else:
            url = urllib.parse.urlparse(target)
            self.forwarded.append(target)
            upstream = socket.create_connection((url.hostname, url.port or 80))
            origin_form = url.path + ("?" + url.query if url.query else "")
            upstream.sendall(("%s %s %s\r\n" % (method, origin_form, version)).encode()
                             + "\r\n".join(lines[1:]).encode() + b"\r\n\r\n" + rest)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)
