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

TEST_CASE("the first ill-formed byte is found wherever it falls against the eight-byte ASCII steps") {
    for (std::size_t length = 0; length < 40; ++length) {
        const std::string ascii(length, 'a');
        CHECK(invalid_utf8_at(ascii) == std::string_view::npos);
        for (std::size_t at = 0; at < length; ++at) {
            std::string bad = ascii;
            bad[at] = '\xFF';
            CHECK(invalid_utf8_at(bad) == at);
            // A well-formed sequence across a step boundary, then an ill-formed one after it.
            std::string mixed = ascii.substr(0, at) + "\xC3\xA9" + ascii.substr(at) + "\x80";
            CHECK(invalid_utf8_at(mixed) == length + 2);
            CHECK(is_valid_utf8(mixed.substr(0, mixed.size() - 1)));
        }
    }
    CHECK(invalid_utf8_at("abcdefgh\xE2\x82") == 8);                          // truncated after a whole step
    CHECK(invalid_utf8_at("abcdefg\xE2\x82\xAC") == std::string_view::npos);  // € across the boundary
}
