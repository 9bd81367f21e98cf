// Keeping WAL segments ready ahead of the insert position, so that no
// committing transaction has to create one.
//
// PostgreSQL creates a WAL segment when a write first needs it, in the
// process that writes: with wal_init_zero (the default) it writes the whole
// segment (16 MB) with zeros and fsyncs it, holding WALWriteLock, so every
// commit waits behind it. Segments recycled by checkpoints avoid that, but a
// new cluster, and one whose WAL outruns what its checkpoints recycle, has
// none: measured on the benchmark VM, each creation stalled every commit for
// 16-20 ms (README, Benchmark). A background worker (one per cluster,
// started with the server) checks every 100 ms that the next
// exchange.wal_prealloc_segments segments after the one being inserted into
// exist, and creates the missing ones, writing each a megabyte at a time
// (wal_prealloc.cpp says why) and moving it into place the way PostgreSQL
// does. A commit, or the checkpointer, that creates a segment meanwhile is
// no harm: whoever comes second leaves the other's file in place. 0 turns
// the worker idle; the setting is read on reload.
#pragma once

#include "pg_prelude.h"

namespace pgx::pg {

extern int wal_prealloc_segments;  // exchange.wal_prealloc_segments

void RegisterWalPreallocWorker();  // at _PG_init

}  // namespace pgx::pg

extern "C" PGDLLEXPORT void exchange_wal_prealloc_main(Datum);
