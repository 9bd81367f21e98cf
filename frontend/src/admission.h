// Admission of a request before it reaches the database: the per-client rate
// limit and the idempotency fast path, both through Redis (one round trip per
// batch), with an in-process rate limit while Redis is unreachable.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "redis_client.h"
#include "reply.h"

namespace pgx {

class Metrics;

struct RateDecision {
    bool allowed = true;
    int limit = 0;  // 0: no limit configured (no headers)
    int remaining = 0;
    int retry_after_s = 0;
};

// Adds X-RateLimit-* (and Retry-After when refused) to a reply.
void add_rate_headers(Reply& r, const RateDecision& d);
Reply rate_limited_reply(const RateDecision& d);

// Fixed one-minute windows per client in this process only (the Redis fallback).
class LocalRateLimiter {
public:
    explicit LocalRateLimiter(int per_minute) : limit_(per_minute) {}
    RateDecision hit(const std::string& client_id);

private:
    struct Window {
        std::chrono::steady_clock::time_point start;
        int count;
    };
    int limit_;
    std::mutex mu_;
    std::unordered_map<std::string, Window> windows_;
};

struct AdmitRequest {
    std::string client_id;  // empty: not rate limited
    std::optional<std::string> idempotency_key;
};

struct Admission {
    RateDecision rate;
    std::optional<std::string> cached_order_id;  // from Redis; the database stays the truth
};

// One per database worker (each owns its Redis connection).
class Gate {
public:
    Gate(const std::string& redis_host, int redis_port, int per_minute, LocalRateLimiter& local,
         Metrics& metrics);

    std::vector<Admission> admit(const std::vector<AdmitRequest>& requests);

    // Caches client/key -> order_id for orders the database has committed.
    void remember(const std::vector<std::pair<AdmitRequest, std::string>>& keys);

private:
    RedisClient redis_;
    int limit_;
    LocalRateLimiter& local_;
    Metrics& metrics_;
};

}  // namespace pgx
