// The admin HTTP API (docs/admin-api.md) on the real server's port, over
// real HTTP requests: who may call it, what a supervisor sees and changes
// (their team only), plans decided over HTTP with the same rules as a
// tablet's decision, tokens, revocations, device status and the audit
// trail. Bad requests get their status and change nothing.
#include <gtest/gtest.h>

#include "tests/e2e/territory_fixture.h"

namespace fieldsync {
namespace {

using testing::HttpCall;
using testing::HttpReply;

class AdminHttp : public Territory {
 protected:
  HttpReply Call(const std::string& user, const std::string& method, const std::string& target,
                 const json& body = nullptr) {
    return HttpCall(server_.url(), method, target, user.empty() ? "" : Token(user, "desk-" + user),
                    body.is_null() ? "" : body.dump());
  }
  std::set<std::string> Ids(const json& list, const std::string& field = "id") {
    std::set<std::string> out;
    for (const auto& x : list) out.insert(x[field].get<std::string>());
    return out;
  }
};

TEST_F(AdminHttp, OnlySupervisorsAndAdminsGetInAndBadRequestsChangeNothing) {
  std::string before = server_.Dump();
  EXPECT_EQ(HttpCall(server_.url(), "GET", "/api/users").status, 401);
  EXPECT_EQ(HttpCall(server_.url(), "GET", "/api/users", Token("sup_n", "d") + "x").status, 401);
  HttpReply rep = Call("rep_a", "GET", "/api/users");
  EXPECT_EQ(rep.status, 403);
  EXPECT_EQ(rep.body["code"], "permission_denied");
  EXPECT_EQ(Call("rep_a", "PUT", "/api/assignments/acc_a1", {{"rep", "rep_a"}}).status, 403);
  EXPECT_EQ(Call("sup_n", "GET", "/api/nothing").status, 404);
  EXPECT_EQ(Call("sup_n", "DELETE", "/api/users").status, 405);
  HttpReply bad = HttpCall(server_.url(), "PUT", "/api/assignments/acc_a1", Token("sup_n", "d"), "{not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Call("sup_n", "PUT", "/api/assignments/acc_a1", {{"rep", 7}}).status, 400);
  EXPECT_EQ(Call("sup_n", "PUT", "/api/assignments/acc_none", {{"rep", "rep_a"}}).status, 404);
  std::string huge = json{{"rep", std::string(70 * 1024, 'x')}}.dump();
  EXPECT_EQ(HttpCall(server_.url(), "PUT", "/api/assignments/acc_a1", Token("sup_n", "d"), huge).status, 413);
  EXPECT_EQ(Call("sup_n", "PUT", "/api/users/rep_a", {{"role", "admin"}}).status, 403);
  EXPECT_EQ(Call("admin1", "PUT", "/api/users/rep_a", {{"role", "boss"}}).status, 400);
  EXPECT_EQ(Call("sup_n", "POST", "/api/tokens", {{"user", "rep_a"}, {"device", "x"}}).status, 403);
  EXPECT_EQ(server_.Dump(), before);
  // The WebSocket side still serves everyone.
  auto a = Open("a");
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  ExpectHoldsItsScope(*a, "rep_a");
  json me = Call("sup_n", "GET", "/api/me").body;
  EXPECT_EQ(me["role"], "supervisor");
  // Bytes no id holds are refused before they reach any message.
  EXPECT_EQ(HttpCall(server_.url(), "GET", "/api/users/\xff\xfe", Token("sup_n", "d")).status, 400);
  EXPECT_EQ(Call("sup_n", "GET", "/api/users/%FF").status, 404);
  EXPECT_EQ(Call("sup_n", "GET", "/api/me").status, 200);
  // Without a signing key there is no admin API at all.
  testing::TestServer open_server;
  HttpReply none = HttpCall(open_server.url(), "GET", "/api/users");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(none.body["code"], "unsupported");
}

TEST_F(AdminHttp, ASupervisorSeesAndChangesTheirTeamOnly) {
  HttpReply users = Call("sup_n", "GET", "/api/users");
  ASSERT_EQ(users.status, 200) << users.raw;
  EXPECT_EQ(Ids(users.body["users"]), (std::set<std::string>{"sup_n", "rep_a", "rep_b"}));
  HttpReply teams = Call("admin1", "GET", "/api/teams");
  ASSERT_EQ(teams.body["teams"].size(), 2u);
  EXPECT_EQ(teams.body["teams"][0]["team"], "north");
  EXPECT_EQ(teams.body["teams"][0]["reps"], json({"rep_a", "rep_b"}));
  EXPECT_EQ(Call("sup_n", "GET", "/api/users/rep_c").status, 404);
  EXPECT_EQ(Call("sup_n", "PUT", "/api/users/rep_c", {{"team", "north"}}).status, 403);
  HttpReply created = Call("admin1", "PUT", "/api/users/rep_d", {{"role", "rep"}, {"region", "east"}});
  EXPECT_EQ(created.status, 201);
  EXPECT_EQ(Call("sup_n", "PUT", "/api/users/rep_d", {{"team", "north"}}).body["team"], "north");

  HttpReply list = Call("sup_n", "GET", "/api/assignments");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(Ids(list.body["assignments"], "account"), (std::set<std::string>{"acc_a1", "acc_a2", "acc_b1"}));
  EXPECT_EQ(Ids(Call("sup_n", "GET", "/api/assignments?rep=rep_b").body["assignments"], "account"),
            (std::set<std::string>{"acc_b1"}));
  EXPECT_EQ(Call("sup_n", "PUT", "/api/assignments/acc_c1", {{"rep", "rep_a"}}).status, 403);  // not theirs
  EXPECT_EQ(Call("sup_n", "PUT", "/api/assignments/acc_a1", {{"rep", "rep_c"}}).status, 403);  // not their team

  // A move over HTTP is an ordinary change: both tablets follow it.
  auto a = Open("a"), b = Open("b");
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(b->Sync(Options("rep_b")).ok());
  HttpReply moved = Call("sup_n", "PUT", "/api/assignments/acc_a2", {{"rep", "rep_b"}});
  ASSERT_EQ(moved.status, 200) << moved.raw;
  SyncReport ra, rb;
  ASSERT_TRUE(a->Sync(Options("rep_a"), &ra).ok());
  ASSERT_TRUE(b->Sync(Options("rep_b"), &rb).ok());
  EXPECT_GT(ra.evicted_rows, 0);
  EXPECT_GT(rb.snapshot_rows, 0);
  json row;
  EXPECT_EQ(a->Get("accounts", "acc_a2", &row).code(), Code::kNotFound);
  EXPECT_TRUE(b->Get("accounts", "acc_a2", &row).ok());
  ExpectHoldsItsScope(*a, "rep_a");
  ExpectHoldsItsScope(*b, "rep_b");
  // A deleted account is not reassigned.
  ASSERT_TRUE(a->Delete("accounts", "acc_a1").ok());
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  HttpReply gone = Call("sup_n", "PUT", "/api/assignments/acc_a1", {{"rep", "rep_b"}});
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.body["code"], "deleted");
  // Removing a rep from the team takes their accounts out of the supervisor's view.
  EXPECT_EQ(Call("sup_n", "PUT", "/api/users/rep_b", {{"team", ""}}).status, 200);
  EXPECT_EQ(Ids(Call("sup_n", "GET", "/api/assignments").body["assignments"], "account"), std::set<std::string>{});
}

TEST_F(AdminHttp, PlansAreReviewedAndDecidedOverHttpUnderTheSameRules) {
  auto a = Open("a");
  ASSERT_TRUE(a->Put("visit_plans", "p1", {{"rep", "rep_a"}, {"week_start", "2026-12-07"}, {"status", "draft"}}).ok());
  // Ids in the opposite order of the route: the API sorts by date and route order.
  ASSERT_TRUE(a->Put("plan_items", "i2", {{"plan_id", "p1"}, {"account_id", "acc_a1"}, {"planned_date", "2026-12-07"}, {"route_order", 1}}).ok());
  ASSERT_TRUE(a->Put("plan_items", "i1", {{"plan_id", "p1"}, {"account_id", "acc_a2"}, {"planned_date", "2026-12-07"}, {"route_order", 2}}).ok());
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  EXPECT_EQ(Call("sup_n", "POST", "/api/plans/p1/decisions", {{"decision", "approved"}}).status, 400);  // a draft
  ASSERT_TRUE(a->Put("visit_plans", "p1", {{"status", "submitted"}, {"submitted_at", "2026-12-04T17:30:00"}}).ok());
  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());

  HttpReply plans = Call("sup_n", "GET", "/api/plans?status=submitted");
  ASSERT_EQ(plans.status, 200) << plans.raw;
  ASSERT_EQ(plans.body["plans"].size(), 1u);
  EXPECT_EQ(plans.body["plans"][0]["due"], "2026-12-04T16:00:00");
  EXPECT_EQ(plans.body["plans"][0]["on_time"], false);  // handed in at 17:30 on the Friday
  EXPECT_EQ(Call("sup_s", "GET", "/api/plans").body["plans"].size(), 0u);
  EXPECT_EQ(Call("sup_s", "GET", "/api/plans/p1").status, 403);
  HttpReply plan = Call("sup_n", "GET", "/api/plans/p1");
  ASSERT_EQ(plan.status, 200);
  ASSERT_EQ(plan.body["items"].size(), 2u);
  EXPECT_EQ(plan.body["items"][0]["id"], "i2");  // in route order
  EXPECT_EQ(plan.body["items"][1]["id"], "i1");
  EXPECT_TRUE(plan.body["diff"]["previous"].is_null());

  // A refused decision writes nothing at all (all or nothing).
  std::string before = server_.Dump();
  int64_t head = server_.hub().head();
  EXPECT_EQ(Call("sup_n", "POST", "/api/plans/p1/decisions", {{"decision", "approved"}, {"kind", "bogus"}}).status, 400);
  EXPECT_EQ(server_.Dump(), before);
  EXPECT_EQ(server_.hub().head(), head);
  HttpReply first = Call("sup_n", "POST", "/api/plans/p1/decisions", {{"decision", "approved"}, {"comment", "ok"}});
  ASSERT_EQ(first.status, 201) << first.raw;
  EXPECT_EQ(first.body["subject"]["status"], "approved");
  EXPECT_EQ(first.body["approval"]["decided_by"], "sup_n");
  EXPECT_EQ(first.body["approval"]["rep"], "rep_a");
  HttpReply second = Call("admin1", "POST", "/api/plans/p1/decisions", {{"decision", "returned"}});
  ASSERT_EQ(second.status, 201);
  EXPECT_EQ(second.body["approval"]["conflicting"], true);
  EXPECT_EQ(second.body["subject"]["status"], "approved");
  EXPECT_EQ(Call("sup_n", "POST", "/api/plans/p1/decisions", {{"decision", "reviewed"}}).status, 400);
  EXPECT_EQ(Call("sup_n", "POST", "/api/approvals", {{"subject_table", "visits"}, {"subject_id", "v_acc_c1"},
                                                     {"decision", "reviewed"}}).status, 403);
  HttpReply review = Call("sup_n", "POST", "/api/approvals", {{"subject_table", "visits"}, {"subject_id", "v_acc_a1"},
                                                             {"decision", "reviewed"}, {"kind", "visit_review"},
                                                             {"comment", "good shelf work"}});
  EXPECT_EQ(review.status, 201) << review.raw;

  ASSERT_TRUE(a->Sync(Options("rep_a")).ok());
  json row;
  ASSERT_TRUE(a->Get("visit_plans", "p1", &row).ok());
  EXPECT_EQ(row["status"], "approved");
  std::vector<json> approvals;
  ASSERT_TRUE(a->Query("approvals", {}, &approvals).ok());
  EXPECT_EQ(approvals.size(), 3u);
  ExpectHoldsItsScope(*a, "rep_a");
}

TEST_F(AdminHttp, TokensRevocationsDeviceStatusAndHistory) {
  HttpReply issued = Call("admin1", "POST", "/api/tokens", {{"user", "rep_a"}, {"device", "tablet-9"}, {"ttl_s", 600}});
  ASSERT_EQ(issued.status, 201) << issued.raw;
  auto a = Open("a");
  SyncOptions o = server_.sync_options();
  o.token = issued.body["token"].get<std::string>();
  ASSERT_TRUE(a->Put("accounts", "acc_a1", {{"phone", "021-777"}}).ok());
  ASSERT_TRUE(a->Sync(o).ok());

  // A device that says it holds unsent work, and has not pushed it yet.
  testing::RawPeer peer(server_.url(), Token("rep_b", "phone-b"));
  ASSERT_TRUE(peer.connected());
  ASSERT_TRUE(peer.Send({{"type", "hello"}, {"protocol", {1}}, {"node", ToHex(0xB0B)}, {"pending", 5}}));
  json welcome;
  ASSERT_TRUE(peer.Receive(&welcome));

  HttpReply devices = Call("sup_n", "GET", "/api/devices");
  ASSERT_EQ(devices.status, 200) << devices.raw;
  std::map<std::string, json> by_device;
  for (const auto& d : devices.body["devices"]) by_device[d.value("device", "")] = d;
  ASSERT_TRUE(by_device.count("tablet-9"));
  EXPECT_EQ(by_device["tablet-9"]["user"], "rep_a");
  EXPECT_EQ(by_device["tablet-9"]["pending"], 0);
  EXPECT_GT(by_device["tablet-9"]["last_seen_ms"].get<uint64_t>(), 0u);
  EXPECT_EQ(by_device["tablet-9"]["cursor_lag"], 0);
  EXPECT_EQ(by_device["phone-b"]["pending"], 5);
  EXPECT_EQ(by_device["phone-b"]["cursor_lag"], devices.body["head"]);
  EXPECT_EQ(Call("sup_s", "GET", "/api/devices").body["devices"].size(), 0u);

  HttpReply history = Call("sup_n", "GET", "/api/history/accounts/acc_a1");
  ASSERT_EQ(history.status, 200) << history.raw;
  const json& last = history.body["history"].back();
  EXPECT_EQ(last["user"], "rep_a");
  EXPECT_EQ(last["device"], "tablet-9");
  EXPECT_EQ(last["column"], "phone");
  EXPECT_EQ(last["value"], "021-777");
  EXPECT_GT(last["received_ms"].get<uint64_t>(), 0u);
  EXPECT_EQ(Call("sup_s", "GET", "/api/history/accounts/acc_a1").status, 403);
  EXPECT_EQ(Call("sup_n", "GET", "/api/history/accounts/acc_a1?limit=0").status, 400);

  EXPECT_EQ(Call("sup_n", "POST", "/api/revocations", {{"kind", "device"}, {"value", "tablet-9"}}).status, 403);
  EXPECT_EQ(Call("admin1", "POST", "/api/revocations", {{"kind", "device"}, {"value", "tablet-9"}}).status, 201);
  EXPECT_EQ(a->Sync(o).code(), Code::kUnauthenticated);
}

}  // namespace
}  // namespace fieldsync
