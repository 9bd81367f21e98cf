#include "db_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/except>

#include "metrics.h"

namespace pgx {

namespace {

// A full queue means the database is far behind: refuse instead of growing latency without bound.
constexpr std::size_t kMaxQueued = 20000;

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

Reply reply_for(const std::exception& e) {
    ApiError api = api_error_from(e);
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    if (is_connection_failure(e))
        spdlog::warn("database unavailable: {}", what);
    else if (api.code() == "instrument_busy")
        spdlog::warn("instrument busy: {}", what);
    else if (api.status() >= 500)
        spdlog::error("database call failed: {}", what);
    return error_reply(api);
}

std::string batch_json(const std::vector<OrderJob>& jobs, const std::vector<std::size_t>& which) {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartArray();
    for (std::size_t i : which) write_place_item(w, jobs[i].order);
    w.EndArray();
    return std::string(buf.GetString(), buf.GetSize());
}

Reply order_reply(const pqxx::row& row) {
    Reply r;
    r.body = order_json(row);
    return r;
}

// The batch statement's argument: cancel_orders' items [{"id", "client"}], or
// amend_orders' [{"order_id", "quantity", "price", "stop_price", "client_id"}]
// (stop_price only when given: extension 0.14).
std::string change_json(const std::vector<ChangeJob>& jobs, const std::vector<std::size_t>& which) {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    auto text_or_null = [&w](const std::optional<std::string>& v) {
        if (v)
            write_string(w, *v);
        else
            w.Null();
    };
    const bool cancel = jobs[which[0]].kind == ChangeJob::Cancel;
    w.StartArray();
    for (std::size_t i : which) {
        const ChangeJob& j = jobs[i];
        w.StartObject();
        w.Key(cancel ? "id" : "order_id");
        write_string(w, j.order_id);
        if (!cancel) {
            w.Key("quantity");
            text_or_null(j.quantity);
            w.Key("price");
            text_or_null(j.price);
            if (j.stop_price) {
                w.Key("stop_price");
                write_string(w, *j.stop_price);
            }
        }
        w.Key(cancel ? "client" : "client_id");
        text_or_null(j.client);
        w.EndObject();
    }
    w.EndArray();
    return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

struct DbPool::Worker {
    Worker(const Config& c, std::atomic<int>& connected, LocalRateLimiter& local, Metrics& metrics)
        : session(c.db, connected, c.lock_timeout_ms),
          gate(c.redis.empty() ? std::string() : c.redis_host(), c.redis.empty() ? 0 : c.redis_port(),
               c.rate_limit, local, metrics) {}
    DbSession session;
    Gate gate;
    std::thread thread;
};

DbPool::DbPool(const Config& config, Metrics& metrics)
    : config_(config),
      metrics_(metrics),
      local_limiter_(config.rate_limit),
      max_order_writers_(std::max(1, config.db_workers / 2)) {
    for (int i = 0; i < config.db_workers; ++i)
        workers_.push_back(std::make_unique<Worker>(config, connected_, local_limiter_, metrics));
}

DbPool::~DbPool() {
    stop();
}

void DbPool::start() {
    answerer_ = std::thread([this] { answer_loop(); });
    for (auto& w : workers_) w->thread = std::thread([this, &w] { run(*w); });
}

void DbPool::stop() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    collect_cv_.notify_all();
    for (auto& w : workers_)
        if (w->thread.joinable()) w->thread.join();
    {
        std::lock_guard<std::mutex> lock(answer_mu_);
        answers_stop_ = true;
    }
    answer_cv_.notify_all();
    if (answerer_.joinable()) answerer_.join();
}

void DbPool::hand_over(std::function<void()> answers) {
    {
        std::lock_guard<std::mutex> lock(answer_mu_);
        if (!answers_stop_ && answerer_.joinable()) {
            answers_.push_back(std::move(answers));
            answer_cv_.notify_one();
            return;
        }
    }
    answers();  // no answerer (stopped, or never started): the worker writes them itself
}

void DbPool::answer_loop() {
    std::unique_lock<std::mutex> lock(answer_mu_);
    for (;;) {
        answer_cv_.wait(lock, [&] { return !answers_.empty() || answers_stop_; });
        if (answers_.empty()) return;  // stopping, and everything handed over is answered
        auto answers = std::move(answers_.front());
        answers_.pop_front();
        lock.unlock();
        answers();
        lock.lock();
    }
}

void DbPool::submit(OrderJob job) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!stopping_ && queued_total() < kMaxQueued) {
            const std::string& instrument = job.order.instrument;
            const bool busy = writing_.count(instrument) != 0;
            const std::size_t queued = ++queued_[instrument];
            orders_.push_back(std::move(job));
            // A worker that is writing this instrument takes the order with its next batch; only the
            // one collecting a batch wants to know that it is full. Nor can anybody take it while the
            // most order writers are at work: the first of them to finish looks at the queue.
            // Otherwise one idle worker is enough: waking every worker for every order cost a wake-up,
            // a lock and a scan of the queue each, and most of them found nothing to do.
            if (!busy && order_writers_ < max_order_writers_)
                cv_.notify_one();
            else if (busy && queued == static_cast<std::size_t>(config_.batch_max))
                collect_cv_.notify_all();
            return;
        }
    }
    metrics_.order_refused("overloaded");
    job.respond(error_reply(503, "overloaded", "the order queue is full or the server is stopping"));
}

std::size_t DbPool::queued_orders() {
    std::lock_guard<std::mutex> lock(mu_);
    return orders_.size();
}

void DbPool::submit(ChangeJob job) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!stopping_ && queued_total() < kMaxQueued) {
            changes_.push_back(std::move(job));
            // As for orders: while a worker writes changes, it takes these with its next batch.
            if (!changing_)
                cv_.notify_one();
            else if (changes_.size() == static_cast<std::size_t>(config_.batch_max))
                collect_cv_.notify_all();
            return;
        }
    }
    job.respond(error_reply(503, "overloaded", "the request queue is full or the server is stopping"));
}

void DbPool::submit(Task task) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!stopping_ && queued_total() < kMaxQueued) {
            tasks_.push_back(std::move(task));
            cv_.notify_one();
            return;
        }
    }
    task.respond(error_reply(503, "overloaded", "the request queue is full or the server is stopping"));
}

void DbPool::run(Worker& w) {
    const auto batch_wait = std::chrono::microseconds(config_.batch_wait_us);
    const auto batch_max = static_cast<std::size_t>(config_.batch_max);
    std::unique_lock<std::mutex> lock(mu_);
    // The oldest queued order whose instrument nobody is writing, or null.
    auto next_order = [&]() -> const OrderJob* {
        if (order_writers_ >= max_order_writers_) return nullptr;
        for (const auto& job : orders_)
            if (writing_.count(job.order.instrument) == 0) return &job;
        return nullptr;
    };
    auto changes_takeable = [&] { return !changes_.empty() && !changing_; };
    // Whether next_order() would find one, from the per-instrument counts: a look at each queued
    // instrument instead of a walk over every queued order, which under a backlog of one instrument
    // (all of them skipped while it is being written) is thousands of steps under the lock.
    auto orders_takeable = [&] {
        if (order_writers_ >= max_order_writers_) return false;
        for (const auto& [instrument, count] : queued_)
            if (count > 0 && writing_.count(instrument) == 0) return true;
        return false;
    };
    auto takeable = [&] { return changes_takeable() || orders_takeable() || !tasks_.empty(); };
    // Called once this worker has taken its work: if there is more that another worker could take
    // now, one idle worker is woken for it (and it does the same in turn). A worker that finishes
    // wakes nobody: it looks at the queue itself before it waits again.
    auto pass_on = [&] {
        if (takeable()) cv_.notify_one();
    };
    for (;;) {
        cv_.wait(lock, [&] { return takeable() || (stopping_ && orders_.empty() && changes_.empty()); });
        if (changes_takeable()) {
            changing_ = true;
            pass_on();
            const auto deadline = changes_.front().received + batch_wait;
            while (!stopping_ && changes_.size() < batch_max && Clock::now() < deadline)
                collect_cv_.wait_until(lock, deadline);
            std::vector<ChangeJob> batch;
            while (!changes_.empty() && batch.size() < batch_max) {
                batch.push_back(std::move(changes_.front()));
                changes_.pop_front();
            }
            lock.unlock();
            process_changes(w, batch);
            lock.lock();
            changing_ = false;
            continue;
        }
        if (const OrderJob* first = next_order()) {
            const std::string instrument = first->order.instrument;
            writing_.insert(instrument);
            ++order_writers_;
            pass_on();
            // Group commit: let more orders join the batch, but never hold the oldest one longer than
            // batch_wait.
            const auto deadline = first->received + batch_wait;
            while (!stopping_ && queued_[instrument] < batch_max && Clock::now() < deadline)
                collect_cv_.wait_until(lock, deadline);
            std::vector<OrderJob> batch;
            for (auto it = orders_.begin(); it != orders_.end() && batch.size() < batch_max;) {
                if (it->order.instrument == instrument) {
                    batch.push_back(std::move(*it));
                    it = orders_.erase(it);
                } else {
                    ++it;
                }
            }
            if ((queued_[instrument] -= batch.size()) == 0) queued_.erase(instrument);
            lock.unlock();
            process_orders(w, batch);
            lock.lock();
            writing_.erase(instrument);
            --order_writers_;
            continue;
        }
        if (!tasks_.empty()) {
            Task task = std::move(tasks_.front());
            tasks_.pop_front();
            pass_on();
            lock.unlock();
            process_task(w, task);
            lock.lock();
            continue;
        }
        // Stopping, and nothing is left to answer: the workers still waiting see it too.
        cv_.notify_all();
        return;
    }
}

void DbPool::process_orders(Worker& w, std::vector<OrderJob>& jobs) {
    std::vector<AdmitRequest> requests;
    requests.reserve(jobs.size());
    for (const auto& j : jobs) requests.push_back({j.order.client_id, j.order.idempotency_key});
    std::vector<Admission> admissions = w.gate.admit(requests);

    std::vector<std::size_t> to_place;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        if (!admissions[i].rate.allowed) {
            metrics_.order_refused("rate_limited");
            jobs[i].respond(rate_limited_reply(admissions[i].rate));
        } else if (!admissions[i].cached_order_id || !answer_from_cache(w, jobs[i], admissions[i])) {
            to_place.push_back(i);
        }
    }
    if (to_place.empty()) return;
    std::vector<std::pair<AdmitRequest, std::string>> remember;
    place(w, jobs, admissions, to_place, remember);
    w.gate.remember(remember);
}

// Redis said this key was used: answer with the order as it is now, read
// from the database. Anything unexpected falls back to place_orders, whose
// unique key decides.
bool DbPool::answer_from_cache(Worker& w, OrderJob& job, const Admission& admission) {
    try {
        pqxx::result r = w.session.exec(Stmt::GetOrder, *admission.cached_order_id);
        if (r.size() != 1 || r[0][kClientId].c_str() != job.order.client_id) return false;
        Reply reply;
        reply.status = 200;
        reply.body = order_json(r[0]);
        add_rate_headers(reply, admission.rate);
        job.respond(std::move(reply));
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

void DbPool::place(Worker& w, std::vector<OrderJob>& jobs, const std::vector<Admission>& admissions,
                   const std::vector<std::size_t>& which,
                   std::vector<std::pair<AdmitRequest, std::string>>& remember) {
    pqxx::result rows;
    try {
        rows = w.session.exec(Stmt::PlaceOrders, batch_json(jobs, which));
    } catch (const std::exception& e) {
        // A failed statement committed nothing, so its orders can go again one by one, unless it
        // waited too long for the instrument (one by one would wait as long again each): those,
        // like orders whose connection was lost (which may or may not have committed), get a 503
        // and the client retries (safely, with an idempotency key).
        if (which.size() > 1 && !is_connection_failure(e) && !is_wait_timeout(e)) {
            std::string what = e.what();
            spdlog::warn("batch of {} orders failed, placing them one by one: {}", which.size(),
                         what.substr(0, what.find('\n')));
            for (std::size_t i : which) place(w, jobs, admissions, {i}, remember);
            return;
        }
        Reply error = reply_for(e);
        const std::string code = api_error_from(e).code();
        for (std::size_t i : which) {
            metrics_.order_refused(code);
            jobs[i].respond(error);
        }
        return;
    }
    metrics_.batch(which.size());
    if (rows.size() != which.size()) {
        spdlog::error("place_orders returned {} rows for {} orders", rows.size(), which.size());
        for (std::size_t i : which) jobs[i].respond(error_reply(500, "internal_error", "internal error"));
        return;
    }
    // What the idempotency cache learns, now (the worker's Redis connection); the answers later,
    // on the answerer, while this worker places the instrument's next batch.
    std::vector<OrderJob> placed;
    std::vector<RateDecision> rates;
    placed.reserve(which.size());
    rates.reserve(which.size());
    for (std::size_t k = 0; k < which.size(); ++k) {
        OrderJob& job = jobs[which[k]];
        if (job.order.idempotency_key && !rows[k][kOrderId].is_null())
            remember.emplace_back(AdmitRequest{job.order.client_id, job.order.idempotency_key},
                                  rows[k][kOrderId].c_str());
        placed.push_back(std::move(job));
        rates.push_back(admissions[which[k]].rate);
    }
    hand_over([this, rows, placed = std::move(placed), rates = std::move(rates)]() mutable {
        answer_placed(rows, placed, rates);
    });
}

void DbPool::answer_placed(const pqxx::result& rows, std::vector<OrderJob>& jobs,
                           const std::vector<RateDecision>& rates) {
    for (std::size_t k = 0; k < jobs.size(); ++k) {
        OrderJob& job = jobs[k];
        const pqxx::row& row = rows[k];
        const std::string reason = row[kRejectReason].is_null() ? "" : row[kRejectReason].c_str();
        if (row[kOrderId].is_null()) {
            metrics_.order_refused(reason);
            // The detail of a malformed item, as place_order raises it ("price 1.005 is not a multiple of 0.01").
            const std::string message = row[kRejectMessage].is_null() ? "order rejected: " + reason
                                                                      : reason + ": " + row[kRejectMessage].c_str();
            Reply r = error_reply(400, reason, message);
            add_rate_headers(r, rates[k]);
            job.respond(std::move(r));
            continue;
        }
        Reply reply;
        std::size_t trades = 0;
        try {
            reply.body = order_json(row, &trades);
        } catch (const std::exception& e) {
            spdlog::error("order {}: {}", row[kOrderId].c_str(), e.what());
            job.respond(error_reply(500, "internal_error", "internal error"));
            continue;
        }
        bool replay = row[kSeq].is_null();
        reply.status = replay ? 200 : 201;
        add_rate_headers(reply, rates[k]);
        if (!replay) {
            metrics_.order_result(row[kInstrument].c_str(), row[kType].c_str(), row[kSide].c_str(),
                                  row[kStatus].c_str(), reason, trades, trades > 0,
                                  seconds_since(job.received));
        }
        job.respond(std::move(reply));
    }
}

void DbPool::process_changes(Worker& w, std::vector<ChangeJob>& jobs) {
    std::vector<AdmitRequest> requests;
    std::vector<std::size_t> limited;  // the jobs rate limited under their client, in requests' order
    for (std::size_t i = 0; i < jobs.size(); ++i)
        if (jobs[i].client && !jobs[i].client->empty()) {
            requests.push_back({*jobs[i].client, std::nullopt});
            limited.push_back(i);
        }
    std::vector<RateDecision> rates(jobs.size());
    if (!requests.empty()) {
        std::vector<Admission> admissions = w.gate.admit(requests);
        for (std::size_t k = 0; k < limited.size(); ++k) rates[limited[k]] = admissions[k].rate;
    }
    // The cancels, then the amends, in the order they came.
    std::vector<std::size_t> cancels, amends;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        if (!rates[i].allowed)
            jobs[i].respond(rate_limited_reply(rates[i]));
        else
            (jobs[i].kind == ChangeJob::Cancel ? cancels : amends).push_back(i);
    }
    refuse_outdated_stop_amends(w, jobs, rates, amends);
    write_changes(w, jobs, rates, cancels);
    write_changes(w, jobs, rates, amends);
}

// A new stop_price needs extension 0.14 (amend_order's stop_price argument):
// before it, those amends get 501 extension_outdated, as a stop order does
// before 0.13, and are not sent. Both paths answer alike: 0.13's amend_orders
// would move the stop (the library is the same), its amend_order could not.
void DbPool::refuse_outdated_stop_amends(Worker& w, std::vector<ChangeJob>& jobs,
                                         const std::vector<RateDecision>& rates,
                                         std::vector<std::size_t>& amends) {
    auto moves_stop = [&jobs](std::size_t i) { return jobs[i].stop_price.has_value(); };
    if (std::none_of(amends.begin(), amends.end(), moves_stop)) return;
    Reply refusal;
    try {
        if (w.session.amends_stop_price()) return;
        refusal =
            error_reply(501, "extension_outdated", "amending a stop_price needs the exchange extension 0.14");
    } catch (const std::exception& e) {
        refusal = reply_for(e);
    }
    for (std::size_t i : amends) {
        if (!moves_stop(i)) continue;
        Reply reply = refusal;
        add_rate_headers(reply, rates[i]);
        jobs[i].respond(std::move(reply));
    }
    amends.erase(std::remove_if(amends.begin(), amends.end(), moves_stop), amends.end());
}

// Writes jobs[which] (all of one kind) in one statement; alone, through the
// single-order function.
void DbPool::write_changes(Worker& w, std::vector<ChangeJob>& jobs, const std::vector<RateDecision>& rates,
                           const std::vector<std::size_t>& which) {
    auto answer = [&](std::size_t i, Reply reply) {
        add_rate_headers(reply, rates[i]);
        jobs[i].respond(std::move(reply));
    };
    if (which.empty()) return;
    const bool cancel = jobs[which[0]].kind == ChangeJob::Cancel;
    auto observe = [&](std::size_t n) { cancel ? metrics_.cancel_batch(n) : metrics_.amend_batch(n); };
    if (which.size() == 1) {
        const ChangeJob& job = jobs[which[0]];
        auto c_str = [](const std::optional<std::string>& v) { return v ? v->c_str() : nullptr; };
        Reply reply;
        observe(1);  // also when it is refused (an ERROR)
        try {
            pqxx::result r;
            if (cancel)
                r = w.session.exec(Stmt::CancelOrder, job.order_id, c_str(job.client));
            else if (job.stop_price)  // extension 0.14's amend_order (refuse_outdated_stop_amends)
                r = w.session.exec(Stmt::AmendOrderStop, job.order_id, c_str(job.quantity), c_str(job.price),
                                   c_str(job.client), c_str(job.stop_price));
            else
                r = w.session.exec(Stmt::AmendOrder, job.order_id, c_str(job.quantity), c_str(job.price),
                                   c_str(job.client));
            reply = r.size() == 1 ? order_reply(r[0]) : error_reply(404, "order_not_found", "no such order");
        } catch (const std::exception& e) {
            reply = reply_for(e);
        }
        return answer(which[0], std::move(reply));
    }
    pqxx::result rows;
    try {
        rows = w.session.exec(cancel ? Stmt::CancelOrders : Stmt::AmendOrders, change_json(jobs, which));
    } catch (const std::exception& e) {
        // Nothing was committed. As for orders: one by one, unless the connection failed or the
        // batch waited too long for an instrument.
        if (!is_connection_failure(e) && !is_wait_timeout(e)) {
            std::string what = e.what();
            spdlog::warn("batch of {} {} failed, writing them one by one: {}", which.size(),
                         cancel ? "cancels" : "amends", what.substr(0, what.find('\n')));
            for (std::size_t i : which) write_changes(w, jobs, rates, {i});
            return;
        }
        Reply error = reply_for(e);
        for (std::size_t i : which) answer(i, error);
        return;
    }
    observe(which.size());
    const auto position = static_cast<pqxx::row::size_type>(kOrderColumnCount);
    bool in_order = rows.size() == which.size();
    for (std::size_t k = 0; in_order && k < which.size(); ++k)
        in_order = !rows[k][position].is_null() && rows[k][position].as<std::size_t>() == k + 1;
    if (!in_order) {
        // Committed, but the answers cannot be told apart: say so rather than guess.
        spdlog::error("the batch of {} {} returned {} rows, or out of order", which.size(),
                      cancel ? "cancels" : "amends", rows.size());
        for (std::size_t i : which) answer(i, error_reply(500, "internal_error", "internal error"));
        return;
    }
    for (std::size_t k = 0; k < which.size(); ++k) {
        const pqxx::row& row = rows[k];
        if (std::string_view(row[kStatus].c_str()) == "rejected") {
            // The single function's refusal: its reason code, message and status.
            const std::string code = row[kRejectReason].c_str();
            answer(which[k], error_reply(api_error_from_refusal(code, row[kRejectMessage].c_str())));
        } else {
            answer(which[k], order_reply(row));
        }
    }
}

void DbPool::process_task(Worker& w, Task& task) {
    RateDecision rate;
    if (!task.rate_client.empty()) {
        rate = w.gate.admit({{task.rate_client, std::nullopt}})[0].rate;
        if (!rate.allowed) {
            task.respond(rate_limited_reply(rate));
            return;
        }
    }
    Reply reply;
    try {
        if (task.run_and_respond) return task.run_and_respond(w.session, task.respond);
        reply = task.run(w.session);
    } catch (const std::exception& e) {
        reply = reply_for(e);
    }
    add_rate_headers(reply, rate);
    task.respond(std::move(reply));
}

}  // namespace pgx
