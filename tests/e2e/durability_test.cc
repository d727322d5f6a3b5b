// Crash and restart: a write the SDK has committed survives the app being
// killed; a write the server has acknowledged survives the server stopping.
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace fieldsync {
namespace {

using testing::DumpText;
using testing::TempDir;
using testing::TestServer;

TEST(Durability, CommittedLocalWritesSurviveReopenAndSyncLater) {
  TempDir dir;
  TestServer server;
  Schema schema = testing::FieldSalesSchema();
  std::string path = dir.File("tablet.db");
  {
    std::unique_ptr<Replica> r;
    ASSERT_TRUE(Replica::Open(path, schema, &r).ok());
    ASSERT_TRUE(r->Put("visits", "v1", {{"purpose", "shelf audit"}, {"status", "checked_in"}}).ok());
    ASSERT_TRUE(r->Increment("goods_loans", "g1", "returned_qty", 4).ok());
    // Destroyed without a sync: the app was killed.
  }
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(path, schema, &r).ok());
  EXPECT_EQ(r->GetSyncStatus().pending, 3);
  json v;
  ASSERT_TRUE(r->Get("visits", "v1", &v).ok());
  EXPECT_EQ(v["purpose"], "shelf audit");
  ASSERT_TRUE(r->Sync(server.sync_options()).ok());
  EXPECT_EQ(r->GetSyncStatus().pending, 0);
  EXPECT_EQ(DumpText(*r), server.Dump());
}

TEST(Durability, NodeIdAndClockSurviveReopen) {
  TempDir dir;
  Schema schema = testing::FieldSalesSchema();
  NodeId node;
  {
    std::unique_ptr<Replica> r;
    ASSERT_TRUE(Replica::Open(dir.File("t.db"), schema, &r).ok());
    node = r->node();
    ASSERT_TRUE(r->Put("accounts", "a", {{"phone", "1"}}).ok());
  }
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir.File("t.db"), schema, &r).ok());
  EXPECT_EQ(r->node(), node);
  // A second write after reopen must order after the first (same node).
  ASSERT_TRUE(r->Put("accounts", "a", {{"phone", "2"}}).ok());
  json row;
  ASSERT_TRUE(r->Get("accounts", "a", &row).ok());
  EXPECT_EQ(row["phone"], "2");
}

TEST(Durability, AcknowledgedWritesSurviveServerRestart) {
  TempDir dir;
  TestServer server;
  Schema schema = testing::FieldSalesSchema();
  std::unique_ptr<Replica> a, b;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), schema, &a).ok());
  ASSERT_TRUE(Replica::Open(dir.File("b.db"), schema, &b).ok());
  WriteBatch batch;
  for (int i = 0; i < 50; ++i) batch.Put("contacts", "c" + std::to_string(i), {{"name", "n" + std::to_string(i)}});
  ASSERT_TRUE(a->Apply(batch).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());
  std::string before = server.Dump();
  server.Restart();
  EXPECT_EQ(server.Dump(), before);
  // Pushing the same changes again after the restart applies nothing twice.
  SyncReport rep;
  ASSERT_TRUE(b->Sync(server.sync_options(), &rep).ok());
  EXPECT_EQ(rep.snapshot_rows, 50);
  EXPECT_EQ(DumpText(*b), before);
}

TEST(Durability, FailedSyncKeepsTheOutbox) {
  TempDir dir;
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir.File("t.db"), testing::FieldSalesSchema(), &r).ok());
  ASSERT_TRUE(r->Put("accounts", "a", {{"phone", "1"}}).ok());
  SyncOptions o;
  o.url = "ws://127.0.0.1:1/";  // nothing listens there
  o.connect_timeout_ms = 1000;
  Status st = r->Sync(o);
  EXPECT_EQ(st.code(), Code::kIoError);
  SyncStatus s = r->GetSyncStatus();
  EXPECT_EQ(s.pending, 1);
  EXPECT_FALSE(s.last_error.empty());
  EXPECT_EQ(s.last_sync_ms, 0u);
}

TEST(Durability, RefusedLocalWriteChangesNothing) {
  TempDir dir;
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir.File("t.db"), testing::FieldSalesSchema(), &r).ok());
  WriteBatch b;
  b.Put("accounts", "a1", {{"phone", "1"}});
  b.Put("accounts", "a2", {{"employees", "lots"}});  // wrong type: the whole batch fails
  Status st = r->Apply(b);
  EXPECT_EQ(st.code(), Code::kSchemaViolation);
  json row;
  EXPECT_EQ(r->Get("accounts", "a1", &row).code(), Code::kNotFound);
  EXPECT_EQ(r->GetSyncStatus().pending, 0);
  EXPECT_EQ(r->Put("skus", "s1", {{"name", "x"}}).code(), Code::kPermissionDenied);
  EXPECT_EQ(r->Put("nope", "s1", {{"name", "x"}}).code(), Code::kNotFound);
  EXPECT_EQ(r->Put("accounts", "a1", {{"nope", 1}}).code(), Code::kNotFound);
  EXPECT_EQ(r->Put("accounts", "bad id!", {{"phone", "1"}}).code(), Code::kInvalidArgument);
  EXPECT_EQ(DumpText(*r), "");
}

}  // namespace
}  // namespace fieldsync

namespace fieldsync {
namespace {

// A tablet whose date is an hour ahead: its offline edits are refused for
// clock skew, re-stamped by the SDK, and everyone still converges.
TEST(ClockSkew, FutureDatedDeviceIsRestampedAndConverges) {
  testing::TempDir dir;
  testing::TestServer server;
  Schema schema = testing::FieldSalesSchema();
  ReplicaOptions ahead;
  ahead.clock = [] { return SystemMillis() + 3600 * 1000; };
  std::unique_ptr<Replica> a, b;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), schema, &a, ahead).ok());
  ASSERT_TRUE(Replica::Open(dir.File("b.db"), schema, &b).ok());
  ASSERT_TRUE(a->Put("accounts", "acc1", {{"phone", "from-a"}, {"notes", "a's note"}}).ok());
  ASSERT_TRUE(a->Put("contacts", "c1", {{"buying_roles", {"user"}}}).ok());
  SyncReport rep;
  ASSERT_TRUE(a->Sync(server.sync_options(), &rep).ok());
  EXPECT_EQ(rep.restamped, 3);
  EXPECT_EQ(rep.rejected, 0);
  EXPECT_EQ(a->GetSyncStatus().pending, 0);
  // The server's clock was not dragged an hour ahead: b's later write wins.
  ASSERT_TRUE(b->Sync(server.sync_options()).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  ASSERT_TRUE(b->Put("accounts", "acc1", {{"phone", "from-b"}, {"notes", "b's note"}}).ok());
  ASSERT_TRUE(b->Sync(server.sync_options()).ok());
  ASSERT_TRUE(a->Sync(server.sync_options()).ok());
  json row;
  ASSERT_TRUE(a->Get("accounts", "acc1", &row).ok());
  EXPECT_EQ(row["phone"], "from-b");
  EXPECT_EQ(row["notes"], "b's note");
  EXPECT_EQ(testing::DumpText(*a), server.Dump());
  EXPECT_EQ(testing::DumpText(*b), server.Dump());
}

}  // namespace
}  // namespace fieldsync
