// pgx-frontend: the REST API (Pistache) and the WebSocket feed of pgexchange.
// SIGTERM/SIGINT: stop taking requests, answer those in flight, stop the
// feed, close the database connections, exit 0.
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <memory>

#include "auth.h"
#include "config.h"
#include "db_pool.h"
#include "feed.h"
#include "http_server.h"
#include "metrics.h"
#include "routes.h"
#include "twap_ticker.h"

int main(int argc, char** argv) {
    pgx::Config config = pgx::parse_config(argc, argv);
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%t] %v");
    // Every connection is a file descriptor: allow as many as the hard limit does.
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    // A dead database must show up as a fast 503, not as requests stuck in connect().
    setenv("PGCONNECT_TIMEOUT", "2", 0);

    // Every thread started below inherits this mask, so only sigwait() sees the signals.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    pgx::Metrics metrics;
    pgx::DbPool pool(config, metrics);
    pgx::feed::Config feed_config;
    feed_config.conninfo = config.db;
    feed_config.host = config.http_host;
    feed_config.port = config.ws_port;
    feed_config.threads = config.ws_threads;
    feed_config.ping_interval_ms = config.ws_ping_interval_ms;
    feed_config.max_connections = config.ws_max_connections;
    feed_config.max_client_queue_bytes = config.ws_max_queue_bytes;
    feed_config.max_message_bytes = config.ws_max_message_bytes;
    feed_config.max_messages_per_second = config.ws_max_messages_per_second;
    feed_config.poll_interval_ms = config.feed_poll_ms;
    std::unique_ptr<pgx::ApiKeys> keys;
    if (config.auth) {
        keys = std::make_unique<pgx::ApiKeys>(pool, std::chrono::milliseconds(config.auth_cache_ms));
        feed_config.auth = true;
        feed_config.authenticate = [&keys](const std::string& key,
                                           std::function<void(int, std::string)> done) {
            auto answer = [done](pgx::AuthResult r) { done(r.status, std::move(r.client)); };
            if (auto known = keys->cached(key)) return answer(std::move(*known));
            keys->resolve(key, answer);
        };
    } else {
        spdlog::warn("authentication is off (--no-auth): any client may act as any client_id");
    }
    pgx::feed::Server feed(feed_config);
    pgx::HttpServer http(config, pgx::api_routes(pool, metrics, feed), metrics, keys.get());
    pgx::TwapTicker twaps(config, metrics);

    pool.start();
    try {
        feed.start();
        spdlog::info("websocket feed on {}:{}", config.http_host, config.ws_port);
    } catch (const std::exception& e) {
        spdlog::error("cannot serve the websocket feed on {}:{}: {}", config.http_host, config.ws_port, e.what());
        pool.stop();
        return 1;
    }
    try {
        http.start();
    } catch (const std::exception& e) {
        spdlog::error("cannot serve on {}:{}: {}", config.http_host, config.http_port, e.what());
        feed.stop();
        pool.stop();
        return 1;
    }
    spdlog::info(
        "REST on {}:{} ({} database workers, batches of up to {} orders, {} us wait, rate limit {}/min, "
        "redis {}, API keys {})",
        config.http_host, config.http_port, config.db_workers, config.batch_max, config.batch_wait_us,
        config.rate_limit, config.redis.empty() ? "off" : config.redis, config.auth ? "required" : "off");
    twaps.start();

    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("signal {}: draining", sig);
    http.drain();
    twaps.stop();  // no child order is placed once the process is stopping
    if (!http.wait_idle(std::chrono::milliseconds(config.shutdown_timeout_ms)))
        spdlog::warn("requests still in flight after {} ms, stopping anyway", config.shutdown_timeout_ms);
    feed.stop();
    http.stop();
    pool.stop();
    spdlog::info("stopped");
    return 0;
}
