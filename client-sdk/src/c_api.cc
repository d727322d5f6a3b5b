// The C API (fieldsync.h) over the C++ Replica. Every entry point catches
// everything: no exception crosses into C, Swift or JNI code.
#include "fieldsync/fieldsync.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "fieldsync/replica.h"
#include "sync/protocol.h"

using fieldsync::Code;
using fieldsync::json;
using fieldsync::Status;

struct fs_replica {
  std::unique_ptr<fieldsync::Replica> impl;
  std::string node;
  std::mutex creds_mu;  // the app may sign in again while background sync runs
  std::string token, tls_ca_file;
};

struct fs_txn {
  fs_replica* replica;
  fieldsync::WriteBatch batch;
  fieldsync::Status failed;  // the first refused operation: commit reports it and writes nothing
};

struct fs_result {
  std::vector<std::string> rows;
};

namespace {

#ifndef FIELDSYNC_VERSION
#define FIELDSYNC_VERSION "0.1.0"
#endif

void SetError(fs_error* err, const Status& st) {
  if (!err) return;
  err->code = static_cast<int>(st.code());
  std::string m = st.ok() ? "" : st.message();
  size_t n = std::min(m.size(), sizeof(err->message) - 1);
  std::memcpy(err->message, m.data(), n);
  err->message[n] = '\0';
}

bool Report(fs_error* err, const Status& st) {
  SetError(err, st);
  return st.ok();
}

// Runs f, turning any exception (bad_alloc, json type errors) into an error.
template <typename F>
auto Guarded(fs_error* err, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    SetError(err, Status(Code::kIoError, "out of memory"));
  } catch (const std::exception& e) {
    SetError(err, Status::InvalidArgument(e.what()));
  } catch (...) {
    SetError(err, Status::InvalidArgument("unknown error"));
  }
  return decltype(f())();
}

Status NeedString(const char* s, const char* what) {
  return s ? Status::OK() : Status::InvalidArgument(std::string(what) + " is NULL");
}

Status NeedReplica(fs_replica* r) {
  if (!r) return Status::InvalidArgument("replica handle is NULL");
  if (!r->impl) return Status(Code::kClosed, "replica is closed");
  return Status::OK();
}

std::string Text(const char* s, size_t len) { return len == static_cast<size_t>(-1) ? std::string(s) : std::string(s, len); }

Status ParseObject(const char* s, size_t len, json* out) {
  if (!s) return Status::InvalidArgument("JSON argument is NULL");
  *out = json::parse(Text(s, len), nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) return Status::InvalidArgument("invalid JSON");
  if (!out->is_object()) return Status::InvalidArgument("expected a JSON object");
  return Status::OK();
}

char* Dup(const std::string& s, size_t* out_len = nullptr) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  if (out_len) *out_len = s.size();
  return p;
}

struct Trampoline {
  fs_observer_fn fn;
  void* context;
};

}  // namespace

namespace {
template <typename F>
bool TxnOp(fs_txn* t, fs_error* err, const char* table, const char* id, F&& add) {
  return Guarded(err, [&] {
    Status st = t ? Status::OK() : Status::InvalidArgument("transaction handle is NULL");
    if (st.ok()) st = NeedString(table, "table");
    if (st.ok()) st = NeedString(id, "id");
    if (st.ok()) st = add();
    if (!st.ok() && t && t->failed.ok()) t->failed = st;
    return Report(err, st);
  });
}
}  // namespace

namespace {
fieldsync::SyncOptions Options(fs_replica* r, const char* url) {
  fieldsync::SyncOptions o;
  o.url = url;
  {
    std::lock_guard<std::mutex> lock(r->creds_mu);
    o.token = r->token;
    o.tls_ca_file = r->tls_ca_file;
  }
  o.client_name = std::string("fieldsync-c/") + FIELDSYNC_VERSION;
  return o;
}
}  // namespace

extern "C" {

const char* fs_version(void) { return FIELDSYNC_VERSION; }
int fs_protocol_version(void) { return fieldsync::kProtocolVersion; }
void fs_free(void* p) { std::free(p); }

char* fs_new_id(void) {
  try {
    return Dup(fieldsync::Replica::NewId());
  } catch (...) {
    return nullptr;
  }
}

fs_replica* fs_replica_open(const char* path, const char* schema_json, size_t schema_len, fs_error* err) {
  return Guarded(err, [&]() -> fs_replica* {
    Status st = NeedString(path, "path");
    if (st.ok()) st = NeedString(schema_json, "schema");
    fieldsync::Schema schema;
    if (st.ok()) st = fieldsync::Schema::ParseText(Text(schema_json, schema_len), &schema);
    auto r = std::make_unique<fs_replica>();
    if (st.ok()) st = fieldsync::Replica::Open(path, schema, &r->impl);
    if (!Report(err, st)) return nullptr;
    r->node = fieldsync::ToHex(r->impl->node());
    return r.release();
  });
}

bool fs_replica_close(fs_replica* r, fs_error* err) {
  return Guarded(err, [&] {
    if (!r) return Report(err, Status::InvalidArgument("replica handle is NULL"));
    r->impl.reset();  // stops background sync, closes the file
    return Report(err, Status::OK());
  });
}

void fs_replica_free(fs_replica* r) {
  if (!r) return;
  try {
    r->impl.reset();
  } catch (...) {
  }
  delete r;
}

const char* fs_replica_node(fs_replica* r) { return NeedReplica(r).ok() ? r->node.c_str() : nullptr; }

bool fs_put(fs_replica* r, const char* table, const char* id, const char* fields_json, size_t len, fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedReplica(r);
    if (st.ok()) st = NeedString(table, "table");
    if (st.ok()) st = NeedString(id, "id");
    json fields;
    if (st.ok()) st = ParseObject(fields_json, len, &fields);
    if (st.ok()) st = r->impl->Put(table, id, fields);
    return Report(err, st);
  });
}

bool fs_delete(fs_replica* r, const char* table, const char* id, fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedReplica(r);
    if (st.ok()) st = NeedString(table, "table");
    if (st.ok()) st = NeedString(id, "id");
    if (st.ok()) st = r->impl->Delete(table, id);
    return Report(err, st);
  });
}

bool fs_increment(fs_replica* r, const char* table, const char* id, const char* column, double delta,
                  fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedReplica(r);
    if (st.ok()) st = NeedString(table, "table");
    if (st.ok()) st = NeedString(id, "id");
    if (st.ok()) st = NeedString(column, "column");
    if (st.ok()) st = r->impl->Increment(table, id, column, delta);
    return Report(err, st);
  });
}

char* fs_get(fs_replica* r, const char* table, const char* id, size_t* out_len, fs_error* err) {
  return Guarded(err, [&]() -> char* {
    Status st = NeedReplica(r);
    if (st.ok()) st = NeedString(table, "table");
    if (st.ok()) st = NeedString(id, "id");
    json row;
    if (st.ok()) st = r->impl->Get(table, id, &row);
    if (!Report(err, st)) return nullptr;
    return Dup(row.dump(), out_len);
  });
}

fs_result* fs_query(fs_replica* r, const char* table, const char* query_json, size_t len, fs_error* err) {
  return Guarded(err, [&]() -> fs_result* {
    Status st = NeedReplica(r);
    if (st.ok()) st = NeedString(table, "table");
    fieldsync::store::QueryOptions q;
    if (st.ok() && query_json) {
      json j;
      st = ParseObject(query_json, len, &j);
      if (st.ok()) {
        if (j.contains("where")) q.where = j["where"];
        q.order_by = j.value("order_by", std::string());
        q.descending = j.value("descending", false);
        q.limit = j.value("limit", q.limit);
        q.offset = j.value("offset", q.offset);
        if (q.limit < 0 || q.offset < 0) st = Status::InvalidArgument("limit and offset must be >= 0");
      }
    }
    std::vector<json> rows;
    if (st.ok()) st = r->impl->Query(table, q, &rows);
    if (!Report(err, st)) return nullptr;
    auto res = std::make_unique<fs_result>();
    for (const auto& row : rows) res->rows.push_back(row.dump());
    return res.release();
  });
}

size_t fs_result_count(const fs_result* res) { return res ? res->rows.size() : 0; }

const char* fs_result_row(const fs_result* res, size_t i, size_t* out_len) {
  if (!res || i >= res->rows.size()) return nullptr;
  if (out_len) *out_len = res->rows[i].size();
  return res->rows[i].c_str();
}

void fs_result_free(fs_result* res) { delete res; }

fs_txn* fs_txn_begin(fs_replica* r, fs_error* err) {
  return Guarded(err, [&]() -> fs_txn* {
    if (!Report(err, NeedReplica(r))) return nullptr;
    return new fs_txn{r, {}, Status::OK()};
  });
}


bool fs_txn_put(fs_txn* t, const char* table, const char* id, const char* fields_json, size_t len, fs_error* err) {
  return TxnOp(t, err, table, id, [&] {
    json fields;
    Status st = ParseObject(fields_json, len, &fields);
    if (st.ok()) t->batch.Put(table, id, std::move(fields));
    return st;
  });
}

bool fs_txn_delete(fs_txn* t, const char* table, const char* id, fs_error* err) {
  return TxnOp(t, err, table, id, [&] {
    t->batch.Delete(table, id);
    return Status::OK();
  });
}

bool fs_txn_increment(fs_txn* t, const char* table, const char* id, const char* column, double delta,
                      fs_error* err) {
  return TxnOp(t, err, table, id, [&] {
    Status st = NeedString(column, "column");
    if (st.ok()) t->batch.Increment(table, id, column, delta);
    return st;
  });
}

bool fs_txn_add_member(fs_txn* t, const char* table, const char* id, const char* column, const char* member,
                       fs_error* err) {
  return TxnOp(t, err, table, id, [&] {
    Status st = NeedString(column, "column");
    if (st.ok()) st = NeedString(member, "member");
    if (st.ok()) t->batch.AddMember(table, id, column, member);
    return st;
  });
}

bool fs_txn_remove_member(fs_txn* t, const char* table, const char* id, const char* column, const char* member,
                          fs_error* err) {
  return TxnOp(t, err, table, id, [&] {
    Status st = NeedString(column, "column");
    if (st.ok()) st = NeedString(member, "member");
    if (st.ok()) t->batch.RemoveMember(table, id, column, member);
    return st;
  });
}

bool fs_txn_commit(fs_txn* t, fs_error* err) {
  std::unique_ptr<fs_txn> owned(t);
  return Guarded(err, [&] {
    Status st = t ? NeedReplica(t->replica) : Status::InvalidArgument("transaction handle is NULL");
    if (st.ok() && !t->failed.ok())
      st = Status(t->failed.code(), "an operation of this transaction was refused: " + t->failed.message());
    if (st.ok()) st = t->replica->impl->Apply(t->batch);
    return Report(err, st);
  });
}

void fs_txn_abort(fs_txn* t) { delete t; }

uint64_t fs_observer_add(fs_replica* r, fs_observer_fn fn, void* context, fs_error* err) {
  return Guarded(err, [&]() -> uint64_t {
    Status st = NeedReplica(r);
    if (st.ok() && !fn) st = Status::InvalidArgument("observer function is NULL");
    if (!Report(err, st)) return 0;
    Trampoline tr{fn, context};
    return r->impl->AddObserver([tr](const std::vector<fieldsync::ChangeEvent>& events) {
      try {
        json arr = json::array();
        for (const auto& e : events)
          arr.push_back({{"table", e.table}, {"id", e.id}, {"deleted", e.deleted}, {"remote", e.remote}});
        std::string s = arr.dump();
        tr.fn(tr.context, s.c_str(), s.size());
      } catch (...) {
        // An observer must never break the write or sync that triggered it.
      }
    });
  });
}

void fs_observer_remove(fs_replica* r, uint64_t token) {
  if (NeedReplica(r).ok()) r->impl->RemoveObserver(token);
}


bool fs_export_outbox(fs_replica* r, const char* path, int64_t* count, fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedReplica(r);
    if (st.ok()) st = NeedString(path, "path");
    int64_t n = 0;
    if (st.ok()) st = r->impl->ExportOutbox(path, &n);
    if (st.ok() && count) *count = n;
    return Report(err, st);
  });
}

bool fs_sign_out(fs_replica* r, bool force, fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedReplica(r);
    if (st.ok()) st = r->impl->SignOut(force);
    if (st.ok()) {
      std::lock_guard<std::mutex> lock(r->creds_mu);
      r->token.clear();
    }
    return Report(err, st);
  });
}

bool fs_replica_delete(const char* path, const char* schema_json, size_t schema_len, bool force, fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedString(path, "path");
    if (st.ok()) st = NeedString(schema_json, "schema");
    fieldsync::Schema schema;
    if (st.ok()) st = fieldsync::Schema::ParseText(Text(schema_json, schema_len), &schema);
    if (st.ok()) st = fieldsync::Replica::DeleteFile(path, schema, force);
    return Report(err, st);
  });
}

bool fs_set_credentials(fs_replica* r, const char* token, const char* tls_ca_file, fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedReplica(r);
    if (st.ok()) {
      std::lock_guard<std::mutex> lock(r->creds_mu);
      r->token = token ? token : "";
      r->tls_ca_file = tls_ca_file ? tls_ca_file : "";
    }
    return Report(err, st);
  });
}

bool fs_sync_once(fs_replica* r, const char* url, fs_sync_report* report, fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedReplica(r);
    if (st.ok()) st = NeedString(url, "url");
    fieldsync::SyncReport rep;
    if (st.ok()) st = r->impl->Sync(Options(r, url), &rep);
    if (report) *report = {rep.pushed, rep.rejected, rep.restamped, rep.pulled, rep.bytes_sent, rep.bytes_received,
                           rep.cursor};
    return Report(err, st);
  });
}

bool fs_sync_start(fs_replica* r, const char* url, fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedReplica(r);
    if (st.ok()) st = NeedString(url, "url");
    if (st.ok()) st = r->impl->StartBackgroundSync(Options(r, url));
    return Report(err, st);
  });
}

void fs_sync_stop(fs_replica* r) {
  try {
    if (NeedReplica(r).ok()) r->impl->StopBackgroundSync();
  } catch (...) {
  }
}

char* fs_sync_status(fs_replica* r, fs_error* err) {
  return Guarded(err, [&]() -> char* {
    if (!Report(err, NeedReplica(r))) return nullptr;
    fieldsync::SyncStatus s = r->impl->GetSyncStatus();
    json j = {{"state", fieldsync::SyncStateName(s.state)},
              {"reason", s.reason},
              {"pending", s.pending},
              {"cursor", s.cursor},
              {"last_sync_ms", s.last_sync_ms},
              {"last_error", s.last_error},
              {"progress_rows", s.progress_rows},
              {"progress_total_rows", s.progress_total_rows},
              {"progress_bytes", s.progress_bytes},
              {"attempts", s.attempts}};
    return Dup(j.dump());
  });
}

void fs_app_background(fs_replica* r) {
  if (NeedReplica(r).ok()) r->impl->SetForeground(false);
}

void fs_app_foreground(fs_replica* r) {
  if (NeedReplica(r).ok()) r->impl->SetForeground(true);
}

void fs_network_changed(fs_replica* r, bool available) {
  if (NeedReplica(r).ok()) r->impl->SetNetworkAvailable(available);
}

char* fs_conflicts(fs_replica* r, bool include_resolved, fs_error* err) {
  return Guarded(err, [&]() -> char* {
    Status st = NeedReplica(r);
    std::vector<fieldsync::Conflict> cs;
    if (st.ok()) st = r->impl->Conflicts(include_resolved, &cs);
    if (!Report(err, st)) return nullptr;
    json arr = json::array();
    for (const auto& c : cs)
      arr.push_back({{"id", c.id},           {"table", c.table},         {"row", c.row},
                     {"column", c.column},   {"kind", c.kind},           {"lost_value", c.lost_value},
                     {"lost_node", c.lost_node}, {"lost_time_ms", c.lost_time_ms}, {"won_value", c.won_value},
                     {"won_node", c.won_node}, {"won_time_ms", c.won_time_ms}, {"resolved", c.resolved}});
    return Dup(arr.dump());
  });
}

bool fs_conflict_restore(fs_replica* r, int64_t id, char** new_id, fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedReplica(r);
    std::string fresh;
    if (st.ok()) st = r->impl->RestoreConflict(id, &fresh);
    if (new_id) *new_id = st.ok() && !fresh.empty() ? Dup(fresh) : nullptr;
    return Report(err, st);
  });
}

bool fs_conflict_dismiss(fs_replica* r, int64_t id, fs_error* err) {
  return Guarded(err, [&] {
    Status st = NeedReplica(r);
    if (st.ok()) st = r->impl->DismissConflict(id);
    return Report(err, st);
  });
}

char* fs_rejections(fs_replica* r, fs_error* err) {
  return Guarded(err, [&]() -> char* {
    Status st = NeedReplica(r);
    std::vector<fieldsync::store::Rejection> rej;
    if (st.ok()) st = r->impl->Rejections(&rej);
    if (!Report(err, st)) return nullptr;
    json arr = json::array();
    for (const auto& x : rej)
      arr.push_back({{"id", x.id}, {"code", x.code}, {"message", x.message}, {"change", fieldsync::ChangeToJson(x.change)}});
    return Dup(arr.dump());
  });
}

}  // extern "C"
