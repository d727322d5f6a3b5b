#include "sync/change.h"

namespace fieldsync {

const char* OpName(Op op) {
  switch (op) {
    case Op::kSet: return "set";
    case Op::kDelete: return "del";
    case Op::kIncrement: return "inc";
    case Op::kAdd: return "add";
    case Op::kRemove: return "rem";
  }
  return "?";
}

bool ParseOp(const std::string& s, Op* op) {
  static const std::pair<const char*, Op> kOps[] = {
      {"set", Op::kSet}, {"del", Op::kDelete}, {"inc", Op::kIncrement},
      {"add", Op::kAdd}, {"rem", Op::kRemove}};
  for (auto& [n, v] : kOps)
    if (s == n) { *op = v; return true; }
  return false;
}

void JoinInto(VersionVector* into, const VersionVector& other) {
  for (const auto& [n, h] : other) {
    auto& slot = (*into)[n];
    if (h > slot) slot = h;
  }
}

json VersionVectorToJson(const VersionVector& vv) {
  json j = json::object();
  for (const auto& [n, h] : vv) j[ToHex(n)] = ToHex(h);
  return j;
}

bool VersionVectorFromJson(const json& j, VersionVector* vv) {
  if (!j.is_object()) return false;
  vv->clear();
  for (auto it = j.begin(); it != j.end(); ++it) {
    uint64_t n, h;
    if (!it.value().is_string() || !ParseHex(it.key(), &n) ||
        !ParseHex(it.value().get<std::string>(), &h))
      return false;
    (*vv)[n] = h;
  }
  return true;
}

}  // namespace fieldsync
