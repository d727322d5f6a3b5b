// Per-field merge: the rules that decide what every replica converges to.
// Pure functions over (column definition, current field state, change).
// docs/merge.md explains each rule with examples; tests/merge_laws_test.cc
// checks that every policy is commutative, associative and idempotent.
//
// Policies (chosen per column in the schema):
//  lww     Last-writer-wins register ordered by Stamp (hlc, then node id).
//          When the loser was concurrent with the winner (the winner's writer
//          had not seen it: winner.base < loser.hlc), the loser is reported
//          as a ConflictRecord so the app can show and restore it.
//  mv      Multi-value register. Every write carries the version vector of
//          what its writer had seen; a write replaces exactly the values it
//          had seen. Concurrent writes are all kept, the field is flagged as
//          conflicted, and the column shows the newest until a person writes
//          the field again (which resolves it). Text is never dropped.
//  counter PN-counter. Each change carries its node's cumulative (p, n)
//          totals; merge takes the maximum per node, so duplicates and
//          reordering are harmless. value = sum(p) - sum(n).
//  orset   Observed-remove set, add wins. Per member, a version vector of
//          adds and one of removes; a member is present while some node's
//          latest add is newer than every remove that node's add was seen by.
//  state   Forward-only state. Order key (rank in the declared values,
//          stamp): the furthest state wins whatever the arrival order;
//          a concurrent lower state that lost is reported as a conflict.
//
// Row delete (Op::kDelete) is a tombstone and final: deletes never come
// back. The delete carries (in ctx) what its writer had seen of the row;
// every write to the row it had NOT seen, whether it arrives before or after
// the delete, is kept as a "deleted" conflict record (restorable into a new
// row). Writes it had seen go with the row: the deleter saw them and chose.
#pragma once

#include <string>
#include <vector>

#include "sync/change.h"
#include "sync/schema.h"

namespace fieldsync {

// What a replica keeps for one field of one row.
struct FieldState {
  bool present = false;  // some write has reached this field
  Stamp stamp;           // newest write merged into this field
  Hlc base = 0;          // lww/state: base of the winning write
  json value;            // materialized value stored in the SQLite column
  json crdt;             // policy state: null (lww, state, an mv field's single write) or see merge.cc
};

// One row's whole merge state, as a snapshot carries it (docs/protocol.md,
// "snapshot"): either its fields or, for a deleted row, its tombstone.
struct RowState {
  std::string table, row;
  bool deleted = false;
  Stamp tomb_stamp;            // deleted: the greatest delete stamp
  VersionVector tomb_seen;     // deleted: what the deleters had seen
  std::vector<std::pair<std::string, FieldState>> fields;  // column name, state (value included)
};

struct ConflictRecord {
  std::string table, row, column;
  std::string kind;      // "lww", "state", "mv" or "deleted"
  json loser_value;
  Stamp loser;
  json winner_value;
  Stamp winner;
};

struct MergeResult {
  bool changed = false;  // the field state (and maybe value) changed
  FieldState state;      // the new state (copy of current when !changed)
  std::vector<ConflictRecord> conflicts;
};

// Merges one change into one field. The change must already have passed
// ValidateChange. Never fails: an impossible op for the policy leaves the
// state unchanged.
MergeResult MergeField(const ColumnDef& col, const FieldState& current, const Change& c);

// Structural and schema validation of a change from any source: table and
// column exist, op fits the column's policy, value fits the type, ids are
// well formed. Returns kNotFound / kSchemaViolation / kInvalidArgument.
Status ValidateChange(const Schema& schema, const Change& c);

// Adds to `seen` every write this field state holds or has overwritten
// knowingly: the causal context a row delete carries.
void AddFieldContext(const ColumnDef& col, const FieldState& s, VersionVector* seen);

// The (stamp, value) of each value an mv field currently holds.
std::vector<std::pair<Stamp, json>> MvEntriesOf(const FieldState& s);

// MV helpers: the live values of a field and whether it is conflicted.
std::vector<json> MvValues(const FieldState& s);
bool IsConflicted(const ColumnDef& col, const FieldState& s);

// An mv field that one write reached, with nothing seen before it, holds no
// policy state: its stamp and value are that write (MergeMv leaves it so).
// Most mv fields are such (a competitor note nobody else touched), and that
// write spelled out was half of a W1 line's stored bytes. Files and pages
// from before 2026-12-07 spell it out; IsSpelledOutSingleWrite tells that
// form (exactly: 5 and 5.0 differ), SpelledOutSingleWrite builds it for a
// peer that expects it. Both forms merge alike.
bool IsSpelledOutSingleWrite(const FieldState& s);
json SpelledOutSingleWrite(const FieldState& s);

// True when a and b dump() to the same text. json's == takes 5 for 5.0 and
// 0.0 for -0.0; a state rebuilt with the other number type would differ.
bool SameText(const json& a, const json& b);

// Builds the changes that turn `current` into `value` for a local put.
// Emits nothing when the field already holds the value (and is not
// conflicted). Each emitted change takes a fresh stamp from `clock`.
// Fails with kInvalidArgument for a state moving backwards.
Status MakeLocalChanges(const TableDef& table, const ColumnDef& col,
                        const FieldState& current, const std::string& row,
                        const json& value, HybridClock* clock,
                        std::vector<Change>* out);

// A counter increment by `delta` (may be negative) from this clock's node.
Change MakeIncrement(const TableDef& table, const ColumnDef& col,
                     const FieldState& current, const std::string& row,
                     double delta, HybridClock* clock);

// Adds or removes one member of a set column.
Change MakeSetMember(const TableDef& table, const ColumnDef& col,
                     const FieldState& current, const std::string& row,
                     const std::string& member, bool add, HybridClock* clock);

}  // namespace fieldsync
