// The FieldSync server: a Boost.Beast WebSocket server over the embedded
// SQLite ServerStore. One Session per connection (server/session.h), each on
// its own strand; a pool of io threads; one Hub (server/hub.h) that owns the
// store and fans new changes out to live subscribers.
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
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "server/hub.h"

namespace fieldsync::server {

class SessionHandle;

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
  void ScheduleCompaction();
  void JoinThreads();

  ServerOptions opts_;
  std::unique_ptr<Hub> hub_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // set: wss:// only
  std::unique_ptr<boost::asio::steady_timer> compact_timer_;  // on the acceptor's strand
  std::vector<std::thread> threads_;
  std::mutex sessions_mu_;
  std::vector<std::weak_ptr<SessionHandle>> sessions_;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::mutex wait_mu_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_requested_ = false;
};

}  // namespace fieldsync::server
