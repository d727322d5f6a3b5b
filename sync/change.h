// Changes: the unit of replication. One change touches one field of one row
// (or deletes a row). Its identity is (stamp.node, stamp.hlc): a clock never
// repeats a value, so a retried change is recognised by that pair alone.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "sync/hlc.h"
#include "sync/status.h"

namespace fieldsync {

using json = nlohmann::json;

enum class Op : uint8_t {
  kSet = 0,        // replace a field's value (lww, mv, state)
  kDelete = 1,     // delete the row (column is empty)
  kIncrement = 2,  // counter: value = [p_total, n_total] of the author node
  kAdd = 3,        // set member added: value = the member
  kRemove = 4,     // set member removed: value = the member, ctx = adds seen
};

const char* OpName(Op op);            // "set", "del", "inc", "add", "rem"
bool ParseOp(const std::string& s, Op* op);

// Per-node high-water marks: "I had seen node n's writes up to hlc h".
using VersionVector = std::map<NodeId, Hlc>;

// Pointwise maximum: the join of two version vectors.
void JoinInto(VersionVector* into, const VersionVector& other);
// True when vv has seen (node, hlc).
inline bool Covers(const VersionVector& vv, NodeId node, Hlc hlc) {
  auto it = vv.find(node);
  return it != vv.end() && it->second >= hlc;
}

json VersionVectorToJson(const VersionVector& vv);
bool VersionVectorFromJson(const json& j, VersionVector* vv);

struct Change {
  std::string table;
  std::string row;
  std::string column;  // empty for kDelete
  Op op = Op::kSet;
  json value;          // see Op
  Stamp stamp;         // when and where the edit was made on the device
  Hlc base = 0;        // lww/state kSet: hlc of the value the writer replaced
  VersionVector ctx;   // mv kSet and set kRemove: what the writer had seen
  int64_t seq = 0;     // position in the server's log; 0 until it has one
  uint64_t server_ms = 0;  // server receive time (ms since epoch); 0 until then

  // "nodehex:hlchex": how logs, errors and acks name a change.
  std::string IdString() const { return ToHex(stamp.node) + ":" + ToHex(stamp.hlc); }
};

}  // namespace fieldsync
