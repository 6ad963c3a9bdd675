#include "admission.hpp"

#include <boost/asio/steady_timer.hpp>

#include "outq/backoff.hpp"
#include "outq/detail/async_event.hpp"
#include "outq/policy/admission.hpp"
#include "outq/policy/sending.hpp"
#include "outq/queue/errors.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

admission::admission(asio::any_io_executor ex, context& ctx, redis::connection& conn, ledger& held, writers& out,
                     dispatcher& next)
    : executor_(ex), ctx_(ctx), conn_(conn), held_(held), out_(out), next_(next) {}

std::string_view admission::scope_of(std::string_view provider, std::string_view account) {
    scope_lookup_.assign(provider).append(1, '\0').append(account);
    auto it = scopes_.find(scope_lookup_);
    if (it == scopes_.end()) it = scopes_.emplace(scope_lookup_, ctx_.queue_wide().scope(provider, account)).first;
    return it->second;
}

asio::awaitable<void> admission::admit(std::vector<queue::stream_entry> entries,
                                       ledger::clock::time_point delivered_at) {
    const unix_ms now = wall_now_ms();
    std::vector<delivery> candidates;
    candidates.reserve(entries.size());
    for (auto& entry : entries) {
        auto s = held_.open({entry.id, entry.partition}, delivered_at);
        if (!s) continue;  // held already: this worker is sending it
        auto env = queue::to_envelope(std::move(entry));
        auto a = policy::inspect(env, ctx_.config, ctx_.adapters);
        if (a.what == policy::admission::kind::dead) {
            if (a.poison)
                log::error("poison job: dead letter instead of another delivery",
                           "id=" + log::value(a.job_id) + " entry=" + env.entry_id +
                               " deliveries=" + std::to_string(env.deliveries));
            else
                log::info("job rejected", "class=" + a.dead_class + " entry=" + env.entry_id +
                                              " id=" + log::value(a.job_id) + " error=" + log::value(a.error));
            s.state().job_id = a.job_id;
            auto c = policy::dead_letter(std::move(env), std::move(a.job_id), std::move(a.provider_name),
                                         std::move(a.account_name), a.dead_class, std::move(a.error), now);
            c.release_marker = false;  // never claimed
            out_.push(std::move(s), std::move(c));
            continue;
        }
        delivery d;
        d.slot = std::move(s);
        d.env = std::move(env);
        d.j = std::move(*a.parsed);
        d.provider = a.provider;
        d.settings = a.settings;
        d.account = a.account;
        d.scope = scope_of(d.j.provider, d.j.account);
        d.slot.state().job_id = d.j.id;
        candidates.push_back(std::move(d));
    }
    if (candidates.empty()) co_return;
    if (ctx_.draining()) {
        // Read after the stop signal: back before any byte goes out, due now,
        // as a new entry (so no delivery counts against max_deliveries).
        for (auto& d : candidates) put_back(out_, std::move(d), now);
        co_return;
    }

    std::vector<queue::claim_result> verdicts;
    const bool claimed = co_await claim(candidates, verdicts);
    if (!claimed) {
        // Stopping, and the claim did not answer: the entries stay pending
        // for another worker (markers, if set, expire with the visibility timeout).
        for (auto& d : candidates) d.slot.abandon();
        co_return;
    }
    const unix_ms decided = wall_now_ms();
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        auto& d = candidates[i];
        const auto& v = verdicts[i];
        d.slot.state().holds_marker = v.holds_marker;
        if (v.foreign_value)
            log::write_throttled(
                foreign_log_, log::level::error,
                "a job's result key holds a value of another type; the job waits until it is fixed "
                "(a format 1 result: run outq migrate, or delete the key)",
                "key=" + log::value(ctx_.partitions[d.env.partition].result(d.j.id)) + " entry=" + d.env.entry_id);
        const auto next = policy::after_claim(v, d.j, ctx_.config.visibility_timeout, decided, ctx_.unit_random());
        switch (next.what) {
            case policy::claim_decision::kind::duplicate: {
                if (v.own_outcome)
                    log::info("job already sent by this entry; acknowledged",
                              "id=" + log::value(d.j.id) + " entry=" + d.env.entry_id);
                else
                    log::info("duplicate job skipped: a result exists",
                              "id=" + log::value(d.j.id) + " entry=" + d.env.entry_id + " status=" + v.existing_status);
                queue::completion c;
                c.own_entry = v.own_outcome;
                c.what = queue::completion::kind::duplicate;
                c.existing_status = v.existing_status;
                c.completed_at = decided;
                c.release_marker = next.release_marker;
                c.job_id = d.j.id;
                c.provider = d.j.provider;
                c.account = d.j.account;
                c.env = std::move(d.env);
                out_.push(std::move(d.slot), std::move(c));
                break;
            }
            case policy::claim_decision::kind::delay:
                out_.push(std::move(d.slot), policy::delayed(std::move(d.env), d.j, next.due, next.release_marker));
                break;
            case policy::claim_decision::kind::expired: {
                log::info("job rejected", "class=expired entry=" + d.env.entry_id + " id=" + log::value(d.j.id) +
                                              " expires_at=" + format_rfc3339(*d.j.expires_at) +
                                              (d.j.traceparent.empty() ? "" : " traceparent=" + d.j.traceparent));
                auto c = policy::dead_letter(
                    std::move(d.env), d.j.id, d.j.provider, d.j.account, dead_class::expired,
                    "expires_at " + format_rfc3339(*d.j.expires_at) + " passed before the message could be sent",
                    decided);
                c.traceparent = d.j.traceparent;
                c.release_marker = next.release_marker;
                out_.push(std::move(d.slot), std::move(c));
                break;
            }
            case policy::claim_decision::kind::send:
                if (ctx_.draining())
                    put_back(out_, std::move(d), decided);
                else
                    next_.dispatch(std::move(d));
                break;
        }
    }
}

asio::awaitable<bool> admission::claim(std::vector<delivery>& candidates, std::vector<queue::claim_result>& verdicts) {
    std::vector<queue::claim_item> items;
    items.reserve(candidates.size());
    // An account's pause the control channel vouches for is not read again;
    // the others are, with a ticket that says whether their reply still
    // counts when it comes (pause_board.hpp).
    std::vector<pause_board::ticket> tickets(candidates.size());
    const auto board_now = pause_board::clock::now();
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        const auto& d = candidates[i];
        items.push_back({d.j.id, d.env.entry_id, d.scope, std::nullopt, queue::enqueue_entry(d.env)});
        if (ctx_.pauses.vouched(d.j.provider, d.j.account, board_now))
            items.back().known_pttl = ctx_.pauses.pttl(d.j.provider, d.j.account, board_now);
        else
            tickets[i] = ctx_.pauses.before_read(d.j.provider, d.j.account);
    }
    // The entries of one read: one partition's, whose slot holds their markers.
    const auto& k = ctx_.partitions[candidates.front().env.partition];
    std::vector<redis::command> cmds;
    queue::append_claim_commands(k, items, wall_now_ms(), cmds);
    outq::backoff wait(100ms, 5000ms);
    asio::steady_timer timer(executor_);
    for (;;) {
        // MSETNX of markers this batch may already hold and PTTL: safe to send
        // again (a lost reply leaves markers of these very entries, which the
        // second round finds as its own).
        auto r = co_await conn_.exec(cmds, std::nullopt, redis::on_stale::retry_once);
        std::string trouble;
        queue::error_kind kind = queue::error_kind::transient;
        if (!r.ok()) {
            trouble = r.error;
        } else if (auto* e = queue::first_error(r.replies)) {
            trouble = e->str;
            kind = queue::classify_error(*e);
        } else if (!queue::parse_claim_replies(r.replies, items, verdicts)) {
            trouble = "unexpected reply shape";
            kind = queue::error_kind::permanent;
        } else {
            const auto read_at = pause_board::clock::now();
            for (std::size_t i = 0; i < candidates.size(); ++i)
                if (verdicts[i].pause_read)
                    ctx_.pauses.read(candidates[i].j.provider, candidates[i].j.account, tickets[i], verdicts[i].pttl,
                                     read_at);
            auto settled = co_await claim_alone(k, items, verdicts);
            if (settled.empty()) {
                if (claim_log_.clear()) log::info("claiming jobs works again");
                co_return true;
            }
            trouble = std::move(settled);
        }
        log::write_throttled(claim_log_, kind == queue::error_kind::transient ? log::level::warn : log::level::error,
                             "cannot claim fetched jobs, retrying",
                             "command=claim(MSETNX,PTTL) kind=" + std::string(queue::to_string(kind)) +
                                 " count=" + std::to_string(items.size()) + " error=" + log::value(trouble));
        if (ctx_.draining()) co_return false;
        co_await detail::sleep_for(timer, wait.next(ctx_.unit_random()));
    }
}

// Rounds 2 and 3, when the batch's MSETNX met an existing key: each job
// claimed on its own (SET NX GET says what was there), and a marker another
// entry left behind taken over. Empty when settled, else what failed.
asio::awaitable<std::string> admission::claim_alone(const queue::keys& k, const std::vector<queue::claim_item>& items,
                                                    std::vector<queue::claim_result>& verdicts) {
    const unix_ms now = wall_now_ms();
    std::vector<std::size_t> idx;
    std::vector<redis::command> cmds;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (!verdicts[i].claim_alone) continue;
        idx.push_back(i);
        cmds.push_back(queue::claim_alone_command(k, items[i], now));
    }
    if (idx.empty()) co_return std::string();
    auto r = co_await conn_.exec(cmds, std::nullopt, redis::on_stale::retry_once);
    if (!r.ok()) co_return r.error;
    for (std::size_t j = 0; j < idx.size(); ++j)
        if (!queue::apply_claim_alone_reply(r.replies[j], items[idx[j]], verdicts[idx[j]]))
            co_return "SET NX GET: " + (r.replies[j].is_error() ? r.replies[j].str : std::string("unexpected reply"));
    idx.clear();
    cmds.clear();
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (!verdicts[i].check_owner) continue;
        idx.push_back(i);
        cmds.push_back(queue::take_over_marker_command(k, items[i], verdicts[i].owner_entry, now));
    }
    if (idx.empty()) co_return std::string();
    auto t = co_await conn_.exec(cmds, std::nullopt, redis::on_stale::retry_once);
    if (!t.ok()) co_return t.error;
    for (std::size_t j = 0; j < idx.size(); ++j) {
        auto& v = verdicts[idx[j]];
        const auto& reply = t.replies[j];
        if (reply.type != redis::value::kind::integer) co_return "marker take-over: " + reply.str;
        v.check_owner = false;
        if (reply.integer == 1) {
            log::warn("took over a marker its entry left behind",
                      "id=" + log::value(items[idx[j]].job_id) + " left_by=" + v.owner_entry);
            v.verdict = queue::claim_verdict::go;
            v.holds_marker = true;
        }
    }
    co_return std::string();
}

}  // namespace outq::runtime
