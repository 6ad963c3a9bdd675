#pragma once
// The command line of `outq`: every command declares its arguments and its
// options (name, type, default, help), and one parser reads any command line
// against those declarations. Pure: it returns what to do or what is wrong,
// and main prints it.
//
// Rules (the same for every command):
//   - an option that is not declared for the command (or globally) is an error
//     naming the closest declared one: "unknown option --dryrun; did you mean --dry-run?"
//   - a flag never takes a value ("--dry-run=yes" is an error);
//   - a value option takes the next word or "--name=value", never a following
//     "--option" ("--class --all" is an error; "--reason=--x" is a value);
//   - values are checked by type (integer with bounds, duration, time, choice);
//   - an option given twice is an error; "--" ends the options;
//   - -h/--help anywhere prints the command's help, --version the version.
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outq/clock.hpp"

namespace outq::cli {

enum class option_type {
    flag,      // no value
    string,    // any text (or one of `choices`)
    integer,   // whole number between min and max
    duration,  // "90s", "10m", "1h30m", "2d", "1500ms", plain seconds; min/max in ms
    time,      // RFC 3339 or unix milliseconds
};

struct option_spec {
    std::string_view name;  // without the leading "--"
    option_type type = option_type::flag;
    std::string_view value_name;  // in help: FILE, N, TEXT
    std::string_view help;
    std::string_view default_value;  // read like a given value when the option is absent; empty: none
    std::int64_t min = 0;
    std::int64_t max = std::numeric_limits<std::int64_t>::max();
    std::vector<std::string_view> choices;  // string options: the only values allowed (empty: any)
};

struct command_spec {
    std::string_view name;       // "stats", "dead replay"
    std::string_view arguments;  // in usage: "PROVIDER ACCOUNT", "[ID]"
    std::size_t min_arguments = 0;
    std::size_t max_arguments = 0;
    std::string_view summary;          // one line, in `outq --help`
    std::string_view description;      // more, in `outq COMMAND --help`
    std::vector<option_spec> options;  // besides the global ones
    std::vector<std::string_view> examples;
};

// --config, --redis, --queue, --json, --help, --version: accepted by every command.
const std::vector<option_spec>& global_options();
// Every command of outq, in the order of `outq --help`.
const std::vector<command_spec>& commands();
const command_spec* find_command(std::string_view name);

// The options of one command line, by name, with the defaults filled in.
// Asking for an option the command does not declare (or with another type) is
// a programming error: std::logic_error.
class option_values {
  public:
    explicit option_values(const command_spec* command = nullptr) : command_(command) {}

    bool flag(std::string_view name) const;
    std::optional<std::string> string(std::string_view name) const;
    std::optional<std::int64_t> integer(std::string_view name) const;
    std::optional<std::chrono::milliseconds> duration(std::string_view name) const;
    std::optional<unix_ms> time(std::string_view name) const;
    // Whether it was on the command line (not only its default).
    bool given(std::string_view name) const;

    struct value {
        option_type type = option_type::flag;
        bool given = false;
        std::string text;
        std::int64_t number = 0;  // integer; duration and time in ms
    };
    void set(std::string_view name, value v);

  private:
    const value* find(std::string_view name, option_type type) const;
    const command_spec* command_;
    std::map<std::string, value, std::less<>> values_;
};

struct invocation {
    enum class action {
        run,          // run `command`
        help,         // print help_text() to stdout, exit 0
        version,      // print the version, exit 0
        usage_error,  // print `error` (and the hint) to stderr, exit 2
    };
    action what = action::usage_error;
    const command_spec* command = nullptr;  // null: no (known) command
    std::string group;                      // "dead" for `outq dead --help`
    std::vector<std::string> positional;
    option_values options;
    bool json = false;
    std::string error;  // usage_error: one line naming what is wrong
    // usage_error: where to read more ("outq dead replay --help").
    std::string hint() const;
};

// Reads argv[1..].
invocation parse_command_line(const std::vector<std::string>& args);

// `outq --help`.
std::string general_help();
// `outq COMMAND --help`: usage, description, options with their defaults, examples.
std::string command_help(const command_spec& command);
// `outq dead --help`: the commands of a group.
std::string group_help(std::string_view group);

// Levenshtein distance with adjacent transpositions (optimal string alignment).
std::size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word` when it is close enough to be a likely typo
// (or `word` is a prefix of exactly one); empty otherwise.
std::string_view closest_match(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace outq::cli
