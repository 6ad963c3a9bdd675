#include <doctest/doctest.h>

#include "fakes/redis_values.hpp"
#include "outq/queue/errors.hpp"

using namespace outq;
using namespace outq::test_values;

TEST_CASE("Redis error replies are sorted by what heals them") {
    using queue::error_kind;
    CHECK(queue::classify_error(error("LOADING Redis is loading the dataset in memory")) == error_kind::transient);
    CHECK(queue::classify_error(error("OOM command not allowed when used memory > 'maxmemory'.")) ==
          error_kind::transient);
    CHECK(queue::classify_error(error("READONLY You can't write against a read only replica.")) ==
          error_kind::transient);
    CHECK(queue::classify_error(error("TRYAGAIN Multiple keys request during rehashing of slot")) ==
          error_kind::transient);
    CHECK(queue::classify_error(error("MOVED 5718 127.0.0.1:7001")) == error_kind::redirect);
    CHECK(queue::classify_error(error("ASK 5718 127.0.0.1:7001")) == error_kind::redirect);
    CHECK(queue::classify_error(error("NOSCRIPT No matching script. Please use EVAL.")) == error_kind::noscript);
    CHECK(queue::classify_error(error("NOPERM this user has no permissions to run the 'xautoclaim' command")) ==
          error_kind::permanent);
    CHECK(queue::classify_error(error("WRONGTYPE Operation against a key holding the wrong kind of value")) ==
          error_kind::permanent);
    CHECK(queue::classify_error(error("ERR Error running script (call to f_1): @user_script:1: oops")) ==
          error_kind::permanent);
    // "OOMX" is not "OOM": the code is the first word.
    CHECK(queue::classify_error(error("OOMX something")) == error_kind::permanent);
    redis::value ok;
    ok.type = redis::value::kind::status;
    ok.str = "OK";
    CHECK(queue::classify_error(ok) == error_kind::none);
    CHECK(queue::error_code(error("NOPERM no")) == "NOPERM");
}
