// What the extension's background workers share: registering one per
// cluster at server start, their signal handling, and the head of each round
// of their loops.
#pragma once

#include "pg_prelude.h"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace pgx::pg {

// At _PG_init: a worker of this library with shared memory and no database,
// started at `start` and started again `restart_seconds` after it fails;
// `name` is its process title and type. `function` is its exported main.
void RegisterClusterWorker(const char* function, const char* name, BgWorkerStartTime start, int restart_seconds);

// First thing in a worker's main: SIGHUP rereads the configuration (at the
// next WorkerRound), SIGTERM ends the worker; then signals are unblocked.
void WorkerStarted();

// At the head of each round of a worker's loop: clears its latch, ends the
// worker if it was told to, and rereads the configuration after a SIGHUP.
void WorkerRound();

}  // namespace pgx::pg
