// sync_bench: the fixed field-sales workloads of issue 6 against the real
// server (a child process, bench/server_process.h) over loopback, with real
// replicas (W1-W3) and a load client speaking the real protocol (W4, W5),
// beside the machine's own limits for the same data.
//
//   build/fieldsync_bench [--scale F] [--reps N] [--idle N] [--w4-rate R] [--w6 N]
//                         [--dir DIR] [--markdown FILE] [--only w1,w3,w4,w6]
//                         [--smoke]
//
// W1 bootstrap: one rep's territory on the server; a fresh replica syncs it.
// W2 a day's work: 8 visits with a store check of 30 lines each and 3 field
//    edits on 8 accounts, made offline; one sync pushes them.
// W3 concurrent edits: two replicas hold 10,000 lines; each changes 3
//    random columns of every line offline; both sync until equal.
// W4 a sales force: N reps (1,000) connected at once, all pushing their W2,
//    each pulling what its scope needs.
// W5 idle connections: N devices (10,000) connected and idle in live mode.
// W6 a big server (--w6 N): N territories on one server; one rep's
//    bootstrap and day's push, against W1 and W2 on a one-territory server.
//
// Exits non-zero when a workload's data comes out wrong (a lost update, a
// rep missing what it should receive, a refused change): --smoke runs all
// of it at a tiny scale for CI. Figures are printed, never asserted.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "bench/load_client.h"
#include "bench/server_process.h"
#include "bench/workloads.h"
#include "fieldsync/replica.h"

namespace fieldsync::bench {
namespace {

using Clock = std::chrono::steady_clock;
const char* kAuthKey = "fieldsync-bench-key-0123456789abcdef0123456789";

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct Options {
  double scale = 1.0;
  int reps = 1000;
  int idle = 10000;
  double w4_rate = 0;  // W4 pushes per second; 0: all at once
  int w6 = 0;
  std::string dir = "data/bench";
  std::string markdown;
  bool smoke = false;
  std::string only;  // e.g. "w1,w4": run only these (w1 brings w2, w4 brings w5)
  bool Runs(const std::string& w) const { return only.empty() || ("," + only + ",").find("," + w + ",") != std::string::npos; }
};

// The report: one row per figure, with its limit (the machine's own, or
// the goal of issue 6) and the ratio between them.
struct Row {
  std::string workload, figure, ours, limit, ratio;
};
std::vector<Row> g_rows;
int g_failures = 0;

std::string Fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

void Add(const std::string& w, const std::string& figure, const std::string& ours, const std::string& limit = "",
         const std::string& ratio = "") {
  g_rows.push_back({w, figure, ours, limit, ratio});
  std::printf("  %-4s %-46s %16s %22s %8s\n", w.c_str(), figure.c_str(), ours.c_str(), limit.c_str(), ratio.c_str());
  std::fflush(stdout);
}

void Fail(const std::string& what) {
  std::printf("  FAILED: %s\n", what.c_str());
  ++g_failures;
}

void Check(const Status& st, const std::string& what) {
  if (!st.ok()) {
    std::cerr << "sync_bench: " << what << ": " << st.ToString() << "\n";
    std::exit(2);
  }
}

std::string Kb(double kb) { return kb >= 10240 ? Fmt("%.1f MB", kb / 1024) : Fmt("%.0f KB", kb); }
std::string Bytes(double b) {
  return b >= 1e6 ? Fmt("%.2f MB", b / 1e6) : b >= 1e4 ? Fmt("%.1f KB", b / 1e3) : Fmt("%.0f B", b);
}

SyncOptions RepSync(uint16_t port, int rep, int device) {
  SyncOptions s;
  s.url = "ws://127.0.0.1:" + std::to_string(port) + "/";
  s.request_timeout_ms = 600000;
  Check(RepToken(kAuthKey, rep, device, &s.token), "token");
  return s;
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// W1 and W2 on one server; the W1 figures are what W6 compares with.
struct Territorial {
  double bootstrap_s = 0, push_s = 0;
  int64_t bytes_down = 0, push_bytes = 0;
};

Territorial RunW1W2(const Options& o, const Schema& schema, ServerProcess& srv, const std::string& tag, bool report) {
  Territorial out;
  const std::string dir = o.dir + "/" + tag;
  std::filesystem::create_directories(dir);
  ResetPeakRss(0);
  long client_before = ProcStatusKb(0, "VmRSS");
  srv.ResetPeak();
  std::unique_ptr<Replica> rep;
  Check(Replica::Open(dir + "/w1.db", schema, &rep), "open replica");
  SyncReport r1;
  double server_cpu = srv.CpuSeconds(), client_cpu = ProcCpuSeconds(0);
  auto t0 = Clock::now();
  Check(rep->Sync(RepSync(srv.port(), 0, 0), &r1), "W1 sync");
  out.bootstrap_s = Seconds(t0, Clock::now());
  server_cpu = srv.CpuSeconds() - server_cpu;
  client_cpu = ProcCpuSeconds(0) - client_cpu;
  out.bytes_down = r1.bytes_received;
  long client_peak = ProcStatusKb(0, "VmHWM"), server_peak = srv.PeakKb();
  int64_t records = 0;
  rep->Dump([&](const json&) { ++records; });
  int64_t expected = std::stoll(srv.ready().at("records"));
  if (tag == "w1" && records != expected)
    Fail("W1 replica holds " + std::to_string(records) + " rows, the territory has " + std::to_string(expected));

  if (report) {
    Rows w1 = MakeTerritory(42, o.scale, "t0-", RepId(0), true);
    double raw_s = RawSqliteInsert(schema, w1, dir + "/raw.db");
    size_t jsonl = 0, zstd = ZstdJsonlBytes(w1, &jsonl);
    double n = static_cast<double>(w1.rows.size());
    std::printf("\nW1 territory: %zu records, %zu field values\n", w1.rows.size(), w1.fields);
    Add("W1", "server import of the territory", Fmt("%.2f s", std::stod(srv.ready().at("load_s"))),
        Fmt("%.2f s raw SQLite", raw_s), Fmt("%.1fx", std::stod(srv.ready().at("load_s")) / raw_s));
    Add("W1", "bootstrap of a fresh replica", Fmt("%.2f s", out.bootstrap_s), Fmt("%.2f s raw SQLite", raw_s),
        Fmt("%.1fx", out.bootstrap_s / raw_s));
    Add("W1", "records per second", Fmt("%.0f k/s", n / out.bootstrap_s / 1000), Fmt("%.0f k/s", n / raw_s / 1000),
        Fmt("%.1f%%", 100 * raw_s / out.bootstrap_s));
    Add("W1", "field values per second", Fmt("%.0f k/s", w1.fields / out.bootstrap_s / 1000));
    Add("W1", "CPU during bootstrap, server / client", Fmt("%.2f s", server_cpu) + " / " + Fmt("%.2f s", client_cpu));
    Add("W1", "bytes down (compressed)", Bytes(r1.bytes_received), Bytes(zstd) + " zstd JSONL",
        Fmt("%.2fx", r1.bytes_received / static_cast<double>(zstd)));
    Add("W1", "bytes down (before compression)", Bytes(r1.payload_bytes_received), Bytes(jsonl) + " JSONL",
        Fmt("%.2fx", r1.payload_bytes_received / static_cast<double>(jsonl)));
    Add("W1", "bytes up", Bytes(r1.bytes_sent));
    Add("W1", "client peak memory (RSS)", Kb(client_peak), "64 MB goal",
        Fmt("%.2fx", client_peak / 65536.0));
    Add("W1", "client memory growth", Kb(client_peak - client_before));
    Add("W1", "server peak memory during bootstrap", Kb(server_peak));
  }

  // W2: a day's work offline, then one sync.
  std::vector<std::string> accounts;
  const int n_accounts = std::max(1, static_cast<int>(500 * o.scale));  // as MakeTerritory
  for (int a = 0; a < 16; ++a) accounts.push_back("t0-acc-" + std::to_string(a % n_accounts));
  Rows day = MakeDayOfWork(tag + "-", accounts, 8, RepId(0));
  Check(rep->Apply(ToBatch(day)), "W2 edits");
  SyncReport r2;
  t0 = Clock::now();
  Check(rep->Sync(RepSync(srv.port(), 0, 0), &r2), "W2 sync");
  out.push_s = Seconds(t0, Clock::now());
  out.push_bytes = r2.bytes_sent;
  if (r2.rejected != 0) Fail("W2: " + std::to_string(r2.rejected) + " changes refused");
  if (report) {
    Add("W2", "sync of a day's work, acknowledged", Fmt("%.1f ms", out.push_s * 1000), "50 ms goal",
        Fmt("%.2fx", out.push_s / 0.05));
    Add("W2", "field changes pushed", Fmt("%.0f", static_cast<double>(r2.pushed)));
    Add("W2", "bytes up per 30-line store check", Bytes(r2.bytes_sent / 8.0), "2 KB goal",
        Fmt("%.2fx", r2.bytes_sent / 8.0 / 2000));
    Add("W2", "bytes up / down (compressed)", Bytes(r2.bytes_sent) + " / " + Bytes(r2.bytes_received));
    Add("W2", "bytes up / down (before compression)",
        Bytes(r2.payload_bytes_sent) + " / " + Bytes(r2.payload_bytes_received));
  }
  return out;
}

// W3: two devices of one rep, the same lines, 3 random columns each.
void RunW3(const Options& o, const Schema& schema, ServerProcess& srv) {
  const std::string dir = o.dir + "/w3";
  std::filesystem::create_directories(dir);
  const int lines = std::max(10, static_cast<int>(10000 * o.scale));
  std::unique_ptr<Replica> x, y;
  Check(Replica::Open(dir + "/x.db", schema, &x), "open x");
  Check(Replica::Open(dir + "/y.db", schema, &y), "open y");
  SyncOptions sx = RepSync(srv.port(), 0, 1), sy = RepSync(srv.port(), 0, 2);
  WriteBatch seed;
  seed.Put("store_checks", "w3-chk", {{"account_id", "t0-acc-1"}, {"status", "draft"}});
  for (int l = 0; l < lines; ++l)
    seed.Put("store_check_lines", "w3-" + std::to_string(l),
             {{"store_check_id", "w3-chk"}, {"facings", 1}, {"stock_qty", 1}, {"shelf_price", 1.0},
              {"promo_price", 1.0}, {"on_shelf", true}, {"stock_status", "normal"}});
  Check(x->Sync(sx), "W3 x bootstrap");
  Check(x->Apply(seed), "W3 seed");
  Check(x->Sync(sx), "W3 seed push");
  Check(y->Sync(sy), "W3 y bootstrap and pull");
  static const char* kCols[] = {"facings", "stock_qty", "shelf_price", "promo_price", "on_shelf", "stock_status"};
  auto value = [](const std::string& c, int who) -> json {
    if (c == "on_shelf") return who == 0;
    if (c == "stock_status") return who == 0 ? "short" : "overstock";
    if (c == "shelf_price" || c == "promo_price") return 2.0 + who;
    return 2 + who;
  };
  std::mt19937_64 rng(7);
  std::vector<std::map<std::string, int>> edited(lines);  // column -> bit per side
  auto edits = [&](int who) {
    WriteBatch b;
    for (int l = 0; l < lines; ++l) {
      json f = json::object();
      int first = static_cast<int>(rng() % 6);
      for (int k = 0; k < 3; ++k) {
        std::string c = kCols[(first + k * (1 + rng() % 2)) % 6];
        f[c] = value(c, who);
        edited[l][c] |= 1 << who;
      }
      b.Put("store_check_lines", "w3-" + std::to_string(l), f);
    }
    return b;
  };
  Check(x->Apply(edits(0)), "W3 x edits");
  Check(y->Apply(edits(1)), "W3 y edits");
  auto t0 = Clock::now();
  SyncReport rx, ry, rx2;
  Check(x->Sync(sx, &rx), "W3 x sync");
  auto t1 = Clock::now();
  Check(y->Sync(sy, &ry), "W3 y sync");
  auto t2 = Clock::now();
  Check(x->Sync(sx, &rx2), "W3 x sync 2");
  auto t3 = Clock::now();
  double secs = Seconds(t0, t3);
  std::ostringstream dx, dy;
  x->Dump([&](const json& l) { dx << l.dump() << "\n"; });
  y->Dump([&](const json& l) { dy << l.dump() << "\n"; });
  size_t lost = 0, single = 0, colliding = 0, bad_collision = 0;
  for (int l = 0; l < lines; ++l) {
    json row;
    Check(x->Get("store_check_lines", "w3-" + std::to_string(l), &row), "W3 read");
    for (const auto& [c, who] : edited[l]) {
      const json& got = row[c];
      if (who == 3) {
        ++colliding;
        if (got != value(c, 0) && got != value(c, 1)) ++bad_collision;
      } else {
        ++single;
        if (got != value(c, who == 1 ? 0 : 1)) ++lost;
      }
    }
  }
  bool converged = dx.str() == dy.str();
  if (!converged) Fail("W3 replicas differ after syncing");
  if (lost || bad_collision) Fail("W3 lost " + std::to_string(lost) + " updates, " + std::to_string(bad_collision) +
                                  " collisions resolved to neither value");
  std::vector<Conflict> cx, cy;
  x->Conflicts(false, &cx);
  y->Conflicts(false, &cy);
  std::printf("\nW3: %d lines, %zu single-side edits, %zu colliding\n", lines, single, colliding);
  Add("W3", "both sides synced and converged", Fmt("%.0f ms", secs * 1000), "1000 ms goal", Fmt("%.2fx", secs));
  Add("W3", "x pushes / y pushes and pulls / x pulls",
      Fmt("%.0f / ", Seconds(t0, t1) * 1000) + Fmt("%.0f / ", Seconds(t1, t2) * 1000) +
          Fmt("%.0f ms", Seconds(t2, t3) * 1000));
  Add("W3", "lost updates (non-colliding columns)", std::to_string(lost) + " of " + std::to_string(single), "0");
  Add("W3", "conflict records on x / y (colliding edits)",
      std::to_string(cx.size()) + " / " + std::to_string(cy.size()) + " (" + std::to_string(colliding) + ")");
  Add("W3", "bytes up / down, both sides (compressed)",
      Bytes(rx.bytes_sent + ry.bytes_sent + rx2.bytes_sent) + " / " +
          Bytes(rx.bytes_received + ry.bytes_received + rx2.bytes_received));
}

// The changes a device makes for `rows` (its offline outbox).
std::vector<Change> OutboxFor(const Schema& schema, const Rows& rows, uint64_t node) {
  HybridClock clock(node);
  std::vector<Change> out;
  for (const json& r : rows.rows) {
    const TableDef* t = schema.Find(r["table"].get<std::string>());
    for (const auto& [k, v] : r.items()) {
      if (k == "table" || k == "id") continue;
      Check(MakeLocalChanges(*t, *t->Find(k), FieldState{}, r["id"].get<std::string>(), v, &clock, &out), "outbox");
    }
  }
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

void RunW4W5(const Options& o, const Schema& schema, ServerProcess& srv) {
  int64_t pull_from = std::stoll(srv.ready().at("pull_from"));
  std::vector<LoadDevice> devices(o.reps);
  size_t total_changes = 0, frame_bytes = 0;
  for (int k = 0; k < o.reps; ++k) {
    std::vector<std::string> accounts;
    for (int a = 0; a < 8; ++a) accounts.push_back(ForceAccount(k, a));
    Rows day = MakeDayOfWork("f" + std::to_string(k) + "-", accounts, 0, RepId(k));
    LoadDevice& d = devices[k];
    d.node = DeviceNode(k, 0);
    Check(RepToken(kAuthKey, k, 0, &d.token), "token");
    std::vector<Change> outbox = OutboxFor(schema, day, d.node);
    d.push_changes = outbox.size();
    d.push_frame = EncodePush(outbox, &d.push_payload);
    d.pull_from = pull_from;
    total_changes += outbox.size();
    frame_bytes += d.push_frame.size();
  }
  std::printf("\nW4: %d reps, %zu field changes in all (%zu per rep), %s of push frames\n", o.reps, total_changes,
              total_changes / std::max(1, o.reps), Bytes(static_cast<double>(frame_bytes)).c_str());
  srv.ResetPeak();
  long rss_before = srv.RssKb();
  std::vector<DeviceResult> res;
  double server_cpu = srv.CpuSeconds();
  auto t0 = Clock::now();
  Check(RunSalesForce("127.0.0.1", srv.port(), schema.fingerprint(), std::move(devices), 200, o.w4_rate, &res), "W4");
  double wall = Seconds(t0, Clock::now());
  server_cpu = srv.CpuSeconds() - server_cpu;
  std::vector<double> rtt, sync, connect;
  double first_sent = 1e300, last_sent = 0, last_ack = 0;
  int64_t applied = 0, up = 0, down = 0, pup = 0, pdown = 0;
  size_t failed = 0, wrong = 0;
  for (int k = 0; k < o.reps; ++k) {
    const DeviceResult& r = res[k];
    if (!r.error.empty()) {
      if (failed++ == 0) Fail("W4 rep " + std::to_string(k) + ": " + r.error);
      continue;
    }
    // Each rep must receive exactly the one central edit of its own account.
    if (r.received != 1 || r.received_rows[0] != "accounts/" + ForceAccount(k, 0)) {
      if (wrong++ == 0)
        Fail("W4 rep " + std::to_string(k) + " received " + std::to_string(r.received) + " changes, expected 1");
    }
    rtt.push_back(r.push_rtt_ms);
    sync.push_back(r.sync_ms);
    connect.push_back(r.connect_ms);
    first_sent = std::min(first_sent, r.push_sent_at_ms);
    last_sent = std::max(last_sent, r.push_sent_at_ms);
    last_ack = std::max(last_ack, r.acked_at_ms);
    applied += r.applied;
    up += r.bytes_up;
    down += r.bytes_down;
    pup += r.payload_up;
    pdown += r.payload_down;
  }
  if (failed) Fail("W4: " + std::to_string(failed) + " reps failed");
  // Paced pushes must really have been spread over (reps - 1) / rate
  // seconds (a timer never fires early; 10% spare for rounding).
  if (o.w4_rate > 0 && !failed && o.reps > 1 && last_sent - first_sent < 0.9 * 1000 * (o.reps - 1) / o.w4_rate)
    Fail("W4: paced pushes went out over " + Fmt("%.0f ms", last_sent - first_sent) + ", not at " +
         Fmt("%.1f/s", o.w4_rate));
  if (static_cast<size_t>(applied) != total_changes && !failed)
    Fail("W4: server applied " + std::to_string(applied) + " of " + std::to_string(total_changes));
  double ingest_s = (last_ack - first_sent) / 1000;
  Add("W4", "reps connected, pushed, pulled", std::to_string(o.reps - failed) + " of " + std::to_string(o.reps));
  // All at once measures capacity (the last push waits for every other);
  // at an arrival rate the round trip is what one rep sees.
  Add("W4", "pushes", o.w4_rate > 0 ? Fmt("one every %.0f ms", 1000 / o.w4_rate) + Fmt(" (%.1f/s)", o.w4_rate)
                                    : std::string("all at once"));
  Add("W4", "wall time, connect to last pull", Fmt("%.1f s", wall));
  Add("W4", "server CPU over that time (2 cores = 2x wall)", Fmt("%.1f s", server_cpu));
  if (o.w4_rate > 0)  // the offered rate, not what the server could take
    Add("W4", "field changes per second, as offered", Fmt("%.1f k/s", applied / ingest_s / 1000));
  else
    Add("W4", "server ingest, field changes per second", Fmt("%.0f k/s", applied / ingest_s / 1000), "100 k/s goal",
        Fmt("%.2fx", applied / ingest_s / 100000));
  Add("W4", "push round trip p50 / p99", Fmt("%.0f", Percentile(rtt, 0.5)) + " / " + Fmt("%.0f ms", Percentile(rtt, 0.99)),
      "250 ms p99 goal", Fmt("%.1fx", Percentile(rtt, 0.99) / 250));
  Add("W4", "whole sync (push + pull) p50 / p99",
      Fmt("%.0f", Percentile(sync, 0.5)) + " / " + Fmt("%.0f ms", Percentile(sync, 0.99)));
  Add("W4", "connect (TCP, upgrade, hello) p50 / p99",
      Fmt("%.0f", Percentile(connect, 0.5)) + " / " + Fmt("%.0f ms", Percentile(connect, 0.99)));
  Add("W4", "bytes up / down per rep (compressed)", Bytes(up / std::max(1.0, rtt.size() * 1.0)) + " / " +
                                                      Bytes(down / std::max(1.0, rtt.size() * 1.0)));
  Add("W4", "bytes up / down per rep (before compression)", Bytes(pup / std::max(1.0, rtt.size() * 1.0)) + " / " +
                                                              Bytes(pdown / std::max(1.0, rtt.size() * 1.0)));
  Add("W4", "server peak memory", Kb(srv.PeakKb()), "before: " + Kb(rss_before));

  // W5 on the same server: idle devices in live mode.
  const int per_rep = std::max(1, (o.idle + o.reps - 1) / o.reps);
  std::vector<LoadDevice> idle;
  for (int i = 0; i < o.idle; ++i) {
    LoadDevice d;
    int k = i / per_rep, dev = 1 + i % per_rep;
    d.node = DeviceNode(k, dev);
    Check(RepToken(kAuthKey, k, dev, &d.token), "token");
    d.pull_from = std::stoll(srv.ready().at("head"));
    idle.push_back(std::move(d));
  }
  sleep(1);
  long before = srv.RssKb();
  std::string err;
  t0 = Clock::now();
  IdleFleet fleet("127.0.0.1", srv.port(), schema.fingerprint(), std::move(idle), 200);
  size_t n = fleet.Connected(&err);
  double connect_s = Seconds(t0, Clock::now());
  sleep(1);
  long after = srv.RssKb();
  if (n != static_cast<size_t>(o.idle)) Fail("W5: " + std::to_string(n) + " of " + std::to_string(o.idle) +
                                            " connected; first error: " + err);
  std::printf("\nW5: %d idle devices\n", o.idle);
  Add("W5", "idle devices connected (live mode)", std::to_string(n) + " in " + Fmt("%.1f s", connect_s));
  Add("W5", "server memory per idle connection", Kb((after - before) / std::max(1.0, n * 1.0)), "64 KB goal",
      Fmt("%.2fx", (after - before) / std::max(1.0, n * 1.0) / 64));
  Add("W5", "server memory, before / with them", Kb(before) + " / " + Kb(after));
}

void WriteMarkdown(const std::string& path, const Options& o) {
  std::ofstream out(path);
  out << "| Workload | Figure | FieldSync | Limit or goal | Ratio |\n|---|---|---|---|---|\n";
  for (const auto& r : g_rows)
    out << "| " << r.workload << " | " << r.figure << " | " << r.ours << " | " << r.limit << " | " << r.ratio << " |\n";
  out << "\nScale " << o.scale << ", " << o.reps << " reps (W4), " << o.idle << " idle devices (W5).\n";
}

int Run(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--scale") o.scale = std::stod(next());
    else if (a == "--reps") o.reps = std::stoi(next());
    else if (a == "--idle") o.idle = std::stoi(next());
    else if (a == "--w4-rate") {
      o.w4_rate = std::stod(next());
      if (!std::isfinite(o.w4_rate) || o.w4_rate < 0) {
        std::cerr << "--w4-rate: pushes per second, 0 (all at once) or more\n";
        return 2;
      }
    } else if (a == "--w6") o.w6 = std::stoi(next());
    else if (a == "--dir") o.dir = next();
    else if (a == "--markdown") o.markdown = next();
    else if (a == "--only") o.only = next();
    else if (a == "--smoke") {
      o.smoke = true;
      o.scale = 0.01;
      o.reps = 20;
      o.idle = 40;
    } else {
      std::cerr << "usage: fieldsync_bench [--scale F] [--reps N] [--idle N] [--w4-rate R] [--w6 N] [--dir DIR] [--markdown FILE] "
                   "[--only w1,w3,w4,w6] [--smoke]\n";
      return 2;
    }
  }
  if (o.w4_rate > 0 && (o.reps - 1) / o.w4_rate > 500) {
    // A rep waiting for its turn has no read pending and cannot answer
    // pings: past the server's 600 s idle limit it would be dropped.
    std::cerr << "--w4-rate: " << o.reps << " reps at " << o.w4_rate << "/s would keep the last waiting over 500 s\n";
    return 2;
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  std::error_code ec;
  std::filesystem::remove_all(o.dir, ec);
  std::filesystem::create_directories(o.dir);
  std::ifstream in(FIELDSYNC_DEFAULT_SCHEMA);
  std::stringstream ss;
  ss << in.rdbuf();
  Schema schema;
  Check(Schema::ParseText(ss.str(), &schema), "schema");
  const std::string exe = SelfExe();
  std::printf("fieldsync_bench: scale %.2f, %ld cores\n", o.scale, sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("  %-4s %-46s %16s %22s %8s\n", "", "figure", "FieldSync", "limit or goal", "ratio");

  Territorial one;
  {
    ServerProcess srv;
    Check(srv.Start(exe, {"territories", 1, o.scale, o.dir + "/server-w1", kAuthKey}), "W1 server");
    if (o.Runs("w1") || o.Runs("w6")) one = RunW1W2(o, schema, srv, "w1", o.Runs("w1"));
    if (o.Runs("w3")) RunW3(o, schema, srv);
  }
  if (o.Runs("w4")) {
    ServerProcess srv;
    Check(srv.Start(exe, {"force", o.reps, 1.0, o.dir + "/server-w4", kAuthKey}), "W4 server");
    RunW4W5(o, schema, srv);
  }
  if (o.w6 > 1 && o.Runs("w6")) {
    ServerProcess srv;
    Check(srv.Start(exe, {"territories", o.w6, o.scale, o.dir + "/server-w6", kAuthKey}), "W6 server");
    std::printf("\nW6: %d territories, %s records, loaded in %.0f s\n", o.w6, srv.ready().at("records").c_str(),
                std::stod(srv.ready().at("load_s")));
    Territorial big = RunW1W2(o, schema, srv, "w6", false);
    Add("W6", "bootstrap of one rep, big server vs one territory",
        Fmt("%.2f s", big.bootstrap_s), Fmt("%.2f s", one.bootstrap_s) + " (within 25%)",
        Fmt("%.2fx", big.bootstrap_s / one.bootstrap_s));
    Add("W6", "a day's sync, big server vs one territory", Fmt("%.1f ms", big.push_s * 1000),
        Fmt("%.1f ms", one.push_s * 1000) + " (within 25%)", Fmt("%.2fx", big.push_s / one.push_s));
    if (big.bytes_down != one.bytes_down)
      Add("W6", "bootstrap bytes, big vs one", Bytes(big.bytes_down), Bytes(one.bytes_down));
  }
  if (!o.markdown.empty()) WriteMarkdown(o.markdown, o);
  std::printf("\n%s\n", g_failures ? "sync_bench: FAILED (see above)" : "sync_bench: all workloads produced correct data");
  return g_failures ? 1 : 0;
}

}  // namespace
}  // namespace fieldsync::bench

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--serve") return fieldsync::bench::ServeMain(argc - 2, argv + 2);
  return fieldsync::bench::Run(argc, argv);
}
