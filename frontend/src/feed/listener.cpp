#include "listener.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <limits>
#include <map>
#include <utility>

#include "instruments.h"
#include "interest.h"
#include "pg.h"

namespace pgx::feed {
namespace {

constexpr int kRowsPerRead = 1000;
constexpr int kMaxBackoffMs = 5000;

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// "instrument_id:first_seq:last_seq"; false if the payload is something else.
bool parse_notification(const char* payload, int& instrument_id, int64_t& last_seq) {
    long long id = 0, first = 0, last = 0;
    char tail = 0;
    if (std::sscanf(payload, "%lld:%lld:%lld%c", &id, &first, &last, &tail) != 3) return false;
    instrument_id = static_cast<int>(id);
    last_seq = last;
    return true;
}

}  // namespace

Listener::Listener(std::string conninfo, Instruments& instruments, const Interest& interest, Publish publish,
                   ListenerCounters& counters, int poll_interval_ms)
    : conninfo_(std::move(conninfo)),
      instruments_(instruments),
      interest_(interest),
      publish_(std::move(publish)),
      counters_(counters),
      poll_interval_ms_(std::max(1, poll_interval_ms)) {}

Listener::~Listener() {
    stop();
}

void Listener::start() {
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
    thread_ = std::thread([this] { run(); });
}

void Listener::stop() {
    if (!thread_.joinable()) return;
    stopping_ = true;
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof one) < 0) spdlog::error("feed: cannot wake the LISTEN thread");
    thread_.join();
    close(wake_fd_);
    wake_fd_ = -1;
}

// Waits `ms` or until stop(); false when stopping.
bool Listener::sleep_unless_stopped(int ms) {
    pollfd fd{wake_fd_, POLLIN, 0};
    poll(&fd, 1, ms);
    return !stopping_;
}

void Listener::run() {
    bool connected_before = false;
    int backoff_ms = 100;
    while (!stopping_) {
        try {
            pg::Connection conn(conninfo_, "pgx-feed-listen");
            if (connected_before) counters_.reconnects++;
            const bool first = !connected_before;
            connected_before = true;
            backoff_ms = 100;
            serve(conn, first);
        } catch (const std::exception& e) {
            if (stopping_) break;
            spdlog::warn("feed: LISTEN connection lost ({}); reconnecting in {} ms", e.what(), backoff_ms);
            if (!sleep_unless_stopped(backoff_ms)) break;
            backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
        }
    }
}

// LISTENs, catches up every instrument from the journal, then follows the
// notifications until stop() or a connection error (thrown). Where LISTEN is
// refused because the database is a standby, polls the journal instead.
void Listener::serve(pg::Connection& conn, bool first) {
    // LISTEN before reading the journal: whatever commits in between is
    // both read now and notified later, and re-reading is harmless.
    bool polling = false;
    try {
        conn.exec("LISTEN exchange_events");
    } catch (const pg::Error& e) {
        // 25006 "cannot execute LISTEN during recovery": a standby, where no
        // NOTIFY is ever delivered (a read-only transaction may LISTEN). The
        // statement failed alone (autocommit): the connection is usable.
        if (e.sqlstate != "25006") throw;
        polling = true;
    }
    for (const auto& row : instruments_.reload(conn)) {
        // At first start the feed begins at the present; later (after a
        // reconnect) an instrument it has never seen began while it was away.
        if (!last_seen_.count(row.id)) last_seen_[row.id] = first ? row.last_seq : 0;
        follow(conn, row.id, row.last_seq);
    }
    ready_ = true;
    if (polling) {
        if (!polling_announced_)
            spdlog::info(
                "feed: the database is in recovery (a standby): LISTEN refused, following the journal "
                "every {} ms",
                poll_interval_ms_);
        else
            spdlog::info("feed: following the journal of {} instruments every {} ms (reconnected, caught up)",
                         last_seen_.size(), poll_interval_ms_);
        polling_announced_ = true;
        return poll_journal(conn);
    }
    spdlog::info("feed: listening on exchange_events for {} instruments{}", last_seen_.size(),
                 first ? "" : " (reconnected, caught up)");

    pollfd fds[2] = {{PQsocket(conn.raw()), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    while (!stopping_) {
        // Check the queue before sleeping: libpq also queues notifications
        // that arrive while a catch-up query runs, and the socket will not
        // signal those again.
        std::map<int, int64_t> touched;  // instrument -> the newest notified sequence
        while (PGnotify* n = PQnotifies(conn.raw())) {
            int id = 0;
            int64_t last = 0;
            if (parse_notification(n->extra, id, last)) {
                counters_.notifications++;
                auto it = last_seen_.find(id);
                if (it == last_seen_.end() || last > it->second) touched[id] = std::max(touched[id], last);
            }
            PQfreemem(n);
        }
        for (const auto& [id, last] : touched) {
            if (!last_seen_.count(id)) {
                instruments_.reload(conn);
                last_seen_[id] = 0;  // created after the feed started: its whole journal is new
            }
            follow(conn, id, last);
        }
        if (!touched.empty()) continue;
        if (poll(fds, 2, -1) < 0 && errno != EINTR) throw std::runtime_error("poll failed");
        if (stopping_) return;
        if (!PQconsumeInput(conn.raw())) throw pg::Error(PQerrorMessage(conn.raw()), "");
    }
}

// The notification loop's work, driven by the journal heads: an instrument
// whose head is past its last seen sequence is followed to that head (read,
// or skipped to it if nobody follows it: the head was learnt before the
// interest is asked, as with a notification). A promoted standby is still
// polled: the next reconnect LISTENs again.
void Listener::poll_journal(pg::Connection& conn) {
    while (sleep_unless_stopped(poll_interval_ms_)) {
        for (const auto& row : instruments_.reload(conn)) {
            auto it = last_seen_.find(row.id);
            if (it == last_seen_.end())
                last_seen_[row.id] = 0;  // created after the feed started: its whole journal is new
            else if (row.last_seq <= it->second)
                continue;
            follow(conn, row.id, row.last_seq);
            if (stopping_) return;
        }
    }
}

void Listener::follow(pg::Connection& conn, int instrument_id, int64_t head) {
    const std::optional<std::string> symbol = instruments_.symbol(instrument_id);
    if (!symbol) return;
    int64_t& last = last_seen_[instrument_id];
    // Asked only now, after `head` was learnt: see interest.h.
    if (!interest_.followed(*symbol)) {
        last = std::max(last, head);
        return;
    }
    catch_up(conn, instrument_id, *symbol, last);
}

// Publishes every journal entry of the instrument after `last`, in batches,
// moving `last` (its last_seen_) along.
void Listener::catch_up(pg::Connection& conn, int instrument_id, const std::string& symbol, int64_t& last) {
    for (;;) {
        std::vector<JournalRow> rows =
            read_journal(conn, instrument_id, last, std::numeric_limits<int64_t>::max(), kRowsPerRead);
        if (rows.empty()) return;
        counters_.entries_read += rows.size();
        auto batch = std::make_shared<Batch>();
        batch->instrument = symbol;
        for (JournalRow& row : rows) {
            if (row.seq != last + 1)
                spdlog::error("feed: journal of {} jumps from {} to {}", symbol, last, row.seq);
            last = row.seq;
            append(*batch, symbol, std::move(row));
        }
        counters_.last_lag_us =
            static_cast<uint64_t>(std::max<int64_t>(0, now_us() - batch->last_created_us));
        publish_(std::move(batch));
        if (static_cast<int>(rows.size()) < kRowsPerRead) return;
    }
}

}  // namespace pgx::feed
