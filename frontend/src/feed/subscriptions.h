// One client's protocol state: its subscriptions, and how a snapshot or a
// journal replay joins the live stream. Pure logic (no I/O, no locks): the
// session calls it on its strand and carries out the returned effects.
//
// Joining: when a client subscribes to an instrument's book, the session
// starts holding back that instrument's live batches and asks the loader for
// a snapshot. The snapshot is read after the subscription took effect, so
// its sequence S is at least that of every batch the client did not hold;
// once it arrives the client gets the snapshot, then the held and later
// entries with seq > S. A resume (from_seq F) works the same way with the
// journal entries F+1..R in place of the snapshot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "journal.h"
#include "loader.h"

namespace pgx::feed {

class Instruments;

class Subscriptions {
public:
    struct Effects {
        std::vector<Message> send;
        std::vector<LoadRequest> loads;
        bool overflow = false;  // held-back data beyond the client's budget
    };

    Subscriptions(const Instruments& instruments, std::size_t max_held_bytes)
        : instruments_(instruments), max_held_bytes_(max_held_bytes) {}

    // Order updates only of this client (its API key's), none without one.
    // Off (--no-auth): every client may see every order update.
    void private_orders(bool on) { private_orders_ = on; }
    void set_client(std::string client) { client_ = std::move(client); }

    // A text message from the client; errors are answered, never thrown.
    void on_message(const std::string& text, Effects& fx);
    void on_batch(const std::shared_ptr<const Batch>& batch, Effects& fx);
    void on_loaded(const LoadResult& result, Effects& fx);
    int errors() const { return errors_; }
    // The client asked ("batch": true in a subscribe or unsubscribe) that
    // messages ready for it at the same time go as one
    // {"type":"batch","messages":[...]} (the session merges them).
    bool batched() const { return batch_; }
    // What the client follows now (for Interest): the instruments it has a
    // subscription or a pending load for, and whether it follows every one.
    void followed(std::vector<std::string>& instruments, bool& all) const;
    void error(const std::string& code, const std::string& message, Effects& fx);

private:
    struct State {
        unsigned channels = 0;
        bool pending = false;  // waiting for the loader; live batches are held
        uint64_t token = 0;
        std::vector<std::shared_ptr<const Batch>> held;
        std::size_t held_bytes = 0;
        // Entries at or below these sequences are not sent again, per channel.
        int64_t sent_deltas = 0, sent_trades = 0, sent_orders = 0;
    };

    std::map<std::string, State>::iterator state_of(const std::string& instrument);
    void forget(std::map<std::string, State>::iterator it);
    void subscribe(const std::string& instrument, unsigned channels, const int64_t* from_seq, Effects& fx);
    void request(State& state, LoadKind kind, const std::string& instrument, int64_t from_seq, Effects& fx);
    void emit(State& state, const Entry& entry, Effects& fx);
    void hold(State& state, const std::shared_ptr<const Batch>& batch, Effects& fx);

    const Instruments& instruments_;
    std::size_t max_held_bytes_;
    std::map<std::string, State> states_;
    // The trades and order updates sent of an instrument whose State is gone
    // (unsubscribed, or its load failed): a State made for it again starts
    // there, so a live batch that repeats entries already sent (the LISTEN
    // thread behind a replay read from the journal) sends them once.
    std::map<std::string, std::pair<int64_t, int64_t>> sent_before_;
    unsigned wildcard_ = 0;  // channels subscribed for every instrument, present and future
    uint64_t next_token_ = 1;
    int errors_ = 0;
    bool private_orders_ = false;
    bool batch_ = false;
    std::optional<std::string> client_;
};

}  // namespace pgx::feed
