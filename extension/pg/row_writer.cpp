// InsertRows and UpdateRows: a call's rows into one table without an SQL
// statement (see row_writer.h). An INSERT ... SELECT FROM unnest(arrays)
// statement costs no planning but still real work per call and per row: the
// arrays are built and taken apart again, the function scan materializes
// every row in a tuplestore, and each execution starts an executor that
// re-reads the table's CHECK constraints; an UPDATE by key adds an index scan
// per row. Here the call's Datums go straight into slots, then through the
// steps COPY FROM (inserts) and the executor's ModifyTable (updates) take for
// a plain table.
//
// Errors are ordinary ERRORs (a unique or check violation aborts the caller's
// transaction as the statement would); everything allocated lives in the
// executor state or the caller's memory context, so PostgreSQL's abort
// cleans up after a longjmp.
#include "row_writer.h"

#include "books.h"

extern "C" {
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
}

namespace pgx::pg {

namespace {

// Tuples per table_multi_insert call (COPY uses the same bound).
constexpr int kMaxBuffered = 1000;

// A table's CHECK constraints and column defaults as planned expression
// trees, kept across calls: reading them back from the catalog's text form
// and planning them was a fifth of a one-order place_order. Only the trees
// are kept; each call builds its ExprStates from them (ExecInitExpr), so no
// evaluation state outlives the call. Dropped when PostgreSQL invalidates the
// table's relcache entry (ALTER TABLE, a new constraint or default) or any
// function (a constraint's SQL function may have been inlined).
struct TableExprs {
    Oid relid = InvalidOid;
    bool valid = false;
    MemoryContext cxt = nullptr;
    int ncheck = 0;
    Expr** checks = nullptr;    // [ncheck], in the relcache's check[] order
    int natts = 0;
    Expr** defaults = nullptr;  // [natts], nullptr: no default
    bool* volatile_default = nullptr;  // [natts]: volatile other than nextval
};
constexpr int kCachedTables = 8;
TableExprs table_exprs[kCachedTables];
bool callbacks_registered = false;

void ForgetTable(Datum, Oid relid) {
    for (TableExprs& e : table_exprs)
        if (relid == InvalidOid || e.relid == relid) e.valid = false;
}
void ForgetAll(Datum, int, uint32) { ForgetTable((Datum)0, InvalidOid); }

// The planned expressions of rel, built on first use after an invalidation.
const TableExprs& ExprsOf(Relation rel) {
    if (!callbacks_registered) {
        CacheRegisterRelcacheCallback(ForgetTable, (Datum)0);
        CacheRegisterSyscacheCallback(PROCOID, ForgetAll, (Datum)0);
        callbacks_registered = true;
    }
    const Oid relid = RelationGetRelid(rel);
    TableExprs* e = nullptr;
    for (TableExprs& x : table_exprs)
        if (x.relid == relid) e = &x;
    for (TableExprs& x : table_exprs)
        if (e == nullptr && (x.relid == InvalidOid || !x.valid)) e = &x;
    if (e == nullptr) e = &table_exprs[relid % kCachedTables];
    const TupleDesc desc = RelationGetDescr(rel);
    const int ncheck = desc->constr != nullptr ? desc->constr->num_check : 0;
    if (e->relid == relid && e->valid && e->ncheck == ncheck && e->natts == desc->natts) return *e;

    if (e->cxt != nullptr) MemoryContextDelete(e->cxt);
    *e = TableExprs{};
    e->cxt = AllocSetContextCreate(CacheMemoryContext, "exchange row writer expressions", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(e->cxt);
    e->ncheck = ncheck;
    e->checks = static_cast<Expr**>(palloc0(sizeof(Expr*) * Max(ncheck, 1)));
    for (int i = 0; i < ncheck; ++i)
        e->checks[i] = expression_planner(static_cast<Expr*>(stringToNode(desc->constr->check[i].ccbin)));
    e->natts = desc->natts;
    e->defaults = static_cast<Expr**>(palloc0(sizeof(Expr*) * Max(desc->natts, 1)));
    e->volatile_default = static_cast<bool*>(palloc0(sizeof(bool) * Max(desc->natts, 1)));
    for (int a = 0; a < desc->natts; ++a) {
        if (TupleDescAttr(desc, a)->attisdropped) continue;
        Node* expr = build_column_default(rel, a + 1);
        if (expr == nullptr) continue;
        e->volatile_default[a] = contain_volatile_functions_not_nextval(expr);
        e->defaults[a] = expression_planner(reinterpret_cast<Expr*>(expr));
    }
    MemoryContextSwitchTo(old);
    e->relid = relid;
    e->valid = true;
    return *e;
}

// One table opened for writing: the executor state an INSERT or UPDATE of
// the batch's columns would have.
struct Target {
    Relation rel;
    EState* estate;
    ResultRelInfo* rri;
    AttrNumber* attnums;  // of the batch's columns
    const TableExprs* exprs;
};

// Whether this path can do `op` on `rel` (see row_writer.h); fills attnums.
bool Supported(Relation rel, const RowBatch& b, CmdType op, AttrNumber* attnums) {
    if (rel->rd_rel->relkind != RELKIND_RELATION) return false;
    if (const TriggerDesc* td = rel->trigdesc; td != nullptr) {
        if (op == CMD_INSERT &&
            (td->trig_insert_before_row || td->trig_insert_instead_row || td->trig_insert_new_table))
            return false;
        if (op == CMD_UPDATE && (td->trig_update_before_row || td->trig_update_instead_row ||
                                 td->trig_update_new_table || td->trig_update_old_table))
            return false;
    }
    const TupleDesc desc = RelationGetDescr(rel);
    if (desc->constr != nullptr && desc->constr->has_generated_stored) return false;
    if (check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED) return false;
    for (int c = 0; c < b.ncols; ++c) {
        const AttrNumber a = get_attnum(RelationGetRelid(rel), b.names[c]);
        if (a <= 0 || a > desc->natts) return false;
        const Form_pg_attribute att = TupleDescAttr(desc, a - 1);
        if (att->attisdropped || att->atttypid != b.types[c]) return false;
        attnums[c] = a;
    }
    return true;
}

// Drops from the result relation's triggers the per-row check of the
// foreign key that b.locked_ref says this transaction has already made
// (row_writer.h): the check locks the referenced row FOR KEY SHARE, which the
// caller did once for all the rows, instead of running a query per row. The
// other triggers stay and fire in their order.
void SkipLockedRefCheck(const RowBatch& b, Target& t) {
    const RowBatch::LockedRef& ref = b.locked_ref;
    const TriggerDesc* td = t.rri->ri_TrigDesc;
    if (ref.column == nullptr || td == nullptr || !td->trig_insert_after_row) return;
    const Oid ref_relid = ExchangeRelid(ref.table);
    const AttrNumber column = get_attnum(RelationGetRelid(t.rel), ref.column);
    const AttrNumber ref_column = get_attnum(ref_relid, ref.table_column);
    List* keys = NIL;
    ListCell* lc;
    foreach (lc, RelationGetFKeyList(t.rel)) {
        const ForeignKeyCacheInfo* fk = lfirst_node(ForeignKeyCacheInfo, lc);
        if (fk->confrelid == ref_relid && fk->nkeys == 1 && fk->conkey[0] == column && fk->confkey[0] == ref_column)
            keys = lappend_oid(keys, fk->conoid);
    }
    auto skipped = [&](const Trigger& tr) {
        return tr.tgfoid == F_RI_FKEY_CHECK_INS && list_member_oid(keys, tr.tgconstraint);
    };
    int kept = 0;
    for (int i = 0; i < td->numtriggers; ++i) kept += skipped(td->triggers[i]) ? 0 : 1;
    if (kept == td->numtriggers) return;
    // Nothing has used the relation's per-trigger caches (ri_TrigFunctions,
    // indexed by position) yet, so the positions may change.
    MemoryContext old = MemoryContextSwitchTo(t.estate->es_query_cxt);
    TriggerDesc* copy = CopyTriggerDesc(t.rri->ri_TrigDesc);
    MemoryContextSwitchTo(old);
    copy->numtriggers = 0;
    copy->trig_insert_after_row = false;
    for (int i = 0; i < td->numtriggers; ++i) {
        const Trigger& tr = td->triggers[i];
        if (skipped(tr)) continue;
        copy->triggers[copy->numtriggers++] = copy->triggers[i];
        if (TRIGGER_TYPE_MATCHES(tr.tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_AFTER, TRIGGER_TYPE_INSERT))
            copy->trig_insert_after_row = true;
    }
    t.rri->ri_TrigDesc = copy->numtriggers > 0 ? copy : nullptr;
}

// Opens exchange.<table> for `op` of the batch's columns: locks, checks the
// privilege, starts the executor state and opens the indexes. False (nothing
// done but the lock) if the table is not one this path writes.
bool Open(const RowBatch& b, CmdType op, Target& t) {
    const Oid relid = ExchangeRelid(b.table);
    t.rel = table_open(relid, RowExclusiveLock);
    t.attnums = static_cast<AttrNumber*>(palloc(sizeof(AttrNumber) * b.ncols));
    if (!Supported(t.rel, b, op, t.attnums)) {
        table_close(t.rel, NoLock);
        return false;
    }

    RangeTblEntry* rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = relid;
    rte->relkind = t.rel->rd_rel->relkind;
    rte->rellockmode = RowExclusiveLock;
    rte->requiredPerms = op == CMD_INSERT ? ACL_INSERT : ACL_UPDATE;
    for (int c = 0; c < b.ncols; ++c) {
        Bitmapset*& cols = op == CMD_INSERT ? rte->insertedCols : rte->updatedCols;
        cols = bms_add_member(cols, t.attnums[c] - FirstLowInvalidHeapAttributeNumber);
    }
    List* rtable = list_make1(rte);
    ExecCheckRTPerms(rtable, true);
    // The executor's own check, which this path does not pass through (a
    // place_order in a read-only transaction already fails earlier, at its
    // first nextval).
    if (XactReadOnly) PreventCommandIfReadOnly(op == CMD_INSERT ? "INSERT" : "UPDATE");

    // As SPI does for a statement: see the earlier writes, then a snapshot
    // for the triggers (the foreign key checks query the referenced table).
    CommandCounterIncrement();
    PushActiveSnapshot(GetTransactionSnapshot());

    t.estate = CreateExecutorState();
    ExecInitRangeTable(t.estate, rtable);
    t.rri = makeNode(ResultRelInfo);
    ExecInitResultRelation(t.estate, t.rri, 1);
    CheckValidResultRel(t.rri, op);
    ExecOpenIndices(t.rri, false);
    if (op == CMD_INSERT) SkipLockedRefCheck(b, t);
    t.estate->es_output_cid = GetCurrentCommandId(true);
    // ExecConstraints builds these from the catalog text unless they are set.
    t.exprs = &ExprsOf(t.rel);
    if (t.exprs->ncheck > 0) {
        MemoryContext old = MemoryContextSwitchTo(t.estate->es_query_cxt);
        t.rri->ri_ConstraintExprs = static_cast<ExprState**>(palloc(sizeof(ExprState*) * t.exprs->ncheck));
        for (int i = 0; i < t.exprs->ncheck; ++i) t.rri->ri_ConstraintExprs[i] = ExecInitExpr(t.exprs->checks[i], nullptr);
        MemoryContextSwitchTo(old);
    }
    AfterTriggerBeginQuery();
    return true;
}

// Fires the queued AFTER triggers (as at a statement's end) and closes everything.
void Close(Target& t) {
    AfterTriggerEndQuery(t.estate);
    ExecResetTupleTable(t.estate->es_tupleTable, false);
    ExecCloseResultRelations(t.estate);
    ExecCloseRangeTableRelations(t.estate);
    FreeExecutorState(t.estate);
    PopActiveSnapshot();
    table_close(t.rel, NoLock);
}

// Writes the buffered slots: heap, index entries, AFTER ROW trigger events.
void FlushSlots(Target& t, TupleTableSlot** slots, int n, BulkInsertState bistate) {
    MemoryContext old = MemoryContextSwitchTo(GetPerTupleMemoryContext(t.estate));
    table_multi_insert(t.rel, slots, n, t.estate->es_output_cid, 0, bistate);
    MemoryContextSwitchTo(old);
    for (int i = 0; i < n; ++i) {
        List* recheck = NIL;
        if (t.rri->ri_NumIndices > 0)
            recheck = ExecInsertIndexTuples(t.rri, slots[i], t.estate, false, false, nullptr, NIL);
        ExecARInsertTriggers(t.estate, t.rri, slots[i], recheck, nullptr);
        list_free(recheck);
        ExecClearTuple(slots[i]);
    }
    ResetPerTupleExprContext(t.estate);
}

// Puts row r's values of the batch's columns into the slot's arrays.
void SetColumns(const RowBatch& b, const Target& t, int r, TupleTableSlot* slot) {
    for (int c = 0; c < b.ncols; ++c) {
        slot->tts_values[t.attnums[c] - 1] = b.values[c][r];
        slot->tts_isnull[t.attnums[c] - 1] = b.nulls[c][r];
    }
}

}  // namespace

bool InsertRows(const RowBatch& b) {
    if (b.nrows == 0) return true;
    Target t;
    if (!Open(b, CMD_INSERT, t)) return false;

    // The other columns' defaults, evaluated per row (a sequence's nextval,
    // now()). A volatile default other than nextval might read the table, so
    // then every row is written before the next one is built, as COPY does.
    const TupleDesc desc = RelationGetDescr(t.rel);
    const int natts = desc->natts;
    bool* given = static_cast<bool*>(palloc0(sizeof(bool) * natts));
    for (int c = 0; c < b.ncols; ++c) given[t.attnums[c] - 1] = true;
    ExprState** defaults = static_cast<ExprState**>(palloc0(sizeof(ExprState*) * natts));
    bool one_by_one = false;
    {
        MemoryContext old = MemoryContextSwitchTo(t.estate->es_query_cxt);
        for (int a = 0; a < natts; ++a) {
            if (given[a] || t.exprs->defaults[a] == nullptr) continue;
            one_by_one |= t.exprs->volatile_default[a];
            defaults[a] = ExecInitExpr(t.exprs->defaults[a], nullptr);
        }
        MemoryContextSwitchTo(old);
    }

    ExecBSInsertTriggers(t.estate, t.rri);
    const int capacity = one_by_one ? 1 : Min(b.nrows, kMaxBuffered);
    TupleTableSlot** slots = static_cast<TupleTableSlot**>(palloc0(sizeof(TupleTableSlot*) * capacity));
    BulkInsertState bistate = GetBulkInsertState();
    ExprContext* econtext = GetPerTupleExprContext(t.estate);
    int used = 0;
    for (int r = 0; r < b.nrows; ++r) {
        CHECK_FOR_INTERRUPTS();
        if (slots[used] == nullptr) slots[used] = table_slot_create(t.rel, &t.estate->es_tupleTable);
        TupleTableSlot* slot = slots[used];
        ExecClearTuple(slot);
        for (int a = 0; a < natts; ++a) {
            slot->tts_values[a] = (Datum)0;
            slot->tts_isnull[a] = true;
        }
        SetColumns(b, t, r, slot);
        MemoryContext old = MemoryContextSwitchTo(GetPerTupleMemoryContext(t.estate));
        for (int a = 0; a < natts; ++a)
            if (defaults[a] != nullptr) slot->tts_values[a] = ExecEvalExpr(defaults[a], econtext, &slot->tts_isnull[a]);
        MemoryContextSwitchTo(old);
        ExecStoreVirtualTuple(slot);
        slot->tts_tableOid = RelationGetRelid(t.rel);
        if (desc->constr != nullptr) ExecConstraints(t.rri, slot, t.estate);
        ExecMaterializeSlot(slot);  // its own copy: the defaults live in per-tuple memory
        if (++used == capacity) {
            FlushSlots(t, slots, used, bistate);
            used = 0;
        }
    }
    if (used > 0) FlushSlots(t, slots, used, bistate);
    FreeBulkInsertState(bistate);
    table_finish_bulk_insert(t.rel, 0);
    ExecASInsertTriggers(t.estate, t.rri, nullptr);
    Close(t);
    return true;
}

int UpdateRows(const RowBatch& b, const ItemPointerData* tids) {
    if (b.nrows == 0) return 0;
    Target t;
    if (!Open(b, CMD_UPDATE, t)) return 0;
    const TupleDesc desc = RelationGetDescr(t.rel);
    ExecBSUpdateTriggers(t.estate, t.rri);
    TupleTableSlot* old_slot = table_slot_create(t.rel, &t.estate->es_tupleTable);
    TupleTableSlot* new_slot = table_slot_create(t.rel, &t.estate->es_tupleTable);
    Snapshot snapshot = GetActiveSnapshot();
    int r = 0;
    for (; r < b.nrows; ++r) {
        CHECK_FOR_INTERRUPTS();
        ItemPointerData tid = tids[r];
        if (!table_tuple_fetch_row_version(t.rel, &tid, SnapshotAny, old_slot)) break;
        slot_getallattrs(old_slot);
        ExecClearTuple(new_slot);
        memcpy(new_slot->tts_values, old_slot->tts_values, sizeof(Datum) * desc->natts);
        memcpy(new_slot->tts_isnull, old_slot->tts_isnull, sizeof(bool) * desc->natts);
        SetColumns(b, t, r, new_slot);
        ExecStoreVirtualTuple(new_slot);
        new_slot->tts_tableOid = RelationGetRelid(t.rel);
        if (desc->constr != nullptr) ExecConstraints(t.rri, new_slot, t.estate);
        ExecMaterializeSlot(new_slot);  // its own copy: the unchanged values point into old_slot's buffer

        TM_FailureData tmfd;
        LockTupleMode lockmode;
        bool update_indexes;
        const TM_Result res = table_tuple_update(t.rel, &tid, new_slot, t.estate->es_output_cid, snapshot,
                                                 InvalidSnapshot, true, &tmfd, &lockmode, &update_indexes);
        if (res != TM_Ok) break;  // changed since it was read (after waiting for its writer)
        List* recheck = NIL;
        if (update_indexes && t.rri->ri_NumIndices > 0)
            recheck = ExecInsertIndexTuples(t.rri, new_slot, t.estate, true, false, nullptr, NIL);
        ExecARUpdateTriggers(t.estate, t.rri, nullptr, nullptr, &tid, nullptr, new_slot, recheck, nullptr, false);
        list_free(recheck);
        ResetPerTupleExprContext(t.estate);
    }
    ExecASUpdateTriggers(t.estate, t.rri, nullptr);
    Close(t);
    return r;
}

}  // namespace pgx::pg
