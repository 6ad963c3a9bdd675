#pragma once
// The dispatcher: decides when a delivery that passed admission is sent and
// with which others. Adapters that batch (Mews) gather the deliveries of one
// account until the batch is full or its wait ends; every other delivery is
// sent at once, each group in a task of the runtime's send group. The seam
// for per-account lanes and fairness.
//
// Owns: the pending batches and their timers.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <unordered_map>
#include <vector>

#include "context.hpp"
#include "delivery.hpp"
#include "sender.hpp"
#include "task_group.hpp"

namespace outq::runtime {

class dispatcher {
  public:
    dispatcher(boost::asio::any_io_executor ex, context& ctx, sender& s, task_group& sends);

    void dispatch(delivery d);
    // Sends every batch that waits (at the start of a drain).
    void flush_all();
    // Sends `items` in a task of its own.
    void spawn_send(std::vector<delivery> items);

  private:
    struct pending_batch {
        std::vector<delivery> items;
        std::unique_ptr<boost::asio::steady_timer> timer;
    };
    void flush(const account_settings* account);

    boost::asio::any_io_executor executor_;
    context& ctx_;
    sender& sender_;
    task_group& sends_;
    std::unordered_map<const account_settings*, pending_batch> batches_;
};

}  // namespace outq::runtime
