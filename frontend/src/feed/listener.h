// The process's one LISTEN connection: turns NOTIFYs on exchange_events into
// batches of journal entries, gap-free per instrument. It reads from its own
// last seen sequence (not only the notified range), so a missed notification
// or a lost connection is caught up from the journal. The journal of an
// instrument no client follows (interest.h) is not read: its position moves
// to the notified sequence.
//
// On a standby (a read replica) PostgreSQL refuses LISTEN (25006: no NOTIFY
// is delivered during recovery), so the listener follows the journal by
// polling instead: every poll_interval_ms it reads the journal heads and
// reads on from its last seen sequence wherever a head moved, exactly as it
// does for a notification.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "journal.h"

namespace pgx::feed {

class Instruments;
class Interest;
namespace pg {
class Connection;
}

struct ListenerCounters {
    std::atomic<uint64_t> notifications{0};
    std::atomic<uint64_t> entries_read{0};
    std::atomic<uint64_t> reconnects{0};
    std::atomic<uint64_t> last_lag_us{0};
};

class Listener {
public:
    // publish runs on the listener thread and must not block.
    using Publish = std::function<void(std::shared_ptr<const Batch>)>;
    Listener(std::string conninfo, Instruments& instruments, const Interest& interest, Publish publish,
             ListenerCounters& counters, int poll_interval_ms = 10);
    ~Listener();
    void start();
    void stop();
    // True once the first LISTEN is in place (or, on a standby, the first
    // journal heads are read): from then on every committed entry reaches
    // publish, so snapshots may be served.
    bool ready() const { return ready_; }

private:
    void run();
    void serve(pg::Connection& conn, bool first);
    // Where LISTEN is refused (a standby): reads the journal heads every
    // poll_interval_ms_ and follows each instrument whose head moved, until
    // stop() or a connection error (thrown).
    void poll_journal(pg::Connection& conn);
    // Reads and publishes what follows last_seen_[id] if a client follows the
    // instrument; else moves last_seen_[id] to `head`, which must have been
    // learnt (from a notification or the journal heads) before this call.
    void follow(pg::Connection& conn, int instrument_id, int64_t head);
    void catch_up(pg::Connection& conn, int instrument_id, const std::string& symbol, int64_t& last);
    bool sleep_unless_stopped(int ms);

    std::string conninfo_;
    Instruments& instruments_;
    const Interest& interest_;
    Publish publish_;
    ListenerCounters& counters_;
    const int poll_interval_ms_;
    bool polling_announced_ = false;    // listener thread only
    std::map<int, int64_t> last_seen_;  // listener thread only
    std::atomic<bool> stopping_{false};
    std::atomic<bool> ready_{false};
    int wake_fd_ = -1;
    std::thread thread_;
};

}  // namespace pgx::feed
