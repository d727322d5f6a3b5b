// A lightweight load client for W4 and W5: many devices on one thread, each
// a real WebSocket connection speaking the real protocol (hello, push, ack,
// pull, changes, subscribe; docs/protocol.md), without a replica behind it.
// What a device would have in its outbox is given as a ready-encoded push
// frame (MessagePack, as the server picks it when offered first), so that
// a thousand outboxes fit in memory and all push at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sync/change.h"
#include "sync/status.h"

namespace fieldsync::bench {

struct LoadDevice {
  std::string token;
  uint64_t node = 0;
  std::string push_frame;      // one push message (W4); empty for W5
  size_t push_payload = 0;     // its size before compression
  size_t push_changes = 0;
  int64_t pull_from = 0;       // cursor the device last synced to
};

// A push frame of `changes`, as a device would send it (batch 1).
std::string EncodePush(const std::vector<Change>& changes, size_t* payload_bytes);

struct DeviceResult {
  std::string error;        // empty: the device did all it was asked
  double connect_ms = 0;    // TCP + WebSocket upgrade + hello/welcome
  double push_rtt_ms = 0;   // push sent to ack received
  double sync_ms = 0;       // push sent to the last `changes` of its pull
  double push_sent_at_ms = 0, acked_at_ms = 0;  // since the run began
  int64_t applied = 0;      // the ack's applied count
  int64_t received = 0;     // changes its pull brought
  std::vector<std::string> received_rows;  // "table/row" of each
  int64_t bytes_up = 0, bytes_down = 0;       // WebSocket message bytes
  int64_t payload_up = 0, payload_down = 0;   // the same before compression
};

// W4: connects every device (at most `parallel_connects` handshakes at a
// time), then, once all are connected, has them push, and each pull from
// its cursor until up to date. `pushes_per_s` 0: all push at once (the
// worst burst, which measures ingest capacity); otherwise one device starts
// its push every 1/pushes_per_s seconds, in order (an arrival rate, which is
// what a round-trip percentile means something under). Blocks until every
// device is done or failed.
Status RunSalesForce(const std::string& host, uint16_t port, const std::string& schema_fingerprint,
                     std::vector<LoadDevice> devices, int parallel_connects, double pushes_per_s,
                     std::vector<DeviceResult>* results);

// W5: connects `devices` and leaves them idle in live mode (subscribed).
// Connected() blocks until all are connected (or failed); the connections
// stay open until the IdleFleet is destroyed.
class IdleFleet {
 public:
  IdleFleet(const std::string& host, uint16_t port, const std::string& schema_fingerprint,
            std::vector<LoadDevice> devices, int parallel_connects);
  ~IdleFleet();
  // Returns the number connected; `errors` gets the first failure, if any.
  size_t Connected(std::string* first_error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldsync::bench
