#include <doctest/doctest.h>

#include <algorithm>

#include "fakes/redis_values.hpp"
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
    std::string action, entry, release, due;
    std::vector<std::vector<std::string>> lists;
};
std::vector<record> records(const std::vector<std::string>& a, std::size_t numkeys) {
    std::size_t i = 3 + numkeys;  // EVALSHA sha numkeys keys…
    i += 4;                       // group, ttl, results maxlen, dead maxlen
    const std::size_t n = std::stoul(a[i++]);
    i += 2;  // the consumer, gated
    std::vector<record> out;
    for (std::size_t e = 0; e < n; ++e) {
        record r{a[i], a[i + 1], a[i + 2], a[i + 3], {}};
        i += 4;
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

std::vector<completion> mixed_batch(const queue::keys& k) {
    std::vector<completion> batch(5);
    batch[0].what = completion::kind::sent;
    batch[0].job_id = "s";
    batch[0].env.entry_id = "1-0";
    batch[0].env.attempts = 1;
    batch[0].provider_message_id = "pm-1";
    batch[0].meta_json = R"({"m":1})";
    batch[0].lease_scope = k.scope("webhook", "a");
    batch[0].lease_id = "me:1";
    batch[0].completed_at = 7;
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
    batch[3].existing_status = "sent";
    batch[3].release_marker = false;  // the marker was not ours
    batch[4].what = completion::kind::duplicate;
    batch[4].job_id = "c";
    batch[4].env.entry_id = "5-0";
    batch[4].existing_status = "cancelled";
    batch[4].release_marker = false;
    return batch;
}

}  // namespace

TEST_CASE("a batch of outcomes is one script call with every key declared, then the lease releases") {
    queue::keys k("q");
    const auto batch = mixed_batch(k);
    queue::write_settings ws;
    ws.result_ttl_seconds = 3600;
    const queue::script sc{queue::completion_script, "abc"};
    std::vector<redis::command> cmds;
    const auto plan = queue::append_completion_commands(k, ws, sc, "me", view(batch), false, cmds);
    REQUIRE(cmds.size() == 2);
    CHECK(plan.commands == 2);
    CHECK(plan.leases == 1);
    CHECK(plan.script_command == 0);
    // The lease is an account key (another slot): released after the outcomes, outside the script.
    CHECK(cmds[1].args() == std::vector<std::string>{"ZREM", "outq:{q@webhook/a}:leases", "me:1"});
    auto a = cmds[0].args();
    CHECK(a[0] == "EVALSHA");
    CHECK(a[1] == "abc");
    REQUIRE(a[2] == "14");  // 4 shared keys + 2 per entry
    CHECK(std::vector<std::string>(a.begin() + 3, a.begin() + 7) ==
          std::vector<std::string>{"outq:{q}:jobs", "outq:{q}:results", "outq:{q}:dead", "outq:{q}:delayed"});
    // per entry: its result value, its delayed item
    CHECK(std::vector<std::string>(a.begin() + 7, a.begin() + 9) ==
          std::vector<std::string>{"outq:{q}:result:s", "outq:{q}:delayed:1-0"});
    for (std::size_t i = 3; i < 17; ++i) CHECK(a[i].find("{q}") != std::string::npos);  // one slot
    CHECK(a[17] == "outq.v2");
    CHECK(a[18] == "3600");
    CHECK(a[21] == "5");   // entries
    CHECK(a[22] == "me");  // the consumer, for the ownership check
    CHECK(a[23] == "0");   // not gated

    auto r = records(a, 14);
    REQUIRE(r.size() == 5);
    CHECK(r[0].action == "sent");
    CHECK(r[0].release == "1");
    REQUIRE(r[0].lists[0].size() == 1);
    CHECK(
        r[0].lists[0][0] ==
        R"({"status":"sent","id":"s","entry":"1-0","attempts":1,"provider_message_id":"pm-1","enqueued_at":0,"completed_at":7,"meta":{"m":1}})");
    CHECK(r[0].lists[1].empty());
    CHECK(r[0].lists[3] == std::vector<std::string>{"id", "s", "status", "sent", "completed_at", "7"});
    CHECK(r[1].action == "dead");
    CHECK(has(r[1].lists[1], R"({"original":true})"));
    CHECK(has(r[1].lists[1], "permanent"));
    CHECK(has(r[1].lists[1], "bad field x"));
    REQUIRE(r[1].lists[0].size() == 1);
    CHECK(r[1].lists[0][0].rfind(R"({"status":"dead","id":"d",)", 0) == 0);
    CHECK(r[1].lists[0][0].back() != '}');  // the script appends the dead letter's id
    CHECK(r[1].lists[3] ==
          std::vector<std::string>{"id", "d", "status", "dead", "error_class", "permanent", "completed_at", "0"});
    CHECK(r[2].action == "delay");
    CHECK(r[2].due == "5000");
    CHECK(r[2].lists[0].empty());
    CHECK(has(r[2].lists[2], "attempts"));
    CHECK(has(r[2].lists[2], "origin"));  // the copy knows its enqueue's entry
    CHECK(has(r[2].lists[2], "3-0"));
    CHECK(r[2].lists[3].empty());  // no results event for a retry
    CHECK(r[3].action == "ack");
    CHECK(r[3].release == "0");
    for (int l = 0; l < 3; ++l) CHECK(r[3].lists[l].empty());
    // A duplicate copy: an event pointing at the result it met.
    CHECK(r[3].lists[3] == std::vector<std::string>{"id", "s", "status", "duplicate", "entry", "4-0", "existing",
                                                    "sent", "completed_at", "0"});
    // The copy of a cancelled job: acknowledged, no event (the cancel wrote one).
    CHECK(r[4].action == "ack");
    CHECK(r[4].lists[3].empty());
}

TEST_CASE("a batch written again after a failure is gated") {
    queue::keys k("q");
    const auto batch = mixed_batch(k);
    std::vector<redis::command> cmds;
    const auto plan = queue::append_completion_commands(k, {}, queue::script{queue::completion_script, "abc"}, "me",
                                                        view(batch), true, cmds);
    CHECK(plan.gated);
    CHECK(cmds[0].args()[23] == "1");
}

TEST_CASE("without a loaded script the body goes with EVAL") {
    queue::keys k("q");
    std::vector<completion> batch(1);
    batch[0].what = completion::kind::delay;
    batch[0].env.entry_id = "1-0";
    std::vector<redis::command> cmds;
    queue::append_completion_commands(k, {}, queue::script{queue::completion_script, {}}, "me", view(batch), false,
                                      cmds);
    auto a = cmds[0].args();
    CHECK(a[0] == "EVAL");
    CHECK(a[1] == queue::completion_script);
}

TEST_CASE("a sent entry is acknowledged only after its result is written") {
    const std::string body = queue::completion_script;
    const auto sent_set = body.find("redis.call('SET', KEYS[k], ARGV[r1], 'EX', ttl, 'GET')");
    const auto batch_ack = body.find("redis.call('XACK', KEYS[1], group, unpack(sent))");
    REQUIRE(sent_set != std::string::npos);
    REQUIRE(batch_ack != std::string::npos);
    CHECK(sent_set < batch_ack);
}

TEST_CASE("a sent entry whose job another delivery sent already adds no second event") {
    const std::string body = queue::completion_script;
    CHECK(body.find(R"(if not (old and string.sub(old, 1, 17) == '{"status":"sent",') then)") != std::string::npos);
    CHECK(std::string(R"({"status":"sent",)").size() == 17);
}

TEST_CASE("any other outcome is acknowledged before it is written, and written only when acknowledged") {
    const std::string body = queue::completion_script;
    const auto ack = body.find("local now_acked = redis.call('XACK', KEYS[1], group, id) == 1");
    REQUIRE(ack != std::string::npos);
    const auto written_branch = body.find("elseif now_acked then");
    REQUIRE(written_branch > ack);
    const auto branch_end = body.find("if #sent > 0 and not defer_sent then");
    REQUIRE(branch_end != std::string::npos);
    // A put-back of an entry another delivery of it sent writes no copy.
    const auto no_copy = body.find("if now_acked and action == 'delay' and sent_by(KEYS[k], id) then");
    CHECK(no_copy > ack);
    CHECK(no_copy < written_branch);
    for (auto write : {"redis.call('HSET'", "redis.call('ZADD'", "release(KEYS[k], id)"}) {
        CAPTURE(write);
        CHECK(body.find(write) > written_branch);
        CHECK(body.find(write) < branch_end);
    }
    CHECK(body.find("redis.call('XADD', KEYS[3]") > ack);
}

TEST_CASE("only a sent outcome is written for an entry another consumer took over") {
    const std::string body = queue::completion_script;
    CHECK(body.find("elseif action ~= 'sent' and not ours(id) then") != std::string::npos);
    CHECK(body.find("row[2] == consumer") != std::string::npos);
}

TEST_CASE("a marker is released only when it is this entry's") {
    const std::string body = queue::completion_script;
    CHECK(body.find(R"(local prefix = '{"status":"sending","entry":"' .. id .. '",')") != std::string::npos);
    CHECK(body.find("if v and string.sub(v, 1, #prefix) == prefix then redis.call('DEL', key) end") !=
          std::string::npos);
}

TEST_CASE("the completion replies say which entries were written now") {
    auto num = [](long long n) {
        redis::value e;
        e.type = redis::value::kind::integer;
        e.integer = n;
        return e;
    };
    queue::completion_plan plan;
    plan.script = {0, 1, 2};
    plan.commands = 2;
    plan.leases = 1;
    redis::value reply;
    reply.type = redis::value::kind::array;
    for (int v : {1, 0, 2}) reply.elements.push_back(num(v));
    std::vector<bool> written, lost;
    const redis::value* refused = nullptr;
    REQUIRE(queue::parse_completion_replies(plan, {reply, num(1)}, 3, written, lost, &refused));
    CHECK(refused == nullptr);
    CHECK(written == std::vector<bool>{true, false, false});
    CHECK(lost == std::vector<bool>{false, false, true});
    // A lease release that failed does not fail the batch: the lease expires by itself.
    redis::value err;
    err.type = redis::value::kind::error;
    err.str = "OOM command not allowed";
    REQUIRE(queue::parse_completion_replies(plan, {reply, err}, 3, written, lost, &refused));
    CHECK(refused == nullptr);
    // The script refused: the batch is written again.
    const std::vector<redis::value> refused_replies{err, num(1)};
    REQUIRE(queue::parse_completion_replies(plan, refused_replies, 3, written, lost, &refused));
    REQUIRE(refused != nullptr);
    CHECK(refused->str == "OOM command not allowed");
    CHECK_FALSE(queue::parse_completion_replies(plan, {reply}, 3, written, lost, &refused));
    reply.elements[1] = num(3);
    CHECK_FALSE(queue::parse_completion_replies(plan, {reply, num(1)}, 3, written, lost, &refused));
}

TEST_CASE("deferred acknowledgement: the script leaves sent entries pending; earlier ones ride after it") {
    queue::keys k("q");
    const auto batch = mixed_batch(k);
    std::vector<redis::command> cmds;
    const std::vector<std::string> earlier{"8-0", "9-0"};
    const auto plan = queue::append_completion_commands(k, {}, queue::script{queue::completion_script, "abc"}, "me",
                                                        view(batch), false, cmds, true, earlier);
    CHECK(plan.defer_sent);
    CHECK(cmds[0].args()[23] == "d");
    REQUIRE(plan.acks == 2);
    REQUIRE(plan.commands == 4);  // the script, XACK, XDEL, then the lease release
    CHECK(plan.acks_command == 1);
    CHECK(cmds[1].args() == std::vector<std::string>{"XACK", "outq:{q}:jobs", "outq.v2", "8-0", "9-0"});
    CHECK(cmds[2].args() == std::vector<std::string>{"XDEL", "outq:{q}:jobs", "8-0", "9-0"});
    CHECK(cmds[3].args()[0] == "ZREM");
    // Gated, nothing is deferred: the script acknowledges every entry itself.
    cmds.clear();
    const auto gated = queue::append_completion_commands(k, {}, queue::script{queue::completion_script, "abc"}, "me",
                                                         view(batch), true, cmds, true);
    CHECK_FALSE(gated.defer_sent);
    CHECK(cmds[0].args()[23] == "1");
    CHECK(gated.acks == 0);
    // The script acknowledges sent entries only when not deferred.
    const std::string body = queue::completion_script;
    CHECK(body.find("if #sent > 0 and not defer_sent then") != std::string::npos);
    CHECK(body.find("local defer_sent = ARGV[7] == 'd'") != std::string::npos);
}

TEST_CASE("acknowledging sent entries alone: XACK and XDEL, and what their replies may be") {
    queue::keys k("q");
    std::vector<redis::command> cmds;
    CHECK(queue::append_ack_commands(k, {}, cmds) == 0);
    CHECK(cmds.empty());
    REQUIRE(queue::append_ack_commands(k, {"1-0"}, cmds) == 2);
    const auto n = test_values::num;
    const auto err = test_values::error("LOADING");
    const redis::value* e = nullptr;
    CHECK(queue::ack_replies_ok({n(1), n(1)}, 0, 2, &e));
    CHECK(e == nullptr);
    std::vector<redis::value> failed{err, n(0)};
    CHECK(queue::ack_replies_ok(failed, 0, 2, &e));
    CHECK(e == &failed[0]);
    CHECK_FALSE(queue::ack_replies_ok({n(1)}, 0, 2, &e));  // one reply missing
    CHECK_FALSE(queue::ack_replies_ok({n(1), test_values::status("OK")}, 0, 2, &e));
}

TEST_CASE("an entry whose own sent result is met again is acknowledged with no event") {
    queue::keys k("q");
    std::vector<completion> batch(1);
    batch[0].what = completion::kind::duplicate;
    batch[0].job_id = "s";
    batch[0].existing_status = "sent";
    batch[0].own_entry = true;
    batch[0].env.entry_id = "1-0";
    std::vector<redis::command> cmds;
    queue::append_completion_commands(k, {}, queue::script{queue::completion_script, "abc"}, "me", view(batch), false,
                                      cmds);
    auto r = records(cmds[0].args(), 6);
    REQUIRE(r.size() == 1);
    CHECK(r[0].action == "ack");
    CHECK(r[0].lists[3].empty());
}

TEST_CASE("the dead letter of a stub (a job too large to read) takes its job from the entry in Redis") {
    queue::keys k("q");
    std::vector<completion> batch(1);
    batch[0].what = completion::kind::dead;
    batch[0].job_id = "big";
    batch[0].env.entry_id = "9-0";
    batch[0].env.job_json = R"({"id":"big","message":{"text":"aaaa)";  // its first bytes only
    batch[0].env.stub = queue::stub_sizes{52428800, 52428830};
    batch[0].dead_class = "validation";
    queue::write_settings ws;
    const queue::script sc{queue::completion_script, "abc"};
    std::vector<redis::command> cmds;
    queue::append_completion_commands(k, ws, sc, "me", view(batch), false, cmds);
    auto r = records(cmds[0].args(), 6);
    REQUIRE(r.size() == 1);
    CHECK(r[0].action == "dead_kept");
    const auto& fields = r[0].lists[1];
    const auto job = std::find(fields.begin(), fields.end(), "job");
    REQUIRE(job != fields.end());
    CHECK((job + 1)->empty());  // the script puts the entry's job there
    CHECK(std::string(queue::completion_script).find("action == 'dead_kept'") != std::string::npos);
}
