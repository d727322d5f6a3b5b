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
