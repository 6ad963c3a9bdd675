#include "dispatcher.hpp"

#include <algorithm>

namespace outq::runtime {

namespace asio = boost::asio;

dispatcher::dispatcher(asio::any_io_executor ex, context& ctx, sender& s, writer& out, task_group& sends)
    : executor_(ex), ctx_(ctx), sender_(s), out_(out), sends_(sends), settings_(ctx.config.lanes) {
    // A batch the provider found too heavy comes back as two halves: each is
    // a request of the same lane, started at once (their slots were held).
    sender_.set_spawn([this](std::vector<delivery> items) {
        if (items.empty()) return;
        start(lane_of(items.front().account), std::move(items));
    });
}

dispatcher::lane& dispatcher::lane_of(const account_settings* account) {
    auto it = by_account_.find(account);
    if (it != by_account_.end()) return *it->second;
    // Lanes live as long as the worker: one per configured account at most.
    lanes_.push_back(std::make_unique<lane>());
    lanes_.back()->account = account;
    by_account_.emplace(account, lanes_.back().get());
    return *lanes_.back();
}

void dispatcher::park(delivery&& d, unix_ms due) {
    put_back(out_, std::move(d), due);
}

void dispatcher::dispatch(delivery d) {
    lane& l = lane_of(d.account);
    const auto now = clock::now();
    std::optional<std::chrono::milliseconds> oldest;
    if (!l.started.empty())
        oldest = std::chrono::duration_cast<std::chrono::milliseconds>(now - *l.started.begin());
    const int max = static_cast<int>(std::max<std::size_t>(1, d.provider->max_batch(*d.account)));
    // A lane keeps at least two batches' worth, so gathering one never parks.
    const int bound = std::max(settings_.queue, 2 * max);
    const auto admit = policy::admit_to_lane(waiting_in(l), bound, static_cast<int>(park_seq_++ % 1000),
                                             wall_now_ms(), oldest, settings_);
    if (!admit.keep) {
        park(std::move(d), admit.due);
        return;
    }
    d.slot.set_waiting(true);  // no concurrency slot until it starts
    if (max == 1) {
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
        }
        --queued_;
        const auto now = clock::now();
        std::optional<std::chrono::milliseconds> oldest;
        if (!longest->started.empty())
            oldest = std::chrono::duration_cast<std::chrono::milliseconds>(now - *longest->started.begin());
        park(std::move(d), policy::park_due(static_cast<int>(park_seq_++ % 1000), wall_now_ms(), oldest, settings_));
    }
}

void dispatcher::pump() {
    if (ctx_.terminal()) return;
    const auto now = clock::now();
    for (;;) {
        views_.clear();
        for (auto& l : lanes_) {
            std::optional<std::chrono::milliseconds> oldest;
            if (!l->started.empty())
                oldest = std::chrono::duration_cast<std::chrono::milliseconds>(now - *l->started.begin());
            views_.push_back({l->in_flight, l->ready_count,
                              l->ready.empty() ? 0 : static_cast<int>(l->ready.front().size()),
                              policy::trusted_now(l->trusted, oldest, settings_)});
        }
        const auto i = policy::next_lane(views_, cursor_, settings_);
        if (!i) return;
        lane& l = *lanes_[*i];
        auto group = std::move(l.ready.front());
        l.ready.pop_front();
        const int n = static_cast<int>(group.size());
        l.ready_count -= n;
        queued_ -= n;
        for (auto& d : group) d.slot.set_waiting(false);
        start(l, std::move(group));
        cursor_ = *i + 1;
    }
}

void dispatcher::start(lane& l, std::vector<delivery> items) {
    const int n = static_cast<int>(items.size());
    l.in_flight += n;
    in_flight_ += n;
    sends_.spawn("send", run_send(l, std::move(items)));
}

asio::awaitable<void> dispatcher::run_send(lane& l, std::vector<delivery> items) {
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
    co_await sender_.send(std::move(items), &report);
    if (report.requested) {
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - began);
        l.trusted = policy::trusted_after(
            report.failed ? policy::request_result::failed : policy::request_result::answered_well, took, settings_);
    }
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
    }
}

}  // namespace outq::runtime
