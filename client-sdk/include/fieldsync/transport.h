// How a sync session moves its frames. The SDK's default transport is a
// WebSocket over TCP (ws://host:port/). An app may bring its own (the
// platform's WebSocket, as LiteCore lets apps plug in C4SocketFactory), and
// the deterministic simulator (tests/sim) brings a simulated network.
//
// Frames are opaque bytes in the format of docs/protocol.md section 2.2
// (flags byte, then payload); a transport neither reads nor changes them.
// A frame received as a WebSocket *text* message is handed up with a zero
// flags byte prepended, so the session always sees the framed form.
//
// One Transport object carries at most one connection at a time and is used
// by one thread at a time (the thread running Sync() or background sync).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "sync/status.h"

namespace fieldsync {

class Transport {
 public:
  virtual ~Transport() = default;

  // Opens a connection to `url` within timeout_ms. kIoError if it cannot.
  virtual Status Connect(const std::string& url, int timeout_ms) = 0;
  // Sends one frame. An error means the connection is gone.
  virtual Status Send(const std::string& frame, int timeout_ms) = 0;
  // Waits up to timeout_ms for the next frame. OK with *got = false when
  // none came in time (the connection stays usable); an error means the
  // connection is gone.
  virtual Status Receive(std::string* frame, int timeout_ms, bool* got) = 0;
  // Closes the connection, if open. Safe to call twice.
  virtual void Close() = 0;
};

// Makes a fresh transport for each connection attempt.
using TransportFactory = std::function<std::unique_ptr<Transport>()>;

}  // namespace fieldsync
