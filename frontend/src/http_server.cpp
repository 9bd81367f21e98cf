#include "http_server.h"

#include <pistache/endpoint.h>
#include <pistache/http_headers.h>
#include <pistache/peer.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ostream>
#include <streambuf>
#include <thread>

#include "answer_writer.h"
#include "auth.h"
#include "metrics.h"

namespace pgx {

using namespace Pistache;

namespace {

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

std::optional<std::string> header_value(const Http::Request& req, const std::string& name) {
    auto raw = req.headers().tryGetRaw(name);
    if (!raw) return std::nullopt;
    return raw->value();
}

bool is_json(const Http::Request& req) {
    auto ct = req.headers().tryGet<Http::Header::ContentType>();
    return ct && ct->mime().top() == Http::Mime::Type::Application &&
           ct->mime().sub() == Http::Mime::Subtype::Json;
}

constexpr const char* kAllowHeaders = "Content-Type, Idempotency-Key, X-API-Key, Authorization";
constexpr const char* kConnection = "pgx.connection";
constexpr const char* kExposeHeaders = "X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After";

// Counts what is written to it and keeps nothing.
class CountingBuffer : public std::streambuf {
public:
    std::size_t count = 0;

protected:
    int_type overflow(int_type c) override {
        if (!traits_type::eq_int_type(c, traits_type::eof())) ++count;
        return traits_type::not_eof(c);
    }
    std::streamsize xsputn(const char*, std::streamsize n) override {
        count += static_cast<std::size_t>(n);
        return n;
    }
};

// The bytes a parsed header's value takes as written. One stream per thread: making an
// std::ostringstream per header (its locale) was 3% of the frontend's CPU at 20,000 orders/s.
std::size_t written_size(const Http::Header::Header& header) {
    thread_local CountingBuffer buffer;
    thread_local std::ostream out(&buffer);
    buffer.count = 0;
    // What a fresh stream starts with (copyfmt would imbue the locale again): a header that changed
    // them changes nothing for the next.
    out.clear();
    out.flags(std::ios_base::dec | std::ios_base::skipws);
    out.width(0);
    out.precision(6);
    out.fill(' ');
    header.write(out);
    return buffer.count;
}

// The request line's target and the headers as sent, in bytes (Pistache keeps
// the headers it knows parsed: those count by their name and value as written).
std::size_t header_bytes(const Http::Request& req) {
    std::size_t n = req.resource().size();
    for (const auto& [name, raw] : req.headers().rawList()) n += name.size() + raw.value().size() + 4;
    for (const auto& header : req.headers().list())
        n += std::strlen(header->name()) + written_size(*header) + 4;
    for (auto it = req.query().parameters_begin(); it != req.query().parameters_end(); ++it)
        n += it->first.size() + it->second.size() + 2;
    return n;
}

// One per REST connection, from its first request until it closes (kept in the peer's data).
struct Connection {
    bool admitted = false;
    std::shared_ptr<AnswerSocket> socket;  // null if the socket could not be duplicated: Pistache writes
};

// Pistache answers "Connection: Close" when the request had no Connection header, and
// echoes the request's otherwise (see Handler::onInput); the same bytes as before.
const char* connection_value(const Http::Request& req) {
    auto c = req.headers().tryGet<Http::Header::Connection>();
    if (!c) return "Close";
    switch (c->control()) {
        case Http::ConnectionControl::KeepAlive:
            return "Keep-Alive";
        case Http::ConnectionControl::Ext:
            return "Ext";
        default:
            return "Close";
    }
}

// The answer as Pistache's putOnWire lays it out: status line, headers, Content-Length, body.
std::string wire_format(Http::Version version, const char* connection, const Reply& r) {
    const char* reason = Http::codeString(static_cast<Http::Code>(r.status));
    std::string out;
    out.reserve(192 + r.body.size());
    out += Http::versionString(version);
    out += ' ';
    out += std::to_string(r.status);
    out += ' ';
    out += reason;
    out += "\r\nConnection: ";
    out += connection;
    out += "\r\nContent-Type: ";
    out += r.content_type;
    out += "\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: ";
    out += kExposeHeaders;
    out += "\r\n";
    for (const auto& [name, value] : r.headers) {
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
    out += "Content-Length: ";
    out += std::to_string(r.body.size());
    out += "\r\n\r\n";
    out += r.body;
    return out;
}

// Runs a route's handler; what it throws becomes the answer.
void invoke(const Route& route, const RequestContext& ctx, const Respond& respond) {
    try {
        route.handler(ctx, respond);
    } catch (const ApiError& e) {
        respond(error_reply(e));
    } catch (const std::exception& e) {
        spdlog::error("{} {}: {}", Http::methodString(ctx.http.method()), ctx.http.resource(), e.what());
        respond(error_reply(500, "internal_error", "internal error"));
    }
}

}  // namespace

std::optional<std::string> RequestContext::query(const std::string& name) const {
    auto v = http.query().get(name);
    if (!v) return std::nullopt;
    std::string decoded = percent_decode(*v, true);
    // A parameter goes to PostgreSQL as a C string, which would end at the NUL: "abc%00x" would name
    // client "abc" (and pass its ownership checks) or instrument "abc".
    if (decoded.find('\0') != std::string::npos)
        throw ApiError(400, "invalid_parameter", "query parameter '" + name + "' must not contain a NUL (%00)");
    return decoded;
}

std::optional<std::string> RequestContext::header(const std::string& name) const {
    return header_value(http, name);
}

struct HttpServer::State {
    const Config& config;
    Metrics& metrics;
    ApiKeys* keys;
    std::vector<Route> routes;
    std::vector<std::vector<std::string>> patterns;
    std::atomic<bool> draining{false};
    std::atomic<int> in_flight{0};
    std::atomic<std::size_t> connections{0};

    AnswerWriter answers;

    State(const Config& c, Metrics& m, ApiKeys* k, std::vector<Route> r)
        : config(c), metrics(m), keys(k), routes(std::move(r)), answers(c.http_max_queued_bytes) {
        for (const auto& route : routes) patterns.push_back(split_path(route.pattern));
    }
};

namespace {

// Writes one answer to its connection; from any thread.
void send_answer(HttpServer::State& s, const Connection& conn, const std::weak_ptr<Tcp::Peer>& weak,
                 std::string wire) {
    auto peer = weak.lock();
    if (!peer) return;    // the connection is gone: nobody waits for this answer
    peer->setIdle(true);  // what ResponseWriter::send does: the keep-alive timeout counts from here
    if (!conn.socket) {
        auto size = wire.size();
        peer->send(Pistache::RawBuffer(std::move(wire), size));
        return;
    }
    peer.reset();  // the connection may end while its answer waits: its weak pointer tells
    switch (s.answers.write(conn.socket, std::move(wire))) {
        case AnswerWriter::Outcome::Queued:
            s.metrics.http_answer_queued();
            break;
        case AnswerWriter::Outcome::Closed:
            s.metrics.http_answer_queued();
            spdlog::warn("http: closed a connection that did not read its answers (over {} bytes waiting)",
                         s.config.http_max_queued_bytes);
            break;
        case AnswerWriter::Outcome::Sent:
        case AnswerWriter::Outcome::Gone:
            break;
    }
}

class Handler : public Http::Handler {
public:
    HTTP_PROTOTYPE(Handler)

    explicit Handler(std::shared_ptr<HttpServer::State> state) : state_(std::move(state)) {}

    // Admitted connections are counted from their first request (Pistache
    // keeps the connect hook to itself) until they close.
    void onDisconnection(const std::shared_ptr<Tcp::Peer>& peer) override {
        if (auto c = peer->tryGetData(kConnection); c && std::static_pointer_cast<Connection>(c)->admitted)
            --state_->connections;
        Http::Handler::onDisconnection(peer);
    }

    // The connection's state, made on its first request.
    // A connection beyond --http-max-connections is not admitted: every request on it is refused.
    std::shared_ptr<Connection> connection(const std::shared_ptr<Tcp::Peer>& peer) {
        if (auto seen = peer->tryGetData(kConnection)) return std::static_pointer_cast<Connection>(seen);
        auto conn = std::make_shared<Connection>();
        int fd = ::fcntl(peer->fd(), F_DUPFD_CLOEXEC, 0);
        if (fd >= 0)
            conn->socket = std::make_shared<AnswerSocket>(fd, std::weak_ptr<Tcp::Peer>(peer));
        else
            spdlog::warn("http: dup of a connection's socket failed ({}): Pistache writes its answers",
                         std::strerror(errno));
        const std::size_t open = ++state_->connections;
        conn->admitted = open <= state_->config.http_max_connections;
        peer->putData(kConnection, conn);
        if (!conn->admitted) {
            --state_->connections;  // only admitted connections count
            spdlog::warn("http: refused a connection from {}: {} open, the limit is {}", peer->address().host(),
                         open - 1, state_->config.http_max_connections);
        }
        return conn;
    }

    void onRequest(const Http::Request& req, Http::ResponseWriter response) override {
        auto& s = *state_;
        auto started = std::chrono::steady_clock::now();
        auto path = split_path(req.resource());
        const Route* route = nullptr;
        std::vector<std::string> params, route_params;
        // The route's pattern, else the first pattern matching the path, else "unmatched" (the
        // patterns live as long as the state the answer holds on to).
        std::string_view label;
        for (std::size_t i = 0; i < s.routes.size(); ++i) {
            if (!match(s.patterns[i], path, params)) continue;
            if (label.empty()) label = s.routes[i].pattern;
            if (s.routes[i].method == req.method()) {
                route = &s.routes[i];
                route_params = std::move(params);
                break;
            }
        }
        const bool path_known = !label.empty();
        if (route) label = route->pattern;
        if (!path_known) label = "unmatched";
        // Every method of the routes matching this path (OPTIONS and 405 only).
        auto allow = [&] {
            std::string methods;
            for (std::size_t i = 0; i < s.routes.size(); ++i) {
                if (!match(s.patterns[i], path, params)) continue;
                if (!methods.empty()) methods += ", ";
                methods += Http::methodString(s.routes[i].method);
            }
            return methods;
        };
        std::shared_ptr<Tcp::Peer> peer;
        try {
            peer = response.peer();
        } catch (const std::exception&) {
            return;  // gone already: nobody waits for an answer
        }
        auto conn = connection(peer);
        ++s.in_flight;
        auto state = state_;
        const char* method = Http::methodString(req.method());
        Respond respond = [conn, weak = std::weak_ptr<Tcp::Peer>(peer), version = req.version(),
                           connection = connection_value(req), state, label, method, started](Reply r) {
            send_answer(*state, *conn, weak, wire_format(version, connection, r));
            state->metrics.http_request(
                label, method, r.status,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
            --state->in_flight;
        };

        if (!conn->admitted) {
            Reply r = error_reply(503, "too_many_connections", "too many open connections");
            r.headers.emplace_back("Retry-After", "1");
            return respond(std::move(r));
        }
        if (!path_known) return respond(error_reply(404, "not_found", "no route for " + req.resource()));
        if (req.method() == Http::Method::Options) {
            Reply r;
            r.status = 204;
            r.headers.emplace_back("Access-Control-Allow-Methods", allow() + ", OPTIONS");
            r.headers.emplace_back("Access-Control-Allow-Headers", kAllowHeaders);
            r.headers.emplace_back("Access-Control-Max-Age", "600");
            return respond(std::move(r));
        }
        if (!route) {
            Reply r = error_reply(405, "method_not_allowed",
                                  std::string(Http::methodString(req.method())) + " is not allowed here");
            r.headers.emplace_back("Allow", allow() + ", OPTIONS");
            return respond(std::move(r));
        }
        if (s.draining) {
            Reply r = error_reply(503, "shutting_down", "the server is shutting down");
            r.headers.emplace_back("Retry-After", "1");
            return respond(std::move(r));
        }
        if (header_bytes(req) > s.config.max_header_bytes) {
            spdlog::warn("http: {} {}: headers over {} bytes refused", method, label, s.config.max_header_bytes);
            return respond(error_reply(
                431, "headers_too_large",
                "the request line and headers exceed " + std::to_string(s.config.max_header_bytes) + " bytes"));
        }
        if (route->body != BodyPolicy::None) {
            if (req.body().size() > s.config.max_body_bytes) {
                spdlog::warn("http: {} {}: body of {} bytes refused", method, label, req.body().size());
                return respond(
                    error_reply(413, "payload_too_large",
                                "the body exceeds " + std::to_string(s.config.max_body_bytes) + " bytes"));
            }
            bool need_json = route->body == BodyPolicy::Json || !req.body().empty();
            if (need_json && !is_json(req))
                return respond(
                    error_reply(415, "unsupported_media_type", "send Content-Type: application/json"));
        }
        if (route->access == Access::Client && s.keys) {
            auto key = ApiKeys::from_headers(header_value(req, "X-API-Key"), header_value(req, "Authorization"));
            if (!key) {
                spdlog::warn("http: {} {}: no API key", method, label);
                return respond(ApiKeys::missing().error);
            }
            if (auto known = s.keys->cached(*key)) {
                if (known->status != 200) return respond(known->error);
                return invoke(*route, RequestContext{req, std::move(route_params), known->client}, respond);
            }
            // The database decides, later and on another thread: the request must outlive this call.
            auto copy = std::make_shared<Http::Request>(req);
            s.keys->resolve(*key, [state, route, copy, route_params, respond](AuthResult a) {
                if (a.status != 200) return respond(a.error);
                invoke(*route, RequestContext{*copy, route_params, a.client}, respond);
            });
            return;
        }
        invoke(*route, RequestContext{req, std::move(route_params), std::nullopt}, respond);
    }

private:
    std::shared_ptr<HttpServer::State> state_;
};

}  // namespace

HttpServer::HttpServer(const Config& config, std::vector<Route> routes, Metrics& metrics, ApiKeys* keys)
    : config_(config), state_(std::make_shared<State>(config, metrics, keys, std::move(routes))) {}

HttpServer::~HttpServer() {
    stop();
}

void HttpServer::start() {
    Address addr(config_.http_host, Port(config_.http_port));
    endpoint_ = std::make_unique<Http::Endpoint>(addr);
    // Pistache answers 413 itself (plain text) beyond this; up to it the API's JSON 413 applies.
    std::size_t max_request = config_.max_body_bytes + config_.max_header_bytes + 64 * 1024;
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
