// Hostile and broken peers against the real server: each bad input gets a
// clear error, changes nothing, and the server keeps serving everyone else.
#include <zstd.h>

#include <gtest/gtest.h>

#include "store/server_store.h"
#include "tests/support/test_support.h"

namespace fieldsync {
namespace {

using testing::RawPeer;
using testing::TempDir;
using testing::TestServer;

constexpr uint64_t kNode = 0xabc;

json Change1(const std::string& table, const std::string& row, const std::string& col, const json& v,
             uint64_t node = kNode, uint64_t hlc = 0) {
  Change c;
  c.table = table;
  c.row = row;
  c.column = col;
  c.value = v;
  c.stamp = {hlc ? hlc : MakeHlc(SystemMillis(), 0), node};
  return ChangeToJson(c);
}

class BadInputTest : public ::testing::Test {
 protected:
  BadInputTest() : server_(Options()) {}
  static server::ServerOptions Options() {
    server::ServerOptions o;
    o.limits.max_frame_bytes = 256 * 1024;
    o.limits.max_decompressed_bytes = 1024 * 1024;
    o.limits.max_changes_per_push = 100;
    return o;
  }
  // A well-behaved replica must still sync after whatever the test did.
  void ExpectServerStillServes() {
    std::unique_ptr<Replica> r;
    ASSERT_TRUE(Replica::Open(dir_.File("good.db"), testing::FieldSalesSchema(), &r).ok());
    ASSERT_TRUE(r->Put("accounts", Replica::NewId().substr(0, 8), {{"phone", "1"}}).ok());
    Status st = r->Sync(server_.sync_options());
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(r->GetSyncStatus().pending, 0);
  }
  int64_t Head() { return server_.hub().head(); }
  json ExpectError(RawPeer& p, const std::string& code) {
    json m;
    EXPECT_TRUE(p.Receive(&m)) << "no reply";
    EXPECT_EQ(m.value("type", ""), "error") << m.dump();
    EXPECT_EQ(m.value("code", ""), code) << m.dump();
    EXPECT_FALSE(m.value("message", "").empty());
    return m;
  }

  TempDir dir_;
  TestServer server_;
};

TEST_F(BadInputTest, FirstMessageMustBeHello) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.connected());
  ASSERT_TRUE(p.Send({{"type", "pull"}, {"cursor", 0}}));
  json e = ExpectError(p, "protocol_error");
  EXPECT_TRUE(e.value("fatal", false));
  EXPECT_TRUE(p.ClosedByServer());
  ExpectServerStillServes();
}

TEST_F(BadInputTest, UnsupportedProtocolVersionIsFatal) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Send({{"type", "hello"}, {"protocol", {99}}, {"node", ToHex(kNode)}}));
  json e = ExpectError(p, "unsupported");
  EXPECT_TRUE(e.value("fatal", false));
  EXPECT_TRUE(p.ClosedByServer());
  ExpectServerStillServes();
}

TEST_F(BadInputTest, GarbageAndTruncatedFramesAreRefused) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Hello(kNode));
  ASSERT_TRUE(p.SendBinary(std::string("\x00{\"type\":\"pu", 12)));  // truncated JSON
  ExpectError(p, "corruption");
  ASSERT_TRUE(p.SendBinary(std::string("\x40{}", 3)));  // unknown flag bits
  ExpectError(p, "protocol_error");
  ASSERT_TRUE(p.SendBinary(std::string("\x00[1,2]", 6)));  // not an object with a type
  ExpectError(p, "protocol_error");
  // zstd flag over bytes that are not zstd.
  ASSERT_TRUE(p.SendBinary(std::string("\x10not zstd at all", 16)));
  ExpectError(p, "corruption");
  // A valid zstd frame cut short.
  std::string big = EncodeFrame({{"type", "pull"}, {"cursor", 0}, {"pad", std::string(4000, 'x')}}, Encoding::kJson);
  ASSERT_EQ(big[0] & 0x10, 0x10);
  ASSERT_TRUE(p.SendBinary(big.substr(0, big.size() - 5)));
  ExpectError(p, "corruption");
  ASSERT_TRUE(p.Send({{"type", "teleport"}}));
  ExpectError(p, "protocol_error");
  // The connection survived all of it: a pull still works.
  ASSERT_TRUE(p.Send({{"type", "pull"}, {"id", 7}, {"cursor", 0}}));
  json m;
  ASSERT_TRUE(p.Receive(&m));
  EXPECT_EQ(m["type"], "changes");
  EXPECT_EQ(m["id"], 7);
  ExpectServerStillServes();
}

TEST_F(BadInputTest, ZstdBombIsRefusedBeforeInflating) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Hello(kNode));
  // 64 MiB of spaces inside a JSON string compress to a few KB.
  std::string payload = "{\"type\":\"pull\",\"cursor\":0,\"pad\":\"" + std::string(64u << 20, ' ') + "\"}";
  std::string frame(1 + ZSTD_compressBound(payload.size()), '\0');
  size_t n = ZSTD_compress(frame.data() + 1, frame.size() - 1, payload.data(), payload.size(), 1);
  ASSERT_FALSE(ZSTD_isError(n));
  frame.resize(1 + n);
  frame[0] = 0x10;
  ASSERT_LT(frame.size(), 256u * 1024);  // under the frame limit: only the inflated size is too big
  ASSERT_TRUE(p.SendBinary(frame));
  json e = ExpectError(p, "limit_exceeded");
  EXPECT_NE(e["message"].get<std::string>().find("max_decompressed_bytes"), std::string::npos);
  ExpectServerStillServes();
}

TEST_F(BadInputTest, FieldsOfTheWrongTypeAreErrorsNotCrashes) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Send({{"type", "hello"}, {"protocol", {1}}, {"node", ToHex(kNode)}, {"schema", 5}, {"client", {1}}}));
  json w;
  ASSERT_TRUE(p.Receive(&w));
  EXPECT_EQ(w["type"], "welcome");
  EXPECT_EQ(w["schema_match"], false);
  ASSERT_TRUE(p.Send({{"type", "pull"}, {"id", 1}, {"cursor", "zero"}}));
  ExpectError(p, "protocol_error");
  ASSERT_TRUE(p.Send({{"type", "push"}, {"batch", 2}, {"changes", {{{"t", 7}, {"r", "x"}}}}}));
  ExpectError(p, "protocol_error");
  ASSERT_TRUE(p.Send({{"type", "push"}, {"batch", 3}, {"changes", "all of them"}}));
  ExpectError(p, "protocol_error");
  // MessagePack with a string that is not UTF-8, and one nested a million deep.
  ASSERT_TRUE(p.SendBinary(std::string("\x01\x81\xa4type\xa2\xff\xfe", 10)));
  ExpectError(p, "corruption");
  std::string deep(1, '\x01');
  deep += std::string(200000, '\x91');
  deep.push_back('\xc0');
  ASSERT_TRUE(p.SendBinary(deep));
  ExpectError(p, "limit_exceeded");
  ExpectServerStillServes();
}

TEST_F(BadInputTest, OversizedFrameClosesThatConnectionOnly) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Hello(kNode));
  std::string huge(300 * 1024, 'x');  // over max_frame_bytes (256 KiB)
  p.SendBinary(std::string(1, '\0') + huge);
  EXPECT_TRUE(p.ClosedByServer());
  ExpectServerStillServes();
}

// Pushes judged the same whichever encoding carries them: a MessagePack
// push's changes are read straight from the frame (DecodeChangesFrame), a
// JSON one's through the tree.
class BadPushTest : public BadInputTest, public ::testing::WithParamInterface<Encoding> {
 protected:
  // `spoil`: the first "@@" in the frame becomes "\xc3(", a string that is
  // not UTF-8 (the codec would never write one; a hostile peer can).
  bool Push(RawPeer& p, const json& m, bool spoil = false) {
    std::string frame = EncodeFrame(m, GetParam(), /*compress=*/!spoil);
    if (spoil) {
      size_t at = frame.find("@@");
      if (at == std::string::npos) return false;
      frame.replace(at, 2, "\xc3(");
    }
    return p.SendBinary(frame);
  }
};
INSTANTIATE_TEST_SUITE_P(Encodings, BadPushTest, ::testing::Values(Encoding::kJson, Encoding::kMsgPack),
                         [](const auto& info) { return std::string(EncodingName(info.param)); });

TEST_P(BadPushTest, OversizedBatchIsRefusedWhole) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Hello(kNode));
  int64_t head = Head();
  json changes = json::array();
  for (int i = 0; i < 101; ++i) changes.push_back(Change1("accounts", "a" + std::to_string(i), "phone", "1", kNode,
                                                          MakeHlc(SystemMillis(), i + 1)));
  ASSERT_TRUE(Push(p, {{"type", "push"}, {"batch", 1}, {"changes", changes}}));
  json e = ExpectError(p, "limit_exceeded");
  EXPECT_EQ(e["in_reply_to"], 1);
  EXPECT_EQ(Head(), head);
  ExpectServerStillServes();
}

TEST_P(BadPushTest, MalformedChangeRefusesTheWholePush) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Hello(kNode));
  int64_t head = Head();
  json good = Change1("accounts", "ok1", "phone", "1");
  json bad = {{"t", "accounts"}, {"r", "ok2"}, {"o", "set"}};  // no stamp, no column
  ASSERT_TRUE(Push(p, {{"type", "push"}, {"batch", 2}, {"changes", {good, bad}}}));
  json e = ExpectError(p, "protocol_error");
  EXPECT_NE(e.value("message", "").find("change 1: "), std::string::npos) << e.dump();
  EXPECT_EQ(e["in_reply_to"], 2);
  EXPECT_EQ(Head(), head);  // not even the good one: nothing half-applied
  // A string that is not UTF-8 in any change refuses the frame itself.
  json bad_text = Change1("accounts", "ok3", "phone", "@@");
  ASSERT_TRUE(Push(p, {{"type", "push"}, {"batch", 3}, {"changes", {good, bad_text}}}, /*spoil=*/true));
  ExpectError(p, "corruption");
  EXPECT_EQ(Head(), head);
  ExpectServerStillServes();
}

TEST_P(BadPushTest, SchemaViolationsAreRefusedPerChangeAndTheRestApplies) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Hello(kNode));
  uint64_t t = SystemMillis();
  json changes = {
      Change1("accounts", "good", "phone", "555", kNode, MakeHlc(t, 1)),
      Change1("warehouses", "w1", "name", "x", kNode, MakeHlc(t, 2)),             // unknown table
      Change1("accounts", "good", "colour", "red", kNode, MakeHlc(t, 3)),         // unknown column
      Change1("accounts", "good", "employees", "many", kNode, MakeHlc(t, 4)),     // wrong type
      Change1("store_check_lines", "l1", "stock_status", "empty", kNode, MakeHlc(t, 5)),  // not in enum
      Change1("skus", "s1", "name", "x", kNode, MakeHlc(t, 6)),                   // reference table
      Change1("accounts", "good", "city", "Wuhan", kNode, MakeHlc(t + 3600 * 1000, 0)),  // an hour ahead
      Change1("accounts", "good", "city", "Wuhan", 0xdef, MakeHlc(t, 8)),         // another node's change
      Change1("accounts", "good", "postcode", "430000", kNode, MakeHlc(t, 9)),
  };
  ASSERT_TRUE(Push(p, {{"type", "push"}, {"batch", 3}, {"changes", changes}}));
  json ack;
  ASSERT_TRUE(p.Receive(&ack));
  ASSERT_EQ(ack["type"], "ack") << ack.dump();
  EXPECT_EQ(ack["applied"], 2);
  std::map<int, std::string> codes;
  for (const auto& r : ack["rejected"]) codes[r["i"].get<int>()] = r["code"].get<std::string>();
  EXPECT_EQ(codes, (std::map<int, std::string>{{1, "not_found"},
                                               {2, "not_found"},
                                               {3, "schema_violation"},
                                               {4, "schema_violation"},
                                               {5, "permission_denied"},
                                               {6, "clock_skew"},
                                               {7, "permission_denied"}}));
  std::string dump = server_.Dump();
  EXPECT_NE(dump.find("\"phone\":\"555\""), std::string::npos);
  EXPECT_NE(dump.find("\"postcode\":\"430000\""), std::string::npos);
  EXPECT_EQ(dump.find("Wuhan"), std::string::npos);
  EXPECT_EQ(dump.find("warehouses"), std::string::npos);
  ExpectServerStillServes();
}

TEST_F(BadInputTest, RetriedPushIsNeverAppliedTwice) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Hello(kNode));
  json changes = {Change1("goods_loans", "g1", "quantity", 5, kNode, MakeHlc(SystemMillis(), 1))};
  Change inc;
  inc.table = "goods_loans";
  inc.row = "g1";
  inc.column = "returned_qty";
  inc.op = Op::kIncrement;
  inc.value = json::array({3, 0});
  inc.stamp = {MakeHlc(SystemMillis(), 2), kNode};
  changes.push_back(ChangeToJson(inc));
  for (int attempt = 0; attempt < 3; ++attempt) {
    ASSERT_TRUE(p.Send({{"type", "push"}, {"batch", attempt}, {"changes", changes}}));
    json ack;
    ASSERT_TRUE(p.Receive(&ack));
    EXPECT_EQ(ack["applied"], attempt == 0 ? 2 : 0);
    EXPECT_EQ(ack["duplicates"], attempt == 0 ? 0 : 2);
  }
  EXPECT_EQ(Head(), 2);
  EXPECT_NE(server_.Dump().find("\"returned_qty\":3"), std::string::npos);
}

TEST_F(BadInputTest, TooManyErrorsCloseTheConnection) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Hello(kNode));
  for (int i = 0; i < 40; ++i)
    if (!p.Send({{"type", "nonsense"}})) break;
  EXPECT_TRUE(p.ClosedByServer());
  ExpectServerStillServes();
}

TEST_F(BadInputTest, SilentPeerIsDroppedAfterTheHandshakeTimeout) {
  server::ServerOptions o;
  o.handshake_timeout_ms = 300;
  TestServer quick(o);
  RawPeer p(quick.url());
  ASSERT_TRUE(p.connected());
  EXPECT_TRUE(p.ClosedByServer(5000));  // never sent hello
}

// A replica built from a newer schema (one more column) pushes a change the
// server cannot take: it is refused on its own, surfaced to the app, and the
// rest of the outbox goes through.
TEST_F(BadInputTest, RefusedChangeIsSurfacedAndDoesNotBlockTheOutbox) {
  json doc = testing::FieldSalesSchema().document();
  for (auto& t : doc["tables"])
    if (t["name"] == "accounts") t["columns"].push_back({{"name", "loyalty_tier"}, {"type", "text"}});
  Schema newer;
  ASSERT_TRUE(Schema::Parse(doc, &newer).ok());
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir_.File("newer.db"), newer, &r).ok());
  ASSERT_TRUE(r->Put("accounts", "acc9", {{"phone", "1"}, {"loyalty_tier", "gold"}, {"city", "Xi'an"}}).ok());
  SyncReport rep;
  ASSERT_TRUE(r->Sync(server_.sync_options(), &rep).ok());
  EXPECT_EQ(rep.pushed, 2);
  EXPECT_EQ(rep.rejected, 1);
  EXPECT_EQ(r->GetSyncStatus().pending, 0);
  std::vector<store::Rejection> rej;
  ASSERT_TRUE(r->Rejections(&rej).ok());
  ASSERT_EQ(rej.size(), 1u);
  EXPECT_EQ(rej[0].code, "not_found");
  EXPECT_EQ(rej[0].change.column, "loyalty_tier");
  EXPECT_NE(server_.Dump().find("Xi'an"), std::string::npos);
}

}  // namespace
}  // namespace fieldsync

namespace fieldsync {
namespace {

TEST_F(BadInputTest, MalformedSnapshotRequestsAreRefusedAndAStaleOneRestarts) {
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Hello(kNode));
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 1}, {"cursor", "zero"}}));
  EXPECT_EQ(ExpectError(p, "protocol_error")["in_reply_to"], 1);
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 2}, {"after", {"accounts"}}}));
  EXPECT_EQ(ExpectError(p, "protocol_error")["in_reply_to"], 2);
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 3}, {"after", {1, 2}}}));
  ExpectError(p, "protocol_error");
  // A cursor the server never reached: start again (resync), nothing served.
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 4}, {"cursor", 999999}}));
  json m;
  ASSERT_TRUE(p.Receive(&m));
  EXPECT_EQ(m["type"], "snapshot");
  EXPECT_TRUE(m.value("resync", false)) << m.dump();
  EXPECT_TRUE(m["rows"].empty());
  // A good request gets a page.
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 5}}));
  ASSERT_TRUE(p.Receive(&m));
  EXPECT_EQ(m["type"], "snapshot");
  EXPECT_EQ(m["id"], 5);
  EXPECT_TRUE(m["rows"].is_array());
  EXPECT_FALSE(m.value("more", true));
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 6}, {"compact", "yes"}}));
  EXPECT_EQ(ExpectError(p, "protocol_error")["in_reply_to"], 6);
  ExpectServerStillServes();
}

TEST_F(BadInputTest, SnapshotRowsAreCompactWhenAskedAndFullOtherwise) {
  {
    // One account with two fields: each has a stamp of its own.
    std::unique_ptr<Replica> r;
    ASSERT_TRUE(Replica::Open(dir_.File("two.db"), testing::FieldSalesSchema(), &r).ok());
    ASSERT_TRUE(r->Put("accounts", "acc-two", {{"phone", "1"}, {"name", "Two"}}).ok());
    Status st = r->Sync(server_.sync_options());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  RawPeer p(server_.url());
  ASSERT_TRUE(p.Hello(kNode));
  json full, compact;
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 1}}));
  ASSERT_TRUE(p.Receive(&full));
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 2}, {"compact", true}}));
  ASSERT_TRUE(p.Receive(&compact));
  ASSERT_EQ(full["rows"].size(), 1u) << full.dump();
  ASSERT_EQ(compact["rows"].size(), 1u) << compact.dump();
  const json& f = full["rows"][0];
  const json& c = compact["rows"][0];
  EXPECT_FALSE(f.contains("h"));
  ASSERT_TRUE(f.at("f").contains("phone") && f.at("f").contains("name")) << f.dump();
  EXPECT_TRUE(f.at("f").at("phone").contains("h"));
  ASSERT_TRUE(c.contains("h") && c.contains("n")) << c.dump();
  ASSERT_TRUE(c.at("f").contains("phone") && c.at("f").contains("name")) << c.dump();
  for (const char* col : {"phone", "name"}) {
    EXPECT_FALSE(c.at("f").at(col).contains("h")) << col;
    EXPECT_FALSE(c.at("f").at(col).contains("n")) << col;  // one node wrote both
  }
  // The two writes were stamped apart: exactly one field carries an offset.
  EXPECT_NE(c.at("f").at("phone").contains("d"), c.at("f").at("name").contains("d")) << c.dump();
  // Both forms say the same thing.
  RowState a, b;
  ASSERT_TRUE(RowStateFromJson(f, &a).ok());
  ASSERT_TRUE(RowStateFromJson(c, &b).ok());
  EXPECT_EQ(RowStateToJson(a), RowStateToJson(b));
}

// Column-major blocks hold what the rows hold, tombstones included, in the
// same order; a `columns` that is not a boolean is refused.
TEST_F(BadInputTest, SnapshotBlocksSayWhatRowsSay) {
  {
    std::unique_ptr<Replica> r;
    ASSERT_TRUE(Replica::Open(dir_.File("blocks.db"), testing::FieldSalesSchema(), &r).ok());
    for (int i = 0; i < 6; ++i)
      ASSERT_TRUE(r->Put("accounts", "acc-" + std::to_string(i), {{"phone", std::to_string(i)}, {"name", "A"}}).ok());
    ASSERT_TRUE(r->Put("accounts", "acc-9", {{"phone", "9"}}).ok());  // fewer columns: a block of its own
    ASSERT_TRUE(r->Put("contacts", "ct-1", {{"name", "Li"}, {"account_id", "acc-1"}}).ok());
    ASSERT_TRUE(r->Delete("accounts", "acc-3").ok());
    Status st = r->Sync(server_.sync_options());
    ASSERT_TRUE(st.ok()) << st.ToString();
    // A second device rewrites some fields: rows whose fields come from two
    // nodes, stamps far apart (the blocks' node indexes and extras).
    std::unique_ptr<Replica> other;
    ASSERT_TRUE(Replica::Open(dir_.File("blocks2.db"), testing::FieldSalesSchema(), &other).ok());
    ASSERT_TRUE((st = other->Sync(server_.sync_options())).ok()) << st.ToString();
    ASSERT_TRUE(other->Put("accounts", "acc-1", {{"phone", "other"}}).ok());
    ASSERT_TRUE(other->Put("accounts", "acc-2", {{"phone", "other"}, {"name", "B"}}).ok());
    ASSERT_TRUE((st = other->Sync(server_.sync_options())).ok()) << st.ToString();
  }
  RawPeer p(server_.url());
  json welcome;
  ASSERT_TRUE(p.Hello(kNode, &welcome));
  EXPECT_NE(std::find(welcome["features"].begin(), welcome["features"].end(), "snapshot_columns"),
            welcome["features"].end()) << welcome.dump();
  json rows, blocks;
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 1}, {"compact", true}}));
  ASSERT_TRUE(p.Receive(&rows));
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 2}, {"compact", true}, {"columns", true}}));
  ASSERT_TRUE(p.Receive(&blocks));
  ASSERT_TRUE(blocks.contains("blocks")) << blocks.dump();
  EXPECT_FALSE(blocks.contains("rows"));
  EXPECT_EQ(blocks["after"], rows["after"]);
  // accounts with two columns, acc-3's tombstone, acc-9, then the contact.
  EXPECT_EQ(blocks["blocks"].size(), 5u) << blocks["blocks"].dump();
  const json& first = blocks["blocks"][0];
  EXPECT_TRUE(first.contains("ni") || first.contains("x")) << first.dump();  // acc-1, acc-2: another node
  std::vector<RowState> from_blocks;
  ASSERT_TRUE(SnapshotBlocksFromJson(blocks["blocks"], &from_blocks).ok());
  ASSERT_EQ(from_blocks.size(), rows["rows"].size());
  ASSERT_EQ(from_blocks.size(), 8u);
  for (size_t i = 0; i < from_blocks.size(); ++i) {
    RowState a;
    ASSERT_TRUE(RowStateFromJson(rows["rows"][i], &a).ok());
    EXPECT_EQ(RowStateToJson(from_blocks[i]).dump(), RowStateToJson(a).dump()) << i;
  }
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 3}, {"columns", 1}}));
  EXPECT_EQ(ExpectError(p, "protocol_error")["in_reply_to"], 3);
  ExpectServerStillServes();
}

}  // namespace
}  // namespace fieldsync
