// The provider-message-id index: its key, the claim (SET NX GET) and the read (MGET), byte level.
#include "outq/queue/message_index.hpp"

#include <doctest/doctest.h>

#include "fakes/redis_values.hpp"
#include "outq/queue/completion.hpp"
#include "outq/queue_protocol.hpp"

using namespace outq;
using namespace outq::test_values;

TEST_CASE("message index: a key of the account's slot, claimed with SET NX GET and the results' TTL") {
    queue::keys k("q");
    const auto scope = k.scope("mews", "hotel-1");
    CHECK(queue::message_index_key(scope, "m-1") == "outq:{q@mews/hotel-1}:msg:m-1");
    CHECK(queue::claim_message_command(scope, "m-1", "job-7", 3600).args() ==
          std::vector<std::string>{"SET", "outq:{q@mews/hotel-1}:msg:m-1", "job-7", "NX", "GET", "EX", "3600"});
    queue::message_claim c;
    std::string owner;
    REQUIRE(queue::parse_claim_message(nil, "job-7", c, &owner));  // nil: claimed now
    CHECK(c == queue::message_claim::claimed);
    REQUIRE(queue::parse_claim_message(str("job-7"), "job-7", c, &owner));  // its own already
    CHECK(c == queue::message_claim::claimed);
    REQUIRE(queue::parse_claim_message(str("job-8"), "job-7", c, &owner));
    CHECK(c == queue::message_claim::taken);
    CHECK(owner == "job-8");
    CHECK_FALSE(queue::parse_claim_message(error("OOM"), "job-7", c));
}

TEST_CASE("message index: the owners of candidates, one MGET") {
    const std::string scope = "outq:{q@mews/h}:";
    CHECK(queue::read_message_owners_command(scope, {"a", "b"}).args() ==
          std::vector<std::string>{"MGET", "outq:{q@mews/h}:msg:a", "outq:{q@mews/h}:msg:b"});
    const auto reply = arr({nil, str("job-1")});
    std::vector<std::string> owners;
    REQUIRE(queue::parse_message_owners(reply, 2, owners));
    CHECK(owners == std::vector<std::string>{"", "job-1"});
    CHECK_FALSE(queue::parse_message_owners(reply, 3, owners));
    CHECK_FALSE(queue::parse_message_owners(str("x"), 1, owners));
}

TEST_CASE("message index: a sent outcome of a reconciling provider claims its message id before the results") {
    queue::keys k("q");
    std::vector<queue::completion> batch(2);
    batch[0].what = queue::completion::kind::sent;
    batch[0].job_id = "j1";
    batch[0].env.entry_id = "1-0";
    batch[0].provider_message_id = "m-1";
    batch[0].index_scope = k.scope("mews", "h");
    batch[1].what = queue::completion::kind::sent;  // a webhook job: no index
    batch[1].job_id = "j2";
    batch[1].env.entry_id = "2-0";
    batch[1].provider_message_id = "wh-1";
    std::vector<const queue::completion*> view{&batch[0], &batch[1]};
    queue::write_settings ws;
    ws.result_ttl_seconds = 60;
    std::vector<redis::command> cmds;
    const auto plan = queue::append_completion_commands(k, ws, queue::script{queue::completion_script, "abc"}, "me",
                                                        view, false, cmds);
    CHECK(plan.indexed == 1);
    CHECK(plan.script_command == 1);
    REQUIRE(cmds.size() == 2);
    CHECK(cmds[0].args() == std::vector<std::string>{"SET", "outq:{q@mews/h}:msg:m-1", "j1", "NX", "GET", "EX", "60"});
    CHECK(cmds[1].args()[0] == "EVALSHA");
}
