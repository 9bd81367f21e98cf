// One synchronous hiredis connection that fails fast and reconnects by itself.
// Redis only ever speeds things up here, so every failure is reported as
// "unavailable" and the caller falls back to the database or local state.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

struct redisContext;

namespace pgx {

struct RedisReply {
    enum class Kind { Nil, Integer, String, Array, Error, Status };
    Kind kind = Kind::Nil;
    long long integer = 0;
    std::string str;
    std::vector<long long> integers;  // an array of integers (the rate-limit script's answer)
};

class RedisClient {
public:
    // host empty: disabled, every call answers nullopt.
    RedisClient(std::string host, int port);
    ~RedisClient();
    RedisClient(const RedisClient&) = delete;
    RedisClient& operator=(const RedisClient&) = delete;

    // Sends all commands in one round trip; nullopt if Redis is unreachable or
    // a reply could not be read (the connection is then dropped and retried later).
    std::optional<std::vector<RedisReply>> pipeline(const std::vector<std::vector<std::string>>& commands);

    bool enabled() const { return !host_.empty(); }

private:
    bool connect();
    void drop();

    std::string host_;
    int port_;
    redisContext* ctx_ = nullptr;
    std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace pgx
