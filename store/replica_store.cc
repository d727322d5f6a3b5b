#include "store/replica_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <tuple>

#include "store/row_fields.h"
#include "sync/protocol.h"

namespace fieldsync::store {

namespace {

// 1: one fs_fields row per field. 2: one fs_row_fields row per row, its
// fields packed with names and stamps in full. 3: columns by their number in
// fs_columns, stamps by difference (store/row_fields.h). Older files are
// converted on open.
constexpr int64_t kFormatVersion = 3;

std::string Quote(const std::string& ident) { return "\"" + ident + "\""; }

const char* SqlType(const ColumnDef& c) {
  switch (c.type) {
    case ColumnType::kInteger:
    case ColumnType::kBoolean: return "INTEGER";
    case ColumnType::kReal: return "REAL";
    default: return "TEXT";
  }
}

constexpr const char* kInternalDdl = R"SQL(
CREATE TABLE IF NOT EXISTS fs_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fs_row_fields(
  tbl TEXT NOT NULL, row_id TEXT NOT NULL, fields BLOB NOT NULL,
  PRIMARY KEY(tbl, row_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fs_columns(
  tbl TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,
  PRIMARY KEY(tbl, idx), UNIQUE(tbl, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fs_tombstones(
  tbl TEXT NOT NULL, row_id TEXT NOT NULL, hlc INTEGER NOT NULL, node INTEGER NOT NULL,
  seen TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY(tbl, row_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fs_conflicts(
  id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, row_id TEXT NOT NULL, col TEXT NOT NULL,
  kind TEXT NOT NULL, loser_value TEXT, loser_hlc INTEGER NOT NULL, loser_node INTEGER NOT NULL,
  winner_value TEXT, winner_hlc INTEGER NOT NULL, winner_node INTEGER NOT NULL,
  resolved INTEGER NOT NULL DEFAULT 0,
  UNIQUE(tbl, row_id, col, loser_node, loser_hlc));
CREATE TABLE IF NOT EXISTS fs_outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, change TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fs_rejected(
  id INTEGER PRIMARY KEY, change TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL);
)SQL";

// Gives a loaded field its value from the column. An mv field's single
// write, which files from before 2026-12-07 spell out, is then implied
// (docs/storage.md section 6), so every read gives what a fresh replica
// holds. The file keeps the long form until that field is merged again:
// rewriting a row's other fields does not come through here.
void SetLoadedValue(const ColumnDef& c, json value, FieldState* f) {
  f->value = std::move(value);
  if (c.merge == MergePolicy::kMv && IsSpelledOutSingleWrite(*f)) f->crdt = nullptr;
}

json ParseJsonText(const std::string& s) {
  if (s.empty()) return nullptr;
  json j = json::parse(s, nullptr, false);
  return j.is_discarded() ? json() : j;
}

// The merge state of a field from four result columns (hlc, node, base,
// crdt) starting at `first`, as format 1's fs_fields held it.
FieldState FieldFromColumns(const Statement& s, int first) {
  FieldState f;
  f.present = true;
  f.stamp = {static_cast<Hlc>(s.Int(first)), static_cast<NodeId>(s.Int(first + 1))};
  f.base = static_cast<Hlc>(s.Int(first + 2));
  f.crdt = s.IsNull(first + 3) ? json() : ParseJsonText(s.Text(first + 3));
  return f;
}

// A tombstone from three result columns (hlc, node, seen) starting at `first`.
void TombstoneFromColumns(const Statement& s, int first, Stamp* stamp, VersionVector* seen) {
  *stamp = {static_cast<Hlc>(s.Int(first)), static_cast<NodeId>(s.Int(first + 1))};
  seen->clear();
  VersionVectorFromJson(ParseJsonText(s.Text(first + 2)), seen);
}

FieldList::iterator FindField(FieldList& fields, const std::string& name) {
  auto it = std::lower_bound(fields.begin(), fields.end(), name,
                             [](const auto& f, const std::string& n) { return f.first < n; });
  return it != fields.end() && it->first == name ? it : fields.end();
}

std::string SelectList(const TableDef& t) {
  std::string sql = "SELECT id";
  for (const auto& c : t.columns) sql += ", " + Quote(c.name);
  return sql + " FROM " + Quote(t.name);
}

}  // namespace

void BindValue(Statement& s, int i, const ColumnDef& col, const json& v) {
  if (v.is_null()) { s.BindNull(i); return; }
  switch (col.type) {
    case ColumnType::kInteger:
      s.Bind(i, v.get<int64_t>());
      return;
    case ColumnType::kBoolean:
      s.Bind(i, static_cast<int64_t>(v.get<bool>() ? 1 : 0));
      return;
    case ColumnType::kReal:
      s.Bind(i, v.get<double>());
      return;
    case ColumnType::kSet:
      s.Bind(i, v.dump());
      return;
    default:
      s.Bind(i, v.get_ref<const std::string&>());
  }
}

json ReadValue(const Statement& s, int i, const ColumnDef& col) {
  if (s.IsNull(i)) return nullptr;
  switch (col.type) {
    case ColumnType::kInteger: return s.Int(i);
    case ColumnType::kBoolean: return s.Int(i) != 0;
    case ColumnType::kReal: return s.Real(i);
    case ColumnType::kSet: return ParseJsonText(s.Text(i));
    default: return s.Text(i);
  }
}

Status Store::Open(const std::string& path, const Schema& schema, const OpenOptions& opts) {
  schema_ = schema;
  // An upsert, not INSERT OR REPLACE: an existing row is updated in place
  // instead of deleted and inserted again (two writes to the table and its
  // id index).
  row_upsert_sql_.clear();
  row_select_sql_.clear();
  for (const auto& t : schema_.tables()) {
    row_select_sql_.push_back(SelectList(t) + " WHERE id=?");
    std::string cols, params, sets;
    for (const auto& c : t.columns) {
      cols += ", " + Quote(c.name);
      params += ",?";
      sets += (sets.empty() ? "" : ", ") + Quote(c.name) + "=excluded." + Quote(c.name);
    }
    std::string sql = "INSERT INTO " + Quote(t.name) + "(id" + cols + ") VALUES(?" + params + ")";
    row_upsert_sql_.push_back(sets.empty() ? sql + " ON CONFLICT(id) DO NOTHING"
                                           : sql + " ON CONFLICT(id) DO UPDATE SET " + sets);
  }
  Status st = db_.Open(path, opts);
  if (!st.ok()) return st;
  st = CreateTables();
  if (!st.ok()) db_.Close();
  return st;
}

Status Store::CreateTables() {
  Transaction tx(&db_);
  if (!tx.status().ok()) return tx.status();
  Status st = db_.Exec(kInternalDdl);
  if (!st.ok()) return st;
  for (const auto& t : schema_.tables()) {
    std::string ddl = "CREATE TABLE IF NOT EXISTS " + Quote(t.name) + "(id TEXT PRIMARY KEY NOT NULL";
    for (const auto& c : t.columns) ddl += ", " + Quote(c.name) + " " + SqlType(c);
    ddl += ")";
    if (!(st = db_.Exec(ddl)).ok()) return st;
    // Additive migration: add columns a newer schema declares.
    std::set<std::string> have;
    Statement& info = db_.Prepare("SELECT name FROM pragma_table_info(?)", &st);
    if (!st.ok()) return st;
    info.Bind(1, t.name);
    while (info.Step()) have.insert(info.Text(0));
    info.Reset();
    for (const auto& c : t.columns)
      if (!have.count(c.name))
        if (!(st = db_.Exec("ALTER TABLE " + Quote(t.name) + " ADD COLUMN " + Quote(c.name) + " " + SqlType(c))).ok())
          return st;
    if (!t.parent_column.empty()) {
      st = db_.Exec("CREATE INDEX IF NOT EXISTS " + Quote(t.name + "_by_" + t.parent_column) + " ON " +
                    Quote(t.name) + "(" + Quote(t.parent_column) + ")");
      if (!st.ok()) return st;
    }
  }
  // The layout of the fs_* tables (docs/storage.md). A file from a newer
  // FieldSync is refused rather than misread.
  int64_t format = 0;
  if (!(st = GetMetaInt("format", kFormatVersion, &format)).ok()) return st;
  if (format > kFormatVersion)
    return Status(Code::kUnsupported, "file format " + std::to_string(format) + " is newer than this build's " +
                                          std::to_string(kFormatVersion));
  // Every column the schema declares has its number before any entry is
  // written; a conversion numbers what else it finds.
  if (!(st = LoadNames()).ok()) return st;
  for (const auto& t : schema_.tables())
    for (const auto& c : t.columns)
      if (!(st = NumberName(t.name, c.name)).ok()) return st;
  if (!(st = MigrateFieldTable()).ok()) return st;
  if (format == 2 && !(st = ConvertRowFieldsFromFormat2()).ok()) return st;
  if (!(st = SetMetaInt("format", kFormatVersion)).ok()) return st;
  if (!(st = SetMeta("schema_fingerprint", schema_.fingerprint())).ok()) return st;
  if (!(st = SetMeta("schema", schema_.document().dump())).ok()) return st;
  return tx.Commit();
}

const TableDef* Store::Table(const std::string& name, Status* st) const {
  const TableDef* t = schema_.Find(name);
  *st = t ? Status::OK() : Status::NotFound("unknown table '" + name + "'");
  return t;
}

Status Store::LoadField(const std::string& table, const std::string& row, const ColumnDef& col,
                        FieldState* out) {
  *out = FieldState{};
  FieldList fields;
  Status st = LoadFields(table, row, &fields);
  if (!st.ok()) return st;
  auto it = FindField(fields, col.name);
  if (it == fields.end()) return Status::OK();
  *out = std::move(it->second);
  // The materialized value lives in the table itself.
  Statement& v = db_.Prepare("SELECT " + Quote(col.name) + " FROM " + Quote(table) + " WHERE id=?", &st);
  if (!st.ok()) return st;
  v.Bind(1, row);
  if (v.Step()) SetLoadedValue(col, ReadValue(v, 0, col), out);
  st = v.status();
  v.Reset();
  return st;
}

Status Store::IsDeleted(const std::string& table, const std::string& row, bool* deleted) {
  Status st;
  Statement& s = db_.Prepare("SELECT 1 FROM fs_tombstones WHERE tbl=? AND row_id=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, table).Bind(2, row);
  *deleted = s.Step();
  st = s.status();
  s.Reset();
  return st;
}

Status Store::SaveField(const std::string& table, const std::string& row, const ColumnDef& col,
                        const FieldState& f) {
  FieldList fields;
  Status st = LoadFields(table, row, &fields);
  if (!st.ok()) return st;
  if (auto it = FindField(fields, col.name); it != fields.end()) {
    it->second = f;
  } else {
    fields.emplace_back(col.name, f);  // SaveFields sorts
  }
  return SaveFields(table, row, fields);
}

Status Store::LoadFields(const std::string& table, const std::string& row, FieldList* out) {
  out->clear();
  Status st;
  Statement& s = db_.Prepare("SELECT fields FROM fs_row_fields WHERE tbl=? AND row_id=?", &st);
  if (!st.ok()) return st;
  s.BindRef(1, table).BindRef(2, row);
  Status decoded;
  if (s.Step()) decoded = DecodeRowFields(s.Bytes(0), NamesOf(table), out);
  st = s.status();
  s.Reset();
  if (!st.ok()) return st;
  if (!decoded.ok()) return Status::Corruption(decoded.message() + " (" + table + "/" + row + ")");
  return Status::OK();
}

Status Store::SaveFields(const std::string& table, const std::string& row, const FieldList& fields) {
  std::string blob;
  if (Status st = EncodeRowFields(fields, NamesOf(table), &blob); !st.ok()) return st;
  if (blob.empty()) return DropFields(table, row);
  Status st;
  Statement& s = db_.Prepare(
      "INSERT INTO fs_row_fields(tbl,row_id,fields) VALUES(?,?,?) "
      "ON CONFLICT(tbl,row_id) DO UPDATE SET fields=excluded.fields",
      &st);
  if (!st.ok()) return st;
  s.BindRef(1, table).BindRef(2, row).BindBlobRef(3, blob);
  return s.Run();
}

Status Store::SaveKnownFields(const TableDef& t, const std::string& row, const FieldList& fields) {
  bool all_known = std::all_of(fields.begin(), fields.end(), [&](const auto& f) { return t.Find(f.first) != nullptr; });
  if (all_known) return SaveFields(t.name, row, fields);
  FieldList known;
  for (const auto& f : fields)
    if (t.Find(f.first)) known.push_back(f);
  return SaveFields(t.name, row, known);
}

Status Store::DropFields(const std::string& table, const std::string& row) {
  Status st;
  Statement& s = db_.Prepare("DELETE FROM fs_row_fields WHERE tbl=? AND row_id=?", &st);
  if (!st.ok()) return st;
  s.BindRef(1, table).BindRef(2, row);
  return s.Run();
}

Status Store::LoadRowFields(const TableDef& t, const std::string& row, std::vector<FieldState>* by_col,
                            FieldList* others, std::vector<json>* current) {
  by_col->assign(t.columns.size(), FieldState{});
  others->clear();
  current->assign(t.columns.size(), json());
  FieldList all;
  Status st = LoadFields(t.name, row, &all);
  if (!st.ok()) return st;
  for (auto& [name, f] : all) {
    if (const ColumnDef* c = t.Find(name)) (*by_col)[c->index] = std::move(f);
    else others->emplace_back(std::move(name), std::move(f));
  }
  Statement& read = db_.Prepare(row_select_sql_[&t - schema_.tables().data()], &st);
  if (!st.ok()) return st;
  read.BindRef(1, row);
  if (read.Step())
    for (const auto& c : t.columns) (*current)[c.index] = ReadValue(read, c.index + 1, c);
  st = read.status();
  read.Reset();
  if (!st.ok()) return st;
  for (const auto& c : t.columns)
    if ((*by_col)[c.index].present) SetLoadedValue(c, (*current)[c.index], &(*by_col)[c.index]);
  return Status::OK();
}

Status Store::MigrateFieldTable() {
  Status st;
  Statement& has = db_.Prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name='fs_fields'", &st);
  if (!st.ok()) return st;
  bool old = has.Step();
  st = has.status();
  has.Reset();
  if (!st.ok() || !old) return st;
  // Format 1: one row per field. Read in key order, so each row's fields
  // arrive together and are written as one entry.
  Statement& s = db_.Prepare("SELECT tbl, row_id, col, hlc, node, base, crdt FROM fs_fields ORDER BY tbl, row_id, col",
                             &st);
  if (!st.ok()) return st;
  std::string table, row;
  FieldList fields;
  while (s.Step()) {
    std::string t = s.Text(0), r = s.Text(1);
    if (t != table || r != row) {
      if (!fields.empty() && !(st = SaveConvertedFields(table, row, fields)).ok()) break;
      fields.clear();
      table = std::move(t);
      row = std::move(r);
    }
    fields.emplace_back(s.Text(2), FieldFromColumns(s, 3));
  }
  if (st.ok()) st = s.status();
  s.Reset();
  if (!st.ok()) return st;
  if (!fields.empty() && !(st = SaveConvertedFields(table, row, fields)).ok()) return st;
  return db_.Exec("DROP TABLE fs_fields");
}

Status Store::ConvertRowFieldsFromFormat2() {
  // In key-ordered batches: rows are rewritten between reads, never while
  // a statement walks the table.
  std::string t0, r0;
  Status st;
  for (;;) {
    std::vector<std::pair<std::pair<std::string, std::string>, FieldList>> batch;
    Statement& s = db_.Prepare(
        "SELECT tbl, row_id, fields FROM fs_row_fields WHERE (tbl, row_id) > (?, ?) ORDER BY tbl, row_id LIMIT 1000", &st);
    if (!st.ok()) return st;
    s.Bind(1, t0).Bind(2, r0);
    Status decoded;
    while (decoded.ok() && s.Step()) {
      batch.push_back({{s.Text(0), s.Text(1)}, {}});
      decoded = DecodeRowFieldsV2(s.Bytes(2), &batch.back().second);
    }
    st = s.status();
    s.Reset();
    if (!st.ok()) return st;
    const auto& last = batch.empty() ? std::pair<std::string, std::string>() : batch.back().first;
    if (!decoded.ok()) return Status::Corruption(decoded.message() + " (" + last.first + "/" + last.second + ")");
    if (batch.empty()) return Status::OK();
    for (const auto& [key, fields] : batch)
      if (!(st = SaveConvertedFields(key.first, key.second, fields)).ok()) return st;
    t0 = last.first;
    r0 = last.second;
  }
}

Status Store::LoadNames() {
  names_.clear();
  Status st;
  Statement& s = db_.Prepare("SELECT tbl, idx, name FROM fs_columns ORDER BY tbl, idx", &st);
  if (!st.ok()) return st;
  bool dense = true;
  while (dense && s.Step()) {
    FieldNames& names = names_[s.Text(0)];
    int64_t idx = s.Int(1);
    dense = idx == static_cast<int64_t>(names.size()) && names.Add(s.Text(2)) == idx;
  }
  st = s.status();
  s.Reset();
  if (!st.ok()) return st;
  return dense ? Status::OK() : Status::Corruption("fs_columns: a table's column numbers must be 0, 1, 2... and distinct");
}

Status Store::NumberName(const std::string& table, const std::string& name) {
  FieldNames& names = names_[table];
  if (names.Find(name) >= 0) return Status::OK();
  Status st;
  Statement& s = db_.Prepare("INSERT INTO fs_columns(tbl, idx, name) VALUES(?, ?, ?)", &st);
  if (!st.ok()) return st;
  s.Bind(1, table).Bind(2, static_cast<int64_t>(names.size())).Bind(3, name);
  if (!(st = s.Run()).ok()) return st;
  names.Add(name);
  return Status::OK();
}

Status Store::SaveConvertedFields(const std::string& table, const std::string& row, const FieldList& fields) {
  for (const auto& [name, f] : fields)
    if (Status st = NumberName(table, name); !st.ok()) return st;
  return SaveFields(table, row, fields);
}

const FieldNames& Store::NamesOf(const std::string& table) const {
  static const FieldNames kNone;
  auto it = names_.find(table);
  return it == names_.end() ? kNone : it->second;
}

Status Store::WriteColumn(const TableDef& t, const ColumnDef& col, const std::string& row, const json& v) {
  Status st;
  Statement& s = db_.Prepare("INSERT INTO " + Quote(t.name) + "(id, " + Quote(col.name) +
                                 ") VALUES(?, ?) ON CONFLICT(id) DO UPDATE SET " + Quote(col.name) +
                                 "=excluded." + Quote(col.name),
                             &st);
  if (!st.ok()) return st;
  s.Bind(1, row);
  BindValue(s, 2, col, v);
  return s.Run();
}

Status Store::SaveConflict(const ConflictRecord& r) {
  Status st;
  Statement& s = db_.Prepare(
      "INSERT OR IGNORE INTO fs_conflicts(tbl,row_id,col,kind,loser_value,loser_hlc,loser_node,"
      "winner_value,winner_hlc,winner_node) VALUES(?,?,?,?,?,?,?,?,?,?)",
      &st);
  if (!st.ok()) return st;
  s.Bind(1, r.table).Bind(2, r.row).Bind(3, r.column).Bind(4, r.kind).Bind(5, r.loser_value.dump());
  s.Bind(6, r.loser.hlc).Bind(7, r.loser.node).Bind(8, r.winner_value.dump());
  s.Bind(9, r.winner.hlc).Bind(10, r.winner.node);
  return s.Run();
}

Status Store::LoadTombstone(const std::string& table, const std::string& row, bool* found, Stamp* stamp,
                            VersionVector* seen) {
  Status st;
  Statement& s = db_.Prepare("SELECT hlc, node, seen FROM fs_tombstones WHERE tbl=? AND row_id=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, table).Bind(2, row);
  *found = s.Step();
  if (*found) TombstoneFromColumns(s, 0, stamp, seen);
  st = s.status();
  s.Reset();
  return st;
}

Status Store::RowContext(const TableDef& t, const std::string& row, VersionVector* seen) {
  seen->clear();
  FieldList fields;
  Status st = LoadFields(t.name, row, &fields);
  if (!st.ok()) return st;
  for (const auto& [name, f] : fields)
    if (const ColumnDef* col = t.Find(name)) AddFieldContext(*col, f, seen);
  return Status::OK();
}

Status Store::ApplyDelete(const TableDef& t, const Change& c, ApplyOutcome* out) {
  Status st;
  bool found = false;
  Stamp stamp;
  VersionVector seen;
  if (!(st = LoadTombstone(t.name, c.row, &found, &stamp, &seen)).ok()) return st;
  // Several deletes of one row: the largest stamp and the union of what they
  // had seen, so any order of the same deletes ends equal.
  if (!found || stamp < c.stamp) stamp = c.stamp;
  JoinInto(&seen, c.ctx);
  JoinInto(&seen, {{c.stamp.node, c.stamp.hlc}});
  Statement& ts = db_.Prepare(
      "INSERT INTO fs_tombstones(tbl,row_id,hlc,node,seen) VALUES(?,?,?,?,?) ON CONFLICT(tbl,row_id) DO UPDATE "
      "SET hlc=excluded.hlc, node=excluded.node, seen=excluded.seen",
      &st);
  if (!st.ok()) return st;
  ts.Bind(1, t.name).Bind(2, c.row).Bind(3, stamp.hlc).Bind(4, stamp.node).Bind(5, VersionVectorToJson(seen).dump());
  if (!(st = ts.Run()).ok()) return st;
  if (found) return Status::OK();  // the row's fields went with the first delete
  // Writes the deleter had not seen were concurrent with the delete: keep
  // them as conflicts, exactly as if they had arrived after it.
  std::vector<FieldState> fields;
  FieldList others;
  std::vector<json> current;
  if (!(st = LoadRowFields(t, c.row, &fields, &others, &current)).ok()) return st;
  for (const auto& col : t.columns) {
    const FieldState& f = fields[col.index];
    if (!f.present) continue;
    std::vector<std::pair<Stamp, json>> writes;
    if (col.merge == MergePolicy::kMv) {
      for (const auto& e : MvEntriesOf(f)) writes.push_back(e);
    } else {
      writes.push_back({f.stamp, f.value});
    }
    for (const auto& [w, v] : writes) {
      if (Covers(seen, w.node, w.hlc)) continue;
      ConflictRecord r{t.name, c.row, col.name, "deleted", v, w, nullptr, c.stamp};
      if (!(st = SaveConflict(r)).ok()) return st;
      out->conflicts.push_back(std::move(r));
    }
  }
  Statement& del = db_.Prepare("DELETE FROM " + Quote(t.name) + " WHERE id=?", &st);
  if (!st.ok()) return st;
  del.Bind(1, c.row);
  if (!(st = del.Run()).ok()) return st;
  out->changed = db_.Changes() > 0;
  return DropFields(t.name, c.row);
}

Status Store::ApplyChange(const Change& c, ApplyOutcome* out) {
  *out = ApplyOutcome{};
  Status st;
  const TableDef* t = Table(c.table, &st);
  if (!t) return st;
  if (c.op == Op::kDelete) return ApplyDelete(*t, c, out);
  const ColumnDef* col = t->Find(c.column);
  if (!col) return Status::NotFound("unknown column '" + c.table + "." + c.column + "'");
  bool deleted = false;
  Stamp tomb;
  VersionVector seen;
  if (!(st = LoadTombstone(c.table, c.row, &deleted, &tomb, &seen)).ok()) return st;
  if (deleted) {
    // Deletes are final. A write the deleter had seen is simply gone with
    // the row; one it had not seen is kept as a "deleted" conflict record.
    out->refused_deleted = true;
    if (!Covers(seen, c.stamp.node, c.stamp.hlc)) {
      ConflictRecord r{c.table, c.row, c.column, "deleted", c.value, c.stamp, nullptr, tomb};
      if (!(st = SaveConflict(r)).ok()) return st;
      out->conflicts.push_back(std::move(r));
    }
    return Status::OK();
  }
  FieldState cur;
  if (!(st = LoadField(c.table, c.row, *col, &cur)).ok()) return st;
  MergeResult m = MergeField(*col, cur, c);
  for (const auto& r : m.conflicts)
    if (!(st = SaveConflict(r)).ok()) return st;
  out->conflicts = std::move(m.conflicts);
  if (!m.changed) return Status::OK();
  if (!(st = SaveField(c.table, c.row, *col, m.state)).ok()) return st;
  out->changed = true;
  return WriteColumn(*t, *col, c.row, m.state.value);
}

Status Store::WriteWholeRow(const TableDef& t, const std::string& row, const std::vector<const json*>& values) {
  Status st;
  Statement& s = db_.Prepare(row_upsert_sql_[&t - schema_.tables().data()], &st);
  if (!st.ok()) return st;
  s.BindRef(1, row);
  for (const auto& c : t.columns) {
    if (values[c.index]) BindValue(s, c.index + 2, c, *values[c.index]);
    else s.BindNull(c.index + 2);
  }
  return s.Run();
}

Status Store::ApplyRow(std::span<const Change> run, ApplyOutcome* out) {
  *out = ApplyOutcome{};
  if (run.empty()) return Status::OK();
  Status st;
  const TableDef* t = Table(run[0].table, &st);
  if (!t) return st;
  const std::string& row = run[0].row;
  std::vector<const ColumnDef*> cols;
  cols.reserve(run.size());
  for (const Change& c : run) {
    if (c.op != Op::kSet || c.table != t->name || c.row != row)
      return Status::InvalidArgument("ApplyRow takes writes to one row: " + c.table + "/" + c.row);
    const ColumnDef* col = t->Find(c.column);
    if (!col) return Status::NotFound("unknown column '" + c.table + "." + c.column + "'");
    cols.push_back(col);
  }
  bool deleted = false;
  Stamp tomb;
  VersionVector seen;
  if (!(st = LoadTombstone(t->name, row, &deleted, &tomb, &seen)).ok()) return st;
  if (deleted) {
    out->refused_deleted = true;  // as ApplyChange, for each write of the run
    for (const Change& c : run) {
      if (Covers(seen, c.stamp.node, c.stamp.hlc)) continue;
      ConflictRecord r{c.table, c.row, c.column, "deleted", c.value, c.stamp, nullptr, tomb};
      if (!(st = SaveConflict(r)).ok()) return st;
      out->conflicts.push_back(std::move(r));
    }
    return Status::OK();
  }
  // The row as it stands: every field's merge state, and the row itself for
  // the values (and for the columns this run leaves alone, which the whole-row
  // write below rewrites as they are).
  std::vector<FieldState> fields;
  FieldList others;  // columns this schema no longer has: kept as they are
  std::vector<json> current;
  if (!(st = LoadRowFields(*t, row, &fields, &others, &current)).ok()) return st;
  std::vector<bool> dirty(t->columns.size(), false);
  for (size_t i = 0; i < run.size(); ++i) {
    const ColumnDef& col = *cols[i];
    MergeResult m = MergeField(col, fields[col.index], run[i]);
    for (const auto& r : m.conflicts)
      if (!(st = SaveConflict(r)).ok()) return st;
    for (auto& r : m.conflicts) out->conflicts.push_back(std::move(r));
    if (!m.changed) continue;
    fields[col.index] = std::move(m.state);
    dirty[col.index] = true;
  }
  std::vector<const json*> values(t->columns.size(), nullptr);
  for (const auto& c : t->columns) {
    if (dirty[c.index]) {
      out->changed = true;
      values[c.index] = &fields[c.index].value;
    } else {
      values[c.index] = &current[c.index];
    }
  }
  if (!out->changed) return Status::OK();
  if (!(st = WriteWholeRow(*t, row, values)).ok()) return st;
  // One entry for the row's fields, untouched ones included (SaveFields sorts).
  for (const auto& c : t->columns)
    if (fields[c.index].present) others.emplace_back(c.name, std::move(fields[c.index]));
  return SaveFields(t->name, row, others);
}

Status Store::Restamp(const Change& old, Stamp fresh) {
  Status st;
  const TableDef* t = Table(old.table, &st);
  if (!t) return st;
  if (old.op == Op::kDelete) {
    Statement& s = db_.Prepare("UPDATE fs_tombstones SET hlc=?, node=? WHERE tbl=? AND row_id=? AND hlc=? AND node=?", &st);
    if (!st.ok()) return st;
    s.Bind(1, fresh.hlc).Bind(2, fresh.node).Bind(3, old.table).Bind(4, old.row).Bind(5, old.stamp.hlc);
    s.Bind(6, old.stamp.node);
    return s.Run();
  }
  const ColumnDef* col = t->Find(old.column);
  if (!col) return Status::NotFound("unknown column '" + old.table + "." + old.column + "'");
  FieldState f;
  if (!(st = LoadField(old.table, old.row, *col, &f)).ok() || !f.present) return st;
  bool changed = false;
  if (f.stamp == old.stamp) {
    f.stamp = fresh;
    changed = true;
  }
  const std::string node = ToHex(old.stamp.node), hlc = ToHex(old.stamp.hlc);
  bool value_changed = false;
  if (col->merge == MergePolicy::kMv && f.crdt.is_array()) {
    for (auto& e : f.crdt)
      if (e.value("n", "") == node && e.value("h", "") == hlc) {
        e["h"] = ToHex(fresh.hlc);
        // The entry's context must match the re-stamped change's (see
        // Restamped in the SDK): a context still covering the old, skewed
        // stamp would make this replica ignore its author's next edit.
        if (e.contains("x") && e["x"].is_object() && e["x"].contains(node)) {
          uint64_t seen = 0;
          if (ParseHex(e["x"][node].get<std::string>(), &seen) && seen >= fresh.hlc) e["x"][node] = ToHex(fresh.hlc - 1);
        }
        changed = true;
      }
    // Entries stay ordered by stamp (fixed-width hex sorts like the number),
    // and the column shows the newest.
    std::vector<json> es(f.crdt.begin(), f.crdt.end());
    std::sort(es.begin(), es.end(), [](const json& a, const json& b) {
      return std::make_pair(a.value("h", ""), a.value("n", "")) < std::make_pair(b.value("h", ""), b.value("n", ""));
    });
    f.crdt = es;
    if (!es.empty() && f.value != es.back()["v"]) {
      f.value = es.back()["v"];
      value_changed = true;
    }
  } else if (col->merge == MergePolicy::kOrSet && old.op == Op::kAdd && old.value.is_string() &&
             f.crdt.is_object() && f.crdt.contains(old.value.get<std::string>())) {
    json& adds = f.crdt[old.value.get<std::string>()]["a"];
    if (adds.value(node, "") == hlc) {
      adds[node] = ToHex(fresh.hlc);
      changed = true;
    }
  }
  if (!changed) return Status::OK();
  if (!(st = SaveField(old.table, old.row, *col, f)).ok()) return st;
  return value_changed ? WriteColumn(*t, *col, old.row, f.value) : Status::OK();
}

Status Store::ReadRow(const TableDef& t, Statement& s, json* row) {
  json r = json::object();
  r["id"] = s.Text(0);
  for (const auto& c : t.columns) {
    json v = ReadValue(s, c.index + 1, c);
    if (!v.is_null()) r[c.name] = std::move(v);
  }
  // Flag conflicted multi-value fields with all their values.
  if (std::any_of(t.columns.begin(), t.columns.end(), [](const ColumnDef& c) { return c.merge == MergePolicy::kMv; })) {
    FieldList fields;
    if (Status st = LoadFields(t.name, r["id"].get<std::string>(), &fields); !st.ok()) return st;
    for (const auto& [name, f] : fields) {
      const ColumnDef* c = t.Find(name);
      if (c && c->merge == MergePolicy::kMv && IsConflicted(*c, f)) r["_conflicts"][c->name] = MvValues(f);
    }
  }
  *row = std::move(r);
  return Status::OK();
}


Status Store::GetRow(const std::string& table, const std::string& id, json* row) {
  Status st;
  const TableDef* t = Table(table, &st);
  if (!t) return st;
  Statement& s = db_.Prepare(row_select_sql_[t - schema_.tables().data()], &st);
  if (!st.ok()) return st;
  s.Bind(1, id);
  if (!s.Step()) {
    st = s.status();
    s.Reset();
    if (!st.ok()) return st;
    bool deleted = false;
    IsDeleted(table, id, &deleted);
    return deleted ? Status(Code::kDeleted, table + "/" + id + " was deleted")
                   : Status::NotFound(table + "/" + id + " not found");
  }
  // Copy out before ReadRow prepares other statements.
  json r;
  st = ReadRow(*t, s, &r);
  s.Reset();
  *row = std::move(r);
  return st;
}

Status Store::Query(const std::string& table, const QueryOptions& q, std::vector<json>* rows) {
  Status st;
  const TableDef* t = Table(table, &st);
  if (!t) return st;
  if (!q.where.is_object()) return Status::InvalidArgument("query filter must be an object");
  std::string sql = SelectList(*t);
  std::vector<std::pair<const ColumnDef*, json>> binds;
  std::vector<std::string> id_binds;
  bool first = true;
  for (const auto& [k, v] : q.where.items()) {
    sql += first ? " WHERE " : " AND ";
    first = false;
    if (k == "id") {
      if (!v.is_string()) return Status::Schema("id filter must be a string");
      sql += "id=?";
      id_binds.push_back(v.get<std::string>());
      binds.push_back({nullptr, v});
      continue;
    }
    const ColumnDef* c = t->Find(k);
    if (!c) return Status::NotFound("unknown column '" + table + "." + k + "'");
    if (v.is_null()) {
      sql += Quote(k) + " IS NULL";
      continue;
    }
    if (!(st = Schema::CheckValue(*t, *c, v)).ok()) return st;
    sql += Quote(k) + "=?";
    binds.push_back({c, v});
  }
  std::string order = "id";
  if (!q.order_by.empty() && q.order_by != "id") {
    if (!t->Find(q.order_by)) return Status::NotFound("unknown column '" + table + "." + q.order_by + "'");
    order = Quote(q.order_by) + (q.descending ? " DESC" : "") + ", id";
  } else if (q.descending) {
    order = "id DESC";
  }
  sql += " ORDER BY " + order + " LIMIT ? OFFSET ?";
  Statement& s = db_.Prepare(sql, &st);
  if (!st.ok()) return st;
  int i = 1;
  for (const auto& [c, v] : binds) {
    if (c) BindValue(s, i++, *c, v);
    else s.Bind(i++, v.get<std::string>());
  }
  s.Bind(i, q.limit).Bind(i + 1, q.offset);
  // Collect raw rows first: ReadRow prepares other statements.
  std::vector<json> out;
  while (s.Step()) {
    json r = json::object();
    r["id"] = s.Text(0);
    for (const auto& c : t->columns) {
      json v = ReadValue(s, c.index + 1, c);
      if (!v.is_null()) r[c.name] = std::move(v);
    }
    out.push_back(std::move(r));
  }
  st = s.status();
  s.Reset();
  if (!st.ok()) return st;
  bool has_mv = std::any_of(t->columns.begin(), t->columns.end(),
                            [](const ColumnDef& c) { return c.merge == MergePolicy::kMv; });
  if (has_mv) {
    for (auto& r : out) {
      json full;
      if (!(st = GetRow(table, r["id"].get<std::string>(), &full)).ok()) return st;
      r = std::move(full);
    }
  }
  *rows = std::move(out);
  return Status::OK();
}

Status Store::CountRows(const std::string& table, int64_t* n) {
  Status st;
  const TableDef* t = Table(table, &st);
  if (!t) return st;
  Statement& s = db_.Prepare("SELECT count(*) FROM " + Quote(t->name), &st);
  if (!st.ok()) return st;
  *n = s.Step() ? s.Int(0) : 0;
  st = s.status();
  s.Reset();
  return st;
}

Status Store::Dump(const std::function<void(const json&)>& emit) {
  std::vector<const TableDef*> tables;
  for (const auto& t : schema_.tables()) tables.push_back(&t);
  std::sort(tables.begin(), tables.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const TableDef* t : tables) {
    // Page through ids so memory stays bounded on a large store.
    std::string after;
    bool started = false;
    for (;;) {
      Status st;
      Statement& s = db_.Prepare("SELECT id FROM " + Quote(t->name) +
                                     (started ? " WHERE id > ?" : "") + " ORDER BY id LIMIT 512", &st);
      if (!st.ok()) return st;
      if (started) s.Bind(1, after);
      std::vector<std::string> ids;
      while (s.Step()) ids.push_back(s.Text(0));
      st = s.status();
      s.Reset();
      if (!st.ok()) return st;
      if (ids.empty()) break;
      for (const auto& id : ids) {
        json row;
        if (!(st = GetRow(t->name, id, &row)).ok()) return st;
        json line = json::object();
        line["table"] = t->name;
        for (auto& [k, v] : row.items()) line[k] = v;
        emit(line);
      }
      after = ids.back();
      started = true;
    }
  }
  return Status::OK();
}

namespace {
void ReadConflict(const Statement& s, StoredConflict* c) {
  c->id = s.Int(0);
  c->record.table = s.Text(1);
  c->record.row = s.Text(2);
  c->record.column = s.Text(3);
  c->record.kind = s.Text(4);
  c->record.loser_value = ParseJsonText(s.Text(5));
  c->record.loser = {static_cast<Hlc>(s.Int(6)), static_cast<NodeId>(s.Int(7))};
  c->record.winner_value = ParseJsonText(s.Text(8));
  c->record.winner = {static_cast<Hlc>(s.Int(9)), static_cast<NodeId>(s.Int(10))};
  c->resolved = s.Int(11) != 0;
}
constexpr const char* kConflictColumns =
    "SELECT id,tbl,row_id,col,kind,loser_value,loser_hlc,loser_node,winner_value,winner_hlc,winner_node,"
    "resolved FROM fs_conflicts";
}  // namespace

Status Store::ListConflicts(bool include_resolved, std::vector<StoredConflict>* out) {
  Status st;
  Statement& s = db_.Prepare(std::string(kConflictColumns) +
                                 (include_resolved ? "" : " WHERE resolved=0") + " ORDER BY id", &st);
  if (!st.ok()) return st;
  out->clear();
  while (s.Step()) {
    StoredConflict c;
    ReadConflict(s, &c);
    out->push_back(std::move(c));
  }
  st = s.status();
  s.Reset();
  return st;
}

Status Store::GetConflict(int64_t id, StoredConflict* out) {
  Status st;
  Statement& s = db_.Prepare(std::string(kConflictColumns) + " WHERE id=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, id);
  bool found = s.Step();
  if (found) ReadConflict(s, out);
  st = s.status();
  s.Reset();
  if (st.ok() && !found) return Status::NotFound("no conflict record " + std::to_string(id));
  return st;
}

Status Store::MarkConflictResolved(int64_t id) {
  Status st;
  Statement& s = db_.Prepare("UPDATE fs_conflicts SET resolved=1 WHERE id=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, id);
  return s.Run();
}

Status Store::OutboxAppend(const Change& c) {
  Status st;
  Statement& s = db_.Prepare("INSERT INTO fs_outbox(change) VALUES(?)", &st);
  if (!st.ok()) return st;
  s.Bind(1, ChangeToJsonText(c));
  return s.Run();
}

Status Store::OutboxPeek(size_t limit, std::vector<Change>* changes, std::vector<int64_t>* seqs, int64_t after_seq) {
  Status st;
  Statement& s = db_.Prepare("SELECT seq, change FROM fs_outbox WHERE seq > ? ORDER BY seq LIMIT ?", &st);
  if (!st.ok()) return st;
  s.Bind(1, after_seq).Bind(2, static_cast<int64_t>(limit));
  changes->clear();
  seqs->clear();
  while (s.Step()) {
    Change c;
    Status cs = ChangeFromJson(ParseJsonText(s.Text(1)), &c);
    if (!cs.ok()) {
      int64_t bad = s.Int(0);
      s.Reset();
      return Status::Corruption("outbox entry " + std::to_string(bad) + ": " + cs.message());
    }
    seqs->push_back(s.Int(0));
    changes->push_back(std::move(c));
  }
  st = s.status();
  s.Reset();
  return st;
}

Status Store::OutboxRemoveThrough(int64_t seq) {
  Status st;
  Statement& s = db_.Prepare("DELETE FROM fs_outbox WHERE seq <= ?", &st);
  if (!st.ok()) return st;
  s.Bind(1, seq);
  return s.Run();
}

Status Store::OutboxReplace(int64_t seq, const Change& c) {
  Status st;
  Statement& s = db_.Prepare("UPDATE fs_outbox SET change=? WHERE seq=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, ChangeToJsonText(c)).Bind(2, seq);
  return s.Run();
}

Status Store::OutboxMaxHlcAtMost(Hlc limit, Hlc* out) {
  *out = 0;
  Status st;
  Statement& s = db_.Prepare("SELECT change FROM fs_outbox", &st);
  if (!st.ok()) return st;
  while (s.Step()) {
    Change c;
    if (ChangeFromJson(ParseJsonText(s.Text(0)), &c).ok() && c.stamp.hlc <= limit && c.stamp.hlc > *out)
      *out = c.stamp.hlc;
  }
  st = s.status();
  s.Reset();
  return st;
}

Status Store::OutboxCount(int64_t* n) {
  Status st;
  Statement& s = db_.Prepare("SELECT count(*) FROM fs_outbox", &st);
  if (!st.ok()) return st;
  *n = s.Step() ? s.Int(0) : 0;
  st = s.status();
  s.Reset();
  return st;
}

Status Store::AddRejection(const Change& c, const std::string& code, const std::string& message) {
  Status st;
  Statement& s = db_.Prepare("INSERT INTO fs_rejected(change, code, message) VALUES(?,?,?)", &st);
  if (!st.ok()) return st;
  s.Bind(1, ChangeToJsonText(c)).Bind(2, code).Bind(3, message);
  return s.Run();
}

Status Store::ListRejections(std::vector<Rejection>* out) {
  Status st;
  Statement& s = db_.Prepare("SELECT id, change, code, message FROM fs_rejected ORDER BY id", &st);
  if (!st.ok()) return st;
  out->clear();
  while (s.Step()) {
    Rejection r;
    r.id = s.Int(0);
    ChangeFromJson(ParseJsonText(s.Text(1)), &r.change);
    r.code = s.Text(2);
    r.message = s.Text(3);
    out->push_back(std::move(r));
  }
  st = s.status();
  s.Reset();
  return st;
}

Status Store::GetMeta(const std::string& key, std::string* value, bool* found) {
  Status st;
  Statement& s = db_.Prepare("SELECT value FROM fs_meta WHERE key=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, key);
  *found = s.Step();
  if (*found) *value = s.Text(0);
  st = s.status();
  s.Reset();
  return st;
}

Status Store::SetMeta(const std::string& key, const std::string& value) {
  Status st;
  Statement& s = db_.Prepare(
      "INSERT INTO fs_meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", &st);
  if (!st.ok()) return st;
  s.Bind(1, key).Bind(2, value);
  return s.Run();
}

Status Store::GetMetaInt(const std::string& key, int64_t def, int64_t* value) {
  std::string v;
  bool found = false;
  Status st = GetMeta(key, &v, &found);
  if (!st.ok()) return st;
  if (!found) {
    *value = def;
    return Status::OK();
  }
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), *value);
  if (ec != std::errc() || end != v.data() + v.size())
    return Status::Corruption("fs_meta '" + key + "' is not an integer: " + v);
  return Status::OK();
}

Status Store::SetMetaInt(const std::string& key, int64_t value) { return SetMeta(key, std::to_string(value)); }

// ---- snapshots ------------------------------------------------------------------------

Status Store::ReadState(const std::string& after_table, const std::string& after_row, size_t max_rows,
                        std::vector<RowState>* out, bool* more, const std::string& keys_json,
                        const std::string& rows_json) {
  out->clear();
  *more = false;
  if (max_rows == 0) max_rows = 1;
  // One read lock for the page, and one state of the file for all of it.
  ReadTransaction rt(&db_);
  if (!rt.status().ok()) return rt.status();
  if (!keys_json.empty() && rows_json.empty()) return ReadScopedState(after_table, after_row, max_rows, out, more, keys_json);
  const bool scoped = !keys_json.empty(), listed = !rows_json.empty();
  std::string in_scope =
      scoped ? " AND (tbl, row_id) IN (SELECT tbl, row_id FROM fs_rows WHERE key IN (SELECT value FROM json_each(?3)))"
             : "";
  if (listed)
    in_scope += " AND (tbl, row_id) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?5))";
  Status st;
  // Fields of up to max_rows + 1 rows (the extra one only says "more").
  std::vector<RowState> live;
  {
    Statement& s = db_.Prepare(
        "SELECT tbl, row_id, fields FROM fs_row_fields WHERE (tbl, row_id) > (?1, ?2)" + in_scope +
            " ORDER BY tbl, row_id LIMIT ?4",
        &st);
    if (!st.ok()) return st;
    s.Bind(1, after_table).Bind(2, after_row).Bind(4, static_cast<int64_t>(max_rows + 1));
    if (scoped) s.Bind(3, keys_json);
    if (listed) s.Bind(5, rows_json);
    Status decoded;
    while (decoded.ok() && s.Step()) {
      live.emplace_back();
      live.back().table = s.Text(0);
      live.back().row = s.Text(1);
      decoded = DecodeRowFields(s.Bytes(2), NamesOf(live.back().table), &live.back().fields);
    }
    st = s.status();
    s.Reset();
    if (!st.ok()) return st;
    if (!decoded.ok()) return Status::Corruption(decoded.message() + " (" + live.back().table + "/" + live.back().row + ")");
  }
  std::vector<RowState> dead;
  {
    Statement& s = db_.Prepare(
        "SELECT tbl, row_id, hlc, node, seen FROM fs_tombstones WHERE (tbl, row_id) > (?1, ?2)" + in_scope +
            " ORDER BY tbl, row_id LIMIT ?4",
        &st);
    if (!st.ok()) return st;
    s.Bind(1, after_table).Bind(2, after_row).Bind(4, static_cast<int64_t>(max_rows + 1));
    if (scoped) s.Bind(3, keys_json);
    if (listed) s.Bind(5, rows_json);
    while (s.Step()) {
      RowState d;
      d.table = s.Text(0);
      d.row = s.Text(1);
      d.deleted = true;
      TombstoneFromColumns(s, 2, &d.tomb_stamp, &d.tomb_seen);
      dead.push_back(std::move(d));
    }
    st = s.status();
    s.Reset();
    if (!st.ok()) return st;
  }
  // Merge the two ordered streams; a key is in at most one of them.
  size_t i = 0, k = 0;
  auto key = [](const RowState& x) { return std::tie(x.table, x.row); };
  while (out->size() < max_rows && (i < live.size() || k < dead.size())) {
    if (k == dead.size() || (i < live.size() && key(live[i]) < key(dead[k]))) out->push_back(std::move(live[i++]));
    else out->push_back(std::move(dead[k++]));
  }
  *more = i < live.size() || k < dead.size();
  return ReadValues(out);
}

// A scoped page walks the rows of each scope key in turn, in (key, table,
// row id) order, through fs_rows' key index: a page costs what it holds,
// however many rows of other scopes the server has (W6). Filtering every
// page's fields by an IN over the whole scope instead rebuilt that set for
// each page, a bootstrap quadratic in the scope's size.
Status Store::ReadScopedState(const std::string& after_table, const std::string& after_row, size_t max_rows,
                              std::vector<RowState>* out, bool* more, const std::string& keys_json) {
  json parsed = json::parse(keys_json, nullptr, false);
  std::vector<std::string> keys;
  if (parsed.is_array())
    for (const auto& k : parsed)
      if (k.is_string()) keys.push_back(k.get<std::string>());
  std::sort(keys.begin(), keys.end());
  Status st;
  size_t first = 0;
  std::string from_table, from_row;
  if (!after_table.empty() || !after_row.empty()) {
    // The page resumes after a row the previous page ended with; its key
    // was fixed when the server first accepted it.
    Statement& k = db_.Prepare("SELECT key FROM fs_rows WHERE tbl=? AND row_id=?", &st);
    if (!st.ok()) return st;
    k.Bind(1, after_table).Bind(2, after_row);
    std::string key;
    bool found = k.Step();
    if (found) key = k.Text(0);
    st = k.status();
    k.Reset();
    if (!st.ok()) return st;
    if (!found) return Status::NotFound("snapshot 'after' names a row the server does not hold");
    first = static_cast<size_t>(std::lower_bound(keys.begin(), keys.end(), key) - keys.begin());
    if (first < keys.size() && keys[first] == key) {
      from_table = after_table;
      from_row = after_row;
    }
  }
  for (size_t ki = first; ki < keys.size() && !*more; ++ki) {
    // Candidates in bounded batches, so a key with many skipped ids never
    // loads them all at once.
    std::string t0 = ki == first ? from_table : "", r0 = ki == first ? from_row : "";
    for (;;) {
      // Each candidate's fields and tombstone come with it: one statement
      // step per row, not three lookups.
      Statement& s = db_.Prepare(
          "SELECT r.tbl, r.row_id, f.fields, t.hlc, t.node, t.seen FROM fs_rows r "
          "LEFT JOIN fs_row_fields f ON f.tbl=r.tbl AND f.row_id=r.row_id "
          "LEFT JOIN fs_tombstones t ON t.tbl=r.tbl AND t.row_id=r.row_id "
          "WHERE r.key=? AND (r.tbl, r.row_id) > (?, ?) ORDER BY r.tbl, r.row_id LIMIT ?",
          &st);
      if (!st.ok()) return st;
      s.Bind(1, keys[ki]).Bind(2, t0).Bind(3, r0).Bind(4, static_cast<int64_t>(max_rows + 1));
      size_t candidates = 0;
      Status decoded;
      while (decoded.ok() && s.Step()) {
        ++candidates;
        t0 = s.Text(0);
        r0 = s.Text(1);
        RowState row;
        if (!s.IsNull(2)) decoded = DecodeRowFields(s.Bytes(2), NamesOf(t0), &row.fields);
        if (!decoded.ok()) {
          decoded = Status::Corruption(decoded.message() + " (" + t0 + "/" + r0 + ")");
          break;
        }
        if (row.fields.empty()) {
          if (s.IsNull(3)) continue;  // a key no row or tombstone holds any more
          row.deleted = true;
          TombstoneFromColumns(s, 3, &row.tomb_stamp, &row.tomb_seen);
        }
        if (out->size() == max_rows) {
          *more = true;
          break;
        }
        row.table = t0;
        row.row = r0;
        out->push_back(std::move(row));
      }
      st = s.status();
      s.Reset();
      if (!st.ok()) return st;
      if (!decoded.ok()) return decoded;
      if (*more || candidates < max_rows + 1) break;
    }
  }
  return ReadValues(out);
}

Status Store::ReadValues(std::vector<RowState>* rows) {
  // The materialized values live in the schema tables: one lookup per row.
  Status st;
  for (RowState& r : *rows) {
    if (r.deleted) continue;
    const TableDef* t = schema_.Find(r.table);
    if (!t) continue;
    Statement& s = db_.Prepare(row_select_sql_[t - schema_.tables().data()], &st);
    if (!st.ok()) return st;
    s.BindRef(1, r.row);
    if (s.Step()) {
      for (auto& [name, f] : r.fields)
        if (const ColumnDef* c = t->Find(name)) SetLoadedValue(*c, ReadValue(s, c->index + 1, *c), &f);
    }
    st = s.status();
    s.Reset();
    if (!st.ok()) return st;
  }
  return Status::OK();
}

Status Store::InstallState(const std::vector<RowState>& rows) {
  Status st;
  for (const RowState& r : rows) {
    const TableDef* t = schema_.Find(r.table);
    if (!t) continue;
    if (r.deleted) {
      if (!(st = DropFields(r.table, r.row)).ok()) return st;
      Statement& ts = db_.Prepare("INSERT OR REPLACE INTO fs_tombstones(tbl,row_id,hlc,node,seen) VALUES(?,?,?,?,?)", &st);
      if (!st.ok()) return st;
      ts.Bind(1, r.table).Bind(2, r.row).Bind(3, r.tomb_stamp.hlc).Bind(4, r.tomb_stamp.node);
      ts.Bind(5, VersionVectorToJson(r.tomb_seen).dump());
      if (!(st = ts.Run()).ok()) return st;
      Statement& del = db_.Prepare("DELETE FROM " + Quote(t->name) + " WHERE id=?", &st);
      if (!st.ok()) return st;
      del.Bind(1, r.row);
      if (!(st = del.Run()).ok()) return st;
      continue;
    }
    Statement& untomb = db_.Prepare("DELETE FROM fs_tombstones WHERE tbl=? AND row_id=?", &st);
    if (!st.ok()) return st;
    untomb.Bind(1, r.table).Bind(2, r.row);
    if (!(st = untomb.Run()).ok()) return st;
    // The whole row in one statement: every column, NULL where unwritten.
    std::vector<const json*> values(t->columns.size(), nullptr);
    for (const auto& [name, f] : r.fields)
      if (const ColumnDef* c = t->Find(name)) values[c->index] = &f.value;
    if (!(st = WriteWholeRow(*t, r.row, values)).ok()) return st;
    if (!(st = SaveKnownFields(*t, r.row, r.fields)).ok()) return st;
  }
  return Status::OK();
}

Status Store::HasState(bool* any) {
  Status st;
  Statement& s = db_.Prepare(
      "SELECT EXISTS(SELECT 1 FROM fs_row_fields) OR EXISTS(SELECT 1 FROM fs_tombstones)", &st);
  if (!st.ok()) return st;
  *any = s.Step() && s.Int(0) != 0;
  st = s.status();
  s.Reset();
  return st;
}

Status Store::ClearState() {
  Status st;
  for (const auto& t : schema_.tables())
    if (!(st = db_.Exec("DELETE FROM " + Quote(t.name))).ok()) return st;
  if (!(st = db_.Exec("DELETE FROM fs_row_fields")).ok()) return st;
  return db_.Exec("DELETE FROM fs_tombstones");
}

Status Store::RowsOfKeys(const std::vector<std::string>& keys,
                         std::vector<std::pair<std::string, std::string>>* rows) {
  rows->clear();
  Status st;
  std::map<std::string, std::set<std::string>> found;  // table -> ids
  auto select = [&](const std::string& sql, const std::string& arg, const std::string& table) -> Status {
    Statement& s = db_.Prepare(sql, &st);
    if (!st.ok()) return st;
    s.Bind(1, arg);
    while (s.Step()) found[table].insert(s.Text(0));
    st = s.status();
    s.Reset();
    return st;
  };
  for (const std::string& key : keys) {
    size_t slash = key.find('/');
    if (slash == std::string::npos) continue;  // "*" never leaves a scope
    std::string head = key.substr(0, slash), rest = key.substr(slash + 1);
    for (const auto& t : schema_.tables()) {
      if (t.scope == ScopeRule::kAssignee && t.name == head) {
        if (!(st = select("SELECT id FROM " + Quote(t.name) + " WHERE id=?", rest, t.name)).ok()) return st;
      } else if (t.scope == ScopeRule::kRegion && head == "region") {
        if (!(st = select("SELECT id FROM " + Quote(t.name) + " WHERE " + Quote(t.scope_column) + "=?", rest, t.name)).ok())
          return st;
      }
    }
  }
  // Down the parent chains, one level per pass, until nothing new turns up.
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& t : schema_.tables()) {
      if (t.scope != ScopeRule::kParent) continue;
      auto parents = found.find(t.parent_table);
      if (parents == found.end() || parents->second.empty()) continue;
      size_t before = found[t.name].size();
      json ids(std::vector<std::string>(parents->second.begin(), parents->second.end()));
      if (!(st = select("SELECT id FROM " + Quote(t.name) + " WHERE " + Quote(t.parent_column) +
                            " IN (SELECT value FROM json_each(?))",
                        ids.dump(), t.name))
               .ok())
        return st;
      grew |= found[t.name].size() != before;
    }
  }
  for (const auto& [table, ids] : found)
    for (const auto& id : ids) rows->emplace_back(table, id);
  return Status::OK();
}

Status Store::EvictRows(const std::vector<std::pair<std::string, std::string>>& rows) {
  Status st;
  for (const auto& [table, id] : rows) {
    const TableDef* t = schema_.Find(table);
    if (!t) continue;
    Statement& del = db_.Prepare("DELETE FROM " + Quote(t->name) + " WHERE id=?", &st);
    if (!st.ok()) return st;
    del.Bind(1, id);
    if (!(st = del.Run()).ok()) return st;
    if (!(st = DropFields(table, id)).ok()) return st;
  }
  return Status::OK();
}

}  // namespace fieldsync::store
