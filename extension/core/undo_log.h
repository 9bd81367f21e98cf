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

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace pgx::core {

class UndoLog {
public:
    using Mark = size_t;

    // Remember the current contents of `size` bytes at region offset `off`.
    // The entry is written in place, field by field: building it on the stack
    // and copying it in as one 16-byte value made every write wait for a
    // failed store-to-load forward (the copy's wide load spans the two
    // narrower stores that built it), ~10 cycles per word the book wrote.
    void record(uint64_t off, unsigned size, const void* old) {
        if (n_ == buf_.size()) grow();
        uint64_t value = 0;
        std::memcpy(&value, old, size);
        Entry& e = buf_[n_++];
        e.off_size = off | (uint64_t{size} << 56);
        e.old = value;
    }

    Mark mark() const { return n_; }
    size_t size() const { return n_; }
    // Region offset of the i-th word written since the last clear() (i < size()).
    uint64_t offset(size_t i) const { return buf_[i].off_size & ((uint64_t{1} << 56) - 1); }
    size_t bytes() const { return buf_.size() * sizeof(Entry); }

    // Restore every byte written since `m`, newest first, and forget those writes.
    void rollback_to(Mark m, char* base) {
        while (n_ > m) {
            const Entry& e = buf_[--n_];
            const uint64_t off = e.off_size & ((uint64_t{1} << 56) - 1);
            const unsigned size = static_cast<unsigned>(e.off_size >> 56);
            std::memcpy(base + off, &e.old, size);
        }
    }

    // Forget everything (the changes are committed).
    void clear() { n_ = 0; }

    // Drop the buffer of a log that grew large (after a big transaction).
    void shrink(size_t keep_entries) {
        if (buf_.size() > keep_entries) {
            std::vector<Entry> fresh(std::max(keep_entries, n_));
            std::copy(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(n_), fresh.begin());
            buf_.swap(fresh);
        }
    }

private:
    struct Entry {
        uint64_t off_size;  // low 56 bits offset, high 8 bits size
        uint64_t old;
    };

    // Doubles the buffer (every slot of buf_ is usable; n_ of them are in use).
    void grow() { buf_.resize(buf_.empty() ? 1024 : 2 * buf_.size()); }

    std::vector<Entry> buf_;
    size_t n_ = 0;
};

}  // namespace pgx::core
