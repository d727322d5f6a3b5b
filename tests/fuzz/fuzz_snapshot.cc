// libFuzzer target: what a device reads from a snapshot page, the server's
// rows (RowStateFromJson) and column-major blocks (SnapshotBlocksFromJson),
// sync/protocol.h.
//
// The bytes are read twice: as JSON text and as MessagePack (whose small
// integers decode unsigned, as on the wire), both without exceptions. An
// array goes through SnapshotBlocksFromJson, an object through
// RowStateFromJson. Whatever is accepted must round-trip exactly: the rows
// encoded as blocks and decoded again are the same rows (compared through
// their full JSON form), and so are they through the compact row form. A
// refused page must leave the output untouched.
//
// Built and run by tools/fuzz.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sync/protocol.h"

namespace {

using namespace fieldsync;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_snapshot: %s\n", what);
  std::abort();
}

// As text: json's == takes 5 for 5.0, a difference a replica would keep.
std::string Full(const std::vector<RowState>& rows) {
  json a = json::array();
  for (const auto& r : rows) a.push_back(RowStateToJson(r));
  return a.dump(-1, ' ', false, json::error_handler_t::replace);
}

void CheckRoundTrips(const std::vector<RowState>& rows) {
  std::vector<RowState> again;
  if (!SnapshotBlocksFromJson(SnapshotBlocksToJson(rows), &again).ok()) Fail("blocks of accepted rows refused");
  if (Full(again) != Full(rows)) Fail("blocks do not round-trip");
  for (const auto& r : rows) {
    RowState back;
    if (!RowStateFromJson(RowStateToJson(r, true), &back).ok()) Fail("compact row of an accepted row refused");
    if (Full({back}) != Full({r})) Fail("compact row does not round-trip");
  }
}

void One(const json& j) {
  if (j.is_discarded()) return;
  if (j.is_array()) {
    std::vector<RowState> rows(1);
    rows[0].row = "sentinel";
    if (SnapshotBlocksFromJson(j, &rows).ok()) {
      CheckRoundTrips(rows);
    } else if (rows.size() != 1 || rows[0].row != "sentinel") {
      Fail("a refused page changed the output");
    }
  } else if (j.is_object()) {
    RowState r;
    if (RowStateFromJson(j, &r).ok()) CheckRoundTrips({r});
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  One(json::parse(text, nullptr, false));
  One(json::from_msgpack(text, true, false));
  return 0;
}
