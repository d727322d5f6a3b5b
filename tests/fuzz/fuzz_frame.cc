// libFuzzer target: the frame codec (sync/protocol.h).
//
// DecodeFrame must never crash, whatever the bytes, under small limits
// (1 MiB frames, 4 MiB after zstd). When it accepts a frame, the message must
// survive the codec: re-encoding it with EncodeFrame as JSON and as
// MessagePack (compressed when it pays, and uncompressed) and decoding that
// again gives an equal json. Equal means nlohmann's operator== except that
// NaN equals NaN (MessagePack can carry NaN; JSON text cannot). Any
// difference aborts with both values printed.
//
// DecodeChangesFrame, which reads a MessagePack message's changes without
// the JSON tree, must agree with DecodeFrame on every input: the same status
// for what it does not take, and for what it takes the same message and the
// changes ChangeFromJson reads from the tree. EncodeChangesFrame of those
// changes must give exactly EncodeFrame's bytes.
//
// Built and run by tools/fuzz.sh.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sync/protocol.h"

namespace {

using fieldsync::json;

bool SameJson(const json& a, const json& b) {
  if (a.is_number_float() && b.is_number_float() && std::isnan(a.get<double>()) &&
      std::isnan(b.get<double>()))
    return true;
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!SameJson(a[i], b[i])) return false;
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !SameJson(it.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

// What dump() would hide: non-finite floats (dumped as null) and MessagePack
// bin/ext values (dumped as {"bytes":...}) are shown as tagged strings.
json Visible(const json& j) {
  if (j.is_number_float() && !std::isfinite(j.get<double>()))
    return "<float " + std::to_string(j.get<double>()) + ">";
  if (j.is_binary()) {
    const auto& b = j.get_binary();
    return "<binary " + std::to_string(b.size()) + " bytes, subtype " +
           (b.has_subtype() ? std::to_string(b.subtype()) : std::string("none")) + ">";
  }
  if (j.is_array()) {
    json out = json::array();
    for (const auto& e : j) out.push_back(Visible(e));
    return out;
  }
  if (j.is_object()) {
    json out = json::object();
    for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = Visible(it.value());
    return out;
  }
  return j;
}

// Never throws (dump() would on invalid UTF-8).
std::string Show(const json& j) {
  std::string s = Visible(j).dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 2000) s = s.substr(0, 2000) + "...";
  return s;
}

[[noreturn]] void Fail(const char* what, const json& original, const json* decoded,
                       const fieldsync::Status* st) {
  std::fprintf(stderr, "fuzz_frame: %s\n  decoded:    %s\n", what, Show(original).c_str());
  if (decoded) std::fprintf(stderr, "  round trip: %s\n", Show(*decoded).c_str());
  if (st) std::fprintf(stderr, "  status:     %s\n", st->ToString().c_str());
  std::abort();
}


bool SameChange(const fieldsync::Change& a, const fieldsync::Change& b) {
  return a.table == b.table && a.row == b.row && a.column == b.column && a.op == b.op &&
         a.value.type() == b.value.type() && SameJson(a.value, b.value) && a.stamp.hlc == b.stamp.hlc &&
         a.stamp.node == b.stamp.node && a.base == b.base && a.ctx == b.ctx && a.seq == b.seq &&
         a.server_ms == b.server_ms;
}

void CheckDirectPath(std::string_view input, const fieldsync::Limits& limits, const fieldsync::Status& tree_st,
                     const json& tree) {
  using namespace fieldsync;
  json msg;
  std::vector<Change> changes;
  bool taken = false;
  Status st = DecodeChangesFrame(input, limits, &msg, &changes, &taken);
  if (!taken) {
    if (st.code() != tree_st.code() || st.message() != tree_st.message())
      Fail("DecodeChangesFrame's status differs from DecodeFrame's", tree, &msg, &st);
    if (st.ok() && !SameJson(msg, tree)) Fail("DecodeChangesFrame's message differs from DecodeFrame's", tree, &msg, nullptr);
    return;
  }
  if (!st.ok() || !tree_st.ok()) Fail("DecodeChangesFrame took changes DecodeFrame refused", tree, &msg, &tree_st);
  const json& arr = tree["changes"];
  if (!arr.is_array() || arr.size() != changes.size())
    Fail("DecodeChangesFrame took a different number of changes", tree, &msg, nullptr);
  for (size_t i = 0; i < arr.size(); ++i) {
    Change c;
    Status cs = ChangeFromJson(arr[i], &c);
    if (!cs.ok()) Fail("DecodeChangesFrame took a change ChangeFromJson refuses", arr[i], nullptr, &cs);
    if (!SameChange(c, changes[i])) {
      json mine = ChangeToJson(changes[i]);
      Fail("DecodeChangesFrame read a change differently", arr[i], &mine, nullptr);
    }
  }
  json rest = tree;
  rest.erase("changes");
  if (!SameJson(rest, msg)) Fail("DecodeChangesFrame's message differs from DecodeFrame's", rest, &msg, nullptr);
  // Written again, directly and through the tree: the same bytes.
  json with = msg;
  json rebuilt = json::array();
  for (const auto& c : changes) rebuilt.push_back(ChangeToJson(c));
  with["changes"] = std::move(rebuilt);
  for (Encoding enc : {Encoding::kJson, Encoding::kMsgPack})
    if (EncodeChangesFrame(msg, changes, enc, false) != EncodeFrame(with, enc, false))
      Fail("EncodeChangesFrame differs from EncodeFrame", with, nullptr, nullptr);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldsync;
  Limits limits;
  limits.max_frame_bytes = 1u << 20;
  limits.max_decompressed_bytes = 4u << 20;

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  json msg;
  Status st = DecodeFrame(input, limits, &msg);
  CheckDirectPath(input, limits, st, msg);
  if (!st.ok()) return 0;
  if (!msg.is_object()) Fail("DecodeFrame succeeded without an object", msg, nullptr, nullptr);

  // The round trip checks the codec, not the limits: a 4 MiB payload may
  // re-encode (uncompressed) past 1 MiB, so decode again with room for it.
  Limits again = limits;
  again.max_frame_bytes = 64u << 20;
  again.max_decompressed_bytes = 64u << 20;
  for (Encoding enc : {Encoding::kJson, Encoding::kMsgPack}) {
    for (bool compress : {true, false}) {
      std::string frame = EncodeFrame(msg, enc, compress);
      json back;
      Status st2 = DecodeFrame(frame, again, &back);
      const char* what = enc == Encoding::kJson
                             ? (compress ? "JSON (compressed) re-encoding does not decode"
                                         : "JSON re-encoding does not decode")
                             : (compress ? "MessagePack (compressed) re-encoding does not decode"
                                         : "MessagePack re-encoding does not decode");
      if (!st2.ok()) Fail(what, msg, nullptr, &st2);
      if (!SameJson(msg, back))
        Fail(enc == Encoding::kJson ? "JSON re-encoding decodes to a different message"
                                    : "MessagePack re-encoding decodes to a different message",
             msg, &back, nullptr);
    }
  }
  return 0;
}
