// Which instruments some WebSocket client follows: the sessions say, the
// LISTEN thread asks. An instrument nobody follows is not read from the
// journal at all; its notifications only move the listener's position.
//
// Why that leaves no gap (listener.cpp skips, subscriptions.h joins): a
// session states its interest before it asks the loader for a snapshot or a
// replay, and the listener looks at the interest only after it learnt how far
// the journal goes (a notification's last sequence, or the journal heads it
// read). So when the listener skips to N without seeing a client, every
// entry up to N had committed before that client's snapshot or replay was
// read: the client's starting point is at or after N, and the listener reads
// everything after N from the next notification on.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace pgx::feed {

class Interest {
public:
    // A session's whole interest, replacing what it said before (nothing to
    // do when it is the same): the instruments it follows, and whether it
    // follows every instrument.
    void set(const void* session, std::vector<std::string> instruments, bool all);
    void forget(const void* session) { set(session, {}, false); }
    bool followed(const std::string& instrument) const;

private:
    struct Said {
        std::vector<std::string> instruments;
        bool all = false;
    };
    mutable std::mutex mutex_;
    std::map<const void*, Said> said_;
    std::map<std::string, int> count_;  // sessions per instrument
    int all_ = 0;                       // sessions following every instrument
};

}  // namespace pgx::feed
