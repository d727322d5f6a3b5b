#include "sync/hlc.h"

#include <chrono>

namespace fieldsync {

std::string ToHex(uint64_t v) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[i] = kDigits[v & 0xF];
    v >>= 4;
  }
  return s;
}

bool ParseHex(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

uint64_t SystemMillis() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

HybridClock::HybridClock(NodeId node, PhysicalSource physical, uint64_t max_drift_ms)
    : node_(node), physical_(std::move(physical)), max_drift_ms_(max_drift_ms) {}

uint64_t HybridClock::Physical() const {
  int64_t p = static_cast<int64_t>(physical_()) + offset_ms_;
  return p < 0 ? 0 : static_cast<uint64_t>(p);
}

Hlc HybridClock::Now() {
  Hlc wall = MakeHlc(Physical(), 0);
  // Counter overflow simply carries into the physical part: the clock runs a
  // millisecond ahead, which the next physical tick absorbs.
  last_ = wall > last_ ? wall : last_ + 1;
  return last_;
}

bool HybridClock::WithinBound(Hlc h) const {
  return HlcPhysical(h) <= Physical() + max_drift_ms_;
}

Status HybridClock::Observe(Hlc remote) {
  if (!WithinBound(remote)) {
    return Status(Code::kClockSkew,
                  "remote clock " + std::to_string(HlcPhysical(remote)) +
                      "ms is more than " + std::to_string(max_drift_ms_) +
                      "ms ahead of local " + std::to_string(Physical()) + "ms");
  }
  if (remote > last_) last_ = remote;
  return Status::OK();
}

}  // namespace fieldsync
