#pragma once
// Admission: turns stream entries this worker was given (by the fetcher or
// the reclaimer) into deliveries. Each entry gets its slot; the pure
// `policy::inspect` refuses bad entries as dead letters; one pipelined claim
// round trip (in-flight markers, existing results, account pauses) decides
// the rest (`policy::after_claim`). Deliveries to send go to the dispatcher;
// everything else goes straight to the writer. While the worker drains,
// entries read after the signal are put back before any byte goes out.
//
// Owns: the interned rate-limit scopes and its log throttles; each claim
// retries on its own timer and backoff.
#include <boost/asio/awaitable.hpp>

#include <string>
#include <unordered_map>
#include <vector>

#include "context.hpp"
#include "dispatcher.hpp"
#include "ledger.hpp"
#include "outq/log_throttle.hpp"
#include "outq/redis_connection.hpp"
#include "writer.hpp"

namespace outq::runtime {

class admission {
  public:
    admission(boost::asio::any_io_executor ex, context& ctx, redis::connection& conn, ledger& held, writers& out,
              dispatcher& next);

    // Entries of one partition. `delivered_at`: when the read that returned
    // them was sent (their idle time in the group counts from about then).
    boost::asio::awaitable<void> admit(std::vector<queue::stream_entry> entries,
                                       ledger::clock::time_point delivered_at);

  private:
    boost::asio::awaitable<bool> claim(std::vector<delivery>& candidates, std::vector<queue::claim_result>& verdicts);
    boost::asio::awaitable<std::string> claim_alone(const queue::keys& k, const std::vector<queue::claim_item>& items,
                                                    std::vector<queue::claim_result>& verdicts);
    std::string_view scope_of(std::string_view provider, std::string_view account);

    boost::asio::any_io_executor executor_;
    context& ctx_;
    redis::connection& conn_;
    ledger& held_;
    writers& out_;
    dispatcher& next_;
    std::unordered_map<std::string, std::string> scopes_;  // node-based: views handed out stay valid
    std::string scope_lookup_;
    log::throttle claim_log_;
    log::throttle foreign_log_;  // result keys of another type met by claims
};

}  // namespace outq::runtime
