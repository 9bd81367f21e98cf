#include "redis_client.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

namespace pgx {

namespace {
// Redis runs next to the frontend: anything slower than this is treated as down.
constexpr timeval kConnectTimeout{0, 200 * 1000};
constexpr timeval kCommandTimeout{0, 200 * 1000};
constexpr std::chrono::milliseconds kRetryAfter{1000};

RedisReply convert(const redisReply* r) {
    RedisReply out;
    switch (r->type) {
        case REDIS_REPLY_INTEGER:
            out.kind = RedisReply::Kind::Integer;
            out.integer = r->integer;
            break;
        case REDIS_REPLY_STRING:
            out.kind = RedisReply::Kind::String;
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_STATUS:
            out.kind = RedisReply::Kind::Status;
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_ERROR:
            out.kind = RedisReply::Kind::Error;
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_ARRAY:
            out.kind = RedisReply::Kind::Array;
            for (std::size_t i = 0; i < r->elements; ++i)
                out.integers.push_back(r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer
                                                                                  : 0);
            break;
        default:
            break;
    }
    return out;
}
}  // namespace

RedisClient::RedisClient(std::string host, int port) : host_(std::move(host)), port_(port) {}

RedisClient::~RedisClient() {
    drop();
}

void RedisClient::drop() {
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
}

bool RedisClient::connect() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_attempt_) return false;
    ctx_ = redisConnectWithTimeout(host_.c_str(), port_, kConnectTimeout);
    if (!ctx_ || ctx_->err || redisSetTimeout(ctx_, kCommandTimeout) != REDIS_OK) {
        spdlog::warn("redis {}:{} unreachable ({}), retrying in {} ms", host_, port_,
                     ctx_ ? ctx_->errstr : "out of memory", kRetryAfter.count());
        drop();
        next_attempt_ = now + kRetryAfter;
        return false;
    }
    spdlog::info("redis {}:{} connected", host_, port_);
    return true;
}

std::optional<std::vector<RedisReply>> RedisClient::pipeline(
    const std::vector<std::vector<std::string>>& commands) {
    if (!enabled() || (!ctx_ && !connect())) return std::nullopt;
    std::vector<const char*> argv;
    std::vector<std::size_t> argvlen;
    for (const auto& cmd : commands) {
        argv.clear();
        argvlen.clear();
        for (const auto& a : cmd) {
            argv.push_back(a.data());
            argvlen.push_back(a.size());
        }
        if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), argvlen.data()) !=
            REDIS_OK) {
            drop();
            return std::nullopt;
        }
    }
    std::vector<RedisReply> replies;
    replies.reserve(commands.size());
    for (std::size_t i = 0; i < commands.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) {
            spdlog::warn("redis {}:{} connection lost: {}", host_, port_, ctx_->errstr);
            drop();
            next_attempt_ = std::chrono::steady_clock::now() + kRetryAfter;
            return std::nullopt;
        }
        replies.push_back(convert(static_cast<redisReply*>(raw)));
        freeReplyObject(raw);
    }
    return replies;
}

}  // namespace pgx
