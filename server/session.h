// One WebSocket connection: handshake, hello/welcome, then push, pull and
// subscribe requests (docs/protocol.md). Every handler runs on the session's
// strand, so its members need no locks; the Hub is the only shared state.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "server/server.h"

namespace fieldsync::server {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::ip::tcp::socket&& socket, Hub& hub, uint64_t id);
  ~Session();

  void Run();
  // Asks the session to send live changes it has not sent yet (any thread).
  void Poke();
  // Closes the connection (any thread).
  void Shutdown();

 private:
  void OnAccept(boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, std::size_t bytes);
  void Handle(const std::string& frame, bool text);
  void Dispatch(const json& m);
  void OnHello(const json& m);
  void OnPush(const json& m);
  void OnPull(const json& m);
  void OnSubscribe(const json& m);
  void Pump();
  void Send(const json& m);
  void SendError(const Status& st, bool fatal, const json& in_reply_to = nullptr);
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, std::size_t bytes);
  void Close(boost::beast::websocket::close_code code, const std::string& reason);
  std::string Tag() const;

  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;
  boost::asio::steady_timer hello_timer_;
  Hub& hub_;
  uint64_t id_;
  std::deque<std::string> queue_;
  bool text_mode_ = false;  // peer speaks plain JSON text frames
  bool hello_done_ = false;
  bool closing_ = false;
  std::string close_reason_;  // sent once the queued error message is out
  NodeId node_ = 0;
  Encoding encoding_ = Encoding::kJson;
  bool live_ = false;
  int64_t live_cursor_ = 0;
  size_t errors_ = 0;
};

}  // namespace fieldsync::server
