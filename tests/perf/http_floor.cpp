// The floor of `make bench-frontend`: the least an HTTP server can do for
// loadgen's POST /orders. One thread, epoll, keep-alive; it reads each
// request (headers, then Content-Length bytes of body) and answers 201 with
// a fixed JSON body the size of a real order's answer, without parsing the
// body and without a database. What loadgen measures against it is the cost
// of the load generator, the kernel's loopback TCP and the scheduling of the
// two cores, which every frontend pays before it does anything.
//
// Usage: http_floor PORT   (listens on 127.0.0.1 only; stops on SIGTERM or
// SIGINT and prints the number of requests it answered).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

namespace {

volatile std::sig_atomic_t stop = 0;

[[noreturn]] void Die(const char* what) {
    std::perror(what);
    std::exit(2);
}

// The size of the frontend's answer to a resting limit order (headers and body).
std::string Answer() {
    std::string body =
        "{\"order_id\":\"00000000-0000-0000-0000-000000000000\",\"client_id\":\"load-0\","
        "\"instrument\":\"BTC-USD\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"100.00\","
        "\"quantity\":\"0.0001\",\"filled_quantity\":\"0\","
        "\"status\":\"new\",\"time_in_force\":\"gtc\",\"post_only\":false,\"stp\":\"cancel_newest\","
        "\"display_quantity\":null,\"stop_price\":null,\"seq\":1,\"trades\":[],"
        "\"created_at\":\"2026-12-07T00:00:00.000000Z\"}";
    return "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Length of the first complete request in `in` (0: not complete yet).
size_t RequestLength(const std::string& in) {
    const size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos) return 0;
    size_t body = 0;
    for (size_t at = in.find("\r\n"); at != std::string::npos && at < end; at = in.find("\r\n", at + 2)) {
        static const char kName[] = "content-length:";
        if (strncasecmp(in.data() + at + 2, kName, sizeof kName - 1) == 0)
            body = std::strtoul(in.data() + at + 2 + sizeof kName - 1, nullptr, 10);
    }
    return in.size() >= end + 4 + body ? end + 4 + body : 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: http_floor PORT\n");
        return 2;
    }
    std::signal(SIGTERM, [](int) { stop = 1; });
    std::signal(SIGINT, [](int) { stop = 1; });
    std::signal(SIGPIPE, SIG_IGN);
    const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lfd < 0) Die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) Die("bind");
    if (listen(lfd, 1024) < 0) Die("listen");
    const int ep = epoll_create1(0);
    if (ep < 0) Die("epoll_create1");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) Die("epoll_ctl");

    const std::string answer = Answer();
    std::unordered_map<int, std::string> pending;  // unread request bytes per connection
    unsigned long long answered = 0;
    epoll_event events[256];
    char buf[65536];
    while (!stop) {
        const int n = epoll_wait(ep, events, 256, 200);
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == lfd) {
                for (int c; (c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    ev.events = EPOLLIN;
                    ev.data.fd = c;
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0) Die("epoll_ctl");
                }
                continue;
            }
            std::string& in = pending[fd];
            bool closed = false;
            for (;;) {
                const ssize_t got = recv(fd, buf, sizeof buf, 0);
                if (got > 0) {
                    in.append(buf, static_cast<size_t>(got));
                    if (static_cast<size_t>(got) < sizeof buf) break;
                } else {
                    closed = got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
                    break;
                }
            }
            std::string out;
            for (size_t len; (len = RequestLength(in)) != 0; ++answered) {
                in.erase(0, len);
                out += answer;
            }
            // loadgen keeps one request in flight per connection: the answer fits the socket's buffer.
            if (!out.empty() && send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) closed = true;
            if (closed) {
                close(fd);
                pending.erase(fd);
            }
        }
    }
    std::printf("http_floor: %llu requests answered\n", answered);
    return 0;
}
