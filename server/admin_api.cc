#include "server/admin_api.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <random>

namespace fieldsync::server {

namespace http = boost::beast::http;
using store::Actor;
using store::Role;
using store::Scope;
using store::User;

namespace {

// An error the API answers with: a Status and the HTTP status for its kind.
http::status HttpStatusOf(Code c) {
  switch (c) {
    case Code::kInvalidArgument:
    case Code::kSchemaViolation:
    case Code::kProtocolError: return http::status::bad_request;
    case Code::kUnauthenticated: return http::status::unauthorized;
    case Code::kPermissionDenied: return http::status::forbidden;
    case Code::kNotFound:
    case Code::kDeleted: return http::status::not_found;
    case Code::kFrozen: return http::status::conflict;
    case Code::kLimitExceeded: return http::status::payload_too_large;
    case Code::kUnsupported: return http::status::method_not_allowed;
    case Code::kIoError:
    case Code::kBusy: return http::status::service_unavailable;
    default: return http::status::internal_server_error;
  }
}

json UserJson(const User& u) {
  return {{"id", u.id}, {"role", store::RoleName(u.role)}, {"team", u.team},
          {"region", u.region}, {"name", u.name}, {"active", u.active}};
}

// The Friday before the date "YYYY-MM-DD" (a plan's week_start; the plan
// is due then, domain.md 2.4), or "" for a malformed or impossible date.
std::string FridayBefore(const std::string& date) {
  int y = 0;
  unsigned m = 0, d = 0;
  if (date.size() < 10 || std::sscanf(date.c_str(), "%4d-%2u-%2u", &y, &m, &d) != 3) return "";
  std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  if (!ymd.ok()) return "";
  std::chrono::sys_days day{ymd};
  do day -= std::chrono::days{1};
  while (std::chrono::weekday{day} != std::chrono::Friday);
  std::chrono::year_month_day r{day};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(r.year()), static_cast<unsigned>(r.month()),
                static_cast<unsigned>(r.day()));
  return buf;
}

std::string NowIso(uint64_t ms) {
  std::chrono::sys_seconds s{std::chrono::seconds{ms / 1000}};
  auto day = std::chrono::floor<std::chrono::days>(s);
  std::chrono::year_month_day ymd{day};
  std::chrono::hh_mm_ss hms{s - day};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string NewId(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%016llx", prefix.c_str(), static_cast<unsigned long long>(rng()));
  return buf;
}

// %XX decoded ('+' stays: ids and enum values never hold spaces).
std::string Unescape(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() &&
        std::isxdigit(static_cast<unsigned char>(in[i + 1])) && std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// The path split at '/', without the prefix and the query.
std::vector<std::string> Segments(const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::string> out;
  size_t at = std::string(kAdminPrefix).size();
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    if (slash > at) out.push_back(Unescape(path.substr(at, slash - at)));
    at = slash + 1;
  }
  return out;
}

std::string QueryParam(const std::string& target, const std::string& name) {
  size_t q = target.find('?');
  if (q == std::string::npos) return "";
  std::string query = target.substr(q + 1);
  size_t at = 0;
  while (at < query.size()) {
    size_t amp = query.find('&', at);
    if (amp == std::string::npos) amp = query.size();
    std::string pair = query.substr(at, amp - at);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string::npos ? "" : Unescape(pair.substr(eq + 1));
    at = amp + 1;
  }
  return "";
}

// One request being answered: who asks, what they may see, the reply.
class Call {
 public:
  Call(Hub& hub, const AdminRequest& req) : hub_(hub), req_(req), path_(Segments(std::string(req.target()))) {}

  AdminResponse Run() {
    if (!hub_.auth_enabled())
      return Error(http::status::not_found, Status(Code::kUnsupported, "the admin API needs authentication: start "
                                                                       "the server with --auth-key-file"));
    // Targets are ASCII (ids, enum values): anything else is refused before
    // it could reach an error message.
    for (char ch : req_.target())
      if (static_cast<unsigned char>(ch) < 0x21 || static_cast<unsigned char>(ch) > 0x7e)
        return Error(http::status::bad_request, Status::InvalidArgument("the request target must be printable ASCII"));
    try {
      Status st = Authenticate();
      if (st.ok()) st = Route();
      if (!st.ok()) return Error(HttpStatusOf(st.code()), st);
      return Reply(status_, body_);
    } catch (const std::exception& e) {
      // A bug, not the caller's fault; the server keeps serving everyone else.
      hub_.Log(std::string("admin API: unexpected exception: ") + e.what());
      return Error(http::status::internal_server_error, Status::IoError("internal error"));
    }
  }

 private:
  Status Authenticate() {
    if (!hub_.auth_enabled())
      return Status(Code::kUnsupported, "the admin API needs authentication: start the server with --auth-key-file");
    std::string auth(req_[http::field::authorization]);
    if (auth.size() <= 7 || (auth.rfind("Bearer ", 0) != 0 && auth.rfind("bearer ", 0) != 0))
      return Status(Code::kUnauthenticated, "token missing: send Authorization: Bearer <token>");
    Status st = hub_.Authenticate(auth.substr(7), &actor_);
    if (!st.ok()) return st;
    if (actor_.user.role == Role::kRep)
      return Status(Code::kPermissionDenied, "the admin API is for supervisors and admins; reps sync");
    return hub_.ComputeScope(actor_, &scope_);
  }

  bool admin() const { return actor_.user.role == Role::kAdmin; }
  Status AdminOnly() const {
    return admin() ? Status::OK() : Status(Code::kPermissionDenied, "admins only");
  }
  // The body of a request only admins may make, once the caller is one.
  Status AdminBody(json* out) {
    Status st = AdminOnly();
    return st.ok() ? Body(out) : st;
  }
  bool Is(http::verb v, std::initializer_list<const char*> shape) const {
    if (req_.method() != v || path_.size() != shape.size()) return false;
    size_t i = 0;
    for (const char* s : shape) {
      if (std::string(s) != "*" && path_[i] != s) return false;
      ++i;
    }
    return true;
  }
  Status Body(json* out) {
    if (!JsonDepthWithin(req_.body(), hub_.options().limits.max_json_depth))
      return Status::Limit("the body nests deeper than " + std::to_string(hub_.options().limits.max_json_depth));
    *out = json::parse(req_.body(), nullptr, false);
    if (out->is_discarded() || !out->is_object()) return Status::InvalidArgument("the body must be a JSON object");
    return Status::OK();
  }
  Status Ok(json body, http::status s = http::status::ok) {
    body_ = std::move(body);
    status_ = s;
    return Status::OK();
  }
  // Whether the caller may see user `u`: admins everyone, a supervisor their team.
  bool Sees(const User& u) const {
    return admin() || u.id == actor_.user.id || (!actor_.user.team.empty() && u.team == actor_.user.team);
  }
  Status RowKeyVisible(const std::string& table, const std::string& id) {
    std::string key;
    bool found = false;
    Status st = hub_.WithStore([&](store::ServerStore& s) { return s.RowKey(table, id, &key, &found); });
    if (!st.ok()) return st;
    if (!found) return Status::NotFound(table + "/" + id + " is not on the server");
    if (!scope_.Contains(key)) return Status(Code::kPermissionDenied, table + "/" + id + " is not in your scope");
    return Status::OK();
  }
  // Every row of `table` matching `where` in the caller's scope (by each
  // row's key, as a device's pull), read a page at a time under one hold
  // of the lock, so the list is one consistent state.
  Status Rows(const std::string& table, const json& where, std::vector<json>* out) {
    store::QueryOptions q;
    q.where = where;
    q.limit = 1000;
    return hub_.WithStore([&](store::ServerStore& s) {
      for (bool more = true; more; q.offset += q.limit) {
        std::vector<json> page;
        Status s2 = s.store().Query(table, q, &page);
        if (!s2.ok()) return s2;
        more = static_cast<int64_t>(page.size()) == q.limit;
        for (auto& r : page) {
          std::string key;
          bool found = false;
          if (!(s2 = s.RowKey(table, r.value("id", std::string()), &key, &found)).ok()) return s2;
          if (found && scope_.Contains(key)) out->push_back(std::move(r));
        }
      }
      return Status::OK();
    });
  }

  Status Route() {
    using V = http::verb;
    if (path_.empty()) return Status::NotFound("no such endpoint");
    const std::string& what = path_[0];
    if (Is(V::get, {"me"})) return Ok(UserJson(actor_.user));
    if (what == "users") {
      if (Is(V::get, {"users"})) return ListUsers();
      if (Is(V::get, {"users", "*"})) return GetUser(path_[1]);
      if (Is(V::put, {"users", "*"})) return PutUser(path_[1]);
    } else if (what == "teams") {
      if (Is(V::get, {"teams"})) return Teams();
    } else if (what == "devices") {
      if (Is(V::get, {"devices"})) return Devices();
    } else if (what == "tokens") {
      if (Is(V::post, {"tokens"})) return IssueToken();
    } else if (what == "revocations") {
      if (Is(V::post, {"revocations"})) return Revoke();
    } else if (what == "assignments") {
      if (Is(V::get, {"assignments"})) return Assignments();
      if (Is(V::put, {"assignments", "*"})) return Assign(path_[1]);
    } else if (what == "plans") {
      if (Is(V::get, {"plans"})) return Plans();
      if (Is(V::get, {"plans", "*"})) return Plan(path_[1]);
      if (Is(V::post, {"plans", "*", "decisions"})) return DecidePlan(path_[1]);
    } else if (what == "approvals") {
      if (Is(V::post, {"approvals"})) return Decide();
    } else if (what == "history") {
      if (Is(V::get, {"history", "*", "*"})) return History(path_[1], path_[2]);
    } else {
      return Status::NotFound("no such endpoint: " + std::string(req_.target()));
    }
    return Status(Code::kUnsupported, std::string(req_.method_string()) + " is not allowed on " +
                                          std::string(req_.target().substr(0, req_.target().find('?'))));
  }

  // ---- users and teams -------------------------------------------------------
  Status ListUsers() {
    std::vector<User> users;
    Status st = hub_.ListUsers(&users);
    if (!st.ok()) return st;
    json out = json::array();
    for (const auto& u : users)
      if (Sees(u)) out.push_back(UserJson(u));
    return Ok({{"users", out}});
  }
  Status GetUser(const std::string& id) {
    User u;
    bool found = false;
    Status st = hub_.GetUser(id, &u, &found);
    if (!st.ok()) return st;
    if (!found || !Sees(u)) return Status::NotFound("no user '" + id + "'");
    return Ok(UserJson(u));
  }
  // Admins create and change anyone. A supervisor moves reps into or out
  // of their own team, and changes nothing else.
  Status PutUser(const std::string& id) {
    json b;
    Status st = Body(&b);
    if (!st.ok()) return st;
    User u;
    bool found = false;
    if (!(st = hub_.GetUser(id, &u, &found)).ok()) return st;
    if (!found) u.id = id;
    for (const auto& [k, v] : b.items()) {
      if (k == "active") {
        if (!v.is_boolean()) return Status::InvalidArgument("'active' must be true or false");
        u.active = v.get<bool>();
        continue;
      }
      if (!v.is_string()) return Status::InvalidArgument("'" + k + "' must be a string");
      const std::string s = v.get<std::string>();
      if (s.size() > 128) return Status::InvalidArgument("'" + k + "' is longer than 128 bytes");
      if (k == "role") {
        if (!store::ParseRole(s, &u.role)) return Status::InvalidArgument("role must be rep, supervisor or admin");
      } else if (k == "team") {
        u.team = s;
      } else if (k == "region") {
        u.region = s;
      } else if (k == "name") {
        u.name = s;
      } else {
        return Status::InvalidArgument("unknown field '" + k + "'");
      }
    }
    if (!admin()) {
      const std::string& mine = actor_.user.team;
      bool team_only = b.size() == 1 && b.contains("team");
      bool a_rep = found && u.role == Role::kRep;
      User before;
      bool had = false;
      if (!(st = hub_.GetUser(id, &before, &had)).ok()) return st;
      bool from_ok = before.team.empty() || before.team == mine;
      bool to_ok = u.team.empty() || u.team == mine;
      if (!team_only || !a_rep || mine.empty() || !from_ok || !to_ok)
        return Status(Code::kPermissionDenied,
                      "a supervisor moves existing reps into or out of their own team only ('" + mine + "')");
    }
    if (!(st = hub_.PutUser(u)).ok())
      return st.code() == Code::kLimitExceeded ? Status::InvalidArgument(st.message()) : st;
    return Ok(UserJson(u), found ? http::status::ok : http::status::created);
  }
  Status Teams() {
    std::vector<User> users;
    Status st = hub_.ListUsers(&users);
    if (!st.ok()) return st;
    std::map<std::string, json> teams;
    for (const auto& u : users) {
      if (u.team.empty() || !Sees(u)) continue;
      json& t = teams[u.team];
      if (t.is_null()) t = {{"team", u.team}, {"supervisors", json::array()}, {"reps", json::array()}};
      if (u.role == Role::kSupervisor) t["supervisors"].push_back(u.id);
      else if (u.role == Role::kRep) t["reps"].push_back(u.id);
    }
    json out = json::array();
    for (auto& [name, t] : teams) out.push_back(std::move(t));
    return Ok({{"teams", out}});
  }

  // ---- devices and tokens ------------------------------------------------------
  Status Devices() {
    std::vector<Hub::DeviceStatus> devices;
    Status st = hub_.Devices(&devices);
    if (!st.ok()) return st;
    std::vector<User> users;
    if (!(st = hub_.ListUsers(&users)).ok()) return st;
    std::map<std::string, User> by_id;
    for (const auto& u : users) by_id[u.id] = u;
    int64_t head = hub_.head();
    uint64_t now = hub_.NowMs();
    json out = json::array();
    for (const auto& d : devices) {
      auto u = by_id.find(d.user);
      if (!admin() && (u == by_id.end() || !Sees(u->second))) continue;
      out.push_back({{"node", ToHex(d.node)},
                     {"user", d.user.empty() ? json() : json(d.user)},
                     {"device", d.device.empty() ? json() : json(d.device)},
                     {"last_seen_ms", d.seen_ms},
                     {"idle_s", now > d.seen_ms ? (now - d.seen_ms) / 1000 : 0},
                     {"cursor", d.cursor},
                     {"cursor_lag", std::max<int64_t>(0, head - d.cursor)},
                     {"pending", d.pending < 0 ? json() : json(d.pending)}});
    }
    return Ok({{"head", head}, {"devices", out}});
  }
  Status IssueToken() {
    json b;
    Status st = AdminBody(&b);
    if (!st.ok()) return st;
    if (!b.contains("user") || !b["user"].is_string() || !b.contains("device") || !b["device"].is_string())
      return Status::InvalidArgument("a token needs string 'user' and 'device'");
    uint64_t ttl = 30ull * 24 * 3600;
    if (b.contains("ttl_s")) {
      if (!b["ttl_s"].is_number_unsigned() || b["ttl_s"].get<uint64_t>() == 0 ||
          b["ttl_s"].get<uint64_t>() > 366ull * 24 * 3600)
        return Status::InvalidArgument("'ttl_s' must be 1 second to 366 days");
      ttl = b["ttl_s"].get<uint64_t>();
    }
    std::string token;
    if (!(st = hub_.IssueToken(b["user"].get<std::string>(), b["device"].get<std::string>(), ttl, &token)).ok())
      return st;
    return Ok({{"token", token}, {"user", b["user"]}, {"device", b["device"]},
               {"expires_s", hub_.NowMs() / 1000 + ttl}},
              http::status::created);
  }
  Status Revoke() {
    json b;
    Status st = AdminBody(&b);
    if (!st.ok()) return st;
    if (!b.contains("kind") || !b["kind"].is_string() || !b.contains("value") || !b["value"].is_string())
      return Status::InvalidArgument("a revocation needs string 'kind' (device or token) and 'value'");
    if (!(st = hub_.Revoke(b["kind"].get<std::string>(), b["value"].get<std::string>())).ok()) return st;
    return Ok({{"revoked", {{"kind", b["kind"]}, {"value", b["value"]}}}}, http::status::created);
  }

  // ---- assignments ---------------------------------------------------------------
  Status Assignments() {
    json where = json::object();
    std::string rep = QueryParam(std::string(req_.target()), "rep");
    if (!rep.empty()) where["assigned_rep"] = rep;
    std::vector<json> rows;
    Status st = Rows("accounts", where, &rows);
    if (!st.ok()) return st;
    json out = json::array();
    for (const auto& r : rows)
      out.push_back({{"account", r["id"]}, {"name", r.value("name", json())}, {"rep", r.value("assigned_rep", json())}});
    return Ok({{"assignments", out}});
  }
  Status Assign(const std::string& account) {
    json b;
    Status st = Body(&b);
    if (!st.ok()) return st;
    if (!b.contains("rep") || !b["rep"].is_string()) return Status::InvalidArgument("an assignment needs a string 'rep'");
    if (!(st = RowKeyVisible("accounts", account)).ok()) return st;
    std::vector<Change> applied;
    json row = {{"table", "accounts"}, {"id", account}, {"assigned_rep", b["rep"]}};
    if (!(st = hub_.WriteAs(actor_, {row}, &applied)).ok()) return st;
    return Ok({{"account", account}, {"rep", b["rep"]}});
  }

  // ---- plans and decisions ------------------------------------------------------
  // A plan's summary: with when it was due (the Friday before its week,
  // 16:00, two hours before an 18:00 close) and whether the rep's device
  // time of submission met it.
  json PlanSummary(const json& p) {
    json s = p;
    std::string week = p.contains("week_start") && p["week_start"].is_string() ? p["week_start"].get<std::string>() : "";
    std::string due = FridayBefore(week);
    if (!due.empty()) {
      s["due"] = due + "T16:00:00";
      if (p.contains("submitted_at") && p["submitted_at"].is_string())
        s["on_time"] = p["submitted_at"].get<std::string>() < s["due"].get<std::string>();
    }
    return s;
  }
  Status Plans() {
    json where = json::object();
    std::string status = QueryParam(std::string(req_.target()), "status");
    std::string rep = QueryParam(std::string(req_.target()), "rep");
    if (!status.empty()) where["status"] = status;
    if (!rep.empty()) where["rep"] = rep;
    std::vector<json> rows;
    Status st = Rows("visit_plans", where, &rows);
    if (!st.ok()) return st;
    json out = json::array();
    for (const auto& r : rows) out.push_back(PlanSummary(r));
    return Ok({{"plans", out}});
  }
  Status Plan(const std::string& id) {
    Status st = RowKeyVisible("visit_plans", id);
    json plan, diff;
    if (st.ok()) st = hub_.WithStore([&](store::ServerStore& s) { return s.store().GetRow("visit_plans", id, &plan); });
    if (!st.ok()) return st;
    std::vector<json> items, approvals;
    if (!(st = Rows("plan_items", {{"plan_id", id}}, &items)).ok()) return st;
    if (!(st = Rows("approvals", {{"subject_table", "visit_plans"}, {"subject_id", id}}, &approvals)).ok()) return st;
    if (!(st = hub_.RevisionDiff("visit_plans", id, &diff)).ok()) return st;
    // The revision it replaces is shown only to someone who may read it.
    if (diff["previous"].is_string() && !RowKeyVisible("visit_plans", diff["previous"].get<std::string>()).ok())
      diff = {{"previous", diff["previous"]}, {"hidden", true}};
    std::sort(items.begin(), items.end(), [](const json& a, const json& b) {
      return std::make_pair(a.value("planned_date", std::string()), a.value("route_order", int64_t{0})) <
             std::make_pair(b.value("planned_date", std::string()), b.value("route_order", int64_t{0}));
    });
    return Ok({{"plan", PlanSummary(plan)}, {"items", items}, {"approvals", approvals}, {"diff", diff}});
  }
  Status DecidePlan(const std::string& id) {
    json b;
    Status st = Body(&b);
    if (!st.ok()) return st;
    b["subject_table"] = "visit_plans";
    b["subject_id"] = id;
    if (!b.contains("kind")) b["kind"] = "weekly_plan";
    return Record(b);
  }
  Status Decide() {
    json b;
    Status st = Body(&b);
    if (!st.ok()) return st;
    return Record(b);
  }
  // Writes one decision record for the caller; the server's rules set the
  // subject's status or flag the record (ServerStore::ApplyDecision).
  Status Record(const json& b) {
    for (const char* k : {"subject_table", "subject_id", "decision"})
      if (!b.contains(k) || !b[k].is_string()) return Status::InvalidArgument(std::string("a decision needs a string '") + k + "'");
    for (const auto& [k, v] : b.items())
      if (k != "subject_table" && k != "subject_id" && k != "decision" && k != "comment" && k != "kind")
        return Status::InvalidArgument("unknown field '" + k + "'");
    const std::string table = b["subject_table"].get<std::string>(), subject = b["subject_id"].get<std::string>();
    if (!hub_.schema().Find(table)) return Status::NotFound("unknown table '" + table + "'");
    Status st = RowKeyVisible(table, subject);
    if (!st.ok()) return st;
    // The record names the subject's rep, so that rep's devices receive it.
    std::string key, owner;
    bool found = false, have_owner = false;
    st = hub_.WithStore([&](store::ServerStore& s) {
      Status s2 = s.RowKey(table, subject, &key, &found);
      if (s2.ok() && found) s2 = s.KeyOwner(key, &owner, &have_owner);
      return s2;
    });
    if (!st.ok()) return st;
    json row = b;
    row["table"] = "approvals";
    row["id"] = NewId("ap-");
    row["rep"] = have_owner ? json(owner) : json();
    row["decided_by"] = actor_.user.id;
    row["decided_at"] = NowIso(hub_.NowMs());
    std::vector<Change> applied;
    if (!(st = hub_.WriteAs(actor_, {row}, &applied)).ok()) return st;
    json record, subject_row;
    st = hub_.WithStore([&](store::ServerStore& s) {
      Status s2 = s.store().GetRow("approvals", row["id"].get<std::string>(), &record);
      if (s2.ok()) s2 = s.store().GetRow(table, subject, &subject_row);
      return s2;
    });
    if (!st.ok()) return st;
    return Ok({{"approval", record}, {"subject", subject_row}}, http::status::created);
  }

  // ---- audit ---------------------------------------------------------------------------
  Status History(const std::string& table, const std::string& id) {
    if (!hub_.schema().Find(table)) return Status::NotFound("unknown table '" + table + "'");
    Status st = RowKeyVisible(table, id);
    if (!st.ok()) return st;
    size_t limit = 1000;
    std::string l = QueryParam(std::string(req_.target()), "limit");
    if (!l.empty()) {
      char* end = nullptr;
      unsigned long v = std::strtoul(l.c_str(), &end, 10);
      if (*end != '\0' || v == 0 || v > 10000) return Status::InvalidArgument("'limit' must be 1 to 10000");
      limit = v;
    }
    std::vector<store::ServerStore::AuditEntry> entries;
    st = hub_.WithStore([&](store::ServerStore& s) { return s.History(table, id, limit, &entries); });
    if (!st.ok()) return st;
    json out = json::array();
    for (const auto& e : entries) out.push_back(store::AuditEntryJson(e));
    return Ok({{"table", table}, {"id", id}, {"history", out}});
  }

  AdminResponse Error(http::status s, const Status& st) {
    return Reply(s, {{"code", CodeName(st.code())}, {"message", st.message()}});
  }
  AdminResponse Reply(http::status s, const json& body) {
    AdminResponse res{s, req_.version()};
    res.set(http::field::server, "fieldsync-server/1");
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    if (s == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer error=\"invalid_token\"");
    res.keep_alive(false);
    // Stored text is valid UTF-8 (the schema checks it), but a message may
    // quote what a caller sent: never let that throw.
    res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
    res.prepare_payload();
    return res;
  }

  Hub& hub_;
  const AdminRequest& req_;
  std::vector<std::string> path_;
  Actor actor_;
  Scope scope_;
  http::status status_ = http::status::ok;
  json body_;
};

}  // namespace

AdminResponse AdminApi::Handle(const AdminRequest& req) { return Call(hub_, req).Run(); }

}  // namespace fieldsync::server
