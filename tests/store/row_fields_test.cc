// store/row_fields: one row's field metadata packed into a BLOB. Whatever
// is encoded decodes to the same states, sorted by name; what was not
// written by the encoder is refused whole.
#include "store/row_fields.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace fieldsync::store {
namespace {

FieldState State(Hlc hlc, NodeId node, Hlc base = 0, json crdt = nullptr) {
  FieldState f;
  f.present = true;
  f.stamp = {hlc, node};
  f.base = base;
  f.crdt = std::move(crdt);
  return f;
}

std::string Encode(const FieldList& fields) {
  std::string out;
  Status st = EncodeRowFields(fields, &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

void ExpectSame(const FieldState& a, const FieldState& b, const std::string& name) {
  EXPECT_EQ(a.stamp, b.stamp) << name;
  EXPECT_EQ(a.base, b.base) << name;
  EXPECT_EQ(a.crdt.dump(), b.crdt.dump()) << name;
  EXPECT_TRUE(b.present) << name;
  EXPECT_TRUE(b.value.is_null()) << name;  // values live in the schema table
}

// Random field lists (any 64-bit stamps, bases, nodes; every kind of policy
// state; names in any order, some repeated) decode to the last state of
// each name, in name order.
TEST(RowFields, RandomListsRoundTripSortedWithTheLastStateOfEachName) {
  std::mt19937_64 rng(20261203);
  const json states[] = {nullptr,
                         json::array({{{"h", "019aafb0f0400000"}, {"n", "000000000000000a"}, {"v", "door"}, {"x", json::object()}}}),
                         {{"000000000000000a", {3, 1}}},
                         {{"informant", {{"a", {{"0a", "01"}}}, {"r", json::object()}}}},
                         json::array(),
                         "text with \"quotes\" and \xe5\xba\x97"};
  for (int round = 0; round < 500; ++round) {
    FieldList in;
    std::map<std::string, FieldState> want;
    int n = static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i) {
      std::string name = "c" + std::to_string(rng() % 30);
      if (rng() % 5 == 0) name = std::string(1 + rng() % 63, static_cast<char>('a' + rng() % 26));
      auto pick = [&]() -> uint64_t {
        switch (rng() % 4) {
          case 0: return 0;
          case 1: return rng() % 200;
          case 2: return ~uint64_t{0} - rng() % 3;
          default: return rng();
        }
      };
      FieldState f = State(pick(), pick(), pick(), states[rng() % std::size(states)]);
      f.value = "not stored";
      in.emplace_back(name, f);
      want[name] = f;
    }
    if (n > 0 && rng() % 3 == 0) in.emplace_back("absent", FieldState{});  // never written: left out
    std::string blob = Encode(in);
    FieldList out;
    Status st = DecodeRowFields(blob, &out);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(out.size(), want.size());
    size_t i = 0;
    for (const auto& [name, f] : want) {
      EXPECT_EQ(out[i].first, name);
      ExpectSame(f, out[i].second, name);
      ++i;
    }
    EXPECT_EQ(Encode(out), blob) << "decoding and encoding again is the identity";
  }
}

TEST(RowFields, AnEmptyListIsEmptyAndASmallFieldIsSmall) {
  EXPECT_EQ(Encode({}), "");
  FieldList out = {{"x", State(1, 1)}};
  ASSERT_TRUE(DecodeRowFields("", &out).ok());
  EXPECT_TRUE(out.empty());
  // name (1 + 5), hlc (8), node (8), base 0 (1), no state (1).
  EXPECT_EQ(Encode({{"price", State(0x019aafb0f0400000ULL, 7)}}).size(), 24u);
}

// Every prefix that ends inside an entry is refused, and so is every
// structural lie: names out of order or repeated, a varint past 64 bits, a
// state that is not JSON, a zero-length name. A refusal leaves nothing.
TEST(RowFields, MalformedBlobsAreRefusedWhole) {
  FieldList two = {{"a", State(0x019aafb0f0400000ULL, 0xF00000000000000AULL, 5, json::array({1}))},
                   {"b", State(3, 4)}};
  std::string blob = Encode(two);
  std::string first = Encode({two[0]});
  for (size_t len = 1; len < blob.size(); ++len) {
    FieldList out = {{"stale", State(1, 1)}};
    Status st = DecodeRowFields(std::string_view(blob).substr(0, len), &out);
    if (len == first.size()) {
      EXPECT_TRUE(st.ok()) << "a whole first entry is a valid list";
      continue;
    }
    EXPECT_EQ(st.code(), Code::kCorruption) << "prefix " << len;
    EXPECT_TRUE(out.empty()) << "prefix " << len;
  }
  auto refused = [](const std::string& b, const std::string& why) {
    FieldList out;
    Status st = DecodeRowFields(b, &out);
    EXPECT_EQ(st.code(), Code::kCorruption) << why << ": " << st.ToString();
    EXPECT_TRUE(out.empty()) << why;
  };
  refused(Encode({{"b", State(1, 1)}}) + Encode({{"a", State(1, 1)}}), "names out of order");
  refused(Encode({{"a", State(1, 1)}}) + Encode({{"a", State(2, 1)}}), "a name twice");
  const std::string stamps(16, '\x01');  // hlc and node, 8 bytes each
  refused("\x01" "a" + stamps + std::string(10, '\xff') + "\x01" + std::string(1, '\0'), "an 11-byte base");
  refused("\x01" "a" + stamps + std::string(9, '\xff') + "\x02" + std::string(1, '\0'), "a 10th varint byte above 1");
  refused("\x01" "a" + stamps + std::string("\x00\x03" "{x", 4), "a state that is not JSON");
  refused(std::string(1, '\0') + stamps + std::string(2, '\0'), "a name of no bytes");
  refused("\x01" "a" + stamps + std::string("\x00\x09" "[]", 4), "a state longer than the blob");
  refused("\x01" "a" + std::string(15, '\x01'), "a node of 7 bytes");
}

// A name the format cannot hold is refused, not cut short: two long names
// with a common prefix would otherwise become one, or an entry that no
// decoder reads back.
TEST(RowFields, NamesOfNoneOrMoreThan255BytesAreRefused) {
  for (size_t len : {size_t{0}, size_t{256}, size_t{300}}) {
    std::string out = "kept";
    Status st = EncodeRowFields({{"a", State(1, 1)}, {std::string(len, 'n'), State(2, 2)}}, &out);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << len;
    EXPECT_EQ(out, "kept") << len;
  }
  std::string out;
  ASSERT_TRUE(EncodeRowFields({{std::string(255, 'n'), State(2, 2)}}, &out).ok());
  FieldList back;
  ASSERT_TRUE(DecodeRowFields(out, &back).ok());
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].first.size(), 255u);
}

}  // namespace
}  // namespace fieldsync::store
