#include "runtime.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <cstdlib>
#include <random>
#include <unordered_map>

#include "outq/detail/async_event.hpp"
#include "outq/http_client.hpp"
#include "outq/json_util.hpp"
#include "outq/log.hpp"
#include "outq/metrics.hpp"
#include "outq/metrics_server.hpp"
#include "outq/queue_protocol.hpp"
#include "outq/redis_connection.hpp"
#include "outq/token_cache.hpp"

namespace outq {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using queue::completion;

namespace {

std::string default_consumer_name() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "outq");
    return std::string(host) + "-" + std::to_string(getpid());
}

redis::connection_options redis_options(const worker_config& c, std::string_view role, const std::string& consumer) {
    std::string error;
    auto ep = redis::parse_url(c.redis.url, error);
    if (!ep) throw config_error("config: redis.url: " + error);
    if (!c.redis.password.empty()) ep->password = c.redis.password;
    redis::connection_options o;
    o.where = *ep;
    o.tls_ca_file = c.redis.tls_ca_file;
    o.tls_verify = c.redis.tls_verify;
    o.connect_timeout = c.redis.connect_timeout;
    o.command_timeout = c.redis.command_timeout;
    o.client_name = "outq-" + std::string(role) + "-" + consumer;
    for (auto& ch : o.client_name)
        if (ch == ' ') ch = '_';
    return o;
}

// A job that passed parsing and is about to be sent.
struct delivery {
    queue::envelope env;
    job j;
    const adapter* provider = nullptr;
    const provider_settings* settings = nullptr;
    const account_settings* account = nullptr;
    std::string_view scope;  // rate-limit scope keys prefix (interned: see scope_of)
};

// Exponential backoff for Redis trouble: 100 ms doubling to 5 s.
struct redis_backoff {
    std::chrono::milliseconds next{100};
    std::chrono::milliseconds take() {
        auto d = next;
        next = std::min<std::chrono::milliseconds>(next * 2, 5000ms);
        return d;
    }
    void reset() { next = 100ms; }
};

}  // namespace

struct worker_runtime::impl {
    impl(asio::any_io_executor ex, const worker_config& c, const adapter_registry& a)
        : executor(ex),
          config(c),
          adapters(a),
          keys(c.queue),
          consumer(c.consumer.empty() ? default_consumer_name() : c.consumer),
          fetch_conn(ex, redis_options(c, "fetch", consumer)),
          ctl_conn(ex, redis_options(c, "ctl", consumer)),
          limit_conn(ex, redis_options(c, "limit", consumer)),
          http(ex, proxy_config_from_env([](const char* name) -> const char* { return std::getenv(name); })),
          tokens(ex, http),
          slot_free(ex),
          completions_ready(ex),
          loops_done(ex),
          stop_requested(ex),
          fetch_timer(ex),
          reclaim_timer(ex),
          mover_timer(ex),
          heartbeat_timer(ex),
          report_timer(ex),
          grace_timer(ex),
          rng(std::random_device{}()) {
        writes.result_ttl_seconds = c.result_ttl_seconds;
        writes.results_stream_maxlen = c.results_stream_maxlen;
        writes.dead_maxlen = c.dead_maxlen;
    }

    asio::any_io_executor executor;
    const worker_config& config;
    const adapter_registry& adapters;
    queue::keys keys;
    queue::write_settings writes;
    std::string consumer;
    redis::connection fetch_conn;  // blocking XREADGROUP only
    redis::connection ctl_conn;    // everything else
    redis::connection limit_conn;  // limiter decisions and pauses, so they never queue behind a batch write
    std::uint64_t lease_seq = 0;
    http_client http;
    token_cache tokens;
    metrics stats;
    std::unique_ptr<metrics_server> metrics_endpoint;
    std::chrono::steady_clock::time_point last_redis_ok = std::chrono::steady_clock::now();

    bool stopping = false;
    bool hard_stopped = false;
    int in_flight = 0;           // delivered to this worker and not yet written back (throttled waiters excluded)
    int waiting_for_permit = 0;  // jobs sleeping on a short rate-limit wait
    std::unordered_map<std::string, std::string> in_flight_entries;  // entry id → job id
    std::vector<completion> pending;
    int loops_running = 0;

    detail::async_event slot_free;
    detail::async_event completions_ready;
    detail::async_event loops_done;
    detail::async_event stop_requested;
    asio::steady_timer fetch_timer, reclaim_timer, mover_timer, heartbeat_timer, report_timer, grace_timer;
    std::mt19937_64 rng;

    struct {
        std::uint64_t sent = 0, dead = 0, retried = 0, delayed = 0, duplicates = 0, reclaimed = 0;
    } counts;

    double unit_random() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

    void wake_all() {
        flush_all_batches();
        slot_free.notify_all();
        completions_ready.notify_all();
        stop_requested.notify_all();
        for (auto* t : {&fetch_timer, &reclaim_timer, &mover_timer, &heartbeat_timer, &report_timer}) t->cancel();
    }

    void spawn_loop(asio::awaitable<void> (impl::*loop)(), const char* name) {
        ++loops_running;
        asio::co_spawn(executor, (this->*loop)(), [this, name](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    log::error("worker loop failed", std::string("loop=") + name + " error=" + log::value(ex.what()));
                }
            }
            --loops_running;
            loops_done.notify_all();
        });
    }

    // --- group -----------------------------------------------------------

    asio::awaitable<bool> ensure_group() {
        redis::command c("XGROUP");
        c.arg("CREATE").arg(keys.jobs).arg(queue::group_name).arg("0").arg("MKSTREAM");
        auto r = co_await ctl_conn.exec(c);
        if (!r.ok()) {
            log::warn("redis unavailable", "op=xgroup_create error=" + log::value(r.error));
            co_return false;
        }
        auto& v = r.replies[0];
        if (v.is_error() && !v.error_is("BUSYGROUP")) {
            log::error("cannot create consumer group", "stream=" + keys.jobs + " error=" + log::value(v.str));
            co_return false;
        }
        if (!v.is_error()) log::info("created consumer group", "stream=" + keys.jobs + " group=outq");
        co_return true;
    }

    // --- admission: parse, validate, claim ---------------------------------

    void push(completion c) {
        pending.push_back(std::move(c));
        completions_ready.notify_all();
    }

    completion dead_letter(queue::envelope env, std::string job_id, std::string provider, std::string account,
                           std::string_view dead_class, std::string error) {
        completion c;
        c.what = completion::kind::dead;
        c.job_id = std::move(job_id);
        c.provider = std::move(provider);
        c.account = std::move(account);
        c.dead_class = std::string(dead_class);
        c.error = std::move(error);
        c.completed_at = wall_now_ms();
        c.env = std::move(env);
        return c;
    }

    void dead_validation(queue::envelope env, const job_error& e) {
        log::info("job rejected", "class=validation entry=" + env.entry_id + " id=" + log::value(e.id) +
                                      " error=" + log::value(e.error));
        push(dead_letter(std::move(env), e.id, e.provider, e.account, dead_class::validation, e.error));
    }

    asio::awaitable<void> admit(std::vector<queue::stream_entry> entries) {
        std::vector<delivery> candidates;
        candidates.reserve(entries.size());
        for (auto& entry : entries) {
            ++in_flight;
            auto env = queue::to_envelope(std::move(entry));
            in_flight_entries.emplace(env.entry_id, env.entry_id);
            if (!env.has_job_field) {
                job_error e{"job: the stream entry has no 'job' field", env.entry_id, "", ""};
                dead_validation(std::move(env), e);
                continue;
            }
            if (env.deliveries > config.max_deliveries) {
                // Checked before anything else touches the job: whatever killed the
                // workers that held it must not run again. Its names are read
                // without parsing the whole job.
                auto name = [&](std::string_view key) { return json::scalar_member(env.job_json, key).value_or(""); };
                std::string id = name("id");
                if (id.empty()) id = env.entry_id;
                const std::string error = "taken over " + std::to_string(env.deliveries - 1) +
                                          " times without an outcome: every worker holding it stopped or died "
                                          "before finishing (max_deliveries " +
                                          std::to_string(config.max_deliveries) + ")";
                log::error("poison job: dead letter instead of another delivery",
                           "id=" + log::value(id) + " entry=" + env.entry_id +
                               " deliveries=" + std::to_string(env.deliveries));
                auto provider = name("provider"), account = name("account");
                push(dead_letter(std::move(env), std::move(id), std::move(provider), std::move(account),
                                 dead_class::attempts_exhausted, error));
                continue;
            }
            auto parsed = parse_job(env.job_json, env.first_entry.empty() ? env.entry_id : env.first_entry);
            if (!parsed.ok()) {
                dead_validation(std::move(env), parsed.failure);
                continue;
            }
            delivery d;
            d.j = std::move(*parsed.value);
            if (d.j.id_from_entry && env.first_entry.empty()) env.first_entry = env.entry_id;
            job_error e{"", d.j.id, d.j.provider, d.j.account};
            d.provider = adapters.find(d.j.provider);
            auto settings = config.providers.find(d.j.provider);
            if (!d.provider || settings == config.providers.end()) {
                e.error = "job.provider: unknown provider '" + d.j.provider + "'";
                dead_validation(std::move(env), e);
                continue;
            }
            d.settings = &settings->second;
            auto account = d.settings->accounts.find(d.j.account);
            if (account == d.settings->accounts.end()) {
                e.error =
                    "job.account: no account '" + d.j.account + "' is configured for provider '" + d.j.provider + "'";
                dead_validation(std::move(env), e);
                continue;
            }
            d.account = account->second.get();
            if (auto problem = d.provider->validate(d.j)) {
                e.error = *problem;
                dead_validation(std::move(env), e);
                continue;
            }
            in_flight_entries[env.entry_id] = d.j.id;
            d.env = std::move(env);
            candidates.push_back(std::move(d));
        }
        if (candidates.empty()) co_return;

        std::vector<queue::claim_item> items;
        items.reserve(candidates.size());
        for (auto& d : candidates) {
            d.scope = scope_of(d.j.provider, d.j.account);
            items.push_back({d.j.id, d.env.entry_id, d.scope});
        }
        std::vector<redis::command> claim;
        queue::append_claim_commands(keys, items, config.visibility_timeout, claim);
        std::vector<queue::claim_result> verdicts;
        redis_backoff backoff;
        for (;;) {
            auto r = co_await ctl_conn.exec(claim);
            if (r.ok() && queue::parse_claim_replies(r.replies, items, verdicts) &&
                co_await check_marker_owners(items, verdicts))
                break;
            log::warn("cannot claim fetched jobs, retrying",
                      "error=" + log::value(r.ok() ? "unexpected reply" : r.error));
            if (hard_stopped || stopping) {
                // Leave them pending: another worker reclaims them after the visibility timeout.
                for (auto& d : candidates) forget(d.env.entry_id);
                co_return;
            }
            co_await detail::sleep_for(fetch_timer, backoff.take());
        }

        const unix_ms now = wall_now_ms();
        for (std::size_t i = 0; i < candidates.size(); ++i) {
            auto& d = candidates[i];
            switch (verdicts[i].verdict) {
                case queue::claim_verdict::done: {
                    log::info("duplicate job skipped: a result exists",
                              "id=" + log::value(d.j.id) + " entry=" + d.env.entry_id);
                    completion c;
                    c.what = completion::kind::duplicate;
                    c.release_marker = verdicts[i].holds_marker;
                    c.job_id = d.j.id;
                    c.env = std::move(d.env);
                    ++counts.duplicates;
                    push(std::move(c));
                    break;
                }
                case queue::claim_verdict::busy: {
                    // A twin delivery of this id is being sent right now; look again later,
                    // when it will find the twin's result.
                    completion c = delay(std::move(d), now + std::clamp<std::int64_t>(
                                                                 config.visibility_timeout.count() / 4, 1000, 30000));
                    c.release_marker = false;
                    push(std::move(c));
                    break;
                }
                case queue::claim_verdict::paused: {
                    // The account is paused for the whole fleet: back to the delayed set until
                    // the pause ends, without using an attempt.
                    completion c = delay(std::move(d), now + pause_delay(verdicts[i].pause_ms));
                    c.release_marker = verdicts[i].holds_marker;
                    push(std::move(c));
                    break;
                }
                case queue::claim_verdict::go: {
                    if (d.j.expires_at && *d.j.expires_at <= now) {
                        push(dead_letter(std::move(d.env), d.j.id, d.j.provider, d.j.account, dead_class::expired,
                                         "expires_at " + format_rfc3339(*d.j.expires_at) +
                                             " passed before the message could be sent"));
                    } else if (d.j.not_before && *d.j.not_before > now) {
                        push(delay(std::move(d), *d.j.not_before));
                    } else {
                        dispatch(std::move(d));
                    }
                    break;
                }
            }
        }
    }

    // When a paused job should look again: at the pause's end, spread over a
    // short jitter so a whole backlog does not return in the same millisecond;
    // an open-ended pause is looked at every 30 s.
    std::int64_t pause_delay(std::int64_t pause_ms) {
        const std::int64_t base = pause_ms < 0 ? 30000 : pause_ms;
        return base + static_cast<std::int64_t>(unit_random() * 250.0);
    }

    // Asks the shared limiter before a request (a batch counts as one); false
    // when the jobs were put back (paused, or a long wait) or dropped at shutdown.
    asio::awaitable<bool> wait_for_permit(std::vector<delivery>& items, std::string& lease_id) {
        const delivery& first = items.front();
        const auto& limits = first.account->limits;
        asio::steady_timer timer(executor);
        const auto lease_ttl = first.account->http.connect_timeout + first.account->http.tls_handshake_timeout +
                               first.account->http.request_timeout + 5s;
        redis_backoff backoff;
        for (;;) {
            if (hard_stopped) {
                for (auto& d : items) forget(d.env.entry_id);
                co_return false;
            }
            lease_id = consumer + ":" + std::to_string(++lease_seq);
            auto r = co_await limit_conn.exec(queue::limit_command(first.scope, limits.requests, limits.window,
                                                                   limits.max_in_flight, lease_id, lease_ttl,
                                                                   std::nullopt, limits.burst));
            queue::limit_decision decision;
            if (!r.ok() || !queue::parse_limit_reply(r.replies[0], decision)) {
                // Without the shared state the limit cannot be honoured: wait, never send blind.
                log::warn("rate limiter unavailable", "error=" + log::value(r.ok() ? r.replies[0].str : r.error));
                co_await detail::sleep_for(timer, backoff.take());
                continue;
            }
            if (decision.wait_ms == 0) {
                if (limits.max_in_flight == 0) lease_id.clear();
                co_return true;
            }
            const unix_ms now = wall_now_ms();
            if (decision.reason == "paused") {
                for (auto& d : items) push(delay(std::move(d), now + pause_delay(decision.wait_ms)));
                co_return false;
            }
            const int n = static_cast<int>(items.size());
            if (decision.wait_ms > 1000 || stopping || waiting_for_permit + n > config.concurrency) {
                // Long waits (or too many waiters) leave memory: other accounts keep flowing.
                for (auto& d : items)
                    push(delay(std::move(d), now + decision.wait_ms + static_cast<std::int64_t>(unit_random() * 50.0)));
                co_return false;
            }
            // A throttled job does not hold a concurrency slot while it waits, so one
            // slow account cannot stall the others (waiters are capped at `concurrency`).
            waiting_for_permit += n;
            in_flight -= n;
            slot_free.notify_all();
            co_await detail::sleep_for(timer, std::chrono::milliseconds(decision.wait_ms));
            waiting_for_permit -= n;
            in_flight += n;
        }
    }

    // Every worker holds off this provider account until the pause ends.
    asio::awaitable<void> pause_scope(const delivery& d, std::optional<std::chrono::milliseconds> duration,
                                      const std::string& reason) {
        auto r = co_await limit_conn.exec(queue::pause_command(d.scope, duration, reason));
        if (!r.ok() || r.replies[0].is_error())
            log::warn("could not set the account pause",
                      "provider=" + d.j.provider + " account=" + d.j.account +
                          " error=" + log::value(r.ok() ? r.replies[0].str : r.error));
        else
            log::info("account paused", "provider=" + d.j.provider + " account=" + log::value(d.j.account) +
                                            " ms=" + (duration ? std::to_string(duration->count()) : "until_resumed") +
                                            " reason=" + log::value(reason));
    }

    // Second claim round for markers someone else holds: a reclaimed delivery
    // owns the marker its crashed predecessor set (same entry id) and takes it over.
    asio::awaitable<bool> check_marker_owners(const std::vector<queue::claim_item>& items,
                                              std::vector<queue::claim_result>& verdicts) {
        std::vector<std::size_t> idx;
        std::vector<redis::command> gets;
        for (std::size_t i = 0; i < items.size(); ++i) {
            if (!verdicts[i].check_owner) continue;
            idx.push_back(i);
            gets.push_back(queue::marker_owner_command(keys, items[i]));
        }
        if (idx.empty()) co_return true;
        auto r = co_await ctl_conn.exec(gets);
        if (!r.ok()) co_return false;
        std::vector<redis::command> take_over;
        for (std::size_t j = 0; j < idx.size(); ++j) {
            auto& v = verdicts[idx[j]];
            v.check_owner = false;
            if (r.replies[j].is_string() && r.replies[j].str == items[idx[j]].entry_id) {
                take_over.push_back(queue::take_over_marker_command(keys, items[idx[j]], config.visibility_timeout));
                v.verdict = queue::claim_verdict::go;
                v.holds_marker = true;
            }
        }
        if (!take_over.empty()) {
            auto t = co_await ctl_conn.exec(take_over);
            if (!t.ok()) co_return false;
        }
        co_return true;
    }

    completion delay(delivery&& d, unix_ms due) {
        completion c;
        c.what = completion::kind::delay;
        c.job_id = d.j.id;
        c.due_at = due;
        c.env = std::move(d.env);
        ++counts.delayed;
        return c;
    }

    // Drops a delivery without writing anything: it stays pending in Redis.
    void forget(const std::string& entry_id) {
        in_flight_entries.erase(entry_id);
        --in_flight;
        slot_free.notify_all();
        loops_done.notify_all();
    }

    // --- sending -----------------------------------------------------------

    // Jobs of adapters that batch wait here, per account, for a batch to fill.
    struct pending_batch {
        std::vector<delivery> items;
        std::unique_ptr<asio::steady_timer> timer;
    };
    std::unordered_map<const account_settings*, pending_batch> batches;

    void dispatch(delivery d) {
        const std::size_t max = std::max<std::size_t>(1, d.provider->max_batch(*d.account));
        if (max == 1) {
            std::vector<delivery> one;
            one.push_back(std::move(d));
            asio::co_spawn(executor, send(std::move(one)), asio::detached);
            return;
        }
        const account_settings* account = d.account;
        auto& b = batches[account];
        b.items.push_back(std::move(d));
        if (b.items.size() >= max || stopping) {
            flush_batch(account);
        } else if (b.items.size() == 1) {
            if (!b.timer) b.timer = std::make_unique<asio::steady_timer>(executor);
            b.timer->expires_after(b.items.front().provider->batch_wait(*account));
            b.timer->async_wait([this, account](boost::system::error_code ec) {
                if (!ec) flush_batch(account);
            });
        }
    }

    void flush_batch(const account_settings* account) {
        auto it = batches.find(account);
        if (it == batches.end() || it->second.items.empty()) return;
        std::vector<delivery> items;
        items.swap(it->second.items);
        if (it->second.timer) it->second.timer->cancel();
        asio::co_spawn(executor, send(std::move(items)), asio::detached);
    }

    void flush_all_batches() {
        std::vector<const account_settings*> accounts;
        for (auto& [a, b] : batches) accounts.push_back(a);
        for (auto* a : accounts) flush_batch(a);
    }

    // An earlier attempt may have reached the provider: look before sending
    // again. Returns the outcome when the message is found there.
    asio::awaitable<std::optional<send_outcome>> reconcile(delivery& d) {
        std::string cursor;
        for (int page = 0; page < 10; ++page) {
            auto request = d.provider->reconcile_request(d.j, *d.account, d.env.ambiguous_since, cursor);
            if (!request) co_return std::nullopt;
            auto r = co_await http.send(*request, d.account->http, d.account->tls);
            if (!r.ok()) {
                d.env.history = queue::append_history(d.env.history, wall_now_ms(), 0, outcome_class::ambiguous,
                                                      "reconciliation failed (" + r.error + "); sending again");
                co_return std::nullopt;
            }
            auto step = d.provider->parse_reconcile(r.response, d.j, *d.account, d.env.ambiguous_since);
            switch (step.what) {
                case reconcile_step::kind::found: {
                    send_outcome o;
                    o.cls = outcome_class::success;
                    o.http_status = r.response.status;
                    o.provider_message_id = step.provider_message_id;
                    o.error = "reconciled: an earlier ambiguous attempt had delivered the message";
                    log::info(
                        "reconciled: already delivered, not sending again",
                        "id=" + log::value(d.j.id) + " provider_message_id=" + log::value(step.provider_message_id));
                    co_return o;
                }
                case reconcile_step::kind::next_page:
                    cursor = step.cursor;
                    continue;
                case reconcile_step::kind::not_found:
                    d.env.history =
                        queue::append_history(d.env.history, wall_now_ms(), r.response.status, outcome_class::ambiguous,
                                              "reconciled: not delivered by the earlier attempt; sending again");
                    co_return std::nullopt;
                case reconcile_step::kind::failed:
                    d.env.history =
                        queue::append_history(d.env.history, wall_now_ms(), r.response.status, outcome_class::ambiguous,
                                              "reconciliation failed (" + step.error + "); sending again");
                    co_return std::nullopt;
            }
        }
        co_return std::nullopt;
    }

    // Sends one request for `items` (all of one account; one item unless the
    // adapter batches) and writes each job's next state.
    asio::awaitable<void> send(std::vector<delivery> items) {
        const adapter& provider = *items.front().provider;
        const account_settings& account = *items.front().account;
        const std::string_view scope = items.front().scope;
        std::string lease_id;
        if (account.limits.enabled() && !co_await wait_for_permit(items, lease_id)) co_return;
        if (account.limits.enabled()) {
            // The wait for a permit may have outlasted a job's expires_at: never send late.
            const unix_ms after_wait = wall_now_ms();
            for (std::size_t i = 0; i < items.size();) {
                auto& d = items[i];
                if (!d.j.expires_at || *d.j.expires_at > after_wait) {
                    ++i;
                    continue;
                }
                push(dead_letter(std::move(d.env), d.j.id, d.j.provider, d.j.account, dead_class::expired,
                                 "expires_at " + format_rfc3339(*d.j.expires_at) +
                                     " passed while the job waited for its rate limit"));
                items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
            }
            if (items.empty()) {
                if (!lease_id.empty()) co_await limit_conn.exec(queue::release_lease_command(scope, lease_id));
                co_return;
            }
        }

        // Reconciliation first: a job an earlier attempt delivered is done.
        for (std::size_t i = 0; i < items.size();) {
            if (items[i].env.ambiguous_since == 0) {
                ++i;
                continue;
            }
            auto found = co_await reconcile(items[i]);
            items[i].env.ambiguous_since = 0;
            if (!found) {
                ++i;
                continue;
            }
            finish(std::move(items[i]), std::move(*found), wall_now_ms(), {}, /*counts_attempt=*/false);
            items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
        }
        if (items.empty()) {
            if (!lease_id.empty()) co_await limit_conn.exec(queue::release_lease_command(scope, lease_id));
            co_return;
        }

        std::vector<batch_item> batch;
        batch.reserve(items.size());
        for (auto& d : items) batch.push_back({&d.j, d.env.attempts + 1});
        const bool needs_token = provider.token_request(account).has_value();
        bool token_refreshed = false;
        std::vector<send_outcome> outcomes;
        bool halve = false;
        unix_ms started = 0;
        std::optional<std::chrono::milliseconds> provider_hold;  // RateLimit headers: none left
        for (;;) {
            std::string token;
            std::optional<send_outcome> failure;
            if (needs_token) {
                auto t = co_await tokens.get(provider, account);
                if (t.token)
                    token = std::move(t.token->value);
                else
                    failure = std::move(t.failure);
            }
            started = wall_now_ms();
            if (failure) {
                outcomes.assign(items.size(), *failure);
                break;
            }
            auto request = provider.build_batch_request(batch, account,
                                                        attempt_context{batch.front().attempt_number, started, token});
            http_result result = co_await http.send(request, account.http, account.tls);
            stats.observe_send_ms(wall_now_ms() - started);
            if (result.failure == http_failure::cancelled) {
                for (auto& d : items) {
                    log::warn("send cancelled by shutdown; the job stays pending for another worker",
                              "id=" + log::value(d.j.id) + " entry=" + d.env.entry_id);
                    forget(d.env.entry_id);
                }
                co_return;
            }
            if (result.ok() && needs_token && !token_refreshed && provider.token_rejected(result.response, account)) {
                // A stale token is not the job's fault: refresh once and send again.
                tokens.invalidate(account, token);
                token_refreshed = true;
                if (account.limits.enabled()) {
                    // The resend is a request of its own: it needs its own permit.
                    if (!lease_id.empty()) co_await limit_conn.exec(queue::release_lease_command(scope, lease_id));
                    lease_id.clear();
                    if (!co_await wait_for_permit(items, lease_id)) co_return;
                }
                continue;
            }
            if (result.ok()) {
                outcomes = provider.classify_batch(result.response, batch, account, wall_now_ms(), halve);
                provider_hold = rate_limit_exhausted_for(result.response, wall_now_ms());
            } else
                outcomes.assign(items.size(), outcome_from_failure(result));
            break;
        }
        if (outcomes.size() != items.size()) {
            send_outcome broken;
            broken.cls = outcome_class::ambiguous;
            broken.error = "adapter returned " + std::to_string(outcomes.size()) + " outcomes for " +
                           std::to_string(items.size()) + " jobs";
            outcomes.assign(items.size(), broken);
        }
        if (halve && items.size() > 1) {
            // The provider found the request too heavy: send it again as two halves.
            log::info("batch too heavy for the provider, halving", "size=" + std::to_string(items.size()));
            if (!lease_id.empty()) co_await limit_conn.exec(queue::release_lease_command(scope, lease_id));
            std::vector<delivery> second(
                std::make_move_iterator(items.begin() + static_cast<std::ptrdiff_t>(items.size() / 2)),
                std::make_move_iterator(items.end()));
            items.resize(items.size() / 2);
            asio::co_spawn(executor, send(std::move(second)), asio::detached);
            asio::co_spawn(executor, send(std::move(items)), asio::detached);
            co_return;
        }
        // Fleet-wide holds: a 429 (once per request, not per job) and adapter signals.
        const delivery& first = items.front();
        for (auto& o : outcomes) {
            // An adapter's own pause (a quota window) says more than the generic one.
            if (o.cls != outcome_class::rate_limited || o.pause_account_for) continue;
            const auto& retry = first.settings->retry;
            const bool said_when = o.retry_after.has_value();
            auto wait = said_when ? std::clamp(*o.retry_after, std::chrono::milliseconds(0), retry.max_retry_after)
                                  : backoff_delay(retry, first.env.rate_limited + 1, unit_random());
            // Without Retry-After the backoff is drawn once: the jobs come back when the pause ends.
            for (auto& other : outcomes)
                if (other.cls == outcome_class::rate_limited && !other.retry_after) other.retry_after = wait;
            co_await pause_scope(first, wait,
                                 "HTTP " + std::to_string(o.http_status) + " from " + first.j.provider +
                                     (said_when ? " with Retry-After" : ""));
            break;
        }
        // The provider says its limit is used up before it says 429: hold off the
        // whole fleet until its window resets instead of earning the 429.
        if (provider_hold && provider_hold->count() > 0 &&
            std::none_of(outcomes.begin(), outcomes.end(),
                         [](const send_outcome& o) { return o.cls == outcome_class::rate_limited; })) {
            const auto wait = std::min(*provider_hold, first.settings->retry.max_retry_after);
            co_await pause_scope(first, wait, "rate limit used up (RateLimit headers from " + first.j.provider + ")");
        }
        for (auto& o : outcomes) {
            if (!o.pause_account_for) continue;
            co_await pause_scope(first, o.pause_account_for->count() > 0 ? o.pause_account_for : std::nullopt,
                                 o.pause_reason);
            break;
        }
        for (std::size_t i = 0; i < items.size(); ++i)
            finish(std::move(items[i]), std::move(outcomes[i]), started, i == 0 ? lease_id : std::string(), true);
    }

    // Turns one job's outcome into its next state and queues the write.
    void finish(delivery&& d, send_outcome outcome, unix_ms started, std::string lease_id, bool counts_attempt) {
        const int attempt = d.env.attempts + (counts_attempt ? 1 : 0);
        const unix_ms now = wall_now_ms();
        attempt_counts tally{attempt, d.env.rate_limited + (outcome.cls == outcome_class::rate_limited ? 1 : 0)};
        const auto decision =
            decide_next(outcome, tally, d.settings->retry, d.j.max_attempts, d.j.expires_at, now, unit_random());
        d.env.attempts = tally.total;
        d.env.rate_limited = tally.rate_limited;
        if (outcome.cls != outcome_class::success || !counts_attempt)
            d.env.history =
                queue::append_history(d.env.history, started, outcome.http_status, outcome.cls, outcome.error);
        if (outcome.cls == outcome_class::ambiguous && d.env.ambiguous_since == 0) d.env.ambiguous_since = started;

        completion c;  // the delivery ends here: its strings move on
        c.job_id = std::move(d.j.id);
        c.provider = std::move(d.j.provider);
        c.account = std::move(d.j.account);
        c.meta_json = std::move(d.j.meta_json);
        c.http_status = outcome.http_status;
        c.provider_message_id = std::move(outcome.provider_message_id);
        c.request_id = std::move(outcome.request_id);
        c.response_excerpt = std::move(outcome.response_excerpt);
        c.completed_at = now;
        if (!lease_id.empty()) {
            c.lease_scope = d.scope;
            c.lease_id = std::move(lease_id);
        }
        switch (decision.step) {
            case next_step::done_sent:
                c.what = completion::kind::sent;
                if (!counts_attempt) c.error = outcome.error;
                if (log::enabled(log::level::debug))  // no per-job string building unless asked for
                    log::debug("sent", "id=" + log::value(c.job_id) + " status=" + std::to_string(c.http_status));
                break;
            case next_step::retry:
                c.what = completion::kind::retry;
                c.due_at = decision.retry_at;
                log::info("send failed, will retry",
                          "id=" + log::value(c.job_id) + " attempt=" + std::to_string(attempt) +
                              " class=" + std::string(to_string(outcome.cls)) + " in_ms=" +
                              std::to_string(decision.retry_at - now) + " error=" + log::value(outcome.error));
                break;
            case next_step::dead:
                c.what = completion::kind::dead;
                c.dead_class = std::string(decision.dead_class);
                if (decision.dead_class == dead_class::attempts_exhausted)
                    c.error = "gave up after " + std::to_string(attempt) + " attempts; last: " + outcome.error;
                else if (decision.dead_class == dead_class::expired)
                    c.error = "expires_at passes before the next attempt; last: " + outcome.error;
                else
                    c.error = outcome.error;
                log::info("job dead",
                          "id=" + log::value(c.job_id) + " class=" + c.dead_class + " error=" + log::value(c.error));
                break;
        }
        c.env = std::move(d.env);
        push(std::move(c));
    }

    // --- loops -------------------------------------------------------------

    asio::awaitable<void> fetch_loop() {
        redis_backoff backoff;
        while (!stopping) {
            while (in_flight >= config.concurrency && !stopping) co_await slot_free.wait();
            if (stopping) break;
            const int count = std::min(config.fetch_batch, config.concurrency - in_flight);
            redis::command c("XREADGROUP");
            // A short block keeps shutdown prompt (the read is never cut, so nothing is
            // delivered to a worker that is leaving) at the cost of 3 idle reads a second.
            c.arg("GROUP").arg(queue::group_name).arg(consumer).arg("COUNT").arg(count).arg("BLOCK").arg(300);
            c.arg("STREAMS").arg(keys.jobs).arg(">");
            auto r = co_await fetch_conn.exec(c, config.redis.command_timeout + 300ms);
            if (!r.ok()) {
                log::warn("redis unavailable", "op=xreadgroup error=" + log::value(r.error));
                co_await detail::sleep_for(fetch_timer, backoff.take());
                continue;
            }
            auto& reply = r.replies[0];
            if (reply.error_is("NOGROUP")) {
                log::warn("consumer group missing (Redis restarted without data?); recreating");
                if (!co_await ensure_group()) co_await detail::sleep_for(fetch_timer, backoff.take());
                continue;
            }
            if (transient_error(reply)) {
                log::warn("redis not ready", "op=xreadgroup error=" + log::value(reply.str));
                co_await detail::sleep_for(fetch_timer, backoff.take());
                continue;
            }
            std::vector<queue::stream_entry> entries;
            if (reply.is_error() || !queue::parse_xreadgroup(reply, entries)) {
                log::error("unexpected XREADGROUP reply", "error=" + log::value(reply.str));
                co_await detail::sleep_for(fetch_timer, backoff.take());
                continue;
            }
            backoff.reset();
            last_redis_ok = std::chrono::steady_clock::now();
            if (!entries.empty()) co_await admit(std::move(entries));
        }
    }

    // Every restart leaves a consumer name behind in the group; remove those
    // with nothing pending that have been idle for long.
    asio::awaitable<void> forget_departed_consumers() {
        const std::int64_t idle_limit = std::max<std::int64_t>(3600000, config.visibility_timeout.count() * 10);
        auto r = co_await ctl_conn.exec(redis::command("XINFO").arg("CONSUMERS").arg(keys.jobs).arg(queue::group_name));
        if (!r.ok() || !r.replies[0].is_array()) co_return;
        std::vector<redis::command> deletions;
        for (auto& c : r.replies[0].elements) {
            std::string name;
            std::int64_t pending_count = -1, idle = 0;
            for (std::size_t i = 0; i + 1 < c.elements.size(); i += 2) {
                const auto& key = c.elements[i].str;
                if (key == "name")
                    name = c.elements[i + 1].str;
                else if (key == "pending")
                    pending_count = c.elements[i + 1].integer;
                else if (key == "idle")
                    idle = c.elements[i + 1].integer;
            }
            if (name.empty() || name == consumer || pending_count != 0 || idle < idle_limit) continue;
            deletions.push_back(
                redis::command("XGROUP").arg("DELCONSUMER").arg(keys.jobs).arg(queue::group_name).arg(name));
        }
        if (deletions.empty()) co_return;
        co_await ctl_conn.exec(deletions);
        log::info("removed departed consumers from the group", "count=" + std::to_string(deletions.size()));
    }

    asio::awaitable<void> reclaim_loop() {
        const auto interval = std::max<std::chrono::milliseconds>(config.visibility_timeout / 2, 100ms);
        std::uint64_t round = 0;
        while (!stopping) {
            co_await detail::sleep_for(reclaim_timer, interval);
            if (++round % 20 == 1) co_await forget_departed_consumers();
            std::string cursor = "0-0";
            do {
                if (stopping) break;
                const int free_slots = config.concurrency - in_flight;
                if (free_slots <= 0) break;
                redis::command c("XAUTOCLAIM");
                c.arg(keys.jobs).arg(queue::group_name).arg(consumer);
                c.arg(static_cast<long long>(config.visibility_timeout.count())).arg(cursor);
                c.arg("COUNT").arg(std::min(config.fetch_batch, free_slots));
                auto r = co_await ctl_conn.exec(c);
                if (!r.ok() || r.replies[0].is_error()) break;  // NOGROUP is handled by the fetch loop
                std::vector<queue::stream_entry> entries;
                if (!queue::parse_xautoclaim(r.replies[0], cursor, entries)) break;
                if (!entries.empty()) {
                    // How often each was delivered: a job that kills every worker taking it
                    // must end as a dead letter, not loop through the fleet forever.
                    std::vector<redis::command> ask;
                    queue::append_delivery_count_commands(keys, entries, ask);
                    auto counts_reply = co_await ctl_conn.exec(ask);
                    if (!counts_reply.ok() || !queue::parse_delivery_counts(counts_reply.replies, entries))
                        log::warn("cannot read delivery counts of taken-over jobs; taking them over anyway",
                                  "error=" + log::value(counts_reply.ok() ? "unexpected reply" : counts_reply.error));
                    counts.reclaimed += entries.size();
                    log::info("reclaimed jobs from a stalled worker",
                              "count=" + std::to_string(entries.size()) +
                                  " idle_ms=" + std::to_string(config.visibility_timeout.count()));
                    co_await admit(std::move(entries));
                }
            } while (cursor != "0-0");
        }
    }

    asio::awaitable<void> mover_loop() {
        constexpr int limit = 500;
        while (!stopping) {
            auto r = co_await ctl_conn.exec(queue::move_due_command(keys, wall_now_ms(), limit));
            const bool full =
                r.ok() && r.replies[0].type == redis::value::kind::integer && r.replies[0].integer >= limit;
            if (r.ok() && r.replies[0].is_error() && !transient_error(r.replies[0]))
                log::error("moving due jobs failed", "error=" + log::value(r.replies[0].str));
            if (!full) co_await detail::sleep_for(mover_timer, 200ms);
        }
    }

    bool drained() const { return stopping && in_flight == 0; }

    asio::awaitable<void> heartbeat_loop() {
        const auto interval = std::max<std::chrono::milliseconds>(config.visibility_timeout / 3, 50ms);
        while (!drained()) {
            co_await detail::sleep_for(heartbeat_timer, interval);
            if (in_flight_entries.empty()) continue;
            std::vector<redis::command> cmds;
            redis::command claim("XCLAIM");
            claim.arg(keys.jobs).arg(queue::group_name).arg(consumer).arg(0);
            for (auto& [entry, job_id] : in_flight_entries) {
                claim.arg(entry);
                cmds.push_back(redis::command("PEXPIRE")
                                   .arg(keys.inflight(job_id))
                                   .arg(static_cast<long long>(config.visibility_timeout.count())));
            }
            claim.arg("JUSTID");
            cmds.push_back(std::move(claim));
            auto r = co_await ctl_conn.exec(cmds);
            if (!r.ok()) log::warn("visibility refresh failed", "error=" + log::value(r.error));
        }
    }

    asio::awaitable<void> flush_loop() {
        std::vector<redis::command> cmds;
        while (!drained()) {
            if (pending.empty()) {
                co_await completions_ready.wait();
                continue;
            }
            std::vector<completion> batch;
            batch.swap(pending);
            cmds.clear();
            queue::append_completion_commands(keys, writes, batch, cmds);
            redis_backoff backoff;
            for (;;) {
                auto r = co_await ctl_conn.exec(cmds);
                std::string transient;
                if (r.ok() && check_exec_reply(r, batch.size(), transient)) break;
                if (r.ok()) r.error = transient;  // e.g. LOADING after a restart: keep and retry
                if (hard_stopped) {
                    log::error(
                        "could not write outcomes before exit; those jobs stay pending and will be "
                        "taken over by another worker",
                        "count=" + std::to_string(batch.size()) + " error=" + log::value(r.error));
                    break;
                }
                log::warn("redis unavailable, outcomes kept in memory",
                          "count=" + std::to_string(batch.size()) + " error=" + log::value(r.error));
                co_await detail::sleep_for(heartbeat_timer, backoff.take());
            }
            for (auto& c : batch) {
                switch (c.what) {
                    case completion::kind::sent:
                        ++counts.sent;
                        break;
                    case completion::kind::dead:
                        ++counts.dead;
                        break;
                    case completion::kind::retry:
                        ++counts.retried;
                        break;
                    default:
                        break;
                }
                record(c);
                in_flight_entries.erase(c.env.entry_id);
            }
            in_flight -= static_cast<int>(batch.size());
            slot_free.notify_all();
            loops_done.notify_all();
        }
    }

    // The rate-limit scope of a provider account, built once per account: the
    // views handed out stay valid (node-based map, entries never removed).
    std::string_view scope_of(std::string_view provider, std::string_view account) {
        scope_lookup.assign(provider).append(1, '\0').append(account);
        auto it = scopes.find(scope_lookup);
        if (it == scopes.end()) it = scopes.emplace(scope_lookup, keys.scope(provider, account)).first;
        return it->second;
    }
    std::unordered_map<std::string, std::string> scopes;
    std::string scope_lookup;

    void record(const completion& c) {
        static constexpr const char* names[] = {"sent", "dead", "retry", "delay", "duplicate"};
        auto& labels = metric_labels;  // reused: no allocation per job
        labels.clear();
        append_label(labels, "provider", c.provider);
        append_label(labels, "account", c.account);
        append_label(labels, "outcome", names[static_cast<int>(c.what)]);
        if (c.what == completion::kind::dead) append_label(labels, "class", c.dead_class);
        stats.inc("outq_jobs_total", labels);
    }
    std::string metric_labels;

    std::string render_metrics() {
        auto h = http.stats();
        stats.set("outq_in_flight_jobs", {}, in_flight);
        stats.set("outq_http_connections_opened", {}, static_cast<std::int64_t>(h.connections_opened));
        stats.set("outq_http_requests", {}, static_cast<std::int64_t>(h.requests));
        stats.set("outq_token_fetches", {}, static_cast<std::int64_t>(tokens.fetches()));
        stats.set("outq_reclaimed_jobs", {}, static_cast<std::int64_t>(counts.reclaimed));
        stats.set(
            "outq_redis_seconds_since_ok", {},
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - last_redis_ok).count());
        return stats.render();
    }

    // Redis errors that pass: the server is loading, busy with a script, or
    // failing over. A transaction refused for them is written again later.
    static bool transient_error(const redis::value& v) {
        for (auto code : {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "OOM"})
            if (v.error_is(code)) return true;
        return false;
    }

    // True when the outcome transaction is done with (applied, or refused for
    // good and logged); false with `transient` set when it must be sent again.
    bool check_exec_reply(const redis::exec_result& r, std::size_t jobs, std::string& transient) {
        auto& exec = r.replies.back();
        if (exec.is_error() || exec.is_nil()) {
            // EXECABORT: a queued command was refused. Why decides: LOADING and the
            // like pass, so the outcomes stay in memory and go again; anything else
            // is a bug worth an alarm (the jobs stay pending and are taken over).
            for (auto& v : r.replies) {
                if (transient_error(v)) {
                    transient = v.str;
                    return false;
                }
            }
            log::error("outcome transaction rejected; jobs stay pending",
                       "count=" + std::to_string(jobs) + " error=" + log::value(exec.str));
            return true;
        }
        for (auto& v : exec.elements)
            if (v.is_error() && !v.error_is("NOGROUP"))
                log::error("outcome command failed", "error=" + log::value(v.str));
        return true;
    }

    asio::awaitable<void> report_loop() {
        while (!stopping) {
            co_await detail::sleep_for(report_timer, 10s);
            if (stopping) break;
            http.evict_idle();
            auto h = http.stats();
            log::info("progress",
                      "sent=" + std::to_string(counts.sent) + " dead=" + std::to_string(counts.dead) +
                          " retried=" + std::to_string(counts.retried) + " delayed=" + std::to_string(counts.delayed) +
                          " duplicates=" + std::to_string(counts.duplicates) +
                          " reclaimed=" + std::to_string(counts.reclaimed) + " in_flight=" + std::to_string(in_flight) +
                          " http_connections=" + std::to_string(h.connections_opened) +
                          " http_requests=" + std::to_string(h.requests));
        }
    }

    void force_stop() {
        if (hard_stopped) return;
        hard_stopped = true;
        stopping = true;
        log::warn("grace period over: cancelling in-flight sends", "in_flight=" + std::to_string(in_flight));
        http.shutdown();
        wake_all();
    }
};

worker_runtime::worker_runtime(asio::any_io_executor ex, const worker_config& config, const adapter_registry& adapters)
    : impl_(std::make_unique<impl>(std::move(ex), config, adapters)) {}

worker_runtime::~worker_runtime() = default;

void worker_runtime::stop() {
    auto& s = *impl_;
    if (s.stopping) return;
    s.stopping = true;
    s.wake_all();
}

void worker_runtime::stop_now() {
    stop();
    impl_->force_stop();
}

asio::awaitable<void> worker_runtime::run() {
    auto& s = *impl_;
    log::info("worker starting", "queue=" + s.config.queue + " consumer=" + log::value(s.consumer) +
                                     " concurrency=" + std::to_string(s.config.concurrency) +
                                     " fetch_batch=" + std::to_string(s.config.fetch_batch));
    if (!s.config.metrics_listen.empty()) {
        s.metrics_endpoint = std::make_unique<metrics_server>(
            s.executor, [&s] { return s.render_metrics(); },
            [&s] { return std::chrono::steady_clock::now() - s.last_redis_ok < 30s; });
        s.metrics_endpoint->listen(s.config.metrics_listen);
        asio::co_spawn(s.executor, s.metrics_endpoint->serve(), asio::detached);
        log::info("metrics endpoint listening", "address=" + s.config.metrics_listen + " paths=/metrics,/healthz");
    }
    redis_backoff backoff;
    while (!s.stopping && !co_await s.ensure_group()) co_await detail::sleep_for(s.fetch_timer, backoff.take());

    if (!s.stopping) {
        s.spawn_loop(&impl::fetch_loop, "fetch");
        s.spawn_loop(&impl::reclaim_loop, "reclaim");
        s.spawn_loop(&impl::mover_loop, "mover");
        s.spawn_loop(&impl::report_loop, "report");
    }
    s.spawn_loop(&impl::heartbeat_loop, "heartbeat");
    s.spawn_loop(&impl::flush_loop, "flush");

    while (!s.stopping) co_await s.stop_requested.wait();
    log::info(
        "stopping: no new jobs; draining in-flight sends",
        "in_flight=" + std::to_string(s.in_flight) + " grace_ms=" + std::to_string(s.config.shutdown_grace.count()));
    s.grace_timer.expires_after(s.config.shutdown_grace);
    s.grace_timer.async_wait([&s](boost::system::error_code ec) {
        if (!ec) s.force_stop();
    });
    while (s.loops_running > 0) {
        if (s.drained()) s.wake_all();  // let the heartbeat and flush loops see it
        co_await s.loops_done.wait();
    }
    s.grace_timer.cancel();
    if (s.metrics_endpoint) s.metrics_endpoint->stop();
    s.http.shutdown();
    s.fetch_conn.close();
    s.ctl_conn.close();
    s.limit_conn.close();
    log::info("worker stopped", "sent=" + std::to_string(s.counts.sent) + " dead=" + std::to_string(s.counts.dead) +
                                    " retried=" + std::to_string(s.counts.retried) +
                                    " left_pending=" + std::to_string(s.in_flight));
}

}  // namespace outq
