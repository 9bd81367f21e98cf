#include "db_session.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <pqxx/except>

#include "order_json.h"

namespace pgx {

namespace {

// While the database is down, requests fail fast for this long before the next connect attempt.
constexpr std::chrono::milliseconds kReconnectPause{250};

// The columns of a trade as the REST answers show them (recent_trades' rows).
constexpr const char* kTradeColumns =
    "SELECT trade_id, symbol, price::text, quantity::text, buy_order_id, sell_order_id, buy_client_id, "
    "sell_client_id, maker_side, seq, to_json(executed_at) #>> '{}' ";

// The columns of a TWAP (exchange.twap_result, extension 0.18) as the TWAP routes read them (write_twap
// in routes.cpp): decimals and timestamps as text, the counts as integers, `replayed` last.
constexpr const char* kTwapColumns =
    "SELECT twap_id, client_id, instrument, side, quantity::text, price::text, to_json(start_at) #>> '{}', "
    "to_json(end_at) #>> '{}', slices, filled_quantity::text, remaining_quantity::text, slices_done, "
    "children, status, last_error, to_json(created_at) #>> '{}', to_json(updated_at) #>> '{}', replayed ";

// order_cols: the select list of the statements that read order_result rows (order_columns()).
std::string sql_of(Stmt s, const std::string& order_cols) {
    switch (s) {
        case Stmt::PlaceOrders:
            return "SELECT " + order_cols + " FROM exchange.place_orders($1::jsonb)";
        case Stmt::GetOrder:
            return "SELECT " + order_cols + " FROM exchange.get_order($1::uuid)";
        case Stmt::ListOrders:
            return "SELECT " + order_cols + " FROM exchange.list_orders($1, $2, $3::int)";
        case Stmt::ListOrdersBefore:  // extension 0.11: the orders older than $4
            return "SELECT " + order_cols + " FROM exchange.list_orders($1, $2, $3::int, $4::uuid)";
        case Stmt::CancelOrder:
            return "SELECT " + order_cols + " FROM exchange.cancel_order($1::uuid, $2)";
        case Stmt::CancelOrders:
            // $1: [{"id": uuid, "client": text or null}, ...] (client NULL: no ownership check). One
            // cancel_orders call with a client per id (extension 0.9), which locks all the orders'
            // instruments in one order; the rows in the items' order, each with its item's position
            // (1-based) as the last column.
            return "SELECT " + order_cols +
                   ", r.ordinality FROM (SELECT coalesce(array_agg((i->>'id')::uuid ORDER BY n), '{}') AS ids, "
                   "coalesce(array_agg(i->>'client' ORDER BY n), '{}') AS clients "
                   "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS items(i, n)) a "
                   "CROSS JOIN LATERAL exchange.cancel_orders(a.ids, a.clients) WITH ORDINALITY AS r";
        case Stmt::CancelAllOrders:
            // Extension 0.14: the client's ($1) resting and pending orders, of one instrument when $2 is
            // not NULL, cancelled by one cancel_orders call; the rows oldest first.
            return "SELECT " + order_cols + " FROM exchange.cancel_all_orders($1, $2)";
        case Stmt::AmendOrders:
            // $1: amend_orders' items; the rows in their order, each with its position (1-based) last.
            return "SELECT " + order_cols +
                   ", r.ordinality FROM exchange.amend_orders($1::jsonb) WITH ORDINALITY AS r";
        case Stmt::AmendOrder:
            // Every version's amend_order (0.14's takes stop_price as a fifth argument, DEFAULT NULL).
            return "SELECT " + order_cols +
                   " FROM exchange.amend_order($1::uuid, $2::numeric, $3::numeric, $4)";
        case Stmt::AmendOrderStop:  // extension 0.14: $5, a pending stop order's new stop price
            return "SELECT " + order_cols +
                   " FROM exchange.amend_order($1::uuid, $2::numeric, $3::numeric, $4, $5::numeric)";
        case Stmt::Orderbook:
            return "SELECT exchange.book_snapshot($1, $2::int)::text";
        case Stmt::OrderbookAt: {
            // exchange.orderbook_at's rows (0.11) in book_snapshot's shape, with the sequence asked for.
            auto side = [](const char* which) {
                return "coalesce(jsonb_agg(jsonb_build_object('price', b.price::text, "
                       "'quantity', b.quantity::text, 'order_count', b.order_count) ORDER BY b.n) "
                       "FILTER (WHERE b.side = '" +
                       std::string(which) + "'), '[]')";
            };
            return "SELECT jsonb_build_object('instrument', $1::text, 'seq', $2::bigint, 'bids', " +
                   side("buy") + ", 'asks', " + side("sell") +
                   ")::text FROM exchange.orderbook_at($1, $2::bigint, $3::int) WITH ORDINALITY "
                   "AS b(side, price, quantity, order_count, n)";
        }
        case Stmt::RecentTrades:
        case Stmt::RecentTradesBefore:  // extension 0.11: the trades older than $3
            return std::string(kTradeColumns) + (s == Stmt::RecentTrades
                                                     ? "FROM exchange.recent_trades($1, $2::int)"
                                                     : "FROM exchange.recent_trades($1, $2::int, $3::uuid)");
        case Stmt::TradeStats:
            return "SELECT symbol, trade_count, volume::text, notional::text, vwap::text, open::text, "
                   "high::text, low::text, close::text FROM exchange.trade_stats($1, $2::int)";
        case Stmt::Candles:
            // $2: the width in seconds; $3, $4: since and until (NULL: the function's defaults).
            return "SELECT to_json(bucket) #>> '{}', open::text, high::text, low::text, close::text, "
                   "volume::text, notional::text, trade_count FROM exchange.candles($1, "
                   "make_interval(secs => $2::int), $3::timestamptz, $4::timestamptz, $5::int)";
        case Stmt::Settlement:
            // Extension 0.16: one client's ($2) positions on a settled trade date ($1), on one instrument
            // when $3 is not NULL, in the function's order (by instrument); every quantity and notional as
            // PostgreSQL prints it.
            return "SELECT instrument, bought_quantity::text, bought_notional::text, sold_quantity::text, "
                   "sold_notional::text, net_quantity::text, net_notional::text, maker_quantity::text, "
                   "taker_quantity::text, trade_count FROM exchange.settlement($1::date, $2, $3)";
        case Stmt::PlaceTwap:
            // Extension 0.18: $5 the duration in whole seconds; $6 slices, $7 price, $8 start_at and $9 the
            // idempotency key NULL when not given (the function's defaults).
            return std::string(kTwapColumns) +
                   "FROM exchange.place_twap($1, $2, $3, $4::numeric, make_interval(secs => $5::int), "
                   "$6::int, $7::numeric, $8::timestamptz, $9)";
        case Stmt::GetTwap:
            return std::string(kTwapColumns) + "FROM exchange.get_twap($1::uuid)";
        case Stmt::ListTwaps:
            return std::string(kTwapColumns) + "FROM exchange.list_twaps($1, $2, $3::int)";
        case Stmt::CancelTwap:
            return std::string(kTwapColumns) + "FROM exchange.cancel_twap($1::uuid, $2)";
        case Stmt::TwapOrders:  // the TWAP's child orders, oldest first
            return "SELECT " + order_cols + " FROM exchange.twap_orders($1::uuid)";
        case Stmt::Snapshot:
            return "SELECT exchange.snapshot($1)";
        case Stmt::ListInstruments:
            return "SELECT symbol, tick_size::text, lot_size::text, min_quantity::text, status, "
                   "to_json(created_at) #>> '{}' FROM exchange.list_instruments() ORDER BY symbol";
        case Stmt::Ready:
            return "SELECT count(*) FROM exchange.list_instruments()";
        case Stmt::Depth:
            return "SELECT i.symbol, b.side, sum(b.order_count)::bigint FROM exchange.list_instruments() i "
                   "CROSS JOIN LATERAL exchange.orderbook(i.symbol, 2147483647) b GROUP BY 1, 2";
        case Stmt::Authenticate:
            return "SELECT exchange.authenticate($1)";
        case Stmt::Count:
            break;
    }
    throw std::logic_error("unknown statement");
}

// An idle connection never has anything to read unless the server has closed
// it (a restart sends a FATAL message and EOF). Checking before a statement is
// sent lets the worker reconnect instead of failing a request it could have served.
bool closed_while_idle(int fd) {
    if (fd < 0) return true;
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, 0) != 0;
}

// Before extension 0.9 cancel_orders takes one client: one call per client, all in one statement
// (two such statements can deadlock on two instruments: PostgreSQL detects it after
// deadlock_timeout, and the pool then cancels the batch's orders one by one).
std::string cancel_orders_per_client_sql(const std::string& order_cols) {
    return "SELECT " + order_cols +
           ", g.positions[r.ordinality] FROM (SELECT i->>'client' AS owner, "
           "array_agg((i->>'id')::uuid ORDER BY n) AS ids, array_agg(n ORDER BY n) AS positions "
           "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS items(i, n) GROUP BY 1) g "
           "CROSS JOIN LATERAL exchange.cancel_orders(g.ids, g.owner) WITH ORDINALITY AS r "
           "ORDER BY g.positions[r.ordinality]";
}

// The statements that read order_result rows (order_columns()).
bool reads_orders(Stmt s) {
    switch (s) {
        case Stmt::PlaceOrders:
        case Stmt::GetOrder:
        case Stmt::ListOrders:
        case Stmt::ListOrdersBefore:
        case Stmt::CancelOrder:
        case Stmt::CancelOrders:
        case Stmt::CancelAllOrders:
        case Stmt::AmendOrders:
        case Stmt::AmendOrder:
        case Stmt::AmendOrderStop:
        case Stmt::TwapOrders:
            return true;
        default:
            return false;
    }
}

}  // namespace

DbSession::DbSession(std::string conninfo, std::atomic<int>& connected, int lock_timeout_ms)
    : conninfo_(std::move(conninfo)), lock_timeout_ms_(lock_timeout_ms), connected_(connected) {}

DbSession::~DbSession() {
    drop();
}

std::string DbSession::name(Stmt s) {
    return "pgx_" + std::to_string(static_cast<int>(s));
}

void DbSession::drop() {
    if (!conn_) return;
    conn_.reset();
    prepared_.reset();
    display_quantity_.reset();
    stop_price_.reset();
    amend_stop_price_ = false;
    --connected_;
    retry_at_ = std::chrono::steady_clock::now() + kReconnectPause;
}

pqxx::connection& DbSession::connection() {
    if (conn_ && closed_while_idle(conn_->sock())) {
        spdlog::info("database closed an idle connection, reconnecting");
        drop();
        retry_at_ = {};
    }
    if (conn_) return *conn_;
    auto now = std::chrono::steady_clock::now();
    // The pause spares an unreachable server; once another worker got through, it is back.
    if (now < retry_at_ && connected_.load() == 0) throw pqxx::broken_connection("the database is unreachable");
    try {
        auto c = std::make_unique<pqxx::connection>(conninfo_);
        pqxx::nontransaction tx(*c);
        // A transaction holding an instrument (a psql session, say) delays this worker's statements at
        // most lock_timeout: the batch then fails with 55P03 and its orders get 503 instrument_busy.
        tx.exec("SET application_name = 'pgx-frontend'; SET statement_timeout = '10s'; SET lock_timeout = " +
                std::to_string(lock_timeout_ms_));
        conn_ = std::move(c);
        ++connected_;
        spdlog::info("database connection opened");
    } catch (const std::exception& e) {
        retry_at_ = now + kReconnectPause;
        std::string what = e.what();
        spdlog::warn("database connection failed: {}", what.substr(0, what.find('\n')));
        throw pqxx::broken_connection("the database is unreachable");
    }
    return *conn_;
}

void DbSession::prepare(pqxx::connection& c, Stmt s) {
    auto i = static_cast<std::size_t>(s);
    if (prepared_[i]) return;
    const std::string order_cols = reads_orders(s) ? order_columns_of(c) : std::string();
    std::string sql = sql_of(s, order_cols);
    if (s == Stmt::CancelOrders) {
        pqxx::nontransaction tx(c);
        if (tx.exec("SELECT to_regprocedure('exchange.cancel_orders(uuid[], text[])') IS NULL")[0][0].as<bool>())
            sql = cancel_orders_per_client_sql(order_cols);
    }
    c.prepare(name(s), sql);
    prepared_[i] = true;
}

bool DbSession::amends_stop_price() {
    if (amend_stop_price_) return true;
    pqxx::connection& c = connection();
    try {
        pqxx::nontransaction tx(c);
        amend_stop_price_ =
            tx.exec(
                  "SELECT to_regprocedure('exchange.amend_order(uuid, numeric, numeric, text, numeric)') "
                  "IS NOT NULL")[0][0]
                .as<bool>();
    } catch (const std::exception& e) {
        if (is_connection_failure(e)) drop();
        throw;
    }
    return amend_stop_price_;
}

std::string DbSession::order_columns_of(pqxx::connection& c) {
    if (display_quantity_ && stop_price_) return order_columns(*display_quantity_, *stop_price_);
    // Before extension 0.12 order_result has no display_quantity, before 0.13 no stop_price: the order
    // statements read NULL in their place (selecting them would fail them with 42703).
    pqxx::nontransaction tx(c);
    pqxx::row r = tx.exec(
        "SELECT to_regclass('exchange.order_result') IS NOT NULL, "
        "EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('exchange.order_result') "
        "AND attname = 'display_quantity' AND NOT attisdropped), "
        "EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('exchange.order_result') "
        "AND attname = 'stop_price' AND NOT attisdropped)")[0];
    // No extension yet: nothing to remember (the statement fails without it anyway).
    if (!r[0].as<bool>()) return order_columns(true, true);
    display_quantity_ = r[1].as<bool>();
    stop_price_ = r[2].as<bool>();
    return order_columns(*display_quantity_, *stop_price_);
}

}  // namespace pgx
