#include <doctest/doctest.h>

#include "outq/encoding.hpp"

using namespace outq;

TEST_CASE("base64") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK(base64_encode("user:pw") == "dXNlcjpwdw==");
}

TEST_CASE("well-formed UTF-8 is recognised and kept as it is") {
    for (std::string_view s : std::initializer_list<std::string_view>{
             "", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC 10", "\xF0\x9F\x93\xA8 mail", "\xEF\xBF\xBD",
             std::string_view("nul\0inside", 10), "tab\tand\nnewline\x1b[0m"}) {
        CHECK(is_valid_utf8(s));
        CHECK(to_valid_utf8(s) == s);
    }
}

TEST_CASE("every ill-formed UTF-8 sequence becomes one U+FFFD per maximal subpart") {
    const std::string r = "\xEF\xBF\xBD";
    CHECK_FALSE(is_valid_utf8("\xFF"));
    CHECK(to_valid_utf8("a\xFF"
                        "b") == "a" + r + "b");
    CHECK(to_valid_utf8("\x80\x80") == r + r);                  // lone continuation bytes
    CHECK(to_valid_utf8("\xC3") == r);                          // truncated at the end
    CHECK(to_valid_utf8("\xE2\x82") == r);                      // one subpart, one replacement
    CHECK(to_valid_utf8("\xE2\x82x") == r + "x");               // cut short by an ASCII byte
    CHECK(to_valid_utf8("\xC0\xAF") == r + r);                  // overlong '/'
    CHECK(to_valid_utf8("\xE0\x80\xAF") == r + r + r);          // overlong, 3 bytes
    CHECK(to_valid_utf8("\xED\xA0\x80") == r + r + r);          // a surrogate (U+D800)
    CHECK(to_valid_utf8("\xF4\x90\x80\x80") == r + r + r + r);  // above U+10FFFF
    CHECK(to_valid_utf8("\xF0\x9F\x93") == r);                  // truncated 4-byte sequence
    CHECK(to_valid_utf8("ok \xF0\x9F\x93\xA8 \xFE") == "ok \xF0\x9F\x93\xA8 " + r);
    CHECK(is_valid_utf8(to_valid_utf8("\xC3\x28\xA0\xA1\xE2\x28\xA1\xF0\x28\x8C\xBC")));
}
