#include "sync/schema.h"

#include <algorithm>

#include <cmath>
#include <cstdio>
#include <set>

namespace fieldsync {

const char* TypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kText: return "text";
    case ColumnType::kInteger: return "integer";
    case ColumnType::kReal: return "real";
    case ColumnType::kBoolean: return "boolean";
    case ColumnType::kEnum: return "enum";
    case ColumnType::kDate: return "date";
    case ColumnType::kSet: return "set";
  }
  return "?";
}

const char* PolicyName(MergePolicy p) {
  switch (p) {
    case MergePolicy::kLww: return "lww";
    case MergePolicy::kMv: return "mv";
    case MergePolicy::kOrSet: return "orset";
    case MergePolicy::kCounter: return "counter";
    case MergePolicy::kState: return "state";
  }
  return "?";
}

int ColumnDef::Rank(const std::string& v) const {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i] == v) return static_cast<int>(i);
  return -1;
}

const ColumnDef* TableDef::Find(const std::string& column) const {
  for (const auto& c : columns)
    if (c.name == column) return &c;
  return nullptr;
}

const TableDef* Schema::Find(const std::string& table) const {
  auto it = by_name_.find(table);
  return it == by_name_.end() ? nullptr : &tables_[it->second];
}

bool Schema::ValidIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  if (!(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

bool ValidRowId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_'))
      return false;
  return true;
}

namespace {

bool ParseType(const std::string& s, ColumnType* t) {
  static const std::pair<const char*, ColumnType> kTypes[] = {
      {"text", ColumnType::kText}, {"integer", ColumnType::kInteger},
      {"real", ColumnType::kReal}, {"boolean", ColumnType::kBoolean},
      {"enum", ColumnType::kEnum}, {"date", ColumnType::kDate},
      {"set", ColumnType::kSet}};
  for (auto& [n, v] : kTypes)
    if (s == n) { *t = v; return true; }
  return false;
}

bool ParsePolicy(const std::string& s, MergePolicy* p) {
  static const std::pair<const char*, MergePolicy> kPolicies[] = {
      {"lww", MergePolicy::kLww}, {"mv", MergePolicy::kMv},
      {"orset", MergePolicy::kOrSet}, {"counter", MergePolicy::kCounter},
      {"state", MergePolicy::kState}};
  for (auto& [n, v] : kPolicies)
    if (s == n) { *p = v; return true; }
  return false;
}

// FNV-1a 64: enough to tell two schema documents apart; not a security hash.
std::string Fingerprint(const std::string& canonical) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : canonical) { h ^= c; h *= 1099511628211ULL; }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Status ParseColumn(const std::string& table, const json& j, ColumnDef* c) {
  auto where = [&](const std::string& what) { return "table '" + table + "': " + what; };
  if (!j.is_object()) return Status::Schema(where("column entry is not an object"));
  if (!j.contains("name") || !j["name"].is_string())
    return Status::Schema(where("column without a string 'name'"));
  c->name = j["name"].get<std::string>();
  if (!Schema::ValidIdentifier(c->name) || c->name == "id")
    return Status::Schema(where("bad column name '" + c->name + "'"));
  std::string type = j.value("type", "");
  if (!ParseType(type, &c->type))
    return Status::Schema(where("column '" + c->name + "' has unknown type '" + type + "'"));
  std::string merge = j.value("merge", "lww");
  if (!ParsePolicy(merge, &c->merge))
    return Status::Schema(where("column '" + c->name + "' has unknown merge '" + merge + "'"));
  if (j.contains("values")) {
    if (!j["values"].is_array()) return Status::Schema(where("'values' must be an array"));
    for (const auto& v : j["values"]) {
      if (!v.is_string()) return Status::Schema(where("'values' must hold strings"));
      c->values.push_back(v.get<std::string>());
    }
  }
  c->references = j.value("references", "");
  std::string write = j.value("write", "any");
  if (write != "any" && write != "supervisor" && write != "server")
    return Status::Schema(where("column '" + c->name + "': write must be any, supervisor or server"));
  c->supervisor_only = write == "supervisor";
  c->server_only = write == "server";
  c->max_length = j.value("max_length", static_cast<size_t>(0));
  if (c->max_length == 0 || c->max_length > kDefaultMaxTextBytes) c->max_length = kDefaultMaxTextBytes;

  // Which merge policies make sense for which types.
  bool ok = true;
  switch (c->merge) {
    case MergePolicy::kLww:
    case MergePolicy::kMv: ok = c->type != ColumnType::kSet; break;
    case MergePolicy::kOrSet: ok = c->type == ColumnType::kSet; break;
    case MergePolicy::kCounter: ok = c->type == ColumnType::kInteger || c->type == ColumnType::kReal; break;
    case MergePolicy::kState: ok = c->type == ColumnType::kEnum; break;
  }
  if (!ok)
    return Status::Schema(where("column '" + c->name + "': merge '" + merge +
                                "' does not fit type '" + type + "'"));
  if (c->type == ColumnType::kEnum && c->values.empty())
    return Status::Schema(where("enum column '" + c->name + "' needs 'values'"));
  std::set<std::string> uniq(c->values.begin(), c->values.end());
  if (uniq.size() != c->values.size())
    return Status::Schema(where("column '" + c->name + "' repeats a value"));
  return Status::OK();
}

Status ParseScope(const json& tj, TableDef* t) {
  auto where = [&](const std::string& what) { return Status::Schema("table '" + t->name + "': " + what); };
  t->scope = t->parent_table.empty() ? ScopeRule::kEveryone : ScopeRule::kParent;
  if (!tj.contains("scope")) return Status::OK();
  const json& sj = tj["scope"];
  if (!sj.is_object() || !sj.contains("rule") || !sj["rule"].is_string())
    return where("'scope' must be an object with a string 'rule'");
  std::string rule = sj["rule"].get<std::string>();
  if (rule == "everyone") t->scope = ScopeRule::kEveryone;
  else if (rule == "region") t->scope = ScopeRule::kRegion;
  else if (rule == "assignee") t->scope = ScopeRule::kAssignee;
  else if (rule == "parent") t->scope = ScopeRule::kParent;
  else return where("scope rule must be everyone, region, assignee or parent, not '" + rule + "'");
  if (t->scope == ScopeRule::kParent && t->parent_table.empty())
    return where("scope rule 'parent' needs a 'parent'");
  if (t->scope == ScopeRule::kRegion || t->scope == ScopeRule::kAssignee) {
    t->scope_column = sj.value("column", "");
    const ColumnDef* c = t->Find(t->scope_column);
    if (!c) return where("scope rule '" + rule + "' needs a 'column' of the table");
    if (c->type != ColumnType::kText || c->merge != MergePolicy::kLww)
      return where("scope column '" + c->name + "' must be a text column merged lww");
  }
  if (t->scope == ScopeRule::kAssignee && t->reference)
    return where("a reference table cannot be scoped by assignee");
  return Status::OK();
}

Status ParseBootstrapFirst(const json& tj, TableDef* t) {
  if (!tj.contains("bootstrap_first")) return Status::OK();
  const json& b = tj["bootstrap_first"];
  std::string col = b.is_object() ? b.value("date_column", "") : "";
  const ColumnDef* c = t->Find(col);
  if (!c || c->type != ColumnType::kDate)
    return Status::Schema("table '" + t->name + "': bootstrap_first needs a 'date_column' of type date");
  t->first_date_column = col;
  return Status::OK();
}

Status ParseWorkflow(const json& tj, TableDef* t) {
  auto where = [&](const std::string& what) { return Status::Schema("table '" + t->name + "': workflow: " + what); };
  if (!tj.contains("workflow")) return Status::OK();
  const json& w = tj["workflow"];
  if (!w.is_object()) return where("must be an object");
  Workflow& wf = t->workflow;
  wf.status_column = w.value("status", "");
  const ColumnDef* status = t->Find(wf.status_column);
  if (!status || status->merge != MergePolicy::kState) return where("'status' must name a state column");
  wf.frozen_from = w.value("frozen_from", "");
  int frozen = status->Rank(wf.frozen_from);
  if (frozen < 0) return where("'frozen_from' must be a value of " + wf.status_column);
  if (!w.contains("decisions") || !w["decisions"].is_array() || w["decisions"].empty())
    return where("'decisions' must be a non-empty array");
  for (const auto& d : w["decisions"]) {
    if (!d.is_string() || status->Rank(d.get<std::string>()) <= frozen)
      return where("each decision must be a value of " + wf.status_column + " after " + wf.frozen_from);
    wf.decisions.push_back(d.get<std::string>());
  }
  if (w.contains("exits")) {
    if (!w["exits"].is_array()) return where("'exits' must be an array");
    for (const auto& e : w["exits"]) {
      if (!e.is_string() || status->Rank(e.get<std::string>()) < 0 ||
          std::find(wf.decisions.begin(), wf.decisions.end(), e.get<std::string>()) != wf.decisions.end())
        return where("each exit must be a value of " + wf.status_column + " that is not a decision");
      wf.exits.push_back(e.get<std::string>());
    }
  }
  wf.previous_column = w.value("previous", "");
  if (!wf.previous_column.empty()) {
    const ColumnDef* p = t->Find(wf.previous_column);
    if (!p || p->references != t->name) return where("'previous' must be a column referencing " + t->name);
  }
  if (w.contains("items")) {
    const json& it = w["items"];
    if (!it.is_object() || !it.contains("key") || !it["key"].is_array() || it["key"].empty())
      return where("'items' needs a 'table' and a non-empty 'key'");
    wf.items_table = it.value("table", "");
    for (const auto& k : it["key"]) {
      if (!k.is_string()) return where("'items.key' must hold column names");
      wf.items_key.push_back(k.get<std::string>());
    }
  }
  return Status::OK();
}

Status ParseDecisionRecord(const json& tj, TableDef* t) {
  auto where = [&](const std::string& what) {
    return Status::Schema("table '" + t->name + "': decision_record: " + what);
  };
  if (!tj.contains("decision_record")) return Status::OK();
  const json& d = tj["decision_record"];
  if (!d.is_object()) return where("must be an object");
  DecisionRecord& r = t->decision;
  r.subject_table_column = d.value("subject_table", "");
  r.subject_id_column = d.value("subject_id", "");
  r.decision_column = d.value("decision", "");
  r.decided_by_column = d.value("decided_by", "");
  r.flag_column = d.value("flag", "");
  r.kind_column = d.value("kind", "");
  if (!r.kind_column.empty() && !t->Find(r.kind_column)) return where("'kind' must name a column");
  const ColumnDef* st = t->Find(r.subject_table_column);
  const ColumnDef* id = t->Find(r.subject_id_column);
  const ColumnDef* dc = t->Find(r.decision_column);
  const ColumnDef* fl = t->Find(r.flag_column);
  if (!st || st->type != ColumnType::kEnum) return where("'subject_table' must name an enum column of table names");
  if (!id || id->type != ColumnType::kText) return where("'subject_id' must name a text column");
  if (!dc || dc->type != ColumnType::kEnum) return where("'decision' must name an enum column");
  if (!fl || fl->type != ColumnType::kBoolean || !fl->server_only)
    return where("'flag' must name a boolean column written by the server");
  if (!r.decided_by_column.empty() && !t->Find(r.decided_by_column))
    return where("'decided_by' must name a column");
  if (!t->append_only || !t->supervisor_write)
    return where("a decision table must be append_only and written by supervisors");
  return Status::OK();
}

}  // namespace

const char* ScopeRuleName(ScopeRule r) {
  switch (r) {
    case ScopeRule::kEveryone: return "everyone";
    case ScopeRule::kRegion: return "region";
    case ScopeRule::kAssignee: return "assignee";
    case ScopeRule::kParent: return "parent";
  }
  return "?";
}

Status Schema::Parse(const json& doc, Schema* out) {
  if (!doc.is_object()) return Status::Schema("schema document is not a JSON object");
  Schema s;
  s.name_ = doc.value("name", "");
  if (!doc.contains("version") || !doc["version"].is_number_integer())
    return Status::Schema("schema needs an integer 'version'");
  s.version_ = doc["version"].get<int>();
  if (!doc.contains("tables") || !doc["tables"].is_array() || doc["tables"].empty())
    return Status::Schema("schema needs a non-empty 'tables' array");
  for (const auto& tj : doc["tables"]) {
    TableDef t;
    if (!tj.is_object() || !tj.contains("name") || !tj["name"].is_string())
      return Status::Schema("table entry without a string 'name'");
    t.name = tj["name"].get<std::string>();
    if (!ValidIdentifier(t.name) || t.name.rfind("fs_", 0) == 0)
      return Status::Schema("bad table name '" + t.name + "'");
    if (s.by_name_.count(t.name)) return Status::Schema("table '" + t.name + "' declared twice");
    std::string access = tj.value("access", "read_write");
    if (access != "read_write" && access != "reference")
      return Status::Schema("table '" + t.name + "': access must be read_write or reference");
    t.reference = access == "reference";
    std::string write = tj.value("write", "any");
    if (write != "any" && write != "supervisor")
      return Status::Schema("table '" + t.name + "': write must be any or supervisor");
    t.supervisor_write = write == "supervisor";
    if (tj.contains("append_only") && !tj["append_only"].is_boolean())
      return Status::Schema("table '" + t.name + "': append_only must be true or false");
    t.append_only = tj.value("append_only", false);
    if (tj.contains("parent")) {
      const auto& p = tj["parent"];
      t.parent_column = p.value("column", "");
      t.parent_table = p.value("table", "");
    }
    if (!tj.contains("columns") || !tj["columns"].is_array() || tj["columns"].empty())
      return Status::Schema("table '" + t.name + "' needs a non-empty 'columns' array");
    if (tj["columns"].size() > kMaxColumnsPerTable)
      return Status::Schema("table '" + t.name + "' has too many columns");
    for (const auto& cj : tj["columns"]) {
      ColumnDef c;
      Status st = ParseColumn(t.name, cj, &c);
      if (!st.ok()) return st;
      if (t.Find(c.name)) return Status::Schema("table '" + t.name + "': column '" + c.name + "' declared twice");
      c.index = static_cast<int>(t.columns.size());
      t.columns.push_back(std::move(c));
    }
    if (!t.parent_column.empty() && !t.Find(t.parent_column))
      return Status::Schema("table '" + t.name + "': parent column '" + t.parent_column + "' is not a column");
    if (Status st = ParseScope(tj, &t); !st.ok()) return st;
    if (Status st = ParseBootstrapFirst(tj, &t); !st.ok()) return st;
    if (Status st = ParseWorkflow(tj, &t); !st.ok()) return st;
    if (Status st = ParseDecisionRecord(tj, &t); !st.ok()) return st;
    s.by_name_[t.name] = s.tables_.size();
    s.tables_.push_back(std::move(t));
  }
  for (const auto& t : s.tables_) {
    if (!t.parent_table.empty() && !s.Find(t.parent_table))
      return Status::Schema("table '" + t.name + "': parent table '" + t.parent_table + "' is unknown");
    for (const auto& c : t.columns)
      if (!c.references.empty() && !s.Find(c.references))
        return Status::Schema("table '" + t.name + "': column '" + c.name +
                              "' references unknown table '" + c.references + "'");
  }
  // Cross-table checks of workflows and decision records.
  for (const auto& t : s.tables_) {
    if (!t.workflow.items_table.empty()) {
      const TableDef* items = s.Find(t.workflow.items_table);
      if (!items || items->parent_table != t.name)
        return Status::Schema("table '" + t.name + "': workflow items must be a child table of it");
      for (const auto& k : t.workflow.items_key)
        if (!items->Find(k))
          return Status::Schema("table '" + t.name + "': workflow item key '" + k + "' is not a column of " +
                                items->name);
    }
    if (t.decision.enabled())
      for (const auto& subject : t.Find(t.decision.subject_table_column)->values)
        if (!s.Find(subject))
          return Status::Schema("table '" + t.name + "': decision subject '" + subject + "' is not a table");
  }
  // A parent-scoped row takes its key from a chain of parents that must end
  // at a table with a rule of its own.
  for (const auto& t : s.tables_) {
    const TableDef* p = &t;
    for (size_t hops = 0; p->scope == ScopeRule::kParent; ++hops) {
      if (hops > s.tables_.size())
        return Status::Schema("table '" + t.name + "': the parent chain of its scope is a cycle");
      p = s.Find(p->parent_table);
    }
  }
  s.doc_ = doc;
  s.fingerprint_ = Fingerprint(doc.dump());
  *out = std::move(s);
  return Status::OK();
}

Status Schema::ParseText(const std::string& text, Schema* out) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::Schema("schema is not valid JSON");
  return Parse(doc, out);
}

namespace {
bool IsDate(const std::string& s) {
  // YYYY-MM-DD, optionally followed by 'T' and a time (ISO 8601).
  if (s.size() < 10 || s.size() > 35) return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (s[i] < '0' || s[i] > '9') return false;
  if (s[4] != '-' || s[7] != '-') return false;
  int month = (s[5] - '0') * 10 + (s[6] - '0');
  int day = (s[8] - '0') * 10 + (s[9] - '0');
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  return s.size() == 10 || s[10] == 'T';
}

std::string Where(const TableDef& t, const ColumnDef& c) { return t.name + "." + c.name; }
}  // namespace

Status Schema::CheckMember(const TableDef& t, const ColumnDef& c, const json& m) {
  if (!m.is_string()) return Status::Schema(Where(t, c) + ": set members must be strings");
  const auto& s = m.get_ref<const std::string&>();
  if (s.empty() || s.size() > c.max_length)
    return Status::Schema(Where(t, c) + ": set member is empty or too long");
  if (!c.values.empty() && c.Rank(s) < 0)
    return Status::Schema(Where(t, c) + ": '" + s + "' is not one of the allowed members");
  return Status::OK();
}

Status Schema::CheckValue(const TableDef& t, const ColumnDef& c, const json& v) {
  auto bad = [&](const char* want) {
    return Status::Schema(Where(t, c) + ": expected " + want + ", got " + std::string(v.type_name()));
  };
  if (v.is_null()) {
    if (c.merge == MergePolicy::kCounter) return bad("a number");
    return Status::OK();
  }
  switch (c.type) {
    case ColumnType::kText:
      if (!v.is_string()) return bad("text");
      if (v.get_ref<const std::string&>().size() > c.max_length)
        return Status::Schema(Where(t, c) + ": text longer than " + std::to_string(c.max_length) + " bytes");
      return Status::OK();
    case ColumnType::kInteger:
      if (!v.is_number_integer()) return bad("an integer");
      return Status::OK();
    case ColumnType::kReal:
      if (!v.is_number()) return bad("a number");
      if (!std::isfinite(v.get<double>())) return Status::Schema(Where(t, c) + ": number is not finite");
      return Status::OK();
    case ColumnType::kBoolean:
      if (!v.is_boolean()) return bad("a boolean");
      return Status::OK();
    case ColumnType::kEnum:
      if (!v.is_string()) return bad("one of the enum values");
      if (c.Rank(v.get<std::string>()) < 0)
        return Status::Schema(Where(t, c) + ": '" + v.get<std::string>() + "' is not one of the allowed values");
      return Status::OK();
    case ColumnType::kDate:
      if (!v.is_string() || !IsDate(v.get<std::string>())) return bad("a date YYYY-MM-DD[Thh:mm:ss...]");
      return Status::OK();
    case ColumnType::kSet: {
      if (!v.is_array()) return bad("an array of strings");
      if (v.size() > kMaxSetMembers) return Status::Schema(Where(t, c) + ": too many set members");
      for (const auto& m : v) {
        Status st = CheckMember(t, c, m);
        if (!st.ok()) return st;
      }
      return Status::OK();
    }
  }
  return bad("?");
}

}  // namespace fieldsync
