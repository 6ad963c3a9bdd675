#include <doctest/doctest.h>

#include <string>

#include "outq/sha256.hpp"

using namespace outq;

namespace {

std::string hex(const sha256_digest& d, std::size_t bytes = 32) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes; ++i) {
        out += digits[d[i] >> 4];
        out += digits[d[i] & 15];
    }
    return out;
}

}  // namespace

TEST_CASE("SHA-256: the examples of FIPS 180-4 (NIST CSRC example values)") {
    CHECK(hex(sha256_of("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(hex(sha256_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(hex(sha256_of("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    // The 896-bit message of the SHA-2 examples (FIPS 180-2 appendix and NIST's test vectors).
    CHECK(hex(sha256_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop"
                        "qrsmnopqrstnopqrstu")) == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    // One million 'a' (FIPS 180-2 appendix B.3), fed in uneven pieces.
    sha256 h;
    const std::string piece(997, 'a');
    std::size_t fed = 0;
    while (fed + piece.size() <= 1000000) {
        h.update(piece);
        fed += piece.size();
    }
    h.update(std::string(1000000 - fed, 'a'));
    CHECK(hex(h.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("SHA-256: the padding at every block boundary (values from Python's hashlib)") {
    struct vector {
        std::size_t length;
        const char* digest;
    };
    for (const auto& v : std::initializer_list<vector>{
             {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
             {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
             {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
             {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
             {65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9"},
             {119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
             {120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98"},
             {127, "70156a14adbabf98cff3a71c7084b417abf057a8efd27329ca36b7202c87d81f"},
             {128, "24da1b81d0b16df6428eee73c69fcb2a93c76bc6df706f0c6670fe6bfe800464"},
         }) {
        CAPTURE(v.length);
        const std::string text(v.length, 'x');
        CHECK(hex(sha256_of(text)) == v.digest);
        // The same bytes one at a time.
        sha256 bytewise;
        for (char c : text) bytewise.update(std::string_view(&c, 1));
        CHECK(hex(bytewise.finish()) == v.digest);
    }
}

TEST_CASE("HMAC-SHA-256: the test cases of RFC 4231 section 4") {
    const std::string aa131(131, '\xaa');
    std::string key4;
    for (int i = 1; i <= 25; ++i) key4 += static_cast<char>(i);
    // Test case 1
    CHECK(hex(hmac_sha256(std::string(20, '\x0b'), {"Hi There"})) ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    // Test case 2: a key shorter than the output
    CHECK(hex(hmac_sha256("Jefe", {"what do ya want for nothing?"})) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // Test case 3
    CHECK(hex(hmac_sha256(std::string(20, '\xaa'), {std::string(50, '\xdd')})) ==
          "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    // Test case 4
    CHECK(hex(hmac_sha256(key4, {std::string(50, '\xcd')})) ==
          "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    // Test case 5: truncated to 128 bits
    CHECK(hex(hmac_sha256(std::string(20, '\x0c'), {"Test With Truncation"}), 16) ==
          "a3b6167473100ee06e0c796c2955552b");
    // Test case 6: a key longer than the block (hashed first)
    CHECK(hex(hmac_sha256(aa131, {"Test Using Larger Than Block-Size Key - Hash Key First"})) ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    // Test case 7: a long key and long data
    const char* data7 =
        "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be "
        "hashed before being used by the HMAC algorithm.";
    CHECK(hex(hmac_sha256(aa131, {data7})) == "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    // The parts are one message, however they are cut.
    CHECK(hmac_sha256(aa131, {"This is a test using a larger than block-size key", " and a larger than block-size",
                              " data. The key needs to be hashed before being used by the HMAC algorithm."}) ==
          hmac_sha256(aa131, {data7}));
    // A key of exactly one block is used as it is; one byte more is hashed (values from Python's hmac).
    CHECK(hex(hmac_sha256(std::string(64, 'k'), {"m"})) ==
          "3b7a8d453e76edb519238a515105a57508d0f169f480ebeee120a9e7803289fa");
    CHECK(hex(hmac_sha256(std::string(65, 'k'), {"m"})) ==
          "c2d7d4c2256ddb097409ec0c67e1d58fa1a007fc6932cac0d892a525d08af7cc");
}
