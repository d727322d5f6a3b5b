#include "sync/protocol.h"

#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace fieldsync {

const char* EncodingName(Encoding e) { return e == Encoding::kMsgPack ? "msgpack" : "json"; }

bool ParseEncoding(const std::string& s, Encoding* e) {
  if (s == "json") { *e = Encoding::kJson; return true; }
  if (s == "msgpack") { *e = Encoding::kMsgPack; return true; }
  return false;
}

namespace {
constexpr uint8_t kEncodingMask = 0x03;
constexpr uint8_t kZstdFlag = 0x10;
constexpr uint8_t kKnownFlags = kEncodingMask | kZstdFlag;
constexpr int kZstdLevel = 3;
// A compact snapshot field's hlc offset stays below 2^53, what a JavaScript
// number holds exactly; a field further from its row's stamp names its own.
constexpr uint64_t kMaxSnapshotOffset = uint64_t{1} << 53;

// JSON text is measured before it is parsed, for the same reason as
// MessagePack below: a payload within every size limit could otherwise make
// the parser build millions of nested values before any check saw them.
// Only brackets and strings matter here; the parser judges the rest. Depth
// counts as for MessagePack: the top-level value is 1, a container's
// children one deeper, so only a container with children can exceed it.
bool JsonWithin(std::string_view b, size_t max_depth) {
  size_t depth = 0;
  bool opened = false;  // just after '[' or '{': the next token is a first child, or the close
  for (size_t i = 0; i < b.size(); ++i) {
    char c = b[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (c == ']' || c == '}') {
      if (depth) --depth;
      opened = false;
      continue;
    }
    if (opened && depth + 1 > max_depth) return false;
    opened = false;
    if (c == '[' || c == '{') {
      ++depth;
      opened = true;
    } else if (c == '"') {
      for (++i; i < b.size() && b[i] != '"'; ++i)
        if (b[i] == '\\') ++i;
    }
  }
  return true;
}
// nlohmann's MessagePack reader recurses once per nesting level, so a
// hostile frame of a million nested arrays would overflow the stack before
// any check on the parsed value. This walk reads only the headers, with an
// explicit stack, and refuses too deep or truncated input first.
enum class Scan { kOk, kMalformed, kTooDeep };
Scan MsgpackWithin(std::string_view b, size_t max_depth) {
  std::vector<uint64_t> open;  // items still expected by each open container
  size_t i = 0;
  auto need = [&](size_t n) { return b.size() - i >= n; };
  auto be = [&](size_t n) {
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v = (v << 8) | static_cast<uint8_t>(b[i + k]);
    i += n;
    return v;
  };
  do {
    if (!need(1)) return Scan::kMalformed;
    uint8_t t = static_cast<uint8_t>(b[i++]);
    uint64_t children = 0, skip = 0;
    bool container = false;
    if (t <= 0x7f || t >= 0xe0 || (t >= 0xc0 && t <= 0xc3)) {
      // fixint, nil, false, true: no payload
    } else if (t >= 0x80 && t <= 0x8f) {
      container = true, children = 2ull * (t & 0x0f);
    } else if (t >= 0x90 && t <= 0x9f) {
      container = true, children = t & 0x0f;
    } else if (t >= 0xa0 && t <= 0xbf) {
      skip = t & 0x1f;
    } else {
      switch (t) {
        case 0xc4: case 0xd9: if (!need(1)) return Scan::kMalformed; skip = be(1); break;
        case 0xc5: case 0xda: if (!need(2)) return Scan::kMalformed; skip = be(2); break;
        case 0xc6: case 0xdb: if (!need(4)) return Scan::kMalformed; skip = be(4); break;
        case 0xc7: if (!need(1)) return Scan::kMalformed; skip = be(1) + 1; break;
        case 0xc8: if (!need(2)) return Scan::kMalformed; skip = be(2) + 1; break;
        case 0xc9: if (!need(4)) return Scan::kMalformed; skip = be(4) + 1; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xd4: skip = 2; break;
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: if (!need(2)) return Scan::kMalformed; container = true, children = be(2); break;
        case 0xdd: if (!need(4)) return Scan::kMalformed; container = true, children = be(4); break;
        case 0xde: if (!need(2)) return Scan::kMalformed; container = true, children = 2 * be(2); break;
        case 0xdf: if (!need(4)) return Scan::kMalformed; container = true, children = 2 * be(4); break;
        default: return Scan::kMalformed;  // 0xc1 is never used
      }
    }
    if (skip > b.size() - i) return Scan::kMalformed;
    i += skip;
    if (!open.empty()) --open.back();
    if (container && children > 0) {
      // Every child needs at least one byte: a header claiming more is a lie.
      if (children > b.size() - i) return Scan::kMalformed;
      // This container sits at level open.size() + 1 (the root is 1); its
      // children one deeper, as JsonWithin counts.
      if (open.size() + 2 > max_depth) return Scan::kTooDeep;
      open.push_back(children);
    }
    while (!open.empty() && open.back() == 0) open.pop_back();
  } while (!open.empty());
  return i == b.size() ? Scan::kOk : Scan::kMalformed;
}

// MessagePack strings are not checked for UTF-8 by the reader; JSON text
// is. A bad string would make every later dump() throw, so refuse it here.
bool ValidUtf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : c & (0xff >> (len + 1));
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

// MessagePack can also carry what JSON cannot: NaN and infinities (JSON
// writes them as null, so two peers would disagree) and binary values.
bool ValuesValid(const json& j) {
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

}  // namespace

std::string EncodeFrame(const json& msg, Encoding enc, bool compress, size_t* payload_bytes) {
  std::string payload;
  if (enc == Encoding::kMsgPack) {
    std::vector<uint8_t> bytes = json::to_msgpack(msg);
    payload.assign(bytes.begin(), bytes.end());
  } else {
    payload = msg.dump();
  }
  if (payload_bytes) *payload_bytes = payload.size();
  uint8_t flags = static_cast<uint8_t>(enc);
  std::string frame;
  if (compress && payload.size() >= kCompressThreshold) {
    size_t bound = ZSTD_compressBound(payload.size());
    frame.resize(1 + bound);
    size_t n = ZSTD_compress(frame.data() + 1, bound, payload.data(), payload.size(), kZstdLevel);
    if (!ZSTD_isError(n) && n < payload.size()) {
      frame.resize(1 + n);
      frame[0] = static_cast<char>(flags | kZstdFlag);
      return frame;
    }
  }
  frame.reserve(1 + payload.size());
  frame.push_back(static_cast<char>(flags));
  frame += payload;
  return frame;
}

Status DecodeFrame(std::string_view frame, const Limits& limits, json* out) {
  if (frame.empty()) return Status::Protocol("empty frame");
  if (frame.size() > limits.max_frame_bytes)
    return Status::Limit("frame of " + std::to_string(frame.size()) + " bytes exceeds max_frame_bytes " +
                         std::to_string(limits.max_frame_bytes));
  uint8_t flags = static_cast<uint8_t>(frame[0]);
  if (flags & ~kKnownFlags) return Status::Protocol("unknown frame flags");
  uint8_t enc = flags & kEncodingMask;
  if (enc > static_cast<uint8_t>(Encoding::kMsgPack)) return Status::Protocol("unknown frame encoding");
  std::string_view payload = frame.substr(1);
  std::string inflated;
  if (flags & kZstdFlag) {
    unsigned long long size = ZSTD_getFrameContentSize(payload.data(), payload.size());
    if (size == ZSTD_CONTENTSIZE_ERROR) return Status::Corruption("corrupt zstd frame header");
    if (size == ZSTD_CONTENTSIZE_UNKNOWN)
      return Status::Protocol("zstd frame must declare its content size");
    if (size > limits.max_decompressed_bytes)
      return Status::Limit("zstd frame declares " + std::to_string(size) +
                           " bytes, over max_decompressed_bytes " +
                           std::to_string(limits.max_decompressed_bytes));
    inflated.resize(size);
    size_t n = ZSTD_decompress(inflated.data(), inflated.size(), payload.data(), payload.size());
    if (ZSTD_isError(n) || n != size) return Status::Corruption("corrupt zstd data");
    payload = inflated;
  }
  json j;
  if (enc == static_cast<uint8_t>(Encoding::kMsgPack)) {
    Scan scan = MsgpackWithin(payload, limits.max_json_depth);
    if (scan == Scan::kMalformed) return Status::Corruption("payload is not valid MessagePack");
    if (scan == Scan::kTooDeep) return Status::Limit("message nests too deeply");
    j = json::from_msgpack(payload.begin(), payload.end(), true, /*allow_exceptions=*/false);
    if (!j.is_discarded() && !ValuesValid(j))
      return Status::Corruption("MessagePack value JSON cannot carry: invalid UTF-8, binary, NaN or infinity");
  } else {
    if (!JsonWithin(payload, limits.max_json_depth)) return Status::Limit("message nests too deeply");
    j = json::parse(payload.begin(), payload.end(), nullptr, /*allow_exceptions=*/false);
  }
  if (j.is_discarded()) return Status::Corruption("payload is not valid " + std::string(enc ? "MessagePack" : "JSON"));
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return Status::Protocol("message is not an object with a string 'type'");
  *out = std::move(j);
  return Status::OK();
}

size_t FramePayloadBytes(std::string_view frame) {
  if (frame.empty()) return 0;
  std::string_view payload = frame.substr(1);
  if (!(static_cast<uint8_t>(frame[0]) & kZstdFlag)) return payload.size();
  unsigned long long size = ZSTD_getFrameContentSize(payload.data(), payload.size());
  return size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ? 0 : static_cast<size_t>(size);
}

json ChangeToJson(const Change& c) {
  json j = {{"t", c.table}, {"r", c.row}, {"o", OpName(c.op)},
            {"h", ToHex(c.stamp.hlc)}, {"n", ToHex(c.stamp.node)}};
  if (c.op != Op::kDelete) {
    j["c"] = c.column;
    j["v"] = c.value;
  }
  if (c.base) j["b"] = ToHex(c.base);
  if (!c.ctx.empty()) j["x"] = VersionVectorToJson(c.ctx);
  if (c.seq) j["s"] = c.seq;
  if (c.server_ms) j["rt"] = c.server_ms;
  return j;
}

namespace {

// A string as dump() writes it. Plain printable ASCII (ids, column names,
// most values) is copied; anything else goes through nlohmann, so escapes,
// UTF-8 and its errors are exactly dump()'s.
void AppendJsonString(const std::string& v, std::string* out) {
  for (unsigned char ch : v)
    if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
      *out += json(v).dump();
      return;
    }
  out->push_back('"');
  *out += v;
  out->push_back('"');
}

void AppendJsonValue(const json& v, std::string* out) {
  switch (v.type()) {
    case json::value_t::string: AppendJsonString(v.get_ref<const std::string&>(), out); return;
    case json::value_t::number_integer: *out += std::to_string(v.get<int64_t>()); return;
    case json::value_t::number_unsigned: *out += std::to_string(v.get<uint64_t>()); return;
    case json::value_t::boolean: *out += v.get<bool>() ? "true" : "false"; return;
    case json::value_t::null: *out += "null"; return;
    default: *out += v.dump(); return;  // floats, arrays, objects
  }
}

}  // namespace

std::string ChangeToJsonText(const Change& c) {
  // Keys in the order nlohmann's std::map keeps them: b c h n o r rt s t v x.
  std::string out;
  out.reserve(160);
  out.push_back('{');
  auto key = [&](const char* k) {
    if (out.size() > 1) out.push_back(',');
    out.push_back('"');
    out += k;
    out += "\":";
  };
  auto hex = [&](const char* k, uint64_t v) {
    key(k);
    out.push_back('"');
    out += ToHex(v);
    out.push_back('"');
  };
  const bool has_column = c.op != Op::kDelete;
  if (c.base) hex("b", c.base);
  if (has_column) {
    key("c");
    AppendJsonString(c.column, &out);
  }
  hex("h", c.stamp.hlc);
  hex("n", c.stamp.node);
  key("o");
  AppendJsonString(OpName(c.op), &out);
  key("r");
  AppendJsonString(c.row, &out);
  if (c.server_ms) {
    key("rt");
    out += std::to_string(c.server_ms);
  }
  if (c.seq) {
    key("s");
    out += std::to_string(c.seq);
  }
  key("t");
  AppendJsonString(c.table, &out);
  if (has_column) {
    key("v");
    AppendJsonValue(c.value, &out);
  }
  if (!c.ctx.empty()) {
    key("x");
    out += VersionVectorToJson(c.ctx).dump();
  }
  out.push_back('}');
  return out;
}

Status ChangeFromJson(const json& j, Change* c) {
  if (!j.is_object()) return Status::Protocol("change is not an object");
  auto str = [&](const char* k, std::string* out) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return false;
    *out = it->get<std::string>();
    return true;
  };
  auto hex = [&](const char* k, uint64_t* out) {
    std::string s;
    return str(k, &s) && ParseHex(s, out);
  };
  Change x;
  std::string op;
  if (!str("t", &x.table) || !str("r", &x.row) || !str("o", &op) || !ParseOp(op, &x.op))
    return Status::Protocol("change needs string t, r and a known o");
  if (!hex("h", &x.stamp.hlc) || !hex("n", &x.stamp.node))
    return Status::Protocol("change needs hex h and n");
  if (x.op != Op::kDelete) {
    if (!str("c", &x.column)) return Status::Protocol("change needs a string c");
    auto v = j.find("v");
    if (v == j.end()) return Status::Protocol("change needs v");
    x.value = *v;
  }
  if (j.contains("b") && !hex("b", &x.base)) return Status::Protocol("change b must be hex");
  if (j.contains("x") && !VersionVectorFromJson(j["x"], &x.ctx))
    return Status::Protocol("change x must map hex node to hex hlc");
  if (j.contains("s")) {
    if (!j["s"].is_number_integer()) return Status::Protocol("change s must be an integer");
    x.seq = j["s"].get<int64_t>();
  }
  if (j.contains("rt")) {
    if (!j["rt"].is_number_unsigned()) return Status::Protocol("change rt must be an unsigned integer");
    x.server_ms = j["rt"].get<uint64_t>();
  }
  *c = std::move(x);
  return Status::OK();
}

json RowStateToJson(const RowState& r, bool compact) {
  json j = {{"t", r.table}, {"r", r.row}};
  if (r.deleted) {
    j["d"] = {{"h", ToHex(r.tomb_stamp.hlc)}, {"n", ToHex(r.tomb_stamp.node)}, {"s", VersionVectorToJson(r.tomb_seen)}};
    return j;
  }
  // The row's stamp: the oldest field hlc (so every offset is >= 0) and the
  // node that wrote most of its fields (so most fields name none).
  Hlc row_hlc = 0;
  NodeId row_node = 0;
  if (compact && !r.fields.empty()) {
    row_hlc = r.fields.front().second.stamp.hlc;
    std::map<NodeId, int> writes;
    int best = 0;
    for (const auto& [col, s] : r.fields) {
      row_hlc = std::min(row_hlc, s.stamp.hlc);
      if (int n = ++writes[s.stamp.node]; n > best) {
        best = n;
        row_node = s.stamp.node;
      }
    }
    j["h"] = ToHex(row_hlc);
    j["n"] = ToHex(row_node);
  }
  json f = json::object();
  for (const auto& [col, s] : r.fields) {
    json e = {{"v", s.value}};
    if (!compact) {
      e["h"] = ToHex(s.stamp.hlc);
      e["n"] = ToHex(s.stamp.node);
    } else {
      // An offset a JavaScript number holds exactly; beyond that, the stamp.
      uint64_t d = s.stamp.hlc - row_hlc;
      if (d >= kMaxSnapshotOffset) e["h"] = ToHex(s.stamp.hlc);
      else if (d) e["d"] = d;
      if (s.stamp.node != row_node) e["n"] = ToHex(s.stamp.node);
    }
    if (s.base) e["b"] = ToHex(s.base);
    if (!s.crdt.is_null()) e["c"] = s.crdt;
    f[col] = std::move(e);
  }
  j["f"] = std::move(f);
  return j;
}

Status RowStateFromJson(const json& j, RowState* out) {
  if (!j.is_object() || !j.contains("t") || !j["t"].is_string() || !j.contains("r") || !j["r"].is_string())
    return Status::Protocol("snapshot row needs string t and r");
  auto hex = [](const json& o, const char* k, uint64_t* v) {
    return o.contains(k) && o[k].is_string() && ParseHex(o[k].get<std::string>(), v);
  };
  // A compact field's hlc: `base` plus its offset d (0 when absent), which
  // is any encoder's non-negative integer, signed or not, below 2^53.
  auto offset = [](const json& e, Hlc base, Hlc* hlc) {
    uint64_t d = 0;
    if (e.contains("d")) {
      const json& dj = e["d"];
      if (!dj.is_number_integer() || (!dj.is_number_unsigned() && dj.get<int64_t>() < 0)) return false;
      d = dj.get<uint64_t>();
      if (d >= kMaxSnapshotOffset || d > UINT64_MAX - base) return false;
    }
    *hlc = base + d;
    return true;
  };
  RowState r;
  r.table = j["t"].get<std::string>();
  r.row = j["r"].get<std::string>();
  if (j.contains("d")) {
    const json& d = j["d"];
    if (!d.is_object() || !hex(d, "h", &r.tomb_stamp.hlc) || !hex(d, "n", &r.tomb_stamp.node) || !d.contains("s") ||
        !VersionVectorFromJson(d["s"], &r.tomb_seen))
      return Status::Protocol("snapshot tombstone needs hex h, n and a version vector s");
    r.deleted = true;
  } else {
    if (!j.contains("f") || !j["f"].is_object()) return Status::Protocol("snapshot row needs an object f");
    // A compact row (h or n at the top, and then both) lends its stamp to fields
    // that name none.
    bool compact = j.contains("h") || j.contains("n");
    Stamp row;
    if (compact && (!hex(j, "h", &row.hlc) || !hex(j, "n", &row.node)))
      return Status::Protocol("compact snapshot row needs hex h and n");
    for (auto it = j["f"].begin(); it != j["f"].end(); ++it) {
      const json& e = it.value();
      FieldState s;
      s.present = true;
      bool ok = e.is_object() && e.contains("v") && (!e.contains("b") || hex(e, "b", &s.base));
      // The hlc: the field's own h, else (compact rows only) the row's h plus d.
      if (ok && e.contains("h")) ok = !e.contains("d") && hex(e, "h", &s.stamp.hlc);
      else if (ok) ok = compact && offset(e, row.hlc, &s.stamp.hlc);
      // The node: the field's own n, else (compact rows only) the row's.
      if (ok && e.contains("n")) ok = hex(e, "n", &s.stamp.node);
      else if (ok && compact) s.stamp.node = row.node;
      else ok = false;
      if (!ok)
        return Status::Protocol("snapshot field '" + it.key() + "' needs v, hex h (or, in a compact row, an offset d), "
                                "hex n (or the row's), optional hex b");
      s.value = e["v"];
      if (e.contains("c")) s.crdt = e["c"];
      r.fields.emplace_back(it.key(), std::move(s));
    }
  }
  *out = std::move(r);
  return Status::OK();
}

json ErrorMessage(const Status& st, bool fatal) {
  return {{"type", msg::kError}, {"code", CodeName(st.code())}, {"message", st.message()}, {"fatal", fatal}};
}

bool JsonDepthWithin(std::string_view text, size_t max_depth) { return JsonWithin(text, max_depth); }

}  // namespace fieldsync
