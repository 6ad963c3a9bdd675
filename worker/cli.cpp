#include "cli.hpp"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <unordered_set>

#include "outq/adapter.hpp"
#include "outq/detail/async_event.hpp"
#include "outq/encoding.hpp"
#include "outq/http_url.hpp"
#include "outq/job.hpp"
#include "outq/json_util.hpp"
#include "outq/queue/admin.hpp"
#include "outq/queue/control.hpp"
#include "outq/queue/format.hpp"
#include "outq/queue/migrate.hpp"
#include "outq/queue/partitions.hpp"
#include "outq/queue/result.hpp"
#include "outq/queue_protocol.hpp"
#include "outq/rate_limit.hpp"
#include "web_server.hpp"

namespace outq::cli {

namespace asio = boost::asio;
namespace admin = queue::admin;

namespace {

using admin::field_list;

// Forwards a JSON value to a writer with every string and key made valid UTF-8
// (each ill-formed sequence becomes U+FFFD; control characters are escaped by
// the writer): --json output is JSON any parser reads, whatever bytes a
// result, a dead letter or a pause reason holds.
template <class Writer>
class valid_utf8_writer {
  public:
    explicit valid_utf8_writer(Writer& w) : w_(w) {}
    bool Null() { return w_.Null(); }
    bool Bool(bool b) { return w_.Bool(b); }
    bool Int(int i) { return w_.Int(i); }
    bool Uint(unsigned u) { return w_.Uint(u); }
    bool Int64(std::int64_t i) { return w_.Int64(i); }
    bool Uint64(std::uint64_t u) { return w_.Uint64(u); }
    bool Double(double d) { return w_.Double(d); }
    bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) { return w_.RawNumber(s, n, copy); }
    bool String(const char* s, rapidjson::SizeType n, bool copy) {
        if (is_valid_utf8({s, n})) return w_.String(s, n, copy);
        const std::string fixed = to_valid_utf8({s, n});
        return w_.String(fixed.data(), static_cast<rapidjson::SizeType>(fixed.size()), true);
    }
    bool Key(const char* s, rapidjson::SizeType n, bool copy) {
        if (is_valid_utf8({s, n})) return w_.Key(s, n, copy);
        const std::string fixed = to_valid_utf8({s, n});
        return w_.Key(fixed.data(), static_cast<rapidjson::SizeType>(fixed.size()), true);
    }
    bool StartObject() { return w_.StartObject(); }
    bool EndObject(rapidjson::SizeType n) { return w_.EndObject(n); }
    bool StartArray() { return w_.StartArray(); }
    bool EndArray(rapidjson::SizeType n) { return w_.EndArray(n); }

  private:
    Writer& w_;
};

void print_json(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
    w.SetIndent(' ', 2);
    valid_utf8_writer<decltype(w)> valid(w);
    v.Accept(valid);
    std::cout.write(buf.GetString(), static_cast<std::streamsize>(buf.GetSize())) << "\n";
}

// A JSON string of exactly these bytes (a NUL included).
rapidjson::Value json_string(std::string_view s, rapidjson::Document::AllocatorType& a) {
    return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}

bool is_number(std::string_view s) {
    if (s.empty() || s.size() > 18) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// Fields of a result or dead letter as a JSON object; numbers stay numbers,
// JSON-valued fields (meta, history, job) are embedded when they parse.
rapidjson::Value fields_to_json(const field_list& fields, rapidjson::Document::AllocatorType& a) {
    rapidjson::Value obj(rapidjson::kObjectType);
    for (auto& [k, v] : fields) {
        rapidjson::Value key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()), a);
        rapidjson::Value val;
        if ((k == "attempts" || k == "http_status" || k.ends_with("_at")) && is_number(v)) {
            val.SetInt64(std::stoll(v));
        } else if (k == "meta" || k == "history") {
            rapidjson::Document d(&a);
            d.Parse(v.c_str(), v.size());
            if (!d.HasParseError())
                val.CopyFrom(d, a);
            else
                val.SetString(v.c_str(), static_cast<rapidjson::SizeType>(v.size()), a);
        } else {
            val.SetString(v.c_str(), static_cast<rapidjson::SizeType>(v.size()), a);
        }
        obj.AddMember(key, val, a);
    }
    return obj;
}

void print_fields(const field_list& fields) {
    std::size_t width = 0;
    for (auto& [k, v] : fields) width = std::max(width, k.size());
    for (auto& [k, v] : fields) {
        std::string shown = v;
        if (k.ends_with("_at") && is_number(v)) shown += "  (" + format_rfc3339(std::stoll(v)) + ")";
        std::printf("%-*s  %s\n", static_cast<int>(width), k.c_str(), shown.c_str());
    }
}

std::string field(const field_list& f, std::string_view name) {
    for (auto& [k, v] : f)
        if (k == name) return v;
    return {};
}

// On stderr: a wrong --queue looks like an empty queue otherwise.
void warn_no_group(const std::string& queue) {
    std::fprintf(stderr,
                 "outq: warning: queue '%s' has no consumer group: no worker has started on it yet (is --queue "
                 "right?)\n",
                 queue.c_str());
}

int fail(const std::string& message) {
    std::fprintf(stderr, "outq: %s\n", message.c_str());
    return 1;
}

// 2023 -> "2,023".
std::string thousands(std::uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

// 11520000 -> "3h12m".
std::string human_age(std::int64_t ms) {
    if (ms < 0) ms = 0;
    const std::int64_t s = ms / 1000;
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
    if (s < 86400) return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
    return std::to_string(s / 86400) + "d" + std::to_string(s % 86400 / 3600) + "h";
}

// Whether to go on with a change of `count` items: --yes goes on; on a terminal
// (stdin) the operator is asked; without one, more than one item (or any, when
// `always_ask`) is refused. 0: go on; 1: declined; 2: refused (nothing done).
int confirm(const invocation& args, std::size_t count, const std::string& question, bool always_ask = false) {
    if (args.options.flag("yes")) return 0;
    if (::isatty(0)) {
        std::fprintf(stderr, "%s [y/N] ", question.c_str());
        std::fflush(stderr);
        std::string answer;
        std::getline(std::cin, answer);
        if (answer == "y" || answer == "Y" || answer == "yes" || answer == "YES") return 0;
        std::fprintf(stderr, "outq: nothing done\n");
        return 1;
    }
    if (count <= 1 && !always_ask) return 0;
    std::fprintf(stderr, "outq: %s: refused without a terminal to ask on; add --yes (nothing done)\n",
                 question.c_str());
    return 2;
}

// Progress of a long change on stderr, from 1,000 items on: a bar on a
// terminal, otherwise a count line per 1,000.
class progress {
  public:
    progress(std::string verb, std::size_t total)
        : verb_(std::move(verb)), total_(total), active_(total >= 1000), tty_(::isatty(2) != 0) {}
    void add(std::size_t n) {
        done_ += n;
        if (!active_) return;
        if (tty_) {
            const std::size_t width = 30, filled = total_ ? std::min(width, done_ * width / total_) : width;
            std::fprintf(stderr, "\r%s [%s%s] %s/%s", verb_.c_str(), std::string(filled, '#').c_str(),
                         std::string(width - filled, '.').c_str(), thousands(done_).c_str(), thousands(total_).c_str());
            std::fflush(stderr);
            return;
        }
        while (done_ >= next_) {
            std::fprintf(stderr, "outq: %s %s of %s\n", verb_.c_str(), thousands(next_).c_str(),
                         thousands(total_).c_str());
            next_ += 1000;
        }
    }
    ~progress() {
        if (active_ && tty_ && done_ > 0) std::fprintf(stderr, "\n");
    }

  private:
    std::string verb_;
    std::size_t total_ = 0, done_ = 0, next_ = 1000;
    bool active_ = false, tty_ = false;
};

std::string read_all(const std::string& file) {
    if (file.empty() || file == "-") {
        std::ostringstream ss;
        ss << std::cin.rdbuf();
        return ss.str();
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::size_t line_of(std::string_view text, std::size_t offset) {
    offset = std::min(offset, text.size());
    return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<long>(offset), '\n'));
}

// Where each element of a valid JSON array starts (offsets into `text`).
std::vector<std::size_t> element_offsets(std::string_view text) {
    std::vector<std::size_t> out;
    int depth = 0;
    bool in_string = false, escaped = false, expect_element = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
        if (depth == 1 && expect_element && c != ']') {
            out.push_back(i);
            expect_element = false;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth == 1) expect_element = true;
        } else if (c == ']' || c == '}') {
            --depth;
        } else if (c == ',' && depth == 1) {
            expect_element = true;
        }
    }
    return out;
}

}  // namespace

std::vector<input_job> split_jobs(std::string_view text) {
    std::vector<input_job> out;
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return out;
    rapidjson::Document whole;
    whole.Parse(text.data(), text.size());
    if (!whole.HasParseError()) {
        if (whole.IsObject()) {
            out.push_back({line_of(text, first), json::to_string(whole), ""});
        } else if (whole.IsArray()) {
            const auto starts = element_offsets(text);
            rapidjson::SizeType i = 0;
            for (auto& v : whole.GetArray()) {
                out.push_back({i < starts.size() ? line_of(text, starts[i]) : 0, json::to_string(v), ""});
                ++i;
            }
        } else {
            out.push_back(
                {line_of(text, first), "", "input must be a JSON object, an array of objects, or JSON lines"});
        }
        return out;
    }
    if (text[first] == '[') {  // an array, not JSON lines
        out.push_back({line_of(text, whole.GetErrorOffset()), "", "invalid JSON: " + json::parse_error_text(whole)});
        return out;
    }
    std::size_t number = 0;
    for (std::size_t start = 0; start <= text.size();) {
        auto end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view line = text.substr(start, end - start);
        ++number;
        start = end + 1;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        rapidjson::Document d;
        d.Parse(line.data(), line.size());
        if (d.HasParseError())
            out.push_back({number, "", "invalid JSON: " + json::parse_error_text(d)});
        else
            out.push_back({number, json::to_string(d), ""});
    }
    return out;
}

namespace {

using admin::dead_letter;

}  // namespace

// Reads one partition's dead stream in pages, oldest first.
asio::awaitable<bool> read_dead_of(context& ctx, const queue::keys& k, std::vector<dead_letter>& out,
                                   std::string& error) {
    std::string after;
    for (;;) {
        auto r = co_await ctx.redis.exec(admin::dead_page_command(k, after));
        if (!r.ok()) {
            error = r.error;
            co_return false;
        }
        auto page = admin::read_dead_page(r.replies[0]);
        if (!page.ok()) {
            error = page.error;
            co_return false;
        }
        const bool last = static_cast<long long>(page.value->size()) < admin::dead_page_size;
        if (!page.value->empty()) after = page.value->back().entry_id;
        for (auto& d : *page.value) {
            d.partition = k.partition;
            out.push_back(std::move(d));
        }
        if (last) co_return true;
    }
}

// Every partition's dead letters, oldest first (by entry id: the time it died).
asio::awaitable<bool> read_dead(context& ctx, std::vector<dead_letter>& out, std::string& error) {
    for (const auto& k : ctx.partitions)
        if (!co_await read_dead_of(ctx, k, out, error)) co_return false;
    if (ctx.partitions.size() > 1)
        std::stable_sort(out.begin(), out.end(), [](const dead_letter& a, const dead_letter& b) {
            return admin::entry_before(a.entry_id, b.entry_id);
        });
    co_return true;
}

// Every partition's replayed hash: dead letter entry id → the entry of its replay.
asio::awaitable<bool> read_replayed_maps(context& ctx, std::vector<field_list>& out, std::string& error) {
    std::vector<redis::command> cmds;
    for (const auto& k : ctx.partitions) cmds.push_back(admin::replayed_command(k));
    auto r = co_await ctx.redis.exec(cmds);
    if (!r.ok()) {
        error = r.error;
        co_return false;
    }
    out.clear();
    for (auto& reply : r.replies) {
        auto map = admin::read_hash(reply);
        if (!map.ok()) {
            error = map.error;
            co_return false;
        }
        out.push_back(std::move(*map.value));
    }
    co_return true;
}

// A letter's replay is recorded in its home partition (where the replay went).
std::string replayed_as(const context& ctx, const std::vector<field_list>& maps, const dead_letter& d) {
    return field(maps[static_cast<std::size_t>(letter_home(ctx, d).partition)], d.entry_id);
}

namespace {

struct dead_filter {
    std::string provider, account, error_class, status, grep;
    std::optional<unix_ms> since, until;
    bool matches(const dead_letter& d) const {
        if (!status.empty() && !admin::status_matches(status, field(d.fields, "http_status"))) return false;
        if (!grep.empty() && !admin::dead_letter_contains(d, grep)) return false;
        if (!provider.empty() && field(d.fields, "provider") != provider) return false;
        if (!account.empty() && field(d.fields, "account") != account) return false;
        if (!error_class.empty() && field(d.fields, "error_class") != error_class) return false;
        const auto failed = field(d.fields, "failed_at");
        const unix_ms at = is_number(failed) ? std::stoll(failed) : 0;
        if (since && at < *since) return false;
        if (until && at > *until) return false;
        return true;
    }
    bool any() const {
        return !provider.empty() || !account.empty() || !error_class.empty() || !status.empty() || !grep.empty() ||
               since || until;
    }
};

dead_filter read_filter(const invocation& args) {
    dead_filter f;
    f.provider = args.options.string("provider").value_or("");
    f.account = args.options.string("account").value_or("");
    f.error_class = args.options.string("class").value_or("");
    f.since = args.options.time("since");
    f.until = args.options.time("until");
    f.status = args.options.string("status").value_or("");
    f.grep = args.options.string("grep").value_or("");
    return f;
}

// A --status that is no status pattern: the message (exit 2), else nullopt.
std::optional<std::string> filter_problem(const dead_filter& f) {
    if (!f.status.empty() && !admin::valid_status_pattern(f.status))
        return "--status: expected an HTTP status (422) or a class of them (4xx, 42x), got '" + f.status + "'";
    return std::nullopt;
}

// For each letter, what became of its replay (nullopt: never replayed): the
// replayed hash, then the current result of each replayed letter's job.
asio::awaitable<bool> read_replays(context& ctx, const std::vector<const dead_letter*>& letters,
                                   std::vector<std::optional<admin::replay_info>>& out, std::string& error) {
    out.assign(letters.size(), std::nullopt);
    std::vector<field_list> maps;
    if (!co_await read_replayed_maps(ctx, maps, error)) co_return false;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < letters.size(); ++i)
        if (!replayed_as(ctx, maps, *letters[i]).empty()) which.push_back(i);
    for (std::size_t start = 0; start < which.size(); start += 1000) {
        const std::size_t end = std::min(which.size(), start + 1000);
        std::vector<redis::command> gets;
        for (std::size_t j = start; j < end; ++j) {
            const auto& d = *letters[which[j]];
            gets.push_back(admin::result_command(letter_home(ctx, d), field(d.fields, "id")));
        }
        auto g = co_await ctx.redis.exec(gets);
        if (!g.ok()) {
            error = g.error;
            co_return false;
        }
        auto statuses = admin::read_result_statuses(g.replies);
        if (!statuses.ok()) {
            error = statuses.error;
            co_return false;
        }
        for (std::size_t j = start; j < end; ++j) {
            const std::size_t i = which[j];
            const auto& home = letter_home(ctx, *letters[i]);
            out[i] = admin::replay_info_of(maps[static_cast<std::size_t>(home.partition)], letters[i]->entry_id,
                                           (*statuses.value)[j - start]);
        }
    }
    co_return true;
}

rapidjson::Value replay_json(const std::optional<admin::replay_info>& r, rapidjson::Document::AllocatorType& a) {
    rapidjson::Value v;  // null: never replayed
    if (!r) return v;
    v.SetObject();
    v.AddMember("entry", json_string(r->entry, a), a);
    v.AddMember("at", static_cast<std::int64_t>(r->at), a);
    rapidjson::Value result;
    if (!r->result.empty()) result = json_string(r->result, a);
    v.AddMember("result", result, a);
    return v;
}

std::string replay_text(const std::optional<admin::replay_info>& r) {
    if (!r) return "no";
    return "as entry " + r->entry + " at " + format_rfc3339(r->at) +
           "; result now: " + (r->result.empty() ? std::string("none yet") : r->result);
}

}  // namespace

const queue::keys& letter_home(const context& ctx, const dead_letter& d) {
    const auto job_id = json::scalar_member(field(d.fields, "job"), "id");
    if (job_id && !job_id->empty()) return ctx.home(*job_id);
    return ctx.partitions[static_cast<std::size_t>(d.partition)];
}

const queue::keys& context::home(std::string_view job_id) const {
    return partitions[static_cast<std::size_t>(queue::partition_of(job_id, static_cast<int>(partitions.size())))];
}

// The partition count outq:{Q}:partitions records; before any worker
// recorded one, the config's (--config), else 1. A config that disagrees with
// Redis is warned about: Redis is what the workers go by.
asio::awaitable<std::optional<std::string>> load_partitions(context& ctx) {
    auto r = co_await ctx.redis.exec(redis::command("GET").arg(queue::partitions_key(ctx.queue)));
    if (!r.ok()) co_return "redis: " + r.error;
    const auto& v = r.replies[0];
    int count = ctx.config ? ctx.config->queue_partitions : 1;
    if (v.is_error()) co_return "redis: reading " + queue::partitions_key(ctx.queue) + ": " + v.str;
    if (v.is_string()) {
        const auto recorded = queue::parse_partition_count(v.str);
        if (!recorded)
            co_return queue::partitions_key(ctx.queue) + " holds " + log::value(v.str) + ", not a partition count";
        if (ctx.config && ctx.config->queue_partitions != *recorded)
            std::fprintf(stderr, "outq: warning: the config says %d partitions, Redis records %d (%s): using %d\n",
                         ctx.config->queue_partitions, *recorded, queue::partitions_key(ctx.queue).c_str(), *recorded);
        count = *recorded;
    }
    ctx.partitions = queue::partition_keys(ctx.queue, count);
    co_return std::nullopt;
}

namespace {

// A command that reads or writes the queue: its partitions first.
template <command_handler handler>
asio::awaitable<int> on_partitions(context& ctx, const invocation& args) {
    if (auto problem = co_await load_partitions(ctx)) co_return fail(*problem);
    co_return co_await handler(ctx, args);
}

}  // namespace

command_handler handler_for(const command_spec& command) {
    static const std::pair<std::string_view, command_handler> handlers[] = {
        {"enqueue", on_partitions<enqueue>},
        {"result", on_partitions<show_result>},
        {"stats", on_partitions<stats>},
        {"dead list", on_partitions<dead_list>},
        {"dead show", on_partitions<dead_show>},
        {"dead replay", on_partitions<dead_replay>},
        {"pause", on_partitions<pause>},
        {"resume", on_partitions<resume>},
        {"cancel", on_partitions<cancel>},
        {"migrate", on_partitions<migrate>},
        {"health", health},
        {"web", on_partitions<web>},
    };
    for (auto& [name, handler] : handlers)
        if (name == command.name) return handler;
    // The dead-letter lifecycle and the job commands (issue 15, items 4 and 5).
    static const std::pair<std::string_view, command_handler> lifecycle_handlers[] = {
        {"dead delete", on_partitions<dead_delete>},
        {"dead purge", on_partitions<dead_purge>},
        {"job", on_partitions<job_show>},
        {"job cancel", on_partitions<cancel>},
        {"job retry-now", on_partitions<job_retry_now>},
        {"list", on_partitions<list_jobs>},
    };
    for (auto& [name, handler] : lifecycle_handlers)
        if (name == command.name) return handler;
    return nullptr;
}

asio::awaitable<int> enqueue(context& ctx, const invocation& args) {
    std::string text;
    try {
        text = read_all(args.positional.empty() ? "-" : args.positional[0]);
    } catch (const std::exception& e) {
        co_return fail(e.what());
    }
    const std::vector<input_job> input = split_jobs(text);
    if (input.empty()) co_return fail("no jobs in the input");
    // Validate everything before writing anything: all or nothing. Every
    // invalid job is reported, by the line of the input where it starts.
    std::vector<std::pair<std::size_t, std::string>> invalid;  // line, problem
    std::vector<std::string> jobs;
    std::vector<std::string> job_ids;           // the producer's ids (a job without one is never a duplicate)
    std::vector<std::size_t> partition_of_job;  // where each goes: its id's partition, else in turn
    for (const auto& in : input) {
        std::string problem = in.error;
        if (problem.empty()) {
            auto parsed = parse_job(in.json, "cli");
            problem = parsed.ok() ? "" : parsed.failure.error;
            if (parsed.ok() && ctx.config) {
                auto p = ctx.config->providers.find(parsed.value->provider);
                if (p == ctx.config->providers.end())
                    problem = "job.provider: provider '" + parsed.value->provider + "' is not configured";
                else if (!p->second.accounts.count(parsed.value->account))
                    problem = "job.account: no account '" + parsed.value->account + "' for provider '" +
                              parsed.value->provider + "'";
                else if (auto bad = ctx.adapters.find(parsed.value->provider)->validate(*parsed.value))
                    problem = *bad;
            }
        }
        if (problem.empty()) {
            jobs.push_back(in.json);
            auto id = json::scalar_member(in.json, "id");
            if (id && !id->empty()) {
                partition_of_job.push_back(static_cast<std::size_t>(ctx.home(*id).partition));
                job_ids.push_back(std::move(*id));
            } else
                partition_of_job.push_back(jobs.size() % ctx.partitions.size());
        } else
            invalid.emplace_back(in.line, std::move(problem));
    }
    if (!invalid.empty()) {
        for (auto& [line, problem] : invalid) std::fprintf(stderr, "outq: line %zu: %s\n", line, problem.c_str());
        std::fprintf(stderr, "outq: %zu of %zu jobs invalid; nothing enqueued\n", invalid.size(), input.size());
        if (args.json) {
            rapidjson::Document d(rapidjson::kObjectType);
            auto& a = d.GetAllocator();
            d.AddMember("enqueued", 0, a);
            rapidjson::Value list(rapidjson::kArrayType);
            for (auto& [line, problem] : invalid) {
                rapidjson::Value o(rapidjson::kObjectType);
                o.AddMember("line", static_cast<std::uint64_t>(line), a);
                o.AddMember("error", json_string(problem, a), a);
                list.PushBack(o, a);
            }
            d.AddMember("invalid", list, a);
            print_json(d);
        }
        co_return 1;
    }
    const queue::keys& k = ctx.queue_wide();
    // Advisory: a producer's Redis user may not be allowed XINFO, and a failed
    // connection fails the writes below anyway.
    const auto groups = co_await ctx.redis.exec(admin::groups_command(k));
    if (groups.ok()) {
        const auto group = admin::read_group(groups.replies[0]);
        if (group.ok() && !group.value->has_value()) warn_no_group(ctx.queue);
    }
    // A copy of a job that has a result already is skipped by the workers (a
    // duplicate event): said here, before it happens. Advisory, like the group check.
    std::vector<std::pair<std::string, std::string>> duplicates;  // id, status found
    for (std::size_t start = 0; start < job_ids.size(); start += 1000) {
        std::vector<redis::command> gets;
        const std::size_t end = std::min(job_ids.size(), start + 1000);
        for (std::size_t i = start; i < end; ++i)
            gets.push_back(admin::result_command(ctx.home(job_ids[i]), job_ids[i]));
        auto r = co_await ctx.redis.exec(gets);
        if (!r.ok()) break;
        for (std::size_t i = start; i < end; ++i) {
            const auto& v = r.replies[i - start];
            if (!v.is_string()) continue;
            auto state = queue::read_result_value(v.str);
            if (state.what == queue::result_state::kind::final || state.what == queue::result_state::kind::sending)
                duplicates.emplace_back(job_ids[i], state.status);
        }
    }
    for (std::size_t i = 0; i < duplicates.size() && i < 10; ++i)
        std::fprintf(stderr, "outq: warning: job %s already has a result (%s): workers skip this copy as a duplicate\n",
                     log::value(duplicates[i].first).c_str(), duplicates[i].second.c_str());
    if (duplicates.size() > 10)
        std::fprintf(stderr, "outq: warning: and %zu more jobs that already have a result\n", duplicates.size() - 10);
    std::vector<std::string> ids;
    progress shown_progress("enqueued", jobs.size());
    for (std::size_t start = 0; start < jobs.size(); start += 1000) {
        std::vector<redis::command> cmds;
        for (std::size_t i = start; i < std::min(jobs.size(), start + 1000); ++i)
            cmds.push_back(admin::enqueue_command(ctx.partitions[partition_of_job[i]], jobs[i]));
        auto r = co_await ctx.redis.exec(cmds);
        if (!r.ok()) co_return fail("redis: " + r.error + " (" + std::to_string(ids.size()) + " jobs enqueued)");
        for (auto& v : r.replies) {
            auto id = admin::read_enqueued(v);
            if (!id.ok()) co_return fail("redis: " + id.error + " (" + std::to_string(ids.size()) + " jobs enqueued)");
            ids.push_back(std::move(*id.value));
        }
        shown_progress.add(r.replies.size());
    }
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("enqueued", static_cast<uint64_t>(ids.size()), a);
        rapidjson::Value entries(rapidjson::kArrayType);
        for (auto& id : ids) entries.PushBack(json_string(id, a), a);
        d.AddMember("entries", entries, a);
        rapidjson::Value dup(rapidjson::kArrayType);
        for (auto& [id, status] : duplicates) {
            rapidjson::Value o(rapidjson::kObjectType);
            o.AddMember("id", json_string(id, a), a);
            o.AddMember("status", json_string(status, a), a);
            dup.PushBack(o, a);
        }
        d.AddMember("duplicates", dup, a);
        print_json(d);
    } else {
        if (ctx.partitions.size() == 1)
            std::printf("enqueued %zu job(s) on %s\n", ids.size(), k.jobs.c_str());
        else
            std::printf("enqueued %zu job(s) on the %zu partitions of %s\n", ids.size(), ctx.partitions.size(),
                        ctx.queue.c_str());
    }
    co_return 0;
}

namespace {

// A result value (JSON, docs/protocol.md) as name/value lines: strings as
// they are, anything else as compact JSON.
field_list result_lines(const rapidjson::Document& d) {
    field_list out;
    for (auto& m : d.GetObject()) {
        std::string name(m.name.GetString(), m.name.GetStringLength());
        if (m.value.IsString())
            out.emplace_back(std::move(name), std::string(m.value.GetString(), m.value.GetStringLength()));
        else
            out.emplace_back(std::move(name), json::to_string(m.value));
    }
    return out;
}

}  // namespace

namespace {

// Whether a result value (or none) is an outcome, not a marker.
bool is_outcome(const std::optional<std::string>& value) {
    return value && queue::read_result_value(*value).what == queue::result_state::kind::final;
}

}  // namespace

asio::awaitable<int> show_result(context& ctx, const invocation& args) {
    const std::string& id = args.positional[0];
    const queue::keys& k = ctx.home(id);
    // For --wait: the results stream's last id before the first read, so an
    // outcome written between that read and the first XREAD is not missed.
    std::string after = "0-0";
    if (args.options.flag("wait")) {
        auto last = co_await ctx.redis.exec(admin::last_event_command(k));
        if (!last.ok()) co_return fail("redis: " + last.error);
        auto read_last = admin::read_last_event(last.replies[0]);
        if (!read_last.ok()) co_return fail("redis: " + read_last.error);
        after = *read_last.value;
    }
    auto r = co_await ctx.redis.exec(admin::result_command(k, id));
    if (!r.ok()) co_return fail("redis: " + r.error);
    auto read = admin::read_result_reply(r.replies[0]);
    if (!read.ok()) co_return fail("redis: " + read.error);
    if (args.options.flag("wait") && !is_outcome(*read.value)) {
        const auto deadline = std::chrono::steady_clock::now() + *args.options.duration("timeout");
        while (!is_outcome(*read.value)) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left <= std::chrono::milliseconds(0))
                co_return fail("no outcome for job " + id + " within " +
                               std::to_string(args.options.duration("timeout")->count() / 1000) + " s");
            // At most a second per read: the result is read again after each,
            // which also covers an event that was trimmed away.
            const auto block = std::min(left, std::chrono::milliseconds(1000));
            auto ev = co_await ctx.redis.exec(admin::follow_events_command(k, after, block),
                                              block + std::chrono::milliseconds(5000));
            if (!ev.ok()) co_return fail("redis: " + ev.error);
            auto seen = admin::read_followed_events(ev.replies[0], id, after);
            if (!seen.ok()) co_return fail("redis: " + seen.error);
            r = co_await ctx.redis.exec(admin::result_command(k, id));
            if (!r.ok()) co_return fail("redis: " + r.error);
            read = admin::read_result_reply(r.replies[0]);
            if (!read.ok()) co_return fail("redis: " + read.error);
        }
    }
    if (!*read.value) co_return fail("no result for job " + id + " (not taken by a worker yet, or expired)");
    // Workers write results as UTF-8; anything else is shown as U+FFFD, so the output stays JSON.
    const std::string text = to_valid_utf8(**read.value);
    rapidjson::Document d;
    d.Parse(text.c_str(), text.size());
    if (d.HasParseError() || !d.IsObject())
        co_return fail("the result of job " + id + " is not a format 2 value: " + log::value(**read.value));
    const auto* status = json::find(d, "status");
    const bool in_flight = status && status->IsString() && json::view(*status) == "sending";
    if (args.json)
        print_json(d);
    else
        print_fields(result_lines(d));
    if (in_flight) {
        std::fprintf(stderr, "outq: job %s is being sent; no outcome yet\n", id.c_str());
        co_return 1;
    }
    co_return 0;
}

asio::awaitable<int> cancel(context& ctx, const invocation& args) {
    const std::string& id = args.positional[0];
    const queue::keys& k = ctx.home(id);
    queue::write_settings w;
    w.result_ttl_seconds = std::max<std::int64_t>(1, args.options.duration("ttl")->count() / 1000);
    if (ctx.config) w.results_stream_maxlen = ctx.config->results_stream_maxlen;
    const std::string reason = *args.options.string("reason");
    auto r = co_await ctx.redis.exec(admin::cancel_command(k, id, reason, wall_now_ms(), w));
    if (!r.ok()) co_return fail("redis: " + r.error);
    auto read = admin::read_cancel(r.replies[0]);
    if (!read.ok()) co_return fail("redis: " + read.error);
    if (*read.value) {
        const auto state = queue::read_result_value(**read.value);
        const std::string status = state.status.empty() ? std::string("unknown") : state.status;
        if (args.json) {
            rapidjson::Document d(rapidjson::kObjectType);
            auto& a = d.GetAllocator();
            d.AddMember("cancelled", false, a);
            d.AddMember("id", json_string(id, a), a);
            d.AddMember("status", json_string(status, a), a);
            print_json(d);
        }
        co_return fail("job " + id + " cannot be cancelled: its status is " + status +
                       (status == "sending" ? " (a worker holds it)" : ""));
    }
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("cancelled", true, a);
        d.AddMember("id", json_string(id, a), a);
        d.AddMember("reason", json_string(reason, a), a);
        print_json(d);
    } else {
        std::printf("cancelled %s: workers skip it\n", id.c_str());
    }
    co_return 0;
}

using admin::scope_state;

// Every limit key of the queue, found with SCAN (operator command, not a hot path).
asio::awaitable<std::vector<scope_state>> read_scopes(context& ctx, std::string& error) {
    const queue::keys& k = ctx.queue_wide();
    std::set<std::string> names;  // "provider:account", sorted
    std::string cursor = "0";
    do {
        auto r = co_await ctx.redis.exec(admin::scan_scopes_command(k, cursor));
        if (!r.ok()) {
            error = r.error;
            co_return std::vector<scope_state>{};
        }
        auto page = admin::read_scan_scopes(k, r.replies[0]);
        if (!page.ok()) {
            error = page.error;
            co_return std::vector<scope_state>{};
        }
        cursor = std::move(page.value->cursor);
        names.insert(page.value->scopes.begin(), page.value->scopes.end());
    } while (cursor != "0");
    std::vector<scope_state> out;
    for (auto& name : names) {
        auto r = co_await ctx.redis.exec(admin::scope_state_commands(k, name));
        if (!r.ok()) {
            error = r.error;
            co_return std::vector<scope_state>{};
        }
        auto state = admin::read_scope_state(name, r.replies);
        if (!state.ok()) {
            error = state.error;
            co_return std::vector<scope_state>{};
        }
        out.push_back(std::move(*state.value));
    }
    co_return out;
}

namespace {

std::string joined(const std::vector<std::string_view>& names) {
    std::string out;
    for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
    return out;
}

// Why PROVIDER ACCOUNT is not one the workers send to, or nullopt: a provider
// outq does not know, or (with --config) a provider or account not configured.
std::optional<std::string> unknown_scope(const context& ctx, const std::string& provider, const std::string& account) {
    const auto did_you_mean = [](std::string_view word, const std::vector<std::string_view>& names) {
        const auto near = closest_match(word, names);
        return near.empty() ? std::string() : "; did you mean '" + std::string(near) + "'?";
    };
    if (!ctx.adapters.find(provider)) {
        const auto names = ctx.adapters.names();
        return "unknown provider '" + provider + "' (known: " + joined(names) + ")" + did_you_mean(provider, names);
    }
    if (!ctx.config) return std::nullopt;
    std::vector<std::string_view> names;
    const auto p = ctx.config->providers.find(provider);
    if (p == ctx.config->providers.end()) {
        for (auto& [name, settings] : ctx.config->providers) names.push_back(name);
        return "provider '" + provider + "' is not configured (configured: " + joined(names) + ")" +
               did_you_mean(provider, names);
    }
    if (p->second.accounts.count(account)) return std::nullopt;
    for (auto& [name, settings] : p->second.accounts) names.push_back(name);
    return "provider '" + provider + "' has no account '" + account + "' in the config (configured: " + joined(names) +
           ")" + did_you_mean(account, names);
}

// The pause or resume stands whether or not its PUBLISH on the control channel
// was refused (a Redis user without PUBLISH): the workers then learn of it
// later, as they did before the channel.
void warn_unpublished(const redis::value& reply, const char* done, const char* when) {
    const auto published = admin::read_published(reply);
    if (published.ok()) return;
    std::fprintf(stderr, "outq: warning: %s, but the workers were not told (%s); they see it %s\n", done,
                 published.error.c_str(), when);
}

// False (after saying why, exit 2) when the scope is unknown and --force is not given.
bool check_scope(const context& ctx, const invocation& args, const char* verb) {
    const auto problem = unknown_scope(ctx, args.positional[0], args.positional[1]);
    if (!problem) return true;
    if (!args.options.flag("force")) {
        std::fprintf(stderr, "outq: %s (--force to %s it anyway)\n", problem->c_str(), verb);
        return false;
    }
    std::fprintf(stderr, "outq: warning: %s; %s it anyway (--force)\n", problem->c_str(), verb);
    return true;
}

}  // namespace

asio::awaitable<int> pause(context& ctx, const invocation& args) {
    if (!check_scope(ctx, args, "pause")) co_return 2;
    const std::optional<std::chrono::milliseconds> duration = args.options.duration("for");
    const std::string reason = *args.options.string("reason");
    // An operator's pause replaces any other (it may shorten one): SET, not the extend-only script.
    // The workers hear it on the control channel, in the same pipeline.
    const queue::keys& k = ctx.queue_wide();
    auto r = co_await ctx.redis.exec(
        admin::operator_pause_commands(k, args.positional[0], args.positional[1], reason, duration));
    if (!r.ok()) co_return fail("redis: " + r.error);
    if (auto set = admin::read_ok(r.replies[0], "SET"); !set.ok()) co_return fail("redis: " + set.error);
    warn_unpublished(r.replies[1], "paused", "at their next claim or permit");
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("paused", true, a);
        d.AddMember("provider", json_string(args.positional[0], a), a);
        d.AddMember("account", json_string(args.positional[1], a), a);
        rapidjson::Value for_ms;  // null: until resumed
        if (duration) for_ms.SetInt64(duration->count());
        d.AddMember("for_ms", for_ms, a);
        d.AddMember("reason", json_string(reason, a), a);
        print_json(d);
    } else {
        std::printf("paused %s/%s %s\n", args.positional[0].c_str(), args.positional[1].c_str(),
                    duration ? ("for " + std::to_string(duration->count() / 1000) + " s").c_str() : "until resumed");
    }
    co_return 0;
}

asio::awaitable<resume_outcome> resume_account(context& ctx, const std::string& provider, const std::string& account) {
    resume_outcome out;
    auto r = co_await ctx.redis.exec(admin::resume_commands(ctx.queue_wide(), provider, account));
    if (!r.ok()) {
        out.error = "redis: " + r.error;
        co_return out;
    }
    const auto was_paused = admin::read_resumed(r.replies[0]);
    if (!was_paused.ok()) {
        out.error = "redis: " + was_paused.error;
        co_return out;
    }
    out.was_paused = *was_paused.value;
    out.unpublished = r.replies[1];
    // Jobs that met the pause wait in the delayed set until its planned end: bring
    // this account's back now. Paged through the jobs due later than now; a moved
    // job leaves that range, so the next page starts that many ranks earlier.
    // Every partition's delayed set holds some.
    const unix_ms now = wall_now_ms();
    for (const queue::keys& k : ctx.partitions)
        for (long long start = 0;;) {
            auto page = co_await ctx.redis.exec(admin::held_page_command(k, now, start));
            if (!page.ok()) {
                out.error = "redis: " + page.error + " (resumed; held jobs not moved)";
                co_return out;
            }
            const auto tokens = admin::read_held_page(page.replies[0]);
            if (!tokens.ok()) {
                out.error = "redis: " + tokens.error + " (resumed; held jobs not moved)";
                co_return out;
            }
            if (tokens.value->empty()) break;
            auto jobs = co_await ctx.redis.exec(admin::held_job_commands(k, *tokens.value));
            if (!jobs.ok()) {
                out.error = "redis: " + jobs.error + " (resumed; held jobs not moved)";
                co_return out;
            }
            const auto held = admin::read_held_jobs_of(jobs.replies, *tokens.value, provider, account);
            if (!held.ok()) {
                out.error = "redis: " + held.error + " (resumed; held jobs not moved)";
                co_return out;
            }
            if (!held.value->empty()) {
                auto due = admin::due_now_commands(k, *held.value, now);
                due.push_back(queue::announce_due_command(k, now));  // the movers look at once
                auto b = co_await ctx.redis.exec(std::move(due));
                if (!b.ok()) {
                    out.error = "redis: " + b.error + " (resumed; some held jobs not moved)";
                    co_return out;
                }
                b.replies.pop_back();  // a refused PUBLISH fails nothing: the movers poll (mover_poll_ms)
                if (auto e = admin::first_error(b.replies)) {
                    out.error = "redis: " + *e + " (resumed; some held jobs not moved)";
                    co_return out;
                }
                out.moved += held.value->size();
            }
            if (static_cast<long long>(tokens.value->size()) < admin::held_page_size) break;
            start += static_cast<long long>(tokens.value->size() - held.value->size());
        }
    co_return out;
}

asio::awaitable<int> resume(context& ctx, const invocation& args) {
    if (!check_scope(ctx, args, "resume")) co_return 2;
    const auto& provider = args.positional[0];
    const auto& account = args.positional[1];
    const auto done = co_await resume_account(ctx, provider, account);
    if (done.unpublished.type != redis::value::kind::nil)
        warn_unpublished(done.unpublished, "resumed", "when their wait for the pause ends");
    if (!done.error.empty()) co_return fail(done.error);
    const auto was_paused = std::optional<bool>(done.was_paused);
    const std::size_t moved = done.moved;
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("provider", json_string(provider, a), a);
        d.AddMember("account", json_string(account, a), a);
        d.AddMember("was_paused", *was_paused, a);
        d.AddMember("held_jobs_due_now", static_cast<std::uint64_t>(moved), a);
        print_json(d);
    } else {
        std::printf("%s %s/%s; %zu held job(s) due now\n",
                    *was_paused ? "resumed" : "was not paused:", provider.c_str(), account.c_str(), moved);
    }
    co_return 0;
}

namespace {

// One block of stats; `line`: --json as one compact line (for --watch).
asio::awaitable<int> stats_once(context& ctx, const invocation& args, bool line) {
    // Every partition's, added up (each partition one pipeline: one slot, one node).
    std::vector<admin::queue_stats> parts;
    std::optional<unix_ms> oldest_dead;
    for (const auto& k : ctx.partitions) {
        auto cmds = admin::stats_commands(k);
        const std::size_t n = cmds.size();
        cmds.push_back(admin::oldest_dead_command(k));
        auto r = co_await ctx.redis.exec(cmds);
        if (!r.ok()) co_return fail("redis: " + r.error);
        const std::vector<redis::value> stats_replies(r.replies.begin(), r.replies.begin() + static_cast<long>(n));
        const auto read = admin::read_stats(stats_replies);
        if (!read.ok()) co_return fail("redis: " + read.error);
        parts.push_back(*read.value);
        const auto oldest = admin::read_oldest_dead(r.replies[n]);
        if (!oldest.ok()) co_return fail("redis: " + oldest.error);
        if (*oldest.value && (!oldest_dead || **oldest.value < *oldest_dead)) oldest_dead = *oldest.value;
    }
    const admin::queue_stats st = admin::sum_stats(parts);
    const unix_ms now = wall_now_ms();
    const std::int64_t dead_maxlen = ctx.config ? ctx.config->dead_maxlen : 0;
    const std::string retention =
        dead_maxlen > 0 ? "trimmed to about " + thousands(static_cast<std::uint64_t>(dead_maxlen)) + " (dead.maxlen)"
                        : std::string("never trimmed");
    if (!st.group) warn_no_group(ctx.queue);
    const std::int64_t waiting = st.waiting();
    std::string scope_error;
    auto scopes = co_await read_scopes(ctx, scope_error);
    if (!scope_error.empty()) co_return fail("redis: " + scope_error);
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("queue", json_string(ctx.queue, a), a);
        d.AddMember("partitions", static_cast<std::uint64_t>(ctx.partitions.size()), a);
        d.AddMember("stream_length", st.stream_length, a);
        d.AddMember("waiting", waiting, a);
        d.AddMember("pending", st.pending, a);
        d.AddMember("delayed", st.delayed, a);
        d.AddMember("dead", st.dead, a);
        rapidjson::Value oldest_at, oldest_age;  // null: no dead letter
        if (oldest_dead) {
            oldest_at.SetInt64(*oldest_dead);
            oldest_age.SetInt64(std::max<std::int64_t>(0, now - *oldest_dead));
        }
        d.AddMember("oldest_dead_at", oldest_at, a);
        d.AddMember("oldest_dead_age_ms", oldest_age, a);
        d.AddMember("dead_retention", json_string(retention, a), a);
        if (dead_maxlen > 0) d.AddMember("dead_maxlen", dead_maxlen, a);
        d.AddMember("results_events", st.results_events, a);
        d.AddMember("consumers", st.consumers, a);
        rapidjson::Value pauses(rapidjson::kArrayType), rates(rapidjson::kArrayType);
        for (auto& sc : scopes) {
            if (sc.pause_ms != -2) {
                rapidjson::Value p(rapidjson::kObjectType);
                p.AddMember("scope", json_string(sc.provider_account, a), a);
                p.AddMember("remaining_ms", sc.pause_ms, a);
                p.AddMember("reason", json_string(sc.pause_reason, a), a);
                pauses.PushBack(p, a);
            }
            if (sc.in_window > 0) {
                rapidjson::Value rate(rapidjson::kObjectType);
                rate.AddMember("scope", json_string(sc.provider_account, a), a);
                rate.AddMember("requests_in_window", sc.in_window, a);
                rates.PushBack(rate, a);
            }
        }
        // Only circuits that are open or half-open (a hash with failures only is closed).
        rapidjson::Value circuits(rapidjson::kArrayType);
        for (auto& sc : scopes) {
            if (!sc.circuit || sc.circuit->phase(now) == "closed") continue;
            const auto& c = *sc.circuit;
            rapidjson::Value entry(rapidjson::kObjectType);
            entry.AddMember("scope", json_string(sc.provider_account, a), a);
            entry.AddMember("state", json_string(c.phase(now), a), a);
            entry.AddMember("remaining_ms", c.remaining_ms(now), a);
            entry.AddMember("failures", c.failures, a);
            entry.AddMember("opens", c.opens, a);
            entry.AddMember("opened_at", c.opened_at, a);
            entry.AddMember("open_ms", c.open_ms, a);
            entry.AddMember("reason", json_string(c.reason, a), a);
            circuits.PushBack(entry, a);
        }
        d.AddMember("pauses", pauses, a);
        d.AddMember("rates", rates, a);
        d.AddMember("circuits", circuits, a);
        if (line) {
            rapidjson::StringBuffer buf;
            rapidjson::Writer<rapidjson::StringBuffer> w(buf);
            valid_utf8_writer<decltype(w)> valid(w);
            d.Accept(valid);
            std::cout.write(buf.GetString(), static_cast<std::streamsize>(buf.GetSize())) << "\n";
        } else {
            print_json(d);
        }
    } else {
        const std::string dead_note = oldest_dead
                                          ? "  (oldest " + human_age(now - *oldest_dead) + " ago; " + retention + ")"
                                          : "  (" + retention + ")";
        std::printf(
            "queue     %s%s\nwaiting   %lld\npending   %lld  (taken by a worker, not finished)\n"
            "delayed   %lld  (retries and not_before)\ndead      %lld%s\nconsumers %lld\n",
            ctx.queue.c_str(),
            ctx.partitions.size() > 1 ? ("  (" + std::to_string(ctx.partitions.size()) + " partitions)").c_str() : "",
            static_cast<long long>(waiting), static_cast<long long>(st.pending), static_cast<long long>(st.delayed),
            static_cast<long long>(st.dead), dead_note.c_str(), static_cast<long long>(st.consumers));
        for (auto& sc : scopes) {
            if (sc.pause_ms == -1)
                std::printf("paused    %s until resumed (%s)\n", sc.provider_account.c_str(), sc.pause_reason.c_str());
            else if (sc.pause_ms >= 0)
                std::printf("paused    %s for %.1f s more (%s)\n", sc.provider_account.c_str(),
                            static_cast<double>(sc.pause_ms) / 1000.0, sc.pause_reason.c_str());
            if (sc.circuit && sc.circuit->phase(now) != "closed") {
                const auto& c = *sc.circuit;
                const std::string why = "opening " + std::to_string(c.opens) + ", " + std::to_string(c.failures) +
                                        " failures; last: " + c.reason;
                if (c.phase(now) == "open")
                    std::printf("circuit   %s open for %.1f s more (%s)\n", sc.provider_account.c_str(),
                                static_cast<double>(c.remaining_ms(now)) / 1000.0, why.c_str());
                else
                    std::printf("circuit   %s half-open: the next request is the fleet's one probe (%s)\n",
                                sc.provider_account.c_str(), why.c_str());
            }
            if (sc.in_window > 0)
                std::printf("rate      %s: %lld requests in the current window\n", sc.provider_account.c_str(),
                            static_cast<long long>(sc.in_window));
        }
    }
    std::cout.flush();
    std::fflush(stdout);
    co_return 0;
}

}  // namespace

asio::awaitable<int> stats(context& ctx, const invocation& args) {
    if (!args.options.flag("watch")) co_return co_await stats_once(ctx, args, false);
    // Like top: a block per --interval (the screen cleared first on a terminal) until SIGINT.
    auto executor = co_await asio::this_coro::executor;
    asio::signal_set signals(executor, SIGINT, SIGTERM);
    asio::steady_timer timer(executor);
    bool stop = false;
    signals.async_wait([&stop, &timer](const boost::system::error_code& ec, int) {
        if (ec) return;
        stop = true;
        timer.cancel();
    });
    const bool tty = ::isatty(1) != 0;
    const auto interval = *args.options.duration("interval");
    while (!stop) {
        if (tty)
            std::printf("\033[H\033[2J");
        else if (!args.json)
            std::printf("--- %s\n", format_rfc3339(wall_now_ms()).c_str());
        const int rc = co_await stats_once(ctx, args, true);
        if (rc != 0) {
            signals.cancel();
            co_return rc;
        }
        if (!tty && !args.json) std::printf("\n");
        std::fflush(stdout);
        if (stop) break;
        timer.expires_after(interval);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    signals.cancel();
    co_return 0;
}

asio::awaitable<int> dead_list(context& ctx, const invocation& args) {
    const dead_filter filter = read_filter(args);
    if (auto problem = filter_problem(filter)) {
        std::fprintf(stderr, "outq: %s\n", problem->c_str());
        co_return 2;
    }
    std::string error;
    std::vector<dead_letter> all;
    if (!co_await read_dead(ctx, all, error)) co_return fail("redis: " + error);
    const long long limit = *args.options.integer("limit");
    const std::string after = args.options.string("after").value_or("");
    // Newest first; the page after `after` is the matching letters older than it.
    std::size_t matching = 0, skipped = 0;
    std::vector<const dead_letter*> shown;
    bool more = false;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        if (!filter.matches(*it)) continue;
        ++matching;
        if (!after.empty() && !admin::entry_before(it->entry_id, after)) {
            ++skipped;
            continue;
        }
        if (static_cast<long long>(shown.size()) < limit)
            shown.push_back(&*it);
        else
            more = true;
    }
    std::vector<std::optional<admin::replay_info>> replays;
    if (!co_await read_replays(ctx, shown, replays, error)) co_return fail("redis: " + error);
    std::string footer;
    if (!shown.empty() && (more || skipped > 0)) {
        footer = thousands(shown.size()) + " of " + thousands(matching) + " dead letters";
        if (skipped > 0)
            footer += " (" + thousands(skipped + 1) + "–" + thousands(skipped + shown.size()) + ", newest first)";
        if (more) footer += "; next page: --after " + shown.back()->entry_id;
    }
    if (args.json) {
        rapidjson::Document d(rapidjson::kArrayType);
        auto& a = d.GetAllocator();
        for (std::size_t i = 0; i < shown.size(); ++i) {
            auto obj = fields_to_json(shown[i]->fields, a);
            obj.AddMember("entry_id", json_string(shown[i]->entry_id, a), a);
            obj.AddMember("replayed", replay_json(replays[i], a), a);
            d.PushBack(obj, a);
        }
        print_json(d);
        if (!footer.empty()) std::fprintf(stderr, "outq: %s\n", footer.c_str());
        co_return 0;
    }
    if (shown.empty()) {
        std::printf("no dead letters%s\n", filter.any() || !after.empty() ? " match" : "");
        co_return 0;
    }
    std::printf("%-20s %-24s %-18s %-18s %-5s %-16s %s\n", "ENTRY", "JOB ID", "PROVIDER/ACCOUNT", "CLASS", "HTTP",
                "REPLAYED", "ERROR");
    for (std::size_t i = 0; i < shown.size(); ++i) {
        const dead_letter* dl = shown[i];
        auto pa = field(dl->fields, "provider") + "/" + field(dl->fields, "account");
        auto err = field(dl->fields, "error");
        if (err.size() > 70) err = err.substr(0, 67) + "...";
        std::string replayed = "-";
        if (replays[i])
            replayed = (replays[i]->result.empty() ? std::string("waiting") : replays[i]->result) + " " +
                       human_age(wall_now_ms() - replays[i]->at) + " ago";
        const auto status = field(dl->fields, "http_status");
        std::printf("%-20s %-24s %-18s %-18s %-5s %-16s %s\n", dl->entry_id.c_str(), field(dl->fields, "id").c_str(),
                    pa.c_str(), field(dl->fields, "error_class").c_str(), status.empty() ? "-" : status.c_str(),
                    replayed.c_str(), err.c_str());
    }
    if (!footer.empty()) std::printf("%s\n", footer.c_str());
    co_return 0;
}

asio::awaitable<int> dead_show(context& ctx, const invocation& args) {
    const auto& wanted = args.positional[0];
    std::vector<dead_letter> all;
    std::string error;
    if (!co_await read_dead(ctx, all, error)) co_return fail("redis: " + error);
    const dead_letter* found = nullptr;
    for (auto it = all.rbegin(); it != all.rend() && !found; ++it)
        if (it->entry_id == wanted || field(it->fields, "id") == wanted) found = &*it;
    if (!found) co_return fail("no dead letter with job id or entry id " + wanted);
    std::vector<std::optional<admin::replay_info>> replays;
    const std::vector<const dead_letter*> one{found};
    if (!co_await read_replays(ctx, one, replays, error)) co_return fail("redis: " + error);
    if (args.json) {
        rapidjson::Document d;
        auto obj = fields_to_json(found->fields, d.GetAllocator());
        obj.AddMember("entry_id", json_string(found->entry_id, d.GetAllocator()), d.GetAllocator());
        obj.AddMember("replayed", replay_json(replays[0], d.GetAllocator()), d.GetAllocator());
        print_json(obj);
    } else {
        field_list f = found->fields;
        f.insert(f.begin(), {"entry_id", found->entry_id});
        f.emplace_back("replayed", replay_text(replays[0]));
        print_fields(f);
    }
    co_return 0;
}

asio::awaitable<int> dead_replay(context& ctx, const invocation& args) {
    const dead_filter filter = read_filter(args);
    if (auto problem = filter_problem(filter)) {
        std::fprintf(stderr, "outq: %s\n", problem->c_str());
        co_return 2;
    }
    if (args.positional.empty() && !filter.any() && !args.options.flag("all")) {
        std::fprintf(stderr,
                     "outq: dead replay needs an ID (job id or entry id), a filter (--provider, --account, --class, "
                     "--since, --until, --status, --grep) or --all\n");
        co_return 2;
    }
    std::string error;
    std::vector<dead_letter> all;
    if (!co_await read_dead(ctx, all, error)) co_return fail("redis: " + error);
    // Which ones were replayed already.
    std::vector<field_list> replayed_maps;
    if (!co_await read_replayed_maps(ctx, replayed_maps, error)) co_return fail("redis: " + error);
    const bool force = args.options.flag("force");
    // Bound to a dry run: only the letters it could have counted (up to the newest it saw).
    const std::string upto = args.options.string("upto").value_or("");
    std::vector<const dead_letter*> chosen;
    for (auto& dl : all) {
        if (!args.positional.empty() && dl.entry_id != args.positional[0] &&
            field(dl.fields, "id") != args.positional[0])
            continue;
        if (!filter.matches(dl)) continue;
        if (!upto.empty() && admin::entry_before(upto, dl.entry_id)) continue;
        if (!force && !replayed_as(ctx, replayed_maps, dl).empty()) continue;
        chosen.push_back(&dl);
    }
    if (auto expect = args.options.integer("expect"); expect && static_cast<std::size_t>(*expect) != chosen.size())
        co_return fail("the letters to replay changed since the dry run: " + std::to_string(*expect) + " then, " +
                       std::to_string(chosen.size()) + " now; nothing replayed (run the dry run again)");
    std::string newest;
    for (auto* dl : chosen)
        if (newest.empty() || admin::entry_before(newest, dl->entry_id)) newest = dl->entry_id;
    if (!args.positional.empty() && chosen.empty())
        co_return fail("no dead letter " + args.positional[0] + " to replay (already replayed? use --force)");
    const bool dry_run = args.options.flag("dry-run");
    if (!chosen.empty()) {
        // A job sent since (its result says sent: replayed before, or enqueued again by its
        // producer) would be sent again, as the replay deletes that result: warn and ask.
        std::vector<std::string> sent;
        for (std::size_t start = 0; start < chosen.size(); start += 1000) {
            const std::size_t end = std::min(chosen.size(), start + 1000);
            std::vector<redis::command> gets;
            for (std::size_t j = start; j < end; ++j)
                gets.push_back(admin::result_command(letter_home(ctx, *chosen[j]), field(chosen[j]->fields, "id")));
            auto g = co_await ctx.redis.exec(gets);
            if (!g.ok()) co_return fail("redis: " + g.error);
            auto statuses = admin::read_result_statuses(g.replies);
            if (!statuses.ok()) co_return fail("redis: " + statuses.error);
            for (std::size_t j = start; j < end; ++j)
                if ((*statuses.value)[j - start] == "sent") sent.push_back(field(chosen[j]->fields, "id"));
        }
        for (std::size_t i = 0; i < sent.size() && i < 10; ++i)
            std::fprintf(stderr,
                         "outq: warning: job %s has been sent since (its result says sent): a replay sends it "
                         "again\n",
                         log::value(sent[i]).c_str());
        if (sent.size() > 10) std::fprintf(stderr, "outq: warning: and %zu more jobs sent since\n", sent.size() - 10);
        if (!sent.empty() && !dry_run) {
            const int c = confirm(args, sent.size(),
                                  "replay " + thousands(sent.size()) + " job(s) that have been sent already?", true);
            if (c != 0) co_return c;
        }
    }
    struct replay_row {
        std::string dead_entry, job_entry, id;
    };
    std::vector<replay_row> rows;
    progress shown_progress("replayed", dry_run ? 0 : chosen.size());
    for (auto* dl : chosen) {
        replay_row row{dl->entry_id, "", field(dl->fields, "id")};
        if (!dry_run) {
            // Into the partition of its id (a job enqueued in the wrong one goes to the right one now).
            auto r = co_await ctx.redis.exec(
                admin::replay_command(letter_home(ctx, *dl), row.id, field(dl->fields, "job"), dl->entry_id, force));
            if (!r.ok()) co_return fail("redis: " + r.error + " (" + std::to_string(rows.size()) + " replayed)");
            auto entry = admin::read_replay(r.replies[0]);
            if (!entry.ok())
                co_return fail("redis: " + entry.error + " (" + std::to_string(rows.size()) + " replayed)");
            shown_progress.add(1);
            if (!*entry.value) continue;  // replayed meanwhile by someone else
            row.job_entry = std::move(**entry.value);
        }
        rows.push_back(std::move(row));
    }
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("dry_run", dry_run, a);
        rapidjson::Value list(rapidjson::kArrayType);
        for (auto& row : rows) {
            rapidjson::Value o(rapidjson::kObjectType);
            o.AddMember("dead_entry", json_string(row.dead_entry, a), a);
            if (!dry_run) o.AddMember("job_entry", json_string(row.job_entry, a), a);
            o.AddMember("id", json_string(row.id, a), a);
            list.PushBack(o, a);
        }
        d.AddMember("replayed", list, a);
        if (dry_run) {
            d.AddMember("upto", json_string(newest, a), a);
            d.AddMember("count", static_cast<std::uint64_t>(rows.size()), a);
        }
        print_json(d);
    } else {
        for (auto& row : rows)
            std::printf("%s %s (dead letter %s)%s%s\n", dry_run ? "would replay" : "replayed", row.id.c_str(),
                        row.dead_entry.c_str(), dry_run ? "" : " as entry ", row.job_entry.c_str());
        std::printf("%zu dead letter(s) %s\n", rows.size(), dry_run ? "would be replayed (dry run)" : "replayed");
        if (dry_run && !rows.empty())
            std::printf("to replay exactly these: add --upto %s --expect %zu (without --dry-run)\n", newest.c_str(),
                        rows.size());
    }
    co_return 0;
}

namespace {

// dead delete and dead purge: the chosen letters, after a dry run or a confirmation.
asio::awaitable<int> delete_letters(context& ctx, const invocation& args,
                                    const std::vector<const dead_letter*>& chosen) {
    const bool dry_run = args.options.flag("dry-run");
    std::size_t deleted = 0;
    if (!dry_run && !chosen.empty()) {
        const int c = confirm(args, chosen.size(), "delete " + thousands(chosen.size()) + " dead letters?");
        if (c != 0) co_return c;
        progress shown_progress("deleted", chosen.size());
        // By partition: a letter is deleted from the dead stream that holds it.
        std::vector<const dead_letter*> sorted = chosen;
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const dead_letter* a, const dead_letter* b) { return a->partition < b->partition; });
        for (std::size_t start = 0; start < sorted.size();) {
            const int partition = sorted[start]->partition;
            std::vector<std::string> ids;
            std::size_t i = start;
            for (; i < sorted.size() && i < start + 1000 && sorted[i]->partition == partition; ++i)
                ids.push_back(sorted[i]->entry_id);
            start = i;
            auto r = co_await ctx.redis.exec(
                admin::dead_delete_commands(ctx.partitions[static_cast<std::size_t>(partition)], ids));
            if (!r.ok()) co_return fail("redis: " + r.error + " (" + std::to_string(deleted) + " deleted)");
            auto n = admin::read_dead_deleted(r.replies);
            if (!n.ok()) co_return fail("redis: " + n.error + " (" + std::to_string(deleted) + " deleted)");
            deleted += static_cast<std::size_t>(*n.value);
            shown_progress.add(ids.size());
        }
    }
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("dry_run", dry_run, a);
        d.AddMember("deleted", static_cast<std::uint64_t>(deleted), a);
        rapidjson::Value list(rapidjson::kArrayType);
        for (auto* dl : chosen) {
            rapidjson::Value o(rapidjson::kObjectType);
            o.AddMember("entry_id", json_string(dl->entry_id, a), a);
            o.AddMember("id", json_string(field(dl->fields, "id"), a), a);
            list.PushBack(o, a);
        }
        d.AddMember(rapidjson::StringRef(dry_run ? "would_delete" : "letters"), list, a);
        print_json(d);
    } else if (dry_run) {
        for (auto* dl : chosen)
            std::printf("would delete %s (dead letter %s)\n", field(dl->fields, "id").c_str(), dl->entry_id.c_str());
        std::printf("%s dead letter(s) would be deleted (dry run)\n", thousands(chosen.size()).c_str());
    } else {
        std::printf("deleted %s dead letter(s)\n", thousands(deleted).c_str());
    }
    co_return 0;
}

}  // namespace

asio::awaitable<int> dead_delete(context& ctx, const invocation& args) {
    std::string error;
    std::vector<dead_letter> all;
    if (!co_await read_dead(ctx, all, error)) co_return fail("redis: " + error);
    std::vector<const dead_letter*> chosen;
    std::vector<std::string> missing;
    for (auto& wanted : args.positional) {
        bool any = false;
        for (auto& dl : all)
            if (dl.entry_id == wanted || field(dl.fields, "id") == wanted) {  // every letter of that job
                any = true;
                if (std::find(chosen.begin(), chosen.end(), &dl) == chosen.end()) chosen.push_back(&dl);
            }
        if (!any) missing.push_back(wanted);
    }
    if (!missing.empty()) {
        std::string names;
        for (auto& m : missing) names += (names.empty() ? "" : ", ") + m;
        co_return fail("no dead letter with job id or entry id " + names + " (nothing deleted)");
    }
    co_return co_await delete_letters(ctx, args, chosen);
}

asio::awaitable<int> dead_purge(context& ctx, const invocation& args) {
    const dead_filter filter = read_filter(args);
    if (auto problem = filter_problem(filter)) {
        std::fprintf(stderr, "outq: %s\n", problem->c_str());
        co_return 2;
    }
    if (!filter.any() && !args.options.flag("all")) {
        std::fprintf(stderr,
                     "outq: dead purge needs a filter (--provider, --account, --class, --since, --until, --status, "
                     "--grep) or --all\n");
        co_return 2;
    }
    std::string error;
    std::vector<dead_letter> all;
    if (!co_await read_dead(ctx, all, error)) co_return fail("redis: " + error);
    std::vector<const dead_letter*> chosen;
    for (auto& dl : all)
        if (filter.matches(dl)) chosen.push_back(&dl);
    co_return co_await delete_letters(ctx, args, chosen);
}

namespace {

// A bounded scan of the delayed set, soonest due first, in pages: calls
// `visit(member, item)` for each member until it returns true or `limit`
// members were read. `scanned` counts them; `complete` says the whole set was read.
template <class Visit>
asio::awaitable<bool> scan_delayed(context& ctx, const queue::keys& k, std::int64_t limit, Visit visit,
                                   std::int64_t& scanned, bool& complete, std::string& error) {
    complete = false;
    for (long long start = 0; scanned < limit;) {
        const long long count = std::min<long long>(admin::scan_page_size, limit - scanned);
        auto r = co_await ctx.redis.exec(admin::delayed_page_command(k, start, count));
        if (!r.ok()) {
            error = r.error;
            co_return false;
        }
        auto page = admin::read_delayed_page(r.replies[0]);
        if (!page.ok()) {
            error = page.error;
            co_return false;
        }
        if (page.value->empty()) {
            complete = true;
            co_return true;
        }
        auto h = co_await ctx.redis.exec(admin::delayed_item_commands(k, *page.value));
        if (!h.ok()) {
            error = h.error;
            co_return false;
        }
        auto items = admin::read_delayed_items(h.replies);
        if (!items.ok()) {
            error = items.error;
            co_return false;
        }
        for (std::size_t i = 0; i < page.value->size(); ++i) {
            ++scanned;
            if ((*items.value)[i].empty()) continue;  // moved meanwhile
            if (visit((*page.value)[i], (*items.value)[i])) co_return true;
        }
        if (static_cast<long long>(page.value->size()) < count) {
            complete = true;
            co_return true;
        }
        start += static_cast<long long>(page.value->size());
    }
    co_return true;
}

// A bounded scan of the jobs stream from after `after` (empty: the start), oldest first.
template <class Visit>
asio::awaitable<bool> scan_stream(context& ctx, const queue::keys& k, std::string after, std::int64_t limit,
                                  Visit visit, std::int64_t& scanned, bool& complete, std::string& error) {
    complete = false;
    while (scanned < limit) {
        const long long count = std::min<long long>(admin::scan_page_size, limit - scanned);
        auto r = co_await ctx.redis.exec(admin::jobs_page_command(k, after, count));
        if (!r.ok()) {
            error = r.error;
            co_return false;
        }
        auto page = admin::read_entries_page(r.replies[0], "XRANGE");
        if (!page.ok()) {
            error = page.error;
            co_return false;
        }
        for (auto& e : *page.value) {
            ++scanned;
            after = e.entry_id;
            if (visit(e)) co_return true;
        }
        if (static_cast<long long>(page.value->size()) < count) {
            complete = true;
            co_return true;
        }
    }
    co_return true;
}

// The outq group's last delivered id (nullopt: no group, or no stream).
asio::awaitable<bool> last_delivered(context& ctx, const queue::keys& k, std::optional<std::string>& out,
                                     std::string& error) {
    auto r = co_await ctx.redis.exec(admin::groups_command(k));
    if (!r.ok()) {
        error = r.error;
        co_return false;
    }
    auto last = admin::read_last_delivered(r.replies[0]);
    if (!last.ok()) {
        error = last.error;
        co_return false;
    }
    out = *last.value;
    co_return true;
}

std::string provider_account_of(const field_list& fields) {
    const std::string job = field(fields, "job");
    return json::scalar_member(job, "provider").value_or("?") + "/" + json::scalar_member(job, "account").value_or("?");
}

}  // namespace

asio::awaitable<int> job_show(context& ctx, const invocation& args) {
    const std::string& id = args.positional[0];
    const queue::keys& k = ctx.home(id);
    const std::int64_t limit = *args.options.integer("scan-limit");
    rapidjson::Document d(rapidjson::kObjectType);
    auto& a = d.GetAllocator();
    d.AddMember("id", json_string(id, a), a);
    field_list lines{{"job", id}};
    auto set = [&](const char* name, const std::string& value) {
        d.AddMember(rapidjson::StringRef(name), json_string(value, a), a);
        lines.emplace_back(name, value);
    };
    auto set_number = [&](const char* name, std::int64_t value, std::string shown) {
        d.AddMember(rapidjson::StringRef(name), value, a);
        lines.emplace_back(name, std::move(shown));
    };
    auto finish = [&](int code) {
        if (args.json)
            print_json(d);
        else
            print_fields(lines);
        return code;
    };
    // 1. The result value: an outcome, or the marker of the worker holding it.
    auto r = co_await ctx.redis.exec(admin::result_command(k, id));
    if (!r.ok()) co_return fail("redis: " + r.error);
    auto value = admin::read_result_reply(r.replies[0]);
    if (!value.ok()) co_return fail("redis: " + value.error);
    if (*value.value) {
        const auto state = queue::read_result_value(**value.value);
        if (state.what == queue::result_state::kind::sending) {
            set("state", "in flight");
            set("entry", state.entry);
            if (auto since = json::scalar_member(**value.value, "since"); since && is_number(*since))
                set_number("since", std::stoll(*since),
                           format_rfc3339(std::stoll(*since)) + " (" + human_age(wall_now_ms() - std::stoll(*since)) +
                               " ago)");
            auto p = co_await ctx.redis.exec(admin::pending_entry_command(k, state.entry));
            if (!p.ok()) co_return fail("redis: " + p.error);
            auto rows = admin::read_pending_rows(p.replies[0]);
            if (!rows.ok()) co_return fail("redis: " + rows.error);
            if (rows.value->empty()) {
                set("consumer", "");
                lines.back().second = "none: the entry is no longer pending (the next copy takes the marker over)";
            } else {
                const auto& row = rows.value->front();
                set("consumer", row.consumer);
                set_number("idle_ms", row.idle_ms,
                           std::to_string(row.idle_ms) + " ms since its last delivery or claim");
                set_number("deliveries", row.deliveries, std::to_string(row.deliveries));
            }
            co_return finish(0);
        }
        if (state.what == queue::result_state::kind::final) {
            set("state", "done");
            set("status", state.status);
            const std::string text = to_valid_utf8(**value.value);
            rapidjson::Document res(&a);
            res.Parse(text.c_str(), text.size());
            if (!res.HasParseError() && res.IsObject()) {
                rapidjson::Value copy(res, a);
                d.AddMember("result", copy, a);
                for (auto& [name, v] : result_lines(res))
                    if (name != "status" && name != "id") lines.emplace_back("result." + name, v);
            }
            co_return finish(0);
        }
        set("state", "unknown");
        set("result_value", to_valid_utf8(**value.value));
        co_return finish(1);
    }
    // 2. The delayed set, then the stream: bounded scans in pages.
    std::string error;
    std::int64_t delayed_scanned = 0, stream_scanned = 0;
    bool delayed_complete = false, stream_complete = false;
    std::optional<admin::delayed_member> due;
    field_list item;
    if (!co_await scan_delayed(
            ctx, k, limit,
            [&](const admin::delayed_member& m, const field_list& f) {
                if (admin::job_id_of(f, m.token) != id) return false;
                due = m;
                item = f;
                return true;
            },
            delayed_scanned, delayed_complete, error))
        co_return fail("redis: " + error);
    if (due) {
        set("state", "delayed");
        set_number("due_at", due->due,
                   format_rfc3339(due->due) +
                       (due->due > wall_now_ms() ? " (in " + human_age(due->due - wall_now_ms()) + ")" : " (due now)"));
        set("why", admin::delay_reason(item));
        set("token", due->token);
        set("provider_account", provider_account_of(item));
        if (auto n = field(item, "attempts"); is_number(n)) set_number("attempts", std::stoll(n), n);
        co_return finish(0);
    }
    std::optional<std::string> delivered;
    if (!co_await last_delivered(ctx, k, delivered, error)) co_return fail("redis: " + error);
    std::optional<dead_letter> entry;
    if (!co_await scan_stream(
            ctx, k, "", limit,
            [&](const dead_letter& e) {
                if (admin::job_id_of(e.fields, e.entry_id) != id) return false;
                entry = e;
                return true;
            },
            stream_scanned, stream_complete, error))
        co_return fail("redis: " + error);
    if (entry) {
        const bool waiting = !delivered || admin::entry_before(*delivered, entry->entry_id);
        if (waiting) {
            set("state", "waiting");
            set("entry", entry->entry_id);
            set("provider_account", provider_account_of(entry->fields));
            co_return finish(0);
        }
        // Delivered but no marker yet: a worker just read it (or holds it before claiming).
        set("state", "in flight");
        set("entry", entry->entry_id);
        auto p = co_await ctx.redis.exec(admin::pending_entry_command(k, entry->entry_id));
        if (!p.ok()) co_return fail("redis: " + p.error);
        auto rows = admin::read_pending_rows(p.replies[0]);
        if (!rows.ok()) co_return fail("redis: " + rows.error);
        if (!rows.value->empty()) {
            set("consumer", rows.value->front().consumer);
            set_number("idle_ms", rows.value->front().idle_ms, std::to_string(rows.value->front().idle_ms) + " ms");
            set_number("deliveries", rows.value->front().deliveries, std::to_string(rows.value->front().deliveries));
        }
        co_return finish(0);
    }
    set("state", "not found");
    rapidjson::Value scanned(rapidjson::kObjectType);
    scanned.AddMember("delayed", delayed_scanned, a);
    scanned.AddMember("delayed_complete", delayed_complete, a);
    scanned.AddMember("stream", stream_scanned, a);
    scanned.AddMember("stream_complete", stream_complete, a);
    scanned.AddMember("limit", limit, a);
    d.AddMember("scanned", scanned, a);
    lines.emplace_back("scanned", thousands(static_cast<std::uint64_t>(delayed_scanned)) + " delayed" +
                                      (delayed_complete ? " (all)" : " (--scan-limit reached)") + ", " +
                                      thousands(static_cast<std::uint64_t>(stream_scanned)) + " stream entries" +
                                      (stream_complete ? " (all)" : " (--scan-limit reached)"));
    finish(1);
    co_return fail("job " + id + " has no result and is " +
                   (delayed_complete && stream_complete ? std::string("neither waiting nor delayed")
                                                        : "not among the entries scanned (raise --scan-limit)"));
}

asio::awaitable<int> job_retry_now(context& ctx, const invocation& args) {
    const std::string& id = args.positional[0];
    const queue::keys& k = ctx.home(id);
    std::string error;
    std::int64_t scanned = 0;
    bool complete = false;
    std::optional<admin::delayed_member> found;
    std::optional<unix_ms> own_not_before;
    if (!co_await scan_delayed(
            ctx, k, *args.options.integer("scan-limit"),
            [&](const admin::delayed_member& m, const field_list& f) {
                if (admin::job_id_of(f, m.token) != id) return false;
                found = m;
                own_not_before = admin::own_not_before_of(f);
                return true;
            },
            scanned, complete, error))
        co_return fail("redis: " + error);
    if (!found)
        co_return fail("job " + id + " is not delayed" +
                       (complete ? std::string()
                                 : " among the first " + thousands(static_cast<std::uint64_t>(scanned)) +
                                       " delayed jobs (raise --scan-limit)"));
    const unix_ms now = wall_now_ms();
    // Moved now, it would be read and delayed again until its own time.
    if (own_not_before && *own_not_before > now)
        co_return fail("job " + id + " waits for its own not_before (" + format_rfc3339(*own_not_before) +
                       "): retry-now cannot send it sooner; cancel it and enqueue it again without not_before");
    // The PUBLISH after it: the movers look at once (refused, it fails nothing).
    std::vector<redis::command> due;  // named, pushed: GCC 12 loses an initializer list's array in a coroutine
    due.push_back(admin::retry_now_command(k, found->token, now));
    due.push_back(queue::announce_due_command(k, now));
    auto r = co_await ctx.redis.exec(due);
    if (!r.ok()) co_return fail("redis: " + r.error);
    auto changed = admin::read_retry_now(r.replies[0]);
    if (!changed.ok()) co_return fail("redis: " + changed.error);
    if (!*changed.value) co_return fail("job " + id + " left the delayed set meanwhile (a worker moved it)");
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("id", json_string(id, a), a);
        d.AddMember("token", json_string(found->token, a), a);
        d.AddMember("was_due_at", static_cast<std::int64_t>(found->due), a);
        d.AddMember("due_at", static_cast<std::int64_t>(now), a);
        print_json(d);
    } else {
        std::printf("job %s is due now (was due at %s)\n", id.c_str(), format_rfc3339(found->due).c_str());
    }
    co_return 0;
}

asio::awaitable<int> list_jobs(context& ctx, const invocation& args) {
    const std::string& kind = args.positional[0];
    if (kind != "waiting" && kind != "delayed" && kind != "inflight") {
        std::string message = "list: expected waiting, delayed or inflight, got '" + kind + "'";
        if (auto near = closest_match(kind, {"waiting", "delayed", "inflight"}); !near.empty())
            message += "; did you mean '" + std::string(near) + "'?";
        std::fprintf(stderr, "outq: %s\n", message.c_str());
        co_return 2;
    }
    const std::string provider = args.options.string("provider").value_or("");
    const std::string account = args.options.string("account").value_or("");
    const std::int64_t limit = *args.options.integer("limit");
    const std::int64_t scan_limit = *args.options.integer("scan-limit");
    struct row {
        std::string id, entry, provider, account, detail_name, detail;
        std::int64_t number = 0;  // due_at, or idle_ms
        std::string consumer;
        std::int64_t deliveries = 0;
    };
    std::vector<row> rows;
    bool more = false;
    auto wanted = [&](const field_list& fields, row& out) {
        const std::string job = field(fields, "job");
        out.provider = json::scalar_member(job, "provider").value_or("");
        out.account = json::scalar_member(job, "account").value_or("");
        return (provider.empty() || out.provider == provider) && (account.empty() || out.account == account);
    };
    auto take = [&](row r) {
        if (static_cast<std::int64_t>(rows.size()) >= limit) {
            more = true;
            return true;  // stop the scan
        }
        rows.push_back(std::move(r));
        return false;
    };
    std::string error;
    std::int64_t scanned = 0;
    bool all_complete = true;
    // Partition by partition, within one scan limit for them all.
    for (const queue::keys& k : ctx.partitions) {
        if (more || scanned >= scan_limit) {
            all_complete = false;
            break;
        }
        bool complete = false;
        if (kind == "waiting") {
            std::optional<std::string> delivered;
            if (!co_await last_delivered(ctx, k, delivered, error)) co_return fail("redis: " + error);
            if (!delivered) warn_no_group(ctx.queue);
            if (!co_await scan_stream(
                    ctx, k, delivered.value_or(""), scan_limit,
                    [&](const dead_letter& e) {
                        row r;
                        if (!wanted(e.fields, r)) return false;
                        r.id = admin::job_id_of(e.fields, e.entry_id);
                        r.entry = e.entry_id;
                        return take(std::move(r));
                    },
                    scanned, complete, error))
                co_return fail("redis: " + error);
        } else if (kind == "delayed") {
            if (!co_await scan_delayed(
                    ctx, k, scan_limit,
                    [&](const admin::delayed_member& m, const field_list& f) {
                        row r;
                        if (!wanted(f, r)) return false;
                        r.id = admin::job_id_of(f, m.token);
                        r.entry = m.token;
                        r.number = m.due;
                        r.detail = admin::delay_reason(f);
                        return take(std::move(r));
                    },
                    scanned, complete, error))
                co_return fail("redis: " + error);
        } else {
            std::string after;
            complete = false;
            while (scanned < scan_limit && !more) {
                const long long count = std::min<long long>(admin::scan_page_size, scan_limit - scanned);
                auto p = co_await ctx.redis.exec(admin::pending_page_command(k, after, count));
                if (!p.ok()) co_return fail("redis: " + p.error);
                auto pending = admin::read_pending_rows(p.replies[0]);
                if (!pending.ok()) co_return fail("redis: " + pending.error);
                if (pending.value->empty()) {
                    complete = true;
                    break;
                }
                std::vector<std::string> ids;
                for (auto& pe : *pending.value) ids.push_back(pe.entry_id);
                auto e = co_await ctx.redis.exec(admin::entry_commands(k, ids));
                if (!e.ok()) co_return fail("redis: " + e.error);
                for (std::size_t i = 0; i < ids.size() && !more; ++i) {
                    ++scanned;
                    after = ids[i];
                    auto entries = admin::read_entries_page(e.replies[i], "XRANGE");
                    if (!entries.ok()) co_return fail("redis: " + entries.error);
                    if (entries.value->empty()) continue;  // finished meanwhile
                    const auto& entry = entries.value->front();
                    row r;
                    if (!wanted(entry.fields, r)) continue;
                    r.id = admin::job_id_of(entry.fields, entry.entry_id);
                    r.entry = entry.entry_id;
                    r.consumer = (*pending.value)[i].consumer;
                    r.number = (*pending.value)[i].idle_ms;
                    r.deliveries = (*pending.value)[i].deliveries;
                    take(std::move(r));
                }
                if (static_cast<long long>(pending.value->size()) < count) complete = true;
                if (complete) break;
            }
        }
        all_complete = all_complete && complete;
    }
    const bool complete = all_complete;
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("kind", json_string(kind, a), a);
        rapidjson::Value list(rapidjson::kArrayType);
        for (auto& r : rows) {
            rapidjson::Value o(rapidjson::kObjectType);
            o.AddMember("id", json_string(r.id, a), a);
            o.AddMember(kind == "delayed" ? "token" : "entry", json_string(r.entry, a), a);
            o.AddMember("provider", json_string(r.provider, a), a);
            o.AddMember("account", json_string(r.account, a), a);
            if (kind == "delayed") {
                o.AddMember("due_at", r.number, a);
                o.AddMember("why", json_string(r.detail, a), a);
            } else if (kind == "inflight") {
                o.AddMember("consumer", json_string(r.consumer, a), a);
                o.AddMember("idle_ms", r.number, a);
                o.AddMember("deliveries", r.deliveries, a);
            }
            list.PushBack(o, a);
        }
        d.AddMember("jobs", list, a);
        d.AddMember("more", more, a);
        d.AddMember("scanned", scanned, a);
        d.AddMember("complete", complete || more, a);
        print_json(d);
        co_return 0;
    }
    if (rows.empty()) {
        std::printf(
            "no %s jobs%s%s\n", kind == "inflight" ? "in-flight" : kind.c_str(),
            provider.empty() && account.empty() ? "" : " match",
            complete
                ? ""
                : (" among the " + thousands(static_cast<std::uint64_t>(scanned)) + " scanned (--scan-limit)").c_str());
        co_return 0;
    }
    if (kind == "waiting") {
        std::printf("%-22s %-28s %s\n", "ENTRY", "JOB ID", "PROVIDER/ACCOUNT");
        for (auto& r : rows)
            std::printf("%-22s %-28s %s/%s\n", r.entry.c_str(), r.id.c_str(), r.provider.c_str(), r.account.c_str());
    } else if (kind == "delayed") {
        std::printf("%-24s %-28s %-20s %s\n", "DUE", "JOB ID", "PROVIDER/ACCOUNT", "WHY");
        for (auto& r : rows)
            std::printf("%-24s %-28s %-20s %s\n", format_rfc3339(r.number).c_str(), r.id.c_str(),
                        (r.provider + "/" + r.account).c_str(), r.detail.c_str());
    } else {
        std::printf("%-22s %-28s %-20s %-24s %-10s %s\n", "ENTRY", "JOB ID", "PROVIDER/ACCOUNT", "CONSUMER", "IDLE",
                    "DELIVERIES");
        for (auto& r : rows)
            std::printf("%-22s %-28s %-20s %-24s %-10s %lld\n", r.entry.c_str(), r.id.c_str(),
                        (r.provider + "/" + r.account).c_str(), r.consumer.c_str(), human_age(r.number).c_str(),
                        static_cast<long long>(r.deliveries));
    }
    if (more || !complete)
        std::printf(
            "%s%s\n", more ? ("first " + thousands(rows.size()) + " shown (--limit)").c_str() : "",
            complete || more
                ? ""
                : ("; scanned " + thousands(static_cast<std::uint64_t>(scanned)) + " entries (--scan-limit)").c_str());
    co_return 0;
}

namespace {

namespace mig = queue::migrate;

// What `outq migrate` did, or with --dry-run would do.
struct migration_report {
    bool dry_run = false;
    bool resumed = false;  // the format was `migrating`: an interrupted migration goes on
    std::int64_t results_converted = 0;
    std::int64_t results_already = 0;  // already format 2 values
    std::int64_t markers_deleted = 0;
    std::int64_t accounts_moved = 0;
    std::int64_t pauses_moved = 0;
    std::int64_t windows_moved = 0;
    std::int64_t entries_deleted = 0;          // acknowledged by format 1 but not deleted
    std::int64_t pending_delivered_again = 0;  // pending under format 1: format 2 workers send them
    bool group_created = false;
    bool fenced = false;
};

// A Redis error or transport failure during a migration: the handler reports it.
struct migrate_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// One pipeline; a transport failure throws.
asio::awaitable<std::vector<redis::value>> batch(context& ctx, const std::vector<redis::command>& commands) {
    auto r = co_await ctx.redis.exec(commands);
    if (!r.ok()) throw migrate_error(r.error);
    co_return std::move(r.replies);
}

// One command's reply.
asio::awaitable<redis::value> one(context& ctx, const redis::command& command) {
    auto r = co_await ctx.redis.exec(command);
    if (!r.ok()) throw migrate_error(r.error);
    co_return std::move(r.replies[0]);
}

// What a reply was read into; the reading's error throws.
template <typename T>
T value_of(admin::read_result<T> read) {
    if (!read.ok()) throw migrate_error(read.error);
    return std::move(*read.value);
}

// Step 4: the entries format 1 acknowledged but did not delete are deleted,
// then outq.v2 is created at 0 and outq fenced in one transaction.
asio::awaitable<void> migrate_groups(context& ctx, const queue::keys& k, const mig::queue_state& state,
                                     migration_report& rep) {
    const bool fenced = state.v1 && state.v1->fenced();
    if (state.v2 && fenced) co_return;  // done by an earlier run
    // Which delivered entries are finished is known only while outq is not fenced.
    if (!state.v2 && state.v1 && !fenced && state.v1->last_delivered != "0-0") {
        std::unordered_set<std::string> pending;
        for (std::string after;;) {
            const auto reply = co_await one(ctx, mig::pending_page_command(k, after));
            const auto page = value_of(mig::read_pending_page(reply));
            pending.insert(page.begin(), page.end());
            if (static_cast<long long>(page.size()) < mig::page_size) break;
            after = page.back();
        }
        for (std::string after;;) {
            const auto reply = co_await one(ctx, mig::delivered_page_command(k, after, state.v1->last_delivered));
            const auto page = value_of(mig::read_entry_ids(reply));
            const auto finished = mig::finished_entries(page, pending);
            rep.pending_delivered_again += static_cast<std::int64_t>(page.size() - finished.size());
            if (!finished.empty() && rep.dry_run) {
                rep.entries_deleted += static_cast<std::int64_t>(finished.size());
            } else if (!finished.empty()) {
                const auto deleted = co_await one(ctx, mig::delete_entries_command(k, finished));
                rep.entries_deleted += value_of(mig::read_count(deleted, "XDEL"));
            }
            if (static_cast<long long>(page.size()) < mig::page_size) break;
            after = page.back();
        }
    }
    rep.group_created = !state.v2;
    rep.fenced = !fenced;
    if (rep.dry_run) co_return;
    const auto replies = co_await batch(ctx, mig::switch_groups_commands(k, !state.v2));
    value_of(mig::read_switch_groups(replies, !state.v2));
}

// Every key a SCAN of `pattern` finds, page by page.
asio::awaitable<mig::scan_page> scan_page_of(context& ctx, const std::string& cursor, const std::string& pattern) {
    const auto reply = co_await one(ctx, mig::scan_command(cursor, pattern));
    co_return value_of(mig::read_scan(reply));
}

// Step 5: each result hash becomes its JSON value with the same TTL.
asio::awaitable<void> migrate_results(context& ctx, const queue::keys& k, migration_report& rep) {
    const std::string pattern = mig::v1_result_pattern(k);
    std::string cursor = "0";
    do {
        auto page = co_await scan_page_of(ctx, cursor, pattern);
        cursor = page.cursor;
        if (page.keys.empty()) continue;
        const auto type_replies = co_await batch(ctx, mig::type_commands(page.keys));
        const auto types = value_of(mig::read_types(type_replies));
        std::vector<std::string> hashes;
        for (std::size_t i = 0; i < page.keys.size(); ++i) {
            if (types[i] == "hash")
                hashes.push_back(page.keys[i]);
            else if (types[i] == "string")
                ++rep.results_already;
            else if (types[i] != "none")  // none: expired meanwhile
                std::fprintf(stderr,
                             "outq: warning: %s is a %s, not a format 1 result hash: left as it is (format 2 "
                             "workers cannot claim a job of that id while it is there)\n",
                             log::value(page.keys[i]).c_str(), types[i].c_str());
        }
        if (hashes.empty()) continue;
        if (rep.dry_run) {
            rep.results_converted += static_cast<std::int64_t>(hashes.size());
            continue;
        }
        const auto hash_replies = co_await batch(ctx, mig::hash_read_commands(hashes));
        const auto sets = mig::convert_commands(value_of(mig::read_hashes(hashes, hash_replies)));
        if (sets.empty()) continue;
        const auto set_replies = co_await batch(ctx, sets);
        rep.results_converted += value_of(mig::read_oks(set_replies, "SET"));
    } while (cursor != "0");
}

// Step 6: the format 1 in-flight markers are deleted (their entries are
// pending under format 1 and are delivered again to format 2 workers).
asio::awaitable<void> migrate_markers(context& ctx, const queue::keys& k, migration_report& rep) {
    const std::string pattern = mig::v1_inflight_pattern(k);
    std::set<std::string> seen;  // dry run: SCAN may return a key twice (DEL counts each once)
    std::string cursor = "0";
    do {
        auto page = co_await scan_page_of(ctx, cursor, pattern);
        cursor = page.cursor;
        if (page.keys.empty()) continue;
        if (rep.dry_run) {
            seen.insert(page.keys.begin(), page.keys.end());
            continue;
        }
        const auto deleted = co_await one(ctx, mig::delete_keys_command(page.keys));
        rep.markers_deleted += value_of(mig::read_count(deleted, "DEL"));
    } while (cursor != "0");
    if (rep.dry_run) rep.markers_deleted = static_cast<std::int64_t>(seen.size());
}

// Step 7: each account's pause and window go to its account keys; the format 1
// limit keys are deleted (leases with them).
asio::awaitable<void> migrate_accounts(context& ctx, const queue::keys& k, migration_report& rep) {
    const std::string pattern = mig::v1_limit_pattern(k);
    std::set<mig::v1_scope> scopes;
    std::string cursor = "0";
    do {
        auto page = co_await scan_page_of(ctx, cursor, pattern);
        cursor = page.cursor;
        for (auto& key : page.keys)
            if (auto scope = mig::parse_limit_key(k, key)) scopes.insert(std::move(*scope));
    } while (cursor != "0");
    constexpr std::size_t chunk = 100;  // accounts per pipeline
    const std::vector<mig::v1_scope> all(scopes.begin(), scopes.end());
    for (std::size_t start = 0; start < all.size(); start += chunk) {
        const std::size_t end = std::min(all.size(), start + chunk);
        std::vector<redis::command> reads;
        for (std::size_t i = start; i < end; ++i)
            for (auto& c : mig::scope_read_commands(k, all[i])) reads.push_back(std::move(c));
        const auto replies = co_await batch(ctx, reads);
        std::vector<redis::command> copies, deletes;
        for (std::size_t i = start; i < end; ++i) {
            const auto first = replies.begin() + static_cast<long>(4 * (i - start));
            auto snap = mig::read_scope(all[i], std::vector<redis::value>(first, first + 4));
            if (!snap.ok())
                throw migrate_error(snap.error + " (account " + all[i].provider + "/" + all[i].account + ")");
            ++rep.accounts_moved;
            if (snap.value->moves_pause()) ++rep.pauses_moved;
            if (snap.value->moves_window()) ++rep.windows_moved;
            for (auto& c : mig::scope_copy_commands(k, *snap.value)) copies.push_back(std::move(c));
            deletes.push_back(mig::scope_delete_command(k, all[i]));
        }
        if (rep.dry_run) continue;
        // The format 1 keys are deleted only once every copy landed: a run that
        // stops between the two copies them again.
        if (!copies.empty()) {
            const auto copied = co_await batch(ctx, copies);
            if (auto e = admin::first_error(copied)) throw migrate_error(*e);
        }
        const auto deleted = co_await batch(ctx, deletes);
        if (auto e = admin::first_error(deleted)) throw migrate_error(*e);
    }
}

void print_migration(const context& ctx, const invocation& args, std::string_view outcome,
                     const migration_report& rep) {
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("queue", json_string(ctx.queue, a), a);
        d.AddMember("dry_run", rep.dry_run, a);
        d.AddMember("outcome", json_string(outcome, a), a);
        if (outcome == "migrated" || outcome == "would_migrate") {
            d.AddMember("resumed", rep.resumed, a);
            d.AddMember("results_converted", rep.results_converted, a);
            d.AddMember("results_already_converted", rep.results_already, a);
            d.AddMember("markers_deleted", rep.markers_deleted, a);
            d.AddMember("accounts_moved", rep.accounts_moved, a);
            d.AddMember("pauses_moved", rep.pauses_moved, a);
            d.AddMember("windows_moved", rep.windows_moved, a);
            d.AddMember("entries_deleted", rep.entries_deleted, a);
            d.AddMember("pending_delivered_again", rep.pending_delivered_again, a);
            d.AddMember("group_created", rep.group_created, a);
            d.AddMember("fenced", rep.fenced, a);
        }
        print_json(d);
        return;
    }
    const char* q = ctx.queue.c_str();
    const std::string v2(queue::format_version);
    if (outcome == "already") {
        std::printf("queue %s is already in format %s\n", q, v2.c_str());
        return;
    }
    if (outcome == "new_queue") {
        std::printf("queue %s is new (no format 1 group %s): %s format %s\n", q,
                    std::string(queue::format1_group_name).c_str(), rep.dry_run ? "would set" : "set", v2.c_str());
        return;
    }
    const auto n = [](std::int64_t v) { return static_cast<long long>(v); };
    if (rep.dry_run)
        std::printf("dry run, nothing was changed: outq migrate would convert queue %s to format %s%s\n", q, v2.c_str(),
                    rep.resumed ? " (resuming: the queue is in format migrating)" : "");
    else
        std::printf("queue %s is in format %s now%s\n", q, v2.c_str(),
                    rep.resumed ? " (an interrupted migration resumed)" : "");
    std::printf("  results converted          %lld  (%lld in format 2 already)\n", n(rep.results_converted),
                n(rep.results_already));
    std::printf("  in-flight markers deleted  %lld\n", n(rep.markers_deleted));
    std::printf("  accounts moved             %lld  (%lld with a pause, %lld with a window; leases dropped)\n",
                n(rep.accounts_moved), n(rep.pauses_moved), n(rep.windows_moved));
    std::printf("  entries deleted            %lld  (acknowledged by format 1, not deleted)\n", n(rep.entries_deleted));
    std::printf("  pending delivered again    %lld  (pending under format 1: format 2 workers send them)\n",
                n(rep.pending_delivered_again));
    std::printf("  group %-20s %s\n", std::string(queue::group_name).c_str(),
                rep.group_created ? "created at the start of the stream" : "existed");
    std::printf("  group %-20s %s\n", std::string(queue::format1_group_name).c_str(),
                rep.fenced ? "fenced: format 1 workers read and claim nothing" : "fenced already");
}

}  // namespace

asio::awaitable<int> migrate(context& ctx, const invocation& args) {
    // Format 1 had no partitions: a queue of many was written by format 2 from the start.
    if (ctx.partitions.size() > 1)
        co_return fail("queue " + ctx.queue + " has " + std::to_string(ctx.partitions.size()) +
                       " partitions: it was created in format 2 and has nothing to migrate");
    const queue::keys& k = ctx.queue_wide();
    migration_report rep;
    rep.dry_run = args.options.flag("dry-run");
    const bool force = args.options.flag("force");
    std::string stage;     // what the migration was doing, for an error
    bool started = false;  // the format is `migrating` (set now or by an interrupted run)
    try {
        // 1. Where the queue is.
        const auto state_replies = co_await batch(ctx, mig::state_commands(k));
        const mig::queue_state state = value_of(mig::read_state(state_replies));
        const auto decision = mig::decide(k, state);
        if (decision.what == mig::decision::kind::refuse) co_return fail(decision.message);
        if (decision.what == mig::decision::kind::already) {
            print_migration(ctx, args, "already", rep);
            co_return 0;
        }
        if (decision.what == mig::decision::kind::new_queue) {
            if (!rep.dry_run) {
                const auto claimed = co_await batch(ctx, queue::claim_new_queue_commands(k));
                if (auto e = admin::first_error(claimed)) throw migrate_error(*e);
                if (!queue::claimed_new_queue(claimed))
                    co_return fail("queue " + ctx.queue + ": its format was set meanwhile; run outq migrate again");
            }
            print_migration(ctx, args, "new_queue", rep);
            co_return 0;
        }
        rep.resumed = state.format.has_value();  // `migrating`
        started = rep.resumed && !rep.dry_run;

        // 2. No format 1 worker may be running: it would send what format 2
        // workers send too. The consumers of a fenced group can take nothing.
        if (!force && !(state.v1 && state.v1->fenced())) {
            const auto reply = co_await one(ctx, mig::consumers_command(k));
            const auto active = mig::active_consumers(value_of(mig::read_consumers(reply)));
            if (!active.empty()) co_return fail(mig::active_refusal(k, active));
        }

        // 3. Format 2 workers refuse the queue from now on.
        if (!rep.dry_run && !rep.resumed) {
            stage = "setting format migrating";
            const auto reply = co_await one(ctx, mig::set_format_command(k, mig::migrating_value));
            value_of(admin::read_ok(reply, "SET"));
            started = true;
        }
        stage = "switching the consumer groups";
        co_await migrate_groups(ctx, k, state, rep);
        stage = "converting results";
        co_await migrate_results(ctx, k, rep);
        stage = "deleting in-flight markers";
        co_await migrate_markers(ctx, k, rep);
        stage = "moving accounts";
        co_await migrate_accounts(ctx, k, rep);

        // 8. Format 2 workers may start.
        if (!rep.dry_run) {
            stage = "setting format 2";
            const auto reply = co_await one(ctx, mig::set_format_command(k, queue::format_version));
            value_of(admin::read_ok(reply, "SET"));
        }
    } catch (const migrate_error& e) {
        std::string message = "redis: " + std::string(e.what());
        if (!stage.empty()) message += " (while " + stage + ")";
        if (started) message += "; the queue stays in format migrating: run outq migrate again to go on";
        co_return fail(message);
    }
    print_migration(ctx, args, rep.dry_run ? "would_migrate" : "migrated", rep);
    co_return 0;
}

// --- health ---------------------------------------------------------------------

std::string metrics_url_of_listen(std::string_view listen) {
    const auto colon = listen.rfind(':');
    if (colon == std::string_view::npos) return {};
    std::string host(listen.substr(0, colon));
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "[::]" || host == "::") host = "[::1]";
    return "http://" + host + ":" + std::string(listen.substr(colon + 1));
}

namespace {

// metrics_listen of the config file (the operator commands' config skips it).
std::string config_metrics_listen(const invocation& args) {
    std::string file = args.options.string("config").value_or("");
    if (file.empty() && std::getenv("OUTQ_CONFIG")) file = std::getenv("OUTQ_CONFIG");
    if (file.empty()) return {};
    rapidjson::Document doc;
    const std::string text = read_all(file);
    doc.Parse<json::config_flags>(text.data(), text.size());
    if (doc.HasParseError() || !doc.IsObject()) return {};
    auto it = doc.FindMember("metrics_listen");
    if (it == doc.MemberEnd()) return {};
    resolve_secrets(it->value, doc.GetAllocator(), "metrics_listen");
    return it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength()) : std::string();
}

}  // namespace

asio::awaitable<int> health(context&, const invocation& args) {
    namespace beast = boost::beast;
    namespace http = beast::http;
    const bool ready = args.options.flag("ready");
    std::string base = args.options.string("metrics-url").value_or("");
    if (base.empty()) {
        try {
            base = metrics_url_of_listen(config_metrics_listen(args));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "outq: %s\n", e.what());
            co_return 2;
        }
    }
    const auto url = base.empty() ? std::nullopt : parse_http_url(base);
    if (!url || url->tls) {
        std::fprintf(stderr, "outq: health needs --metrics-url http://HOST:PORT or a config with metrics_listen\n");
        co_return 2;
    }
    std::string path = url->target;
    while (!path.empty() && path.back() == '/') path.pop_back();
    path += ready ? "/readyz" : "/healthz";
    const std::string what = ready ? "ready" : "healthy";

    auto ex = co_await asio::this_coro::executor;
    beast::tcp_stream stream(ex);
    stream.expires_after(*args.options.duration("timeout"));
    asio::ip::tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await resolver.async_resolve(url->host, std::to_string(url->port), detail::use_nothrow);
    int status = 0;
    std::string body, trouble;
    if (rec) {
        trouble = "cannot resolve " + url->host + ": " + rec.message();
    } else {
        auto [cec, ep] = co_await stream.async_connect(endpoints, detail::use_nothrow);
        http::request<http::empty_body> req(http::verb::get, path, 11);
        req.set(http::field::host, url->host);
        req.set(http::field::connection, "close");
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        boost::system::error_code ec = cec;
        if (!ec) std::tie(ec, std::ignore) = co_await http::async_write(stream, req, detail::use_nothrow);
        if (!ec) std::tie(ec, std::ignore) = co_await http::async_read(stream, buffer, res, detail::use_nothrow);
        if (ec) {
            trouble =
                base + path + ": " + (ec == beast::error::timeout ? std::string("no answer in time") : ec.message());
        } else {
            status = static_cast<int>(res.result_int());
            body = res.body();
            while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
        }
    }
    const bool ok = status == 200;
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("probe", json_string(ready ? "readyz" : "healthz", a), a);
        d.AddMember("ok", ok, a);
        d.AddMember("status", status, a);
        d.AddMember("reason", json_string(trouble.empty() ? body : trouble, a), a);
        print_json(d);
    } else if (trouble.empty()) {
        std::printf("%s: %s (HTTP %d): %s\n", ok ? what.c_str() : ("not " + what).c_str(), path.c_str(), status,
                    body.c_str());
    }
    if (!trouble.empty()) co_return fail("health: " + trouble);
    co_return ok ? 0 : 1;
}

}  // namespace outq::cli

namespace outq::cli {

asio::awaitable<int> web(context& ctx, const invocation& args) {
    web::guard_settings settings;
    settings.read_only = args.options.flag("read-only");
    if (auto allow = args.options.string("allow-host")) settings.allowed_hosts.push_back(*allow);
    try {
        if (auto file = args.options.string("token-file")) {
            settings.token = read_all(*file);
            while (!settings.token.empty() && (settings.token.back() == '\n' || settings.token.back() == '\r'))
                settings.token.pop_back();
            if (settings.token.empty()) co_return fail("--token-file " + *file + " is empty");
        } else if (const char* env = std::getenv("OUTQ_WEB_TOKEN")) {
            settings.token = env;
        }
    } catch (const std::exception& e) {
        co_return fail(e.what());
    }
    auto executor = co_await asio::this_coro::executor;
    web::server server(executor, ctx, settings);
    const std::string listen = *args.options.string("listen");
    try {
        server.listen(listen);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "outq: %s\n", e.what());
        co_return 2;
    }
    const auto colon = listen.rfind(':');
    log::info("web dashboard listening", "address=" + listen.substr(0, colon) + ":" + std::to_string(server.port()) +
                                             " queue=" + ctx.queue +
                                             " partitions=" + std::to_string(ctx.partitions.size()) + " changes=" +
                                             (settings.read_only       ? "off (read-only)"
                                              : settings.token.empty() ? "off (no token)"
                                                                       : "with the token"));
    asio::signal_set signals(executor, SIGINT, SIGTERM);
    signals.async_wait([&server](const boost::system::error_code& ec, int) {
        if (!ec) server.stop();
    });
    co_await server.serve();
    signals.cancel();
    log::info("web dashboard stopped");
    co_return 0;
}

}  // namespace outq::cli
