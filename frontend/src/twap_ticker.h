// The TWAP ticker: a thread of its own, with a long-lived connection of its
// own, that runs the due TWAPs every --twap-tick-ms: CALL
// exchange.run_twaps_each() (extension 0.19), which commits after each TWAP,
// so that a child's instrument is locked only while that child is placed; on
// a database at 0.18 (no procedure: 42883, logged once at INFO) SELECT
// exchange.run_twaps(), all of them in one transaction. Time moves a TWAP's
// schedule only when a run runs: each places the child orders that are due
// (IOC orders of the TWAP's client, each with an idempotency key of its own,
// so a run that races another frontend's, or is retried, places nothing
// twice).
//
// Not on the database workers: a run is a write that may take an instrument's
// lock (up to --lock-timeout-ms, as the workers' statements), and it must
// neither wait behind the request queues nor hold a worker that requests are
// waiting for; one thread and one connection per process is what it needs.
//
// A lost connection (the database restarted, say) is replaced on the next
// tick; while the database stays unreachable or a run fails, the ticker tries
// again with a growing pause (250 ms to 5 s, never more often than the tick)
// and logs WARN once per outage, INFO once it runs again. A database whose
// extension is older than 0.18 (no run_twaps: 42883) and a read-only one (a
// standby, 25006) are logged once at INFO and the ticker stops for the life
// of the process.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <pqxx/connection>
#include <string>
#include <thread>

#include "config.h"

namespace pgx {

class Metrics;

class TwapTicker {
public:
    TwapTicker(const Config& config, Metrics& metrics);
    ~TwapTicker();
    TwapTicker(const TwapTicker&) = delete;
    TwapTicker& operator=(const TwapTicker&) = delete;

    void start();  // nothing with --twap-tick-ms 0
    // Lets a run in progress finish (it is one statement, bounded by the 10 s statement timeout), then
    // closes the connection and joins the thread.
    void stop();

private:
    enum class Outcome { Ran, Failed, Finished };
    void run();
    Outcome tick();

    const std::string conninfo_;
    const std::chrono::milliseconds interval_;
    const int lock_timeout_ms_;
    Metrics& metrics_;
    std::unique_ptr<pqxx::connection> conn_;  // the ticker thread's
    bool failing_ = false;                    // the ticker thread's: the current outage is logged
    bool each_ = true;  // the ticker thread's: run_twaps_each() exists (until a 42883 says it does not)

    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace pgx
