// ServerStore's workflow rules (docs/merge.md, "Workflows"): a submitted
// record is frozen, its decided states are reached only through decision
// records, and a decision record is written once. The server itself writes
// the consequences of a decision (the subject's status, the conflict flag)
// as its own changes, in the same transaction as the decision, so every
// device learns them through the ordinary log.

#include <algorithm>

#include "store/server_store.h"
#include "store/server_rows.h"
#include "sync/protocol.h"

namespace fieldsync::store {

using internal::Quote;
using internal::ValueOf;

Status ServerStore::StatusOf(const TableDef& t, const std::string& row, int* rank) {
  *rank = -1;
  std::string v;
  bool have = false;
  Status st = ValueOf(store_.db(), {}, t.name, row, t.workflow.status_column, &v, &have);
  if (st.ok() && have) *rank = t.Find(t.workflow.status_column)->Rank(v);
  return st;
}

Status ServerStore::CheckWorkflow(const Actor& actor, const Change& c, const KeyHints& hints, bool created,
                                  BatchState* batch) {
  const Schema& schema = store_.schema();
  const TableDef* t = schema.Find(c.table);
  const User& me = actor.user;
  Database& db = store_.db();
  Status st;
  if (t->supervisor_write && me.role == Role::kRep)
    return Status(Code::kPermissionDenied, "table '" + c.table + "' is written by supervisors only");
  const ColumnDef* col = c.column.empty() ? nullptr : t->Find(c.column);
  if (col && col->server_only)
    return Status(Code::kPermissionDenied, "column '" + c.table + "." + c.column + "' is set by the server");
  // Append-only: a field the server holds is never written again, and rows
  // are never deleted. Within the push that creates the row its fields may
  // be written more than once (a comment corrected before syncing): the
  // record is judged on the values it ends the push with.
  if (t->append_only) {
    if (!col) return Status(Code::kPermissionDenied, c.table + "/" + c.row + " is append-only: it is never deleted");
  }
  if (t->append_only && !created) {
    FieldState cur;
    if (!(st = store_.LoadField(c.table, c.row, *col, &cur)).ok()) return st;
    if (cur.present)
      return Status(Code::kPermissionDenied, c.table + "/" + c.row + "." + c.column +
                                                 " was already recorded and is never overwritten: record a new one");
  }
  // A column's value as the row ends this push: the batch's last value for
  // it, else the server's.
  auto value = [&](const std::string& column, std::string* v) -> Status {
    bool have = false;
    Status s2 = ValueOf(db, hints, c.table, c.row, column, v, &have);
    if (s2.ok() && !have) v->clear();
    return s2;
  };
  // A decision record is checked whole, on every field of it, so a refused
  // decision leaves no part of itself behind.
  if (t->decision.enabled()) {
    const DecisionRecord& d = t->decision;
    std::string subject_table, subject_id, decision, decided_by;
    if (!(st = value(d.subject_table_column, &subject_table)).ok() ||
        !(st = value(d.subject_id_column, &subject_id)).ok() || !(st = value(d.decision_column, &decision)).ok())
      return st;
    if (!d.decided_by_column.empty()) {
      if (!(st = value(d.decided_by_column, &decided_by)).ok()) return st;
      if (decided_by != me.id)
        return Status(Code::kPermissionDenied, c.table + "." + d.decided_by_column + " must name the user deciding ('" +
                                                   me.id + "')");
    }
    if (subject_table.empty() || subject_id.empty() || decision.empty())
      return Status::InvalidArgument("a decision record needs " + d.subject_table_column + ", " + d.subject_id_column +
                                     " and " + d.decision_column + " in one push");
    std::string subject_key;
    bool known = false;
    if (!(st = RowKey(subject_table, subject_id, &subject_key, &known)).ok()) return st;
    if (!known) return Status::NotFound("the subject " + subject_table + "/" + subject_id + " is not on the server");
    if (!batch->scope->Contains(subject_key))
      return Status(Code::kPermissionDenied, "the subject " + subject_table + "/" + subject_id +
                                                 " is not in the scope of user '" + me.id + "'");
    // The record is read by the subject's rep: it must name them.
    if (t->scope == ScopeRule::kAssignee) {
      std::string owner, rep;
      bool have_owner = false;
      if (!(st = KeyOwner(subject_key, &owner, &have_owner)).ok()) return st;
      if (!(st = value(t->scope_column, &rep)).ok()) return st;
      if (!have_owner || rep != owner)
        return Status::InvalidArgument(c.table + "." + t->scope_column + " must be the subject's rep ('" +
                                       (have_owner ? owner : std::string("none")) + "')");
    }
    const TableDef* subject = schema.Find(subject_table);
    if (subject && subject->workflow.enabled()) {
      const Workflow& wf = subject->workflow;
      if (std::find(wf.decisions.begin(), wf.decisions.end(), decision) == wf.decisions.end())
        return Status::Schema("'" + decision + "' is not a decision on " + subject_table);
      int rank = -1;
      if (!(st = StatusOf(*subject, subject_id, &rank)).ok()) return st;
      const ColumnDef* status = subject->Find(wf.status_column);
      bool waiting = rank == status->Rank(wf.frozen_from);
      bool decided = rank >= 0 && std::find(wf.decisions.begin(), wf.decisions.end(), status->values[rank]) !=
                                      wf.decisions.end();
      if (!waiting && !decided)
        return Status::InvalidArgument(subject_table + "/" + subject_id + " is " +
                                       (rank < 0 ? std::string("without a status") : status->values[rank]) +
                                       ": it is not awaiting a decision");
    }
  }
  // A frozen record: the workflow row itself, or a child row of one.
  const TableDef* wt = nullptr;
  std::vector<std::string> wrows;  // the rows whose state decides; a moved child names two
  if (t->workflow.enabled()) {
    wt = t;
    wrows.push_back(c.row);
  } else if (!t->parent_table.empty()) {
    const TableDef* p = schema.Find(t->parent_table);
    if (p && p->workflow.enabled()) {
      wt = p;
      // The parent the server holds (a pushed value may be refused); for a
      // new row, the batch's.
      std::string parent;
      bool have = false;
      static const KeyHints kNone;
      if (!(st = ValueOf(db, created ? hints : kNone, c.table, c.row, t->parent_column, &parent, &have)).ok())
        return st;
      if (have) wrows.push_back(parent);
      if (c.column == t->parent_column && c.value.is_string()) wrows.push_back(c.value.get<std::string>());
    }
  }
  if (!wt) return Status::OK();
  const Workflow& wf = wt->workflow;
  const ColumnDef* status = wt->Find(wf.status_column);
  bool status_change = wt == t && c.column == wf.status_column;
  auto listed = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  if (status_change && c.value.is_string()) {
    const std::string to = c.value.get<std::string>();
    if (listed(wf.decisions, to))
      return Status(Code::kPermissionDenied, c.table + "." + c.column + " becomes '" + to +
                                                 "' only through a decision record");
    // Past the decisions (delivered) only once approved, except the exits.
    int approving = status->Rank(wf.decisions.back());
    if (status->Rank(to) > approving && !listed(wf.exits, to)) {
      int rank = -1;
      if (!(st = StatusOf(*wt, c.row, &rank)).ok()) return st;
      if (rank < approving)
        return Status(Code::kPermissionDenied, c.table + "/" + c.row + " must be " + wf.decisions.back() +
                                                   " before it is " + to);
    }
  }
  // A revision replaces an earlier row of the same owner (a plan of the
  // same rep; an order of the same account), which is then in the writer's
  // scope too: the diff never shows someone else's rows.
  if (wt == t && c.column == wf.previous_column && c.value.is_string()) {
    if (c.value.get<std::string>() == c.row)
      return Status::InvalidArgument(c.table + "/" + c.row + " cannot be a revision of itself");
    std::string prev_key, owner, mine;
    bool known = false, have_owner = false;
    if (!(st = RowKey(t->name, c.value.get<std::string>(), &prev_key, &known)).ok()) return st;
    bool same = false;
    if (known && t->scope == ScopeRule::kAssignee) {
      if (!(st = KeyOwner(prev_key, &owner, &have_owner)).ok() || !(st = value(t->scope_column, &mine)).ok())
        return st;
      same = have_owner && owner == mine;
    } else if (known) {
      std::string key;
      bool fresh = false;
      if (!(st = DeriveRowKey(c, hints, &key, &fresh)).ok()) return st;
      same = key == prev_key;
    }
    if (!same)
      return Status::InvalidArgument(c.table + "." + c.column + " must name an earlier " + t->name +
                                     " of the same " + (t->scope == ScopeRule::kAssignee ? t->scope_column : "owner"));
  }
  // Frozen is judged as the server held the record before this batch: a
  // push that edits a draft and submits it, in any field order, goes through.
  for (const std::string& wrow : wrows) {
    auto key = std::make_pair(wt->name, wrow);
    if (batch->open.count(key)) continue;
    int rank = -1;
    if (!(st = StatusOf(*wt, wrow, &rank)).ok()) return st;
    bool frozen = rank >= status->Rank(wf.frozen_from);
    bool new_row = wt == t && created;
    if (!frozen || new_row) {
      batch->open.insert(key);
      continue;
    }
    if (status_change) continue;  // onward moves (voided, delivered); the state merge keeps it forward
    std::string how = wf.previous_column.empty() ? "" : " (a new " + wt->name + " row with " + wf.previous_column + ")";
    return Status(Code::kFrozen, wt->name + "/" + wrow + " is " + status->values[rank] +
                                     " and frozen: change it as a new revision" + how);
  }
  return Status::OK();
}

Status ServerStore::KeyOwner(const std::string& key, std::string* owner, bool* found) {
  *found = false;
  size_t slash = key.find('/');
  if (slash == std::string::npos) return Status::OK();
  Status st;
  Statement& s = store_.db().Prepare("SELECT owner FROM fs_rows WHERE tbl=? AND row_id=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, key.substr(0, slash)).Bind(2, key.substr(slash + 1));
  if (s.Step() && !s.IsNull(0)) {
    *owner = s.Text(0);
    *found = true;
  }
  st = s.status();
  s.Reset();
  return st;
}

Status ServerStore::WriteServerField(const std::string& table, const std::string& row, const std::string& column,
                                     const json& value, uint64_t now_ms, HybridClock* clock, const Actor* actor,
                                     std::vector<Change>* applied) {
  if (clock->node() != node_) return Status::InvalidArgument("a server write needs a clock of the server's node");
  const TableDef* t = store_.schema().Find(table);
  const ColumnDef* col = t ? t->Find(column) : nullptr;
  if (!col) return Status::NotFound("unknown column '" + table + "." + column + "'");
  FieldState cur;
  Status st = store_.LoadField(table, row, *col, &cur);
  if (!st.ok()) return st;
  std::vector<Change> changes;
  if (!(st = MakeLocalChanges(*t, *col, cur, row, value, clock, &changes)).ok()) return st;
  for (Change& c : changes) {
    c.server_ms = now_ms;
    std::string key;
    bool found = false;
    if (!(st = RowKey(table, row, &key, &found)).ok()) return st;
    if (!found) return Status::NotFound(table + "/" + row + " is not on the server");
    if (!(st = AppendLog(c, key, actor, &c.seq)).ok()) return st;
    ApplyOutcome outcome;
    if (!(st = store_.ApplyChange(c, &outcome)).ok()) return st;
    if (!(st = UpdateOwner(c)).ok()) return st;
    applied->push_back(std::move(c));
  }
  return Status::OK();
}

Status ServerStore::ApplyDecision(const std::string& table, const std::string& row, uint64_t now_ms,
                                  HybridClock* clock, std::vector<Change>* applied) {
  const TableDef* t = store_.schema().Find(table);
  if (!t || !t->decision.enabled()) return Status::OK();
  const DecisionRecord& d = t->decision;
  Database& db = store_.db();
  static const KeyHints kNone;
  // The record as stored once the whole push applied: its final values.
  auto stored = [&](const std::string& column, std::string* v, bool* have) {
    return ValueOf(db, kNone, table, row, column, v, have);
  };
  std::string subject_table, subject_id, decision, kind;
  bool have_t = false, have_id = false, have_d = false, have_kind = false;
  Status st;
  if (!(st = stored(d.subject_table_column, &subject_table, &have_t)).ok() ||
      !(st = stored(d.subject_id_column, &subject_id, &have_id)).ok() ||
      !(st = stored(d.decision_column, &decision, &have_d)).ok())
    return st;
  if (!d.kind_column.empty() && !(st = stored(d.kind_column, &kind, &have_kind)).ok()) return st;
  const TableDef* subject = store_.schema().Find(subject_table);
  bool known = false;
  std::string key;
  if (!have_t || !have_id || !have_d || !subject || !(st = RowKey(subject_table, subject_id, &key, &known)).ok() ||
      !known)
    return st;  // development mode: a decision on nothing decides nothing
  // The decisions already standing on the subject (the first one and those
  // that agree with it; a flagged one disagreed): a different one makes
  // this one a conflict, kept and flagged, and the first one stands.
  // Decisions of another kind (a visit request's approval, the visit's
  // review) neither conflict with this one nor stand in its way; on a
  // workflow subject every decision competes for its one status, whatever
  // its kind.
  bool by_kind = !d.kind_column.empty() && !subject->workflow.enabled();
  std::string same_kind = by_kind ? " AND COALESCE(" + Quote(d.kind_column) + ", '')=?" : "";
  Statement& q = db.Prepare("SELECT " + Quote(d.decision_column) + " FROM " + Quote(t->name) + " WHERE " +
                                Quote(d.subject_table_column) + "=? AND " + Quote(d.subject_id_column) +
                                "=? AND id<>? AND " + Quote(d.decision_column) + " IS NOT NULL AND NOT COALESCE(" +
                                Quote(d.flag_column) + ", 0)" + same_kind,
                            &st);
  if (!st.ok()) return st;
  q.Bind(1, subject_table).Bind(2, subject_id).Bind(3, row);
  if (by_kind) q.Bind(4, have_kind ? kind : std::string());
  bool earlier = false, conflict = false;
  while (q.Step()) {
    earlier = true;
    conflict |= q.Text(0) != decision;
  }
  st = q.status();
  q.Reset();
  if (!st.ok()) return st;
  // The consequences are the server's own writes (no user, no device in
  // the audit trail); the decision record names who decided.
  if (conflict) return WriteServerField(table, row, d.flag_column, true, now_ms, clock, nullptr, applied);
  if (earlier || !subject->workflow.enabled()) return Status::OK();
  const Workflow& wf = subject->workflow;
  if (std::find(wf.decisions.begin(), wf.decisions.end(), decision) == wf.decisions.end()) return Status::OK();
  int rank = -1;
  if (!(st = StatusOf(*subject, subject_id, &rank)).ok()) return st;
  const ColumnDef* status = subject->Find(wf.status_column);
  if (rank != status->Rank(wf.frozen_from)) return Status::OK();  // not waiting for a decision
  return WriteServerField(subject_table, subject_id, wf.status_column, decision, now_ms, clock, nullptr, applied);
}

Status ServerStore::RevisionDiff(const std::string& table, const std::string& row, json* out) {
  *out = json::object();
  const TableDef* t = store_.schema().Find(table);
  if (!t || !t->workflow.enabled()) return Status::InvalidArgument("'" + table + "' has no workflow");
  const Workflow& wf = t->workflow;
  std::string previous;
  bool have = false;
  Status st;
  if (!wf.previous_column.empty() &&
      !(st = ValueOf(store_.db(), {}, table, row, wf.previous_column, &previous, &have)).ok())
    return st;
  (*out)["previous"] = have ? json(previous) : json(nullptr);
  if (!have) return Status::OK();
  auto fields_of = [&](const std::string& id, json* fields) -> Status {
    Status s2 = store_.GetRow(table, id, fields);
    if (s2.code() != Code::kNotFound && s2.code() != Code::kDeleted) return s2;
    *fields = json::object();
    return Status::OK();
  };
  json now, before;
  if (!(st = fields_of(row, &now)).ok() || !(st = fields_of(previous, &before)).ok()) return st;
  json changed = json::object();
  for (const auto& c : t->columns) {
    if (c.name == wf.status_column || c.name == wf.previous_column || c.name == t->scope_column) continue;
    json a = before.value(c.name, json()), b = now.value(c.name, json());
    if (a != b) changed[c.name] = {{"from", a}, {"to", b}};
  }
  (*out)["changed"] = changed;
  if (wf.items_table.empty()) return Status::OK();
  // Items pair up by their key columns; what is left over was added or removed.
  const TableDef* items = store_.schema().Find(wf.items_table);
  // Several items may share a key (two visits to one store on one day):
  // they pair in id order.
  auto items_of = [&](const std::string& parent, std::map<std::string, std::vector<json>>* by_key) -> Status {
    Statement& s = store_.db().Prepare("SELECT id FROM " + Quote(items->name) + " WHERE " +
                                           Quote(items->parent_column) + "=? ORDER BY id",
                                       &st);
    if (!st.ok()) return st;
    s.Bind(1, parent);
    std::vector<std::string> ids;
    while (s.Step()) ids.push_back(s.Text(0));
    st = s.status();
    s.Reset();
    if (!st.ok()) return st;
    for (const auto& id : ids) {
      json item;
      st = store_.GetRow(items->name, id, &item);
      if (st.code() == Code::kNotFound || st.code() == Code::kDeleted) continue;  // not in the revision
      if (!st.ok()) return st;
      json k = json::array();
      for (const auto& col : wf.items_key) k.push_back(item.value(col, json()));
      item["id"] = id;
      (*by_key)[k.dump()].push_back(item);
    }
    return Status::OK();
  };
  std::map<std::string, std::vector<json>> old_items, new_items;
  if (!(st = items_of(previous, &old_items)).ok() || !(st = items_of(row, &new_items)).ok()) return st;
  json added = json::array(), removed = json::array(), changed_items = json::array();
  for (const auto& [k, now_list] : new_items) {
    auto it = old_items.find(k);
    size_t paired = it == old_items.end() ? 0 : std::min(it->second.size(), now_list.size());
    for (size_t i = 0; i < now_list.size(); ++i) {
      const json& item = now_list[i];
      if (i >= paired) {
        added.push_back(item);
        continue;
      }
      json fields = json::object();
      for (const auto& c : items->columns) {
        if (c.name == items->parent_column) continue;
        json a = it->second[i].value(c.name, json()), b = item.value(c.name, json());
        if (a != b) fields[c.name] = {{"from", a}, {"to", b}};
      }
      if (!fields.empty()) changed_items.push_back({{"key", json::parse(k)}, {"id", item["id"]}, {"fields", fields}});
    }
  }
  for (const auto& [k, old_list] : old_items) {
    auto it = new_items.find(k);
    size_t paired = it == new_items.end() ? 0 : std::min(it->second.size(), old_list.size());
    for (size_t i = paired; i < old_list.size(); ++i) removed.push_back(old_list[i]);
  }
  (*out)["items"] = {{"added", added}, {"removed", removed}, {"changed", changed_items}};
  return Status::OK();
}

}  // namespace fieldsync::store
