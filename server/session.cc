#include "server/session.h"

#include "server/admin_api.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

namespace fieldsync::server {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;

using PlainSession = Session<beast::tcp_stream>;
using TlsSession = Session<beast::ssl_stream<beast::tcp_stream>>;

template <>
PlainSession::Session(net::ip::tcp::socket&& socket, Hub& hub, uint64_t id, ssl::context*)
    : ws_(std::move(socket)), hello_timer_(ws_.get_executor()), hub_(hub), conv_(hub, this, id) {}

template <>
TlsSession::Session(net::ip::tcp::socket&& socket, Hub& hub, uint64_t id, ssl::context* tls)
    : ws_(std::move(socket), *tls), hello_timer_(ws_.get_executor()), hub_(hub), conv_(hub, this, id) {}

template <class Stream>
Session<Stream>::~Session() {
  hub_.Unsubscribe(this);
  hub_.ReleaseConnection();
}

template <class Stream>
void Session<Stream>::Run() {
  net::dispatch(ws_.get_executor(), [self = this->shared_from_this()] {
    const auto& o = self->hub_.options();
    // TLS, the upgrade request and the hello must all come within the
    // handshake timeout.
    self->hello_timer_.expires_after(std::chrono::milliseconds(o.handshake_timeout_ms));
    self->hello_timer_.async_wait([w = std::weak_ptr<Session>(self)](beast::error_code ec) {
      auto s = w.lock();
      if (!ec && s && !s->conv_.hello_done()) {
        s->hub_.Log(s->conv_.Tag() + ": no hello within the handshake timeout, closing");
        s->conv_.Stop();
        s->CloseLink(kClosePolicy, "hello timeout");
      }
    });
    beast::get_lowest_layer(self->ws_).expires_after(std::chrono::milliseconds(o.handshake_timeout_ms));
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      self->ReadRequest();
    } else {
      self->ws_.next_layer().async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
        if (ec) {
          self->hub_.Log(self->conv_.Tag() + ": TLS handshake failed: " + ec.message());
          self->hello_timer_.cancel();
          return;
        }
        self->ReadRequest();
      });
    }
  });
}

template <class Stream>
void Session<Stream>::ReadRequest() {
  parser_ = std::make_unique<http::request_parser<http::empty_body>>();
  parser_->header_limit(8 * 1024);  // a token and a few headers; nothing more is needed
  parser_->body_limit(kAdminMaxBodyBytes);  // checked against Content-Length with the header
  // The header only: an upgrade has no body, an admin request's body is
  // read by ReadAdminBody under its own limit.
  http::async_read_header(ws_.next_layer(), buffer_, *parser_,
                          beast::bind_front_handler(&Session::OnRequest, this->shared_from_this()));
}

template <class Stream>
void Session<Stream>::OnRequest(beast::error_code ec, std::size_t) {
  if (ec == http::error::body_limit) {
    hello_timer_.cancel();
    Refuse(http::status::payload_too_large,
           Status::Limit("request body over " + std::to_string(kAdminMaxBodyBytes) + " bytes"));
    return;
  }
  if (ec) {
    hub_.Log(conv_.Tag() + ": bad HTTP request: " + ec.message());
    hello_timer_.cancel();
    if (ec != http::error::end_of_stream) Refuse(http::status::bad_request, Status::Protocol(ec.message()));
    return;
  }
  const auto& req = parser_->get();
  if (!websocket::is_upgrade(req)) {
    if (req.target().starts_with(kAdminPrefix)) {
      ReadAdminBody();
      return;
    }
    Refuse(http::status::upgrade_required,
           Status::Protocol("this endpoint speaks WebSocket, and the admin API under /api/"));
    return;
  }
  if (hub_.auth_enabled()) {
    std::string auth(req[http::field::authorization]);
    std::string token;
    if (auth.size() > 7 && (auth.rfind("Bearer ", 0) == 0 || auth.rfind("bearer ", 0) == 0)) token = auth.substr(7);
    store::Actor actor;
    Status st = token.empty() ? Status(Code::kUnauthenticated, "token missing: send Authorization: Bearer <token>")
                              : hub_.Authenticate(token, &actor);
    if (!st.ok()) {
      hub_.Log(conv_.Tag() + ": refused: " + st.ToString());
      Refuse(st.code() == Code::kIoError ? http::status::service_unavailable : http::status::unauthorized, st);
      return;
    }
    hub_.Log(conv_.Tag() + ": user " + actor.user.id + " (" + store::RoleName(actor.user.role) + ") device " +
             actor.device);
    conv_.SetActor(std::move(actor));
  }
  const auto& o = hub_.options();
  beast::get_lowest_layer(ws_).expires_never();  // the WebSocket keeps its own timeouts
  websocket::stream_base::timeout t;
  t.handshake_timeout = std::chrono::milliseconds(o.handshake_timeout_ms);
  t.idle_timeout = std::chrono::milliseconds(o.idle_timeout_ms);
  t.keep_alive_pings = true;  // idle peers are pinged at half the timeout
  ws_.set_option(t);
  ws_.read_message_max(o.limits.max_frame_bytes);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(http::field::server, "fieldsync-server/1");
  }));
  buffer_.consume(buffer_.size());
  ws_.async_accept(parser_->release(), beast::bind_front_handler(&Session::OnAccept, this->shared_from_this()));
  parser_.reset();
}

template <class Stream>
void Session<Stream>::ReadAdminBody() {
  admin_parser_ = std::make_unique<http::request_parser<http::string_body>>(std::move(*parser_));
  parser_.reset();
  admin_parser_->body_limit(kAdminMaxBodyBytes);
  http::async_read(ws_.next_layer(), buffer_, *admin_parser_,
                   beast::bind_front_handler(&Session::OnAdminRequest, this->shared_from_this()));
}

template <class Stream>
void Session<Stream>::OnAdminRequest(beast::error_code ec, std::size_t) {
  if (ec == http::error::body_limit) {
    Refuse(http::status::payload_too_large,
           Status::Limit("request body over " + std::to_string(kAdminMaxBodyBytes) + " bytes"));
    return;
  }
  if (ec) {
    hub_.Log(conv_.Tag() + ": bad admin request: " + ec.message());
    Refuse(http::status::bad_request, Status::Protocol(ec.message()));
    return;
  }
  AdminRequest req = admin_parser_->release();
  admin_parser_.reset();
  AdminResponse res = AdminApi(hub_).Handle(req);
  hub_.Log(conv_.Tag() + ": admin " + std::string(req.method_string()) + " " +
           std::string(req.target().substr(0, 128)) + " -> " + std::to_string(res.result_int()));
  SendResponse(std::move(res));
}

template <class Stream>
void Session<Stream>::SendResponse(http::response<http::string_body> res) {
  closing_ = true;
  conv_.Stop();
  hello_timer_.cancel();
  refusal_ = std::make_unique<http::response<http::string_body>>(std::move(res));
  http::async_write(ws_.next_layer(), *refusal_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) return self->CloseSocket();
    beast::error_code ignored;
    beast::get_lowest_layer(self->ws_).socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    self->Drain();
  });
}

template <class Stream>
void Session<Stream>::Drain() {
  beast::get_lowest_layer(ws_).async_read_some(
      net::buffer(drain_buf_), [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
        self->drained_ += n;
        if (ec || self->drained_ > (1u << 20)) return self->CloseSocket();
        self->Drain();
      });
}

template <class Stream>
void Session<Stream>::Refuse(http::status status, const Status& why) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::server, "fieldsync-server/1");
  res.set(http::field::content_type, "application/json");
  if (status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer error=\"invalid_token\"");
  res.keep_alive(false);
  res.body() = json{{"type", "error"}, {"code", CodeName(why.code())}, {"message", why.message()}}.dump();
  res.prepare_payload();
  SendResponse(std::move(res));
}

template <class Stream>
void Session<Stream>::OnAccept(beast::error_code ec) {
  if (ec) {
    hub_.Log(conv_.Tag() + ": handshake failed: " + ec.message());
    return;
  }
  upgraded_ = true;
  DoRead();
}

template <class Stream>
void Session<Stream>::DoRead() {
  ws_.async_read(buffer_, beast::bind_front_handler(&Session::OnRead, this->shared_from_this()));
}

template <class Stream>
void Session<Stream>::OnRead(beast::error_code ec, std::size_t) {
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

template <class Stream>
void Session<Stream>::Poke() {
  net::post(ws_.get_executor(), [self = this->shared_from_this()] { self->conv_.Pump(); });
}

template <class Stream>
void Session<Stream>::SubscribeLive() { hub_.Subscribe(this->shared_from_this()); }

template <class Stream>
void Session<Stream>::SendFrame(std::string frame, bool text) {
  if (closing_) return;
  queue_.emplace_back(std::move(frame), text);
  if (queue_.size() == 1) DoWrite();
}

template <class Stream>
void Session<Stream>::DoWrite() {
  ws_.text(queue_.front().second);
  ws_.async_write(net::buffer(queue_.front().first), beast::bind_front_handler(&Session::OnWrite, this->shared_from_this()));
}

template <class Stream>
void Session<Stream>::OnWrite(beast::error_code ec, std::size_t) {
  if (ec) {
    queue_.clear();
    return;
  }
  queue_.pop_front();
  if (!queue_.empty()) {
    DoWrite();
  } else if (closing_) {
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(close_code_), close_reason_),
                    [self = this->shared_from_this()](beast::error_code) {});
  } else {
    conv_.Pump();
  }
}

template <class Stream>
void Session<Stream>::CloseLink(uint16_t code, const std::string& reason) {
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
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason), [self = this->shared_from_this()](beast::error_code) {});
  // else: OnWrite closes once the queued frames (the error message) are out.
}

template <class Stream>
void Session<Stream>::Shutdown() {
  net::post(ws_.get_executor(), [self = this->shared_from_this()] {
    self->closing_ = true;
    self->conv_.Stop();
    self->hello_timer_.cancel();
    self->CloseSocket();
  });
}

template <class Stream>
void Session<Stream>::CloseSocket() {
  beast::error_code ec;
  beast::get_lowest_layer(ws_).socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(ws_).close();
}

std::shared_ptr<SessionHandle> MakeSession(net::ip::tcp::socket&& socket, Hub& hub, uint64_t id, ssl::context* tls) {
  if (tls) return std::make_shared<TlsSession>(std::move(socket), hub, id, tls);
  return std::make_shared<PlainSession>(std::move(socket), hub, id, nullptr);
}

template class Session<beast::tcp_stream>;
template class Session<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace fieldsync::server
