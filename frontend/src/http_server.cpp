#include "http_server.h"

#include <pistache/endpoint.h>
#include <pistache/http_headers.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

#include "metrics.h"

namespace pgx {

using namespace Pistache;

namespace {

// A response header Pistache writes as given (its own registry only knows the standard ones).
class TextHeader : public Http::Header::Header {
public:
    TextHeader(std::string name, std::string value) : name_(std::move(name)), value_(std::move(value)) {}
    const char* name() const override { return name_.c_str(); }
    void write(std::ostream& os) const override { os << value_; }
    uint64_t hash() const override { return Http::Header::detail::hash(name_.c_str()); }

private:
    std::string name_;
    std::string value_;
};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(const std::string& s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
            i += 2;
        } else if (s[i] == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::vector<std::string> split_path(const std::string& path) {
    std::vector<std::string> parts;
    std::size_t i = 0;
    while (i < path.size()) {
        if (path[i] == '/') {
            ++i;
            continue;
        }
        std::size_t end = path.find('/', i);
        if (end == std::string::npos) end = path.size();
        parts.push_back(path.substr(i, end - i));
        i = end;
    }
    return parts;
}

bool match(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
           std::vector<std::string>& params) {
    if (pattern.size() != path.size()) return false;
    params.clear();
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (!pattern[i].empty() && pattern[i].front() == '{')
            params.push_back(percent_decode(path[i], false));
        else if (pattern[i] != path[i])
            return false;
    }
    return true;
}

bool is_json(const Http::Request& req) {
    auto ct = req.headers().tryGet<Http::Header::ContentType>();
    return ct && ct->mime().top() == Http::Mime::Type::Application &&
           ct->mime().sub() == Http::Mime::Subtype::Json;
}

constexpr const char* kAllowHeaders = "Content-Type, Idempotency-Key";
constexpr const char* kExposeHeaders = "X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After";

}  // namespace

std::optional<std::string> RequestContext::query(const std::string& name) const {
    auto v = http.query().get(name);
    if (!v) return std::nullopt;
    return percent_decode(*v, true);
}

std::optional<std::string> RequestContext::header(const std::string& name) const {
    auto raw = http.headers().tryGetRaw(name);
    if (!raw) return std::nullopt;
    return raw->value();
}

struct HttpServer::State {
    const Config& config;
    Metrics& metrics;
    std::vector<Route> routes;
    std::vector<std::vector<std::string>> patterns;
    std::atomic<bool> draining{false};
    std::atomic<int> in_flight{0};

    State(const Config& c, Metrics& m, std::vector<Route> r) : config(c), metrics(m), routes(std::move(r)) {
        for (const auto& route : routes) patterns.push_back(split_path(route.pattern));
    }
};

namespace {

class Handler : public Http::Handler {
public:
    HTTP_PROTOTYPE(Handler)

    explicit Handler(std::shared_ptr<HttpServer::State> state) : state_(std::move(state)) {}

    void onRequest(const Http::Request& req, Http::ResponseWriter response) override {
        auto& s = *state_;
        auto started = std::chrono::steady_clock::now();
        auto path = split_path(req.resource());
        const Route* route = nullptr;
        std::vector<std::string> params, route_params;
        std::string allow;  // every method of the routes matching this path
        std::string label = "unmatched";
        for (std::size_t i = 0; i < s.routes.size(); ++i) {
            if (!match(s.patterns[i], path, params)) continue;
            if (allow.empty()) label = s.routes[i].pattern;
            allow += (allow.empty() ? "" : ", ") + std::string(Http::methodString(s.routes[i].method));
            if (!route && s.routes[i].method == req.method()) {
                route = &s.routes[i];
                route_params = params;
            }
        }

        if (route) label = route->pattern;
        ++s.in_flight;
        auto writer = std::make_shared<Http::ResponseWriter>(std::move(response));
        auto state = state_;
        std::string method = Http::methodString(req.method());
        Respond respond = [writer, state, label, method, started](Reply r) {
            r.headers.emplace_back("Content-Type", r.content_type);
            r.headers.emplace_back("Access-Control-Allow-Origin", "*");
            r.headers.emplace_back("Access-Control-Expose-Headers", kExposeHeaders);
            for (auto& [name, value] : r.headers)
                writer->headers().add(std::make_shared<TextHeader>(name, value));
            writer->send(static_cast<Http::Code>(r.status), r.body);
            state->metrics.http_request(
                label, method, r.status,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
            --state->in_flight;
        };

        if (allow.empty()) return respond(error_reply(404, "not_found", "no route for " + req.resource()));
        if (req.method() == Http::Method::Options) {
            Reply r;
            r.status = 204;
            r.headers.emplace_back("Access-Control-Allow-Methods", allow + ", OPTIONS");
            r.headers.emplace_back("Access-Control-Allow-Headers", kAllowHeaders);
            r.headers.emplace_back("Access-Control-Max-Age", "600");
            return respond(std::move(r));
        }
        if (!route) {
            Reply r = error_reply(405, "method_not_allowed",
                                  std::string(Http::methodString(req.method())) + " is not allowed here");
            r.headers.emplace_back("Allow", allow + ", OPTIONS");
            return respond(std::move(r));
        }
        if (s.draining) {
            Reply r = error_reply(503, "shutting_down", "the server is shutting down");
            r.headers.emplace_back("Retry-After", "1");
            return respond(std::move(r));
        }
        if (route->body != BodyPolicy::None) {
            if (req.body().size() > s.config.max_body_bytes)
                return respond(
                    error_reply(413, "payload_too_large",
                                "the body exceeds " + std::to_string(s.config.max_body_bytes) + " bytes"));
            bool need_json = route->body == BodyPolicy::Json || !req.body().empty();
            if (need_json && !is_json(req))
                return respond(
                    error_reply(415, "unsupported_media_type", "send Content-Type: application/json"));
        }
        try {
            route->handler(RequestContext{req, std::move(route_params)}, respond);
        } catch (const ApiError& e) {
            respond(error_reply(e));
        } catch (const std::exception& e) {
            spdlog::error("{} {}: {}", method, req.resource(), e.what());
            respond(error_reply(500, "internal_error", "internal error"));
        }
    }

private:
    std::shared_ptr<HttpServer::State> state_;
};

}  // namespace

HttpServer::HttpServer(const Config& config, std::vector<Route> routes, Metrics& metrics)
    : config_(config), state_(std::make_shared<State>(config, metrics, std::move(routes))) {}

HttpServer::~HttpServer() {
    stop();
}

void HttpServer::start() {
    Address addr(config_.http_host, Port(config_.http_port));
    endpoint_ = std::make_unique<Http::Endpoint>(addr);
    // Pistache answers 413 itself (plain text) beyond this; up to it the API's JSON 413 applies.
    std::size_t max_request = config_.max_body_bytes + 64 * 1024;
    endpoint_->init(Http::Endpoint::options()
                        .threads(config_.http_threads)
                        .flags(Tcp::Options::ReuseAddr)
                        .maxRequestSize(max_request)
                        .keepaliveTimeout(std::chrono::seconds(60)));
    endpoint_->setHandler(Http::make_handler<Handler>(state_));
    endpoint_->serveThreaded();
}

void HttpServer::drain() {
    state_->draining = true;
}

bool HttpServer::wait_idle(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (state_->in_flight.load() > 0) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

void HttpServer::stop() {
    if (!endpoint_) return;
    endpoint_->shutdown();
    endpoint_.reset();
}

}  // namespace pgx
