// store/row_fields: one row's field metadata packed into a BLOB, columns
// by number and stamps by difference. Whatever is encoded decodes to the
// same states, sorted by name; what was not written by the encoder is
// refused whole.
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

// The names every test here may use, numbered as a file's fs_columns would.
const FieldNames& Names() {
  static const FieldNames names = [] {
    FieldNames n;
    for (int i = 0; i < 30; ++i) n.Add("c" + std::to_string(i));
    for (const char* x : {"a", "b", "price", "absent", "competitor_note", "facings", "on_shelf", "pop_present",
                          "promo_price", "shelf_price", "sku_id", "stock_qty", "stock_status", "store_check_id"})
      n.Add(x);
    for (int len = 1; len <= 63; ++len)
      for (char ch = 'a'; ch <= 'z'; ++ch) n.Add(std::string(len, ch));
    return n;
  }();
  return names;
}

std::string Encode(const FieldList& fields) {
  std::string out;
  Status st = EncodeRowFields(fields, Names(), &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

Status Decode(std::string_view blob, FieldList* out) { return DecodeRowFields(blob, Names(), out); }

void ExpectSame(const FieldState& a, const FieldState& b, const std::string& name) {
  EXPECT_EQ(a.stamp, b.stamp) << name;
  EXPECT_EQ(a.base, b.base) << name;
  EXPECT_EQ(a.crdt.dump(), b.crdt.dump()) << name;
  EXPECT_TRUE(b.present) << name;
  EXPECT_TRUE(b.value.is_null()) << name;  // values live in the schema table
}

// Random field lists (any 64-bit stamps, near or far apart, bases, nodes;
// every kind of policy state; names in any order, some repeated) decode to
// the last state of each name, in name order.
TEST(RowFields, RandomListsRoundTripSortedWithTheLastStateOfEachName) {
  std::mt19937_64 rng(20261204);
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
    const uint64_t near = rng();
    for (int i = 0; i < n; ++i) {
      std::string name = "c" + std::to_string(rng() % 30);
      if (rng() % 5 == 0) name = std::string(1 + rng() % 63, static_cast<char>('a' + rng() % 26));
      auto pick = [&]() -> uint64_t {
        switch (rng() % 6) {
          case 0: return 0;
          case 1: return rng() % 200;
          case 2: return ~uint64_t{0} - rng() % 3;
          case 3: case 4: return near + rng() % 5 - 2;  // fields written together
          default: return rng();
        }
      };
      FieldState f = State(pick(), rng() % 3 ? 0xA1 : pick(), rng() % 4 ? 0 : pick(), states[rng() % std::size(states)]);
      f.value = "not stored";
      in.emplace_back(name, f);
      want[name] = f;
    }
    if (n > 0 && rng() % 3 == 0) in.emplace_back("absent", FieldState{});  // never written: left out
    std::string blob = Encode(in);
    FieldList out;
    Status st = Decode(blob, &out);
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

// What format 3 is for: a store check line written in one go (one node,
// stamps a tick apart) costs its row stamp once and three bytes a field.
TEST(RowFields, AnEmptyListIsEmptyAndAFieldWrittenWithItsRowIsThreeBytes) {
  EXPECT_EQ(Encode({}), "");
  FieldList out = {{"x", State(1, 1)}};
  ASSERT_TRUE(Decode("", &out).ok());
  EXPECT_TRUE(out.empty());
  const Hlc h = 0x019aafb0f0400000ULL;
  const NodeId node = 0xa3a0f65d097db199ULL;
  // Row stamp (8 + 8), then number, flags and a zero difference.
  EXPECT_EQ(Encode({{"price", State(h, node)}}).size(), 19u);
  FieldList line;
  const char* columns[] = {"facings", "on_shelf", "pop_present", "promo_price", "shelf_price",
                           "sku_id", "stock_qty", "stock_status", "store_check_id"};
  for (size_t k = 0; k < std::size(columns); ++k) line.emplace_back(columns[k], State(h + 1 + k, node));
  // The note is its single write, which an mv field keeps as no state.
  line.emplace_back("competitor_note", State(h, node));
  EXPECT_EQ(Encode(line).size(), 16u + 10 * 3);
  // Spelled out, as files from before 2026-12-07 hold it: more than the rest of the line.
  json mv = json::array({{{"h", ToHex(h)}, {"n", ToHex(node)}, {"v", ""}, {"x", json::object()}}});
  line.back().second = State(h, node, 0, mv);
  EXPECT_EQ(Encode(line).size(), 16 + 10 * 3 + 1 + mv.dump().size());
  // A name given twice: the row stamp is the state kept (the later), so its
  // difference is still zero.
  EXPECT_EQ(Encode({{"a", State(1, node)}, {"b", State(h + 1, node)}, {"a", State(h, node)}}).size(), 16u + 3 + 3);
  // A field of another node carries that node; a base, its varint.
  EXPECT_EQ(Encode({{"a", State(h, node)}, {"b", State(h, 7, 300)}}).size(), 16u + 3 + 3 + 8 + 2);
}

// Every prefix that ends inside an entry is refused, and so is every
// structural lie: a number fs_columns does not hold, names out of order or
// repeated, an unknown flag, a varint past 64 bits, a state that is not
// JSON or longer than the blob. A refusal leaves nothing.
TEST(RowFields, MalformedBlobsAreRefusedWhole) {
  FieldList two = {{"a", State(0x019aafb0f0400000ULL, 0xF00000000000000AULL, 5, json::array({1}))},
                   {"b", State(3, 4)}};
  std::string blob = Encode(two);
  std::string first = Encode({two[0]});
  ASSERT_EQ(blob.substr(0, first.size()), first);
  for (size_t len = 1; len < blob.size(); ++len) {
    FieldList out = {{"stale", State(1, 1)}};
    Status st = Decode(std::string_view(blob).substr(0, len), &out);
    if (len == first.size()) {
      EXPECT_TRUE(st.ok()) << "a whole first entry is a valid list";
      continue;
    }
    EXPECT_EQ(st.code(), Code::kCorruption) << "prefix " << len;
    EXPECT_TRUE(out.empty()) << "prefix " << len;
  }
  auto refused = [](const std::string& b, const std::string& why) {
    FieldList out;
    Status st = Decode(b, &out);
    EXPECT_EQ(st.code(), Code::kCorruption) << why << ": " << st.ToString();
    EXPECT_TRUE(out.empty()) << why;
  };
  const auto a = static_cast<char>(Names().Find("a")), b = static_cast<char>(Names().Find("b"));
  const std::string row(16, '\x01');  // the row stamp: hlc and node, 8 bytes each
  const std::string plain("\x00\x00", 2);  // flags 0, difference 0
  refused(row + b + plain + a + plain, "names out of order");
  refused(row + a + plain + a + plain, "a name twice");
  ASSERT_EQ(Names().Name(100000), nullptr);
  refused(row + "\xa0\x8d\x06" + plain, "a number fs_columns does not hold");  // 100000
  refused(row + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f" + plain, "a number past 64 bits");
  refused(row + a + "\x08" + std::string(1, '\0'), "an unknown flag");
  refused(row + a + std::string(1, '\0') + std::string(10, '\xff') + "\x00", "an 11-byte difference");
  refused(row + a + std::string(1, '\0') + std::string(9, '\xff') + "\x02", "a 10th varint byte above 1");
  refused(row + a + "\x04" + std::string(1, '\0') + "\x02" "{x", "a state that is not JSON");
  refused(row + a + "\x04" + std::string(2, '\0'), "a state of no bytes");
  refused(row + a + "\x04" + std::string(1, '\0') + "\x09" "[]", "a state longer than the blob");
  refused(row + a + "\x01" + std::string(1, '\0') + std::string(7, '\x01'), "a node of 7 bytes");
  refused(row, "a row stamp without fields");
  refused(std::string(15, '\x01'), "a row stamp of 15 bytes");
}

// A name the file has no number for is refused, not written in some other
// form: *out is left as it was.
TEST(RowFields, ANameWithoutANumberIsRefused) {
  for (const std::string& name : {std::string(), std::string("unknown_column"), std::string(64, 'n')}) {
    std::string out = "kept";
    Status st = EncodeRowFields({{"a", State(1, 1)}, {name, State(2, 2)}}, Names(), &out);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << name;
    EXPECT_EQ(out, "kept") << name;
  }
  // Numbers are given once, in order.
  FieldNames n;
  EXPECT_EQ(n.Add("x"), 0u);
  EXPECT_EQ(n.Add("y"), 1u);
  EXPECT_EQ(n.Add("x"), 0u);
  EXPECT_EQ(n.size(), 2u);
  EXPECT_EQ(n.Find("y"), 1);
  EXPECT_EQ(n.Find("z"), -1);
  ASSERT_NE(n.Name(1), nullptr);
  EXPECT_EQ(*n.Name(1), "y");
  EXPECT_EQ(n.Name(2), nullptr);
}

// Format 2's layout, which only a conversion reads: names and stamps in full.
TEST(RowFields, FormatTwoBlobsStillDecodeForTheirConversion) {
  auto fixed = [](uint64_t v) {
    std::string out;
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
    return out;
  };
  std::string v2 = "\x05" "facings" + fixed(0x019aafb0f0400001ULL) + fixed(7) + std::string(1, '\0') + std::string(1, '\0');
  v2[0] = 7;  // the name's length
  v2 += "\x05" "price" + fixed(0x019aafb0f0400000ULL) + fixed(9) + "\x03" + "\x04" "[1]";
  FieldList out;
  Status st = DecodeRowFieldsV2(v2, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].first, "facings");
  ExpectSame(State(0x019aafb0f0400001ULL, 7), out[0].second, "facings");
  EXPECT_EQ(out[1].first, "price");
  ExpectSame(State(0x019aafb0f0400000ULL, 9, 3, json::array({1})), out[1].second, "price");
  for (size_t len = 1; len < v2.size(); ++len) {
    if (len == 1 + 7 + 16 + 2) continue;  // the first field alone
    EXPECT_EQ(DecodeRowFieldsV2(std::string_view(v2).substr(0, len), &out).code(), Code::kCorruption) << len;
    EXPECT_TRUE(out.empty());
  }
}

}  // namespace
}  // namespace fieldsync::store
