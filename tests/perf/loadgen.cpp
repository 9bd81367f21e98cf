// Open-loop HTTP load generator for POST /orders (make bench), or for
// DELETE /orders/{id} with --cancel-file PATH: one line per order,
// "<order_uuid> <client_id>", request i (in due order, warm-up included)
// cancelling the order of line i, each line used once; with --amend Q as
// well, PATCH /orders/{id} to quantity Q instead of the DELETE.
//
// Request i is due at start + i / rate whatever happened to the earlier ones,
// and its latency is measured from that due time, not from when a connection
// became free to send it: a closed-loop tool waits for answers before sending
// more and so hides queueing delay (coordinated omission). Keep-alive
// connections, one request in flight each; more connections are opened (up
// to --max-connections) when all are busy and a request is due.
//
// Prints one line: achieved rate, status counts, latency percentiles in ms.
// With --log PATH it also writes one line per measured request, in the order
// the answers arrived: "<due time, Unix seconds> <latency ms> <HTTP status>",
// to line slow requests up with what the server did at that moment.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string host = "127.0.0.1";
    int port = 8000;
    double rate = 2000;      // requests per second
    double seconds = 10;     // measured duration
    double warmup = 2;       // seconds sent at the same rate, not measured
    int connections = 16;    // opened at start
    int max_connections = 512;
    std::vector<std::string> instruments{"BTC-USD"};  // each order picks one at random
    int clients = 1000;      // distinct client_ids
    bool keys = false;       // send an Idempotency-Key with every order
    std::string cancel_file;  // non-empty: send cancels of the orders listed there instead of new orders
    std::string amend_quantity;  // non-empty (with cancel_file): amend them to this quantity instead
    std::string log;             // non-empty: one line per measured request written there
};

struct CancelTarget {
    std::string order_id;
    std::string client_id;
};

struct Connection {
    int fd = -1;
    bool busy = false;
    Clock::time_point due;  // of the request in flight
    bool measured = false;
    std::string in;
};

[[noreturn]] void Die(const char* what) {
    std::fprintf(stderr, "loadgen: %s: %s\n", what, std::strerror(errno));
    std::exit(2);
}

int Connect(const Options& o) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) Die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(o.port));
    if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) Die("inet_pton");
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 && errno != EINPROGRESS) Die("connect");
    return fd;
}

// Prices in integer cents around 100.00, formatted as exact decimal strings.
std::string Body(const Options& o, std::mt19937_64& rng) {
    const std::string& instrument = o.instruments[rng() % o.instruments.size()];
    const bool buy = rng() % 2 == 0;
    const int cents = 10000 + static_cast<int>(rng() % 41) - 20 + (buy ? -5 : 5);
    const int lots = 1 + static_cast<int>(rng() % 9);
    char body[320];
    std::snprintf(body, sizeof body,
                  "{\"client_id\":\"load-%d\",\"instrument\":\"%s\",\"side\":\"%s\",\"type\":\"limit\","
                  "\"price\":\"%d.%02d\",\"quantity\":\"0.%04d\"}",
                  static_cast<int>(rng() % static_cast<uint64_t>(o.clients)), instrument.c_str(),
                  buy ? "buy" : "sell", cents / 100, cents % 100, lots);
    return body;
}

std::string Request(const Options& o, const std::string& body, uint64_t n) {
    std::string r = "POST /orders HTTP/1.1\r\nHost: " + o.host + "\r\nConnection: keep-alive\r\n" +
                    "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (o.keys) r += "Idempotency-Key: lg-" + std::to_string(getpid()) + "-" + std::to_string(n) + "\r\n";
    return r + "\r\n" + body;
}

// Unreserved characters (RFC 3986) as they are, others as %XX.
std::string UrlEncode(const std::string& s) {
    std::string out;
    for (const unsigned char ch : s) {
        if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out += static_cast<char>(ch);
        } else {
            char hex[4];
            std::snprintf(hex, sizeof hex, "%%%02X", ch);
            out += hex;
        }
    }
    return out;
}

std::string CancelRequest(const Options& o, const CancelTarget& t) {
    if (!o.amend_quantity.empty()) {
        const std::string body = "{\"quantity\":\"" + o.amend_quantity + "\"}";
        return "PATCH /orders/" + UrlEncode(t.order_id) + "?client_id=" + UrlEncode(t.client_id) +
               " HTTP/1.1\r\nHost: " + o.host + "\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n" +
               "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    }
    return "DELETE /orders/" + UrlEncode(t.order_id) + "?client_id=" + UrlEncode(t.client_id) +
           " HTTP/1.1\r\nHost: " + o.host + "\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
}

// The --cancel-file lines, "<order_uuid> <client_id>" (blank lines skipped); exits with status 2 on a bad file.
std::vector<CancelTarget> ReadCancelFile(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        std::fprintf(stderr, "loadgen: cannot open --cancel-file %s\n", path.c_str());
        std::exit(2);
    }
    std::vector<CancelTarget> out;
    std::string line;
    for (size_t number = 1; std::getline(in, line); ++number) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        const size_t space = line.find(' ');
        if (space == 0 || space == std::string::npos || space + 1 == line.size() ||
            line.find(' ', space + 1) != std::string::npos) {
            std::fprintf(stderr, "loadgen: %s:%zu: expected \"<order_uuid> <client_id>\"\n", path.c_str(), number);
            std::exit(2);
        }
        out.push_back(CancelTarget{line.substr(0, space), line.substr(space + 1)});
    }
    return out;
}

// A complete response at the front of `in`: its status, and `in` advanced past it.
bool TakeResponse(std::string& in, int& status) {
    const size_t head_end = in.find("\r\n\r\n");
    if (head_end == std::string::npos) return false;
    size_t length = 0;
    for (size_t p = in.find("\r\n") + 2; p < head_end;) {
        const size_t e = in.find("\r\n", p);
        if (strncasecmp(in.c_str() + p, "content-length:", 15) == 0) length = std::strtoul(in.c_str() + p + 15, nullptr, 10);
        p = e + 2;
    }
    if (in.size() < head_end + 4 + length) return false;
    status = std::atoi(in.c_str() + 9);
    in.erase(0, head_end + 4 + length);
    return true;
}

// "A,B,C" -> {"A","B","C"} (empty items dropped).
std::vector<std::string> Split(const std::string& list) {
    std::vector<std::string> out;
    for (size_t p = 0; p <= list.size();) {
        const size_t e = std::min(list.find(',', p), list.size());
        if (e > p) out.push_back(list.substr(p, e - p));
        p = e + 1;
    }
    return out;
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const char* v = argv[i + 1];
        if (k == "--host") o.host = v;
        else if (k == "--port") o.port = std::atoi(v);
        else if (k == "--rate") o.rate = std::atof(v);
        else if (k == "--seconds") o.seconds = std::atof(v);
        else if (k == "--warmup") o.warmup = std::atof(v);
        else if (k == "--connections") o.connections = std::atoi(v);
        else if (k == "--max-connections") o.max_connections = std::atoi(v);
        else if (k == "--instruments") o.instruments = Split(v);
        else if (k == "--clients") o.clients = std::atoi(v);
        else if (k == "--keys") o.keys = std::atoi(v) != 0;
        else if (k == "--cancel-file") o.cancel_file = v;
        else if (k == "--amend") o.amend_quantity = v;
        else if (k == "--log") o.log = v;
        else {
            std::fprintf(stderr, "loadgen: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    if (!o.amend_quantity.empty() && (o.cancel_file.empty() || o.amend_quantity.find('"') != std::string::npos)) {
        std::fprintf(stderr, "loadgen: --amend QUANTITY needs --cancel-file (the orders to amend)\n");
        return 2;
    }
    if (o.rate <= 0 || o.seconds <= 0 || o.connections < 1 || o.instruments.empty()) {
        std::fprintf(stderr, "loadgen: rate, seconds and connections must be positive, instruments not empty\n");
        return 2;
    }
    const uint64_t total = static_cast<uint64_t>((o.warmup + o.seconds) * o.rate);
    std::vector<CancelTarget> cancels;
    if (!o.cancel_file.empty()) {
        cancels = ReadCancelFile(o.cancel_file);
        if (cancels.size() < total) {
            std::fprintf(stderr,
                         "loadgen: --cancel-file %s has %zu orders, the run needs %llu (rate %.0f/s x (warmup %g s "
                         "+ %g s))\n",
                         o.cancel_file.c_str(), cancels.size(), static_cast<unsigned long long>(total), o.rate,
                         o.warmup, o.seconds);
            return 2;
        }
    }

    const int ep = epoll_create1(0);
    if (ep < 0) Die("epoll_create1");
    std::vector<Connection> conns;
    conns.reserve(static_cast<size_t>(o.max_connections));
    auto open_one = [&] {
        Connection c;
        c.fd = Connect(o);
        conns.push_back(c);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = conns.size() - 1;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) < 0) Die("epoll_ctl");
    };
    for (int i = 0; i < o.connections; ++i) open_one();

    FILE* log = nullptr;
    if (!o.log.empty() && !(log = std::fopen(o.log.c_str(), "w"))) Die("fopen --log");

    std::mt19937_64 rng(42);
    const auto connect_grace = std::chrono::milliseconds(200);  // let connects finish
    const auto start = Clock::now() + connect_grace;
    // The wall clock at `start`, for the log's due times.
    const double start_unix =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch() + connect_grace).count();
    const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
    auto due_of = [&](uint64_t i) {
        return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / o.rate));
    };
    std::deque<Clock::time_point> waiting;  // due, not yet sent
    std::vector<double> latencies;
    latencies.reserve(static_cast<size_t>(o.seconds * o.rate) + 16);
    std::map<int, uint64_t> statuses;
    uint64_t next = 0, sent = 0, done = 0, errors = 0;  // sent: taken from `waiting` so far
    epoll_event events[256];

    while (done < total) {
        const auto now = Clock::now();
        while (next < total && due_of(next) <= now) waiting.push_back(due_of(next++));
        for (size_t i = 0; i < conns.size() && !waiting.empty(); ++i) {
            Connection& c = conns[i];
            if (c.busy) continue;
            c.due = waiting.front();
            waiting.pop_front();
            c.measured = c.due >= measure_from;
            const std::string req = cancels.empty() ? Request(o, Body(o, rng), next) : CancelRequest(o, cancels[sent]);
            ++sent;
            // Requests are small: one write fits the socket buffer of an idle keep-alive connection.
            if (write(c.fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
                ++errors, ++done;
                continue;
            }
            c.busy = true;
        }
        if (!waiting.empty() && static_cast<int>(conns.size()) < o.max_connections) open_one();
        // Sleep until the next request is due (to the microsecond: a millisecond
        // timeout would either spin or send late at rates above 1,000/s).
        timespec timeout{0, 1000000};
        if (waiting.empty() && next < total) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(due_of(next) - Clock::now()).count();
            timeout.tv_sec = ns > 0 ? ns / 1000000000 : 0;
            timeout.tv_nsec = ns > 0 ? ns % 1000000000 : 0;
        }
        const int n = epoll_pwait2(ep, events, 256, &timeout, nullptr);
        for (int e = 0; e < n; ++e) {
            Connection& c = conns[events[e].data.u64];
            char buf[65536];
            const ssize_t got = read(c.fd, buf, sizeof buf);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN) continue;
                // The server closed the connection: count the request in flight as failed, reconnect.
                epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
                close(c.fd);
                if (c.busy) ++errors, ++done;
                c = Connection();
                c.fd = Connect(o);
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.u64 = events[e].data.u64;
                epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
                continue;
            }
            c.in.append(buf, static_cast<size_t>(got));
            int status;
            while (c.busy && TakeResponse(c.in, status)) {
                if (c.measured) {
                    latencies.push_back(Ms(Clock::now() - c.due));
                    ++statuses[status];
                    if (log)
                        std::fprintf(log, "%.6f %.3f %d\n",
                                     start_unix + std::chrono::duration<double>(c.due - start).count(),
                                     latencies.back(), status);
                }
                c.busy = false;
                ++done;
            }
        }
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - measure_from).count();
    if (log && std::fclose(log) != 0) Die("fclose --log");
    std::sort(latencies.begin(), latencies.end());
    auto pct = [&](double p) {
        if (latencies.empty()) return 0.0;
        return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p / 100.0 * latencies.size()))];
    };
    uint64_t ok = 0;
    std::string codes;
    for (const auto& [code, count] : statuses) {
        if (code >= 200 && code < 300) ok += count;
        codes += " " + std::to_string(code) + ":" + std::to_string(count);
    }
    std::printf("target %.0f/s achieved %.0f/s ok %llu errors %llu connections %zu |%s | p50 %.2f p90 %.2f p99 %.2f "
                "p99.9 %.2f max %.2f ms\n",
                o.rate, latencies.size() / elapsed, static_cast<unsigned long long>(ok),
                static_cast<unsigned long long>(errors), conns.size(), codes.c_str(), pct(50), pct(90), pct(99),
                pct(99.9), latencies.empty() ? 0.0 : latencies.back());
    return 0;
}
