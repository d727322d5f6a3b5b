// The declarative schema: tables, typed columns and each column's merge
// policy. One JSON file (schema/field_sales.json) drives the SQLite tables on
// every replica and the server, and every value is checked against it before
// it is written or merged. Parsing is pure; reading the file is the caller's.
//
// File format (see docs/schema.md for the full reference):
//   {"name": "...", "version": N, "tables": [
//      {"name": "accounts", "access": "read_write" | "reference",
//       "parent": {"column": "account_id", "table": "accounts"},   // optional
//       "scope": {"rule": "assignee", "column": "assigned_rep"},   // optional
//       "columns": [{"name": "phone", "type": "text", "merge": "lww",
//                    "values": [...], "max_length": 256, "references": "t",
//                    "write": "supervisor"}]}]}
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sync/status.h"

namespace fieldsync {

using json = nlohmann::json;

enum class ColumnType { kText, kInteger, kReal, kBoolean, kEnum, kDate, kSet };
enum class MergePolicy {
  kLww,      // last-writer-wins register, losers kept as conflict records
  kMv,       // multi-value register: concurrent writes all kept and flagged
  kOrSet,    // observed-remove (add-wins) set of strings
  kCounter,  // PN-counter: increments from every device add up
  kState,    // forward-only state: declared order, the furthest state wins
};

const char* TypeName(ColumnType t);
const char* PolicyName(MergePolicy p);

struct ColumnDef {
  std::string name;
  ColumnType type = ColumnType::kText;
  MergePolicy merge = MergePolicy::kLww;
  std::vector<std::string> values;  // enum members; for kState, in forward order
  std::string references;           // table this column points to (id), if any
  size_t max_length = 0;            // text bytes; 0 = schema default
  int index = 0;                    // position within the table
  bool supervisor_only = false;     // "write": "supervisor": reps may not change it
  bool server_only = false;         // "write": "server": set by the server's own rules only


  // Rank of `v` in `values`, or -1.
  int Rank(const std::string& v) const;
};

// Who may read a table's rows (docs/schema.md, "Scope"). Every row belongs
// to one scope key; a device receives the rows whose key is in its scope.
enum class ScopeRule {
  kEveryone,  // key "*": every device (the SKU catalog)
  kRegion,    // key "region/<value of scope_column>": devices of users in that region
  kAssignee,  // key "<table>/<id>": the rep named in scope_column, their supervisors
  kParent,    // the key of the row's parent (contacts through their account)
};
const char* ScopeRuleName(ScopeRule r);

// "workflow": a record that is drafted, submitted and then decided
// (docs/merge.md, "Workflows"). Once the server holds it at `frozen_from`
// or beyond, nothing of it (nor of its child rows) changes but its status;
// the `decisions` are reached only through a decision record. A change
// after submission is a new row with `previous` naming the one it revises.
struct Workflow {
  std::string status_column;            // a kState enum column
  std::string frozen_from;              // a value of it
  std::vector<std::string> decisions;   // values after frozen_from, set by the server; the last approves
  // Values after the decisions that need the approving decision first
  // (an order is delivered only once approved), except these "exits",
  // reachable from any state (voided).
  std::vector<std::string> exits;
  std::string previous_column;          // optional: the revision this row replaces
  std::string items_table;              // optional: child rows compared between revisions
  std::vector<std::string> items_key;   // the columns that pair an item with its old self
  bool enabled() const { return !status_column.empty(); }
};

// "decision_record": a row that records a supervisor's decision on a
// subject row (a plan, a visit, an order). Written once, never changed;
// the server sets the subject's workflow status from the first decision
// and flags a later one that disagrees.
struct DecisionRecord {
  std::string subject_table_column;  // enum of table names
  std::string subject_id_column;
  std::string decision_column;       // enum
  std::string decided_by_column;     // optional: must name the writer
  std::string kind_column;           // optional: decisions of different kinds never conflict
  std::string flag_column;           // boolean, write "server": a conflicting decision
  bool enabled() const { return !decision_column.empty(); }
};

struct TableDef {
  std::string name;
  bool reference = false;  // reference data: written centrally, read-only for reps
  bool supervisor_write = false;  // "write": "supervisor": reps read, never write
  bool append_only = false;       // a field once set is never changed; no deletes
  Workflow workflow;
  DecisionRecord decision;
  std::string parent_column;  // the column linking a row to its parent, if any
  std::string parent_table;
  ScopeRule scope = ScopeRule::kEveryone;
  std::string scope_column;   // for kRegion and kAssignee
  // "bootstrap_first": {"date_column": c}: a new device loads the keys of
  // this table's rows dated today before the rest of its scope (the
  // accounts of today's planned visits). Empty: no such rule.
  std::string first_date_column;
  std::vector<ColumnDef> columns;

  const ColumnDef* Find(const std::string& column) const;
};

// Limits a schema may not raise; they protect SQLite and the wire.
constexpr size_t kDefaultMaxTextBytes = 16 * 1024;
constexpr size_t kMaxSetMembers = 256;
constexpr size_t kMaxColumnsPerTable = 200;

class Schema {
 public:
  // Parses and validates a schema document. On error `out` is untouched.
  static Status Parse(const json& doc, Schema* out);
  static Status ParseText(const std::string& text, Schema* out);

  const std::string& name() const { return name_; }
  int version() const { return version_; }
  // Hex digest of the canonical document: replicas and servers compare it in
  // the handshake to detect that they were built from different schemas.
  const std::string& fingerprint() const { return fingerprint_; }
  const std::vector<TableDef>& tables() const { return tables_; }
  const TableDef* Find(const std::string& table) const;
  const json& document() const { return doc_; }

  // Checks that `value` fits `col` as a whole-field value (what a put
  // carries). null clears a field and always fits, except for sets and
  // counters. Returns kSchemaViolation with a message naming the column.
  static Status CheckValue(const TableDef& t, const ColumnDef& col, const json& value);
  // Checks one member of a set column.
  static Status CheckMember(const TableDef& t, const ColumnDef& col, const json& member);

  // True for names usable as SQL identifiers: [a-z][a-z0-9_]{0,62}.
  static bool ValidIdentifier(const std::string& s);

 private:
  std::string name_;
  int version_ = 0;
  std::string fingerprint_;
  std::vector<TableDef> tables_;
  std::map<std::string, size_t> by_name_;
  json doc_;
};

// A row id: 1..64 bytes of [A-Za-z0-9_-]. Devices create UUIDv4 strings.
bool ValidRowId(const std::string& id);

}  // namespace fieldsync
