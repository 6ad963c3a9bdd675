#include <doctest/doctest.h>

#include "outq/log.hpp"

using namespace outq;

TEST_CASE("a logfmt value is quoted when it must be, and a line stays one line") {
    CHECK(log::value("plain") == "plain");
    CHECK(log::value("") == "\"\"");
    CHECK(log::value("two words") == "\"two words\"");
    CHECK(log::value("a=b") == "\"a=b\"");
    CHECK(log::value("say \"hi\"\\") == "\"say \\\"hi\\\"\\\\\"");
    CHECK(log::value("line\nbreak\r\ttab") == "\"line\\nbreak\\r\\ttab\"");
    CHECK(log::value("esc\x1b[31m del\x7f") == "\"esc\\u001b[31m del\\u007f\"");
}

TEST_CASE("logfmt fields read back into the values that were written") {
    const std::string weird = "esc\x1b \"q\" back\\slash\nnl";
    const std::string fields = "id=" + log::value("order 42") + " count=3 error=" + log::value(weird) + " flag";
    auto kv = log::parse_fields(fields);
    REQUIRE(kv.size() == 4);
    CHECK(kv[0] == std::pair<std::string, std::string>{"id", "order 42"});
    CHECK(kv[1] == std::pair<std::string, std::string>{"count", "3"});
    CHECK(kv[2] == std::pair<std::string, std::string>{"error", weird});
    CHECK(kv[3] == std::pair<std::string, std::string>{"flag", ""});
    CHECK(log::parse_fields("").empty());
    CHECK(log::parse_fields("  a=1  ").size() == 1);
}

TEST_CASE("a line renders as logfmt or as one JSON object with the same members") {
    const std::string fields = "id=" + log::value("order 42") + " error=" + log::value("bad \xff byte\n");
    CHECK(log::render(log::format::logfmt, "2026-12-01T00:00:00.000Z", log::level::warn, "job failed", fields) ==
          "ts=2026-12-01T00:00:00.000Z level=warn msg=\"job failed\" id=\"order 42\" error=\"bad \xff byte\\n\"");
    CHECK(log::render(log::format::json, "2026-12-01T00:00:00.000Z", log::level::warn, "job failed", fields) ==
          "{\"ts\":\"2026-12-01T00:00:00.000Z\",\"level\":\"warn\",\"msg\":\"job failed\",\"id\":\"order 42\","
          "\"error\":\"bad \xef\xbf\xbd byte\\n\"}");
    // A field named like the line's own members does not shadow them.
    CHECK(log::render(log::format::json, "t", log::level::info, "m", "level=error msg=x") ==
          "{\"ts\":\"t\",\"level\":\"info\",\"msg\":\"m\"}");
    log::format f;
    CHECK(log::parse_format("json", f));
    CHECK(f == log::format::json);
    CHECK(log::parse_format("logfmt", f));
    CHECK(f == log::format::logfmt);
    CHECK_FALSE(log::parse_format("xml", f));
}
