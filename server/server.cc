#include "server/server.h"

#include <filesystem>
#include <iostream>
#include <random>

#include "server/session.h"

namespace fieldsync::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

Hub::Hub(const ServerOptions& opts, const Schema& schema)
    : opts_(opts), schema_(schema), clock_(0) {}

Status Hub::Open() {
  std::error_code ec;
  std::filesystem::create_directories(opts_.data_dir, ec);
  if (ec) return Status::IoError("cannot create data directory " + opts_.data_dir + ": " + ec.message());
  Status st = store_.Open(opts_.data_dir + "/server.db", schema_);
  if (!st.ok()) return st;
  // The server's node id survives restarts like a replica's.
  node_ = store_.node();
  clock_ = HybridClock(node_);
  Hlc last = 0;
  if (!(st = store_.MaxHlc(&last)).ok()) return st;
  clock_.Restore(last);
  int64_t head = 0;
  if (!(st = store_.Head(&head)).ok()) return st;
  head_ = head;
  return Status::OK();
}

uint64_t Hub::NowMs() { return SystemMillis(); }

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

void Hub::Subscribe(const std::shared_ptr<Session>& s) {
  std::lock_guard<std::mutex> lock(subs_mu_);
  for (auto& w : subs_)
    if (w.lock() == s) return;
  subs_.push_back(s);
}

void Hub::Unsubscribe(Session* s) {
  std::lock_guard<std::mutex> lock(subs_mu_);
  std::erase_if(subs_, [s](const std::weak_ptr<Session>& w) {
    auto p = w.lock();
    return !p || p.get() == s;
  });
}

void Hub::NotifyAll(Session* except) {
  std::vector<std::shared_ptr<Session>> live;
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

Server::Server(ServerOptions opts, Schema schema)
    : opts_(std::move(opts)), hub_(std::make_unique<Hub>(opts_, schema)), acceptor_(net::make_strand(ioc_)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  Status st = hub_->Open();
  if (!st.ok()) return st;
  boost::system::error_code ec;
  auto addr = net::ip::make_address(opts_.address, ec);
  if (ec) return Status::InvalidArgument("bad address " + opts_.address);
  tcp::endpoint ep(addr, opts_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::IoError("cannot listen on " + opts_.address + ":" + std::to_string(opts_.port) + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  if (opts_.handle_signals) {
    signals_ = std::make_unique<net::signal_set>(ioc_, SIGINT, SIGTERM);
    signals_->async_wait([this](const boost::system::error_code& e, int sig) {
      if (e) return;
      hub_->Log("signal " + std::to_string(sig) + ", shutting down");
      // Not Stop() here: an io thread cannot join itself. Wait() does it.
      RequestStop();
    });
  }
  Accept();
  for (int i = 0; i < std::max(1, opts_.threads); ++i) threads_.emplace_back([this] { ioc_.run(); });
  hub_->Log("listening on ws://" + opts_.address + ":" + std::to_string(port_) + ", data in " + opts_.data_dir);
  return Status::OK();
}

void Server::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      hub_->Log("accept failed: " + ec.message());
    } else if (!hub_->AdmitConnection()) {
      hub_->Log("connection limit reached, refusing a connection");
      boost::system::error_code ignore;
      socket.close(ignore);
    } else {
      static std::atomic<uint64_t> next_id{1};
      auto s = std::make_shared<Session>(std::move(socket), *hub_, next_id++);
      {
        std::lock_guard<std::mutex> lock(sessions_mu_);
        std::erase_if(sessions_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions_.push_back(s);
      }
      s->Run();
    }
    Accept();
  });
}

void Server::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_requested_ = true;
  }
  stop_cv_.notify_all();
}

void Server::Stop() {
  if (stopped_.exchange(true)) {
    JoinThreads();
    return;
  }
  // The acceptor lives on its own strand: closing it must not race the
  // accept handler that re-arms it on an io thread.
  net::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
    if (signals_) signals_->cancel(ec);
  });
  {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    for (auto& w : sessions_)
      if (auto s = w.lock()) s->Shutdown();
  }
  // Sessions finish their current handler; acknowledged pushes are already
  // committed, so nothing is lost by stopping here.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ioc_.stop();
  JoinThreads();
  RequestStop();  // wakes Wait()
}

void Server::Wait() {
  {
    std::unique_lock<std::mutex> lock(stop_mu_);
    stop_cv_.wait(lock, [this] { return stop_requested_; });
  }
  Stop();  // on the waiting thread: stops and joins, whoever asked
}

void Server::JoinThreads() {
  std::lock_guard<std::mutex> lock(wait_mu_);
  for (auto& t : threads_)
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
}

}  // namespace fieldsync::server
