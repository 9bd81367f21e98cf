#include "twap_ticker.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/nontransaction>

#include "db_error.h"
#include "metrics.h"

namespace pgx {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kMinRetry{250};
constexpr std::chrono::milliseconds kMaxRetry{5000};

// The server closed the idle connection (a restart sends a FATAL message and EOF): reconnect before the
// run rather than fail it.
bool closed_while_idle(int fd) {
    if (fd < 0) return true;
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, 0) != 0;
}

std::string first_line(const std::exception& e) {
    std::string what = e.what();
    return what.substr(0, what.find('\n'));
}

}  // namespace

TwapTicker::TwapTicker(const Config& config, Metrics& metrics)
    : conninfo_(config.db),
      interval_(config.twap_tick_ms),
      lock_timeout_ms_(config.lock_timeout_ms),
      metrics_(metrics) {}

TwapTicker::~TwapTicker() {
    stop();
}

void TwapTicker::start() {
    if (interval_.count() <= 0) {
        spdlog::info("twap ticker: off (--twap-tick-ms 0): TWAP orders are not run by this process");
        return;
    }
    thread_ = std::thread([this] { run(); });
}

void TwapTicker::stop() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void TwapTicker::run() {
    spdlog::info("twap ticker: the due TWAP orders every {} ms", interval_.count());
    auto next = Clock::now();
    std::chrono::milliseconds retry{0};
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            if (cv_.wait_until(lock, next, [this] { return stopping_; })) break;
        }
        const Outcome outcome = tick();
        if (outcome == Outcome::Finished) break;
        const auto now = Clock::now();
        if (outcome == Outcome::Failed) {
            retry = std::clamp(retry * 2, kMinRetry, kMaxRetry);
            next = now + std::max(interval_, retry);
        } else {
            retry = std::chrono::milliseconds{0};
            next += interval_;
            if (next < now)
                next = now + interval_;  // a run longer than a tick: the missed ticks are not made up
        }
    }
    conn_.reset();
}

TwapTicker::Outcome TwapTicker::tick() {
    try {
        if (conn_ && closed_while_idle(conn_->sock())) conn_.reset();
        if (!conn_) {
            auto c = std::make_unique<pqxx::connection>(conninfo_);
            pqxx::nontransaction tx(*c);
            // As the workers' sessions: an instrument another transaction holds fails that child after
            // lock_timeout (run_twaps records it in the TWAP's last_error and tries again next run).
            tx.exec(
                "SET application_name = 'pgx-twap-ticker'; SET statement_timeout = '10s'; "
                "SET lock_timeout = " +
                std::to_string(lock_timeout_ms_));
            conn_ = std::move(c);
        }
        long long placed = 0;
        if (each_) {
            try {
                pqxx::nontransaction tx(*conn_);  // autocommit: the procedure commits after each TWAP
                placed = tx.exec1("CALL exchange.run_twaps_each()")[0].as<long long>();
            } catch (const pqxx::sql_error& e) {
                if (sqlstate_of(e) != "42883") throw;
                each_ = false;
                spdlog::info(
                    "twap ticker: the database's exchange extension is older than 0.19 (no "
                    "exchange.run_twaps_each()): each run places its TWAPs' children in one transaction "
                    "(exchange.run_twaps())");
            }
        }
        if (!each_) {
            pqxx::nontransaction tx(*conn_);
            placed = tx.exec1("SELECT count(*) FROM exchange.run_twaps()")[0].as<long long>();
        }
        if (placed > 0) {
            metrics_.twap_child_orders(static_cast<std::size_t>(placed));
            spdlog::debug("twap ticker: {} child orders placed", placed);
        }
        if (failing_) spdlog::info("twap ticker: running again");
        failing_ = false;
        return Outcome::Ran;
    } catch (const std::exception& e) {
        const std::string state = sqlstate_of(e);
        if (state == "42883") {
            spdlog::info(
                "twap ticker: the database's exchange extension is older than 0.18 (no "
                "exchange.run_twaps()): TWAP orders are not run by this process (after ALTER EXTENSION "
                "exchange UPDATE, restart it)");
            return Outcome::Finished;
        }
        if (state == "25006") {
            spdlog::info(
                "twap ticker: the database is read-only (a standby, or default_transaction_read_only): TWAP "
                "orders are not run by this process");
            return Outcome::Finished;
        }
        if (is_connection_failure(e) || (conn_ && !conn_->is_open())) conn_.reset();
        if (!failing_)
            spdlog::warn(
                "twap ticker: running the TWAP orders failed ({}); trying again every {} to {} ms until it "
                "runs",
                first_line(e), std::max(interval_, kMinRetry).count(),
                std::max(interval_, kMaxRetry).count());
        failing_ = true;
        return Outcome::Failed;
    }
}

}  // namespace pgx
