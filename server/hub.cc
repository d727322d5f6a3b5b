#include "server/hub.h"

#include <filesystem>
#include <iostream>

#include "server/auth_token.h"

namespace fieldsync::server {

Hub::Hub(const ServerOptions& opts, const Schema& schema)
    : opts_(opts), schema_(schema), clock_(0) {}

Status Hub::Open() {
  std::error_code ec;
  std::filesystem::create_directories(opts_.data_dir, ec);
  if (ec) return Status::IoError("cannot create data directory " + opts_.data_dir + ": " + ec.message());
  Status st = store_.Open(opts_.data_dir + "/server.db", schema_, opts_.node);
  if (!st.ok()) return st;
  if (opts_.fault_hook) store_.store().db().SetFaultHook(opts_.fault_hook);
  // The server's node id survives restarts like a replica's.
  node_ = store_.node();
  clock_ = HybridClock(node_, opts_.clock ? opts_.clock : HybridClock::PhysicalSource(SystemMillis));
  Hlc last = 0;
  if (!(st = store_.MaxHlc(&last)).ok()) return st;
  clock_.Restore(last);
  int64_t head = 0;
  if (!(st = store_.Head(&head)).ok()) return st;
  head_ = head;
  int64_t compacted = 0;
  if (!(st = store_.CompactedThrough(&compacted)).ok()) return st;
  compacted_ = compacted;
  return Status::OK();
}

Status Hub::ReadState(const std::string& after_table, const std::string& after_row, size_t max_rows,
                      std::vector<RowState>* out, bool* more, const store::Scope* scope,
                      const std::string& rows_json) {
  std::lock_guard<std::mutex> lock(store_mu_);
  // An empty scope still filters: "[]" matches no row.
  std::string keys = scope && !scope->all ? scope->KeysJson() : std::string();
  return store_.store().ReadState(after_table, after_row, max_rows, out, more, keys, rows_json);
}

Status Hub::Authenticate(const std::string& token, store::Actor* actor) {
  TokenClaims c;
  Status st = VerifyToken(opts_.auth_key, token, NowMs() / 1000, &c);
  if (!st.ok()) return st;
  std::lock_guard<std::mutex> lock(store_mu_);
  bool revoked = false;
  if (!(st = store_.IsRevoked("device", c.device, &revoked)).ok()) return st;
  if (revoked) return Status(Code::kUnauthenticated, "device '" + c.device + "' is revoked");
  if (!(st = store_.IsRevoked("token", c.id, &revoked)).ok()) return st;
  if (revoked) return Status(Code::kUnauthenticated, "token " + c.id + " is revoked");
  bool found = false;
  if (!(st = store_.GetUser(c.user, &actor->user, &found)).ok()) return st;
  if (!found || !actor->user.active) return Status(Code::kUnauthenticated, "user '" + c.user + "' is unknown or deactivated");
  actor->device = c.device;
  return Status::OK();
}

Status Hub::IssueToken(const std::string& user, const std::string& device, uint64_t ttl_s, std::string* token) {
  if (!auth_enabled()) return Status::InvalidArgument("this server has no signing key (auth_key)");
  store::User u;
  bool found = false;
  Status st = GetUser(user, &u, &found);
  if (!st.ok()) return st;
  if (!found || !u.active) return Status::NotFound("no active user '" + user + "'");
  if (device.empty() || device.size() > 128) return Status::InvalidArgument("a device id is 1 to 128 bytes");
  TokenClaims c;
  c.user = user;
  c.device = device;
  c.issued_s = NowMs() / 1000;
  c.expires_s = c.issued_s + ttl_s;
  return server::IssueToken(opts_.auth_key, c, token);
}

Status Hub::ImportOutbox(const std::string& text, const store::Actor* actor, store::ServerStore::ImportReport* report) {
  Status st;
  {
    std::lock_guard<std::mutex> lock(store_mu_);
    st = store_.ImportOutbox(text, actor, NowMs(), &clock_, report);
    if (st.ok() && !report->changes.empty()) head_ = report->changes.back().seq;
  }
  if (st.ok() && !report->changes.empty()) NotifyAll(nullptr);
  return st;
}

Status Hub::FirstKeys(const store::Scope& scope, const std::string& today, std::vector<std::string>* keys) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.FirstKeys(scope, today, opts_.limits.max_scope_keys, keys);
}

Status Hub::CountRows(const store::Scope& scope, int64_t* n) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.CountRows(scope, n);
}

Status Hub::PutUser(const store::User& u) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.PutUser(u);
}

Status Hub::GetUser(const std::string& id, store::User* u, bool* found) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.GetUser(id, u, found);
}

Status Hub::ListUsers(std::vector<store::User>* out) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.ListUsers(out);
}

Status Hub::Revoke(const std::string& kind, const std::string& value) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.Revoke(kind, value, NowMs());
}

Status Hub::DeviceKeys(NodeId node, const std::string& user, std::vector<std::string>* keys) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.DeviceKeys(node, user, keys);
}

Status Hub::UpdateDeviceKeys(NodeId node, const std::string& user, const std::vector<std::string>& add,
                             const std::vector<std::string>& remove, bool replace) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.UpdateDeviceKeys(node, user, add, remove, replace);
}

Status Hub::ComputeScope(const store::Actor& actor, store::Scope* out) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.ComputeScope(actor, out);
}

Status Hub::NoteDevice(NodeId node, int64_t cursor, bool first_contact) {
  std::lock_guard<std::mutex> lock(store_mu_);
  uint64_t now = NowMs();
  bool known = devices_.count(node) > 0;
  auto& d = devices_[node];
  d.cursor = std::max(d.cursor, cursor);
  d.seen_ms = std::max(d.seen_ms, now);
  return first_contact && !known ? store_.RegisterDevice(node, cursor, now) : Status::OK();
}

Status Hub::SaveDevices() {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.RecordDevices(devices_);
}

Status Hub::Compact(int64_t* horizon, int64_t* removed) {
  std::lock_guard<std::mutex> lock(store_mu_);
  int64_t h = 0, n = 0;
  Status st = store_.RecordDevices(devices_);
  if (st.ok()) st = store_.Horizon(NowMs(), opts_.device_retention_ms, &h);
  if (st.ok()) st = store_.Compact(h, &n);
  int64_t done = 0;
  if (st.ok()) st = store_.CompactedThrough(&done);
  if (!st.ok()) return st;
  compacted_ = done;
  if (horizon) *horizon = h;
  if (removed) *removed = n;
  return Status::OK();
}

uint64_t Hub::NowMs() { return opts_.clock ? opts_.clock() : SystemMillis(); }

Status Hub::Push(const std::vector<Change>& changes, std::vector<store::PushResult>* results,
                 std::vector<Change>* applied, const store::Actor* actor) {
  std::lock_guard<std::mutex> lock(store_mu_);
  Status st = store_.ApplyBatch(changes, NowMs(), &clock_, results, applied, store::Writer::kDevice, actor);
  if (st.ok() && !applied->empty()) head_ = applied->back().seq;
  return st;
}

Status Hub::WriteRows(const std::vector<json>& rows, std::vector<Change>* applied) {
  Status st;
  {
    std::lock_guard<std::mutex> lock(store_mu_);
    st = store_.WriteRows(rows, NowMs(), &clock_, applied);
    if (st.ok() && !applied->empty()) head_ = applied->back().seq;
  }
  if (st.ok() && !applied->empty()) NotifyAll(nullptr);
  return st;
}

Status Hub::WriteAs(const store::Actor& actor, const std::vector<json>& rows, std::vector<Change>* applied) {
  Status st;
  {
    std::lock_guard<std::mutex> lock(store_mu_);
    st = store_.WriteAs(actor, rows, NowMs(), &clock_, applied);
    if (st.ok() && !applied->empty()) head_ = applied->back().seq;
  }
  if (st.ok() && !applied->empty()) NotifyAll(nullptr);
  return st;
}

Status Hub::WithStore(const std::function<Status(store::ServerStore&)>& f) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return f(store_);
}

Status Hub::RevisionDiff(const std::string& table, const std::string& row, json* out) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.RevisionDiff(table, row, out);
}

void Hub::NoteDeviceUser(NodeId node, const store::Actor* actor, int64_t pending) {
  std::lock_guard<std::mutex> lock(store_mu_);
  DeviceInfo& d = device_info_[node];
  if (actor) {
    d.user = actor->user.id;
    d.device = actor->device;
  }
  d.pending = pending;
}

void Hub::NotePushed(NodeId node, int64_t changes) {
  std::lock_guard<std::mutex> lock(store_mu_);
  auto it = device_info_.find(node);
  if (it != device_info_.end() && it->second.pending >= 0)
    it->second.pending = std::max<int64_t>(0, it->second.pending - changes);
}

Status Hub::Devices(std::vector<DeviceStatus>* out) {
  out->clear();
  std::lock_guard<std::mutex> lock(store_mu_);
  std::map<NodeId, store::ServerStore::DeviceCursor> all;
  Status st = store_.ListDevices(&all);
  if (!st.ok()) return st;
  for (const auto& [node, d] : devices_) {
    auto& a = all[node];
    a.cursor = std::max(a.cursor, d.cursor);
    a.seen_ms = std::max(a.seen_ms, d.seen_ms);
  }
  for (const auto& [node, d] : all) {
    DeviceStatus s;
    s.node = node;
    s.cursor = d.cursor;
    s.seen_ms = d.seen_ms;
    if (auto it = device_info_.find(node); it != device_info_.end()) {
      s.user = it->second.user;
      s.device = it->second.device;
      s.pending = it->second.pending;
    }
    out->push_back(std::move(s));
  }
  return Status::OK();
}

Status Hub::Dump(const std::function<void(const json&)>& emit) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.store().Dump(emit);
}

Status Hub::ReadLog(int64_t after, size_t limit, NodeId exclude, std::vector<Change>* out, int64_t* scanned_to,
                    const store::Scope* scope) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.ReadLog(after, limit, exclude, out, scanned_to, scope);
}

void Hub::Subscribe(const std::shared_ptr<Subscriber>& s) {
  std::lock_guard<std::mutex> lock(subs_mu_);
  for (auto& w : subs_)
    if (w.lock() == s) return;
  subs_.push_back(s);
}

void Hub::Unsubscribe(Subscriber* s) {
  std::lock_guard<std::mutex> lock(subs_mu_);
  std::erase_if(subs_, [s](const std::weak_ptr<Subscriber>& w) {
    auto p = w.lock();
    return !p || p.get() == s;
  });
}

void Hub::NotifyAll(Subscriber* except) {
  std::vector<std::shared_ptr<Subscriber>> live;
  {
    std::lock_guard<std::mutex> lock(subs_mu_);
    for (auto& w : subs_)
      if (auto p = w.lock(); p && p.get() != except) live.push_back(std::move(p));
  }
  for (auto& s : live) s->Poke();
}

bool Hub::AdmitConnection() {
  size_t n = connections_.fetch_add(1) + 1;
  if (n > opts_.max_connections) {
    connections_.fetch_sub(1);
    return false;
  }
  return true;
}

void Hub::ReleaseConnection() { connections_.fetch_sub(1); }

void Hub::Log(const std::string& line) {
  if (!opts_.log) return;
  std::lock_guard<std::mutex> lock(log_mu_);
  std::cerr << "[server] " << line << "\n";
}

}  // namespace fieldsync::server
