#include "options.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "outq/rate_limit.hpp"

namespace outq::cli {

namespace {

using type = option_type;

const std::vector<std::string_view> dead_classes = {"validation", "permanent", "auth", "attempts_exhausted", "expired"};

// Builders of the declarations (GCC 12 warns about designated initializers that
// leave members to their defaults).
option_spec flag(std::string_view name, std::string_view help) {
    option_spec o;
    o.name = name;
    o.type = type::flag;
    o.help = help;
    return o;
}

option_spec value(std::string_view name, option_type t, std::string_view value_name, std::string_view help,
                  std::string_view default_value = {}) {
    option_spec o;
    o.name = name;
    o.type = t;
    o.value_name = value_name;
    o.help = help;
    o.default_value = default_value;
    return o;
}

option_spec at_least(option_spec o, std::int64_t min) {
    o.min = min;
    return o;
}

option_spec one_of(option_spec o, std::vector<std::string_view> choices) {
    o.choices = std::move(choices);
    return o;
}

command_spec command(std::string_view name, std::string_view arguments, std::size_t min_arguments,
                     std::size_t max_arguments, std::string_view summary, std::string_view description,
                     std::vector<option_spec> options, std::vector<std::string_view> examples) {
    command_spec c;
    c.name = name;
    c.arguments = arguments;
    c.min_arguments = min_arguments;
    c.max_arguments = max_arguments;
    c.summary = summary;
    c.description = description;
    c.options = std::move(options);
    c.examples = std::move(examples);
    return c;
}

// The filters of dead list and dead replay.
std::vector<option_spec> dead_filters() {
    return {
        value("provider", type::string, "NAME", "only this provider's"),
        value("account", type::string, "NAME", "only this account's"),
        one_of(value("class", type::string, "CLASS", "only this error class"), dead_classes),
        value("since", type::time, "TIME", "failed at or after TIME"),
        value("until", type::time, "TIME", "failed at or before TIME"),
        value("status", type::string, "CODE", "only with this HTTP status: 422, or a class such as 4xx or 42x"),
        value("grep", type::string, "TEXT", "only those whose error or job JSON contains TEXT (case-sensitive)"),
    };
}

// How the commands that change many dead letters confirm.
option_spec yes_flag() {
    return flag("yes", "do not ask (needed without a terminal for more than one letter)");
}

std::vector<option_spec> with(std::vector<option_spec> a, std::vector<option_spec> b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

std::string dashed(std::string_view name) {
    return "--" + std::string(name);
}

bool starts_with_dashes(std::string_view word) {
    return word.size() >= 2 && word[0] == '-' && word[1] == '-';
}

const option_spec* find_spec(const command_spec* command, std::string_view name) {
    if (command)
        for (auto& o : command->options)
            if (o.name == name) return &o;
    for (auto& o : global_options())
        if (o.name == name) return &o;
    return nullptr;
}

std::vector<std::string_view> option_names(const command_spec* command) {
    std::vector<std::string_view> names;
    if (command)
        for (auto& o : command->options) names.push_back(o.name);
    for (auto& o : global_options()) names.push_back(o.name);
    return names;
}

std::string join(const std::vector<std::string_view>& words, std::string_view separator) {
    std::string out;
    for (auto w : words) {
        if (!out.empty()) out += separator;
        out += w;
    }
    return out;
}

// Reads `text` as the value of option `spec`; false and `error` when it is not one.
bool convert(const option_spec& spec, std::string_view text, option_values::value& out, std::string& error) {
    const std::string name = dashed(spec.name);
    out.type = spec.type;
    out.text = std::string(text);
    switch (spec.type) {
        case type::flag:
            return true;
        case type::string:
            if (!spec.choices.empty() &&
                std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end()) {
                error = name + ": '" + std::string(text) + "' is not one of " + join(spec.choices, ", ");
                if (auto near = closest_match(text, spec.choices); !near.empty())
                    error += "; did you mean '" + std::string(near) + "'?";
                return false;
            }
            return true;
        case type::integer: {
            std::int64_t n = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            if (ec != std::errc{} || end != text.data() + text.size() || n < spec.min || n > spec.max) {
                error = name + ": expected a whole number ";
                error += spec.max == std::numeric_limits<std::int64_t>::max()
                             ? "of at least " + std::to_string(spec.min)
                             : "from " + std::to_string(spec.min) + " to " + std::to_string(spec.max);
                error += ", got '" + std::string(text) + "'";
                return false;
            }
            out.number = n;
            return true;
        }
        case type::duration: {
            auto d = parse_duration(text);
            if (!d) {
                error = name + ": expected a duration such as 90s, 10m, 1h30m or 2d, got '" + std::string(text) + "'";
                return false;
            }
            if (d->count() < spec.min || d->count() > spec.max) {
                error = name + ": must be " +
                        (spec.min <= 1 ? std::string("more than 0") : "at least " + std::to_string(spec.min) + "ms") +
                        ", got '" + std::string(text) + "'";
                return false;
            }
            out.number = d->count();
            return true;
        }
        case type::time: {
            const bool digits =
                !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
            std::optional<unix_ms> t;
            if (digits) {
                std::int64_t n = 0;
                auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
                if (ec == std::errc{} && end == text.data() + text.size()) t = n;
            } else {
                t = parse_rfc3339(text);
            }
            if (!t) {
                error = name + ": expected an RFC 3339 time (2026-11-22T10:00:00Z) or unix milliseconds, got '" +
                        std::string(text) + "'";
                return false;
            }
            out.number = *t;
            return true;
        }
    }
    return false;
}

std::string usage_line(const command_spec& c) {
    std::string line = "outq " + std::string(c.name);
    if (!c.arguments.empty()) line += " " + std::string(c.arguments);
    return line;
}

void append_options(std::string& out, const std::vector<option_spec>& options) {
    std::vector<std::string> left;
    std::size_t width = 0;
    for (auto& o : options) {
        std::string l = o.name == "help" ? "-h, --help" : dashed(o.name);
        if (o.type != type::flag) l += " " + std::string(o.value_name);
        width = std::max(width, l.size());
        left.push_back(std::move(l));
    }
    for (std::size_t i = 0; i < options.size(); ++i) {
        const auto& o = options[i];
        std::string line = "  " + left[i] + std::string(width - left[i].size() + 2, ' ');
        for (char ch : o.help) {  // a help of several lines is indented to its column
            line += ch;
            if (ch == '\n') line += std::string(width + 4, ' ');
        }
        if (!o.choices.empty()) line += ": " + join(o.choices, ", ");
        if (!o.default_value.empty()) line += " (default: " + std::string(o.default_value) + ")";
        out += line + "\n";
    }
}

}  // namespace

const std::vector<option_spec>& global_options() {
    static const std::vector<option_spec> options = {
        value("config", type::string, "FILE",
              "worker configuration (default: $OUTQ_CONFIG); all but `run` read only its redis and\n"
              "queue settings and provider and account names, and resolve only the redis and queue secrets"),
        value("redis", type::string, "URL",
              "Redis URL (default: $OUTQ_REDIS_URL, else the config's redis.url,\n"
              "else redis://127.0.0.1:6379/0)"),
        value("queue", type::string, "NAME", "queue name (default: the config's queue, else \"default\")"),
        flag("json", "output as one JSON document on stdout (invalid UTF-8 shown as U+FFFD)"),
        flag("help", "show the help of the command"),
        flag("version", "print the version"),
    };
    return options;
}

// name, arguments, their least and most count, summary, description, options, examples
const std::vector<command_spec>& commands() {
    static const std::vector<command_spec> table = {
        command("run", "", 0, 0, "run the worker until SIGTERM/SIGINT",
                "Needs --config FILE (or $OUTQ_CONFIG) and resolves every secret in it. SIGTERM or SIGINT\n"
                "drains (sends in flight finish within shutdown_grace_ms); a second signal stops at once.\n"
                "Logs are logfmt lines on stderr; --json changes nothing.",
                {}, {"outq run --config /etc/outq/outq.json"}),
        command("enqueue", "[FILE|-]", 0, 1,
                "enqueue jobs: a JSON object, an array of them, or JSON lines (stdin by default)",
                "Every job is checked before any is written (with --config also its provider, account and\n"
                "message). When any is invalid, each invalid one is reported as \"line N: ...\", N being the\n"
                "line of the input where that job starts, and nothing is enqueued (exit 1; with --json also\n"
                "{\"enqueued\": 0, \"invalid\": [{\"line\": N, \"error\": ...}]} on stdout). Warns on stderr when\n"
                "no worker has created the queue's consumer group yet (is --queue right?), and about each\n"
                "job whose id already has a result: the workers skip that copy as a duplicate (--json:\n"
                "\"duplicates\": [{\"id\": ..., \"status\": ...}]).",
                {},
                {"outq enqueue jobs.jsonl --config /etc/outq/outq.json",
                 "echo '{\"v\":1,\"id\":\"order-42\",\"provider\":\"webhook\",\"account\":\"demo\","
                 "\"message\":{\"text\":\"hi\"}}' | outq enqueue"}),
        command("result", "JOB_ID", 1, 1, "show a job's result",
                "Exit 1 when the job has no outcome: no worker took it yet, its result expired, or a\n"
                "worker holds it now (status sending, printed). With --wait, waits for the outcome\n"
                "(following the results stream from before the first read, so none is missed) until\n"
                "--timeout; exit 1 when it has not come by then.",
                {flag("wait", "wait for the outcome"),
                 at_least(value("timeout", type::duration, "DURATION", "how long --wait waits", "30s"), 1)},
                {"outq result order-42", "outq result order-42 --json", "outq result order-42 --wait --timeout 2m"}),
        command(
            "cancel", "JOB_ID", 1, 1, "the same as job cancel (an alias, kept for scripts)",
            "Writes the job's result as cancelled (and a cancelled event). Refused (exit 1) when the\n"
            "job already has a value: a worker holds it (sending) or it ended. An id that was never\n"
            "enqueued can be cancelled too: a job with that id enqueued later is skipped.\n"
            "An alias of `outq job cancel`, kept for scripts.",
            {value("reason", type::string, "TEXT", "kept in the result", "cancelled by an operator"),
             at_least(value("ttl", type::duration, "DURATION", "how long the cancelled result is kept", "7d"), 1000)},
            {"outq cancel order-42 --reason \"customer withdrew\""}),
        command("stats", "", 0, 0, "waiting, pending, delayed and dead counts, consumers, pauses and rates",
                "Warns on stderr when no worker has created the queue's consumer group yet (is --queue right?).\n"
                "The dead count comes with the oldest letter's age; dead letters are never trimmed unless\n"
                "the config sets dead.maxlen. --watch prints the stats again every --interval, like top (the\n"
                "screen is cleared on a terminal; otherwise one block per interval, with --json one document\n"
                "per line) until SIGINT (exit 0).",
                {flag("watch", "refresh every --interval until Ctrl-C"),
                 at_least(value("interval", type::duration, "DURATION", "how often --watch refreshes", "2s"), 100)},
                {"outq stats --queue orders", "outq stats --config /etc/outq/outq.json --json",
                 "outq stats --watch --interval 5s"}),
        command("dead list", "", 0, 0, "list dead letters, newest first",
                "The filters combine (all must match). Says how many of how many match (\"100 of 2,023\"),\n"
                "and pages with --after: the next page is the letters older than the last one shown (the\n"
                "footer prints the command; with --json the footer goes to stderr and stdout stays the\n"
                "array). Each letter says whether it was replayed, when, and the job's result since.",
                with(dead_filters(),
                     {at_least(value("limit", type::integer, "N", "show at most N", "100"), 1),
                      value("after", type::string, "ENTRY_ID", "the page after this letter: those older than it")}),
                {"outq dead list", "outq dead list --provider webhook --class permanent --since 2026-11-22T00:00:00Z",
                 "outq dead list --account demo --limit 10 --json", "outq dead list --status 4xx --grep timeout",
                 "outq dead list --after 1732269600000-0"}),
        command("dead show", "ID", 1, 1, "one dead letter, by job id or dead letter entry id",
                "Says whether it was replayed, when, as which entry, and the job's result since.", {},
                {"outq dead show order-42", "outq dead show 1732269600000-0 --json"}),
        command("dead replay", "[ID]", 0, 1, "send dead letters again: one by ID, those the filters match, or --all",
                "Each dead letter's job goes back into the stream as it was; the dead letter stays and\n"
                "records the new entry. A dead letter is replayed once (--force: again). Without ID, a\n"
                "filter or --all nothing is replayed. A letter whose job has been sent since (its result\n"
                "says sent: --force of one replayed before, or a job its producer enqueued again) warns and\n"
                "asks on a terminal; without one it needs --yes (exit 2).\n"
                "Progress on stderr from 1,000 letters on (a bar on a terminal, a count per 1,000 otherwise).\n"
                "A dry run prints the command that replays exactly what it counted (--upto the newest letter\n"
                "counted, --expect the count): letters that came since are left, and any change to what\n"
                "matches is refused (exit 1), so a bulk replay does what the dry run showed.",
                with(dead_filters(),
                     {flag("all", "every dead letter (not replayed yet)"),
                      flag("dry-run", "show what would be replayed, change nothing"),
                      value("upto", type::string, "ENTRY_ID", "only letters up to this one (the dry run prints it)"),
                      at_least(value("expect", type::integer, "N",
                                     "refuse unless exactly N letters match (the dry run's count)"),
                               0),
                      flag("force", "replay those replayed before too"), yes_flag()}),
                {"outq dead replay order-42", "outq dead replay --provider webhook --class auth --dry-run",
                 "outq dead replay --all"}),
        command("dead delete", "ID...", 1, 1000, "delete dead letters by job id or dead letter entry id",
                "Deletes each letter (and its replay link); a job id deletes every letter of that job. Asks \"delete N "
                "dead letters? [y/N]\" on a\n"
                "terminal; without one, more than one letter needs --yes (exit 2).",
                {flag("dry-run", "show what would be deleted, change nothing"), yes_flag()},
                {"outq dead delete order-42", "outq dead delete 1732269600000-0 1732269600001-0 --yes"}),
        command("dead purge", "", 0, 0, "delete the dead letters the filters match, or --all",
                "Like dead delete, for the letters the filters match (all must match). Asks on a terminal;\n"
                "without one, more than one letter needs --yes (exit 2). Progress on stderr from 1,000 on.",
                with(dead_filters(), {flag("all", "every dead letter"),
                                      flag("dry-run", "show what would be deleted, change nothing"), yes_flag()}),
                {"outq dead purge --class validation --until 2026-11-01T00:00:00Z --dry-run",
                 "outq dead purge --provider webhook --status 4xx --yes"}),
        command(
            "pause", "PROVIDER ACCOUNT", 2, 2, "every worker holds off this account (until resumed, or --for)",
            "A provider outq does not know, or (with --config) a provider or account the config does\n"
            "not have, is an error (exit 2); --force makes it a warning. Replaces any pause of the account.",
            {at_least(value("for", type::duration, "DURATION",
                            "for this long (90s, 10m, 1h30m, 2d); without it, until resumed"),
                      1),
             value("reason", type::string, "TEXT", "shown by stats and in the workers' logs", "paused by an operator"),
             flag("force", "go on when the provider or account is unknown (a warning)")},
            {"outq pause webhook demo --for 1h30m --reason \"partner maintenance\"",
             "outq pause mews hotel-7 --config /etc/outq/outq.json"}),
        command("resume", "PROVIDER ACCOUNT", 2, 2, "lift a pause; the jobs it held back are due at once",
                "Checks the provider and account like pause does.",
                {flag("force", "go on when the provider or account is unknown (a warning)")},
                {"outq resume webhook demo"}),
        command("migrate", "", 0, 0, "convert a format 1 queue to format 2 in place (stop format 1 workers first)",
                "Sets the queue's format to migrating (format 2 workers refuse it), deletes the entries a\n"
                "format 1 worker acknowledged but did not delete, creates the group outq.v2 and fences the\n"
                "format 1 group outq (a format 1 worker reads and claims nothing), turns each result hash\n"
                "into its JSON value with the same TTL, deletes the in-flight markers, moves each account's\n"
                "pause and window to its account keys, and sets format 2. Waiting, pending, delayed and dead\n"
                "jobs are kept; those pending under format 1 are sent by format 2 workers. Refused (exit 1)\n"
                "while a consumer of the group outq was active in the last 60 s. Can be run again after any\n"
                "failure; a queue in format 2 is left as it is (docs/protocol.md, Upgrading from format 1).",
                {flag("dry-run", "show what would be done, change nothing"),
                 flag("force", "go on although a format 1 consumer was active in the last 60 s")},
                {"outq migrate --config /etc/outq/outq.json --dry-run", "outq migrate --config /etc/outq/outq.json",
                 "outq migrate --queue orders --force --json"}),
        command("job", "JOB_ID", 1, 1, "where a job is: waiting, in flight (on which consumer), delayed, or done",
                "Reads the job's result value (an outcome, or the sending marker of the worker that holds it,\n"
                "with XPENDING's consumer), then scans the delayed set and the stream for a copy of it,\n"
                "in pages, at most --scan-limit entries each (a job beyond that is reported as not found\n"
                "within the limit). Exit 1 when it is nowhere. Also: outq job cancel ID, outq job\n"
                "retry-now ID (a job id named cancel or retry-now: outq job -- ID).",
                {at_least(value("scan-limit", type::integer, "N",
                                "entries scanned at most, in the stream and in the\n"
                                "delayed set each",
                                "100000"),
                          1)},
                {"outq job order-42", "outq job order-42 --json --scan-limit 1000000"}),
        command(
            "job cancel", "JOB_ID", 1, 1, "cancel a job no worker has taken yet: workers skip it",
            "Writes the job's result as cancelled (and a cancelled event). Refused (exit 1) when the\n"
            "job already has a value: a worker holds it (sending) or it ended. An id that was never\n"
            "enqueued can be cancelled too: a job with that id enqueued later is skipped.\n"
            "`outq cancel` is the same command (an alias).",
            {value("reason", type::string, "TEXT", "kept in the result", "cancelled by an operator"),
             at_least(value("ttl", type::duration, "DURATION", "how long the cancelled result is kept", "7d"), 1000)},
            {"outq job cancel order-42 --reason \"customer withdrew\""}),
        command("job retry-now", "JOB_ID", 1, 1,
                "make a delayed job (a retry, a put-back, a held job) due now; not before its own not_before",
                "Finds the job in the delayed set (scanning it in pages, at most --scan-limit members) and\n"
                "sets its due time to now; a worker moves it into the stream at once. Exit 1 when it is\n"
                "not delayed.",
                {at_least(value("scan-limit", type::integer, "N", "delayed members scanned at most", "100000"), 1)},
                {"outq job retry-now order-42"}),
        command("list", "waiting|delayed|inflight", 1, 1, "list the jobs waiting, delayed or in flight",
                "waiting: in the stream, not delivered to a worker yet (oldest first); delayed: in the\n"
                "delayed set (soonest due first, with why); inflight: delivered and not finished (XPENDING,\n"
                "with the consumer). Scans at most --scan-limit entries; the filters combine.",
                {value("provider", type::string, "NAME", "only this provider's"),
                 value("account", type::string, "NAME", "only this account's"),
                 at_least(value("limit", type::integer, "N", "show at most N", "100"), 1),
                 at_least(value("scan-limit", type::integer, "N", "entries scanned at most", "100000"), 1)},
                {"outq list waiting --provider webhook --limit 20", "outq list delayed --account demo",
                 "outq list inflight --json"}),
        command(
            "health", "", 0, 0, "ask a running worker's /healthz (or /readyz with --ready): exit 0 or 1",
            "For probes that cannot speak HTTP. Reads the worker's own endpoint: --metrics-url, else\n"
            "the config's metrics_listen (0.0.0.0 and :: are asked on the loopback). Prints the answer's\n"
            "reason; exit 0 on 200, 1 otherwise (not answering within --timeout included), 2 when there\n"
            "is no address to ask. What the probes mean: docs/operations.md, \"Health\".",
            {flag("ready", "readiness (/readyz) instead of liveness (/healthz)"),
             value("metrics-url", type::string, "URL", "the worker's endpoint, e.g. http://127.0.0.1:9100"),
             at_least(value("timeout", type::duration, "DURATION", "how long to wait for the answer", "3s"), 1)},
            {"outq health --config /etc/outq/outq.json", "outq health --ready --metrics-url http://127.0.0.1:9100"}),
        command("web", "", 0, 0, "the operators' dashboard: the queue and its dead letters in a browser",
                "Serves a page and its JSON API at --listen until SIGINT or SIGTERM, in this process (never\n"
                "a worker's). Loopback by default. Every change (a replay) needs the operator token in the\n"
                "X-Outq-Token header (the page sends what its token field holds), read from --token-file\n"
                "or OUTQ_WEB_TOKEN; without a token nothing can be changed, and off loopback every API\n"
                "request needs it and a token is required to start. The Host header must name the address\n"
                "listened on (--allow-host adds a name). What it shows and how: docs/operations.md, \"Web\n"
                "dashboard\".",
                {value("listen", type::string, "HOST:PORT", "where to listen (port 0: any free one, printed)",
                       "127.0.0.1:8080"),
                 value("token-file", type::string, "PATH", "a file holding the operator token (else OUTQ_WEB_TOKEN)"),
                 value("allow-host", type::string, "HOST:PORT", "another Host header value to accept"),
                 flag("read-only", "refuse every change, even with the token")},
                {"outq web --config /etc/outq/outq.json",
                 "OUTQ_WEB_TOKEN=$(cat /run/secrets/outq-web) outq web --listen 10.0.0.5:8080 --allow-host "
                 "ops.example:8080"}),
        command("version", "", 0, 0, "print the version", "", {}, {"outq version", "outq --version"}),
        command("help", "[COMMAND]", 0, 2, "show the help of outq or of a command", "", {},
                {"outq help dead replay", "outq dead replay --help"}),
    };
    return table;
}

const command_spec* find_command(std::string_view name) {
    for (auto& c : commands())
        if (c.name == name) return &c;
    return nullptr;
}

const option_values::value* option_values::find(std::string_view name, option_type t) const {
    const option_spec* spec = find_spec(command_, name);
    if (!spec || spec->type != t)
        throw std::logic_error("option --" + std::string(name) + " is not declared with this type for " +
                               (command_ ? std::string(command_->name) : std::string("outq")));
    auto it = values_.find(name);
    return it == values_.end() ? nullptr : &it->second;
}

bool option_values::flag(std::string_view name) const {
    return find(name, type::flag) != nullptr;
}

std::optional<std::string> option_values::string(std::string_view name) const {
    auto* v = find(name, type::string);
    if (!v) return std::nullopt;
    return v->text;
}

std::optional<std::int64_t> option_values::integer(std::string_view name) const {
    auto* v = find(name, type::integer);
    if (!v) return std::nullopt;
    return v->number;
}

std::optional<std::chrono::milliseconds> option_values::duration(std::string_view name) const {
    auto* v = find(name, type::duration);
    if (!v) return std::nullopt;
    return std::chrono::milliseconds(v->number);
}

std::optional<unix_ms> option_values::time(std::string_view name) const {
    auto* v = find(name, type::time);
    if (!v) return std::nullopt;
    return v->number;
}

bool option_values::given(std::string_view name) const {
    auto it = values_.find(name);
    return it != values_.end() && it->second.given;
}

void option_values::set(std::string_view name, value v) {
    values_[std::string(name)] = std::move(v);
}

std::string invocation::hint() const {
    if (command) return "run 'outq " + std::string(command->name) + " --help' for its arguments and options";
    if (!group.empty()) return "run 'outq " + group + " --help' for its commands";
    return "run 'outq --help' for the commands";
}

invocation parse_command_line(const std::vector<std::string>& args) {
    invocation inv;
    std::string error;  // the first problem; parsing goes on to find --help
    auto problem = [&](std::string what) {
        if (error.empty()) error = std::move(what);
    };
    bool command_failed = false;  // an unknown command: do not complain about its arguments
    bool options_ended = false;
    std::map<std::string, option_values::value, std::less<>> given;

    auto take_word = [&](const std::string& word) {
        if (inv.command || command_failed) {
            inv.positional.push_back(word);
            return;
        }
        if (inv.group.empty() && (word == "dead" || word == "job")) {
            inv.group = word;
            return;
        }
        const std::string name = inv.group.empty() ? word : inv.group + " " + word;
        if (!(inv.group == "job" && options_ended)) inv.command = find_command(name);
        if (inv.command) return;
        if (inv.group == "job") {  // outq job ID
            inv.command = find_command("job");
            inv.positional.push_back(word);
            return;
        }
        command_failed = true;
        std::vector<std::string_view> names;
        for (auto& c : commands())
            if (inv.group.empty() || c.name.starts_with(inv.group + " ")) names.push_back(c.name);
        if (inv.group.empty()) names.push_back("dead");
        std::string message = "unknown command '" + name + "'";
        if (auto near = closest_match(name, names); !near.empty())
            message += "; did you mean '" + std::string(near) + "'?";
        problem(message);
    };

    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string word = args[i];
        if (options_ended) {
            take_word(word);
            continue;
        }
        if (word == "--") {
            options_ended = true;
            continue;
        }
        if (word == "-h") word = "--help";
        if (!starts_with_dashes(word)) {
            if (word.size() > 1 && word[0] == '-') {
                std::string message = "unknown option " + word;
                if (auto near = closest_match(word.substr(1), option_names(inv.command)); !near.empty())
                    message += "; did you mean --" + std::string(near) + "?";
                else
                    message += " (an argument that starts with '-' goes after --)";
                problem(message);
                continue;
            }
            take_word(word);
            continue;
        }
        std::string name = word.substr(2);
        std::optional<std::string> inline_value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            inline_value = name.substr(eq + 1);
            name.resize(eq);
        }
        const option_spec* spec = find_spec(inv.command, name);
        if (!spec) {
            std::string message = "unknown option --" + name;
            if (auto near = closest_match(name, option_names(inv.command)); !near.empty()) {
                message += "; did you mean --" + std::string(near) + "?";
            } else {
                std::vector<std::string_view> owners;  // the commands that have it
                for (auto& c : commands())
                    if (find_spec(&c, name)) owners.push_back(c.name);
                if (!owners.empty() && !inv.command)
                    message += " (a command's options go after the command)";
                else if (!owners.empty())
                    message += " (an option of " + join(owners, ", ") + ")";
            }
            problem(message);
            continue;
        }
        option_values::value v;
        if (spec->type == type::flag) {
            if (inline_value) {
                problem("--" + name + " is a flag and takes no value (got '" + *inline_value + "')");
                continue;
            }
        } else {
            std::string text;
            if (inline_value) {
                text = *inline_value;
            } else if (i + 1 >= args.size()) {
                problem("--" + name + " needs a value (" + std::string(spec->value_name) + ")");
                continue;
            } else if (starts_with_dashes(args[i + 1])) {
                problem("--" + name + " needs a value (" + std::string(spec->value_name) + "), got the option " +
                        args[i + 1] + " (write --" + name + "=VALUE for a value that starts with --)");
                continue;
            } else {
                text = args[++i];
            }
            std::string why;
            if (!convert(*spec, text, v, why)) {
                problem(why);
                continue;
            }
        }
        v.type = spec->type;
        v.given = true;
        if (given.count(name)) {
            problem("--" + name + " is given more than once");
            continue;
        }
        given.emplace(name, std::move(v));
    }

    inv.json = given.count("json") > 0;
    if (inv.command && inv.command->name == "help" && !command_failed) {
        // outq help [COMMAND]: the help of that command, whatever else is on the line.
        std::string name;
        for (auto& p : inv.positional) name += (name.empty() ? "" : " ") + p;
        inv.positional.clear();
        inv.command = nullptr;
        if (name == "dead") {
            inv.group = "dead";
        } else if (!name.empty()) {
            inv.command = find_command(name);
            if (!inv.command) {
                inv.what = invocation::action::usage_error;
                inv.error = "unknown command '" + name + "'";
                return inv;
            }
        }
        inv.what = invocation::action::help;
        return inv;
    }
    if (given.count("help") && !command_failed) {
        inv.what = invocation::action::help;
        return inv;
    }
    if (given.count("version") && !command_failed) {
        inv.what = invocation::action::version;
        return inv;
    }
    if (error.empty() && !inv.command && inv.group == "job") inv.command = find_command("job");
    if (error.empty() && !inv.command)
        error = inv.group.empty() ? "missing command" : inv.group + " needs list, show, replay, delete or purge";
    if (error.empty()) {
        const auto n = inv.positional.size();
        const auto& c = *inv.command;
        if (n < c.min_arguments) {
            error = std::string(c.name) + " needs " + std::string(c.arguments);
        } else if (n > c.max_arguments) {
            error = std::string(c.name) +
                    (c.max_arguments == 0 ? std::string(" takes no arguments")
                                          : " takes " + std::string(c.arguments) + " only") +
                    ", got '" + inv.positional[c.max_arguments] + "'";
        }
    }
    if (!error.empty()) {
        inv.what = invocation::action::usage_error;
        inv.error = error;
        return inv;
    }
    inv.options = option_values(inv.command);
    for (auto& [name, v] : given) inv.options.set(name, v);
    auto defaults = [&](const std::vector<option_spec>& specs) {
        for (auto& o : specs) {
            if (o.default_value.empty() || given.count(o.name)) continue;
            option_values::value v;
            std::string why;
            if (!convert(o, o.default_value, v, why)) throw std::logic_error("bad default: " + why);
            inv.options.set(o.name, std::move(v));
        }
    };
    defaults(inv.command->options);
    defaults(global_options());
    inv.json = inv.options.flag("json");
    inv.what = invocation::action::run;
    return inv;
}

std::string general_help() {
    std::string out = "usage: outq COMMAND [ARGUMENTS] [options]\n\ncommands:\n";
    for (auto& c : commands()) {
        const std::string left = usage_line(c).substr(5);
        out += "  " + left + std::string(left.size() < 28 ? 28 - left.size() : 1, ' ') + " " + std::string(c.summary) +
               "\n";
    }
    out += "\nglobal options (every command):\n";
    append_options(out, global_options());
    out +=
        "\n'outq COMMAND --help' shows a command's options, their defaults and examples.\n"
        "Exit status: 0 done; 1 the command failed (Redis error, nothing found, invalid jobs);\n"
        "2 the command line or the configuration is wrong (nothing was done).\n";
    return out;
}

std::string command_help(const command_spec& c) {
    std::string out = "usage: " + usage_line(c) + " [options]\n\n" + std::string(c.summary) + "\n";
    if (!c.description.empty()) out += "\n" + std::string(c.description) + "\n";
    if (!c.options.empty()) {
        out += "\noptions:\n";
        append_options(out, c.options);
        for (auto& o : c.options)
            if (o.type == type::time) {
                out += "  (TIME: RFC 3339, 2026-11-22T10:00:00Z, or unix milliseconds)\n";
                break;
            }
    }
    out += "\nglobal options:\n";
    append_options(out, global_options());
    if (!c.examples.empty()) {
        out += "\nexamples:\n";
        for (auto e : c.examples) out += "  " + std::string(e) + "\n";
    }
    return out;
}

std::string group_help(std::string_view group) {
    std::string out = "usage: outq " + std::string(group) + " COMMAND [ARGUMENTS] [options]\n\ncommands:\n";
    const std::string prefix = std::string(group) + " ";
    for (auto& c : commands()) {
        if (!c.name.starts_with(prefix) && c.name != group) continue;
        const std::string left = usage_line(c).substr(5);
        out += "  " + left + std::string(left.size() < 28 ? 28 - left.size() : 1, ' ') + " " + std::string(c.summary) +
               "\n";
    }
    out +=
        "\n'outq " + std::string(group) + " COMMAND --help' shows a command's options, their defaults and examples.\n";
    return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    // Optimal string alignment: insertions, deletions, substitutions and
    // transpositions of adjacent characters each cost 1.
    const std::size_t n = a.size(), m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i)
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[n][m];
}

std::string_view closest_match(std::string_view word, const std::vector<std::string_view>& candidates) {
    if (word.empty()) return {};
    std::string_view best;
    std::size_t best_distance = 0;
    for (auto c : candidates) {
        const std::size_t distance = edit_distance(word, c);
        if (best.empty() || distance < best_distance) {
            best = c;
            best_distance = distance;
        }
    }
    // Close enough to be a typo: one edit in a short word, two in a longer one, three in a long one.
    const std::size_t allowed = word.size() <= 4 ? 1 : word.size() <= 8 ? 2 : 3;
    if (!best.empty() && best_distance <= allowed && best_distance < word.size()) return best;
    // Otherwise the start of exactly one ("--prov" for --provider).
    std::string_view prefixed;
    for (auto c : candidates)
        if (c.starts_with(word)) {
            if (!prefixed.empty()) return {};
            prefixed = c;
        }
    return prefixed;
}

}  // namespace outq::cli
