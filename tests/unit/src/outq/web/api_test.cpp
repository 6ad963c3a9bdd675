#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include "outq/web/api.hpp"

using namespace outq;
using namespace outq::web;

namespace {
queue::admin::dead_letter letter(std::string entry, std::string id, std::string error, std::string status = "") {
    queue::admin::dead_letter d;
    d.entry_id = std::move(entry);
    d.fields = {{"id", std::move(id)},
                {"provider", "webhook"},
                {"account", "a"},
                {"error_class", "permanent"},
                {"error", std::move(error)},
                {"http_status", std::move(status)},
                {"job", R"({"message":{"text":"<script>alert(1)</script>"}})"}};
    return d;
}
}  // namespace

TEST_CASE("query strings are decoded: %XX and + as a space") {
    auto p = parse_query("q=time%20out&provider=web+hook&empty=&flag&bad=%zz");
    CHECK(p["q"] == "time out");
    CHECK(p["provider"] == "web hook");
    CHECK(p["empty"].empty());
    CHECK(p.count("flag") == 1);
    CHECK(p["bad"] == "%zz");
}

TEST_CASE("a dead-letter query checks its values and matches every filter") {
    std::string error;
    auto q = read_dead_query(parse_query("status=4xx&q=timeout&limit=10"), error);
    REQUIRE(q);
    CHECK(q->limit == 10);
    CHECK(matches(*q, letter("1-0", "a", "request timeout", "408")));
    CHECK_FALSE(matches(*q, letter("1-0", "a", "request timeout", "500")));
    CHECK_FALSE(matches(*q, letter("1-0", "a", "refused", "408")));
    CHECK_FALSE(read_dead_query(parse_query("limit=0"), error));
    CHECK(error.find("limit") != std::string::npos);
    CHECK_FALSE(read_dead_query(parse_query("limit=501"), error));
    CHECK_FALSE(read_dead_query(parse_query("status=abc"), error));
    // A time range of failed_at.
    auto d = letter("1-0", "a", "x");
    d.fields.emplace_back("failed_at", "1764583200000");  // 2025-12-01T10:00:00Z
    auto range = read_dead_query(parse_query("since=2025-12-01T09:00:00Z&until=2025-12-01T11:00:00Z"), error);
    REQUIRE(range);
    CHECK(matches(*range, d));
    range = read_dead_query(parse_query("since=2025-12-01T10:30:00Z"), error);
    REQUIRE(range);
    CHECK_FALSE(matches(*range, d));
    CHECK_FALSE(read_dead_query(parse_query("since=yesterday"), error));
    CHECK(error.find("RFC 3339") != std::string::npos);
    // The free text reaches into the message.
    auto text = read_dead_query(parse_query("q=%3Cscript%3E"), error);
    REQUIRE(text);
    CHECK(matches(*text, letter("1-0", "a", "x")));
}

TEST_CASE("the JSON of a page and of a letter is JSON whatever the letters hold") {
    auto a = letter("2-0", "j\"2", "bad \xff byte");
    auto b = letter("1-0", "j1", "fine");
    dead_page page;
    page.letters = {&a, &b};
    page.scanned = 2;
    page.total = 7;
    page.more = true;
    rapidjson::Document d;
    const auto text = dead_page_json(page);
    d.Parse(text.c_str());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(d["letters"].Size() == 2);
    CHECK(std::string(d["letters"][0]["id"].GetString()) == "j\"2");
    CHECK(std::string(d["next_before"].GetString()) == "1-0");
    CHECK(d["total"].GetUint64() == 7);
    const auto one = dead_letter_json(a);
    d.Parse(one.c_str());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(std::string(d["fields"]["job"].GetString()).find("<script>") != std::string::npos);  // as text
}

TEST_CASE("the overview gives the summed counts and the oldest letter's age") {
    overview o;
    o.queue = "q";
    o.partitions = 3;
    o.stats.stream_length = 10;
    o.stats.pending = 4;
    o.stats.dead = 2;
    o.now = 10000;
    o.oldest_dead_at = 4000;
    rapidjson::Document d;
    const auto text = overview_json(o);
    d.Parse(text.c_str());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(d["waiting"].GetInt64() == 6);
    CHECK(d["partitions"].GetInt() == 3);
    CHECK(d["oldest_dead_age_ms"].GetInt64() == 6000);
    o.oldest_dead_at.reset();
    const auto none = overview_json(o);
    d.Parse(none.c_str());
    CHECK(d["oldest_dead_age_ms"].IsNull());
}

TEST_CASE("a path component keeps its +; a query value makes it a space") {
    CHECK(url_decode("a+b%2Bc") == "a+b+c");
    CHECK(url_decode("a+b", true) == "a b");
    CHECK(url_decode("%e9t%C3%A9") == "\xe9t\xc3\xa9");
}

TEST_CASE("the accounts list has each account with state, then the configured ones without") {
    queue::admin::scope_state paused;
    paused.provider_account = "webhook/a";
    paused.pause_ms = 1500;
    paused.pause_reason = "429 <b>";
    queue::circuit_record c;
    c.state = "open";
    c.opened_at = 1000;
    c.open_ms = 5000;
    c.failures = 5;
    paused.circuit = c;
    rapidjson::Document d;
    const auto text = accounts_json({paused}, {"webhook/a", "webhook/b"}, 2000);
    d.Parse(text.c_str());
    REQUIRE_FALSE(d.HasParseError());
    REQUIRE(d["accounts"].Size() == 2);
    CHECK(d["accounts"][0]["paused"].GetBool());
    CHECK(d["accounts"][0]["pause_remaining_ms"].GetInt64() == 1500);
    CHECK(std::string(d["accounts"][0]["circuit"]["state"].GetString()) == "open");
    CHECK(d["accounts"][0]["circuit"]["remaining_ms"].GetInt64() == 4000);
    CHECK(std::string(d["accounts"][1]["account"].GetString()) == "webhook/b");
    CHECK(d["accounts"][1]["circuit"].IsNull());
}

TEST_CASE("a job's result is given as the JSON it is, or null") {
    rapidjson::Document d;
    auto text = job_json("j1", 2, std::string(R"({"status":"sent","entry":"1-0"})"));
    d.Parse(text.c_str());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(std::string(d["result"]["status"].GetString()) == "sent");
    CHECK(d["partition"].GetInt() == 2);
    text = job_json("j1", 0, std::nullopt);
    d.Parse(text.c_str());
    CHECK(d["result"].IsNull());
    text = job_json("j1", 0, std::string("not json"));
    d.Parse(text.c_str());
    CHECK(std::string(d["result"].GetString()) == "not json");
}
