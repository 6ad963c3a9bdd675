#include "dispatcher.hpp"

namespace outq::runtime {

namespace asio = boost::asio;

dispatcher::dispatcher(asio::any_io_executor ex, context& ctx, sender& s, task_group& sends)
    : executor_(ex), ctx_(ctx), sender_(s), sends_(sends) {
    sender_.set_spawn([this](std::vector<delivery> items) { spawn_send(std::move(items)); });
}

void dispatcher::spawn_send(std::vector<delivery> items) {
    sends_.spawn("send", sender_.send(std::move(items)));
}

void dispatcher::dispatch(delivery d) {
    const std::size_t max = std::max<std::size_t>(1, d.provider->max_batch(*d.account));
    if (max == 1) {
        std::vector<delivery> one;
        one.push_back(std::move(d));
        spawn_send(std::move(one));
        return;
    }
    const account_settings* account = d.account;
    auto& b = batches_[account];
    b.items.push_back(std::move(d));
    if (b.items.size() >= max || ctx_.draining()) {
        flush(account);
    } else if (b.items.size() == 1) {
        if (!b.timer) b.timer = std::make_unique<asio::steady_timer>(executor_);
        b.timer->expires_after(b.items.front().provider->batch_wait(*account));
        b.timer->async_wait([this, account](boost::system::error_code ec) {
            if (!ec) flush(account);
        });
    }
}

void dispatcher::flush(const account_settings* account) {
    auto it = batches_.find(account);
    if (it == batches_.end() || it->second.items.empty()) return;
    std::vector<delivery> items;
    items.swap(it->second.items);
    if (it->second.timer) it->second.timer->cancel();
    spawn_send(std::move(items));
}

void dispatcher::flush_all() {
    std::vector<const account_settings*> accounts;
    for (auto& [a, b] : batches_) accounts.push_back(a);
    for (auto* a : accounts) flush(a);
}

}  // namespace outq::runtime
