// End to end: the real server on loopback, real replicas in separate SQLite
// files, conflicting offline edits, syncs in every order. Every replica and
// the server must end byte-for-byte equal, each field holding the write the
// merge rules say should win.
#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace fieldsync {
namespace {

using testing::DumpText;
using testing::TempDir;
using testing::TestServer;

void Pause() { std::this_thread::sleep_for(std::chrono::milliseconds(3)); }

struct Fleet {
  TempDir dir;
  TestServer server;
  std::vector<std::unique_ptr<Replica>> reps;

  explicit Fleet(int n, server::ServerOptions so = {}) : server(so) {
    Schema schema = testing::FieldSalesSchema();
    reps.resize(n);
    for (int i = 0; i < n; ++i) {
      Status st = Replica::Open(dir.File("rep" + std::to_string(i) + ".db"), schema, &reps[i]);
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
  }
  void Sync(int i) {
    Status st = reps[i]->Sync(server.sync_options());
    ASSERT_TRUE(st.ok()) << "rep " << i << ": " << st.ToString();
  }
  void SyncAll() {
    for (size_t i = 0; i < reps.size(); ++i) Sync(static_cast<int>(i));
  }
  void ExpectConverged() {
    std::string s = server.Dump();
    EXPECT_FALSE(s.empty());
    for (size_t i = 0; i < reps.size(); ++i) EXPECT_EQ(DumpText(*reps[i]), s) << "replica " << i << " differs";
  }
};

// Sync orders to try: every permutation of three replicas.
class ConvergenceTest : public ::testing::TestWithParam<std::vector<int>> {};

TEST_P(ConvergenceTest, ConflictingOfflineEditsConvergeByTheRules) {
  Fleet f(3);
  Replica& a = *f.reps[0];
  Replica& b = *f.reps[1];
  Replica& c = *f.reps[2];
  ASSERT_TRUE(a.Put("accounts", "acc1", {{"name", "Metro Changsha"}, {"phone", "0731-1"}, {"city", "Changsha"}}).ok());
  ASSERT_TRUE(a.Put("visits", "v1", {{"account_id", "acc1"}, {"status", "planned"}}).ok());
  ASSERT_TRUE(a.Put("goods_loans", "g1", {{"account_id", "acc1"}, {"quantity", 10}}).ok());
  f.SyncAll();
  f.ExpectConverged();

  // Offline: same field (phone), different fields (city vs postcode),
  // delete against update (v1), counter increments, concurrent free text,
  // forward-only status.
  ASSERT_TRUE(a.Put("accounts", "acc1", {{"phone", "0731-A"}, {"city", "Zhuzhou"}}).ok());
  Pause();
  ASSERT_TRUE(b.Put("accounts", "acc1", {{"phone", "0731-B"}, {"postcode", "410000"}}).ok());
  ASSERT_TRUE(a.Put("visits", "v1", {{"summary", "restocked shelf"}, {"status", "completed"}}).ok());
  ASSERT_TRUE(c.Delete("visits", "v1").ok());
  ASSERT_TRUE(a.Increment("goods_loans", "g1", "returned_qty", 2).ok());
  ASSERT_TRUE(b.Increment("goods_loans", "g1", "returned_qty", 3).ok());
  ASSERT_TRUE(c.Increment("goods_loans", "g1", "returned_qty", 4).ok());
  ASSERT_TRUE(a.Put("accounts", "acc1", {{"notes", "note from A"}}).ok());
  ASSERT_TRUE(c.Put("accounts", "acc1", {{"notes", "note from C"}}).ok());
  ASSERT_TRUE(b.Put("goods_loans", "g1", {{"status", "closed"}}).ok());
  ASSERT_TRUE(c.Put("goods_loans", "g1", {{"status", "partly_returned"}}).ok());

  for (int i : GetParam()) f.Sync(i);
  for (int i : GetParam()) f.Sync(i);  // second round: everyone sees everything
  f.ExpectConverged();

  for (auto& r : f.reps) {
    json acc, loan, visit;
    ASSERT_TRUE(r->Get("accounts", "acc1", &acc).ok());
    EXPECT_EQ(acc["phone"], "0731-B");      // later write wins
    EXPECT_EQ(acc["city"], "Zhuzhou");      // other fields survive
    EXPECT_EQ(acc["postcode"], "410000");
    std::vector<std::string> notes = acc["_conflicts"]["notes"];  // ordered by stamp
    std::sort(notes.begin(), notes.end());
    EXPECT_EQ(notes, (std::vector<std::string>{"note from A", "note from C"}));
    ASSERT_TRUE(r->Get("goods_loans", "g1", &loan).ok());
    EXPECT_EQ(loan["returned_qty"], 9);     // 2 + 3 + 4
    EXPECT_EQ(loan["status"], "closed");    // furthest state wins
    EXPECT_EQ(r->Get("visits", "v1", &visit).code(), Code::kDeleted);
  }
  // Nothing silently lost: A's phone and A's edits to the deleted visit are
  // conflict records on A (where they were overwritten or pulled).
  std::vector<Conflict> cs;
  ASSERT_TRUE(a.Conflicts(false, &cs).ok());
  auto has = [&](const std::string& kind, const std::string& col, const json& v) {
    return std::any_of(cs.begin(), cs.end(), [&](const Conflict& x) {
      return x.kind == kind && x.column == col && x.lost_value == v;
    });
  };
  EXPECT_TRUE(has("lww", "phone", "0731-A"));
  EXPECT_TRUE(has("deleted", "summary", "restocked shelf"));
  EXPECT_TRUE(has("deleted", "status", "completed"));
}

INSTANTIATE_TEST_SUITE_P(AllOrders, ConvergenceTest,
                         ::testing::Values(std::vector<int>{0, 1, 2}, std::vector<int>{0, 2, 1},
                                           std::vector<int>{1, 0, 2}, std::vector<int>{1, 2, 0},
                                           std::vector<int>{2, 0, 1}, std::vector<int>{2, 1, 0}));

TEST(Convergence, RestoreBringsBackALostWrite) {
  Fleet f(2);
  Replica& a = *f.reps[0];
  Replica& b = *f.reps[1];
  ASSERT_TRUE(a.Put("accounts", "acc1", {{"phone", "1"}}).ok());
  f.SyncAll();
  ASSERT_TRUE(a.Put("accounts", "acc1", {{"phone", "from-a"}}).ok());
  Pause();
  ASSERT_TRUE(b.Put("accounts", "acc1", {{"phone", "from-b"}}).ok());
  f.Sync(1);
  f.Sync(0);
  std::vector<Conflict> cs;
  ASSERT_TRUE(a.Conflicts(false, &cs).ok());
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].lost_value, "from-a");
  EXPECT_EQ(cs[0].lost_node, ToHex(a.node()));
  ASSERT_TRUE(a.RestoreConflict(cs[0].id).ok());
  f.Sync(0);
  f.Sync(1);
  json row;
  ASSERT_TRUE(b.Get("accounts", "acc1", &row).ok());
  EXPECT_EQ(row["phone"], "from-a");
  ASSERT_TRUE(a.Conflicts(false, &cs).ok());
  EXPECT_TRUE(cs.empty());
  f.ExpectConverged();
}

TEST(Convergence, DeltaSyncSendsOnlyWhatChanged) {
  Fleet f(2);
  WriteBatch batch;
  for (int i = 0; i < 200; ++i)
    batch.Put("store_check_lines", "l" + std::to_string(i), {{"facings", i}, {"stock_status", "normal"}});
  ASSERT_TRUE(f.reps[0]->Apply(batch).ok());
  f.SyncAll();
  // One field edit later, the next exchange carries one change each way.
  ASSERT_TRUE(f.reps[0]->Put("store_check_lines", "l7", {{"facings", 99}}).ok());
  SyncReport up, down;
  ASSERT_TRUE(f.reps[0]->Sync(f.server.sync_options(), &up).ok());
  ASSERT_TRUE(f.reps[1]->Sync(f.server.sync_options(), &down).ok());
  EXPECT_EQ(up.pushed, 1);
  EXPECT_EQ(up.pulled, 0);
  EXPECT_EQ(down.pulled, 1);
  EXPECT_LT(down.bytes_received, 2000);
  f.ExpectConverged();
}

TEST(Convergence, ManyBatchesBothWays) {
  // More changes than one push batch and one pull page hold.
  server::ServerOptions so;
  so.limits.max_changes_per_pull = 500;
  Fleet f(2, so);
  SyncOptions o = f.server.sync_options();
  o.push_batch = 64;
  WriteBatch batch;
  for (int i = 0; i < 1500; ++i)
    batch.Put("store_check_lines", "x" + std::to_string(i), {{"facings", i % 9}, {"on_shelf", i % 2 == 0}});
  ASSERT_TRUE(f.reps[0]->Apply(batch).ok());
  SyncReport rep;
  ASSERT_TRUE(f.reps[0]->Sync(o, &rep).ok());
  EXPECT_EQ(rep.pushed, 3000);
  ASSERT_TRUE(f.reps[1]->Sync(o, &rep).ok());
  EXPECT_EQ(rep.snapshot_rows, 1500);  // a new, empty replica loads state, not history
  EXPECT_EQ(rep.pulled, 0);
  EXPECT_EQ(f.reps[0]->GetSyncStatus().pending, 0);
  f.ExpectConverged();
}

}  // namespace
}  // namespace fieldsync

namespace fieldsync {
namespace {

TEST(Convergence, RestoringADeletedRowRecreatesItsUnseenEditsUnderANewId) {
  Fleet f(2);
  Replica& a = *f.reps[0];
  Replica& b = *f.reps[1];
  ASSERT_TRUE(a.Put("visits", "v1", {{"account_id", "acc1"}, {"purpose", "audit"}}).ok());
  f.SyncAll();
  ASSERT_TRUE(a.Put("visits", "v1", {{"summary", "found 3 empty facings"}, {"next_steps", "reorder"}}).ok());
  ASSERT_TRUE(b.Delete("visits", "v1").ok());
  f.Sync(1);
  f.Sync(0);
  std::vector<Conflict> cs;
  ASSERT_TRUE(a.Conflicts(false, &cs).ok());
  ASSERT_EQ(cs.size(), 2u);
  std::string fresh;
  ASSERT_TRUE(a.RestoreConflict(cs[0].id, &fresh).ok());
  ASSERT_FALSE(fresh.empty());
  json row;
  ASSERT_TRUE(a.Get("visits", fresh, &row).ok());
  EXPECT_EQ(row["summary"], "found 3 empty facings");
  EXPECT_EQ(row["next_steps"], "reorder");
  ASSERT_TRUE(a.Conflicts(false, &cs).ok());
  EXPECT_TRUE(cs.empty());  // both records of the row are resolved together
  EXPECT_EQ(a.Get("visits", "v1", &row).code(), Code::kDeleted);
  f.SyncAll();
  f.ExpectConverged();
}

}  // namespace
}  // namespace fieldsync
