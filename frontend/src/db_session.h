// One long-lived PostgreSQL connection of a database worker, with its
// prepared statements. A lost connection is dropped and replaced on the next
// call; while the database stays unreachable, calls fail at once instead of
// waiting for a connect timeout each time.
#pragma once

#include <atomic>
#include <bitset>
#include <chrono>
#include <memory>
#include <optional>
#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <string>

#include "db_error.h"

namespace pgx {

enum class Stmt {
    PlaceOrders,
    GetOrder,
    ListOrders,
    ListOrdersBefore,
    CancelOrder,
    CancelOrders,
    CancelAllOrders,
    AmendOrders,
    AmendOrder,
    AmendOrderStop,
    Orderbook,
    OrderbookAt,
    RecentTrades,
    RecentTradesBefore,
    TradeStats,
    Candles,
    Settlement,
    PlaceTwap,
    GetTwap,
    ListTwaps,
    CancelTwap,
    TwapOrders,
    Snapshot,
    ListInstruments,
    Ready,
    Depth,
    Authenticate,
    Count
};

class DbSession {
public:
    // `connected` counts the open connections of the whole pool.
    // lock_timeout_ms: the session's lock_timeout (0: none).
    DbSession(std::string conninfo, std::atomic<int>& connected, int lock_timeout_ms = 0);
    ~DbSession();
    DbSession(const DbSession&) = delete;
    DbSession& operator=(const DbSession&) = delete;

    // Runs a prepared statement in its own implicit transaction: when it
    // returns, the statement has committed.
    template <typename... Args>
    pqxx::result exec(Stmt s, Args&&... args) {
        pqxx::connection& c = connection();
        try {
            prepare(c, s);
            pqxx::nontransaction tx(c);
            return tx.exec_prepared(name(s), std::forward<Args>(args)...);
        } catch (const std::exception& e) {
            if (is_connection_failure(e)) drop();
            throw;
        }
    }

    // Whether the database's extension amends a pending stop order's stop price (0.14: amend_order
    // has its stop_price argument). Remembered for the connection once it does; asked again while it
    // does not, so that an ALTER EXTENSION UPDATE counts at once. Throws as exec does.
    bool amends_stop_price();

private:
    pqxx::connection& connection();
    void prepare(pqxx::connection& c, Stmt s);
    // The select list of the order statements (order_columns()) for this database's order_result.
    std::string order_columns_of(pqxx::connection& c);
    static std::string name(Stmt s);
    void drop();

    std::string conninfo_;
    int lock_timeout_ms_;
    std::atomic<int>& connected_;
    std::unique_ptr<pqxx::connection> conn_;
    std::bitset<static_cast<std::size_t>(Stmt::Count)> prepared_;
    // Whether the database's order_result has display_quantity (0.12) and stop_price (0.13), looked up
    // once per connection.
    std::optional<bool> display_quantity_;
    std::optional<bool> stop_price_;
    bool amend_stop_price_ = false;  // amends_stop_price() said yes on this connection
    std::chrono::steady_clock::time_point retry_at_{};
};

}  // namespace pgx
