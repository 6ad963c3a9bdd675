#include <doctest/doctest.h>

#include "outq/redact.hpp"

using namespace outq;

TEST_CASE("every form of every secret is redacted, longest first, short values are not secrets") {
    secret_set s;
    s.add("Bearer sk-live-123456");
    s.add("p/ss\"word");
    s.add("abc");  // too short to be worth hiding
    std::string text = R"({"error":"bad header: Bearer sk-live-123456","token":"sk-live-123456","pw":"p\/ss\"word"})";
    s.redact(text);
    CHECK(text == R"({"error":"bad header: [redacted]","token":"[redacted]","pw":"[redacted]"})");
    std::string plain = "abc p/ss\"word abc";
    s.redact(plain);
    CHECK(plain == "abc [redacted] abc");
    std::string with_token = "token eyJhbGciOi was refused";
    s.redact(with_token, "eyJhbGciOi");
    CHECK(with_token == "token [redacted] was refused");
    CHECK(secret_set{}.empty());
}
