// Store: the SQLite file behind every replica and the server. It holds
//   - one table per schema table (typed columns + `id`), the materialized rows
//     an app queries directly;
//   - fs_row_fields: per-field merge metadata (stamp, base, policy state),
//     packed into one entry per row (store/row_fields.h);
//   - fs_tombstones: deleted rows (a delete is absorbing, see sync/merge.h);
//   - fs_conflicts: writes that lost to a concurrent one, restorable;
//   - fs_outbox: local changes not yet acknowledged by the server (clients);
//   - fs_rejected: changes the server refused, for the app to show;
//   - fs_meta: node id, pull cursor, last HLC, schema fingerprint.
// docs/storage.md documents the file format. The Store is not thread-safe:
// its owner serializes calls (the SDK with a mutex, the server on one strand).
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/database.h"
#include "store/row_fields.h"
#include "sync/merge.h"
#include "sync/schema.h"

namespace fieldsync::store {

struct ApplyOutcome {
  bool changed = false;   // a row or field value changed
  bool refused_deleted = false;  // the row is deleted; the write was recorded as a conflict
  std::vector<ConflictRecord> conflicts;
};

struct StoredConflict {
  int64_t id = 0;
  ConflictRecord record;
  bool resolved = false;
};

struct Rejection {
  int64_t id = 0;
  Change change;
  std::string code;
  std::string message;
};

struct QueryOptions {
  json where = json::object();  // {"column": value, ...}: equality, ANDed
  std::string order_by;         // a column name; default id
  bool descending = false;
  int64_t limit = 1000;
  int64_t offset = 0;
};

class Store {
 public:
  // Opens or creates the file and brings its tables up to the schema:
  // missing tables and columns are added (additive changes need no re-sync).
  Status Open(const std::string& path, const Schema& schema, const OpenOptions& opts = {});
  void Close() { db_.Close(); }

  const Schema& schema() const { return schema_; }
  Database& db() { return db_; }

  // ---- merge (call inside a transaction) --------------------------------
  // Merges one validated change into rows and metadata and records any
  // conflict. Does not touch the outbox or the log.
  Status ApplyChange(const Change& c, ApplyOutcome* out);
  // Merges a run of validated writes (op kSet) to one row, in order: the
  // same state, conflicts and outcome as ApplyChange on each in turn, but
  // the row and its field metadata are read once and the row is written
  // once, where ApplyChange rewrites the row for every field (a new store
  // check line is eight). out->changed is true if any of them changed the
  // row. InvalidArgument, with nothing written, if the run holds a delete,
  // another row or an unknown column.
  Status ApplyRow(std::span<const Change> run, ApplyOutcome* out);

  Status LoadField(const std::string& table, const std::string& row, const ColumnDef& col,
                   FieldState* out);
  // True when the row has a tombstone.
  Status IsDeleted(const std::string& table, const std::string& row, bool* deleted);
  // What this replica has seen of a row's fields, as a version vector: the
  // context a local delete carries, so that writes it had not seen survive
  // as conflict records (docs/merge.md, "Row delete").
  Status RowContext(const TableDef& t, const std::string& row, VersionVector* seen);

  // Moves a local change that the server refused for clock skew to a fresh
  // stamp, in the field metadata where it lives, so the replica's state is
  // what the re-stamped change produces elsewhere (see docs/merge.md,
  // "Clock skew"). Call inside a transaction, with the fresh change
  // appended to the outbox in the same transaction.
  Status Restamp(const Change& old, Stamp fresh);

  // ---- reads -------------------------------------------------------------
  // The row as {"id": ..., column: value, ...}; columns never written are
  // omitted. Conflicted mv fields add "_conflicts": {column: [values...]}.
  Status GetRow(const std::string& table, const std::string& id, json* row);
  Status Query(const std::string& table, const QueryOptions& q, std::vector<json>* rows);
  Status CountRows(const std::string& table, int64_t* n);
  // Every row of every table as {"table": t, "id": ...}, sorted by table
  // then id, one call per row: the canonical dump two replicas compare.
  Status Dump(const std::function<void(const json&)>& emit);

  // ---- snapshots: state instead of history ------------------------------
  // Up to `max_rows` rows (fields or tombstone) whose (table, row id) sorts
  // after (after_table, after_row), in that order; empty strings start at
  // the beginning. `more` tells whether rows remain after the last one.
  // Read in one statement each for fields and tombstones, so a page is
  // consistent with itself; pages read at different times are not, which is
  // harmless because merge is idempotent and the log after the snapshot's
  // cursor is merged on top.
  //
  // `keys_json` (a JSON array of scope keys; servers only) keeps the rows
  // whose key in the server's fs_rows table is one of them, ordered by key,
  // then table, then row id (the page after a row resumes at that row's
  // key; NotFound when the server does not hold it); `rows_json` (a JSON
  // array of [table, id]) keeps only those rows, in (table, row id) order.
  Status ReadState(const std::string& after_table, const std::string& after_row, size_t max_rows,
                   std::vector<RowState>* out, bool* more, const std::string& keys_json = {},
                   const std::string& rows_json = {});
  // Writes rows exactly as given, replacing whatever the store held for
  // them: fields, materialized values, tombstone. Rows of unknown tables
  // and fields of unknown columns are skipped (an older schema). Call
  // inside a transaction.
  Status InstallState(const std::vector<RowState>& rows);
  // Removes every replicated row and its metadata (schema tables,
  // fs_row_fields, fs_tombstones); keeps the outbox, conflicts, rejections and
  // meta. The first step of a re-bootstrap. Call inside a transaction.
  Status ClearState();
  // The rows of these scope keys (sync/schema.h, ScopeRule), found through
  // the schema's rules on this replica's own rows: an assignee-scoped row
  // "<table>/<id>", region-scoped rows "region/<r>", and every row whose
  // parent chain leads to one of them. Live rows only.
  Status RowsOfKeys(const std::vector<std::string>& keys, std::vector<std::pair<std::string, std::string>>* rows);
  // Removes rows and their field metadata (not their tombstones) without a
  // trace in the outbox: the server holds them, they left this device's
  // scope. Call inside a transaction.
  Status EvictRows(const std::vector<std::pair<std::string, std::string>>& rows);
  // True when some row or tombstone has ever been written here.
  Status HasState(bool* any);

  Status ListConflicts(bool include_resolved, std::vector<StoredConflict>* out);
  Status GetConflict(int64_t id, StoredConflict* out);
  Status MarkConflictResolved(int64_t id);

  // ---- client bookkeeping -------------------------------------------------
  Status OutboxAppend(const Change& c);
  // Oldest first, at most `limit`, of the positions after `after_seq`;
  // `seqs` receives the outbox positions.
  Status OutboxPeek(size_t limit, std::vector<Change>* changes, std::vector<int64_t>* seqs, int64_t after_seq = 0);
  Status OutboxRemoveThrough(int64_t seq);
  // Rewrites the change at outbox position `seq` (a re-stamped copy).
  Status OutboxReplace(int64_t seq, const Change& c);
  Status OutboxCount(int64_t* n);
  // The largest stamp in the outbox that is at most `limit` (0 if none).
  Status OutboxMaxHlcAtMost(Hlc limit, Hlc* out);

  Status AddRejection(const Change& c, const std::string& code, const std::string& message);
  Status ListRejections(std::vector<Rejection>* out);

  // ---- metadata -----------------------------------------------------------
  Status GetMeta(const std::string& key, std::string* value, bool* found);
  Status SetMeta(const std::string& key, const std::string& value);
  Status GetMetaInt(const std::string& key, int64_t def, int64_t* value);
  Status SetMetaInt(const std::string& key, int64_t value);

 private:
  Status CreateTables();
  Status WriteColumn(const TableDef& t, const ColumnDef& col, const std::string& row, const json& v);
  // Writes every column of a row in one statement; values[i] is column i's
  // value, nullptr for NULL.
  Status WriteWholeRow(const TableDef& t, const std::string& row, const std::vector<const json*>& values);
  Status SaveField(const std::string& table, const std::string& row, const ColumnDef& col,
                   const FieldState& s);
  // One row's field metadata, in name order, values not filled in; empty
  // when the row has none. Corruption when its entry does not decode.
  Status LoadFields(const std::string& table, const std::string& row, FieldList* out);
  // Replaces the row's field metadata; an empty list removes the entry.
  Status SaveFields(const std::string& table, const std::string& row, const FieldList& fields);
  // SaveFields of the fields whose columns the table has.
  Status SaveKnownFields(const TableDef& t, const std::string& row, const FieldList& fields);
  Status DropFields(const std::string& table, const std::string& row);
  // The row's fields by column index with their values from the schema
  // table, and the row's column values; fields of columns the schema no
  // longer has go to *others, to be written back as they are.
  Status LoadRowFields(const TableDef& t, const std::string& row, std::vector<FieldState>* by_col,
                       FieldList* others, std::vector<json>* current);
  // A format-1 file's fs_fields, one row per field, into fs_row_fields.
  Status MigrateFieldTable();
  // A format-2 file's fs_row_fields entries (names and stamps written out)
  // rewritten in format 3's layout.
  Status ConvertRowFieldsFromFormat2();
  // Reads fs_columns into names_; Corruption when its numbers are not
  // 0, 1, 2... per table.
  Status LoadNames();
  // Numbers `name` in fs_columns and names_ if the table's list lacks it.
  // Only Open does this (the schema's columns, and what a conversion
  // finds): at run time every name written is one of those.
  Status NumberName(const std::string& table, const std::string& name);
  // A conversion's SaveFields: numbers the fields' names first.
  Status SaveConvertedFields(const std::string& table, const std::string& row, const FieldList& fields);
  // The table's column numbers; an empty list for a table the file never held.
  const FieldNames& NamesOf(const std::string& table) const;
  Status SaveConflict(const ConflictRecord& r);
  Status ApplyDelete(const TableDef& t, const Change& c, ApplyOutcome* out);
  Status LoadTombstone(const std::string& table, const std::string& row, bool* found, Stamp* stamp,
                       VersionVector* seen);
  Status ReadRow(const TableDef& t, Statement& s, json* row);
  Status ReadScopedState(const std::string& after_table, const std::string& after_row, size_t max_rows,
                         std::vector<RowState>* out, bool* more, const std::string& keys_json);
  // Fills in the materialized values of the rows' fields.
  Status ReadValues(std::vector<RowState>* rows);
  const TableDef* Table(const std::string& name, Status* st) const;

  Database db_;
  Schema schema_;
  // Per table, in schema order: the whole-row upsert and the row by id.
  std::vector<std::string> row_upsert_sql_, row_select_sql_;
  // fs_columns, by table: the numbers fs_row_fields entries name columns by.
  std::unordered_map<std::string, FieldNames> names_;
};

// How a column value is stored in SQLite and read back.
void BindValue(Statement& s, int index, const ColumnDef& col, const json& v);
json ReadValue(const Statement& s, int index, const ColumnDef& col);

}  // namespace fieldsync::store
