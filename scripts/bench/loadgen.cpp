// The open-loop producer and the completion observer of
// scripts/bench/latency.py, in C++ so that the measuring costs the 2-core
// machine little next to what it measures.
//
//   loadgen produce --port P --rate R --count N --t0-us T --message FILE [--delay-ms D] --out FILE
//       outq jobs: job i is due at T + i/R (its schedule); whatever is due is
//       sent at once as pipelined XADDs, so a slow enqueue never slows the
//       schedule. Job i has the id "lat-<i>" and the message of FILE with
//       each %I% replaced by i; with D, "not_before" = its schedule + D.
//       Writes "lag p99 <us> worst <us>": how late the adds were acknowledged.
//   loadgen observe --port P --kind outq|bullmq --count N --out FILE
//       reads the completion events (outq: outq:{bench}:results, status sent;
//       BullMQ: bull:bench:events, event completed) until N jobs "lat-<i>"
//       completed or SIGTERM; prints "ready" once reading; writes
//       "<i> <unix us>" lines, the time each job's event was read.
//
// Bench tooling, not part of outq: loopback only, bounded by --count.
#include <hiredis/hiredis.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

volatile sig_atomic_t stopping = 0;
void on_signal(int) {
    stopping = 1;
}

long long now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void sleep_until_us(long long at) {
    const long long left = at - now_us();
    if (left <= 0) return;
    timespec t{static_cast<time_t>(left / 1000000), static_cast<long>((left % 1000000) * 1000)};
    nanosleep(&t, nullptr);
}

std::map<std::string, std::string> options(int argc, char** argv, int first) {
    std::map<std::string, std::string> o;
    for (int i = first; i + 1 < argc; i += 2) o[argv[i]] = argv[i + 1];
    return o;
}

redisContext* connect(int port) {
    redisContext* c = redisConnect("127.0.0.1", port);
    if (!c || c->err) {
        std::fprintf(stderr, "loadgen: cannot connect to redis on port %d\n", port);
        std::exit(1);
    }
    return c;
}

std::string replace_all(std::string s, std::string_view what, std::string_view with) {
    for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size()))
        s.replace(at, what.size(), with);
    return s;
}

int produce(const std::map<std::string, std::string>& o) {
    const int port = std::stoi(o.at("--port"));
    const double rate = std::stod(o.at("--rate"));
    const long long count = std::stoll(o.at("--count")), t0 = std::stoll(o.at("--t0-us"));
    const long long delay_ms = o.count("--delay-ms") ? std::stoll(o.at("--delay-ms")) : 0;
    std::ifstream in(o.at("--message"));
    std::stringstream text;
    text << in.rdbuf();
    const std::string message = text.str();
    const std::size_t hole = message.find("%I%");
    redisContext* c = connect(port);
    const auto schedule = [&](long long i) { return t0 + static_cast<long long>(static_cast<double>(i) * 1e6 / rate); };
    std::vector<long long> lags(static_cast<std::size_t>(count));
    std::string job;
    long long next = 0;
    while (next < count && !stopping) {
        const long long now = now_us();
        long long upto =
            now < t0 ? 0 : std::min(count, static_cast<long long>(static_cast<double>(now - t0) * rate / 1e6) + 1);
        if (upto <= next) {
            sleep_until_us(schedule(next));
            continue;
        }
        for (long long i = next; i < upto; ++i) {
            const std::string index = std::to_string(i);
            job = "{\"v\":1,\"id\":\"lat-" + index + "\",\"provider\":\"webhook\",\"account\":\"bench\"";
            if (delay_ms) job += ",\"not_before\":" + std::to_string((schedule(i) + 999) / 1000 + delay_ms);
            job += ",\"message\":";
            job += hole == std::string::npos ? message : replace_all(message, "%I%", index);
            job += "}";
            const char* argv[] = {"XADD", "outq:{bench}:jobs", "*", "job", job.c_str()};
            const size_t lens[] = {4, 17, 1, 3, job.size()};
            redisAppendCommandArgv(c, 5, argv, lens);
        }
        for (long long i = next; i < upto; ++i) {
            void* reply = nullptr;
            if (redisGetReply(c, &reply) != REDIS_OK) {
                std::fprintf(stderr, "loadgen: redis: %s\n", c->errstr);
                return 1;
            }
            freeReplyObject(reply);
        }
        const long long done = now_us();
        for (long long i = next; i < upto; ++i) lags[static_cast<std::size_t>(i)] = done - schedule(i);
        next = upto;
    }
    std::sort(lags.begin(), lags.end());
    const auto at = [&](double q) {
        return lags.empty() ? 0 : lags[std::min(lags.size() - 1, static_cast<std::size_t>(q * lags.size()))];
    };
    FILE* f = std::fopen(o.at("--out").c_str(), "w");
    std::fprintf(f, "lag p99 %lld worst %lld\n", at(0.99), lags.empty() ? 0 : lags.back());
    std::fclose(f);
    redisFree(c);
    return 0;
}

int observe(const std::map<std::string, std::string>& o) {
    const int port = std::stoi(o.at("--port"));
    const bool outq = o.at("--kind") == "outq";
    const long long count = std::stoll(o.at("--count"));
    const std::string key = outq ? "outq:{bench}:results" : "bull:bench:events";
    redisContext* c = connect(port);
    std::string last = "0-0";
    if (auto* r = static_cast<redisReply*>(redisCommand(c, "XREVRANGE %s + - COUNT 1", key.c_str()))) {
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) last = r->element[0]->element[0]->str;
        freeReplyObject(r);
    }
    std::vector<long long> seen(static_cast<std::size_t>(count), 0);
    long long distinct = 0;
    std::printf("ready\n");
    std::fflush(stdout);
    const std::string_view id_field = outq ? "id" : "jobId", kind_field = outq ? "status" : "event";
    const std::string_view wanted = outq ? "sent" : "completed";
    while (distinct < count && !stopping) {
        auto* r = static_cast<redisReply*>(
            redisCommand(c, "XREAD COUNT 10000 BLOCK 100 STREAMS %s %s", key.c_str(), last.c_str()));
        const long long at = now_us();
        if (!r) {
            std::fprintf(stderr, "loadgen: redis: %s\n", c->errstr);
            return 1;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            const redisReply* entries = r->element[0]->element[1];
            for (std::size_t e = 0; e < entries->elements; ++e) {
                const redisReply* entry = entries->element[e];
                last = entry->element[0]->str;
                const redisReply* fields = entry->element[1];
                std::string_view id, kind;
                for (std::size_t k = 0; k + 1 < fields->elements; k += 2) {
                    std::string_view name(fields->element[k]->str, fields->element[k]->len);
                    std::string_view value(fields->element[k + 1]->str, fields->element[k + 1]->len);
                    if (name == id_field)
                        id = value;
                    else if (name == kind_field)
                        kind = value;
                }
                if (kind != wanted || id.substr(0, 4) != "lat-") continue;
                const long long i = std::atoll(std::string(id.substr(4)).c_str());
                if (i < 0 || i >= count || seen[static_cast<std::size_t>(i)]) continue;
                seen[static_cast<std::size_t>(i)] = at;
                ++distinct;
            }
        }
        freeReplyObject(r);
    }
    FILE* f = std::fopen(o.at("--out").c_str(), "w");
    for (std::size_t i = 0; i < seen.size(); ++i)
        if (seen[i]) std::fprintf(f, "%zu %lld\n", i, seen[i]);
    std::fclose(f);
    redisFree(c);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (argc < 2) {
        std::fprintf(stderr, "usage: loadgen produce|observe --option value ...\n");
        return 2;
    }
    const std::string_view mode = argv[1];
    try {
        const auto o = options(argc, argv, 2);
        if (mode == "produce") return produce(o);
        if (mode == "observe") return observe(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "loadgen: %s (a missing or bad option)\n", e.what());
        return 2;
    }
    std::fprintf(stderr, "loadgen: unknown mode\n");
    return 2;
}
