// Writing a call's rows into one exchange table without an SQL statement.
#pragma once

#include "pg_prelude.h"

namespace pgx::pg {

// The rows to insert, column by column: values[c][r] / nulls[c][r] is row r's
// value of column names[c], of type types[c] (the column's own type).
struct RowBatch {
    const char* table;  // in schema exchange
    int ncols;
    const char* const* names;
    const Oid* types;
    Datum* const* values;
    bool* const* nulls;
    int nrows;
    // Optional (InsertRows): every row's value of column locked_ref.column
    // refers to a row of exchange.<locked_ref.table> (its column
    // locked_ref.table_column) that this transaction, at this subtransaction
    // level or above, has locked FOR KEY SHARE: what the check of a foreign
    // key from that column to that column would do per row. The writer then
    // skips that key's per-row check trigger; any other foreign key, and any
    // row not written by this path, is checked as usual.
    struct LockedRef {
        const char* column = nullptr;
        const char* table = nullptr;
        const char* table_column = nullptr;
    } locked_ref;
};

// Inserts the rows the way COPY FROM does, without planning or executing a
// statement: table_multi_insert, the index entries, NOT NULL and CHECK
// constraints, the other columns' defaults, and the table's AFTER ROW and
// statement triggers (the foreign key checks among them, but for the one
// batch.locked_ref names), fired before it returns as at the end of a
// statement. Checks INSERT privilege like the
// executor. Returns false, having written nothing, when the table needs what
// this path does not do: BEFORE or INSTEAD OF row triggers, transition
// tables, stored generated columns, row-level security, or a named column
// whose type is not types[c] (then the caller runs an INSERT statement).
bool InsertRows(const RowBatch& batch);

// Updates rows in place of their current versions: tids[r] is the version of
// row r this transaction read (under the instrument lock, which keeps the
// exchange's other writers out); the named columns get batch's values, every
// other column keeps its value. New versions, index entries where the update
// is not HOT, NOT NULL and CHECK constraints, AFTER ROW and statement
// triggers, as the executor's UPDATE. Returns how many rows, from the first,
// it updated: all of them; or 0 when the table needs what this path does not
// do (as for InsertRows, with BEFORE or INSTEAD OF update triggers and
// transition tables); or r when row r was changed by another transaction (or
// by this one) since it was read. The caller updates the rest with
// statements, which then apply to the newest versions as an UPDATE would.
int UpdateRows(const RowBatch& batch, const ItemPointerData* tids);

}  // namespace pgx::pg
