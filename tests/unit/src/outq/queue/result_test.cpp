#include <doctest/doctest.h>

#include "outq/queue/result.hpp"

using namespace outq;
using queue::completion;
using queue::result_state;

TEST_CASE("a marker names its entry and starts with the prefix the completion script compares") {
    CHECK(queue::sending_marker("17-3", 1000) == R"({"status":"sending","entry":"17-3","since":1000})");
    CHECK(queue::marker_prefix("17-3") == R"({"status":"sending","entry":"17-3",)");
    CHECK(queue::sending_marker("17-3", 1).rfind(queue::marker_prefix("17-3"), 0) == 0);
    CHECK(queue::sending_marker("17-31", 1).rfind(queue::marker_prefix("17-3"), 0) != 0);
}

TEST_CASE("an outcome is JSON with numbers as numbers, meta embedded, text escaped and made UTF-8") {
    completion c;
    c.what = completion::kind::sent;
    c.job_id = "order \"42\"";
    c.env.attempts = 2;
    c.env.enqueued_at = 10;
    c.completed_at = 20;
    c.http_status = 202;
    c.response_excerpt = "bad \xff byte\n";
    c.provider = "webhook";
    c.account = "a";
    c.meta_json = R"({"order":42})";
    c.env.replay_of = "5-0";
    CHECK(queue::outcome_json(c) ==
          "{\"status\":\"sent\",\"id\":\"order \\\"42\\\"\",\"attempts\":2,\"http_status\":202,"
          "\"response\":\"bad \xef\xbf\xbd byte\\n\",\"provider\":\"webhook\",\"account\":\"a\","
          "\"enqueued_at\":10,\"completed_at\":20,\"meta\":{\"order\":42},\"replay_of\":\"5-0\"}");
    c.what = completion::kind::dead;
    c.dead_class = "permanent";
    c.error = "HTTP 400";
    c.meta_json.clear();
    const auto dead = queue::outcome_json(c);
    CHECK(dead.rfind(R"({"status":"dead",)", 0) == 0);
    CHECK(dead.find(R"("error_class":"permanent","error":"HTTP 400")") != std::string::npos);
    CHECK(dead.back() == '"');  // open: the script appends ,"dead_entry":"<id>"}
    // A sent outcome names the entry that sent it (a later delivery of that
    // entry knows the result as its own); a dead one has its dead_entry.
    c.env.entry_id = "9-0";
    CHECK(queue::outcome_json(c).find("\"entry\"") == std::string::npos);
    c.what = completion::kind::sent;
    CHECK(queue::outcome_json(c).rfind("{\"status\":\"sent\",\"id\":\"order \\\"42\\\"\",\"entry\":\"9-0\",", 0) == 0);
    CHECK(queue::outcome_json(c).find("\"origin\"") == std::string::npos);  // no copy
    c.env.origin = "8-0";                                                   // a retry's copy: its enqueue too
    CHECK(queue::outcome_json(c).find("\"entry\":\"9-0\",\"origin\":\"8-0\",") != std::string::npos);
}

TEST_CASE("the job's trace context is kept in its outcome") {
    completion c;
    c.job_id = "t";
    c.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    CHECK(queue::outcome_json(c).find(R"(,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})") !=
          std::string::npos);
}

TEST_CASE("a cancelled result says who and why") {
    CHECK(queue::cancelled_json("j", "withdrawn", 7) ==
          R"({"status":"cancelled","id":"j","reason":"withdrawn","cancelled_at":7})");
    CHECK(queue::cancelled_json("j", "", 7) == R"({"status":"cancelled","id":"j","cancelled_at":7})");
}

TEST_CASE("a result value reads as a marker of an entry, an outcome, or unreadable") {
    auto m = queue::read_result_value(queue::sending_marker("3-0", 5));
    CHECK(m.what == result_state::kind::sending);
    CHECK(m.entry == "3-0");
    auto sent = queue::read_result_value(R"({"status":"sent","id":"x","attempts":1})");
    CHECK(sent.what == result_state::kind::final);
    CHECK(sent.status == "sent");
    CHECK(sent.entry.empty());
    CHECK(queue::read_result_value(R"({"status":"sent","id":"x","entry":"4-1","attempts":1})").entry == "4-1");
    auto by_copy = queue::read_result_value(R"({"status":"sent","id":"x","entry":"5-0","origin":"4-1"})");
    CHECK(by_copy.entry == "5-0");
    CHECK(by_copy.origin == "4-1");
    CHECK(queue::read_result_value(R"({"status":"cancelled"})").status == "cancelled");
    CHECK(queue::read_result_value("not json").what == result_state::kind::unreadable);
    CHECK(queue::read_result_value(R"({"status":"sending"})").what == result_state::kind::unreadable);
    CHECK(queue::read_result_value(R"({"id":"x"})").what == result_state::kind::unreadable);
}
