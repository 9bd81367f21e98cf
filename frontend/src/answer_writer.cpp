#include "answer_writer.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pgx {

namespace {

enum class Send { All, Part, Error };

// Writes what the socket takes of data[*offset..]; advances *offset.
Send send_some(int fd, const std::string& data, std::size_t* offset) {
    while (*offset < data.size()) {
        ssize_t n = ::send(fd, data.data() + *offset, data.size() - *offset, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            *offset += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return Send::Part;
        } else {
            return Send::Error;  // reset or closed by the client: the HTTP layer drops the connection
        }
    }
    return Send::All;
}

// Wakes the writer thread. A failed write means the counter is already far from zero: the
// thread is woken anyway.
void wake(int fd) {
    uint64_t one = 1;
    ssize_t n = ::write(fd, &one, sizeof one);
    (void)n;
}

}  // namespace

AnswerSocket::AnswerSocket(int fd, std::weak_ptr<void> alive) : fd_(fd), alive_(std::move(alive)) {}

AnswerSocket::~AnswerSocket() {
    if (fd_ >= 0) ::close(fd_);
}

AnswerWriter::AnswerWriter(std::size_t max_pending_bytes) : max_pending_bytes_(max_pending_bytes) {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    thread_ = std::thread([this] { run(); });
}

AnswerWriter::~AnswerWriter() {
    stop_ = true;
    wake(wake_fd_);
    thread_.join();
    ::close(wake_fd_);
}

void AnswerWriter::drop(AnswerSocket& s) {
    s.pending_.clear();
    s.pending_bytes_ = 0;
    s.offset_ = 0;
}

bool AnswerWriter::flush(AnswerSocket& s) {
    while (!s.pending_.empty()) {
        std::size_t before = s.offset_;
        Send r = send_some(s.fd_, s.pending_.front(), &s.offset_);
        s.pending_bytes_ -= s.offset_ - before;
        if (r == Send::Error) return false;
        if (r == Send::Part) return true;
        s.pending_.pop_front();
        s.offset_ = 0;
    }
    return true;
}

AnswerWriter::Outcome AnswerWriter::write(const std::shared_ptr<AnswerSocket>& socket, std::string bytes) {
    AnswerSocket& s = *socket;
    std::lock_guard<std::mutex> lock(s.mu_);
    if (s.closed_ || s.alive_.expired()) return Outcome::Gone;
    if (s.pending_.empty()) {
        std::size_t offset = 0;
        Send r = send_some(s.fd_, bytes, &offset);
        if (r == Send::All) return Outcome::Sent;
        if (r == Send::Error) return Outcome::Gone;
        s.offset_ = offset;
        s.pending_bytes_ = bytes.size() - offset;
    } else {
        s.pending_bytes_ += bytes.size();
    }
    s.pending_.push_back(std::move(bytes));
    if (s.pending_bytes_ > max_pending_bytes_) {
        // A client that asks and does not read would grow this without end: it gets no answer
        // more, and the HTTP layer sees the connection end.
        ::shutdown(s.fd_, SHUT_RDWR);
        s.closed_ = true;
        drop(s);
        return Outcome::Closed;
    }
    if (!s.in_writer_) {
        s.in_writer_ = true;
        {
            std::lock_guard<std::mutex> writer_lock(mu_);
            incoming_.push_back(socket);
        }
        wake(wake_fd_);
    }
    return Outcome::Queued;
}

void AnswerWriter::run() {
    std::vector<std::shared_ptr<AnswerSocket>> active;  // sockets with queued answers
    std::vector<pollfd> fds;
    while (!stop_) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            for (auto& s : incoming_) active.push_back(std::move(s));
            incoming_.clear();
        }
        fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
        for (const auto& s : active) fds.push_back(pollfd{s->fd_, POLLOUT, 0});
        // With queues to write, also wakes every second to drop those of connections closed
        // meanwhile; with none, sleeps until write() or the destructor wakes it.
        if (::poll(fds.data(), fds.size(), active.empty() ? -1 : 1000) < 0 && errno != EINTR) {
            spdlog::error("http: poll of slow clients' sockets failed: {}", std::strerror(errno));
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            ssize_t n = ::read(wake_fd_, &count, sizeof count);  // resets the counter
            (void)n;
        }
        std::size_t kept = 0;
        for (std::size_t i = 0; i < active.size(); ++i) {
            AnswerSocket& s = *active[i];
            bool done;
            {
                std::lock_guard<std::mutex> lock(s.mu_);
                bool ok = !s.closed_ && !s.alive_.expired();
                if (ok && fds[i + 1].revents != 0) ok = flush(s);
                if (!ok) drop(s);
                done = s.pending_.empty();
                if (done) s.in_writer_ = false;
            }
            if (done) continue;
            if (kept != i) active[kept] = std::move(active[i]);
            ++kept;
        }
        active.resize(kept);
    }
}

}  // namespace pgx
