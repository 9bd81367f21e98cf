// Trickled writeback of the data directory's file system.
//
// PostgreSQL grows a table or an index by writing zeroed pages through the
// kernel's page cache, and nothing asks the kernel to write those pages out
// soon: its *_flush_after settings cover pages written from shared buffers
// (a backend's only with backend_flush_after, off by default), not a
// relation's extension. Linux writes a file's dirty pages back once the file
// has been dirty for vm.dirty_expire_centisecs (30 s by default), all of them
// at once, so the tables an exchange appends to all the time are written in
// one burst every 30 s, and every commit's WAL flush in that burst waits
// behind it:
// measured at 2,000 orders/s end to end over 70 s, stalls of 58 and 45 ms at
// 31 and 61 s (p99.9 22.0 ms), and with this worker none (largest 17.7 ms,
// p99.9 5.5 ms; README, Benchmark). A background worker (one per cluster,
// started with the server) calls syncfs(2) on the data directory every
// exchange.writeback_ms, so that the kernel writes about that long's worth of
// pages at a time. 0 turns the worker idle; the setting is read on reload.
// The default is 50 ms: at 20,000 orders/s a second's worth (~10 MB) still
// held a commit's WAL flush for 10-14 ms once a second; 50 ms' worth holds
// it at most ~3 ms (README, Benchmark).
#pragma once

#include "pg_prelude.h"

namespace pgx::pg {

extern int writeback_ms;  // exchange.writeback_ms

void RegisterWritebackWorker();  // at _PG_init

}  // namespace pgx::pg

extern "C" PGDLLEXPORT void exchange_writeback_main(Datum);
