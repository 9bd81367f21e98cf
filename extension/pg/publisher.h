// Publishing committed journal ranges on channel exchange_events from a
// background worker, so that committing transactions do not take
// PostgreSQL's NOTIFY lock.
//
// A transaction that sends NOTIFY takes one cluster-wide heavyweight lock in
// PreCommit_Notify and keeps it through its commit's WAL flush: notifying
// transactions commit one at a time, on every database and instrument, and
// never share a WAL flush. Instead, a committing transaction that changed a
// book records the book's committed sequence in shared memory (books.cpp)
// and wakes its database's publisher, a background worker that sends one
// notification per instrument for everything committed since its last one
// ("instrument_id:first_seq:last_seq", the same payload; one notification
// may now cover several transactions). Its own transactions hold the NOTIFY
// lock only for a moment: they commit asynchronously, as a notification is
// not durable anyway.
//
// Waking the publisher is a signal, paid by the committing backend (5% of a
// one-order transaction's samples on the development VM), and a round of
// the publisher per commit. While commits keep coming it is not woken:
// after a round that sent something it looks again after
// exchange.publisher_poll_ms (default 1; 0: every commit wakes it), and only
// a round that found nothing lets commits wake it again. A notification
// then covers the commits of a millisecond (README, Market data).
//
// The publisher of a database starts on the first commit that needs it and
// exits after two idle seconds, or at once when DROP DATABASE (or another
// command that needs the database without sessions) names its database.
//
// exchange.notify_publisher: `always` (the default): the publisher sends
// every range. `auto` lets a transaction notify by itself when no other
// transaction holds the NOTIFY lock (checked without waiting; it then holds
// it through its commit, as any notifying transaction does) and the
// publisher has nothing pending for its instruments (so that each
// instrument's ranges stay in order); otherwise the publisher sends them: a
// lone writer then spares the second transaction per commit, which measured
// slightly lower latency at moderate rates and clearly higher at 20,000
// orders/s (README, Market data). `off`: every transaction notifies by
// itself, as before the publisher. When no worker can be started
// (max_worker_processes reached) a transaction notifies by itself.
#pragma once

#include "pg_prelude.h"

namespace pgx::pg {

enum NotifyPublisher { kPublisherOff = 0, kPublisherAuto = 1, kPublisherAlways = 2 };
extern int notify_publisher;  // exchange.notify_publisher
extern const struct config_enum_entry notify_publisher_options[];
extern int publisher_poll_ms;  // exchange.publisher_poll_ms

Size PublisherShmemBytes();
void PublisherShmemStartup();
void InstallPublisherHooks();  // at _PG_init

// At pre-commit of a transaction with journal ranges to publish (`pending`:
// the publisher has not yet sent earlier ranges of one of its instruments):
// true if the database's publisher will publish them (it is running or was
// just asked to start); the caller then calls PublisherRelease exactly once,
// at commit or abort. False: the caller notifies by itself.
bool PublisherClaim(bool pending);
// After the transaction's committed sequences are recorded (committed) or
// on abort: lets the publisher go, waking it on commit.
void PublisherRelease(bool committed);

// Queues, in the current transaction, the notification of journal range
// first..last of an instrument: "instrument_id:first:last" on channel
// exchange_events (the publisher's and a transaction's own alike).
void NotifyRange(int32 instrument_id, uint64 first, uint64 last);

}  // namespace pgx::pg

extern "C" PGDLLEXPORT void exchange_publisher_main(Datum db);
