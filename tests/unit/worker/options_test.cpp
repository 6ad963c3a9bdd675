#include <doctest/doctest.h>

#include "options.hpp"

using namespace outq::cli;
using action = invocation::action;
using words = std::vector<std::string>;

namespace {

invocation parse(const words& w) {
    return parse_command_line(w);
}

std::string error_of(const words& w) {
    auto inv = parse(w);
    CHECK(inv.what == action::usage_error);
    return inv.error;
}

}  // namespace

TEST_CASE("a command line is read against the command's declared options") {
    auto inv = parse({"dead", "replay", "--provider", "webhook", "--dry-run", "--class=expired", "--since",
                      "2026-11-22T10:00:00Z", "--queue", "orders"});
    REQUIRE(inv.what == action::run);
    REQUIRE(inv.command);
    CHECK(inv.command->name == "dead replay");
    CHECK(inv.positional.empty());
    CHECK(inv.options.string("provider") == "webhook");
    CHECK(inv.options.flag("dry-run"));
    CHECK_FALSE(inv.options.flag("all"));
    CHECK(inv.options.string("class") == "expired");
    CHECK(inv.options.time("since") == 1795341600000);
    CHECK_FALSE(inv.options.time("until"));
    CHECK(inv.options.string("queue") == "orders");
    CHECK_FALSE(inv.json);
    // Global options before the command, arguments anywhere.
    auto p = parse({"--json", "--redis", "redis://h:1/0", "pause", "webhook", "--for", "1h30m", "demo"});
    REQUIRE(p.what == action::run);
    CHECK(p.command->name == "pause");
    CHECK(p.positional == words{"webhook", "demo"});
    CHECK(p.json);
    CHECK(p.options.duration("for") == std::chrono::milliseconds(5400000));
    CHECK(p.options.string("reason") == "paused by an operator");  // the default
    CHECK_FALSE(p.options.given("reason"));
    CHECK(p.options.given("for"));
    // -- ends the options: an id that starts with dashes.
    auto r = parse({"result", "--", "--odd-id"});
    REQUIRE(r.what == action::run);
    CHECK(r.positional == words{"--odd-id"});
    CHECK(parse({"enqueue", "-"}).positional == words{"-"});
}

TEST_CASE("an unknown option is an error naming the closest declared one") {
    CHECK(error_of({"dead", "replay", "--provider", "webhook", "--dryrun", "--all"}) ==
          "unknown option --dryrun; did you mean --dry-run?");
    CHECK(error_of({"dead", "replay", "--acount", "other", "--dry-run"}) ==
          "unknown option --acount; did you mean --account?");
    CHECK(error_of({"dead", "list", "--clas", "auth"}) == "unknown option --clas; did you mean --class?");
    CHECK(error_of({"dead", "list", "--limt", "5"}) == "unknown option --limt; did you mean --limit?");
    CHECK(error_of({"stats", "--jsn"}) == "unknown option --jsn; did you mean --json?");
    CHECK(error_of({"dead", "replay", "-dry-run"}) == "unknown option -dry-run; did you mean --dry-run?");
    CHECK(error_of({"stats", "--banana"}) == "unknown option --banana");
    CHECK(error_of({"stats", "-x"}) == "unknown option -x (an argument that starts with '-' goes after --)");
    // Another command's option is not this one's.
    CHECK(error_of({"stats", "--limit", "5"}) == "unknown option --limit (an option of dead list, list)");
    CHECK(error_of({"result", "x", "--provider", "p"}) ==
          "unknown option --provider (an option of dead list, dead replay, dead purge, list)");
    CHECK(error_of({"--limit", "5", "dead", "list"}) ==
          "unknown option --limit (a command's options go after the command)");
    auto inv = parse({"dead", "replay", "--dryrun"});
    REQUIRE(inv.command);
    CHECK(inv.hint() == "run 'outq dead replay --help' for its arguments and options");
}

TEST_CASE("a flag takes no value and a value option never takes a following option") {
    CHECK(error_of({"dead", "replay", "--dry-run=yes", "--all"}) ==
          "--dry-run is a flag and takes no value (got 'yes')");
    CHECK(error_of({"dead", "replay", "--class", "--all"}) ==
          "--class needs a value (CLASS), got the option --all (write --class=VALUE for a value that starts with --)");
    CHECK(error_of({"dead", "list", "--limit"}) == "--limit needs a value (N)");
    CHECK(error_of({"--config"}) == "--config needs a value (FILE)");
    auto inv = parse({"pause", "p", "a", "--reason=--odd reason"});
    REQUIRE(inv.what == action::run);
    CHECK(inv.options.string("reason") == "--odd reason");
    auto dash = parse({"pause", "p", "a", "--reason", "-"});
    REQUIRE(dash.what == action::run);
    CHECK(dash.options.string("reason") == "-");
    CHECK(error_of({"stats", "--json", "--json"}) == "--json is given more than once");
    CHECK(error_of({"dead", "list", "--provider", "a", "--provider=b"}) == "--provider is given more than once");
}

TEST_CASE("values are checked by type") {
    CHECK(error_of({"dead", "list", "--limit", "ten"}) == "--limit: expected a whole number of at least 1, got 'ten'");
    CHECK(error_of({"dead", "list", "--limit", "0"}) == "--limit: expected a whole number of at least 1, got '0'");
    CHECK(error_of({"dead", "list", "--limit", "5x"}) == "--limit: expected a whole number of at least 1, got '5x'");
    CHECK(parse({"dead", "list"}).options.integer("limit") == 100);
    CHECK(parse({"dead", "list", "--limit", "7"}).options.integer("limit") == 7);
    CHECK(error_of({"pause", "p", "a", "--for", "soon"}) ==
          "--for: expected a duration such as 90s, 10m, 1h30m or 2d, got 'soon'");
    CHECK(error_of({"pause", "p", "a", "--for", "0s"}) == "--for: must be more than 0, got '0s'");
    for (auto [text, ms] : {std::pair{"90s", 90000}, std::pair{"10m", 600000}, std::pair{"1h30m", 5400000},
                            std::pair{"2d", 172800000}, std::pair{"45", 45000}}) {
        CAPTURE(text);
        CHECK(parse({"pause", "p", "a", "--for", text}).options.duration("for") == std::chrono::milliseconds(ms));
    }
    CHECK(error_of({"dead", "list", "--since", "yesterday"}) ==
          "--since: expected an RFC 3339 time (2026-11-22T10:00:00Z) or unix milliseconds, got 'yesterday'");
    CHECK(parse({"dead", "list", "--until", "1700000000000"}).options.time("until") == 1700000000000);
    CHECK(error_of({"dead", "list", "--class", "expird"}) ==
          "--class: 'expird' is not one of validation, permanent, auth, attempts_exhausted, expired; did you mean "
          "'expired'?");
}

TEST_CASE("arguments are counted per command") {
    CHECK(error_of({"result"}) == "result needs JOB_ID");
    CHECK(error_of({"result", "a", "b"}) == "result takes JOB_ID only, got 'b'");
    CHECK(error_of({"stats", "extra"}) == "stats takes no arguments, got 'extra'");
    CHECK(error_of({"pause", "webhook"}) == "pause needs PROVIDER ACCOUNT");
    CHECK(error_of({"dead", "show"}) == "dead show needs ID");
    CHECK(parse({"dead", "replay"}).what == action::run);  // the command itself asks for an ID, a filter or --all
}

TEST_CASE("commands: unknown ones name the closest, dead needs a subcommand") {
    CHECK(error_of({"stat"}) == "unknown command 'stat'; did you mean 'stats'?");
    CHECK(error_of({"dead", "lst"}) == "unknown command 'dead lst'; did you mean 'dead list'?");
    CHECK(error_of({"frobnicate"}) == "unknown command 'frobnicate'");
    CHECK(error_of({"dead"}) == "dead needs list, show, replay, delete or purge");
    CHECK(error_of({}) == "missing command");
    // An unknown command's arguments are not complained about.
    CHECK(error_of({"stat", "--limit", "3"}) == "unknown command 'stat'; did you mean 'stats'?");
}

TEST_CASE("help and version work anywhere") {
    for (auto& w : {words{"-h"}, words{"--help"}, words{"help"}}) {
        auto inv = parse(w);
        CHECK(inv.what == action::help);
        CHECK_FALSE(inv.command);
        CHECK(inv.group.empty());
    }
    for (auto& w : {words{"dead", "replay", "--help"}, words{"dead", "replay", "-h"}, words{"help", "dead", "replay"},
                    words{"dead", "replay", "--dryrun", "--help"}}) {
        auto inv = parse(w);
        REQUIRE(inv.what == action::help);
        REQUIRE(inv.command);
        CHECK(inv.command->name == "dead replay");
    }
    CHECK(parse({"dead", "--help"}).group == "dead");
    CHECK(parse({"help", "dead"}).group == "dead");
    CHECK(error_of({"help", "nope"}) == "unknown command 'nope'");
    CHECK(parse({"--version"}).what == action::version);
    CHECK(parse({"stats", "--version"}).what == action::version);
    auto v = parse({"version", "--json"});
    REQUIRE(v.what == action::run);
    CHECK(v.command->name == "version");
    CHECK(v.json);
    // -h as the value of an option is that value.
    auto reason = parse({"pause", "p", "a", "--reason", "-h"});
    REQUIRE(reason.what == action::run);
    CHECK(reason.options.string("reason") == "-h");
}

TEST_CASE("every command's help shows its options, their defaults and examples") {
    for (auto& c : commands()) {
        CAPTURE(c.name);
        const auto help = command_help(c);
        CHECK(help.find("usage: outq " + std::string(c.name)) == 0);
        CHECK(help.find("examples:\n  outq ") != std::string::npos);
        CHECK(help.find("--config FILE") != std::string::npos);
        CHECK(help.find("-h, --help") != std::string::npos);
        for (auto& o : c.options) {
            CHECK(help.find("--" + std::string(o.name)) != std::string::npos);
            if (!o.default_value.empty())
                CHECK(help.find("(default: " + std::string(o.default_value) + ")") != std::string::npos);
        }
        CHECK(general_help().find("  " + std::string(c.name)) != std::string::npos);
    }
    const auto replay = command_help(*find_command("dead replay"));
    CHECK(replay.find("--dry-run") != std::string::npos);
    CHECK(replay.find("TIME: RFC 3339") != std::string::npos);
    CHECK(command_help(*find_command("dead list")).find("--limit N") != std::string::npos);
    CHECK(group_help("dead").find("dead replay [ID]") != std::string::npos);
}

TEST_CASE("every default is a valid value of its option") {
    for (auto& c : commands()) {
        if (c.name == "help") continue;
        CAPTURE(c.name);
        words w;
        for (std::size_t start = 0; start < c.name.size();) {
            auto space = c.name.find(' ', start);
            if (space == std::string_view::npos) space = c.name.size();
            w.emplace_back(c.name.substr(start, space - start));
            start = space + 1;
        }
        for (std::size_t i = 0; i < c.min_arguments; ++i) w.push_back("x");
        CHECK(parse(w).what == action::run);  // a default that does not parse throws
    }
}

TEST_CASE("asking for an option the command does not declare is a programming error") {
    auto inv = parse({"stats"});
    REQUIRE(inv.what == action::run);
    CHECK_THROWS_AS(inv.options.flag("dry-run"), std::logic_error);
    CHECK_THROWS_AS(inv.options.integer("json"), std::logic_error);  // declared, as a flag
    CHECK_FALSE(inv.options.string("config"));
}

TEST_CASE("closest match: a likely typo, or the start of exactly one") {
    CHECK(edit_distance("dryrun", "dry-run") == 1);
    CHECK(edit_distance("acount", "account") == 1);
    CHECK(edit_distance("forec", "force") == 1);  // a transposition
    CHECK(edit_distance("", "abc") == 3);
    const std::vector<std::string_view> names = {"provider", "account", "class", "since", "until", "limit"};
    CHECK(closest_match("acount", names) == "account");
    CHECK(closest_match("prov", names) == "provider");
    CHECK(closest_match("xyz", names).empty());
    CHECK(closest_match("", names).empty());
    CHECK(closest_match("s", {"since", "stats"}).empty());  // the start of two
}

TEST_CASE("job: `job ID` shows a job, `job cancel ID` and `job retry-now ID` act on one; cancel stays an alias") {
    auto show = parse({"job", "order-42", "--scan-limit", "500"});
    REQUIRE(show.what == action::run);
    CHECK(show.command->name == "job");
    CHECK(show.positional == words{"order-42"});
    CHECK(show.options.integer("scan-limit") == 500);
    CHECK(parse({"job", "x"}).options.integer("scan-limit") == 100000);  // the default
    auto cancel = parse({"job", "cancel", "order-42", "--reason", "gone"});
    REQUIRE(cancel.what == action::run);
    CHECK(cancel.command->name == "job cancel");
    CHECK(cancel.positional == words{"order-42"});
    auto alias = parse({"cancel", "order-42"});
    REQUIRE(alias.what == action::run);
    CHECK(alias.command->name == "cancel");
    auto retry = parse({"job", "retry-now", "order-42"});
    REQUIRE(retry.what == action::run);
    CHECK(retry.command->name == "job retry-now");
    // A job whose id is a subcommand's name: after --.
    auto odd = parse({"job", "--", "cancel"});
    REQUIRE(odd.what == action::run);
    CHECK(odd.command->name == "job");
    CHECK(odd.positional == words{"cancel"});
    CHECK(error_of({"job"}) == "job needs JOB_ID");
    CHECK(error_of({"job", "a", "b"}) == "job takes JOB_ID only, got 'b'");
    CHECK(
        error_of({"job", "x", "--scan-limit", "0"}).starts_with("--scan-limit: expected a whole number of at least 1"));
    auto help = parse({"job", "--help"});
    CHECK(help.what == action::help);
    CHECK(help.group == "job");
    const std::string listed = group_help("job");
    CHECK(listed.find("job JOB_ID") != std::string::npos);
    CHECK(listed.find("job retry-now JOB_ID") != std::string::npos);
}

TEST_CASE("dead delete and purge, the dead list filters and paging, list, stats --watch") {
    auto del = parse({"dead", "delete", "a", "b", "--yes"});
    REQUIRE(del.what == action::run);
    CHECK(del.positional == words{"a", "b"});
    CHECK(del.options.flag("yes"));
    CHECK(error_of({"dead", "delete"}) == "dead delete needs ID...");
    auto purge = parse({"dead", "purge", "--status", "4xx", "--grep", "timeout", "--dry-run"});
    REQUIRE(purge.what == action::run);
    CHECK(purge.options.string("status") == "4xx");
    CHECK(purge.options.string("grep") == "timeout");
    CHECK(error_of({"dead", "purge", "--yess"}) == "unknown option --yess; did you mean --yes?");
    auto listed = parse({"dead", "list", "--after", "5-0", "--status", "422"});
    REQUIRE(listed.what == action::run);
    CHECK(listed.options.string("after") == "5-0");
    CHECK(parse({"dead", "replay", "x", "--force", "--yes"}).options.flag("yes"));
    auto l = parse({"list", "delayed", "--account", "demo", "--limit", "5"});
    REQUIRE(l.what == action::run);
    CHECK(l.positional == words{"delayed"});
    CHECK(l.options.integer("limit") == 5);
    auto watch = parse({"stats", "--watch", "--interval", "5s"});
    REQUIRE(watch.what == action::run);
    CHECK(watch.options.flag("watch"));
    CHECK(watch.options.duration("interval") == std::chrono::milliseconds(5000));
    CHECK(parse({"stats"}).options.duration("interval") == std::chrono::milliseconds(2000));
    CHECK(error_of({"stats", "--watch", "--interval", "10ms"}).starts_with("--interval: must be at least 100ms"));
}
