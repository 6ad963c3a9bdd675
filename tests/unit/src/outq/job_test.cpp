#include <doctest/doctest.h>

#include "outq/job.hpp"
#include "outq/json_util.hpp"

using namespace outq;

namespace {
std::string error_of(std::string_view json) {
    auto r = parse_job(json, "1700000000000-0");
    REQUIRE_FALSE(r.ok());
    return r.failure.error;
}
}  // namespace

TEST_CASE("a complete v1 job parses") {
    auto r = parse_job(R"({"v":1,"id":"order-42","provider":"webhook","account":"demo",
        "message":{"text":"hi"},"max_attempts":3,"not_before":1700000001000,
        "expires_at":"2026-11-22T10:00:00Z","meta":{"order":42}})",
                       "1700000000000-0");
    REQUIRE(r.ok());
    auto& j = *r.value;
    CHECK(j.id == "order-42");
    CHECK_FALSE(j.id_from_entry);
    CHECK(j.provider == "webhook");
    CHECK(j.account == "demo");
    CHECK(j.max_attempts == 3);
    CHECK(j.not_before == 1700000001000);
    CHECK(j.expires_at == parse_rfc3339("2026-11-22T10:00:00Z"));
    CHECK(j.meta_json == R"({"order":42})");
    REQUIRE(j.message);
    CHECK((*j.message)["text"].GetString() == std::string("hi"));
}

TEST_CASE("the message travels as the producer wrote it") {
    auto r = parse_job(R"({"provider":"p", "message" : { "b": [1, {"c":"}]\"x"}], "a" : 2 } ,"account":"a"})", "1-0");
    REQUIRE(r.ok());
    CHECK(r.value->message_json == R"({ "b": [1, {"c":"}]\"x"}], "a" : 2 })");
    CHECK(json::raw_member(R"({"a":1,"message":"x"})", "message") == std::optional<std::string_view>("\"x\""));
    CHECK(json::raw_member(R"({"a":true , "b" : null})", "b") == std::optional<std::string_view>("null"));
    CHECK_FALSE(json::raw_member(R"({"a":1})", "message"));
    auto escaped = parse_job(R"({"provider":"p","account":"a","\u006dessage":{"k":1}})", "1-0");
    REQUIRE(escaped.ok());
    CHECK(escaped.value->message_json == R"({"k":1})");
}

TEST_CASE("a job with a NUL character, or one cut short, is invalid JSON, not a crash") {
    const std::string with_nul("{\"provider\":\"p\",\"account\":\"a\",\"message\":{}}\0{", 44);
    auto r = parse_job(with_nul, "1-0");
    REQUIRE_FALSE(r.ok());
    CHECK(r.failure.error.find("invalid JSON") != std::string::npos);
    const std::string full = R"({"provider":"p","account":"a","message":{"k":"v"}})";
    for (std::size_t n = 0; n < full.size(); ++n)
        CHECK_FALSE(parse_job(std::string_view(full).substr(0, n), "1-0").ok());
    CHECK(parse_job(full, "1-0").ok());
}

TEST_CASE("the job's message stays valid after the job moves") {
    auto r = parse_job(R"({"provider":"p","account":"a","message":{"k":"v"}})", "5-0");
    REQUIRE(r.ok());
    job moved = std::move(*r.value);
    CHECK(moved.message->IsObject());
    CHECK((*moved.message)["k"].GetString() == std::string("v"));
}

TEST_CASE("a job without id takes the stream entry id") {
    auto r = parse_job(R"({"provider":"p","account":"a","message":{}})", "1700000000000-7");
    REQUIRE(r.ok());
    CHECK(r.value->id == "1700000000000-7");
    CHECK(r.value->id_from_entry);
    CHECK(r.value->meta_json.empty());
}

TEST_CASE("every malformed job names its field") {
    CHECK(error_of("not json").find("job: invalid JSON") == 0);
    CHECK(error_of("[1,2]") == "job: expected a JSON object");
    CHECK(error_of(R"({"v":2,"provider":"p","account":"a","message":{}})").find("job.v:") == 0);
    CHECK(error_of(R"({"id":"","provider":"p","account":"a","message":{}})").find("job.id:") == 0);
    CHECK(error_of(R"({"id":7,"provider":"p","account":"a","message":{}})").find("job.id:") == 0);
    CHECK(error_of(R"({"id":")" + std::string(201, 'x') + R"(","provider":"p","account":"a","message":{}})")
              .find("job.id:") == 0);
    CHECK(error_of(R"({"account":"a","message":{}})") == "job.provider: missing");
    CHECK(error_of(R"({"provider":"","account":"a","message":{}})") == "job.provider: must be a non-empty string");
    CHECK(error_of(R"({"provider":"p","message":{}})") == "job.account: missing");
    CHECK(error_of(R"({"provider":"p","account":5,"message":{}})") == "job.account: must be a non-empty string");
    CHECK(error_of(R"({"provider":"p","account":"a"})") == "job.message: missing");
    CHECK(error_of(R"({"provider":"p","account":"a","message":"hi"})") == "job.message: must be a JSON object");
    CHECK(error_of(R"({"provider":"p","account":"a","message":{},"max_attempts":0})").find("job.max_attempts:") == 0);
    CHECK(error_of(R"({"provider":"p","account":"a","message":{},"max_attempts":101})").find("job.max_attempts:") == 0);
    CHECK(error_of(R"({"provider":"p","account":"a","message":{},"max_attempts":"3"})").find("job.max_attempts:") == 0);
    CHECK(error_of(R"({"provider":"p","account":"a","message":{},"not_before":"tomorrow"})").find("job.not_before:") ==
          0);
    CHECK(error_of(R"({"provider":"p","account":"a","message":{},"expires_at":true})").find("job.expires_at:") == 0);
    CHECK(error_of(R"({"provider":"p","account":"a","message":{},"not_before":2000,"expires_at":1000})") ==
          "job.not_before: later than job.expires_at (the job could never be sent)");
    CHECK(parse_job(R"({"provider":"p","account":"a","message":{},"not_before":1000,"expires_at":1000})", "1-0").ok());
}

TEST_CASE("a job may carry a W3C traceparent; a malformed one is a validation error") {
    const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    auto r = parse_job(R"({"provider":"p","account":"a","message":{},"traceparent":")" + tp + R"("})", "1-0");
    REQUIRE(r.ok());
    CHECK(r.value->traceparent == tp);
    CHECK(parse_job(R"({"provider":"p","account":"a","message":{}})", "1-0").value->traceparent.empty());
    CHECK(is_traceparent(tp));
    CHECK(is_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later"));  // a later version
    for (std::string bad : {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",       // uppercase
                            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       // version ff
                            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",       // zero trace id
                            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",       // zero parent id
                            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",     // 00 has no more
                            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", "", "hello"}) {
        CAPTURE(bad);
        CHECK_FALSE(is_traceparent(bad));
    }
    CHECK(error_of(R"({"provider":"p","account":"a","message":{},"traceparent":"nope"})").find("job.traceparent:") ==
          0);
    CHECK(error_of(R"({"provider":"p","account":"a","message":{},"traceparent":7})").find("job.traceparent:") == 0);
}

TEST_CASE("a job rejected as invalid is filed under its own id whenever that can be read") {
    auto v2 = parse_job(R"({"v":2,"id":"order-1","provider":"webhook","account":"a","message":{}})", "9-0");
    REQUIRE_FALSE(v2.ok());
    CHECK(v2.failure.error.find("job.v:") == 0);
    CHECK(v2.failure.id == "order-1");
    CHECK(parse_job(R"({"v":"1","id":"order-2","provider":"webhook","account":"a","message":{}})", "9-0").failure.id ==
          "order-2");
    const std::string with_nul =
        std::string(R"({"id":"order-3","provider":"webhook","account":"a","message":{"text":"a)") + '\0' + R"("}})";
    CHECK(parse_job(with_nul, "9-0").failure.id == "order-3");
    CHECK(parse_job(R"({"id":"order-4","provider":"webhook", oops})", "9-0").failure.id == "order-4");
    // An id that cannot be used (too long, a control character, not a string): the entry id.
    CHECK(parse_job(R"({"v":2,"id":"bad\tid","provider":"w","account":"a","message":{}})", "9-0").failure.id == "9-0");
    CHECK(parse_job(R"({"v":2,"id":7,"provider":"w","account":"a","message":{}})", "9-0").failure.id == "9-0");
    CHECK(parse_job("{\"v\":2,\"id\":\"" + std::string(201, 'x') + "\"}", "9-0").failure.id == "9-0");
}

TEST_CASE("a failed job still reports what it could read for the dead letter") {
    auto r = parse_job(R"({"id":"x1","provider":"webhook","account":"demo","message":[]})", "9-0");
    REQUIRE_FALSE(r.ok());
    CHECK(r.failure.id == "x1");
    CHECK(r.failure.provider == "webhook");
    CHECK(r.failure.account == "demo");
}

TEST_CASE("null optional fields are ignored and unknown fields tolerated") {
    auto r = parse_job(R"({"provider":"p","account":"a","message":{},"max_attempts":null,"future_field":1})", "1-0");
    CHECK(r.ok());
}

TEST_CASE("stream entry ids carry their enqueue time") {
    CHECK(entry_id_millis("1700000000000-3") == 1700000000000);
    CHECK_FALSE(entry_id_millis("abc-1"));
}

TEST_CASE("a job id with a control character is refused: it would go out raw in a header") {
    // RFC 9110 5.5: a field value is visible characters, SP and HTAB; no C0
    // control and no DEL. The dead letter keeps the stream entry id.
    for (const char* escaped : {"\\u0000", "\\u0001", "\\u0007", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u001b",
                                "\\u001f", "\\u007f", "\x7f"}) {
        CAPTURE(std::string(escaped));
        const std::string text =
            R"({"id":"order)" + std::string(escaped) + R"(42","provider":"webhook","account":"a","message":{}})";
        auto r = parse_job(text, "1700000000000-0");
        REQUIRE_FALSE(r.ok());
        CHECK(r.failure.error.find("job.id: control character 0x") == 0);
        CHECK(r.failure.error.find("at byte 5") != std::string::npos);
        CHECK(r.failure.id == "1700000000000-0");
        CHECK(r.failure.provider == "webhook");
    }
    // A receiver drops a header value's outer spaces: " a" would be another id, "a".
    CHECK(error_of(R"({"id":" order-42","provider":"p","account":"a","message":{}})")
              .find("job.id: leading or trailing space") == 0);
    CHECK(error_of(R"({"id":"order-42 ","provider":"p","account":"a","message":{}})")
              .find("job.id: leading or trailing space") == 0);
    CHECK(error_of(R"({"id":" ","provider":"p","account":"a","message":{}})").find("job.id:") == 0);
    // Spaces inside, punctuation and UTF-8 are fine.
    for (const char* id :
         {"order 42", "a:b/c?d=e&f#g", "caf\xc3\xa9-\xf0\x9f\x98\x80", "\\u00e9t\\u00e9", "~!@$%^*()"}) {
        auto r = parse_job(R"({"id":")" + std::string(id) + R"(","provider":"p","account":"a","message":{}})", "1-0");
        CHECK(r.ok());
    }
    CHECK(error_of("{\"id\":\"order\xff\",\"provider\":\"p\",\"account\":\"a\",\"message\":{}}") ==
          "job.id: not valid UTF-8 (byte 5)");
}

TEST_CASE("a job whose strings are not UTF-8 is refused, naming the field") {
    auto error = [](const std::string& message) {
        return error_of(R"({"id":"j-1","provider":"webhook","account":"a","message":)" + message + "}");
    };
    CHECK(error("{\"text\":\"caf\xe9\"}").find("job.message.text: not valid UTF-8 (byte 3)") == 0);
    CHECK(error("{\"a\":{\"b\":[\"ok\",\"\xc0\xaf\"]}}").find("job.message.a.b[1]: not valid UTF-8 (byte 0)") == 0);
    CHECK(error("{\"ok\":1,\"k\xff\":1}") == "job.message: the name of member 1 is not valid UTF-8");
    // Surrogates encoded as UTF-8 (CESU-8), and a lone low surrogate escape,
    // which the JSON parser turns into those same bytes.
    CHECK(error("{\"t\":\"\xed\xa0\x80\"}").find("job.message.t: not valid UTF-8") == 0);
    CHECK(error(R"({"t":"x\udc00"})").find("job.message.t: not valid UTF-8 (byte 1)") == 0);
    // Outside the message too, and the dead letter still names the job.
    auto r = parse_job(
        "{\"id\":\"j-2\",\"provider\":\"webhook\",\"account\":\"a\",\"message\":{},\"meta\":{\"m\":\"\xfe\"}}", "1-0");
    REQUIRE_FALSE(r.ok());
    CHECK(r.failure.error.find("job.meta.m: not valid UTF-8") == 0);
    CHECK(r.failure.id == "j-2");
    auto bad_account =
        parse_job("{\"id\":\"j-3\",\"provider\":\"webhook\",\"account\":\"a\xff\",\"message\":{}}", "1-0");
    REQUIRE_FALSE(bad_account.ok());
    CHECK(bad_account.failure.error.find("job.account: not valid UTF-8") == 0);
    CHECK(bad_account.failure.account.empty());  // not copied into the dead letter
    // Valid UTF-8 of every length, escaped or not, passes.
    auto ok = parse_job(R"({"provider":"p","account":"a","message":{"t":"é € 😀 \u00e9 \ud83d\ude00 \u0000"}})", "1-0");
    CHECK(ok.ok());
}
