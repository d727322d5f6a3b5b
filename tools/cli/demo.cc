#include "tools/cli/demo.h"

#include <filesystem>
#include <sstream>
#include <thread>
#include <vector>

#include "fieldsync/replica.h"
#include "server/server.h"

namespace fieldsync::cli {

namespace {

std::string DumpText(Replica& r) {
  std::ostringstream os;
  r.Dump([&](const json& line) { os << line.dump() << "\n"; });
  return os.str();
}

// Distinct HLC milliseconds, so "who wrote last" is unambiguous to a reader.
void Tick() { std::this_thread::sleep_for(std::chrono::milliseconds(3)); }

struct Check {
  std::string what;
  bool ok;
};

}  // namespace

int RunDemo(const Schema& schema, const DemoOptions& opts, std::ostream& out) {
  namespace fs = std::filesystem;
  int nreps = std::max(2, opts.reps);
  std::error_code ec;
  fs::remove_all(opts.data_dir, ec);
  fs::create_directories(opts.data_dir, ec);
  if (ec) {
    out << "cannot create " << opts.data_dir << ": " << ec.message() << "\n";
    return 1;
  }

  server::ServerOptions so;
  so.data_dir = opts.data_dir + "/server";
  so.log = false;
  server::Server srv(so, schema);
  Status st = srv.Start();
  if (!st.ok()) {
    out << "server failed to start: " << st.ToString() << "\n";
    return 1;
  }
  SyncOptions sync;
  sync.url = "ws://127.0.0.1:" + std::to_string(srv.port()) + "/";
  out << "== server on " << sync.url << ", store " << so.data_dir << "/server.db\n";

  auto must = [&](const Status& s, const std::string& what) {
    if (!s.ok()) {
      out << "FAILED: " << what << ": " << s.ToString() << "\n";
      std::exit(1);
    }
  };

  // Reference data is written centrally, never by a tablet.
  std::vector<Change> applied;
  std::vector<json> skus = {
      {{"table", "skus"}, {"id", "sku-soy-500"}, {"code", "SOY500"}, {"name", "Soy sauce 500 ml"}, {"list_price", 12.5}},
      {{"table", "skus"}, {"id", "sku-vin-500"}, {"code", "VIN500"}, {"name", "Rice vinegar 500 ml"}, {"list_price", 9.8}},
      {{"table", "skus"}, {"id", "sku-oil-1l"}, {"code", "OIL1L"}, {"name", "Peanut oil 1 l"}, {"list_price", 32.0}}};
  must(srv.hub().WriteRows(skus, &applied), "import SKU catalog");
  out << "== supervisor imported " << skus.size() << " SKUs centrally\n";

  std::vector<std::unique_ptr<Replica>> reps(nreps);
  for (int i = 0; i < nreps; ++i)
    must(Replica::Open(opts.data_dir + "/rep-" + std::to_string(i + 1) + ".db", schema, &reps[i]), "open replica");
  Replica& a = *reps[0];
  Replica& b = *reps[1];

  // Rep 1 sets up a hypermarket account with everything hanging off it.
  WriteBatch setup;
  setup.Put("accounts", "acct-rtmart-07", {{"name", "RT-Mart Pudong #07"}, {"channel", "hypermarket"},
                                           {"phone", "021-5000-0000"}, {"city", "Shanghai"},
                                           {"account_class", "A"}, {"file_stage", "draft"}});
  setup.AddMember("accounts", "acct-rtmart-07", "tags", "ka");
  setup.Put("contacts", "ct-li", {{"account_id", "acct-rtmart-07"}, {"name", "Li Wei"},
                                   {"position", "Grocery section head"}});
  setup.AddMember("contacts", "ct-li", "buying_roles", "purchase_approver");
  setup.Put("visits", "visit-0412", {{"account_id", "acct-rtmart-07"}, {"planned_date", "2026-11-23"},
                                      {"status", "planned"}, {"purpose", "monthly store check"}});
  setup.Put("store_checks", "chk-0412", {{"account_id", "acct-rtmart-07"}, {"visit_id", "visit-0412"},
                                          {"status", "draft"}});
  setup.Put("store_check_lines", "line-0412-soy", {{"store_check_id", "chk-0412"}, {"sku_id", "sku-soy-500"},
                                                   {"facings", 4}, {"stock_status", "normal"}, {"shelf_price", 12.9}});
  setup.Put("goods_loans", "loan-77", {{"account_id", "acct-rtmart-07"}, {"sku_id", "sku-oil-1l"},
                                        {"direction", "lent"}, {"quantity", 20}, {"status", "open"}});
  must(a.Apply(setup), "rep 1 setup");
  for (auto& r : reps) must(r->Sync(sync), "initial sync");
  out << "== rep 1 created an account, contact, visit, store check and goods loan; " << nreps
      << " reps synced\n";

  out << "== everyone goes offline and edits:\n";
  // Same field, different values: last writer wins, the loser is kept.
  must(a.Put("accounts", "acct-rtmart-07", {{"phone", "021-5000-1111"}}), "a phone");
  out << "   rep 1: phone := 021-5000-1111; notes := 'Manager wants an end-cap in May'\n";
  must(a.Put("accounts", "acct-rtmart-07", {{"notes", "Manager wants an end-cap in May"}}), "a notes");
  Tick();
  must(b.Put("accounts", "acct-rtmart-07", {{"phone", "021-5000-2222"}, {"postcode", "200120"}}), "b phone");
  must(b.Put("accounts", "acct-rtmart-07", {{"notes", "Store renovation planned for June"}}), "b notes");
  out << "   rep 2: phone := 021-5000-2222 (later); postcode := 200120; notes := 'Store renovation planned for June'\n";
  // Set: one adds a member while the other removes another.
  WriteBatch roles_a, roles_b;
  roles_a.AddMember("contacts", "ct-li", "buying_roles", "decision_maker");
  roles_b.RemoveMember("contacts", "ct-li", "buying_roles", "purchase_approver");
  must(a.Apply(roles_a), "a roles");
  must(b.Apply(roles_b), "b roles");
  out << "   rep 1: Li Wei is a decision maker; rep 2: Li Wei is no longer purchase approver\n";
  // Delete against a concurrent update.
  must(a.Put("visits", "visit-0412", {{"summary", "Checked shelf, soy facings up to 6"}}), "a summary");
  must(b.Delete("visits", "visit-0412"), "b delete");
  out << "   rep 1: writes the visit summary; rep 2: deletes that visit\n";
  // Different fields of one line: both survive.
  must(a.Put("store_check_lines", "line-0412-soy", {{"facings", 6}}), "a facings");
  must(b.Put("store_check_lines", "line-0412-soy", {{"stock_status", "short"}, {"stock_qty", 3}}), "b stock");
  out << "   rep 1: soy facings := 6; rep 2: soy stock := short, 3\n";
  // Counter: returned goods add up across devices.
  int64_t returned = 0;
  for (int i = 0; i < nreps; ++i) {
    must(reps[i]->Increment("goods_loans", "loan-77", "returned_qty", i + 2), "returned");
    returned += i + 2;
    out << "   rep " << i + 1 << ": " << i + 2 << " bottles of the oil loan returned\n";
  }
  // Forward-only state: submitted beats draft whatever the clocks say.
  must(reps[nreps - 1]->Put("accounts", "acct-rtmart-07", {{"file_stage", "submitted"}}), "stage");
  out << "   rep " << nreps << ": customer file submitted for approval\n";

  out << "== reconnect and sync (in reverse order, then again in order):\n";
  for (int round = 0; round < 2; ++round) {
    for (int k = 0; k < nreps; ++k) {
      int i = round == 0 ? nreps - 1 - k : k;
      SyncReport rep;
      must(reps[i]->Sync(sync, &rep), "sync");
      out << "   rep " << i + 1 << ": pushed " << rep.pushed << ", pulled " << rep.pulled << " (" << rep.bytes_sent
          << " B out, " << rep.bytes_received << " B in)\n";
    }
  }

  std::ostringstream server_dump;
  must(srv.hub().Dump([&](const json& l) { server_dump << l.dump() << "\n"; }), "server dump");
  std::vector<Check> checks;
  for (int i = 0; i < nreps; ++i)
    checks.push_back({"rep " + std::to_string(i + 1) + " dump equals the server's",
                      DumpText(*reps[i]) == server_dump.str()});

  json acct, contact, line, loan, visit;
  must(a.Get("accounts", "acct-rtmart-07", &acct), "get account");
  must(a.Get("contacts", "ct-li", &contact), "get contact");
  must(a.Get("store_check_lines", "line-0412-soy", &line), "get line");
  must(a.Get("goods_loans", "loan-77", &loan), "get loan");
  Status vs = a.Get("visits", "visit-0412", &visit);
  out << "== converged state (rep 1):\n"
      << "   account: " << acct.dump() << "\n"
      << "   contact: " << contact.dump() << "\n"
      << "   check line: " << line.dump() << "\n"
      << "   goods loan: " << loan.dump() << "\n"
      << "   visit-0412: " << vs.ToString() << "\n";

  std::vector<Conflict> conflicts;
  must(a.Conflicts(false, &conflicts), "conflicts");
  out << "== conflict records on rep 1 (nothing lost silently; each can be restored):\n";
  for (const auto& c : conflicts)
    out << "   #" << c.id << " " << c.kind << " " << c.table << "/" << c.row << "." << c.column << ": kept "
        << c.lost_value.dump() << " from node " << c.lost_node << " (lost to " << c.won_value.dump() << ")\n";

  checks.push_back({"phone: the later write (rep 2) wins", acct.value("phone", "") == "021-5000-2222"});
  checks.push_back({"postcode: rep 2's edit of another field survives", acct.value("postcode", "") == "200120"});
  checks.push_back({"notes: both concurrent texts kept and flagged",
                    acct.contains("_conflicts") && acct["_conflicts"].contains("notes") &&
                        acct["_conflicts"]["notes"].size() == 2});
  checks.push_back({"buying roles: add and remove both applied",
                    contact.value("buying_roles", json::array()) == json::array({"decision_maker"})});
  checks.push_back({"check line: facings 6 and stock short both kept",
                    line.value("facings", 0) == 6 && line.value("stock_status", "") == "short"});
  checks.push_back({"returned quantity adds up to " + std::to_string(returned),
                    loan.value("returned_qty", int64_t{-1}) == returned});
  checks.push_back({"file stage moved forward to submitted", acct.value("file_stage", "") == "submitted"});
  checks.push_back({"deleted visit stays deleted", vs.code() == Code::kDeleted});
  bool lww_kept = false, deleted_kept = false;
  for (const auto& c : conflicts) {
    lww_kept |= c.kind == "lww" && c.column == "phone" && c.lost_value == "021-5000-1111";
    deleted_kept |= c.kind == "deleted" && c.column == "summary";
  }
  checks.push_back({"rep 1's lost phone is kept as a conflict record", lww_kept});
  checks.push_back({"rep 1's summary of the deleted visit is kept as a conflict record", deleted_kept});

  bool all = true;
  out << "== checks:\n";
  for (const auto& c : checks) {
    out << "   [" << (c.ok ? "ok" : "FAILED") << "] " << c.what << "\n";
    all &= c.ok;
  }
  reps.clear();
  srv.Stop();
  if (!opts.keep) fs::remove_all(opts.data_dir, ec);
  out << (all ? "== converged: all replicas and the server are identical\n" : "== NOT converged\n");
  return all ? 0 : 1;
}

}  // namespace fieldsync::cli
