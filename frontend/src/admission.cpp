#include "admission.h"

#include "metrics.h"

namespace pgx {

namespace {

constexpr int kWindowMs = 60 * 1000;
constexpr const char* kIdempotencyTtlSeconds = "86400";

// INCR and the window's expiry in one atomic step, so a crash between them
// cannot leave a counter that never expires.
constexpr const char* kRateScript = R"(
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
)";

// Length-prefixed so that client "a:b" with key "c" and client "a" with key "b:c" differ.
std::string idempotency_redis_key(const AdmitRequest& r) {
    return "pgx:idem:" + std::to_string(r.client_id.size()) + ":" + r.client_id + ":" + *r.idempotency_key;
}

RateDecision decide(int limit, long long count, long long ttl_ms) {
    RateDecision d;
    d.limit = limit;
    d.allowed = count <= limit;
    d.remaining = count >= limit ? 0 : static_cast<int>(limit - count);
    d.retry_after_s = static_cast<int>((std::max(ttl_ms, 0LL) + 999) / 1000);
    return d;
}

}  // namespace

void add_rate_headers(Reply& r, const RateDecision& d) {
    if (d.limit == 0) return;
    r.headers.emplace_back("X-RateLimit-Limit", std::to_string(d.limit));
    r.headers.emplace_back("X-RateLimit-Remaining", std::to_string(d.remaining));
    if (!d.allowed) r.headers.emplace_back("Retry-After", std::to_string(std::max(d.retry_after_s, 1)));
}

Reply rate_limited_reply(const RateDecision& d) {
    Reply r = error_reply(429, "rate_limited",
                          "more than " + std::to_string(d.limit) + " requests per minute for this client_id");
    add_rate_headers(r, d);
    return r;
}

RateDecision LocalRateLimiter::hit(const std::string& client_id) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    if (windows_.size() > 100000) {
        for (auto it = windows_.begin(); it != windows_.end();)
            it = now - it->second.start >= std::chrono::milliseconds(kWindowMs) ? windows_.erase(it)
                                                                                : std::next(it);
    }
    auto& w = windows_[client_id];
    if (w.count == 0 || now - w.start >= std::chrono::milliseconds(kWindowMs)) w = {now, 0};
    ++w.count;
    auto left = std::chrono::milliseconds(kWindowMs) -
                std::chrono::duration_cast<std::chrono::milliseconds>(now - w.start);
    return decide(limit_, w.count, left.count());
}

Gate::Gate(const std::string& redis_host, int redis_port, int per_minute, LocalRateLimiter& local,
           Metrics& metrics)
    : redis_(redis_host, redis_port), limit_(per_minute), local_(local), metrics_(metrics) {}

std::vector<Admission> Gate::admit(const std::vector<AdmitRequest>& requests) {
    std::vector<Admission> out(requests.size());
    std::vector<std::vector<std::string>> commands;
    for (const auto& r : requests) {
        if (limit_ > 0 && !r.client_id.empty())
            commands.push_back(
                {"EVAL", kRateScript, "1", "pgx:rate:" + r.client_id, std::to_string(kWindowMs)});
        if (r.idempotency_key) commands.push_back({"GET", idempotency_redis_key(r)});
    }
    std::optional<std::vector<RedisReply>> replies;
    if (!commands.empty() && redis_.enabled()) {
        replies = redis_.pipeline(commands);
        if (!replies) metrics_.redis_error();
    }
    std::size_t next = 0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
        const auto& r = requests[i];
        if (limit_ > 0 && !r.client_id.empty()) {
            const RedisReply* rep = replies ? &(*replies)[next++] : nullptr;
            if (rep && rep->kind == RedisReply::Kind::Array && rep->integers.size() == 2) {
                out[i].rate = decide(limit_, rep->integers[0], rep->integers[1]);
            } else {
                if (rep) metrics_.redis_error();
                out[i].rate = local_.hit(r.client_id);
            }
        }
        if (r.idempotency_key && replies) {
            const RedisReply& rep = (*replies)[next++];
            if (rep.kind == RedisReply::Kind::String) out[i].cached_order_id = rep.str;
        }
    }
    return out;
}

void Gate::remember(const std::vector<std::pair<AdmitRequest, std::string>>& keys) {
    if (keys.empty() || !redis_.enabled()) return;
    std::vector<std::vector<std::string>> commands;
    for (const auto& [req, order_id] : keys)
        commands.push_back({"SET", idempotency_redis_key(req), order_id, "EX", kIdempotencyTtlSeconds});
    if (!redis_.pipeline(commands)) metrics_.redis_error();
}

}  // namespace pgx
