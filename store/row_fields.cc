#include "store/row_fields.h"

#include <algorithm>

namespace fieldsync::store {
namespace {

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutFixed64(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

bool GetFixed64(std::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v |= static_cast<uint64_t>(static_cast<uint8_t>((*in)[i])) << (8 * i);
  in->remove_prefix(8);
  return true;
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in->empty()) return false;
    auto b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    // The tenth byte may carry only the top bit of a 64-bit value.
    if (shift == 63 && b > 1) return false;
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

}  // namespace

Status EncodeRowFields(const FieldList& fields, std::string* out) {
  std::vector<const std::pair<std::string, FieldState>*> order;
  order.reserve(fields.size());
  for (const auto& f : fields) {
    if (!f.second.present) continue;
    if (f.first.empty() || f.first.size() > 255)
      return Status::InvalidArgument("fs_row_fields: a column name must be 1-255 bytes, not " +
                                     std::to_string(f.first.size()));
    order.push_back(&f);
  }
  // Stable, so of two entries for one name the later stays later; the
  // dedupe below keeps it.
  std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::string crdt;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i + 1 < order.size() && order[i + 1]->first == order[i]->first) continue;
    const auto& [name, f] = *order[i];
    out->push_back(static_cast<char>(name.size()));
    out->append(name);
    // Fixed width: an hlc has 57 significant bits and a node id is random,
    // so a varint would take 9 and 10 bytes.
    PutFixed64(f.stamp.hlc, out);
    PutFixed64(f.stamp.node, out);
    PutVarint(f.base, out);
    if (f.crdt.is_null()) {
      PutVarint(0, out);
    } else {
      crdt = f.crdt.dump();
      PutVarint(crdt.size() + 1, out);
      out->append(crdt);
    }
  }
  return Status::OK();
}

Status DecodeRowFields(std::string_view in, FieldList* out) {
  out->clear();
  auto bad = [&](const char* why) {
    out->clear();
    return Status::Corruption(std::string("fs_row_fields: ") + why);
  };
  while (!in.empty()) {
    size_t len = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    if (len == 0 || in.size() < len) return bad("truncated column name");
    std::string name(in.substr(0, len));
    in.remove_prefix(len);
    if (!out->empty() && !(out->back().first < name)) return bad("column names out of order");
    FieldState f;
    f.present = true;
    uint64_t hlc = 0, node = 0, base = 0, crdt_len = 0;
    if (!GetFixed64(&in, &hlc) || !GetFixed64(&in, &node) || !GetVarint(&in, &base) || !GetVarint(&in, &crdt_len))
      return bad("truncated field stamp");
    f.stamp = {hlc, node};
    f.base = base;
    if (crdt_len > 0) {
      if (crdt_len - 1 > in.size()) return bad("truncated policy state");
      std::string_view text = in.substr(0, crdt_len - 1);
      in.remove_prefix(crdt_len - 1);
      f.crdt = json::parse(text, nullptr, false);
      if (f.crdt.is_discarded()) return bad("policy state is not JSON");
    }
    out->emplace_back(std::move(name), std::move(f));
  }
  return Status::OK();
}

}  // namespace fieldsync::store
