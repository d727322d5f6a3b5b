#include "sync/msgpack.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace fieldsync::msgpack {

namespace {

uint64_t BigEndian(std::string_view b, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t k = 0; k < n; ++k) v = (v << 8) | static_cast<uint8_t>(b[at + k]);
  return v;
}

// One value's header at b[i]: how many bytes it takes before its children
// (`head`, the type byte included), how many payload bytes follow the head
// (`skip`) and how many child values (`children`: a map counts keys and
// values). False when the header is truncated or the type byte is 0xc1.
struct Header {
  size_t head = 1;
  uint64_t skip = 0;
  uint64_t children = 0;
  bool container = false;
};
bool ReadHeader(std::string_view b, size_t i, Header* h) {
  if (i >= b.size()) return false;
  const uint8_t t = static_cast<uint8_t>(b[i]);
  *h = Header{};
  auto sized = [&](size_t n) {  // a length of n big-endian bytes follows the type
    if (b.size() - i - 1 < n) return false;
    h->head = 1 + n;
    return true;
  };
  if (t <= 0x7f || t >= 0xe0 || (t >= 0xc0 && t <= 0xc3)) return true;  // fixint, nil, false, true
  if (t >= 0x80 && t <= 0x8f) {
    h->container = true, h->children = 2ull * (t & 0x0f);
    return true;
  }
  if (t >= 0x90 && t <= 0x9f) {
    h->container = true, h->children = t & 0x0f;
    return true;
  }
  if (t >= 0xa0 && t <= 0xbf) {
    h->skip = t & 0x1f;
    return true;
  }
  switch (t) {
    case 0xc4: case 0xd9: if (!sized(1)) return false; h->skip = BigEndian(b, i + 1, 1); return true;
    case 0xc5: case 0xda: if (!sized(2)) return false; h->skip = BigEndian(b, i + 1, 2); return true;
    case 0xc6: case 0xdb: if (!sized(4)) return false; h->skip = BigEndian(b, i + 1, 4); return true;
    case 0xc7: if (!sized(1)) return false; h->skip = BigEndian(b, i + 1, 1) + 1; return true;
    case 0xc8: if (!sized(2)) return false; h->skip = BigEndian(b, i + 1, 2) + 1; return true;
    case 0xc9: if (!sized(4)) return false; h->skip = BigEndian(b, i + 1, 4) + 1; return true;
    case 0xca: case 0xce: case 0xd2: h->skip = 4; return true;
    case 0xcb: case 0xcf: case 0xd3: h->skip = 8; return true;
    case 0xcc: case 0xd0: h->skip = 1; return true;
    case 0xcd: case 0xd1: h->skip = 2; return true;
    case 0xd4: h->skip = 2; return true;
    case 0xd5: h->skip = 3; return true;
    case 0xd6: h->skip = 5; return true;
    case 0xd7: h->skip = 9; return true;
    case 0xd8: h->skip = 17; return true;
    case 0xdc: if (!sized(2)) return false; h->container = true, h->children = BigEndian(b, i + 1, 2); return true;
    case 0xdd: if (!sized(4)) return false; h->container = true, h->children = BigEndian(b, i + 1, 4); return true;
    case 0xde: if (!sized(2)) return false; h->container = true, h->children = 2 * BigEndian(b, i + 1, 2); return true;
    case 0xdf: if (!sized(4)) return false; h->container = true, h->children = 2 * BigEndian(b, i + 1, 4); return true;
    default: return false;  // 0xc1 is never used
  }
}

void Put(uint8_t c, std::string* out) { out->push_back(static_cast<char>(c)); }
void PutBigEndian(uint64_t v, size_t n, std::string* out) {
  for (size_t k = n; k-- > 0;) out->push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}

}  // namespace

Scan Within(std::string_view b, size_t max_depth) {
  std::vector<uint64_t> open;  // items still expected by each open container
  size_t i = 0;
  do {
    Header h;
    if (!ReadHeader(b, i, &h)) return Scan::kMalformed;
    i += h.head;
    if (h.skip > b.size() - i) return Scan::kMalformed;
    i += h.skip;
    if (!open.empty()) --open.back();
    if (h.container && h.children > 0) {
      // Every child needs at least one byte: a header claiming more is a lie.
      if (h.children > b.size() - i) return Scan::kMalformed;
      // This container sits at level open.size() + 1 (the root is 1); its
      // children one deeper, as JSON text counts.
      if (open.size() + 2 > max_depth) return Scan::kTooDeep;
      open.push_back(h.children);
    }
    while (!open.empty() && open.back() == 0) open.pop_back();
  } while (!open.empty());
  return i == b.size() ? Scan::kOk : Scan::kMalformed;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {  // the common case, one byte at a time without the table
      ++i;
      continue;
    }
    size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = c & (0xff >> (len + 1));
    for (size_t k = 1; k < len; ++k) {
      uint8_t cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

bool JsonCarries(const json& j) {
  std::vector<const json*> stack{&j};
  while (!stack.empty()) {
    const json* n = stack.back();
    stack.pop_back();
    if (n->is_string() && !ValidUtf8(n->get_ref<const std::string&>())) return false;
    if (n->is_binary()) return false;
    if (n->is_number_float() && !std::isfinite(n->get<double>())) return false;
    if (n->is_object())
      for (auto it = n->begin(); it != n->end(); ++it) {
        if (!ValidUtf8(it.key())) return false;
        stack.push_back(&it.value());
      }
    else if (n->is_array())
      for (const auto& c : *n) stack.push_back(&c);
  }
  return true;
}

bool Reader::MapHeader(size_t* n) {
  Header h;
  if (!ReadHeader(b_, i_, &h) || !h.container) return false;
  const uint8_t t = static_cast<uint8_t>(b_[i_]);
  if (!((t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf)) return false;
  *n = static_cast<size_t>(h.children / 2);
  i_ += h.head;
  return true;
}

bool Reader::ArrayHeader(size_t* n) {
  Header h;
  if (!ReadHeader(b_, i_, &h) || !h.container) return false;
  const uint8_t t = static_cast<uint8_t>(b_[i_]);
  if (!((t >= 0x90 && t <= 0x9f) || t == 0xdc || t == 0xdd)) return false;
  *n = static_cast<size_t>(h.children);
  i_ += h.head;
  return true;
}

bool Reader::String(std::string_view* s) {
  Header h;
  if (!ReadHeader(b_, i_, &h)) return false;
  const uint8_t t = static_cast<uint8_t>(b_[i_]);
  if (!((t >= 0xa0 && t <= 0xbf) || t == 0xd9 || t == 0xda || t == 0xdb)) return false;
  if (h.skip > b_.size() - i_ - h.head) return false;
  *s = b_.substr(i_ + h.head, h.skip);
  i_ += h.head + h.skip;
  return true;
}

bool Reader::Skip() {
  size_t i = i_;
  uint64_t pending = 1;  // values still to step over
  while (pending > 0) {
    Header h;
    if (!ReadHeader(b_, i, &h)) return false;
    i += h.head;
    if (h.skip > b_.size() - i) return false;
    i += h.skip;
    pending += h.children - 1;
  }
  i_ = i;
  return true;
}

bool Reader::Value(json* j) {
  if (i_ >= b_.size()) return false;
  const size_t start = i_;
  const uint8_t t = static_cast<uint8_t>(b_[i_]);
  auto fixed = [&](size_t n) { return b_.size() - i_ - 1 >= n; };
  if (t <= 0x7f) {
    *j = static_cast<uint64_t>(t);
    ++i_;
    return true;
  }
  if (t >= 0xe0) {
    *j = static_cast<int64_t>(static_cast<int8_t>(t));
    ++i_;
    return true;
  }
  switch (t) {
    case 0xc0: *j = nullptr; ++i_; return true;
    case 0xc2: *j = false; ++i_; return true;
    case 0xc3: *j = true; ++i_; return true;
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {
      const size_t n = size_t{1} << (t - 0xcc);
      if (!fixed(n)) return false;
      *j = BigEndian(b_, i_ + 1, n);
      i_ += 1 + n;
      return true;
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
      const size_t n = size_t{1} << (t - 0xd0);
      if (!fixed(n)) return false;
      uint64_t raw = BigEndian(b_, i_ + 1, n);
      int64_t v;
      if (n == 1) v = static_cast<int8_t>(raw);
      else if (n == 2) v = static_cast<int16_t>(raw);
      else if (n == 4) v = static_cast<int32_t>(raw);
      else v = static_cast<int64_t>(raw);
      *j = v;
      i_ += 1 + n;
      return true;
    }
    case 0xca: {
      if (!fixed(4)) return false;
      uint32_t raw = static_cast<uint32_t>(BigEndian(b_, i_ + 1, 4));
      float f;
      std::memcpy(&f, &raw, 4);
      if (!std::isfinite(f)) return false;
      *j = static_cast<double>(f);
      i_ += 5;
      return true;
    }
    case 0xcb: {
      if (!fixed(8)) return false;
      uint64_t raw = BigEndian(b_, i_ + 1, 8);
      double d;
      std::memcpy(&d, &raw, 8);
      if (!std::isfinite(d)) return false;
      *j = d;
      i_ += 9;
      return true;
    }
    default: break;
  }
  if ((t >= 0xa0 && t <= 0xbf) || t == 0xd9 || t == 0xda || t == 0xdb) {
    std::string_view s;
    if (!String(&s)) return false;
    if (!ValidUtf8(s)) {
      i_ = start;
      return false;
    }
    *j = std::string(s);
    return true;
  }
  // Containers, binary and extensions: nlohmann's own reader on just this
  // value's bytes (Within() bounded its depth), then the checks it lacks.
  if (!Skip()) return false;
  std::string_view bytes = b_.substr(start, i_ - start);
  json v = json::from_msgpack(bytes.begin(), bytes.end(), true, /*allow_exceptions=*/false);
  if (v.is_discarded() || !JsonCarries(v)) {
    i_ = start;
    return false;
  }
  *j = std::move(v);
  return true;
}

void AppendMapHeader(size_t n, std::string* out) {
  if (n <= 15) Put(static_cast<uint8_t>(0x80 | n), out);
  else if (n <= 0xffff) Put(0xde, out), PutBigEndian(n, 2, out);
  else Put(0xdf, out), PutBigEndian(n, 4, out);
}

void AppendArrayHeader(size_t n, std::string* out) {
  if (n <= 15) Put(static_cast<uint8_t>(0x90 | n), out);
  else if (n <= 0xffff) Put(0xdc, out), PutBigEndian(n, 2, out);
  else Put(0xdd, out), PutBigEndian(n, 4, out);
}

void AppendString(std::string_view s, std::string* out) {
  const size_t n = s.size();
  if (n <= 31) Put(static_cast<uint8_t>(0xa0 | n), out);
  else if (n <= 0xff) Put(0xd9, out), PutBigEndian(n, 1, out);
  else if (n <= 0xffff) Put(0xda, out), PutBigEndian(n, 2, out);
  else Put(0xdb, out), PutBigEndian(n, 4, out);
  out->append(s);
}

void AppendUnsigned(uint64_t v, std::string* out) {
  if (v < 128) Put(static_cast<uint8_t>(v), out);
  else if (v <= 0xff) Put(0xcc, out), PutBigEndian(v, 1, out);
  else if (v <= 0xffff) Put(0xcd, out), PutBigEndian(v, 2, out);
  else if (v <= 0xffffffff) Put(0xce, out), PutBigEndian(v, 4, out);
  else Put(0xcf, out), PutBigEndian(v, 8, out);
}

void AppendInteger(int64_t v, std::string* out) {
  if (v >= 0) return AppendUnsigned(static_cast<uint64_t>(v), out);
  const uint64_t raw = static_cast<uint64_t>(v);
  if (v >= -32) Put(static_cast<uint8_t>(raw & 0xff), out);
  else if (v >= std::numeric_limits<int8_t>::min()) Put(0xd0, out), PutBigEndian(raw, 1, out);
  else if (v >= std::numeric_limits<int16_t>::min()) Put(0xd1, out), PutBigEndian(raw, 2, out);
  else if (v >= std::numeric_limits<int32_t>::min()) Put(0xd2, out), PutBigEndian(raw, 4, out);
  else Put(0xd3, out), PutBigEndian(raw, 8, out);
}

void AppendValue(const json& j, std::string* out) {
  switch (j.type()) {
    case json::value_t::null: Put(0xc0, out); return;
    case json::value_t::boolean: Put(j.get<bool>() ? 0xc3 : 0xc2, out); return;
    case json::value_t::number_unsigned: AppendUnsigned(j.get<uint64_t>(), out); return;
    case json::value_t::number_integer: AppendInteger(j.get<int64_t>(), out); return;
    case json::value_t::string: AppendString(j.get_ref<const std::string&>(), out); return;
    case json::value_t::number_float: {
      const double d = j.get<double>();
      if (d >= static_cast<double>(std::numeric_limits<float>::lowest()) &&
          d <= static_cast<double>(std::numeric_limits<float>::max()) &&
          static_cast<double>(static_cast<float>(d)) == d) {
        const float f = static_cast<float>(d);
        uint32_t raw;
        std::memcpy(&raw, &f, 4);
        Put(0xca, out), PutBigEndian(raw, 4, out);
      } else {
        uint64_t raw;
        std::memcpy(&raw, &d, 8);
        Put(0xcb, out), PutBigEndian(raw, 8, out);
      }
      return;
    }
    default: {  // arrays, objects, binary: rare in a change; nlohmann writes them
      std::vector<uint8_t> bytes = json::to_msgpack(j);
      out->append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      return;
    }
  }
}

}  // namespace fieldsync::msgpack
