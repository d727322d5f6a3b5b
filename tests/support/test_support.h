// Shared helpers for the end-to-end tests: temporary directories, the real
// server on a loopback port, and a raw WebSocket peer that can send what no
// well-behaved client would (malformed frames, hostile batches).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fieldsync/replica.h"
#include "server/server.h"
#include "sync/protocol.h"

namespace fieldsync::testing {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The shipped field-sales schema (path from $FIELDSYNC_SCHEMA, set by ctest).
Schema FieldSalesSchema();

// The real server on 127.0.0.1 with an ephemeral port and its own data dir.
class TestServer {
 public:
  explicit TestServer(server::ServerOptions opts = {}, const Schema& schema = FieldSalesSchema());
  ~TestServer();
  void Restart();  // Stop, then Start on the same data directory and port
  void Stop();
  server::Server& server() { return *srv_; }
  server::Hub& hub() { return srv_->hub(); }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/"; }
  SyncOptions sync_options() const;
  std::string Dump();
  const std::string& data_dir() const { return opts_.data_dir; }

 private:
  TempDir dir_;
  server::ServerOptions opts_;
  Schema schema_;
  std::unique_ptr<server::Server> srv_;
  uint16_t port_ = 0;
};

std::string DumpText(Replica& r);

// Writes a fresh self-signed certificate for 127.0.0.1 and localhost (PEM),
// and its private key, for the TLS tests.
void WriteSelfSignedCert(const std::string& cert_path, const std::string& key_path);

// One plain HTTP/1.1 request to the server at `url` (ws://host:port/): the
// admin API. `token`, if any, goes in "Authorization: Bearer". The body is
// parsed as JSON when it is JSON (else null; `raw` keeps the text).
struct HttpReply {
  int status = 0;  // 0: no answer
  json body;
  std::string raw;
};
HttpReply HttpCall(const std::string& url, const std::string& method, const std::string& target,
                   const std::string& token = {}, const std::string& body = {});

// A raw WebSocket peer, synchronous, with a timeout on every read.
class RawPeer {
 public:
  // `token`: sent as "Authorization: Bearer <token>" in the upgrade request.
  explicit RawPeer(const std::string& url, const std::string& token = {});
  // The server's answer to the upgrade request (401 with a JSON body when refused).
  int http_status() const;
  std::string http_body() const;
  ~RawPeer();
  bool connected() const;
  // Sends one binary message exactly as given.
  bool SendBinary(const std::string& bytes);
  bool SendText(const std::string& text);
  // Encodes with the protocol codec (JSON, compressed when it pays).
  bool Send(const json& m) { return SendBinary(EncodeFrame(m, Encoding::kJson)); }
  // Reads one message; false on close, error or timeout.
  bool Receive(json* m, int timeout_ms = 5000);
  // Sends a valid hello for `node` and reads the welcome.
  bool Hello(uint64_t node, json* welcome = nullptr);
  // True once the server has closed the connection (reads until then).
  bool ClosedByServer(int timeout_ms = 5000);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldsync::testing
