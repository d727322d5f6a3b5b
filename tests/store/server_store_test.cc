// store/server_store: the server's file. Pushes are validated change by
// change and applied in one transaction, the log gives every accepted change
// a seq and makes retries no-ops, ReadLog pages through it for pulls, and
// WriteRows (central writes) is all-or-nothing.
#include "store/server_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sync/merge.h"
#include "sync/protocol.h"

namespace fieldsync::store {
namespace {

constexpr const char* kSchema = R"({"name": "server_store_test", "version": 1, "tables": [
  {"name": "accounts", "columns": [
    {"name": "name", "type": "text"},
    {"name": "phone", "type": "text"},
    {"name": "employees", "type": "integer"},
    {"name": "notes", "type": "text", "merge": "mv"}]},
  {"name": "contacts", "columns": [
    {"name": "name", "type": "text"}]},
  {"name": "skus", "access": "reference", "columns": [
    {"name": "code", "type": "text"},
    {"name": "price", "type": "real"},
    {"name": "active", "type": "boolean"}]}
]})";

constexpr NodeId kDevA = 0xF0000000000000A1ULL;  // top bit set: negative in SQLite
constexpr NodeId kDevB = 0x00000000000000B2ULL;
constexpr uint64_t kMinute = 60 * 1000;

class ServerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = Schema::ParseText(kSchema, &schema_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    char tmpl[] = "/tmp/fieldsync_server_store_test_XXXXXX";
    char* dir = mkdtemp(tmpl);
    ASSERT_NE(dir, nullptr) << "mkdtemp failed";
    dir_ = dir;
    t0_ = SystemMillis();
    ASSERT_NO_FATAL_FAILURE(Open());
  }

  void TearDown() override {
    ss_.Close();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  void Open() {
    Status st = ss_.Open(dir_ + "/server.db", schema_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_NE(ss_.node(), 0u);
    clock_ = std::make_unique<HybridClock>(ss_.node());
  }

  void Reopen() {
    ss_.Close();
    Open();
  }

  // A device stamp near the current time; k orders stamps of one node.
  Hlc H(uint32_t k) const { return MakeHlc(t0_, k); }

  static Change Set(const std::string& table, const std::string& row, const std::string& col, json v,
                    Stamp stamp) {
    Change c;
    c.table = table;
    c.row = row;
    c.column = col;
    c.op = Op::kSet;
    c.value = std::move(v);
    c.stamp = stamp;
    return c;
  }

  static Change Del(const std::string& table, const std::string& row, Stamp stamp) {
    Change c;
    c.table = table;
    c.row = row;
    c.op = Op::kDelete;
    c.stamp = stamp;
    return c;
  }

  Status Push(const std::vector<Change>& changes, std::vector<PushResult>* results, std::vector<Change>* applied,
              Writer writer = Writer::kDevice) {
    return ss_.ApplyBatch(changes, now_ms_, clock_.get(), results, applied, writer);
  }

  int64_t Head() {
    int64_t h = -1;
    Status st = ss_.Head(&h);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return h;
  }

  Status Row(const std::string& table, const std::string& id, json* row) {
    return ss_.store().GetRow(table, id, row);
  }

  // The identity and content of a change, without seq and receive time.
  static json Essence(const Change& c) {
    Change x = c;
    x.seq = 0;
    x.server_ms = 0;
    return ChangeToJson(x);
  }

  static std::vector<int64_t> Seqs(const std::vector<Change>& cs) {
    std::vector<int64_t> out;
    for (const auto& c : cs) out.push_back(c.seq);
    return out;
  }

  Schema schema_;
  std::string dir_;
  uint64_t t0_ = 0;
  uint64_t now_ms_ = 1'700'000'123'456ULL;
  ServerStore ss_;
  std::unique_ptr<HybridClock> clock_;
};

// ---- ApplyBatch -----------------------------------------------------------------

TEST_F(ServerStoreTest, ApplyBatchAppliesValidChangesAndGivesEachASeq) {
  std::vector<Change> changes = {
      Set("accounts", "a1", "name", "Acme", {H(1), kDevA}),
      Set("accounts", "a1", "phone", "555", {H(2), kDevA}),
      Set("contacts", "c1", "name", "Li", {H(1), kDevB}),
  };
  std::vector<PushResult> results;
  std::vector<Change> applied;
  Status st = Push(changes, &results, &applied);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(results.size(), 3u);
  ASSERT_EQ(applied.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].result, ChangeResult::kApplied) << i;
    EXPECT_EQ(results[i].code, Code::kOk) << i;
    EXPECT_EQ(results[i].seq, static_cast<int64_t>(i + 1)) << i;
    EXPECT_EQ(applied[i].seq, results[i].seq) << i;
    EXPECT_EQ(applied[i].server_ms, now_ms_) << i;
    EXPECT_EQ(Essence(applied[i]), Essence(changes[i])) << i;
  }
  EXPECT_EQ(Head(), 3);

  json row;
  ASSERT_TRUE(Row("accounts", "a1", &row).ok());
  EXPECT_EQ(row, (json{{"id", "a1"}, {"name", "Acme"}, {"phone", "555"}}));
  ASSERT_TRUE(Row("contacts", "c1", &row).ok());
  EXPECT_EQ(row, (json{{"id", "c1"}, {"name", "Li"}}));

  // Committed: all of it is still there after a reopen.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Head(), 3);
  ASSERT_TRUE(Row("accounts", "a1", &row).ok());
  EXPECT_EQ(row.value("phone", json()), json("555"));
}

TEST_F(ServerStoreTest, RepeatedChangesAreDuplicatesAndLeaveTheLogAlone) {
  std::vector<Change> changes = {
      Set("accounts", "a1", "name", "Acme", {H(1), kDevA}),
      Set("accounts", "a1", "phone", "555", {H(2), kDevA}),
      Set("contacts", "c1", "name", "Li", {H(1), kDevB}),
  };
  std::vector<PushResult> results;
  std::vector<Change> applied;
  ASSERT_TRUE(Push(changes, &results, &applied).ok());
  ASSERT_EQ(Head(), 3);

  Status st = Push(changes, &results, &applied);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(results.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].result, ChangeResult::kDuplicate) << i;
    EXPECT_EQ(results[i].seq, 0) << i;
  }
  EXPECT_TRUE(applied.empty());
  EXPECT_EQ(Head(), 3);

  // Identity is (node, hlc): a "retry" carrying another value is still the
  // same change and is not applied again.
  Change altered = changes[1];
  altered.value = "999";
  ASSERT_TRUE(Push({altered}, &results, &applied).ok());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].result, ChangeResult::kDuplicate);
  EXPECT_EQ(Head(), 3);
  json row;
  ASSERT_TRUE(Row("accounts", "a1", &row).ok());
  EXPECT_EQ(row.value("phone", json()), json("555"));

  // A change repeated inside one batch is applied once.
  Change fresh = Set("contacts", "c2", "name", "Wang", {H(2), kDevB});
  ASSERT_TRUE(Push({fresh, fresh}, &results, &applied).ok());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].result, ChangeResult::kApplied);
  EXPECT_EQ(results[0].seq, 4);
  EXPECT_EQ(results[1].result, ChangeResult::kDuplicate);
  EXPECT_EQ(applied.size(), 1u);
  EXPECT_EQ(Head(), 4);

  // Still duplicates after a reopen: the log, not memory, decides.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_TRUE(Push(changes, &results, &applied).ok());
  for (const auto& r : results) EXPECT_EQ(r.result, ChangeResult::kDuplicate);
  EXPECT_EQ(Head(), 4);
}

TEST_F(ServerStoreTest, InvalidChangesAreRejectedOneByOneAndTheRestApply) {
  Change good1 = Set("accounts", "a1", "name", "Acme", {H(1), kDevA});
  Change unknown_table = Set("nope", "a1", "name", "x", {H(2), kDevA});
  Change unknown_column = Set("accounts", "a1", "nope", "x", {H(3), kDevA});
  Change wrong_type = Set("accounts", "a1", "employees", "many", {H(4), kDevA});
  Change future = Set("accounts", "a2", "name", "From the future", {MakeHlc(SystemMillis() + 10 * kMinute, 0), kDevB});
  Change bad_id = Set("accounts", "not an id!", "name", "x", {H(5), kDevA});
  Change good2 = Set("accounts", "a1", "employees", 12, {H(6), kDevA});

  std::vector<PushResult> results;
  std::vector<Change> applied;
  Status st = Push({good1, unknown_table, unknown_column, wrong_type, future, bad_id, good2}, &results, &applied);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(results.size(), 7u);

  EXPECT_EQ(results[0].result, ChangeResult::kApplied);
  EXPECT_EQ(results[6].result, ChangeResult::kApplied);
  EXPECT_EQ(results[0].seq, 1);
  EXPECT_EQ(results[6].seq, 2);

  struct Want {
    size_t i;
    Code code;
  };
  for (const Want& w : {Want{1, Code::kNotFound}, Want{2, Code::kNotFound}, Want{3, Code::kSchemaViolation},
                        Want{4, Code::kClockSkew}, Want{5, Code::kInvalidArgument}}) {
    SCOPED_TRACE("change " + std::to_string(w.i));
    EXPECT_EQ(results[w.i].result, ChangeResult::kRejected);
    EXPECT_EQ(results[w.i].code, w.code) << CodeName(results[w.i].code) << ": " << results[w.i].message;
    EXPECT_FALSE(results[w.i].message.empty());
    EXPECT_EQ(results[w.i].seq, 0);
  }

  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(Essence(applied[0]), Essence(good1));
  EXPECT_EQ(Essence(applied[1]), Essence(good2));
  EXPECT_EQ(Head(), 2);

  json row;
  ASSERT_TRUE(Row("accounts", "a1", &row).ok());
  EXPECT_EQ(row, (json{{"id", "a1"}, {"name", "Acme"}, {"employees", 12}}));
  st = Row("accounts", "a2", &row);
  EXPECT_EQ(st.code(), Code::kNotFound) << "the skewed change must not be applied: " << row.dump();

  // Only the accepted changes are in the log.
  std::vector<Change> log;
  int64_t scanned = 0;
  ASSERT_TRUE(ss_.ReadLog(0, 100, 0, &log, &scanned).ok());
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(Essence(log[0]), Essence(good1));
  EXPECT_EQ(Essence(log[1]), Essence(good2));
}

// A push's consecutive writes to one row are checked one by one and merged
// together (ApplyBatch groups them, Store::ApplyRow). Whatever the mix of
// valid, refused, duplicate and deleting changes, the outcome of each
// change, the log and the rows are those of the same changes pushed one at
// a time, where nothing can be grouped.
TEST_F(ServerStoreTest, GroupedRowRunsEndAsChangesAppliedOneByOne) {
  ServerStore single;
  ASSERT_TRUE(single.Open(dir_ + "/single.db", schema_).ok());
  HybridClock single_clock(single.node());
  std::mt19937 rng(20261203);
  const char* cols[] = {"name", "phone", "employees", "nope"};
  std::vector<Change> all;
  uint32_t k = 0;
  for (int i = 0; i < 400; ++i) {
    Stamp stamp{H(++k), rng() % 2 ? kDevA : kDevB};
    std::string table = rng() % 5 == 0 ? "contacts" : "accounts";
    std::string row = "r" + std::to_string(rng() % 6);
    int pick = static_cast<int>(rng() % 20);
    Change c;
    if (pick == 0) {
      c = Del(table, row, stamp);
    } else if (pick == 1 && !all.empty()) {
      c = all[rng() % all.size()];  // a retry
    } else if (pick == 2) {
      c = Set("skus", row, "code", "X", stamp);  // reference data: refused
    } else if (pick == 3) {
      c = Set(table, row, "name", "ahead", {MakeHlc(SystemMillis() + 10 * kMinute, k), stamp.node});
    } else {
      std::string col = table == "contacts" ? (rng() % 8 ? "name" : "phone") : cols[rng() % 4];
      json v = col == "employees" ? (rng() % 6 ? json(static_cast<int>(rng() % 500)) : json("many"))
                                  : json("v" + std::to_string(rng() % 1000));
      c = Set(table, row, col, v, stamp);
    }
    all.push_back(c);
  }
  std::vector<PushResult> grouped_results;
  for (size_t at = 0; at < all.size(); at += 25) {
    std::vector<Change> push(all.begin() + at, all.begin() + std::min(all.size(), at + 25));
    std::vector<PushResult> results;
    std::vector<Change> applied;
    ASSERT_TRUE(Push(push, &results, &applied).ok());
    grouped_results.insert(grouped_results.end(), results.begin(), results.end());
  }
  size_t rejected = 0, duplicates = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE("change " + std::to_string(i) + ": " + ChangeToJson(all[i]).dump());
    std::vector<PushResult> results;
    std::vector<Change> applied;
    ASSERT_TRUE(single.ApplyBatch({all[i]}, now_ms_, &single_clock, &results, &applied, Writer::kDevice).ok());
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].result, grouped_results[i].result);
    EXPECT_EQ(results[0].code, grouped_results[i].code);
    EXPECT_EQ(results[0].seq, grouped_results[i].seq);
    rejected += results[0].result == ChangeResult::kRejected;
    duplicates += results[0].result == ChangeResult::kDuplicate;
  }
  EXPECT_GT(rejected, 20u);  // the mix really has refusals and retries
  EXPECT_GT(duplicates, 5u);
  std::vector<Change> log_grouped, log_single;
  int64_t scanned = 0;
  ASSERT_TRUE(ss_.ReadLog(0, 1000, 0, &log_grouped, &scanned).ok());
  ASSERT_TRUE(single.ReadLog(0, 1000, 0, &log_single, &scanned).ok());
  ASSERT_EQ(log_grouped.size(), log_single.size());
  for (size_t i = 0; i < log_grouped.size(); ++i) EXPECT_EQ(Essence(log_grouped[i]), Essence(log_single[i]));
  // Every row's whole merge state (fields, stamps, tombstones), not only
  // its values.
  std::vector<RowState> state_grouped, state_single;
  bool more = false;
  ASSERT_TRUE(ss_.store().ReadState("", "", 1000, &state_grouped, &more).ok());
  ASSERT_TRUE(single.store().ReadState("", "", 1000, &state_single, &more).ok());
  ASSERT_EQ(state_grouped.size(), state_single.size());
  EXPECT_GT(state_grouped.size(), 6u);
  for (size_t i = 0; i < state_grouped.size(); ++i)
    EXPECT_EQ(RowStateToJson(state_grouped[i]), RowStateToJson(state_single[i])) << state_grouped[i].row;
  single.Close();
}

TEST_F(ServerStoreTest, ClockSkewBoundIsFiveMinutesAheadOfTheServer) {
  Change inside = Set("accounts", "a1", "name", "ok", {MakeHlc(SystemMillis() + 4 * kMinute, 0), kDevA});
  Change outside = Set("accounts", "a2", "name", "no", {MakeHlc(SystemMillis() + 6 * kMinute, 0), kDevB});
  std::vector<PushResult> results;
  std::vector<Change> applied;
  ASSERT_TRUE(Push({inside, outside}, &results, &applied).ok());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].result, ChangeResult::kApplied) << results[0].message;
  EXPECT_EQ(results[1].result, ChangeResult::kRejected);
  EXPECT_EQ(results[1].code, Code::kClockSkew) << results[1].message;
  EXPECT_EQ(Head(), 1);
}

TEST_F(ServerStoreTest, DevicesMayNotWriteReferenceTablesButTheServerMay) {
  Change sku = Set("skus", "s1", "code", "X-1", {H(1), kDevA});
  Change sku_delete = Del("skus", "s2", {H(2), kDevA});
  Change account = Set("accounts", "a1", "name", "Acme", {H(3), kDevA});
  std::vector<PushResult> results;
  std::vector<Change> applied;
  ASSERT_TRUE(Push({sku, sku_delete, account}, &results, &applied, Writer::kDevice).ok());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].result, ChangeResult::kRejected);
  EXPECT_EQ(results[0].code, Code::kPermissionDenied) << results[0].message;
  EXPECT_EQ(results[1].result, ChangeResult::kRejected);
  EXPECT_EQ(results[1].code, Code::kPermissionDenied) << results[1].message;
  EXPECT_EQ(results[2].result, ChangeResult::kApplied);
  EXPECT_EQ(Head(), 1);
  json row;
  Status st = Row("skus", "s1", &row);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
  bool deleted = true;
  ASSERT_TRUE(ss_.store().IsDeleted("skus", "s2", &deleted).ok());
  EXPECT_FALSE(deleted);

  // The refused change was not logged, so the server may now write it.
  ASSERT_TRUE(Push({sku}, &results, &applied, Writer::kServer).ok());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].result, ChangeResult::kApplied) << results[0].message;
  EXPECT_EQ(results[0].seq, 2);
  EXPECT_EQ(Head(), 2);
  ASSERT_TRUE(Row("skus", "s1", &row).ok());
  EXPECT_EQ(row, (json{{"id", "s1"}, {"code", "X-1"}}));
}

TEST_F(ServerStoreTest, StorageErrorMidBatchAppliesNothing) {
  // Make the second change fail inside the merge: its table is gone.
  ASSERT_TRUE(ss_.store().db().Exec("DROP TABLE \"accounts\"").ok());
  Change ok = Set("contacts", "c1", "name", "Li", {H(1), kDevB});
  Change breaks = Set("accounts", "a1", "name", "Acme", {H(2), kDevA});
  std::vector<PushResult> results;
  std::vector<Change> applied;
  Status st = Push({ok, breaks}, &results, &applied);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(Head(), 0);
  json row;
  st = Row("contacts", "c1", &row);
  EXPECT_EQ(st.code(), Code::kNotFound) << "the first change of a failed batch was kept: " << row.dump();
  std::vector<Change> log;
  int64_t scanned = -1;
  ASSERT_TRUE(ss_.ReadLog(0, 100, 0, &log, &scanned).ok());
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(scanned, 0);
}

// ---- ReadLog ---------------------------------------------------------------------

TEST_F(ServerStoreTest, ReadLogPagesAfterACursorAndSkipsTheExcludedNode) {
  // seq:             1          2          3          4          5
  std::vector<Change> changes = {
      Set("accounts", "a1", "name", "A1", {H(1), kDevA}), Set("accounts", "a2", "name", "B1", {H(1), kDevB}),
      Set("accounts", "a1", "phone", "A2", {H(2), kDevA}), Set("accounts", "a2", "phone", "B2", {H(2), kDevB}),
      Set("contacts", "c1", "name", "A3", {H(3), kDevA}),
  };
  std::vector<PushResult> results;
  std::vector<Change> applied;
  ASSERT_TRUE(Push({changes[0], changes[1]}, &results, &applied).ok());
  ASSERT_TRUE(Push({changes[2], changes[3], changes[4]}, &results, &applied).ok());
  ASSERT_EQ(Head(), 5);

  using Seq = std::vector<int64_t>;
  std::vector<Change> out;
  int64_t scanned = -1;

  ASSERT_TRUE(ss_.ReadLog(0, 100, 0, &out, &scanned).ok());
  EXPECT_EQ(Seqs(out), (Seq{1, 2, 3, 4, 5}));
  EXPECT_EQ(scanned, 5);
  ASSERT_EQ(out.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(Essence(out[i]), Essence(changes[i])) << i;
    EXPECT_EQ(out[i].server_ms, now_ms_) << i;
  }

  ASSERT_TRUE(ss_.ReadLog(0, 2, 0, &out, &scanned).ok());
  EXPECT_EQ(Seqs(out), (Seq{1, 2}));
  EXPECT_EQ(scanned, 2);
  ASSERT_TRUE(ss_.ReadLog(2, 2, 0, &out, &scanned).ok());
  EXPECT_EQ(Seqs(out), (Seq{3, 4}));
  EXPECT_EQ(scanned, 4);
  ASSERT_TRUE(ss_.ReadLog(4, 2, 0, &out, &scanned).ok());
  EXPECT_EQ(Seqs(out), (Seq{5}));
  EXPECT_EQ(scanned, 5);

  // A device does not get its own changes back, but its cursor moves past them.
  ASSERT_TRUE(ss_.ReadLog(0, 100, kDevA, &out, &scanned).ok());
  EXPECT_EQ(Seqs(out), (Seq{2, 4}));
  for (const auto& c : out) EXPECT_EQ(c.stamp.node, kDevB);
  EXPECT_EQ(scanned, 5);
  ASSERT_TRUE(ss_.ReadLog(0, 3, kDevA, &out, &scanned).ok());
  EXPECT_EQ(Seqs(out), (Seq{2}));
  EXPECT_EQ(scanned, 3);  // the limit bounds the scan, skipped rows included
  ASSERT_TRUE(ss_.ReadLog(4, 100, kDevA, &out, &scanned).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(scanned, 5);
  ASSERT_TRUE(ss_.ReadLog(0, 100, kDevB, &out, &scanned).ok());
  EXPECT_EQ(Seqs(out), (Seq{1, 3, 5}));
  for (const auto& c : out) EXPECT_EQ(c.stamp.node, kDevA);  // high-bit node id round-trips

  // Nothing after the head: the cursor stays where it was.
  ASSERT_TRUE(ss_.ReadLog(5, 100, 0, &out, &scanned).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(scanned, 5);
  ASSERT_TRUE(ss_.ReadLog(0, 0, 0, &out, &scanned).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(scanned, 0);
}

// ---- WriteRows --------------------------------------------------------------------

TEST_F(ServerStoreTest, WriteRowsWritesAsTheServerNode) {
  std::vector<json> rows = {
      {{"table", "accounts"}, {"id", "a1"}, {"name", "Acme"}, {"employees", 5}},
      {{"table", "skus"}, {"id", "s1"}, {"code", "X-1"}, {"price", 2.5}, {"active", true}},
  };
  std::vector<Change> applied;
  Status st = ss_.WriteRows(rows, now_ms_, clock_.get(), &applied);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(applied.size(), 5u);  // one change per field
  for (size_t i = 0; i < applied.size(); ++i) {
    EXPECT_EQ(applied[i].stamp.node, ss_.node()) << i;
    EXPECT_NE(applied[i].stamp.hlc, 0u) << i;
    EXPECT_EQ(applied[i].seq, static_cast<int64_t>(i + 1)) << i;
    EXPECT_EQ(applied[i].server_ms, now_ms_) << i;
    EXPECT_TRUE(ValidateChange(schema_, applied[i]).ok()) << i;
  }
  EXPECT_EQ(Head(), 5);

  json row;
  ASSERT_TRUE(Row("accounts", "a1", &row).ok());
  EXPECT_EQ(row, (json{{"id", "a1"}, {"name", "Acme"}, {"employees", 5}}));
  ASSERT_TRUE(Row("skus", "s1", &row).ok());
  EXPECT_EQ(row, (json{{"id", "s1"}, {"code", "X-1"}, {"price", 2.5}, {"active", true}}));

  // The log carries them as the server's changes.
  std::vector<Change> log;
  int64_t scanned = -1;
  ASSERT_TRUE(ss_.ReadLog(0, 100, 0, &log, &scanned).ok());
  ASSERT_EQ(log.size(), 5u);
  for (const auto& c : log) EXPECT_EQ(c.stamp.node, ss_.node());
  ASSERT_TRUE(ss_.ReadLog(0, 100, ss_.node(), &log, &scanned).ok());
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(scanned, 5);

  // Writing the same values again changes nothing; a new value is one change.
  ASSERT_TRUE(ss_.WriteRows(rows, now_ms_, clock_.get(), &applied).ok());
  EXPECT_TRUE(applied.empty());
  EXPECT_EQ(Head(), 5);
  ASSERT_TRUE(ss_.WriteRows({{{"table", "skus"}, {"id", "s1"}, {"price", 3.0}}}, now_ms_, clock_.get(), &applied).ok());
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].seq, 6);
  EXPECT_EQ(applied[0].column, "price");
  EXPECT_NE(applied[0].base, 0u);  // it replaced the server's own earlier value
  ASSERT_TRUE(Row("skus", "s1", &row).ok());
  EXPECT_EQ(row.value("price", json()), json(3.0));
}

TEST_F(ServerStoreTest, WriteRowsIsAllOrNothing) {
  std::vector<Change> applied;
  ASSERT_TRUE(ss_.WriteRows({{{"table", "accounts"}, {"id", "base"}, {"name", "Base"}}}, now_ms_, clock_.get(),
                            &applied)
                  .ok());
  const int64_t head = Head();
  ASSERT_EQ(head, 1);

  // A device deletes a row: central writes to it are refused too.
  std::vector<PushResult> results;
  std::vector<Change> pushed;
  ASSERT_TRUE(Push({Del("accounts", "dead", {H(1), kDevA})}, &results, &pushed).ok());
  ASSERT_EQ(results.at(0).result, ChangeResult::kApplied);
  const int64_t head2 = Head();
  ASSERT_EQ(head2, 2);

  const json good0 = {{"table", "accounts"}, {"id", "w0"}, {"name", "First"}, {"employees", 3}};
  const json good1 = {{"table", "contacts"}, {"id", "w1"}, {"name", "Second"}};
  struct Case {
    const char* what;
    std::vector<json> rows;
    size_t bad_index;
    Code code;
  };
  std::vector<Case> cases = {
      {"wrong type", {good0, good1, {{"table", "accounts"}, {"id", "w2"}, {"employees", "many"}}}, 2,
       Code::kSchemaViolation},
      {"unknown column", {good0, {{"table", "accounts"}, {"id", "w2"}, {"nope", 1}}, good1}, 1, Code::kNotFound},
      {"unknown table", {{{"table", "nope"}, {"id", "w2"}, {"name", "x"}}, good0}, 0, Code::kNotFound},
      {"missing id", {good0, {{"table", "accounts"}, {"name", "x"}}}, 1, Code::kInvalidArgument},
      {"bad id", {good0, good1, {{"table", "accounts"}, {"id", "not an id!"}, {"name", "x"}}}, 2,
       Code::kInvalidArgument},
      {"not an object", {good0, json::array({1, 2})}, 1, Code::kInvalidArgument},
      {"deleted row", {good0, {{"table", "accounts"}, {"id", "dead"}, {"name", "x"}}}, 1, Code::kDeleted},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<Change> out;
    Status st = ss_.WriteRows(c.rows, now_ms_, clock_.get(), &out);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), c.code) << st.ToString();
    const std::string prefix = "row " + std::to_string(c.bad_index) + ":";
    EXPECT_EQ(st.message().rfind(prefix, 0), 0u) << "message should start with '" << prefix << "': " << st.message();
    EXPECT_EQ(Head(), head2);
    json row;
    Status g = Row("accounts", "w0", &row);
    EXPECT_EQ(g.code(), Code::kNotFound) << "row 0 of a failed WriteRows was written: " << row.dump();
    g = Row("contacts", "w1", &row);
    EXPECT_EQ(g.code(), Code::kNotFound) << "row 1 of a failed WriteRows was written: " << row.dump();
  }

  // The store is fine afterwards, and the failed calls used up no seqs.
  ASSERT_TRUE(ss_.WriteRows({good0, good1}, now_ms_, clock_.get(), &applied).ok());
  ASSERT_EQ(applied.size(), 3u);
  EXPECT_EQ(applied.front().seq, head2 + 1);
  EXPECT_EQ(Head(), head2 + 3);
  json row;
  ASSERT_TRUE(Row("accounts", "w0", &row).ok());
  EXPECT_EQ(row, (json{{"id", "w0"}, {"name", "First"}, {"employees", 3}}));
}

// ---- identity ----------------------------------------------------------------------

TEST_F(ServerStoreTest, NodeIsStableAcrossReopen) {
  const NodeId node = ss_.node();
  ASSERT_NE(node, 0u);
  std::string hex;
  bool found = false;
  ASSERT_TRUE(ss_.store().GetMeta("node", &hex, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_EQ(hex, ToHex(node));

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(ss_.node(), node);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(ss_.node(), node);

  // A different file is a different server.
  ServerStore other;
  ASSERT_TRUE(other.Open(dir_ + "/other.db", schema_).ok());
  EXPECT_NE(other.node(), 0u);
  EXPECT_NE(other.node(), node);
  other.Close();
}

}  // namespace
}  // namespace fieldsync::store

namespace fieldsync::store {
namespace {

// ---- compaction -------------------------------------------------------------------

TEST_F(ServerStoreTest, CompactKeepsTheNewestEntryTheClockAndRecognisesRetriedChanges) {
  std::vector<Change> batch;
  for (uint32_t k = 1; k <= 5; ++k) batch.push_back(Set("contacts", "c" + std::to_string(k), "name", "n", {H(k), kDevA}));
  std::vector<PushResult> results;
  std::vector<Change> applied;
  ASSERT_TRUE(Push(batch, &results, &applied).ok());
  Hlc max_before = 0;
  ASSERT_TRUE(ss_.MaxHlc(&max_before).ok());
  int64_t removed = -1;
  ASSERT_TRUE(ss_.Compact(/*horizon=*/100, &removed).ok());
  EXPECT_EQ(removed, 4);  // seq 5, the newest, stays so seqs keep rising
  int64_t through = 0;
  ASSERT_TRUE(ss_.CompactedThrough(&through).ok());
  EXPECT_EQ(through, 4);
  EXPECT_EQ(Head(), 5);
  Reopen();
  Hlc max_after = 0;
  ASSERT_TRUE(ss_.MaxHlc(&max_after).ok());
  EXPECT_EQ(max_after, max_before);
  // The whole batch again (an ack that was lost): nothing applies twice,
  // though four of the five are no longer in the log.
  ASSERT_TRUE(Push(batch, &results, &applied).ok());
  for (const auto& r : results) EXPECT_EQ(r.result, ChangeResult::kDuplicate);
  EXPECT_TRUE(applied.empty());
  // A new change of the same device still applies, after the head.
  ASSERT_TRUE(Push({Set("contacts", "c9", "name", "n", {H(9), kDevA})}, &results, &applied).ok());
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].seq, 6);
  // Compacting again below what is already gone changes nothing.
  ASSERT_TRUE(ss_.Compact(2, &removed).ok());
  EXPECT_EQ(removed, 0);
}

TEST_F(ServerStoreTest, HorizonIsTheSlowestDeviceSeenWithinTheRetention) {
  std::vector<PushResult> results;
  std::vector<Change> applied;
  std::vector<Change> batch;
  for (uint32_t k = 1; k <= 8; ++k) batch.push_back(Set("contacts", "c" + std::to_string(k), "name", "n", {H(k), kDevA}));
  ASSERT_TRUE(Push(batch, &results, &applied).ok());
  int64_t h = -1;
  ASSERT_TRUE(ss_.Horizon(now_ms_, kMinute, &h).ok());
  EXPECT_EQ(h, 8);  // no devices: nothing holds it back
  ASSERT_TRUE(ss_.RegisterDevice(kDevA, 6, now_ms_).ok());
  ASSERT_TRUE(ss_.RegisterDevice(kDevB, 2, now_ms_ - 2 * kMinute).ok());
  ASSERT_TRUE(ss_.Horizon(now_ms_, kMinute, &h).ok());
  EXPECT_EQ(h, 6);  // B was last seen before the retention
  ASSERT_TRUE(ss_.Horizon(now_ms_, 3 * kMinute, &h).ok());
  EXPECT_EQ(h, 2);
  // Recorded progress only ever rises.
  ASSERT_TRUE(ss_.RecordDevices({{kDevB, {1, now_ms_}}, {kDevA, {7, now_ms_}}}).ok());
  ASSERT_TRUE(ss_.Horizon(now_ms_, kMinute, &h).ok());
  EXPECT_EQ(h, 2);
  ASSERT_TRUE(ss_.RegisterDevice(kDevB, 0, now_ms_).ok());  // a second hello does not reset it
  ASSERT_TRUE(ss_.Horizon(now_ms_, kMinute, &h).ok());
  EXPECT_EQ(h, 2);
}

TEST_F(ServerStoreTest, AServerWithHistoryFromBeforeRegistrationWaitsOneRetentionBeforeCompacting) {
  std::vector<PushResult> results;
  std::vector<Change> applied;
  ASSERT_TRUE(Push({Set("contacts", "c1", "name", "n", {H(1), kDevA}), Set("contacts", "c2", "name", "n", {H(2), kDevA})},
                   &results, &applied).ok());
  // As if the file came from a build that did not register devices.
  ASSERT_TRUE(ss_.store().db().Exec("DELETE FROM fs_meta WHERE key='devices_since'").ok());
  Reopen();
  uint64_t now = SystemMillis();
  int64_t h = -1;
  ASSERT_TRUE(ss_.Horizon(now, kMinute, &h).ok());
  EXPECT_EQ(h, 0);  // a device that has not reconnected since may be at 0
  ASSERT_TRUE(ss_.Horizon(now + 2 * kMinute, kMinute, &h).ok());
  EXPECT_EQ(h, 2);  // a retention later, unseen devices count as gone
}

// ---- scoped snapshot pages -----------------------------------------------------

// A rep's snapshot pages hold exactly the live rows and tombstones of their
// scope, each once, with the same fields and values an unscoped read gives,
// however small the pages.
TEST(ServerStoreScoped, ScopedPagesHoldExactlyTheScopesRowsAndTombstones) {
  constexpr const char* kScoped = R"({"name": "scoped", "version": 1, "tables": [
    {"name": "accounts", "scope": {"rule": "assignee", "column": "rep"}, "columns": [
      {"name": "name", "type": "text"}, {"name": "rep", "type": "text"},
      {"name": "notes", "type": "text", "merge": "mv"}]},
    {"name": "contacts", "parent": {"column": "account_id", "table": "accounts"}, "scope": {"rule": "parent"},
     "columns": [{"name": "account_id", "type": "text"}, {"name": "name", "type": "text"}]}
  ]})";
  Schema schema;
  ASSERT_TRUE(Schema::ParseText(kScoped, &schema).ok());
  char tmpl[] = "/tmp/fieldsync_server_scoped_test_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  {
    ServerStore ss;
    ASSERT_TRUE(ss.Open(dir + "/server.db", schema).ok());
    HybridClock clock(ss.node());
    User a{"rep-a", Role::kRep, "team-1", "Hunan", "A", true}, b{"rep-b", Role::kRep, "team-1", "Hunan", "B", true};
    ASSERT_TRUE(ss.PutUser(a).ok());
    ASSERT_TRUE(ss.PutUser(b).ok());
    std::vector<json> rows;
    for (int k = 0; k < 6; ++k)
      rows.push_back({{"table", "accounts"}, {"id", "a" + std::to_string(k)}, {"name", "Store " + std::to_string(k)},
                      {"rep", k % 2 == 0 ? "rep-a" : "rep-b"}, {"notes", "note " + std::to_string(k)}});
    for (int k = 0; k < 24; ++k)
      rows.push_back({{"table", "contacts"}, {"id", "c" + std::to_string(k)}, {"account_id", "a" + std::to_string(k % 6)},
                      {"name", "Contact " + std::to_string(k)}});
    std::vector<Change> applied;
    ASSERT_TRUE(ss.WriteRows(rows, SystemMillis(), &clock, &applied).ok());
    // Deleted rows of both reps: a device must hear of its own deletes.
    std::vector<Change> dels;
    for (const char* id : {"c0", "c6", "c1", "c13"}) {
      Change d;
      d.table = "contacts";
      d.row = id;
      d.op = Op::kDelete;
      d.stamp = {clock.Now(), 0xD1};
      dels.push_back(d);
    }
    std::vector<PushResult> results;
    ASSERT_TRUE(ss.ApplyBatch(dels, SystemMillis(), &clock, &results, &applied).ok());
    ASSERT_EQ(applied.size(), dels.size());

    // Keys of rep-a's that no row or tombstone holds any more: skipped, in
    // more than one candidate batch for the small pages.
    ASSERT_TRUE(ss.store()
                    .db()
                    .Exec("WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 9) "
                          "INSERT INTO fs_rows(tbl, row_id, key) SELECT 'contacts', 'c0x' || n, "
                          "(SELECT key FROM fs_rows WHERE tbl='accounts' AND row_id='a0') FROM k")
                    .ok());
    std::vector<RowState> all;
    bool more = false;
    ASSERT_TRUE(ss.store().ReadState("", "", 1000, &all, &more).ok());
    ASSERT_FALSE(more);
    ASSERT_EQ(all.size(), 30u);
    std::map<std::string, const RowState*> expected;  // "table/id" of rep-a's rows
    for (const auto& r : all) {
      int account = r.table == "accounts" ? std::stoi(r.row.substr(1)) : std::stoi(r.row.substr(1)) % 6;
      if (account % 2 == 0) expected[r.table + "/" + r.row] = &r;
    }
    ASSERT_EQ(expected.size(), 15u);  // 3 accounts, 12 contacts (2 of them deleted)

    Scope scope;
    ASSERT_TRUE(ss.ComputeScope({a, "dev-a"}, &scope).ok());
    for (size_t page_rows : {1, 2, 7, 100}) {
      std::set<std::string> got;
      std::string at, after;
      size_t tombstones = 0, pages = 0;
      for (more = true; more;) {
        std::vector<RowState> page;
        Status st = ss.store().ReadState(at, after, page_rows, &page, &more, scope.KeysJson());
        ASSERT_TRUE(st.ok()) << st.ToString();
        ASSERT_LE(page.size(), page_rows);
        ASSERT_TRUE(!page.empty() || !more);
        ASSERT_LE(++pages, 20u);
        for (const auto& r : page) {
          std::string name = r.table + "/" + r.row;
          EXPECT_TRUE(got.insert(name).second) << name << " twice, pages of " << page_rows;
          auto it = expected.find(name);
          ASSERT_NE(it, expected.end()) << name << " is not rep-a's";
          EXPECT_EQ(r.deleted, it->second->deleted) << name;
          EXPECT_EQ(RowStateToJson(r), RowStateToJson(*it->second)) << name;
          tombstones += r.deleted;
        }
        if (!page.empty()) {
          at = page.back().table;
          after = page.back().row;
        }
      }
      EXPECT_EQ(got.size(), expected.size()) << "pages of " << page_rows;
      EXPECT_EQ(tombstones, 2u) << "pages of " << page_rows;
    }
    // An entry that does not decode fails the page, naming the row.
    ASSERT_TRUE(ss.store().db().Exec("UPDATE fs_row_fields SET fields=x'00' WHERE tbl='contacts' AND row_id='c2'").ok());
    std::vector<RowState> page;
    Status st = ss.store().ReadState("", "", 100, &page, &more, scope.KeysJson());
    EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
    EXPECT_NE(st.message().find("contacts/c2"), std::string::npos) << st.ToString();
    ss.Close();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fieldsync::store
