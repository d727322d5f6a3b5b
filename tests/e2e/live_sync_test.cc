// Background sync: a live connection pushes local writes as they happen and
// delivers other devices' changes to observers without polling.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace fieldsync {
namespace {

using testing::DumpText;
using testing::TempDir;
using testing::TestServer;

// Waits (bounded) for a condition; correctness, not speed, is asserted.
template <typename F>
bool Eventually(F f, int ms = 10000) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

TEST(LiveSync, ObserverSeesAnotherDevicesChange) {
  TempDir dir;
  TestServer server;
  Schema schema = testing::FieldSalesSchema();
  std::unique_ptr<Replica> a, b;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), schema, &a).ok());
  ASSERT_TRUE(Replica::Open(dir.File("b.db"), schema, &b).ok());
  std::atomic<int> remote_events{0};
  std::mutex mu;
  std::vector<ChangeEvent> seen;
  a->AddObserver([&](const std::vector<ChangeEvent>& ev) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& e : ev)
      if (e.remote) {
        seen.push_back(e);
        ++remote_events;
      }
  });
  ASSERT_TRUE(a->StartBackgroundSync(server.sync_options()).ok());
  ASSERT_TRUE(Eventually([&] { return a->GetSyncStatus().state == SyncStatus::State::kLive; }));
  ASSERT_TRUE(b->Put("store_checks", "chk1", {{"status", "submitted"}}).ok());
  ASSERT_TRUE(b->Sync(server.sync_options()).ok());
  ASSERT_TRUE(Eventually([&] { return remote_events.load() > 0; }));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(seen[0].table, "store_checks");
    EXPECT_EQ(seen[0].id, "chk1");
  }
  // And a local write on the live replica goes up without an explicit sync.
  ASSERT_TRUE(a->Put("accounts", "acc1", {{"phone", "live"}}).ok());
  ASSERT_TRUE(Eventually([&] { return a->GetSyncStatus().pending == 0; }));
  ASSERT_TRUE(b->Sync(server.sync_options()).ok());
  json row;
  ASSERT_TRUE(b->Get("accounts", "acc1", &row).ok());
  EXPECT_EQ(row["phone"], "live");
  a->StopBackgroundSync();
  EXPECT_EQ(a->GetSyncStatus().state, SyncStatus::State::kStopped);
  EXPECT_EQ(DumpText(*a), server.Dump());
}

TEST(LiveSync, BackgroundSyncReconnectsAfterServerRestart) {
  TempDir dir;
  TestServer server;
  std::unique_ptr<Replica> a;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), testing::FieldSalesSchema(), &a).ok());
  ASSERT_TRUE(a->StartBackgroundSync(server.sync_options()).ok());
  ASSERT_TRUE(Eventually([&] { return a->GetSyncStatus().state == SyncStatus::State::kLive; }));
  server.Stop();
  ASSERT_TRUE(Eventually([&] { return a->GetSyncStatus().state == SyncStatus::State::kBackoff; }));
  EXPECT_FALSE(a->GetSyncStatus().last_error.empty());
  ASSERT_TRUE(a->Put("accounts", "offline", {{"phone", "9"}}).ok());
  server.Restart();
  a->SetNetworkAvailable(false);
  a->SetNetworkAvailable(true);  // the OS says the network is back: retry at once
  ASSERT_TRUE(Eventually([&] { return a->GetSyncStatus().pending == 0; }, 20000));
  EXPECT_NE(server.Dump().find("offline"), std::string::npos);
  a->StopBackgroundSync();
}

TEST(LiveSync, SecondSyncWhileOneRunsIsBusy) {
  TempDir dir;
  TestServer server;
  std::unique_ptr<Replica> a;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), testing::FieldSalesSchema(), &a).ok());
  ASSERT_TRUE(a->StartBackgroundSync(server.sync_options()).ok());
  EXPECT_EQ(a->StartBackgroundSync(server.sync_options()).code(), Code::kBusy);
  ASSERT_TRUE(Eventually([&] { return a->GetSyncStatus().state == SyncStatus::State::kLive; }));
  EXPECT_EQ(a->Sync(server.sync_options()).code(), Code::kBusy);
  a->StopBackgroundSync();
  EXPECT_TRUE(a->Sync(server.sync_options()).ok());
}

}  // namespace
}  // namespace fieldsync
