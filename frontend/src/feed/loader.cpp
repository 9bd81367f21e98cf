#include "loader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include "instruments.h"
#include "pg.h"

namespace pgx::feed {
namespace {

constexpr int kMaxBackoffMs = 5000;

LoadResult failure(const std::string& instrument, std::string code, std::string message) {
    LoadResult r;
    r.instrument = instrument;
    r.error_code = std::move(code);
    r.error_message = std::move(message);
    return r;
}

// A statement's error as the client sees it.
LoadResult from_error(const std::string& instrument, const pg::Error& e) {
    if (e.sqlstate == "42704")
        return failure(instrument, "unknown_instrument", "unknown instrument " + instrument);
    return failure(instrument, "load_failed", e.what());
}

}  // namespace

Loader::Loader(std::string conninfo, Instruments& instruments, int64_t max_replay_entries,
               std::size_t max_replay_bytes, std::function<bool()> live_ready)
    : conninfo_(std::move(conninfo)),
      instruments_(instruments),
      max_replay_entries_(max_replay_entries),
      max_replay_bytes_(max_replay_bytes),
      live_ready_(std::move(live_ready)) {}

Loader::~Loader() {
    stop();
}

void Loader::start() {
    thread_ = std::thread([this] { run(); });
}

void Loader::stop() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void Loader::submit(LoadRequest request, Reply reply) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back({std::move(request), std::move(reply)});
    }
    wake_.notify_one();
}

void Loader::run() {
    std::unique_ptr<pg::Connection> conn;
    int backoff_ms = 100;
    std::vector<Job> jobs;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !jobs.empty(); });
            while (!stopping_ && !live_ready_()) wake_.wait_for(lock, std::chrono::milliseconds(20));
            if (stopping_) return;
            while (!queue_.empty()) {
                jobs.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        try {
            if (!conn) conn = std::make_unique<pg::Connection>(conninfo_, "pgx-feed-load");
            serve(*conn, jobs);
            backoff_ms = 100;
        } catch (const std::exception& e) {
            // Unanswered jobs stay in `jobs` and are retried on a new connection.
            spdlog::warn("feed: loader connection failed ({}); retrying in {} ms", e.what(), backoff_ms);
            conn.reset();
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return stopping_; });
            backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
        }
    }
}

// Answers jobs front to back, removing each once answered; snapshot requests
// for one instrument are answered together from one query.
void Loader::serve(pg::Connection& conn, std::vector<Job>& jobs) {
    while (!jobs.empty()) {
        const LoadRequest& first = jobs.front().request;
        LoadResult result;
        if (first.kind == LoadKind::kSnapshot) {
            result = snapshot(conn, first.instrument);
        } else if (first.kind == LoadKind::kReplay) {
            result = replay(conn, first);
        } else {
            result.kind = LoadKind::kCheck;
            result.instrument = first.instrument;
            if (!instrument_id(conn, first.instrument))
                result =
                    failure(first.instrument, "unknown_instrument", "unknown instrument " + first.instrument);
        }
        const bool shared = first.kind == LoadKind::kSnapshot;
        const std::string instrument = first.instrument;
        auto answered = [&](const Job& job) {
            return &job == &jobs.front() || (shared && job.request.kind == LoadKind::kSnapshot &&
                                             job.request.instrument == instrument);
        };
        std::vector<Job> rest;
        for (Job& job : jobs) {
            if (!answered(job)) {
                rest.push_back(std::move(job));
                continue;
            }
            LoadResult copy = result;
            copy.token = job.request.token;
            job.reply(std::move(copy));
        }
        jobs.swap(rest);
    }
}

LoadResult Loader::snapshot(pg::Connection& conn, const std::string& instrument) {
    try {
        pg::Result r =
            conn.exec("SELECT s::text, (s->>'seq')::bigint FROM exchange.book_snapshot($1) s", {instrument});
        LoadResult result;
        result.kind = LoadKind::kSnapshot;
        result.instrument = instrument;
        result.snapshot = make_snapshot(r.text(0, 0));
        result.seq = r.int64(0, 1);
        return result;
    } catch (const pg::Error& e) {
        if (e.sqlstate.empty()) throw;  // the connection: retried by run()
        return from_error(instrument, e);
    }
}

LoadResult Loader::replay(pg::Connection& conn, const LoadRequest& request) {
    try {
        const std::optional<int> id = instrument_id(conn, request.instrument);
        if (!id)
            return failure(request.instrument, "unknown_instrument",
                           "unknown instrument " + request.instrument);
        pg::Result r = conn.exec("SELECT seq FROM exchange.journal_heads() WHERE instrument_id = $1",
                                 {std::to_string(*id)});
        if (r.rows() != 1)
            return failure(request.instrument, "unknown_instrument", "unknown instrument " + request.instrument);
        const int64_t newest = r.int64(0, 0);
        // A sequence the journal never had, or too far back: a snapshot instead.
        if (request.from_seq < 0 || request.from_seq > newest ||
            newest - request.from_seq > max_replay_entries_)
            return snapshot(conn, request.instrument);
        LoadResult result;
        result.kind = LoadKind::kReplay;
        result.instrument = request.instrument;
        result.seq = newest;
        const auto count = static_cast<int>(newest - request.from_seq);
        std::vector<JournalRow> rows = read_journal(conn, *id, request.from_seq, newest, count);
        // Fewer entries than sequence numbers: some were removed from the journal (since extension
        // 0.17 the settled ones by exchange.prune; before, only by its owner disabling a trigger). A
        // replay with a hole would be a gap for the client: a snapshot instead. (The key
        // (instrument_id, seq) makes count rows contiguous.)
        if (rows.size() != static_cast<std::size_t>(count)) {
            spdlog::info("feed: the journal of {} lacks entries after {}: a snapshot instead of a replay",
                         request.instrument, request.from_seq);
            return snapshot(conn, request.instrument);
        }
        Batch replayed;
        for (JournalRow& row : rows) {
            append(replayed, request.instrument, std::move(row));
            // Sent at once, it would overflow the client's queue: resynchronise instead.
            if (replayed.bytes > max_replay_bytes_) return snapshot(conn, request.instrument);
        }
        result.entries = std::move(replayed.entries);
        return result;
    } catch (const pg::Error& e) {
        if (e.sqlstate.empty()) throw;  // the connection: retried by run()
        return from_error(request.instrument, e);
    }
}

std::optional<int> Loader::instrument_id(pg::Connection& conn, const std::string& symbol) {
    if (auto id = instruments_.id(symbol)) return id;
    instruments_.reload(conn);  // created since the map was read?
    return instruments_.id(symbol);
}

}  // namespace pgx::feed
