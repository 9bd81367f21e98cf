// The loader: one thread with its own connection that serves what a client
// needs before it can join the live stream: a book snapshot, the journal
// entries after a sequence (resume), or a check that an instrument exists.
// It never delays the LISTEN thread; concurrent snapshot requests for one
// instrument share one query.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "journal.h"

namespace pgx::feed {

class Instruments;
namespace pg {
class Connection;
}

enum class LoadKind { kSnapshot, kReplay, kCheck };

struct LoadRequest {
    LoadKind kind = LoadKind::kSnapshot;
    std::string instrument;
    int64_t from_seq = 0;  // kReplay: send the entries after this one
    uint64_t token = 0;    // echoed back, so a stale answer can be recognised
};

struct LoadResult {
    LoadKind kind = LoadKind::kSnapshot;  // a replay that is too old comes back as a snapshot
    std::string instrument;
    uint64_t token = 0;
    std::string error_code;  // empty on success
    std::string error_message;
    Message snapshot;            // kSnapshot
    int64_t seq = 0;             // the sequence the client is at after this result
    std::vector<Entry> entries;  // kReplay
};

class Loader {
public:
    using Reply = std::function<void(LoadResult)>;  // called on the loader thread; must not block
    // Requests wait until live_ready() (the LISTEN connection is in place): a
    // snapshot older than the live stream's starting point would leave a gap.
    Loader(std::string conninfo, Instruments& instruments, int64_t max_replay_entries,
           std::size_t max_replay_bytes, std::function<bool()> live_ready);
    ~Loader();
    void start();
    void stop();
    void submit(LoadRequest request, Reply reply);

private:
    struct Job {
        LoadRequest request;
        Reply reply;
    };
    void run();
    void serve(pg::Connection& conn, std::vector<Job>& jobs);
    LoadResult snapshot(pg::Connection& conn, const std::string& instrument);
    LoadResult replay(pg::Connection& conn, const LoadRequest& request);
    std::optional<int> instrument_id(pg::Connection& conn, const std::string& symbol);

    std::string conninfo_;
    Instruments& instruments_;
    int64_t max_replay_entries_;
    std::size_t max_replay_bytes_;
    std::function<bool()> live_ready_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> queue_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace pgx::feed
