// micro_bench: the hot paths one at a time (Google Benchmark), to see where
// a workload's time goes before optimising it:
//   - an HLC tick,
//   - merging one field change (lww, orset add),
//   - encoding and decoding a push of 500 store-check-line changes (JSON and
//     MessagePack, each zstd-compressed when it pays),
//   - applying 1,000 changes to a device's SQLite replica in one transaction,
//   - a server accepting a push of 500 changes (validation, log, merge, commit
//     with fsync): the server's ingest path,
//   - one page of a W1 bootstrap (500 rows of a rep's territory), step by
//     step: the server reading it from its store, encoding it as blocks in
//     a zstd MessagePack frame, the device decoding that frame and
//     installing the rows in its replica.
//
//   build/fieldsync_micro_bench [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "store/replica_store.h"
#include "store/server_store.h"
#include "sync/hlc.h"
#include "sync/merge.h"
#include "sync/protocol.h"

namespace fieldsync::bench {
namespace {

const Schema& FieldSales() {
  static const Schema schema = [] {
    std::ifstream in(FIELDSYNC_DEFAULT_SCHEMA);
    std::stringstream ss;
    ss << in.rdbuf();
    Schema s;
    if (!Schema::ParseText(ss.str(), &s).ok()) std::abort();
    return s;
  }();
  return schema;
}

std::string TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "fieldsync-micro-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) std::abort();
  return tmpl;
}

// `n` changes to store check lines as a device would push them: rows of the
// W1 shape, a few fields each, stamped by one node.
std::vector<Change> LineChanges(size_t n, uint64_t first_row, NodeId node, uint64_t ms) {
  static const char* kStock[] = {"short", "normal", "overstock"};
  std::vector<Change> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Change c;
    c.table = "store_check_lines";
    c.row = "line-" + std::to_string(first_row + i / 4);
    c.op = Op::kSet;
    switch (i % 4) {
      case 0: c.column = "facings"; c.value = static_cast<int64_t>(i % 12); break;
      case 1: c.column = "shelf_price"; c.value = 12.5 + static_cast<double>(i % 7); break;
      case 2: c.column = "stock_status"; c.value = kStock[i % 3]; break;
      default: c.column = "on_shelf"; c.value = i % 2 == 0; break;
    }
    c.stamp = {MakeHlc(ms, static_cast<uint32_t>(i + 1)), node};
    out.push_back(std::move(c));
  }
  return out;
}

json PushMessage(const std::vector<Change>& changes) {
  json arr = json::array();
  for (const auto& c : changes) arr.push_back(ChangeToJson(c));
  return {{"type", msg::kPush}, {"batch", 1}, {"changes", std::move(arr)}};
}

void BM_HlcTick(benchmark::State& state) {
  HybridClock clock(0x1234);
  for (auto _ : state) benchmark::DoNotOptimize(clock.Now());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HlcTick);

void BM_MergeLwwField(benchmark::State& state) {
  const ColumnDef& col = *FieldSales().Find("accounts")->Find("phone");
  FieldState cur;
  cur.present = true;
  cur.value = "021-6400-0000";
  cur.stamp = {MakeHlc(1000, 1), 1};
  Change c;
  c.table = "accounts";
  c.row = "acc-1";
  c.column = "phone";
  c.value = "021-6400-0001";
  c.stamp = {MakeHlc(2000, 1), 2};
  c.base = cur.stamp.hlc;
  for (auto _ : state) benchmark::DoNotOptimize(MergeField(col, cur, c));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MergeLwwField);

void BM_MergeOrSetAdd(benchmark::State& state) {
  const ColumnDef& col = *FieldSales().Find("store_checks")->Find("pop_materials");
  FieldState cur;
  Change add;
  add.table = "store_checks";
  add.row = "sc-1";
  add.column = "pop_materials";
  add.op = Op::kAdd;
  for (int i = 0; i < 8; ++i) {  // a field that already holds 8 members
    add.value = "poster-" + std::to_string(i);
    add.stamp = {MakeHlc(1000, static_cast<uint32_t>(i + 1)), 1};
    cur = MergeField(col, cur, add).state;
  }
  add.value = "shelf-talker";
  add.stamp = {MakeHlc(2000, 1), 2};
  for (auto _ : state) benchmark::DoNotOptimize(MergeField(col, cur, add));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MergeOrSetAdd);

// A push of 500 store check line edits from the Changes the outbox gives:
// second argument 0 builds the JSON tree (ChangeToJson, EncodeFrame), as the
// SDK did before 2026-12-07; 1 writes the frame straight from the Changes
// (EncodeChangesFrame), the same bytes.
void BM_EncodePush(benchmark::State& state) {
  Encoding enc = state.range(0) == 0 ? Encoding::kJson : Encoding::kMsgPack;
  const bool direct = state.range(1) == 1;
  std::vector<Change> changes = LineChanges(500, 0, 7, 1'700'000'000'000);
  size_t bytes = 0, payload = 0;
  for (auto _ : state) {
    std::string frame = direct ? EncodeChangesFrame({{"type", msg::kPush}, {"batch", 1}}, changes, enc, true, &payload)
                               : EncodeFrame(PushMessage(changes), enc, true, &payload);
    bytes = frame.size();
    benchmark::DoNotOptimize(frame);
  }
  state.SetItemsProcessed(state.iterations() * 500);
  state.counters["frame_bytes"] = static_cast<double>(bytes);
  state.counters["payload_bytes"] = static_cast<double>(payload);
  state.SetLabel(std::string(enc == Encoding::kJson ? "json+zstd" : "msgpack+zstd") + (direct ? ", direct" : ", tree"));
}
BENCHMARK(BM_EncodePush)->Args({0, 0})->Args({1, 0})->Args({1, 1});

// The server's side of that push, into Changes: 0 through the JSON tree
// (DecodeFrame, ChangeFromJson), 1 straight from MessagePack
// (DecodeChangesFrame; a JSON text frame still goes through the tree).
void BM_DecodePush(benchmark::State& state) {
  Encoding enc = state.range(0) == 0 ? Encoding::kJson : Encoding::kMsgPack;
  const bool direct = state.range(1) == 1;
  std::string frame = EncodeFrame(PushMessage(LineChanges(500, 0, 7, 1'700'000'000'000)), enc);
  Limits limits;
  for (auto _ : state) {
    json m;
    std::vector<Change> changes;
    bool taken = false;
    if (direct) {
      if (!DecodeChangesFrame(frame, limits, &m, &changes, &taken).ok() || !taken) state.SkipWithError("decode failed");
    } else {
      if (!DecodeFrame(frame, limits, &m).ok()) state.SkipWithError("decode failed");
      for (const auto& j : m["changes"]) {
        Change c;
        if (!ChangeFromJson(j, &c).ok()) state.SkipWithError("bad change");
        changes.push_back(std::move(c));
      }
    }
    benchmark::DoNotOptimize(changes);
  }
  state.SetItemsProcessed(state.iterations() * 500);
  state.SetLabel(std::string(enc == Encoding::kJson ? "json+zstd" : "msgpack+zstd") + (direct ? ", direct" : ", tree"));
}
BENCHMARK(BM_DecodePush)->Args({0, 0})->Args({1, 0})->Args({1, 1});

// A device applying what a pull brought: 1,000 changes, one transaction.
void BM_ReplicaApply1000(benchmark::State& state) {
  std::string dir = TempDir();
  store::Store s;
  if (!s.Open(dir + "/replica.db", FieldSales()).ok()) std::abort();
  uint64_t row = 0;
  for (auto _ : state) {
    std::vector<Change> changes = LineChanges(1000, row, 9, 1'700'000'000'000 + row);
    row += 250;
    store::Transaction tx(&s.db());
    for (const auto& c : changes) {
      store::ApplyOutcome out;
      if (!s.ApplyChange(c, &out).ok()) state.SkipWithError("apply failed");
    }
    if (!tx.Commit().ok()) state.SkipWithError("commit failed");
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  s.Close();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ReplicaApply1000)->Unit(benchmark::kMillisecond);

// The server accepting one push: every check, the log, the merge and a
// durable commit.
void BM_ServerPush500(benchmark::State& state) {
  std::string dir = TempDir();
  store::ServerStore ss;
  if (!ss.Open(dir + "/server.db", FieldSales(), 0x5e4e).ok()) std::abort();
  HybridClock clock(ss.node());
  uint64_t row = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Change> changes = LineChanges(500, row, 0xd1, SystemMillis());
    row += 125;
    state.ResumeTiming();
    std::vector<store::PushResult> results;
    std::vector<Change> applied;
    if (!ss.ApplyBatch(changes, SystemMillis(), &clock, &results, &applied).ok()) state.SkipWithError("push failed");
    if (applied.size() != changes.size()) state.SkipWithError("not all applied");
  }
  state.SetItemsProcessed(state.iterations() * 500);
  ss.Close();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ServerPush500)->Unit(benchmark::kMillisecond);

// One W1 territory (at a tenth of its size: 6,700 rows) on a server, read
// back as the snapshot pages a rep's bootstrap asks for.
struct SnapshotPages {
  std::string dir;
  store::ServerStore server;
  std::string keys;  // the rep's scope, as the server passes it to ReadState
  std::vector<std::vector<RowState>> pages;
  std::vector<std::string> frames;  // each page as the server sends it
  ~SnapshotPages() {
    server.Close();
    std::filesystem::remove_all(dir);
  }
};

const size_t kPageRows = 500;

std::string PageFrame(const std::vector<RowState>& rows) {
  json reply = {{"type", msg::kSnapshot}, {"id", 1}, {"cursor", 1}, {"more", true}, {"head", 1}};
  reply["blocks"] = SnapshotBlocksToJson(rows, &FieldSales());
  return EncodeFrame(reply, Encoding::kMsgPack);
}

SnapshotPages& W1Pages() {
  // Built once, on first use; removed when the program ends.
  static std::unique_ptr<SnapshotPages> p = [] {
    auto p = std::make_unique<SnapshotPages>();
    p->dir = TempDir();
    if (!p->server.Open(p->dir + "/server.db", FieldSales(), 0x5e4e).ok()) std::abort();
    store::User rep{"rep-0", store::Role::kRep, "team-1", "Hunan", "Rep 0", true};
    if (!p->server.PutUser(rep).ok()) std::abort();
    Rows t = MakeTerritory(42, 0.1, "t0-", rep.id);
    HybridClock clock(p->server.node());
    std::vector<Change> applied;
    if (!p->server.WriteRows(t.rows, SystemMillis(), &clock, &applied).ok()) std::abort();
    store::Scope scope;
    if (!p->server.ComputeScope({rep, "dev-0"}, &scope).ok()) std::abort();
    p->keys = scope.KeysJson();
    std::string at, after;
    for (bool more = true; more;) {
      std::vector<RowState> rows;
      if (!p->server.store().ReadState(at, after, kPageRows, &rows, &more, p->keys).ok() || rows.empty()) std::abort();
      at = rows.back().table;
      after = rows.back().row;
      p->frames.push_back(PageFrame(rows));
      p->pages.push_back(std::move(rows));
    }
    return p;
  }();
  return *p;
}

void BM_SnapshotReadPage(benchmark::State& state) {
  SnapshotPages& p = W1Pages();
  size_t k = 0, rows = 0;
  for (auto _ : state) {
    std::string at = k == 0 ? "" : p.pages[k - 1].back().table, after = k == 0 ? "" : p.pages[k - 1].back().row;
    std::vector<RowState> page;
    bool more = false;
    if (!p.server.store().ReadState(at, after, kPageRows, &page, &more, p.keys).ok()) {
      state.SkipWithError("read failed");
      break;
    }
    rows += page.size();
    k = (k + 1) % p.pages.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(rows));
}
BENCHMARK(BM_SnapshotReadPage)->Unit(benchmark::kMillisecond);

void BM_SnapshotEncodePage(benchmark::State& state) {
  SnapshotPages& p = W1Pages();
  size_t k = 0, rows = 0, bytes = 0;
  for (auto _ : state) {
    bytes += PageFrame(p.pages[k]).size();
    rows += p.pages[k].size();
    k = (k + 1) % p.pages.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(rows));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_SnapshotEncodePage)->Unit(benchmark::kMillisecond);

void BM_SnapshotDecodePage(benchmark::State& state) {
  SnapshotPages& p = W1Pages();
  size_t k = 0, rows = 0;
  for (auto _ : state) {
    json reply;
    std::vector<RowState> page;
    if (!DecodeFrame(p.frames[k], Limits{}, &reply).ok() || !SnapshotBlocksFromJson(reply["blocks"], &page).ok()) {
      state.SkipWithError("decode failed");
      break;
    }
    rows += page.size();
    k = (k + 1) % p.frames.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(rows));
}
BENCHMARK(BM_SnapshotDecodePage)->Unit(benchmark::kMillisecond);

// The frame alone (zstd, MessagePack to a JSON tree), without the blocks
// to rows: what a device must do before it can ask for the next page.
void BM_SnapshotDecodeFrame(benchmark::State& state) {
  SnapshotPages& p = W1Pages();
  size_t k = 0;
  for (auto _ : state) {
    json reply;
    if (!DecodeFrame(p.frames[k], Limits{}, &reply).ok()) {
      state.SkipWithError("decode failed");
      break;
    }
    k = (k + 1) % p.frames.size();
  }
}
BENCHMARK(BM_SnapshotDecodeFrame)->Unit(benchmark::kMillisecond);

// Into a fresh replica, one transaction (with its fsync) per page, as the
// SDK installs them; the replica is emptied whenever the territory is in.
void BM_SnapshotInstallPage(benchmark::State& state) {
  SnapshotPages& p = W1Pages();
  std::string dir = TempDir();
  store::Store s;
  if (!s.Open(dir + "/replica.db", FieldSales()).ok()) std::abort();
  size_t k = 0, rows = 0;
  for (auto _ : state) {
    if (k == 0) {
      state.PauseTiming();
      if (!s.ClearState().ok()) {
        state.SkipWithError("clear failed");
        break;
      }
      state.ResumeTiming();
    }
    store::Transaction tx(&s.db());
    if (!s.InstallState(p.pages[k]).ok() || !tx.Commit().ok()) {
      state.SkipWithError("install failed");
      break;
    }
    rows += p.pages[k].size();
    k = (k + 1) % p.pages.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(rows));
  s.Close();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SnapshotInstallPage)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fieldsync::bench

BENCHMARK_MAIN();
