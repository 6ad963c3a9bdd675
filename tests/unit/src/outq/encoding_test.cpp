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
