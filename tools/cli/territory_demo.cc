// The second half of the demo: two teams on a server with authentication.
// Each rep's tablet holds only its own accounts; a supervisor moves an
// account from one rep to another while the first rep has unsent work on
// it; a rep's write to another team's account is refused and reverted; a
// weekly plan is submitted on the tablet and approved over the admin HTTP
// API, after which the tablet can no longer change it.
#include <filesystem>
#include <random>
#include <set>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "fieldsync/replica.h"
#include "server/server.h"
#include "tools/cli/demo.h"

namespace fieldsync::cli {

namespace {

struct Member {
  const char* id;
  store::Role role;
  const char* team;
  const char* region;
};

const Member kTeams[] = {
    {"sup_north", store::Role::kSupervisor, "north", "east"}, {"li", store::Role::kRep, "north", "east"},
    {"wang", store::Role::kRep, "north", "east"},             {"sup_south", store::Role::kSupervisor, "south", "west"},
    {"zhao", store::Role::kRep, "south", "west"},
};

std::set<std::string> Accounts(Replica& r) {
  std::set<std::string> ids;
  store::QueryOptions q;
  std::vector<json> rows;
  if (r.Query("accounts", q, &rows).ok())
    for (const auto& row : rows) ids.insert(row["id"].get<std::string>());
  return ids;
}

// One request to the admin API on the server's port, as a dashboard would
// make it. Returns the HTTP status (0 when there was no answer).
int AdminCall(uint16_t port, const std::string& token, boost::beast::http::verb verb, const std::string& target,
              const json& body, json* answer) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, "Bearer " + token);
  if (!body.is_null()) req.body() = body.dump();
  req.prepare_payload();
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  beast::error_code ec = boost::asio::error::timed_out;
  // Asynchronous, so the stream's deadline bounds a stalled server.
  stream.expires_after(std::chrono::seconds(10));
  stream.async_connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port),
                       [&](beast::error_code e) {
                         if (e) return void(ec = e);
                         http::async_write(stream, req, [&](beast::error_code e2, std::size_t) {
                           if (e2) return void(ec = e2);
                           http::async_read(stream, buf, res, [&](beast::error_code e3, std::size_t) { ec = e3; });
                         });
                       });
  ioc.run();
  if (ec && ec != http::error::end_of_stream) return 0;
  *answer = json::parse(res.body(), nullptr, false);
  return static_cast<int>(res.result_int());
}

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
  return out.empty() ? "(none)" : out;
}

}  // namespace

int RunTerritoryDemo(const Schema& schema, const DemoOptions& opts, std::ostream& out) {
  namespace fs = std::filesystem;
  std::string dir = opts.data_dir + "/territories";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);

  server::ServerOptions so;
  so.data_dir = dir + "/server";
  so.log = false;
  std::random_device rd;
  for (int i = 0; i < 48; ++i) so.auth_key += static_cast<char>('a' + rd() % 26);  // a fresh key per run
  server::Server srv(so, schema);
  Status st = srv.Start();
  if (!st.ok()) {
    out << "server failed to start: " << st.ToString() << "\n";
    return 1;
  }
  bool all = true;
  auto must = [&](const Status& s, const std::string& what) {
    if (!s.ok()) {
      out << "FAILED: " << what << ": " << s.ToString() << "\n";
      all = false;
    }
    return s.ok();
  };
  auto check = [&](bool ok, const std::string& what) {
    out << "   [" << (ok ? "ok" : "FAILED") << "] " << what << "\n";
    all &= ok;
  };
  out << "\n== territories: a server with authentication, two teams (north: li, wang; south: zhao)\n";
  for (const auto& m : kTeams) {
    store::User u;
    u.id = m.id;
    u.role = m.role;
    u.team = m.team;
    u.region = m.region;
    if (!must(srv.hub().PutUser(u), "add user")) return 1;
  }
  std::vector<json> rows = {
      {{"table", "skus"}, {"id", "sku-soy-500"}, {"name", "Soy sauce 500 ml"}},
      {{"table", "promotions"}, {"id", "promo-east-may"}, {"region", "east"}, {"name", "May end-cap, east"}},
      {{"table", "promotions"}, {"id", "promo-west-may"}, {"region", "west"}, {"name", "May bundle, west"}},
  };
  const std::pair<const char*, const char*> accounts[] = {
      {"hm-pudong", "li"}, {"sm-xuhui", "li"}, {"hm-minhang", "wang"}, {"dist-jiading", "wang"}, {"hm-chengdu", "zhao"}};
  for (const auto& [acc, rep] : accounts) {
    rows.push_back({{"table", "accounts"}, {"id", acc}, {"name", acc}, {"assigned_rep", rep}});
    rows.push_back({{"table", "visits"}, {"id", std::string("visit-") + acc}, {"account_id", acc}, {"purpose", "store check"}});
  }
  std::vector<Change> applied;
  if (!must(srv.hub().WriteRows(rows, &applied), "central import")) return 1;
  out << "== the head office imported " << rows.size() << " rows and assigned 5 accounts\n";

  std::map<std::string, std::unique_ptr<Replica>> tablets;
  std::map<std::string, SyncOptions> signin;
  for (const auto& m : kTeams) {
    SyncOptions o;
    o.url = "ws://127.0.0.1:" + std::to_string(srv.port()) + "/";
    if (!must(srv.hub().IssueToken(m.id, std::string("tablet-") + m.id, 3600, &o.token), "issue token")) return 1;
    signin[m.id] = o;
    if (!must(Replica::Open(dir + "/" + m.id + ".db", schema, &tablets[m.id]), "open replica")) return 1;
    SyncReport rep;
    if (!must(tablets[m.id]->Sync(o, &rep), std::string("first sync of ") + m.id)) return 1;
    out << "   " << m.id << " signed in and loaded " << rep.snapshot_rows << " rows: accounts "
        << Join(Accounts(*tablets[m.id])) << "\n";
  }
  check(Accounts(*tablets["li"]) == std::set<std::string>{"hm-pudong", "sm-xuhui"}, "li holds exactly li's accounts");
  check(Accounts(*tablets["zhao"]) == std::set<std::string>{"hm-chengdu"}, "zhao holds only the south account");
  check(Accounts(*tablets["sup_north"]).size() == 4, "the north supervisor sees the whole north team");
  json row;
  check(tablets["zhao"]->Get("promotions", "promo-east-may", &row).code() == Code::kNotFound &&
            tablets["zhao"]->Get("promotions", "promo-west-may", &row).ok(),
        "zhao gets the west region's promotion, not the east's");

  out << "== wang works offline at hm-minhang; meanwhile sup_north moves hm-minhang to li\n";
  must(tablets["wang"]->Put("accounts", "hm-minhang", {{"phone", "021-6400-0001"}}), "wang edits");
  must(tablets["wang"]->Put("visits", "visit-minhang-2", {{"account_id", "hm-minhang"}, {"summary", "end-cap built"}}),
       "wang records a visit");
  must(tablets["sup_north"]->Put("accounts", "hm-minhang", {{"assigned_rep", "li"}}), "reassign");
  must(tablets["sup_north"]->Sync(signin["sup_north"]), "supervisor sync");
  SyncReport li1, wang1;
  must(tablets["li"]->Sync(signin["li"], &li1), "li sync");
  out << "   li synced: " << li1.snapshot_rows << " rows of hm-minhang arrived (no full download)\n";
  must(tablets["wang"]->Sync(signin["wang"], &wang1), "wang sync");
  out << "   wang synced: pushed " << wang1.pushed << " changes first, then " << wang1.evicted_rows
      << " rows of hm-minhang left the tablet\n";
  must(tablets["li"]->Sync(signin["li"]), "li sync");
  check(Accounts(*tablets["wang"]) == std::set<std::string>{"dist-jiading"}, "hm-minhang left wang's tablet");
  check(tablets["li"]->Get("accounts", "hm-minhang", &row).ok() && row.value("phone", "") == "021-6400-0001" &&
            tablets["li"]->Get("visits", "visit-minhang-2", &row).ok(),
        "li has hm-minhang with wang's offline phone and visit");

  out << "== zhao (south) writes to a north account\n";
  must(tablets["zhao"]->Put("accounts", "hm-pudong", {{"notes", "not mine"}}), "zhao writes");
  SyncReport z;
  must(tablets["zhao"]->Sync(signin["zhao"], &z), "zhao sync");
  std::vector<store::Rejection> rej;
  tablets["zhao"]->Rejections(&rej);
  out << "   refused: " << (rej.empty() ? "nothing?" : rej[0].code + ": " + rej[0].message) << "\n";
  check(!rej.empty() && rej[0].code == "permission_denied" &&
            tablets["zhao"]->Get("accounts", "hm-pudong", &row).code() == Code::kNotFound,
        "zhao's write is refused and reverted on the tablet");
  bool clean = true;
  srv.hub().Dump([&](const json& l) { clean &= l.dump().find("not mine") == std::string::npos; });
  check(clean, "the server never stored it");

  out << "== li hands in next week's visit plan on Friday; sup_north approves it over the admin API\n";
  Replica& li = *tablets["li"];
  must(li.Put("visit_plans", "plan-li-w50", {{"rep", "li"}, {"week_start", "2026-12-07"}, {"revision", 1},
                                               {"status", "draft"}}), "draft plan");
  must(li.Put("plan_items", "plan-li-w50-1", {{"plan_id", "plan-li-w50"}, {"account_id", "hm-pudong"},
                                                {"planned_date", "2026-12-07"}, {"route_order", 1}}), "plan item");
  must(li.Put("plan_items", "plan-li-w50-2", {{"plan_id", "plan-li-w50"}, {"account_id", "hm-minhang"},
                                                {"planned_date", "2026-12-07"}, {"route_order", 2}}), "plan item");
  must(li.Put("visit_plans", "plan-li-w50", {{"status", "submitted"}, {"submitted_at", "2026-12-04T15:10:00"}}),
       "submit plan");
  must(li.Sync(signin["li"]), "li sync");
  std::string desk;
  must(srv.hub().IssueToken("sup_north", "desk-sup_north", 3600, &desk), "issue a dashboard token");
  json answer;
  int code = AdminCall(srv.port(), desk, boost::beast::http::verb::get, "/api/plans?status=submitted", nullptr, &answer);
  bool listed = code == 200 && answer.contains("plans") && answer["plans"].size() == 1 &&
                answer["plans"][0].value("on_time", false);
  out << "   GET /api/plans?status=submitted -> " << code << ", " << (listed ? 1 : 0)
      << " plan, handed in on time (due " << (listed ? answer["plans"][0].value("due", "") : "?") << ")\n";
  check(listed, "the supervisor sees li's submitted plan, on time");
  code = AdminCall(srv.port(), desk, boost::beast::http::verb::post, "/api/plans/plan-li-w50/decisions",
                   {{"decision", "approved"}, {"comment", "good route"}}, &answer);
  out << "   POST /api/plans/plan-li-w50/decisions approved -> " << code << "\n";
  check(code == 201 && answer["subject"].value("status", "") == "approved", "the plan is approved by a decision record");
  // Offline that evening li moves a visit in the approved plan.
  must(li.Put("plan_items", "plan-li-w50-2", {{"route_order", 3}}), "li edits the approved plan");
  must(li.Sync(signin["li"]), "li sync");
  rej.clear();
  li.Rejections(&rej);
  bool frozen = !rej.empty() && rej.back().code == "frozen";
  out << "   li's later edit: " << (frozen ? rej.back().code + ": " + rej.back().message : std::string("accepted?"))
      << "\n";
  check(frozen && li.Get("plan_items", "plan-li-w50-2", &row).ok() && row.value("route_order", 0) == 2 &&
            li.Get("visit_plans", "plan-li-w50", &row).ok() && row.value("status", "") == "approved",
        "the approved plan is frozen: li's edit is refused and undone, the tablet shows the approval");

  tablets.clear();
  srv.Stop();
  if (!opts.keep) fs::remove_all(dir, ec);
  out << (all ? "== territories: every tablet holds exactly its scope\n" : "== territories: FAILED\n");
  return all ? 0 : 1;
}

}  // namespace fieldsync::cli
