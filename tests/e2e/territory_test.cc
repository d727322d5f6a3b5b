// Territory-scoped replication, authentication and authorization against
// the real server on a loopback port (docs/security.md). Three reps in two
// teams, two supervisors and an admin; every replica must hold exactly the
// server's rows filtered by its user's scope, computed here independently
// of the server's own bookkeeping (from the rows' parent columns and the
// accounts' assignees), before and after a reassignment.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "server/auth_token.h"
#include "tests/e2e/territory_fixture.h"

namespace fieldsync {
namespace {

TEST_F(Territory, EachDeviceBootstrapsExactlyItsScope) {
  std::map<std::string, size_t> sizes;
  for (const auto& p : kPeople) {
    auto r = Open(p.id);
    SyncReport rep;
    Status st = r->Sync(Options(p.id), &rep);
    ASSERT_TRUE(st.ok()) << p.id << ": " << st.ToString();
    ExpectHoldsItsScope(*r, p.id);
    sizes[p.id] = Lines(DumpText(*r)).size();
  }
  // The oracle is not vacuous: scopes differ and nest as the teams do.
  EXPECT_EQ(sizes["rep_a"], 2u + 1u + 2u * 8u);  // skus, the east promotion, two accounts with 8 rows each
  EXPECT_GT(sizes["sup_n"], sizes["rep_a"]);
  EXPECT_LT(sizes["sup_n"], sizes["admin1"]);
  EXPECT_EQ(sizes["admin1"], Lines(server_.Dump()).size());
  EXPECT_EQ(sizes["rep_c"], 2u + 1u + 8u);
}

TEST_F(Territory, IncrementalPullsCarryOnlyInScopeChanges) {
  auto a = Open("a"), c = Open("c"), sup = Open("sup");
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(c->Sync(Options("rep_c")).ok());
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  ASSERT_TRUE(c->Put("visits", "v_new_c", {{"account_id", "acc_c1"}, {"summary", "south only"}}).ok());
  ASSERT_TRUE(c->Put("accounts", "acc_c1", {{"phone", "020-5"}}).ok());
  ASSERT_TRUE(c->Sync(Options("rep_c")).ok());
  ASSERT_TRUE(a->Put("accounts", "acc_a1", {{"phone", "021-1"}}).ok());
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  SyncReport rep;
  ASSERT_TRUE(sup->Sync(Options("sup_n"), &rep).ok());
  EXPECT_EQ(rep.pulled, 1);  // rep_a's phone, not rep_c's two changes
  json row;
  EXPECT_EQ(sup->Get("visits", "v_new_c", &row).code(), Code::kNotFound);
  ExpectHoldsItsScope(*a, "rep_a");
  ExpectHoldsItsScope(*c, "rep_c");
  ExpectHoldsItsScope(*sup, "sup_n");
}

TEST_F(Territory, ReassignmentMovesTheAccountWithTheOldRepsOfflineEdits) {
  auto a = Open("a"), b = Open("b"), sup = Open("sup");
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(b->Sync(Options("rep_b")).ok());
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  // rep_a works offline on acc_a2 while the supervisor moves it to rep_b.
  ASSERT_TRUE(a->Put("accounts", "acc_a2", {{"phone", "typed offline by a"}}).ok());
  ASSERT_TRUE(a->Put("visits", "v_offline", {{"account_id", "acc_a2"}, {"summary", "shelf gap on aisle 3"}}).ok());
  ASSERT_TRUE(sup->Put("accounts", "acc_a2", {{"assigned_rep", "rep_b"}}).ok());
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());

  std::set<std::string> arrived;
  b->AddObserver([&](const std::vector<ChangeEvent>& events) {
    for (const auto& e : events)
      if (!e.deleted) arrived.insert(e.table + "/" + e.id);
  });
  SyncReport rb;
  ASSERT_TRUE(b->Sync(Options("rep_b"), &rb).ok());
  EXPECT_TRUE(arrived.count("accounts/acc_a2"));
  EXPECT_TRUE(arrived.count("store_check_lines/l1_acc_a2"));
  EXPECT_EQ(rb.snapshot_rows, 8);  // the account and its rows: a delta, not the whole territory again
  ExpectHoldsItsScope(*b, "rep_b");

  std::set<std::string> left;
  a->AddObserver([&](const std::vector<ChangeEvent>& events) {
    for (const auto& e : events)
      if (e.deleted) left.insert(e.table + "/" + e.id);
  });
  SyncReport ra;
  ASSERT_TRUE(a->Sync(Options("rep_a"), &ra).ok());
  EXPECT_EQ(ra.rejected, 0);  // pushed before the account left: nothing lost
  EXPECT_EQ(ra.evicted_rows, 9);
  EXPECT_TRUE(left.count("accounts/acc_a2"));
  EXPECT_TRUE(left.count("visits/v_offline"));
  EXPECT_TRUE(left.count("order_lines/ol_acc_a2"));
  json row;
  EXPECT_EQ(a->Get("accounts", "acc_a2", &row).code(), Code::kNotFound);
  EXPECT_TRUE(a->Get("accounts", "acc_a1", &row).ok());
  ExpectHoldsItsScope(*a, "rep_a");

  ASSERT_TRUE(b->Sync(Options("rep_b")).ok());
  ASSERT_TRUE(b->Get("accounts", "acc_a2", &row).ok());
  EXPECT_EQ(row["phone"], "typed offline by a");
  ASSERT_TRUE(b->Get("visits", "v_offline", &row).ok());
  EXPECT_NE(row.dump().find("shelf gap on aisle 3"), std::string::npos) << row.dump();
  ExpectHoldsItsScope(*b, "rep_b");
  // Settled: another round moves nothing.
  SyncReport again;
  ASSERT_TRUE(a->Sync(Options("rep_a"), &again).ok());
  EXPECT_EQ(again.evicted_rows + again.snapshot_rows, 0);
}

TEST_F(Territory, RefusedWritesAreRevertedAndHoldBackOnlyWhatDependsOnThem) {
  auto a = Open("a");
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(a->Put("accounts", "acc_a1", {{"phone", "fine"}}).ok());
  ASSERT_TRUE(a->Put("accounts", "acc_a1", {{"assigned_rep", "rep_b"}}).ok());  // supervisors only
  ASSERT_TRUE(a->Put("orders", "o_bad", {{"account_id", "acc_b1"}}).ok());      // not rep_a's account
  ASSERT_TRUE(a->Put("order_lines", "ol_bad", {{"order_id", "o_bad"}, {"quantity", 1}}).ok());
  // "address" sorts before "assigned_rep": the row exists before it is assigned.
  ASSERT_TRUE(a->Put("accounts", "acc_new", {{"address", "1 Road"}, {"name", "New prospect"}, {"assigned_rep", "rep_a"}}).ok());
  ASSERT_TRUE(a->Put("contacts", "ct_new", {{"account_id", "acc_new"}, {"name", "owner"}}).ok());
  ASSERT_TRUE(a->Put("accounts", "acc_nobody", {{"name", "unassigned"}}).ok());
  SyncReport rep;
  ASSERT_TRUE(a->Sync(Options("rep_a"), &rep).ok());
  std::vector<store::Rejection> rej;
  ASSERT_TRUE(a->Rejections(&rej).ok());
  std::map<std::string, std::string> code_of;
  for (const auto& r : rej) code_of[r.change.table + "/" + r.change.row + "." + r.change.column] = r.code;
  EXPECT_EQ(code_of["accounts/acc_a1.assigned_rep"], "permission_denied");
  EXPECT_EQ(code_of["orders/o_bad.account_id"], "permission_denied");
  EXPECT_EQ(code_of["order_lines/ol_bad.quantity"], "not_found");  // held back by its refused order
  EXPECT_EQ(code_of["accounts/acc_nobody.name"], "permission_denied");
  EXPECT_EQ(rej.size(), 5u) << "o_bad, ol_bad (2 fields), acc_nobody, assigned_rep";
  EXPECT_GT(rep.reverted_rows, 0);
  // The rest of the batch went through, and the replica is back to what the
  // server holds for it: its own assignee, no refused rows, the new account.
  json row;
  ASSERT_TRUE(a->Get("accounts", "acc_a1", &row).ok());
  EXPECT_EQ(row["assigned_rep"], "rep_a");
  EXPECT_EQ(row["phone"], "fine");
  EXPECT_EQ(a->Get("orders", "o_bad", &row).code(), Code::kNotFound);
  EXPECT_EQ(a->Get("order_lines", "ol_bad", &row).code(), Code::kNotFound);
  EXPECT_EQ(a->Get("accounts", "acc_nobody", &row).code(), Code::kNotFound);
  EXPECT_TRUE(a->Get("contacts", "ct_new", &row).ok());
  ASSERT_TRUE(a->Get("accounts", "acc_new", &row).ok());
  EXPECT_EQ(row["address"], "1 Road");
  ExpectHoldsItsScope(*a, "rep_a");
  std::set<std::string> server = Lines(server_.Dump());
  bool has_new = false;
  for (const auto& l : server) has_new |= l.find("\"acc_new\"") != std::string::npos;
  EXPECT_TRUE(has_new);
}

TEST_F(Territory, SupervisorsAssignOnlyWithinTheirTeam) {
  auto sup = Open("sup");
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  ASSERT_TRUE(sup->Put("accounts", "acc_b1", {{"assigned_rep", "rep_c"}}).ok());  // rep_c is in the south team
  ASSERT_TRUE(sup->Put("accounts", "acc_a1", {{"assigned_rep", "rep_b"}}).ok());  // within the team: fine
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  std::vector<store::Rejection> rej;
  ASSERT_TRUE(sup->Rejections(&rej).ok());
  ASSERT_EQ(rej.size(), 1u);
  EXPECT_EQ(rej[0].change.row, "acc_b1");
  EXPECT_EQ(rej[0].code, "permission_denied");
  json row;
  ASSERT_TRUE(sup->Get("accounts", "acc_b1", &row).ok());
  EXPECT_EQ(row["assigned_rep"], "rep_b");  // reverted
  ExpectHoldsItsScope(*sup, "sup_n");
  auto c = Open("c");
  ASSERT_TRUE(c->Sync(Options("rep_c")).ok());
  EXPECT_EQ(c->Get("accounts", "acc_b1", &row).code(), Code::kNotFound);
}

TEST_F(Territory, ANewDeviceLoadsTodaysAccountsFirstAndReportsProgress) {
  std::vector<Change> applied;
  ASSERT_TRUE(server_.hub()
                  .WriteRows({{{"table", "visits"}, {"id", "v_today"}, {"account_id", "acc_a2"},
                               {"planned_date", "2026-12-02T09:30"}},
                              {{"table", "visits"}, {"id", "v_tomorrow"}, {"account_id", "acc_a1"},
                               {"planned_date", "2026-12-03"}},
                              {{"table", "visits"}, {"id", "v_today_c"}, {"account_id", "acc_c1"},
                               {"planned_date", "2026-12-02"}}},
                             &applied)
                  .ok());
  auto a = Open("a");
  std::vector<std::vector<std::string>> batches;
  a->AddObserver([&](const std::vector<ChangeEvent>& events) {
    std::vector<std::string> b;
    for (const auto& e : events) b.push_back(e.table + "/" + e.id);
    batches.push_back(b);
  });
  SyncOptions o = Options("rep_a");
  o.today = "2026-12-02";
  ASSERT_TRUE(a->Sync(o).ok());
  ASSERT_FALSE(batches.empty());
  // The first rows to arrive are acc_a2's (today's visit), all of them, and
  // nothing of acc_a1 nor of rep_c's account with a visit today.
  std::vector<std::string> order;
  for (const auto& b : batches) order.insert(order.end(), b.begin(), b.end());
  ASSERT_GE(order.size(), 9u);
  std::set<std::string> first(order.begin(), order.begin() + 9);
  std::set<std::string> todays = {"accounts/acc_a2",         "contacts/ct_acc_a2",     "visits/v_acc_a2",
                                  "visits/v_today",          "store_checks/sc_acc_a2", "store_check_lines/l0_acc_a2",
                                  "store_check_lines/l1_acc_a2", "orders/o_acc_a2",    "order_lines/ol_acc_a2"};
  EXPECT_EQ(first, todays);  // the whole of today's account, before anything else
  ExpectHoldsItsScope(*a, "rep_a");
  SyncStatus s = a->GetSyncStatus();
  EXPECT_EQ(s.progress_total_rows, static_cast<int64_t>(Expected("rep_a").size()));
  EXPECT_EQ(s.progress_rows, s.progress_total_rows);
  EXPECT_GT(s.progress_bytes, 0);
}

// ---- leaving the device -------------------------------------------------------------------

TEST_F(Territory, NothingUnsentIsLostOnTheWayOut) {
  std::string path = dir_.File("leaving.db");
  std::unique_ptr<Replica> a;
  ASSERT_TRUE(Replica::Open(path, schema_, &a).ok());
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(a->Put("accounts", "acc_a1", {{"phone", "typed, never synced"}}).ok());
  ASSERT_TRUE(a->Put("visits", "v_last", {{"account_id", "acc_a1"}, {"summary", "last visit before leaving"}}).ok());
  EXPECT_EQ(a->SignOut(false).code(), Code::kBusy);
  EXPECT_EQ(Replica::DeleteFile(path, schema_, false).code(), Code::kBusy);
  int64_t n = 0;
  std::string file = dir_.File("outbox.jsonl");
  ASSERT_TRUE(a->ExportOutbox(file, &n).ok());
  EXPECT_EQ(n, 3);
  EXPECT_TRUE(a->SignOut(true).ok());
  a.reset();
  ASSERT_TRUE(Replica::DeleteFile(path, schema_, true).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(Replica::DeleteFile(path, schema_, true).code(), Code::kNotFound);

  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  store::Actor rep_a, rep_c;
  bool found = false;
  ASSERT_TRUE(server_.hub().GetUser("rep_a", &rep_a.user, &found).ok() && found);
  ASSERT_TRUE(server_.hub().GetUser("rep_c", &rep_c.user, &found).ok() && found);
  // Under another rep's identity it is refused change by change.
  store::ServerStore::ImportReport rep;
  ASSERT_TRUE(server_.hub().ImportOutbox(text.str(), &rep_c, &rep).ok());
  EXPECT_EQ(rep.applied, 0);
  ASSERT_EQ(rep.rejected.size(), 3u);
  EXPECT_EQ(rep.rejected[0].second.code, Code::kPermissionDenied);
  // A damaged file applies nothing.
  std::string cut = text.str().substr(0, text.str().rfind('\n', text.str().size() - 2) + 1);
  EXPECT_EQ(server_.hub().ImportOutbox(cut, &rep_a, &rep).code(), Code::kInvalidArgument);
  EXPECT_EQ(server_.hub().ImportOutbox("{\"table\":\"accounts\"}\n", &rep_a, &rep).code(), Code::kInvalidArgument);
  EXPECT_EQ(server_.Dump().find("typed, never synced"), std::string::npos);
  // As its own user: applied, and a second import is all duplicates.
  ASSERT_TRUE(server_.hub().ImportOutbox(text.str(), &rep_a, &rep).ok());
  EXPECT_EQ(rep.applied, 3);
  ASSERT_TRUE(server_.hub().ImportOutbox(text.str(), &rep_a, &rep).ok());
  EXPECT_EQ(rep.applied, 0);
  EXPECT_EQ(rep.duplicates, 3);
  EXPECT_NE(server_.Dump().find("typed, never synced"), std::string::npos);
  auto sup = Open("sup");
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  json row;
  ASSERT_TRUE(sup->Get("visits", "v_last", &row).ok());
}

// ---- requests that bypass the SDK ---------------------------------------------------------

class Crafted : public Territory {
 protected:
  json Push(RawPeer& p, NodeId node, std::vector<Change> changes) {
    json arr = json::array();
    for (auto& c : changes) {
      c.stamp = {(++hlc_) << 16, node};
      arr.push_back(ChangeToJson(c));
    }
    EXPECT_TRUE(p.Send({{"type", "push"}, {"batch", 1}, {"changes", arr}}));
    json ack;
    EXPECT_TRUE(p.Receive(&ack));
    return ack;
  }
  static Change Set(const std::string& t, const std::string& r, const std::string& col, json v) {
    Change c;
    c.table = t;
    c.row = r;
    c.column = col;
    c.value = std::move(v);
    return c;
  }
  Hlc hlc_ = SystemMillis();
};

TEST_F(Crafted, EveryUnauthorizedWriteIsRefusedWithItsCode) {
  RawPeer p(server_.url(), Token("rep_c", "crafted"));
  const NodeId node = 0xc0ffee;
  ASSERT_TRUE(p.Hello(node));
  json ack = Push(p, node,
                  {Set("skus", "sku1", "name", "cheap"),                  // reference data
                   Set("accounts", "acc_a1", "phone", "not mine"),        // another rep's account
                   Set("contacts", "ct_acc_a1", "name", "not mine"),      // a row under it
                   Set("accounts", "acc_c1", "assigned_rep", "rep_c"),    // supervisor-only column
                   Set("contacts", "ct_acc_c1", "account_id", "acc_a1"),  // moving a row out of its account
                   Set("accounts", "acc_c1", "phone", "mine")});          // allowed
  ASSERT_EQ(ack["type"], "ack") << ack.dump();
  EXPECT_EQ(ack["applied"], 1);
  std::map<int, std::string> codes;
  for (const auto& r : ack["rejected"]) codes[r["i"].get<int>()] = r["code"].get<std::string>();
  EXPECT_EQ(codes[0], "permission_denied");
  EXPECT_EQ(codes[1], "permission_denied");
  EXPECT_EQ(codes[2], "permission_denied");
  EXPECT_EQ(codes[3], "permission_denied");
  EXPECT_EQ(codes[4], "invalid_argument");
  EXPECT_EQ(codes.count(5), 0u);
  std::set<std::string> server = Lines(server_.Dump());
  for (const auto& l : server) EXPECT_EQ(l.find("not mine"), std::string::npos) << l;
}

TEST_F(Crafted, AForgedScopeAckOrARefusedParentGrantsNothing) {
  RawPeer p(server_.url(), Token("rep_c", "crafted"));
  const NodeId node = 0xc0ffee;
  ASSERT_TRUE(p.Hello(node));
  // Claiming to hold another rep's account does not make it writable.
  ASSERT_TRUE(p.Send({{"type", "scope_ack"}, {"id", 9}, {"add", {"accounts/acc_a1"}}}));
  json reply;
  ASSERT_TRUE(p.Receive(&reply));
  ASSERT_EQ(reply["type"], "scope_ack");
  json ack = Push(p, node, {Set("accounts", "acc_a1", "phone", "forged")});
  ASSERT_EQ(ack["rejected"].size(), 1u) << ack.dump();
  EXPECT_EQ(ack["rejected"][0]["code"], "permission_denied");
  // A parent named by a change that is itself refused (stamped far ahead)
  // does not decide where a new row hangs.
  Change ok = Set("contacts", "ct_x", "account_id", "acc_a1");   // another rep's account
  Change far = Set("contacts", "ct_x", "account_id", "acc_c1");  // its own: the row's key would come from here
  json arr = json::array();
  ok.stamp = {(++hlc_) << 16, node};
  far.stamp = {(SystemMillis() + 3600 * 1000) << 16, node};
  arr.push_back(ChangeToJson(ok));
  arr.push_back(ChangeToJson(far));
  ASSERT_TRUE(p.Send({{"type", "push"}, {"batch", 2}, {"changes", arr}}));
  ASSERT_TRUE(p.Receive(&ack));
  EXPECT_EQ(ack["applied"], 0) << ack.dump();
  ASSERT_EQ(ack["rejected"].size(), 2u) << ack.dump();
  EXPECT_EQ(ack["rejected"][0]["code"], "invalid_argument");  // acc_a1 does not give the key acc_c1 gave
  EXPECT_EQ(ack["rejected"][1]["code"], "clock_skew");
  for (const auto& l : Lines(server_.Dump())) EXPECT_EQ(l.find("forged"), std::string::npos) << l;
  // A deactivated user is refused at the next connection.
  store::User u;
  bool found = false;
  ASSERT_TRUE(server_.hub().GetUser("rep_c", &u, &found).ok());
  u.active = false;
  ASSERT_TRUE(server_.hub().PutUser(u).ok());
  RawPeer q(server_.url(), Token("rep_a", "x"));  // a token issued before, for another user: still fine
  EXPECT_TRUE(q.connected());
  ASSERT_TRUE(p.Send({{"type", "pull"}, {"id", 3}, {"cursor", 0}}));
  ASSERT_TRUE(p.Receive(&reply));
  EXPECT_EQ(reply["code"], "unauthenticated") << reply.dump();  // and the open connection ends
  EXPECT_TRUE(p.ClosedByServer());
}

TEST_F(Crafted, LiveModeCarriesOnlyInScopeChanges) {
  RawPeer p(server_.url(), Token("rep_c", "live"));
  ASSERT_TRUE(p.Hello(0xc0ffee));
  // The first page of a whole-scope snapshot records what the device holds,
  // so live mode has no scope difference to announce.
  json page;
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 1}}));
  ASSERT_TRUE(p.Receive(&page));
  ASSERT_TRUE(p.Send({{"type", "subscribe"}, {"cursor", server_.hub().head()}}));
  auto a = Open("a"), sup = Open("sup");
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(a->Put("accounts", "acc_a1", {{"phone", "north only"}}).ok());
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(sup->Sync(Options("sup_s")).ok());
  ASSERT_TRUE(sup->Put("accounts", "acc_c1", {{"phone", "south news"}}).ok());
  ASSERT_TRUE(sup->Sync(Options("sup_s")).ok());
  // Live messages come in log order: a leaked north change would come first.
  json m;
  bool got = false;
  while (!got && p.Receive(&m, 5000)) {
    ASSERT_EQ(m["type"], "changes") << m.dump();
    EXPECT_EQ(m.dump().find("north only"), std::string::npos) << m.dump();
    got = m.dump().find("south news") != std::string::npos;
  }
  EXPECT_TRUE(got);
}

TEST_F(Crafted, EveryUnauthorizedReadComesBackEmpty) {
  RawPeer p(server_.url(), Token("rep_c", "crafted"));
  ASSERT_TRUE(p.Hello(0xc0ffee));
  // The log from the start: only rep_c's scope.
  ASSERT_TRUE(p.Send({{"type", "pull"}, {"id", 1}, {"cursor", 0}}));
  json reply;
  ASSERT_TRUE(p.Receive(&reply));
  ASSERT_EQ(reply["type"], "changes") << reply.dump();
  ASSERT_FALSE(reply["changes"].empty());
  for (const auto& c : reply["changes"]) {
    std::string s = c.dump();
    EXPECT_EQ(s.find("acc_a"), std::string::npos) << s;
    EXPECT_EQ(s.find("acc_b"), std::string::npos) << s;
    EXPECT_EQ(s.find("pe1"), std::string::npos) << s;  // the east region's promotion
  }
  // A snapshot of someone else's account, by key or by row: nothing.
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 2}, {"keys", {"accounts/acc_a1", "region/east"}}}));
  ASSERT_TRUE(p.Receive(&reply));
  EXPECT_EQ(reply["rows"], json::array()) << reply.dump();
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 3}, {"rows", json::array({json::array({"accounts", "acc_a1"}), json::array({"contacts", "ct_acc_a1"})})}}));
  ASSERT_TRUE(p.Receive(&reply));
  EXPECT_EQ(reply["rows"], json::array()) << reply.dump();
  // Its own row by the same route: there.
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 4}, {"rows", json::array({json::array({"accounts", "acc_c1"})})}}));
  ASSERT_TRUE(p.Receive(&reply));
  EXPECT_EQ(reply["rows"].size(), 1u) << reply.dump();
  // A whole-scope snapshot: its rows only.
  ASSERT_TRUE(p.Send({{"type", "snapshot"}, {"id", 5}}));
  ASSERT_TRUE(p.Receive(&reply));
  for (const auto& r : reply["rows"]) EXPECT_EQ(r.dump().find("acc_a"), std::string::npos) << r.dump();
}

// ---- tokens -----------------------------------------------------------------------------

TEST_F(Territory, TokensThatAreMissingForgedExpiredOrRevokedAreRefused) {
  auto refused = [&](const std::string& token, const std::string& why) {
    RawPeer p(server_.url(), token);
    EXPECT_FALSE(p.connected()) << why;
    EXPECT_EQ(p.http_status(), 401) << why;
    json body = json::parse(p.http_body(), nullptr, false);
    EXPECT_EQ(body.value("code", ""), "unauthenticated") << why << ": " << p.http_body();
    EXPECT_NE(body.value("message", "").find(why), std::string::npos) << p.http_body();
  };
  refused("", "missing");
  server::TokenClaims c{"rep_a", "t1", "", SystemMillis() / 1000, SystemMillis() / 1000 + 60};
  std::string forged;
  ASSERT_TRUE(server::IssueToken(std::string(40, 'x'), c, &forged).ok());
  refused(forged, "bad signature");
  std::string good = Token("rep_a", "t1");
  std::string tampered = good;
  char& ch = tampered[tampered.size() - 10];  // inside the signature
  ch = ch == 'A' ? 'B' : 'A';
  refused(tampered, "bad signature");
  // "alg": "none" with the signature dropped.
  refused(good.substr(0, good.rfind('.') + 1), "bad signature");
  server::TokenClaims old{"rep_a", "t1", "", 1000, 2000};
  std::string expired;
  ASSERT_TRUE(server::IssueToken(kKey, old, &expired).ok());
  refused(expired, "expired");
  server::TokenClaims stranger{"nobody", "t1", "", SystemMillis() / 1000, SystemMillis() / 1000 + 60};
  std::string unknown;
  ASSERT_TRUE(server::IssueToken(kKey, stranger, &unknown).ok());
  refused(unknown, "unknown or deactivated");

  // The good token works until its device is revoked.
  {
    RawPeer p(server_.url(), good);
    json welcome;
    ASSERT_TRUE(p.Hello(0x1234, &welcome));
    EXPECT_EQ(welcome["user"], "rep_a");
    EXPECT_EQ(welcome["role"], "rep");
  }
  ASSERT_TRUE(server_.hub().Revoke("device", "t1").ok());
  refused(good, "revoked");
  std::string other = Token("rep_a", "t2");
  RawPeer ok(server_.url(), other);
  EXPECT_TRUE(ok.connected());
  server::TokenClaims parsed;
  ASSERT_TRUE(server::VerifyToken(kKey, other, SystemMillis() / 1000, &parsed).ok());
  ASSERT_TRUE(server_.hub().Revoke("token", parsed.id).ok());
  refused(other, "revoked");

  // The SDK says so with its own code, and the replica is untouched.
  auto r = Open("r");
  SyncOptions o = server_.sync_options();
  o.token = forged;
  EXPECT_EQ(r->Sync(o).code(), Code::kUnauthenticated);
  EXPECT_EQ(DumpText(*r), "");
}

TEST(AuthToken, RoundTripsAndRefusesTampering) {
  server::TokenClaims c{"rep_a", "tab", "", 100, 200};
  std::string t;
  ASSERT_TRUE(server::IssueToken(kKey, c, &t).ok());
  server::TokenClaims out;
  ASSERT_TRUE(server::VerifyToken(kKey, t, 150, &out).ok());
  EXPECT_EQ(out.user, "rep_a");
  EXPECT_EQ(out.device, "tab");
  EXPECT_EQ(out.id.size(), 24u);
  EXPECT_EQ(server::VerifyToken(kKey, t, 200, &out).code(), Code::kUnauthenticated);  // exp is exclusive
  EXPECT_EQ(server::VerifyToken(kKey + "x", t, 150, &out).code(), Code::kUnauthenticated);
  EXPECT_EQ(server::VerifyToken(kKey, t + ".x", 150, &out).code(), Code::kUnauthenticated);
  EXPECT_EQ(server::VerifyToken(kKey, "a.b", 150, &out).code(), Code::kUnauthenticated);
  EXPECT_EQ(server::VerifyToken(kKey, std::string(5000, 'a'), 150, &out).code(), Code::kUnauthenticated);
  // A payload swapped for another user's, keeping the signature: refused.
  server::TokenClaims c2{"rep_b", "tab", "", 100, 200};
  std::string t2;
  ASSERT_TRUE(server::IssueToken(kKey, c2, &t2).ok());
  std::string spliced = t.substr(0, t.find('.')) + t2.substr(t2.find('.'), t2.rfind('.') - t2.find('.')) +
                        t.substr(t.rfind('.'));
  EXPECT_EQ(server::VerifyToken(kKey, spliced, 150, &out).code(), Code::kUnauthenticated);
  EXPECT_EQ(server::IssueToken("short", c, &t).code(), Code::kInvalidArgument);
}

// ---- TLS --------------------------------------------------------------------------------

TEST(Tls, SyncsOverWssWithASelfSignedCertificateAndRefusesAnUntrustedOne) {
  TempDir dir;
  testing::WriteSelfSignedCert(dir.File("cert.pem"), dir.File("key.pem"));
  server::ServerOptions o = AuthOptions();
  o.tls_cert_file = dir.File("cert.pem");
  o.tls_key_file = dir.File("key.pem");
  TestServer server(o);
  store::User u;
  u.id = "rep_a";
  ASSERT_TRUE(server.hub().PutUser(u).ok());
  std::string token;
  ASSERT_TRUE(server.hub().IssueToken("rep_a", "tab", 600, &token).ok());
  std::unique_ptr<Replica> a;
  ASSERT_TRUE(Replica::Open(dir.File("a.db"), testing::FieldSalesSchema(), &a).ok());
  ASSERT_TRUE(a->Put("accounts", "mine", {{"name", "over TLS"}, {"assigned_rep", "rep_a"}}).ok());
  SyncOptions so = server.sync_options();
  so.url = "wss://127.0.0.1:" + so.url.substr(so.url.rfind(':') + 1);
  so.token = token;
  so.tls_ca_file = dir.File("cert.pem");
  SyncReport rep;
  Status st = a->Sync(so, &rep);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(rep.pushed, 2);
  EXPECT_NE(server.Dump().find("over TLS"), std::string::npos);
  // Without the certificate in its trust store the client refuses the server.
  so.tls_ca_file.clear();
  st = a->Sync(so);
  EXPECT_EQ(st.code(), Code::kIoError);
  EXPECT_NE(st.message().find("TLS handshake"), std::string::npos) << st.ToString();
  // Plain ws:// to a TLS port gets nowhere.
  so = server.sync_options();
  so.token = token;
  so.connect_timeout_ms = 2000;
  EXPECT_FALSE(a->Sync(so).ok());
}

}  // namespace
}  // namespace fieldsync
