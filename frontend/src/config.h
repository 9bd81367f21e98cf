// Process configuration: command-line flags with environment fallbacks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pgx {

struct Config {
    std::string db = "host=127.0.0.1 port=15432 user=postgres dbname=postgres";
    std::string http_host = "127.0.0.1";
    uint16_t http_port = 8000;
    int http_threads = 2;
    uint16_t ws_port = 8001;
    int ws_threads = 1;
    int ws_ping_interval_ms = 15000;  // silence before a ping; no pong within the same again closes
    std::size_t ws_max_connections = 10000;
    std::size_t ws_max_queue_bytes = 4u << 20;  // per client; a client further behind is disconnected
    std::size_t ws_max_message_bytes = 64u << 10;  // largest client message; larger closes with 1009
    int ws_max_messages_per_second = 50;           // per client, bursts of twice as many
    int feed_poll_ms = 10;  // on a standby (LISTEN refused): how often the feed reads the journal heads
    bool auth = true;                 // API keys on trading routes and the orders channel (--no-auth: off)
    int auth_cache_ms = 5000;         // how long a key's answer is reused (a revocation takes this long)
    std::size_t http_max_connections = 4096;
    std::size_t http_max_queued_bytes = 64u << 20;  // answers a REST client has not read; beyond: closed
    std::size_t max_header_bytes = 8192;  // request line target and headers
    std::string redis = "127.0.0.1:6379";  // host:port, empty disables Redis
    int rate_limit = 100;                  // requests per minute per client_id, 0 disables
    int db_workers = 4;
    int batch_max = 256;
    int batch_wait_us = 200;
    int lock_timeout_ms = 1000;  // longest wait of a worker's statement for a lock (0: no limit)
    int twap_tick_ms = 1000;  // how often exchange.run_twaps() places the TWAPs' due child orders (0: never)
    std::size_t max_body_bytes = 64 * 1024;
    int shutdown_timeout_ms = 10000;
    std::string log_level = "info";

    std::string redis_host() const;
    int redis_port() const;
};

// Parses argv (and PGX_* environment variables); exits the process on --help or a bad flag.
Config parse_config(int argc, char** argv);

}  // namespace pgx
