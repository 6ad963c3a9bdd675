#pragma once
// Redis reply values for tests of reply interpretation: str("x"), num(1),
// arr({...}), error("NOPERM …"), status("OK"), nil.
#include <string>
#include <vector>

#include "outq/resp.hpp"

namespace outq::test_values {

inline redis::value str(std::string s) {
    redis::value v;
    v.type = redis::value::kind::string;
    v.str = std::move(s);
    return v;
}
inline redis::value status(std::string s) {
    auto v = str(std::move(s));
    v.type = redis::value::kind::status;
    return v;
}
inline redis::value error(std::string s) {
    auto v = str(std::move(s));
    v.type = redis::value::kind::error;
    return v;
}
inline redis::value num(long long n) {
    redis::value v;
    v.type = redis::value::kind::integer;
    v.integer = n;
    return v;
}
inline redis::value arr(std::vector<redis::value> e) {
    redis::value v;
    v.type = redis::value::kind::array;
    v.elements = std::move(e);
    return v;
}
inline const redis::value nil{};

}  // namespace outq::test_values
