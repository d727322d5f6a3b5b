// Wire codec: frames (encoding, zstd, limits) and the JSON form of changes.
#include "sync/protocol.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace fieldsync {
namespace {

constexpr uint8_t kZstdBit = 0x10;
constexpr uint64_t kT0 = 1'700'000'000'000ULL;

// zstd-compresses `data`; without the content size in the frame header when
// `with_size` is false.
std::string Zstd(const std::string& data, bool with_size = true) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  EXPECT_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, with_size ? 1 : 0)));
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress2(cctx, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(cctx);
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

std::string Frame(uint8_t flags, const std::string& payload) {
  return std::string(1, static_cast<char>(flags)) + payload;
}

std::string MsgPackBytes(const json& j) {
  std::vector<uint8_t> b = json::to_msgpack(j);
  return std::string(b.begin(), b.end());
}

json SmallMessage() { return {{"type", "ping"}, {"n", 1}}; }

// A compressible message well above kCompressThreshold.
json BigMessage() {
  json changes = json::array();
  for (int i = 0; i < 200; ++i)
    changes.push_back({{"t", "visits"}, {"r", "row-" + std::to_string(i)}, {"o", "set"},
                       {"c", "notes"}, {"v", "the same note text, again and again"}});
  return {{"type", "push"}, {"changes", changes}, {"big", std::string(4000, 'x')}};
}

// ---- frames ------------------------------------------------------------------

class FrameRoundTrip : public ::testing::TestWithParam<Encoding> {};

TEST_P(FrameRoundTrip, SmallMessageIsSentUncompressed) {
  Encoding enc = GetParam();
  std::string frame = EncodeFrame(SmallMessage(), enc);
  ASSERT_FALSE(frame.empty());
  EXPECT_EQ(static_cast<uint8_t>(frame[0]), static_cast<uint8_t>(enc));  // no zstd bit
  json back;
  Status st = DecodeFrame(frame, Limits{}, &back);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(back, SmallMessage());
}

TEST_P(FrameRoundTrip, BigMessageIsCompressed) {
  Encoding enc = GetParam();
  json msg = BigMessage();
  std::string frame = EncodeFrame(msg, enc);
  uint8_t flags = static_cast<uint8_t>(frame[0]);
  EXPECT_EQ(flags & kZstdBit, kZstdBit);
  EXPECT_EQ(flags & 0x03, static_cast<uint8_t>(enc));
  EXPECT_EQ(flags & ~(kZstdBit | 0x03), 0);
  std::string plain = enc == Encoding::kJson ? msg.dump() : MsgPackBytes(msg);
  EXPECT_LT(frame.size(), plain.size());
  json back;
  Status st = DecodeFrame(frame, Limits{}, &back);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(back, msg);
}

TEST_P(FrameRoundTrip, BigMessageUncompressedWhenAsked) {
  Encoding enc = GetParam();
  json msg = BigMessage();
  std::string frame = EncodeFrame(msg, enc, /*compress=*/false);
  EXPECT_EQ(static_cast<uint8_t>(frame[0]), static_cast<uint8_t>(enc));
  std::string plain = enc == Encoding::kJson ? msg.dump() : MsgPackBytes(msg);
  EXPECT_EQ(frame.substr(1), plain);
  json back;
  ASSERT_TRUE(DecodeFrame(frame, Limits{}, &back).ok());
  EXPECT_EQ(back, msg);
}

TEST_P(FrameRoundTrip, PayloadBytesAreTheSizeBeforeCompression) {
  Encoding enc = GetParam();
  for (const json& msg : {SmallMessage(), BigMessage()}) {
    size_t encoded = 0;
    std::string frame = EncodeFrame(msg, enc, true, &encoded);
    std::string plain = enc == Encoding::kJson ? msg.dump() : MsgPackBytes(msg);
    EXPECT_EQ(encoded, plain.size());
    EXPECT_EQ(FramePayloadBytes(frame), plain.size());
  }
  EXPECT_EQ(FramePayloadBytes(""), 0u);
  EXPECT_EQ(FramePayloadBytes(std::string("\x10garbage", 8)), 0u);  // zstd bit, no zstd header
}

TEST_P(FrameRoundTrip, DeclaredSizeExactlyAtLimitAccepted) {
  Encoding enc = GetParam();
  json msg = BigMessage();
  std::string plain = enc == Encoding::kJson ? msg.dump() : MsgPackBytes(msg);
  std::string frame = EncodeFrame(msg, enc);
  ASSERT_EQ(static_cast<uint8_t>(frame[0]) & kZstdBit, kZstdBit);
  Limits limits;
  limits.max_decompressed_bytes = plain.size();
  json back;
  EXPECT_TRUE(DecodeFrame(frame, limits, &back).ok());
  limits.max_decompressed_bytes = plain.size() - 1;
  EXPECT_EQ(DecodeFrame(frame, limits, &back).code(), Code::kLimitExceeded);
}

TEST_P(FrameRoundTrip, NestingUpToMaxDepthAccepted) {
  // {"type":..., "a": [[...]]}: the object is depth 1, k arrays reach k + 1.
  auto nested = [](int k) {
    json inner = json::array();
    for (int i = 1; i < k; ++i) inner = json::array({inner});
    return json{{"type", "t"}, {"a", inner}};
  };
  Limits limits;
  limits.max_json_depth = 8;
  json back;
  Status st = DecodeFrame(EncodeFrame(nested(7), GetParam()), limits, &back);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(DecodeFrame(EncodeFrame(nested(8), GetParam()), limits, &back).code(), Code::kLimitExceeded);
}

INSTANTIATE_TEST_SUITE_P(Encodings, FrameRoundTrip, ::testing::Values(Encoding::kJson, Encoding::kMsgPack),
                         [](const ::testing::TestParamInfo<Encoding>& i) {
                           return std::string(EncodingName(i.param));
                         });

TEST(FrameDecode, RefusesEmptyFrame) {
  json out;
  EXPECT_EQ(DecodeFrame("", Limits{}, &out).code(), Code::kProtocolError);
}

TEST(FrameDecode, RefusesFrameOverMaxFrameBytes) {
  std::string frame = EncodeFrame(BigMessage(), Encoding::kJson, /*compress=*/false);
  Limits limits;
  limits.max_frame_bytes = frame.size() - 1;
  json out = "untouched";
  EXPECT_EQ(DecodeFrame(frame, limits, &out).code(), Code::kLimitExceeded);
  EXPECT_EQ(out, "untouched");
  limits.max_frame_bytes = frame.size();
  EXPECT_TRUE(DecodeFrame(frame, limits, &out).ok());
}

TEST(FrameDecode, RefusesUnknownFlagBits) {
  std::string payload = SmallMessage().dump();
  for (uint8_t bit : {0x04, 0x08, 0x20, 0x40, 0x80}) {
    json out;
    EXPECT_EQ(DecodeFrame(Frame(bit, payload), Limits{}, &out).code(), Code::kProtocolError)
        << "flag bit " << int(bit);
  }
}

TEST(FrameDecode, RefusesUnknownEncodings) {
  std::string payload = SmallMessage().dump();
  for (uint8_t enc : {2, 3}) {
    json out;
    EXPECT_EQ(DecodeFrame(Frame(enc, payload), Limits{}, &out).code(), Code::kProtocolError) << int(enc);
    EXPECT_EQ(DecodeFrame(Frame(enc | kZstdBit, Zstd(payload)), Limits{}, &out).code(), Code::kProtocolError)
        << int(enc);
  }
}

TEST(FrameDecode, AcceptsHandBuiltZstdFrame) {
  // Both ends agree on the format, not just on this encoder.
  std::string payload = SmallMessage().dump();
  json out;
  Status st = DecodeFrame(Frame(kZstdBit, Zstd(payload)), Limits{}, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(out, SmallMessage());
  st = DecodeFrame(Frame(kZstdBit | 1, Zstd(MsgPackBytes(SmallMessage()))), Limits{}, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(out, SmallMessage());
}

TEST(FrameDecode, RefusesCorruptZstd) {
  json out = "untouched";
  // Not a zstd frame at all.
  EXPECT_EQ(DecodeFrame(Frame(kZstdBit, "this is not zstd data"), Limits{}, &out).code(), Code::kCorruption);
  // A valid frame cut short: its header is intact, its data is not.
  std::string z = Zstd(BigMessage().dump());
  ASSERT_GT(z.size(), 20u);
  EXPECT_EQ(DecodeFrame(Frame(kZstdBit, z.substr(0, z.size() - 8)), Limits{}, &out).code(), Code::kCorruption);
  EXPECT_EQ(out, "untouched");
}

TEST(FrameDecode, RefusesZstdWithoutContentSize) {
  std::string payload = BigMessage().dump();
  std::string z = Zstd(payload, /*with_size=*/false);
  ASSERT_EQ(ZSTD_getFrameContentSize(z.data(), z.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  json out;
  EXPECT_EQ(DecodeFrame(Frame(kZstdBit, z), Limits{}, &out).code(), Code::kProtocolError);
}

TEST(FrameDecode, RefusesZstdBomb) {
  // 2 MiB of zeros compress to a few dozen bytes.
  std::string zeros(2u << 20, '\0');
  std::string z = Zstd(zeros);
  ASSERT_LT(z.size(), 4096u);
  ASSERT_EQ(ZSTD_getFrameContentSize(z.data(), z.size()), zeros.size());
  Limits limits;
  limits.max_decompressed_bytes = 1u << 20;
  json out;
  EXPECT_EQ(DecodeFrame(Frame(kZstdBit, z), limits, &out).code(), Code::kLimitExceeded);
  EXPECT_EQ(DecodeFrame(Frame(kZstdBit | 1, z), limits, &out).code(), Code::kLimitExceeded);
}

TEST(FrameDecode, RefusesBombBeforeInflating) {
  // Only the frame header survives: inflating would report corruption, so a
  // limit error shows the declared size was checked first.
  std::string z = Zstd(std::string(2u << 20, '\0'));
  // The shortest prefix from which zstd can read the declared size.
  size_t header = 1;
  while (header < z.size() && ZSTD_getFrameContentSize(z.data(), header) == ZSTD_CONTENTSIZE_ERROR) ++header;
  ASSERT_LT(header, z.size());
  ASSERT_EQ(ZSTD_getFrameContentSize(z.data(), header), 2u << 20);
  std::string header_only = z.substr(0, header);
  Limits limits;
  limits.max_decompressed_bytes = 1u << 20;
  json out;
  EXPECT_EQ(DecodeFrame(Frame(kZstdBit, header_only), limits, &out).code(), Code::kLimitExceeded);
  limits.max_decompressed_bytes = 4u << 20;  // within the limit: now it is just corrupt
  EXPECT_EQ(DecodeFrame(Frame(kZstdBit, header_only), limits, &out).code(), Code::kCorruption);
}

TEST(FrameDecode, RefusesFrameDeclaring100MegabytesWithDefaultLimits) {
  // A streaming frame that promises 100 MB but carries only its first MiB.
  const size_t kDeclared = 100u << 20;
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ASSERT_FALSE(ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, kDeclared)));
  std::string chunk(1u << 20, '\0');
  std::string out_buf(ZSTD_compressBound(chunk.size()) + 1024, '\0');
  ZSTD_inBuffer in{chunk.data(), chunk.size(), 0};
  ZSTD_outBuffer out{out_buf.data(), out_buf.size(), 0};
  size_t rc;
  do {
    rc = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_flush);
    ASSERT_FALSE(ZSTD_isError(rc)) << ZSTD_getErrorName(rc);
  } while (rc != 0);
  ZSTD_freeCCtx(cctx);
  out_buf.resize(out.pos);
  ASSERT_EQ(ZSTD_getFrameContentSize(out_buf.data(), out_buf.size()), kDeclared);
  json msg;
  EXPECT_EQ(DecodeFrame(Frame(kZstdBit, out_buf), Limits{}, &msg).code(), Code::kLimitExceeded);
}

TEST(FrameDecode, RefusesDeepNestingWithDefaultLimits) {
  std::string text = "{\"type\":\"t\",\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  json out;
  EXPECT_EQ(DecodeFrame(Frame(0, text), Limits{}, &out).code(), Code::kLimitExceeded);
}

TEST(FrameDecode, RefusesPayloadNotAnObjectWithStringType) {
  for (const char* text : {"[1,2]", "\"push\"", "42", "null", "{}", "{\"kind\":\"push\"}", "{\"type\":5}",
                           "{\"type\":null}", "{\"type\":[\"push\"]}"}) {
    json out;
    EXPECT_EQ(DecodeFrame(Frame(0, text), Limits{}, &out).code(), Code::kProtocolError) << text;
  }
  json out;
  EXPECT_EQ(DecodeFrame(Frame(1, MsgPackBytes(json::array({1, 2}))), Limits{}, &out).code(), Code::kProtocolError);
  EXPECT_EQ(DecodeFrame(Frame(1, MsgPackBytes({{"type", 1}})), Limits{}, &out).code(), Code::kProtocolError);
}

TEST(FrameDecode, RefusesInvalidJsonAndMsgPack) {
  for (const char* text : {"{\"type\":", "{type: \"push\"}", "{\"type\":\"push\"} trailing", "\xff\xfe"}) {
    json out = "untouched";
    EXPECT_EQ(DecodeFrame(Frame(0, text), Limits{}, &out).code(), Code::kCorruption) << text;
    EXPECT_EQ(out, "untouched");
  }
  json out;
  EXPECT_EQ(DecodeFrame(Frame(0, ""), Limits{}, &out).code(), Code::kCorruption);  // flags byte only
  EXPECT_EQ(DecodeFrame(Frame(1, "\xc1"), Limits{}, &out).code(), Code::kCorruption);  // never-used byte
  std::string truncated = MsgPackBytes(SmallMessage());
  truncated.pop_back();
  EXPECT_EQ(DecodeFrame(Frame(1, truncated), Limits{}, &out).code(), Code::kCorruption);
}

TEST(EncodingNames, RoundTrip) {
  Encoding e = Encoding::kJson;
  ASSERT_TRUE(ParseEncoding("msgpack", &e));
  EXPECT_EQ(e, Encoding::kMsgPack);
  EXPECT_STREQ(EncodingName(e), "msgpack");
  ASSERT_TRUE(ParseEncoding("json", &e));
  EXPECT_EQ(e, Encoding::kJson);
  EXPECT_FALSE(ParseEncoding("cbor", &e));
  EXPECT_FALSE(ParseEncoding("JSON", &e));
}

TEST(ErrorMessages, CarryCodeNameAndFatal) {
  json m = ErrorMessage(Status(Code::kClockSkew, "too far ahead"), true);
  EXPECT_EQ(m["type"], "error");
  EXPECT_EQ(m["code"], "clock_skew");
  EXPECT_EQ(m["message"], "too far ahead");
  EXPECT_EQ(m["fatal"], true);
  EXPECT_EQ(CodeFromName(m["code"].get<std::string>()), Code::kClockSkew);
}

// ---- changes -----------------------------------------------------------------

void ExpectSameChange(const Change& a, const Change& b) {
  EXPECT_EQ(a.table, b.table);
  EXPECT_EQ(a.row, b.row);
  EXPECT_EQ(a.column, b.column);
  EXPECT_EQ(a.op, b.op);
  EXPECT_EQ(a.value, b.value) << a.value.dump() << " vs " << b.value.dump();
  EXPECT_EQ(a.stamp, b.stamp);
  EXPECT_EQ(a.base, b.base);
  EXPECT_EQ(a.ctx, b.ctx);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.server_ms, b.server_ms);
}

std::vector<Change> OneOfEveryOp() {
  std::vector<Change> out;
  Change set;
  set.table = "visits";
  set.row = "550e8400-e29b-41d4-a716-446655440000";
  set.column = "notes";
  set.op = Op::kSet;
  set.value = "hello \"world\"";
  set.stamp = {MakeHlc(kT0, 3), 0xABCDEF0123456789ULL};
  set.base = MakeHlc(kT0 - 5, 1);
  set.seq = 42;
  set.server_ms = kT0 + 17;
  out.push_back(set);

  Change mv = set;
  mv.column = "summary";
  mv.value = json::object({{"nested", json::array({1, 2.5, nullptr})}});
  mv.base = 0;
  mv.ctx = {{1, MakeHlc(kT0, 1)}, {0xFFFFFFFFFFFFFFFFULL, MakeHlc(kT0 - 1, 0)}};
  mv.seq = 0;
  mv.server_ms = 0;
  out.push_back(mv);

  Change del;
  del.table = "visits";
  del.row = "r1";
  del.op = Op::kDelete;
  del.stamp = {MakeHlc(kT0, 9), 2};
  del.seq = 7;
  out.push_back(del);

  Change inc;
  inc.table = "accounts";
  inc.row = "r2";
  inc.column = "visit_count";
  inc.op = Op::kIncrement;
  inc.value = json::array({5, 2});
  inc.stamp = {MakeHlc(kT0, 10), 3};
  inc.server_ms = kT0;
  out.push_back(inc);

  Change add;
  add.table = "visits";
  add.row = "r3";
  add.column = "tags";
  add.op = Op::kAdd;
  add.value = "hot";
  add.stamp = {MakeHlc(kT0, 11), 4};
  out.push_back(add);

  Change rem = add;
  rem.op = Op::kRemove;
  rem.stamp = {MakeHlc(kT0, 12), 5};
  rem.ctx = {{4, MakeHlc(kT0, 11)}, {6, MakeHlc(kT0, 2)}};
  rem.seq = 9000000000LL;
  out.push_back(rem);
  return out;
}

TEST(ChangeJson, ShortKeys) {
  std::vector<Change> all = OneOfEveryOp();
  json j = ChangeToJson(all[0]);
  EXPECT_EQ(j["t"], "visits");
  EXPECT_EQ(j["o"], "set");
  EXPECT_EQ(j["h"], ToHex(all[0].stamp.hlc));
  EXPECT_EQ(j["n"], "abcdef0123456789");
  EXPECT_EQ(j["c"], "notes");
  EXPECT_EQ(j["b"], ToHex(all[0].base));
  EXPECT_EQ(j["s"], 42);
  EXPECT_EQ(j["rt"], kT0 + 17);
  EXPECT_FALSE(j.contains("x"));

  json d = ChangeToJson(all[2]);  // delete: no column, value, base or rt
  EXPECT_EQ(d["o"], "del");
  for (const char* k : {"c", "v", "b", "x", "rt"}) EXPECT_FALSE(d.contains(k)) << k;

  json r = ChangeToJson(all[5]);
  EXPECT_EQ(r["o"], "rem");
  EXPECT_EQ(r["x"][ToHex(4)], ToHex(MakeHlc(kT0, 11)));
}

TEST(ChangeJson, RoundTripEveryOp) {
  for (const Change& c : OneOfEveryOp()) {
    SCOPED_TRACE(OpName(c.op));
    Change back;
    Status st = ChangeFromJson(ChangeToJson(c), &back);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ExpectSameChange(c, back);
  }
}

TEST(ChangeJson, RoundTripThroughFrames) {
  for (Encoding enc : {Encoding::kJson, Encoding::kMsgPack}) {
    SCOPED_TRACE(EncodingName(enc));
    json arr = json::array();
    std::vector<Change> all = OneOfEveryOp();
    for (const auto& c : all) arr.push_back(ChangeToJson(c));
    json back;
    ASSERT_TRUE(DecodeFrame(EncodeFrame({{"type", msg::kPush}, {"changes", arr}}, enc), Limits{}, &back).ok());
    ASSERT_EQ(back["changes"].size(), all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      Change c;
      Status st = ChangeFromJson(back["changes"][i], &c);
      ASSERT_TRUE(st.ok()) << st.ToString();
      ExpectSameChange(all[i], c);
    }
  }
}

TEST(ChangeJson, DeleteNeedsNoColumnOrValue) {
  json j = {{"t", "visits"}, {"r", "r1"}, {"o", "del"}, {"h", "1"}, {"n", "2"}};
  Change c;
  ASSERT_TRUE(ChangeFromJson(j, &c).ok());
  EXPECT_EQ(c.op, Op::kDelete);
  EXPECT_EQ(c.stamp, (Stamp{1, 2}));
  EXPECT_TRUE(c.column.empty());
}

TEST(ChangeJson, NullValueIsAValue) {
  json j = ChangeToJson(OneOfEveryOp()[0]);
  j["v"] = nullptr;
  Change c;
  ASSERT_TRUE(ChangeFromJson(j, &c).ok());
  EXPECT_TRUE(c.value.is_null());
}

TEST(ChangeJson, Refusals) {
  const json good = ChangeToJson(OneOfEveryOp()[0]);
  {
    Change c;
    ASSERT_TRUE(ChangeFromJson(good, &c).ok());
  }
  struct Case {
    const char* label;
    json j;
  };
  auto without = [&](const char* key) { json j = good; j.erase(key); return j; };
  auto with = [&](const char* key, json v) { json j = good; j[key] = std::move(v); return j; };
  std::vector<Case> cases = {
      {"not an object", json::array({good})},
      {"missing t", without("t")},
      {"missing r", without("r")},
      {"missing o", without("o")},
      {"non-string t", with("t", 1)},
      {"unknown op", with("o", "put")},
      {"op as number", with("o", 0)},
      {"missing h", without("h")},
      {"missing n", without("n")},
      {"non-hex h", with("h", "xyz")},
      {"17-digit h", with("h", "00000000000000001")},
      {"empty h", with("h", "")},
      {"numeric h", with("h", 5)},
      {"non-hex n", with("n", "0x12")},
      {"missing c", without("c")},
      {"non-string c", with("c", 3)},
      {"missing v", without("v")},
      {"non-hex b", with("b", "later")},
      {"numeric b", with("b", 7)},
      {"x not an object", with("x", json::array({"1", "2"}))},
      {"x non-hex node", with("x", {{"zz", "01"}})},
      {"x non-string hlc", with("x", {{"01", 5}})},
      {"x non-hex hlc", with("x", {{"01", "nope"}})},
      {"fractional s", with("s", 1.5)},
      {"string s", with("s", "3")},
      {"negative rt", with("rt", -1)},
      {"string rt", with("rt", "5")},
  };
  for (const auto& tc : cases) {
    Change c;
    c.table = "sentinel";
    Status st = ChangeFromJson(tc.j, &c);
    EXPECT_EQ(st.code(), Code::kProtocolError) << tc.label << ": " << tc.j.dump();
    EXPECT_EQ(c.table, "sentinel") << tc.label << " wrote its output";
  }
}

TEST(ChangeJson, NonDeleteOpsNeedColumnAndValue) {
  for (const char* op : {"set", "inc", "add", "rem"}) {
    json j = {{"t", "t"}, {"r", "r"}, {"o", op}, {"h", "1"}, {"n", "2"}, {"c", "col"}};
    Change c;
    EXPECT_EQ(ChangeFromJson(j, &c).code(), Code::kProtocolError) << op << " without v";
    j["v"] = 1;
    j.erase("c");
    EXPECT_EQ(ChangeFromJson(j, &c).code(), Code::kProtocolError) << op << " without c";
  }
}

}  // namespace
}  // namespace fieldsync

namespace fieldsync {
namespace {

std::string MsgpackFrame(const std::string& payload) { return std::string(1, '\x01') + payload; }

TEST(MsgpackHardening, DeepNestingIsRefusedWithoutRecursing) {
  // A million nested one-element arrays: would overflow the stack of a
  // recursive reader.
  std::string payload(1000000, '\x91');
  payload.push_back('\xc0');
  Limits lim;
  lim.max_frame_bytes = 4u << 20;
  json m;
  Status st = DecodeFrame(MsgpackFrame(payload), lim, &m);
  EXPECT_EQ(st.code(), Code::kLimitExceeded) << st.ToString();
}

TEST(MsgpackHardening, TruncatedAndLyingHeadersAreRefused) {
  json m;
  Limits lim;
  // array32 claiming 4 billion elements, with none present.
  EXPECT_EQ(DecodeFrame(MsgpackFrame(std::string("\xdd\xff\xff\xff\xff", 5)), lim, &m).code(), Code::kCorruption);
  // str8 of 200 bytes with 3 present.
  EXPECT_EQ(DecodeFrame(MsgpackFrame(std::string("\xd9\xc8" "abc", 5)), lim, &m).code(), Code::kCorruption);
  // trailing bytes after a complete value
  std::vector<uint8_t> ok = json::to_msgpack(json{{"type", "pull"}});
  std::string bytes(ok.begin(), ok.end());
  EXPECT_TRUE(DecodeFrame(MsgpackFrame(bytes), lim, &m).ok());
  EXPECT_EQ(DecodeFrame(MsgpackFrame(bytes + "\xc0"), lim, &m).code(), Code::kCorruption);
}

TEST(MsgpackHardening, InvalidUtf8StringIsRefused) {
  json m;
  Limits lim;
  // {"type": "\xff\xfe"}
  std::string payload = std::string("\x81\xa4type\xa2\xff\xfe", 9);
  Status st = DecodeFrame(MsgpackFrame(payload), lim, &m);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  // The same with valid UTF-8 (two-byte e-acute) decodes.
  payload = std::string("\x81\xa4type\xa2\xc3\xa9", 9);
  ASSERT_TRUE(DecodeFrame(MsgpackFrame(payload), lim, &m).ok());
  EXPECT_EQ(m["type"], "\xc3\xa9");
}

TEST(MsgpackHardening, NestingAtTheLimitIsAccepted) {
  Limits lim;
  lim.max_json_depth = 8;
  json v = json{{"type", "x"}, {"a", {{{1}}}}};  // object > array > array > array > number
  std::vector<uint8_t> b = json::to_msgpack(v);
  json m;
  EXPECT_TRUE(DecodeFrame(MsgpackFrame(std::string(b.begin(), b.end())), lim, &m).ok());
  lim.max_json_depth = 4;
  EXPECT_FALSE(DecodeFrame(MsgpackFrame(std::string(b.begin(), b.end())), lim, &m).ok());
}

}  // namespace
}  // namespace fieldsync

namespace fieldsync {
namespace {

// Regressions found by tests/fuzz/fuzz_frame (corpus: crash-msgpack-nan).
TEST(MsgpackHardening, ValuesJsonCannotCarryAreRefused) {
  json m;
  Limits lim;
  const double kInf = std::numeric_limits<double>::infinity();
  for (double bad : {std::nan(""), kInf, -kInf}) {
    std::vector<uint8_t> b = json::to_msgpack(json{{"type", "pull"}, {"f", bad}});
    Status st = DecodeFrame(std::string(1, '\x01') + std::string(b.begin(), b.end()), lim, &m);
    EXPECT_EQ(st.code(), Code::kCorruption) << bad;
  }
  std::vector<uint8_t> bin = json::to_msgpack(json{{"type", "pull"}, {"b", json::binary({1, 2, 3})}});
  EXPECT_EQ(DecodeFrame(std::string(1, '\x01') + std::string(bin.begin(), bin.end()), lim, &m).code(),
            Code::kCorruption);
}

}  // namespace
}  // namespace fieldsync

namespace fieldsync {
namespace {

TEST(RowStateCodec, FieldsAndTombstonesRoundTripAndMalformedRowsAreRefused) {
  RowState live;
  live.table = "contacts";
  live.row = "c1";
  FieldState name;
  name.present = true;
  name.stamp = {MakeHlc(1000, 2), 0xF0000000000000A1ULL};
  name.base = MakeHlc(900, 0);
  name.value = "Li";
  FieldState roles;
  roles.present = true;
  roles.stamp = {MakeHlc(1001, 0), 7};
  roles.value = json::array({"user"});
  roles.crdt = {{"user", {{"a", {{"0000000000000007", "0000000003e90000"}}}, {"r", json::object()}}}};
  live.fields = {{"name", name}, {"buying_roles", roles}};
  RowState dead;
  dead.table = "visits";
  dead.row = "v1";
  dead.deleted = true;
  dead.tomb_stamp = {MakeHlc(2000, 1), 9};
  dead.tomb_seen = {{9, MakeHlc(2000, 1)}, {7, MakeHlc(1500, 0)}};
  // A third field far from the others in time: its offset would not fit
  // a JavaScript number, so it names its own stamp.
  FieldState old_note;
  old_note.present = true;
  old_note.stamp = {MakeHlc(1000, 2) + (uint64_t{1} << 53), 7};
  old_note.value = nullptr;
  RowState wide = live;
  wide.fields.emplace_back("notes", old_note);
  for (bool compact : {false, true}) {
  for (const RowState& r : {live, dead, wide}) {
    RowState back;
    ASSERT_TRUE(RowStateFromJson(json::parse(RowStateToJson(r, compact).dump()), &back).ok());
    // And through MessagePack, whose small integers decode unsigned.
    RowState packed;
    ASSERT_TRUE(RowStateFromJson(json::from_msgpack(json::to_msgpack(RowStateToJson(r, compact))), &packed).ok());
    EXPECT_EQ(RowStateToJson(packed), RowStateToJson(back));
    EXPECT_EQ(back.table, r.table);
    EXPECT_EQ(back.row, r.row);
    EXPECT_EQ(back.deleted, r.deleted);
    EXPECT_EQ(back.tomb_stamp, r.tomb_stamp);
    EXPECT_EQ(back.tomb_seen, r.tomb_seen);
    ASSERT_EQ(back.fields.size(), r.fields.size());
    std::map<std::string, FieldState> got(back.fields.begin(), back.fields.end());
    for (const auto& [col, f] : r.fields) {
      EXPECT_EQ(got[col].stamp, f.stamp) << col;
      EXPECT_EQ(got[col].base, f.base) << col;
      EXPECT_EQ(got[col].value, f.value) << col;
      EXPECT_EQ(got[col].crdt, f.crdt) << col;
    }
  }
  }
  RowState out;
  for (const char* bad : {R"([1])", R"({"t":"a"})", R"({"t":"a","r":"b"})", R"({"t":"a","r":"b","f":[]})",
                          R"({"t":"a","r":"b","f":{"c":{"h":"zz","n":"1","v":1}}})",
                          R"({"t":"a","r":"b","f":{"c":{"h":"1","n":"1"}}})",
                          R"({"t":"a","r":"b","d":{"h":"1","n":"1","s":[]}})",
                          // compact rows: both stamps at the top, offsets non-negative and in range
                          R"({"t":"a","r":"b","h":"10","f":{"c":{"v":1}}})",
                          R"({"t":"a","r":"b","h":"10","n":"zz","f":{"c":{"v":1}}})",
                          R"({"t":"a","r":"b","h":"10","n":"1","f":{"c":{"v":1,"d":-1}}})",
                          R"({"t":"a","r":"b","h":"10","n":"1","f":{"c":{"v":1,"d":1.5}}})",
                          R"({"t":"a","r":"b","h":"10","n":"1","f":{"c":{"v":1,"d":"1"}}})",
                          R"({"t":"a","r":"b","h":"10","n":"1","f":{"c":{"v":1,"d":9007199254740992}}})",
                          R"({"t":"a","r":"b","h":"ffffffffffffffff","n":"1","f":{"c":{"v":1,"d":1}}})",
                          R"({"t":"a","r":"b","h":"10","n":"1","f":{"c":{"v":1,"d":1,"h":"11"}}})",
                          // names are identifiers, as in any schema
                          R"({"t":"visi(ts","r":"b","d":{"h":"1","n":"1","s":{}}})",
                          R"({"t":"a","r":"b","f":{"Phone":{"h":"1","n":"1","v":1}}})",
                          // a full-form field must name its own stamp
                          R"({"t":"a","r":"b","f":{"c":{"v":1,"d":1,"n":"1"}}})"}) {
    EXPECT_EQ(RowStateFromJson(json::parse(bad), &out).code(), Code::kProtocolError) << bad;
  }
}

TEST(RowStateCodec, CompactRowsLendTheirStampToFieldsThatNameNone) {
  RowState r;
  r.table = "store_check_lines";
  r.row = "l1";
  auto field = [](Hlc h, NodeId n, json v) {
    FieldState f;
    f.present = true;
    f.stamp = {h, n};
    f.value = std::move(v);
    return f;
  };
  // Two fields of node 5, one of node 9 written earlier.
  r.fields = {{"facings", field(MakeHlc(2000, 3), 5, 4)},
              {"shelf_price", field(MakeHlc(2000, 1), 5, 12.5)},
              {"stock_status", field(MakeHlc(1990, 0), 9, "short")}};
  json j = RowStateToJson(r, true);
  EXPECT_EQ(j["h"], ToHex(MakeHlc(1990, 0)));  // the oldest field's hlc
  EXPECT_EQ(j["n"], ToHex(5));                 // the node of most fields
  EXPECT_FALSE(j["f"]["facings"].contains("n"));
  EXPECT_EQ(j["f"]["facings"]["d"], MakeHlc(2000, 3) - MakeHlc(1990, 0));
  EXPECT_FALSE(j["f"]["stock_status"].contains("d"));  // offset 0
  EXPECT_EQ(j["f"]["stock_status"]["n"], ToHex(9));
  // The point of the form: fewer bytes than the full one.
  EXPECT_LT(json::to_msgpack(j).size() + 40, json::to_msgpack(RowStateToJson(r)).size());
  RowState back;
  ASSERT_TRUE(RowStateFromJson(j, &back).ok());
  ASSERT_EQ(back.fields.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back.fields[i].first, r.fields[i].first);
    EXPECT_EQ(back.fields[i].second.stamp, r.fields[i].second.stamp) << r.fields[i].first;
    EXPECT_EQ(back.fields[i].second.value, r.fields[i].second.value);
  }
}

// Column-major snapshot blocks: whatever rows a page holds (tables mixed,
// tombstones among live rows, column sets that differ, fields of other
// nodes, bases, policy state, stamps far apart in either direction), the
// blocks decode to exactly those rows in the same order, through JSON text
// and through MessagePack.
TEST(SnapshotBlocks, AnyPageDecodesToTheSameRowsInTheSameOrder) {
  std::mt19937_64 rng(7);
  const std::vector<std::string> tables = {"accounts", "store_check_lines", "visits"};
  const std::vector<std::string> columns = {"facings", "notes", "on_shelf", "shelf_price", "stock_status"};
  const std::vector<json> values = {json(), json(4), json(-3), json(12.5), json(0.0), json(-0.0), json("short"), json(true),
                                    json::array({"a", "b"}), json("\xe4\xb8\x8a"), json(-1), json::array({5}),
                                    json({{"k", 5}})};
  const Hlc t0 = MakeHlc(kT0, 0);
  for (int page = 0; page < 300; ++page) {
    std::vector<RowState> rows;
    const int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      RowState r;
      // Runs of one table, as a page in key order has them.
      r.table = tables[(page + i / 7) % tables.size()];
      r.row = "r" + std::to_string(rng() % 1000);
      if (rng() % 10 == 0) {
        r.deleted = true;
        r.tomb_stamp = {t0 + rng() % 100000, rng() % 3};
        r.tomb_seen = {{r.tomb_stamp.node, r.tomb_stamp.hlc}};
      } else {
        // Most rows have all columns; some fewer (a column never written).
        const uint64_t mask = rng() % 3 ? 31 : rng() % 32;
        Hlc row_hlc = rng() % 20 == 0 ? rng() : t0 + rng() % 100000;
        for (size_t k = 0; k < columns.size(); ++k) {
          if (!(mask >> k & 1)) continue;
          FieldState f;
          f.present = true;
          uint64_t pick = rng() % 30;
          f.stamp.hlc = pick == 0 ? rng() : pick == 1 ? row_hlc - std::min<Hlc>(row_hlc, 5) : row_hlc + k;
          f.stamp.node = rng() % 8 == 0 ? rng() : 0xA1;
          if (rng() % 6 == 0) f.base = rng();
          f.value = values[rng() % values.size()];
          // Policy state: none, an orset's, or an mv field's: one write
          // (what its stamp and value already say), one write that is not
          // the field's own, or two writes in conflict.
          json write = {{"h", ToHex(f.stamp.hlc)}, {"n", ToHex(f.stamp.node)}, {"v", f.value}, {"x", json::object()}};
          switch (rng() % 8) {
            case 0: f.crdt = {{"a", {{"00000000000000a1", ToHex(f.stamp.hlc)}}}}; break;
            case 1: case 2: case 3: f.crdt = json::array({write}); break;
            case 4: write["v"] = "other"; f.crdt = json::array({write}); break;
            case 5: f.crdt = json::array({write, {{"h", "1"}, {"n", "2"}, {"v", 3}, {"x", {{"2", "1"}}}}}); break;
            case 6:
              // Equal to the single write under json's ==, but not the same
              // number type: it must travel as it is.
              if (f.value.is_number_integer()) {
                write["v"] = f.value.get<double>();
                f.crdt = json::array({write});
              } else if (f.value == json::array({5})) {  // the same, one level down
                write["v"] = json::array({5.0});
                f.crdt = json::array({write});
              } else if (f.value.is_object()) {
                write["v"] = {{"k", 5.0}};
                f.crdt = json::array({write});
              }
              break;
            case 7:
              // 0.0 against -0.0 (== again, different text), and an
              // unsigned integer against a signed one (the same text).
              if (f.value.is_number_float() && f.value.get<double>() == 0) {
                write["v"] = -f.value.get<double>();
                f.crdt = json::array({write});
              } else if (f.value.is_number_integer() && f.value.get<int64_t>() >= 0) {
                write["v"] = f.value.get<uint64_t>();
                f.crdt = json::array({write});
              } else if (f.value == json(-1)) {  // == to 2^64 - 1 once cast, another text
                write["v"] = UINT64_MAX;
                f.crdt = json::array({write});
              }
              break;
            default: break;
          }
          r.fields.emplace_back(columns[k], std::move(f));
        }
      }
      rows.push_back(std::move(r));
    }
    json blocks = SnapshotBlocksToJson(rows);
    for (const json& wire : {json::parse(blocks.dump()), json::from_msgpack(json::to_msgpack(blocks))}) {
      std::vector<RowState> back;
      Status st = SnapshotBlocksFromJson(wire, &back);
      ASSERT_TRUE(st.ok()) << st.ToString() << " page " << page;
      ASSERT_EQ(back.size(), rows.size());
      for (size_t i = 0; i < rows.size(); ++i) {
        const RowState &a = rows[i], &b = back[i];
        ASSERT_EQ(b.table, a.table);
        ASSERT_EQ(b.row, a.row);
        ASSERT_EQ(b.deleted, a.deleted);
        EXPECT_EQ(b.tomb_stamp, a.tomb_stamp);
        EXPECT_EQ(b.tomb_seen, a.tomb_seen);
        ASSERT_EQ(b.fields.size(), a.fields.size()) << page << "/" << i;
        for (size_t k = 0; k < a.fields.size(); ++k) {
          EXPECT_EQ(b.fields[k].first, a.fields[k].first);
          EXPECT_EQ(b.fields[k].second.stamp, a.fields[k].second.stamp) << page << "/" << i << "/" << k;
          EXPECT_EQ(b.fields[k].second.base, a.fields[k].second.base);
          // As text: json's == takes 5 for 5.0.
          EXPECT_EQ(b.fields[k].second.value.dump(), a.fields[k].second.value.dump());
          // A spelled-out single write comes back as the no state a replica keeps.
          const FieldState& f = a.fields[k].second;
          EXPECT_EQ(b.fields[k].second.crdt.dump(), IsSpelledOutSingleWrite(f) ? "null" : f.crdt.dump())
              << page << "/" << i << "/" << k;
        }
      }
    }
  }
  std::vector<RowState> none;
  ASSERT_TRUE(SnapshotBlocksFromJson(SnapshotBlocksToJson({}), &none).ok());
  EXPECT_TRUE(none.empty());
}

// A replica keeps an mv field's single write as no state; on the wire it
// goes as readers before 2026-12-07 expect (its column in a block's `m`, or
// spelled out in a row) when the encoder has the schema, and any decoder
// gives it back as no state again.
TEST(SnapshotBlocks, SingleWritesTravelAsOlderReadersExpect) {
  Schema schema;
  ASSERT_TRUE(Schema::ParseText(R"({"name": "t", "version": 1, "tables": [{"name": "store_check_lines", "columns": [
      {"name": "facings", "type": "integer", "merge": "lww"},
      {"name": "competitor_note", "type": "text", "merge": "mv"}]}]})",
                                &schema)
                  .ok());
  const Hlc t0 = MakeHlc(kT0, 0);
  std::vector<RowState> rows;
  for (int i = 0; i < 3; ++i) {
    RowState r;
    r.table = "store_check_lines";
    r.row = "scl-" + std::to_string(i);
    FieldState facings, note;
    facings.present = note.present = true;
    facings.stamp = note.stamp = {t0 + i, 0xA1};
    facings.value = i;
    note.value = "note " + std::to_string(i);
    if (i == 2) {  // two writes in conflict: a state of its own
      note.crdt = json::array({{{"h", ToHex(t0)}, {"n", "1"}, {"v", "x"}, {"x", json::object()}},
                               {{"h", ToHex(t0 + i)}, {"n", ToHex(0xA1)}, {"v", note.value}, {"x", json::object()}}});
    }
    r.fields = {{"facings", facings}, {"competitor_note", note}};
    rows.push_back(std::move(r));
  }
  json with = SnapshotBlocksToJson(rows, &schema), without = SnapshotBlocksToJson(rows);
  ASSERT_EQ(with.size(), 1u);
  EXPECT_EQ(with[0]["m"], json::array({1}));  // competitor_note, not facings
  EXPECT_FALSE(without[0].contains("m"));
  ASSERT_TRUE(with[0].contains("x"));
  EXPECT_EQ(with[0]["x"].size(), 1u);  // only the conflicted field has its own state
  for (const json& blocks : {with, without}) {
    std::vector<RowState> back;
    ASSERT_TRUE(SnapshotBlocksFromJson(json::from_msgpack(json::to_msgpack(blocks)), &back).ok());
    ASSERT_EQ(back.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(back[i].fields[1].second.crdt.dump(), rows[i].fields[1].second.crdt.dump()) << i;
      EXPECT_TRUE(back[i].fields[0].second.crdt.is_null());
    }
  }
  // A row spells the single write out, under the schema only; either decodes to no state.
  json row = RowStateToJson(rows[0], true, &schema);
  EXPECT_EQ(row["f"]["competitor_note"]["c"], SpelledOutSingleWrite(rows[0].fields[1].second));
  EXPECT_FALSE(row["f"]["facings"].contains("c"));
  EXPECT_FALSE(RowStateToJson(rows[0], true)["f"]["competitor_note"].contains("c"));
  RowState back;
  ASSERT_TRUE(RowStateFromJson(row, &back).ok());
  EXPECT_TRUE(back.fields[0].second.crdt.is_null());
  EXPECT_TRUE(back.fields[1].second.crdt.is_null());
}

// What the form is for: a page of store check lines imported together is
// much smaller, after zstd as on the wire, than the same page as compact rows.
TEST(SnapshotBlocks, ImportedLinesAreSmallerThanCompactRows) {
  const std::vector<std::string> columns = {"facings", "on_shelf", "shelf_price", "stock_status"};
  const std::vector<std::string> statuses = {"short", "normal", "overstock"};
  std::vector<RowState> rows;
  Hlc h = MakeHlc(kT0, 0);
  for (int i = 0; i < 500; ++i) {
    RowState r;
    r.table = "store_check_lines";
    r.row = "scl-" + std::to_string(100000 + i);
    for (size_t k = 0; k < columns.size(); ++k) {
      FieldState f;
      f.present = true;
      f.stamp = {h++, 0xA1};
      f.value = k == 0 ? json(i % 9) : k == 1 ? json(i % 5 != 0) : k == 2 ? json(9.9 + i % 7) : json(statuses[i % 3]);
      r.fields.emplace_back(columns[k], std::move(f));
    }
    rows.push_back(std::move(r));
  }
  json compact = json::array();
  for (const auto& r : rows) compact.push_back(RowStateToJson(r, true));
  std::string as_rows = EncodeFrame({{"type", "snapshot"}, {"rows", compact}}, Encoding::kMsgPack);
  std::string as_blocks = EncodeFrame({{"type", "snapshot"}, {"blocks", SnapshotBlocksToJson(rows)}}, Encoding::kMsgPack);
  EXPECT_LT(as_blocks.size() * 3, as_rows.size() * 2) << as_blocks.size() << " vs " << as_rows.size();
}

TEST(SnapshotBlocks, MalformedBlocksAreRefusedWhole) {
  std::vector<RowState> out(1);
  out[0].row = "kept";
  for (const char* bad : {
           R"({})", R"([1])", R"([{"r":["a"],"c":[]}])", R"([{"t":"x","r":[],"c":[]}])",
           R"([{"t":"x","r":[1],"c":[]}])", R"([{"t":"x","r":["a"]}])",
           R"([{"t":"x","r":["a"],"c":["p","p"],"h":"1","e":[0],"n":["1"],"v":[[1],[2]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"e":[0],"n":["1"],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0,1],"n":["1"],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0.5],"n":["1"],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[-2],"n":["1"],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"ffffffffffffffff","e":[1],"n":["1"],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":[],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["zz"],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"ni":[1],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1,2]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"d":[[-1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"d":[[9007199254740992]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"d":[]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"x":[[0,1,{}]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"x":[[0,0,{"b":"zz"}]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"m":[1]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"m":0}])",
           R"([{"t":"x","r":["a"],"c":[],"v":[]}])",
           R"([{"t":"x","r":["a"],"c":[],"h":"1","e":[0],"n":["1"]}])",
           R"([{"t":"x","r":["a"],"c":["Bad-Name"],"h":"1","e":[0],"n":["1"],"v":[[1]]}])",
           R"([{"t":"not a table","r":["a"],"c":[]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[9007199254740992],"n":["1"],"v":[[1]]}])",
           R"([{"t":"x","r":["a","b"],"c":["p"],"h":"9007199254740993","e":[0,-9007199254740992],"n":["1"],"v":[[1,2]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":"1","v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"ni":[-1],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"ni":[0.5],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"ni":[0,0],"v":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[1]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"d":[5]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"ffffffffffffffff","e":[0],"n":["1"],"v":[[1]],"d":[[1]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"x":{}}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"x":[[0,0]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"x":[[0,0,[]]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"x":[[0,0,{}]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"x":[[0,0,{"b":"2"}],[0,0,{"n":"3"}]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"d":[[4]],"x":[[0,0,{"h":"9"}]]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"h":"1","e":[0],"n":["1"],"v":[[1]],"m":[0,0]}])",
           R"([{"t":"x","r":["a"],"c":["p"],"del":[{"h":"1","n":"1","s":{}}]}])",
           R"([{"t":"x","r":["a"],"h":"1","del":[{"h":"1","n":"1","s":{}}]}])",
           R"([{"t":"x","r":["a"],"del":[{"h":"1","n":"1"}]}])",
           R"([{"t":"x","r":["a","b"],"del":[{"h":"1","n":"1","s":{}}]}])",
           // a good block, then a bad one: nothing of the page is taken
           R"([{"t":"x","r":["a"],"c":[]},{"t":"x","r":["b"],"c":["p"]}])"}) {
    Status st = SnapshotBlocksFromJson(json::parse(bad), &out);
    EXPECT_EQ(st.code(), Code::kProtocolError) << bad;
    ASSERT_EQ(out.size(), 1u) << bad;
    EXPECT_EQ(out[0].row, "kept");
  }
}

// The log and the outbox store ChangeToJsonText: it must be byte for byte
// what dump() of the tree gives, or a stored change would read back
// differently from what was sent (and the fuzzers' seeds would drift).
TEST(ChangeText, IsExactlyTheDumpOfTheTree) {
  std::mt19937_64 rng(42);
  const std::vector<std::string> strings = {
      "", "a1", "store_check_lines", "with \"quote\"", "back\\slash", "tab\there", "nl\n", std::string("nul\0x", 5),
      "\x01\x1f", "del\x7f", "\xe4\xb8\x8a\xe6\xb5\xb7", "emoji \xf0\x9f\x98\x80", "slash / ok", "~{}[]"};
  auto str = [&] { return strings[rng() % strings.size()]; };
  std::vector<json> values = {json(), json(true), json(false), json(0), json(-7), json(INT64_MIN), json(UINT64_MAX),
                              json(3.25), json(-0.0), json(1e300), json(0.1), json::array({1, "x", nullptr}),
                              json::object({{"k", "v"}, {"a", {1, 2}}})};
  for (const auto& s : strings) values.push_back(json(s));
  const Op ops[] = {Op::kSet, Op::kDelete, Op::kIncrement, Op::kAdd, Op::kRemove};
  for (int i = 0; i < 5000; ++i) {
    Change c;
    c.table = str();
    c.row = str();
    c.op = ops[rng() % 5];
    if (c.op != Op::kDelete) c.column = str();
    c.value = values[rng() % values.size()];
    c.stamp = {rng() % 3 ? rng() : 0, rng() % 3 ? rng() : 0};
    if (rng() % 3 == 0) c.base = rng();
    if (rng() % 4 == 0) c.ctx[rng()] = rng();
    if (rng() % 2) c.seq = static_cast<int64_t>(rng() % 4 == 0 ? -static_cast<int64_t>(rng() >> 2) : (rng() >> 1));
    if (rng() % 2) c.server_ms = rng();
    ASSERT_EQ(ChangeToJsonText(c), ChangeToJson(c).dump()) << i;
  }
  // A string that is not UTF-8 fails as dump() fails, wherever it is.
  Change bad;
  bad.table = "t";
  bad.row = "\xff\xfe";
  bad.column = "c";
  bad.value = 1;
  EXPECT_THROW(ChangeToJson(bad).dump(), json::type_error);
  EXPECT_THROW(ChangeToJsonText(bad), json::type_error);
  bad.row = "r";
  bad.value = "\xc3";
  EXPECT_THROW(ChangeToJsonText(bad), json::type_error);
}

}  // namespace
}  // namespace fieldsync
