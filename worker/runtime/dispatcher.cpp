#include "dispatcher.hpp"

#include <algorithm>

#include "outq/detail/async_event.hpp"
#include "outq/policy/batching.hpp"
#include "outq/queue/errors.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Every command below is built into a named value before it is awaited:
// GCC 12 destroys a temporary with a destructor (a queue::script) inside a
// co_await expression twice.

namespace {
// Requests a rate-limited lane keeps recorded ahead of their time.
constexpr int reservations_ahead = 16;

// How far apart (ms) the limit lets a lane's requests go.
// A reserved place used later than this after its time is not used.
constexpr auto late_place = std::chrono::milliseconds(50);

std::int64_t spacing_of(const rate_limit_settings& limits) {
    return std::max<std::int64_t>(1, limits.window.count() / std::max(1, limits.requests));
}
}  // namespace

dispatcher::dispatcher(asio::any_io_executor ex, context& ctx, sender& s, writers& out, redis::connection& limiter,
                       task_group& sends, metrics& stats)
    : executor_(ex),
      ctx_(ctx),
      sender_(s),
      out_(out),
      limiter_(limiter),
      sends_(sends),
      settings_(ctx.config.lanes),
      stats_(stats) {
    for (auto& [provider, p] : ctx_.config.providers)
        for (auto& [account, a] : p.accounts) set_account_circuit_open(stats_, provider, account, false);
    // A batch the provider found too heavy comes back as two halves: each is
    // a request of the same lane, started at once (their slots were held).
    sender_.set_spawn([this](std::vector<delivery> items) {
        if (items.empty()) return;
        auto& d = items.front();
        start(lane_of(d.account, d.scope, d.j.provider), std::move(items), /*permitted=*/false);
    });
}

dispatcher::lane& dispatcher::lane_of(const account_settings* account, std::string_view scope,
                                      std::string_view provider) {
    auto it = by_account_.find(account);
    if (it != by_account_.end()) return *it->second;
    // Lanes live as long as the worker: one per configured account at most.
    lanes_.push_back(std::make_unique<lane>());
    lanes_.back()->account = account;
    lanes_.back()->scope = scope;
    lanes_.back()->window = settings_.start_window;
    lanes_.back()->provider = std::string(provider);
    // Rate-limited lanes reserve; a fleet-wide cap of requests in flight
    // (max_in_flight) needs a lease taken at the moment of sending: those
    // lanes keep asking the limiter when they send (sender::wait_for_permit).
    lanes_.back()->limited = account->limits.requests > 0 && account->limits.max_in_flight == 0;
    lanes_.back()->timer = std::make_unique<asio::steady_timer>(executor_);
    by_account_.emplace(account, lanes_.back().get());
    return *lanes_.back();
}

dispatcher::lane* dispatcher::find_lane(std::string_view provider, std::string_view account) {
    // Only lanes that exist: a message about an account this worker has not
    // met yet changes nothing here (its claims read the pause in Redis).
    for (auto& l : lanes_)
        if (l->provider == provider && l->account->name == account) return l.get();
    return nullptr;
}

void dispatcher::on_control(const queue::control_message& m) {
    lane* l = find_lane(m.provider, m.account);
    if (!l) return;
    const unix_ms now = wall_now_ms();
    using kind = queue::control_message::kind;
    switch (m.what) {
        case kind::pause:
            if (policy::is_circuit_pause(m.reason))
                l->circuit = policy::after_pause(l->circuit, m.reason, m.pause_ms, now);
            park_lane(*l, now + (m.pause_ms < 0 ? 30000 : m.pause_ms), 1, /*reserved_too=*/true);
            l->blocked_by_pause = true;
            break;
        case kind::resume:
            if (l->blocked_by_pause) l->blocked_until = 0;
            l->blocked_by_pause = false;
            break;
        case kind::circuit:
            if (m.state == "closed") {
                l->circuit = {};
                if (l->blocked_by_pause) l->blocked_until = 0;
                l->blocked_by_pause = false;
                set_account_circuit_open(stats_, l->provider, l->account->name, false);
            }
            break;
        case kind::limit:
        case kind::due:  // the movers' (never about an account: no lane has it)
            break;
    }
    pump();
}

void dispatcher::resync() {
    for (auto& l : lanes_) {
        if (!l->blocked_by_pause) continue;
        l->blocked_until = 0;
        l->blocked_by_pause = false;
    }
    pump();
}

void dispatcher::park(delivery&& d, unix_ms due) {
    put_back(out_, std::move(d), due);
}

void dispatcher::dispatch(delivery d) {
    lane& l = lane_of(d.account, d.scope, d.j.provider);
    if (l.blocked_until > wall_now_ms()) {
        // Paused, or its next request's time is beyond the horizon: back then,
        // after those parked before it, without asking the limiter.
        park(std::move(d), l.blocked_until + static_cast<std::int64_t>(l.park_index++) * l.park_spacing);
        return;
    }
    const auto oldest = oldest_in_flight(l, clock::now());
    l.batch_max = static_cast<int>(std::max<std::size_t>(1, d.provider->max_batch(*d.account)));
    const int max = policy::batch_limit_of(l.batch_limit, l.batch_max);
    // A lane keeps at least two batches' worth, so gathering one never parks;
    // a rate-limited one no more than it may send within the horizon.
    int bound = std::max(settings_.queue, 2 * max);
    if (l.limited) bound = std::min(bound, std::max(2 * max, limited_bound(l) * max));
    if (l.limited && waiting_in(l) >= bound) {
        // Back when the lane gets to it: after what it keeps, paced by the limit.
        const std::int64_t spacing = spacing_of(l.account->limits);
        const unix_ms due =
            wall_now_ms() + (waiting_in(l) / max + static_cast<std::int64_t>(l.overflow_index++)) * spacing;
        park(std::move(d), due);
        return;
    }
    if (l.limited && waiting_in(l) < bound / 2) l.overflow_index = 0;
    const auto admit = policy::admit_to_lane(waiting_in(l), bound, static_cast<int>(park_seq_++ % 1000), wall_now_ms(),
                                             oldest, settings_);
    if (!admit.keep) {
        park(std::move(d), admit.due);
        return;
    }
    d.slot.set_waiting(true);  // no concurrency slot until it starts
    // A job for a destination the provider refused alone before goes alone:
    // it never fails a batch again.
    if (max == 1 || (!l.refused.empty() && l.refused.count(d.provider->batch_key(d.j)))) {
        std::vector<delivery> one;
        one.push_back(std::move(d));
        enqueue(l, std::move(one));
    } else {
        const auto wait = d.provider->batch_wait(*d.account);
        l.gathering.push_back(std::move(d));
        ++queued_;
        if (static_cast<int>(l.gathering.size()) >= max || ctx_.draining()) {
            close_batch(l);
        } else if (l.gathering.size() == 1) {
            if (!l.batch_timer) l.batch_timer = std::make_unique<asio::steady_timer>(executor_);
            l.batch_timer->expires_after(wait);
            l.batch_timer->async_wait([this, lp = &l](boost::system::error_code ec) {
                if (ec) return;
                close_batch(*lp);
                pump();
            });
        }
    }
    keep_within_buffer();
    pump();
}

void dispatcher::enqueue(lane& l, std::vector<delivery> group) {
    const int n = static_cast<int>(group.size());
    l.ready.push_back(std::move(group));
    l.ready_count += n;
    queued_ += n;
}

void dispatcher::close_batch(lane& l) {
    if (l.gathering.empty()) return;
    if (l.batch_timer) l.batch_timer->cancel();
    const int n = static_cast<int>(l.gathering.size());
    l.ready.push_back(std::move(l.gathering));
    l.gathering.clear();
    l.ready_count += n;  // counted in queued_ already
}

void dispatcher::keep_within_buffer() {
    while (queued_ > settings_.buffer) {
        lane* longest = nullptr;
        for (auto& l : lanes_)
            if (!longest || waiting_in(*l) > waiting_in(*longest)) longest = l.get();
        if (!longest || waiting_in(*longest) == 0) return;
        delivery d;
        if (!longest->gathering.empty()) {
            d = std::move(longest->gathering.back());
            longest->gathering.pop_back();
        } else {
            auto& group = longest->ready.back();
            d = std::move(group.back());
            group.pop_back();
            if (group.empty()) longest->ready.pop_back();
            --longest->ready_count;
            if (longest->reserved > static_cast<int>(longest->ready.size())) {
                // A reserved request left: its time in the window goes unused.
                longest->reserved = static_cast<int>(longest->ready.size());
                longest->go_at.resize(static_cast<std::size_t>(longest->reserved));
            }
        }
        --queued_;
        park(std::move(d), policy::park_due(static_cast<int>(park_seq_++ % 1000), wall_now_ms(),
                                            oldest_in_flight(*longest, clock::now()), settings_));
    }
}

std::optional<std::chrono::milliseconds> dispatcher::oldest_in_flight(const lane& l, clock::time_point now) {
    if (l.started.empty()) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(now - *l.started.begin());
}

bool dispatcher::head_may_go(const lane& l, clock::time_point now) const {
    if (l.ready.empty()) return false;
    if (!l.limited) return true;
    return l.reserved > 0 && l.go_at.front() <= now;
}

void dispatcher::pump() {
    if (ctx_.terminal()) return;
    const auto now = clock::now();
    const unix_ms wall = wall_now_ms();
    // Whatever made requests ready (a batch closed, a block ended), lanes
    // that reserve ask for their next places first.
    for (auto& l : lanes_) reserve_more(*l);
    for (;;) {
        views_.clear();
        for (auto& l : lanes_) {
            if (!l->ready.empty() && !circuit_lets(*l, wall)) {
                views_.push_back({l->in_flight, 0, 0, false});
                continue;
            }
            const auto oldest = oldest_in_flight(*l, now);
            // A lane waiting for its reservation's time has nothing ready yet.
            const bool go = head_may_go(*l, now);
            views_.push_back({l->in_flight, go ? l->ready_count : 0, go ? static_cast<int>(l->ready.front().size()) : 0,
                              policy::trusted_now(l->trusted, oldest, settings_), l->window});
        }
        const auto i = policy::next_lane(views_, cursor_, settings_);
        if (!i) return;
        lane& l = *lanes_[*i];
        auto group = std::move(l.ready.front());
        l.ready.pop_front();
        const int n = static_cast<int>(group.size());
        l.ready_count -= n;
        queued_ -= n;
        bool permitted = l.limited;
        if (permitted) {
            --l.reserved;
            const auto due = l.go_at.front();
            l.go_at.pop_front();
            // A place whose time passed while the lane could not start (its
            // fair share, its window) is not used: the window recorded it
            // then, and a request sent now in its name would bunch with those
            // placed on time. The request takes a place of its own, now or
            // ahead (the stale place stays recorded: capacity lost, never
            // exceeded).
            if (now - due > late_place) permitted = false;
            if (!l.go_at.empty()) arm(l, l.go_at.front());
        }
        for (auto& d : group) d.slot.set_waiting(false);
        start(l, std::move(group), permitted);
        cursor_ = *i + 1;
        reserve_more(l);
    }
}

void dispatcher::arm(lane& l, clock::time_point at) {
    l.timer->expires_at(at);
    l.timer->async_wait([this, lp = &l](boost::system::error_code ec) {
        if (ec) return;
        pump();
    });
}

int dispatcher::limited_bound(const lane& l) const {
    const auto& limits = l.account->limits;
    return static_cast<int>(std::max<std::int64_t>(
        2, outq::reservation_horizon.count() * limits.requests / std::max<std::int64_t>(1, limits.window.count())));
}

int dispatcher::reservable(const lane& l) const {
    // A lane in slow start may not start more than its window: places it
    // could not use in time would go late, bunched with those after them.
    if (policy::trusted_now(l.trusted, oldest_in_flight(l, clock::now()), settings_)) return reservations_ahead;
    return std::max(0, l.window - static_cast<int>(l.started.size()));
}

void dispatcher::reserve_more(lane& l) {
    if (!l.limited || l.reserving || ctx_.draining()) return;
    // Asked again once half the places are used, for several at a time.
    if (static_cast<int>(l.ready.size()) <= l.reserved || l.reserved > reservations_ahead / 2) return;
    if (l.reserved >= reservable(l)) return;
    if (l.blocked_until > wall_now_ms()) return;
    l.reserving = true;
    sends_.spawn("reserve", reserve(l));
}

void dispatcher::park_lane(lane& l, unix_ms due, std::int64_t spacing, bool reserved_too) {
    l.blocked_until = due;
    l.park_spacing = std::max<std::int64_t>(1, spacing);
    l.park_index = 0;
    if (reserved_too) {
        // Their places in the window go unused.
        l.reserved = 0;
        l.go_at.clear();
    }
    while (static_cast<int>(l.ready.size()) > l.reserved) {
        auto group = std::move(l.ready.back());
        l.ready.pop_back();
        l.ready_count -= static_cast<int>(group.size());
        queued_ -= static_cast<int>(group.size());
        l.parked_scratch.push_back(std::move(group));
    }
    // Oldest first, so they come back in the order they came.
    for (auto it = l.parked_scratch.rbegin(); it != l.parked_scratch.rend(); ++it)
        for (auto& d : *it) park(std::move(d), due + static_cast<std::int64_t>(l.park_index++) * l.park_spacing);
    l.parked_scratch.clear();
}

asio::awaitable<void> dispatcher::reserve(lane& l) {
    const auto& limits = l.account->limits;
    // Reservations a request may be given ahead of its time: within this the
    // lane waits in memory (well inside the visibility timeout, so the
    // heartbeat keeps the entries), beyond it the requests are parked.
    const auto horizon = outq::reservation_horizon;
    const std::string member = ctx_.consumer + ":r" + std::to_string(++reserve_seq_);
    // The lane's next requests in one call, as many as it has ready.
    const int count = std::min(
        {reservations_ahead - l.reserved, static_cast<int>(l.ready.size()) - l.reserved, reservable(l) - l.reserved});
    const auto reserve_cmd = queue::limit_command(l.scope, limits.requests, limits.window, 0, member, 0ms, std::nullopt,
                                                  limits.burst, horizon, std::max(1, count));
    auto r = co_await limiter_.exec(reserve_cmd);
    l.reserving = false;
    const auto now = clock::now();
    const unix_ms wall = wall_now_ms();
    queue::limit_decision decision;
    if (!r.ok() || !queue::parse_limit_reply(r.replies[0], decision)) {
        // Without the shared state the limit cannot be honoured: wait, never send blind.
        const bool permanent = r.ok() && queue::classify_error(r.replies[0]) == queue::error_kind::permanent;
        log::write_throttled(limiter_log_, permanent ? log::level::error : log::level::warn, "rate limiter unavailable",
                             "command=EVAL(limit) error=" + log::value(r.ok() ? r.replies[0].str : r.error));
        if (l.go_at.empty()) arm(l, now + 200ms);
        co_return;
    }
    limiter_log_.clear();
    if (ctx_.draining()) co_return;  // a reservation unused: flush_all put the lane's requests back
    if (decision.reason == "paused") {
        ctx_.pauses.note(l.provider, l.account->name, decision.wait_ms, pause_board::clock::now());
        l.circuit = policy::after_pause(l.circuit, decision.pause_reason, decision.wait_ms, wall);
        park_lane(l, wall + (decision.wait_ms < 0 ? 30000 : decision.wait_ms), 1);
        l.blocked_by_pause = true;
        co_return;
    }
    if (decision.reserved) {
        const bool was_idle = l.reserved == 0;
        // A request that left the lane meanwhile (parked, put back) leaves its place unused.
        auto take = [&](std::int64_t wait_ms) {
            if (static_cast<int>(l.ready.size()) <= l.reserved) return;
            ++l.reserved;
            l.go_at.push_back(now + std::chrono::milliseconds(wait_ms));
        };
        take(decision.wait_ms);
        for (auto w : decision.more_waits) take(w);
        if (was_idle && l.reserved > 0) arm(l, l.go_at.front());
        pump();
        co_return;
    }
    // Its time is beyond the horizon: the lane's requests wait in the delayed
    // set, paced as the limit will let them go.
    park_lane(l, wall + decision.wait_ms, spacing_of(limits));
}

void dispatcher::start(lane& l, std::vector<delivery> items, bool permitted, bool probe) {
    const int n = static_cast<int>(items.size());
    l.in_flight += n;
    in_flight_ += n;
    sends_.spawn("send", run_send(l, std::move(items), permitted, probe));
}

bool dispatcher::circuit_lets(lane& l, unix_ms now) {
    if (!l.account->circuit.enabled) return true;
    if (l.probing) return false;
    const auto g = policy::gate(l.circuit, now);
    switch (g.what) {
        case policy::circuit_gate::kind::send:
            return true;
        case policy::circuit_gate::kind::park:
            park_lane(l, g.until, 1, /*reserved_too=*/true);
            return false;
        case policy::circuit_gate::kind::probe:
            l.probing = true;
            sends_.spawn("circuit probe", probe(l));
            return false;
    }
    return false;
}

asio::awaitable<void> dispatcher::probe(lane& l) {
    const auto& c = l.account->circuit;
    const auto probe_cmd = queue::take_probe_command(queue::script{queue::circuit_probe_script, {}}, l.scope,
                                                     ctx_.consumer, c.probe_timeout);
    auto r = co_await limiter_.exec(probe_cmd);
    queue::probe_reply reply;
    if (!r.ok() || !queue::parse_probe_reply(r.replies[0], reply)) {
        log::write_throttled(circuit_log_, log::level::warn, "circuit breaker state unavailable",
                             "command=EVAL(circuit_probe) error=" + log::value(r.ok() ? r.replies[0].str : r.error));
        l.probing = false;
        arm(l, clock::now() + 200ms);
        co_return;
    }
    bool won = false;
    l.circuit = policy::after_probe(l.circuit, reply, wall_now_ms(), won);
    if (!won || l.ready.empty() || ctx_.draining()) {
        // Another worker probes, or the circuit is open again, or closed: the gate decides.
        l.probing = false;
        pump();
        co_return;
    }
    log::info("circuit half-open: sending one probe request for the fleet",
              "provider=" + l.provider + " account=" + log::value(l.account->name));
    auto group = std::move(l.ready.front());
    l.ready.pop_front();
    const int n = static_cast<int>(group.size());
    l.ready_count -= n;
    queued_ -= n;
    if (l.reserved > 0) {
        --l.reserved;
        l.go_at.pop_front();
    }
    for (auto& d : group) d.slot.set_waiting(false);
    start(l, std::move(group), /*permitted=*/false, /*probe=*/true);  // l.probing until it ends
}

asio::awaitable<void> dispatcher::record_circuit(lane& l, const send_report& report) {
    const auto& c = l.account->circuit;
    const std::string where = "provider=" + l.provider + " account=" + log::value(l.account->name);
    if (report.signal == policy::circuit_signal::failure) {
        const auto failure_cmd = queue::record_failure_command(queue::script{queue::circuit_failure_script, {}},
                                                               l.scope, c.failures, c.open, c.max_open, report.reason);
        auto r = co_await limiter_.exec(failure_cmd);
        queue::circuit_reply reply;
        if (!r.ok() || !queue::parse_circuit_reply(r.replies[0], reply)) {
            log::write_throttled(
                circuit_log_, log::level::warn, "circuit breaker state unavailable",
                "command=EVAL(circuit_failure) " + where + " error=" + log::value(r.ok() ? r.replies[0].str : r.error));
            co_return;
        }
        const auto state = policy::interpret(reply);
        if (!state) co_return;
        const unix_ms now = wall_now_ms();
        l.circuit = policy::after_failure(*state, now);
        if (state->opened) {
            log::warn(
                "circuit opened: the account is paused for the fleet",
                where + " failures=" + std::to_string(state->failures) + " opens=" + std::to_string(state->opens) +
                    " open_ms=" + std::to_string(state->open_for.count()) + " reason=" + log::value(report.reason));
            set_account_circuit_open(stats_, l.provider, l.account->name, true);
            ctx_.pauses.note(l.provider, l.account->name, state->open_for.count(), pause_board::clock::now());
            park_lane(l, l.circuit.open_until, 1, /*reserved_too=*/true);
            // Every pod learns the circuit and its end, so the fleet sends one probe.
            const auto announce_cmd = queue::publish_command(
                ctx_.queue_wide(), queue::pause_message(l.provider, l.account->name, state->open_for,
                                                        std::string(policy::circuit_pause_prefix) + report.reason));
            co_await limiter_.exec(announce_cmd);
        }
        co_return;
    }
    if (report.signal != policy::circuit_signal::success || !policy::reports_success(l.circuit)) co_return;
    const auto success_cmd = queue::record_success_command(queue::script{queue::circuit_success_script, {}}, l.scope);
    auto r = co_await limiter_.exec(success_cmd);
    queue::success_reply reply;
    if (!r.ok() || !queue::parse_success_reply(r.replies[0], reply)) {
        log::write_throttled(
            circuit_log_, log::level::warn, "circuit breaker state unavailable",
            "command=EVAL(circuit_success) " + where + " error=" + log::value(r.ok() ? r.replies[0].str : r.error));
        co_return;
    }
    l.circuit = policy::after_success(l.circuit, reply, wall_now_ms());
    if (reply.closed && reply.was != "closed") {
        log::info("circuit closed: the account's requests go again", where + " was=" + reply.was);
        set_account_circuit_open(stats_, l.provider, l.account->name, false);
        const auto closed_cmd =
            queue::publish_command(ctx_.queue_wide(), queue::circuit_message(l.provider, l.account->name, "closed"));
        co_await limiter_.exec(closed_cmd);
    }
}

asio::awaitable<void> dispatcher::run_send(lane& l, std::vector<delivery> items, bool permitted, bool probe) {
    // Whatever ends the send (an exception included), the lane gives its slots back.
    struct release {
        dispatcher& self;
        lane& l;
        int n;
        std::multiset<clock::time_point>::iterator at;
        ~release() {
            l.in_flight -= n;
            self.in_flight_ -= n;
            l.started.erase(at);
        }
    } done{*this, l, static_cast<int>(items.size()), l.started.insert(clock::now())};
    const auto began = clock::now();
    send_report report;
    report.probe = probe;
    co_await sender_.send(std::move(items), &report, permitted);
    if (report.requested && l.account) {
        const int max = l.batch_max;
        if (max > 1) {
            const int before = policy::batch_limit_of(l.batch_limit, max);
            l.batch_limit = policy::batch_limit_after(l.batch_limit, max, report.batch, report.too_heavy,
                                                      !report.failed && !report.too_heavy);
            const int after = policy::batch_limit_of(l.batch_limit, max);
            if (after != before)
                log::info(
                    after < before ? "batches made smaller: the provider found one too heavy" : "batches grow back",
                    "provider=" + l.provider + " account=" + log::value(l.account->name) +
                        " batch_limit=" + std::to_string(after) + " max=" + std::to_string(max));
        }
        if (!report.refused_key.empty() && l.refused.size() < 10000 && l.refused.insert(report.refused_key).second)
            log::warn("the provider refused a message on its own; its destination is sent alone from now on",
                      "provider=" + l.provider + " account=" + log::value(l.account->name) +
                          " key=" + log::value(report.refused_key));
    }
    if (report.requested) {
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - began);
        const auto result = report.failed ? policy::request_result::failed : policy::request_result::answered_well;
        l.trusted = policy::trusted_after(result, took, settings_);
        l.window = policy::window_after(l.window, result, settings_.concurrency);
        if (l.account->circuit.enabled) co_await record_circuit(l, report);
    }
    if (probe) l.probing = false;
    asio::post(executor_, [this] { pump(); });
}

void dispatcher::flush_all() {
    for (auto& l : lanes_) close_batch(*l);
    pump();
    if (!ctx_.draining()) return;
    // Stopping: what could not start now goes back before any byte of it went out.
    const unix_ms now = wall_now_ms();
    for (auto& l : lanes_) {
        for (auto& group : l->ready)
            for (auto& d : group) put_back(out_, std::move(d), now);
        queued_ -= l->ready_count;
        l->ready.clear();
        l->ready_count = 0;
        l->reserved = 0;
        l->go_at.clear();
    }
}

}  // namespace outq::runtime
