// libFuzzer target: the merge laws (sync/merge.h), over histories that the
// input bytes describe.
//
// The bytes are a program, run once for each of five fields, one per merge
// policy (lww, mv, counter, orset, state). Three replicas, each with a
// HybridClock over its own fake physical time, edit the field through
// MakeLocalChanges / MakeIncrement / MakeSetMember against their own
// FieldState, and sometimes first merge every change another replica has
// (observing those clocks), so a history holds causal and concurrent writes.
// Every change a replica makes must pass ValidateChange.
//
// A program is a sequence of steps of two bytes, [op, arg]:
//   op % 3           the replica that acts
//   (op / 3) % 4     how far the shared wall clock moves (ms)
//   (op / 12) % 4    the replica's clock: wall, wall + 1, wall + 2, wall - 5
//   (op / 48) % 6    0-1 edit; 2-3 sync from one other replica, then edit;
//                    4 sync only; 5 sync from both others, then edit
//   arg              what the edit is; see Edit() for each policy
// (the sync source is the replica after the actor, or the one after that
// when arg's top bit is set). A missing arg byte reads as 0.
//
// The laws: folding MergeField over all changes from an empty state gives
// the same field (present, value.dump(), crdt.dump(), stamp, base) in two
// orders derived from the input, with every change merged twice (a second
// round in another order, and each change twice in a row), after any split
// into a prefix merged first and the rest with re-deliveries; and merging
// any change again into the result changes nothing. A broken law aborts with
// the field, the history and both results printed.
//
// Built and run by tools/fuzz.sh.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "sync/merge.h"
#include "sync/protocol.h"

namespace {

using namespace fieldsync;

constexpr uint64_t kT0 = 1'700'000'000'000ULL;
constexpr size_t kMaxChanges = 48;
constexpr size_t kMaxSteps = 64;
constexpr const char* kRow = "row-1";
constexpr const char* kColumns[] = {"note", "memo", "qty", "tags", "stage"};

constexpr const char* kSchema = R"({"name": "laws", "version": 1, "tables": [
  {"name": "t", "columns": [
    {"name": "note", "type": "text", "merge": "lww"},
    {"name": "memo", "type": "text", "merge": "mv"},
    {"name": "qty", "type": "integer", "merge": "counter"},
    {"name": "tags", "type": "set", "merge": "orset"},
    {"name": "stage", "type": "enum", "merge": "state", "values": ["s0", "s1", "s2", "s3", "s4"]}]}]})";

const Schema& TheSchema() {
  static const Schema* schema = [] {
    auto* s = new Schema;
    Status st = Schema::ParseText(kSchema, s);
    if (!st.ok()) {
      std::fprintf(stderr, "fuzz_merge: schema: %s\n", st.ToString().c_str());
      std::abort();
    }
    return s;
  }();
  return *schema;
}

struct Reader {
  const uint8_t* p;
  size_t n;
  size_t i = 0;
  bool done() const { return i >= n; }
  uint8_t next() { return i < n ? p[i++] : 0; }
};

struct Replica {
  explicit Replica(NodeId id) : clock(id, [this] { return phys; }) {}
  uint64_t phys = kT0;
  HybridClock clock;
  FieldState state;
  std::vector<char> known = std::vector<char>(kMaxChanges, 0);
};

std::string ShowChange(const Change& c) { return ChangeToJson(c).dump(); }

std::string ShowState(const FieldState& s) {
  return std::string("present ") + (s.present ? "1" : "0") + " stamp " + ToHex(s.stamp.node) + ":" +
         ToHex(s.stamp.hlc) + " base " + ToHex(s.base) + "\n    value " + s.value.dump() + "\n    crdt  " +
         s.crdt.dump();
}

bool Same(const FieldState& a, const FieldState& b) {
  return a.present == b.present && a.value.dump() == b.value.dump() && a.crdt.dump() == b.crdt.dump() &&
         a.stamp == b.stamp && a.base == b.base;
}

[[noreturn]] void Fail(const ColumnDef& col, const std::string& what, const std::vector<Change>& changes,
                       const FieldState* a, const FieldState* b) {
  std::fprintf(stderr, "fuzz_merge: column %s (%s): %s\n", col.name.c_str(), PolicyName(col.merge), what.c_str());
  for (size_t i = 0; i < changes.size(); ++i)
    std::fprintf(stderr, "  change %zu: %s\n", i, ShowChange(changes[i]).c_str());
  if (a) std::fprintf(stderr, "  expected: %s\n", ShowState(*a).c_str());
  if (b) std::fprintf(stderr, "  got:      %s\n", ShowState(*b).c_str());
  std::abort();
}

// Makes the changes of one edit by replica `n` into `made`.
void Edit(const TableDef& table, const ColumnDef& col, Replica& n, uint8_t arg, std::vector<Change>* made,
          const std::vector<Change>& history) {
  static const char* const kPool[] = {"red", "green", "blue"};
  static const char* const kMembers[] = {"a", "b", "c"};
  switch (col.merge) {
    case MergePolicy::kLww:
    case MergePolicy::kMv: {
      json v = arg % 4 == 3 ? json() : json(kPool[arg % 4]);
      Status st = MakeLocalChanges(table, col, n.state, kRow, v, &n.clock, made);
      if (!st.ok()) Fail(col, "MakeLocalChanges refused a put: " + st.ToString(), history, nullptr, nullptr);
      break;
    }
    case MergePolicy::kCounter: {
      int64_t delta = static_cast<int64_t>((arg >> 1) % 11) - 5;  // -5..5, 0 included
      if (arg & 1) {
        made->push_back(MakeIncrement(table, col, n.state, kRow, static_cast<double>(delta), &n.clock));
      } else {
        int64_t now = n.state.present ? n.state.value.get<int64_t>() : 0;
        Status st = MakeLocalChanges(table, col, n.state, kRow, now + delta, &n.clock, made);
        if (!st.ok()) Fail(col, "MakeLocalChanges refused a counter put: " + st.ToString(), history, nullptr, nullptr);
      }
      break;
    }
    case MergePolicy::kOrSet: {
      std::string m = kMembers[(arg >> 2) % 3];
      const json have = n.state.present ? n.state.value : json::array();
      bool present = std::find(have.begin(), have.end(), json(m)) != have.end();
      switch (arg % 4) {
        case 0: {  // a whole-field put of a subset
          json want = json::array();
          for (int k = 0; k < 3; ++k)
            if ((arg >> (2 + k)) & 1) want.push_back(kMembers[k]);
          Status st = MakeLocalChanges(table, col, n.state, kRow, want, &n.clock, made);
          if (!st.ok()) Fail(col, "MakeLocalChanges refused a set put: " + st.ToString(), history, nullptr, nullptr);
          break;
        }
        case 1: made->push_back(MakeSetMember(table, col, n.state, kRow, m, true, &n.clock)); break;
        case 2:  // a remove, even of a member this replica never saw (blind)
          made->push_back(MakeSetMember(table, col, n.state, kRow, m, false, &n.clock));
          break;
        case 3: made->push_back(MakeSetMember(table, col, n.state, kRow, m, !present, &n.clock)); break;
      }
      break;
    }
    case MergePolicy::kState: {
      const int count = static_cast<int>(col.values.size());
      int from = n.state.present ? col.Rank(n.state.value.get<std::string>()) : 0;
      if (from < 0) Fail(col, "a state field holds an undeclared value", history, &n.state, nullptr);
      if (from > 0 && (arg & 0x80)) {  // trying to move backwards must fail and make nothing
        std::vector<Change> none;
        Status st = MakeLocalChanges(table, col, n.state, kRow, col.values[arg % from], &n.clock, &none);
        if (st.code() != Code::kInvalidArgument || !none.empty())
          Fail(col, "a state moved backwards: " + st.ToString(), history, &n.state, nullptr);
      }
      int to = from + (arg & 0x7f) % (count - from);
      Status st = MakeLocalChanges(table, col, n.state, kRow, col.values[to], &n.clock, made);
      if (!st.ok()) Fail(col, "MakeLocalChanges refused a forward state: " + st.ToString(), history, nullptr, nullptr);
      break;
    }
  }
}

void SyncFrom(const ColumnDef& col, Replica& n, const Replica& from, const std::vector<Change>& changes) {
  if (&n == &from) return;
  for (size_t i = 0; i < changes.size(); ++i) {
    if (!from.known[i] || n.known[i]) continue;
    Status st = n.clock.Observe(changes[i].stamp.hlc);
    if (!st.ok()) Fail(col, "harness: Observe refused a peer clock: " + st.ToString(), changes, nullptr, nullptr);
    n.state = MergeField(col, n.state, changes[i]).state;
    n.known[i] = 1;
  }
}

std::vector<Change> Generate(const TableDef& table, const ColumnDef& col, const uint8_t* data, size_t size) {
  std::vector<Change> changes;
  const NodeId kIds[] = {0x2a, 0x07, 0x1d};  // not in index order, on purpose
  std::vector<std::unique_ptr<Replica>> nodes;
  for (NodeId id : kIds) nodes.push_back(std::make_unique<Replica>(id));
  uint64_t wall = kT0;
  Reader in{data, size};
  for (size_t step = 0; step < kMaxSteps && !in.done() && changes.size() + 8 < kMaxChanges; ++step) {
    uint8_t op = in.next(), arg = in.next();
    Replica& n = *nodes[op % 3];
    unsigned rest = op / 3;
    wall += rest % 4;
    rest /= 4;
    static const int64_t kSkew[] = {0, 1, 2, -5};
    n.phys = static_cast<uint64_t>(static_cast<int64_t>(wall) + kSkew[rest % 4]);
    rest /= 4;
    unsigned action = rest % 6;
    const Replica& other1 = *nodes[(op % 3 + 1 + (arg >> 7)) % 3];
    if (action == 2 || action == 3 || action == 4) SyncFrom(col, n, other1, changes);
    if (action == 5) {
      SyncFrom(col, n, *nodes[(op % 3 + 1) % 3], changes);
      SyncFrom(col, n, *nodes[(op % 3 + 2) % 3], changes);
    }
    if (action == 4) continue;

    std::vector<Change> made;
    Edit(table, col, n, arg, &made, changes);
    for (Change& c : made) {
      Status st = ValidateChange(TheSchema(), c);
      if (!st.ok()) {
        changes.push_back(c);
        Fail(col, "a change made locally fails ValidateChange (the last one): " + st.ToString(), changes,
             nullptr, nullptr);
      }
      changes.push_back(c);
      n.state = MergeField(col, n.state, changes.back()).state;
      n.known[changes.size() - 1] = 1;
    }
  }
  return changes;
}

FieldState Fold(const ColumnDef& col, const std::vector<Change>& changes, const std::vector<size_t>& order,
                FieldState s = {}) {
  for (size_t i : order) s = MergeField(col, s, changes[i]).state;
  return s;
}

std::string OrderString(const std::vector<size_t>& order) {
  std::string s;
  for (size_t i : order) s += (s.empty() ? "" : " ") + std::to_string(i);
  return s;
}

void CheckLaws(const ColumnDef& col, const std::vector<Change>& changes, uint64_t seed) {
  const size_t n = changes.size();
  std::mt19937_64 rng(seed);
  std::vector<size_t> order1(n), order2(n);
  std::iota(order1.begin(), order1.end(), 0);
  std::iota(order2.begin(), order2.end(), 0);
  std::shuffle(order1.begin(), order1.end(), rng);
  std::shuffle(order2.begin(), order2.end(), rng);
  if (n > 1 && order1 == order2) std::reverse(order2.begin(), order2.end());

  auto expect = [&](const FieldState& ref, const FieldState& got, const std::string& what) {
    if (!Same(ref, got)) Fail(col, what, changes, &ref, &got);
  };
  const FieldState ref = Fold(col, changes, order1);
  expect(ref, Fold(col, changes, order2),
         "two orders disagree\n  order 1: " + OrderString(order1) + "\n  order 2: " + OrderString(order2));

  std::vector<size_t> twice = order1;
  twice.insert(twice.end(), order2.begin(), order2.end());
  expect(ref, Fold(col, changes, twice), "every change twice disagrees: " + OrderString(twice));

  std::vector<size_t> stuttered;
  for (size_t i : order2) stuttered.insert(stuttered.end(), {i, i});
  expect(ref, Fold(col, changes, stuttered), "each change twice in a row disagrees: " + OrderString(stuttered));

  size_t k = n ? rng() % (n + 1) : 0;
  std::vector<size_t> prefix(order2.begin(), order2.begin() + k);
  FieldState mid = Fold(col, changes, prefix);
  expect(ref, Fold(col, changes, order1, mid),
         "prefix " + OrderString(prefix) + " then all of " + OrderString(order1) + " disagrees");

  for (size_t i = 0; i < n; ++i) {
    MergeResult r = MergeField(col, ref, changes[i]);
    if (r.changed || !Same(ref, r.state))
      Fail(col, "merging change " + std::to_string(i) + " again changes the field (order 1: " +
                    OrderString(order1) + ")",
           changes, &ref, &r.state);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Schema& schema = TheSchema();
  const TableDef& table = *schema.Find("t");
  uint64_t h = 1469598103934665603ULL;  // FNV-1a over the input: the orders' seed
  for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ULL;
  for (size_t p = 0; p < std::size(kColumns); ++p) {
    const ColumnDef& col = *table.Find(kColumns[p]);
    std::vector<Change> changes = Generate(table, col, data, size);
    CheckLaws(col, changes, h + p);
  }
  return 0;
}
