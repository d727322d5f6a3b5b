// Messages that carry changes, written and read without a JSON tree per
// change (EncodeChangesFrame, DecodeChangesFrame): they must give exactly
// what the tree path gives, bytes and values, and leave everything they do
// not take to it, errors included.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sync/msgpack.h"
#include "sync/protocol.h"

namespace fieldsync {
namespace {

std::string MsgPackBytes(const json& j) {
  std::vector<uint8_t> b = json::to_msgpack(j);
  return std::string(b.begin(), b.end());
}

// A frame of uncompressed MessagePack, flags byte first.
std::string MsgPackFrame(const json& j) { return std::string(1, '\x01') + MsgPackBytes(j); }

json WithChanges(json envelope, const std::vector<Change>& changes) {
  json arr = json::array();
  for (const auto& c : changes) arr.push_back(ChangeToJson(c));
  envelope["changes"] = std::move(arr);
  return envelope;
}

// Changes of every shape the codec must write as nlohmann does: every op,
// strings of every length class and byte kind, integers at every width
// boundary, floats that fit a float32 and ones that do not, containers.
std::vector<Change> RandomChanges(std::mt19937_64& rng, size_t n) {
  const std::vector<std::string> strings = {
      "", "a1", "store_check_lines", "with \"quote\"", "back\\slash", "nl\n", std::string("nul\0x", 5),
      "\xe4\xb8\x8a\xe6\xb5\xb7", "emoji \xf0\x9f\x98\x80", std::string(31, 'x'), std::string(32, 'y'),
      std::string(255, 'z'), std::string(256, 'w'), std::string(70000, 'v')};
  std::vector<json> values = {json(), json(true), json(false), json(0), json(127), json(128), json(255),
                              json(256), json(65535), json(65536), json(4294967295ULL), json(4294967296ULL),
                              json(UINT64_MAX), json(-1), json(-32), json(-33), json(-128), json(-129),
                              json(-32768), json(-32769), json(INT32_MIN), json(int64_t{INT32_MIN} - 1),
                              json(INT64_MIN), json(int64_t{5}), json(3.25), json(-0.0), json(0.1), json(1e300),
                              json(12.9), json(3.4e38), json(1e39), json(std::numeric_limits<float>::lowest()),
                              json::array({1, "x", nullptr}), json::object({{"k", "v"}, {"a", {1, 2}}}),
                              json::array({7, 3})};
  for (const auto& s : strings) values.push_back(json(s));
  auto str = [&] { return strings[rng() % strings.size()]; };
  const Op ops[] = {Op::kSet, Op::kDelete, Op::kIncrement, Op::kAdd, Op::kRemove};
  std::vector<Change> out;
  for (size_t i = 0; i < n; ++i) {
    Change c;
    c.table = str();
    c.row = str();
    c.op = ops[rng() % 5];
    if (c.op != Op::kDelete) {
      c.column = str();
      c.value = values[rng() % values.size()];
    }
    c.stamp = {rng() % 3 ? rng() : 0, rng() % 3 ? rng() : 0};
    if (rng() % 3 == 0) c.base = rng();
    for (int k = static_cast<int>(rng() % 4); k > 0; --k) c.ctx[rng() % 4 == 0 ? rng() % 3 : rng()] = rng();
    if (rng() % 2) c.seq = static_cast<int64_t>(rng() % 4 == 0 ? -static_cast<int64_t>(rng() >> 2) : (rng() >> 1));
    if (rng() % 2) c.server_ms = rng();
    out.push_back(std::move(c));
  }
  return out;
}

void ExpectSameChange(const Change& a, const Change& b, size_t i) {
  EXPECT_EQ(a.table, b.table) << i;
  EXPECT_EQ(a.row, b.row) << i;
  EXPECT_EQ(a.column, b.column) << i;
  EXPECT_EQ(a.op, b.op) << i;
  EXPECT_EQ(a.value, b.value) << i;
  EXPECT_EQ(a.value.type(), b.value.type()) << i;  // 5 and 5u compare equal; the merge tells them apart
  EXPECT_EQ(a.stamp.hlc, b.stamp.hlc) << i;
  EXPECT_EQ(a.stamp.node, b.stamp.node) << i;
  EXPECT_EQ(a.base, b.base) << i;
  EXPECT_EQ(a.ctx, b.ctx) << i;
  EXPECT_EQ(a.seq, b.seq) << i;
  EXPECT_EQ(a.server_ms, b.server_ms) << i;
}

// The tree path's reading of a frame: DecodeFrame, then ChangeFromJson of
// each element of "changes" (which is removed from *msg).
Status TreeDecode(const std::string& frame, json* msg, std::vector<Change>* changes) {
  Status st = DecodeFrame(frame, Limits{}, msg);
  if (!st.ok()) return st;
  for (const auto& j : (*msg)["changes"]) {
    Change c;
    if (!(st = ChangeFromJson(j, &c)).ok()) return st;
    changes->push_back(std::move(c));
  }
  msg->erase("changes");
  return Status::OK();
}

TEST(ChangeFrames, EncodingIsByteForByteTheTreePath) {
  std::mt19937_64 rng(11);
  const std::vector<json> envelopes = {
      {{"type", "push"}, {"batch", 3}},
      {{"type", "push"}, {"batch", "b-1"}, {"after", 2}},
      {{"type", "changes"}, {"id", 9}, {"cursor", 120}, {"more", true}, {"head", 400}, {"live", true}},
      {{"type", "changes"}, {"aa", 1}, {"changes", "replaced"}, {"zz", {{"scope", {1, 2}}}}},
  };
  for (int round = 0; round < 40; ++round) {
    std::vector<Change> changes = RandomChanges(rng, round == 0 ? 0 : rng() % 40 + 1);
    if (round == 1) changes.assign(70000, RandomChanges(rng, 1)[0]);  // an array header of 32 bits
    const json& env = envelopes[round % envelopes.size()];
    json tree = WithChanges(env, changes);
    for (Encoding enc : {Encoding::kJson, Encoding::kMsgPack})
      for (bool compress : {false, true}) {
        size_t direct_payload = 0, tree_payload = 0;
        std::string direct = EncodeChangesFrame(env, changes, enc, compress, &direct_payload);
        std::string expected = EncodeFrame(tree, enc, compress, &tree_payload);
        ASSERT_EQ(direct, expected) << "round " << round << " " << EncodingName(enc) << " compress " << compress;
        EXPECT_EQ(direct_payload, tree_payload);
      }
  }
}

TEST(ChangeFrames, DecodingTakesWhatTheTreePathReadsTheSame) {
  std::mt19937_64 rng(12);
  for (int round = 0; round < 60; ++round) {
    std::vector<Change> changes = RandomChanges(rng, rng() % 60);
    json env = {{"type", round % 2 ? "push" : "changes"}, {"batch", round}, {"id", {{"nested", {1, 2.5}}}}};
    std::string frame = EncodeChangesFrame(env, changes, Encoding::kMsgPack, round % 3 == 0);
    json msg;
    std::vector<Change> got;
    bool taken = false;
    ASSERT_TRUE(DecodeChangesFrame(frame, Limits{}, &msg, &got, &taken).ok()) << round;
    ASSERT_TRUE(taken) << round;
    json tree_msg;
    std::vector<Change> tree_changes;
    ASSERT_TRUE(TreeDecode(frame, &tree_msg, &tree_changes).ok()) << round;
    EXPECT_EQ(msg, tree_msg) << round;
    ASSERT_EQ(got.size(), tree_changes.size());
    for (size_t i = 0; i < got.size(); ++i) ExpectSameChange(got[i], tree_changes[i], i);
    // And what was sent: the tree path's own round trip of ChangeToJson.
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(ChangeToJson(got[i]), ChangeToJson(changes[i])) << i;
  }
}

TEST(ChangeFrames, IntegersKeepTheTypesTheTreeGivesThem) {
  // A value written by another encoder as int8 5 reads as a signed 5, a
  // positive fixint 5 as unsigned: the tree path's types, exactly.
  Change c;
  c.table = "t";
  c.row = "r";
  c.column = "c";
  c.stamp = {1, 2};
  json tree = WithChanges({{"type", "push"}}, {c});
  for (std::string value : {std::string("\xd0\x05", 2), std::string("\x05", 1), std::string("\xcc\x05", 2),
                            std::string("\xd3\x00\x00\x00\x00\x00\x00\x00\x05", 9),
                            std::string("\xca\x41\x48\x00\x00", 5)}) {
    json with = tree;
    with["changes"][0]["v"] = "@@@@";  // a placeholder to splice the raw value in
    std::string b = MsgPackBytes(with);
    size_t at = b.find("\xa4@@@@");
    ASSERT_NE(at, std::string::npos);
    b.replace(at, 5, value);
    std::string frame = std::string(1, '\x01') + b;
    json msg, tree_msg;
    std::vector<Change> got, tree_changes;
    bool taken = false;
    ASSERT_TRUE(DecodeChangesFrame(frame, Limits{}, &msg, &got, &taken).ok());
    ASSERT_TRUE(taken);
    ASSERT_TRUE(TreeDecode(frame, &tree_msg, &tree_changes).ok());
    ASSERT_EQ(got.size(), 1u);
    ExpectSameChange(got[0], tree_changes[0], 0);
  }
}

// Frames the direct path does not take: it must leave them to the tree path
// and give exactly its status and message.
TEST(ChangeFrames, WhatItDoesNotTakeDecodesExactlyAsDecodeFrame) {
  json good = ChangeToJson([] {
    Change c;
    c.table = "store_check_lines";
    c.row = "l1";
    c.column = "facings";
    c.value = 4;
    c.stamp = {0x10, 0x20};
    return c;
  }());
  auto push = [](json changes) { return json{{"type", "push"}, {"batch", 1}, {"changes", std::move(changes)}}; };
  auto with = [&](const char* key, json v) {
    json c = good;
    c[key] = std::move(v);
    return c;
  };
  json no_stamp = good;
  no_stamp.erase("h");
  json set_without_value = good;
  set_without_value.erase("v");
  std::vector<std::pair<std::string, std::string>> cases = {
      {"a JSON text frame", std::string(1, '\0') + push({good}).dump()},
      {"changes not an array", MsgPackFrame(push("none"))},
      {"no changes at all", MsgPackFrame({{"type", "push"}, {"batch", 1}})},
      {"a change without h", MsgPackFrame(push({good, no_stamp}))},
      {"a set without v", MsgPackFrame(push({set_without_value}))},
      {"a change that is not a map", MsgPackFrame(push({good, 5}))},
      {"bad hex", MsgPackFrame(push({with("h", "xyz")}))},
      {"an unknown op", MsgPackFrame(push({with("o", "upsert")}))},
      {"s not an integer", MsgPackFrame(push({with("s", 1.5)}))},
      {"rt negative", MsgPackFrame(push({with("rt", -1)}))},
      {"x not a map", MsgPackFrame(push({with("x", nullptr)}))},
      {"x naming one node twice", MsgPackFrame(push({with("x", {{"1", "5"}, {"0001", "7"}})}))},
      {"an unknown key", MsgPackFrame(push({with("zz", 1)}))},
      {"a non-string type", MsgPackFrame({{"type", 5}, {"changes", json::array()}})},
      {"bad UTF-8 in a row id", MsgPackFrame(push({with("r", "\xff\xfe")}))},
      {"bad UTF-8 in a value", MsgPackFrame(push({with("v", "\xc3")}))},
      {"bad UTF-8 in an unknown key's value", MsgPackFrame(push({with("q", "\xc3")}))},
      {"bad UTF-8 in the envelope", MsgPackFrame({{"type", "push"}, {"batch", "\xc3"}, {"changes", {good}}})},
      {"a NaN value", MsgPackFrame(push({with("v", std::nan(""))}))},
      {"a binary value", MsgPackFrame(push({with("v", json::binary({1, 2, 3}))}))},
      {"an infinite s", MsgPackFrame(push({with("s", INFINITY)}))},
  };
  // A key given twice: the tree keeps the last one.
  {
    std::string b = MsgPackBytes(push({good}));
    size_t at = b.find("\xa1r\xa2l1");
    ASSERT_NE(at, std::string::npos);
    b.replace(at, 5, "\xa1r\xa2l1\xa1r\xa2l2");
    size_t header = b.find("\x91\x87");  // the changes array of one, its map of 7 keys
    ASSERT_NE(header, std::string::npos);
    b[header + 1] = '\x88';
    cases.push_back({"a key given twice", std::string(1, '\x01') + b});
  }
  // Trailing bytes and truncation: not MessagePack.
  cases.push_back({"trailing bytes", MsgPackFrame(push({good})) + "\xc0"});
  cases.push_back({"truncated", MsgPackFrame(push({good})).substr(0, 30)});
  for (const auto& [what, frame] : cases) {
    json expected_msg, msg;
    Status expected = DecodeFrame(frame, Limits{}, &expected_msg);
    std::vector<Change> changes;
    bool taken = true;
    Status st = DecodeChangesFrame(frame, Limits{}, &msg, &changes, &taken);
    EXPECT_FALSE(taken) << what;
    EXPECT_TRUE(changes.empty()) << what;
    EXPECT_EQ(st.code(), expected.code()) << what;
    EXPECT_EQ(st.message(), expected.message()) << what;
    if (expected.ok()) {
      EXPECT_EQ(msg, expected_msg) << what;
    }
  }
}

TEST(ChangeFrames, LimitsHoldOnTheDirectPath) {
  Change c;
  c.table = "t";
  c.row = "r";
  c.column = "c";
  c.value = std::string(1000, 'x');
  c.stamp = {1, 2};
  std::vector<Change> many(200, c);
  std::string frame = EncodeChangesFrame({{"type", "push"}}, many, Encoding::kMsgPack, false);
  Limits small;
  small.max_frame_bytes = frame.size() - 1;
  json msg;
  std::vector<Change> got;
  bool taken = true;
  Status st = DecodeChangesFrame(frame, small, &msg, &got, &taken);
  EXPECT_EQ(st.code(), Code::kLimitExceeded);
  EXPECT_FALSE(taken);
  EXPECT_TRUE(got.empty());
  // Compressed: the declared size is judged before anything is inflated.
  std::string zipped = EncodeChangesFrame({{"type", "push"}}, many, Encoding::kMsgPack, true);
  Limits inflate;
  inflate.max_decompressed_bytes = frame.size() - 2;
  st = DecodeChangesFrame(zipped, inflate, &msg, &got, &taken);
  EXPECT_EQ(st.code(), Code::kLimitExceeded);
  EXPECT_FALSE(taken);
  // Nesting beyond the limit inside a value, on the direct path too.
  Change deep = c;
  deep.value = json::array({json::array({json::array({1})})});
  Limits shallow;
  shallow.max_json_depth = 5;  // message > changes > change > v > [ > [ > [1]
  st = DecodeChangesFrame(EncodeChangesFrame({{"type", "push"}}, {deep}, Encoding::kMsgPack), shallow, &msg, &got,
                          &taken);
  EXPECT_EQ(st.code(), Code::kLimitExceeded);
  EXPECT_FALSE(taken);
}

TEST(MsgpackReader, SkipAndValueStepOverExactlyOneValue) {
  json j = {{"a", {1, 2, {{"b", nullptr}}}}, {"s", "text"}, {"f", 2.5}, {"n", -300}};
  std::string b = MsgPackBytes(json::array({j, 7}));
  ASSERT_EQ(msgpack::Within(b, 32), msgpack::Scan::kOk);
  msgpack::Reader r(b);
  size_t n = 0;
  ASSERT_TRUE(r.ArrayHeader(&n));
  EXPECT_EQ(n, 2u);
  json first;
  ASSERT_TRUE(r.Value(&first));
  EXPECT_EQ(first, j);
  size_t before = r.pos();
  std::string_view s;
  EXPECT_FALSE(r.String(&s));  // 7 is not a string: nothing consumed
  EXPECT_EQ(r.pos(), before);
  ASSERT_TRUE(r.Skip());
  EXPECT_TRUE(r.AtEnd());
  EXPECT_FALSE(r.Skip());
}

}  // namespace
}  // namespace fieldsync
