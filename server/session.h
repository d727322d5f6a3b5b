// One WebSocket connection: the Beast plumbing around a Conversation (the
// protocol logic, conversation.h). Handshake, reads, a write queue, timers.
// Every handler runs on the session's strand, so its members need no locks;
// the Hub is the only shared state.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "server/conversation.h"
#include "server/server.h"

namespace fieldsync::server {

class Session : public std::enable_shared_from_this<Session>, public Subscriber, private Conversation::Link {
 public:
  Session(boost::asio::ip::tcp::socket&& socket, Hub& hub, uint64_t id);
  ~Session() override;

  void Run();
  // Asks the session to send live changes it has not sent yet (any thread).
  void Poke() override;
  // Closes the connection (any thread).
  void Shutdown();

 private:
  void OnAccept(boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, std::size_t bytes);
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, std::size_t bytes);
  void CloseSocket();

  // Conversation::Link
  void SendFrame(std::string frame, bool text) override;
  void CloseLink(uint16_t code, const std::string& reason) override;
  bool SendPending() const override { return !queue_.empty(); }
  void SubscribeLive() override;
  Subscriber* subscriber() override { return this; }

  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;
  boost::asio::steady_timer hello_timer_;
  Hub& hub_;
  Conversation conv_;
  std::deque<std::pair<std::string, bool>> queue_;  // frame, text
  bool closing_ = false;
  bool upgraded_ = false;  // the WebSocket handshake completed: frames may be written
  uint16_t close_code_ = kClosePolicy;
  std::string close_reason_;  // sent once the queued frames are out
};

}  // namespace fieldsync::server
