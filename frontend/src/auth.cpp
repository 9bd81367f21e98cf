#include "auth.h"

#include <spdlog/spdlog.h>

#include "db_pool.h"

namespace pgx {

namespace {
constexpr std::size_t kMaxCached = 100000;  // beyond it, expired entries go; if none, the whole cache
constexpr std::string_view kPrefix = "pgx_";
constexpr std::size_t kIdLength = 16, kSecretLength = 64;
constexpr std::size_t kKeyLength = kPrefix.size() + kIdLength + 1 + kSecretLength;

bool lower_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}
}  // namespace

bool ApiKeys::well_formed(std::string_view key) {
    return key.size() == kKeyLength && key.substr(0, kPrefix.size()) == kPrefix &&
           lower_hex(key.substr(kPrefix.size(), kIdLength)) && key[kPrefix.size() + kIdLength] == '_' &&
           lower_hex(key.substr(kPrefix.size() + kIdLength + 1));
}

std::string ApiKeys::label(std::string_view key) {
    if (!well_formed(key)) return "malformed";
    return std::string(key.substr(0, kPrefix.size() + kIdLength));
}

std::optional<std::string> ApiKeys::from_headers(const std::optional<std::string>& x_api_key,
                                                 const std::optional<std::string>& authorization) {
    if (x_api_key) return x_api_key;
    if (!authorization) return std::nullopt;
    constexpr std::string_view bearer = "Bearer ";
    if (authorization->size() > bearer.size() &&
        std::equal(bearer.begin(), bearer.end(), authorization->begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
        return authorization->substr(bearer.size());
    return std::string();  // another scheme: not a key we know
}

AuthResult ApiKeys::missing() {
    AuthResult r;
    r.status = 401;
    r.error = error_reply(401, "missing_api_key", "send an API key in X-API-Key or Authorization: Bearer");
    r.error.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
}

AuthResult ApiKeys::invalid() {
    AuthResult r;
    r.status = 401;
    r.error = error_reply(401, "invalid_api_key", "the API key is not valid or was revoked");
    r.error.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return r;
}

std::optional<AuthResult> ApiKeys::cached(const std::string& key) {
    if (!well_formed(key)) {
        spdlog::warn("auth: refused a malformed API key");
        return invalid();
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end() || it->second.expires <= std::chrono::steady_clock::now()) return std::nullopt;
    if (!it->second.client) {
        spdlog::warn("auth: refused API key {} (unknown or revoked)", label(key));
        return invalid();
    }
    AuthResult r;
    r.client = *it->second.client;
    return r;
}

void ApiKeys::store(const std::string& key, std::optional<std::string> client) {
    if (ttl_.count() <= 0) return;
    auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= kMaxCached) {
        for (auto it = cache_.begin(); it != cache_.end();)
            it = it->second.expires <= now ? cache_.erase(it) : std::next(it);
        if (cache_.size() >= kMaxCached) cache_.clear();
    }
    cache_[key] = Entry{std::move(client), now + ttl_};
}

void ApiKeys::resolve(const std::string& key, std::function<void(AuthResult)> done) {
    auto shared_done = std::make_shared<std::function<void(AuthResult)>>(std::move(done));
    Task task;
    task.run_and_respond = [this, key, shared_done](DbSession& db, Respond&) {
        pqxx::result r = db.exec(Stmt::Authenticate, key);  // throws: answered by `respond` below
        std::optional<std::string> client;
        if (r.size() == 1 && !r[0][0].is_null()) client = r[0][0].c_str();
        store(key, client);
        if (!client) {
            spdlog::warn("auth: refused API key {} (unknown or revoked)", label(key));
            return (*shared_done)(invalid());
        }
        AuthResult ok;
        ok.client = std::move(*client);
        (*shared_done)(std::move(ok));
    };
    // The database could not answer (down, overloaded): the caller's 503.
    task.respond = [shared_done](Reply error) {
        AuthResult r;
        r.status = error.status >= 500 ? error.status : 503;
        r.error = std::move(error);
        (*shared_done)(std::move(r));
    };
    pool_.submit(std::move(task));
}

}  // namespace pgx
