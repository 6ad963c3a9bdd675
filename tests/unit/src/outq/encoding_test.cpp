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

TEST_CASE("base64 decoding (RFC 4648 section 10 test vectors)") {
    for (auto [plain, encoded] : std::initializer_list<std::pair<const char*, const char*>>{{"", ""},
                                                                                            {"f", "Zg=="},
                                                                                            {"fo", "Zm8="},
                                                                                            {"foo", "Zm9v"},
                                                                                            {"foob", "Zm9vYg=="},
                                                                                            {"fooba", "Zm9vYmE="},
                                                                                            {"foobar", "Zm9vYmFy"}}) {
        CHECK(base64_decode(encoded) == std::optional<std::string>(plain));
        CHECK(base64_encode(plain) == encoded);
    }
    CHECK(base64_decode("Zg") == std::optional<std::string>("f"));  // padding left out
    CHECK(base64_decode("Zm8") == std::optional<std::string>("fo"));
    CHECK(base64_decode("+/+/") == std::optional<std::string>("\xfb\xff\xbf"));
    for (const char* bad : {"Z", "Zm9vY", "Zg=", "Z===", "Zm9v!", "Zm 9v", "Zm9v\n", "-_-_", "=Zg=", "Zg==Zg=="})
        CHECK_FALSE(base64_decode(bad));
}

TEST_CASE("UTF-8 well-formedness (RFC 3629)") {
    constexpr auto ok = std::string_view::npos;
    CHECK(invalid_utf8_at("") == ok);
    CHECK(invalid_utf8_at("plain ASCII") == ok);
    CHECK(invalid_utf8_at("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == ok);  // café € 😀
    CHECK(invalid_utf8_at("\xef\xbf\xbf\xf4\x8f\xbf\xbf") == ok);               // U+FFFF, U+10FFFF
    CHECK(invalid_utf8_at("\xed\x9f\xbf\xee\x80\x80") == ok);                   // U+D7FF, U+E000
    CHECK(invalid_utf8_at(std::string_view("a\0b", 3)) == ok);                  // NUL is a character
    CHECK(invalid_utf8_at("ab\xff") == 2);
    CHECK(invalid_utf8_at("\xfe") == 0);
    CHECK(invalid_utf8_at("\x80") == 0);              // a lone continuation byte
    CHECK(invalid_utf8_at("x\xc3") == 1);             // cut short
    CHECK(invalid_utf8_at("\xe2\x82") == 0);          // cut short
    CHECK(invalid_utf8_at("\xc3\x28") == 0);          // not a continuation byte
    CHECK(invalid_utf8_at("\xc0\xaf") == 0);          // overlong '/'
    CHECK(invalid_utf8_at("\xc1\xbf") == 0);          // overlong
    CHECK(invalid_utf8_at("\xe0\x80\xaf") == 0);      // overlong '/'
    CHECK(invalid_utf8_at("\xf0\x80\x80\xaf") == 0);  // overlong '/'
    CHECK(invalid_utf8_at("\xed\xa0\x80") == 0);      // U+D800, a surrogate (CESU-8)
    CHECK(invalid_utf8_at("\xed\xbf\xbf") == 0);      // U+DFFF
    CHECK(invalid_utf8_at("\xf4\x90\x80\x80") == 0);  // U+110000
    CHECK(invalid_utf8_at("\xf5\x80\x80\x80") == 0);
    CHECK(invalid_utf8_at("ok \xe2\x82\xac then \xe2\x28\xa1") == 12);
}
