#include "server/session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

namespace fieldsync::server {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

Session::Session(net::ip::tcp::socket&& socket, Hub& hub, uint64_t id)
    : ws_(std::move(socket)), hello_timer_(ws_.get_executor()), hub_(hub), conv_(hub, this, id) {}

Session::~Session() {
  hub_.Unsubscribe(this);
  hub_.ReleaseConnection();
}

void Session::Run() {
  net::dispatch(ws_.get_executor(), [self = shared_from_this()] {
    const auto& o = self->hub_.options();
    websocket::stream_base::timeout t;
    t.handshake_timeout = std::chrono::milliseconds(o.handshake_timeout_ms);
    t.idle_timeout = std::chrono::milliseconds(o.idle_timeout_ms);
    t.keep_alive_pings = true;  // idle peers are pinged at half the timeout
    self->ws_.set_option(t);
    self->ws_.read_message_max(o.limits.max_frame_bytes);
    self->ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(beast::http::field::server, "fieldsync-server/1");
    }));
    // The hello must follow the upgrade within the handshake timeout.
    self->hello_timer_.expires_after(std::chrono::milliseconds(o.handshake_timeout_ms));
    self->hello_timer_.async_wait([w = std::weak_ptr<Session>(self)](beast::error_code ec) {
      auto s = w.lock();
      if (!ec && s && !s->conv_.hello_done()) {
        s->hub_.Log(s->conv_.Tag() + ": no hello within the handshake timeout, closing");
        s->conv_.Stop();
        s->CloseLink(kClosePolicy, "hello timeout");
      }
    });
    self->ws_.async_accept(beast::bind_front_handler(&Session::OnAccept, self));
  });
}

void Session::OnAccept(beast::error_code ec) {
  if (ec) {
    hub_.Log(conv_.Tag() + ": handshake failed: " + ec.message());
    return;
  }
  upgraded_ = true;
  DoRead();
}

void Session::DoRead() {
  ws_.async_read(buffer_, beast::bind_front_handler(&Session::OnRead, shared_from_this()));
}

void Session::OnRead(beast::error_code ec, std::size_t) {
  if (ec) {
    if (ec != websocket::error::closed && ec != net::error::operation_aborted)
      hub_.Log(conv_.Tag() + ": connection ended: " + ec.message());
    hello_timer_.cancel();
    hub_.Unsubscribe(this);
    return;
  }
  std::string frame = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  conv_.OnFrame(frame, ws_.got_text());
  if (conv_.hello_done()) hello_timer_.cancel();
  if (!closing_) DoRead();
}

void Session::Poke() {
  net::post(ws_.get_executor(), [self = shared_from_this()] { self->conv_.Pump(); });
}

void Session::SubscribeLive() { hub_.Subscribe(shared_from_this()); }

void Session::SendFrame(std::string frame, bool text) {
  if (closing_) return;
  queue_.emplace_back(std::move(frame), text);
  if (queue_.size() == 1) DoWrite();
}

void Session::DoWrite() {
  ws_.text(queue_.front().second);
  ws_.async_write(net::buffer(queue_.front().first), beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
}

void Session::OnWrite(beast::error_code ec, std::size_t) {
  if (ec) {
    queue_.clear();
    return;
  }
  queue_.pop_front();
  if (!queue_.empty()) {
    DoWrite();
  } else if (closing_) {
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(close_code_), close_reason_),
                    [self = shared_from_this()](beast::error_code) {});
  } else {
    conv_.Pump();
  }
}

void Session::CloseLink(uint16_t code, const std::string& reason) {
  if (closing_) return;
  closing_ = true;
  close_code_ = code;
  close_reason_ = reason;
  hub_.Unsubscribe(this);
  hello_timer_.cancel();
  // A peer that never got "101 Switching Protocols" must see the connection
  // end and nothing else: a WebSocket close frame on a plain HTTP connection
  // is garbage to it.
  if (!upgraded_) return CloseSocket();
  if (queue_.empty())
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason), [self = shared_from_this()](beast::error_code) {});
  // else: OnWrite closes once the queued frames (the error message) are out.
}

void Session::Shutdown() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    self->closing_ = true;
    self->conv_.Stop();
    self->hello_timer_.cancel();
    self->CloseSocket();
  });
}

void Session::CloseSocket() {
  beast::error_code ec;
  beast::get_lowest_layer(ws_).socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(ws_).close();
}

}  // namespace fieldsync::server
