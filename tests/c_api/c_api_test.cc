// The C API's contract, through the shared library: handles, errors as
// out-parameters, ownership, observers, sync with the real server.
#include "fieldsync/fieldsync.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace {

using fieldsync::testing::TempDir;
using fieldsync::testing::TestServer;
using nlohmann::json;

constexpr size_t kNul = static_cast<size_t>(-1);

std::string SchemaText() {
  std::ifstream in(std::getenv("FIELDSYNC_SCHEMA"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Handle {
  fs_replica* r = nullptr;
  Handle(const std::string& path) {
    std::string schema = SchemaText();
    fs_error err{};
    r = fs_replica_open(path.c_str(), schema.data(), schema.size(), &err);
    EXPECT_NE(r, nullptr) << err.message;
  }
  ~Handle() { fs_replica_free(r); }
};

std::string Take(char* p) {
  std::string s = p ? p : "";
  fs_free(p);
  return s;
}

TEST(CApi, VersionAndIds) {
  EXPECT_STREQ(fs_version(), "0.1.0");
  EXPECT_EQ(fs_protocol_version(), 1);
  std::string a = Take(fs_new_id()), b = Take(fs_new_id());
  EXPECT_EQ(a.size(), 36u);
  EXPECT_NE(a, b);
}

TEST(CApi, PutGetQueryDelete) {
  TempDir dir;
  Handle h(dir.File("r.db"));
  fs_error err{};
  ASSERT_TRUE(fs_put(h.r, "accounts", "a1", R"({"name":"Metro","phone":"1"})", kNul, &err)) << err.message;
  ASSERT_TRUE(fs_put(h.r, "accounts", "a2", R"({"name":"Walmart","phone":"2"})", kNul, &err));
  size_t len = 0;
  json row = json::parse(Take(fs_get(h.r, "accounts", "a1", &len, &err)));
  EXPECT_EQ(row["name"], "Metro");
  fs_result* res = fs_query(h.r, "accounts", R"({"where":{"phone":"2"}})", kNul, &err);
  ASSERT_NE(res, nullptr) << err.message;
  ASSERT_EQ(fs_result_count(res), 1u);
  EXPECT_EQ(json::parse(fs_result_row(res, 0, &len))["id"], "a2");
  EXPECT_EQ(fs_result_row(res, 1, &len), nullptr);
  fs_result_free(res);
  ASSERT_TRUE(fs_delete(h.r, "accounts", "a1", &err));
  EXPECT_EQ(fs_get(h.r, "accounts", "a1", nullptr, &err), nullptr);
  EXPECT_EQ(err.code, FS_ERR_DELETED);
  ASSERT_TRUE(fs_increment(h.r, "goods_loans", "g1", "returned_qty", 3, &err));
  EXPECT_EQ(json::parse(Take(fs_get(h.r, "goods_loans", "g1", nullptr, &err)))["returned_qty"], 3);
}

TEST(CApi, EveryErrorPathReportsACodeAndChangesNothing) {
  TempDir dir;
  Handle h(dir.File("r.db"));
  fs_error err{};
  std::string schema = SchemaText();
  EXPECT_EQ(fs_replica_open(nullptr, schema.data(), schema.size(), &err), nullptr);
  EXPECT_EQ(err.code, FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(fs_replica_open(dir.File("x.db").c_str(), "{not json", kNul, &err), nullptr);
  EXPECT_EQ(err.code, FS_ERR_SCHEMA_VIOLATION);
  EXPECT_FALSE(fs_put(nullptr, "accounts", "a", "{}", kNul, &err));
  EXPECT_EQ(err.code, FS_ERR_INVALID_ARGUMENT);
  EXPECT_FALSE(fs_put(h.r, "accounts", "a", "{oops", kNul, &err));
  EXPECT_EQ(err.code, FS_ERR_INVALID_ARGUMENT);
  EXPECT_FALSE(fs_put(h.r, "accounts", "a", "[1]", kNul, &err));
  EXPECT_EQ(err.code, FS_ERR_INVALID_ARGUMENT);
  EXPECT_FALSE(fs_put(h.r, "warehouses", "a", "{}", kNul, &err));
  EXPECT_EQ(err.code, FS_ERR_NOT_FOUND);
  EXPECT_FALSE(fs_put(h.r, "accounts", "a", R"({"employees":"many"})", kNul, &err));
  EXPECT_EQ(err.code, FS_ERR_SCHEMA_VIOLATION);
  EXPECT_NE(std::string(err.message).find("accounts.employees"), std::string::npos);
  EXPECT_FALSE(fs_put(h.r, "skus", "s", R"({"name":"x"})", kNul, &err));
  EXPECT_EQ(err.code, FS_ERR_PERMISSION_DENIED);
  EXPECT_FALSE(fs_put(h.r, nullptr, "a", "{}", kNul, &err));
  EXPECT_FALSE(fs_put(h.r, "accounts", nullptr, "{}", kNul, &err));
  EXPECT_FALSE(fs_put(h.r, "accounts", "a", nullptr, 0, &err));
  EXPECT_FALSE(fs_increment(h.r, "accounts", "a", "phone", 1, &err));
  EXPECT_EQ(err.code, FS_ERR_SCHEMA_VIOLATION);
  EXPECT_EQ(fs_get(h.r, "accounts", "missing", nullptr, &err), nullptr);
  EXPECT_EQ(err.code, FS_ERR_NOT_FOUND);
  EXPECT_EQ(fs_query(h.r, "accounts", R"({"where":{"colour":"red"}})", kNul, &err), nullptr);
  EXPECT_EQ(err.code, FS_ERR_NOT_FOUND);
  EXPECT_EQ(fs_query(h.r, "accounts", R"({"limit":"ten"})", kNul, &err), nullptr);
  EXPECT_EQ(err.code, FS_ERR_INVALID_ARGUMENT);
  EXPECT_FALSE(fs_conflict_restore(h.r, 99, nullptr, &err));
  EXPECT_EQ(err.code, FS_ERR_NOT_FOUND);
  EXPECT_FALSE(fs_conflict_dismiss(h.r, 99, &err));
  EXPECT_EQ(err.code, FS_ERR_NOT_FOUND);
  EXPECT_EQ(fs_observer_add(h.r, nullptr, nullptr, &err), 0u);
  EXPECT_FALSE(fs_sync_once(h.r, "http://nope/", nullptr, &err));
  EXPECT_EQ(err.code, FS_ERR_INVALID_ARGUMENT);
  EXPECT_FALSE(fs_sync_start(h.r, nullptr, &err));
  EXPECT_FALSE(fs_txn_put(nullptr, "accounts", "a", "{}", kNul, &err));
  EXPECT_FALSE(fs_txn_commit(nullptr, &err));
  // A NULL err is allowed everywhere.
  EXPECT_FALSE(fs_put(h.r, "warehouses", "a", "{}", kNul, nullptr));
  // Nothing of the above was written.
  fs_result* res = fs_query(h.r, "accounts", nullptr, 0, &err);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(fs_result_count(res), 0u);
  fs_result_free(res);
  EXPECT_EQ(json::parse(Take(fs_sync_status(h.r, &err)))["pending"], 0);
}

TEST(CApi, ClosedHandleFailsCleanly) {
  TempDir dir;
  Handle h(dir.File("r.db"));
  fs_error err{};
  ASSERT_TRUE(fs_replica_close(h.r, &err));
  ASSERT_TRUE(fs_replica_close(h.r, &err));  // twice is harmless
  EXPECT_FALSE(fs_put(h.r, "accounts", "a", "{}", kNul, &err));
  EXPECT_EQ(err.code, FS_ERR_CLOSED);
  EXPECT_EQ(fs_get(h.r, "accounts", "a", nullptr, &err), nullptr);
  EXPECT_EQ(err.code, FS_ERR_CLOSED);
  EXPECT_EQ(fs_sync_status(h.r, &err), nullptr);
  EXPECT_EQ(err.code, FS_ERR_CLOSED);
  EXPECT_EQ(fs_replica_node(h.r), nullptr);
  fs_sync_stop(h.r);       // no-ops on a closed handle
  fs_app_background(h.r);
  fs_network_changed(h.r, true);
}

TEST(CApi, TransactionsAreAllOrNothing) {
  TempDir dir;
  Handle h(dir.File("r.db"));
  fs_error err{};
  fs_txn* t = fs_txn_begin(h.r, &err);
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(fs_txn_put(t, "visits", "v1", R"({"purpose":"audit"})", kNul, &err));
  ASSERT_TRUE(fs_txn_add_member(t, "contacts", "c1", "buying_roles", "decision_maker", &err));
  ASSERT_TRUE(fs_txn_put(t, "visits", "v2", R"({"status":"teleported"})", kNul, &err));  // fails at commit
  EXPECT_FALSE(fs_txn_commit(t, &err));
  EXPECT_EQ(err.code, FS_ERR_SCHEMA_VIOLATION);
  EXPECT_EQ(fs_get(h.r, "visits", "v1", nullptr, &err), nullptr);
  t = fs_txn_begin(h.r, &err);
  ASSERT_TRUE(fs_txn_put(t, "visits", "v1", R"({"purpose":"audit"})", kNul, &err));
  ASSERT_TRUE(fs_txn_add_member(t, "contacts", "c1", "buying_roles", "decision_maker", &err));
  ASSERT_TRUE(fs_txn_increment(t, "goods_loans", "g1", "returned_qty", 2, &err));
  ASSERT_TRUE(fs_txn_commit(t, &err)) << err.message;
  EXPECT_EQ(json::parse(Take(fs_get(h.r, "contacts", "c1", nullptr, &err)))["buying_roles"],
            json::array({"decision_maker"}));
  t = fs_txn_begin(h.r, &err);
  ASSERT_TRUE(fs_txn_remove_member(t, "contacts", "c1", "buying_roles", "decision_maker", &err));
  ASSERT_TRUE(fs_txn_delete(t, "visits", "v1", &err));
  fs_txn_abort(t);  // nothing written
  EXPECT_FALSE(Take(fs_get(h.r, "visits", "v1", nullptr, &err)).empty());
}

struct Seen {
  std::mutex mu;
  std::vector<json> events;
};

void OnChange(void* ctx, const char* events, size_t len) {
  auto* seen = static_cast<Seen*>(ctx);
  std::lock_guard<std::mutex> lock(seen->mu);
  for (auto& e : json::parse(std::string(events, len))) seen->events.push_back(e);
}

TEST(CApi, SyncAndObserveAChangeMadeElsewhere) {
  TempDir dir;
  TestServer server;
  Handle a(dir.File("a.db")), b(dir.File("b.db"));
  fs_error err{};
  Seen seen;
  uint64_t token = fs_observer_add(b.r, OnChange, &seen, &err);
  ASSERT_NE(token, 0u);
  std::string url = server.url();
  ASSERT_TRUE(fs_sync_start(b.r, url.c_str(), &err)) << err.message;
  ASSERT_TRUE(fs_put(a.r, "store_checks", "chk1", R"({"status":"submitted"})", kNul, &err));
  fs_sync_report rep{};
  ASSERT_TRUE(fs_sync_once(a.r, url.c_str(), &rep, &err)) << err.message;
  EXPECT_EQ(rep.pushed, 1);
  bool got = false;
  for (int i = 0; i < 500 && !got; ++i) {
    {
      std::lock_guard<std::mutex> lock(seen.mu);
      for (const auto& e : seen.events) got |= e["remote"] == true && e["id"] == "chk1";
    }
    if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(got);
  EXPECT_EQ(json::parse(Take(fs_get(b.r, "store_checks", "chk1", nullptr, &err)))["status"], "submitted");
  // Background and foreground: paused, then live again.
  fs_app_background(b.r);
  bool paused = false;
  for (int i = 0; i < 500 && !paused; ++i) {
    paused = json::parse(Take(fs_sync_status(b.r, &err)))["state"] == "paused";
    if (!paused) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(paused);
  fs_app_foreground(b.r);
  bool live = false;
  for (int i = 0; i < 500 && !live; ++i) {
    live = json::parse(Take(fs_sync_status(b.r, &err)))["state"] == "live";
    if (!live) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(live);
  fs_observer_remove(b.r, token);
  fs_sync_stop(b.r);
  EXPECT_EQ(json::parse(Take(fs_sync_status(b.r, &err)))["state"], "stopped");
  EXPECT_EQ(Take(fs_conflicts(b.r, false, &err)), "[]");
  EXPECT_EQ(Take(fs_rejections(b.r, &err)), "[]");
  EXPECT_EQ(std::string(fs_replica_node(a.r)).size(), 16u);
}

TEST(CApi, ConflictsCanBeListedAndRestored) {
  TempDir dir;
  TestServer server;
  Handle a(dir.File("a.db")), b(dir.File("b.db"));
  fs_error err{};
  std::string url = server.url();
  ASSERT_TRUE(fs_put(a.r, "accounts", "x", R"({"phone":"a"})", kNul, &err));
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  ASSERT_TRUE(fs_put(b.r, "accounts", "x", R"({"phone":"b"})", kNul, &err));
  ASSERT_TRUE(fs_sync_once(b.r, url.c_str(), nullptr, &err));
  ASSERT_TRUE(fs_sync_once(a.r, url.c_str(), nullptr, &err));
  json cs = json::parse(Take(fs_conflicts(a.r, false, &err)));
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0]["lost_value"], "a");
  char* fresh = nullptr;
  ASSERT_TRUE(fs_conflict_restore(a.r, cs[0]["id"].get<int64_t>(), &fresh, &err)) << err.message;
  EXPECT_EQ(fresh, nullptr);  // an lww restore writes the same row
  EXPECT_EQ(json::parse(Take(fs_get(a.r, "accounts", "x", nullptr, &err)))["phone"], "a");
  EXPECT_EQ(Take(fs_conflicts(a.r, false, &err)), "[]");
}

TEST(CApi, TwoThreadsOnOneReplica) {
  // The documented rule: calls on one replica may come from any thread; the
  // library serializes them. Both threads' writes must all land.
  TempDir dir;
  Handle h(dir.File("r.db"));
  auto writer = [&](int who) {
    fs_error err{};
    for (int i = 0; i < 100; ++i) {
      std::string id = "t" + std::to_string(who) + "-" + std::to_string(i);
      EXPECT_TRUE(fs_put(h.r, "contacts", id.c_str(), R"({"name":"n"})", kNul, &err)) << err.message;
      EXPECT_TRUE(fs_increment(h.r, "goods_loans", "g", "returned_qty", 1, &err));
    }
  };
  std::thread t1(writer, 1), t2(writer, 2);
  t1.join();
  t2.join();
  fs_error err{};
  fs_result* res = fs_query(h.r, "contacts", nullptr, 0, &err);
  EXPECT_EQ(fs_result_count(res), 200u);
  fs_result_free(res);
  EXPECT_EQ(json::parse(Take(fs_get(h.r, "goods_loans", "g", nullptr, &err)))["returned_qty"], 200);
}

}  // namespace

namespace {

TEST(CApi, ARefusedTransactionOperationFailsTheCommit) {
  TempDir dir;
  Handle h(dir.File("r.db"));
  fs_error err{};
  fs_txn* t = fs_txn_begin(h.r, &err);
  ASSERT_TRUE(fs_txn_put(t, "visits", "v1", R"({"purpose":"audit"})", kNul, &err));
  EXPECT_FALSE(fs_txn_put(t, "visits", "v2", "{broken", kNul, &err));
  EXPECT_FALSE(fs_txn_commit(t, &err));
  EXPECT_EQ(err.code, FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(fs_get(h.r, "visits", "v1", nullptr, &err), nullptr);  // nothing written
  EXPECT_EQ(err.code, FS_ERR_NOT_FOUND);
}

struct StopFromCallback {
  fs_replica* r;
  std::atomic<bool> stopped{false};
};

void StopOnChange(void* ctx, const char*, size_t) {
  auto* s = static_cast<StopFromCallback*>(ctx);
  if (!s->stopped.exchange(true)) fs_sync_stop(s->r);  // on the sync thread itself
}

TEST(CApi, StoppingSyncFromItsOwnObserverIsSafe) {
  TempDir dir;
  TestServer server;
  Handle a(dir.File("a.db")), b(dir.File("b.db"));
  fs_error err{};
  StopFromCallback ctx{b.r};
  ASSERT_NE(fs_observer_add(b.r, StopOnChange, &ctx, &err), 0u);
  std::string url = server.url();
  ASSERT_TRUE(fs_put(a.r, "accounts", "x", R"({"phone":"1"})", kNul, &err));
  ASSERT_TRUE(fs_sync_once(a.r, url.c_str(), nullptr, &err));
  ASSERT_TRUE(fs_sync_start(b.r, url.c_str(), &err));
  for (int i = 0; i < 500 && !ctx.stopped; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(ctx.stopped);
  // It can be started again, and closing joins everything.
  ASSERT_TRUE(fs_sync_start(b.r, url.c_str(), &err)) << err.message;
  fs_sync_stop(b.r);
  EXPECT_TRUE(fs_replica_close(b.r, &err));
}

}  // namespace

namespace {

// The error paths docs/c-api.md lists, each with the code it must produce.
TEST(CApi, ErrorPathsReturnTheirDocumentedCodes) {
  TempDir dir;
  Handle h(dir.File("r.db"));
  Handle closed(dir.File("closed.db"));
  fs_error err{};
  ASSERT_TRUE(fs_replica_close(closed.r, &err));
  std::string schema = SchemaText();
  auto code = [&](bool ok) { return ok ? FS_OK : err.code; };
  auto code_p = [&](const void* p) { return p ? FS_OK : err.code; };

  // Opening.
  EXPECT_EQ(code_p(fs_replica_open(dir.File("a.db").c_str(), nullptr, 0, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_replica_open(dir.File("a.db").c_str(), "{\"version\":1,\"tables\":[]}", kNul, &err)),
            FS_ERR_SCHEMA_VIOLATION);
  EXPECT_EQ(code_p(fs_replica_open(dir.File("no/such/dir/a.db").c_str(), schema.data(), schema.size(), &err)),
            FS_ERR_IO);
  EXPECT_EQ(code(fs_replica_close(nullptr, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(fs_replica_node(nullptr), nullptr);

  // Records.
  ASSERT_TRUE(fs_put(h.r, "visits", "gone", R"({"status":"completed"})", kNul, &err));
  ASSERT_TRUE(fs_put(h.r, "visits", "v", R"({"status":"completed"})", kNul, &err));
  ASSERT_TRUE(fs_delete(h.r, "visits", "gone", &err));
  EXPECT_EQ(code(fs_put(h.r, "accounts", "a", R"({"colour":"red"})", kNul, &err)), FS_ERR_NOT_FOUND);
  EXPECT_EQ(code(fs_put(h.r, "accounts", "bad id", R"({"phone":"1"})", kNul, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_put(h.r, "visits", "gone", R"({"purpose":"x"})", kNul, &err)), FS_ERR_DELETED);
  EXPECT_EQ(code(fs_put(h.r, "visits", "v", R"({"status":"planned"})", kNul, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_put(h.r, "goods_loans", "g", R"({"returned_qty":null})", kNul, &err)), FS_ERR_SCHEMA_VIOLATION);
  EXPECT_EQ(code(fs_put(h.r, nullptr, "a", "{}", kNul, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_put(h.r, "accounts", nullptr, "{}", kNul, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_put(h.r, "accounts", "a", nullptr, 0, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_delete(nullptr, "visits", "v", &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_delete(h.r, nullptr, "v", &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_delete(h.r, "visits", nullptr, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_delete(closed.r, "visits", "v", &err)), FS_ERR_CLOSED);
  EXPECT_EQ(code(fs_delete(h.r, "nope", "v", &err)), FS_ERR_NOT_FOUND);
  EXPECT_EQ(code(fs_delete(h.r, "skus", "s", &err)), FS_ERR_PERMISSION_DENIED);
  EXPECT_EQ(code(fs_delete(h.r, "visits", "bad id", &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_delete(h.r, "visits", "gone", &err)), FS_ERR_DELETED);
  EXPECT_EQ(code(fs_increment(h.r, "goods_loans", "g", nullptr, 1, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_increment(h.r, "goods_loans", "g", "nope", 1, &err)), FS_ERR_NOT_FOUND);
  EXPECT_EQ(code(fs_increment(h.r, "goods_loans", "g", "returned_qty", INFINITY, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_increment(h.r, "goods_loans", "g", "returned_qty", 0.5, &err)), FS_ERR_SCHEMA_VIOLATION);
  EXPECT_EQ(code(fs_increment(h.r, "skus", "s", "list_price", 1, &err)), FS_ERR_PERMISSION_DENIED);
  EXPECT_EQ(code(fs_increment(h.r, "visits", "gone", "summary", 1, &err)), FS_ERR_DELETED);
  EXPECT_EQ(code(fs_increment(closed.r, "goods_loans", "g", "returned_qty", 1, &err)), FS_ERR_CLOSED);
  EXPECT_EQ(code_p(fs_get(h.r, "nope", "a", nullptr, &err)), FS_ERR_NOT_FOUND);
  EXPECT_EQ(code_p(fs_get(h.r, nullptr, "a", nullptr, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_get(h.r, "accounts", nullptr, nullptr, &err)), FS_ERR_INVALID_ARGUMENT);

  // Queries.
  EXPECT_EQ(code_p(fs_query(h.r, "nope", nullptr, 0, &err)), FS_ERR_NOT_FOUND);
  EXPECT_EQ(code_p(fs_query(h.r, "accounts", R"({"order_by":"nope"})", kNul, &err)), FS_ERR_NOT_FOUND);
  EXPECT_EQ(code_p(fs_query(h.r, "accounts", R"({"where":{"employees":"many"}})", kNul, &err)),
            FS_ERR_SCHEMA_VIOLATION);
  EXPECT_EQ(code_p(fs_query(h.r, "accounts", R"({"where":[1]})", kNul, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_query(h.r, "accounts", "{oops", kNul, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_query(h.r, "accounts", "[]", kNul, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_query(h.r, "accounts", R"({"limit":-1})", kNul, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_query(h.r, "accounts", R"({"offset":-1})", kNul, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_query(h.r, nullptr, nullptr, 0, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_query(closed.r, "accounts", nullptr, 0, &err)), FS_ERR_CLOSED);
  EXPECT_EQ(fs_result_count(nullptr), 0u);
  EXPECT_EQ(fs_result_row(nullptr, 0, nullptr), nullptr);
  fs_result_free(nullptr);

  // Transactions.
  EXPECT_EQ(code_p(fs_txn_begin(nullptr, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_txn_begin(closed.r, &err)), FS_ERR_CLOSED);
  EXPECT_EQ(code(fs_txn_put(nullptr, "a", "b", "{}", kNul, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_txn_delete(nullptr, "a", "b", &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_txn_increment(nullptr, "a", "b", "c", 1, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_txn_add_member(nullptr, "a", "b", "c", "m", &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_txn_remove_member(nullptr, "a", "b", "c", "m", &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_txn_commit(nullptr, &err)), FS_ERR_INVALID_ARGUMENT);
  auto txn_code = [&](auto&& op) {
    fs_txn* t = fs_txn_begin(h.r, &err);
    op(t);
    return code(fs_txn_commit(t, &err));
  };
  EXPECT_EQ(txn_code([&](fs_txn* t) { fs_txn_put(t, "a", "b", "[1]", kNul, &err); }), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(txn_code([&](fs_txn* t) { fs_txn_increment(t, "a", "b", nullptr, 1, &err); }), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(txn_code([&](fs_txn* t) { fs_txn_add_member(t, "a", "b", "c", nullptr, &err); }), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(txn_code([&](fs_txn* t) { fs_txn_remove_member(t, "a", "b", nullptr, "m", &err); }),
            FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(txn_code([&](fs_txn* t) { fs_txn_delete(t, "nope", "b", &err); }), FS_ERR_NOT_FOUND);
  EXPECT_EQ(txn_code([&](fs_txn* t) { fs_txn_delete(t, "skus", "b", &err); }), FS_ERR_PERMISSION_DENIED);
  EXPECT_EQ(txn_code([&](fs_txn* t) { fs_txn_put(t, "visits", "gone", R"({"purpose":"x"})", kNul, &err); }),
            FS_ERR_DELETED);
  EXPECT_EQ(txn_code([&](fs_txn* t) { fs_txn_add_member(t, "contacts", "c", "name", "x", &err); }),
            FS_ERR_SCHEMA_VIOLATION);
  EXPECT_EQ(txn_code([&](fs_txn* t) { fs_txn_add_member(t, "contacts", "c", "buying_roles", "astronaut", &err); }),
            FS_ERR_SCHEMA_VIOLATION);
  {
    Handle later(dir.File("later.db"));
    fs_txn* t = fs_txn_begin(later.r, &err);
    fs_txn_put(t, "accounts", "a", "{}", kNul, &err);
    ASSERT_TRUE(fs_replica_close(later.r, &err));
    EXPECT_EQ(code(fs_txn_commit(t, &err)), FS_ERR_CLOSED);
  }

  // Observers, sync, status, conflicts on bad handles and bad arguments.
  EXPECT_EQ(fs_observer_add(h.r, nullptr, nullptr, &err), 0u);
  EXPECT_EQ(err.code, FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(fs_observer_add(closed.r, [](void*, const char*, size_t) {}, nullptr, &err), 0u);
  EXPECT_EQ(err.code, FS_ERR_CLOSED);
  fs_observer_remove(closed.r, 1);
  EXPECT_EQ(code(fs_sync_once(h.r, nullptr, nullptr, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_sync_once(h.r, "wss://127.0.0.1:1/", nullptr, &err)), FS_ERR_IO);  // nothing listens there
  EXPECT_EQ(code(fs_set_credentials(closed.r, "t", nullptr, &err)), FS_ERR_CLOSED);
  EXPECT_EQ(code(fs_set_credentials(h.r, "t", "/no/such/ca.pem", &err)), FS_OK);
  EXPECT_EQ(code(fs_sync_once(h.r, "wss://127.0.0.1:1/", nullptr, &err)), FS_ERR_IO);  // the CA file is unreadable
  EXPECT_NE(std::string(err.message).find("ca.pem"), std::string::npos) << err.message;
  EXPECT_EQ(code(fs_set_credentials(h.r, nullptr, nullptr, &err)), FS_OK);
  // Leaving the device: h.r holds unsent changes.
  EXPECT_EQ(code(fs_sign_out(h.r, false, &err)), FS_ERR_BUSY);
  EXPECT_EQ(code(fs_sign_out(closed.r, true, &err)), FS_ERR_CLOSED);
  EXPECT_EQ(code(fs_replica_delete(dir.File("r.db").c_str(), schema.data(), schema.size(), false, &err)), FS_ERR_BUSY);
  EXPECT_EQ(code(fs_replica_delete(dir.File("none.db").c_str(), schema.data(), schema.size(), true, &err)),
            FS_ERR_NOT_FOUND);
  EXPECT_EQ(code(fs_replica_delete(nullptr, schema.data(), schema.size(), true, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_export_outbox(h.r, nullptr, nullptr, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_export_outbox(closed.r, "x", nullptr, &err)), FS_ERR_CLOSED);
  EXPECT_EQ(code(fs_export_outbox(h.r, dir.File("no/such/dir/out.jsonl").c_str(), nullptr, &err)), FS_ERR_IO);
  int64_t exported = -1;
  EXPECT_EQ(code(fs_export_outbox(h.r, dir.File("out.jsonl").c_str(), &exported, &err)), FS_OK);
  EXPECT_GT(exported, 0);
  fs_sync_report rep{};
  rep.pushed = -1;
  EXPECT_EQ(code(fs_sync_once(h.r, "ws://127.0.0.1:1/", &rep, &err)), FS_ERR_IO);
  EXPECT_EQ(rep.pushed, 0);  // the report is filled even on failure
  EXPECT_EQ(code(fs_sync_once(closed.r, "ws://127.0.0.1:1/", nullptr, &err)), FS_ERR_CLOSED);
  EXPECT_EQ(code(fs_sync_start(h.r, "tcp://x", &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_sync_start(h.r, nullptr, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(fs_sync_start(closed.r, "ws://127.0.0.1:1/", &err)), FS_ERR_CLOSED);
  fs_app_foreground(closed.r);
  EXPECT_EQ(code_p(fs_sync_status(nullptr, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_conflicts(nullptr, false, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_conflicts(closed.r, false, &err)), FS_ERR_CLOSED);
  EXPECT_EQ(code_p(fs_rejections(nullptr, &err)), FS_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_p(fs_rejections(closed.r, &err)), FS_ERR_CLOSED);
  EXPECT_EQ(code(fs_conflict_dismiss(closed.r, 1, &err)), FS_ERR_CLOSED);
}

TEST(CApi, BusySyncAndBackgroundFailureAreReported) {
  TempDir dir;
  TestServer server;
  Handle h(dir.File("r.db"));
  fs_error err{};
  std::string url = server.url();
  ASSERT_TRUE(fs_sync_start(h.r, url.c_str(), &err));
  EXPECT_FALSE(fs_sync_start(h.r, url.c_str(), &err));
  EXPECT_EQ(err.code, FS_ERR_BUSY);
  bool live = false;
  for (int i = 0; i < 500 && !live; ++i) {
    live = json::parse(Take(fs_sync_status(h.r, &err)))["state"] == "live";
    if (!live) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(live);
  EXPECT_FALSE(fs_sync_once(h.r, url.c_str(), nullptr, &err));
  EXPECT_EQ(err.code, FS_ERR_BUSY);
  // The network goes down: background sync waits with a reason, not an error loop.
  fs_network_changed(h.r, false);
  json s;
  for (int i = 0; i < 500; ++i) {
    s = json::parse(Take(fs_sync_status(h.r, &err)));
    if (s["state"] == "backoff") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(s["state"], "backoff");
  EXPECT_NE(s["reason"].get<std::string>().find("network down"), std::string::npos);
  fs_network_changed(h.r, true);
  for (int i = 0; i < 500 && s["state"] != "live"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s = json::parse(Take(fs_sync_status(h.r, &err)));
  }
  EXPECT_EQ(s["state"], "live");
  // The server goes away: the failure shows in the status.
  server.Stop();
  for (int i = 0; i < 500; ++i) {
    s = json::parse(Take(fs_sync_status(h.r, &err)));
    if (s["state"] == "backoff" && s["attempts"].get<int>() > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(s["state"], "backoff");
  EXPECT_FALSE(s["last_error"].get<std::string>().empty());
  fs_sync_stop(h.r);
}

TEST(CApi, RestoreRefusalsAreReported) {
  TempDir dir;
  TestServer server;
  Handle a(dir.File("a.db")), b(dir.File("b.db"));
  fs_error err{};
  std::string url = server.url();
  // A state conflict: the furthest state wins and cannot be restored backwards.
  ASSERT_TRUE(fs_put(a.r, "visits", "v", R"({"status":"checked_in"})", kNul, &err));
  ASSERT_TRUE(fs_sync_once(a.r, url.c_str(), nullptr, &err));
  ASSERT_TRUE(fs_sync_once(b.r, url.c_str(), nullptr, &err));
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  ASSERT_TRUE(fs_put(b.r, "visits", "v", R"({"status":"completed"})", kNul, &err));
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  // a's concurrent, later write of a lower state loses
  ASSERT_TRUE(fs_put(a.r, "visits", "v", R"({"purpose":"recheck"})", kNul, &err));
  ASSERT_TRUE(fs_put(a.r, "accounts", "x", R"({"phone":"a"})", kNul, &err));
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  ASSERT_TRUE(fs_put(b.r, "accounts", "x", R"({"phone":"b"})", kNul, &err));
  ASSERT_TRUE(fs_sync_once(b.r, url.c_str(), nullptr, &err));
  ASSERT_TRUE(fs_sync_once(a.r, url.c_str(), nullptr, &err));
  json cs = json::parse(Take(fs_conflicts(a.r, false, &err)));
  ASSERT_FALSE(cs.empty());
  int64_t lww = 0;
  for (const auto& c : cs)
    if (c["kind"] == "lww") lww = c["id"];
  ASSERT_NE(lww, 0);
  ASSERT_TRUE(fs_conflict_dismiss(a.r, lww, &err));
  EXPECT_FALSE(fs_conflict_restore(a.r, lww, nullptr, &err));  // already resolved
  EXPECT_EQ(err.code, FS_ERR_INVALID_ARGUMENT);
}

}  // namespace

#include <sqlite3.h>

namespace {

void ExecSql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

TEST(CApi, FilesFromANewerFormatOrWithBadMetadataAreRefused) {
  TempDir dir;
  std::string schema = SchemaText();
  fs_error err{};
  for (const char* name : {"newer.db", "bad.db"}) {
    fs_replica* r = fs_replica_open(dir.File(name).c_str(), schema.data(), schema.size(), &err);
    ASSERT_NE(r, nullptr);
    fs_replica_free(r);
  }
  ExecSql(dir.File("newer.db"), "UPDATE fs_meta SET value='99' WHERE key='format'");
  ExecSql(dir.File("bad.db"), "INSERT OR REPLACE INTO fs_meta(key, value) VALUES('cursor', 'twelve')");
  EXPECT_EQ(fs_replica_open(dir.File("newer.db").c_str(), schema.data(), schema.size(), &err), nullptr);
  EXPECT_EQ(err.code, FS_ERR_UNSUPPORTED);
  EXPECT_EQ(fs_replica_open(dir.File("bad.db").c_str(), schema.data(), schema.size(), &err), nullptr);
  EXPECT_EQ(err.code, FS_ERR_CORRUPTION);
}

TEST(CApi, RestoringAStateBackwardsOrOntoADeletedRowIsRefused) {
  TempDir dir;
  TestServer server;
  Handle a(dir.File("a.db")), b(dir.File("b.db"));
  fs_error err{};
  std::string url = server.url();
  ASSERT_TRUE(fs_put(a.r, "visits", "v", R"({"status":"planned","purpose":"p"})", kNul, &err));
  ASSERT_TRUE(fs_sync_once(a.r, url.c_str(), nullptr, &err));
  ASSERT_TRUE(fs_sync_once(b.r, url.c_str(), nullptr, &err));
  // Concurrently: a completes the visit, b (later) only checks in.
  ASSERT_TRUE(fs_put(a.r, "visits", "v", R"({"status":"completed"})", kNul, &err));
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  ASSERT_TRUE(fs_put(b.r, "visits", "v", R"({"status":"checked_in"})", kNul, &err));
  ASSERT_TRUE(fs_sync_once(a.r, url.c_str(), nullptr, &err));
  ASSERT_TRUE(fs_sync_once(b.r, url.c_str(), nullptr, &err));
  json cs = json::parse(Take(fs_conflicts(b.r, false, &err)));
  int64_t state = 0;
  for (const auto& c : cs)
    if (c["kind"] == "state" && c["lost_value"] == "checked_in") state = c["id"];
  ASSERT_NE(state, 0) << cs.dump();
  EXPECT_FALSE(fs_conflict_restore(b.r, state, nullptr, &err));
  EXPECT_EQ(err.code, FS_ERR_INVALID_ARGUMENT);
  // An lww loser whose row is deleted before it is restored.
  ASSERT_TRUE(fs_put(a.r, "contacts", "c", R"({"phone":"a"})", kNul, &err));
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  ASSERT_TRUE(fs_put(b.r, "contacts", "c", R"({"phone":"b"})", kNul, &err));
  ASSERT_TRUE(fs_sync_once(b.r, url.c_str(), nullptr, &err));
  ASSERT_TRUE(fs_sync_once(a.r, url.c_str(), nullptr, &err));
  cs = json::parse(Take(fs_conflicts(a.r, false, &err)));
  int64_t lww = 0;
  for (const auto& c : cs)
    if (c["kind"] == "lww" && c["lost_value"] == "a") lww = c["id"];
  ASSERT_NE(lww, 0) << cs.dump();
  ASSERT_TRUE(fs_delete(a.r, "contacts", "c", &err));
  EXPECT_FALSE(fs_conflict_restore(a.r, lww, nullptr, &err));
  EXPECT_EQ(err.code, FS_ERR_DELETED);
}

}  // namespace

namespace {

TEST(CApi, AnErrorFromTheServerEndsTheSyncWithItsCode) {
  // A server whose depth limit refuses the client's hello answers with a
  // fatal limit_exceeded error; the SDK reports that code.
  fieldsync::server::ServerOptions o;
  o.limits.max_json_depth = 1;
  TestServer server(o);
  TempDir dir;
  Handle h(dir.File("r.db"));
  fs_error err{};
  ASSERT_TRUE(fs_put(h.r, "accounts", "a", R"({"phone":"1"})", kNul, &err));
  std::string url = server.url();
  EXPECT_FALSE(fs_sync_once(h.r, url.c_str(), nullptr, &err));
  EXPECT_EQ(err.code, FS_ERR_LIMIT_EXCEEDED) << err.message;
  EXPECT_NE(std::string(err.message).find("server:"), std::string::npos) << err.message;
  EXPECT_EQ(json::parse(Take(fs_sync_status(h.r, &err)))["pending"], 1);  // nothing lost
}

}  // namespace
