// The physical undo log: old bytes of every word the book overwrote.
//
// The book writes its region only through Book::put(), which appends
// (offset, size, old value) here before writing. Rolling back to a mark
// replays the entries above the mark in reverse, so the region is restored
// byte for byte in time proportional to the number of writes since the mark.
// Marks nest naturally (a savepoint is just the log length), which is what
// PostgreSQL subtransactions need. Offsets are relative to the region base,
// so a log is valid in any process that maps the region, at any address.
//
// The log itself is process-local memory, never inside the shared region:
// only the transaction holding a book's lock writes that book.
#pragma once
#include "no_postgres.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace pgx::core {

class UndoLog {
public:
    using Mark = size_t;

    // Remember the current contents of `size` bytes at region offset `off`.
    void record(uint64_t off, unsigned size, const void* old) {
        Entry e;
        e.off_size = off | (uint64_t{size} << 56);
        e.old = 0;
        std::memcpy(&e.old, old, size);
        entries_.push_back(e);
    }

    Mark mark() const { return entries_.size(); }
    size_t size() const { return entries_.size(); }
    size_t bytes() const { return entries_.capacity() * sizeof(Entry); }

    // Restore every byte written since `m`, newest first, and forget those writes.
    void rollback_to(Mark m, char* base) {
        while (entries_.size() > m) {
            const Entry& e = entries_.back();
            const uint64_t off = e.off_size & ((uint64_t{1} << 56) - 1);
            const unsigned size = static_cast<unsigned>(e.off_size >> 56);
            std::memcpy(base + off, &e.old, size);
            entries_.pop_back();
        }
    }

    // Forget everything (the changes are committed).
    void clear() { entries_.clear(); }

    // Drop the buffer of a log that grew large (after a big transaction).
    void shrink(size_t keep_entries) {
        if (entries_.capacity() > keep_entries) {
            std::vector<Entry> fresh;
            fresh.reserve(keep_entries);
            entries_.swap(fresh);
        }
    }

private:
    struct Entry {
        uint64_t off_size;  // low 56 bits offset, high 8 bits size
        uint64_t old;
    };
    std::vector<Entry> entries_;
};

}  // namespace pgx::core
