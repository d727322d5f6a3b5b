// Snapshots and compaction against the real server on a loopback port:
// a new replica loads state instead of history, an interrupted snapshot
// resumes where it stopped, and a device that stayed away past the
// compaction horizon re-bootstraps without losing what it typed offline.
#include <chrono>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace fieldsync {
namespace {

using testing::DumpText;
using testing::TempDir;
using testing::TestServer;

server::ServerOptions ManualCompaction(uint64_t retention_ms) {
  server::ServerOptions o;
  o.compact_interval_ms = 0;  // the test compacts when it wants
  o.device_retention_ms = retention_ms;
  o.snapshot_rows_per_page = 5;
  return o;
}

TEST(Compaction, DeviceBehindTheHorizonRebootstrapsAndKeepsItsOfflineWrites) {
  TempDir dir;
  TestServer server(ManualCompaction(/*retention_ms=*/50));
  Schema schema = testing::FieldSalesSchema();
  std::unique_ptr<Replica> a, b;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), schema, &a).ok());
  ASSERT_TRUE(Replica::Open(dir.File("b.db"), schema, &b).ok());
  ASSERT_TRUE(a->Put("accounts", "acc1", {{"name", "Hypermarket 1"}, {"phone", "021-1"}}).ok());
  ASSERT_TRUE(a->Put("contacts", "gone", {{"name", "to be deleted"}, {"account_id", "acc1"}}).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());
  ASSERT_TRUE(b->Sync(server.sync_options()).ok());
  json row;
  ASSERT_TRUE(b->Get("contacts", "gone", &row).ok());

  // b goes offline for a long time and keeps working.
  ASSERT_TRUE(b->Put("accounts", "acc1", {{"phone", "021-from-b"}}).ok());
  ASSERT_TRUE(b->Put("visits", "v-offline", {{"account_id", "acc1"}, {"summary", "typed in the shop"}}).ok());
  // Meanwhile a edits, deletes, creates, and keeps syncing.
  ASSERT_TRUE(a->Put("accounts", "acc1", {{"city", "Shanghai"}}).ok());
  ASSERT_TRUE(a->Delete("contacts", "gone").ok());
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(a->Put("contacts", "new" + std::to_string(i), {{"name", "n"}}).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(120));  // b is now past the retention
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());              // a was seen just now
  int64_t horizon = 0, removed = 0;
  ASSERT_TRUE(server.hub().Compact(&horizon, &removed).ok());
  EXPECT_GT(removed, 0);
  EXPECT_GT(server.hub().compacted_through(), b->GetSyncStatus().cursor);

  std::set<std::string> removed_rows;
  b->AddObserver([&](const std::vector<ChangeEvent>& events) {
    for (const auto& e : events)
      if (e.deleted) removed_rows.insert(e.table + "/" + e.id);
  });
  SyncReport rep;
  Status st = b->Sync(server.sync_options(), &rep);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(rep.snapshot_rows, 0);  // it re-bootstrapped
  EXPECT_EQ(rep.pushed, 3);         // after pushing what it typed offline
  EXPECT_EQ(b->GetSyncStatus().pending, 0);
  ASSERT_TRUE(b->Get("accounts", "acc1", &row).ok());
  EXPECT_EQ(row["phone"], "021-from-b");  // the newest write to the field, made offline
  EXPECT_EQ(row["city"], "Shanghai");
  ASSERT_TRUE(b->Get("visits", "v-offline", &row).ok());
  EXPECT_EQ(row["summary"], "typed in the shop");
  EXPECT_EQ(b->Get("contacts", "gone", &row).code(), Code::kDeleted);
  EXPECT_TRUE(removed_rows.count("contacts/gone"));  // the observer saw it leave
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());
  EXPECT_EQ(DumpText(*b), server.Dump());
  EXPECT_EQ(DumpText(*a), server.Dump());
}

TEST(Compaction, ADeviceSeenWithinTheRetentionHoldsTheHorizonBack) {
  TempDir dir;
  TestServer server(ManualCompaction(/*retention_ms=*/3600 * 1000));
  std::unique_ptr<Replica> a, b;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), testing::FieldSalesSchema(), &a).ok());
  ASSERT_TRUE(Replica::Open(dir.File("b.db"), testing::FieldSalesSchema(), &b).ok());
  // b has a row of its own, so it reads the log rather than a snapshot.
  ASSERT_TRUE(b->Put("accounts", "b-own", {{"phone", "1"}}).ok());
  ASSERT_TRUE(b->Sync(server.sync_options()).ok());  // seq 1; registered
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(a->Put("contacts", "c" + std::to_string(i), {{"name", "n"}}).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());  // seqs 2..11
  // The server learns how far a device got when it next asks: b said 0,
  // then 1; nothing b has not pulled may go.
  int64_t horizon = -1, removed = -1;
  ASSERT_TRUE(server.hub().Compact(&horizon, &removed).ok());
  EXPECT_LE(horizon, 1);
  EXPECT_EQ(server.hub().compacted_through(), 0);
  SyncReport rep;
  ASSERT_TRUE(b->Sync(server.sync_options(), &rep).ok());
  EXPECT_EQ(rep.pulled, 10);  // from the log
  EXPECT_EQ(rep.snapshot_rows, 0);
  // Once both have told the server they are at the head, everything but the
  // newest entry may go (it keeps the sequence rising).
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());
  ASSERT_TRUE(b->Sync(server.sync_options()).ok());
  ASSERT_TRUE(server.hub().Compact(&horizon, &removed).ok());
  EXPECT_EQ(horizon, 11);
  EXPECT_EQ(removed, 10);
  EXPECT_EQ(server.hub().compacted_through(), 10);
  EXPECT_EQ(server.hub().head(), 11);
  // New writes continue the sequence; b, at the head, pulls them from the log.
  ASSERT_TRUE(a->Put("contacts", "later", {{"name", "n"}}).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());
  EXPECT_EQ(server.hub().head(), 12);
  ASSERT_TRUE(b->Sync(server.sync_options(), &rep).ok());
  EXPECT_EQ(rep.pulled, 1);
  EXPECT_EQ(rep.snapshot_rows, 0);
  EXPECT_EQ(DumpText(*b), server.Dump());
}

TEST(Compaction, ANewReplicaAfterCompactionBootstrapsFromTheSnapshotAndCompactionSurvivesARestart) {
  TempDir dir;
  TestServer server(ManualCompaction(/*retention_ms=*/1));
  std::unique_ptr<Replica> a;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), testing::FieldSalesSchema(), &a).ok());
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(a->Put("store_check_lines", "l" + std::to_string(i), {{"facings", i}, {"stock_status", "short"}}).ok());
  ASSERT_TRUE(a->Delete("store_check_lines", "l3").ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(server.hub().Compact(nullptr, nullptr).ok());
  int64_t through = server.hub().compacted_through();
  EXPECT_EQ(through, server.hub().head() - 1);
  server.Restart();
  EXPECT_EQ(server.hub().compacted_through(), through);
  std::unique_ptr<Replica> fresh;
  ASSERT_TRUE(Replica::Open(dir.File("fresh.db"), testing::FieldSalesSchema(), &fresh).ok());
  SyncReport rep;
  ASSERT_TRUE(fresh->Sync(server.sync_options(), &rep).ok());
  EXPECT_EQ(rep.snapshot_rows, 20);  // 19 rows and one tombstone, in pages of 5
  json row;
  EXPECT_EQ(fresh->Get("store_check_lines", "l3", &row).code(), Code::kDeleted);
  EXPECT_EQ(DumpText(*fresh), server.Dump());
}

// The app is killed in the middle of a snapshot: the pages already loaded
// stay, and the next sync continues after the last of them.
TEST(Compaction, AnInterruptedSnapshotResumesAfterItsLastPage) {
  TempDir dir;
  TestServer server(ManualCompaction(3600 * 1000));
  std::unique_ptr<Replica> a;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), testing::FieldSalesSchema(), &a).ok());
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(a->Put("contacts", "c" + std::to_string(100 + i), {{"name", "n"}}).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());

  int installs = 0;
  bool dead = false;
  ReplicaOptions killed;
  killed.fault_hook = [&](std::string_view sql) -> Status {
    if (sql.find("INSERT INTO \"contacts\"(id") != std::string_view::npos && ++installs == 12) dead = true;
    return dead ? Status::IoError("test: the app was killed") : Status::OK();
  };
  {
    std::unique_ptr<Replica> b;
    ASSERT_TRUE(Replica::Open(dir.File("b.db"), testing::FieldSalesSchema(), &b, killed).ok());
    EXPECT_FALSE(b->Sync(server.sync_options()).ok());
  }
  std::unique_ptr<Replica> b;
  ASSERT_TRUE(Replica::Open(dir.File("b.db"), testing::FieldSalesSchema(), &b).ok());
  std::vector<json> rows;
  ASSERT_TRUE(b->Query("contacts", store::QueryOptions{}, &rows).ok());
  EXPECT_EQ(rows.size(), 10u);  // two whole pages of five; the third rolled back
  SyncReport rep;
  ASSERT_TRUE(b->Sync(server.sync_options(), &rep).ok());
  EXPECT_EQ(rep.snapshot_rows, 20);  // the rest, not all 30 again
  EXPECT_EQ(DumpText(*b), server.Dump());
}

// What the server sent on a live feed is not what the device applied: only
// cursors the device reports itself may move the horizon.
TEST(Compaction, ALiveFeedDoesNotCountAsProgress) {
  TempDir dir;
  TestServer server(ManualCompaction(3600 * 1000));
  std::unique_ptr<Replica> a, b;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), testing::FieldSalesSchema(), &a).ok());
  ASSERT_TRUE(Replica::Open(dir.File("b.db"), testing::FieldSalesSchema(), &b).ok());
  ASSERT_TRUE(b->Put("accounts", "b-own", {{"phone", "1"}}).ok());  // b reads the log
  ASSERT_TRUE(b->StartBackgroundSync(server.sync_options()).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(a->Put("contacts", "c" + std::to_string(i), {{"name", "n"}}).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());  // a reports the head
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (b->GetSyncStatus().cursor < server.hub().head() && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(b->GetSyncStatus().cursor, server.hub().head());  // b has it all, live
  int64_t horizon = -1, removed = -1;
  ASSERT_TRUE(server.hub().Compact(&horizon, &removed).ok());
  EXPECT_LE(horizon, 1);  // b last *said* it was at 0 or 1
  EXPECT_EQ(removed, 0);
  b->StopBackgroundSync();
}

// A client reading a page ahead says how far it has applied: the horizon
// moves only that far, never to the cursor it reads from (protocol.md 6.3).
TEST(Compaction, APullReadingAheadMovesTheHorizonOnlyToWhatItApplied) {
  TempDir dir;
  TestServer server(ManualCompaction(3600 * 1000));
  std::unique_ptr<Replica> a;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), testing::FieldSalesSchema(), &a).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(a->Put("contacts", "c" + std::to_string(i), {{"name", "n"}}).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());  // a reports the head
  const int64_t head = server.hub().head();
  ASSERT_EQ(head, 10);
  testing::RawPeer p(server.url());
  ASSERT_TRUE(p.Hello(0xb0b));
  json m;
  for (const json& bad : {json(-1), json("3"), json(2.5)}) {
    ASSERT_TRUE(p.Send({{"type", "pull"}, {"id", "bad"}, {"cursor", head}, {"applied", bad}}));
    ASSERT_TRUE(p.Receive(&m));
    EXPECT_EQ(m.value("code", ""), "protocol_error") << bad.dump() << ": " << m.dump();
  }
  ASSERT_TRUE(p.Send({{"type", "pull"}, {"id", 1}, {"cursor", head}, {"applied", 3}}));
  ASSERT_TRUE(p.Receive(&m));
  ASSERT_EQ(m.value("type", ""), "changes") << m.dump();
  int64_t horizon = -1, removed = -1;
  ASSERT_TRUE(server.hub().Compact(&horizon, &removed).ok());
  EXPECT_EQ(horizon, 3);
  EXPECT_EQ(removed, 3);
  EXPECT_EQ(server.hub().compacted_through(), 3);
  // Without `applied`, the cursor itself is the device's progress.
  ASSERT_TRUE(p.Send({{"type", "pull"}, {"id", 2}, {"cursor", head}}));
  ASSERT_TRUE(p.Receive(&m));
  ASSERT_EQ(m.value("type", ""), "changes") << m.dump();
  ASSERT_TRUE(server.hub().Compact(&horizon, &removed).ok());
  EXPECT_EQ(horizon, head);
  // The newest entry always stays (it holds the log's position), as in the
  // tests above.
  EXPECT_EQ(server.hub().compacted_through(), head - 1);
  EXPECT_EQ(removed, head - 1 - 3);
}

// A server whose schema has grown (an enum member the device does not know
// yet) still bootstraps an older device: the field it cannot hold is left
// out, the rest of the row arrives, and the snapshot does not stall.
TEST(Compaction, AnOlderSchemaSkipsWhatItCannotHoldAndKeepsLoading) {
  Schema older = testing::FieldSalesSchema();
  json doc = older.document();
  for (auto& t : doc["tables"])
    if (t["name"] == "store_check_lines")
      for (auto& c : t["columns"])
        if (c["name"] == "stock_status") c["values"].push_back("out_of_stock");
  Schema newer;
  ASSERT_TRUE(Schema::Parse(doc, &newer).ok());
  TempDir dir;
  TestServer server(ManualCompaction(3600 * 1000), newer);
  std::vector<json> rows;
  for (int i = 0; i < 12; ++i)
    rows.push_back({{"table", "store_check_lines"}, {"id", "l" + std::to_string(i)}, {"facings", i},
                    {"stock_status", i == 6 ? "out_of_stock" : "short"}});
  std::vector<Change> applied;
  ASSERT_TRUE(server.hub().WriteRows(rows, &applied).ok());
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir.File("old.db"), older, &r).ok());
  SyncReport rep;
  Status st = r->Sync(server.sync_options(), &rep);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(rep.snapshot_rows, 12);
  json row;
  ASSERT_TRUE(r->Get("store_check_lines", "l6", &row).ok());
  EXPECT_EQ(row["facings"], 6);
  EXPECT_FALSE(row.contains("stock_status"));
  ASSERT_TRUE(r->Get("store_check_lines", "l11", &row).ok());
  EXPECT_EQ(row["stock_status"], "short");
}

}  // namespace
}  // namespace fieldsync
