// The SDK's default transport: a WebSocket connection driven by the calling
// thread, with a timeout on every operation. Internal to the SDK.
#pragma once

#include <memory>
#include <string>

#include "fieldsync/transport.h"
#include "sync/protocol.h"

namespace fieldsync::client {

struct Url {
  std::string host, port, target;
  bool tls = false;
};
// Parses ws://host[:port][/path] and wss://host[:port][/path].
Status ParseUrl(const std::string& url, Url* out);

// How the built-in transport authenticates: the bearer token it sends in
// the upgrade request, and the CA file that verifies a wss:// server
// (empty: the system's default trust store).
struct ConnectionOptions {
  std::string token;
  std::string tls_ca_file;
};

class Connection : public Transport {
 public:
  explicit Connection(ConnectionOptions opts = {});
  ~Connection() override;

  Status Connect(const std::string& url, int timeout_ms) override;
  Status Send(const std::string& frame, int timeout_ms) override;
  // On timeout returns OK with *got = false and leaves the read pending for
  // the next call.
  Status Receive(std::string* frame, int timeout_ms, bool* got) override;
  void Close() override;
  bool is_open() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldsync::client
