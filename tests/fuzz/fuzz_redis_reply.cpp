// libFuzzer target: bytes from a Redis server (or anything on its port)
// through the reply parser and every reader of what it builds: pub/sub
// messages, cluster maps and redirects, result values, stream replies.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "outq/queue/result.hpp"
#include "outq/queue_protocol.hpp"
#include "outq/redis_cluster.hpp"
#include "outq/reply_parser.hpp"

namespace {

void read_every_way(const outq::redis::value& v) {
    using namespace outq;
    (void)redis::classify_pubsub(v);
    (void)redis::cluster::parse_shards(v, "127.0.0.1");
    (void)redis::cluster::parse_slots(v, "127.0.0.1");
    (void)redis::cluster::read_redirect(v, "127.0.0.1");
    if (v.is_string()) (void)queue::read_result_value(v.str);
    std::vector<queue::stream_entry> entries;
    auto taken = v;  // the stream readers move the entries out of the reply
    if (queue::parse_xreadgroup(taken, entries))
        for (auto& e : entries) (void)queue::to_envelope(std::move(e));
    std::string cursor;
    entries.clear();
    taken = v;
    (void)queue::parse_xautoclaim(taken, cursor, entries);
    std::optional<unix_ms> next;
    (void)queue::parse_next_due(v, next);
    int moved = 0;
    (void)queue::parse_move_due(v, moved, next);
    std::vector<std::string> tokens;
    (void)queue::parse_due_tokens(v, tokens);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    outq::redis::reply_parser parser;
    // Fed in two pieces: a reply split across reads must parse as one.
    const std::size_t half = size / 2;
    parser.feed(reinterpret_cast<const char*>(data), half);
    parser.feed(reinterpret_cast<const char*>(data) + half, size - half);
    outq::redis::value v;
    for (int i = 0; i < 64 && parser.next(v) == outq::redis::reply_parser::status::ok; ++i) read_every_way(v);
    return 0;
}
