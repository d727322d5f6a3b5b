// micro_bench: the hot paths one at a time (Google Benchmark), to see where
// a workload's time goes before optimising it:
//   - an HLC tick,
//   - merging one field change (lww, orset add),
//   - encoding and decoding a push of 500 store-check-line changes (JSON and
//     MessagePack, each zstd-compressed when it pays),
//   - applying 1,000 changes to a device's SQLite replica in one transaction,
//   - a server accepting a push of 500 changes (validation, log, merge, commit
//     with fsync): the server's ingest path.
//
//   build/fieldsync_micro_bench [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

void BM_EncodePush(benchmark::State& state) {
  Encoding enc = state.range(0) == 0 ? Encoding::kJson : Encoding::kMsgPack;
  json msg = PushMessage(LineChanges(500, 0, 7, 1'700'000'000'000));
  size_t bytes = 0, payload = 0;
  for (auto _ : state) {
    std::string frame = EncodeFrame(msg, enc, true, &payload);
    bytes = frame.size();
    benchmark::DoNotOptimize(frame);
  }
  state.SetItemsProcessed(state.iterations() * 500);
  state.counters["frame_bytes"] = static_cast<double>(bytes);
  state.counters["payload_bytes"] = static_cast<double>(payload);
  state.SetLabel(enc == Encoding::kJson ? "json+zstd" : "msgpack+zstd");
}
BENCHMARK(BM_EncodePush)->Arg(0)->Arg(1);

void BM_DecodePush(benchmark::State& state) {
  Encoding enc = state.range(0) == 0 ? Encoding::kJson : Encoding::kMsgPack;
  std::string frame = EncodeFrame(PushMessage(LineChanges(500, 0, 7, 1'700'000'000'000)), enc);
  Limits limits;
  for (auto _ : state) {
    json m;
    if (!DecodeFrame(frame, limits, &m).ok()) state.SkipWithError("decode failed");
    std::vector<Change> changes;
    for (const auto& j : m["changes"]) {
      Change c;
      if (!ChangeFromJson(j, &c).ok()) state.SkipWithError("bad change");
      changes.push_back(std::move(c));
    }
    benchmark::DoNotOptimize(changes);
  }
  state.SetItemsProcessed(state.iterations() * 500);
  state.SetLabel(enc == Encoding::kJson ? "json+zstd" : "msgpack+zstd");
}
BENCHMARK(BM_DecodePush)->Arg(0)->Arg(1);

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

}  // namespace
}  // namespace fieldsync::bench

BENCHMARK_MAIN();
