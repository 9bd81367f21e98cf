// The database workers. HTTP handlers never touch the database: they queue
// work here and a worker answers through the request's Respond (a committed
// order batch's answers are written by the answerer thread, in commit order,
// while the worker places the instrument's next batch on its connection).
//
// Orders are group-committed per instrument: a worker takes up to batch_max
// queued orders of one instrument, waiting at most batch_wait_us after the
// oldest one arrived, and places them with one exchange.place_orders call
// (one transaction, one WAL flush, one NOTIFY). At most one worker writes an
// instrument at a time: the extension serialises writers of an instrument
// through its lock, held to commit (to the commit record's write, with early
// lock release; frontend/README.md), so a second one would only wait inside
// PostgreSQL with a smaller batch while orders queue behind both; one writer
// lets the next batch collect everything that arrived meanwhile. At most half
// of the workers write orders at a time so that reads, cancels and amends keep
// moving under an order flood.
//
// Cancels and amends are group-committed too, across instruments and
// clients: one worker at a time takes up to batch_max of them (the same
// bounded wait) and writes the cancels with one statement (one
// exchange.cancel_orders call per client) and the amends with another
// (exchange.amend_orders), a transaction each. Each request still gets the
// answer a cancel_order or amend_order of its own would have given. A batch
// that fails (a deadlock with another frontend's batch, say) is retried one
// per transaction. Workers look at queued changes before orders: a cancel or
// a re-price takes risk off the book.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "admission.h"
#include "config.h"
#include "db_session.h"
#include "order_json.h"
#include "reply.h"

namespace pgx {

class Metrics;
using Clock = std::chrono::steady_clock;

struct OrderJob {
    OrderRequest order;
    Respond respond;
    Clock::time_point received;
};

// A cancel or an amend of one order (DELETE, POST .../cancel, PATCH).
struct ChangeJob {
    enum Kind { Cancel, Amend } kind;
    std::string order_id;               // a well-formed uuid
    std::optional<std::string> client;  // must own the order when given; rate limited under it
    std::optional<std::string> quantity, price;  // an amend's, as given (decimal text)
    std::optional<std::string> stop_price;       // an amend's new stop price (extension 0.14)
    Respond respond;
    Clock::time_point received;
};

struct Task {
    std::string rate_client;  // rate limited under this client_id; empty: not limited
    std::function<Reply(DbSession&)> run;
    Respond respond;
    // Instead of `run`: answers through `respond` itself, or hands it on. An
    // exception it throws is still answered with `respond`.
    std::function<void(DbSession&, Respond&)> run_and_respond = nullptr;
};

class DbPool {
public:
    DbPool(const Config& config, Metrics& metrics);
    ~DbPool();

    void start();
    // Queue work; answered with 503 at once when the queue is full or the pool has stopped.
    void submit(OrderJob job);
    void submit(ChangeJob job);
    void submit(Task task);
    // Answers everything already queued, then joins the workers.
    void stop();

    int connected() const { return connected_.load(); }
    int size() const { return static_cast<int>(workers_.size()); }
    std::size_t queued_orders();  // waiting for a batch

private:
    struct Worker;
    void run(Worker& w);
    void process_orders(Worker& w, std::vector<OrderJob>& jobs);
    void place(Worker& w, std::vector<OrderJob>& jobs, const std::vector<Admission>& admissions,
               const std::vector<std::size_t>& which,
               std::vector<std::pair<AdmitRequest, std::string>>& remember);
    bool answer_from_cache(Worker& w, OrderJob& job, const Admission& admission);
    // The answers of a committed batch: rows[k] is jobs[k]'s.
    void answer_placed(const pqxx::result& rows, std::vector<OrderJob>& jobs,
                       const std::vector<RateDecision>& rates);
    void process_changes(Worker& w, std::vector<ChangeJob>& jobs);
    void write_changes(Worker& w, std::vector<ChangeJob>& jobs, const std::vector<RateDecision>& rates,
                       const std::vector<std::size_t>& which);
    void refuse_outdated_stop_amends(Worker& w, std::vector<ChangeJob>& jobs,
                                     const std::vector<RateDecision>& rates,
                                     std::vector<std::size_t>& amends);
    void process_task(Worker& w, Task& task);
    std::size_t queued_total() const { return orders_.size() + changes_.size() + tasks_.size(); }  // under mu_

    // Writes the answers of committed order batches, in the order they committed, so that the
    // worker that placed a batch goes on with the next one at once (on the same connection).
    void answer_loop();
    void hand_over(std::function<void()> answers);

    const Config& config_;
    Metrics& metrics_;
    std::mutex answer_mu_;
    std::condition_variable answer_cv_;
    std::deque<std::function<void()>> answers_;
    bool answers_stop_ = false;
    std::thread answerer_;
    LocalRateLimiter local_limiter_;
    std::atomic<int> connected_{0};
    std::vector<std::unique_ptr<Worker>> workers_;

    std::mutex mu_;
    std::condition_variable cv_;          // idle workers wait here for work they can take
    std::condition_variable collect_cv_;  // a worker collecting a batch waits here until it is full
    std::deque<OrderJob> orders_;
    std::deque<ChangeJob> changes_;
    std::deque<Task> tasks_;
    int order_writers_ = 0;
    int max_order_writers_;
    std::set<std::string> writing_;  // instruments a worker is writing now
    std::map<std::string, std::size_t> queued_;  // orders_ per instrument
    bool changing_ = false;                      // a worker is writing a batch of cancels and amends
    bool stopping_ = false;
};

}  // namespace pgx
