// Schema parsing and value checking: what a schema document may declare, and
// which values each column type accepts.
#include "sync/schema.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fieldsync {
namespace {

constexpr const char* kValidSchema = R"({
  "name": "field_sales", "version": 3,
  "tables": [
    {"name": "accounts", "columns": [
      {"name": "name", "type": "text"},
      {"name": "visit_count", "type": "integer", "merge": "counter"}]},
    {"name": "visits",
     "parent": {"column": "account_id", "table": "accounts"},
     "columns": [
      {"name": "account_id", "type": "text", "references": "accounts"},
      {"name": "notes", "type": "text", "merge": "mv", "max_length": 8},
      {"name": "stage", "type": "enum", "merge": "state", "values": ["planned", "visited", "closed"]},
      {"name": "tags", "type": "set", "merge": "orset", "values": ["hot", "cold"]},
      {"name": "on_date", "type": "date"}]},
    {"name": "products", "access": "reference", "columns": [
      {"name": "price", "type": "real", "max_length": 100000}]}
  ]})";

TEST(SchemaParse, ParsesValidSchema) {
  Schema s;
  Status st = Schema::ParseText(kValidSchema, &s);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(s.name(), "field_sales");
  EXPECT_EQ(s.version(), 3);
  ASSERT_EQ(s.tables().size(), 3u);
  EXPECT_EQ(s.fingerprint().size(), 16u);
  EXPECT_EQ(s.Find("nope"), nullptr);

  const TableDef* accounts = s.Find("accounts");
  ASSERT_NE(accounts, nullptr);
  EXPECT_FALSE(accounts->reference);
  EXPECT_TRUE(accounts->parent_table.empty());
  const ColumnDef* name = accounts->Find("name");
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(name->type, ColumnType::kText);
  EXPECT_EQ(name->merge, MergePolicy::kLww);  // the default policy
  EXPECT_EQ(name->max_length, kDefaultMaxTextBytes);
  EXPECT_EQ(accounts->Find("visit_count")->merge, MergePolicy::kCounter);

  const TableDef* visits = s.Find("visits");
  ASSERT_NE(visits, nullptr);
  EXPECT_EQ(visits->parent_column, "account_id");
  EXPECT_EQ(visits->parent_table, "accounts");
  ASSERT_EQ(visits->columns.size(), 5u);
  for (size_t i = 0; i < visits->columns.size(); ++i) EXPECT_EQ(visits->columns[i].index, static_cast<int>(i));
  EXPECT_EQ(visits->Find("account_id")->references, "accounts");
  EXPECT_EQ(visits->Find("notes")->merge, MergePolicy::kMv);
  EXPECT_EQ(visits->Find("notes")->max_length, 8u);
  const ColumnDef* stage = visits->Find("stage");
  EXPECT_EQ(stage->merge, MergePolicy::kState);
  EXPECT_EQ(stage->values, (std::vector<std::string>{"planned", "visited", "closed"}));
  EXPECT_EQ(stage->Rank("planned"), 0);
  EXPECT_EQ(stage->Rank("closed"), 2);
  EXPECT_EQ(stage->Rank("lost"), -1);
  EXPECT_EQ(visits->Find("tags")->type, ColumnType::kSet);
  EXPECT_EQ(visits->Find("tags")->merge, MergePolicy::kOrSet);
  EXPECT_EQ(visits->Find("on_date")->type, ColumnType::kDate);

  const TableDef* products = s.Find("products");
  ASSERT_NE(products, nullptr);
  EXPECT_TRUE(products->reference);
  EXPECT_EQ(products->Find("price")->type, ColumnType::kReal);
  EXPECT_EQ(products->Find("price")->max_length, kDefaultMaxTextBytes);  // clamped
}

TEST(SchemaParse, FingerprintTellsDocumentsApart) {
  Schema a, b, c;
  ASSERT_TRUE(Schema::ParseText(kValidSchema, &a).ok());
  ASSERT_TRUE(Schema::ParseText(kValidSchema, &b).ok());
  json doc = json::parse(kValidSchema);
  doc["version"] = 4;
  ASSERT_TRUE(Schema::Parse(doc, &c).ok());
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  EXPECT_NE(a.fingerprint(), c.fingerprint());
}

TEST(SchemaParse, FailureLeavesOutputUntouched) {
  Schema s;
  ASSERT_TRUE(Schema::ParseText(kValidSchema, &s).ok());
  Status st = Schema::ParseText(R"({"name": "other", "version": 1, "tables": []})", &s);
  EXPECT_EQ(st.code(), Code::kSchemaViolation);
  EXPECT_EQ(s.name(), "field_sales");
  EXPECT_EQ(s.tables().size(), 3u);
}

Schema FieldSalesSchemaForTest() {
  const char* path = std::getenv("FIELDSYNC_SCHEMA");
  std::ifstream in(path ? path : "");
  std::stringstream ss;
  ss << in.rdbuf();
  Schema s;
  Status st = Schema::ParseText(ss.str(), &s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

TEST(SchemaParse, ScopeRulesAndSupervisorColumnsOfTheShippedSchema) {
  Schema s = FieldSalesSchemaForTest();
  EXPECT_EQ(s.Find("skus")->scope, ScopeRule::kEveryone);
  EXPECT_EQ(s.Find("promotions")->scope, ScopeRule::kRegion);
  EXPECT_EQ(s.Find("promotions")->scope_column, "region");
  EXPECT_EQ(s.Find("accounts")->scope, ScopeRule::kAssignee);
  EXPECT_TRUE(s.Find("accounts")->Find("assigned_rep")->supervisor_only);
  EXPECT_FALSE(s.Find("accounts")->Find("phone")->supervisor_only);
  EXPECT_EQ(s.Find("store_check_lines")->scope, ScopeRule::kParent);
  // Without a declaration: parent when there is one, else everyone.
  Schema d;
  ASSERT_TRUE(Schema::ParseText(R"({"version": 1, "tables": [{"name": "p", "columns": [{"name": "a", "type": "text"}]},
      {"name": "c", "parent": {"column": "pid", "table": "p"}, "columns": [{"name": "pid", "type": "text"}]}]})", &d).ok());
  EXPECT_EQ(d.Find("p")->scope, ScopeRule::kEveryone);
  EXPECT_EQ(d.Find("c")->scope, ScopeRule::kParent);
}

TEST(SchemaParse, WorkflowsAndDecisionRecordsOfTheShippedSchema) {
  Schema s = FieldSalesSchemaForTest();
  const Workflow& wf = s.Find("visit_plans")->workflow;
  ASSERT_TRUE(wf.enabled());
  EXPECT_EQ(wf.status_column, "status");
  EXPECT_EQ(wf.frozen_from, "submitted");
  EXPECT_EQ(wf.decisions, (std::vector<std::string>{"returned", "approved"}));
  EXPECT_EQ(wf.previous_column, "previous_plan_id");
  EXPECT_EQ(wf.items_table, "plan_items");
  EXPECT_TRUE(s.Find("orders")->workflow.enabled());
  EXPECT_EQ(s.Find("orders")->workflow.exits, (std::vector<std::string>{"voided"}));
  EXPECT_EQ(s.Find("approvals")->decision.kind_column, "kind");
  EXPECT_FALSE(s.Find("visits")->workflow.enabled());
  const TableDef* a = s.Find("approvals");
  EXPECT_TRUE(a->decision.enabled());
  EXPECT_TRUE(a->append_only);
  EXPECT_TRUE(a->supervisor_write);
  EXPECT_TRUE(a->Find("conflicting")->server_only);
  EXPECT_FALSE(s.Find("accounts")->append_only);
}

TEST(SchemaParse, RejectsInvalidJsonText) {
  Schema s;
  EXPECT_EQ(Schema::ParseText("{\"version\": 1,", &s).code(), Code::kSchemaViolation);
}

struct RejectCase {
  const char* label;
  const char* doc;
  const char* fragment;  // expected in the error message
};

class SchemaRejects : public ::testing::TestWithParam<RejectCase> {};

TEST_P(SchemaRejects, Refused) {
  const RejectCase& c = GetParam();
  json doc = json::parse(c.doc);
  Schema s;
  Status st = Schema::Parse(doc, &s);
  EXPECT_EQ(st.code(), Code::kSchemaViolation) << st.ToString();
  EXPECT_NE(st.message().find(c.fragment), std::string::npos) << st.message();
  EXPECT_TRUE(s.tables().empty());
}

// One table "t" with the given column(s), as a document.
#define ONE_TABLE(cols) R"({"version": 1, "tables": [{"name": "t", "columns": [)" cols "]}]}"

const RejectCase kRejectCases[] = {
    {"unknown_scope_rule", R"({"version": 1, "tables": [{"name": "t", "scope": {"rule": "team"}, "columns": [{"name": "a", "type": "text"}]}]})",
     "scope rule must be"},
    {"parent_rule_without_parent",
     R"({"version": 1, "tables": [{"name": "t", "scope": {"rule": "parent"}, "columns": [{"name": "a", "type": "text"}]}]})",
     "needs a 'parent'"},
    {"assignee_without_column",
     R"({"version": 1, "tables": [{"name": "t", "scope": {"rule": "assignee", "column": "b"}, "columns": [{"name": "a", "type": "text"}]}]})",
     "needs a 'column'"},
    {"scope_column_not_lww_text",
     R"({"version": 1, "tables": [{"name": "t", "scope": {"rule": "region", "column": "a"}, "columns": [{"name": "a", "type": "text", "merge": "mv"}]}]})",
     "text column merged lww"},
    {"scope_cycle",
     R"({"version": 1, "tables": [{"name": "a", "parent": {"column": "p", "table": "b"}, "columns": [{"name": "p", "type": "text"}]},
                                   {"name": "b", "parent": {"column": "p", "table": "a"}, "columns": [{"name": "p", "type": "text"}]}]})",
     "cycle"},
    {"bad_write", ONE_TABLE(R"({"name": "a", "type": "text", "write": "admin"})"), "write must be any, supervisor or server"},
    {"workflow_status_not_state",
     R"({"version": 1, "tables": [{"name": "t", "workflow": {"status": "s", "frozen_from": "b", "decisions": ["c"]}, "columns": [{"name": "s", "type": "enum", "values": ["a", "b", "c"]}]}]})",
     "'status' must name a state column"},
    {"workflow_decision_before_frozen",
     R"({"version": 1, "tables": [{"name": "t", "workflow": {"status": "s", "frozen_from": "b", "decisions": ["a"]}, "columns": [{"name": "s", "type": "enum", "merge": "state", "values": ["a", "b", "c"]}]}]})",
     "after b"},
    {"workflow_exit_is_a_decision",
     R"({"version": 1, "tables": [{"name": "t", "workflow": {"status": "s", "frozen_from": "b", "decisions": ["c"], "exits": ["c"]}, "columns": [{"name": "s", "type": "enum", "merge": "state", "values": ["a", "b", "c"]}]}]})",
     "each exit must be"},
    {"workflow_unknown_frozen_from",
     R"({"version": 1, "tables": [{"name": "t", "workflow": {"status": "s", "frozen_from": "x", "decisions": ["c"]}, "columns": [{"name": "s", "type": "enum", "merge": "state", "values": ["a", "b", "c"]}]}]})",
     "'frozen_from' must be a value"},
    {"workflow_items_not_child",
     R"({"version": 1, "tables": [{"name": "t", "workflow": {"status": "s", "frozen_from": "b", "decisions": ["c"], "items": {"table": "u", "key": ["k"]}}, "columns": [{"name": "s", "type": "enum", "merge": "state", "values": ["a", "b", "c"]}]}, {"name": "u", "columns": [{"name": "k", "type": "text"}]}]})",
     "workflow items must be a child table"},
    {"decision_not_append_only",
     R"({"version": 1, "tables": [{"name": "t", "write": "supervisor", "decision_record": {"subject_table": "st", "subject_id": "si", "decision": "d", "flag": "f"}, "columns": [{"name": "st", "type": "enum", "values": ["t"]}, {"name": "si", "type": "text"}, {"name": "d", "type": "enum", "values": ["ok"]}, {"name": "f", "type": "boolean", "write": "server"}]}]})",
     "must be append_only"},
    {"decision_flag_writable",
     R"({"version": 1, "tables": [{"name": "t", "write": "supervisor", "append_only": true, "decision_record": {"subject_table": "st", "subject_id": "si", "decision": "d", "flag": "f"}, "columns": [{"name": "st", "type": "enum", "values": ["t"]}, {"name": "si", "type": "text"}, {"name": "d", "type": "enum", "values": ["ok"]}, {"name": "f", "type": "boolean"}]}]})",
     "written by the server"},
    {"decision_unknown_subject",
     R"({"version": 1, "tables": [{"name": "t", "write": "supervisor", "append_only": true, "decision_record": {"subject_table": "st", "subject_id": "si", "decision": "d", "flag": "f"}, "columns": [{"name": "st", "type": "enum", "values": ["nope"]}, {"name": "si", "type": "text"}, {"name": "d", "type": "enum", "values": ["ok"]}, {"name": "f", "type": "boolean", "write": "server"}]}]})",
     "is not a table"},
    {"bad_table_write", R"({"version": 1, "tables": [{"name": "t", "write": "admin", "columns": [{"name": "a", "type": "text"}]}]})",
     "write must be any or supervisor"},
    {"array_document", "[1, 2]", "not a JSON object"},
    {"string_document", R"("schema")", "not a JSON object"},
    {"missing_version", R"({"tables": [{"name": "t", "columns": [{"name": "a", "type": "text"}]}]})",
     "version"},
    {"string_version", R"({"version": "1", "tables": [{"name": "t", "columns": [{"name": "a", "type": "text"}]}]})",
     "version"},
    {"missing_tables", R"({"version": 1})", "tables"},
    {"empty_tables", R"({"version": 1, "tables": []})", "tables"},
    {"table_without_columns", R"({"version": 1, "tables": [{"name": "t", "columns": []}]})", "columns"},
    {"unknown_type", ONE_TABLE(R"({"name": "a", "type": "varchar"})"), "unknown type"},
    {"missing_type", ONE_TABLE(R"({"name": "a"})"), "unknown type"},
    {"unknown_merge", ONE_TABLE(R"({"name": "a", "type": "text", "merge": "newest"})"), "unknown merge"},
    {"orset_on_text", ONE_TABLE(R"({"name": "a", "type": "text", "merge": "orset"})"), "does not fit"},
    {"counter_on_text", ONE_TABLE(R"({"name": "a", "type": "text", "merge": "counter"})"), "does not fit"},
    {"state_on_text", ONE_TABLE(R"({"name": "a", "type": "text", "merge": "state"})"), "does not fit"},
    {"lww_on_set", ONE_TABLE(R"({"name": "a", "type": "set", "merge": "lww"})"), "does not fit"},
    {"mv_on_set", ONE_TABLE(R"({"name": "a", "type": "set", "merge": "mv"})"), "does not fit"},
    {"counter_on_boolean", ONE_TABLE(R"({"name": "a", "type": "boolean", "merge": "counter"})"), "does not fit"},
    {"enum_without_values", ONE_TABLE(R"({"name": "a", "type": "enum"})"), "needs 'values'"},
    {"state_with_empty_values", ONE_TABLE(R"({"name": "a", "type": "enum", "merge": "state", "values": []})"),
     "needs 'values'"},
    {"values_not_strings", ONE_TABLE(R"({"name": "a", "type": "enum", "values": [1, 2]})"), "values"},
    {"repeated_value", ONE_TABLE(R"({"name": "a", "type": "enum", "values": ["x", "x"]})"), "repeats"},
    {"duplicate_table",
     R"({"version": 1, "tables": [{"name": "t", "columns": [{"name": "a", "type": "text"}]},
                                  {"name": "t", "columns": [{"name": "b", "type": "text"}]}]})",
     "declared twice"},
    {"duplicate_column", ONE_TABLE(R"({"name": "a", "type": "text"}, {"name": "a", "type": "integer"})"),
     "column 'a' declared twice"},
    {"upper_case_table", R"({"version": 1, "tables": [{"name": "Accounts", "columns": [{"name": "a", "type": "text"}]}]})",
     "bad table name"},
    {"fs_prefix_table", R"({"version": 1, "tables": [{"name": "fs_meta", "columns": [{"name": "a", "type": "text"}]}]})",
     "bad table name"},
    {"upper_case_column", ONE_TABLE(R"({"name": "Phone", "type": "text"})"), "bad column name"},
    {"id_column", ONE_TABLE(R"({"name": "id", "type": "text"})"), "bad column name"},
    {"digit_first_column", ONE_TABLE(R"({"name": "1st", "type": "text"})"), "bad column name"},
    {"dash_in_column", ONE_TABLE(R"({"name": "first-name", "type": "text"})"), "bad column name"},
    {"bad_access",
     R"({"version": 1, "tables": [{"name": "t", "access": "write_only", "columns": [{"name": "a", "type": "text"}]}]})",
     "access"},
    {"parent_column_not_a_column",
     R"({"version": 1, "tables": [
          {"name": "accounts", "columns": [{"name": "a", "type": "text"}]},
          {"name": "visits", "parent": {"column": "account_id", "table": "accounts"},
           "columns": [{"name": "a", "type": "text"}]}]})",
     "parent column 'account_id'"},
    {"unknown_parent_table",
     R"({"version": 1, "tables": [
          {"name": "visits", "parent": {"column": "account_id", "table": "accounts"},
           "columns": [{"name": "account_id", "type": "text"}]}]})",
     "parent table 'accounts'"},
    {"unknown_references", ONE_TABLE(R"({"name": "a", "type": "text", "references": "nowhere"})"),
     "references unknown table 'nowhere'"},
};

INSTANTIATE_TEST_SUITE_P(All, SchemaRejects, ::testing::ValuesIn(kRejectCases),
                         [](const ::testing::TestParamInfo<RejectCase>& i) { return std::string(i.param.label); });

TEST(SchemaParse, TooManyColumns) {
  json cols = json::array();
  for (size_t i = 0; i <= kMaxColumnsPerTable; ++i) cols.push_back({{"name", "c" + std::to_string(i)}, {"type", "text"}});
  json doc = {{"version", 1}, {"tables", json::array({{{"name", "t"}, {"columns", cols}}})}};
  Schema s;
  EXPECT_EQ(Schema::Parse(doc, &s).code(), Code::kSchemaViolation);
  cols.erase(cols.size() - 1);
  doc["tables"][0]["columns"] = cols;
  EXPECT_TRUE(Schema::Parse(doc, &s).ok());
}

TEST(SchemaIdentifiers, ValidIdentifier) {
  for (const std::string ok : {"a", "accounts", "a1_b", "x_"}) EXPECT_TRUE(Schema::ValidIdentifier(ok)) << ok;
  EXPECT_TRUE(Schema::ValidIdentifier(std::string(63, 'a')));
  for (const std::string bad : {"", "A", "Accounts", "1a", "_a", "a-b", "a b", "a.b", "é"})
    EXPECT_FALSE(Schema::ValidIdentifier(bad)) << bad;
  EXPECT_FALSE(Schema::ValidIdentifier(std::string(64, 'a')));
}

TEST(SchemaIdentifiers, ValidRowId) {
  for (const std::string ok : {"a", "Z", "0", "550e8400-e29b-41d4-a716-446655440000", "Row_1-x"})
    EXPECT_TRUE(ValidRowId(ok)) << ok;
  EXPECT_TRUE(ValidRowId(std::string(64, 'a')));
  EXPECT_FALSE(ValidRowId(std::string(65, 'a')));
  for (const std::string bad : {"", "a b", "a/b", "a.b", "é", "a\n", "a;drop", "a'b"})
    EXPECT_FALSE(ValidRowId(bad)) << bad;
}

// ---- CheckValue -----------------------------------------------------------

class CheckValueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = Schema::ParseText(R"({"version": 1, "tables": [{"name": "visits", "columns": [
        {"name": "notes", "type": "text", "max_length": 8},
        {"name": "qty", "type": "integer"},
        {"name": "price", "type": "real"},
        {"name": "paid", "type": "boolean"},
        {"name": "kind", "type": "enum", "values": ["call", "visit"]},
        {"name": "due", "type": "date"},
        {"name": "tags", "type": "set", "merge": "orset", "values": ["hot", "cold"]},
        {"name": "labels", "type": "set", "merge": "orset"},
        {"name": "units", "type": "integer", "merge": "counter"},
        {"name": "amount", "type": "real", "merge": "counter"},
        {"name": "stage", "type": "enum", "merge": "state", "values": ["planned", "done"]},
        {"name": "memo", "type": "text", "merge": "mv"}]}]})",
                                  &schema_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    table_ = schema_.Find("visits");
  }

  Status Check(const std::string& column, const json& v) {
    const ColumnDef* c = table_->Find(column);
    EXPECT_NE(c, nullptr) << column;
    return Schema::CheckValue(*table_, *c, v);
  }
  Status Member(const std::string& column, const json& v) {
    return Schema::CheckMember(*table_, *table_->Find(column), v);
  }
  void ExpectOk(const std::string& column, const json& v) {
    Status st = Check(column, v);
    EXPECT_TRUE(st.ok()) << column << " <- " << v.dump() << ": " << st.ToString();
  }
  void ExpectRefused(const std::string& column, const json& v) {
    Status st = Check(column, v);
    EXPECT_EQ(st.code(), Code::kSchemaViolation) << column << " <- " << v.dump();
    EXPECT_NE(st.message().find("visits." + column), std::string::npos)
        << "message does not name the column: " << st.message();
  }

  Schema schema_;
  const TableDef* table_ = nullptr;
};

TEST_F(CheckValueTest, Text) {
  ExpectOk("notes", "");
  ExpectOk("notes", "12345678");  // exactly max_length
  ExpectRefused("notes", "123456789");
  ExpectRefused("notes", "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");  // 5 chars, 10 bytes
  ExpectRefused("notes", 5);
  ExpectRefused("notes", true);
  ExpectRefused("notes", json::array({"a"}));
  ExpectRefused("notes", json::object());
}

TEST_F(CheckValueTest, Integer) {
  ExpectOk("qty", 0);
  ExpectOk("qty", -17);
  ExpectOk("qty", uint64_t{1} << 40);
  ExpectRefused("qty", 1.5);
  ExpectRefused("qty", 2.0);
  ExpectRefused("qty", "1");
  ExpectRefused("qty", true);
  ExpectRefused("qty", json::array({1}));
}

TEST_F(CheckValueTest, Real) {
  ExpectOk("price", 1.5);
  ExpectOk("price", -2);
  ExpectOk("price", 0);
  ExpectRefused("price", "1.5");
  ExpectRefused("price", false);
  ExpectRefused("price", json::object());
}

TEST_F(CheckValueTest, Boolean) {
  ExpectOk("paid", true);
  ExpectOk("paid", false);
  ExpectRefused("paid", 1);
  ExpectRefused("paid", 0);
  ExpectRefused("paid", "true");
}

TEST_F(CheckValueTest, EnumMembership) {
  ExpectOk("kind", "call");
  ExpectOk("kind", "visit");
  ExpectRefused("kind", "email");
  ExpectRefused("kind", "Call");
  ExpectRefused("kind", "");
  ExpectRefused("kind", 0);
  ExpectOk("stage", "done");
  ExpectRefused("stage", "lost");
}

TEST_F(CheckValueTest, Date) {
  ExpectOk("due", "2024-01-31");
  ExpectOk("due", "2024-02-29");
  ExpectOk("due", "2024-01-31T10:15:00Z");
  ExpectOk("due", "2024-01-31T10:15:00.123+02:00");
  ExpectRefused("due", "2024-13-01");
  ExpectRefused("due", "2024-00-10");
  ExpectRefused("due", "2024-01-32");
  ExpectRefused("due", "2024-01-00");
  ExpectRefused("due", "yesterday");
  ExpectRefused("due", "2024-1-01");
  ExpectRefused("due", "2024/01/01");
  ExpectRefused("due", "2024-01-01 10:00");
  ExpectRefused("due", "2024-01-01Z");
  ExpectRefused("due", "");
  ExpectRefused("due", 20240101);
}

TEST_F(CheckValueTest, SetMembers) {
  ExpectOk("tags", json::array());
  ExpectOk("tags", json::array({"hot"}));
  ExpectOk("tags", json::array({"hot", "cold"}));
  ExpectRefused("tags", json::array({"warm"}));     // not an allowed member
  ExpectRefused("tags", json::array({"hot", 1}));   // not a string
  ExpectRefused("tags", "hot");                     // not an array
  ExpectOk("labels", json::array({"anything", "goes"}));
  ExpectRefused("labels", json::array({""}));       // empty member
  json many = json::array();
  for (size_t i = 0; i <= kMaxSetMembers; ++i) many.push_back("m" + std::to_string(i));
  ExpectRefused("labels", many);
  many.erase(many.size() - 1);
  ExpectOk("labels", many);
}

TEST_F(CheckValueTest, CheckMember) {
  EXPECT_TRUE(Member("tags", "hot").ok());
  EXPECT_EQ(Member("tags", "warm").code(), Code::kSchemaViolation);
  EXPECT_EQ(Member("tags", 5).code(), Code::kSchemaViolation);
  EXPECT_EQ(Member("labels", "").code(), Code::kSchemaViolation);
  EXPECT_TRUE(Member("labels", "free").ok());
  Status st = Member("tags", "warm");
  EXPECT_NE(st.message().find("visits.tags"), std::string::npos) << st.message();
}

TEST_F(CheckValueTest, CounterTakesNumbers) {
  ExpectOk("units", 5);
  ExpectRefused("units", 1.5);
  ExpectRefused("units", "5");
  ExpectOk("amount", 1.5);
}

TEST_F(CheckValueTest, NullClearsExceptCounters) {
  for (const char* col : {"notes", "qty", "price", "paid", "kind", "due", "stage", "memo"})
    ExpectOk(col, nullptr);
  ExpectRefused("units", nullptr);
  ExpectRefused("amount", nullptr);
}

}  // namespace
}  // namespace fieldsync
