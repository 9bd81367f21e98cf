#include "metrics.h"

#include <prometheus/text_serializer.h>

#include <cstdio>
#include <sstream>

namespace pgx {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

const Histogram::BucketBoundaries kLatencyBuckets{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                                  0.1,    0.2,   0.5,   1,     2,    5};
const Histogram::BucketBoundaries kBatchBuckets{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

void add_delta(prometheus::Counter& c, uint64_t now, uint64_t& seen) {
    if (now > seen) c.Increment(static_cast<double>(now - seen));
    seen = now;
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      orders_received_(BuildCounter()
                           .Name("orders_received_total")
                           .Help("Orders that reached the matching engine")
                           .Register(*registry_)),
      orders_matched_(BuildCounter()
                          .Name("orders_matched_total")
                          .Help("Orders that traded on entry")
                          .Register(*registry_)),
      orders_rejected_(BuildCounter()
                           .Name("orders_rejected_total")
                           .Help("Orders rejected, by reason")
                           .Register(*registry_)),
      trades_(BuildCounter().Name("trades_total").Help("Trades executed").Register(*registry_)),
      order_latency_(BuildHistogram()
                         .Name("order_latency_seconds")
                         .Help("POST /orders: request parsed to response sent")
                         .Register(*registry_)),
      orderbook_depth_(
          BuildGauge().Name("current_orderbook_depth").Help("Resting orders per side").Register(*registry_)),
      http_requests_(
          BuildCounter().Name("http_requests_total").Help("HTTP requests answered").Register(*registry_)),
      http_duration_(BuildHistogram()
                         .Name("http_request_duration_seconds")
                         .Help("HTTP request latency by route")
                         .Register(*registry_)),
      db_connected_(BuildGauge()
                        .Name("db_pool_connections")
                        .Help("Database connections of the worker pool")
                        .Register(*registry_)
                        .Add({{"state", "connected"}})),
      db_total_(BuildGauge()
                    .Name("db_pool_size")
                    .Help("Database worker threads (one connection each)")
                    .Register(*registry_)
                    .Add({})),
      db_queued_(BuildGauge()
                     .Name("db_pool_queued_orders")
                     .Help("Orders waiting for a database worker's next batch")
                     .Register(*registry_)
                     .Add({})),
      batch_size_(BuildHistogram()
                      .Name("group_commit_batch_size")
                      .Help("Orders per place_orders transaction")
                      .Register(*registry_)
                      .Add({}, kBatchBuckets)),
      cancel_batch_size_(BuildHistogram()
                             .Name("cancel_batch_size")
                             .Help("Cancels per statement: a cancel_orders batch that committed, "
                                   "or 1 for a cancel_order alone")
                             .Register(*registry_)
                             .Add({}, kBatchBuckets)),
      amend_batch_size_(BuildHistogram()
                            .Name("amend_batch_size")
                            .Help("Amends per statement: an amend_orders batch that committed, "
                                  "or 1 for an amend_order alone")
                            .Register(*registry_)
                            .Add({}, kBatchBuckets)),
      redis_errors_(BuildCounter()
                        .Name("redis_errors_total")
                        .Help("Redis calls that failed (the frontend fell back)")
                        .Register(*registry_)
                        .Add({})),
      twap_child_orders_(
          BuildCounter()
              .Name("twap_child_orders_total")
              .Help("Child orders of TWAPs placed by this process's ticker (exchange.run_twaps)")
              .Register(*registry_)
              .Add({})),
      http_answers_queued_(BuildCounter()
                               .Name("http_answers_queued_total")
                               .Help("HTTP answers the socket could not take whole (a client not reading): "
                                     "the rest waited in the connection's queue")
                               .Register(*registry_)
                               .Add({})),
      websocket_connections_(BuildGauge()
                                 .Name("websocket_connections")
                                 .Help("Open WebSocket connections")
                                 .Register(*registry_)
                                 .Add({})),
      notify_lag_(BuildGauge()
                      .Name("notify_lag_seconds")
                      .Help("Journal commit to WebSocket fan-out, the last entries read (of instruments a "
                            "client follows)")
                      .Register(*registry_)
                      .Add({})),
      ws_messages_(BuildCounter()
                       .Name("websocket_messages_sent_total")
                       .Help("WebSocket messages sent")
                       .Register(*registry_)
                       .Add({})),
      ws_slow_disconnects_(BuildCounter()
                               .Name("websocket_slow_disconnects_total")
                               .Help("WebSocket clients disconnected for falling behind")
                               .Register(*registry_)
                               .Add({})),
      ws_listen_reconnects_(BuildCounter()
                                .Name("feed_listen_reconnects_total")
                                .Help("Reconnections of the feed's LISTEN connection")
                                .Register(*registry_)
                                .Add({})),
      ws_notifications_(BuildCounter()
                            .Name("feed_notifications_total")
                            .Help("NOTIFY messages received by the feed")
                            .Register(*registry_)
                            .Add({})),
      ws_entries_read_(BuildCounter()
                           .Name("feed_journal_entries_read_total")
                           .Help("Journal entries the feed read (of instruments a WebSocket client follows)")
                           .Register(*registry_)
                           .Add({})) {}

namespace {

// The labels' values joined by NULs (which no label here contains: routes are patterns, methods and
// statuses fixed, instruments the database's): the key of a label set.
template <typename... Parts>
std::string series_key(const Parts&... parts) {
    std::string key;
    ((key.append(parts.data(), parts.size()), key.push_back('\0')), ...);
    return key;
}

}  // namespace

void Metrics::http_request(std::string_view route, std::string_view method, int status, double seconds) {
    char digits[12];
    const int n = std::snprintf(digits, sizeof digits, "%d", status);
    const std::string_view code(digits, static_cast<std::size_t>(n));
    HttpSeries series;
    {
        std::lock_guard<std::mutex> lock(series_mu_);
        auto [it, added] = http_series_.try_emplace(series_key(route, method, code));
        if (added) {
            it->second.requests = &http_requests_.Add({{"route", std::string(route)},
                                                       {"method", std::string(method)},
                                                       {"status", std::string(code)}});
            it->second.duration = &http_duration_.Add({{"route", std::string(route)}}, kLatencyBuckets);
        }
        series = it->second;
    }
    series.requests->Increment();
    series.duration->Observe(seconds);
}

void Metrics::order_result(std::string_view instrument, std::string_view type, std::string_view side,
                           std::string_view status, std::string_view reject_reason, std::size_t trades,
                           bool matched, double seconds) {
    OrderSeries series;
    {
        std::lock_guard<std::mutex> lock(series_mu_);
        auto [it, added] = order_series_.try_emplace(series_key(instrument, type, side));
        OrderSeries& s = it->second;
        if (added) {
            s.received = &orders_received_.Add({{"instrument", std::string(instrument)},
                                                {"type", std::string(type)},
                                                {"side", std::string(side)}});
            s.latency = &order_latency_.Add(
                {{"instrument", std::string(instrument)}, {"type", std::string(type)}}, kLatencyBuckets);
        }
        if (matched && !s.matched)
            s.matched = &orders_matched_.Add({{"instrument", std::string(instrument)}});
        if (trades && !s.trades) s.trades = &trades_.Add({{"instrument", std::string(instrument)}});
        series = s;
    }
    series.received->Increment();
    if (status == "rejected")
        orders_rejected_
            .Add({{"instrument", std::string(instrument)}, {"reason", std::string(reject_reason)}})
            .Increment();
    if (matched) series.matched->Increment();
    if (trades) series.trades->Increment(static_cast<double>(trades));
    series.latency->Observe(seconds);
}

void Metrics::order_refused(const std::string& reason) {
    // Not a known instrument yet: a client-chosen label would let anyone grow the series without bound.
    orders_rejected_.Add({{"instrument", ""}, {"reason", reason}}).Increment();
}

void Metrics::batch(std::size_t size) {
    batch_size_.Observe(static_cast<double>(size));
}

void Metrics::cancel_batch(std::size_t size) {
    cancel_batch_size_.Observe(static_cast<double>(size));
}

void Metrics::amend_batch(std::size_t size) {
    amend_batch_size_.Observe(static_cast<double>(size));
}

void Metrics::redis_error() {
    redis_errors_.Increment();
}

void Metrics::twap_child_orders(std::size_t n) {
    twap_child_orders_.Increment(static_cast<double>(n));
}

void Metrics::http_answer_queued() {
    http_answers_queued_.Increment();
}

void Metrics::db_connections(int connected, int total, std::size_t queued_orders) {
    db_connected_.Set(connected);
    db_total_.Set(total);
    db_queued_.Set(static_cast<double>(queued_orders));
}

void Metrics::orderbook_depth(const std::string& instrument, const std::string& side, double orders) {
    orderbook_depth_.Add({{"instrument", instrument}, {"side", side}}).Set(orders);
}

std::string Metrics::render(const pgx::feed::Stats& feed) {
    {
        std::lock_guard<std::mutex> lock(feed_mu_);
        websocket_connections_.Set(static_cast<double>(feed.connections));
        notify_lag_.Set(static_cast<double>(feed.last_notify_lag_us) / 1e6);
        add_delta(ws_messages_, feed.messages_sent, feed_seen_.messages_sent);
        add_delta(ws_slow_disconnects_, feed.slow_disconnects, feed_seen_.slow_disconnects);
        add_delta(ws_listen_reconnects_, feed.listen_reconnects, feed_seen_.listen_reconnects);
        add_delta(ws_notifications_, feed.notifications, feed_seen_.notifications);
        add_delta(ws_entries_read_, feed.journal_entries_read, feed_seen_.journal_entries_read);
    }
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry_->Collect());
    return out.str();
}

}  // namespace pgx
