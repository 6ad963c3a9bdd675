#pragma once
// Coroutines the runtime started and must see end: each is spawned through
// the group, which counts it, logs an exception that escapes it (with its
// name) and tells the owner, so nothing runs `detached` and unobserved.
// A delivery inside a task that throws releases its slot on unwinding.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <exception>
#include <functional>
#include <string>

#include "outq/detail/async_event.hpp"
#include "outq/log.hpp"

namespace outq::runtime {

class task_group {
  public:
    using failure_handler = std::function<void(const std::string& task, const std::string& error)>;
    task_group(boost::asio::any_io_executor ex, failure_handler on_failure)
        : executor_(ex), on_failure_(std::move(on_failure)), done_(ex) {}
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;

    void spawn(std::string name, boost::asio::awaitable<void> task) {
        ++running_;
        boost::asio::co_spawn(executor_, std::move(task), [this, name = std::move(name)](std::exception_ptr e) {
            --running_;
            if (e) {
                std::string what = "unknown exception";
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    what = ex.what();
                } catch (...) {
                }
                log::error("task failed", "task=" + name + " error=" + log::value(what));
                if (on_failure_) on_failure_(name, what);
            }
            done_.notify_all();
        });
    }
    int running() const { return running_; }
    boost::asio::awaitable<void> wait_all() {
        while (running_ > 0) co_await done_.wait();
    }

  private:
    boost::asio::any_io_executor executor_;
    failure_handler on_failure_;
    int running_ = 0;
    detail::async_event done_;
};

}  // namespace outq::runtime
