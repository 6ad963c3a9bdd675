// The provider of scripts/bench/latency.py: an HTTP/1.1 keep-alive server on
// one thread (epoll) that answers every request at once with a fixed 200 and
// notes, in microseconds of the wall clock, when the request of each job
// reached it. A job is known by its Idempotency-Key header "lat-<index>"
// (outq's webhook provider and the BullMQ peer both send it); other requests
// are answered and not noted. On SIGTERM it writes "<index> <unix us>" lines,
// the first arrival of each job, to --out, and a last line "# requests R
// repeats P" (the requests of a job seen before), then exits 0.
//
//   g++ -O2 -std=c++17 -o stamp_server stamp_server.cpp
//   stamp_server --port P --jobs N --out FILE
//
// Bench tooling, not part of outq: loopback only, bounded by --jobs.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

volatile sig_atomic_t stopping = 0;
void on_signal(int) {
    stopping = 1;
}

const std::string answer_body =
    R"({"Messages":[{"Identifier":"bench-0","Message":{"Id":"0b1e52f4-6a43-4c1e-9d57-b2f1c3a4d5e6",)"
    R"("Text":"ok","State":"Delivered"}}]})";
const std::string answer =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(answer_body.size()) +
    "\r\n\r\n" + answer_body;

long long now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool iequals_prefix(std::string_view line, std::string_view name) {
    if (line.size() < name.size()) return false;
    for (size_t i = 0; i < name.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
    return true;
}

std::string_view trim(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
    return v;
}

struct stamps {
    std::vector<long long> first;
    long long requests = 0, repeats = 0;

    void note(std::string_view key, long long at) {
        ++requests;
        if (key.substr(0, 4) != "lat-") return;
        key.remove_prefix(4);
        size_t index = 0;
        for (char c : key) {
            if (c < '0' || c > '9') return;
            index = index * 10 + static_cast<size_t>(c - '0');
            if (index >= first.size()) return;
        }
        if (key.empty()) return;
        if (first[index])
            ++repeats;
        else
            first[index] = at;
    }
};

// Consumes the complete requests at the front of `in`; returns false on a
// request it cannot frame (the connection is then closed).
bool serve(std::string& in, std::string& out, stamps& s) {
    size_t at = 0;
    for (;;) {
        const size_t end = in.find("\r\n\r\n", at);
        if (end == std::string::npos) break;
        std::string_view head(in.data() + at, end - at);
        size_t length = 0;
        std::string_view key;
        size_t line_start = head.find("\r\n");
        while (line_start != std::string_view::npos) {
            line_start += 2;
            size_t line_end = head.find("\r\n", line_start);
            std::string_view line =
                head.substr(line_start, line_end == std::string_view::npos ? head.npos : line_end - line_start);
            if (iequals_prefix(line, "content-length:"))
                length = std::strtoul(std::string(trim(line.substr(15))).c_str(), nullptr, 10);
            else if (iequals_prefix(line, "idempotency-key:"))
                key = trim(line.substr(16));
            line_start = line_end;
        }
        if (length > (64u << 20)) return false;
        const size_t total = end + 4 - at + length;
        if (in.size() - at < total) break;
        s.note(key, now_us());
        out += answer;
        at += total;
    }
    in.erase(0, at);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    int port = 0;
    size_t jobs = 0;
    const char* out_path = nullptr;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view a = argv[i];
        if (a == "--port")
            port = std::atoi(argv[i + 1]);
        else if (a == "--jobs")
            jobs = std::strtoul(argv[i + 1], nullptr, 10);
        else if (a == "--out")
            out_path = argv[i + 1];
    }
    if (!port || !jobs || !out_path || jobs > 100'000'000) {
        std::fprintf(stderr, "usage: stamp_server --port P --jobs N --out FILE\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    stamps s;
    s.first.assign(jobs, 0);

    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    const int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) || listen(listener, 1024)) {
        std::perror("stamp_server: bind/listen");
        return 1;
    }
    const int ep = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listener;
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);

    struct connection {
        std::string in, out;
    };
    std::unordered_map<int, connection> connections;
    auto close_fd = [&](int fd) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        connections.erase(fd);
    };
    std::vector<epoll_event> events(256);
    char buffer[1 << 16];
    while (!stopping) {
        const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == listener) {
                for (;;) {
                    const int c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
                    if (c < 0) break;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    epoll_event cev{};
                    cev.events = EPOLLIN;
                    cev.data.fd = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                    connections[c];
                }
                continue;
            }
            auto found = connections.find(fd);
            if (found == connections.end()) continue;
            connection& conn = found->second;
            bool closed = false;
            for (;;) {
                const ssize_t got = recv(fd, buffer, sizeof buffer, 0);
                if (got > 0) {
                    conn.in.append(buffer, static_cast<size_t>(got));
                    if (got < static_cast<ssize_t>(sizeof buffer)) break;
                    continue;
                }
                if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed = true;
                break;
            }
            if (!closed && !serve(conn.in, conn.out, s)) closed = true;
            // Answers are small and the peer reads them: on a full socket
            // buffer wait (at most a second) until it drains.
            size_t sent = 0;
            while (!closed && sent < conn.out.size()) {
                const ssize_t w = send(fd, conn.out.data() + sent, conn.out.size() - sent, 0);
                if (w > 0)
                    sent += static_cast<size_t>(w);
                else if (w < 0 && errno == EINTR)
                    continue;
                else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    pollfd p{fd, POLLOUT, 0};
                    if (poll(&p, 1, 1000) != 1) closed = true;
                } else
                    closed = true;
            }
            conn.out.clear();
            if (closed) close_fd(fd);
        }
    }
    FILE* f = std::fopen(out_path, "w");
    if (!f) {
        std::perror("stamp_server: --out");
        return 1;
    }
    for (size_t i = 0; i < s.first.size(); ++i)
        if (s.first[i]) std::fprintf(f, "%zu %lld\n", i, s.first[i]);
    std::fprintf(f, "# requests %lld repeats %lld\n", s.requests, s.repeats);
    std::fclose(f);
    return 0;
}
