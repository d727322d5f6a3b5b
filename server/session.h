// One connection: the Beast plumbing around a Conversation (the protocol
// logic, conversation.h). TLS handshake (wss://), the HTTP upgrade request
// and its token check, reads, a write queue, timers. Every handler runs on
// the session's strand, so its members need no locks; the Hub is the only
// shared state. One template for both streams, as in Beast's
// advanced_server_flex example: plain TCP and TLS over TCP.
#pragma once

#include <array>
#include <deque>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "server/conversation.h"
#include "server/server.h"

namespace fieldsync::server {

// What the server keeps of a session: a way to close it.
class SessionHandle {
 public:
  virtual ~SessionHandle() = default;
  virtual void Run() = 0;
  // Closes the connection (any thread).
  virtual void Shutdown() = 0;
};

template <class Stream>
class Session : public SessionHandle,
                public std::enable_shared_from_this<Session<Stream>>,
                public Subscriber,
                private Conversation::Link {
 public:
  using PlainStream = boost::beast::tcp_stream;
  using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  // Plain: no TLS context. TLS: the server's context.
  Session(boost::asio::ip::tcp::socket&& socket, Hub& hub, uint64_t id, boost::asio::ssl::context* tls);
  ~Session() override;
  void Run() override;
  // Asks the session to send live changes it has not sent yet (any thread).
  void Poke() override;
  void Shutdown() override;

 private:
  void ReadRequest();
  void OnRequest(boost::beast::error_code ec, std::size_t bytes);
  // Answers the upgrade request with an HTTP error and closes.
  void Refuse(boost::beast::http::status status, const Status& why);
  // A request for the admin API (admin_api.h): reads its body, answers, closes.
  void ReadAdminBody();
  void OnAdminRequest(boost::beast::error_code ec, std::size_t bytes);
  void SendResponse(boost::beast::http::response<boost::beast::http::string_body> res);
  // After a response: stops sending, reads and drops what the client still
  // sends (a body we refused unread) so it sees the response rather than a
  // reset, then closes. Bounded by bytes and by the connection's deadline.
  void Drain();
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

  boost::beast::websocket::stream<Stream> ws_;
  boost::beast::flat_buffer buffer_;
  std::unique_ptr<boost::beast::http::request_parser<boost::beast::http::empty_body>> parser_;
  std::unique_ptr<boost::beast::http::request_parser<boost::beast::http::string_body>> admin_parser_;
  std::unique_ptr<boost::beast::http::response<boost::beast::http::string_body>> refusal_;
  boost::asio::steady_timer hello_timer_;
  Hub& hub_;
  Conversation conv_;
  std::deque<std::pair<std::string, bool>> queue_;  // frame, text
  std::array<char, 4096> drain_buf_;
  size_t drained_ = 0;
  bool closing_ = false;
  bool upgraded_ = false;  // the WebSocket handshake completed: frames may be written
  uint16_t close_code_ = kClosePolicy;
  std::string close_reason_;  // sent once the queued frames are out
};

// Makes the session for an accepted socket: TLS when `tls` is set.
std::shared_ptr<SessionHandle> MakeSession(boost::asio::ip::tcp::socket&& socket, Hub& hub, uint64_t id,
                                           boost::asio::ssl::context* tls);

}  // namespace fieldsync::server
