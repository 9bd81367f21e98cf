// What a route answers, built on any thread and sent by the HTTP layer.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgx {

struct Reply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
};

// Sends the reply to the waiting client; callable from any thread, exactly once.
using Respond = std::function<void(Reply)>;

// A request the API refuses, reported as {"error":{"code","message"}} with this status.
class ApiError : public std::runtime_error {
public:
    ApiError(int status, std::string code, const std::string& message)
        : std::runtime_error(message), status_(status), code_(std::move(code)) {}
    int status() const { return status_; }
    const std::string& code() const { return code_; }

private:
    int status_;
    std::string code_;
};

// The one error shape of the API.
Reply error_reply(int status, std::string_view code, std::string_view message);
inline Reply error_reply(const ApiError& e) {
    return error_reply(e.status(), e.code(), e.what());
}

}  // namespace pgx
