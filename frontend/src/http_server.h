// The REST endpoint (Pistache): routing with 404/405, CORS and preflight,
// body size and content-type checks, per-route metrics, and draining on
// shutdown. Handlers run on reactor threads and must not block: they answer
// at once or hand their Respond to the database workers.
#pragma once

#include <pistache/http.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "reply.h"

namespace Pistache::Http {
class Endpoint;
}

namespace pgx {

class Metrics;

struct RequestContext {
    const Pistache::Http::Request& http;
    std::vector<std::string> params;  // the {placeholders} of the route, in order, percent-decoded
    // The client of the request's API key on a Client route with authentication
    // on; nullopt with authentication off (the client_id then comes from the request).
    std::optional<std::string> client;

    std::optional<std::string> query(const std::string& name) const;  // percent-decoded
    std::optional<std::string> header(const std::string& name) const;
    const std::string& body() const { return http.body(); }
};

// Answers through `respond` (now or later, from any thread); may throw ApiError instead.
using RouteHandler = std::function<void(const RequestContext&, Respond)>;

enum class BodyPolicy {
    None,      // any body is ignored
    Optional,  // empty, or JSON
    Json,      // a JSON body is required
};

enum class Access {
    Public,  // market data, health, metrics
    Client,  // trading: needs an API key when authentication is on
};

struct Route {
    Pistache::Http::Method method;
    std::string pattern;  // "/orders/{id}"; also the route's metrics label
    BodyPolicy body;
    RouteHandler handler;
    Access access = Access::Public;
};

class ApiKeys;

class HttpServer {
public:
    // `keys` null: authentication off (--no-auth).
    HttpServer(const Config& config, std::vector<Route> routes, Metrics& metrics, ApiKeys* keys);
    ~HttpServer();

    void start();  // binds and serves on background threads; throws on bind failure
    // From now on new requests get 503 shutting_down; requests already taken are finished.
    void drain();
    // Waits until no request is in flight; false on timeout.
    bool wait_idle(std::chrono::milliseconds timeout);
    void stop();

    struct State;

private:
    const Config& config_;
    std::shared_ptr<State> state_;
    std::unique_ptr<Pistache::Http::Endpoint> endpoint_;
};

}  // namespace pgx
