// API keys: "pgx_<key_id>_<secret>", created and revoked in the database
// (exchange.create_api_key / revoke_api_key) and checked with
// exchange.authenticate. Answers are cached for --auth-cache-ms, so a revoked
// key stops working within that time and a valid one costs one database
// call per cache period. Never logs a secret: only the key_id.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "reply.h"

namespace pgx {

class DbPool;

struct AuthResult {
    int status = 200;     // 200 valid, 401 not a valid key, 503 the database could not say
    std::string client;   // with 200
    Reply error;          // with 401 and 503: the answer to give
};

class ApiKeys {
public:
    ApiKeys(DbPool& pool, std::chrono::milliseconds ttl) : pool_(pool), ttl_(ttl) {}

    // The answer from the cache, or nothing when the database must be asked.
    std::optional<AuthResult> cached(const std::string& key);
    // Asks the database on a worker thread and calls `done` there (once).
    void resolve(const std::string& key, std::function<void(AuthResult)> done);

    // The key named in a request: X-API-Key, or Authorization: Bearer.
    static std::optional<std::string> from_headers(const std::optional<std::string>& x_api_key,
                                                   const std::optional<std::string>& authorization);
    static bool well_formed(std::string_view key);
    // The public part of a key, safe to log ("pgx_0123456789abcdef"), or "malformed".
    static std::string label(std::string_view key);
    static AuthResult missing();
    static AuthResult invalid();

private:
    struct Entry {
        std::optional<std::string> client;  // nullopt: known to be invalid
        std::chrono::steady_clock::time_point expires;
    };
    void store(const std::string& key, std::optional<std::string> client);

    DbPool& pool_;
    std::chrono::milliseconds ttl_;
    std::mutex mu_;
    std::unordered_map<std::string, Entry> cache_;
};

}  // namespace pgx
