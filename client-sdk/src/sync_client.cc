#include "sync_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>

namespace fieldsync::client {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

Status ParseUrl(const std::string& url, Url* out) {
  out->tls = url.rfind("wss://", 0) == 0;
  if (!out->tls && url.rfind("ws://", 0) != 0) return Status::InvalidArgument("URL must start with ws:// or wss://: " + url);
  std::string rest = url.substr(out->tls ? 6 : 5);
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  out->target = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    out->host = hostport;
    out->port = out->tls ? "443" : "80";
  } else {
    out->host = hostport.substr(0, colon);
    out->port = hostport.substr(colon + 1);
  }
  if (out->host.empty() || out->port.empty()) return Status::InvalidArgument("bad URL: " + url);
  return Status::OK();
}

struct Connection::Impl {
  ConnectionOptions opts;
  net::io_context ioc;
  // One of the two, for ws:// or wss://; With() runs code on whichever it is.
  std::unique_ptr<PlainWs> plain;
  std::unique_ptr<TlsWs> tls;
  std::unique_ptr<ssl::context> tls_ctx;
  beast::flat_buffer buffer;
  bool read_pending = false;
  bool read_done = false;
  beast::error_code read_ec;
  size_t read_bytes = 0;

  // Runs the io_context until `done` or the timeout; on timeout the socket
  // is closed so the operation completes with an error.
  bool RunUntil(const bool& done, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!done) {
      ioc.restart();
      ioc.run_one_until(deadline);
      if (std::chrono::steady_clock::now() >= deadline && !done) return false;
    }
    return true;
  }
  bool open() const { return plain || tls; }
  template <class F>
  auto With(F&& f) {
    return plain ? f(*plain) : f(*tls);
  }
  void Abort() {
    if (!open()) return;
    beast::error_code ec;
    With([&](auto& ws) {
      beast::get_lowest_layer(ws).socket().close(ec);
      return 0;
    });
    ioc.restart();
    ioc.poll();  // let cancelled handlers run
    plain.reset();
    tls.reset();
    read_pending = false;
  }
};

Connection::Connection(ConnectionOptions opts) : impl_(std::make_unique<Impl>()) { impl_->opts = std::move(opts); }
Connection::~Connection() { Close(); }

bool Connection::is_open() const {
  return impl_->open() && impl_->With([](auto& ws) { return ws.is_open(); });
}

Status Connection::Connect(const std::string& url, int timeout_ms) {
  Close();
  Url u;
  Status st = ParseUrl(url, &u);
  if (!st.ok()) return st;
  auto& I = *impl_;
  if (u.tls) {
    I.tls_ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    I.tls_ctx->set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    if (!I.opts.tls_ca_file.empty()) I.tls_ctx->load_verify_file(I.opts.tls_ca_file, ec);
    else I.tls_ctx->set_default_verify_paths(ec);
    if (ec) return Status::IoError("TLS trust store " + I.opts.tls_ca_file + ": " + ec.message());
    I.tls = std::make_unique<TlsWs>(I.ioc, *I.tls_ctx);
    // The certificate must name the host we asked for (RFC 6125).
    I.tls->next_layer().set_verify_callback(ssl::host_name_verification(u.host));
    if (!SSL_set_tlsext_host_name(I.tls->next_layer().native_handle(), u.host.c_str()))
      return Status::IoError("TLS: cannot set the server name");
  } else {
    I.plain = std::make_unique<PlainWs>(I.ioc);
  }
  tcp::resolver resolver(I.ioc);
  beast::error_code ec;
  auto results = resolver.resolve(u.host, u.port, ec);
  if (ec) {
    I.Abort();
    return Status::IoError("cannot resolve " + u.host + ": " + ec.message());
  }
  bool done = false;
  I.With([&](auto& ws) {
    beast::get_lowest_layer(ws).async_connect(results, [&](beast::error_code e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    return 0;
  });
  if (!I.RunUntil(done, timeout_ms)) {
    I.Abort();
    return Status::IoError("connect to " + url + " timed out");
  }
  if (ec) {
    I.Abort();
    return Status::IoError("cannot connect to " + url + ": " + ec.message());
  }
  I.With([&](auto& ws) {
    beast::get_lowest_layer(ws).socket().set_option(tcp::no_delay(true));
    ws.read_message_max(64u << 20);
    return 0;
  });
  if (I.tls) {
    done = false;
    I.tls->next_layer().async_handshake(ssl::stream_base::client, [&](beast::error_code e) {
      ec = e;
      done = true;
    });
    if (!I.RunUntil(done, timeout_ms) || ec) {
      std::string why = ec ? ec.message() : "timed out";
      I.Abort();
      return Status::IoError("TLS handshake with " + url + " failed: " + why);
    }
  }
  std::string token = I.opts.token;
  websocket::response_type res;
  done = false;
  I.With([&](auto& ws) {
    ws.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
      req.set(http::field::user_agent, "fieldsync-sdk/0.1");
      if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    }));
    ws.async_handshake(res, u.host + ":" + u.port, u.target, [&](beast::error_code e) {
      ec = e;
      done = true;
    });
    return 0;
  });
  if (!I.RunUntil(done, timeout_ms) || ec) {
    std::string why = ec ? ec.message() : "timed out";
    I.Abort();
    // The server says why in a JSON body (docs/protocol.md section 3).
    if (res.result() == http::status::unauthorized || res.result() == http::status::forbidden) {
      auto body = nlohmann::json::parse(res.body(), nullptr, false);
      std::string msg = body.is_object() && body.contains("message") && body["message"].is_string()
                            ? body["message"].get<std::string>()
                            : "the server refused the token";
      return Status(Code::kUnauthenticated, msg);
    }
    return Status::IoError("WebSocket handshake with " + url + " failed: " + why);
  }
  I.With([](auto& ws) {
    ws.binary(true);
    return 0;
  });
  return Status::OK();
}

Status Connection::Send(const std::string& frame, int timeout_ms) {
  auto& I = *impl_;
  if (!I.open()) return Status(Code::kClosed, "not connected");
  bool done = false;
  beast::error_code ec;
  I.With([&](auto& ws) {
    ws.async_write(net::buffer(frame), [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    return 0;
  });
  if (!I.RunUntil(done, timeout_ms)) {
    I.Abort();
    return Status::IoError("send timed out");
  }
  if (ec) {
    I.Abort();
    return Status::IoError("send failed: " + ec.message());
  }
  return Status::OK();
}

Status Connection::Receive(std::string* frame, int timeout_ms, bool* got) {
  auto& I = *impl_;
  *got = false;
  if (!I.open()) return Status(Code::kClosed, "not connected");
  if (!I.read_pending) {
    I.read_pending = true;
    I.read_done = false;
    I.With([&I](auto& ws) {
      ws.async_read(I.buffer, [&I](beast::error_code e, size_t n) {
        I.read_ec = e;
        I.read_bytes = n;
        I.read_done = true;
      });
      return 0;
    });
  }
  if (!I.RunUntil(I.read_done, timeout_ms)) return Status::OK();  // still pending
  I.read_pending = false;
  if (I.read_ec) {
    std::string why = I.read_ec.message();
    if (I.read_ec == websocket::error::closed) {
      auto reason = I.With([](auto& ws) { return ws.reason(); });
      why = "closed by server (code " + std::to_string(reason.code) + " " + std::string(reason.reason.c_str()) + ")";
    }
    I.Abort();
    return Status::IoError("receive failed: " + why);
  }
  *frame = beast::buffers_to_string(I.buffer.data());
  I.buffer.consume(I.buffer.size());
  if (I.With([](auto& ws) { return ws.got_text(); })) frame->insert(frame->begin(), '\0');
  *got = true;
  return Status::OK();
}

void Connection::Close() {
  auto& I = *impl_;
  if (!I.open()) return;
  if (is_open() && !I.read_pending) {
    bool done = false;
    I.With([&](auto& ws) {
      ws.async_close(websocket::close_code::normal, [&](beast::error_code) { done = true; });
      return 0;
    });
    I.RunUntil(done, 1000);
  }
  I.Abort();
}

}  // namespace fieldsync::client
