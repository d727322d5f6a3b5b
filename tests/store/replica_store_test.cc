// store/replica_store: the SQLite file behind every replica. Tables follow
// the schema (and migrate additively), merged values read back typed,
// queries filter and order, conflicts are recorded, the outbox and fs_meta
// persist, and the row delete rule (sync/merge.h, docs/merge.md section 8)
// gives the same result in every arrival order.
#include "store/replica_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sync/hlc.h"
#include "sync/merge.h"
#include "sync/protocol.h"

namespace fieldsync::store {
namespace {

constexpr const char* kSchema = R"({"name": "store_test", "version": 1, "tables": [
  {"name": "accounts", "columns": [
    {"name": "name", "type": "text"},
    {"name": "phone", "type": "text", "max_length": 64},
    {"name": "employees", "type": "integer"},
    {"name": "status", "type": "enum", "values": ["prospect", "active", "closed"]},
    {"name": "notes", "type": "text", "merge": "mv"}]},
  {"name": "samples", "columns": [
    {"name": "t", "type": "text"},
    {"name": "i", "type": "integer"},
    {"name": "r", "type": "real"},
    {"name": "b", "type": "boolean"},
    {"name": "e", "type": "enum", "values": ["low", "mid", "high"]},
    {"name": "d", "type": "date"},
    {"name": "s", "type": "set", "merge": "orset"},
    {"name": "n", "type": "integer", "merge": "counter"},
    {"name": "st", "type": "enum", "merge": "state", "values": ["new", "open", "done"]}]},
  {"name": "visits", "parent": {"column": "account_id", "table": "accounts"}, "columns": [
    {"name": "account_id", "type": "text", "references": "accounts"},
    {"name": "summary", "type": "text", "merge": "mv"}]}
]})";

// Node ids. kHigh has the top bit set: SQLite stores it as a negative integer.
constexpr NodeId kP = 1;        // the writer in the delete scenarios
constexpr NodeId kQ = 2;        // the deleter
constexpr NodeId kCreator = 3;  // made the row; everybody has seen its writes
constexpr NodeId kA = 0x0a;
constexpr NodeId kB = 0x0b;
constexpr NodeId kClockNode = 0x77;
constexpr NodeId kHigh = 0xF00000000000000AULL;

class ReplicaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = Schema::ParseText(kSchema, &schema_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    char tmpl[] = "/tmp/fieldsync_replica_store_test_XXXXXX";
    char* dir = mkdtemp(tmpl);
    ASSERT_NE(dir, nullptr) << "mkdtemp failed";
    dir_ = dir;
    t0_ = SystemMillis();
  }

  void TearDown() override {
    for (auto& s : stores_) s->Close();
    stores_.clear();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  // The body of the AFormat*FileIsConvertedOnOpenAndMergesOn tests.
  void ConvertsFromOlderFormat(int old_format);

  // Opens (or reopens) a store file; nullptr (and a test failure) on error.
  Store* OpenStore(const std::string& name, const Schema* schema = nullptr) {
    auto s = std::make_unique<Store>();
    Status st = s->Open(Path(name), schema ? *schema : schema_);
    EXPECT_TRUE(st.ok()) << name << ": " << st.ToString();
    if (!st.ok()) return nullptr;
    stores_.push_back(std::move(s));
    return stores_.back().get();
  }

  void CloseStore(Store* s) {
    s->Close();
    stores_.erase(std::remove_if(stores_.begin(), stores_.end(), [&](auto& p) { return p.get() == s; }),
                  stores_.end());
  }

  Hlc H(uint64_t k) const { return MakeHlc(t0_ + k, 0); }

  static Change Set(const std::string& table, const std::string& row, const std::string& col, json v,
                    Stamp stamp, Hlc base = 0, VersionVector ctx = {}) {
    Change c;
    c.table = table;
    c.row = row;
    c.column = col;
    c.op = Op::kSet;
    c.value = std::move(v);
    c.stamp = stamp;
    c.base = base;
    c.ctx = std::move(ctx);
    return c;
  }

  static Change Del(const std::string& table, const std::string& row, Stamp stamp, VersionVector ctx) {
    Change c;
    c.table = table;
    c.row = row;
    c.op = Op::kDelete;
    c.stamp = stamp;
    c.ctx = std::move(ctx);
    return c;
  }

  // Validates, then merges one change in its own transaction.
  static Status Apply(Store* s, const Change& c, ApplyOutcome* out = nullptr) {
    Status v = ValidateChange(s->schema(), c);
    if (!v.ok()) return Status(v.code(), "invalid test change: " + v.message());
    Transaction tx(&s->db());
    if (!tx.status().ok()) return tx.status();
    ApplyOutcome local;
    Status st = s->ApplyChange(c, out ? out : &local);
    if (!st.ok()) return st;
    return tx.Commit();
  }

  static void ApplyAll(Store* s, const std::vector<Change>& cs) {
    for (const auto& c : cs) {
      Status st = Apply(s, c);
      ASSERT_TRUE(st.ok()) << ChangeToJson(c).dump() << ": " << st.ToString();
    }
  }

  static std::vector<StoredConflict> Conflicts(Store* s, bool include_resolved = true) {
    std::vector<StoredConflict> out;
    Status st = s->ListConflicts(include_resolved, &out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  // Column (name, declared type) pairs of a SQLite table, in order.
  static std::vector<std::pair<std::string, std::string>> TableColumns(Store* s, const std::string& table) {
    std::vector<std::pair<std::string, std::string>> out;
    Status st;
    Statement& q = s->db().Prepare("SELECT name, type FROM pragma_table_info(?) ORDER BY cid", &st);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return out;
    q.Bind(1, table);
    while (q.Step()) out.emplace_back(q.Text(0), q.Text(1));
    EXPECT_TRUE(q.status().ok()) << q.status().ToString();
    q.Reset();
    return out;
  }

  static std::vector<std::string> ColumnNames(Store* s, const std::string& table) {
    std::vector<std::string> out;
    for (auto& [n, t] : TableColumns(s, table)) out.push_back(n);
    return out;
  }

  // Names of the tables that are neither internal (fs_) nor SQLite's own.
  static std::set<std::string> UserTables(Store* s) {
    std::set<std::string> out;
    Status st;
    Statement& q = s->db().Prepare(
        R"(SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'fs\_%' ESCAPE '\' )"
        R"(AND name NOT LIKE 'sqlite\_%' ESCAPE '\')",
        &st);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return out;
    while (q.Step()) out.insert(q.Text(0));
    q.Reset();
    return out;
  }

  static std::vector<std::string> Ids(const std::vector<json>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.value("id", std::string("<no id>")));
    return out;
  }

  // Runs a query; the ids it returns (empty on error, with a failure).
  static std::vector<std::string> QueryIds(Store* s, const std::string& table, const QueryOptions& q) {
    std::vector<json> rows;
    Status st = s->Query(table, q, &rows);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return Ids(rows);
  }

  Schema schema_;
  std::string dir_;
  uint64_t t0_ = 0;
  std::vector<std::unique_ptr<Store>> stores_;
};

// ---- tables and migration --------------------------------------------------

TEST_F(ReplicaStoreTest, OpenCreatesOneTablePerSchemaTableWithIdAndColumns) {
  Store* s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(UserTables(s), (std::set<std::string>{"accounts", "samples", "visits"}));
  for (const auto& t : schema_.tables()) {
    std::vector<std::string> want = {"id"};
    for (const auto& c : t.columns) want.push_back(c.name);
    EXPECT_EQ(ColumnNames(s, t.name), want) << t.name;
  }
  // Declared SQLite types follow the column types (docs/storage.md 3.1).
  std::vector<std::pair<std::string, std::string>> want_types = {
      {"id", "TEXT"}, {"t", "TEXT"},    {"i", "INTEGER"}, {"r", "REAL"},    {"b", "INTEGER"},
      {"e", "TEXT"},  {"d", "TEXT"},    {"s", "TEXT"},    {"n", "INTEGER"}, {"st", "TEXT"}};
  EXPECT_EQ(TableColumns(s, "samples"), want_types);

  // The internal tables exist too, and the parent index.
  Status st;
  Statement& q = s->db().Prepare("SELECT count(*) FROM sqlite_master WHERE name=?", &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  for (const char* name : {"fs_meta", "fs_row_fields", "fs_tombstones", "fs_conflicts", "fs_outbox", "fs_rejected",
                           "visits_by_account_id"}) {
    q.Bind(1, name);
    ASSERT_TRUE(q.Step());
    EXPECT_EQ(q.Int(0), 1) << name;
    q.Reset();
  }

  std::string fp;
  bool found = false;
  ASSERT_TRUE(s->GetMeta("schema_fingerprint", &fp, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_EQ(fp, schema_.fingerprint());
}

TEST_F(ReplicaStoreTest, OpenWithTheFieldSalesSchemaCreatesEveryTable) {
  const char* path = std::getenv("FIELDSYNC_SCHEMA");
  ASSERT_NE(path, nullptr) << "FIELDSYNC_SCHEMA is not set (ctest sets it)";
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  Schema real;
  Status st = Schema::ParseText(text.str(), &real);
  ASSERT_TRUE(st.ok()) << st.ToString();
  Store* s = OpenStore("field_sales.db", &real);
  ASSERT_NE(s, nullptr);
  std::set<std::string> want;
  for (const auto& t : real.tables()) {
    want.insert(t.name);
    std::vector<std::string> cols = {"id"};
    for (const auto& c : t.columns) cols.push_back(c.name);
    EXPECT_EQ(ColumnNames(s, t.name), cols) << t.name;
  }
  EXPECT_EQ(UserTables(s), want);
  EXPECT_TRUE(want.count("accounts"));
  EXPECT_TRUE(want.count("skus"));
}

TEST_F(ReplicaStoreTest, ReopenWithAddedColumnMigratesAndKeepsData) {
  Schema v1, v2;
  ASSERT_TRUE(Schema::ParseText(R"({"name": "mig", "version": 1, "tables": [
      {"name": "accounts", "columns": [
        {"name": "name", "type": "text"}, {"name": "phone", "type": "text"}]}]})",
                                &v1)
                  .ok());
  ASSERT_TRUE(Schema::ParseText(R"({"name": "mig", "version": 2, "tables": [
      {"name": "accounts", "columns": [
        {"name": "name", "type": "text"}, {"name": "phone", "type": "text"},
        {"name": "city", "type": "text"}, {"name": "employees", "type": "integer"}]},
      {"name": "visits", "parent": {"column": "account_id", "table": "accounts"}, "columns": [
        {"name": "account_id", "type": "text"}]}]})",
                                &v2)
                  .ok());
  ASSERT_NE(v1.fingerprint(), v2.fingerprint());

  Store* s = OpenStore("mig.db", &v1);
  ASSERT_NE(s, nullptr);
  ApplyAll(s, {Set("accounts", "a1", "name", "Acme", {H(1), kA}), Set("accounts", "a1", "phone", "555", {H(2), kA})});
  EXPECT_EQ(ColumnNames(s, "accounts"), (std::vector<std::string>{"id", "name", "phone"}));
  CloseStore(s);

  s = OpenStore("mig.db", &v2);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(TableColumns(s, "accounts"),
            (std::vector<std::pair<std::string, std::string>>{
                {"id", "TEXT"}, {"name", "TEXT"}, {"phone", "TEXT"}, {"city", "TEXT"}, {"employees", "INTEGER"}}));
  EXPECT_EQ(ColumnNames(s, "visits"), (std::vector<std::string>{"id", "account_id"}));
  json row;
  Status st = s->GetRow("accounts", "a1", &row);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(row, (json{{"id", "a1"}, {"name", "Acme"}, {"phone", "555"}}));

  // The new columns and table take writes, and the old fields keep their
  // merge metadata (an older write still loses).
  ApplyAll(s, {Set("accounts", "a1", "city", "Lyon", {H(3), kA}), Set("accounts", "a1", "employees", 12, {H(4), kA}),
               Set("visits", "v1", "account_id", "a1", {H(5), kA}),
               Set("accounts", "a1", "phone", "old", {H(0), kB})});
  ASSERT_TRUE(s->GetRow("accounts", "a1", &row).ok());
  EXPECT_EQ(row, (json{{"id", "a1"}, {"name", "Acme"}, {"phone", "555"}, {"city", "Lyon"}, {"employees", 12}}));
  std::string fp;
  bool found = false;
  ASSERT_TRUE(s->GetMeta("schema_fingerprint", &fp, &found).ok());
  EXPECT_EQ(fp, v2.fingerprint());
  CloseStore(s);

  // Reopening with the same schema again is a no-op migration.
  s = OpenStore("mig.db", &v2);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->GetRow("accounts", "a1", &row).ok());
  EXPECT_EQ(row["city"], json("Lyon"));
  EXPECT_EQ(ColumnNames(s, "accounts").size(), 5u);
}

// ---- merging and reading rows ----------------------------------------------

TEST_F(ReplicaStoreTest, LwwSetThenGetRowReturnsTheValue) {
  Store* s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  ApplyOutcome out;
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "phone", "555-1234", {H(10), kA}), &out).ok());
  EXPECT_TRUE(out.changed);
  json row;
  Status st = s->GetRow("accounts", "a1", &row);
  ASSERT_TRUE(st.ok()) << st.ToString();
  // Columns never written are omitted.
  EXPECT_EQ(row, (json{{"id", "a1"}, {"phone", "555-1234"}}));

  // The same change again changes nothing.
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "phone", "555-1234", {H(10), kA}), &out).ok());
  EXPECT_FALSE(out.changed);
  // An older write loses; a newer one wins.
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "phone", "older", {H(5), kB}, 0), &out).ok());
  EXPECT_FALSE(out.changed);
  ASSERT_TRUE(s->GetRow("accounts", "a1", &row).ok());
  EXPECT_EQ(row["phone"], json("555-1234"));
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "phone", "newer", {H(20), kB}, H(10)), &out).ok());
  EXPECT_TRUE(out.changed);
  ASSERT_TRUE(s->GetRow("accounts", "a1", &row).ok());
  EXPECT_EQ(row["phone"], json("newer"));

  // A set to null clears the field: the column is omitted again.
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "phone", nullptr, {H(30), kA}, H(20))).ok());
  ASSERT_TRUE(s->GetRow("accounts", "a1", &row).ok());
  EXPECT_EQ(row, (json{{"id", "a1"}}));

  int64_t n = -1;
  ASSERT_TRUE(s->CountRows("accounts", &n).ok());
  EXPECT_EQ(n, 1);
}

TEST_F(ReplicaStoreTest, EveryColumnTypeRoundTripsThroughGetRow) {
  Store* s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  const TableDef* t = schema_.Find("samples");
  ASSERT_NE(t, nullptr);
  const std::string text = "h\xC3\xA9llo, \"w\xC3\xB6rld\" 'x'\n\xE2\x9C\x93 ; DROP TABLE samples; --";
  const int64_t big = -9007199254740993LL;  // not representable as a double
  ApplyAll(s, {Set("samples", "s1", "t", text, {H(1), kA}), Set("samples", "s1", "i", big, {H(2), kA}),
               Set("samples", "s1", "r", 2.75, {H(3), kA}), Set("samples", "s1", "b", false, {H(4), kA}),
               Set("samples", "s1", "e", "mid", {H(5), kA}), Set("samples", "s1", "d", "2024-02-29", {H(6), kA}),
               Set("samples", "s1", "st", "open", {H(7), kA}), Set("samples", "s2", "b", true, {H(8), kA}),
               Set("samples", "s2", "d", "2024-02-29T13:45:00+08:00", {H(9), kA})});

  // The set and the counter go through their own ops.
  HybridClock clock(kClockNode);
  auto field = [&](const std::string& col) {
    FieldState f;
    Status st = s->LoadField("samples", "s1", *t->Find(col), &f);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return f;
  };
  const ColumnDef& set_col = *t->Find("s");
  for (const char* m : {"red", "blue", "green"})
    ASSERT_TRUE(Apply(s, MakeSetMember(*t, set_col, field("s"), "s1", m, true, &clock)).ok());
  ASSERT_TRUE(Apply(s, MakeSetMember(*t, set_col, field("s"), "s1", "green", false, &clock)).ok());
  const ColumnDef& counter = *t->Find("n");
  ASSERT_TRUE(Apply(s, MakeIncrement(*t, counter, field("n"), "s1", 5, &clock)).ok());
  ASSERT_TRUE(Apply(s, MakeIncrement(*t, counter, field("n"), "s1", -2, &clock)).ok());

  json r1, r2;
  Status st = s->GetRow("samples", "s1", &r1);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(s->GetRow("samples", "s2", &r2).ok());

  EXPECT_EQ(r1.value("t", json()), json(text));
  ASSERT_TRUE(r1["i"].is_number_integer()) << r1.dump();
  EXPECT_EQ(r1["i"].get<int64_t>(), big);
  ASSERT_TRUE(r1["r"].is_number_float()) << r1.dump();
  EXPECT_EQ(r1["r"].get<double>(), 2.75);
  ASSERT_TRUE(r1["b"].is_boolean()) << r1.dump();  // false is a value, not omitted
  EXPECT_FALSE(r1["b"].get<bool>());
  EXPECT_EQ(r1.value("e", json()), json("mid"));
  EXPECT_EQ(r1.value("d", json()), json("2024-02-29"));
  EXPECT_EQ(r1.value("s", json()), json::array({"blue", "red"}));  // sorted, green removed
  ASSERT_TRUE(r1["n"].is_number_integer()) << r1.dump();
  EXPECT_EQ(r1["n"].get<int64_t>(), 3);
  EXPECT_EQ(r1.value("st", json()), json("open"));
  EXPECT_EQ(r1.size(), 10u) << r1.dump();  // id + 9 columns

  EXPECT_EQ(r2, (json{{"id", "s2"}, {"b", true}, {"d", "2024-02-29T13:45:00+08:00"}}));

  // Query and Dump read the same values.
  std::vector<json> rows;
  ASSERT_TRUE(s->Query("samples", QueryOptions{}, &rows).ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], r1);
  EXPECT_EQ(rows[1], r2);
  QueryOptions q;
  q.where = {{"b", false}};
  EXPECT_EQ(QueryIds(s, "samples", q), std::vector<std::string>{"s1"});
  q.where = {{"i", big}};
  EXPECT_EQ(QueryIds(s, "samples", q), std::vector<std::string>{"s1"});
  q.where = {{"r", 2.75}, {"e", "mid"}};
  EXPECT_EQ(QueryIds(s, "samples", q), std::vector<std::string>{"s1"});
  q.where = {{"b", true}};
  EXPECT_EQ(QueryIds(s, "samples", q), std::vector<std::string>{"s2"});

  // And so does a reopened file.
  CloseStore(s);
  s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  json again;
  ASSERT_TRUE(s->GetRow("samples", "s1", &again).ok());
  EXPECT_EQ(again, r1);
  ASSERT_TRUE(s->GetRow("samples", "s2", &again).ok());
  EXPECT_EQ(again, r2);
}

class ReplicaStoreQueryTest : public ReplicaStoreTest {
 protected:
  void SetUp() override {
    ReplicaStoreTest::SetUp();
    if (HasFatalFailure()) return;
    s_ = OpenStore("q.db");
    ASSERT_NE(s_, nullptr);
    struct R {
      const char* id;
      const char* name;
      json employees;
      const char* status;
    };
    uint64_t k = 1;
    for (const R& r : {R{"a1", "Alpha", 10, "active"}, R{"a2", "Beta", 30, "active"}, R{"a3", "Gamma", 20, "prospect"},
                       R{"a4", "Delta", 40, "active"}, R{"a5", "Eps", nullptr, "closed"}}) {
      ApplyAll(s_, {Set("accounts", r.id, "name", r.name, {H(k++), kA}),
                    Set("accounts", r.id, "status", r.status, {H(k++), kA})});
      if (!r.employees.is_null()) ApplyAll(s_, {Set("accounts", r.id, "employees", r.employees, {H(k++), kA})});
    }
  }
  Store* s_ = nullptr;
};

TEST_F(ReplicaStoreQueryTest, WhereOrderByDescendingAndLimit) {
  using V = std::vector<std::string>;
  QueryOptions q;
  EXPECT_EQ(QueryIds(s_, "accounts", q), (V{"a1", "a2", "a3", "a4", "a5"}));

  q.where = {{"status", "active"}};
  EXPECT_EQ(QueryIds(s_, "accounts", q), (V{"a1", "a2", "a4"}));

  q.order_by = "employees";
  EXPECT_EQ(QueryIds(s_, "accounts", q), (V{"a1", "a2", "a4"}));
  q.descending = true;
  EXPECT_EQ(QueryIds(s_, "accounts", q), (V{"a4", "a2", "a1"}));
  q.limit = 2;
  EXPECT_EQ(QueryIds(s_, "accounts", q), (V{"a4", "a2"}));
  q.offset = 1;
  EXPECT_EQ(QueryIds(s_, "accounts", q), (V{"a2", "a1"}));

  QueryOptions by_id;
  by_id.descending = true;
  EXPECT_EQ(QueryIds(s_, "accounts", by_id), (V{"a5", "a4", "a3", "a2", "a1"}));
  by_id.limit = 3;
  by_id.offset = 1;
  EXPECT_EQ(QueryIds(s_, "accounts", by_id), (V{"a4", "a3", "a2"}));

  QueryOptions by_name;
  by_name.order_by = "name";
  EXPECT_EQ(QueryIds(s_, "accounts", by_name), (V{"a1", "a2", "a4", "a5", "a3"}));

  QueryOptions multi;
  multi.where = {{"status", "active"}, {"employees", 30}};
  EXPECT_EQ(QueryIds(s_, "accounts", multi), (V{"a2"}));
  multi.where = {{"id", "a3"}};
  EXPECT_EQ(QueryIds(s_, "accounts", multi), (V{"a3"}));
  multi.where = {{"employees", nullptr}};
  EXPECT_EQ(QueryIds(s_, "accounts", multi), (V{"a5"}));
  multi.where = {{"status", "closed"}, {"employees", 10}};
  EXPECT_EQ(QueryIds(s_, "accounts", multi), V{});

  // Rows come back whole, as GetRow gives them.
  std::vector<json> rows;
  QueryOptions one;
  one.where = {{"name", "Beta"}};
  ASSERT_TRUE(s_->Query("accounts", one, &rows).ok());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (json{{"id", "a2"}, {"name", "Beta"}, {"status", "active"}, {"employees", 30}}));
}

TEST_F(ReplicaStoreQueryTest, BadFiltersAreRefusedWithTheirCodes) {
  std::vector<json> rows;
  QueryOptions q;
  q.where = {{"nope", 1}};
  Status st = s_->Query("accounts", q, &rows);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();

  q.where = {{"employees", "ten"}};
  st = s_->Query("accounts", q, &rows);
  EXPECT_EQ(st.code(), Code::kSchemaViolation) << st.ToString();

  q.where = {{"employees", 2.5}};
  st = s_->Query("accounts", q, &rows);
  EXPECT_EQ(st.code(), Code::kSchemaViolation) << st.ToString();

  q.where = {{"status", "bogus"}};
  st = s_->Query("accounts", q, &rows);
  EXPECT_EQ(st.code(), Code::kSchemaViolation) << st.ToString();

  q.where = {{"id", 5}};
  st = s_->Query("accounts", q, &rows);
  EXPECT_EQ(st.code(), Code::kSchemaViolation) << st.ToString();

  QueryOptions order;
  order.order_by = "nope";
  st = s_->Query("accounts", order, &rows);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();

  st = s_->Query("no_such_table", QueryOptions{}, &rows);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();

  QueryOptions not_object;
  not_object.where = json::array({"status", "active"});
  st = s_->Query("accounts", not_object, &rows);
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
}

TEST_F(ReplicaStoreTest, GetRowOfMissingRowIsNotFoundAndOfDeletedRowIsDeleted) {
  Store* s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  json row;
  Status st = s->GetRow("accounts", "missing", &row);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
  st = s->GetRow("no_such_table", "x", &row);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();

  ApplyAll(s, {Set("accounts", "gone", "name", "Old", {H(1), kA})});
  ASSERT_TRUE(s->GetRow("accounts", "gone", &row).ok());
  VersionVector ctx;
  ASSERT_TRUE(s->RowContext(*schema_.Find("accounts"), "gone", &ctx).ok());
  ApplyOutcome out;
  ASSERT_TRUE(Apply(s, Del("accounts", "gone", {H(2), kA}, ctx), &out).ok());
  EXPECT_TRUE(out.changed);
  EXPECT_TRUE(out.conflicts.empty());
  st = s->GetRow("accounts", "gone", &row);
  EXPECT_EQ(st.code(), Code::kDeleted) << st.ToString();
  bool deleted = false;
  ASSERT_TRUE(s->IsDeleted("accounts", "gone", &deleted).ok());
  EXPECT_TRUE(deleted);
  int64_t n = -1;
  ASSERT_TRUE(s->CountRows("accounts", &n).ok());
  EXPECT_EQ(n, 0);

  // A delete of a row this replica never had still leaves a tombstone.
  ASSERT_TRUE(Apply(s, Del("accounts", "never", {H(3), kB}, {})).ok());
  st = s->GetRow("accounts", "never", &row);
  EXPECT_EQ(st.code(), Code::kDeleted) << st.ToString();
  // Other rows are unaffected.
  ASSERT_TRUE(s->IsDeleted("accounts", "missing", &deleted).ok());
  EXPECT_FALSE(deleted);
}

TEST_F(ReplicaStoreTest, ConcurrentMvWritesShowConflictsInGetRow) {
  Store* s1 = OpenStore("one.db");
  Store* s2 = OpenStore("two.db");
  ASSERT_NE(s1, nullptr);
  ASSERT_NE(s2, nullptr);
  Change x = Set("accounts", "a1", "notes", "from A", {H(1), kA});
  Change y = Set("accounts", "a1", "notes", "from B", {H(2), kB});
  ApplyAll(s1, {x, y});
  ApplyAll(s2, {y, x});
  for (Store* s : {s1, s2}) {
    json row;
    ASSERT_TRUE(s->GetRow("accounts", "a1", &row).ok());
    EXPECT_EQ(row.value("notes", json()), json("from B")) << row.dump();  // the newest is shown
    ASSERT_TRUE(row.contains("_conflicts")) << row.dump();
    EXPECT_EQ(row["_conflicts"], (json{{"notes", {"from A", "from B"}}})) << row.dump();
    std::vector<json> rows;
    ASSERT_TRUE(s->Query("accounts", QueryOptions{}, &rows).ok());
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0], row);
  }

  // A write that had seen both values resolves the field.
  Change z = Set("accounts", "a1", "notes", "merged", {H(3), kA}, 0, {{kA, H(1)}, {kB, H(2)}});
  ApplyAll(s1, {z});
  json row;
  ASSERT_TRUE(s1->GetRow("accounts", "a1", &row).ok());
  EXPECT_EQ(row, (json{{"id", "a1"}, {"notes", "merged"}}));

  // A single mv value is not a conflict.
  ApplyAll(s2, {Set("visits", "v1", "summary", "fine", {H(4), kA})});
  ASSERT_TRUE(s2->GetRow("visits", "v1", &row).ok());
  EXPECT_FALSE(row.contains("_conflicts")) << row.dump();
}

TEST_F(ReplicaStoreTest, DumpIsSortedByTableThenIdAndNamesTheTable) {
  Store* s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  ApplyAll(s, {Set("visits", "v2", "summary", "two", {H(1), kA}), Set("visits", "v1", "summary", "one", {H(2), kA}),
               Set("accounts", "b-2", "name", "B", {H(3), kA}), Set("accounts", "a-1", "name", "a", {H(4), kA}),
               Set("accounts", "A-0", "name", "A", {H(5), kA}), Set("accounts", "c-3", "name", "C", {H(6), kA}),
               Set("samples", "m", "i", 1, {H(7), kA})});
  VersionVector ctx;
  ASSERT_TRUE(s->RowContext(*schema_.Find("accounts"), "c-3", &ctx).ok());
  ApplyAll(s, {Del("accounts", "c-3", {H(8), kA}, ctx)});

  std::vector<json> lines;
  Status st = s->Dump([&](const json& j) { lines.push_back(j); });
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::vector<json> want = {
      {{"table", "accounts"}, {"id", "A-0"}, {"name", "A"}},
      {{"table", "accounts"}, {"id", "a-1"}, {"name", "a"}},
      {{"table", "accounts"}, {"id", "b-2"}, {"name", "B"}},
      {{"table", "samples"}, {"id", "m"}, {"i", 1}},
      {{"table", "visits"}, {"id", "v1"}, {"summary", "one"}},
      {{"table", "visits"}, {"id", "v2"}, {"summary", "two"}},
  };
  EXPECT_EQ(lines, want);
}

TEST_F(ReplicaStoreTest, DumpPagesThroughALargeTableInOrder) {
  Store* s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  constexpr int kRows = 1100;  // more than two of Dump's 512-id pages
  {
    Transaction tx(&s->db());
    ASSERT_TRUE(tx.status().ok());
    for (int i = kRows - 1; i >= 0; --i) {
      char id[16];
      std::snprintf(id, sizeof id, "v%04d", i);
      ApplyOutcome out;
      Status st = s->ApplyChange(Set("visits", id, "account_id", "a", {H(static_cast<uint64_t>(i) + 1), kA}), &out);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    ASSERT_TRUE(tx.Commit().ok());
  }
  std::vector<std::string> ids;
  ASSERT_TRUE(s->Dump([&](const json& j) {
                 EXPECT_EQ(j.value("table", ""), "visits");
                 ids.push_back(j.value("id", ""));
               }).ok());
  ASSERT_EQ(ids.size(), static_cast<size_t>(kRows));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  EXPECT_EQ(ids.front(), "v0000");
  EXPECT_EQ(ids.back(), "v1099");
}

// ---- conflict records ---------------------------------------------------------

TEST_F(ReplicaStoreTest, ConcurrentLwwLoserIsRecordedAndCanBeResolved) {
  Store* s1 = OpenStore("one.db");
  Store* s2 = OpenStore("two.db");
  ASSERT_NE(s1, nullptr);
  ASSERT_NE(s2, nullptr);
  // Neither writer had seen the other (base 0): concurrent.
  Change a = Set("accounts", "a1", "phone", "111", {H(1), kA});
  Change b = Set("accounts", "a1", "phone", "222", {H(2), kHigh});
  ApplyAll(s1, {a, b});
  ApplyAll(s2, {b, a});
  for (Store* s : {s1, s2}) {
    json row;
    ASSERT_TRUE(s->GetRow("accounts", "a1", &row).ok());
    EXPECT_EQ(row.value("phone", json()), json("222"));
    auto cs = Conflicts(s, false);
    ASSERT_EQ(cs.size(), 1u);
    const ConflictRecord& r = cs[0].record;
    EXPECT_EQ(r.table, "accounts");
    EXPECT_EQ(r.row, "a1");
    EXPECT_EQ(r.column, "phone");
    EXPECT_EQ(r.kind, "lww");
    EXPECT_EQ(r.loser_value, json("111"));
    EXPECT_EQ(r.loser, a.stamp);
    EXPECT_EQ(r.winner_value, json("222"));
    EXPECT_EQ(r.winner, b.stamp);  // a node id with the top bit set survives SQLite
    EXPECT_FALSE(cs[0].resolved);
  }

  const int64_t id = Conflicts(s1, false).at(0).id;
  ASSERT_TRUE(s1->MarkConflictResolved(id).ok());
  EXPECT_TRUE(Conflicts(s1, false).empty());
  auto all = Conflicts(s1, true);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].resolved);
  EXPECT_EQ(all[0].id, id);
  StoredConflict got;
  ASSERT_TRUE(s1->GetConflict(id, &got).ok());
  EXPECT_TRUE(got.resolved);
  EXPECT_EQ(got.record.loser_value, json("111"));
  Status st = s1->GetConflict(id + 1000, &got);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();

  // The same losing write arriving again does not re-open the record.
  ApplyAll(s1, {a});
  EXPECT_TRUE(Conflicts(s1, false).empty());
  EXPECT_EQ(Conflicts(s1, true).size(), 1u);
  // The other replica's record is its own.
  EXPECT_EQ(Conflicts(s2, false).size(), 1u);
}

TEST_F(ReplicaStoreTest, LwwOverwriteOfASeenValueRecordsNothing) {
  Store* s1 = OpenStore("one.db");
  Store* s2 = OpenStore("two.db");
  ASSERT_NE(s1, nullptr);
  ASSERT_NE(s2, nullptr);
  Change a = Set("accounts", "a1", "phone", "111", {H(1), kA});
  Change b = Set("accounts", "a1", "phone", "222", {H(2), kB}, /*base=*/H(1));  // B had seen A
  ApplyAll(s1, {a, b});
  ApplyAll(s2, {b, a});
  for (Store* s : {s1, s2}) {
    json row;
    ASSERT_TRUE(s->GetRow("accounts", "a1", &row).ok());
    EXPECT_EQ(row.value("phone", json()), json("222"));
    EXPECT_TRUE(Conflicts(s, true).empty());
  }
}

// ---- row delete rule ------------------------------------------------------------

class ReplicaStoreDeleteTest : public ReplicaStoreTest {
 protected:
  static constexpr const char* kRow = "acct-1";

  // The change every replica has: the row's creation.
  Change Creation() const { return Set("accounts", kRow, "name", "Acme", {H(1), kCreator}); }

  VersionVector ContextOn(Store* s) {
    VersionVector ctx;
    Status st = s->RowContext(*schema_.Find("accounts"), kRow, &ctx);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return ctx;
  }

  // Applies `changes` in every order, each to a fresh store, and runs
  // `check` on each result.
  void InEveryOrder(const std::string& tag, const std::vector<Change>& changes,
                    const std::function<void(Store*, const std::string&)>& check) {
    std::vector<size_t> order(changes.size());
    std::iota(order.begin(), order.end(), 0);
    int n = 0;
    do {
      std::string label = tag + " order";
      for (size_t i : order) label += " " + std::to_string(i);
      Store* s = OpenStore(tag + "-" + std::to_string(n++) + ".db");
      ASSERT_NE(s, nullptr);
      for (size_t i : order) {
        Status st = Apply(s, changes[i]);
        ASSERT_TRUE(st.ok()) << label << ": " << st.ToString();
      }
      {
        SCOPED_TRACE(label);
        check(s, label);
      }
      CloseStore(s);
    } while (std::next_permutation(order.begin(), order.end()));
  }

  static void ExpectGone(Store* s) {
    json row;
    Status st = s->GetRow("accounts", kRow, &row);
    EXPECT_EQ(st.code(), Code::kDeleted) << st.ToString() << " " << row.dump();
    int64_t n = -1;
    ASSERT_TRUE(s->CountRows("accounts", &n).ok());
    EXPECT_EQ(n, 0);
    // The row's field states went with it.
    Status ps;
    Statement& q = s->db().Prepare("SELECT count(*) FROM fs_row_fields WHERE tbl='accounts' AND row_id=?", &ps);
    ASSERT_TRUE(ps.ok()) << ps.ToString();
    q.Bind(1, kRow);
    ASSERT_TRUE(q.Step());
    EXPECT_EQ(q.Int(0), 0);
    q.Reset();
  }

  static void ExpectOneDeletedRecord(Store* s, const std::string& column, const json& value, Stamp loser,
                                     Stamp winner) {
    auto cs = Conflicts(s, true);
    ASSERT_EQ(cs.size(), 1u);
    const ConflictRecord& r = cs[0].record;
    EXPECT_EQ(r.kind, "deleted");
    EXPECT_EQ(r.table, "accounts");
    EXPECT_EQ(r.row, kRow);
    EXPECT_EQ(r.column, column);
    EXPECT_EQ(r.loser_value, value);
    EXPECT_EQ(r.loser, loser);
    EXPECT_TRUE(r.winner_value.is_null()) << r.winner_value.dump();
    EXPECT_EQ(r.winner, winner);
    EXPECT_FALSE(cs[0].resolved);
  }

  // Tombstone (hlc, node, seen) of the row, read straight from the file.
  static std::tuple<int64_t, int64_t, std::string> Tombstone(Store* s) {
    Status st;
    Statement& q = s->db().Prepare("SELECT hlc, node, seen FROM fs_tombstones WHERE tbl='accounts' AND row_id=?", &st);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return {};
    q.Bind(1, kRow);
    std::tuple<int64_t, int64_t, std::string> out{0, 0, "<none>"};
    if (q.Step()) out = {q.Int(0), q.Int(1), q.Text(2)};
    q.Reset();
    return out;
  }
};

// P writes phone, which Q has not seen when it deletes the row. Both the
// write-then-delete replica (P) and the delete-then-write replica (Q), and a
// fresh replica in every order, end with the row gone and exactly one
// "deleted" record holding P's value. Run with P's stamp older and newer
// than the delete: the stamp does not matter, only what Q had seen.
TEST_F(ReplicaStoreDeleteTest, UnseenWriteIsKeptAsOneDeletedRecordInEitherOrder) {
  for (uint64_t p_at : {5u, 50u}) {
    SCOPED_TRACE("P writes at +" + std::to_string(p_at) + "ms, Q deletes at +20ms");
    const std::string tag = "unseen" + std::to_string(p_at);
    Store* p = OpenStore(tag + "-p.db");
    Store* q = OpenStore(tag + "-q.db");
    ASSERT_NE(p, nullptr);
    ASSERT_NE(q, nullptr);
    ApplyAll(p, {Creation()});
    ApplyAll(q, {Creation()});

    Change write = Set("accounts", kRow, "phone", "555-0100", {H(p_at), kP});
    ApplyAll(p, {write});

    VersionVector ctx = ContextOn(q);
    EXPECT_EQ(ctx, (VersionVector{{kCreator, H(1)}}));  // Q had not seen P's write
    Change del = Del("accounts", kRow, {H(20), kQ}, ctx);
    ApplyOutcome on_q;
    ASSERT_TRUE(Apply(q, del, &on_q).ok());
    EXPECT_TRUE(on_q.conflicts.empty());

    // Exchange: P receives the delete, Q receives the write.
    ApplyOutcome on_p, late;
    ASSERT_TRUE(Apply(p, del, &on_p).ok());
    EXPECT_TRUE(on_p.changed);
    EXPECT_EQ(on_p.conflicts.size(), 1u);
    ASSERT_TRUE(Apply(q, write, &late).ok());
    EXPECT_TRUE(late.refused_deleted);
    EXPECT_FALSE(late.changed);
    EXPECT_EQ(late.conflicts.size(), 1u);

    for (Store* s : {p, q}) {
      SCOPED_TRACE(s == p ? "replica P" : "replica Q");
      ExpectGone(s);
      ExpectOneDeletedRecord(s, "phone", json("555-0100"), write.stamp, del.stamp);
    }
    EXPECT_EQ(Tombstone(p), Tombstone(q));

    InEveryOrder(tag, {Creation(), write, del}, [&](Store* s, const std::string&) {
      ExpectGone(s);
      ExpectOneDeletedRecord(s, "phone", json("555-0100"), write.stamp, del.stamp);
    });
  }
}

// An mv field holding two concurrent values, only one of which the deleter
// had seen: each value is judged on its own, so exactly the unseen one is
// recorded, even though it is the older of the two.
TEST_F(ReplicaStoreDeleteTest, UnseenMvValueIsRecordedOnItsOwn) {
  Store* q = OpenStore("q.db");
  ASSERT_NE(q, nullptr);
  Change seen_note = Set("accounts", kRow, "notes", "seen by Q", {H(8), kCreator});
  Change unseen_note = Set("accounts", kRow, "notes", "not seen by Q", {H(6), kP});  // concurrent, older
  ApplyAll(q, {Creation(), seen_note});
  VersionVector ctx = ContextOn(q);
  EXPECT_FALSE(Covers(ctx, kP, H(6)));
  EXPECT_TRUE(Covers(ctx, kCreator, H(8)));
  Change del = Del("accounts", kRow, {H(20), kQ}, ctx);

  InEveryOrder("mv", {Creation(), seen_note, unseen_note, del}, [&](Store* s, const std::string&) {
    ExpectGone(s);
    ExpectOneDeletedRecord(s, "notes", json("not seen by Q"), unseen_note.stamp, del.stamp);
  });
}

// Q had seen P's write when it deleted: the write goes with the row and no
// record is made, whatever the order.
TEST_F(ReplicaStoreDeleteTest, WriteTheDeleterHadSeenLeavesNoRecord) {
  Store* p = OpenStore("p.db");
  Store* q = OpenStore("q.db");
  ASSERT_NE(p, nullptr);
  ASSERT_NE(q, nullptr);
  Change write = Set("accounts", kRow, "phone", "555-0100", {H(5), kP});
  ApplyAll(p, {Creation(), write});
  ApplyAll(q, {Creation(), write});
  VersionVector ctx = ContextOn(q);
  EXPECT_TRUE(Covers(ctx, kP, H(5)));
  EXPECT_TRUE(Covers(ctx, kCreator, H(1)));
  Change del = Del("accounts", kRow, {H(20), kQ}, ctx);
  ApplyAll(q, {del});
  ApplyAll(p, {del});
  ApplyOutcome again;
  ASSERT_TRUE(Apply(q, write, &again).ok());  // a late duplicate of the write
  EXPECT_TRUE(again.refused_deleted);
  EXPECT_TRUE(again.conflicts.empty());
  for (Store* s : {p, q}) {
    ExpectGone(s);
    EXPECT_TRUE(Conflicts(s, true).empty());
  }

  InEveryOrder("seen", {Creation(), write, del}, [&](Store* s, const std::string&) {
    ExpectGone(s);
    EXPECT_TRUE(Conflicts(s, true).empty());
  });
}

// Two deletes of one row: the tombstone is the greatest stamp and the union
// of both contexts in either order, so later writes are judged the same.
TEST_F(ReplicaStoreDeleteTest, TwoDeletesInEitherOrderLeaveTheSameTombstone) {
  // D1 is the later delete and had seen only the creation; D2 is earlier but
  // had also seen P's write at +5.
  constexpr NodeId kD1 = 0x41, kD2 = 0x42, kOther = 0x43;
  Change d1 = Del("accounts", kRow, {H(30), kD1}, {{kCreator, H(1)}});
  Change d2 = Del("accounts", kRow, {H(25), kD2}, {{kCreator, H(1)}, {kP, H(5)}});

  Store* s12 = OpenStore("d12.db");
  Store* s21 = OpenStore("d21.db");
  Store* s112 = OpenStore("d112.db");
  ASSERT_NE(s12, nullptr);
  ASSERT_NE(s21, nullptr);
  ASSERT_NE(s112, nullptr);
  ApplyAll(s12, {Creation(), d1, d2});
  ApplyAll(s21, {Creation(), d2, d1});
  ApplyAll(s112, {Creation(), d1, d1, d2, d2});

  VersionVector want_seen = {{kCreator, H(1)}, {kP, H(5)}, {kD1, H(30)}, {kD2, H(25)}};
  auto want = std::make_tuple(static_cast<int64_t>(H(30)), static_cast<int64_t>(kD1),
                              VersionVectorToJson(want_seen).dump());
  EXPECT_EQ(Tombstone(s12), want);
  EXPECT_EQ(Tombstone(s21), want);
  EXPECT_EQ(Tombstone(s112), want);

  // Later writes: P's +5 was seen (by D2), P's +6 and another node's +2 were not.
  Change seen = Set("accounts", kRow, "phone", "seen", {H(5), kP});
  Change unseen_p = Set("accounts", kRow, "phone", "unseen", {H(6), kP}, H(5));
  Change unseen_other = Set("accounts", kRow, "employees", 7, {H(2), kOther});
  for (Store* s : {s12, s21, s112}) {
    SCOPED_TRACE(s == s12 ? "d1,d2" : s == s21 ? "d2,d1" : "d1,d1,d2,d2");
    ApplyOutcome out;
    ASSERT_TRUE(Apply(s, seen, &out).ok());
    EXPECT_TRUE(out.refused_deleted);
    EXPECT_TRUE(out.conflicts.empty());
    ASSERT_TRUE(Apply(s, unseen_p, &out).ok());
    EXPECT_TRUE(out.refused_deleted);
    EXPECT_EQ(out.conflicts.size(), 1u);
    ASSERT_TRUE(Apply(s, unseen_other, &out).ok());
    EXPECT_EQ(out.conflicts.size(), 1u);

    ExpectGone(s);
    auto cs = Conflicts(s, true);
    ASSERT_EQ(cs.size(), 2u);
    std::set<std::pair<std::string, std::string>> got;
    for (const auto& c : cs) {
      EXPECT_EQ(c.record.kind, "deleted");
      EXPECT_EQ(c.record.winner, (Stamp{H(30), kD1}));  // the greatest delete stamp
      got.insert({c.record.column, c.record.loser_value.dump()});
    }
    EXPECT_EQ(got, (std::set<std::pair<std::string, std::string>>{{"phone", "\"unseen\""}, {"employees", "7"}}));
  }
}

// ---- outbox and meta -------------------------------------------------------------

TEST_F(ReplicaStoreTest, OutboxAppendPeekRemoveCountAndSurvivesReopen) {
  Store* s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  std::vector<Change> cs = {
      Set("accounts", "a1", "phone", "1", {H(1), kA}),
      Set("accounts", "a1", "notes", "n", {H(2), kA}, 0, {{kB, H(1)}}),
      Set("accounts", "a2", "phone", "2", {H(3), kHigh}, H(1)),
      Del("accounts", "a3", {H(4), kA}, {{kA, H(3)}}),
  };
  int64_t n = -1;
  ASSERT_TRUE(s->OutboxCount(&n).ok());
  EXPECT_EQ(n, 0);
  for (const auto& c : cs) ASSERT_TRUE(s->OutboxAppend(c).ok());
  ASSERT_TRUE(s->OutboxCount(&n).ok());
  EXPECT_EQ(n, 4);

  std::vector<Change> got;
  std::vector<int64_t> seqs;
  ASSERT_TRUE(s->OutboxPeek(2, &got, &seqs).ok());
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(seqs.size(), 2u);
  EXPECT_LT(seqs[0], seqs[1]);
  EXPECT_EQ(ChangeToJson(got[0]), ChangeToJson(cs[0]));
  EXPECT_EQ(ChangeToJson(got[1]), ChangeToJson(cs[1]));
  EXPECT_EQ(got[1].ctx, cs[1].ctx);
  ASSERT_TRUE(s->OutboxCount(&n).ok());
  EXPECT_EQ(n, 4);  // peeking removes nothing

  ASSERT_TRUE(s->OutboxRemoveThrough(seqs[0]).ok());
  ASSERT_TRUE(s->OutboxCount(&n).ok());
  EXPECT_EQ(n, 3);
  const int64_t second = seqs[1];

  CloseStore(s);
  s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->OutboxCount(&n).ok());
  EXPECT_EQ(n, 3);
  ASSERT_TRUE(s->OutboxPeek(100, &got, &seqs).ok());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(seqs[0], second);
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(ChangeToJson(got[i]), ChangeToJson(cs[i + 1])) << i;
  EXPECT_EQ(got[1].stamp.node, kHigh);
  EXPECT_EQ(got[2].op, Op::kDelete);

  ASSERT_TRUE(s->OutboxRemoveThrough(seqs[1]).ok());
  ASSERT_TRUE(s->OutboxCount(&n).ok());
  EXPECT_EQ(n, 1);
  const int64_t last = seqs.back();
  ASSERT_TRUE(s->OutboxRemoveThrough(last).ok());
  ASSERT_TRUE(s->OutboxCount(&n).ok());
  EXPECT_EQ(n, 0);
  ASSERT_TRUE(s->OutboxPeek(10, &got, &seqs).ok());
  EXPECT_TRUE(got.empty());
  EXPECT_TRUE(seqs.empty());

  // Positions are never reused, even once the outbox has drained.
  ASSERT_TRUE(s->OutboxAppend(cs[0]).ok());
  ASSERT_TRUE(s->OutboxPeek(10, &got, &seqs).ok());
  ASSERT_EQ(seqs.size(), 1u);
  EXPECT_GT(seqs[0], last);
}

// A corrupt outbox entry is reported as corruption naming its position.
TEST_F(ReplicaStoreTest, OutboxPeekNamesTheCorruptEntry) {
  Store* s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->OutboxAppend(Set("accounts", "a1", "phone", "1", {H(1), kA})).ok());
  ASSERT_TRUE(s->db().Exec(R"(INSERT INTO fs_outbox(change) VALUES('{"not": "a change"}'))").ok());
  std::vector<Change> got;
  std::vector<int64_t> seqs;
  Status st = s->OutboxPeek(10, &got, &seqs);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("outbox entry 2"), std::string::npos) << st.message();
}

TEST_F(ReplicaStoreTest, MetaGetAndSet) {
  Store* s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  std::string v = "untouched";
  bool found = true;
  ASSERT_TRUE(s->GetMeta("cursor", &v, &found).ok());
  EXPECT_FALSE(found);

  ASSERT_TRUE(s->SetMeta("cursor", "42").ok());
  ASSERT_TRUE(s->GetMeta("cursor", &v, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_EQ(v, "42");
  ASSERT_TRUE(s->SetMeta("cursor", "43").ok());  // overwrite, not a second row
  ASSERT_TRUE(s->GetMeta("cursor", &v, &found).ok());
  EXPECT_EQ(v, "43");

  int64_t i = 0;
  ASSERT_TRUE(s->GetMetaInt("cursor", 0, &i).ok());
  EXPECT_EQ(i, 43);
  ASSERT_TRUE(s->GetMetaInt("absent", -7, &i).ok());
  EXPECT_EQ(i, -7);
  const int64_t hlc = static_cast<int64_t>(H(123));
  ASSERT_TRUE(s->SetMetaInt("hlc", hlc).ok());
  ASSERT_TRUE(s->SetMetaInt("negative", -5).ok());
  ASSERT_TRUE(s->SetMeta("empty", "").ok());

  CloseStore(s);
  s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->GetMetaInt("hlc", 0, &i).ok());
  EXPECT_EQ(i, hlc);
  ASSERT_TRUE(s->GetMetaInt("negative", 0, &i).ok());
  EXPECT_EQ(i, -5);
  ASSERT_TRUE(s->GetMeta("cursor", &v, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_EQ(v, "43");
  ASSERT_TRUE(s->GetMeta("empty", &v, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_EQ(v, "");
  // Open itself keeps the schema in fs_meta.
  ASSERT_TRUE(s->GetMeta("schema_fingerprint", &v, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_EQ(v, schema_.fingerprint());
  ASSERT_TRUE(s->GetMeta("schema", &v, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_EQ(json::parse(v), schema_.document());
}

// ---- ApplyRow: a run of writes to one row, merged together -----------------

// Everything a merge leaves behind, as text: the rows, the field metadata,
// the tombstones and the conflict records.
std::string StoreImage(Store* s) {
  std::string out;
  Status st = s->Dump([&](const json& row) { out += row.dump() + "\n"; });
  EXPECT_TRUE(st.ok()) << st.ToString();
  for (const char* sql : {"SELECT tbl, row_id, hex(fields), '', '', '', '' FROM fs_row_fields ORDER BY tbl, row_id",
                          "SELECT tbl, row_id, hlc, node, seen, '', '' FROM fs_tombstones ORDER BY tbl, row_id",
                          "SELECT tbl, row_id, col, kind, loser_value || ' ' || loser_hlc || ' ' || loser_node, "
                          "winner_value || ' ' || winner_hlc || ' ' || winner_node, resolved FROM fs_conflicts "
                          "ORDER BY id"}) {
    Statement& q = s->db().Prepare(sql, &st);
    EXPECT_TRUE(st.ok()) << st.ToString();
    while (q.Step()) {
      for (int i = 0; i < 7; ++i) out += q.Text(i) + "|";
      out += "\n";
    }
    EXPECT_TRUE(q.status().ok()) << q.status().ToString();
    q.Reset();
  }
  return out;
}

// Two offline writers edit the same rows in every merge policy (and one
// deletes some); their interleaved changes reach one store change by change
// (ApplyChange) and another run by run (ApplyRow). Both must end identical,
// conflicts included, and agree on which runs changed their row.
TEST_F(ReplicaStoreTest, ApplyRowOfARunEndsExactlyAsApplyChangeOnEach) {
  Store* w[2] = {OpenStore("w1.db"), OpenStore("w2.db")};
  Store* one = OpenStore("by_change.db");
  Store* runs = OpenStore("by_row.db");
  ASSERT_TRUE(w[0] && w[1] && one && runs);
  HybridClock clocks[2] = {HybridClock(kA), HybridClock(kB)};
  std::mt19937 rng(20261202);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const TableDef* samples = schema_.Find("samples");
  const TableDef* accounts = schema_.Find("accounts");
  auto random_value = [&](const ColumnDef& col) -> json {
    if (pick(10) == 0) return nullptr;
    switch (col.type) {
      case ColumnType::kInteger: return col.merge == MergePolicy::kCounter ? json(pick(50)) : json(pick(1000) - 500);
      case ColumnType::kReal: return pick(400) / 4.0;
      case ColumnType::kBoolean: return pick(2) == 1;
      case ColumnType::kEnum: return col.values[pick(static_cast<int>(col.values.size()))];
      case ColumnType::kDate: return "2026-12-0" + std::to_string(1 + pick(9));
      case ColumnType::kSet: {
        json set = json::array();
        for (const char* m : {"a", "b", "c", "d"})
          if (pick(2)) set.push_back(m);
        return set;
      }
      default: return "v" + std::to_string(pick(20));
    }
  };
  std::vector<Change> stream;
  for (int step = 0; step < 400; ++step) {
    int who = pick(2);
    Store* me = w[who];
    const TableDef* t = pick(4) == 0 ? accounts : samples;
    std::string row = "r" + std::to_string(pick(6));
    bool gone = false;
    ASSERT_TRUE(me->IsDeleted(t->name, row, &gone).ok());
    if (gone) continue;
    std::vector<Change> made;
    if (pick(40) == 0) {
      VersionVector seen;
      ASSERT_TRUE(me->RowContext(*t, row, &seen).ok());
      made.push_back(Del(t->name, row, {clocks[who].Now(), clocks[who].node()}, seen));
    } else {
      int fields = 1 + pick(4);
      for (int f = 0; f < fields; ++f) {
        const ColumnDef& col = t->columns[pick(static_cast<int>(t->columns.size()))];
        FieldState cur;
        ASSERT_TRUE(me->LoadField(t->name, row, col, &cur).ok());
        std::vector<Change> local;
        // A state field only moves forward: a backward pick is refused, skip it.
        if (!MakeLocalChanges(*t, col, cur, row, random_value(col), &clocks[who], &local).ok()) continue;
        for (const Change& c : local) ASSERT_TRUE(Apply(me, c).ok());
        made.insert(made.end(), local.begin(), local.end());
      }
    }
    stream.insert(stream.end(), made.begin(), made.end());
  }
  ASSERT_GT(stream.size(), 500u);

  size_t run_count = 0, long_runs = 0;
  Transaction tx_one(&one->db()), tx_runs(&runs->db());
  for (size_t i = 0; i < stream.size();) {
    size_t end = i + 1;
    if (stream[i].op == Op::kSet)
      while (end < stream.size() && stream[end].op == Op::kSet && stream[end].table == stream[i].table &&
             stream[end].row == stream[i].row)
        ++end;
    bool changed_one = false;
    size_t conflicts_one = 0;
    for (size_t k = i; k < end; ++k) {
      ApplyOutcome out;
      ASSERT_TRUE(one->ApplyChange(stream[k], &out).ok());
      changed_one |= out.changed;
      conflicts_one += out.conflicts.size();
    }
    ApplyOutcome out;
    Status st = stream[i].op == Op::kSet ? runs->ApplyRow(std::span<const Change>(&stream[i], end - i), &out)
                                         : runs->ApplyChange(stream[i], &out);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(out.changed, changed_one) << "run at " << i;
    EXPECT_EQ(out.conflicts.size(), conflicts_one) << "run at " << i;
    ++run_count;
    if (end - i > 1) ++long_runs;
    i = end;
  }
  ASSERT_TRUE(tx_one.Commit().ok());
  ASSERT_TRUE(tx_runs.Commit().ok());
  EXPECT_GT(long_runs, 100u) << "of " << run_count << " runs";
  std::string image = StoreImage(one);
  EXPECT_NE(image.find("deleted"), std::string::npos) << "no write reached a deleted row";
  EXPECT_NE(image.find("|lww|"), std::string::npos) << "no concurrent write lost";
  EXPECT_EQ(StoreImage(runs), image);
}

TEST_F(ReplicaStoreTest, ApplyRowRefusesAMixedRunAndWritesNothing) {
  Store* s = OpenStore("r.db");
  ASSERT_NE(s, nullptr);
  const std::string empty = StoreImage(s);
  Stamp a{H(1), kA}, b{H(2), kA};
  std::vector<std::vector<Change>> bad = {
      {Set("accounts", "a1", "name", "Metro", a), Set("accounts", "a2", "name", "Carrefour", b)},
      {Set("accounts", "a1", "name", "Metro", a), Set("visits", "a1", "summary", "ok", b)},
      {Set("accounts", "a1", "name", "Metro", a), Del("accounts", "a1", b, {})},
      {Set("accounts", "a1", "name", "Metro", a), Set("accounts", "a1", "no_such_column", "x", b)},
  };
  const Code want[] = {Code::kInvalidArgument, Code::kInvalidArgument, Code::kInvalidArgument, Code::kNotFound};
  for (size_t i = 0; i < bad.size(); ++i) {
    Transaction tx(&s->db());
    ApplyOutcome out;
    Status st = s->ApplyRow(bad[i], &out);
    EXPECT_EQ(st.code(), want[i]) << i << ": " << st.ToString();
    EXPECT_FALSE(out.changed) << i;
    ASSERT_TRUE(tx.Commit().ok());
    EXPECT_EQ(StoreImage(s), empty) << i;
  }
}

}  // namespace
}  // namespace fieldsync::store

namespace fieldsync::store {
namespace {

// Every row's merge state as text, read through ReadState: what a snapshot
// would send, stamps and policy states included.
std::string StateImage(Store* s) {
  std::vector<RowState> rows;
  bool more = false;
  Status st = s->ReadState("", "", 100000, &rows, &more);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(more);
  std::string out;
  for (const auto& r : rows) out += RowStateToJson(r).dump() + "\n";
  return out;
}

// Format 2's fs_row_fields entry, names and stamps written out in full
// (docs/storage.md 6.2), as an older build wrote it.
std::string FormatTwoBlob(const FieldList& fields) {
  auto put = [](uint64_t v, size_t bytes, bool varint, std::string* out) {
    if (varint) {
      for (; v >= 0x80; v >>= 7) out->push_back(static_cast<char>((v & 0x7f) | 0x80));
      out->push_back(static_cast<char>(v));
      return;
    }
    for (size_t i = 0; i < bytes; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
  };
  std::string out;
  for (const auto& [name, f] : fields) {  // ReadState gives them in name order
    out.push_back(static_cast<char>(name.size()));
    out += name;
    put(f.stamp.hlc, 8, false, &out);
    put(f.stamp.node, 8, false, &out);
    put(f.base, 0, true, &out);
    std::string crdt = f.crdt.is_null() ? "" : f.crdt.dump();
    put(f.crdt.is_null() ? 0 : crdt.size() + 1, 0, true, &out);
    out += crdt;
  }
  return out;
}

// A file of format 1 kept one fs_fields row per field; format 2, one
// fs_row_fields entry per row with names and stamps in full. Opening either
// rewrites the entries in format 3 (columns numbered in fs_columns, a
// column no schema declares any more included) and writes format 3; the
// rows, stamps, policy states and conflicts read back exactly as before,
// and merging goes on from them.
// An mv field's single write is implied, not stored. A file from before
// 2026-12-07 (here planted by installing a snapshot row that spells it out)
// reads, merges and rewrites to exactly what a fresh replica holds.
TEST_F(ReplicaStoreTest, AnMvSingleWriteIsImpliedAndAnOlderSpelledOutOneReadsTheSame) {
  Store* fresh = OpenStore("fresh.db");
  Store* older = OpenStore("older.db");
  ASSERT_NE(fresh, nullptr);
  ASSERT_NE(older, nullptr);
  Change note = Set("accounts", "a1", "notes", "shelf empty on Monday", {H(1), kA});
  Change name = Set("accounts", "a1", "name", "Hypermart", {H(1), kA});
  ASSERT_TRUE(Apply(fresh, name).ok());
  ASSERT_TRUE(Apply(fresh, note).ok());
  RowState planted;
  planted.table = "accounts";
  planted.row = "a1";
  for (const Change* c : {&name, &note}) {
    FieldState f;
    f.present = true;
    f.stamp = c->stamp;
    f.value = c->value;
    planted.fields.emplace_back(c->column, f);
  }
  planted.fields[1].second.crdt = SpelledOutSingleWrite(planted.fields[1].second);
  ASSERT_TRUE(older->InstallState({planted}).ok());
  auto blob_size = [](Store* s) {
    Status st;
    Statement& q = s->db().Prepare("SELECT length(fields) FROM fs_row_fields WHERE tbl='accounts' AND row_id='a1'", &st);
    EXPECT_TRUE(st.ok());
    int64_t n = q.Step() ? q.Int(0) : -1;
    q.Reset();
    return n;
  };
  const int64_t short_form = blob_size(fresh), long_form = blob_size(older);
  EXPECT_GT(long_form, short_form + 60) << "the spelled-out write is what the fresh replica leaves out";
  const ColumnDef& col = *schema_.Find("accounts")->Find("notes");
  for (Store* s : {fresh, older}) {
    FieldState f;
    ASSERT_TRUE(s->LoadField("accounts", "a1", col, &f).ok());
    EXPECT_TRUE(f.present);
    EXPECT_TRUE(f.crdt.is_null()) << f.crdt.dump();
    EXPECT_EQ(f.value, note.value);
  }
  EXPECT_EQ(StateImage(older), StateImage(fresh));
  // A concurrent note conflicts with the implied write on both.
  Change other = Set("accounts", "a1", "notes", "promo display missing", {H(2), kB});
  for (Store* s : {fresh, older}) ASSERT_TRUE(Apply(s, other).ok());
  EXPECT_EQ(StateImage(older), StateImage(fresh));
  json row;
  ASSERT_TRUE(older->GetRow("accounts", "a1", &row).ok());
  EXPECT_EQ(row["_conflicts"]["notes"], json::array({note.value, other.value})) << row.dump();
  // A write of another column keeps the older entry's note as it is in the
  // file (the merge reads no values), and reads as the fresh replica's.
  Store* again = OpenStore("again.db");
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(again->InstallState({planted}).ok());
  ASSERT_TRUE(Apply(again, Set("accounts", "a1", "phone", "021-1111", {H(3), kA})).ok());
  Store* fresh2 = OpenStore("fresh2.db");
  ASSERT_NE(fresh2, nullptr);
  for (const Change& c : {name, note, Set("accounts", "a1", "phone", "021-1111", {H(3), kA})})
    ASSERT_TRUE(Apply(fresh2, c).ok());
  EXPECT_GT(blob_size(again), blob_size(fresh2));
  EXPECT_EQ(StateImage(again), StateImage(fresh2));
}

TEST_F(ReplicaStoreTest, AFormatOneFileIsConvertedOnOpenAndMergesOn) { ConvertsFromOlderFormat(1); }
TEST_F(ReplicaStoreTest, AFormatTwoFileIsConvertedOnOpenAndMergesOn) { ConvertsFromOlderFormat(2); }

void ReplicaStoreTest::ConvertsFromOlderFormat(int old_format) {
  Store* s = OpenStore("old.db");
  ASSERT_TRUE(s);
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "name", "Metro", {H(1), kA})).ok());
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "employees", 40, {H(2), kHigh})).ok());
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "notes", "north door", {H(3), kA})).ok());
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "notes", "side door", {H(3), kB})).ok());  // an mv conflict
  Change add = Set("samples", "s1", "s", "a", {H(4), kA});
  add.op = Op::kAdd;
  ASSERT_TRUE(Apply(s, add).ok());
  Change inc = Set("samples", "s1", "n", json::array({5, 0}), {H(5), kB});
  inc.op = Op::kIncrement;
  ASSERT_TRUE(Apply(s, inc).ok());
  ASSERT_TRUE(Apply(s, Set("accounts", "a2", "name", "Gone", {H(6), kA})).ok());
  ASSERT_TRUE(Apply(s, Del("accounts", "a2", {H(7), kB}, {{kA, H(6)}})).ok());
  {  // Enough rows that the conversion works in more than one batch.
    Transaction tx(&s->db());
    for (int i = 0; i < 1200; ++i) {
      ApplyOutcome out;
      ASSERT_TRUE(s->ApplyChange(Set("samples", "b" + std::to_string(10000 + i), "i", i, {H(100 + i), kA}), &out).ok());
    }
    ASSERT_TRUE(tx.Commit().ok());
  }
  const std::string state = StateImage(s);
  ASSERT_NE(state.find("side door"), std::string::npos);
  std::string dump;
  ASSERT_TRUE(s->Dump([&](const json& r) { dump += r.dump() + "\n"; }).ok());
  ASSERT_NE(dump.find("_conflicts"), std::string::npos);
  std::vector<RowState> rows;
  bool more = false;
  ASSERT_TRUE(s->ReadState("", "", 100000, &rows, &more).ok());
  ASSERT_EQ(rows.size(), 1203u);
  CloseStore(s);

  // A column an earlier schema had: its field state is kept as it is.
  FieldState legacy;
  legacy.present = true;
  legacy.stamp = {H(8), kB};
  legacy.base = H(1);
  legacy.crdt = json::array({1, "x"});
  ASSERT_EQ(rows[0].row, "a1");
  auto& a1 = rows[0].fields;
  a1.insert(std::find_if(a1.begin(), a1.end(), [](const auto& f) { return f.first > "legacy_col"; }),
            {"legacy_col", legacy});
  std::string with_legacy = state;
  with_legacy.replace(0, with_legacy.find('\n'), RowStateToJson(rows[0]).dump());
  if (old_format == 2) {
    // Back to format 2: one entry per row, names and stamps in full, no fs_columns.
    Database db;
    ASSERT_TRUE(db.Open(Path("old.db")).ok());
    Status st;
    for (const auto& r : rows) {
      if (r.deleted) continue;
      Statement& up = db.Prepare("UPDATE fs_row_fields SET fields=? WHERE tbl=? AND row_id=?", &st);
      ASSERT_TRUE(st.ok()) << st.ToString();
      std::string blob = FormatTwoBlob(r.fields);
      up.BindBlobRef(1, blob).Bind(2, r.table).Bind(3, r.row);
      ASSERT_TRUE(up.Run().ok());
      ASSERT_EQ(db.Changes(), 1);
    }
    ASSERT_TRUE(db.Exec("DROP TABLE fs_columns; UPDATE fs_meta SET value='2' WHERE key='format'").ok());
  } else {  // Back to format 1, as an older build wrote it.
    Database db;
    ASSERT_TRUE(db.Open(Path("old.db")).ok());
    ASSERT_TRUE(db.Exec("CREATE TABLE fs_fields(tbl TEXT NOT NULL, row_id TEXT NOT NULL, col TEXT NOT NULL, "
                        "hlc INTEGER NOT NULL, node INTEGER NOT NULL, base INTEGER NOT NULL, crdt TEXT, "
                        "PRIMARY KEY(tbl, row_id, col)) WITHOUT ROWID")
                    .ok());
    Status st;
    for (const auto& r : rows)
      for (const auto& [col, f] : r.fields) {
        Statement& ins = db.Prepare("INSERT INTO fs_fields VALUES(?,?,?,?,?,?,?)", &st);
        ASSERT_TRUE(st.ok()) << st.ToString();
        ins.Bind(1, r.table).Bind(2, r.row).Bind(3, col).Bind(4, f.stamp.hlc).Bind(5, f.stamp.node).Bind(6, f.base);
        if (f.crdt.is_null()) ins.BindNull(7);
        else ins.Bind(7, f.crdt.dump());
        ASSERT_TRUE(ins.Run().ok());
      }
    ASSERT_TRUE(db.Exec("DROP TABLE fs_row_fields; UPDATE fs_meta SET value='1' WHERE key='format'").ok());
  }

  s = OpenStore("old.db");
  ASSERT_TRUE(s);
  EXPECT_EQ(StateImage(s), with_legacy);
  std::string after;
  ASSERT_TRUE(s->Dump([&](const json& r) { after += r.dump() + "\n"; }).ok());
  EXPECT_EQ(after, dump);
  Status st;
  Statement& q = s->db().Prepare("SELECT count(*) FROM sqlite_master WHERE name='fs_fields'", &st);
  ASSERT_TRUE(q.Step());
  EXPECT_EQ(q.Int(0), 0);
  q.Reset();
  int64_t format = 0;
  ASSERT_TRUE(s->GetMetaInt("format", 0, &format).ok());
  EXPECT_EQ(format, 3);
  // The stamps came across: an older write loses, a newer one wins, and the
  // row's other fields stay.
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "name", "Older", {H(0), kB})).ok());
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "employees", 41, {H(9), kA}, H(2))).ok());
  json row;
  ASSERT_TRUE(s->GetRow("accounts", "a1", &row).ok());
  EXPECT_EQ(row["name"], "Metro");
  EXPECT_EQ(row["employees"], 41);
  EXPECT_EQ(row["_conflicts"]["notes"].size(), 2u) << row.dump();
  // The old column's state went through the merges untouched.
  ASSERT_TRUE(s->ReadState("", "", 1, &rows, &more).ok());
  ASSERT_EQ(rows.size(), 1u);
  auto kept = std::find_if(rows[0].fields.begin(), rows[0].fields.end(), [](const auto& f) { return f.first == "legacy_col"; });
  ASSERT_NE(kept, rows[0].fields.end());
  EXPECT_EQ(kept->second.stamp, legacy.stamp);
  EXPECT_EQ(kept->second.base, legacy.base);
  EXPECT_EQ(kept->second.crdt, legacy.crdt);
}

// Column numbers survive schema changes: a column added (anywhere in the
// list) gets the next number, a column dropped keeps its number, and every
// entry means under each schema what it meant when it was written.
TEST_F(ReplicaStoreTest, ColumnNumbersOutliveSchemaChanges) {
  auto numbers = [&](Store* s) {
    std::map<std::string, int64_t> out;
    Status st;
    Statement& q = s->db().Prepare("SELECT name, idx FROM fs_columns WHERE tbl='accounts'", &st);
    while (q.Step()) out[q.Text(0)] = q.Int(1);
    q.Reset();
    return out;
  };
  auto fields = [&](Store* s) {
    std::vector<RowState> rows;
    bool more = false;
    EXPECT_TRUE(s->ReadState("accounts", "", 1, &rows, &more).ok());
    std::map<std::string, Hlc> out;
    if (!rows.empty())
      for (const auto& [name, f] : rows[0].fields) out[name] = f.stamp.hlc;
    return out;
  };
  Store* s = OpenStore("evolve.db");
  ASSERT_TRUE(s);
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "name", "Metro", {H(1), kA})).ok());
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "phone", "555", {H(2), kA})).ok());
  const auto before = numbers(s);
  ASSERT_EQ(before.size(), 5u);
  CloseStore(s);

  Schema next;
  ASSERT_TRUE(Schema::ParseText(R"({"name": "store_test", "version": 2, "tables": [
    {"name": "accounts", "columns": [
      {"name": "zip", "type": "text"}, {"name": "name", "type": "text"},
      {"name": "notes", "type": "text", "merge": "mv"}]}]})",
                                &next)
                  .ok());
  s = OpenStore("evolve.db", &next);
  ASSERT_TRUE(s);
  auto after = numbers(s);
  ASSERT_EQ(after.size(), 6u);
  for (const auto& [name, idx] : before) EXPECT_EQ(after[name], idx) << name;
  EXPECT_EQ(after["zip"], 5);
  EXPECT_EQ(fields(s), (std::map<std::string, Hlc>{{"name", H(1)}, {"phone", H(2)}}));
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "zip", "410000", {H(3), kB})).ok());
  EXPECT_EQ(fields(s), (std::map<std::string, Hlc>{{"name", H(1)}, {"phone", H(2)}, {"zip", H(3)}}));
  CloseStore(s);

  s = OpenStore("evolve.db");  // and back
  ASSERT_TRUE(s);
  EXPECT_EQ(numbers(s), after);
  EXPECT_EQ(fields(s), (std::map<std::string, Hlc>{{"name", H(1)}, {"phone", H(2)}, {"zip", H(3)}}));
  json row;
  ASSERT_TRUE(s->GetRow("accounts", "a1", &row).ok());
  EXPECT_EQ(row["phone"], "555");
  CloseStore(s);
}

// A format-2 entry that does not decode stops the conversion: the open
// fails with corruption and the file is left exactly as it was, format 2.
TEST_F(ReplicaStoreTest, ADamagedFormatTwoEntryLeavesTheFileUnconverted) {
  Store* s = OpenStore("damaged.db");
  ASSERT_TRUE(s);
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "name", "Metro", {H(1), kA})).ok());
  ASSERT_TRUE(Apply(s, Set("accounts", "a2", "name", "Hyper", {H(2), kA})).ok());
  CloseStore(s);
  auto image = [&](Database& db) {
    std::string out;
    Status st;
    for (const char* sql : {"SELECT row_id || ':' || hex(fields) FROM fs_row_fields ORDER BY row_id",
                            "SELECT value FROM fs_meta WHERE key='format'",
                            "SELECT count(*) FROM sqlite_master WHERE name='fs_columns'"}) {
      Statement& q = db.Prepare(sql, &st);
      EXPECT_TRUE(st.ok()) << st.ToString();
      while (q.Step()) out += q.Text(0) + "\n";
      q.Reset();
    }
    return out;
  };
  std::string before;
  {
    Database db;
    ASSERT_TRUE(db.Open(Path("damaged.db")).ok());
    Status st;
    Statement& up = db.Prepare("UPDATE fs_row_fields SET fields=? WHERE row_id=?", &st);
    std::string good = FormatTwoBlob({{"name", FieldState{}}});  // a whole entry for a1
    up.BindBlobRef(1, good).Bind(2, "a1");
    ASSERT_TRUE(up.Run().ok());
    ASSERT_TRUE(db.Exec("UPDATE fs_row_fields SET fields=x'046e616d65' WHERE row_id='a2'; DROP TABLE fs_columns; "
                        "UPDATE fs_meta SET value='2' WHERE key='format'")
                    .ok());
    before = image(db);
  }
  Store reopened;
  Status st = reopened.Open(Path("damaged.db"), schema_);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("accounts/a2"), std::string::npos) << st.ToString();
  Database db;
  ASSERT_TRUE(db.Open(Path("damaged.db")).ok());
  EXPECT_EQ(image(db), before);
  EXPECT_NE(before.find("\n2\n0\n"), std::string::npos) << before;
}

// A row's packed fields that do not decode are reported as corruption, by
// reads and by merges, and the merge writes nothing.
TEST_F(ReplicaStoreTest, PackedFieldsThatDoNotDecodeAreCorruption) {
  Store* s = OpenStore("bad.db");
  ASSERT_TRUE(s);
  ASSERT_TRUE(Apply(s, Set("accounts", "a1", "name", "Metro", {H(1), kA})).ok());
  ASSERT_TRUE(s->db().Exec("UPDATE fs_row_fields SET fields = x'046e616d65' WHERE row_id='a1'").ok());
  FieldState f;
  Status st = s->LoadField("accounts", "a1", *schema_.Find("accounts")->Find("name"), &f);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("accounts/a1"), std::string::npos) << st.ToString();
  ApplyOutcome out;
  st = s->ApplyChange(Set("accounts", "a1", "name", "New", {H(2), kA}), &out);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  std::vector<RowState> rows;
  bool more = false;
  EXPECT_EQ(s->ReadState("", "", 10, &rows, &more).code(), Code::kCorruption);
  json row;
  EXPECT_EQ(s->GetRow("accounts", "a1", &row).code(), Code::kCorruption);  // it reads the mv column's state
  Statement& q = s->db().Prepare("SELECT name FROM accounts WHERE id='a1'", &st);
  ASSERT_TRUE(q.Step());
  EXPECT_EQ(q.Text(0), "Metro");  // the refused merge wrote nothing
  q.Reset();
}

// The column numbers are the key to every entry: a file whose fs_columns
// lost one (or whose last number moved) is refused when opened, not misread.
TEST_F(ReplicaStoreTest, ColumnNumbersWithAGapAreRefusedOnOpen) {
  for (const char* damage : {"DELETE FROM fs_columns WHERE tbl='accounts' AND idx=1",
                             "UPDATE fs_columns SET idx=idx+1 WHERE tbl='accounts' AND idx=(SELECT max(idx) FROM "
                             "fs_columns WHERE tbl='accounts')"}) {
    std::string name = std::string("cols") + std::to_string(damage[0]) + ".db";
    Store* s = OpenStore(name);
    ASSERT_TRUE(s);
    ASSERT_TRUE(Apply(s, Set("accounts", "a1", "name", "Metro", {H(1), kA})).ok());
    Status st;
    Statement& q = s->db().Prepare("SELECT count(*) FROM fs_columns WHERE tbl='accounts'", &st);
    ASSERT_TRUE(q.Step());
    EXPECT_EQ(q.Int(0), static_cast<int64_t>(schema_.Find("accounts")->columns.size()));
    q.Reset();
    ASSERT_TRUE(s->db().Exec(damage).ok());
    CloseStore(s);
    Store reopened;
    st = reopened.Open(Path(name), schema_);
    EXPECT_EQ(st.code(), Code::kCorruption) << damage << ": " << st.ToString();
  }
}

}  // namespace
}  // namespace fieldsync::store
