// The WebSocket side of the feed (the only Boost.Beast translation unit).
//
// Threads: Config.threads I/O threads run one io_context; every session is
// bound to its own strand, so its protocol state needs no lock. The LISTEN
// thread (listener.cpp) posts each batch to every session's strand and never
// waits for a client; the loader thread (loader.cpp) answers snapshot and
// resume requests and posts the answer back to the asking session.
// Each session owns a bounded queue of shared, pre-serialised messages: a
// client whose queue would exceed max_client_queue_bytes is disconnected.
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "feed.h"
#include "instruments.h"
#include "interest.h"
#include "listener.h"
#include "loader.h"
#include "subscriptions.h"

namespace pgx::feed {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
constexpr auto kHttpTimeout = std::chrono::seconds(30);
constexpr auto kStopGrace = std::chrono::seconds(2);
constexpr int kMaxClientErrors = 20;  // bad messages before a client is considered abusive
constexpr std::size_t kMaxHeaderBytes = 8192;
constexpr std::size_t kMaxBatchBytes = 256 * 1024;  // a batch message takes queued messages up to this size
}  // namespace

class Session;

// Shared by the sessions, the LISTEN thread and the loader (Server::Impl).
struct Hub {
    explicit Hub(Config c) : config(std::move(c)) {}

    void publish(const std::shared_ptr<const Batch>& batch);
    // Copies out under the lock: the last reference to a session may be
    // dropped by the caller, and ~Session takes sessions_mutex.
    std::vector<std::shared_ptr<Session>> live_sessions();
    void accept();
    void add(Session* session, std::weak_ptr<Session> weak) {
        std::lock_guard<std::mutex> lock(sessions_mutex);
        sessions.emplace(session, std::move(weak));
    }
    void remove(Session* session) {
        std::lock_guard<std::mutex> lock(sessions_mutex);
        sessions.erase(session);
    }

    Config config;
    Instruments instruments;
    Interest interest;  // before the io_context: sessions destroyed with it forget theirs here
    ListenerCounters listener_counters;
    std::atomic<uint64_t> messages_sent{0};
    std::atomic<uint64_t> slow_disconnects{0};
    std::atomic<std::size_t> open_sockets{0};  // every session, also before the handshake
    // Declared before the io_context: sessions destroyed with it unregister here.
    std::mutex sessions_mutex;
    std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // past the handshake

    net::io_context ioc;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::optional<tcp::acceptor> acceptor;
    std::vector<std::thread> threads;
    std::unique_ptr<Listener> listener;
    std::unique_ptr<Loader> loader;  // asks the listener whether it is ready: destroyed first
    std::mutex lifecycle;
    bool started = false;
    bool stopped = false;
};

struct Server::Impl : Hub {
    using Hub::Hub;
};

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket&& socket, Hub& hub)
        : hub_(hub),
          ws_(std::move(socket)),
          subscriptions_(hub.instruments, hub.config.max_client_queue_bytes) {
        hub_.open_sockets++;
    }

    ~Session() {
        hub_.interest.forget(this);
        if (registered_) hub_.remove(this);
        hub_.open_sockets--;
    }

    // Reads the HTTP upgrade request.
    void run() {
        parser_.emplace();
        parser_->header_limit(kMaxHeaderBytes);
        beast::get_lowest_layer(ws_).expires_after(kHttpTimeout);
        http::async_read(
            ws_.next_layer(), buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_http(ec); });
    }

    // Any thread: hands a batch to the session's strand.
    void deliver(std::shared_ptr<const Batch> batch) {
        net::post(ws_.get_executor(), [self = shared_from_this(), batch = std::move(batch)] {
            if (self->closing_) return;
            Subscriptions::Effects fx;
            self->subscriptions_.on_batch(batch, fx);
            self->apply(fx);
        });
    }

    // Any thread: closes with 1001 (going away).
    void shutdown() {
        net::post(ws_.get_executor(),
                  [self = shared_from_this()] { self->close(websocket::close_code::going_away, false); });
    }

private:
    void on_http(beast::error_code ec) {
        if (ec) return;  // the peer left or timed out; dropping the session closes the socket
        const auto& req = parser_->get();
        const beast::string_view target = req.target();
        const beast::string_view path = target.substr(0, target.find('?'));
        if (path != "/stream") return reject(http::status::not_found, "not_found", "the feed is at /stream");
        if (!websocket::is_upgrade(req))
            return reject(http::status::upgrade_required, "upgrade_required", "WebSocket upgrade required");
        if (hub_.open_sockets > hub_.config.max_connections) {
            spdlog::warn("feed: refused a connection: {} open, the limit is {}", hub_.open_sockets.load() - 1,
                         hub_.config.max_connections);
            return reject(http::status::service_unavailable, "too_many_connections", "too many connections");
        }
        subscriptions_.private_orders(hub_.config.auth);
        if (hub_.config.auth) {
            if (std::optional<std::string> key = api_key(req, target)) {
                hub_.config.authenticate(*key, [self = shared_from_this()](int status, std::string client) {
                    net::post(self->ws_.get_executor(), [self, status, client = std::move(client)]() mutable {
                        if (status == 200) {
                            self->subscriptions_.set_client(std::move(client));
                            return self->accept();
                        }
                        if (status == 401)
                            return self->reject(http::status::unauthorized, "invalid_api_key",
                                                "the API key is not valid or was revoked");
                        self->reject(http::status::service_unavailable, "database_unavailable",
                                     "the API key cannot be checked now");
                    });
                });
                return;
            }
        }
        accept();
    }

    // The API key of an upgrade request, if it names one.
    static std::optional<std::string> api_key(const http::request<http::empty_body>& req,
                                              beast::string_view target) {
        if (auto it = req.find("X-API-Key"); it != req.end()) return std::string(it->value());
        if (auto it = req.find(http::field::authorization); it != req.end()) {
            const beast::string_view v = it->value();
            if (v.size() > 7 && beast::iequals(v.substr(0, 7), "Bearer ")) return std::string(v.substr(7));
            return std::string();  // another scheme: refused as invalid
        }
        const auto q = target.find('?');
        if (q == beast::string_view::npos) return std::nullopt;
        beast::string_view query = target.substr(q + 1);
        while (!query.empty()) {
            const auto amp = query.find('&');
            const beast::string_view pair = query.substr(0, amp);
            if (pair.substr(0, 8) == "api_key=") return std::string(pair.substr(8));
            if (amp == beast::string_view::npos) break;
            query = query.substr(amp + 1);
        }
        return std::nullopt;
    }

    void accept() {
        const auto& req = parser_->get();
        beast::get_lowest_layer(ws_).expires_never();
        const auto ping = std::chrono::milliseconds(hub_.config.ping_interval_ms);
        // Beast pings a peer that has been silent for half the idle timeout
        // and drops it when the whole timeout passes without a frame (a pong).
        ws_.set_option(websocket::stream_base::timeout{kHttpTimeout, 2 * ping, true});
        ws_.read_message_max(hub_.config.max_message_bytes);
        ws_.auto_fragment(false);
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::server, "pgx-feed"); }));
        ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
    }

    void reject(http::status status, const char* code, const char* text) {
        auto res = std::make_shared<http::response<http::string_body>>(status, parser_->get().version());
        res->set(http::field::content_type, "application/json");
        if (status == http::status::unauthorized) res->set(http::field::www_authenticate, "Bearer");
        res->body() = *make_error(code, text);
        res->keep_alive(false);
        res->prepare_payload();
        http::async_write(
            ws_.next_layer(), *res, [self = shared_from_this(), res](beast::error_code, std::size_t) {
                beast::error_code ignored;
                beast::get_lowest_layer(self->ws_).socket().shutdown(tcp::socket::shutdown_send, ignored);
            });
    }

    void on_accept(beast::error_code ec) {
        if (ec) return;
        parser_.reset();
        open_ = true;
        registered_ = true;
        hub_.add(this, weak_from_this());
        read();
    }

    void read() {
        ws_.async_read(buffer_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec == websocket::error::message_too_big)
            spdlog::warn("feed: closed a client that sent a message over {} bytes", hub_.config.max_message_bytes);
        if (ec) return;  // closed, timed out (no pong), too big (Beast sent 1009) or reset
        Subscriptions::Effects fx;
        if (!take_token()) {
            if (!rate_warned_) spdlog::warn("feed: a client sends more than {} messages/s",
                                            hub_.config.max_messages_per_second);
            rate_warned_ = true;
            subscriptions_.error("rate_limited", "too many messages: the message was ignored", fx);
        } else if (!ws_.got_text()) {
            subscriptions_.error("invalid_message", "messages are JSON text frames", fx);
        } else {
            subscriptions_.on_message(beast::buffers_to_string(buffer_.data()), fx);
            tell_interest();  // before apply() asks the loader for snapshots (interest.h)
        }
        buffer_.consume(buffer_.size());
        apply(fx);
        if (subscriptions_.errors() > kMaxClientErrors) {
            spdlog::warn("feed: closed a client after {} bad or rate-limited messages", subscriptions_.errors());
            close(websocket::close_code::policy_error, false);
        }
        if (!closing_) read();
    }

    // Tells the hub what this client follows.
    void tell_interest() {
        std::vector<std::string> instruments;
        bool all = false;
        subscriptions_.followed(instruments, all);
        hub_.interest.set(this, std::move(instruments), all);
    }

    // A token bucket: max_messages_per_second, holding up to twice as many.
    bool take_token() {
        const double rate = hub_.config.max_messages_per_second;
        const auto now = std::chrono::steady_clock::now();
        tokens_ = std::min(2 * rate, tokens_ + rate * std::chrono::duration<double>(now - refilled_).count());
        refilled_ = now;
        if (tokens_ < 1) return false;
        tokens_ -= 1;
        return true;
    }

    void apply(Subscriptions::Effects& fx) {
        for (LoadRequest& request : fx.loads) {
            hub_.loader->submit(std::move(request), [weak = weak_from_this()](LoadResult result) {
                auto self = weak.lock();
                if (!self) return;
                net::post(self->ws_.get_executor(), [self, result = std::move(result)] {
                    if (self->closing_) return;
                    Subscriptions::Effects fx;
                    self->subscriptions_.on_loaded(result, fx);
                    self->tell_interest();  // a failed load drops its subscription
                    self->apply(fx);
                });
            });
        }
        if (fx.overflow) return slow();
        for (Message& m : fx.send) {
            if (closing_) return;
            // An empty queue takes any one message (a snapshot may be large).
            if (!queue_.empty() && queued_bytes_ + m->size() > hub_.config.max_client_queue_bytes)
                return slow();
            queued_bytes_ += m->size();
            queue_.push_back(std::move(m));
        }
        if (!writing_) write();
    }

    void slow() {
        hub_.slow_disconnects++;
        spdlog::warn("feed: disconnecting a slow client ({} bytes queued)", queued_bytes_);
        close(websocket::close_code::policy_error, true);
    }

    // Writes the first queued message or, for a client that asked for batches, every queued message
    // (up to kMaxBatchBytes) as one {"type":"batch","messages":[...]}: one write and one TCP segment
    // instead of one per message, which is most of the feed's CPU at high message rates.
    void write() {
        if (queue_.empty() || closing_) return;
        writing_ = true;
        in_flight_ = 1;
        in_flight_message_ = queue_.front();
        if (subscriptions_.batched() && queue_.size() > 1) {
            static constexpr std::string_view kOpen = "{\"type\":\"batch\",\"messages\":[";
            std::size_t n = 0, bytes = kOpen.size() + 2;
            for (const Message& m : queue_) {
                if (n > 0 && bytes + m->size() + 1 > kMaxBatchBytes) break;
                bytes += m->size() + 1;
                ++n;
            }
            if (n > 1) {
                std::string batch;
                batch.reserve(bytes);
                batch += kOpen;
                for (std::size_t i = 0; i < n; ++i) {
                    if (i > 0) batch += ',';
                    batch += *queue_[i];
                }
                batch += "]}";
                in_flight_ = n;
                in_flight_message_ = make_text(std::move(batch));
            }
        }
        ws_.text(true);
        // The message is kept by in_flight_message_ until the write ends: close() may clear the queue.
        ws_.async_write(
            net::buffer(*in_flight_message_),
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
    }

    void on_write(beast::error_code ec) {
        writing_ = false;
        in_flight_message_.reset();
        if (ec) return;
        hub_.messages_sent += in_flight_;
        for (std::size_t i = 0; i < in_flight_ && !queue_.empty(); ++i) {
            queued_bytes_ -= queue_.front()->size();
            queue_.pop_front();
        }
        if (closing_) return send_close();
        write();
    }

    // Stops sending data. A stuck write (the client reads nothing) cannot be
    // followed by a close frame, so `abort` drops the TCP connection instead.
    void close(websocket::close_code code, bool abort) {
        if (closing_) return;
        closing_ = true;
        close_code_ = code;
        queue_.clear();
        queued_bytes_ = 0;
        if (!open_ || (abort && writing_)) {
            beast::get_lowest_layer(ws_).close();
            return;
        }
        if (!writing_) send_close();
    }

    void send_close() {
        ws_.async_close(close_code_, [self = shared_from_this()](beast::error_code) {});
    }

    Hub& hub_;
    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::empty_body>> parser_;
    Subscriptions subscriptions_;
    std::deque<Message> queue_;
    std::size_t queued_bytes_ = 0;
    // Being written: the queue's first message, or a batch of its first in_flight_ messages.
    Message in_flight_message_;
    std::size_t in_flight_ = 0;
    bool writing_ = false;
    bool open_ = false;
    bool registered_ = false;
    bool closing_ = false;
    bool rate_warned_ = false;
    double tokens_ = 2.0 * hub_.config.max_messages_per_second;
    std::chrono::steady_clock::time_point refilled_ = std::chrono::steady_clock::now();
    websocket::close_code close_code_ = websocket::close_code::normal;
};

std::vector<std::shared_ptr<Session>> Hub::live_sessions() {
    std::vector<std::shared_ptr<Session>> out;
    std::lock_guard<std::mutex> lock(sessions_mutex);
    out.reserve(sessions.size());
    for (auto& [raw, weak] : sessions)
        if (auto session = weak.lock()) out.push_back(std::move(session));
    return out;
}

void Hub::publish(const std::shared_ptr<const Batch>& batch) {
    for (const auto& session : live_sessions()) session->deliver(batch);
}

void Hub::accept() {
    acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
        if (ec) {
            // Out of file descriptors and the like: try again shortly rather than spin.
            spdlog::warn("feed: accept failed: {}", ec.message());
            auto timer =
                std::make_shared<net::steady_timer>(acceptor->get_executor(), std::chrono::milliseconds(100));
            timer->async_wait([this, timer](beast::error_code) {
                if (acceptor->is_open()) accept();
            });
            return;
        }
        beast::error_code ignored;
        // Market data is many small frames: Nagle's algorithm would hold each one
        // back until the previous one is acknowledged.
        socket.set_option(net::ip::tcp::no_delay(true), ignored);
        if (config.socket_send_buffer_bytes > 0)
            socket.set_option(net::socket_base::send_buffer_size(config.socket_send_buffer_bytes), ignored);
        std::make_shared<Session>(std::move(socket), *this)->run();
        accept();
    });
}

Server::Server(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Server::~Server() {
    stop();
}

void Server::start() {
    Impl& s = *impl_;
    std::lock_guard<std::mutex> lock(s.lifecycle);
    if (s.started) throw std::runtime_error("the feed was already started");
    try {
        const tcp::endpoint endpoint(net::ip::make_address(s.config.host), s.config.port);
        s.acceptor.emplace(net::make_strand(s.ioc));
        s.acceptor->open(endpoint.protocol());
        s.acceptor->set_option(net::socket_base::reuse_address(true));
        s.acceptor->bind(endpoint);
        s.acceptor->listen(net::socket_base::max_listen_connections);
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error("feed: cannot listen on " + s.config.host + ":" +
                                 std::to_string(s.config.port) + ": " + e.code().message());
    }
    s.listener = std::make_unique<Listener>(
        s.config.conninfo, s.instruments, s.interest,
        [&s](std::shared_ptr<const Batch> batch) { s.publish(batch); }, s.listener_counters,
        s.config.poll_interval_ms);
    s.loader =
        std::make_unique<Loader>(s.config.conninfo, s.instruments, s.config.max_replay_entries,
                                 s.config.max_client_queue_bytes / 2, [&s] { return s.listener->ready(); });
    s.loader->start();
    s.listener->start();
    s.work.emplace(s.ioc.get_executor());
    s.accept();
    for (int i = 0; i < std::max(1, s.config.threads); ++i) s.threads.emplace_back([&s] { s.ioc.run(); });
    s.started = true;
    spdlog::info("feed: WebSocket on ws://{}:{}/stream", s.config.host, s.config.port);
}

void Server::stop() {
    Impl& s = *impl_;
    std::lock_guard<std::mutex> lock(s.lifecycle);
    if (!s.started || s.stopped) return;
    s.stopped = true;
    net::post(s.acceptor->get_executor(), [&s] {
        beast::error_code ignored;
        s.acceptor->close(ignored);
    });
    s.listener->stop();
    s.loader->stop();
    for (const auto& session : s.live_sessions()) session->shutdown();
    // Give clients a moment to complete the close handshake, then stop hard.
    const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
    while (std::chrono::steady_clock::now() < deadline) {
        {
            std::lock_guard<std::mutex> sessions_lock(s.sessions_mutex);
            if (s.sessions.empty()) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    s.work.reset();
    s.ioc.stop();
    for (auto& t : s.threads) t.join();
    s.threads.clear();
}

Stats Server::stats() const {
    Impl& s = *impl_;
    Stats out;
    {
        std::lock_guard<std::mutex> lock(s.sessions_mutex);
        out.connections = s.sessions.size();
    }
    out.messages_sent = s.messages_sent;
    out.slow_disconnects = s.slow_disconnects;
    out.listen_reconnects = s.listener_counters.reconnects;
    out.notifications = s.listener_counters.notifications;
    out.journal_entries_read = s.listener_counters.entries_read;
    out.last_notify_lag_us = s.listener_counters.last_lag_us;
    return out;
}

}  // namespace pgx::feed
