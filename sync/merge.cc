#include "sync/merge.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace fieldsync {

namespace {

// ---- helpers over the JSON-encoded policy state ---------------------------
// mv:      [{"n": node, "h": hlc, "v": value, "x": version-vector}, ...]
//          sorted by (h, n); never two entries of which one has seen the other;
//          null for one entry with an empty x, which is the field's own
//          stamp and value (see IsSpelledOutSingleWrite in merge.h)
// counter: {"<node>": [p, n], ...}
// orset:   {"<member>": {"a": version-vector, "r": version-vector}, ...}

struct MvEntry {
  Stamp stamp;
  json value;
  VersionVector ctx;
};

std::vector<MvEntry> MvEntries(const FieldState& s) {
  std::vector<MvEntry> out;
  if (s.crdt.is_null() && s.present) out.push_back({s.stamp, s.value, {}});
  if (!s.crdt.is_array()) return out;
  for (const auto& e : s.crdt) {
    MvEntry m;
    uint64_t n = 0, h = 0;
    ParseHex(e.value("n", ""), &n);
    ParseHex(e.value("h", ""), &h);
    m.stamp = {h, n};
    m.value = e.contains("v") ? e["v"] : json();
    if (e.contains("x")) VersionVectorFromJson(e["x"], &m.ctx);
    out.push_back(std::move(m));
  }
  return out;
}

json MvToJson(const std::vector<MvEntry>& es) {
  json arr = json::array();
  for (const auto& e : es)
    arr.push_back({{"n", ToHex(e.stamp.node)}, {"h", ToHex(e.stamp.hlc)}, {"v", e.value},
                   {"x", VersionVectorToJson(e.ctx)}});
  return arr;
}

// Everything a field's current values have seen, including themselves.
VersionVector MvContext(const std::vector<MvEntry>& es) {
  VersionVector vv;
  for (const auto& e : es) {
    JoinInto(&vv, e.ctx);
    auto& slot = vv[e.stamp.node];
    if (e.stamp.hlc > slot) slot = e.stamp.hlc;
  }
  return vv;
}

MergeResult MergeMv(const ColumnDef& col, const FieldState& cur, const Change& c) {
  MergeResult r;
  r.state = cur;
  auto entries = MvEntries(cur);
  if (Covers(MvContext(entries), c.stamp.node, c.stamp.hlc)) return r;  // seen already
  std::vector<MvEntry> kept;
  for (auto& e : entries)
    if (!Covers(c.ctx, e.stamp.node, e.stamp.hlc)) kept.push_back(std::move(e));
  // A real column takes integers but reads back doubles: entries hold what
  // the column will, or the write implied by a field with no state (5.0
  // read back) and the same write kept from the change (5) would differ.
  json value = col.type == ColumnType::kReal && c.value.is_number_integer() ? json(c.value.get<double>()) : c.value;
  kept.push_back({c.stamp, std::move(value), c.ctx});
  std::sort(kept.begin(), kept.end(),
            [](const MvEntry& a, const MvEntry& b) { return a.stamp < b.stamp; });
  r.changed = true;
  r.state.present = true;
  r.state.stamp = std::max(cur.stamp, c.stamp);
  r.state.value = kept.back().value;  // the column shows the newest value
  // One write that had seen nothing is the field's own stamp and value.
  bool single = kept.size() == 1 && kept[0].ctx.empty() && kept[0].stamp == r.state.stamp;
  r.state.crdt = single ? json() : MvToJson(kept);
  return r;
}

// lww and state share one rule with different order keys.
MergeResult MergeOrdered(const ColumnDef& col, const FieldState& cur, const Change& c) {
  MergeResult r;
  r.state = cur;
  if (cur.present && cur.stamp == c.stamp) return r;  // duplicate
  auto rank = [&](const json& v) {
    if (col.merge != MergePolicy::kState || !v.is_string()) return -1;
    return col.Rank(v.get<std::string>());
  };
  bool incoming_wins = !cur.present;
  if (cur.present) {
    auto ka = std::make_pair(rank(c.value), c.stamp);
    auto kb = std::make_pair(rank(cur.value), cur.stamp);
    incoming_wins = ka > kb;
  }
  const char* kind = col.merge == MergePolicy::kState ? "state" : "lww";
  if (incoming_wins) {
    if (cur.present && c.base < cur.stamp.hlc && cur.value != c.value) {
      r.conflicts.push_back({c.table, c.row, c.column, kind, cur.value, cur.stamp, c.value, c.stamp});
    }
    r.changed = true;
    r.state.present = true;
    r.state.stamp = c.stamp;
    r.state.base = c.base;
    r.state.value = c.value;
    r.state.crdt = nullptr;
  } else if (cur.base < c.stamp.hlc && cur.value != c.value) {
    r.conflicts.push_back({c.table, c.row, c.column, kind, c.value, c.stamp, cur.value, cur.stamp});
  }
  return r;
}

json SumCounter(const ColumnDef& col, const json& totals) {
  if (col.type == ColumnType::kInteger) {
    int64_t sum = 0;
    for (const auto& [k, pn] : totals.items()) sum += pn[0].get<int64_t>() - pn[1].get<int64_t>();
    return sum;
  }
  double sum = 0;
  for (const auto& [k, pn] : totals.items()) sum += pn[0].get<double>() - pn[1].get<double>();
  return sum;
}

MergeResult MergeCounter(const ColumnDef& col, const FieldState& cur, const Change& c) {
  MergeResult r;
  r.state = cur;
  json totals = cur.crdt.is_object() ? cur.crdt : json::object();
  std::string key = ToHex(c.stamp.node);
  json mine = totals.contains(key) ? totals[key] : json::array({0, 0});
  bool grew = false;
  for (int i = 0; i < 2; ++i) {
    if (c.value[i].get<double>() > mine[i].get<double>()) {
      mine[i] = c.value[i];
      grew = true;
    }
  }
  // The field's stamp is the newest change merged, whatever it contributed,
  // so every arrival order ends with the same stamp.
  Stamp stamp = cur.present ? std::max(cur.stamp, c.stamp) : c.stamp;
  if (!grew && cur.present && stamp == cur.stamp) return r;
  // A node's entry exists only once it has counted something: an absent
  // entry and [0, 0] mean the same, so a zero increment stores nothing.
  if (grew) totals[key] = mine;
  r.changed = true;
  r.state.present = true;
  r.state.stamp = stamp;
  r.state.crdt = totals;
  r.state.value = SumCounter(col, totals);
  return r;
}

bool OrsetPresent(const json& entry) {
  VersionVector adds, removes;
  VersionVectorFromJson(entry.value("a", json::object()), &adds);
  VersionVectorFromJson(entry.value("r", json::object()), &removes);
  for (const auto& [n, h] : adds)
    if (!Covers(removes, n, h)) return true;
  return false;
}

json OrsetValue(const json& members) {
  json arr = json::array();  // std::map-backed objects iterate sorted by key
  for (const auto& [m, entry] : members.items())
    if (OrsetPresent(entry)) arr.push_back(m);
  return arr;
}

MergeResult MergeOrset(const FieldState& cur, const Change& c) {
  MergeResult r;
  r.state = cur;
  json members = cur.crdt.is_object() ? cur.crdt : json::object();
  const std::string& m = c.value.get_ref<const std::string&>();
  json entry = members.contains(m) ? members[m] : json{{"a", json::object()}, {"r", json::object()}};
  VersionVector adds, removes;
  VersionVectorFromJson(entry["a"], &adds);
  VersionVectorFromJson(entry["r"], &removes);
  VersionVector before_a = adds, before_r = removes;
  if (c.op == Op::kAdd) {
    JoinInto(&adds, {{c.stamp.node, c.stamp.hlc}});
  } else {
    JoinInto(&removes, c.ctx);
  }
  Stamp stamp = cur.present ? std::max(cur.stamp, c.stamp) : c.stamp;
  if (adds == before_a && removes == before_r && cur.present && stamp == cur.stamp) return r;
  // An entry with no adds and no removes says nothing: never store one, so a
  // remove of a member nobody added leaves the same state in every order.
  if (!adds.empty() || !removes.empty()) {
    entry["a"] = VersionVectorToJson(adds);
    entry["r"] = VersionVectorToJson(removes);
    members[m] = entry;
  }
  r.changed = true;
  r.state.present = true;
  r.state.stamp = stamp;
  r.state.crdt = members;
  r.state.value = OrsetValue(members);
  return r;
}

}  // namespace

MergeResult MergeField(const ColumnDef& col, const FieldState& cur, const Change& c) {
  switch (col.merge) {
    case MergePolicy::kLww:
    case MergePolicy::kState:
      if (c.op == Op::kSet) return MergeOrdered(col, cur, c);
      break;
    case MergePolicy::kMv:
      if (c.op == Op::kSet) return MergeMv(col, cur, c);
      break;
    case MergePolicy::kCounter:
      if (c.op == Op::kIncrement) return MergeCounter(col, cur, c);
      break;
    case MergePolicy::kOrSet:
      if (c.op == Op::kAdd || c.op == Op::kRemove) return MergeOrset(cur, c);
      break;
  }
  MergeResult r;
  r.state = cur;
  return r;
}

void AddFieldContext(const ColumnDef& col, const FieldState& s, VersionVector* seen) {
  if (!s.present) return;
  JoinInto(seen, {{s.stamp.node, s.stamp.hlc}});
  if (col.merge == MergePolicy::kMv) {
    JoinInto(seen, MvContext(MvEntries(s)));
  } else if (col.merge == MergePolicy::kOrSet && s.crdt.is_object()) {
    for (const auto& [m, entry] : s.crdt.items()) {
      VersionVector v;
      if (VersionVectorFromJson(entry.value("a", json::object()), &v)) JoinInto(seen, v);
      if (VersionVectorFromJson(entry.value("r", json::object()), &v)) JoinInto(seen, v);
    }
  }
}

std::vector<std::pair<Stamp, json>> MvEntriesOf(const FieldState& s) {
  std::vector<std::pair<Stamp, json>> out;
  for (auto& e : MvEntries(s)) out.emplace_back(e.stamp, std::move(e.value));
  return out;
}

std::vector<json> MvValues(const FieldState& s) {
  std::vector<json> out;
  for (auto& e : MvEntries(s)) out.push_back(std::move(e.value));
  return out;
}

bool IsConflicted(const ColumnDef& col, const FieldState& s) {
  return col.merge == MergePolicy::kMv && s.crdt.is_array() && s.crdt.size() > 1;
}

json SpelledOutSingleWrite(const FieldState& s) {
  return json::array({{{"h", ToHex(s.stamp.hlc)}, {"n", ToHex(s.stamp.node)}, {"v", s.value}, {"x", json::object()}}});
}

bool SameText(const json& a, const json& b) {
  using T = json::value_t;
  if (a.is_number_integer() && b.is_number_integer()) {  // signed or unsigned
    if (a.is_number_unsigned() == b.is_number_unsigned()) return a == b;
    const json& u = a.is_number_unsigned() ? a : b;
    const json& i = a.is_number_unsigned() ? b : a;
    return i.get<int64_t>() >= 0 && u.get<uint64_t>() == static_cast<uint64_t>(i.get<int64_t>());
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case T::object: {
      if (a.size() != b.size()) return false;
      for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y)
        if (x.key() != y.key() || !SameText(x.value(), y.value())) return false;
      return true;
    }
    case T::array: {
      if (a.size() != b.size()) return false;
      for (size_t k = 0; k < a.size(); ++k)
        if (!SameText(a[k], b[k])) return false;
      return true;
    }
    case T::number_float: {
      // Bit for bit: dump() writes each double's shortest round-trip text.
      double x = a.get<double>(), y = b.get<double>();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    default:
      return a == b;
  }
}

// Checked in place: building the state and comparing its text was two
// fifths of encoding a snapshot page.
bool IsSpelledOutSingleWrite(const FieldState& s) {
  if (!s.crdt.is_array() || s.crdt.size() != 1) return false;
  const json& w = s.crdt[0];
  if (!w.is_object() || w.size() != 4) return false;
  auto h = w.find("h"), n = w.find("n"), v = w.find("v"), x = w.find("x");
  return h != w.end() && n != w.end() && v != w.end() && x != w.end() && h->is_string() && n->is_string() &&
         x->is_object() && x->empty() && h->get_ref<const std::string&>() == ToHex(s.stamp.hlc) &&
         n->get_ref<const std::string&>() == ToHex(s.stamp.node) && SameText(*v, s.value);
}

Status ValidateChange(const Schema& schema, const Change& c) {
  const TableDef* t = schema.Find(c.table);
  if (!t) return Status::NotFound("unknown table '" + c.table + "'");
  if (!ValidRowId(c.row)) return Status::InvalidArgument("bad row id (1-64 chars of [A-Za-z0-9_-])");
  if (c.stamp.node == 0 || c.stamp.hlc == 0) return Status::InvalidArgument("change without a stamp");
  if (c.op == Op::kDelete) {
    if (!c.column.empty()) return Status::InvalidArgument("a delete names no column");
    return Status::OK();
  }
  const ColumnDef* col = t->Find(c.column);
  if (!col) return Status::NotFound("unknown column '" + c.table + "." + c.column + "'");
  std::string where = c.table + "." + c.column;
  switch (c.op) {
    case Op::kSet:
      if (col->merge == MergePolicy::kCounter || col->merge == MergePolicy::kOrSet)
        return Status::Schema(where + ": '" + PolicyName(col->merge) + "' column takes no 'set'");
      return Schema::CheckValue(*t, *col, c.value);
    case Op::kIncrement: {
      if (col->merge != MergePolicy::kCounter) return Status::Schema(where + ": not a counter");
      if (!c.value.is_array() || c.value.size() != 2)
        return Status::Schema(where + ": inc needs [p_total, n_total]");
      for (const auto& v : c.value) {
        bool integral = col->type == ColumnType::kInteger;
        if (integral ? !v.is_number_integer() : !v.is_number())
          return Status::Schema(where + ": counter totals must be " + (integral ? "integers" : "numbers"));
        // 2^53: exact in every JSON implementation, and sums of many nodes'
        // totals stay far from int64 overflow.
        if (v.get<double>() < 0 || !std::isfinite(v.get<double>()) || v.get<double>() > 9007199254740992.0)
          return Status::Schema(where + ": counter totals must be finite, >= 0 and <= 2^53");
      }
      return Status::OK();
    }
    case Op::kAdd:
    case Op::kRemove:
      if (col->merge != MergePolicy::kOrSet) return Status::Schema(where + ": not a set");
      return Schema::CheckMember(*t, *col, c.value);
    case Op::kDelete: break;
  }
  return Status::InvalidArgument("bad op");
}

namespace {
Change Base(const TableDef& t, const ColumnDef& col, const std::string& row, Op op, HybridClock* clock) {
  Change c;
  c.table = t.name;
  c.row = row;
  c.column = col.name;
  c.op = op;
  c.stamp = {clock->Now(), clock->node()};
  return c;
}
}  // namespace

Change MakeIncrement(const TableDef& t, const ColumnDef& col, const FieldState& cur,
                     const std::string& row, double delta, HybridClock* clock) {
  Change c = Base(t, col, row, Op::kIncrement, clock);
  json mine = json::array({0, 0});
  std::string key = ToHex(clock->node());
  if (cur.crdt.is_object() && cur.crdt.contains(key)) mine = cur.crdt[key];
  int slot = delta >= 0 ? 0 : 1;
  double mag = std::fabs(delta);
  if (col.type == ColumnType::kInteger)
    mine[slot] = mine[slot].get<int64_t>() + static_cast<int64_t>(std::llround(mag));
  else
    mine[slot] = mine[slot].get<double>() + mag;
  c.value = mine;
  return c;
}

Change MakeSetMember(const TableDef& t, const ColumnDef& col, const FieldState& cur,
                     const std::string& row, const std::string& member, bool add,
                     HybridClock* clock) {
  Change c = Base(t, col, row, add ? Op::kAdd : Op::kRemove, clock);
  c.value = member;
  if (!add && cur.crdt.is_object() && cur.crdt.contains(member))
    VersionVectorFromJson(cur.crdt[member]["a"], &c.ctx);
  return c;
}

Status MakeLocalChanges(const TableDef& t, const ColumnDef& col, const FieldState& cur,
                        const std::string& row, const json& value, HybridClock* clock,
                        std::vector<Change>* out) {
  Status st = Schema::CheckValue(t, col, value);
  if (!st.ok()) return st;
  switch (col.merge) {
    case MergePolicy::kLww:
    case MergePolicy::kState: {
      if (cur.present && cur.value == value) return Status::OK();
      if (col.merge == MergePolicy::kState && cur.present && cur.value.is_string()) {
        int from = col.Rank(cur.value.get<std::string>());
        int to = value.is_string() ? col.Rank(value.get<std::string>()) : -1;
        if (to < from)
          return Status::InvalidArgument(t.name + "." + col.name + ": state moves forward only ('" +
                                         cur.value.get<std::string>() + "' is past '" +
                                         (value.is_string() ? value.get<std::string>() : "null") + "')");
      }
      Change c = Base(t, col, row, Op::kSet, clock);
      c.value = value;
      c.base = cur.present ? cur.stamp.hlc : 0;
      out->push_back(std::move(c));
      return Status::OK();
    }
    case MergePolicy::kMv: {
      if (cur.present && !IsConflicted(col, cur) && cur.value == value) return Status::OK();
      Change c = Base(t, col, row, Op::kSet, clock);
      c.value = value;
      c.ctx = MvContext(MvEntries(cur));
      out->push_back(std::move(c));
      return Status::OK();
    }
    case MergePolicy::kCounter: {
      double now = cur.present ? cur.value.get<double>() : 0.0;
      double delta = value.get<double>() - now;
      if (delta != 0) out->push_back(MakeIncrement(t, col, cur, row, delta, clock));
      return Status::OK();
    }
    case MergePolicy::kOrSet: {
      json have = cur.present ? cur.value : json::array();
      for (const auto& m : value)
        if (std::find(have.begin(), have.end(), m) == have.end())
          out->push_back(MakeSetMember(t, col, cur, row, m.get<std::string>(), true, clock));
      for (const auto& m : have)
        if (std::find(value.begin(), value.end(), m) == value.end())
          out->push_back(MakeSetMember(t, col, cur, row, m.get<std::string>(), false, clock));
      return Status::OK();
    }
  }
  return Status::OK();
}

}  // namespace fieldsync
