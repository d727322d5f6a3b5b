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

// Stamps as differences from the field before: zigzag, so that a field
// a little older than the one before it is a byte too.
uint64_t ZigZag(uint64_t d) { return (d << 1) ^ (0 - (d >> 63)); }
uint64_t UnZigZag(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }

constexpr uint8_t kOwnNode = 1, kHasBase = 2, kHasState = 4, kKnownFlags = 7;

}  // namespace

int64_t FieldNames::Find(const std::string& name) const {
  auto it = numbers_.find(name);
  return it == numbers_.end() ? -1 : static_cast<int64_t>(it->second);
}

const std::string* FieldNames::Name(uint64_t number) const {
  return number < names_.size() ? &names_[number] : nullptr;
}

uint32_t FieldNames::Add(const std::string& name) {
  auto [it, added] = numbers_.emplace(name, static_cast<uint32_t>(names_.size()));
  if (added) names_.push_back(name);
  return it->second;
}

Status EncodeRowFields(const FieldList& fields, const FieldNames& names, std::string* out) {
  struct Entry {
    const std::pair<std::string, FieldState>* field;
    uint64_t number;
  };
  std::vector<Entry> order;
  order.reserve(fields.size());
  for (const auto& f : fields) {
    if (!f.second.present) continue;
    int64_t number = names.Find(f.first);
    if (number < 0) return Status::InvalidArgument("fs_row_fields: column '" + f.first + "' has no number in fs_columns");
    order.push_back({&f, static_cast<uint64_t>(number)});
  }
  // Stable, so of two entries for one name the later stays later; the
  // dedupe below keeps it.
  std::stable_sort(order.begin(), order.end(), [](const Entry& a, const Entry& b) { return a.field->first < b.field->first; });
  if (order.empty()) return Status::OK();
  // The header is the first kept field's stamp (the last state of the first
  // name), so that field's own difference is zero.
  size_t first = 0;
  while (first + 1 < order.size() && order[first + 1].field->first == order[0].field->first) ++first;
  Stamp prev = order[first].field->second.stamp;
  PutFixed64(prev.hlc, out);
  PutFixed64(prev.node, out);
  std::string crdt;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i + 1 < order.size() && order[i + 1].field->first == order[i].field->first) continue;
    const FieldState& f = order[i].field->second;
    PutVarint(order[i].number, out);
    uint8_t flags = (f.stamp.node != prev.node ? kOwnNode : 0) | (f.base ? kHasBase : 0) |
                    (f.crdt.is_null() ? 0 : kHasState);
    out->push_back(static_cast<char>(flags));
    PutVarint(ZigZag(f.stamp.hlc - prev.hlc), out);
    if (flags & kOwnNode) PutFixed64(f.stamp.node, out);
    if (flags & kHasBase) PutVarint(f.base, out);
    if (flags & kHasState) {
      crdt = f.crdt.dump();
      PutVarint(crdt.size(), out);
      out->append(crdt);
    }
    prev = f.stamp;
  }
  return Status::OK();
}

Status DecodeRowFields(std::string_view in, const FieldNames& names, FieldList* out) {
  out->clear();
  auto bad = [&](const char* why) {
    out->clear();
    return Status::Corruption(std::string("fs_row_fields: ") + why);
  };
  if (in.empty()) return Status::OK();
  Stamp prev;
  if (!GetFixed64(&in, &prev.hlc) || !GetFixed64(&in, &prev.node)) return bad("truncated row stamp");
  if (in.empty()) return bad("a row stamp without fields");
  while (!in.empty()) {
    uint64_t number = 0, diff = 0;
    if (!GetVarint(&in, &number)) return bad("truncated column number");
    const std::string* name = names.Name(number);
    if (!name) return bad("a column number fs_columns does not hold");
    if (!out->empty() && !(out->back().first < *name)) return bad("column names out of order");
    if (in.empty()) return bad("truncated field flags");
    auto flags = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    if (flags & ~kKnownFlags) return bad("unknown field flags");
    FieldState f;
    f.present = true;
    if (!GetVarint(&in, &diff)) return bad("truncated field stamp");
    f.stamp = {prev.hlc + UnZigZag(diff), prev.node};
    if ((flags & kOwnNode) && !GetFixed64(&in, &f.stamp.node)) return bad("truncated field node");
    if ((flags & kHasBase) && !GetVarint(&in, &f.base)) return bad("truncated field base");
    if (flags & kHasState) {
      uint64_t len = 0;
      if (!GetVarint(&in, &len) || len > in.size()) return bad("truncated policy state");
      f.crdt = json::parse(in.substr(0, len), nullptr, false);
      in.remove_prefix(len);
      if (f.crdt.is_discarded()) return bad("policy state is not JSON");
    }
    prev = f.stamp;
    out->emplace_back(*name, std::move(f));
  }
  return Status::OK();
}

Status DecodeRowFieldsV2(std::string_view in, FieldList* out) {
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
