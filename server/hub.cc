#include "server/hub.h"

#include <filesystem>
#include <iostream>

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
                      std::vector<RowState>* out, bool* more) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.store().ReadState(after_table, after_row, max_rows, out, more);
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
                 std::vector<Change>* applied) {
  std::lock_guard<std::mutex> lock(store_mu_);
  Status st = store_.ApplyBatch(changes, NowMs(), &clock_, results, applied);
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

Status Hub::Dump(const std::function<void(const json&)>& emit) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.store().Dump(emit);
}

Status Hub::ReadLog(int64_t after, size_t limit, NodeId exclude, std::vector<Change>* out, int64_t* scanned_to) {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_.ReadLog(after, limit, exclude, out, scanned_to);
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
