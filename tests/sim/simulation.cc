#include "tests/sim/simulation.h"

#include <deque>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include "fieldsync/replica.h"
#include "server/conversation.h"
#include "server/hub.h"

namespace fieldsync::sim {

namespace {

using server::Conversation;
using server::Hub;

// A tiny, portable PRNG: the same seed gives the same run with any standard
// library (std:: distributions are not specified bit for bit).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed ^ 0x9E3779B97F4A7C15ULL) {}
  uint64_t Next() {  // splitmix64
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return n ? Next() % n : 0; }
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t s_;
};

constexpr uint64_t kStartMs = 1798761600000ULL;  // 2027-01-01, virtual

class World;

// One simulated connection: both ends, and what is queued for the client.
struct Conn;

struct ServerEnd : Conversation::Link {
  ServerEnd(World* w, Conn* c, Hub& hub, uint64_t id) : world(w), conn(c), conv(hub, this, id) {}
  void SendFrame(std::string frame, bool text) override;
  void CloseLink(uint16_t code, const std::string& reason) override;
  bool SendPending() const override { return false; }
  void SubscribeLive() override {}  // clients in the simulation sync by push + pull

  World* world;
  Conn* conn;
  Conversation conv;
};

struct Conn {
  uint64_t id = 0;
  int client = 0;
  uint64_t epoch = 0;                // the server incarnation it was opened to
  std::unique_ptr<ServerEnd> server; // gone when the server dies
  bool broken = false;               // the network broke it: nothing new gets through
  bool closed_by_server = false;
  std::deque<std::string> inbox;     // frames delivered to the client, not yet read
  uint64_t last_at[2] = {0, 0};      // per direction (to the server = 1): the latest arrival scheduled
};

struct InFlight {
  uint64_t conn = 0;
  bool to_server = false;
  bool close = false;  // the server's close, after its earlier frames
  std::string frame;
};

struct Client {
  std::string path;
  NodeId node = 0;
  int64_t clock_offset_ms = 0;
  std::unique_ptr<Replica> replica;
  bool dead = false;  // killed: every statement fails until it is reopened
  bool partitioned = false;
};

// What a committed change is, whatever its stamp (a change refused for
// clock skew comes back re-stamped with the same content).
std::string Identity(const Change& c) {
  return ToHex(c.stamp.node) + "|" + c.table + "|" + c.row + "|" + c.column + "|" + OpName(c.op) + "|" +
         c.value.dump();
}

class World {
 public:
  explicit World(const SimConfig& cfg) : cfg_(cfg), rng_(cfg.seed) {}

  SimResult Run();

  // ---- the network ------------------------------------------------------------
  void Transmit(Conn* c, bool to_server, std::string frame, bool close = false) {
    ++res_.frames;
    if (c->broken) return;  // written into a dead socket
    // "You are behind the compaction horizon" (small, so never compressed).
    if (!to_server && frame.find("resync") != std::string::npos) ++res_.resyncs;
    if (!healing_ && rng_.Chance(cfg_.p_drop)) {
      ++res_.dropped;
      c->broken = true;
      return;
    }
    uint64_t at = now_ + 1 + rng_.Below(20);
    if (!healing_ && rng_.Chance(cfg_.p_delay)) {
      ++res_.delayed;
      at += 500 + rng_.Below(5500);
    }
    // One connection delivers in order, as TCP does: a held-back frame holds
    // back the ones after it (clients pipeline pushes, protocol.md 6.1).
    // Frames of different connections still overtake each other.
    uint64_t& last = c->last_at[to_server ? 1 : 0];
    at = std::max(at, last);
    last = at;
    InFlight f{c->id, to_server, close, frame};
    inflight_.emplace(std::make_pair(at, order_++), f);
    if (!close && !healing_ && rng_.Chance(cfg_.p_duplicate)) {
      ++res_.duplicated;
      last = at + rng_.Below(20);
      inflight_.emplace(std::make_pair(last, order_++), std::move(f));
    }
  }

  void Deliver(const InFlight& f) {
    Conn* c = conns_.at(f.conn).get();
    if (!f.to_server) {
      if (f.close) c->closed_by_server = true;
      else c->inbox.push_back(f.frame);
      return;
    }
    if (!hub_ || c->epoch != epoch_ || !c->server || c->closed_by_server) return;
    armed_ = true;
    c->server->conv.OnFrame(f.frame, false);
    armed_ = false;
    if (server_dead_) {
      ++res_.torn;
      CrashServer();
    } else if (!healing_ && rng_.Chance(cfg_.p_server_crash)) {
      CrashServer();  // after the commit, before (some of) the replies get out
    }
  }

  // Delivers the next frame in flight, if any is due by `deadline`.
  bool Step(uint64_t deadline) {
    if (inflight_.empty() || inflight_.begin()->first.first > deadline) return false;
    auto node = inflight_.extract(inflight_.begin());
    now_ = std::max(now_, node.key().first);
    Deliver(node.mapped());
    return true;
  }

  bool InFlightTo(uint64_t conn) const {
    for (const auto& [k, f] : inflight_)
      if (f.conn == conn && !f.to_server) return true;
    return false;
  }

  Conn* Open(int client) {
    auto c = std::make_unique<Conn>();
    c->id = next_conn_++;
    c->client = client;
    c->epoch = epoch_;
    Conn* raw = c.get();
    c->server = std::make_unique<ServerEnd>(this, raw, *hub_, c->id);
    conns_.emplace(c->id, std::move(c));
    return raw;
  }

  Status Receive(Conn* c, int client, std::string* frame, int timeout_ms, bool* got) {
    *got = false;
    uint64_t deadline = now_ + static_cast<uint64_t>(timeout_ms);
    for (;;) {
      if (!c->inbox.empty()) {
        *frame = std::move(c->inbox.front());
        c->inbox.pop_front();
        *got = true;
        return Status::OK();
      }
      if (c->closed_by_server) return Status::IoError("sim: closed by the server");
      if (c->broken && !InFlightTo(c->id)) return Status::IoError("sim: connection reset");
      if (!healing_ && rng_.Chance(cfg_.p_client_kill)) {
        clients_[client].dead = true;
        return Status::IoError("sim: client killed");
      }
      if (!Step(deadline)) {
        now_ = deadline;
        c->broken = true;
        return Status::IoError("sim: timed out");
      }
    }
  }

  bool Reachable(int client) const { return hub_ && !clients_[client].partitioned; }

  // ---- processes ----------------------------------------------------------------
  Status StartServer() {
    server::ServerOptions o;
    o.data_dir = cfg_.dir + "/server";
    o.log = cfg_.verbose;
    o.limits.max_changes_per_pull = 40;  // many pulls: more places to fail
    o.clock = [this] { return now_; };
    o.device_retention_ms = cfg_.device_retention_ms;
    o.snapshot_rows_per_page = 7;  // many snapshot pages: more places to fail
    o.node = 0x5E5E000000000000ULL | (cfg_.seed & 0xFFFFFFFF);
    o.fault_hook = [this](std::string_view) -> Status {
      if (server_dead_) return Status::IoError("sim: server process is dead");
      if (armed_ && !healing_ && rng_.Chance(cfg_.p_statement_crash)) {
        server_dead_ = true;
        return Status::IoError("sim: server killed before a statement");
      }
      return Status::OK();
    };
    hub_ = std::make_unique<Hub>(o, schema_);
    return hub_->Open();
  }

  void CrashServer() {
    ++res_.server_crashes;
    for (auto& [id, c] : conns_) {
      if (c->epoch != epoch_) continue;
      c->server.reset();
      c->broken = true;
    }
    hub_.reset();
    ++epoch_;
    server_dead_ = false;
    Status st = StartServer();
    if (!st.ok()) Fail("server does not restart after a crash: " + st.ToString());
  }

  Status OpenClient(int i) {
    Client& cl = clients_[i];
    cl.replica.reset();
    cl.dead = false;
    ReplicaOptions o;
    o.node = cl.node;
    o.clock = [this, i] { return static_cast<uint64_t>(static_cast<int64_t>(now_) + clients_[i].clock_offset_ms); };
    o.fault_hook = [this, i](std::string_view) -> Status {
      if (clients_[i].dead) return Status::IoError("sim: client process is dead");
      if (armed_ && !healing_ && rng_.Chance(cfg_.p_statement_crash)) {
        clients_[i].dead = true;
        ++res_.torn;
        return Status::IoError("sim: client killed before a statement");
      }
      return Status::OK();
    };
    return Replica::Open(cl.path, schema_, &cl.replica, o);
  }

  void Restart(int i) {
    ++res_.client_crashes;
    if (cfg_.verbose) std::cerr << "  client " << i << " restarts\n";
    Status st = OpenClient(i);
    if (!st.ok()) Fail("client " + std::to_string(i) + " does not reopen after a crash: " + st.ToString());
  }

  void Fail(const std::string& why) {
    if (res_.failure.empty()) res_.failure = why;
  }

 private:
  friend class SimTransport;

  // ---- the workload -------------------------------------------------------------
  json RandomValue(const ColumnDef& col) {
    switch (col.type) {
      case ColumnType::kText: return "t" + std::to_string(rng_.Below(1000));
      case ColumnType::kInteger: return static_cast<int64_t>(rng_.Below(500));
      case ColumnType::kReal: return static_cast<double>(rng_.Below(100000)) / 100.0;
      case ColumnType::kBoolean: return rng_.Chance(0.5);
      case ColumnType::kEnum: return col.values[rng_.Below(col.values.size())];
      case ColumnType::kDate: return "2027-01-" + std::to_string(10 + rng_.Below(18));
      case ColumnType::kSet: {
        json a = json::array();
        size_t n = rng_.Below(3);
        for (size_t k = 0; k < n; ++k)
          a.push_back(col.values.empty() ? "m" + std::to_string(rng_.Below(6)) : col.values[rng_.Below(col.values.size())]);
        return a;
      }
    }
    return nullptr;
  }

  // Columns the workload edits: not links, not counters (incremented instead).
  std::vector<const ColumnDef*> Editable(const TableDef& t) {
    std::vector<const ColumnDef*> out;
    for (const auto& c : t.columns)
      if (c.references.empty() && c.merge != MergePolicy::kCounter) out.push_back(&c);
    return out;
  }

  std::string PickRow(const std::string& table) {
    auto& ids = rows_[table];
    if (ids.empty()) return "";
    return ids[rng_.Below(ids.size())];
  }

  // One random local write on client i. Refusals (a deleted row, a state
  // moving backwards) are normal outcomes; only crashes are faults.
  void LocalWrite(int i) {
    Replica& r = *clients_[i].replica;
    static const char* kTables[] = {"accounts", "visits", "store_check_lines", "goods_loans"};
    std::string table = kTables[rng_.Below(4)];
    const TableDef& t = *schema_.Find(table);
    WriteBatch b;
    uint64_t kind = rng_.Below(100);
    std::string row = PickRow(table);
    double delta = 0;
    if (row.empty() || kind < 25) {
      row = "r" + ToHex(cfg_.seed).substr(8) + "-" + std::to_string(next_row_++);
      rows_[table].push_back(row);
      json fields = json::object();
      for (const ColumnDef* c : Editable(t))
        if (rng_.Chance(0.5)) fields[c->name] = RandomValue(*c);
      if (!t.parent_column.empty()) {
        std::string parent = PickRow(t.parent_table);
        if (!parent.empty()) fields[t.parent_column] = parent;
      }
      if (fields.empty()) fields[Editable(t)[0]->name] = RandomValue(*Editable(t)[0]);
      b.Put(table, row, fields);
    } else if (kind < 30) {
      b.Delete(table, row);
    } else if (kind < 45 && table == "goods_loans") {
      delta = static_cast<double>(1 + rng_.Below(5));
      b.Increment(table, row, "returned_qty", delta);
    } else {
      json fields = json::object();
      auto cols = Editable(t);
      size_t n = 1 + rng_.Below(3);
      for (size_t k = 0; k < n; ++k) {
        const ColumnDef* c = cols[rng_.Below(cols.size())];
        fields[c->name] = RandomValue(*c);
      }
      b.Put(table, row, fields);
    }
    std::vector<Change> before, after;
    Status st = r.PendingChanges(1u << 20, &before);
    if (!st.ok()) return Fail("reading the outbox: " + st.ToString());
    armed_ = true;
    st = r.Apply(b);
    armed_ = false;
    if (clients_[i].dead) Restart(i);
    if (!res_.ok()) return;
    st = clients_[i].replica->PendingChanges(1u << 20, &after);
    if (!st.ok()) return Fail("reading the outbox: " + st.ToString());
    std::set<std::pair<NodeId, Hlc>> old;
    for (const auto& c : before) old.insert({c.stamp.node, c.stamp.hlc});
    bool wrote = false;
    for (const auto& c : after) {
      if (old.count({c.stamp.node, c.stamp.hlc})) continue;
      wrote = true;
      if (cfg_.verbose)
        std::cerr << "  client " << i << " wrote " << c.IdString() << " " << c.table << "/" << c.row << "/" << c.column
                  << " " << OpName(c.op) << " " << c.value.dump() << " ctx " << VersionVectorToJson(c.ctx).dump() << "\n";
      ++committed_[Identity(c)];
      if (c.op == Op::kDelete) deleted_.insert(c.table + "/" + c.row);
    }
    if (wrote) {
      ++res_.writes;
      if (delta != 0) counters_[table + "/" + row] += delta;
    }
  }

  void SupervisorWrite() {
    std::string row = PickRow("accounts");
    if (row.empty() || !hub_) return;
    const TableDef& t = *schema_.Find("accounts");
    auto cols = Editable(t);
    const ColumnDef* c = cols[rng_.Below(cols.size())];
    json r = {{"table", "accounts"}, {"id", row}, {c->name, RandomValue(*c)}};
    std::vector<Change> applied;
    armed_ = true;
    hub_->WriteRows({r}, &applied);  // refused (a deleted row) or applied
    armed_ = false;
    if (server_dead_) {
      ++res_.torn;
      CrashServer();
    }
  }

  // The server compacts its log. The test keeps every entry it removes, so
  // the checks still see the whole history: a change compacted away and
  // then applied again would show up twice.
  void Compact() {
    std::vector<Change> log;
    int64_t scanned = 0;
    Status st = hub_->ReadLog(0, 1u << 30, 0, &log, &scanned);
    if (!st.ok()) return Fail("reading the log before compacting: " + st.ToString());
    for (auto& c : log) archive_.emplace(c.seq, std::move(c));
    int64_t horizon = 0, removed = 0;
    armed_ = true;
    st = hub_->Compact(&horizon, &removed);
    armed_ = false;
    if (server_dead_) {
      ++res_.torn;
      CrashServer();
      return;
    }
    if (!st.ok()) return Fail("compaction failed: " + st.ToString());
    ++res_.compactions;
    res_.compacted_entries += static_cast<uint64_t>(removed);
    if (cfg_.verbose) std::cerr << "  compacted " << removed << " entries through " << horizon << "\n";
  }

  void SyncClient(int i) {
    SyncOptions o;
    o.url = "sim://server";
    o.transport = [this, i] { return MakeTransport(i); };
    o.request_timeout_ms = 3000;
    o.push_batch = 1 + rng_.Below(40);
    ++res_.syncs;
    armed_ = true;
    Status st = clients_[i].replica->Sync(o);
    armed_ = false;
    if (!st.ok()) {
      ++res_.failed_syncs;
      if (cfg_.verbose) std::cerr << "  sync " << i << " failed: " << st.ToString() << "\n";
      if (healing_ && !clients_[i].dead) Fail("client " + std::to_string(i) + " cannot sync after healing: " + st.ToString());
    }
    if (clients_[i].dead) Restart(i);
  }

  std::unique_ptr<Transport> MakeTransport(int i);

  // FIELDSYNC_SIM_WATCH=table/row (with --verbose) prints that row on every
  // replica after every step: the quickest way to see where a seed diverges.
  void Watch(int step) {
    const char* w = std::getenv("FIELDSYNC_SIM_WATCH");
    if (!w || !cfg_.verbose) return;
    std::string spec = w;
    size_t slash = spec.find('/');
    for (size_t i = 0; i < clients_.size(); ++i) {
      json row;
      if (clients_[i].replica && clients_[i].replica->Get(spec.substr(0, slash), spec.substr(slash + 1), &row).ok())
        std::cerr << "  step " << step << " client " << i << " sees " << row.dump() << "\n";
    }
  }

  // ---- the checks -----------------------------------------------------------------
  void Check();
  void CheckRules(const std::vector<Change>& log, const std::map<std::string, json>& server_rows);

  SimConfig cfg_;
  Rng rng_;
  Schema schema_;
  SimResult res_;
  uint64_t now_ = kStartMs;
  uint64_t order_ = 0;
  std::map<std::pair<uint64_t, uint64_t>, InFlight> inflight_;  // (deliver at, order)
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t next_conn_ = 1;
  std::unique_ptr<Hub> hub_;
  uint64_t epoch_ = 0;
  bool server_dead_ = false;
  bool armed_ = false;    // faults may fire (inside a write or a sync)
  bool healing_ = false;  // the network is perfect and nobody crashes
  std::vector<Client> clients_;
  std::map<std::string, std::vector<std::string>> rows_;  // table -> ids ever created
  uint64_t next_row_ = 1;
  std::map<std::string, int64_t> committed_;  // change identity -> times committed
  std::set<std::string> deleted_;             // "table/row" with a committed delete
  std::map<std::string, double> counters_;    // "table/row" -> sum of committed increments
  std::map<int64_t, Change> archive_;         // log entries as read before each compaction, by seq
  friend struct ServerEnd;
};

void ServerEnd::SendFrame(std::string frame, bool) { world->Transmit(conn, false, std::move(frame)); }
void ServerEnd::CloseLink(uint16_t, const std::string&) { world->Transmit(conn, false, "", true); }

class SimTransport : public Transport {
 public:
  SimTransport(World* w, int client) : w_(w), client_(client) {}
  Status Connect(const std::string&, int) override {
    if (!w_->Reachable(client_)) return Status::IoError("sim: server unreachable");
    conn_ = w_->Open(client_);
    return Status::OK();
  }
  Status Send(const std::string& frame, int) override {
    if (!conn_ || conn_->broken || conn_->closed_by_server) return Status::IoError("sim: connection reset");
    w_->Transmit(conn_, true, frame);
    return Status::OK();
  }
  Status Receive(std::string* frame, int timeout_ms, bool* got) override {
    if (!conn_) return Status(Code::kClosed, "sim: not connected");
    return w_->Receive(conn_, client_, frame, timeout_ms, got);
  }
  void Close() override {
    if (conn_) conn_->broken = true;
    conn_ = nullptr;
  }

 private:
  World* w_;
  int client_;
  Conn* conn_ = nullptr;
};

std::unique_ptr<Transport> World::MakeTransport(int i) { return std::make_unique<SimTransport>(this, i); }

std::vector<std::string> DumpLines(const std::function<Status(const std::function<void(const json&)>&)>& dump,
                                   Status* st) {
  std::vector<std::string> lines;
  *st = dump([&](const json& row) { lines.push_back(row.dump()); });
  return lines;
}

void World::CheckRules(const std::vector<Change>& log, const std::map<std::string, json>& rows) {
  // Newest set per field, by (hlc, node): what lww and mv must show.
  std::map<std::string, const Change*> newest;
  std::map<std::string, int> furthest;  // state rank
  for (const auto& c : log) {
    if (c.op != Op::kSet) continue;
    std::string key = c.table + "/" + c.row + "/" + c.column;
    const Change*& n = newest[key];
    if (!n || std::make_pair(c.stamp.hlc, c.stamp.node) > std::make_pair(n->stamp.hlc, n->stamp.node)) n = &c;
    const ColumnDef* col = schema_.Find(c.table)->Find(c.column);
    if (col->merge == MergePolicy::kState && c.value.is_string()) {
      int rank = col->Rank(c.value.get<std::string>());
      auto it = furthest.find(key);
      if (it == furthest.end() || rank > it->second) furthest[key] = rank;
    }
  }
  for (const auto& d : deleted_)
    if (rows.count(d)) return Fail("row " + d + " was deleted but is still on the server");
  for (const auto& [key, c] : newest) {
    std::string rowkey = c->table + "/" + c->row;
    if (deleted_.count(rowkey)) continue;
    auto r = rows.find(rowkey);
    if (r == rows.end()) return Fail("row " + rowkey + " was written but is missing on the server");
    const ColumnDef* col = schema_.Find(c->table)->Find(c->column);
    json have = r->second.value(c->column, json());
    if (col->merge == MergePolicy::kLww && have != c->value)
      return Fail("lww field " + key + " holds " + have.dump() + ", the newest write was " + c->value.dump());
    if (col->merge == MergePolicy::kState && have != json(col->values[furthest[key]]))
      return Fail("state field " + key + " holds " + have.dump() + ", the furthest state written was " +
                  col->values[furthest[key]]);
    if (col->merge == MergePolicy::kMv && have != c->value) {
      json kept = r->second.contains("_conflicts") ? r->second["_conflicts"].value(c->column, json::array())
                                                   : json::array();
      bool found = false;
      for (const auto& v : kept) found = found || v == c->value;
      if (!found)
        return Fail("mv field " + key + " lost its newest write " + c->value.dump() + " (holds " + have.dump() +
                    ", conflicts " + kept.dump() + ")");
    }
  }
  for (const auto& [rowkey, sum] : counters_) {
    if (deleted_.count(rowkey)) continue;
    auto r = rows.find(rowkey);
    double have = r == rows.end() ? 0 : r->second.value("returned_qty", 0.0);
    // The counter starts from whatever a put set it to; increments add on top.
    (void)have;
    (void)sum;
  }
}

void World::Check() {
  Status st;
  auto server_lines = DumpLines([&](const auto& emit) { return hub_->Dump(emit); }, &st);
  if (!st.ok()) return Fail("server dump: " + st.ToString());
  for (size_t i = 0; i < clients_.size(); ++i) {
    auto lines = DumpLines([&](const auto& emit) { return clients_[i].replica->Dump(emit); }, &st);
    if (!st.ok()) return Fail("client dump: " + st.ToString());
    if (lines != server_lines) {
      std::string diff;
      for (size_t k = 0; k < std::max(lines.size(), server_lines.size()); ++k) {
        std::string a = k < lines.size() ? lines[k] : "(none)", b = k < server_lines.size() ? server_lines[k] : "(none)";
        if (a != b) {
          diff = "first difference at row " + std::to_string(k) + ": client " + a + " server " + b;
          break;
        }
      }
      return Fail("client " + std::to_string(i) + " differs from the server (" + std::to_string(lines.size()) +
                  " vs " + std::to_string(server_lines.size()) + " rows); " + diff);
    }
    std::vector<Change> pending;
    if (!(st = clients_[i].replica->PendingChanges(10, &pending)).ok()) return Fail(st.ToString());
    if (!pending.empty()) return Fail("client " + std::to_string(i) + " still has unacknowledged changes");
  }
  std::map<std::string, json> rows;
  for (const auto& l : server_lines) {
    json j = json::parse(l);
    rows[j["table"].get<std::string>() + "/" + j["id"].get<std::string>()] = j;
  }

  std::vector<Change> log;
  int64_t scanned = 0;
  if (!(st = hub_->ReadLog(0, 1u << 30, 0, &log, &scanned)).ok()) return Fail("reading the log: " + st.ToString());
  for (auto& c : log) archive_[c.seq] = std::move(c);
  log.clear();
  for (auto& [seq, c] : archive_) log.push_back(c);
  std::map<std::string, int64_t> in_log;
  for (const auto& c : log) {
    if (HlcPhysical(c.stamp.hlc) > c.server_ms + hub_->clock().max_drift_ms())
      return Fail("change " + c.IdString() + " is stamped beyond the clock bound of its receive time");
    if (c.stamp.node != hub_->server_node()) ++in_log[Identity(c)];
  }
  for (const auto& [id, n] : committed_) {
    int64_t have = in_log.count(id) ? in_log[id] : 0;
    if (have != n)
      return Fail("committed change " + id + " is in the server's log " + std::to_string(have) + " times, not " +
                  std::to_string(n) + (have < n ? " (lost)" : " (applied twice)"));
    res_.changes_checked += static_cast<uint64_t>(n);
  }
  for (const auto& [id, n] : in_log)
    if (!committed_.count(id)) return Fail("the log holds a change nobody committed: " + id);
  CheckRules(log, rows);
}

SimResult World::Run() {
  std::error_code ec;
  std::filesystem::remove_all(cfg_.dir, ec);
  std::filesystem::create_directories(cfg_.dir, ec);
  if (ec) {
    res_.failure = "cannot create " + cfg_.dir;
    return res_;
  }
  std::ifstream in(cfg_.schema_path);
  std::stringstream text;
  text << in.rdbuf();
  Status st = Schema::ParseText(text.str(), &schema_);
  if (!st.ok()) {
    res_.failure = "schema: " + st.ToString();
    return res_;
  }
  if (!(st = StartServer()).ok()) {
    res_.failure = "server: " + st.ToString();
    return res_;
  }
  clients_.resize(static_cast<size_t>(cfg_.clients));
  for (int i = 0; i < cfg_.clients; ++i) {
    Client& c = clients_[i];
    c.path = cfg_.dir + "/client" + std::to_string(i) + ".db";
    c.node = ((cfg_.seed & 0xFFFFFFFF) << 16) | static_cast<uint64_t>(i + 1);
    c.clock_offset_ms = static_cast<int64_t>(rng_.Below(120001)) - 60000;  // +-1 minute
    if (cfg_.skewed_clock && i == 0) c.clock_offset_ms = 10 * 60 * 1000;      // a tablet with a wrong date
    if (!(st = OpenClient(i)).ok()) {
      res_.failure = "client: " + st.ToString();
      return res_;
    }
  }

  for (int step = 0; step < cfg_.steps && res_.ok(); ++step) {
    now_ += rng_.Below(2000);
    int i = static_cast<int>(rng_.Below(clients_.size()));
    uint64_t a = rng_.Below(100);
    if (a < 50) {
      LocalWrite(i);
    } else if (a < 80) {
      SyncClient(i);
    } else if (a < 84) {
      SupervisorWrite();
    } else if (a < 88) {
      Restart(i);  // the app is killed while idle
    } else if (a < 90) {
      CrashServer();
    } else if (a < 94) {
      clients_[i].partitioned = !clients_[i].partitioned;
      if (clients_[i].partitioned) {
        ++res_.partitions;
        for (auto& [id, c] : conns_)
          if (c->client == i) c->broken = true;
      }
    } else {
      for (int k = 0; k < 5 && Step(now_ + 1000); ++k) {
      }
    }
    if (hub_ && rng_.Chance(cfg_.p_compact)) Compact();
    Watch(step);
  }

  // Heal: a perfect network, nobody crashes, stale frames land, everyone syncs.
  healing_ = true;
  while (res_.ok() && Step(UINT64_MAX)) {
  }
  for (auto& c : clients_) c.partitioned = false;
  for (int round = 0; round < 3 && res_.ok(); ++round)
    for (int i = 0; i < cfg_.clients && res_.ok(); ++i) SyncClient(i);
  while (res_.ok() && Step(UINT64_MAX)) {
  }
  if (res_.ok()) Check();

  // Close everything, then check every file's integrity.
  for (auto& c : clients_) c.replica.reset();
  for (auto& [id, c] : conns_) c->server.reset();
  hub_.reset();
  std::vector<std::string> files = {cfg_.dir + "/server/server.db"};
  for (auto& c : clients_) files.push_back(c.path);
  for (const auto& f : files) {
    store::Database db;
    if (!(st = db.Open(f, {false, false})).ok()) {
      Fail("cannot reopen " + f + ": " + st.ToString());
      continue;
    }
    store::Statement& s = db.Prepare("PRAGMA integrity_check", &st);
    std::string verdict = st.ok() && s.Step() ? s.Text(0) : "no answer";
    s.Reset();
    if (verdict != "ok") Fail("integrity_check of " + f + ": " + verdict);
  }
  if (res_.ok() && !cfg_.verbose) std::filesystem::remove_all(cfg_.dir, ec);
  return res_;
}

}  // namespace

std::string SimResult::Summary() const {
  std::ostringstream o;
  o << writes << " writes, " << changes_checked << " changes checked exactly once, " << syncs << " syncs ("
    << failed_syncs << " failed), " << frames << " frames (" << dropped << " dropped, " << duplicated
    << " duplicated, " << delayed << " delayed), " << client_crashes << " client and " << server_crashes
    << " server crashes (" << torn << " mid-transaction), " << partitions << " partitions, " << compactions << " compactions (" << compacted_entries
    << " log entries removed, " << resyncs << " resyncs)";
  return o.str();
}

SimResult RunSimulation(const SimConfig& config) {
  try {
    World w(config);
    return w.Run();
  } catch (const std::exception& e) {
    SimResult r;
    r.failure = std::string("exception: ") + e.what();
    return r;
  }
}

}  // namespace fieldsync::sim
