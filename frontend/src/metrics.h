// The Prometheus metrics of the process (names and labels from the design,
// plus HTTP, database pool, group commit, NOTIFY lag and Redis) and their
// text exposition for GET /metrics.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "feed.h"

namespace pgx {

class Metrics {
public:
    Metrics();

    void http_request(std::string_view route, std::string_view method, int status, double seconds);
    // One answered POST /orders whose item reached the engine or was refused by it.
    void order_result(std::string_view instrument, std::string_view type, std::string_view side,
                      std::string_view status, std::string_view reject_reason, std::size_t trades,
                      bool matched, double seconds);
    // A POST /orders refused before it reached the engine (validation, 429, 503 ...).
    void order_refused(const std::string& reason);
    void batch(std::size_t size);
    void cancel_batch(std::size_t size);
    void amend_batch(std::size_t size);
    void redis_error();
    // Child orders the TWAP ticker's exchange.run_twaps() calls placed.
    void twap_child_orders(std::size_t n);
    // An HTTP answer the socket could not take whole: the rest waits in the connection's queue.
    void http_answer_queued();
    void db_connections(int connected, int total, std::size_t queued_orders);
    void orderbook_depth(const std::string& instrument, const std::string& side, double orders);

    // The text exposition, with the feed's counters copied in first.
    std::string render(const pgx::feed::Stats& feed);

private:
    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter>& orders_received_;
    prometheus::Family<prometheus::Counter>& orders_matched_;
    prometheus::Family<prometheus::Counter>& orders_rejected_;
    prometheus::Family<prometheus::Counter>& trades_;
    prometheus::Family<prometheus::Histogram>& order_latency_;
    prometheus::Family<prometheus::Gauge>& orderbook_depth_;
    prometheus::Family<prometheus::Counter>& http_requests_;
    prometheus::Family<prometheus::Histogram>& http_duration_;
    prometheus::Gauge& db_connected_;
    prometheus::Gauge& db_total_;
    prometheus::Gauge& db_queued_;
    prometheus::Histogram& batch_size_;
    prometheus::Histogram& cancel_batch_size_;
    prometheus::Histogram& amend_batch_size_;
    prometheus::Counter& redis_errors_;
    prometheus::Counter& twap_child_orders_;
    prometheus::Counter& http_answers_queued_;
    prometheus::Gauge& websocket_connections_;
    prometheus::Gauge& notify_lag_;
    prometheus::Counter& ws_messages_;
    prometheus::Counter& ws_slow_disconnects_;
    prometheus::Counter& ws_listen_reconnects_;
    prometheus::Counter& ws_notifications_;
    prometheus::Counter& ws_entries_read_;

    // The series of a label set, found once: Family::Add builds a label map, hashes it and takes the
    // family's lock on every call (~1.6 us per order in two calls, 5% of the frontend's CPU at 20,000
    // orders/s). Series are never removed, so the pointers stay valid.
    struct HttpSeries {
        prometheus::Counter* requests;
        prometheus::Histogram* duration;
    };
    struct OrderSeries {
        prometheus::Counter* received;
        prometheus::Histogram* latency;
        prometheus::Counter* matched = nullptr;  // made when the instrument's first order trades, as before
        prometheus::Counter* trades = nullptr;
    };
    std::mutex series_mu_;
    std::unordered_map<std::string, HttpSeries> http_series_;    // route, method, status
    std::unordered_map<std::string, OrderSeries> order_series_;  // instrument, type, side

    std::mutex feed_mu_;  // the feed's totals are copied in as deltas
    pgx::feed::Stats feed_seen_{};
};

}  // namespace pgx
