#include "config.h"

#include <CLI/CLI.hpp>
#include <cstdlib>

namespace pgx {

std::string Config::redis_host() const {
    return redis.substr(0, redis.rfind(':'));
}

int Config::redis_port() const {
    return std::stoi(redis.substr(redis.rfind(':') + 1));
}

Config parse_config(int argc, char** argv) {
    Config c;
    CLI::App app{"pgx-frontend: REST and WebSocket frontend of pgexchange"};
    app.add_option("--db", c.db, "libpq conninfo of the exchange database")->envname("PGX_DB");
    app.add_option("--http-host", c.http_host, "REST listen address")->envname("PGX_HTTP_HOST");
    app.add_option("--http-port", c.http_port, "REST port")->envname("PGX_HTTP_PORT");
    app.add_option("--http-threads", c.http_threads, "Pistache reactor threads")
        ->envname("PGX_HTTP_THREADS")
        ->check(CLI::Range(1, 64));
    app.add_option("--ws-port", c.ws_port, "WebSocket feed port")->envname("PGX_WS_PORT");
    app.add_option("--ws-threads", c.ws_threads, "WebSocket I/O threads")
        ->envname("PGX_WS_THREADS")
        ->check(CLI::Range(1, 64));
    app.add_option("--ws-ping-interval-ms", c.ws_ping_interval_ms,
                   "silence before the feed pings a client; no answer within as long again closes it")
        ->envname("PGX_WS_PING_INTERVAL_MS")
        ->check(CLI::Range(100, 3600000));
    app.add_option("--ws-max-connections", c.ws_max_connections, "WebSocket clients at once (more get 503)")
        ->envname("PGX_WS_MAX_CONNECTIONS")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
    app.add_option("--ws-max-queue-bytes", c.ws_max_queue_bytes,
                   "unsent bytes a WebSocket client may fall behind before it is disconnected")
        ->envname("PGX_WS_MAX_QUEUE_BYTES")
        ->check(CLI::Range(std::size_t{64} << 10, std::size_t{1} << 30));
    app.add_option("--ws-max-message-bytes", c.ws_max_message_bytes,
                   "largest WebSocket message a client may send (larger closes the connection with 1009)")
        ->envname("PGX_WS_MAX_MESSAGE_BYTES")
        ->check(CLI::Range(std::size_t{256}, std::size_t{16} << 20));
    app.add_option("--ws-max-messages-per-second", c.ws_max_messages_per_second,
                   "WebSocket messages a client may send per second (bursts of twice as many)")
        ->envname("PGX_WS_MAX_MESSAGES_PER_SECOND")
        ->check(CLI::Range(1, 100000));
    app.add_option("--feed-poll-ms", c.feed_poll_ms,
                   "on a standby, which refuses LISTEN: how often the feed reads the journal for new entries")
        ->envname("PGX_FEED_POLL_MS")
        ->check(CLI::Range(1, 60000));
    bool no_auth = false;
    app.add_flag("--no-auth", no_auth,
                 "no API keys: trading routes take client_id from the request and the orders channel is "
                 "public (benchmarks and trusted networks only)")
        ->envname("PGX_NO_AUTH");
    app.add_option("--auth-cache-ms", c.auth_cache_ms,
                   "how long an API key check is reused; a revoked key works this much longer (0: no cache)")
        ->envname("PGX_AUTH_CACHE_MS")
        ->check(CLI::Range(0, 3600000));
    app.add_option("--http-max-connections", c.http_max_connections,
                   "open REST connections at once (more are closed at once)")
        ->envname("PGX_HTTP_MAX_CONNECTIONS")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
    app.add_option("--http-max-queued-bytes", c.http_max_queued_bytes,
                   "answers waiting for one REST client to read them; a connection further behind is closed")
        ->envname("PGX_HTTP_MAX_QUEUED_BYTES")
        ->check(CLI::Range(std::size_t{1} << 16, std::size_t{1} << 34));
    app.add_option("--max-header-bytes", c.max_header_bytes, "largest request target plus headers (431 beyond)")
        ->envname("PGX_MAX_HEADER_BYTES")
        ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 20));
    app.add_option("--redis", c.redis, "Redis host:port for idempotency and rate limits (\"\" disables)")
        ->envname("PGX_REDIS");
    app.add_option("--rate-limit", c.rate_limit, "requests per minute per client_id (0 disables)")
        ->envname("PGX_RATE_LIMIT")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--db-workers", c.db_workers, "database connections (worker threads)")
        ->envname("PGX_DB_WORKERS")
        ->check(CLI::Range(1, 256));
    app.add_option("--batch-max", c.batch_max, "most orders in one place_orders call")
        ->envname("PGX_BATCH_MAX")
        ->check(CLI::Range(1, 10000));
    app.add_option("--batch-wait-us", c.batch_wait_us, "longest wait for a batch to fill (microseconds)")
        ->envname("PGX_BATCH_WAIT_US")
        ->check(CLI::Range(0, 100000));
    app.add_option("--lock-timeout-ms", c.lock_timeout_ms,
                   "longest wait for an instrument another transaction holds (503 instrument_busy; 0: no limit)")
        ->envname("PGX_LOCK_TIMEOUT_MS")
        ->check(CLI::Range(0, 10000));
    app.add_option("--twap-tick-ms", c.twap_tick_ms,
                   "how often to place the TWAP orders' due child orders (exchange.run_twaps; 0: never)")
        ->envname("PGX_TWAP_TICK_MS")
        ->check(CLI::Range(0, 3600000));
    app.add_option("--max-body-bytes", c.max_body_bytes, "largest accepted request body")
        ->envname("PGX_MAX_BODY_BYTES")
        ->check(CLI::Range(std::size_t{256}, std::size_t{16} << 20));
    app.add_option("--shutdown-timeout-ms", c.shutdown_timeout_ms,
                   "longest wait for in-flight requests on SIGTERM")
        ->envname("PGX_SHUTDOWN_TIMEOUT_MS")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
        ->envname("PGX_LOG_LEVEL")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    try {
        app.parse(argc, argv);
        c.auth = !no_auth;
        if (!c.redis.empty()) {
            auto colon = c.redis.rfind(':');
            if (colon == std::string::npos || colon == 0)
                throw CLI::ValidationError("--redis", "expected host:port");
            int port = std::stoi(c.redis.substr(colon + 1));
            if (port <= 0 || port > 65535) throw CLI::ValidationError("--redis", "port out of range");
        }
    } catch (const CLI::ParseError& e) {
        std::exit(app.exit(e));
    } catch (const std::exception& e) {
        std::exit(app.exit(CLI::ValidationError("--redis", e.what())));
    }
    return c;
}

}  // namespace pgx
