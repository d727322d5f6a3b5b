// Merge laws over random histories.
//
// Each history is made by three simulated replicas, one field per policy.
// Every replica has its own HybridClock over a fake physical time that
// wanders (and sometimes steps back), keeps its own FieldState, and makes
// edits through MakeLocalChanges / MakeIncrement / MakeSetMember against that
// state. Between edits a replica sometimes syncs from another one (merges all
// the changes that replica has, observing their clocks), so histories hold
// both causal and concurrent writes. We remember, for every change, which
// changes its author had seen: that is the oracle for mv and orset.
//
// The laws: folding MergeField over all changes gives the same FieldState
// (value, crdt, stamp, base) in every order, with duplicates anywhere, and
// starting from any prefix; and the result is what the policy promises.
// Seeds are fixed; a failure names its seed.
#include "sync/merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace fieldsync {
namespace {

constexpr uint64_t kT0 = 1'700'000'000'000ULL;
constexpr int kIterations = 200;
constexpr int kPermutations = 6;
constexpr size_t kMaxChanges = 512;
constexpr uint64_t kBaseSeed = 0x5EED'0000ULL;
constexpr const char* kRow = "row-1";

constexpr const char* kSchema = R"({"name": "laws", "version": 1, "tables": [
  {"name": "t", "columns": [
    {"name": "note", "type": "text", "merge": "lww"},
    {"name": "memo", "type": "text", "merge": "mv"},
    {"name": "qty", "type": "integer", "merge": "counter"},
    {"name": "tags", "type": "set", "merge": "orset"},
    {"name": "stage", "type": "enum", "merge": "state", "values": ["s0", "s1", "s2", "s3", "s4"]}]}]})";

struct History {
  std::vector<Change> changes;
  // seen[i][j]: change j had reached the author of change i before i was made.
  std::vector<std::vector<char>> seen;
  std::vector<int64_t> deltas;  // counter: the delta each change made
};

struct SimNode {
  explicit SimNode(NodeId id) : clock(id, [this] { return phys; }) {}
  uint64_t phys = kT0;
  HybridClock clock;
  FieldState state;
  std::vector<char> known = std::vector<char>(kMaxChanges, 0);
};

::testing::AssertionResult Same(const FieldState& a, const FieldState& b, bool with_stamp) {
  if (a.present == b.present && a.value.dump() == b.value.dump() && a.crdt.dump() == b.crdt.dump() &&
      a.base == b.base && (!with_stamp || a.stamp == b.stamp))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\n  present " << a.present << " vs " << b.present << "\n  value " << a.value.dump() << "\n     vs "
         << b.value.dump() << "\n  crdt  " << a.crdt.dump() << "\n     vs " << b.crdt.dump() << "\n  stamp "
         << ToHex(a.stamp.node) << ":" << ToHex(a.stamp.hlc) << " vs " << ToHex(b.stamp.node) << ":"
         << ToHex(b.stamp.hlc) << "\n  base " << a.base << " vs " << b.base;
}

class LawsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = Schema::ParseText(kSchema, &schema_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    table_ = schema_.Find("t");
    ASSERT_NE(table_, nullptr);
  }

  const ColumnDef& Col(const std::string& name) const { return *table_->Find(name); }

  // The stamp of an orset field depends on arrival order (see
  // OrSetStampIsOrderIndependent below), so the laws compare it everywhere else.
  static bool StampIsLawful(const ColumnDef& col) { return col.merge != MergePolicy::kOrSet; }

  // Simulates `nodes` replicas editing one field of one row.
  void Generate(const ColumnDef& col, int nodes_count, std::mt19937_64& rng, History* h) {
    auto rnd = [&](uint64_t n) { return rng() % n; };
    std::vector<std::unique_ptr<SimNode>> nodes;
    const NodeId kIds[] = {0x2a, 0x07, 0x1d};  // not in index order, on purpose
    for (int i = 0; i < nodes_count; ++i) nodes.push_back(std::make_unique<SimNode>(kIds[i]));
    uint64_t wall = kT0;
    const int steps = 4 + static_cast<int>(rnd(21));
    for (int step = 0; step < steps && h->changes.size() + 8 < kMaxChanges; ++step) {
      SimNode& n = *nodes[rnd(nodes.size())];
      // Clocks mostly agree to the millisecond (so hlc ties between nodes
      // happen), sometimes run ahead, and sometimes step back.
      wall += rnd(3);
      n.phys = wall + rnd(3);
      if (rnd(8) == 0) n.phys -= 5;

      if (rnd(100) < 45) {  // sync everything another replica has
        const SimNode& from = *nodes[rnd(nodes.size())];
        for (size_t i = 0; i < h->changes.size(); ++i) {
          if (!from.known[i] || n.known[i]) continue;
          Status st = n.clock.Observe(h->changes[i].stamp.hlc);
          ASSERT_TRUE(st.ok()) << st.ToString();
          n.state = MergeField(col, n.state, h->changes[i]).state;
          n.known[i] = 1;
        }
      }
      if (rnd(100) >= 80) continue;

      std::vector<Change> made;
      int64_t delta = 0;
      static const char* const kPool[] = {"red", "green", "blue"};
      static const char* const kMembers[] = {"a", "b", "c"};
      switch (col.merge) {
        case MergePolicy::kLww:
        case MergePolicy::kMv: {
          Status st = MakeLocalChanges(*table_, col, n.state, kRow, kPool[rnd(3)], &n.clock, &made);
          ASSERT_TRUE(st.ok()) << st.ToString();
          break;
        }
        case MergePolicy::kCounter: {
          delta = 1 + static_cast<int64_t>(rnd(5));
          if (rnd(2)) delta = -delta;
          if (rnd(2)) {
            made.push_back(MakeIncrement(*table_, col, n.state, kRow, static_cast<double>(delta), &n.clock));
          } else {
            int64_t now = n.state.present ? n.state.value.get<int64_t>() : 0;
            Status st = MakeLocalChanges(*table_, col, n.state, kRow, now + delta, &n.clock, &made);
            ASSERT_TRUE(st.ok()) << st.ToString();
            ASSERT_EQ(made.size(), 1u);
          }
          break;
        }
        case MergePolicy::kOrSet: {
          if (rnd(3) == 0) {  // a whole-field put
            json want = json::array();
            for (const char* m : kMembers)
              if (rnd(2)) want.push_back(m);
            Status st = MakeLocalChanges(*table_, col, n.state, kRow, want, &n.clock, &made);
            ASSERT_TRUE(st.ok()) << st.ToString();
          } else {  // add any member (again), or remove one the replica shows
            std::string m = kMembers[rnd(3)];
            const json& have = n.state.present ? n.state.value : json::array();
            bool present = std::find(have.begin(), have.end(), m) != have.end();
            bool add = !present || rnd(2) == 0;
            made.push_back(MakeSetMember(*table_, col, n.state, kRow, m, add, &n.clock));
          }
          break;
        }
        case MergePolicy::kState: {
          const int count = static_cast<int>(col.values.size());
          int from = n.state.present ? col.Rank(n.state.value.get<std::string>()) : 0;
          ASSERT_GE(from, 0);
          if (from > 0 && rnd(5) == 0) {
            std::vector<Change> none;
            Status st = MakeLocalChanges(*table_, col, n.state, kRow, col.values[rnd(from)], &n.clock, &none);
            ASSERT_EQ(st.code(), Code::kInvalidArgument) << "a state moved backwards";
            ASSERT_TRUE(none.empty());
          }
          int to = from + static_cast<int>(rnd(count - from));
          Status st = MakeLocalChanges(*table_, col, n.state, kRow, col.values[to], &n.clock, &made);
          ASSERT_TRUE(st.ok()) << st.ToString();
          break;
        }
      }
      for (const Change& c : made) {
        Status st = ValidateChange(schema_, c);
        ASSERT_TRUE(st.ok()) << st.ToString();
        h->seen.push_back(n.known);
        h->changes.push_back(c);
        h->deltas.push_back(delta);
        MergeResult r = MergeField(col, n.state, c);
        ASSERT_TRUE(r.changed) << "a replica's own new change must change its field";
        n.state = r.state;
        n.known[h->changes.size() - 1] = 1;
      }
    }
  }

  static FieldState Fold(const ColumnDef& col, const History& h, const std::vector<size_t>& order,
                         FieldState s = {}, std::set<Stamp>* losers = nullptr) {
    for (size_t i : order) {
      MergeResult r = MergeField(col, s, h.changes[i]);
      if (losers)
        for (const auto& c : r.conflicts) losers->insert(c.loser);
      s = std::move(r.state);
    }
    return s;
  }

  static std::vector<size_t> Identity(size_t n) {
    std::vector<size_t> v(n);
    std::iota(v.begin(), v.end(), 0);
    return v;
  }

  // Runs `body` over kIterations histories with fixed seeds; stops at the
  // first failing one.
  void ForEachHistory(const ColumnDef& col, int nodes, uint64_t salt,
                      const std::function<void(const History&, std::mt19937_64&)>& body) {
    for (int i = 0; i < kIterations && !HasFailure(); ++i) {
      uint64_t seed = kBaseSeed + salt * 10'000 + static_cast<uint64_t>(col.index) * 1'000 + i;
      SCOPED_TRACE("column " + col.name + ", seed " + std::to_string(seed));
      std::mt19937_64 rng(seed);
      History h;
      ASSERT_NO_FATAL_FAILURE(Generate(col, nodes, rng, &h));
      body(h, rng);
    }
  }

  Schema schema_;
  const TableDef* table_ = nullptr;
};

class MergeLaws : public LawsFixture, public ::testing::WithParamInterface<const char*> {
 protected:
  const ColumnDef& col() const { return Col(GetParam()); }
};

TEST_P(MergeLaws, EveryOrderGivesTheSameField) {
  const ColumnDef& c = col();
  ForEachHistory(c, 3, 1, [&](const History& h, std::mt19937_64& rng) {
    FieldState ref = Fold(c, h, Identity(h.changes.size()));
    for (int p = 0; p < kPermutations; ++p) {
      std::vector<size_t> order = Identity(h.changes.size());
      std::shuffle(order.begin(), order.end(), rng);
      EXPECT_TRUE(Same(ref, Fold(c, h, order), StampIsLawful(c))) << "permutation " << p;
    }
    std::vector<size_t> reversed = Identity(h.changes.size());
    std::reverse(reversed.begin(), reversed.end());
    EXPECT_TRUE(Same(ref, Fold(c, h, reversed), StampIsLawful(c))) << "reversed";
  });
}

TEST_P(MergeLaws, MergingAgainChangesNothing) {
  const ColumnDef& c = col();
  ForEachHistory(c, 3, 2, [&](const History& h, std::mt19937_64& rng) {
    FieldState ref = Fold(c, h, Identity(h.changes.size()));
    std::vector<size_t> order = Identity(h.changes.size());
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) {
      MergeResult r = MergeField(c, ref, h.changes[i]);
      EXPECT_FALSE(r.changed) << "change " << i << " merged twice";
      EXPECT_TRUE(Same(ref, r.state, /*with_stamp=*/true)) << "change " << i << " merged twice";
    }
  });
}

TEST_P(MergeLaws, DuplicatesAnywhereGiveTheSameField) {
  const ColumnDef& c = col();
  ForEachHistory(c, 3, 3, [&](const History& h, std::mt19937_64& rng) {
    FieldState ref = Fold(c, h, Identity(h.changes.size()));
    // Every change twice, in a random order.
    std::vector<size_t> twice = Identity(h.changes.size());
    twice.insert(twice.end(), twice.begin(), twice.end());
    std::shuffle(twice.begin(), twice.end(), rng);
    EXPECT_TRUE(Same(ref, Fold(c, h, twice), StampIsLawful(c))) << "every change twice";
    // Every change twice in a row (a retried delivery), in a random order.
    std::vector<size_t> order = Identity(h.changes.size()), stuttered;
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) stuttered.insert(stuttered.end(), {i, i});
    EXPECT_TRUE(Same(ref, Fold(c, h, stuttered), StampIsLawful(c))) << "stuttered";
  });
}

// MergeField takes one change at a time, so associativity shows up as: a
// replica that already merged any subset (in any order) and then receives the
// rest (in any order, mixed with re-deliveries of what it had) ends the same.
TEST_P(MergeLaws, AnySplitIntoPrefixAndRestGivesTheSameField) {
  const ColumnDef& c = col();
  ForEachHistory(c, 3, 4, [&](const History& h, std::mt19937_64& rng) {
    const size_t n = h.changes.size();
    FieldState ref = Fold(c, h, Identity(n));
    for (int p = 0; p < kPermutations; ++p) {
      std::vector<size_t> order = Identity(n);
      std::shuffle(order.begin(), order.end(), rng);
      size_t k = rng() % (n + 1);
      std::vector<size_t> prefix(order.begin(), order.begin() + k);
      std::vector<size_t> rest(order.begin() + k, order.end());
      for (size_t i = 0; i < n; ++i)
        if (rng() % 3 == 0) rest.push_back(order[i]);  // re-deliveries from either side
      std::shuffle(rest.begin(), rest.end(), rng);
      FieldState mid = Fold(c, h, prefix);
      EXPECT_TRUE(Same(ref, Fold(c, h, rest, mid), StampIsLawful(c))) << "split at " << k << " of " << n;
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Policies, MergeLaws, ::testing::Values("note", "memo", "qty", "tags", "stage"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

// ---- what each policy converges to ----------------------------------------

Stamp MaxStamp(const History& h) {
  Stamp m;
  for (const auto& c : h.changes) m = std::max(m, c.stamp);
  return m;
}

TEST_F(LawsFixture, LwwNewestStampWins) {
  const ColumnDef& c = Col("note");
  ForEachHistory(c, 3, 5, [&](const History& h, std::mt19937_64&) {
    FieldState s = Fold(c, h, Identity(h.changes.size()));
    if (h.changes.empty()) {
      EXPECT_FALSE(s.present);
      return;
    }
    auto winner = std::max_element(h.changes.begin(), h.changes.end(),
                                   [](const Change& a, const Change& b) { return a.stamp < b.stamp; });
    EXPECT_EQ(s.value, winner->value);
    EXPECT_EQ(s.stamp, winner->stamp);
    EXPECT_EQ(s.base, winner->base);
  });
}

TEST_F(LawsFixture, StateFurthestStateWins) {
  const ColumnDef& c = Col("stage");
  ForEachHistory(c, 3, 6, [&](const History& h, std::mt19937_64&) {
    FieldState s = Fold(c, h, Identity(h.changes.size()));
    if (h.changes.empty()) {
      EXPECT_FALSE(s.present);
      return;
    }
    auto key = [&](const Change& x) { return std::make_pair(c.Rank(x.value.get<std::string>()), x.stamp); };
    auto winner = std::max_element(h.changes.begin(), h.changes.end(),
                                   [&](const Change& a, const Change& b) { return key(a) < key(b); });
    EXPECT_EQ(s.value, winner->value);
    EXPECT_EQ(s.stamp, winner->stamp);
  });
}

TEST_F(LawsFixture, MvKeepsExactlyTheWritesNobodyOverwrote) {
  const ColumnDef& c = Col("memo");
  ForEachHistory(c, 3, 7, [&](const History& h, std::mt19937_64&) {
    FieldState s = Fold(c, h, Identity(h.changes.size()));
    if (h.changes.empty()) {
      EXPECT_FALSE(s.present);
      return;
    }
    std::vector<const Change*> live;
    for (size_t i = 0; i < h.changes.size(); ++i) {
      bool overwritten = false;
      for (size_t j = 0; j < h.changes.size(); ++j) overwritten |= h.seen[j][i] != 0;
      if (!overwritten) live.push_back(&h.changes[i]);
    }
    std::sort(live.begin(), live.end(), [](const Change* a, const Change* b) { return a->stamp < b->stamp; });
    std::vector<json> want;
    for (const Change* x : live) want.push_back(x->value);
    EXPECT_EQ(MvValues(s), want);
    EXPECT_EQ(IsConflicted(c, s), live.size() > 1);
    EXPECT_EQ(s.value, live.back()->value);
    EXPECT_EQ(s.stamp, MaxStamp(h));
  });
}

TEST_F(LawsFixture, CounterIsTheSumOfAllDeltas) {
  const ColumnDef& c = Col("qty");
  ForEachHistory(c, 3, 8, [&](const History& h, std::mt19937_64&) {
    FieldState s = Fold(c, h, Identity(h.changes.size()));
    if (h.changes.empty()) {
      EXPECT_FALSE(s.present);
      return;
    }
    int64_t sum = std::accumulate(h.deltas.begin(), h.deltas.end(), int64_t{0});
    EXPECT_EQ(s.value, sum);
    EXPECT_EQ(s.stamp, MaxStamp(h));
  });
}

TEST_F(LawsFixture, OrSetMemberPresentIffSomeAddWasNotSeenByAnyRemove) {
  const ColumnDef& c = Col("tags");
  ForEachHistory(c, 3, 9, [&](const History& h, std::mt19937_64&) {
    FieldState s = Fold(c, h, Identity(h.changes.size()));
    if (h.changes.empty()) {
      EXPECT_FALSE(s.present);
      return;
    }
    std::set<std::string> want;
    for (size_t a = 0; a < h.changes.size(); ++a) {
      const Change& add = h.changes[a];
      if (add.op != Op::kAdd) continue;
      bool removed = false;
      for (size_t r = 0; r < h.changes.size(); ++r) {
        const Change& rem = h.changes[r];
        removed |= rem.op == Op::kRemove && rem.value == add.value && h.seen[r][a];
      }
      if (!removed) want.insert(add.value.get<std::string>());
    }
    json want_json = json::array();
    for (const auto& m : want) want_json.push_back(m);
    EXPECT_EQ(s.value, want_json);
  });
}

// ---- conflict records ------------------------------------------------------

TEST_F(LawsFixture, LwwWinnerIsNeverReportedAsALoser) {
  const ColumnDef& c = Col("note");
  ForEachHistory(c, 3, 10, [&](const History& h, std::mt19937_64& rng) {
    std::vector<size_t> order = Identity(h.changes.size());
    std::shuffle(order.begin(), order.end(), rng);
    std::set<Stamp> losers;
    FieldState s = Fold(c, h, order, {}, &losers);
    EXPECT_EQ(losers.count(s.stamp), 0u);
  });
}

TEST_F(LawsFixture, LwwSingleWriterHistoriesNeverConflict) {
  const ColumnDef& c = Col("note");
  ForEachHistory(c, 1, 11, [&](const History& h, std::mt19937_64& rng) {
    for (int p = 0; p < kPermutations; ++p) {
      std::vector<size_t> order = Identity(h.changes.size());
      std::shuffle(order.begin(), order.end(), rng);
      std::set<Stamp> losers;
      Fold(c, h, order, {}, &losers);
      EXPECT_TRUE(losers.empty()) << losers.size() << " conflict(s) from one writer";
    }
  });
}

// Which concurrent losers a replica records as conflict records may depend
// on arrival order (a write knowingly overwritten by a third may or may not
// meet a concurrent newer one first): conflict records are local advice,
// never part of the converged state. docs/merge.md, "Conflict records".

History Manual(std::vector<Change> changes) {
  History h;
  h.changes = std::move(changes);
  return h;
}

Change SetChange(const std::string& column, json value, Stamp stamp, Hlc base = 0) {
  Change c;
  c.table = "t";
  c.row = kRow;
  c.column = column;
  c.op = Op::kSet;
  c.value = std::move(value);
  c.stamp = stamp;
  c.base = base;
  return c;
}

// ---- field stamps that depend on arrival order -------------------------------

// Regression (was order-dependent): an orset change that adds nothing to the crdt (a
// remove whose context is already covered, e.g. two replicas removing the
// same member after seeing the same adds) returns "unchanged", so its stamp
// is not folded into FieldState::stamp. Which of two such removes is folded
// in depends on arrival order. The store compares FieldState::stamp with a
// row delete's stamp to decide on "deleted" conflicts, so replicas can
// disagree there. Counterexample in OrSetRedundantRemoveStampCounterexample.
TEST_F(LawsFixture, OrSetStampIsOrderIndependent) {
  const ColumnDef& c = Col("tags");
  ForEachHistory(c, 3, 13, [&](const History& h, std::mt19937_64& rng) {
    FieldState ref = Fold(c, h, Identity(h.changes.size()));
    EXPECT_EQ(ref.stamp, MaxStamp(h));
    for (int p = 0; p < kPermutations; ++p) {
      std::vector<size_t> order = Identity(h.changes.size());
      std::shuffle(order.begin(), order.end(), rng);
      EXPECT_TRUE(Same(ref, Fold(c, h, order), /*with_stamp=*/true)) << "permutation " << p;
    }
  });
}

TEST_F(LawsFixture, OrSetRedundantRemoveStampCounterexample) {
  const ColumnDef& c = Col("tags");
  uint64_t phys = kT0;
  HybridClock n1(1, [&] { return phys; }), n2(2, [&] { return phys; }), n3(3, [&] { return phys; });
  FieldState empty;
  Change add = MakeSetMember(*table_, c, empty, kRow, "a", true, &n1);
  FieldState seen = MergeField(c, empty, add).state;
  phys += 1;
  Change rem2 = MakeSetMember(*table_, c, seen, kRow, "a", false, &n2);
  phys += 1;
  Change rem3 = MakeSetMember(*table_, c, seen, kRow, "a", false, &n3);  // same context, later stamp
  History h = Manual({add, rem2, rem3});
  FieldState s1 = Fold(c, h, {0, 1, 2});
  FieldState s2 = Fold(c, h, {0, 2, 1});
  EXPECT_EQ(s1.value, s2.value);
  EXPECT_EQ(s1.stamp, s2.stamp);  // rem2's stamp vs rem3's stamp
}

// Regression (was order-dependent): a remove with an empty context (the SDK's
// RemoveMember of a member the replica never saw added) creates an empty
// per-member entry in the crdt only when it is the first change to reach the
// field; otherwise it is dropped as "unchanged". Values agree, crdt does not.
TEST_F(LawsFixture, OrSetBlindRemoveCrdtCounterexample) {
  const ColumnDef& c = Col("tags");
  uint64_t phys = kT0;
  HybridClock n1(1, [&] { return phys; }), n2(2, [&] { return phys; });
  FieldState empty;
  Change add = MakeSetMember(*table_, c, empty, kRow, "a", true, &n1);
  Change blind = MakeSetMember(*table_, c, empty, kRow, "b", false, &n2);
  ASSERT_TRUE(blind.ctx.empty());
  History h = Manual({add, blind});
  EXPECT_TRUE(Same(Fold(c, h, {0, 1}), Fold(c, h, {1, 0}), /*with_stamp=*/false));
}

// Regression (was order-dependent): a counter change whose totals equal the node's
// current totals (MakeIncrement with delta 0, or one that rounds to 0 on an
// integer counter; the SDK filters these but a peer can send them) is folded
// into FieldState::stamp only if it arrives before the node's previous one.
TEST_F(LawsFixture, CounterZeroIncrementStampCounterexample) {
  const ColumnDef& c = Col("qty");
  uint64_t phys = kT0;
  HybridClock n1(1, [&] { return phys; });
  FieldState local;
  Change one = MakeIncrement(*table_, c, local, kRow, 1, &n1);
  local = MergeField(c, local, one).state;
  Change zero = MakeIncrement(*table_, c, local, kRow, 0, &n1);
  ASSERT_TRUE(ValidateChange(schema_, zero).ok());
  History h = Manual({one, zero});
  FieldState s1 = Fold(c, h, {0, 1});
  FieldState s2 = Fold(c, h, {1, 0});
  EXPECT_EQ(s1.value, s2.value);
  EXPECT_EQ(s1.stamp, s2.stamp);  // one's stamp vs zero's stamp
}

}  // namespace
}  // namespace fieldsync
