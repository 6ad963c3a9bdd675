#include <doctest/doctest.h>

#include "outq/job.hpp"
#include "outq/json_util.hpp"

using namespace outq;

TEST_CASE("raw members end at the right quote whatever the backslashes before it") {
    // "a\\" ends at its quote (an escaped backslash), "b\"c" does not.
    CHECK(json::raw_member(R"({"x":"a\\","message":1})", "message") == std::optional<std::string_view>("1"));
    CHECK(json::raw_member(R"({"x":"b\"c","message":2})", "message") == std::optional<std::string_view>("2"));
    CHECK(json::raw_member(R"({"x":"\\\"","message":3})", "message") == std::optional<std::string_view>("3"));
    CHECK(json::raw_member(R"({"message":"q\\\\"})", "message") == std::optional<std::string_view>(R"("q\\\\")"));
    CHECK_FALSE(json::raw_member(R"({"x":"unterminated\"})", "message"));
    CHECK_FALSE(json::raw_member(R"({"x":"\)", "message"));
    auto r = parse_job(R"({"provider":"p","account":"a","message":{"t":"\\\"}\\"},"meta":{"k":"\u00e9"}})", "1-0");
    REQUIRE(r.ok());
    CHECK(r.value->message_json == R"({"t":"\\\"}\\"})");
    CHECK(std::string((*r.value->message)["t"].GetString()) == "\\\"}\\");
}

TEST_CASE("quoting escapes each special character and keeps the runs between them whole") {
    std::string out = "x";
    json::append_quoted(out, "");
    CHECK(out == R"(x"")");
    out.clear();
    json::append_quoted(out, std::string("ab\"cd\\ef\ng\rh\ti\x01j\x1f") + "k\xC3\xA9");
    CHECK(out == "\"ab\\\"cd\\\\ef\\ng\\rh\\ti\\u0001j\\u001fk\xC3\xA9\"");
    out.clear();
    json::append_quoted(out, std::string("\0z", 2));
    CHECK(out == R"("\u0000z")");
    out.clear();
    json::append_quoted(out, "\"\"");
    CHECK(out == R"("\"\"")");
}
