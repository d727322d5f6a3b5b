// libFuzzer target: the JSON form of a change, schema validation and one
// merge (sync/protocol.h, sync/merge.h).
//
// The bytes are JSON text (parsed without exceptions). The value, or each
// element when it is an array, goes through ChangeFromJson. A change it
// accepts must round-trip: ChangeToJson, ChangeFromJson again, ChangeToJson
// again gives the same dump. A change ValidateChange accepts against the
// schema must merge (MergeField) into an empty FieldState without crashing,
// and again into the result (a re-delivery). The valid changes of one input
// are also folded, in input order, into one state per (table, row, column).
//
// The schema is the file named by $FIELDSYNC_SCHEMA (tools/fuzz.sh points it
// at schema/field_sales.json); without it, kFallbackSchema below, which has
// one column of each merge policy. A FIELDSYNC_SCHEMA that does not load
// aborts at once: fuzzing against the wrong schema would prove little.
//
// Built and run by tools/fuzz.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>

#include "sync/merge.h"
#include "sync/protocol.h"
#include "sync/schema.h"

namespace {

using namespace fieldsync;

constexpr const char* kFallbackSchema = R"({"name": "fuzz", "version": 1, "tables": [
  {"name": "t", "columns": [
    {"name": "note", "type": "text", "merge": "lww", "max_length": 64},
    {"name": "memo", "type": "text", "merge": "mv"},
    {"name": "qty", "type": "integer", "merge": "counter"},
    {"name": "amount", "type": "real", "merge": "counter"},
    {"name": "tags", "type": "set", "merge": "orset"},
    {"name": "stage", "type": "enum", "merge": "state", "values": ["s0", "s1", "s2"]},
    {"name": "day", "type": "date"},
    {"name": "flag", "type": "boolean"}]}]})";

const Schema& TheSchema() {
  static const Schema* schema = [] {
    auto* s = new Schema;
    std::string text = kFallbackSchema;
    const char* path = std::getenv("FIELDSYNC_SCHEMA");
    if (path && *path) {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "fuzz_change: cannot read FIELDSYNC_SCHEMA=%s\n", path);
        std::abort();
      }
      std::ostringstream buf;
      buf << in.rdbuf();
      text = buf.str();
    }
    Status st = Schema::ParseText(text, s);
    if (!st.ok()) {
      std::fprintf(stderr, "fuzz_change: schema does not parse: %s\n", st.ToString().c_str());
      std::abort();
    }
    return s;
  }();
  return *schema;
}

[[noreturn]] void Fail(const char* what, const json& input, const std::string& a, const std::string& b) {
  std::fprintf(stderr, "fuzz_change: %s\n  input: %s\n  first:  %s\n  second: %s\n", what,
               input.dump(-1, ' ', false, json::error_handler_t::replace).c_str(), a.c_str(), b.c_str());
  std::abort();
}

void Check(const json& j, std::map<std::tuple<std::string, std::string, std::string>, FieldState>* fold) {
  Change c;
  if (!ChangeFromJson(j, &c).ok()) return;

  json once = ChangeToJson(c);
  Change c2;
  Status st = ChangeFromJson(once, &c2);
  if (!st.ok()) Fail("ChangeFromJson refuses what ChangeToJson made", j, once.dump(), st.ToString());
  std::string a = once.dump(), b = ChangeToJson(c2).dump();
  if (a != b) Fail("ChangeToJson/ChangeFromJson does not round-trip", j, a, b);

  const Schema& schema = TheSchema();
  if (!ValidateChange(schema, c).ok()) return;
  if (c.op == Op::kDelete) return;  // a row delete merges no field
  const TableDef* t = schema.Find(c.table);
  const ColumnDef* col = t ? t->Find(c.column) : nullptr;
  if (!col) Fail("ValidateChange accepted an unknown table or column", j, c.table, c.column);

  MergeResult r = MergeField(*col, FieldState{}, c);
  MergeResult again = MergeField(*col, r.state, c);
  (void)again;
  FieldState& acc = (*fold)[{c.table, c.row, c.column}];
  acc = MergeField(*col, acc, c).state;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  json doc = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  std::map<std::tuple<std::string, std::string, std::string>, FieldState> fold;
  if (doc.is_array()) {
    for (const auto& e : doc) Check(e, &fold);
  } else {
    Check(doc, &fold);
  }
  return 0;
}
