// The SDK's side of the socket: a WebSocket connection driven by the calling
// thread, with a timeout on every operation. Internal to the SDK.
#pragma once

#include <memory>
#include <string>

#include "sync/protocol.h"

namespace fieldsync::client {

struct Url {
  std::string host, port, target;
};
// Parses ws://host[:port][/path]. wss:// is refused until TLS lands.
Status ParseUrl(const std::string& url, Url* out);

class Connection {
 public:
  Connection();
  ~Connection();

  Status Connect(const std::string& url, int timeout_ms);
  Status Send(const json& m, Encoding enc, int timeout_ms, size_t* bytes);
  // Waits up to timeout_ms for one message. On timeout returns OK with
  // *got = false and leaves the read pending for the next call.
  Status Receive(const Limits& limits, json* m, int timeout_ms, bool* got, size_t* bytes);
  void Close();
  bool is_open() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldsync::client
