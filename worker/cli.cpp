#include "cli.hpp"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <charconv>
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
#include "outq/queue/format.hpp"
#include "outq/queue/migrate.hpp"
#include "outq/queue/result.hpp"
#include "outq/queue_protocol.hpp"
#include "outq/rate_limit.hpp"

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

// Reads the whole dead stream in pages, oldest first.
asio::awaitable<bool> read_dead(context& ctx, std::vector<dead_letter>& out, std::string& error) {
    queue::keys k(ctx.queue);
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
        for (auto& d : *page.value) out.push_back(std::move(d));
        if (last) co_return true;
    }
}

struct dead_filter {
    std::string provider, account, error_class;
    std::optional<unix_ms> since, until;
    bool matches(const dead_letter& d) const {
        if (!provider.empty() && field(d.fields, "provider") != provider) return false;
        if (!account.empty() && field(d.fields, "account") != account) return false;
        if (!error_class.empty() && field(d.fields, "error_class") != error_class) return false;
        const auto failed = field(d.fields, "failed_at");
        const unix_ms at = is_number(failed) ? std::stoll(failed) : 0;
        if (since && at < *since) return false;
        if (until && at > *until) return false;
        return true;
    }
    bool any() const { return !provider.empty() || !account.empty() || !error_class.empty() || since || until; }
};

dead_filter read_filter(const invocation& args) {
    dead_filter f;
    f.provider = args.options.string("provider").value_or("");
    f.account = args.options.string("account").value_or("");
    f.error_class = args.options.string("class").value_or("");
    f.since = args.options.time("since");
    f.until = args.options.time("until");
    return f;
}

}  // namespace

command_handler handler_for(const command_spec& command) {
    static const std::pair<std::string_view, command_handler> handlers[] = {
        {"enqueue", enqueue},     {"result", show_result},      {"stats", stats},   {"dead list", dead_list},
        {"dead show", dead_show}, {"dead replay", dead_replay}, {"pause", pause},   {"resume", resume},
        {"cancel", cancel},       {"migrate", migrate},         {"health", health},
    };
    for (auto& [name, handler] : handlers)
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
    std::vector<std::string> job_ids;  // the producer's ids (a job without one is never a duplicate)
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
            if (id && !id->empty()) job_ids.push_back(std::move(*id));
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
    queue::keys k(ctx.queue);
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
        for (std::size_t i = start; i < end; ++i) gets.push_back(admin::result_command(k, job_ids[i]));
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
    for (std::size_t start = 0; start < jobs.size(); start += 1000) {
        std::vector<redis::command> cmds;
        for (std::size_t i = start; i < std::min(jobs.size(), start + 1000); ++i)
            cmds.push_back(admin::enqueue_command(k, jobs[i]));
        auto r = co_await ctx.redis.exec(cmds);
        if (!r.ok()) co_return fail("redis: " + r.error + " (" + std::to_string(ids.size()) + " jobs enqueued)");
        for (auto& v : r.replies) {
            auto id = admin::read_enqueued(v);
            if (!id.ok()) co_return fail("redis: " + id.error + " (" + std::to_string(ids.size()) + " jobs enqueued)");
            ids.push_back(std::move(*id.value));
        }
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
        std::printf("enqueued %zu job(s) on %s\n", ids.size(), k.jobs.c_str());
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
    queue::keys k(ctx.queue);
    const std::string& id = args.positional[0];
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
    queue::keys k(ctx.queue);
    const std::string& id = args.positional[0];
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

namespace {

using admin::scope_state;

// Every limit key of the queue, found with SCAN (operator command, not a hot path).
asio::awaitable<std::vector<scope_state>> read_scopes(context& ctx, std::string& error) {
    queue::keys k(ctx.queue);
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
    const queue::keys k(ctx.queue);
    auto r = co_await ctx.redis.exec(
        admin::operator_pause_command(k, args.positional[0], args.positional[1], reason, duration));
    if (!r.ok()) co_return fail("redis: " + r.error);
    if (auto set = admin::read_ok(r.replies[0], "SET"); !set.ok()) co_return fail("redis: " + set.error);
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

asio::awaitable<int> resume(context& ctx, const invocation& args) {
    if (!check_scope(ctx, args, "resume")) co_return 2;
    const auto& provider = args.positional[0];
    const auto& account = args.positional[1];
    const queue::keys k(ctx.queue);
    auto r = co_await ctx.redis.exec(admin::resume_command(k, provider, account));
    if (!r.ok()) co_return fail("redis: " + r.error);
    const auto was_paused = admin::read_resumed(r.replies[0]);
    if (!was_paused.ok()) co_return fail("redis: " + was_paused.error);
    // Jobs that met the pause wait in the delayed set until its planned end: bring
    // this account's back now. Paged through the jobs due later than now; a moved
    // job leaves that range, so the next page starts that many ranks earlier.
    const unix_ms now = wall_now_ms();
    std::size_t moved = 0;
    for (long long start = 0;;) {
        auto page = co_await ctx.redis.exec(admin::held_page_command(k, now, start));
        if (!page.ok()) co_return fail("redis: " + page.error + " (resumed; held jobs not moved)");
        const auto tokens = admin::read_held_page(page.replies[0]);
        if (!tokens.ok()) co_return fail("redis: " + tokens.error + " (resumed; held jobs not moved)");
        if (tokens.value->empty()) break;
        auto jobs = co_await ctx.redis.exec(admin::held_job_commands(k, *tokens.value));
        if (!jobs.ok()) co_return fail("redis: " + jobs.error + " (resumed; held jobs not moved)");
        const auto held = admin::read_held_jobs_of(jobs.replies, *tokens.value, provider, account);
        if (!held.ok()) co_return fail("redis: " + held.error + " (resumed; held jobs not moved)");
        if (!held.value->empty()) {
            auto b = co_await ctx.redis.exec(admin::due_now_commands(k, *held.value, now));
            if (!b.ok()) co_return fail("redis: " + b.error + " (resumed; some held jobs not moved)");
            if (auto e = admin::first_error(b.replies))
                co_return fail("redis: " + *e + " (resumed; some held jobs not moved)");
            moved += held.value->size();
        }
        if (static_cast<long long>(tokens.value->size()) < admin::held_page_size) break;
        start += static_cast<long long>(tokens.value->size() - held.value->size());
    }
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("provider", json_string(provider, a), a);
        d.AddMember("account", json_string(account, a), a);
        d.AddMember("was_paused", *was_paused.value, a);
        d.AddMember("held_jobs_due_now", static_cast<std::uint64_t>(moved), a);
        print_json(d);
    } else {
        std::printf("%s %s/%s; %zu held job(s) due now\n",
                    *was_paused.value ? "resumed" : "was not paused:", provider.c_str(), account.c_str(), moved);
    }
    co_return 0;
}

asio::awaitable<int> stats(context& ctx, const invocation& args) {
    queue::keys k(ctx.queue);
    auto r = co_await ctx.redis.exec(admin::stats_commands(k));
    if (!r.ok()) co_return fail("redis: " + r.error);
    const auto read = admin::read_stats(r.replies);
    if (!read.ok()) co_return fail("redis: " + read.error);
    const admin::queue_stats& st = *read.value;
    if (!st.group) warn_no_group(ctx.queue);
    const std::int64_t waiting = st.waiting();
    std::string scope_error;
    auto scopes = co_await read_scopes(ctx, scope_error);
    if (!scope_error.empty()) co_return fail("redis: " + scope_error);
    if (args.json) {
        rapidjson::Document d(rapidjson::kObjectType);
        auto& a = d.GetAllocator();
        d.AddMember("queue", json_string(ctx.queue, a), a);
        d.AddMember("stream_length", st.stream_length, a);
        d.AddMember("waiting", waiting, a);
        d.AddMember("pending", st.pending, a);
        d.AddMember("delayed", st.delayed, a);
        d.AddMember("dead", st.dead, a);
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
        d.AddMember("pauses", pauses, a);
        d.AddMember("rates", rates, a);
        print_json(d);
    } else {
        std::printf(
            "queue     %s\nwaiting   %lld\npending   %lld  (taken by a worker, not finished)\n"
            "delayed   %lld  (retries and not_before)\ndead      %lld\nconsumers %lld\n",
            ctx.queue.c_str(), static_cast<long long>(waiting), static_cast<long long>(st.pending),
            static_cast<long long>(st.delayed), static_cast<long long>(st.dead), static_cast<long long>(st.consumers));
        for (auto& sc : scopes) {
            if (sc.pause_ms == -1)
                std::printf("paused    %s until resumed (%s)\n", sc.provider_account.c_str(), sc.pause_reason.c_str());
            else if (sc.pause_ms >= 0)
                std::printf("paused    %s for %.1f s more (%s)\n", sc.provider_account.c_str(),
                            static_cast<double>(sc.pause_ms) / 1000.0, sc.pause_reason.c_str());
            if (sc.in_window > 0)
                std::printf("rate      %s: %lld requests in the current window\n", sc.provider_account.c_str(),
                            static_cast<long long>(sc.in_window));
        }
    }
    co_return 0;
}

asio::awaitable<int> dead_list(context& ctx, const invocation& args) {
    const dead_filter filter = read_filter(args);
    std::string error;
    std::vector<dead_letter> all;
    if (!co_await read_dead(ctx, all, error)) co_return fail("redis: " + error);
    const long long limit = *args.options.integer("limit");
    std::vector<const dead_letter*> shown;
    for (auto it = all.rbegin(); it != all.rend() && static_cast<long long>(shown.size()) < limit; ++it)
        if (filter.matches(*it)) shown.push_back(&*it);
    if (args.json) {
        rapidjson::Document d(rapidjson::kArrayType);
        auto& a = d.GetAllocator();
        for (auto* dl : shown) {
            auto obj = fields_to_json(dl->fields, a);
            obj.AddMember("entry_id", json_string(dl->entry_id, a), a);
            d.PushBack(obj, a);
        }
        print_json(d);
        co_return 0;
    }
    if (shown.empty()) {
        std::printf("no dead letters%s\n", filter.any() ? " match" : "");
        co_return 0;
    }
    std::printf("%-20s %-24s %-18s %-18s %s\n", "ENTRY", "JOB ID", "PROVIDER/ACCOUNT", "CLASS", "ERROR");
    for (auto* dl : shown) {
        auto pa = field(dl->fields, "provider") + "/" + field(dl->fields, "account");
        auto err = field(dl->fields, "error");
        if (err.size() > 70) err = err.substr(0, 67) + "...";
        std::printf("%-20s %-24s %-18s %-18s %s\n", dl->entry_id.c_str(), field(dl->fields, "id").c_str(), pa.c_str(),
                    field(dl->fields, "error_class").c_str(), err.c_str());
    }
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
    if (args.json) {
        rapidjson::Document d;
        auto obj = fields_to_json(found->fields, d.GetAllocator());
        obj.AddMember("entry_id", json_string(found->entry_id, d.GetAllocator()), d.GetAllocator());
        print_json(obj);
    } else {
        field_list f = found->fields;
        f.insert(f.begin(), {"entry_id", found->entry_id});
        print_fields(f);
    }
    co_return 0;
}

asio::awaitable<int> dead_replay(context& ctx, const invocation& args) {
    const dead_filter filter = read_filter(args);
    if (args.positional.empty() && !filter.any() && !args.options.flag("all")) {
        std::fprintf(stderr,
                     "outq: dead replay needs an ID (job id or entry id), a filter (--provider, --account, --class, "
                     "--since, --until) or --all\n");
        co_return 2;
    }
    std::string error;
    std::vector<dead_letter> all;
    if (!co_await read_dead(ctx, all, error)) co_return fail("redis: " + error);
    queue::keys k(ctx.queue);
    // Which ones were replayed already.
    auto replayed = co_await ctx.redis.exec(admin::replayed_command(k));
    if (!replayed.ok()) co_return fail("redis: " + replayed.error);
    const auto replayed_read = admin::read_hash(replayed.replies[0]);
    if (!replayed_read.ok()) co_return fail("redis: " + replayed_read.error);
    const field_list& replayed_map = *replayed_read.value;
    const bool force = args.options.flag("force");
    std::vector<const dead_letter*> chosen;
    for (auto& dl : all) {
        if (!args.positional.empty() && dl.entry_id != args.positional[0] &&
            field(dl.fields, "id") != args.positional[0])
            continue;
        if (!filter.matches(dl)) continue;
        if (!force && !field(replayed_map, dl.entry_id).empty()) continue;
        chosen.push_back(&dl);
    }
    if (!args.positional.empty() && chosen.empty())
        co_return fail("no dead letter " + args.positional[0] + " to replay (already replayed? use --force)");
    const bool dry_run = args.options.flag("dry-run");
    struct replay_row {
        std::string dead_entry, job_entry, id;
    };
    std::vector<replay_row> rows;
    for (auto* dl : chosen) {
        replay_row row{dl->entry_id, "", field(dl->fields, "id")};
        if (!dry_run) {
            auto r = co_await ctx.redis.exec(
                admin::replay_command(k, row.id, field(dl->fields, "job"), dl->entry_id, force));
            if (!r.ok()) co_return fail("redis: " + r.error + " (" + std::to_string(rows.size()) + " replayed)");
            auto entry = admin::read_replay(r.replies[0]);
            if (!entry.ok())
                co_return fail("redis: " + entry.error + " (" + std::to_string(rows.size()) + " replayed)");
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
        print_json(d);
    } else {
        for (auto& row : rows)
            std::printf("%s %s (dead letter %s)%s%s\n", dry_run ? "would replay" : "replayed", row.id.c_str(),
                        row.dead_entry.c_str(), dry_run ? "" : " as entry ", row.job_entry.c_str());
        std::printf("%zu dead letter(s) %s\n", rows.size(), dry_run ? "would be replayed (dry run)" : "replayed");
    }
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
    const queue::keys k(ctx.queue);
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
