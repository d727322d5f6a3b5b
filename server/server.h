// The FieldSync server: a Boost.Beast WebSocket server over the embedded
// SQLite ServerStore. One Session per connection (server/session.h), each on
// its own strand; a pool of io threads; one Hub that owns the store and fans
// new changes out to live subscribers.
//
// Threading: the store is a single SQLite connection guarded by the Hub's
// mutex. Store calls are short (one bounded batch), so sessions call it from
// their strand; everything else is asynchronous.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>

#include "store/server_store.h"
#include "sync/protocol.h"

namespace fieldsync::server {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;            // 0: an ephemeral port, see Server::port()
  std::string data_dir = "data";
  int threads = 2;
  Limits limits;
  size_t max_connections = 20000;
  int handshake_timeout_ms = 10000;  // WebSocket upgrade + hello
  int idle_timeout_ms = 120000;      // no frame (pings count) for this long
  size_t max_errors_per_session = 16;  // bad frames tolerated before closing
  bool handle_signals = false;  // stop cleanly on SIGINT/SIGTERM
  bool log = true;              // one line per event on stderr
};

class Session;

// Shared state of all sessions: the store, the clock, the subscriber list.
class Hub {
 public:
  Hub(const ServerOptions& opts, const Schema& schema);
  Status Open();

  const ServerOptions& options() const { return opts_; }
  const Schema& schema() const { return schema_; }
  NodeId server_node() const { return node_; }

  // Store access, serialized.
  Status Push(const std::vector<Change>& changes, std::vector<store::PushResult>* results,
              std::vector<Change>* applied);
  // A central write by the server's own node (see ServerStore::WriteRows);
  // live subscribers are told.
  Status WriteRows(const std::vector<json>& rows, std::vector<Change>* applied);
  // The canonical dump of the server's rows (Store::Dump).
  Status Dump(const std::function<void(const json&)>& emit);
  Status ReadLog(int64_t after, size_t limit, NodeId exclude, std::vector<Change>* out, int64_t* scanned_to);
  int64_t head() const { return head_.load(); }
  uint64_t NowMs();

  // Live subscribers are poked (on their strand) after every commit.
  void Subscribe(const std::shared_ptr<Session>& s);
  void Unsubscribe(Session* s);
  void NotifyAll(Session* except);

  bool AdmitConnection();
  void ReleaseConnection();
  void Log(const std::string& line);

 private:
  ServerOptions opts_;
  Schema schema_;
  NodeId node_ = 0;
  std::mutex store_mu_;
  store::ServerStore store_;
  HybridClock clock_;
  std::atomic<int64_t> head_{0};
  std::mutex subs_mu_;
  std::vector<std::weak_ptr<Session>> subs_;
  std::atomic<size_t> connections_{0};
  std::mutex log_mu_;
};

class Server {
 public:
  Server(ServerOptions opts, Schema schema);
  ~Server();

  // Opens the store under data_dir, binds, and starts the io threads.
  Status Start();
  uint16_t port() const { return port_; }
  // Stops accepting, closes every session, joins the threads. Idempotent.
  void Stop();
  // Blocks until Stop() or RequestStop() (or a signal, with handle_signals);
  // then the server is stopped and its threads joined when Wait returns.
  void Wait();
  // Asks the thread in Wait() to stop the server (any thread, signal-safe
  // as an io handler: it only sets a flag).
  void RequestStop();
  Hub& hub() { return *hub_; }

 private:
  void Accept();
  void JoinThreads();

  ServerOptions opts_;
  std::unique_ptr<Hub> hub_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::vector<std::thread> threads_;
  std::mutex sessions_mu_;
  std::vector<std::weak_ptr<Session>> sessions_;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::mutex wait_mu_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_requested_ = false;
};

}  // namespace fieldsync::server
