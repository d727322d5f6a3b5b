// Focused merge cases, one policy at a time, plus ValidateChange.
// The laws (order independence, idempotence) over random histories are in
// merge_laws_test.cc.
#include "sync/merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace fieldsync {
namespace {

constexpr uint64_t kT0 = 1'700'000'000'000ULL;

constexpr const char* kSchema = R"({"name": "merge_test", "version": 1, "tables": [
  {"name": "visits", "columns": [
    {"name": "notes", "type": "text", "merge": "lww"},
    {"name": "summary", "type": "text", "merge": "mv"},
    {"name": "units", "type": "integer", "merge": "counter"},
    {"name": "amount", "type": "real", "merge": "counter"},
    {"name": "tags", "type": "set", "merge": "orset"},
    {"name": "stage", "type": "enum", "merge": "state",
     "values": ["planned", "visited", "ordered", "closed"]},
    {"name": "qty", "type": "integer"},
    {"name": "reading", "type": "real", "merge": "mv"}]}]})";

class MergeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = Schema::ParseText(kSchema, &schema_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    table_ = schema_.Find("visits");
    ASSERT_NE(table_, nullptr);
  }

  const ColumnDef& Col(const std::string& name) {
    const ColumnDef* c = table_->Find(name);
    EXPECT_NE(c, nullptr) << name;
    return *c;
  }

  Change Make(const std::string& column, Op op, json value, Stamp stamp) {
    Change c;
    c.table = "visits";
    c.row = "row-1";
    c.column = column;
    c.op = op;
    c.value = std::move(value);
    c.stamp = stamp;
    return c;
  }
  Change Set(const std::string& column, json value, Stamp stamp, Hlc base = 0) {
    Change c = Make(column, Op::kSet, std::move(value), stamp);
    c.base = base;
    return c;
  }

  // Folds `changes` into an empty field, collecting every conflict.
  FieldState Fold(const std::string& column, const std::vector<Change>& changes,
                  std::vector<ConflictRecord>* conflicts = nullptr, FieldState start = {}) {
    FieldState s = std::move(start);
    for (const auto& c : changes) {
      MergeResult r = MergeField(Col(column), s, c);
      if (conflicts) conflicts->insert(conflicts->end(), r.conflicts.begin(), r.conflicts.end());
      s = r.state;
    }
    return s;
  }

  static void ExpectSameState(const FieldState& a, const FieldState& b) {
    EXPECT_EQ(a.present, b.present);
    EXPECT_EQ(a.value.dump(), b.value.dump());
    EXPECT_EQ(a.crdt.dump(), b.crdt.dump());
    EXPECT_EQ(a.stamp, b.stamp);
    EXPECT_EQ(a.base, b.base);
  }

  Schema schema_;
  const TableDef* table_ = nullptr;
};

// ---- lww -------------------------------------------------------------------

TEST_F(MergeTest, LwwNewerStampWinsInEitherOrder) {
  Change a = Set("notes", "old", {MakeHlc(kT0, 0), 9});
  Change b = Set("notes", "new", {MakeHlc(kT0 + 1, 0), 1});
  FieldState ab = Fold("notes", {a, b});
  FieldState ba = Fold("notes", {b, a});
  EXPECT_TRUE(ab.present);
  EXPECT_EQ(ab.value, "new");
  EXPECT_EQ(ab.stamp, b.stamp);
  ExpectSameState(ab, ba);
}

TEST_F(MergeTest, LwwTieOnHlcBrokenByNode) {
  Hlc h = MakeHlc(kT0, 5);
  Change low = Set("notes", "from node 1", {h, 1});
  Change high = Set("notes", "from node 2", {h, 2});
  EXPECT_EQ(Fold("notes", {low, high}).value, "from node 2");
  EXPECT_EQ(Fold("notes", {high, low}).value, "from node 2");
  ExpectSameState(Fold("notes", {low, high}), Fold("notes", {high, low}));
}

TEST_F(MergeTest, LwwConcurrentLoserIsReportedInEitherOrder) {
  Change a = Set("notes", "mine", {MakeHlc(kT0, 0), 1});
  Change b = Set("notes", "theirs", {MakeHlc(kT0 + 10, 0), 2});  // had not seen a: base 0
  for (bool a_first : {true, false}) {
    SCOPED_TRACE(a_first ? "a then b" : "b then a");
    std::vector<ConflictRecord> conflicts;
    FieldState s = Fold("notes", a_first ? std::vector<Change>{a, b} : std::vector<Change>{b, a}, &conflicts);
    EXPECT_EQ(s.value, "theirs");
    ASSERT_EQ(conflicts.size(), 1u);
    const ConflictRecord& r = conflicts[0];
    EXPECT_EQ(r.kind, "lww");
    EXPECT_EQ(r.table, "visits");
    EXPECT_EQ(r.row, "row-1");
    EXPECT_EQ(r.column, "notes");
    EXPECT_EQ(r.loser_value, "mine");
    EXPECT_EQ(r.loser, a.stamp);
    EXPECT_EQ(r.winner_value, "theirs");
    EXPECT_EQ(r.winner, b.stamp);
  }
}

TEST_F(MergeTest, LwwLosingArrivalLeavesStateUnchanged) {
  Change a = Set("notes", "mine", {MakeHlc(kT0, 0), 1});
  Change b = Set("notes", "theirs", {MakeHlc(kT0 + 10, 0), 2});
  FieldState s = Fold("notes", {b});
  MergeResult r = MergeField(Col("notes"), s, a);
  EXPECT_FALSE(r.changed);
  ExpectSameState(r.state, s);
  EXPECT_EQ(r.conflicts.size(), 1u);
}

TEST_F(MergeTest, LwwSequentialOverwriteIsNoConflict) {
  Change a = Set("notes", "draft", {MakeHlc(kT0, 0), 1});
  Change b = Set("notes", "final", {MakeHlc(kT0 + 10, 0), 2}, /*base=*/a.stamp.hlc);  // b saw a
  for (bool a_first : {true, false}) {
    std::vector<ConflictRecord> conflicts;
    FieldState s = Fold("notes", a_first ? std::vector<Change>{a, b} : std::vector<Change>{b, a}, &conflicts);
    EXPECT_EQ(s.value, "final");
    EXPECT_EQ(s.base, a.stamp.hlc);
    EXPECT_TRUE(conflicts.empty()) << (a_first ? "a then b" : "b then a");
  }
}

TEST_F(MergeTest, LwwConcurrentEqualValuesAreNoConflict) {
  Change a = Set("notes", "same", {MakeHlc(kT0, 0), 1});
  Change b = Set("notes", "same", {MakeHlc(kT0 + 1, 0), 2});
  std::vector<ConflictRecord> conflicts;
  Fold("notes", {a, b}, &conflicts);
  Fold("notes", {b, a}, &conflicts);
  EXPECT_TRUE(conflicts.empty());
}

TEST_F(MergeTest, LwwDuplicateIsNoOp) {
  Change a = Set("notes", "once", {MakeHlc(kT0, 0), 1});
  FieldState s = Fold("notes", {a});
  MergeResult r = MergeField(Col("notes"), s, a);
  EXPECT_FALSE(r.changed);
  EXPECT_TRUE(r.conflicts.empty());
  ExpectSameState(r.state, s);
}

TEST_F(MergeTest, LwwLocalPutCarriesBaseAndSkipsSameValue) {
  uint64_t phys = kT0 + 100;
  HybridClock clock(3, [&] { return phys; });
  FieldState s = Fold("notes", {Set("notes", "before", {MakeHlc(kT0, 0), 1})});
  std::vector<Change> out;
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("notes"), s, "row-1", "before", &clock, &out).ok());
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("notes"), s, "row-1", "after", &clock, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].op, Op::kSet);
  EXPECT_EQ(out[0].base, s.stamp.hlc);
  EXPECT_EQ(out[0].stamp.node, 3u);
  EXPECT_TRUE(ValidateChange(schema_, out[0]).ok());
  std::vector<ConflictRecord> conflicts;
  EXPECT_EQ(Fold("notes", out, &conflicts, s).value, "after");
  EXPECT_TRUE(conflicts.empty());
  EXPECT_EQ(MakeLocalChanges(*table_, Col("notes"), s, "row-1", 5, &clock, &out).code(),
            Code::kSchemaViolation);
}

// ---- mv --------------------------------------------------------------------

TEST_F(MergeTest, MvConcurrentWritesAreBothKept) {
  Change a = Set("summary", "text from tablet", {MakeHlc(kT0, 0), 1});
  Change b = Set("summary", "text from phone", {MakeHlc(kT0 + 5, 0), 2});
  FieldState ab = Fold("summary", {a, b});
  FieldState ba = Fold("summary", {b, a});
  ExpectSameState(ab, ba);
  EXPECT_TRUE(IsConflicted(Col("summary"), ab));
  EXPECT_EQ(MvValues(ab), (std::vector<json>{"text from tablet", "text from phone"}));  // by stamp
  EXPECT_EQ(ab.value, "text from phone");  // the column shows the newest
  EXPECT_EQ(ab.stamp, b.stamp);
}

TEST_F(MergeTest, MvWriteThatSawBothResolves) {
  Change a = Set("summary", "one", {MakeHlc(kT0, 0), 1});
  Change b = Set("summary", "two", {MakeHlc(kT0 + 5, 0), 2});
  FieldState both = Fold("summary", {a, b});
  uint64_t phys = kT0 + 50;
  HybridClock clock(3, [&] { return phys; });
  std::vector<Change> out;
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("summary"), both, "row-1", "one and two", &clock, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(Covers(out[0].ctx, 1, a.stamp.hlc));
  EXPECT_TRUE(Covers(out[0].ctx, 2, b.stamp.hlc));
  const Change& c = out[0];
  FieldState resolved = Fold("summary", {c}, nullptr, both);
  EXPECT_FALSE(IsConflicted(Col("summary"), resolved));
  EXPECT_EQ(MvValues(resolved), (std::vector<json>{"one and two"}));
  EXPECT_EQ(resolved.value, "one and two");
  // A replica that gets the resolution before one of the writes it resolved
  // ends the same: the late write is recognised as already seen.
  FieldState late = Fold("summary", {a, c, b});
  ExpectSameState(late, resolved);
  ExpectSameState(Fold("summary", {c, b, a}), resolved);
}

TEST_F(MergeTest, MvWriteThatSawOneReplacesOnlyThatOne) {
  Change a = Set("summary", "a", {MakeHlc(kT0, 0), 1});
  Change b = Set("summary", "b", {MakeHlc(kT0 + 5, 0), 2});
  Change c = Set("summary", "c", {MakeHlc(kT0 + 6, 0), 3});
  c.ctx = {{1, a.stamp.hlc}};  // c's writer had seen a, not b
  FieldState s = Fold("summary", {a, b, c});
  EXPECT_EQ(MvValues(s), (std::vector<json>{"b", "c"}));
  EXPECT_TRUE(IsConflicted(Col("summary"), s));
  ExpectSameState(s, Fold("summary", {c, b, a}));
  ExpectSameState(s, Fold("summary", {b, c, a}));
}

TEST_F(MergeTest, MvDuplicateIsNoOp) {
  Change a = Set("summary", "a", {MakeHlc(kT0, 0), 1});
  Change b = Set("summary", "b", {MakeHlc(kT0 + 5, 0), 2});
  FieldState s = Fold("summary", {a, b});
  for (const Change& c : {a, b}) {
    MergeResult r = MergeField(Col("summary"), s, c);
    EXPECT_FALSE(r.changed);
    ExpectSameState(r.state, s);
  }
}

TEST_F(MergeTest, MvLocalPutOfShownValueResolvesOnlyWhenConflicted) {
  uint64_t phys = kT0 + 50;
  HybridClock clock(3, [&] { return phys; });
  FieldState single = Fold("summary", {Set("summary", "x", {MakeHlc(kT0, 0), 1})});
  std::vector<Change> out;
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("summary"), single, "row-1", "x", &clock, &out).ok());
  EXPECT_TRUE(out.empty());
  FieldState two = Fold("summary", {Set("summary", "y", {MakeHlc(kT0 + 1, 0), 2})}, nullptr, single);
  ASSERT_TRUE(IsConflicted(Col("summary"), two));
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("summary"), two, "row-1", two.value, &clock, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(IsConflicted(Col("summary"), Fold("summary", out, nullptr, two)));
}

// A write that had seen nothing is the field's own stamp and value: the
// state keeps nothing more (half of a stored store check line was that write
// spelled out), and every rule still sees the write.
TEST_F(MergeTest, MvFirstWriteKeepsNoStateAndStillCounts) {
  Change a = Set("summary", "first note", {MakeHlc(kT0, 0), 1});
  FieldState s = Fold("summary", {a});
  EXPECT_TRUE(s.crdt.is_null());
  EXPECT_EQ(s.value, "first note");
  EXPECT_EQ(s.stamp, a.stamp);
  EXPECT_EQ(MvValues(s), (std::vector<json>{"first note"}));
  ASSERT_EQ(MvEntriesOf(s).size(), 1u);
  EXPECT_EQ(MvEntriesOf(s)[0].first, a.stamp);
  EXPECT_FALSE(MergeField(Col("summary"), s, a).changed);  // a duplicate
  // A write that had not seen it conflicts with it, as with any other state.
  Change b = Set("summary", "second note", {MakeHlc(kT0 + 5, 0), 2});
  FieldState both = Fold("summary", {b}, nullptr, s);
  EXPECT_TRUE(IsConflicted(Col("summary"), both));
  EXPECT_EQ(MvValues(both), (std::vector<json>{"first note", "second note"}));
  // A local edit sees it: its context covers the first write, and the
  // result is one write with a context, which keeps its state.
  uint64_t phys = kT0 + 50;
  HybridClock clock(3, [&] { return phys; });
  std::vector<Change> out;
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("summary"), s, "row-1", "edited", &clock, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(Covers(out[0].ctx, 1, a.stamp.hlc));
  FieldState edited = Fold("summary", out, nullptr, s);
  EXPECT_FALSE(IsConflicted(Col("summary"), edited));
  ASSERT_TRUE(edited.crdt.is_array());
  EXPECT_EQ(edited.crdt.size(), 1u);
  EXPECT_EQ(edited.value, "edited");
  // The edit's context survives it: the first write arriving late is seen.
  EXPECT_FALSE(MergeField(Col("summary"), edited, a).changed);
  // A delete's context covers the write.
  VersionVector seen;
  AddFieldContext(Col("summary"), s, &seen);
  EXPECT_TRUE(Covers(seen, 1, a.stamp.hlc));
}

// Files and pages from before 2026-12-07 spell the single write out; every
// change merges into that form exactly as into no state.
TEST_F(MergeTest, MvSpelledOutSingleWriteMergesAsNoState) {
  Change a = Set("summary", "note", {MakeHlc(kT0, 0), 1});
  FieldState compact = Fold("summary", {a});
  FieldState spelled = compact;
  spelled.crdt = SpelledOutSingleWrite(compact);
  EXPECT_TRUE(IsSpelledOutSingleWrite(spelled));
  EXPECT_FALSE(IsSpelledOutSingleWrite(compact));
  FieldState other_number = spelled;  // 5 is not 5.0: not the field's own write
  other_number.value = 5;
  other_number.crdt = SpelledOutSingleWrite(other_number);
  other_number.crdt[0]["v"] = 5.0;
  EXPECT_FALSE(IsSpelledOutSingleWrite(other_number));
  Change seen_it = Set("summary", "after", {MakeHlc(kT0 + 9, 0), 2});
  seen_it.ctx = {{1, a.stamp.hlc}};
  std::vector<Change> changes = {a, Set("summary", "concurrent", {MakeHlc(kT0 + 3, 0), 2}), seen_it,
                                 Set("summary", "older", {MakeHlc(kT0 - 3, 0), 3})};
  for (const Change& c : changes) {
    MergeResult x = MergeField(Col("summary"), compact, c), y = MergeField(Col("summary"), spelled, c);
    EXPECT_EQ(x.changed, y.changed) << c.value;
    if (x.changed) ExpectSameState(x.state, y.state);
    EXPECT_EQ(MvValues(x.state), MvValues(y.state)) << c.value;
  }
}

// A real column takes integers and reads them back as doubles. An entry
// keeps what the column will show, so a replica that stored the first write
// (its entry implied by the column's 5.0) and one that kept it from the
// change converge to the same text.
TEST_F(MergeTest, MvRealColumnEntriesHoldWhatTheColumnReadsBack) {
  Change a = Set("reading", 5, {MakeHlc(kT0, 0), 1});
  Change b = Set("reading", 7, {MakeHlc(kT0 + 5, 0), 2});
  FieldState stored = Fold("reading", {a});
  EXPECT_TRUE(stored.value.is_number_float());
  stored.value = 5.0;  // as the column reads it back
  FieldState ab = Fold("reading", {b}, nullptr, stored);
  FieldState ba = Fold("reading", {b, a});
  ExpectSameState(ab, ba);
  EXPECT_EQ(ab.crdt.dump(), ba.crdt.dump());
  EXPECT_TRUE(ab.value.is_number_float());
}

// ---- counter -----------------------------------------------------------------

class MergeCounterTest : public MergeTest {
 protected:
  uint64_t phys_ = kT0;
  HybridClock n1_{1, [this] { return phys_; }};
  HybridClock n2_{2, [this] { return phys_; }};
  // Makes an increment on `node` against its own state and merges it there.
  Change Inc(const std::string& column, FieldState* local, double delta, HybridClock* node) {
    Change c = MakeIncrement(*table_, Col(column), *local, "row-1", delta, node);
    *local = MergeField(Col(column), *local, c).state;
    return c;
  }
};

TEST_F(MergeCounterTest, IncrementsFromTwoNodesAddUp) {
  FieldState l1, l2;
  Change a = Inc("units", &l1, 3, &n1_);
  Change b = Inc("units", &l1, 2, &n1_);
  Change c = Inc("units", &l2, 4, &n2_);
  EXPECT_EQ(a.value, json::array({3, 0}));
  EXPECT_EQ(b.value, json::array({5, 0}));  // cumulative
  for (const auto& order : std::vector<std::vector<Change>>{{a, b, c}, {c, b, a}, {b, c, a}, {a, c, b}}) {
    FieldState s = Fold("units", order);
    EXPECT_EQ(s.value, 9);
    EXPECT_EQ(s.crdt.dump(), Fold("units", {a, b, c}).crdt.dump());
  }
}

TEST_F(MergeCounterTest, DuplicateAndOlderTotalsAreIgnored) {
  FieldState l1;
  Change a = Inc("units", &l1, 3, &n1_);
  Change b = Inc("units", &l1, 2, &n1_);
  FieldState s = Fold("units", {b});
  EXPECT_EQ(s.value, 5);
  for (const Change& again : {b, a}) {  // a duplicate, then an older total
    MergeResult r = MergeField(Col("units"), s, again);
    EXPECT_FALSE(r.changed);
    EXPECT_EQ(r.state.value, 5);
    ExpectSameState(r.state, s);
  }
}

TEST_F(MergeCounterTest, NegativeDeltas) {
  FieldState l1, l2;
  Inc("units", &l1, 5, &n1_);
  Change down = Inc("units", &l1, -2, &n1_);
  EXPECT_EQ(down.value, json::array({5, 2}));
  Change other = Inc("units", &l2, -4, &n2_);
  EXPECT_EQ(other.value, json::array({0, 4}));
  EXPECT_EQ(l1.value, 3);
  EXPECT_EQ(Fold("units", {other, down}).value, -1);
  for (const Change& c : {down, other}) EXPECT_TRUE(ValidateChange(schema_, c).ok());
}

TEST_F(MergeCounterTest, RealCounter) {
  FieldState l1, l2;
  Change a = Inc("amount", &l1, 1.5, &n1_);
  Change b = Inc("amount", &l2, -0.25, &n2_);
  EXPECT_DOUBLE_EQ(Fold("amount", {a, b}).value.get<double>(), 1.25);
  EXPECT_DOUBLE_EQ(Fold("amount", {b, a}).value.get<double>(), 1.25);
}

TEST_F(MergeCounterTest, LocalPutBecomesAnIncrement) {
  FieldState l1;
  Inc("units", &l1, 3, &n1_);
  std::vector<Change> out;
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("units"), l1, "row-1", 10, &n1_, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].op, Op::kIncrement);
  EXPECT_EQ(out[0].value, json::array({10, 0}));
  out.clear();
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("units"), l1, "row-1", 3, &n1_, &out).ok());
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("units"), l1, "row-1", 1, &n1_, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].value, json::array({3, 2}));
  EXPECT_EQ(Fold("units", out, nullptr, l1).value, 1);
}

// ---- orset -------------------------------------------------------------------

class MergeOrSetTest : public MergeTest {
 protected:
  uint64_t phys_ = kT0;
  HybridClock n1_{1, [this] { return phys_; }};
  HybridClock n2_{2, [this] { return phys_; }};
  Change Member(FieldState* local, const std::string& m, bool add, HybridClock* node) {
    Change c = MakeSetMember(*table_, Col("tags"), *local, "row-1", m, add, node);
    *local = MergeField(Col("tags"), *local, c).state;
    return c;
  }
};

TEST_F(MergeOrSetTest, ConcurrentRemoveThatDidNotSeeTheAddLosesToIt) {
  FieldState l1, l2;
  Change add0 = Member(&l1, "hot", true, &n1_);
  l2 = Fold("tags", {add0}, nullptr, l2);  // both have seen add0
  Change rem = Member(&l2, "hot", false, &n2_);
  EXPECT_TRUE(Covers(rem.ctx, 1, add0.stamp.hlc));
  Change add1 = Member(&l1, "hot", true, &n1_);  // concurrent with rem
  for (const auto& order : std::vector<std::vector<Change>>{
           {add0, rem, add1}, {add0, add1, rem}, {add1, rem, add0}, {rem, add1, add0}}) {
    FieldState s = Fold("tags", order);
    EXPECT_EQ(s.value, json::array({"hot"}));
  }
}

TEST_F(MergeOrSetTest, RemoveWithoutAnyObservedAddRemovesNothing) {
  FieldState l1, l2;
  Change add = Member(&l1, "hot", true, &n1_);
  Change rem = MakeSetMember(*table_, Col("tags"), l2, "row-1", "hot", false, &n2_);
  EXPECT_TRUE(rem.ctx.empty());
  EXPECT_EQ(Fold("tags", {add, rem}).value, json::array({"hot"}));
  EXPECT_EQ(Fold("tags", {rem, add}).value, json::array({"hot"}));
}

TEST_F(MergeOrSetTest, RemoveThatSawTheAddRemovesIt) {
  FieldState l1;
  Change add = Member(&l1, "hot", true, &n1_);
  Change other = Member(&l1, "cold", true, &n1_);
  Change rem = Member(&l1, "hot", false, &n1_);
  EXPECT_EQ(l1.value, json::array({"cold"}));
  EXPECT_EQ(Fold("tags", {add, other, rem}).value, json::array({"cold"}));
  EXPECT_EQ(Fold("tags", {rem, add, other}).value, json::array({"cold"}));
  EXPECT_EQ(Fold("tags", {other, rem, add}).value, json::array({"cold"}));
}

TEST_F(MergeOrSetTest, ReAddAfterRemove) {
  FieldState l1, l2;
  Change add = Member(&l1, "hot", true, &n1_);
  Change rem = Member(&l1, "hot", false, &n1_);
  l2 = Fold("tags", {add, rem});
  EXPECT_EQ(l2.value, json::array());
  Change again = Member(&l2, "hot", true, &n2_);
  EXPECT_EQ(l2.value, json::array({"hot"}));
  EXPECT_EQ(Fold("tags", {again, rem, add}).value, json::array({"hot"}));
  EXPECT_EQ(Fold("tags", {rem, again, add}).value, json::array({"hot"}));
}

TEST_F(MergeOrSetTest, DuplicateIsNoOpAndValueIsSorted) {
  FieldState l1;
  Change z = Member(&l1, "zeta", true, &n1_);
  Change a = Member(&l1, "alpha", true, &n1_);
  EXPECT_EQ(l1.value, json::array({"alpha", "zeta"}));
  for (const Change& c : {z, a}) {
    MergeResult r = MergeField(Col("tags"), l1, c);
    EXPECT_FALSE(r.changed);
    ExpectSameState(r.state, l1);
  }
}

TEST_F(MergeOrSetTest, LocalPutBecomesAddsAndRemoves) {
  FieldState l1;
  Member(&l1, "a", true, &n1_);
  Member(&l1, "b", true, &n1_);
  std::vector<Change> out;
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("tags"), l1, "row-1", json::array({"b", "c"}), &n1_, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  auto find = [&](Op op, const char* m) {
    return std::count_if(out.begin(), out.end(), [&](const Change& c) { return c.op == op && c.value == m; });
  };
  EXPECT_EQ(find(Op::kAdd, "c"), 1);
  EXPECT_EQ(find(Op::kRemove, "a"), 1);
  EXPECT_EQ(Fold("tags", out, nullptr, l1).value, json::array({"b", "c"}));
}

// ---- state -------------------------------------------------------------------

TEST_F(MergeTest, StateHigherRankWinsWhateverTheOrder) {
  Change visited = Set("stage", "visited", {MakeHlc(kT0 + 100, 0), 1});  // newer, lower rank
  Change ordered = Set("stage", "ordered", {MakeHlc(kT0, 0), 2});
  for (bool first : {true, false}) {
    std::vector<ConflictRecord> conflicts;
    FieldState s = Fold("stage", first ? std::vector<Change>{visited, ordered}
                                       : std::vector<Change>{ordered, visited}, &conflicts);
    EXPECT_EQ(s.value, "ordered");
    EXPECT_EQ(s.stamp, ordered.stamp);
    ASSERT_EQ(conflicts.size(), 1u);
    EXPECT_EQ(conflicts[0].kind, "state");
    EXPECT_EQ(conflicts[0].loser_value, "visited");
    EXPECT_EQ(conflicts[0].winner_value, "ordered");
  }
}

TEST_F(MergeTest, StateSameRankFallsBackToStamp) {
  Change a = Set("stage", "visited", {MakeHlc(kT0, 0), 1});
  Change b = Set("stage", "visited", {MakeHlc(kT0, 0), 2});
  EXPECT_EQ(Fold("stage", {a, b}).stamp, b.stamp);
  EXPECT_EQ(Fold("stage", {b, a}).stamp, b.stamp);
}

TEST_F(MergeTest, StateLocalPutMovesForwardOnly) {
  uint64_t phys = kT0 + 100;
  HybridClock clock(3, [&] { return phys; });
  FieldState s = Fold("stage", {Set("stage", "ordered", {MakeHlc(kT0, 0), 1})});
  std::vector<Change> out;
  for (json back : {json("planned"), json("visited"), json(nullptr)}) {
    Status st = MakeLocalChanges(*table_, Col("stage"), s, "row-1", back, &clock, &out);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << back.dump();
  }
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("stage"), s, "row-1", "ordered", &clock, &out).ok());
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(MakeLocalChanges(*table_, Col("stage"), s, "row-1", "closed", &clock, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].base, s.stamp.hlc);
  EXPECT_EQ(Fold("stage", out, nullptr, s).value, "closed");
}

TEST_F(MergeTest, OpThatDoesNotFitThePolicyLeavesStateUnchanged) {
  FieldState s = Fold("notes", {Set("notes", "x", {MakeHlc(kT0, 0), 1})});
  MergeResult r = MergeField(Col("notes"), s, Make("notes", Op::kAdd, "y", {MakeHlc(kT0 + 1, 0), 1}));
  EXPECT_FALSE(r.changed);
  ExpectSameState(r.state, s);
  FieldState t;
  r = MergeField(Col("tags"), t, Set("tags", json::array({"a"}), {MakeHlc(kT0, 0), 1}));
  EXPECT_FALSE(r.changed);
  EXPECT_FALSE(r.state.present);
}

// ---- ValidateChange ----------------------------------------------------------

TEST_F(MergeTest, ValidateAcceptsWellFormedChanges) {
  Stamp st{MakeHlc(kT0, 0), 1};
  Change rem = Make("tags", Op::kRemove, "hot", st);
  rem.ctx = {{1, MakeHlc(kT0 - 1, 0)}};
  Change del;
  del.table = "visits";
  del.row = "row-1";
  del.op = Op::kDelete;
  del.stamp = st;
  for (const Change& c : {Set("notes", "hi", st), Set("notes", nullptr, st), Set("summary", "x", st),
                          Set("stage", "closed", st), Set("qty", -3, st),
                          Make("units", Op::kIncrement, json::array({4, 1}), st),
                          Make("amount", Op::kIncrement, json::array({0.5, 0}), st),
                          Make("tags", Op::kAdd, "hot", st), rem, del}) {
    Status s = ValidateChange(schema_, c);
    EXPECT_TRUE(s.ok()) << OpName(c.op) << " " << c.column << ": " << s.ToString();
  }
}

TEST_F(MergeTest, ValidateRefusals) {
  Stamp st{MakeHlc(kT0, 0), 1};
  auto expect = [&](Change c, Code code, const char* label) {
    EXPECT_EQ(ValidateChange(schema_, c).code(), code) << label;
  };
  Change unknown_table = Set("notes", "x", st);
  unknown_table.table = "orders";
  expect(unknown_table, Code::kNotFound, "unknown table");
  expect(Set("nope", "x", st), Code::kNotFound, "unknown column");
  expect(Set("units", 5, st), Code::kSchemaViolation, "set on counter");
  expect(Set("tags", json::array({"a"}), st), Code::kSchemaViolation, "set on orset");
  expect(Make("notes", Op::kIncrement, json::array({1, 0}), st), Code::kSchemaViolation, "inc on lww");
  expect(Make("units", Op::kIncrement, 5, st), Code::kSchemaViolation, "inc value not a pair");
  expect(Make("units", Op::kIncrement, json::array({1}), st), Code::kSchemaViolation, "inc of one total");
  expect(Make("units", Op::kIncrement, json::array({1.5, 0}), st), Code::kSchemaViolation,
         "fractional total on integer counter");
  expect(Make("units", Op::kIncrement, json::array({-1, 0}), st), Code::kSchemaViolation, "negative total");
  expect(Make("units", Op::kIncrement, json::array({"1", 0}), st), Code::kSchemaViolation, "string total");
  expect(Make("notes", Op::kAdd, "x", st), Code::kSchemaViolation, "add on non-set");
  expect(Make("summary", Op::kRemove, "x", st), Code::kSchemaViolation, "rem on non-set");
  expect(Make("tags", Op::kAdd, 5, st), Code::kSchemaViolation, "non-string member");
  expect(Make("tags", Op::kAdd, "", st), Code::kSchemaViolation, "empty member");
  expect(Set("notes", 5, st), Code::kSchemaViolation, "number into text");
  expect(Set("qty", "5", st), Code::kSchemaViolation, "text into integer");
  expect(Set("stage", "lost", st), Code::kSchemaViolation, "not a state");
  Change bad_row = Set("notes", "x", st);
  bad_row.row = "row 1";
  expect(bad_row, Code::kInvalidArgument, "row id with a space");
  bad_row.row = "";
  expect(bad_row, Code::kInvalidArgument, "empty row id");
  expect(Set("notes", "x", {0, 1}), Code::kInvalidArgument, "zero hlc");
  expect(Set("notes", "x", {MakeHlc(kT0, 0), 0}), Code::kInvalidArgument, "zero node");
  Change del_with_column = Make("notes", Op::kDelete, nullptr, st);
  expect(del_with_column, Code::kInvalidArgument, "delete naming a column");
}

}  // namespace
}  // namespace fieldsync

namespace fieldsync {
namespace {

// Regressions found by tests/fuzz (corpus: fuzz_merge/crash-counter-zero-inc,
// and a counter sum overflow found with fuzz_change).
TEST_F(MergeTest, CounterZeroIncrementFromANewNodeIsOrderIndependent) {
  Change zero = Make("units", Op::kIncrement, json::array({0, 0}), {MakeHlc(kT0, 5), 7});
  Change five = Make("units", Op::kIncrement, json::array({0, 5}), {MakeHlc(kT0, 5), 42});
  FieldState a = MergeField(Col("units"), MergeField(Col("units"), {}, zero).state, five).state;
  FieldState b = MergeField(Col("units"), MergeField(Col("units"), {}, five).state, zero).state;
  EXPECT_EQ(a.crdt.dump(), b.crdt.dump());
  EXPECT_EQ(a.value, -5);
  EXPECT_EQ(a.stamp, b.stamp);
}

TEST_F(MergeTest, CounterTotalsBeyondTwoToThe53AreRefused) {
  Stamp st{MakeHlc(kT0, 0), 1};
  EXPECT_EQ(ValidateChange(schema_, Make("units", Op::kIncrement, json::array({0, 9223372036854775807LL}), st)).code(),
            Code::kSchemaViolation);
  EXPECT_EQ(ValidateChange(schema_, Make("units", Op::kIncrement, json::array({0, 9007199254740992LL}), st)).code(),
            Code::kOk);
}

TEST_F(MergeTest, NonFiniteRealsAreRefused) {
  Stamp st{MakeHlc(kT0, 0), 1};
  EXPECT_EQ(ValidateChange(schema_, Make("amount", Op::kIncrement, json::array({std::nan(""), 0}), st)).code(),
            Code::kSchemaViolation);
}

}  // namespace
}  // namespace fieldsync
