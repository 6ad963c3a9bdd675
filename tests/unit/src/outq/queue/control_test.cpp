#include "outq/queue/control.hpp"

#include <doctest/doctest.h>

#include <chrono>

using namespace outq;
using namespace std::chrono_literals;
using strings = std::vector<std::string>;
using kind = queue::control_message::kind;

TEST_CASE("the control channel is named after the queue's partition tag") {
    CHECK(queue::control_channel(queue::keys("q")) == "outq:{q}:control");
    CHECK(queue::control_channel(queue::keys("orders")) == "outq:{orders}:control");
}

TEST_CASE("control messages are tab-separated, versioned, and read back as written") {
    CHECK(queue::encode(queue::pause_message("webhook", "a", 2000ms, "HTTP 429")) ==
          "v1\tpause\twebhook\ta\t2000\tHTTP 429");
    CHECK(queue::encode(queue::pause_message("webhook", "a", std::nullopt, "by hand")) ==
          "v1\tpause\twebhook\ta\t-1\tby hand");
    CHECK(queue::encode(queue::resume_message("webhook", "a")) == "v1\tresume\twebhook\ta");
    CHECK(queue::encode(queue::circuit_message("mews", "hotel-1", "open")) == "v1\tcircuit\tmews\thotel-1\topen");
    CHECK(queue::encode(queue::limit_message("mews", "hotel-1")) == "v1\tlimit\tmews\thotel-1");
    for (const auto& m : {queue::pause_message("webhook", "a", 1ms, "x"), queue::pause_message("p", "b", {}, ""),
                          queue::resume_message("p", "a/b"), queue::circuit_message("p", "a", "half_open"),
                          queue::limit_message("p", "a")}) {
        const auto back = queue::parse_control_message(queue::encode(m));
        REQUIRE(back);
        CHECK(*back == m);
    }
    const auto p = queue::parse_control_message("v1\tpause\twebhook\ta\t2000\tHTTP 429");
    REQUIRE(p);
    CHECK(p->what == kind::pause);
    CHECK(p->provider == "webhook");
    CHECK(p->account == "a");
    CHECK(p->pause_ms == 2000);
    CHECK(p->reason == "HTTP 429");
}

TEST_CASE("tabs, line breaks and backslashes in a field are escaped, never a field of their own") {
    const auto m = queue::pause_message("webhook", "acc\tount", 5ms, "line 1\nline 2\r\tC:\\dir");
    const auto text = queue::encode(m);
    CHECK(text == "v1\tpause\twebhook\tacc\\tount\t5\tline 1\\nline 2\\r\\tC:\\\\dir");
    CHECK(text.find('\n') == std::string::npos);
    const auto back = queue::parse_control_message(text);
    REQUIRE(back);
    CHECK(*back == m);
}

TEST_CASE("fields after the ones a version-1 reader knows are ignored: v1 may grow at the end") {
    const auto p = queue::parse_control_message("v1\tresume\twebhook\ta\tby=ops\tmore");
    REQUIRE(p);
    CHECK(*p == queue::resume_message("webhook", "a"));
    const auto q = queue::parse_control_message("v1\tpause\twebhook\ta\t-1\twhy\textra");
    REQUIRE(q);
    CHECK(q->reason == "why");
}

TEST_CASE("a message that cannot be read is nullopt, never a crash") {
    for (std::string_view bad : {
             "",
             "v1",
             "v1\tresume\twebhook",                               // no account
             "v2\tresume\twebhook\ta",                            // another version
             "V1\tresume\twebhook\ta",                            // versions are exact
             "v1\tunpause\twebhook\ta",                           // an unknown kind
             "v1\tresume\t\ta",                                   // an empty provider
             "v1\tresume\twebhook\t",                             // an empty account
             "v1\tpause\twebhook\ta\t2000",                       // no reason
             "v1\tpause\twebhook\ta\t\twhy",                      // no duration
             "v1\tpause\twebhook\ta\t-2\twhy",                    // below -1
             "v1\tpause\twebhook\ta\t12x\twhy",                   // not a number
             "v1\tpause\twebhook\ta\t+5\twhy",                    // not digits only
             "v1\tpause\twebhook\ta\t99999999999999999999\twhy",  // out of range
             "v1\tcircuit\twebhook\ta",                           // no state
             "v1\tcircuit\twebhook\ta\t",                         // an empty state
             "v1\tresume\twebhook\ta\\",                          // an escape cut short
             "v1\tresume\twebhook\ta\\x",                         // an unknown escape
             "v1\tresume\twebhook\ta\nv1",                        // a raw line break
             "pause webhook a 1000 why",                          // spaces are not separators
         }) {
        CAPTURE(bad);
        CHECK_FALSE(queue::parse_control_message(bad));
    }
    std::string binary("v1\tresume\twebhook\ta", 19);
    binary[5] = '\0';
    CHECK_FALSE(queue::parse_control_message(binary));
}

TEST_CASE("publishing is one PUBLISH on the queue's channel") {
    const queue::keys k("q");
    CHECK(queue::publish_command(k, queue::resume_message("webhook", "a")).args() ==
          strings{"PUBLISH", "outq:{q}:control", "v1\tresume\twebhook\ta"});
}

TEST_CASE("the worker's pause carries its channel and message as arguments, not keys of another slot") {
    const queue::keys k("q");
    const auto a = queue::announced_pause_command(k, "webhook", "a", 2000ms, "HTTP 429").args();
    REQUIRE(a.size() == 8);
    CHECK(a[0] == "EVAL");
    CHECK(a[1] == queue::pause_script);
    CHECK(a[2] == "1");  // one key: the pause
    CHECK(a[3] == "outq:{q@webhook/a}:pause");
    CHECK(a[4] == "2000");
    CHECK(a[5] == "HTTP 429");
    CHECK(a[6] == "outq:{q}:control");
    CHECK(a[7] == "v1\tpause\twebhook\ta\t2000\tHTTP 429");
    const auto open = queue::announced_pause_command(k, "webhook", "a", std::nullopt, "RateLimit").args();
    CHECK(open[4] == "0");
    CHECK(open[7] == "v1\tpause\twebhook\ta\t-1\tRateLimit");
}

TEST_CASE("a due message names a partition and a time, no account, and reads back as written") {
    const auto m = queue::due_message(2, 1700000000123);
    CHECK(queue::encode(m) == "v1\tdue\t2\t1700000000123");
    const auto back = queue::parse_control_message("v1\tdue\t2\t1700000000123");
    REQUIRE(back);
    CHECK(*back == m);
    CHECK(back->what == kind::due);
    CHECK(back->provider.empty());
    CHECK(queue::parse_control_message("v1\tdue\t0\t5\tlater fields"));  // v1 may grow at the end
    for (const char* bad : {"v1\tdue\t-1\t5", "v1\tdue\t0\t-5", "v1\tdue\tx\t5", "v1\tdue\t0\t", "v1\tdue\t0",
                            "v1\tdue\t\t5", "v1\tdue\t99999999999\t5", "v1\tdue\t1 \t5"})
        CHECK_MESSAGE(!queue::parse_control_message(bad), bad);
    queue::keys k("q");
    k.partition = 1;
    CHECK(queue::announce_due_command(k, 42).args() == strings{"PUBLISH", "outq:{q}:control", "v1\tdue\t1\t42"});
}
