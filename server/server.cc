#include "server/server.h"

#include "server/session.h"

namespace fieldsync::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

Server::Server(ServerOptions opts, Schema schema)
    : opts_(std::move(opts)), hub_(std::make_unique<Hub>(opts_, schema)), acceptor_(net::make_strand(ioc_)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  Status st = hub_->Open();
  if (!st.ok()) return st;
  if (!opts_.tls_cert_file.empty() || !opts_.tls_key_file.empty()) {
    if (opts_.tls_cert_file.empty() || opts_.tls_key_file.empty())
      return Status::InvalidArgument("TLS needs both a certificate and a key file");
    tls_ = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    tls_->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                      net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    tls_->use_certificate_chain_file(opts_.tls_cert_file, ec);
    if (ec) return Status::IoError("TLS certificate " + opts_.tls_cert_file + ": " + ec.message());
    tls_->use_private_key_file(opts_.tls_key_file, net::ssl::context::pem, ec);
    if (ec) return Status::IoError("TLS key " + opts_.tls_key_file + ": " + ec.message());
  }
  if (!hub_->auth_enabled())
    hub_->Log("WARNING: no auth_key: development mode, every device reads and writes every row");
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
  if (opts_.compact_interval_ms > 0) {
    compact_timer_ = std::make_unique<net::steady_timer>(acceptor_.get_executor());
    ScheduleCompaction();
  }
  for (int i = 0; i < std::max(1, opts_.threads); ++i) threads_.emplace_back([this] { ioc_.run(); });
  hub_->Log(std::string("listening on ") + (tls_ ? "wss://" : "ws://") + opts_.address + ":" + std::to_string(port_) + ", data in " + opts_.data_dir);
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
      // Replies are small and often come two at once (an ack, then live
      // changes; pipelined acks): without this, Nagle's algorithm holds the
      // second until the peer's delayed ACK, tens of milliseconds.
      boost::system::error_code ignore;
      socket.set_option(tcp::no_delay(true), ignore);
      static std::atomic<uint64_t> next_id{1};
      auto s = MakeSession(std::move(socket), *hub_, next_id++, tls_.get());
      {
        std::lock_guard<std::mutex> lock(sessions_mu_);
        std::erase_if(sessions_, [](const std::weak_ptr<SessionHandle>& w) { return w.expired(); });
        sessions_.push_back(s);
      }
      s->Run();
    }
    Accept();
  });
}

void Server::ScheduleCompaction() {
  compact_timer_->expires_after(std::chrono::milliseconds(opts_.compact_interval_ms));
  compact_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    int64_t horizon = 0, removed = 0;
    Status st = hub_->Compact(&horizon, &removed);
    if (!st.ok()) hub_->Log("compaction failed: " + st.ToString());
    else if (removed) hub_->Log("compacted " + std::to_string(removed) + " log entries through " + std::to_string(horizon));
    ScheduleCompaction();
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
    if (compact_timer_) compact_timer_->cancel();
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
  // Device progress lives in memory between compactions; keep it.
  if (Status st = hub_->SaveDevices(); !st.ok()) hub_->Log("saving device cursors failed: " + st.ToString());
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
