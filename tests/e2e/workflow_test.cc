// Supervisor workflows against the real server (docs/merge.md,
// "Workflows"): a rep's weekly visit plan is drafted, submitted and then
// frozen; only a decision record (approvals) approves or returns it; a
// decision is never overwritten and a second, disagreeing one is kept and
// flagged; a change after submission is a new revision whose difference
// the server reports. Every replica still holds exactly its scope.
#include <gtest/gtest.h>

#include "tests/e2e/territory_fixture.h"

namespace fieldsync {
namespace {

class Workflow : public Territory {
 protected:
  SyncOptions Device(const std::string& user, const std::string& device) {
    SyncOptions o = server_.sync_options();
    o.token = Token(user, device);
    return o;
  }

  // rep_a's plan for the week of 7 December: two visits in route order.
  void DraftPlan(Replica& r, const std::string& plan, int revision = 1, const std::string& previous = "") {
    json fields = {{"rep", "rep_a"}, {"week_start", "2026-12-07"}, {"revision", revision}, {"status", "draft"}};
    if (!previous.empty()) fields["previous_plan_id"] = previous;
    ASSERT_TRUE(r.Put("visit_plans", plan, fields).ok());
    ASSERT_TRUE(r.Put("plan_items", plan + "_1", {{"plan_id", plan}, {"account_id", "acc_a1"},
                                                  {"planned_date", "2026-12-07"}, {"route_order", 1}})
                    .ok());
    ASSERT_TRUE(r.Put("plan_items", plan + "_2", {{"plan_id", plan}, {"account_id", "acc_a2"},
                                                  {"planned_date", "2026-12-08"}, {"route_order", 1}})
                    .ok());
  }

  void Decide(Replica& r, const std::string& id, const std::string& by, const std::string& subject_table,
              const std::string& subject, const std::string& decision, const std::string& kind = "") {
    json fields = {{"rep", "rep_a"}, {"subject_table", subject_table}, {"subject_id", subject},
                   {"decision", decision}, {"decided_by", by}, {"decided_at", "2026-12-04"}};
    if (!kind.empty()) fields["kind"] = kind;
    ASSERT_TRUE(r.Put("approvals", id, fields).ok());
  }

  // Codes of the replica's rejections, by "table/row.column".
  std::map<std::string, std::string> Refused(Replica& r) {
    std::vector<store::Rejection> rej;
    EXPECT_TRUE(r.Rejections(&rej).ok());
    std::map<std::string, std::string> out;
    for (const auto& x : rej) out[x.change.table + "/" + x.change.row + "." + x.change.column] = x.code;
    return out;
  }

  json Row(Replica& r, const std::string& table, const std::string& id) {
    json row;
    Status st = r.Get(table, id, &row);
    EXPECT_TRUE(st.ok()) << table << "/" << id << ": " << st.ToString();
    return row;
  }
};

TEST_F(Workflow, ASubmittedPlanIsFrozenAndOnlyADecisionRecordApprovesIt) {
  auto tablet = Open("tablet"), phone = Open("phone"), sup = Open("sup");
  DraftPlan(*tablet, "p1");
  ASSERT_TRUE(tablet->Sync(Device("rep_a", "tablet")).ok());
  ASSERT_TRUE(phone->Sync(Device("rep_a", "phone")).ok());  // holds the draft
  // Friday: the last edit and the submission go up in one push.
  ASSERT_TRUE(tablet->Put("plan_items", "p1_2", {{"route_order", 2}}).ok());
  ASSERT_TRUE(tablet->Put("visit_plans", "p1", {{"status", "submitted"}, {"submitted_at", "2026-12-04T15:40:00"}}).ok());
  // A later line of the same push, after the submission, still belongs to it.
  ASSERT_TRUE(tablet->Put("plan_items", "p1_1", {{"objective", "promo check"}}).ok());
  ASSERT_TRUE(tablet->Sync(Device("rep_a", "tablet")).ok());
  EXPECT_TRUE(Refused(*tablet).empty());
  EXPECT_EQ(Row(*tablet, "plan_items", "p1_1")["objective"], "promo check");

  // Offline, the phone still shows a draft and the rep moves a visit; the
  // server holds the plan submitted, so the edit is refused and undone.
  ASSERT_TRUE(phone->Put("plan_items", "p1_1", {{"planned_date", "2026-12-09"}}).ok());
  ASSERT_TRUE(phone->Put("plan_items", "p1_3", {{"plan_id", "p1"}, {"account_id", "acc_a1"}, {"planned_date", "2026-12-10"}}).ok());
  // Nor can the rep approve their own plan by writing its status.
  ASSERT_TRUE(phone->Put("visit_plans", "p1", {{"status", "approved"}}).ok());
  ASSERT_TRUE(phone->Put("approvals", "ap_self", {{"rep", "rep_a"}, {"subject_table", "visit_plans"}, {"subject_id", "p1"},
                                                 {"decision", "approved"}, {"decided_by", "rep_a"}}).ok());
  SyncReport pr;
  ASSERT_TRUE(phone->Sync(Device("rep_a", "phone"), &pr).ok());
  auto refused = Refused(*phone);
  EXPECT_EQ(refused["plan_items/p1_1.planned_date"], "frozen");
  EXPECT_EQ(refused["plan_items/p1_3.account_id"], "frozen");
  EXPECT_EQ(refused["visit_plans/p1.status"], "permission_denied");
  EXPECT_EQ(refused["approvals/ap_self.decision"], "permission_denied");
  EXPECT_GT(pr.reverted_rows, 0);
  EXPECT_EQ(Row(*phone, "plan_items", "p1_1")["planned_date"], "2026-12-07");
  EXPECT_EQ(Row(*phone, "plan_items", "p1_2")["route_order"], 2);  // the submitted content arrived
  EXPECT_EQ(Row(*phone, "visit_plans", "p1")["status"], "submitted");
  json none;
  EXPECT_EQ(phone->Get("plan_items", "p1_3", &none).code(), Code::kNotFound);

  // The supervisor approves with a record; the server moves the plan.
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  EXPECT_EQ(Row(*sup, "visit_plans", "p1")["status"], "submitted");
  // Pushes of 8 changes: the account edit's 3 and the record's 6 do not fit
  // one, and the record goes up whole in the second rather than cut in two.
  ASSERT_TRUE(sup->Put("accounts", "acc_a1", {{"phone", "1"}, {"fax", "2"}, {"email", "a@b.c"}}).ok());
  Decide(*sup, "ap1", "sup_n", "visit_plans", "p1", "approved");
  SyncOptions small = Options("sup_n");
  small.push_batch = 8;
  ASSERT_TRUE(sup->Sync(small).ok());
  EXPECT_TRUE(Refused(*sup).empty());
  EXPECT_EQ(Row(*sup, "visit_plans", "p1")["status"], "approved");
  for (auto* r : {tablet.get(), phone.get()}) {
    ASSERT_TRUE(r->Sync(Device("rep_a", r == tablet.get() ? "tablet" : "phone")).ok());
    EXPECT_EQ(Row(*r, "visit_plans", "p1")["status"], "approved");
    EXPECT_EQ(Row(*r, "approvals", "ap1")["decided_by"], "sup_n");
    ExpectHoldsItsScope(*r, "rep_a");
  }
  ExpectHoldsItsScope(*sup, "sup_n");
  EXPECT_EQ(DumpText(*tablet), DumpText(*phone));
}

TEST_F(Workflow, AChangeAfterSubmissionIsANewRevisionWithAVisibleDiff) {
  auto tablet = Open("tablet"), sup = Open("sup");
  DraftPlan(*tablet, "p1");
  ASSERT_TRUE(tablet->Put("visit_plans", "p1", {{"status", "submitted"}}).ok());
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  // The supervisor approves revision 1 while the rep, offline, revises the
  // route: the approval stays with the content it saw.
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  Decide(*sup, "ap1", "sup_n", "visit_plans", "p1", "approved");
  DraftPlan(*tablet, "p2", 2, "p1");
  ASSERT_TRUE(tablet->Put("plan_items", "p2_2", {{"route_order", 3}, {"objective", "promo check"}}).ok());
  ASSERT_TRUE(tablet->Delete("plan_items", "p2_1").ok());
  ASSERT_TRUE(tablet->Put("plan_items", "p2_3", {{"plan_id", "p2"}, {"account_id", "acc_a1"},
                                                 {"planned_date", "2026-12-10"}, {"route_order", 1}}).ok());
  ASSERT_TRUE(tablet->Put("visit_plans", "p2", {{"status", "submitted"}, {"sales_target", 12000.0}}).ok());
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  EXPECT_TRUE(Refused(*tablet).empty());
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  for (auto* r : {tablet.get(), sup.get()}) {
    EXPECT_EQ(Row(*r, "visit_plans", "p1")["status"], "approved");
    EXPECT_EQ(Row(*r, "visit_plans", "p2")["status"], "submitted");  // awaits its own decision
  }
  // A revision of someone else's plan is refused: the diff would show it.
  auto b = Open("b");
  ASSERT_TRUE(b->Sync(Options("rep_b")).ok());
  ASSERT_TRUE(b->Put("visit_plans", "pb", {{"rep", "rep_b"}, {"previous_plan_id", "p1"}, {"status", "draft"}}).ok());
  ASSERT_TRUE(b->Sync(Options("rep_b")).ok());
  EXPECT_EQ(Refused(*b)["visit_plans/pb.previous_plan_id"], "invalid_argument");
  // Nor be its own revision.
  ASSERT_TRUE(tablet->Put("visit_plans", "p3", {{"rep", "rep_a"}, {"status", "draft"}}).ok());
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(tablet->Put("visit_plans", "p3", {{"previous_plan_id", "p3"}}).ok());
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  EXPECT_EQ(Refused(*tablet)["visit_plans/p3.previous_plan_id"], "invalid_argument");
  // Nor may a supervisor, who sees both reps' plans, hang one rep's plan on another's.
  ASSERT_TRUE(sup->Put("visit_plans", "ps", {{"rep", "rep_b"}, {"previous_plan_id", "p1"}, {"status", "draft"}}).ok());
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  EXPECT_EQ(Refused(*sup)["visit_plans/ps.previous_plan_id"], "invalid_argument");
  json diff;
  ASSERT_TRUE(server_.hub().RevisionDiff("visit_plans", "p2", &diff).ok());
  EXPECT_EQ(diff["previous"], "p1");
  EXPECT_EQ(diff["changed"]["sales_target"]["to"], 12000.0);
  EXPECT_EQ(diff["changed"]["revision"]["from"], 1);
  ASSERT_EQ(diff["items"]["added"].size(), 1u);
  EXPECT_EQ(diff["items"]["added"][0]["planned_date"], "2026-12-10");
  ASSERT_EQ(diff["items"]["removed"].size(), 1u);
  EXPECT_EQ(diff["items"]["removed"][0]["id"], "p1_1");
  ASSERT_EQ(diff["items"]["changed"].size(), 1u);
  EXPECT_EQ(diff["items"]["changed"][0]["fields"]["route_order"]["to"], 3);
  EXPECT_EQ(diff["items"]["changed"][0]["fields"]["objective"]["to"], "promo check");
  ASSERT_TRUE(sup->Sync(Options("sup_n")).ok());
  ExpectHoldsItsScope(*tablet, "rep_a");
  ExpectHoldsItsScope(*sup, "sup_n");
}

TEST_F(Workflow, ASecondDisagreeingDecisionIsKeptAndFlaggedAndNoneIsOverwritten) {
  auto tablet = Open("tablet"), desk = Open("desk"), laptop = Open("laptop"), admin = Open("admin");
  DraftPlan(*tablet, "p1");
  ASSERT_TRUE(tablet->Put("visit_plans", "p1", {{"status", "submitted"}}).ok());
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(desk->Sync(Device("sup_n", "desk")).ok());
  ASSERT_TRUE(admin->Sync(Options("admin1")).ok());
  // Two decisions made apart: the supervisor returns the plan, the admin
  // approves it. The first to reach the server decides; the other is kept.
  Decide(*desk, "ap_return", "sup_n", "visit_plans", "p1", "returned");
  // (A kind does not set a plan's decisions apart: they all compete for its status.)
  Decide(*admin, "ap_approve", "admin1", "visit_plans", "p1", "approved", "weekly_plan");
  ASSERT_TRUE(desk->Sync(Device("sup_n", "desk")).ok());
  ASSERT_TRUE(admin->Sync(Options("admin1")).ok());
  EXPECT_TRUE(Refused(*admin).empty());
  ASSERT_TRUE(desk->Sync(Device("sup_n", "desk")).ok());
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  for (auto* r : {tablet.get(), desk.get(), admin.get()}) {
    EXPECT_EQ(Row(*r, "visit_plans", "p1")["status"], "returned");
    EXPECT_EQ(Row(*r, "approvals", "ap_approve")["conflicting"], true);
    EXPECT_FALSE(Row(*r, "approvals", "ap_return").contains("conflicting"));
  }
  // A decision is never overwritten, by its author or anyone.
  ASSERT_TRUE(desk->Put("approvals", "ap_return", {{"decision", "approved"}}).ok());
  ASSERT_TRUE(desk->Put("approvals", "ap_return", {{"conflicting", true}}).ok());
  ASSERT_TRUE(desk->Delete("approvals", "ap_approve").ok());
  ASSERT_TRUE(desk->Sync(Device("sup_n", "desk")).ok());
  auto refused = Refused(*desk);
  EXPECT_EQ(refused["approvals/ap_return.decision"], "permission_denied");
  EXPECT_EQ(refused["approvals/ap_return.conflicting"], "permission_denied");
  EXPECT_EQ(refused["approvals/ap_approve."], "permission_denied");
  EXPECT_EQ(Row(*desk, "approvals", "ap_return")["decision"], "returned");
  EXPECT_EQ(Row(*desk, "approvals", "ap_approve")["decision"], "approved");
  // A record is judged, and takes effect, as it ends the push that creates
  // it: a decision corrected before syncing (its subject, its value) counts
  // as corrected, and the plan first named is untouched.
  ASSERT_TRUE(tablet->Put("visit_plans", "p9", {{"rep", "rep_a"}, {"status", "draft"}}).ok());
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(tablet->Put("visit_plans", "p9", {{"status", "submitted"}}).ok());
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(desk->Sync(Device("sup_n", "desk")).ok());
  Decide(*desk, "ap_9", "sup_n", "visit_plans", "p1", "reviewed");  // wrong plan, not a plan decision
  ASSERT_TRUE(desk->Put("approvals", "ap_9", {{"subject_id", "p9"}, {"decision", "approved"}}).ok());
  ASSERT_TRUE(desk->Sync(Device("sup_n", "desk")).ok());
  EXPECT_EQ(Refused(*desk).count("approvals/ap_9.decision"), 0u);
  EXPECT_EQ(Row(*desk, "approvals", "ap_9")["subject_id"], "p9");
  EXPECT_EQ(Row(*desk, "approvals", "ap_9")["decision"], "approved");
  EXPECT_FALSE(Row(*desk, "approvals", "ap_9").contains("conflicting"));
  EXPECT_EQ(Row(*desk, "visit_plans", "p9")["status"], "approved");
  EXPECT_EQ(Row(*desk, "visit_plans", "p1")["status"], "returned");
  // Corrected to disagree with the standing decision: kept and flagged.
  Decide(*desk, "ap_twice", "sup_n", "visit_plans", "p1", "returned");
  ASSERT_TRUE(desk->Put("approvals", "ap_twice", {{"decision", "approved"}}).ok());
  ASSERT_TRUE(desk->Sync(Device("sup_n", "desk")).ok());
  EXPECT_EQ(Refused(*desk).count("approvals/ap_twice.decision"), 0u);
  EXPECT_EQ(Row(*desk, "approvals", "ap_twice")["decision"], "approved");
  EXPECT_EQ(Row(*desk, "approvals", "ap_twice")["conflicting"], true);
  EXPECT_EQ(Row(*desk, "visit_plans", "p1")["status"], "returned");
  // An agreeing second decision is no conflict.
  ASSERT_TRUE(laptop->Sync(Device("sup_n", "laptop")).ok());
  Decide(*laptop, "ap_again", "sup_n", "visit_plans", "p1", "returned");
  ASSERT_TRUE(laptop->Sync(Device("sup_n", "laptop")).ok());
  EXPECT_FALSE(Row(*laptop, "approvals", "ap_again").contains("conflicting"));
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(desk->Sync(Device("sup_n", "desk")).ok());
  ExpectHoldsItsScope(*tablet, "rep_a");
  ExpectHoldsItsScope(*desk, "sup_n");
}

TEST_F(Workflow, ADecisionMustBeOnASubmittedSubjectTheDeciderSees) {
  auto tablet = Open("tablet"), north = Open("north"), south = Open("south");
  DraftPlan(*tablet, "p1");
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  ASSERT_TRUE(north->Sync(Options("sup_n")).ok());
  ASSERT_TRUE(south->Sync(Options("sup_s")).ok());
  Decide(*north, "ap_draft", "sup_n", "visit_plans", "p1", "approved");        // still a draft
  Decide(*north, "ap_forged", "sup_s", "visit_plans", "p1", "returned");       // in another's name
  Decide(*north, "ap_kind", "sup_n", "visit_plans", "p1", "reviewed");         // not a plan decision
  Decide(*north, "ap_missing", "sup_n", "visit_plans", "p_none", "approved");  // no such plan
  ASSERT_TRUE(north->Put("approvals", "ap_rep", {{"rep", "rep_b"}, {"subject_table", "visits"}, {"subject_id", "v_acc_a1"},
                                                 {"decision", "reviewed"}, {"decided_by", "sup_n"}}).ok());
  // A key-account visit request approved, then the visit record reviewed:
  // no workflow, just the records, and decisions of two kinds never conflict.
  ASSERT_TRUE(north->Put("approvals", "ap_request", {{"rep", "rep_a"}, {"subject_table", "visits"}, {"subject_id", "v_acc_a1"},
                                                    {"decision", "approved"}, {"decided_by", "sup_n"}, {"kind", "visit_request"}}).ok());
  ASSERT_TRUE(north->Put("approvals", "ap_review", {{"rep", "rep_a"}, {"subject_table", "visits"}, {"subject_id", "v_acc_a1"},
                                                   {"decision", "reviewed"}, {"decided_by", "sup_n"}, {"kind", "visit_review"}}).ok());
  ASSERT_TRUE(north->Sync(Options("sup_n")).ok());
  auto refused = Refused(*north);
  EXPECT_EQ(refused["approvals/ap_draft.decision"], "invalid_argument");
  EXPECT_EQ(refused["approvals/ap_forged.decided_by"], "permission_denied");
  EXPECT_EQ(refused["approvals/ap_kind.decision"], "schema_violation");
  EXPECT_EQ(refused["approvals/ap_missing.decision"], "not_found");
  EXPECT_EQ(refused["approvals/ap_rep.decision"], "invalid_argument");  // rep_b is not the visit's rep
  EXPECT_EQ(refused.count("approvals/ap_review.decision"), 0u);
  EXPECT_FALSE(Row(*north, "approvals", "ap_review").contains("conflicting"));
  // Another team's supervisor cannot decide on rep_a's work at all.
  ASSERT_TRUE(tablet->Put("visit_plans", "p1", {{"status", "submitted"}}).ok());
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  Decide(*south, "ap_south", "sup_s", "visit_plans", "p1", "approved");
  ASSERT_TRUE(south->Put("approvals", "ap_south2", {{"rep", "rep_c"}, {"subject_table", "visit_plans"}, {"subject_id", "p1"},
                                                   {"decision", "approved"}, {"decided_by", "sup_s"}}).ok());
  ASSERT_TRUE(south->Sync(Options("sup_s")).ok());
  EXPECT_EQ(Refused(*south)["approvals/ap_south.decision"], "permission_denied");  // rep_a is not in the team
  EXPECT_EQ(Refused(*south)["approvals/ap_south2.decision"], "permission_denied");  // the plan is not in scope
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  EXPECT_EQ(Row(*tablet, "visit_plans", "p1")["status"], "submitted");
  EXPECT_EQ(Row(*tablet, "approvals", "ap_review")["decision"], "reviewed");
  // A submitted draft order is frozen the same way, lines included.
  ASSERT_TRUE(tablet->Put("orders", "o_acc_a2", {{"status", "delivered"}}).ok());  // never approved
  ASSERT_TRUE(tablet->Put("orders", "o_a1_draft", {{"account_id", "acc_a1"}}).ok());
  ASSERT_TRUE(tablet->Put("order_lines", "ol_draft", {{"order_id", "o_a1_draft"}, {"quantity", 5}}).ok());
  ASSERT_TRUE(tablet->Put("orders", "o_acc_a1", {{"status", "submitted"}}).ok());
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  EXPECT_EQ(Refused(*tablet)["orders/o_acc_a2.status"], "permission_denied");
  EXPECT_FALSE(Row(*tablet, "orders", "o_acc_a2").contains("status"));
  // A line cannot leave a submitted order for a draft one of the same
  // account, nor be edited by naming another parent in the same push.
  ASSERT_TRUE(tablet->Put("order_lines", "ol_acc_a1", {{"order_id", "o_a1_draft"}}).ok());
  ASSERT_TRUE(tablet->Put("order_lines", "ol_acc_a1", {{"quantity", 40}, {"order_id", "o_nowhere"}}).ok());
  ASSERT_TRUE(tablet->Put("order_lines", "ol_acc_a1", {{"quantity", 30}}).ok());
  ASSERT_TRUE(tablet->Put("order_lines", "ol_draft", {{"order_id", "o_acc_a1"}}).ok());  // into the submitted order
  ASSERT_TRUE(tablet->Put("orders", "o_replace", {{"account_id", "acc_a1"}, {"replaces_order_id", "o_acc_a2"}}).ok());
  ASSERT_TRUE(tablet->Put("orders", "o_acc_a1", {{"status", "voided"}}).ok());  // onward is allowed
  ASSERT_TRUE(tablet->Sync(Options("rep_a")).ok());
  refused = Refused(*tablet);
  EXPECT_EQ(refused["order_lines/ol_acc_a1.quantity"], "frozen");
  EXPECT_NE(refused["order_lines/ol_acc_a1.order_id"], "");
  EXPECT_EQ(refused.count("orders/o_acc_a1.status"), 0u);
  EXPECT_EQ(Row(*tablet, "order_lines", "ol_acc_a1")["quantity"], 3);
  EXPECT_EQ(Row(*tablet, "order_lines", "ol_acc_a1")["order_id"], "o_acc_a1");
  EXPECT_EQ(refused["order_lines/ol_draft.order_id"], "frozen");
  EXPECT_EQ(Row(*tablet, "order_lines", "ol_draft")["order_id"], "o_a1_draft");
  EXPECT_EQ(refused["orders/o_replace.replaces_order_id"], "invalid_argument");  // another account's order
  EXPECT_EQ(Row(*tablet, "orders", "o_acc_a1")["status"], "voided");
  // A voided order awaits no decision.
  Decide(*north, "ap_void", "sup_n", "orders", "o_acc_a1", "approved");
  ASSERT_TRUE(north->Sync(Options("sup_n")).ok());
  EXPECT_EQ(Refused(*north)["approvals/ap_void.decision"], "invalid_argument");
  ASSERT_TRUE(north->Sync(Options("sup_n")).ok());
  ASSERT_TRUE(south->Sync(Options("sup_s")).ok());
  ExpectHoldsItsScope(*tablet, "rep_a");
  ExpectHoldsItsScope(*north, "sup_n");
  ExpectHoldsItsScope(*south, "sup_s");
}

}  // namespace
}  // namespace fieldsync
