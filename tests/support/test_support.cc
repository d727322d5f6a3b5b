#include "tests/support/test_support.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace fieldsync::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "fieldsync-XXXXXX").string();
  char* p = ::mkdtemp(tmpl.data());
  if (!p) std::abort();
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Schema FieldSalesSchema() {
  const char* path = std::getenv("FIELDSYNC_SCHEMA");
  if (!path) {
    ADD_FAILURE() << "FIELDSYNC_SCHEMA is not set (ctest sets it)";
    std::abort();
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  Schema s;
  Status st = Schema::ParseText(ss.str(), &s);
  if (!st.ok()) {
    ADD_FAILURE() << st.ToString();
    std::abort();
  }
  return s;
}

TestServer::TestServer(server::ServerOptions opts, const Schema& schema) : opts_(std::move(opts)), schema_(schema) {
  opts_.data_dir = dir_.File("server");
  opts_.address = "127.0.0.1";
  opts_.log = std::getenv("FIELDSYNC_TEST_LOG") != nullptr;
  srv_ = std::make_unique<server::Server>(opts_, schema_);
  Status st = srv_->Start();
  EXPECT_TRUE(st.ok()) << st.ToString();
  port_ = srv_->port();
}

TestServer::~TestServer() { Stop(); }

void TestServer::Stop() {
  if (srv_) srv_->Stop();
  srv_.reset();
}

void TestServer::Restart() {
  Stop();
  opts_.port = port_;
  srv_ = std::make_unique<server::Server>(opts_, schema_);
  Status st = srv_->Start();
  EXPECT_TRUE(st.ok()) << st.ToString();
}

SyncOptions TestServer::sync_options() const {
  SyncOptions o;
  o.url = url();
  o.request_timeout_ms = 10000;
  return o;
}

std::string TestServer::Dump() {
  std::ostringstream os;
  Status st = srv_->hub().Dump([&](const json& l) { os << l.dump() << "\n"; });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return os.str();
}

std::string DumpText(Replica& r) {
  std::ostringstream os;
  Status st = r.Dump([&](const json& l) { os << l.dump() << "\n"; });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return os.str();
}

void WriteSelfSignedCert(const std::string& cert_path, const std::string& key_path) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  ASSERT_NE(key, nullptr);
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  ASSERT_NE(san, nullptr);
  X509_add_ext(x, san, -1);
  X509_EXTENSION_free(san);
  X509_EXTENSION* bc = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE");
  X509_add_ext(x, bc, -1);
  X509_EXTENSION_free(bc);
  ASSERT_GT(X509_sign(x, key, EVP_sha256()), 0);
  FILE* f = std::fopen(cert_path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct RawPeer::Impl {
  net::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  bool ok = false;
  beast::flat_buffer buf;
  websocket::response_type response;
};

int RawPeer::http_status() const { return static_cast<int>(impl_->response.result_int()); }
std::string RawPeer::http_body() const { return impl_->response.body(); }

RawPeer::RawPeer(const std::string& url, const std::string& token) : impl_(std::make_unique<Impl>()) {
  // url: ws://127.0.0.1:PORT/
  std::string rest = url.substr(5);
  std::string host = rest.substr(0, rest.find(':'));
  std::string port = rest.substr(rest.find(':') + 1);
  port = port.substr(0, port.find('/'));
  beast::error_code ec;
  tcp::resolver res(impl_->ioc);
  auto eps = res.resolve(host, port, ec);
  if (ec) return;
  net::connect(impl_->ws.next_layer(), eps, ec);
  if (ec) return;
  if (!token.empty())
    impl_->ws.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
      req.set(beast::http::field::authorization, "Bearer " + token);
    }));
  // The async form: Beast 1.74's blocking handshake leaves the response
  // empty when the server declines the upgrade (a 401 and its body).
  impl_->ws.async_handshake(impl_->response, host, "/", [&](beast::error_code e) { ec = e; });
  impl_->ioc.run();
  impl_->ioc.restart();
  impl_->ws.read_message_max(64u << 20);
  impl_->ok = !ec;
}

HttpReply HttpCall(const std::string& url, const std::string& method, const std::string& target,
                   const std::string& token, const std::string& body) {
  namespace http = beast::http;
  HttpReply out;
  std::string rest = url.substr(5);
  std::string host = rest.substr(0, rest.find(':'));
  std::string port = rest.substr(rest.find(':') + 1);
  port = port.substr(0, port.find('/'));
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  tcp::resolver res(ioc);
  auto eps = res.resolve(host, port, ec);
  if (ec) return out;
  stream.expires_after(std::chrono::seconds(10));
  stream.connect(eps, ec);
  if (ec) return out;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host);
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  http::write(stream, req, ec);
  if (ec) return out;
  beast::flat_buffer buf;
  http::response<http::string_body> resp;
  http::read(stream, buf, resp, ec);
  if (ec && ec != http::error::end_of_stream) return out;
  out.status = static_cast<int>(resp.result_int());
  out.raw = resp.body();
  out.body = json::parse(out.raw, nullptr, false);
  if (out.body.is_discarded()) out.body = nullptr;
  return out;
}

RawPeer::~RawPeer() {
  beast::error_code ec;
  impl_->ws.next_layer().close(ec);
}

bool RawPeer::connected() const { return impl_->ok; }

bool RawPeer::SendBinary(const std::string& bytes) {
  beast::error_code ec;
  impl_->ws.binary(true);
  impl_->ws.write(net::buffer(bytes), ec);
  return !ec;
}

bool RawPeer::SendText(const std::string& text) {
  beast::error_code ec;
  impl_->ws.text(true);
  impl_->ws.write(net::buffer(text), ec);
  return !ec;
}

namespace {
// Runs a read with a deadline: the socket is closed when time runs out.
bool ReadWithTimeout(RawPeer::Impl& I, int timeout_ms, beast::error_code* out_ec) {
  bool done = false;
  I.ws.async_read(I.buf, [&](beast::error_code ec, size_t) {
    *out_ec = ec;
    done = true;
  });
  I.ioc.restart();
  I.ioc.run_for(std::chrono::milliseconds(timeout_ms));
  if (!done) {
    beast::error_code ignore;
    I.ws.next_layer().close(ignore);
    I.ioc.restart();
    I.ioc.run();
    *out_ec = net::error::timed_out;
    return false;
  }
  return !*out_ec;
}
}  // namespace

bool RawPeer::Receive(json* m, int timeout_ms) {
  beast::error_code ec;
  if (!ReadWithTimeout(*impl_, timeout_ms, &ec)) return false;
  std::string frame = beast::buffers_to_string(impl_->buf.data());
  impl_->buf.consume(impl_->buf.size());
  if (impl_->ws.got_text()) frame.insert(frame.begin(), '\0');
  Limits big{64u << 20, 256u << 20, 1u << 20, 1u << 20, 64};
  return DecodeFrame(frame, big, m).ok();
}

bool RawPeer::Hello(uint64_t node, json* welcome) {
  json w;
  if (!Send({{"type", "hello"}, {"protocol", {1}}, {"node", ToHex(node)}, {"client", "raw-test-peer"}}))
    return false;
  if (!Receive(&w) || w.value("type", "") != "welcome") return false;
  if (welcome) *welcome = w;
  return true;
}

bool RawPeer::ClosedByServer(int timeout_ms) {
  for (;;) {
    beast::error_code ec;
    if (ReadWithTimeout(*impl_, timeout_ms, &ec)) {
      impl_->buf.consume(impl_->buf.size());
      continue;  // drain anything sent before the close
    }
    return ec != net::error::timed_out;
  }
}

}  // namespace fieldsync::testing
