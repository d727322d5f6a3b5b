#include "store/server_store.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <random>

#include "sync/protocol.h"

namespace fieldsync::store {

Status ServerStore::Open(const std::string& path, const Schema& schema, NodeId new_node) {
  Status st = store_.Open(path, schema);
  if (!st.ok()) return st;
  st = store_.db().Exec(
      "CREATE TABLE IF NOT EXISTS fs_log(seq INTEGER PRIMARY KEY, node INTEGER NOT NULL, "
      "hlc INTEGER NOT NULL, change TEXT NOT NULL, scope TEXT NOT NULL DEFAULT '?', user TEXT, device TEXT, "
      "UNIQUE(node, hlc));"
      "CREATE TABLE IF NOT EXISTS fs_devices(node INTEGER PRIMARY KEY, cursor INTEGER NOT NULL, "
      "seen_ms INTEGER NOT NULL, compacted_hlc INTEGER NOT NULL DEFAULT 0)");
  if (!st.ok() || !(st = OpenIdentity()).ok()) {
    store_.Close();
    return st;
  }
  // Devices are only registered from this build on: on a server that has
  // history from before, devices it has not heard from since may be behind.
  // Compaction waits one retention period from here (Horizon).
  std::string since;
  bool have_since = false;
  if (!(st = store_.GetMeta("devices_since", &since, &have_since)).ok()) return st;
  if (!have_since) {
    int64_t head = 0;
    if (!(st = Head(&head)).ok()) return st;
    if (!(st = store_.SetMetaInt("devices_since", head == 0 ? 0 : static_cast<int64_t>(SystemMillis()))).ok())
      return st;
  }
  std::string hex;
  bool found = false;
  if (!(st = store_.GetMeta("node", &hex, &found)).ok()) return st;
  if (!found || !ParseHex(hex, &node_) || node_ == 0) {
    std::random_device rd;
    node_ = new_node;
    while (node_ == 0) node_ = (static_cast<uint64_t>(rd()) << 32) | rd();
    if (!(st = store_.SetMeta("node", ToHex(node_))).ok()) return st;
  }
  return Status::OK();
}

Status ServerStore::ApplyBatch(const std::vector<Change>& changes, uint64_t now_ms, HybridClock* clock,
                               std::vector<PushResult>* results, std::vector<Change>* applied,
                               Writer writer, const Actor* actor) {
  return ApplyBatchImpl(changes, now_ms, clock, results, applied, writer, actor, false);
}

Status ServerStore::WriteAs(const Actor& actor, const std::vector<json>& rows, uint64_t now_ms, HybridClock* clock,
                            std::vector<Change>* applied) {
  applied->clear();
  if (clock->node() != node_) return Status::InvalidArgument("WriteAs needs a clock of the server's node");
  std::vector<Change> changes;
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& row = rows[i];
    auto fail = [&](const Status& st) { return Status(st.code(), "row " + std::to_string(i) + ": " + st.message()); };
    if (!row.is_object() || !row.contains("table") || !row["table"].is_string() || !row.contains("id") ||
        !row["id"].is_string())
      return fail(Status::InvalidArgument("needs string 'table' and 'id'"));
    const std::string table = row["table"].get<std::string>(), id = row["id"].get<std::string>();
    const TableDef* t = store_.schema().Find(table);
    if (!t) return fail(Status::NotFound("unknown table '" + table + "'"));
    if (!ValidRowId(id)) return fail(Status::InvalidArgument("bad row id '" + id + "'"));
    bool deleted = false;
    if (Status st = store_.IsDeleted(table, id, &deleted); !st.ok() || deleted)
      return st.ok() ? fail(Status(Code::kDeleted, table + "/" + id + " was deleted")) : st;
    for (const auto& [k, v] : row.items()) {
      if (k == "table" || k == "id") continue;
      const ColumnDef* col = t->Find(k);
      if (!col) return fail(Status::NotFound("unknown column '" + table + "." + k + "'"));
      FieldState cur;
      Status st = store_.LoadField(table, id, *col, &cur);
      if (!st.ok()) return st;
      if (!(st = MakeLocalChanges(*t, *col, cur, id, v, clock, &changes)).ok()) return fail(st);
    }
  }
  std::vector<PushResult> results;
  Writer writer = actor.user.role == Role::kAdmin ? Writer::kServer : Writer::kDevice;
  return ApplyBatchImpl(changes, now_ms, clock, &results, applied, writer, &actor, true);
}

Status ServerStore::ApplyBatchImpl(const std::vector<Change>& changes, uint64_t now_ms, HybridClock* clock,
                                   std::vector<PushResult>* results, std::vector<Change>* applied,
                                   Writer writer, const Actor* actor, bool all_or_nothing) {
  results->assign(changes.size(), PushResult{});
  applied->clear();
  Database& db = store_.db();
  Transaction tx(&db);
  if (!tx.status().ok()) return tx.status();
  Status st;
  Scope scope;
  scope.all = true;
  if (actor && !(st = ComputeScope(*actor, &scope)).ok()) return st;
  if (actor && !scope.all && !changes.empty()) {
    // A device may still write what it holds: an account that left its
    // scope stays writable until the device confirms it dropped it, so the
    // work typed offline before a reassignment is never refused (the push
    // comes before the eviction, docs/security.md).
    std::vector<std::string> held;
    if (!(st = DeviceKeys(changes[0].stamp.node, actor->user.id, &held)).ok()) return st;
    std::vector<std::string> both;
    std::set_union(scope.keys.begin(), scope.keys.end(), held.begin(), held.end(), std::back_inserter(both));
    scope.keys = std::move(both);
  }
  KeyHints hints;
  CollectKeyHints(store_.schema(), changes, &hints);
  std::map<NodeId, Hlc> compacted;  // per pushing node, read once per batch
  std::set<std::pair<std::string, std::string>> created_here;  // rows this batch created
  BatchState batch;
  batch.scope = &scope;
  std::set<std::pair<std::string, std::string>> decided;  // decision records written
  auto fail = [&](const Status& e) {
    applied->clear();  // the transaction rolls back: nothing was applied
    return e;
  };
  // Consecutive writes to one row are checked one by one and then merged
  // together: the row is read once and written once (Store::ApplyRow). Only
  // where no check reads the row's own columns between them: not a
  // workflow, decision or append-only table, nor a child of a workflow
  // (its frozen check reads the row's parent column). A push of new store
  // check lines is mostly such runs.
  const Schema& schema = store_.schema();
  auto groupable = [&](const Change& c) {
    const TableDef* t = schema.Find(c.table);
    if (c.op != Op::kSet || !t || t->workflow.enabled() || t->decision.enabled() || t->append_only) return false;
    const TableDef* parent = t->parent_table.empty() ? nullptr : schema.Find(t->parent_table);
    return !parent || !parent->workflow.enabled();
  };
  for (size_t i = 0; i < changes.size();) {
    size_t end = i + 1;
    if (groupable(changes[i]))
      while (end < changes.size() && changes[end].table == changes[i].table && changes[end].row == changes[i].row &&
             groupable(changes[end]))
        ++end;
    const size_t first = applied->size();
    // A row's key is fixed once it is stored or found: the run asks once.
    std::string run_key;
    bool have_run_key = false;
    for (size_t k = i; k < end; ++k) {
      Change c = changes[k];
      PushResult& r = (*results)[k];
      // A change compaction removed from the log is still known: a node's
      // accepted stamps rise in the order it pushes them, so a stamp at or
      // below the highest one compacted away was received before. (A change
      // that was refused, retried after such a compaction, is answered
      // duplicate rather than refused again; protocol.md section 8.8.)
      auto known = compacted.find(c.stamp.node);
      if (known == compacted.end()) {
        Hlc h = 0;
        Statement& q = db.Prepare("SELECT compacted_hlc FROM fs_devices WHERE node=?", &st);
        if (!st.ok()) return fail(st);
        q.Bind(1, c.stamp.node);
        if (q.Step()) h = static_cast<Hlc>(q.Int(0));
        st = q.status();
        q.Reset();
        if (!st.ok()) return fail(st);
        known = compacted.emplace(c.stamp.node, h).first;
      }
      // A retried change is a duplicate before anything else: it was checked
      // when it first came, and the scope may have moved since.
      bool seen = c.stamp.hlc <= known->second;
      if (!seen) {
        Statement& q = db.Prepare("SELECT 1 FROM fs_log WHERE node=? AND hlc=?", &st);
        if (!st.ok()) return fail(st);
        q.Bind(1, c.stamp.node).Bind(2, c.stamp.hlc);
        seen = q.Step();
        st = q.status();
        q.Reset();
        if (!st.ok()) return fail(st);
      }
      if (seen) {
        r.result = ChangeResult::kDuplicate;
        continue;
      }
      Status v = ValidateChange(schema, c);
      if (v.ok() && writer == Writer::kDevice && schema.Find(c.table)->reference)
        v = Status(Code::kPermissionDenied, "table '" + c.table + "' is reference data, written centrally only");
      if (v.ok() && !clock->WithinBound(c.stamp.hlc))
        v = Status(Code::kClockSkew, "change stamped " + std::to_string(HlcPhysical(c.stamp.hlc)) +
                                         "ms, more than " + std::to_string(clock->max_drift_ms()) +
                                         "ms ahead of the server");
      std::string key;
      bool created = false;
      if (v.ok() && have_run_key) {
        key = run_key;
      } else if (v.ok()) {
        v = DeriveRowKey(c, hints, &key, &created);
        // Without authentication a row whose parent never came is still
        // stored; it belongs to no one's scope ("?"), admins see it.
        if (!v.ok() && !actor && v.code() == Code::kNotFound) {
          key = "?";
          v = Status::OK();
        }
        if (v.ok() && !created) {
          run_key = key;
          have_run_key = true;
        }
      }
      bool new_row = created || created_here.count({c.table, c.row}) > 0;
      if (v.ok() && actor) v = Authorize(*actor, c, hints, key, new_row, &scope);
      if (v.ok() && actor) v = CheckWorkflow(*actor, c, hints, new_row, &batch);
      if (!v.ok()) {
        if (v.code() == Code::kIoError || v.code() == Code::kCorruption) return fail(v);
        if (all_or_nothing) return fail(Status(v.code(), c.table + "/" + c.row + ": " + v.message()));
        r.result = ChangeResult::kRejected;
        r.code = v.code();
        r.message = v.message();
        continue;
      }
      if (created && !(st = StoreRowKey(c.table, c.row, key)).ok()) return fail(st);
      if (created) {
        created_here.insert({c.table, c.row});
        run_key = key;
        have_run_key = true;
      }
      c.server_ms = now_ms;
      c.seq = 0;
      if (!(st = AppendLog(c, key, actor, &c.seq)).ok()) return fail(st);
      r.seq = c.seq;
      applied->push_back(std::move(c));
    }
    ApplyOutcome outcome;
    std::span<const Change> accepted(applied->data() + first, applied->size() - first);
    if (end - i > 1) {
      if (!(st = store_.ApplyRow(accepted, &outcome)).ok()) return fail(st);
    } else if (!accepted.empty()) {
      if (!(st = store_.ApplyChange(accepted[0], &outcome)).ok()) return fail(st);
    }
    for (const Change& c : accepted) {
      if (!(st = UpdateOwner(c)).ok()) return fail(st);
      clock->Observe(c.stamp.hlc);
      const TableDef* t = schema.Find(c.table);
      if (t->decision.enabled() && c.column == t->decision.decision_column) decided.insert({c.table, c.row});
    }
    i = end;
  }
  // A decision takes effect once its record is whole: after the push.
  for (const auto& [table, row] : decided)
    if (!(st = ApplyDecision(table, row, now_ms, clock, applied)).ok()) return fail(st);
  st = tx.Commit();
  if (!st.ok()) applied->clear();
  return st;
}

Status ServerStore::AppendLog(const Change& c, const std::string& key, const Actor* actor, int64_t* seq) {
  Status st;
  Statement& ins = store_.db().Prepare(
      "INSERT INTO fs_log(node, hlc, change, scope, user, device) VALUES(?,?,?,?,?,?)", &st);
  if (!st.ok()) return st;
  const std::string text = ChangeToJsonText(c);
  ins.Bind(1, c.stamp.node).Bind(2, c.stamp.hlc).BindRef(3, text).BindRef(4, key);
  if (actor) ins.Bind(5, actor->user.id).Bind(6, actor->device);
  else ins.BindNull(5).BindNull(6);
  if (!(st = ins.Run()).ok()) return st;
  *seq = store_.db().LastInsertRowid();
  return Status::OK();
}

Status ServerStore::WriteRows(const std::vector<json>& rows, uint64_t now_ms, HybridClock* clock,
                              std::vector<Change>* applied) {
  applied->clear();
  if (clock->node() != node_) return Status::InvalidArgument("WriteRows needs a clock of the server's node");
  Status st = WriteRowsLocked(rows, now_ms, clock, applied);
  if (!st.ok()) applied->clear();  // the transaction rolled back
  return st;
}

Status ServerStore::WriteRowsLocked(const std::vector<json>& rows, uint64_t now_ms, HybridClock* clock,
                                    std::vector<Change>* applied) {
  Database& db = store_.db();
  Transaction tx(&db);
  if (!tx.status().ok()) return tx.status();
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& row = rows[i];
    auto fail = [&](const Status& st) {
      return Status(st.code(), "row " + std::to_string(i) + ": " + st.message());
    };
    if (!row.is_object() || !row.contains("table") || !row["table"].is_string() || !row.contains("id") ||
        !row["id"].is_string())
      return fail(Status::InvalidArgument("needs string 'table' and 'id'"));
    const std::string table = row["table"].get<std::string>();
    const std::string id = row["id"].get<std::string>();
    const TableDef* t = store_.schema().Find(table);
    if (!t) return fail(Status::NotFound("unknown table '" + table + "'"));
    if (!ValidRowId(id)) return fail(Status::InvalidArgument("bad row id '" + id + "'"));
    // The row's parent and scope columns decide its key, whatever their order.
    KeyHints hints;
    for (const auto& [k, v] : row.items())
      if (v.is_string() && (k == t->parent_column || k == t->scope_column)) hints[{table, id}][k] = v.get<std::string>();
    bool deleted = false;
    Status st = store_.IsDeleted(table, id, &deleted);
    if (!st.ok()) return st;
    if (deleted) return fail(Status(Code::kDeleted, table + "/" + id + " was deleted"));
    // Each column's changes are made from its state before this row's
    // import (fields merge independently), so the row's writes can be
    // merged together afterwards: read once, written once.
    std::vector<Change> changes;
    for (const auto& [k, v] : row.items()) {
      if (k == "table" || k == "id") continue;
      const ColumnDef* col = t->Find(k);
      if (!col) return fail(Status::NotFound("unknown column '" + table + "." + k + "'"));
      FieldState cur;
      if (!(st = store_.LoadField(table, id, *col, &cur)).ok()) return st;
      if (!(st = MakeLocalChanges(*t, *col, cur, id, v, clock, &changes)).ok()) return fail(st);
    }
    for (Change& c : changes) {
      c.server_ms = now_ms;
      std::string key;
      bool created = false;
      if (!(st = DeriveRowKey(c, hints, &key, &created)).ok()) {
        if (st.code() != Code::kNotFound) return st;
        key = "?";  // an orphan: only admins see it
      }
      if (created && !(st = StoreRowKey(c.table, c.row, key)).ok()) return st;
      if (!(st = AppendLog(c, key, nullptr, &c.seq)).ok()) return st;
    }
    std::vector<Change> sets;
    for (const Change& c : changes) {
      ApplyOutcome outcome;
      if (c.op == Op::kSet) sets.push_back(c);
      else if (!(st = store_.ApplyChange(c, &outcome)).ok()) return st;
    }
    if (!sets.empty()) {
      ApplyOutcome outcome;
      if (!(st = store_.ApplyRow(sets, &outcome)).ok()) return st;
    }
    for (Change& c : changes) {
      if (!(st = UpdateOwner(c)).ok()) return st;
      applied->push_back(std::move(c));
    }
  }
  return tx.Commit();
}

Status ServerStore::ReadLog(int64_t after, size_t limit, NodeId exclude_node, std::vector<Change>* out,
                            int64_t* scanned_to, const Scope* scope) {
  out->clear();
  *scanned_to = after;
  Status st;
  bool scoped = scope && !scope->all;
  int64_t head = 0;
  if (scoped && !(st = Head(&head)).ok()) return st;
  Statement& s = scoped ? store_.db().Prepare(
                              "SELECT seq, node, change FROM fs_log WHERE seq > ? AND node != ? AND scope IN "
                              "(SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?",
                              &st)
                        : store_.db().Prepare("SELECT seq, node, change FROM fs_log WHERE seq > ? ORDER BY seq LIMIT ?", &st);
  if (!st.ok()) return st;
  if (scoped) {
    s.Bind(1, after).Bind(2, exclude_node).Bind(3, scope->KeysJson()).Bind(4, static_cast<int64_t>(limit));
  } else {
    // Scan a bounded window; skipped own changes still advance the cursor.
    s.Bind(1, after).Bind(2, static_cast<int64_t>(limit));
  }
  while (s.Step()) {
    *scanned_to = s.Int(0);
    if (static_cast<NodeId>(s.Int(1)) == exclude_node) continue;
    Change c;
    json j = json::parse(s.Text(2), nullptr, false);
    Status cs = ChangeFromJson(j, &c);
    if (!cs.ok()) {
      s.Reset();
      return Status::Corruption("log entry " + std::to_string(*scanned_to) + ": " + cs.message());
    }
    c.seq = *scanned_to;
    out->push_back(std::move(c));
  }
  st = s.status();
  s.Reset();
  // Fewer than `limit` in scope: none of the rest up to the head is ours.
  if (st.ok() && scoped && out->size() < limit) *scanned_to = std::max(after, head);
  return st;
}

Status ServerStore::MaxHlc(Hlc* hlc) {
  Status st;
  Statement& s = store_.db().Prepare("SELECT coalesce(max(hlc), 0) FROM fs_log", &st);
  if (!st.ok()) return st;
  *hlc = s.Step() ? static_cast<Hlc>(s.Int(0)) : 0;
  st = s.status();
  s.Reset();
  if (!st.ok()) return st;
  // Compaction may have removed the entry with the largest stamp.
  int64_t removed = 0;
  if (!(st = store_.GetMetaInt("compacted_hlc", 0, &removed)).ok()) return st;
  *hlc = std::max(*hlc, static_cast<Hlc>(removed));
  return Status::OK();
}

Status ServerStore::Head(int64_t* seq) {
  Status st;
  Statement& s = store_.db().Prepare("SELECT coalesce(max(seq), 0) FROM fs_log", &st);
  if (!st.ok()) return st;
  *seq = s.Step() ? s.Int(0) : 0;
  st = s.status();
  s.Reset();
  return st;
}

// ---- compaction ---------------------------------------------------------------------------

Status ServerStore::RegisterDevice(NodeId node, int64_t cursor, uint64_t now_ms) {
  Status st;
  Statement& s = store_.db().Prepare(
      "INSERT INTO fs_devices(node, cursor, seen_ms) VALUES(?,?,?) ON CONFLICT(node) DO NOTHING", &st);
  if (!st.ok()) return st;
  s.Bind(1, node).Bind(2, cursor).Bind(3, now_ms);
  return s.Run();
}

Status ServerStore::RecordDevices(const std::map<NodeId, DeviceCursor>& devices) {
  if (devices.empty()) return Status::OK();
  Transaction tx(&store_.db());
  if (!tx.status().ok()) return tx.status();
  Status st;
  for (const auto& [node, d] : devices) {
    Statement& s = store_.db().Prepare(
        "INSERT INTO fs_devices(node, cursor, seen_ms) VALUES(?,?,?) ON CONFLICT(node) DO UPDATE SET "
        "cursor=max(cursor, excluded.cursor), seen_ms=max(seen_ms, excluded.seen_ms)",
        &st);
    if (!st.ok()) return st;
    s.Bind(1, node).Bind(2, d.cursor).Bind(3, d.seen_ms);
    if (!(st = s.Run()).ok()) return st;
  }
  return tx.Commit();
}

Status ServerStore::ListDevices(std::map<NodeId, DeviceCursor>* out) {
  out->clear();
  Status st;
  Statement& s = store_.db().Prepare("SELECT node, cursor, seen_ms FROM fs_devices", &st);
  if (!st.ok()) return st;
  while (s.Step())
    (*out)[static_cast<NodeId>(s.Int(0))] = DeviceCursor{s.Int(1), static_cast<uint64_t>(s.Int(2))};
  st = s.status();
  s.Reset();
  return st;
}

Status ServerStore::Horizon(uint64_t now_ms, uint64_t retention_ms, int64_t* horizon) {
  Status st;
  int64_t head = 0;
  if (!(st = Head(&head)).ok()) return st;
  uint64_t since = now_ms > retention_ms ? now_ms - retention_ms : 0;
  int64_t registered_from = 0;
  if (!(st = store_.GetMetaInt("devices_since", 0, &registered_from)).ok()) return st;
  if (registered_from > 0 && static_cast<uint64_t>(registered_from) > since) {
    // Not yet a full retention period since devices began to be registered:
    // an unregistered device may still be behind. Compact nothing new.
    return CompactedThrough(horizon);
  }
  Statement& s = store_.db().Prepare("SELECT min(cursor) FROM fs_devices WHERE seen_ms >= ? AND seen_ms > 0", &st);
  if (!st.ok()) return st;
  s.Bind(1, since);
  *horizon = head;
  if (s.Step() && !s.IsNull(0)) *horizon = std::min(head, s.Int(0));
  st = s.status();
  s.Reset();
  return st;
}

Status ServerStore::Compact(int64_t horizon, int64_t* removed) {
  *removed = 0;
  Database& db = store_.db();
  Transaction tx(&db);
  if (!tx.status().ok()) return tx.status();
  Status st;
  int64_t head = 0, done = 0;
  if (!(st = Head(&head)).ok()) return st;
  if (!(st = CompactedThrough(&done)).ok()) return st;
  // seq is INTEGER PRIMARY KEY without AUTOINCREMENT: the newest entry stays,
  // or an emptied log would hand out seq 1 again and move every cursor back.
  int64_t through = std::min(horizon, head - 1);
  if (through <= done) return Status::OK();
  Statement& mx = db.Prepare("SELECT coalesce(max(hlc), 0) FROM fs_log WHERE seq <= ?", &st);
  if (!st.ok()) return st;
  mx.Bind(1, through);
  Hlc gone = mx.Step() ? static_cast<Hlc>(mx.Int(0)) : 0;
  st = mx.status();
  mx.Reset();
  if (!st.ok()) return st;
  int64_t had = 0;
  if (!(st = store_.GetMetaInt("compacted_hlc", 0, &had)).ok()) return st;
  if (gone > static_cast<Hlc>(had) && !(st = store_.SetMetaInt("compacted_hlc", static_cast<int64_t>(gone))).ok())
    return st;
  // Remember, per node, the newest stamp about to leave the log (see ApplyBatch).
  Statement& hw = db.Prepare(
      "INSERT INTO fs_devices(node, cursor, seen_ms, compacted_hlc) SELECT node, 0, 0, max(hlc) FROM fs_log "
      "WHERE seq <= ? GROUP BY node ON CONFLICT(node) DO UPDATE SET "
      "compacted_hlc = max(compacted_hlc, excluded.compacted_hlc)",
      &st);
  if (!st.ok()) return st;
  hw.Bind(1, through);
  if (!(st = hw.Run()).ok()) return st;
  Statement& del = db.Prepare("DELETE FROM fs_log WHERE seq <= ?", &st);
  if (!st.ok()) return st;
  del.Bind(1, through);
  if (!(st = del.Run()).ok()) return st;
  *removed = db.Changes();
  if (!(st = store_.SetMetaInt("compacted_through", through)).ok()) return st;
  if (!(st = tx.Commit()).ok()) *removed = 0;
  return st;
}

Status ServerStore::CompactedThrough(int64_t* seq) { return store_.GetMetaInt("compacted_through", 0, seq); }

}  // namespace fieldsync::store
