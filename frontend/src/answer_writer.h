// Writes HTTP answers to the clients' sockets, from whichever thread has them
// (frontend/README.md, Answers).
//
// Pistache's ResponseWriter::send hands every answer to the reactor thread: an
// eventfd write and read, three epoll_ctl calls and a wake-up of the reactor per
// answer. Here the thread that has the answer (a database worker, or the reactor
// for an answer given at once) writes it with one send(2). What a socket cannot
// take at once (a client that does not read) waits in the connection's queue,
// which one thread of this class writes as the client reads; every later answer
// on that connection queues behind it, so the bytes of two answers never mix.
// Pistache's own write queue is never used for these connections: while it
// holds data, Pistache 0.0.5 loses requests that arrive on the connection
// (measured: 6 of 11 answered), and it has no bound.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pgx {

// One client connection's socket, as its answers see it.
class AnswerSocket {
public:
    // fd: a descriptor of the socket of its own (a dup), closed with this object, so that it
    // names this connection even after the HTTP layer closed its descriptor (whose number may
    // then be another connection's). alive: expires once the HTTP layer has dropped the
    // connection; what is still queued for it is dropped then.
    AnswerSocket(int fd, std::weak_ptr<void> alive);
    ~AnswerSocket();
    AnswerSocket(const AnswerSocket&) = delete;
    AnswerSocket& operator=(const AnswerSocket&) = delete;

private:
    friend class AnswerWriter;
    const int fd_;
    const std::weak_ptr<void> alive_;
    std::mutex mu_;                    // one writer at a time; guards what follows
    std::deque<std::string> pending_;  // answers (or their rest) the socket has not taken yet
    std::size_t offset_ = 0;           // bytes of pending_.front() already written
    std::size_t pending_bytes_ = 0;
    bool in_writer_ = false;  // the writer thread has it in its list
    bool closed_ = false;     // shut down: it answers nothing more
};

class AnswerWriter {
public:
    enum class Outcome {
        Sent,    // written whole
        Queued,  // (some of it) waits for the client to read
        Closed,  // the client did not read while more than the limit waited: connection shut down
        Gone,    // the connection was closed already
    };

    // max_pending_bytes: what may wait for one connection before it is shut down.
    explicit AnswerWriter(std::size_t max_pending_bytes);
    ~AnswerWriter();  // stops the thread; what is still queued is dropped
    AnswerWriter(const AnswerWriter&) = delete;
    AnswerWriter& operator=(const AnswerWriter&) = delete;

    Outcome write(const std::shared_ptr<AnswerSocket>& socket, std::string bytes);

private:
    void run();
    // Writes what the socket takes of its queue (its mutex held); false on a socket error.
    static bool flush(AnswerSocket& s);
    // Forgets the socket's queue (its mutex held).
    static void drop(AnswerSocket& s);

    const std::size_t max_pending_bytes_;
    std::mutex mu_;
    std::vector<std::shared_ptr<AnswerSocket>> incoming_;  // newly queued, for the thread's list
    int wake_fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace pgx
