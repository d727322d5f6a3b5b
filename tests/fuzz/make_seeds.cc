// Writes the seed corpora of the libFuzzer targets in tests/fuzz/ (checked
// in under tests/fuzz/corpus/<target>/). Not a fuzz target: tools/fuzz.sh
// does not need it; rerun it by hand when the seeds should change:
//
//   clang++ -std=c++20 -I. tests/fuzz/make_seeds.cc sync/*.cc -lzstd -o build-fuzz/make_seeds
//   build-fuzz/make_seeds tests/fuzz/corpus
//
// fuzz_frame: real frames from EncodeFrame (JSON and MessagePack, plain and
// zstd-compressed) of hello, welcome, push, changes, ack and error messages.
// fuzz_change: change JSON (one object, or an array of them) for the tables
// of schema/field_sales.json, one per op and policy, plus a few broken ones.
// fuzz_merge: program bytes (see fuzz_merge.cc) from a fixed-seed generator.
// fuzz_snapshot: snapshot blocks (JSON and MessagePack) and rows, compact,
// full and tombstone, plus a broken block.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "sync/protocol.h"

namespace {

using namespace fieldsync;
namespace fs = std::filesystem;

void Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}

Change Make(const char* table, const char* row, const char* column, Op op, json value, Hlc hlc, NodeId node) {
  Change c;
  c.table = table;
  c.row = row;
  c.column = column;
  c.op = op;
  c.value = std::move(value);
  c.stamp = {hlc, node};
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  const Hlc h0 = MakeHlc(1'700'000'000'000ULL, 0);
  const NodeId n1 = 0x3f9a1c2e7b5d4e60ULL, n2 = 0x9b2e4f7a1c3d5e08ULL;

  // ---- changes ----
  std::vector<Change> changes;
  changes.push_back(Make("accounts", "acc-1", "phone", Op::kSet, "+86 21 5555 0101", h0 + 1, n1));
  Change mv = Make("accounts", "acc-1", "notes", Op::kSet, "first visit went well", h0 + 2, n1);
  mv.ctx = {{n1, h0 + 1}, {n2, h0}};
  changes.push_back(mv);
  Change lww = Make("accounts", "acc-1", "channel", Op::kSet, "pharmacy", h0 + 3, n2);
  lww.base = h0 + 1;
  changes.push_back(lww);
  changes.push_back(Make("goods_loans", "loan-7", "returned_qty", Op::kIncrement, json::array({5, 2}), h0 + 4, n1));
  changes.push_back(Make("accounts", "acc-1", "tags", Op::kAdd, "vip", h0 + 5, n2));
  Change rem = Make("contacts", "c_9", "buying_roles", Op::kRemove, "decision_maker", h0 + 6, n1);
  rem.ctx = {{n2, h0 + 5}};
  changes.push_back(rem);
  changes.push_back(Make("orders", "ord-3", "status", Op::kSet, "submitted", h0 + 7, n2));
  changes.push_back(Make("contacts", "c_9", "birthday", Op::kSet, "1984-02-29", h0 + 8, n1));
  changes.push_back(Make("store_check_lines", "l1", "shelf_price", Op::kSet, 12.5, h0 + 9, n2));
  changes.push_back(Make("store_check_lines", "l1", "on_shelf", Op::kSet, true, h0 + 10, n2));
  changes.push_back(Make("visits", "v-1", "summary", Op::kSet, nullptr, h0 + 11, n1));
  Change del = Make("orders", "ord-3", "", Op::kDelete, nullptr, h0 + 12, n2);
  del.ctx = {{n1, h0 + 8}, {n2, h0 + 7}};
  changes.push_back(del);
  Change served = Make("accounts", "acc-2", "employees", Op::kSet, 40, h0 + 13, n1);
  served.seq = 42;
  served.server_ms = 1'700'000'000'123ULL;
  changes.push_back(served);

  const fs::path cdir = root / "fuzz_change";
  json all = json::array();
  for (size_t i = 0; i < changes.size(); ++i) {
    json j = ChangeToJson(changes[i]);
    all.push_back(j);
    Write(cdir, "change-" + std::to_string(i) + ".json", j.dump(2));
  }
  Write(cdir, "changes-all.json", all.dump());
  Write(cdir, "broken-no-stamp.json", R"({"t":"accounts","r":"acc-1","o":"set","c":"phone","v":"x"})");
  Write(cdir, "broken-bad-hex.json",
        R"({"t":"accounts","r":"acc-1","o":"set","c":"phone","v":"x","h":"zz","n":"01"})");
  Write(cdir, "counter-big.json",
        R"([{"t":"goods_loans","r":"l","o":"inc","c":"returned_qty","v":[9007199254740993,1],"h":"0000018bcfe56800","n":"0000000000000001"},)"
        R"({"t":"goods_loans","r":"l","o":"inc","c":"returned_qty","v":[3,4],"h":"0000018bcfe56801","n":"0000000000000002"}])");

  // ---- frames ----
  const fs::path fdir = root / "fuzz_frame";
  json hello = {{"type", "hello"}, {"protocol", {1}}, {"node", ToHex(n1)}, {"client", "fieldsync-sdk/0.1"},
                {"schema", "acc743b4e35a49f8"}, {"encodings", {"msgpack", "json"}}};
  json welcome = {{"type", "welcome"}, {"protocol", 1}, {"server", ToHex(n2)}, {"server_time", 1763891400123ULL},
                  {"encoding", "msgpack"}, {"head", 41}, {"schema", "acc743b4e35a49f8"}, {"schema_match", true},
                  {"limits", {{"max_frame_bytes", 4194304}, {"max_decompressed_bytes", 16777216},
                              {"max_changes_per_push", 5000}, {"max_changes_per_pull", 5000},
                              {"max_json_depth", 32}}}};
  json push = {{"type", "push"}, {"batch", 1}, {"changes", all}};
  json reply = {{"type", "changes"}, {"id", 7}, {"head", 42}, {"more", false}, {"changes", all}};
  json ack = {{"type", "ack"}, {"batch", 1}, {"applied", {changes[0].IdString()}},
              {"refused", json::array({{{"id", changes[1].IdString()}, {"code", "schema_violation"},
                                        {"message", "accounts.notes: expected text, got number"}}})}};
  json pull = {{"type", "pull"}, {"id", 2}, {"since", 0}, {"limit", 100}, {"f", -1.5e300}, {"u", "\u00e9\u4e2d"}};
  json err = ErrorMessage(Status::Protocol("change needs hex h and n"), true);
  struct Named { const char* name; const json* msg; };
  for (Named m : {Named{"hello", &hello}, Named{"welcome", &welcome}, Named{"push", &push},
                  Named{"changes", &reply}, Named{"ack", &ack}, Named{"pull", &pull}, Named{"error", &err}}) {
    Write(fdir, std::string(m.name) + "-json.bin", EncodeFrame(*m.msg, Encoding::kJson, false));
    Write(fdir, std::string(m.name) + "-msgpack.bin", EncodeFrame(*m.msg, Encoding::kMsgPack, false));
  }
  // Compressed (the payloads of push and changes are well over 256 bytes).
  Write(fdir, "push-json-zstd.bin", EncodeFrame(push, Encoding::kJson, true));
  Write(fdir, "changes-msgpack-zstd.bin", EncodeFrame(reply, Encoding::kMsgPack, true));
  Write(fdir, "hand-ping.bin", std::string(1, '\0') + R"({"type":"ping","n":[1,2.5,-3,null,true,{"a":"b"}]})");

  // ---- snapshot rows and blocks ----
  const fs::path sdir = root / "fuzz_snapshot";
  std::vector<RowState> rows;
  for (int i = 0; i < 4; ++i) {
    RowState r;
    r.table = "store_check_lines";
    r.row = "scl-" + std::to_string(i);
    FieldState f;
    f.present = true;
    f.stamp = {h0 + 10 * i, n1};
    f.value = i;
    r.fields.emplace_back("facings", f);
    f.stamp.hlc += 1;
    f.value = i % 2 ? "short" : "normal";
    r.fields.emplace_back("stock_status", f);
    f.stamp = {h0 + 10 * i + 2, i == 3 ? n2 : n1};
    f.value = "note " + std::to_string(i);
    f.crdt = json::array({{{"h", ToHex(f.stamp.hlc)}, {"n", ToHex(f.stamp.node)}, {"v", f.value}, {"x", json::object()}}});
    if (i == 2) f.crdt.push_back({{"h", ToHex(h0)}, {"n", ToHex(n2)}, {"v", "other"}, {"x", {{ToHex(n2), ToHex(h0)}}}});
    r.fields.emplace_back("competitor_note", f);
    rows.push_back(r);
  }
  RowState dead;
  dead.table = "visits";
  dead.row = "v-1";
  dead.deleted = true;
  dead.tomb_stamp = {h0 + 99, n2};
  dead.tomb_seen = {{n1, h0 + 50}, {n2, h0 + 99}};
  rows.push_back(dead);
  RowState far = rows[0];
  far.row = "scl-far";
  far.fields[1].second.stamp.hlc += uint64_t{1} << 53;
  far.fields[0].second.base = h0 - 5;
  rows.push_back(far);
  json blocks = SnapshotBlocksToJson(rows);
  Write(sdir, "blocks.json", blocks.dump());
  Write(sdir, "blocks.msgpack", [&] { auto b = json::to_msgpack(blocks); return std::string(b.begin(), b.end()); }());
  Write(sdir, "row-compact.json", RowStateToJson(rows[2], true).dump());
  Write(sdir, "row-full.json", RowStateToJson(rows[3]).dump());
  Write(sdir, "row-tombstone.json", RowStateToJson(dead, true).dump());
  Write(sdir, "broken-block-lengths.json",
        R"([{"t":"x","r":["a","b"],"c":["p"],"h":"1","e":[0,-1],"n":["1"],"v":[[1]],"m":[0]}])");

  // ---- merge programs ----
  const fs::path mdir = root / "fuzz_merge";
  std::mt19937_64 rng(0x5EED);
  for (int i = 0; i < 6; ++i) {
    std::string bytes(16 + 24 * i, '\0');
    for (char& b : bytes) b = static_cast<char>(rng() & 0xff);
    Write(mdir, "program-" + std::to_string(i) + ".bin", bytes);
  }
  // Three replicas editing in turn, each syncing from the next before its edit.
  std::string turns;
  for (int i = 0; i < 24; ++i) {
    turns.push_back(static_cast<char>(i % 3 + 3 + 96));  // sync from one other, then edit; wall += 1
    turns.push_back(static_cast<char>(i * 37));
  }
  Write(mdir, "program-turns.bin", turns);
  return 0;
}
