#include "sync/protocol.h"

#include "sync/msgpack.h"
#include "sync/schema.h"

#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

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
}  // namespace

namespace {

// A frame around `payload`: the flags byte, then the payload itself or, when
// that pays, one zstd frame of it.
std::string Frame(const std::string& payload, Encoding enc, bool compress) {
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

// The checks every frame passes before its payload is read: size, flags,
// and a zstd frame's declared size before it is inflated. `payload` points
// into the frame or into `inflated`.
Status Unwrap(std::string_view frame, const Limits& limits, std::string* inflated, std::string_view* payload,
              Encoding* enc) {
  if (frame.empty()) return Status::Protocol("empty frame");
  if (frame.size() > limits.max_frame_bytes)
    return Status::Limit("frame of " + std::to_string(frame.size()) + " bytes exceeds max_frame_bytes " +
                         std::to_string(limits.max_frame_bytes));
  uint8_t flags = static_cast<uint8_t>(frame[0]);
  if (flags & ~kKnownFlags) return Status::Protocol("unknown frame flags");
  uint8_t e = flags & kEncodingMask;
  if (e > static_cast<uint8_t>(Encoding::kMsgPack)) return Status::Protocol("unknown frame encoding");
  *enc = static_cast<Encoding>(e);
  *payload = frame.substr(1);
  if (flags & kZstdFlag) {
    unsigned long long size = ZSTD_getFrameContentSize(payload->data(), payload->size());
    if (size == ZSTD_CONTENTSIZE_ERROR) return Status::Corruption("corrupt zstd frame header");
    if (size == ZSTD_CONTENTSIZE_UNKNOWN)
      return Status::Protocol("zstd frame must declare its content size");
    if (size > limits.max_decompressed_bytes)
      return Status::Limit("zstd frame declares " + std::to_string(size) +
                           " bytes, over max_decompressed_bytes " +
                           std::to_string(limits.max_decompressed_bytes));
    inflated->resize(size);
    size_t n = ZSTD_decompress(inflated->data(), inflated->size(), payload->data(), payload->size());
    if (ZSTD_isError(n) || n != size) return Status::Corruption("corrupt zstd data");
    *payload = *inflated;
  }
  return Status::OK();
}

// The message in an unwrapped payload, as a JSON tree.
Status ParsePayload(std::string_view payload, Encoding enc, const Limits& limits, json* out) {
  json j;
  if (enc == Encoding::kMsgPack) {
    msgpack::Scan scan = msgpack::Within(payload, limits.max_json_depth);
    if (scan == msgpack::Scan::kMalformed) return Status::Corruption("payload is not valid MessagePack");
    if (scan == msgpack::Scan::kTooDeep) return Status::Limit("message nests too deeply");
    j = json::from_msgpack(payload.begin(), payload.end(), true, /*allow_exceptions=*/false);
    if (!j.is_discarded() && !msgpack::JsonCarries(j))
      return Status::Corruption("MessagePack value JSON cannot carry: invalid UTF-8, binary, NaN or infinity");
  } else {
    if (!JsonWithin(payload, limits.max_json_depth)) return Status::Limit("message nests too deeply");
    j = json::parse(payload.begin(), payload.end(), nullptr, /*allow_exceptions=*/false);
  }
  if (j.is_discarded())
    return Status::Corruption("payload is not valid " + std::string(enc == Encoding::kMsgPack ? "MessagePack" : "JSON"));
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return Status::Protocol("message is not an object with a string 'type'");
  *out = std::move(j);
  return Status::OK();
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
  return Frame(payload, enc, compress);
}

Status DecodeFrame(std::string_view frame, const Limits& limits, json* out) {
  std::string inflated;
  std::string_view payload;
  Encoding enc;
  Status st = Unwrap(frame, limits, &inflated, &payload, &enc);
  if (!st.ok()) return st;
  return ParsePayload(payload, enc, limits, out);
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

// Adds a snapshot field's hlc offset to *hlc: any encoder's non-negative
// integer, signed or not, below 2^53, that keeps the hlc below 2^64.
bool AddOffset(const json& off, Hlc* hlc) {
  if (!off.is_number_integer() || (!off.is_number_unsigned() && off.get<int64_t>() < 0)) return false;
  uint64_t d = off.get<uint64_t>();
  if (d >= kMaxSnapshotOffset || d > UINT64_MAX - *hlc) return false;
  *hlc += d;
  return true;
}

// The row's own stamp, as the compact form has it: the oldest field hlc (so
// every offset is >= 0) and the node that wrote most of its fields.
Stamp RowStamp(const RowState& r) {
  Stamp row;
  if (r.fields.empty()) return row;
  row.hlc = r.fields.front().second.stamp.hlc;
  // A row's fields have one writer or a few: a short list, not a map.
  std::vector<std::pair<NodeId, int>> writes;
  int best = 0;
  for (const auto& field : r.fields) {
    const Stamp& s = field.second.stamp;  // not a structured binding: clang 14 cannot capture one
    row.hlc = std::min(row.hlc, s.hlc);
    auto it = std::find_if(writes.begin(), writes.end(), [&](const auto& w) { return w.first == s.node; });
    if (it == writes.end()) it = writes.insert(writes.end(), {s.node, 0});
    if (int n = ++it->second; n > best) {
      best = n;
      row.node = s.node;
    }
  }
  return row;
}

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
    auto it = j.find(k);
    return it != j.end() && it->is_string() && ParseHex(it->get_ref<const std::string&>(), out);
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

namespace {

void AppendHex(uint64_t v, std::string* out) {
  static const char* kDigits = "0123456789abcdef";
  char digits[17];
  digits[0] = static_cast<char>(0xa0 | 16);  // a fixstr of 16
  for (int i = 16; i >= 1; --i, v >>= 4) digits[i] = kDigits[v & 0xF];
  out->append(digits, 17);
}

// Exactly json::to_msgpack(ChangeToJson(c)): keys in the order nlohmann's
// std::map keeps them, b c h n o r rt s t v x.
void AppendChangeMsgpack(const Change& c, std::string* out) {
  const bool has_column = c.op != Op::kDelete;
  size_t keys = 5 + (has_column ? 2 : 0) + (c.base ? 1 : 0) + (c.ctx.empty() ? 0 : 1) + (c.seq ? 1 : 0) +
                (c.server_ms ? 1 : 0);
  msgpack::AppendMapHeader(keys, out);
  if (c.base) msgpack::AppendString("b", out), AppendHex(c.base, out);
  if (has_column) msgpack::AppendString("c", out), msgpack::AppendString(c.column, out);
  msgpack::AppendString("h", out), AppendHex(c.stamp.hlc, out);
  msgpack::AppendString("n", out), AppendHex(c.stamp.node, out);
  msgpack::AppendString("o", out), msgpack::AppendString(OpName(c.op), out);
  msgpack::AppendString("r", out), msgpack::AppendString(c.row, out);
  if (c.server_ms) msgpack::AppendString("rt", out), msgpack::AppendUnsigned(c.server_ms, out);
  if (c.seq) msgpack::AppendString("s", out), msgpack::AppendInteger(c.seq, out);
  msgpack::AppendString("t", out), msgpack::AppendString(c.table, out);
  if (has_column) msgpack::AppendString("v", out), msgpack::AppendValue(c.value, out);
  if (!c.ctx.empty()) {
    msgpack::AppendString("x", out);
    msgpack::AppendMapHeader(c.ctx.size(), out);
    for (const auto& [node, hlc] : c.ctx) AppendHex(node, out), AppendHex(hlc, out);
  }
}

// One change as ChangeFromJson would read it from the tree from_msgpack
// builds. False, for the caller to fall back to that tree, on anything the
// tree path would refuse and on what this path leaves to it (an unknown or
// repeated key, two context entries naming one node), so the two paths
// never disagree on a change they both take.
bool ReadChangeMsgpack(msgpack::Reader& r, Change* out) {
  size_t n;
  if (!r.MapHeader(&n)) return false;
  Change x;
  unsigned seen = 0;
  // One bit per key, to find a key given twice.
  constexpr unsigned kT = 1, kR = 2, kC = 4, kO = 8, kH = 16, kN = 32, kV = 64, kB = 128, kX = 256, kS = 512,
                     kRt = 1024;
  auto text = [&](std::string* to) {
    std::string_view s;
    if (!r.String(&s) || !msgpack::ValidUtf8(s)) return false;
    to->assign(s);
    return true;
  };
  auto hex = [&](uint64_t* to) {
    std::string_view s;
    return r.String(&s) && ParseHex(s, to);
  };
  for (size_t k = 0; k < n; ++k) {
    std::string_view key;
    if (!r.String(&key)) return false;
    unsigned bit = key == "t" ? kT : key == "r" ? kR : key == "c" ? kC : key == "o" ? kO : key == "h" ? kH
                 : key == "n" ? kN : key == "v" ? kV : key == "b" ? kB : key == "x" ? kX : key == "s" ? kS
                 : key == "rt" ? kRt : 0;
    if (bit == 0 || (seen & bit)) return false;
    seen |= bit;
    bool ok = true;
    switch (bit) {
      case kT: ok = text(&x.table); break;
      case kR: ok = text(&x.row); break;
      case kC: ok = text(&x.column); break;
      case kH: ok = hex(&x.stamp.hlc); break;
      case kN: ok = hex(&x.stamp.node); break;
      case kB: ok = hex(&x.base); break;
      case kV: ok = r.Value(&x.value); break;
      case kO: {
        std::string_view s;
        ok = r.String(&s) && ParseOp(std::string(s), &x.op);
        break;
      }
      case kX: {
        size_t m;
        ok = r.MapHeader(&m);
        for (size_t e = 0; ok && e < m; ++e) {
          uint64_t node, hlc;
          ok = hex(&node) && hex(&hlc) && x.ctx.emplace(node, hlc).second;
        }
        break;
      }
      case kS: {
        json v;
        ok = r.Value(&v) && v.is_number_integer();
        if (ok) x.seq = v.get<int64_t>();
        break;
      }
      case kRt: {
        json v;
        ok = r.Value(&v) && v.is_number_unsigned();
        if (ok) x.server_ms = v.get<uint64_t>();
        break;
      }
    }
    if (!ok) return false;
  }
  if ((seen & (kT | kR | kO | kH | kN)) != (kT | kR | kO | kH | kN)) return false;
  if (x.op == Op::kDelete) {  // the tree path never reads a delete's column or value
    x.column.clear();
    x.value = json();
  } else if ((seen & (kC | kV)) != (kC | kV)) {
    return false;
  }
  *out = std::move(x);
  return true;
}

// A whole message whose `changes` is an array of changes: the changes into
// *changes, every other key into *envelope. False when the tree path must
// judge it (see ReadChangeMsgpack).
bool ReadChangesMessage(std::string_view payload, json* envelope, std::vector<Change>* changes) {
  msgpack::Reader r(payload);
  size_t n;
  if (!r.MapHeader(&n)) return false;
  bool found = false;
  for (size_t k = 0; k < n; ++k) {
    std::string_view key;
    if (!r.String(&key) || !msgpack::ValidUtf8(key)) return false;
    if (key == "changes") {
      size_t m;
      if (found || !r.ArrayHeader(&m)) return false;
      found = true;
      // The header's count is the peer's claim: a frame of one-byte
      // elements may claim millions, so the vector grows only with changes
      // actually read, never by the count up front.
      changes->reserve(std::min<size_t>(m, 1024));
      for (size_t e = 0; e < m; ++e) {
        Change c;
        if (!ReadChangeMsgpack(r, &c)) return false;
        changes->push_back(std::move(c));
      }
      continue;
    }
    json v;
    if (!r.Value(&v)) return false;
    (*envelope)[std::string(key)] = std::move(v);  // a repeated key: the last one, as from_msgpack keeps
  }
  auto type = envelope->find("type");
  return found && r.AtEnd() && type != envelope->end() && type->is_string();
}

}  // namespace

std::string EncodeChangesFrame(const json& envelope, const std::vector<Change>& changes, Encoding enc,
                               bool compress, size_t* payload_bytes) {
  std::string payload;
  payload.reserve(64 + changes.size() * (enc == Encoding::kMsgPack ? 120 : 160));
  size_t keys = 1;
  for (auto it = envelope.begin(); it != envelope.end(); ++it) keys += it.key() != "changes";
  if (enc == Encoding::kMsgPack) msgpack::AppendMapHeader(keys, &payload);
  else payload.push_back('{');
  bool first = true, written = false;
  auto write_changes = [&] {
    written = true;
    if (enc == Encoding::kMsgPack) {
      msgpack::AppendString("changes", &payload);
      msgpack::AppendArrayHeader(changes.size(), &payload);
      for (const auto& c : changes) AppendChangeMsgpack(c, &payload);
      return;
    }
    if (!first) payload.push_back(',');
    payload += "\"changes\":[";
    for (size_t i = 0; i < changes.size(); ++i) {
      if (i) payload.push_back(',');
      payload += ChangeToJsonText(changes[i]);
    }
    payload.push_back(']');
    first = false;
  };
  // The object's keys in order (std::map), "changes" in its place among them.
  for (auto it = envelope.begin(); it != envelope.end(); ++it) {
    if (it.key() == "changes") continue;
    if (!written && it.key() > "changes") write_changes();
    if (enc == Encoding::kMsgPack) {
      msgpack::AppendString(it.key(), &payload);
      msgpack::AppendValue(it.value(), &payload);
    } else {
      if (!first) payload.push_back(',');
      payload += json(it.key()).dump();
      payload.push_back(':');
      payload += it.value().dump();
      first = false;
    }
  }
  if (!written) write_changes();
  if (enc != Encoding::kMsgPack) payload.push_back('}');
  if (payload_bytes) *payload_bytes = payload.size();
  return Frame(payload, enc, compress);
}

Status DecodeChangesFrame(std::string_view frame, const Limits& limits, json* msg, std::vector<Change>* changes,
                          bool* taken) {
  *taken = false;
  std::string inflated;
  std::string_view payload;
  Encoding enc;
  Status st = Unwrap(frame, limits, &inflated, &payload, &enc);
  if (!st.ok()) return st;
  if (enc == Encoding::kMsgPack && msgpack::Within(payload, limits.max_json_depth) == msgpack::Scan::kOk) {
    json envelope = json::object();
    std::vector<Change> list;
    if (ReadChangesMessage(payload, &envelope, &list)) {
      *msg = std::move(envelope);
      *changes = std::move(list);
      *taken = true;
      return Status::OK();
    }
  }
  return ParsePayload(payload, enc, limits, msg);
}

namespace {

// Whether `table.column` is an mv column in `schema` (never, without one).
bool IsMvColumn(const Schema* schema, const std::string& table, const std::string& column) {
  const TableDef* t = schema ? schema->Find(table) : nullptr;
  const ColumnDef* c = t ? t->Find(column) : nullptr;
  return c && c->merge == MergePolicy::kMv;
}

// A field's state as this codec sends it: an mv field's single write goes
// spelled out (in a row) or by its column's `m` (in a block), as readers
// before 2026-12-07 require, while a decoded page holds it as no state.
bool IsSingleWrite(const FieldState& s, bool mv_column) {
  return (mv_column && s.present && s.crdt.is_null()) || IsSpelledOutSingleWrite(s);
}

// Decoders keep the stored form: no state for an mv field's single write.
void DropSingleWrite(FieldState* s) {
  if (IsSpelledOutSingleWrite(*s)) s->crdt = nullptr;
}

}  // namespace

json RowStateToJson(const RowState& r, bool compact, const Schema* schema) {
  json j = {{"t", r.table}, {"r", r.row}};
  if (r.deleted) {
    j["d"] = {{"h", ToHex(r.tomb_stamp.hlc)}, {"n", ToHex(r.tomb_stamp.node)}, {"s", VersionVectorToJson(r.tomb_seen)}};
    return j;
  }
  Hlc row_hlc = 0;
  NodeId row_node = 0;
  if (compact && !r.fields.empty()) {
    Stamp row = RowStamp(r);
    row_hlc = row.hlc;
    row_node = row.node;
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
    else if (s.present && IsMvColumn(schema, r.table, col)) e["c"] = SpelledOutSingleWrite(s);
    f[col] = std::move(e);
  }
  j["f"] = std::move(f);
  return j;
}

Status RowStateFromJson(const json& j, RowState* out) {
  if (!j.is_object() || !j.contains("t") || !j["t"].is_string() || !j.contains("r") || !j["r"].is_string())
    return Status::Protocol("snapshot row needs string t and r");
  auto hex = [](const json& o, const char* k, uint64_t* v) {
    return o.contains(k) && o[k].is_string() && ParseHex(o[k].get_ref<const std::string&>(), v);
  };
  // A compact field's hlc: `base` plus its offset d (0 when absent), which
  // is any encoder's non-negative integer, signed or not, below 2^53.
  auto offset = [](const json& e, Hlc base, Hlc* hlc) {
    *hlc = base;
    return !e.contains("d") || AddOffset(e["d"], hlc);
  };
  RowState r;
  r.table = j["t"].get<std::string>();
  r.row = j["r"].get<std::string>();
  // Schema names are identifiers; so are a snapshot's (and a block's must be).
  if (!Schema::ValidIdentifier(r.table)) return Status::Protocol("snapshot row's table is not an identifier");
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
      if (!Schema::ValidIdentifier(it.key())) return Status::Protocol("snapshot field name is not an identifier");
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
      DropSingleWrite(&s);
      r.fields.emplace_back(it.key(), std::move(s));
    }
  }
  *out = std::move(r);
  return Status::OK();
}

namespace {

bool SameColumns(const RowState& a, const RowState& b) {
  if (a.fields.size() != b.fields.size()) return false;
  for (size_t k = 0; k < a.fields.size(); ++k)
    if (a.fields[k].first != b.fields[k].first) return false;
  return true;
}

// One block: rows [from, to) of one table, all live with the same columns
// in the same order, or all tombstones.
json EncodeBlock(const std::vector<RowState>& rows, size_t from, size_t to, const std::vector<Stamp>& stamps,
                 const Schema* schema) {
  const RowState& first = rows[from];
  json ids = json::array();
  for (size_t i = from; i < to; ++i) ids.push_back(rows[i].row);
  json b = {{"t", first.table}, {"r", std::move(ids)}};
  if (first.deleted) {
    json del = json::array();
    for (size_t i = from; i < to; ++i)
      del.push_back({{"h", ToHex(rows[i].tomb_stamp.hlc)},
                     {"n", ToHex(rows[i].tomb_stamp.node)},
                     {"s", VersionVectorToJson(rows[i].tomb_seen)}});
    b["del"] = std::move(del);
    return b;
  }
  const size_t ncols = first.fields.size();
  json cols = json::array();
  for (const auto& [name, s] : first.fields) cols.push_back(name);
  b["c"] = std::move(cols);
  if (ncols == 0) return b;
  // Row stamps: the first row's hlc in hex, then each row's difference from
  // the one before (rows are in id order, so it may be negative).
  b["h"] = ToHex(stamps[from].hlc);
  json e = json::array();
  std::vector<NodeId> nodes;
  json ni = json::array();
  bool one_node = true;
  for (size_t i = from; i < to; ++i) {
    // Below 2^53 either way: SnapshotBlocksToJson starts a new block otherwise.
    uint64_t a = stamps[i].hlc, p = i == from ? a : stamps[i - 1].hlc;
    e.push_back(a >= p ? static_cast<int64_t>(a - p) : -static_cast<int64_t>(p - a));
    auto it = std::find(nodes.begin(), nodes.end(), stamps[i].node);
    if (it == nodes.end()) it = nodes.insert(nodes.end(), stamps[i].node);
    ni.push_back(static_cast<uint64_t>(it - nodes.begin()));
    one_node = one_node && it == nodes.begin();
  }
  b["e"] = std::move(e);
  json n = json::array();
  for (NodeId node : nodes) n.push_back(ToHex(node));
  b["n"] = std::move(n);
  if (!one_node) b["ni"] = std::move(ni);
  // Column-major values and offsets: one column's values side by side is
  // what compresses best (a page of stock statuses, a column of prices).
  json v = json::array(), d = json::array(), x = json::array(), m = json::array();
  bool any_offset = false;
  for (size_t k = 0; k < ncols; ++k) {
    json vk = json::array(), dk = json::array();
    bool offsets = false;
    // `m` columns: a field without its own c in x has its single write's mv state.
    const bool mv = IsMvColumn(schema, first.table, first.fields[k].first);
    bool single_mv = false;
    for (size_t i = from; i < to && !single_mv; ++i) single_mv = IsSingleWrite(rows[i].fields[k].second, mv);
    if (single_mv) m.push_back(k);
    for (size_t i = from; i < to; ++i) {
      const FieldState& s = rows[i].fields[k].second;
      vk.push_back(s.value);
      uint64_t off = s.stamp.hlc - stamps[i].hlc;
      json extra = json::object();
      if (off >= kMaxSnapshotOffset) {
        extra["h"] = ToHex(s.stamp.hlc);
        off = 0;
      }
      dk.push_back(off);
      offsets = offsets || off != 0;
      if (s.stamp.node != stamps[i].node) extra["n"] = ToHex(s.stamp.node);
      if (s.base) extra["b"] = ToHex(s.base);
      if (single_mv ? !IsSingleWrite(s, mv) : !s.crdt.is_null()) extra["c"] = s.crdt;
      if (!extra.empty()) x.push_back(json::array({i - from, k, std::move(extra)}));
    }
    v.push_back(std::move(vk));
    d.push_back(offsets ? std::move(dk) : json());
    any_offset = any_offset || offsets;
  }
  b["v"] = std::move(v);
  if (any_offset) b["d"] = std::move(d);
  if (!x.empty()) b["x"] = std::move(x);
  if (!m.empty()) b["m"] = std::move(m);
  return b;
}

// An index into an array of `size`: a non-negative integer below it.
bool IndexIn(const json& j, size_t size, size_t* out) {
  if (!j.is_number_integer() || (!j.is_number_unsigned() && j.get<int64_t>() < 0)) return false;
  uint64_t v = j.get<uint64_t>();
  if (v >= size) return false;
  *out = static_cast<size_t>(v);
  return true;
}

Status DecodeBlock(const json& b, std::vector<RowState>* out) {
  auto bad = [](const std::string& why) { return Status::Protocol("snapshot block " + why); };
  if (!b.is_object() || !b.contains("t") || !b["t"].is_string()) return bad("needs a string t");
  if (!b.contains("r") || !b["r"].is_array() || b["r"].empty()) return bad("needs a non-empty array r of row ids");
  const json& ids = b["r"];
  const size_t n = ids.size();
  for (const auto& id : ids)
    if (!id.is_string()) return bad("row ids must be strings");
  // Names are copied into every row: identifiers (at most 63 bytes, what any
  // schema's names are) keep a block from growing in memory far beyond its bytes.
  const std::string& table = b["t"].get_ref<const std::string&>();
  if (!Schema::ValidIdentifier(table)) return bad("table name '" + table.substr(0, 64) + "' is not an identifier");
  auto hex = [](const json& o, const char* k, uint64_t* v) {
    auto it = o.find(k);
    return it != o.end() && it->is_string() && ParseHex(it->get_ref<const std::string&>(), v);
  };
  std::vector<RowState> rows(n);
  for (size_t i = 0; i < n; ++i) {
    rows[i].table = table;
    rows[i].row = ids[i].get<std::string>();
  }
  if (b.contains("del")) {
    const json& del = b["del"];
    for (const char* k : {"c", "h", "e", "n", "ni", "v", "d", "x", "m"})
      if (b.contains(k)) return bad(std::string("of tombstones has no ") + k);
    if (!del.is_array() || del.size() != n) return bad("del must hold one tombstone per row");
    for (size_t i = 0; i < n; ++i) {
      const json& t = del[i];
      if (!t.is_object() || !hex(t, "h", &rows[i].tomb_stamp.hlc) || !hex(t, "n", &rows[i].tomb_stamp.node) ||
          !t.contains("s") || !VersionVectorFromJson(t["s"], &rows[i].tomb_seen))
        return bad("tombstone needs hex h, n and a version vector s");
      rows[i].deleted = true;
    }
  } else {
    if (!b.contains("c") || !b["c"].is_array()) return bad("needs an array c of columns, or del");
    const json& cols = b["c"];
    const size_t ncols = cols.size();
    std::vector<std::string> names;
    for (const auto& c : cols) {
      if (!c.is_string() || !Schema::ValidIdentifier(c.get<std::string>())) return bad("columns must be identifiers");
      names.push_back(c.get<std::string>());
    }
    {
      std::vector<std::string> sorted = names;
      std::sort(sorted.begin(), sorted.end());
      if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return bad("names a column twice");
    }
    if (ncols > 0) {
      // Row stamps.
      uint64_t hlc = 0;
      if (!hex(b, "h", &hlc)) return bad("needs hex h");
      if (!b.contains("e") || !b["e"].is_array() || b["e"].size() != n) return bad("needs one hlc difference e per row");
      std::vector<NodeId> nodes;
      if (!b.contains("n") || !b["n"].is_array() || b["n"].empty()) return bad("needs a non-empty array n of nodes");
      for (const auto& node : b["n"]) {
        uint64_t v = 0;
        if (!node.is_string() || !ParseHex(node.get_ref<const std::string&>(), &v)) return bad("nodes must be hex");
        nodes.push_back(v);
      }
      const json* ni = nullptr;
      if (b.contains("ni")) {
        ni = &b["ni"];
        if (!ni->is_array() || ni->size() != n) return bad("ni must hold one node index per row");
      }
      std::vector<Stamp> stamps(n);
      for (size_t i = 0; i < n; ++i) {
        const json& e = b["e"][i];
        if (!e.is_number_integer()) return bad("hlc differences must be integers");
        if (e.is_number_unsigned() ? e.get<uint64_t>() >= kMaxSnapshotOffset
                                   : e.get<int64_t>() <= -static_cast<int64_t>(kMaxSnapshotOffset))
          return bad("hlc differences must be below 2^53 in size");
        // Applied in 128-bit-free arithmetic: a step out of [0, 2^64) is an error.
        if (e.is_number_unsigned()) {
          uint64_t step = e.get<uint64_t>();
          if (step > UINT64_MAX - hlc) return bad("row hlc out of range");
          hlc += step;
        } else {
          int64_t step = e.get<int64_t>();
          uint64_t mag = step < 0 ? uint64_t{0} - static_cast<uint64_t>(step) : static_cast<uint64_t>(step);
          if (step < 0 ? mag > hlc : mag > UINT64_MAX - hlc) return bad("row hlc out of range");
          hlc = step < 0 ? hlc - mag : hlc + mag;
        }
        stamps[i].hlc = hlc;
        size_t k = 0;
        if (ni && !IndexIn((*ni)[i], nodes.size(), &k)) return bad("node index out of range");
        stamps[i].node = nodes[k];
      }
      if (!b.contains("v") || !b["v"].is_array() || b["v"].size() != ncols) return bad("needs one value array v per column");
      const json* d = nullptr;
      if (b.contains("d")) {
        d = &b["d"];
        if (!d->is_array() || d->size() != ncols) return bad("d must hold one offset array (or null) per column");
      }
      for (size_t k = 0; k < ncols; ++k) {
        const json& vk = b["v"][k];
        if (!vk.is_array() || vk.size() != n) return bad("column '" + names[k] + "' needs one value per row");
        const json* dk = d && !(*d)[k].is_null() ? &(*d)[k] : nullptr;
        if (dk && (!dk->is_array() || dk->size() != n)) return bad("column '" + names[k] + "' needs one offset per row");
        for (size_t i = 0; i < n; ++i) {
          FieldState s;
          s.present = true;
          s.stamp = stamps[i];
          if (dk && !AddOffset((*dk)[i], &s.stamp.hlc))
            return bad("column '" + names[k] + "': offsets must be integers in [0, 2^53)");
          s.value = vk[i];
          rows[i].fields.emplace_back(names[k], std::move(s));
        }
      }
      std::vector<bool> extra(n * ncols, false);
      if (b.contains("x")) {
        if (!b["x"].is_array()) return bad("x must be an array");
        for (const auto& x : b["x"]) {
          size_t i = 0, k = 0;
          if (!x.is_array() || x.size() != 3 || !IndexIn(x[0], n, &i) || !IndexIn(x[1], ncols, &k) || !x[2].is_object())
            return bad("x entries must be [row index, column index, object]");
          // Rows hold their fields in column order, so k is the field's place.
          FieldState& s = rows[i].fields[k].second;
          const json& o = x[2];
          if (o.empty() || extra[i * ncols + k]) return bad("x names each field at most once, with something to say");
          extra[i * ncols + k] = true;
          if (o.contains("h") && s.stamp.hlc != stamps[i].hlc) return bad("x h for a field with an offset");
          if (o.contains("h") && !hex(o, "h", &s.stamp.hlc)) return bad("x h must be hex");
          if (o.contains("n") && !hex(o, "n", &s.stamp.node)) return bad("x n must be hex");
          if (o.contains("b") && !hex(o, "b", &s.base)) return bad("x b must be hex");
          if (o.contains("c")) {
            s.crdt = o["c"];
            DropSingleWrite(&s);
          }
        }
      }
      if (b.contains("m")) {
        if (!b["m"].is_array()) return bad("m must be an array of column indexes");
        // Fields of an `m` column without their own c hold their single
        // write, which a decoded page keeps as no state: nothing to build.
        std::vector<bool> seen(ncols, false);
        for (const auto& mk : b["m"]) {
          size_t k = 0;
          if (!IndexIn(mk, ncols, &k) || seen[k]) return bad("m must be an array of distinct column indexes");
          seen[k] = true;
        }
      }
    } else {
      for (const char* k : {"h", "e", "n", "ni", "v", "d", "x", "m"})
        if (b.contains(k)) return bad(std::string("without columns has no ") + k);
    }
  }
  for (auto& r : rows) out->push_back(std::move(r));
  return Status::OK();
}

}  // namespace

json SnapshotBlocksToJson(const std::vector<RowState>& rows, const Schema* schema) {
  std::vector<Stamp> stamps;
  stamps.reserve(rows.size());
  for (const auto& r : rows) stamps.push_back(r.deleted ? Stamp{} : RowStamp(r));
  json blocks = json::array();
  size_t from = 0;
  for (size_t i = 1; i <= rows.size(); ++i) {
    bool same = i < rows.size() && rows[i].table == rows[from].table && rows[i].deleted == rows[from].deleted &&
                (rows[i].deleted || SameColumns(rows[i], rows[from]));
    if (same && !rows[i].deleted && !rows[i].fields.empty()) {
      // A difference a JavaScript number holds exactly, or a new block.
      uint64_t a = stamps[i].hlc, p = stamps[i - 1].hlc;
      same = (a >= p ? a - p : p - a) < kMaxSnapshotOffset;
    }
    if (!same) {
      blocks.push_back(EncodeBlock(rows, from, i, stamps, schema));
      from = i;
    }
  }
  return blocks;
}

Status SnapshotBlocksFromJson(const json& blocks, std::vector<RowState>* rows) {
  if (!blocks.is_array()) return Status::Protocol("snapshot blocks must be an array");
  std::vector<RowState> out;
  for (const auto& b : blocks)
    if (Status st = DecodeBlock(b, &out); !st.ok()) return st;
  *rows = std::move(out);
  return Status::OK();
}

json ErrorMessage(const Status& st, bool fatal) {
  return {{"type", msg::kError}, {"code", CodeName(st.code())}, {"message", st.message()}, {"fatal", fatal}};
}

bool JsonDepthWithin(std::string_view text, size_t max_depth) { return JsonWithin(text, max_depth); }

}  // namespace fieldsync
