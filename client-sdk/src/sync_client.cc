#include "sync_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace fieldsync::client {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

Status ParseUrl(const std::string& url, Url* out) {
  const std::string ws = "ws://";
  if (url.rfind("wss://", 0) == 0) return Status(Code::kUnsupported, "wss:// is not supported yet");
  if (url.rfind(ws, 0) != 0) return Status::InvalidArgument("URL must start with ws://: " + url);
  std::string rest = url.substr(ws.size());
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  out->target = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    out->host = hostport;
    out->port = "80";
  } else {
    out->host = hostport.substr(0, colon);
    out->port = hostport.substr(colon + 1);
  }
  if (out->host.empty() || out->port.empty()) return Status::InvalidArgument("bad URL: " + url);
  return Status::OK();
}

struct Connection::Impl {
  net::io_context ioc;
  std::unique_ptr<websocket::stream<beast::tcp_stream>> ws;
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
  void Abort() {
    if (!ws) return;
    beast::error_code ec;
    beast::get_lowest_layer(*ws).socket().close(ec);
    ioc.restart();
    ioc.poll();  // let cancelled handlers run
    ws.reset();
    read_pending = false;
  }
};

Connection::Connection() : impl_(std::make_unique<Impl>()) {}
Connection::~Connection() { Close(); }

bool Connection::is_open() const { return impl_->ws && impl_->ws->is_open(); }

Status Connection::Connect(const std::string& url, int timeout_ms) {
  Close();
  Url u;
  Status st = ParseUrl(url, &u);
  if (!st.ok()) return st;
  auto& I = *impl_;
  I.ws = std::make_unique<websocket::stream<beast::tcp_stream>>(I.ioc);
  tcp::resolver resolver(I.ioc);
  beast::error_code ec;
  auto results = resolver.resolve(u.host, u.port, ec);
  if (ec) return Status::IoError("cannot resolve " + u.host + ": " + ec.message());
  bool done = false;
  beast::get_lowest_layer(*I.ws).async_connect(results, [&](beast::error_code e, const tcp::endpoint&) {
    ec = e;
    done = true;
  });
  if (!I.RunUntil(done, timeout_ms)) {
    I.Abort();
    return Status::IoError("connect to " + url + " timed out");
  }
  if (ec) {
    I.Abort();
    return Status::IoError("cannot connect to " + url + ": " + ec.message());
  }
  beast::get_lowest_layer(*I.ws).socket().set_option(tcp::no_delay(true));
  I.ws->read_message_max(64u << 20);
  done = false;
  I.ws->async_handshake(u.host + ":" + u.port, u.target, [&](beast::error_code e) {
    ec = e;
    done = true;
  });
  if (!I.RunUntil(done, timeout_ms) || ec) {
    std::string why = ec ? ec.message() : "timed out";
    I.Abort();
    return Status::IoError("WebSocket handshake with " + url + " failed: " + why);
  }
  I.ws->binary(true);
  return Status::OK();
}

Status Connection::Send(const std::string& frame, int timeout_ms) {
  auto& I = *impl_;
  if (!I.ws) return Status(Code::kClosed, "not connected");
  bool done = false;
  beast::error_code ec;
  I.ws->async_write(net::buffer(frame), [&](beast::error_code e, size_t) {
    ec = e;
    done = true;
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
  if (!I.ws) return Status(Code::kClosed, "not connected");
  if (!I.read_pending) {
    I.read_pending = true;
    I.read_done = false;
    I.ws->async_read(I.buffer, [&I](beast::error_code e, size_t n) {
      I.read_ec = e;
      I.read_bytes = n;
      I.read_done = true;
    });
  }
  if (!I.RunUntil(I.read_done, timeout_ms)) return Status::OK();  // still pending
  I.read_pending = false;
  if (I.read_ec) {
    std::string why = I.read_ec.message();
    if (I.read_ec == websocket::error::closed) {
      auto reason = I.ws->reason();
      why = "closed by server (code " + std::to_string(reason.code) + " " + std::string(reason.reason.c_str()) + ")";
    }
    I.Abort();
    return Status::IoError("receive failed: " + why);
  }
  *frame = beast::buffers_to_string(I.buffer.data());
  I.buffer.consume(I.buffer.size());
  if (I.ws->got_text()) frame->insert(frame->begin(), '\0');
  *got = true;
  return Status::OK();
}

void Connection::Close() {
  auto& I = *impl_;
  if (!I.ws) return;
  if (I.ws->is_open() && !I.read_pending) {
    bool done = false;
    I.ws->async_close(websocket::close_code::normal, [&](beast::error_code) { done = true; });
    I.RunUntil(done, 1000);
  }
  I.Abort();
}

}  // namespace fieldsync::client
