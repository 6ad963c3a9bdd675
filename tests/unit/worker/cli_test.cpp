#include <doctest/doctest.h>

#include "cli.hpp"

using namespace outq::cli;

namespace {

std::vector<std::size_t> lines_of(const std::vector<input_job>& jobs) {
    std::vector<std::size_t> out;
    for (auto& j : jobs) out.push_back(j.line);
    return out;
}

}  // namespace

TEST_CASE("enqueue input: JSON lines, each job numbered by its line, blank lines counted and skipped") {
    auto jobs = split_jobs("{\"id\":\"a\"}\n\n  \n{\"id\":\"b\"}\r\n{\"id\":\"c\"}");
    REQUIRE(jobs.size() == 3);
    CHECK(lines_of(jobs) == std::vector<std::size_t>{1, 4, 5});
    CHECK(jobs[0].json == "{\"id\":\"a\"}");
    CHECK(jobs[1].json == "{\"id\":\"b\"}");
    for (auto& j : jobs) CHECK(j.error.empty());
}

TEST_CASE("enqueue input: every line that is not JSON is reported, not only the first") {
    auto jobs = split_jobs("{\"id\":\"a\"}\n{nope\n\n{\"id\":\"b\"}\n[1,\n");
    REQUIRE(jobs.size() == 4);
    CHECK(lines_of(jobs) == std::vector<std::size_t>{1, 2, 4, 5});
    CHECK(jobs[0].error.empty());
    CHECK(jobs[1].error.find("invalid JSON: ") == 0);
    CHECK(jobs[1].json.empty());
    CHECK(jobs[2].error.empty());
    CHECK(jobs[3].error.find("invalid JSON: ") == 0);
}

TEST_CASE("enqueue input: an array's elements are numbered by the line where each starts") {
    auto jobs = split_jobs(
        "[\n  {\"id\": \"a\", \"s\": \"x,]}{\\\"\"},\n\n  {\"id\": \"b\",\n   \"m\": [1, {\"k\": 2}]},"
        "  {\"id\": \"c\"}, 42\n]\n");
    REQUIRE(jobs.size() == 4);
    CHECK(lines_of(jobs) == std::vector<std::size_t>{2, 4, 5, 5});
    CHECK(jobs[0].json == "{\"id\":\"a\",\"s\":\"x,]}{\\\"\"}");
    CHECK(jobs[3].json == "42");  // not a job: parse_job says so, at its line
    CHECK(split_jobs("[]").empty());
    CHECK(split_jobs("  \n ").empty());
    // One object, pretty-printed: the line where it starts.
    auto one = split_jobs("\n\n{\n \"id\": \"a\"\n}\n");
    REQUIRE(one.size() == 1);
    CHECK(one[0].line == 3);
    CHECK(one[0].json == "{\"id\":\"a\"}");
}

TEST_CASE("enqueue input: neither an object, an array nor JSON lines") {
    auto number = split_jobs("\n42\n");
    REQUIRE(number.size() == 1);
    CHECK(number[0].line == 2);
    CHECK(number[0].error == "input must be a JSON object, an array of objects, or JSON lines");
    auto broken = split_jobs("[\n {\"id\": \"a\"},\n {\"id\" \"b\"}\n]");
    REQUIRE(broken.size() == 1);
    CHECK(broken[0].line == 3);
    CHECK(broken[0].error.find("invalid JSON: ") == 0);
}
