// Hybrid logical clocks (Kulkarni et al., "Logical Physical Clocks", 2014).
//
// An Hlc packs physical milliseconds since the Unix epoch (upper 48 bits) and
// a logical counter (lower 16 bits) into one uint64_t, so timestamps compare
// as plain integers. A timestamp is globally unique together with the id of
// the replica ("node") that made it, because a clock never hands out the same
// value twice. FieldSync uses (hlc, node) as the identity of every change.
//
// The skew bound: a clock refuses to adopt a remote timestamp whose physical
// part is more than max_drift_ms ahead of its own physical clock (default
// kDefaultMaxDriftMs). One tablet with its date set to next year therefore
// cannot drag every other clock into the future; the server refuses such
// changes with code clock_skew and the SDK re-stamps them (docs/protocol.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "sync/status.h"

namespace fieldsync {

using Hlc = uint64_t;
using NodeId = uint64_t;

constexpr uint64_t kDefaultMaxDriftMs = 5 * 60 * 1000;  // five minutes

inline constexpr Hlc MakeHlc(uint64_t physical_ms, uint32_t logical) {
  return (physical_ms << 16) | (logical & 0xFFFF);
}
inline constexpr uint64_t HlcPhysical(Hlc h) { return h >> 16; }
inline constexpr uint32_t HlcLogical(Hlc h) { return static_cast<uint32_t>(h & 0xFFFF); }

// A timestamp with its author: the total order used by last-writer-wins.
// Ties on hlc (two nodes, same instant) are broken by node id, so every
// replica picks the same winner.
struct Stamp {
  Hlc hlc = 0;
  NodeId node = 0;
  friend bool operator==(const Stamp&, const Stamp&) = default;
  friend auto operator<=>(const Stamp&, const Stamp&) = default;
};

// Fixed-width lower-case hex, 16 digits: how HLCs and node ids travel in JSON
// (a JSON number cannot hold 64 bits in every language).
std::string ToHex(uint64_t v);
// Parses exactly 1..16 hex digits. Returns false on anything else.
bool ParseHex(std::string_view s, uint64_t* out);

// Milliseconds since the Unix epoch from the system clock.
uint64_t SystemMillis();

class HybridClock {
 public:
  using PhysicalSource = std::function<uint64_t()>;

  explicit HybridClock(NodeId node, PhysicalSource physical = SystemMillis,
                       uint64_t max_drift_ms = kDefaultMaxDriftMs);

  NodeId node() const { return node_; }
  uint64_t max_drift_ms() const { return max_drift_ms_; }

  // A timestamp for a local event, strictly greater than every timestamp
  // this clock has returned or observed. Not thread-safe: callers serialize.
  Hlc Now();

  // Folds a remote timestamp into the clock so later Now() values order after
  // it. Refuses (kClockSkew, clock unchanged) when the remote's physical part
  // is more than max_drift_ms ahead of this clock's physical time.
  Status Observe(Hlc remote);

  // True when `h` is within the skew bound of this clock's physical time.
  bool WithinBound(Hlc h) const;

  // The largest timestamp handed out or observed; persisted by the store so a
  // reopened replica never goes backwards even if the wall clock did.
  Hlc last() const { return last_; }
  void Restore(Hlc last) { if (last > last_) last_ = last; }
  // Moves the clock BACK to `to`. Only safe when no timestamp above `to`
  // has been accepted anywhere else (the server refused them all as skewed):
  // the SDK calls it after a device's date was found far ahead, so its
  // re-stamped changes fall within the bound instead of a year ahead.
  void Rewind(Hlc to) { last_ = to; }

  // Corrects the physical source by a fixed offset (ms); used by the SDK when
  // the server reports a wall time far from the device's.
  void SetOffset(int64_t offset_ms) { offset_ms_ = offset_ms; }
  // The corrected physical time (source + offset) in ms.
  uint64_t PhysicalNow() const { return Physical(); }
  int64_t offset() const { return offset_ms_; }

 private:
  uint64_t Physical() const;

  NodeId node_;
  PhysicalSource physical_;
  uint64_t max_drift_ms_;
  int64_t offset_ms_ = 0;
  Hlc last_ = 0;
};

}  // namespace fieldsync
