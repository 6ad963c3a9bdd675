#include <doctest/doctest.h>

#include <algorithm>

#include "outq/queue/completion.hpp"

using namespace outq;
using queue::completion;

namespace {

std::vector<const completion*> view(const std::vector<completion>& b) {
    std::vector<const completion*> out;
    for (auto& c : b) out.push_back(&c);
    return out;
}

// The per-entry records of a completion call, read back from its arguments
// the way the script reads them.
struct record {
    std::string action, entry, release, lease, due;
    std::vector<std::vector<std::string>> lists;
};
std::vector<record> records(const std::vector<std::string>& a, std::size_t numkeys) {
    std::size_t i = 3 + numkeys;  // EVALSHA sha numkeys keys…
    i += 4;                       // group, ttl, results maxlen, dead maxlen
    const std::size_t n = std::stoul(a[i++]);
    ++i;  // the consumer
    std::vector<record> out;
    for (std::size_t e = 0; e < n; ++e) {
        record r{a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], {}};
        i += 5;
        for (int l = 0; l < 4; ++l) {
            const std::size_t count = std::stoul(a[i++]);
            r.lists.emplace_back(a.begin() + static_cast<long>(i), a.begin() + static_cast<long>(i + count));
            i += count;
        }
        out.push_back(std::move(r));
    }
    CHECK(i == a.size());
    return out;
}
bool has(const std::vector<std::string>& v, std::string_view s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("a batch of outcomes is one script call with every key declared") {
    queue::keys k("q");
    std::vector<completion> batch(4);
    batch[0].what = completion::kind::sent;
    batch[0].job_id = "s";
    batch[0].env.entry_id = "1-0";
    batch[0].provider_message_id = "pm-1";
    batch[0].meta_json = R"({"m":1})";
    batch[0].lease_scope = k.scope("webhook", "a");
    batch[0].lease_id = "me:1";
    batch[1].what = completion::kind::dead;
    batch[1].job_id = "d";
    batch[1].env.entry_id = "2-0";
    batch[1].env.job_json = R"({"original":true})";
    batch[1].dead_class = "permanent";
    batch[1].response_excerpt = "bad field x";
    batch[2].what = completion::kind::retry;
    batch[2].job_id = "r";
    batch[2].env.entry_id = "3-0";
    batch[2].env.job_json = "{}";
    batch[2].env.attempts = 1;
    batch[2].due_at = 5000;
    batch[3].what = completion::kind::duplicate;
    batch[3].job_id = "s";
    batch[3].env.entry_id = "4-0";
    batch[3].release_marker = false;  // the marker was not ours

    queue::write_settings ws;
    ws.result_ttl_seconds = 3600;
    const queue::script sc{queue::completion_script, "abc"};
    auto c = queue::completion_command(k, ws, sc, "me", view(batch));
    auto a = c.args();
    CHECK(a[0] == "EVALSHA");
    CHECK(a[1] == "abc");
    REQUIRE(a[2] == "20");  // 4 shared keys + 4 per entry
    CHECK(std::vector<std::string>(a.begin() + 3, a.begin() + 7) ==
          std::vector<std::string>{"outq:{q}:jobs", "outq:{q}:results", "outq:{q}:dead", "outq:{q}:delayed"});
    // per entry: result hash, marker, delayed item, lease set (the jobs key when there is no lease)
    CHECK(std::vector<std::string>(a.begin() + 7, a.begin() + 11) ==
          std::vector<std::string>{"outq:{q}:result:s", "outq:{q}:inflight:s", "outq:{q}:delayed:1-0",
                                   "outq:{q}:limit:webhook:a:leases"});
    CHECK(a[14] == "outq:{q}:jobs");
    for (std::size_t i = 3; i < 23; ++i) CHECK(a[i].find("{q}") != std::string::npos);
    CHECK(a[23] == "outq");
    CHECK(a[24] == "3600");
    CHECK(a[27] == "4");   // entries
    CHECK(a[28] == "me");  // the consumer, for the ownership check

    auto r = records(a, 20);
    REQUIRE(r.size() == 4);
    CHECK(r[0].action == "sent");
    CHECK(r[0].lease == "me:1");
    CHECK(r[0].release == "1");
    CHECK(has(r[0].lists[0], "pm-1"));
    CHECK(has(r[0].lists[0], R"({"m":1})"));
    CHECK(r[0].lists[1].empty());
    CHECK(r[0].lists[3] == std::vector<std::string>{"id", "s", "status", "sent", "completed_at", "0"});
    CHECK(r[1].action == "dead");
    CHECK(has(r[1].lists[1], R"({"original":true})"));
    CHECK(has(r[1].lists[1], "permanent"));
    CHECK(has(r[1].lists[1], "bad field x"));
    CHECK(has(r[1].lists[0], "dead"));
    CHECK(r[2].action == "delay");
    CHECK(r[2].due == "5000");
    CHECK(r[2].lists[0].empty());
    CHECK(has(r[2].lists[2], "attempts"));
    CHECK(r[2].lists[3].empty());  // no results event for a retry
    CHECK(r[3].action == "ack");
    CHECK(r[3].release == "0");
    for (int l = 0; l < 4; ++l) CHECK(r[3].lists[l].empty());
}

TEST_CASE("without a loaded script the body goes with EVAL") {
    queue::keys k("q");
    std::vector<completion> batch(1);
    batch[0].what = completion::kind::delay;
    batch[0].env.entry_id = "1-0";
    auto a = queue::completion_command(k, {}, queue::script{queue::completion_script, {}}, "me", view(batch)).args();
    CHECK(a[0] == "EVAL");
    CHECK(a[1] == queue::completion_script);
}

TEST_CASE("the completion script acknowledges before it writes, and writes only what it acknowledged") {
    const std::string body = queue::completion_script;
    const auto ack = body.find("redis.call('XACK'");
    REQUIRE(ack != std::string::npos);
    CHECK(body.find("if redis.call('XACK', KEYS[1], group, id) == 1 then") != std::string::npos);
    for (auto write : {"redis.call('HSET'", "redis.call('ZADD'", "redis.call('XADD'", "redis.call('DEL'"})
        CHECK(body.find(write) > ack);
}

TEST_CASE("only a sent outcome is written for an entry another consumer took over") {
    const std::string body = queue::completion_script;
    CHECK(body.find("if action ~= 'sent' and not ours(id) then") != std::string::npos);
    CHECK(body.find("row[2] == consumer") != std::string::npos);
    // A taken-over entry is not deleted from the stream either.
    CHECK(body.find("if written[#written] ~= 2 then acked[#acked + 1] = id end") != std::string::npos);
}

TEST_CASE("the completion reply says which entries were written now") {
    redis::value reply;
    reply.type = redis::value::kind::array;
    for (int v : {1, 0, 1}) {
        redis::value e;
        e.type = redis::value::kind::integer;
        e.integer = v;
        reply.elements.push_back(e);
    }
    std::vector<bool> written;
    REQUIRE(queue::parse_completion_reply(reply, 3, written));
    CHECK(written == std::vector<bool>{true, false, true});
    CHECK_FALSE(queue::parse_completion_reply(reply, 2, written));
    reply.elements[1].integer = 2;  // taken over by another consumer
    std::vector<bool> lost;
    REQUIRE(queue::parse_completion_reply(reply, 3, written, &lost));
    CHECK(written == std::vector<bool>{true, false, true});
    CHECK(lost == std::vector<bool>{false, true, false});
    reply.elements[1].integer = 3;
    CHECK_FALSE(queue::parse_completion_reply(reply, 3, written));
    redis::value err;
    err.type = redis::value::kind::error;
    CHECK_FALSE(queue::parse_completion_reply(err, 0, written));
}
