#include "web_server.hpp"

#include <rapidjson/document.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "outq/clock.hpp"
#include "outq/detail/async_event.hpp"
#include "outq/http_listener.hpp"
#include "outq/json_util.hpp"
#include "outq/log.hpp"
#include "outq/queue/activity.hpp"
#include "outq/queue/group.hpp"
#include "outq/web/api.hpp"

namespace outq::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace admin = queue::admin;
using detail::use_nothrow;

namespace {

constexpr std::size_t max_body = 64 * 1024;
// A free-text search reads at most this many letters per request; the page
// says how far it got ("scanned N of M") and the next request goes on.
constexpr std::size_t scan_budget = 20000;

struct answer {
    http::status status = http::status::ok;
    std::string body;
    std::string_view content_type = "application/json";
};

answer json_error(http::status s, std::string_view message) {
    return {s, error_json(message)};
}

std::string quote(std::string_view s) {
    std::string out;
    json::append_quoted(out, s);
    return out;
}

std::string_view field(const admin::field_list& fields, std::string_view name) {
    for (const auto& [k, v] : fields)
        if (k == name) return v;
    return {};
}

}  // namespace

struct server::impl {
    impl(asio::any_io_executor ex, cli::context& c, guard_settings s) : listener(ex), ctx(c), settings(std::move(s)) {}

    http_listener listener;
    cli::context& ctx;
    guard_settings settings;
    std::vector<std::string> hosts;

    // --- reads ---------------------------------------------------------------

    // What the workers wrote (queue/activity.hpp): the last `minutes` of
    // activity and the snapshots of `consumers`. One pipeline.
    struct fleet_reading {
        std::vector<queue::activity::minute_counts> history;
        std::vector<queue::activity::worker_snapshot> workers;
        std::string error;
    };
    asio::awaitable<fleet_reading> read_fleet(const std::set<std::string>& consumers, int minutes) {
        namespace activity = queue::activity;
        fleet_reading f;
        const auto& k = ctx.queue_wide();
        const auto last = activity::minute_of(wall_now_ms());
        auto cmds = activity::history_commands(k, last, minutes);
        // Bounded: a fleet larger than this shows its first workers by name.
        std::vector<std::string> names(consumers.begin(), consumers.end());
        if (names.size() > 1000) names.resize(1000);
        if (!names.empty()) cmds.push_back(activity::snapshots_command(k, names));
        auto r = co_await ctx.redis.exec(cmds);
        if (!r.ok()) {
            f.error = r.error;
            co_return f;
        }
        const std::vector<redis::value> history(r.replies.begin(), r.replies.begin() + minutes);
        if (!activity::read_history(history, last, f.history, f.error)) co_return f;
        if (!names.empty()) activity::read_snapshots(r.replies.back(), f.workers, f.error);
        co_return f;
    }

    // Every consumer name of the queue's group, in every partition (those alive: read in the last 30 s).
    asio::awaitable<std::optional<std::set<std::string>>> consumer_names(bool alive_only) {
        std::set<std::string> names;
        std::vector<redis::command> cmds;
        for (const auto& k : ctx.partitions) cmds.push_back(queue::consumers_command(k));
        auto r = co_await ctx.redis.exec(cmds);
        if (!r.ok()) co_return std::nullopt;
        for (const auto& reply : r.replies) {
            std::vector<queue::consumer_row> consumers;
            if (queue::parse_consumers(reply, consumers))  // NOGROUP (no worker yet): none
                for (const auto& c : consumers)
                    if (!alive_only || c.idle_ms < 30000) names.insert(c.name);
        }
        co_return names;
    }

    asio::awaitable<answer> overview() {
        web::overview o;
        o.queue = ctx.queue;
        o.partitions = static_cast<int>(ctx.partitions.size());
        o.now = wall_now_ms();
        std::vector<admin::queue_stats> parts;
        std::set<std::string> alive;  // a worker consumes every partition: counted once
        for (const auto& k : ctx.partitions) {
            auto cmds = admin::stats_commands(k);
            const std::size_t n = cmds.size();
            cmds.push_back(admin::oldest_dead_command(k));
            cmds.push_back(queue::consumers_command(k));
            auto r = co_await ctx.redis.exec(cmds);
            if (!r.ok()) co_return json_error(http::status::service_unavailable, "redis: " + r.error);
            const std::vector<redis::value> stats(r.replies.begin(), r.replies.begin() + static_cast<long>(n));
            auto read = admin::read_stats(stats);
            if (!read.ok()) co_return json_error(http::status::bad_gateway, "redis: " + read.error);
            parts.push_back(*read.value);
            auto oldest = admin::read_oldest_dead(r.replies[n]);
            if (!oldest.ok()) co_return json_error(http::status::bad_gateway, "redis: " + oldest.error);
            if (*oldest.value && (!o.oldest_dead_at || **oldest.value < *o.oldest_dead_at))
                o.oldest_dead_at = *oldest.value;
            std::vector<queue::consumer_row> consumers;
            if (queue::parse_consumers(r.replies[n + 1], consumers))  // NOGROUP (no worker yet): none
                for (const auto& c : consumers)
                    if (c.idle_ms < 30000) alive.insert(c.name);
        }
        o.stats = admin::sum_stats(parts);
        o.consumers_alive = static_cast<std::int64_t>(alive.size());
        auto fleet = co_await read_fleet(alive, 60);
        if (!fleet.error.empty()) co_return json_error(http::status::service_unavailable, "redis: " + fleet.error);
        o.activity = queue::activity::queue_series(fleet.history);
        o.workers = std::move(fleet.workers);
        co_return answer{http::status::ok, overview_json(o)};
    }

    // Letters newest first from `before`, each partition's matches merged.
    asio::awaitable<answer> dead(std::string_view query) {
        std::string error;
        auto q = read_dead_query(parse_query(query), error);
        if (!q) co_return json_error(http::status::bad_request, error);
        std::vector<admin::dead_letter> found;
        dead_page page;
        for (const auto& k : ctx.partitions) {
            auto len = co_await ctx.redis.exec(redis::command("XLEN").arg(k.dead));
            if (!len.ok()) co_return json_error(http::status::service_unavailable, "redis: " + len.error);
            if (len.replies[0].type == redis::value::kind::integer)
                page.total += static_cast<std::size_t>(len.replies[0].integer);
            std::string before = q->before;
            std::size_t matched = 0, scanned = 0;
            // Unfiltered, a page is the next limit + 1 letters; filtered, the scan reads 500 at a time.
            const long long step = q->filtered() ? 500 : q->limit + 1;
            while (matched <= static_cast<std::size_t>(q->limit) && scanned < scan_budget) {
                auto r = co_await ctx.redis.exec(admin::dead_page_newest_command(k, before, step));
                if (!r.ok()) co_return json_error(http::status::service_unavailable, "redis: " + r.error);
                auto letters = admin::read_dead_page(r.replies[0]);
                if (!letters.ok()) co_return json_error(http::status::bad_gateway, "redis: " + letters.error);
                scanned += letters.value->size();
                for (auto& d : *letters.value) {
                    d.partition = k.partition;
                    before = d.entry_id;
                    if (matches(*q, d) && matched <= static_cast<std::size_t>(q->limit)) {
                        ++matched;
                        found.push_back(std::move(d));
                    }
                }
                if (static_cast<long long>(letters.value->size()) < step) break;
            }
            page.scanned += scanned;
            if (scanned >= scan_budget) page.more = true;  // not all read: the next page goes on
        }
        std::stable_sort(found.begin(), found.end(), [](const admin::dead_letter& a, const admin::dead_letter& b) {
            return admin::entry_before(b.entry_id, a.entry_id);
        });
        if (found.size() > static_cast<std::size_t>(q->limit)) page.more = true;
        for (std::size_t i = 0; i < found.size() && i < static_cast<std::size_t>(q->limit); ++i)
            page.letters.push_back(&found[i]);
        co_return answer{http::status::ok, dead_page_json(page)};
    }

    asio::awaitable<std::optional<admin::dead_letter>> one_letter(int partition, std::string_view entry,
                                                                  std::string& error) {
        if (partition < 0 || partition >= static_cast<int>(ctx.partitions.size())) {
            error = "no partition " + std::to_string(partition);
            co_return std::nullopt;
        }
        auto r = co_await ctx.redis.exec(
            admin::dead_letter_command(ctx.partitions[static_cast<std::size_t>(partition)], entry));
        if (!r.ok()) {
            error = "redis: " + r.error;
            co_return std::nullopt;
        }
        auto letters = admin::read_dead_page(r.replies[0]);
        if (!letters.ok() || letters.value->empty()) {
            error = letters.ok() ? "no dead letter " + std::string(entry) : "redis: " + letters.error;
            co_return std::nullopt;
        }
        auto d = std::move(letters.value->front());
        d.partition = partition;
        co_return d;
    }

    asio::awaitable<answer> letter(std::string_view rest) {
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos) co_return json_error(http::status::not_found, "not found");
        int partition = -1;
        try {
            partition = std::stoi(std::string(rest.substr(0, slash)));
        } catch (const std::exception&) {
            co_return json_error(http::status::bad_request, "a partition is a number");
        }
        std::string error;
        auto d = co_await one_letter(partition, url_decode(rest.substr(slash + 1)), error);
        if (!d) co_return json_error(http::status::not_found, error);
        co_return answer{http::status::ok, dead_letter_json(*d)};
    }

    // --- changes ---------------------------------------------------------------
    asio::awaitable<std::string> replay_one(const admin::dead_letter& d, bool force) {
        auto r = co_await ctx.redis.exec(admin::replay_command(cli::letter_home(ctx, d), field(d.fields, "id"),
                                                               field(d.fields, "job"), d.entry_id, force));
        if (!r.ok()) co_return "error: redis: " + r.error;
        auto entry = admin::read_replay(r.replies[0]);
        if (!entry.ok()) co_return "error: " + entry.error;
        if (!*entry.value) co_return "replayed before";
        co_return "replayed as " + **entry.value;
    }

    asio::awaitable<answer> replay(const std::string& body) {
        rapidjson::Document d;
        d.Parse(body.c_str(), body.size());
        if (d.HasParseError() || !d.IsObject() || !d.HasMember("letters") || !d["letters"].IsArray())
            co_return json_error(http::status::bad_request,
                                 "expected {\"letters\": [{\"partition\": 0, \"entry\": \"…\"}]}");
        std::string out = "{\"results\":[";
        bool first = true;
        for (const auto& l : d["letters"].GetArray()) {
            if (!l.IsObject() || !l.HasMember("entry") || !l["entry"].IsString())
                co_return json_error(http::status::bad_request, "each letter needs an entry");
            const int partition = l.HasMember("partition") && l["partition"].IsInt() ? l["partition"].GetInt() : 0;
            std::string error;
            auto letter = co_await one_letter(partition, json::view(l["entry"]), error);
            std::string outcome = "error: " + error;
            if (letter) outcome = co_await replay_one(*letter, false);
            log::info("dead letter replayed from the web dashboard",
                      "entry=" + std::string(json::view(l["entry"])) + " outcome=" + log::value(outcome));
            out += (first ? "" : ",") + std::string("{\"entry\":") + quote(json::view(l["entry"])) +
                   ",\"outcome\":" + quote(outcome) + "}";
            first = false;
        }
        out += "]}";
        co_return answer{http::status::ok, out};
    }

    // Every letter the filter matches that was not replayed, up to `upto` (none: all).
    asio::awaitable<std::optional<std::vector<admin::dead_letter>>> matching(const dead_query& q, std::string_view upto,
                                                                             std::string& error) {
        std::vector<admin::field_list> maps;
        std::vector<admin::dead_letter> all;
        if (!co_await cli::read_replayed_maps(ctx, maps, error) || !co_await cli::read_dead(ctx, all, error)) {
            error = "redis: " + error;
            co_return std::nullopt;
        }
        std::vector<admin::dead_letter> out;
        for (auto& d : all) {
            if (!upto.empty() && admin::entry_before(upto, d.entry_id)) continue;
            if (!cli::replayed_as(ctx, maps, d).empty()) continue;
            if (matches(q, d)) out.push_back(std::move(d));
        }
        co_return out;
    }

    asio::awaitable<answer> replay_matching(const std::string& body) {
        rapidjson::Document d;
        d.Parse(body.c_str(), body.size());
        if (d.HasParseError() || !d.IsObject())
            co_return json_error(http::status::bad_request, "expected a JSON object");
        std::map<std::string, std::string> filter;
        if (d.HasMember("filter") && d["filter"].IsObject())
            for (const auto& m : d["filter"].GetObject())
                if (m.value.IsString()) filter[std::string(json::view(m.name))] = std::string(json::view(m.value));
        std::string error;
        auto q = read_dead_query(filter, error);
        if (!q) co_return json_error(http::status::bad_request, error);
        const bool dry_run = d.HasMember("dry_run") && d["dry_run"].IsBool() && d["dry_run"].GetBool();
        const std::string upto = d.HasMember("upto") && d["upto"].IsString() ? std::string(json::view(d["upto"])) : "";
        if (!dry_run && (upto.empty() || !d.HasMember("count") || !d["count"].IsUint64()))
            co_return json_error(http::status::bad_request,
                                 "a replay of matching letters names the dry run's upto and count");
        auto letters = co_await matching(*q, upto, error);
        if (!letters) co_return json_error(http::status::service_unavailable, error);
        std::string newest;
        for (const auto& l : *letters)
            if (newest.empty() || admin::entry_before(newest, l.entry_id)) newest = l.entry_id;
        if (dry_run)
            co_return answer{http::status::ok,
                             "{\"count\":" + std::to_string(letters->size()) + ",\"upto\":" + quote(newest) + "}"};
        if (letters->size() != d["count"].GetUint64())
            co_return json_error(http::status::conflict, "the matching letters changed since the dry run (" +
                                                             std::to_string(d["count"].GetUint64()) + " then, " +
                                                             std::to_string(letters->size()) +
                                                             " now): count them again");
        std::size_t replayed = 0;
        for (const auto& l : *letters)
            if ((co_await replay_one(l, false)).rfind("replayed as", 0) == 0) ++replayed;
        log::info("dead letters replayed from the web dashboard",
                  "count=" + std::to_string(replayed) + " upto=" + upto);
        co_return answer{http::status::ok, "{\"replayed\":" + std::to_string(replayed) + "}"};
    }

    asio::awaitable<answer> accounts() {
        std::string error;
        auto scopes = co_await cli::read_scopes(ctx, error);
        if (!error.empty()) co_return json_error(http::status::service_unavailable, "redis: " + error);
        std::vector<std::string> configured;
        if (ctx.config)
            for (const auto& [provider, provider_settings] : ctx.config->providers)
                for (const auto& [account, unused] : provider_settings.accounts)
                    configured.push_back(provider + "/" + account);
        auto names = co_await consumer_names(true);
        if (!names) co_return json_error(http::status::service_unavailable, "redis: reading the consumers failed");
        fleet_figures figures;
        auto fleet = co_await read_fleet(*names, 60);
        if (!fleet.error.empty()) co_return json_error(http::status::service_unavailable, "redis: " + fleet.error);
        const auto now = wall_now_ms();
        figures.accounts = queue::activity::account_series(
            fleet.history, queue::activity::minute_of(now) - figures.latency_minutes + 1);
        figures.workers = std::move(fleet.workers);
        co_return answer{http::status::ok, accounts_json(scopes, configured, now, figures)};
    }

    asio::awaitable<answer> job(std::string id) {
        if (id.empty()) co_return json_error(http::status::bad_request, "a job id");
        const std::string job_id(id);
        const auto& k = ctx.home(job_id);
        auto r = co_await ctx.redis.exec(admin::result_command(k, job_id));
        if (!r.ok()) co_return json_error(http::status::service_unavailable, "redis: " + r.error);
        auto read = admin::read_result_reply(r.replies[0]);
        if (!read.ok()) co_return json_error(http::status::bad_gateway, "redis: " + read.error);
        co_return answer{http::status::ok, job_json(job_id, k.partition, *read.value)};
    }

    // {"provider": "…", "account": "…"} (and for a pause "for_ms", "reason").
    struct account_change {
        std::string provider, account, reason = "paused from the web dashboard";
        std::optional<std::chrono::milliseconds> duration;
    };
    static std::optional<account_change> read_account_change(const std::string& body) {
        rapidjson::Document d;
        d.Parse(body.c_str(), body.size());
        if (d.HasParseError() || !d.IsObject()) return std::nullopt;
        account_change c;
        for (auto [name, field] : {std::pair{"provider", &c.provider}, std::pair{"account", &c.account}}) {
            if (!d.HasMember(name) || !d[name].IsString() || d[name].GetStringLength() == 0) return std::nullopt;
            *field = std::string(json::view(d[name]));
        }
        if (d.HasMember("reason") && d["reason"].IsString() && d["reason"].GetStringLength() > 0)
            c.reason = std::string(json::view(d["reason"]));
        if (d.HasMember("for_ms") && d["for_ms"].IsInt64() && d["for_ms"].GetInt64() > 0)
            c.duration = std::chrono::milliseconds(d["for_ms"].GetInt64());
        return c;
    }

    asio::awaitable<answer> pause(const std::string& body) {
        const auto c = read_account_change(body);
        if (!c)
            co_return json_error(http::status::bad_request,
                                 "expected {\"provider\", \"account\"[, \"for_ms\", \"reason\"]}");
        auto r = co_await ctx.redis.exec(
            admin::operator_pause_commands(ctx.queue_wide(), c->provider, c->account, c->reason, c->duration));
        if (!r.ok()) co_return json_error(http::status::service_unavailable, "redis: " + r.error);
        if (auto set = admin::read_ok(r.replies[0], "SET"); !set.ok())
            co_return json_error(http::status::bad_gateway, "redis: " + set.error);
        log::info(
            "account paused from the web dashboard",
            "provider=" + c->provider + " account=" + log::value(c->account) + " reason=" + log::value(c->reason));
        co_return answer{http::status::ok, "{\"paused\":true}"};
    }

    asio::awaitable<answer> resume(const std::string& body) {
        const auto c = read_account_change(body);
        if (!c) co_return json_error(http::status::bad_request, "expected {\"provider\", \"account\"}");
        const auto done = co_await cli::resume_account(ctx, c->provider, c->account);
        if (!done.error.empty()) co_return json_error(http::status::service_unavailable, done.error);
        log::info("account resumed from the web dashboard", "provider=" + c->provider +
                                                                " account=" + log::value(c->account) +
                                                                " held_jobs_due_now=" + std::to_string(done.moved));
        co_return answer{http::status::ok, std::string("{\"was_paused\":") + (done.was_paused ? "true" : "false") +
                                               ",\"held_jobs_due_now\":" + std::to_string(done.moved) + "}"};
    }

    asio::awaitable<answer> route(const http::request<http::string_body>& req, std::string_view path,
                                  std::string_view query) {
        if (req.method() == http::verb::post) {
            if (path == "/api/dead/replay") co_return co_await replay(req.body());
            if (path == "/api/dead/replay-matching") co_return co_await replay_matching(req.body());
            if (path == "/api/accounts/pause") co_return co_await pause(req.body());
            if (path == "/api/accounts/resume") co_return co_await resume(req.body());
            co_return json_error(http::status::not_found, "not found");
        }
        if (path == "/api/overview") co_return co_await overview();
        if (path == "/api/dead") co_return co_await dead(query);
        if (path == "/api/accounts") co_return co_await accounts();
        if (path.rfind("/api/job/", 0) == 0) co_return co_await job(url_decode(path.substr(9)));
        if (path.rfind("/api/dead/", 0) == 0) co_return co_await letter(path.substr(10));
        if (path.rfind("/api/", 0) == 0) co_return json_error(http::status::not_found, "not found");
        const auto a = find_asset(path == "/" ? "/index.html" : path);
        if (a.body.empty()) co_return answer{http::status::not_found, "not found\n", "text/plain; charset=utf-8"};
        co_return answer{http::status::ok, std::string(a.body), a.content_type};
    }

    asio::awaitable<void> session(beast::tcp_stream& stream, bool loopback) {
        beast::flat_buffer buffer;
        for (;;) {
            stream.expires_after(std::chrono::seconds(30));
            http::request_parser<http::string_body> parser;
            parser.body_limit(max_body);
            parser.header_limit(16 * 1024);
            auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_nothrow);
            if (rec) co_return;
            const auto& req = parser.get();
            std::string_view target = req.target();
            const auto q = target.find('?');
            const std::string_view path = target.substr(0, q);
            const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
            request_facts facts;
            const std::string method(req.method_string());
            facts.method = method;
            facts.path = path;
            facts.host = req[http::field::host];
            facts.token = req["X-Outq-Token"];
            facts.peer_loopback = loopback;
            const auto v = check(settings, hosts, facts);
            answer a;
            if (!v.ok())
                a = {static_cast<http::status>(v.status), error_json(v.reason)};
            else
                a = co_await route(req, path, query);
            http::response<http::string_body> res;
            res.version(req.version());
            res.keep_alive(req.keep_alive());
            res.result(a.status);
            res.set(http::field::content_type, a.content_type);
            // The page is never framed by another site, runs only its own script, and no
            // answer (dead letters: personal data) is kept in a cache.
            res.set(http::field::cache_control, "no-store");
            res.set("X-Frame-Options", "DENY");
            res.set("X-Content-Type-Options", "nosniff");
            res.set("Content-Security-Policy",
                    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
            res.set("Referrer-Policy", "no-referrer");
            res.body() = std::move(a.body);
            res.prepare_payload();
            if (req.method() == http::verb::head) res.body().clear();
            auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
            if (wec || !res.keep_alive()) co_return;
        }
    }
};

server::server(asio::any_io_executor ex, cli::context& ctx, guard_settings settings)
    : impl_(std::make_unique<impl>(ex, ctx, std::move(settings))) {}
server::~server() = default;

void server::listen(const std::string& address) {
    const auto at = parse_listen_address(address, "--listen");
    if (!at.address().is_loopback() && impl_->settings.token.empty())
        throw std::runtime_error("--listen " + address +
                                 ": off loopback the dashboard needs an operator token (OUTQ_WEB_TOKEN or "
                                 "--token-file): dead letters hold personal data");
    impl_->listener.listen(at, "--listen");
    impl_->hosts = default_hosts(at.address().to_string(), impl_->listener.port());
    for (const auto& h : impl_->settings.allowed_hosts) impl_->hosts.push_back(h);
}

unsigned short server::port() const {
    return impl_->listener.port();
}

asio::awaitable<void> server::serve() {
    co_await impl_->listener.serve([this](beast::tcp_stream& stream, bool loopback) -> asio::awaitable<void> {
        co_await impl_->session(stream, loopback);
    });
}

void server::stop() {
    impl_->listener.stop();
}

}  // namespace outq::web
