// ServerStore's identities and scope: users, revocations, every row's scope
// key (fs_rows) and the checks a device's push passes (docs/security.md).

#include <algorithm>
#include <set>

#include "store/server_store.h"
#include "store/server_rows.h"
#include "sync/protocol.h"

namespace fieldsync::store {

using internal::Quote;

Status internal::ValueOf(Database& db, const RowHints& hints, const std::string& table, const std::string& row,
                         const std::string& column, std::string* value, bool* found) {
  *found = false;
  auto r = hints.find({table, row});
  if (r != hints.end()) {
    auto it = r->second.find(column);
    if (it != r->second.end()) {
      *value = it->second;
      *found = true;
      return Status::OK();
    }
  }
  Status st;
  Statement& s = db.Prepare("SELECT " + Quote(column) + " FROM " + Quote(table) + " WHERE id=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, row);
  if (s.Step() && !s.IsNull(0)) {
    *value = s.Text(0);
    *found = true;
  }
  st = s.status();
  s.Reset();
  return st;
}

namespace {
const internal::RowHints kNoHints;
}  // namespace

const char* RoleName(Role r) {
  switch (r) {
    case Role::kRep: return "rep";
    case Role::kSupervisor: return "supervisor";
    case Role::kAdmin: return "admin";
  }
  return "?";
}

bool ParseRole(const std::string& s, Role* r) {
  if (s == "rep") *r = Role::kRep;
  else if (s == "supervisor") *r = Role::kSupervisor;
  else if (s == "admin") *r = Role::kAdmin;
  else return false;
  return true;
}

bool Scope::Contains(const std::string& key) const {
  return all || std::binary_search(keys.begin(), keys.end(), key);
}

std::string Scope::KeysJson() const { return json(keys).dump(); }

Status ServerStore::OpenIdentity() {
  Database& db = store_.db();
  Status st = db.Exec(
      "CREATE TABLE IF NOT EXISTS fs_users(id TEXT PRIMARY KEY, role TEXT NOT NULL, team TEXT NOT NULL DEFAULT '', "
      "region TEXT NOT NULL DEFAULT '', name TEXT NOT NULL DEFAULT '', active INTEGER NOT NULL DEFAULT 1);"
      "CREATE INDEX IF NOT EXISTS fs_users_by_team ON fs_users(team);"
      "CREATE TABLE IF NOT EXISTS fs_revoked(kind TEXT NOT NULL, value TEXT NOT NULL, at_ms INTEGER NOT NULL, "
      "PRIMARY KEY(kind, value)) WITHOUT ROWID;"
      // Every row's scope key, fixed when the row first arrives; `owner` is
      // the current assignee of an assignee-scoped row, kept even after the
      // row is deleted so its delete still reaches the owner's devices.
      "CREATE TABLE IF NOT EXISTS fs_rows(tbl TEXT NOT NULL, row_id TEXT NOT NULL, key TEXT NOT NULL, owner TEXT, "
      "PRIMARY KEY(tbl, row_id)) WITHOUT ROWID;"
      "CREATE INDEX IF NOT EXISTS fs_rows_by_owner ON fs_rows(owner) WHERE owner IS NOT NULL;"
      "CREATE INDEX IF NOT EXISTS fs_rows_by_key ON fs_rows(key);"
      "CREATE TABLE IF NOT EXISTS fs_device_keys(node INTEGER NOT NULL, user TEXT NOT NULL, key TEXT NOT NULL, "
      "PRIMARY KEY(node, user, key)) WITHOUT ROWID");
  if (!st.ok()) return st;
  // A log from before scopes lacks the columns: add them, then replay the
  // log once to give every row and entry its key.
  std::set<std::string> have;
  Statement& info = db.Prepare("SELECT name FROM pragma_table_info('fs_log')", &st);
  if (!st.ok()) return st;
  while (info.Step()) have.insert(info.Text(0));
  info.Reset();
  for (const char* col : {"scope", "user", "device"}) {
    if (have.count(col)) continue;
    std::string type = std::string(col) == "scope" ? " TEXT NOT NULL DEFAULT '?'" : " TEXT";
    if (!(st = db.Exec(std::string("ALTER TABLE fs_log ADD COLUMN ") + col + type)).ok()) return st;
  }
  if (!(st = db.Exec("CREATE INDEX IF NOT EXISTS fs_log_by_scope ON fs_log(scope, seq)")).ok()) return st;
  int64_t keyed = 0;
  if (!(st = store_.GetMetaInt("row_keys", 0, &keyed)).ok()) return st;
  if (keyed) return Status::OK();
  Transaction tx(&db);
  if (!tx.status().ok()) return tx.status();
  std::vector<std::pair<int64_t, Change>> entries;
  {
    Statement& s = db.Prepare("SELECT seq, change FROM fs_log ORDER BY seq", &st);
    if (!st.ok()) return st;
    while (s.Step()) {
      Change c;
      if (!ChangeFromJson(json::parse(s.Text(1), nullptr, false), &c).ok()) continue;
      entries.emplace_back(s.Int(0), std::move(c));
    }
    st = s.status();
    s.Reset();
    if (!st.ok()) return st;
  }
  std::vector<Change> all;
  for (auto& e : entries) all.push_back(e.second);
  KeyHints hints;
  CollectKeyHints(store_.schema(), all, &hints);
  for (auto& [seq, c] : entries) {
    if (!store_.schema().Find(c.table)) continue;
    std::string key;
    bool created = false;
    if (!(st = DeriveRowKey(c, hints, &key, &created)).ok()) {
      if (st.code() != Code::kNotFound) return st;
      key = "?";
    }
    if (created && !(st = StoreRowKey(c.table, c.row, key)).ok()) return st;
    if (!(st = UpdateOwner(c)).ok()) return st;
    Statement& u = db.Prepare("UPDATE fs_log SET scope=? WHERE seq=?", &st);
    if (!st.ok()) return st;
    u.Bind(1, key).Bind(2, seq);
    if (!(st = u.Run()).ok()) return st;
  }
  if (!(st = store_.SetMetaInt("row_keys", 1)).ok()) return st;
  return tx.Commit();
}

Status ServerStore::ImportOutbox(const std::string& text, const Actor* actor, uint64_t now_ms, HybridClock* clock,
                                 ImportReport* report) {
  *report = ImportReport{};
  std::vector<Change> changes;
  NodeId node = 0;
  size_t at = 0, line = 0;
  int64_t declared = -1;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    std::string l = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? text.size() : nl + 1;
    ++line;
    if (l.empty()) continue;
    json j = json::parse(l, nullptr, false);
    auto where = [&](const std::string& m) { return Status::InvalidArgument("line " + std::to_string(line) + ": " + m); };
    if (line == 1) {
      if (!j.is_object() || j.value("fieldsync_outbox", 0) != 1 || !j.contains("node") || !j["node"].is_string() ||
          !ParseHex(j["node"].get<std::string>(), &node) || node == 0)
        return where("not a FieldSync outbox export (no header)");
      if (j.value("schema", "") != store_.schema().fingerprint())
        return where("exported with another schema (fingerprint " + j.value("schema", std::string("?")) + ")");
      declared = j.value("changes", int64_t{-1});
      continue;
    }
    Change c;
    Status st = ChangeFromJson(j, &c);
    if (!st.ok()) return where(st.message());
    if (c.stamp.node != node) return where("a change of node " + ToHex(c.stamp.node) + " in the export of " + ToHex(node));
    changes.push_back(std::move(c));
  }
  if (declared != static_cast<int64_t>(changes.size()))
    return Status::InvalidArgument("the export is truncated: its header says " + std::to_string(declared) +
                                   " changes, it holds " + std::to_string(changes.size()));
  // In push-sized batches, in order: a parent before the rows that need it.
  const size_t kBatch = 1000;
  for (size_t from = 0; from < changes.size(); from += kBatch) {
    std::vector<Change> batch(changes.begin() + from, changes.begin() + std::min(changes.size(), from + kBatch));
    std::vector<PushResult> results;
    std::vector<Change> applied;
    Status st = ApplyBatch(batch, now_ms, clock, &results, &applied, Writer::kDevice, actor);
    if (!st.ok()) return st;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (results[i].result == ChangeResult::kApplied) ++report->applied;
      else if (results[i].result == ChangeResult::kDuplicate) ++report->duplicates;
      else report->rejected.emplace_back(batch[i], results[i]);
    }
    for (auto& c : applied) report->changes.push_back(std::move(c));
  }
  return Status::OK();
}

// ---- users and revocation ---------------------------------------------------------------

Status ServerStore::PutUser(const User& u) {
  if (!ValidRowId(u.id)) return Status::InvalidArgument("bad user id '" + u.id + "'");
  if (u.team.size() > 64 || u.region.size() > 64 || u.name.size() > 256)
    return Status::Limit("team and region are at most 64 bytes, name 256");
  Status st;
  Statement& s = store_.db().Prepare(
      "INSERT INTO fs_users(id, role, team, region, name, active) VALUES(?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
      "role=excluded.role, team=excluded.team, region=excluded.region, name=excluded.name, active=excluded.active",
      &st);
  if (!st.ok()) return st;
  s.Bind(1, u.id).Bind(2, RoleName(u.role)).Bind(3, u.team).Bind(4, u.region).Bind(5, u.name).Bind(6, u.active ? 1 : 0);
  return s.Run();
}

namespace {
void UserFromRow(const Statement& s, User* u) {
  u->id = s.Text(0);
  ParseRole(s.Text(1), &u->role);
  u->team = s.Text(2);
  u->region = s.Text(3);
  u->name = s.Text(4);
  u->active = s.Int(5) != 0;
}
}  // namespace

Status ServerStore::GetUser(const std::string& id, User* u, bool* found) {
  *found = false;
  Status st;
  Statement& s = store_.db().Prepare("SELECT id, role, team, region, name, active FROM fs_users WHERE id=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, id);
  if (s.Step()) {
    UserFromRow(s, u);
    *found = true;
  }
  st = s.status();
  s.Reset();
  return st;
}

Status ServerStore::ListUsers(std::vector<User>* out) {
  out->clear();
  Status st;
  Statement& s = store_.db().Prepare("SELECT id, role, team, region, name, active FROM fs_users ORDER BY id", &st);
  if (!st.ok()) return st;
  while (s.Step()) {
    out->emplace_back();
    UserFromRow(s, &out->back());
  }
  st = s.status();
  s.Reset();
  return st;
}

Status ServerStore::Revoke(const std::string& kind, const std::string& value, uint64_t now_ms) {
  if (kind != "device" && kind != "token") return Status::InvalidArgument("revoke a 'device' or a 'token'");
  if (value.empty() || value.size() > 128) return Status::InvalidArgument("revoke needs a value of 1 to 128 bytes");
  Status st;
  Statement& s = store_.db().Prepare("INSERT OR IGNORE INTO fs_revoked(kind, value, at_ms) VALUES(?,?,?)", &st);
  if (!st.ok()) return st;
  s.Bind(1, kind).Bind(2, value).Bind(3, now_ms);
  return s.Run();
}

Status ServerStore::IsRevoked(const std::string& kind, const std::string& value, bool* revoked) {
  Status st;
  Statement& s = store_.db().Prepare("SELECT 1 FROM fs_revoked WHERE kind=? AND value=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, kind).Bind(2, value);
  *revoked = s.Step();
  st = s.status();
  s.Reset();
  return st;
}

// ---- scope ------------------------------------------------------------------------------

Status ServerStore::ComputeScope(const Actor& actor, Scope* out) {
  *out = Scope{};
  if (actor.user.role == Role::kAdmin) {
    out->all = true;
    return Status::OK();
  }
  Database& db = store_.db();
  Status st;
  // The users whose rows this actor sees: a rep themselves; a supervisor
  // everyone who shares their team.
  std::vector<std::string> users{actor.user.id};
  std::set<std::string> keys{"*"};
  if (!actor.user.region.empty()) keys.insert("region/" + actor.user.region);
  if (actor.user.role == Role::kSupervisor && !actor.user.team.empty()) {
    Statement& s = db.Prepare("SELECT id, region FROM fs_users WHERE team=? AND active=1 AND id != ?", &st);
    if (!st.ok()) return st;
    s.Bind(1, actor.user.team).Bind(2, actor.user.id);
    while (s.Step()) {
      users.push_back(s.Text(0));
      if (!s.Text(1).empty()) keys.insert("region/" + s.Text(1));
    }
    st = s.status();
    s.Reset();
    if (!st.ok()) return st;
  }
  Statement& s = db.Prepare("SELECT key FROM fs_rows WHERE owner IN (SELECT value FROM json_each(?))", &st);
  if (!st.ok()) return st;
  s.Bind(1, json(users).dump());
  while (s.Step()) keys.insert(s.Text(0));
  st = s.status();
  s.Reset();
  if (!st.ok()) return st;
  out->keys.assign(keys.begin(), keys.end());
  return Status::OK();
}

Status ServerStore::DeviceKeys(NodeId node, const std::string& user, std::vector<std::string>* keys) {
  keys->clear();
  Status st;
  Statement& s = store_.db().Prepare("SELECT key FROM fs_device_keys WHERE node=? AND user=? ORDER BY key", &st);
  if (!st.ok()) return st;
  s.Bind(1, node).Bind(2, user);
  while (s.Step()) keys->push_back(s.Text(0));
  st = s.status();
  s.Reset();
  return st;
}

Status ServerStore::UpdateDeviceKeys(NodeId node, const std::string& user, const std::vector<std::string>& add,
                                     const std::vector<std::string>& remove, bool replace) {
  Database& db = store_.db();
  Transaction tx(&db);
  if (!tx.status().ok()) return tx.status();
  Status st;
  if (replace) {
    Statement& d = db.Prepare("DELETE FROM fs_device_keys WHERE node=? AND user=?", &st);
    if (!st.ok()) return st;
    d.Bind(1, node).Bind(2, user);
    if (!(st = d.Run()).ok()) return st;
  }
  for (const auto& k : remove) {
    Statement& d = db.Prepare("DELETE FROM fs_device_keys WHERE node=? AND user=? AND key=?", &st);
    if (!st.ok()) return st;
    d.Bind(1, node).Bind(2, user).Bind(3, k);
    if (!(st = d.Run()).ok()) return st;
  }
  for (const auto& k : add) {
    Statement& i = db.Prepare("INSERT OR IGNORE INTO fs_device_keys(node, user, key) VALUES(?,?,?)", &st);
    if (!st.ok()) return st;
    i.Bind(1, node).Bind(2, user).Bind(3, k);
    if (!(st = i.Run()).ok()) return st;
  }
  return tx.Commit();
}

Status ServerStore::History(const std::string& table, const std::string& row, size_t limit,
                            std::vector<AuditEntry>* out) {
  out->clear();
  Status st;
  Statement& s = store_.db().Prepare(
      "SELECT * FROM (SELECT seq, change, coalesce(user, ''), coalesce(device, '') FROM fs_log "
      "WHERE json_extract(change, '$.t')=? AND json_extract(change, '$.r')=? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
      &st);
  if (!st.ok()) return st;
  s.Bind(1, table).Bind(2, row).Bind(3, static_cast<int64_t>(limit));
  while (s.Step()) {
    AuditEntry e;
    if (!ChangeFromJson(json::parse(s.Text(1), nullptr, false), &e.change).ok()) continue;
    e.change.seq = s.Int(0);
    e.user = s.Text(2);
    e.device = s.Text(3);
    out->push_back(std::move(e));
  }
  st = s.status();
  s.Reset();
  return st;
}

json AuditEntryJson(const ServerStore::AuditEntry& e) {
  json j = {{"seq", e.change.seq},
            {"user", e.user},
            {"device", e.device},
            {"node", ToHex(e.change.stamp.node)},
            {"hlc_ms", HlcPhysical(e.change.stamp.hlc)},
            {"received_ms", e.change.server_ms},
            {"op", OpName(e.change.op)}};
  if (!e.change.column.empty()) j["column"] = e.change.column;
  if (e.change.op != Op::kDelete) j["value"] = e.change.value;
  return j;
}

Status ServerStore::FirstKeys(const Scope& scope, const std::string& today, size_t limit,
                              std::vector<std::string>* keys) {
  keys->clear();
  std::set<std::string> seen;
  Status st;
  for (const auto& t : store_.schema().tables()) {
    if (t.first_date_column.empty()) continue;
    // Dates may carry a time ("2026-12-02T09:30"): the day is the prefix.
    Statement& s = store_.db().Prepare(
        "SELECT r.key FROM " + ("\"" + t.name + "\"") + " x JOIN fs_rows r ON r.tbl=? AND r.row_id=x.id WHERE substr(x.\"" +
            t.first_date_column + "\", 1, 10)=? ORDER BY x.id",
        &st);
    if (!st.ok()) return st;
    s.Bind(1, t.name).Bind(2, today);
    while (s.Step() && keys->size() < limit) {
      std::string k = s.Text(0);
      if (scope.Contains(k) && seen.insert(k).second) keys->push_back(k);
    }
    st = s.status();
    s.Reset();
    if (!st.ok()) return st;
  }
  return Status::OK();
}

Status ServerStore::CountRows(const Scope& scope, int64_t* n) {
  Status st;
  Statement& s = scope.all ? store_.db().Prepare("SELECT count(*) FROM fs_rows", &st)
                           : store_.db().Prepare(
                                 "SELECT count(*) FROM fs_rows WHERE key IN (SELECT value FROM json_each(?))", &st);
  if (!st.ok()) return st;
  if (!scope.all) s.Bind(1, scope.KeysJson());
  *n = s.Step() ? s.Int(0) : 0;
  st = s.status();
  s.Reset();
  return st;
}

Status ServerStore::RowKey(const std::string& table, const std::string& row, std::string* key, bool* found) {
  *found = false;
  Status st;
  Statement& s = store_.db().Prepare("SELECT key FROM fs_rows WHERE tbl=? AND row_id=?", &st);
  if (!st.ok()) return st;
  s.Bind(1, table).Bind(2, row);
  if (s.Step()) {
    *key = s.Text(0);
    *found = true;
  }
  st = s.status();
  s.Reset();
  return st;
}

void ServerStore::CollectKeyHints(const Schema& schema, const std::vector<Change>& changes, KeyHints* hints) {
  for (const Change& c : changes) {
    if (c.op != Op::kSet || !c.value.is_string()) continue;
    const TableDef* t = schema.Find(c.table);
    if (!t) continue;
    const DecisionRecord& d = t->decision;
    bool subject = d.enabled() && (c.column == d.subject_table_column || c.column == d.subject_id_column ||
                                   c.column == d.decision_column || c.column == d.decided_by_column ||
                                   c.column == d.kind_column);
    if (c.column != t->parent_column && c.column != t->scope_column && !subject) continue;
    (*hints)[{c.table, c.row}][c.column] = c.value.get<std::string>();
  }
}

Status ServerStore::DeriveRowKey(const Change& c, const KeyHints& hints, std::string* key, bool* created) {
  *created = false;
  bool found = false;
  Status st = RowKey(c.table, c.row, key, &found);
  if (!st.ok() || found) return st;
  const Schema& schema = store_.schema();
  const TableDef* t = schema.Find(c.table);
  if (!t) return Status::NotFound("unknown table '" + c.table + "'");
  // The value a new row gives one of its key columns: from this batch, else
  // what the server already holds for it.
  auto value_of = [&](const std::string& column, std::string* v, bool* have) {
    return internal::ValueOf(store_.db(), hints, c.table, c.row, column, v, have);
  };
  switch (t->scope) {
    case ScopeRule::kEveryone: *key = "*"; break;
    case ScopeRule::kAssignee: *key = c.table + "/" + c.row; break;
    case ScopeRule::kRegion: {
      std::string region;
      bool have = false;
      if (!(st = value_of(t->scope_column, &region, &have)).ok()) return st;
      *key = "region/" + region;
      break;
    }
    case ScopeRule::kParent: {
      std::string parent;
      bool have = false;
      if (!(st = value_of(t->parent_column, &parent, &have)).ok()) return st;
      if (!have || parent.empty())
        return Status::NotFound(c.table + "/" + c.row + " has no " + t->parent_column + ": its scope is unknown");
      bool known = false;
      if (!(st = RowKey(t->parent_table, parent, key, &known)).ok()) return st;
      if (!known)
        return Status::NotFound("parent " + t->parent_table + "/" + parent + " of " + c.table + "/" + c.row +
                                " is not on the server (refused or never sent)");
      break;
    }
  }
  *created = true;
  return Status::OK();
}

Status ServerStore::StoreRowKey(const std::string& table, const std::string& row, const std::string& key) {
  Status st;
  Statement& s = store_.db().Prepare("INSERT OR IGNORE INTO fs_rows(tbl, row_id, key) VALUES(?,?,?)", &st);
  if (!st.ok()) return st;
  s.Bind(1, table).Bind(2, row).Bind(3, key);
  return s.Run();
}

Status ServerStore::UpdateOwner(const Change& c) {
  const TableDef* t = store_.schema().Find(c.table);
  if (!t || t->scope != ScopeRule::kAssignee || c.column != t->scope_column) return Status::OK();
  // The merged value, not the pushed one: a losing write must not move the row.
  std::string owner;
  bool have = false;
  Status st = internal::ValueOf(store_.db(), kNoHints, c.table, c.row, c.column, &owner, &have);
  if (!st.ok()) return st;
  bool deleted = false;
  if (!(st = store_.IsDeleted(c.table, c.row, &deleted)).ok() || deleted) return st;
  Statement& u = store_.db().Prepare("UPDATE fs_rows SET owner=? WHERE tbl=? AND row_id=?", &st);
  if (!st.ok()) return st;
  if (have && !owner.empty()) u.Bind(1, owner);
  else u.BindNull(1);
  u.Bind(2, c.table).Bind(3, c.row);
  return u.Run();
}

Status ServerStore::Authorize(const Actor& actor, const Change& c, const KeyHints& hints, const std::string& key,
                              bool created, Scope* scope) {
  const User& me = actor.user;
  if (!me.active) return Status(Code::kPermissionDenied, "user '" + me.id + "' is deactivated");
  const TableDef* t = store_.schema().Find(c.table);
  const ColumnDef* col = c.column.empty() ? nullptr : t->Find(c.column);
  Status st;
  // Who the row is (or would be) assigned to, if this change names someone.
  auto assignee_ok = [&](const std::string& who) -> Status {
    if (who.empty()) return Status::OK();
    User u;
    bool found = false;
    if (!(st = GetUser(who, &u, &found)).ok()) return st;
    if (!found || !u.active) return Status(Code::kPermissionDenied, "no active user '" + who + "' to assign to");
    if (me.role == Role::kAdmin || who == me.id) return Status::OK();
    if (me.role == Role::kSupervisor && !me.team.empty() && u.team == me.team) return Status::OK();
    return Status(Code::kPermissionDenied, "user '" + who + "' is not in your team");
  };
  if (!scope->Contains(key)) {
    // A rep may open a new account of their own: a new assignee-scoped row
    // whose assignee, in this batch, is the rep (or, for a supervisor, the
    // team). The row is theirs from here on in this batch.
    bool opens = false;
    if (created && t->scope == ScopeRule::kAssignee) {
      auto row = hints.find({c.table, c.row});
      if (row != hints.end()) {
        auto it = row->second.find(t->scope_column);
        opens = it != row->second.end() && !it->second.empty() && assignee_ok(it->second).ok();
      }
    }
    if (!opens)
      return Status(Code::kPermissionDenied, c.table + "/" + c.row + " is not in the scope of user '" + me.id + "'");
    scope->keys.insert(std::lower_bound(scope->keys.begin(), scope->keys.end(), key), key);
  }
  if (!col) return Status::OK();  // a delete of a row in scope
  if (col->supervisor_only && me.role == Role::kRep) {
    // Opening an account assigned to oneself is the one exception.
    bool self_assign = created && t->scope == ScopeRule::kAssignee && c.column == t->scope_column &&
                       c.value.is_string() && c.value.get<std::string>() == me.id;
    if (!self_assign)
      return Status(Code::kPermissionDenied, "column '" + c.table + "." + c.column + "' is written by supervisors only");
  }
  if (t->scope == ScopeRule::kAssignee && c.column == t->scope_column && c.value.is_string())
    if (Status a = assignee_ok(c.value.get<std::string>()); !a.ok()) return a;
  // A row's key is fixed when it is created: whatever its parent (or
  // region) column is set to, then or later, must give that same key, so no
  // value can hang the row under someone else's account.
  bool parent_col = t->scope == ScopeRule::kParent && c.column == t->parent_column;
  bool region_col = t->scope == ScopeRule::kRegion && c.column == t->scope_column;
  if (parent_col || region_col) {
    std::string implied;
    bool known = false;
    if (c.value.is_string() && region_col) {
      implied = "region/" + c.value.get<std::string>();
      known = true;
    } else if (c.value.is_string()) {
      if (!(st = RowKey(t->parent_table, c.value.get<std::string>(), &implied, &known)).ok()) return st;
    }
    if (!known || implied != key)
      return Status::InvalidArgument("the " + c.column + " of " + c.table + "/" + c.row +
                                     " cannot move it out of where it was created");
  }
  return Status::OK();
}

}  // namespace fieldsync::store
