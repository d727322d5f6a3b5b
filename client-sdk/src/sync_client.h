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
};
// Parses ws://host[:port][/path]. wss:// is refused until TLS lands.
Status ParseUrl(const std::string& url, Url* out);

class Connection : public Transport {
 public:
  Connection();
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
