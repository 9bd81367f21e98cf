// The WebSocket market-data feed: one LISTEN connection per process on
// channel exchange_events (on a standby, which refuses LISTEN, it polls the
// journal heads instead), fan-out to subscribed clients on its own port.
// Owned by frontend/src/feed/; the REST process (frontend/src/main.cpp)
// creates one Server, starts it, reads stats() for /metrics, stops it on
// SIGTERM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace pgx::feed {

struct Config {
    std::string conninfo;  // libpq conninfo: LISTEN and journal reads
    std::string host = "127.0.0.1";
    uint16_t port = 8001;
    int threads = 1;                                // I/O threads
    std::size_t max_client_queue_bytes = 4u << 20;  // a slower client is disconnected
    std::size_t max_message_bytes = 64u << 10;      // largest inbound client message
    int ping_interval_ms = 15000;
    std::size_t max_connections = 10000;
    // A resume further back than this, or whose messages would fill more than
    // half of max_client_queue_bytes (by the entries' estimated size: the
    // row's text, journal.h), gets a snapshot instead.
    int64_t max_replay_entries = 10000;
    // Kernel send buffer per client (0: the kernel's autotuning, up to
    // net.ipv4.tcp_wmem's maximum): part of what a slow client can hold.
    int socket_send_buffer_bytes = 256 << 10;
    int max_messages_per_second = 50;  // per client, bursts of twice as many; beyond: error, then close
    // Where LISTEN is refused (a standby): the journal heads are read this often instead.
    int poll_interval_ms = 10;
    // With auth, the orders channel carries only the connected API key's own
    // orders (none without a key); a key is given when connecting (X-API-Key,
    // Authorization: Bearer, or ?api_key=). `authenticate` checks one and calls
    // done(status, client_id) once from any thread: 200 valid, 401 not, 503
    // the database could not say.
    bool auth = false;
    std::function<void(const std::string& key, std::function<void(int status, std::string client)> done)>
        authenticate;
};

struct Stats {
    uint64_t connections = 0;           // open now
    uint64_t messages_sent = 0;         // total
    uint64_t slow_disconnects = 0;      // total
    uint64_t listen_reconnects = 0;     // total
    uint64_t notifications = 0;         // total NOTIFYs received
    uint64_t journal_entries_read = 0;  // total, by the LISTEN thread (followed instruments only)
    uint64_t last_notify_lag_us = 0;    // journal created_at to fan-out, last entries read
};

class Server {
public:
    explicit Server(Config config);
    ~Server();  // stop()
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    void start();  // binds and starts threads; throws std::runtime_error on failure
    void stop();   // closes clients (1001 going away), joins threads; idempotent
    Stats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace pgx::feed
