#include "fieldsync/replica.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "sync/protocol.h"
#include "sync_client.h"

namespace fieldsync {

namespace {

uint64_t RandomU64() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          static_cast<uint64_t>(SystemMillis()) << 20};
  return rng();
}

Conflict ToConflict(const store::StoredConflict& s) {
  Conflict c;
  c.id = s.id;
  c.table = s.record.table;
  c.row = s.record.row;
  c.column = s.record.column;
  c.kind = s.record.kind;
  c.lost_value = s.record.loser_value;
  c.lost_node = ToHex(s.record.loser.node);
  c.lost_time_ms = HlcPhysical(s.record.loser.hlc);
  c.won_value = s.record.winner_value;
  c.won_node = ToHex(s.record.winner.node);
  c.won_time_ms = HlcPhysical(s.record.winner.hlc);
  c.resolved = s.resolved;
  return c;
}

// No exception leaves the SDK: a server message with a field of the wrong
// JSON type (nlohmann throws) or an allocation failure becomes a Status.
template <typename F>
Status Guard(F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::Protocol(std::string("unexpected message from the server: ") + e.what());
  }
}

// A pending change moved to a fresh stamp (docs/merge.md, "Clock skew"). Its
// context must not claim to have seen its own node's writes beyond the fresh
// stamp: those old, skewed stamps now belong to no change, and a context
// covering them would swallow the author's own later edits once they are
// re-stamped below them (the simulation found that divergence).
Change Restamped(const Change& c, Stamp fresh) {
  Change out = c;
  out.stamp = fresh;
  auto it = out.ctx.find(fresh.node);
  if (it != out.ctx.end() && it->second >= fresh.hlc) it->second = fresh.hlc - 1;
  if (out.base >= fresh.hlc) out.base = fresh.hlc - 1;
  return out;
}

constexpr const char* kMetaNode = "node";
constexpr const char* kMetaHlc = "hlc";
constexpr const char* kMetaCursor = "cursor";
constexpr const char* kMetaLastSync = "last_sync_ms";
constexpr const char* kMetaAckedHlc = "acked_hlc";  // newest own stamp the server holds
constexpr const char* kMetaRemoteHlc = "remote_hlc";  // newest stamp received from the server
constexpr const char* kMetaSnapshot = "snapshot";     // a snapshot in progress: {"cursor":..,"after":[t,r]}
constexpr const char* kMetaRevert = "revert";         // rows with refused changes, to be reset to the server's: [[t,r],..]

// The rows of one snapshot reply: its column-major "blocks" (what this
// client asks for) or, from a server without them, its "rows". Each row is
// decoded, and a page that says more must hold at least one row, since the
// next page starts after its last.
Status SnapshotRows(const json& reply, std::vector<RowState>* rows, bool* more) {
  if (!reply.contains("more") || !reply["more"].is_boolean())
    return Status::Protocol("snapshot reply without a boolean 'more'");
  rows->clear();
  if (reply.contains("blocks")) {
    if (Status st = SnapshotBlocksFromJson(reply["blocks"], rows); !st.ok())
      return Status::Protocol("server sent a bad snapshot block: " + st.message());
  } else {
    if (!reply.contains("rows") || !reply["rows"].is_array())
      return Status::Protocol("snapshot reply without 'rows' or 'blocks'");
    rows->reserve(reply["rows"].size());
    for (const auto& j : reply["rows"]) {
      RowState r;
      if (Status st = RowStateFromJson(j, &r); !st.ok())
        return Status::Protocol("server sent a bad snapshot row: " + st.message());
      rows->push_back(std::move(r));
    }
  }
  *more = reply["more"].get<bool>();
  if (*more && rows->empty()) return Status::Protocol("snapshot page with 'more' but no rows");
  return Status::OK();
}

}  // namespace

const char* SyncStateName(SyncStatus::State s) {
  switch (s) {
    case SyncStatus::State::kIdle: return "idle";
    case SyncStatus::State::kConnecting: return "connecting";
    case SyncStatus::State::kSyncing: return "syncing";
    case SyncStatus::State::kLive: return "live";
    case SyncStatus::State::kBackoff: return "backoff";
    case SyncStatus::State::kPaused: return "paused";
    case SyncStatus::State::kStopped: return "stopped";
  }
  return "?";
}

// ---- WriteBatch -------------------------------------------------------------

void WriteBatch::Put(std::string table, std::string id, json fields) {
  WriteOp op;
  op.kind = WriteOp::kPut;
  op.table = std::move(table);
  op.id = std::move(id);
  op.fields = std::move(fields);
  ops_.push_back(std::move(op));
}

void WriteBatch::Delete(std::string table, std::string id) {
  WriteOp op;
  op.kind = WriteOp::kDelete;
  op.table = std::move(table);
  op.id = std::move(id);
  ops_.push_back(std::move(op));
}

void WriteBatch::Increment(std::string table, std::string id, std::string column, double delta) {
  WriteOp op;
  op.kind = WriteOp::kIncrement;
  op.table = std::move(table);
  op.id = std::move(id);
  op.column = std::move(column);
  op.delta = delta;
  ops_.push_back(std::move(op));
}

void WriteBatch::AddMember(std::string table, std::string id, std::string column, std::string member) {
  WriteOp op;
  op.kind = WriteOp::kAddMember;
  op.table = std::move(table);
  op.id = std::move(id);
  op.column = std::move(column);
  op.member = std::move(member);
  ops_.push_back(std::move(op));
}

void WriteBatch::RemoveMember(std::string table, std::string id, std::string column, std::string member) {
  AddMember(std::move(table), std::move(id), std::move(column), std::move(member));
  ops_.back().kind = WriteOp::kRemoveMember;
}

// ---- open and close -----------------------------------------------------------

Replica::~Replica() {
  StopBackgroundSync();
  std::thread stopped;
  {
    std::lock_guard<std::mutex> lk(bg_thread_mu_);
    stopped = std::move(bg_);  // stopped earlier from its own callback
  }
  if (stopped.joinable()) stopped.join();
  std::lock_guard<std::mutex> lock(mu_);
  store_.Close();
}

std::string Replica::NewId() {
  uint64_t a = RandomU64(), b = RandomU64();
  a = (a & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10
  std::string h = ToHex(a) + ToHex(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" +
         h.substr(20, 12);
}

Status Replica::Open(const std::string& path, const Schema& schema, std::unique_ptr<Replica>* out,
                     const ReplicaOptions& options) {
  std::unique_ptr<Replica> r(new Replica());
  Status st = r->store_.Open(path, schema);
  if (!st.ok()) return st;
  if (options.fault_hook) r->store_.db().SetFaultHook(options.fault_hook);
  std::string hex;
  bool found = false;
  if (!(st = r->store_.GetMeta(kMetaNode, &hex, &found)).ok()) return st;
  if (!found || !ParseHex(hex, &r->node_) || r->node_ == 0) {
    r->node_ = options.node;
    while (r->node_ == 0) r->node_ = RandomU64();
    if (!(st = r->store_.SetMeta(kMetaNode, ToHex(r->node_))).ok()) return st;
  }
  r->clock_ = std::make_unique<HybridClock>(r->node_, options.clock ? options.clock : HybridClock::PhysicalSource(SystemMillis));
  int64_t last = 0;
  if (!(st = r->store_.GetMetaInt(kMetaHlc, 0, &last)).ok()) return st;
  r->clock_->Restore(static_cast<Hlc>(last));
  int64_t cursor = 0, last_sync = 0, pending = 0;
  if (!(st = r->store_.GetMetaInt(kMetaCursor, 0, &cursor)).ok()) return st;
  if (!(st = r->store_.GetMetaInt(kMetaLastSync, 0, &last_sync)).ok()) return st;
  if (!(st = r->store_.OutboxCount(&pending)).ok()) return st;
  r->status_.cursor = cursor;
  r->status_.last_sync_ms = static_cast<uint64_t>(last_sync);
  r->status_.pending = pending;
  r->status_.reason = "not synced since open";
  *out = std::move(r);
  return Status::OK();
}

// ---- leaving the device -------------------------------------------------------------

Status Replica::ExportOutbox(const std::string& file, int64_t* count) {
  std::vector<Change> pending;
  std::vector<int64_t> seqs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Status st = store_.OutboxPeek(SIZE_MAX >> 1, &pending, &seqs);
    if (!st.ok()) return st;
  }
  // Written to a temporary name and renamed: a crash never leaves half a file
  // that looks whole.
  std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::IoError("cannot write " + tmp);
    out << json({{"fieldsync_outbox", 1}, {"node", ToHex(node_)}, {"schema", store_.schema().fingerprint()},
                 {"changes", pending.size()}})
               .dump()
        << "\n";
    for (const Change& c : pending) out << ChangeToJsonText(c) << "\n";
    out.flush();
    if (!out) return Status::IoError("writing " + tmp + " failed");
  }
  // On disk before the name points at it, and the name on disk before we
  // say so: the next step may well be deleting the replica.
  auto sync_path = [](const std::string& p) {
    int fd = ::open(p.c_str(), O_RDONLY);
    if (fd < 0) return false;
    bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
  };
  if (!sync_path(tmp)) return Status::IoError("cannot fsync " + tmp);
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec) return Status::IoError("cannot rename " + tmp + " to " + file + ": " + ec.message());
  std::string parent = std::filesystem::path(file).parent_path().string();
  if (!sync_path(parent.empty() ? "." : parent)) return Status::IoError("cannot fsync the directory of " + file);
  *count = static_cast<int64_t>(pending.size());
  return Status::OK();
}

Status Replica::SignOut(bool force) {
  int64_t n = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Status st = store_.OutboxCount(&n);
    if (!st.ok()) return st;
  }
  if (n > 0 && !force)
    return Status(Code::kBusy, std::to_string(n) + " change(s) not yet acknowledged by the server: sync or export "
                               "them first, or force");
  StopBackgroundSync();
  return Status::OK();
}

Status Replica::DeleteFile(const std::string& path, const Schema& schema, bool force) {
  if (!std::filesystem::exists(path)) return Status::NotFound("no replica file " + path);
  {
    store::Store probe;
    store::OpenOptions o;
    o.create = false;
    Status st = probe.Open(path, schema, o);
    int64_t n = 0;
    if (st.ok()) st = probe.OutboxCount(&n);
    probe.Close();
    if (!st.ok() && !force) return st;
    if (n > 0 && !force)
      return Status(Code::kBusy, path + " holds " + std::to_string(n) +
                                     " change(s) not yet acknowledged by the server: sync or export them first, or force");
  }
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
  if (std::filesystem::exists(path)) return Status::IoError("cannot delete " + path);
  return Status::OK();
}

// ---- writes ---------------------------------------------------------------------

Status Replica::Put(const std::string& table, const std::string& id, const json& fields) {
  WriteBatch b;
  b.Put(table, id, fields);
  return Apply(b);
}

Status Replica::Delete(const std::string& table, const std::string& id) {
  WriteBatch b;
  b.Delete(table, id);
  return Apply(b);
}

Status Replica::Increment(const std::string& table, const std::string& id, const std::string& column,
                          double delta) {
  WriteBatch b;
  b.Increment(table, id, column, delta);
  return Apply(b);
}

Status Replica::Apply(const WriteBatch& batch) {
  std::vector<ChangeEvent> events;
  Status st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st = ApplyLocked(batch, &events);
  }
  if (st.ok()) {
    local_writes_.fetch_add(1);
    WakeBackground();
    Notify(events);
  }
  return st;
}

Status Replica::ApplyLocked(const WriteBatch& batch, std::vector<ChangeEvent>* events) {
  store::Transaction tx(&store_.db());
  if (!tx.status().ok()) return tx.status();
  // On any failure the transaction rolls back and nothing of the batch
  // stays; the clock may have ticked, which is harmless (stamps need only be
  // unique and increasing, not dense).
  std::vector<Change> changes;
  for (const WriteOp& op : batch.ops()) {
    const TableDef* t = store_.schema().Find(op.table);
    if (!t) return Status::NotFound("unknown table '" + op.table + "'");
    if (t->reference)
      return Status(Code::kPermissionDenied,
                         "table '" + op.table + "' is reference data, written centrally only");
    if (!ValidRowId(op.id)) return Status::InvalidArgument("bad row id '" + op.id + "' (1-64 chars of [A-Za-z0-9_-])");
    bool deleted = false;
    Status st = store_.IsDeleted(op.table, op.id, &deleted);
    if (!st.ok()) return st;
    if (deleted) return Status(Code::kDeleted, op.table + "/" + op.id + " was deleted");
    size_t first = changes.size();
    switch (op.kind) {
      case WriteOp::kPut: {
        if (!op.fields.is_object()) return Status::InvalidArgument("put fields must be a JSON object");
        for (const auto& [k, v] : op.fields.items()) {
          if (k == "id" || k == "table") continue;  // the row's identity, not a field
          const ColumnDef* col = t->Find(k);
          if (!col) return Status::NotFound("unknown column '" + op.table + "." + k + "'");
          FieldState cur;
          if (!(st = store_.LoadField(op.table, op.id, *col, &cur)).ok()) return st;
          if (!(st = MakeLocalChanges(*t, *col, cur, op.id, v, clock_.get(), &changes)).ok()) return st;
        }
        break;
      }
      case WriteOp::kDelete: {
        Change c;
        c.table = op.table;
        c.row = op.id;
        c.op = Op::kDelete;
        if (!(st = store_.RowContext(*t, op.id, &c.ctx)).ok()) return st;
        c.stamp = {clock_->Now(), node_};
        changes.push_back(std::move(c));
        break;
      }
      case WriteOp::kIncrement: {
        const ColumnDef* col = t->Find(op.column);
        if (!col) return Status::NotFound("unknown column '" + op.table + "." + op.column + "'");
        if (col->merge != MergePolicy::kCounter)
          return Status::Schema(op.table + "." + op.column + ": not a counter");
        if (!std::isfinite(op.delta)) return Status::InvalidArgument("increment must be finite");
        if (col->type == ColumnType::kInteger && op.delta != std::floor(op.delta))
          return Status::Schema(op.table + "." + op.column + ": integer counter takes whole increments");
        if (op.delta == 0) break;
        FieldState cur;
        if (!(st = store_.LoadField(op.table, op.id, *col, &cur)).ok()) return st;
        changes.push_back(MakeIncrement(*t, *col, cur, op.id, op.delta, clock_.get()));
        break;
      }
      case WriteOp::kAddMember:
      case WriteOp::kRemoveMember: {
        const ColumnDef* col = t->Find(op.column);
        if (!col) return Status::NotFound("unknown column '" + op.table + "." + op.column + "'");
        if (col->merge != MergePolicy::kOrSet) return Status::Schema(op.table + "." + op.column + ": not a set");
        if (!(st = Schema::CheckMember(*t, *col, op.member)).ok()) return st;
        FieldState cur;
        if (!(st = store_.LoadField(op.table, op.id, *col, &cur)).ok()) return st;
        changes.push_back(MakeSetMember(*t, *col, cur, op.id, op.member, op.kind == WriteOp::kAddMember, clock_.get()));
        break;
      }
    }
    // Apply this op's changes now, so the next op of the batch sees them.
    for (size_t i = first; i < changes.size(); ++i) {
      const Change& c = changes[i];
      if (!(st = ValidateChange(store_.schema(), c)).ok()) return st;
      store::ApplyOutcome outcome;
      if (!(st = store_.ApplyChange(c, &outcome)).ok()) return st;
      if (!(st = store_.OutboxAppend(c)).ok()) return st;
    }
    if (changes.size() > first) events->push_back({op.table, op.id, op.kind == WriteOp::kDelete, false});
  }
  Status st = store_.SetMetaInt(kMetaHlc, static_cast<int64_t>(clock_->last()));
  if (!st.ok()) return st;
  if (!(st = tx.Commit()).ok()) return st;
  status_.pending += static_cast<int64_t>(changes.size());
  return Status::OK();
}

// ---- reads ----------------------------------------------------------------------

Status Replica::Get(const std::string& table, const std::string& id, json* row) {
  std::lock_guard<std::mutex> lock(mu_);
  return store_.GetRow(table, id, row);
}

Status Replica::Query(const std::string& table, const store::QueryOptions& q, std::vector<json>* rows) {
  std::lock_guard<std::mutex> lock(mu_);
  return store_.Query(table, q, rows);
}

Status Replica::Dump(const std::function<void(const json&)>& emit) {
  std::lock_guard<std::mutex> lock(mu_);
  return store_.Dump(emit);
}

// ---- conflicts ----------------------------------------------------------------------

Status Replica::Conflicts(bool include_resolved, std::vector<Conflict>* out) {
  std::vector<store::StoredConflict> stored;
  Status st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st = store_.ListConflicts(include_resolved, &stored);
  }
  if (!st.ok()) return st;
  out->clear();
  for (const auto& s : stored) out->push_back(ToConflict(s));
  return Status::OK();
}

Status Replica::RestoreConflict(int64_t id, std::string* new_id) {
  store::StoredConflict c;
  std::vector<store::StoredConflict> siblings;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Status st = store_.GetConflict(id, &c);
    if (!st.ok()) return st;
    if (c.resolved) return Status::InvalidArgument("conflict " + std::to_string(id) + " is already resolved");
    if (c.record.kind == "deleted" && !(st = store_.ListConflicts(false, &siblings)).ok()) return st;
  }
  WriteBatch b;
  std::vector<int64_t> resolve{id};
  if (c.record.kind == "deleted") {
    // Gather every lost field of the deleted row into one new row.
    json fields = json::object();
    std::map<std::string, Stamp> newest;  // several lost writes to one field: keep the newest
    for (const auto& s : siblings) {
      if (s.record.kind != "deleted" || s.record.table != c.record.table || s.record.row != c.record.row) continue;
      if (s.id != id) resolve.push_back(s.id);
      // A write that arrived after the delete is kept as sent: a set member
      // (restored as a one-member set) or a counter's internal totals
      // (meaningless as a value: skipped). Otherwise the field's value.
      const TableDef* t = schema().Find(s.record.table);
      const ColumnDef* col = t ? t->Find(s.record.column) : nullptr;
      json v = s.record.loser_value;
      if (!col || (col->merge == MergePolicy::kCounter && !v.is_number())) continue;
      if (col->merge == MergePolicy::kOrSet && v.is_string()) v = json::array({v});
      auto it = newest.find(s.record.column);
      if (it == newest.end() || it->second < s.record.loser) {
        newest[s.record.column] = s.record.loser;
        fields[s.record.column] = v;
      }
    }
    std::string fresh = NewId();
    b.Put(c.record.table, fresh, fields);
    if (new_id) *new_id = fresh;
  } else {
    b.Put(c.record.table, c.record.row, json{{c.record.column, c.record.loser_value}});
  }
  Status st = Apply(b);
  if (!st.ok()) return st;
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t r : resolve)
    if (!(st = store_.MarkConflictResolved(r)).ok()) return st;
  return Status::OK();
}

Status Replica::DismissConflict(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  store::StoredConflict c;
  Status st = store_.GetConflict(id, &c);
  if (!st.ok()) return st;
  return store_.MarkConflictResolved(id);
}

Status Replica::Rejections(std::vector<store::Rejection>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  return store_.ListRejections(out);
}

Status Replica::PendingChanges(size_t limit, std::vector<Change>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> seqs;
  return store_.OutboxPeek(limit, out, &seqs);
}

// ---- observers ----------------------------------------------------------------------

uint64_t Replica::AddObserver(Observer fn) {
  std::lock_guard<std::mutex> lock(obs_mu_);
  uint64_t token = next_observer_++;
  observers_.emplace_back(token, std::move(fn));
  return token;
}

void Replica::RemoveObserver(uint64_t token) {
  std::lock_guard<std::mutex> lock(obs_mu_);
  std::erase_if(observers_, [token](const auto& p) { return p.first == token; });
}

void Replica::Notify(const std::vector<ChangeEvent>& events) {
  if (events.empty()) return;
  std::vector<Observer> fns;
  {
    std::lock_guard<std::mutex> lock(obs_mu_);
    for (const auto& [t, fn] : observers_) fns.push_back(fn);
  }
  for (const auto& fn : fns) fn(events);
}

// ---- applying what the server sent --------------------------------------------------

Status Replica::ApplyRemote(const std::vector<Change>& changes, int64_t cursor, std::vector<ChangeEvent>* events) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t have = 0;
  Status st = store_.GetMetaInt(kMetaCursor, 0, &have);
  if (!st.ok()) return st;
  if (cursor <= have && changes.empty()) return Status::OK();
  // One transaction for the batch and its cursor: a crash applies all or none.
  store::Transaction tx(&store_.db());
  if (!tx.status().ok()) return tx.status();
  std::map<std::pair<std::string, std::string>, bool> touched;
  // Consecutive writes to one row are merged together (Store::ApplyRow): the
  // row is read and written once, not once per field.
  for (size_t i = 0; i < changes.size();) {
    const Change& c = changes[i];
    // The server validated these against the same schema; a replica built
    // from an older schema may not know a new table or column yet: skip those
    // rather than stall the whole feed (additive schema changes, protocol.md).
    if (!ValidateChange(store_.schema(), c).ok()) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    if (c.op == Op::kSet)
      while (end < changes.size() && changes[end].op == Op::kSet && changes[end].table == c.table &&
             changes[end].row == c.row && ValidateChange(store_.schema(), changes[end]).ok())
        ++end;
    store::ApplyOutcome outcome;
    st = end - i > 1 ? store_.ApplyRow(std::span<const Change>(changes.data() + i, end - i), &outcome)
                     : store_.ApplyChange(c, &outcome);
    if (!st.ok()) return st;
    // A refused (too far ahead) stamp leaves the clock alone.
    for (size_t k = i; k < end; ++k) clock_->Observe(changes[k].stamp.hlc);
    if (outcome.changed) touched[{c.table, c.row}] |= c.op == Op::kDelete;
    i = end;
  }
  if (!(st = store_.SetMetaInt(kMetaCursor, std::max(have, cursor))).ok()) return st;
  if (!(st = store_.SetMetaInt(kMetaHlc, static_cast<int64_t>(clock_->last()))).ok()) return st;
  // The newest stamp seen from others: a clock rewound after a wrong date
  // must stay above it, or a re-stamped edit would fall behind the value it
  // replaced here and lose to it elsewhere.
  Hlc newest = 0;
  for (const Change& c : changes) newest = std::max(newest, c.stamp.hlc);
  if (!(st = RaiseRemoteHlc(newest)).ok()) return st;
  if (!(st = tx.Commit()).ok()) return st;
  status_.cursor = std::max(have, cursor);
  for (const auto& [key, deleted] : touched) events->push_back({key.first, key.second, deleted, true});
  return Status::OK();
}

// The newest stamp in rows of server state (fields and tombstones).
static Hlc NewestStamp(const std::vector<RowState>& rows) {
  Hlc newest = 0;
  for (const RowState& r : rows) {
    newest = std::max(newest, r.tomb_stamp.hlc);
    for (const auto& [name, f] : r.fields) newest = std::max(newest, f.stamp.hlc);
  }
  return newest;
}

Status Replica::RaiseRemoteHlc(Hlc newest) {
  // The newest stamp seen from others: a clock rewound after a wrong date
  // must stay above it (see ApplyRemote).
  int64_t seen = 0;
  Status st = store_.GetMetaInt(kMetaRemoteHlc, 0, &seen);
  if (!st.ok() || newest <= static_cast<Hlc>(seen)) return st;
  return store_.SetMetaInt(kMetaRemoteHlc, static_cast<int64_t>(newest));
}

void Replica::FitToSchema(std::vector<RowState>* rows) {
  // A value that does not fit this schema (an enum member or a longer text
  // from a newer schema) would make the install throw halfway. Such fields
  // are left out, as ApplyRemote skips such changes: a replica built from an
  // older schema keeps loading instead of stalling on the same page forever.
  for (RowState& r : *rows) {
    const TableDef* t = store_.schema().Find(r.table);
    if (!t) continue;  // a table this (older) schema does not know: InstallState skips it
    std::erase_if(r.fields, [&](const std::pair<std::string, FieldState>& field) {
      const ColumnDef* c = t->Find(field.first);
      if (!c || field.second.value.is_null()) return false;
      if (c->merge == MergePolicy::kCounter) return !field.second.value.is_number();
      return !Schema::CheckValue(*t, *c, field.second.value).ok();
    });
  }
}

Status Replica::InstallScopePage(std::vector<RowState>* page, std::vector<ChangeEvent>* events,
                                 const std::vector<std::pair<std::string, std::string>>* revert) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::vector<RowState>& rows = *page;
  for (const RowState& r : rows)
    if (!ValidRowId(r.row)) return Status::Protocol("snapshot row with a bad id");
  // The clock sees every stamp the server sent, fitting or not.
  const Hlc newest = NewestStamp(rows);
  FitToSchema(page);
  store::Transaction tx(&store_.db());
  Status st = tx.status();
  if (!st.ok()) return st;
  if (!(st = store_.InstallState(rows)).ok()) return st;
  // Unacknowledged local edits of these rows stay on top of the server's state.
  std::set<std::pair<std::string, std::string>> here;
  for (const RowState& r : rows) here.insert({r.table, r.row});
  std::vector<Change> pending;
  std::vector<int64_t> seqs;
  if (!(st = store_.OutboxPeek(SIZE_MAX >> 1, &pending, &seqs)).ok()) return st;
  for (const Change& c : pending) {
    if (!here.count({c.table, c.row})) continue;
    store::ApplyOutcome outcome;
    if (!(st = store_.ApplyChange(c, &outcome)).ok()) return st;
  }
  // Reverting refused changes: a row the server did not send back is not
  // this device's (or not on the server at all); it goes, unless more of
  // its changes still wait to be pushed (they will be answered in turn).
  std::vector<std::pair<std::string, std::string>> gone;
  if (revert) {
    std::set<std::pair<std::string, std::string>> unsent;
    for (const Change& c : pending) unsent.insert({c.table, c.row});
    for (const auto& r : *revert)
      if (!here.count(r) && !unsent.count(r)) gone.push_back(r);
    if (!(st = store_.EvictRows(gone)).ok()) return st;
    // Only what was handled leaves the list; the rest waits for the next sync.
    std::string text;
    bool found = false;
    if (!(st = store_.GetMeta(kMetaRevert, &text, &found)).ok()) return st;
    json list = found && !text.empty() ? json::parse(text, nullptr, false) : json::array();
    std::set<std::pair<std::string, std::string>> done(revert->begin(), revert->end());
    json left = json::array();
    if (list.is_array())
      for (const auto& e : list)
        if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string() &&
            !done.count({e[0].get<std::string>(), e[1].get<std::string>()}))
          left.push_back(e);
    if (!(st = store_.SetMeta(kMetaRevert, left.empty() ? std::string() : left.dump())).ok()) return st;
  }
  clock_->Observe(newest);
  if (!(st = RaiseRemoteHlc(newest)).ok()) return st;
  if (!(st = store_.SetMetaInt(kMetaHlc, static_cast<int64_t>(clock_->last()))).ok()) return st;
  if (!(st = tx.Commit()).ok()) return st;
  for (const RowState& r : rows) events->push_back({r.table, r.row, r.deleted, true});
  for (const auto& [t, id] : gone) events->push_back({t, id, true, true});
  return Status::OK();
}

Status Replica::EvictKeys(const std::vector<std::string>& keys, std::vector<std::string>* evicted,
                          std::vector<ChangeEvent>* events) {
  std::lock_guard<std::mutex> lock(mu_);
  evicted->clear();
  std::vector<Change> pending;
  std::vector<int64_t> seqs;
  Status st = store_.OutboxPeek(SIZE_MAX >> 1, &pending, &seqs);
  if (!st.ok()) return st;
  std::set<std::pair<std::string, std::string>> unsent;
  for (const Change& c : pending) unsent.insert({c.table, c.row});
  store::Transaction tx(&store_.db());
  if (!(st = tx.status()).ok()) return st;
  std::vector<ChangeEvent> out;
  for (const std::string& key : keys) {
    std::vector<std::pair<std::string, std::string>> rows;
    if (!(st = store_.RowsOfKeys({key}, &rows)).ok()) return st;
    // Nothing typed here is dropped: a row with unsent edits keeps its key
    // on the device until a later sync has pushed them.
    bool busy = std::any_of(rows.begin(), rows.end(), [&](const auto& r) { return unsent.count(r) > 0; });
    if (busy) continue;
    if (!(st = store_.EvictRows(rows)).ok()) return st;
    for (const auto& [t, id] : rows) out.push_back({t, id, true, true});
    evicted->push_back(key);
  }
  if (!(st = tx.Commit()).ok()) return st;
  events->insert(events->end(), out.begin(), out.end());
  return Status::OK();
}

Status Replica::InstallSnapshotPage(std::vector<RowState>* page, bool wipe, int64_t cursor, bool last,
                                    const json& after, std::set<std::pair<std::string, std::string>>* stale,
                                    std::vector<ChangeEvent>* events) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::vector<RowState>& rows = *page;
  for (const RowState& r : rows)
    if (!ValidRowId(r.row)) return Status::Protocol("snapshot row with a bad id");
  // The clock sees every stamp the server sent, fitting or not, as before.
  Hlc newest = NewestStamp(rows);
  FitToSchema(page);
  store::Transaction tx(&store_.db());
  Status st = tx.status();
  if (!st.ok()) return st;
  std::vector<Change> pending;  // the outbox, re-applied by the last page
  if (wipe) {
    st = store_.Dump([&](const json& row) { stale->insert({row["table"].get<std::string>(), row["id"].get<std::string>()}); });
    if (!st.ok() || !(st = store_.ClearState()).ok()) return st;
  }
  if (!(st = store_.InstallState(rows)).ok()) return st;
  clock_->Observe(newest);  // a stamp too far ahead leaves the clock alone
  if (!(st = RaiseRemoteHlc(newest)).ok()) return st;
  if (!last) {
    st = store_.SetMeta(kMetaSnapshot, json({{"cursor", cursor}, {"after", after}}).dump());
  } else {
    // What the device wrote and the server has not acknowledged goes back on
    // top of the server's state: nothing typed offline is lost to a re-bootstrap.
    std::vector<int64_t> seqs;
    st = store_.OutboxPeek(SIZE_MAX >> 1, &pending, &seqs);
    for (size_t i = 0; st.ok() && i < pending.size(); ++i) {
      store::ApplyOutcome outcome;
      st = store_.ApplyChange(pending[i], &outcome);
    }
    if (st.ok()) st = store_.SetMeta(kMetaSnapshot, "");
    if (st.ok()) st = store_.SetMetaInt(kMetaCursor, cursor);
  }
  if (st.ok()) st = store_.SetMetaInt(kMetaHlc, static_cast<int64_t>(clock_->last()));
  if (st.ok()) st = tx.Commit();
  if (!st.ok()) return st;
  for (const RowState& r : rows) {
    stale->erase({r.table, r.row});
    events->push_back({r.table, r.row, r.deleted, true});
  }
  if (last) {
    status_.cursor = cursor;
    // Rows re-made from the outbox are still here, with the device's edits.
    for (const Change& c : pending)
      if (stale->erase({c.table, c.row})) events->push_back({c.table, c.row, c.op == Op::kDelete, false});
    // Rows the device held that the server's state no longer has for it.
    for (const auto& [t, id] : *stale) events->push_back({t, id, true, true});
    stale->clear();
  }
  return Status::OK();
}

// ---- sync status ----------------------------------------------------------------------

void Replica::SetState(SyncStatus::State s, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  status_.state = s;
  status_.reason = reason;
}

SyncStatus Replica::GetSyncStatus() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  if (store_.OutboxCount(&n).ok()) status_.pending = n;
  return status_;
}

// ---- the sync session: one connection's conversation with the server --------------

// Drives the protocol of docs/protocol.md over one Connection. Used by
// Sync() for one exchange and by the background thread for a live one.
class Replica::Session {
 public:
  Session(Replica* r, const SyncOptions& opts)
      : r_(r), opts_(opts), conn_(opts.transport ? opts.transport() : nullptr) {
    if (!conn_) conn_ = std::make_unique<client::Connection>(client::ConnectionOptions{opts.token, opts.tls_ca_file});
  }

  Status Connect() {
    Status st = conn_->Connect(opts_.url, opts_.connect_timeout_ms);
    if (!st.ok()) return st;
    json hello = {{"type", msg::kHello},
                  {"protocol", json::array({kProtocolVersion})},
                  {"node", ToHex(r_->node_)},
                  {"client", opts_.client_name},
                  {"schema", r_->schema().fingerprint()},
                  {"cursor", CurrentCursor()},
                  {"encodings", opts_.msgpack ? json::array({"msgpack", "json"}) : json::array({"json"})}};
    if (CurrentCursor() == 0) hello["today"] = opts_.today.empty() ? LocalDate() : opts_.today;
    // How much is waiting to go up: what a supervisor's device list shows.
    hello["pending"] = r_->GetSyncStatus().pending;
    if (!(st = Send(hello)).ok()) return st;
    json welcome;
    if (!(st = Await(msg::kWelcome, nullptr, &welcome)).ok()) return st;
    if (welcome.value("protocol", 0) != kProtocolVersion)
      return Status(Code::kUnsupported, "server answered with another protocol version");
    Encoding enc;
    if (ParseEncoding(welcome.value("encoding", "json"), &enc)) enc_ = enc;
    // Pipelining only with a server that says it honours `after` and
    // `applied` (protocol.md 5.2): one from before would ignore `after` and
    // could commit a push ahead of an earlier one that failed.
    push_after_ = pull_applied_ = false;
    if (welcome.contains("features") && welcome["features"].is_array())
      for (const auto& f : welcome["features"]) {
        if (f == "push_after") push_after_ = true;
        if (f == "pull_applied") pull_applied_ = true;
      }
    first_keys_.clear();
    if (welcome.contains("first_keys") && welcome["first_keys"].is_array())
      for (const auto& k : welcome["first_keys"])
        if (k.is_string()) first_keys_.push_back(k.get<std::string>());
    if (welcome.contains("limits") && welcome["limits"].is_object()) {
      const json& l = welcome["limits"];
      if (l.contains("max_scope_keys") && l["max_scope_keys"].is_number_unsigned())
        server_max_keys_ = std::max<size_t>(1, l["max_scope_keys"].get<size_t>());
      server_max_push_ = l.value("max_changes_per_push", server_max_push_);
      server_max_frame_ = l.value("max_frame_bytes", server_max_frame_);
      server_max_inflated_ = l.value("max_decompressed_bytes", server_max_inflated_);
    }
    // A device whose wall clock is off by more than the skew bound would see
    // its changes refused: steer the clock by the server's time instead.
    if (welcome.contains("server_time") && welcome["server_time"].is_number_unsigned()) {
      int64_t server = static_cast<int64_t>(welcome["server_time"].get<uint64_t>());
      std::lock_guard<std::mutex> lock(r_->mu_);
      HybridClock& clock = *r_->clock_;
      int64_t raw = static_cast<int64_t>(clock.PhysicalNow()) - clock.offset();
      int64_t bound = static_cast<int64_t>(clock.max_drift_ms());
      if (std::llabs(server - static_cast<int64_t>(clock.PhysicalNow())) > bound / 2) clock.SetOffset(server - raw);
      // Stamps handed out while the date was far ahead will be refused; the
      // clock goes back to the newest stamp that can still be accepted, so
      // their re-stamped copies (and new edits) land within the bound.
      Hlc limit = MakeHlc(static_cast<uint64_t>(server + bound), 0);
      if (clock.last() > limit) {
        int64_t acked = 0, remote = 0;
        Hlc pending = 0;
        Status st = r_->store_.GetMetaInt(kMetaAckedHlc, 0, &acked);
        if (st.ok()) st = r_->store_.GetMetaInt(kMetaRemoteHlc, 0, &remote);
        if (st.ok()) st = r_->store_.OutboxMaxHlcAtMost(limit, &pending);
        if (!st.ok()) return st;
        Hlc floor = std::max({MakeHlc(static_cast<uint64_t>(server), 0), static_cast<Hlc>(acked),
                              static_cast<Hlc>(remote), pending});
        // Pending changes stamped beyond the limit were made while the date
        // was wrong, and the server would refuse them. Re-stamp them now, in
        // their original order, before the rewound clock hands out any new
        // stamp: otherwise a later edit could get a smaller stamp than an
        // earlier one and lose to it on the server but not here (the
        // simulation found exactly that divergence).
        std::vector<Change> outbox;
        std::vector<int64_t> seqs;
        store::Transaction tx(&r_->store_.db());
        if (!(st = tx.status()).ok()) return st;
        if (!(st = r_->store_.OutboxPeek(SIZE_MAX >> 1, &outbox, &seqs)).ok()) return st;
        clock.Rewind(floor);
        int64_t restamped = 0;
        for (size_t k = 0; k < outbox.size(); ++k) {
          if (outbox[k].stamp.hlc <= limit) continue;
          Change c = Restamped(outbox[k], {clock.Now(), r_->node_});
          if (!(st = r_->store_.Restamp(outbox[k], c.stamp)).ok()) return st;
          if (!(st = r_->store_.OutboxReplace(seqs[k], c)).ok()) return st;
          ++restamped;
        }
        if (!(st = r_->store_.SetMetaInt(kMetaHlc, static_cast<int64_t>(clock.last()))).ok()) return st;
        if (!(st = tx.Commit()).ok()) return st;
        report_.restamped += restamped;
      }
    }
    return Status::OK();
  }

  // Pushes the whole outbox, batch by batch; each batch leaves the outbox
  // only once acknowledged (after the server's commit). Up to kPushWindow
  // batches are in flight: the next one is read and encoded here while the
  // server applies the one before (the server answers a connection's
  // messages in order, protocol.md 6.1). A dropped connection leaves every
  // unacknowledged batch in the outbox, to be sent again.
  static constexpr size_t kPushWindow = 2;
  struct InFlight {
    int64_t batch = 0;
    std::vector<Change> changes;
    std::vector<int64_t> seqs;
  };

  Status PushAll() {
    size_t limit = std::max<size_t>(1, std::min(opts_.push_batch, server_max_push_));
    std::deque<InFlight> flight;
    int64_t sent_through = 0;  // outbox position of the last change sent
    for (;;) {
      bool more = true;
      while (more && flight.size() < (push_after_ ? kPushWindow : 1)) {
        InFlight next;
        if (Status st = NextPush(&limit, sent_through, !flight.empty(), &next, &more); !st.ok()) return st;
        if (next.changes.empty()) continue;
        sent_through = next.seqs.back();
        flight.push_back(std::move(next));
      }
      if (flight.empty()) return RevertRefused();
      InFlight& done = flight.front();
      json ack;
      Status st = Await(msg::kAck, done.batch, &ack);
      if (!st.ok()) return st;
      int64_t fresh_skewed = 0;
      if (!(st = Acknowledge(done.changes, done.seqs, ack, &fresh_skewed)).ok()) return st;
      flight.pop_front();
      // Changes stamped while the device's date was wrong come back skewed:
      // they are re-stamped and go round once more, however many batches of
      // them there are. Only a change this session re-stamped coming back
      // skewed AGAIN means the clocks still disagree; if that keeps
      // happening, say so.
      skewed_rounds_ = fresh_skewed ? skewed_rounds_ + 1 : 0;
      if (skewed_rounds_ >= 3)
        return Status(Code::kClockSkew, "the server keeps refusing this device's timestamps; check the date");
    }
  }

  // Reads and sends the next push after outbox position `after`. *more is
  // false when nothing is left to send now: the outbox is drained, or its
  // next change must wait until the pushes in flight (`busy`) are answered.
  // `out` stays empty when nothing was sent.
  Status NextPush(size_t* limit, int64_t after, bool busy, InFlight* out, bool* more) {
    std::vector<Change> changes;
    std::vector<int64_t> seqs;
    Status st;
    {
      std::lock_guard<std::mutex> lock(r_->mu_);
      st = r_->store_.OutboxPeek(*limit + 1, &changes, &seqs, after);
    }
    if (!st.ok()) return st;
    if (changes.empty()) {
      *more = false;
      return Status::OK();
    }
    if (changes.size() > *limit) {
      // A push ends between rows, not inside one: the server judges some
      // rows whole within a push (a decision record, docs/merge.md 11a).
      // A row with more changes than a push holds goes up in parts.
      size_t cut = *limit;
      const Change& next = changes[*limit];
      while (cut > 0 && changes[cut - 1].table == next.table && changes[cut - 1].row == next.row) --cut;
      if (cut == 0) cut = *limit;
      changes.resize(cut);
      seqs.resize(cut);
    }
    int64_t batch = batch_id_ + 1;
    json push = {{"type", msg::kPush}, {"batch", batch}};
    // Sent before the previous push's ack: the server applies it only if
    // that one went through (protocol.md 6.1).
    if (busy) push["after"] = batch_id_;
    size_t inflated = 0;
    std::string frame = EncodeChangesFrame(push, changes, enc_, true, &inflated);
    // A push the server cannot take whole would be closed unacknowledged
    // and sent again at every sync: the outbox would never drain. Send
    // fewer changes (sized from this overshoot, for the rest of the
    // session too); one change that cannot fit alone is refused here as
    // the server would refuse it, so it holds back nothing behind it.
    if (frame.size() > server_max_frame_ || inflated > server_max_inflated_) {
      if (changes.size() == 1) {
        // Refusing it drops the outbox through its position: not while
        // changes before it wait for their ack.
        if (busy) {
          *more = false;
          return Status::OK();
        }
        return RefuseUnsendable(changes[0], seqs[0], frame.size(), inflated);
      }
      double over = std::max(static_cast<double>(frame.size()) / static_cast<double>(server_max_frame_),
                             static_cast<double>(inflated) / static_cast<double>(server_max_inflated_));
      *limit = std::clamp<size_t>(static_cast<size_t>(static_cast<double>(changes.size()) / over * 0.9), 1,
                                  changes.size() / 2);
      return Status::OK();
    }
    batch_id_ = batch;
    if (!(st = SendFrame(frame)).ok()) return st;
    out->batch = batch;
    out->changes = std::move(changes);
    out->seqs = std::move(seqs);
    return Status::OK();
  }

  // Puts the rows whose changes the server refused back to what the server
  // holds (a compensating change, never a silent divergence): the server's
  // state of each row this device may read; a row it may not read leaves.
  Status RevertRefused() {
    std::vector<std::pair<std::string, std::string>> asked;
    {
      std::lock_guard<std::mutex> lock(r_->mu_);
      std::string text;
      bool found = false;
      Status st = r_->store_.GetMeta(kMetaRevert, &text, &found);
      if (!st.ok()) return st;
      json list = found && !text.empty() ? json::parse(text, nullptr, false) : json();
      if (!list.is_array()) return Status::OK();
      std::set<std::pair<std::string, std::string>> uniq;
      for (const auto& e : list)
        if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string())
          uniq.insert({e[0].get<std::string>(), e[1].get<std::string>()});
      asked.assign(uniq.begin(), uniq.end());
    }
    if (asked.empty()) return Status::OK();
    if (asked.size() > server_max_keys_) asked.resize(server_max_keys_);  // the rest: next sync
    json rows_req = json::array();
    for (const auto& [t, id] : asked) rows_req.push_back({t, id});
    std::vector<RowState> rows;
    Status st = FetchPartial({{"rows", rows_req}}, [&](std::vector<RowState>&& page, const json&) {
      for (auto& r : page) rows.push_back(std::move(r));
      return Status::OK();
    });
    if (!st.ok()) return st;
    std::vector<ChangeEvent> events;
    if (!(st = r_->InstallScopePage(&rows, &events, &asked)).ok()) return st;
    report_.reverted_rows += static_cast<int64_t>(asked.size());
    r_->Notify(events);
    return Status::OK();
  }

  // Pulls until the server says there is no more. An empty new replica, or
  // one whose snapshot was interrupted, loads a snapshot first (state, not
  // history: far fewer bytes and writes). One that holds rows of its own
  // pulls the log instead, so that its writes that lost to concurrent ones
  // become conflict records here; one whose cursor fell behind the server's
  // compaction is told so and re-bootstraps from a snapshot.
  Status PullAll() {
    resync_ = false;
    bool pending_snapshot = false;
    {
      std::lock_guard<std::mutex> lock(r_->mu_);
      std::string progress;
      bool found = false, any = true;
      Status st = r_->store_.GetMeta(kMetaSnapshot, &progress, &found);
      if (st.ok() && r_->status_.cursor == 0) st = r_->store_.HasState(&any);
      if (!st.ok()) return st;
      pending_snapshot = (found && !progress.empty()) || (r_->status_.cursor == 0 && !any);
    }
    if (pending_snapshot) {
      // A new device: the accounts of today's visits first, so the rep can
      // start work while the rest of the territory loads.
      bool early = false;
      if (!first_keys_.empty() && r_->status_.cursor == 0) {
        std::lock_guard<std::mutex> lock(r_->mu_);
        bool any = true;
        std::string progress;
        bool found = false;
        Status st = r_->store_.HasState(&any);
        if (st.ok()) st = r_->store_.GetMeta(kMetaSnapshot, &progress, &found);
        if (!st.ok()) return st;
        early = !any && !(found && !progress.empty());
        // A crash between the two phases resumes as a whole snapshot (the
        // marker is a snapshot in progress that has no page yet).
        if (early && !(st = r_->store_.SetMeta(kMetaSnapshot, R"({"early":true})")).ok()) return st;
      }
      if (early) {
        SetProgress("loading the accounts of today's visits first");
        if (Status st = LoadKeys(first_keys_); !st.ok()) return st;
      }
      Status st = Snapshot(/*rebootstrap=*/false, /*keep_loaded=*/early);
      if (!st.ok()) return st;
    }
    int resyncs = 0, scope_rounds = 0;
    int64_t ahead = 0;  // the id of a pull already sent for the next page, 0 if none
    for (;;) {
      int64_t id = ahead;
      Status st;
      if (!id) {
        id = ++request_id_;
        if (!(st = Send({{"type", msg::kPull}, {"id", id}, {"cursor", CurrentCursor()}})).ok()) return st;
      }
      ahead = 0;
      Incoming in;
      if (!(st = Await(msg::kChanges, id, &in)).ok()) return st;
      const json& reply = in.m;
      if (reply.value("resync", false)) {
        if (++resyncs > 3) return Status(Code::kProtocolError, "the server keeps asking for a resync");
        if (!(st = Snapshot(/*rebootstrap=*/true)).ok()) return st;
        continue;
      }
      // Read one page ahead: the server reads the next page while this one
      // is applied. `applied` keeps the compaction horizon at what is
      // committed here (protocol.md 6.3).
      if (pull_applied_ && reply.value("more", false) && !reply.contains("scope") && reply.contains("cursor") &&
          reply["cursor"].is_number_integer()) {
        ahead = ++request_id_;
        st = Send({{"type", msg::kPull}, {"id", ahead}, {"cursor", reply["cursor"]}, {"applied", CurrentCursor()}});
        if (!st.ok()) return st;
      }
      if (!(st = ApplyChanges(in)).ok()) return st;
      if (reply.contains("scope")) {
        if (++scope_rounds > 100) return Status(Code::kProtocolError, "the scope keeps moving");
        if (!(st = ApplyScope(reply["scope"])).ok()) return st;
        continue;  // ask again: the rest of the diff, or none
      }
      if (!reply.value("more", false)) return Status::OK();
    }
  }

  // The server says this device's scope moved (an assignment changed):
  // push what it typed, drop what left the scope, load what joined it, and
  // confirm (docs/protocol.md, "Scope changes").
  Status ApplyScope(const json& diff) {
    std::vector<std::string> add, remove;
    for (const char* k : {"add", "remove"}) {
      if (!diff.contains(k) || !diff[k].is_array()) return Status::Protocol("scope diff without 'add' and 'remove' arrays");
      for (const auto& v : diff[k]) {
        if (!v.is_string()) return Status::Protocol("scope keys are strings");
        (std::string(k) == "add" ? add : remove).push_back(v.get<std::string>());
      }
    }
    Status st;
    std::vector<std::string> evicted;
    if (!remove.empty()) {
      SetProgress("the scope moved: pushing before rows leave this device");
      if (!(st = PushAll()).ok()) return st;
      std::vector<ChangeEvent> events;
      if (!(st = r_->EvictKeys(remove, &evicted, &events)).ok()) return st;
      report_.evicted_rows += static_cast<int64_t>(events.size());
      r_->Notify(events);
    }
    if (!add.empty()) {
      SetProgress("the scope moved: loading " + std::to_string(add.size()) + " new accounts and areas");
      if (!(st = LoadKeys(add)).ok()) return st;
    }
    int64_t id = ++request_id_;
    if (!(st = Send({{"type", msg::kScopeAck}, {"id", id}, {"add", add}, {"remove", evicted}})).ok()) return st;
    json ack;
    return Await(msg::kScopeAck, id, &ack);
  }

  // Loads the rows of these scope keys as the server holds them (a partial
  // snapshot), without moving the cursor.
  Status LoadKeys(const std::vector<std::string>& add) {
    ResetProgress();
    return FetchPartial({{"keys", add}}, [&](std::vector<RowState>&& rows, const json& reply) {
      std::vector<ChangeEvent> events;
      Status st = r_->InstallScopePage(&rows, &events);
      if (!st.ok()) return st;
      report_.snapshot_rows += static_cast<int64_t>(rows.size());
      NoteProgress(reply, rows.size());
      r_->Notify(events);
      return Status::OK();
    });
  }

  // Pages through a partial snapshot (`filter`: {"keys": [...]} or
  // {"rows": [...]}, docs/protocol.md 6.6), handing each page to `page`.
  Status FetchPartial(const json& filter,
                      const std::function<Status(std::vector<RowState>&&, const json& reply)>& page) {
    json after;
    int restarts = 0;
    for (;;) {
      int64_t id = ++request_id_;
      json req = filter;
      req["type"] = msg::kSnapshot;
      req["id"] = id;
      req["compact"] = true;
      req["columns"] = true;
      if (!after.is_null()) req["after"] = after;
      Status st = Send(req);
      if (!st.ok()) return st;
      json reply;
      if (!(st = Await(msg::kSnapshot, id, &reply)).ok()) return st;
      if (reply.value("resync", false)) {
        // Compacted meanwhile: these rows' state is still whole; ask again.
        if (++restarts > 3) return Status(Code::kProtocolError, "the server keeps restarting the snapshot");
        after = nullptr;
        continue;
      }
      std::vector<RowState> rows;
      bool more = false;
      if (!(st = SnapshotRows(reply, &rows, &more)).ok()) return st;
      json next = more ? json::array({rows.back().table, rows.back().row}) : json();
      if (!(st = page(std::move(rows), reply)).ok()) return st;
      if (!more) return Status::OK();
      after = next;
    }
  }

  void ResetProgress() {
    std::lock_guard<std::mutex> lock(r_->mu_);
    r_->status_.progress_rows = r_->status_.progress_total_rows = r_->status_.progress_bytes = 0;
    progress_bytes_from_ = report_.bytes_received;
  }

  void NoteProgress(const json& reply, size_t rows) {
    std::lock_guard<std::mutex> lock(r_->mu_);
    if (reply.contains("total_rows") && reply["total_rows"].is_number_integer())
      r_->status_.progress_total_rows = reply["total_rows"].get<int64_t>();
    r_->status_.progress_rows += static_cast<int64_t>(rows);
    r_->status_.progress_total_rows = std::max(r_->status_.progress_total_rows, r_->status_.progress_rows);
    r_->status_.progress_bytes = report_.bytes_received - progress_bytes_from_;
  }

  static std::string LocalDate() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
  }

  // Loads the server's current state page by page (docs/protocol.md,
  // "Snapshot"), resuming an interrupted one from its last page.
  // `rebootstrap`: the replica's own state is out of date and is replaced.
  // `keep_loaded`: rows loaded just before (today's accounts) stay; a new
  // device has nothing else to remove.
  Status Snapshot(bool rebootstrap = false, bool keep_loaded = false) {
    SetProgress("loading a snapshot of the server's state");
    ResetProgress();
    int64_t cursor = -1;
    json after;
    if (!rebootstrap) {
      std::lock_guard<std::mutex> lock(r_->mu_);
      std::string text;
      bool found = false;
      Status st = r_->store_.GetMeta(kMetaSnapshot, &text, &found);
      if (!st.ok()) return st;
      json p = found && !text.empty() ? json::parse(text, nullptr, false) : json();
      if (p.is_object() && p.contains("cursor") && p["cursor"].is_number_integer()) {
        cursor = p["cursor"].get<int64_t>();
        after = p.value("after", json());
      }
    }
    // The first page of a fresh start replaces whatever the replica holds
    // (nothing, on a new device); a resumed snapshot continues its pages.
    bool wipe = cursor < 0 && !keep_loaded;
    std::set<std::pair<std::string, std::string>> stale;
    int restarts = 0;
    // The next page is asked for as soon as a page arrives, before that page
    // is written: the server reads and encodes it while this side installs.
    auto request = [&](int64_t* id) {
      *id = ++request_id_;
      // Column-major blocks, else compact rows: a server that predates
      // either ignores its flag and sends what it has, which SnapshotRows
      // reads as well.
      json req = {{"type", msg::kSnapshot}, {"id", *id}, {"compact", true}, {"columns", true}};
      if (cursor >= 0) req["cursor"] = cursor;
      if (!after.is_null()) req["after"] = after;
      return Send(req);
    };
    int64_t id = 0;
    Status st = request(&id);
    if (!st.ok()) return st;
    for (;;) {
      json reply;
      if (!(st = Await(msg::kSnapshot, id, &reply)).ok()) return st;
      if (reply.value("resync", false)) {
        if (++restarts > 3) return Status(Code::kProtocolError, "the server keeps restarting the snapshot");
        cursor = -1;
        after = nullptr;
        wipe = true;
        if (!(st = request(&id)).ok()) return st;
        continue;
      }
      if (!reply.contains("cursor") || !reply["cursor"].is_number_integer())
        return Status::Protocol("snapshot reply without an integer 'cursor'");
      std::vector<RowState> rows;
      bool more = false;
      if (!(st = SnapshotRows(reply, &rows, &more)).ok()) return st;
      int64_t at = reply["cursor"].get<int64_t>();
      json next = more ? json::array({rows.back().table, rows.back().row}) : json();
      if (more) {
        cursor = at;
        after = next;
        if (!(st = request(&id)).ok()) return st;
      }
      std::vector<ChangeEvent> events;
      if (!(st = r_->InstallSnapshotPage(&rows, wipe, at, !more, next, &stale, &events)).ok()) return st;
      wipe = false;
      report_.snapshot_rows += static_cast<int64_t>(rows.size());
      NoteProgress(reply, rows.size());
      report_.cursor = at;
      r_->Notify(events);
      if (!more) return Status::OK();
    }
  }

  Status Subscribe() { return Send({{"type", msg::kSubscribe}, {"cursor", CurrentCursor()}}); }

  // Waits up to timeout_ms for live traffic and applies it.
  Status Poll(int timeout_ms) {
    Incoming in;
    bool got = false;
    Status st = Receive(&in, timeout_ms, &got);
    if (!st.ok() || !got) return st;
    return Dispatch(in, nullptr, nullptr, nullptr);
  }

  void Close() { conn_->Close(); }
  SyncReport& report() { return report_; }
  // The server said, on the live feed, that this replica is behind its compaction.
  bool resync_needed() const { return resync_; }

 private:
  Status Send(const json& m) { return SendFrame(EncodeFrame(m, enc_)); }

  Status SendFrame(const std::string& frame) {
    Status st = conn_->Send(frame, opts_.request_timeout_ms);
    if (st.ok()) {
      report_.bytes_sent += static_cast<int64_t>(frame.size());
      report_.payload_bytes_sent += static_cast<int64_t>(FramePayloadBytes(frame));
    }
    return st;
  }

  Status RefuseUnsendable(const Change& c, int64_t seq, size_t frame_bytes, size_t inflated) {
    std::lock_guard<std::mutex> lock(r_->mu_);
    store::Transaction tx(&r_->store_.db());
    Status st = tx.status();
    if (st.ok())
      st = r_->store_.AddRejection(c, CodeName(Code::kLimitExceeded),
                                   "a push of this change alone is " + std::to_string(frame_bytes) + " bytes (" +
                                       std::to_string(inflated) + " before compression), over the server's " +
                                       "max_frame_bytes " + std::to_string(server_max_frame_) +
                                       " or max_decompressed_bytes " + std::to_string(server_max_inflated_));
    if (st.ok()) st = r_->store_.OutboxRemoveThrough(seq);
    if (st.ok()) st = tx.Commit();
    if (st.ok()) ++report_.rejected;
    return st;
  }

  // A message from the server. A `changes` message's changes are read
  // straight from a MessagePack frame into `changes` (`taken`); otherwise
  // they are in `m`, as every other message's fields are.
  struct Incoming {
    json m;
    std::vector<Change> changes;
    bool taken = false;
  };

  Status Receive(Incoming* in, int timeout_ms, bool* got) {
    std::string frame;
    Status st = conn_->Receive(&frame, timeout_ms, got);
    if (!st.ok() || !*got) return st;
    report_.bytes_received += static_cast<int64_t>(frame.size());
    report_.payload_bytes_received += static_cast<int64_t>(FramePayloadBytes(frame));
    return DecodeChangesFrame(frame, limits_, &in->m, &in->changes, &in->taken);
  }

  // Reads until the reply of `type` (with `id` in batch/id, when given)
  // arrives, applying any live changes that come first.
  Status Await(const char* type, const json& id, Incoming* reply) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.request_timeout_ms);
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        conn_->Close();
        return Status::IoError(std::string("no '") + type + "' from the server within " +
                               std::to_string(opts_.request_timeout_ms) + " ms");
      }
      Incoming m;
      bool got = false;
      Status st = Receive(&m, static_cast<int>(left.count()), &got);
      if (!st.ok()) return st;
      if (!got) continue;
      bool matched = false;
      if (!(st = Dispatch(m, type, &id, &matched)).ok()) return st;
      if (matched) {
        *reply = std::move(m);
        return Status::OK();
      }
    }
  }

  // Await for replies without changes (ack, welcome, snapshot, scope_ack).
  Status Await(const char* type, const json& id, json* reply) {
    Incoming in;
    Status st = Await(type, id, &in);
    if (!st.ok()) return st;
    if (in.taken) {  // not one of those, but nothing is dropped either way
      json arr = json::array();
      for (const auto& c : in.changes) arr.push_back(ChangeToJson(c));
      in.m["changes"] = std::move(arr);
    }
    *reply = std::move(in.m);
    return Status::OK();
  }

  Status Dispatch(const Incoming& in, const char* want, const json* id, bool* matched) {
    const json& m = in.m;
    const std::string& type = m["type"].get_ref<const std::string&>();
    if (type == msg::kError) {
      // Requests are answered in order, so an error ends the current wait.
      return Status(CodeFromName(m.value("code", "protocol_error")), "server: " + m.value("message", std::string()));
    }
    if (type == msg::kChanges && m.value("live", false)) {
      if (m.value("resync", false) || m.contains("scope")) {
        resync_ = true;  // the live loop pulls again: a snapshot, or the scope diff
        return Status::OK();
      }
      return ApplyChanges(in);
    }
    if (want && type == want) {
      json key = type == std::string(msg::kAck) ? m.value("batch", json()) : m.value("id", json());
      if (type == std::string(msg::kWelcome) || (id && key == *id)) {
        *matched = true;
        return Status::OK();
      }
    }
    return Status::Protocol("unexpected '" + type + "' from the server");
  }

  Status ApplyChanges(const Incoming& in) {
    const json& m = in.m;
    if ((!in.taken && (!m.contains("changes") || !m["changes"].is_array())) || !m.contains("cursor") ||
        !m["cursor"].is_number_integer())
      return Status::Protocol("changes message without 'changes' array and integer 'cursor'");
    std::vector<Change> parsed;
    if (!in.taken) {
      parsed.reserve(m["changes"].size());
      for (const auto& j : m["changes"]) {
        Change c;
        Status st = ChangeFromJson(j, &c);
        if (!st.ok()) return Status::Protocol("server sent a bad change: " + st.message());
        parsed.push_back(std::move(c));
      }
    }
    const std::vector<Change>& changes = in.taken ? in.changes : parsed;
    std::vector<ChangeEvent> events;
    Status st = r_->ApplyRemote(changes, m["cursor"].get<int64_t>(), &events);
    if (!st.ok()) return st;
    report_.pulled += static_cast<int64_t>(changes.size());
    report_.cursor = m["cursor"].get<int64_t>();
    r_->Notify(events);
    return Status::OK();
  }

  // Removes an acknowledged batch from the outbox. Refused changes go to the
  // rejection list (the app shows them); a change refused only because the
  // device clock ran ahead is re-stamped and queued again.
  Status Acknowledge(const std::vector<Change>& changes, const std::vector<int64_t>& seqs, const json& ack,
                     int64_t* fresh_skewed) {
    std::map<size_t, std::pair<std::string, std::string>> refused;
    if (ack.contains("rejected") && ack["rejected"].is_array()) {
      for (const auto& r : ack["rejected"]) {
        if (!r.is_object() || !r.contains("i") || !r["i"].is_number_unsigned()) continue;
        size_t i = r["i"].get<size_t>();
        if (i < changes.size()) refused[i] = {r.value("code", "unknown"), r.value("message", std::string())};
      }
    }
    std::lock_guard<std::mutex> lock(r_->mu_);
    store::Transaction tx(&r_->store_.db());
    if (!tx.status().ok()) return tx.status();
    Status st;
    int64_t restamped = 0;
    std::set<std::pair<std::string, std::string>> revert;
    for (const auto& [i, why] : refused) {
      if (why.first == CodeName(Code::kClockSkew)) {
        if (restamped_here_.count(changes[i].stamp.hlc)) ++*fresh_skewed;
        Change c = Restamped(changes[i], {r_->clock_->Now(), r_->node_});
        restamped_here_.insert(c.stamp.hlc);
        if (!(st = r_->store_.Restamp(changes[i], c.stamp)).ok()) return st;
        if (!(st = r_->store_.OutboxAppend(c)).ok()) return st;
        ++restamped;
      } else if (!(st = r_->store_.AddRejection(changes[i], why.first, why.second)).ok()) {
        return st;
      } else {
        revert.insert({changes[i].table, changes[i].row});
      }
    }
    // Written with the rejection, so a crash before the revert still reverts.
    if (!revert.empty()) {
      std::string text;
      bool found = false;
      if (!(st = r_->store_.GetMeta(kMetaRevert, &text, &found)).ok()) return st;
      json list = found && !text.empty() ? json::parse(text, nullptr, false) : json::array();
      if (!list.is_array()) list = json::array();
      for (const auto& [t, id] : revert) list.push_back({t, id});
      if (!(st = r_->store_.SetMeta(kMetaRevert, list.dump())).ok()) return st;
    }
    Hlc acked = 0;
    for (size_t i = 0; i < changes.size(); ++i)
      if (!refused.count(i)) acked = std::max(acked, changes[i].stamp.hlc);
    int64_t had = 0;
    if (!(st = r_->store_.GetMetaInt(kMetaAckedHlc, 0, &had)).ok()) return st;
    if (acked > static_cast<Hlc>(had) && !(st = r_->store_.SetMetaInt(kMetaAckedHlc, static_cast<int64_t>(acked))).ok())
      return st;
    if (!(st = r_->store_.OutboxRemoveThrough(seqs.back())).ok()) return st;
    if (!(st = r_->store_.SetMetaInt(kMetaHlc, static_cast<int64_t>(r_->clock_->last()))).ok()) return st;
    if (!(st = tx.Commit()).ok()) return st;
    report_.pushed += static_cast<int64_t>(changes.size() - refused.size());
    report_.rejected += static_cast<int64_t>(refused.size()) - restamped;
    report_.restamped += restamped;
    return Status::OK();
  }

  Replica* r_;
  SyncOptions opts_;
  std::unique_ptr<Transport> conn_;
  Limits limits_{64u << 20, 256u << 20, 1u << 20, 1u << 20, 64};
  Encoding enc_ = Encoding::kJson;
  size_t server_max_push_ = 5000;
  size_t server_max_frame_ = Limits{}.max_frame_bytes;  // from welcome.limits
  size_t server_max_inflated_ = Limits{}.max_decompressed_bytes;
  int64_t batch_id_ = 0;
  int skewed_rounds_ = 0;
  std::set<Hlc> restamped_here_;  // stamps this session gave to re-stamped changes
  int64_t request_id_ = 0;
  bool resync_ = false;
  size_t server_max_keys_ = Limits{}.max_scope_keys;  // from welcome.limits
  bool push_after_ = false;    // welcome.features: two pushes in flight
  bool pull_applied_ = false;  // welcome.features: pulls read a page ahead
  std::vector<std::string> first_keys_;  // welcome.first_keys: load these first on a new device
  int64_t progress_bytes_from_ = 0;
  SyncReport report_;

  int64_t CurrentCursor() {
    std::lock_guard<std::mutex> lock(r_->mu_);
    return r_->status_.cursor;
  }
  void SetProgress(const std::string& reason) {
    std::lock_guard<std::mutex> lock(r_->mu_);
    r_->status_.reason = reason;
  }
};

Status Replica::Sync(const SyncOptions& opts, SyncReport* report) {
  std::unique_lock<std::mutex> one(sync_mu_, std::try_to_lock);
  if (!one.owns_lock()) return Status(Code::kBusy, "a sync is already running on this replica");
  SetState(SyncStatus::State::kConnecting, "connecting to " + opts.url);
  Session s(this, opts);
  Status st = Guard([&] {
    Status r = s.Connect();
    if (r.ok()) {
      SetState(SyncStatus::State::kSyncing, "pushing local changes");
      r = s.PushAll();
    }
    if (r.ok()) {
      SetState(SyncStatus::State::kSyncing, "pulling remote changes");
      r = s.PullAll();
    }
    return r;
  });
  s.Close();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (st.ok()) {
      status_.last_sync_ms = SystemMillis();
      status_.last_error.clear();
      store_.SetMetaInt(kMetaLastSync, static_cast<int64_t>(status_.last_sync_ms));
      status_.state = SyncStatus::State::kIdle;
      status_.reason = "synced";
    } else {
      status_.last_error = st.ToString();
      status_.state = SyncStatus::State::kIdle;
      status_.reason = "last sync failed";
    }
  }
  if (report) *report = s.report();
  return st;
}

// ---- background sync ----------------------------------------------------------------

Status Replica::StartBackgroundSync(const SyncOptions& opts) {
  client::Url u;
  Status st = opts.transport ? Status::OK() : client::ParseUrl(opts.url, &u);
  if (!st.ok()) return st;
  // bg_ is only touched under bg_thread_mu_: the new thread may call
  // StopBackgroundSync (from an observer) before the assignment completes.
  // A loop stopped from its own observer callback could not join itself; it
  // is on its way out (bg_running_ is false) and may still be waiting for
  // bg_thread_mu_ in StopBackgroundSync, so it is joined outside the lock,
  // and before the flag goes up again (or it would see it and carry on).
  std::thread old;
  {
    std::lock_guard<std::mutex> lk(bg_thread_mu_);
    if (bg_running_) return Status(Code::kBusy, "background sync is already running");
    old = std::move(bg_);
  }
  if (old.joinable()) old.join();
  std::lock_guard<std::mutex> lk(bg_thread_mu_);
  if (bg_running_ || bg_.joinable()) return Status(Code::kBusy, "background sync is already running");
  bg_running_ = true;
  bg_ = std::thread([this, opts] { BackgroundLoop(opts); });
  return Status::OK();
}

void Replica::WakeBackground() {
  // Taking the mutex orders this wake-up after the waiter's predicate check,
  // so it cannot be lost between the check and the wait.
  { std::lock_guard<std::mutex> lk(bg_mu_); }
  bg_cv_.notify_all();
}

void Replica::StopBackgroundSync() {
  if (!bg_running_.exchange(false)) return;
  WakeBackground();
  // Called from an observer on the sync thread itself: the loop ends when
  // the callback returns; the thread is joined by the next start or close.
  std::thread finished;
  {
    std::lock_guard<std::mutex> lk(bg_thread_mu_);
    if (bg_.joinable() && bg_.get_id() != std::this_thread::get_id()) finished = std::move(bg_);
  }
  if (finished.joinable()) finished.join();
  SetState(SyncStatus::State::kStopped, "background sync stopped by the app");
}

void Replica::SetNetworkAvailable(bool up) {
  network_up_ = up;
  if (up) wake_gen_.fetch_add(1);
  WakeBackground();
}

void Replica::SetForeground(bool foreground) {
  foreground_ = foreground;
  if (foreground) wake_gen_.fetch_add(1);
  WakeBackground();
}

void Replica::BackgroundLoop(SyncOptions opts) {
  std::mt19937_64 rng(node_ ^ SystemMillis());
  int failures = 0;
  while (bg_running_) {
    uint64_t gen = wake_gen_.load();
    if (!network_up_ || !foreground_) {
      if (!foreground_) SetState(SyncStatus::State::kPaused, "paused: the app is in the background");
      else SetState(SyncStatus::State::kBackoff, "waiting: the app reported the network down");
      std::unique_lock<std::mutex> lk(bg_mu_);
      bg_cv_.wait(lk, [&] { return !bg_running_ || (network_up_ && foreground_); });
      failures = 0;  // a fresh start: no backoff left over from before
      continue;
    }
    Status st;
    {
      std::lock_guard<std::mutex> one(sync_mu_);
      SetState(SyncStatus::State::kConnecting, "connecting to " + opts.url);
      Session s(this, opts);
      st = Guard([&] {
        Status r = s.Connect();
        if (r.ok()) r = s.PushAll();
        if (r.ok()) r = s.PullAll();
        if (r.ok()) r = s.Subscribe();
        return r;
      });
      if (st.ok()) {
        failures = 0;
        {
          std::lock_guard<std::mutex> lock(mu_);
          status_.last_sync_ms = SystemMillis();
          status_.last_error.clear();
          store_.SetMetaInt(kMetaLastSync, static_cast<int64_t>(status_.last_sync_ms));
          status_.attempts = 0;
        }
        SetState(SyncStatus::State::kLive, "connected, receiving live changes");
        uint64_t pushed_at = local_writes_.load();
        while (st.ok() && bg_running_ && network_up_ && foreground_) {
          if (local_writes_.load() != pushed_at) {
            pushed_at = local_writes_.load();
            st = Guard([&] { return s.PushAll(); });
            if (!st.ok()) break;
            std::lock_guard<std::mutex> lock(mu_);
            status_.last_sync_ms = SystemMillis();
          }
          st = Guard([&] { return s.Poll(50); });
          if (st.ok() && s.resync_needed()) {
            st = Guard([&] {
              Status r = s.PullAll();
              return r.ok() ? s.Subscribe() : r;
            });
          }
        }
      }
      s.Close();
    }
    if (!bg_running_) break;
    if (st.ok()) continue;  // network reported down: loop waits for it
    if (st.code() == Code::kUnauthenticated) {
      // Retrying cannot help: the app has to sign the user in again.
      std::lock_guard<std::mutex> lock(mu_);
      status_.last_error = st.ToString();
      status_.state = SyncStatus::State::kStopped;
      status_.reason = "the server refused the sign-in; sign in again: " + st.message();
      bg_running_ = false;
      break;
    }
    ++failures;
    // Exponential backoff with full jitter: 0.5 s doubling to 30 s.
    int64_t cap = std::min<int64_t>(30000, 500LL << std::min(failures - 1, 6));
    int64_t wait = std::uniform_int_distribution<int64_t>(cap / 2, cap)(rng);
    {
      std::lock_guard<std::mutex> lock(mu_);
      status_.last_error = st.ToString();
      status_.attempts = failures;
      status_.state = SyncStatus::State::kBackoff;
      status_.reason = "retrying in " + std::to_string(wait) + " ms after: " + st.ToString();
    }
    std::unique_lock<std::mutex> lk(bg_mu_);
    // A network-up hint since this attempt began ends the wait at once (no waiting out the backoff).
    bg_cv_.wait_for(lk, std::chrono::milliseconds(wait),
                    [&] { return !bg_running_ || !foreground_ || wake_gen_.load() != gen; });
  }
}

}  // namespace fieldsync
