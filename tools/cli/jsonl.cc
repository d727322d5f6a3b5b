#include "tools/cli/jsonl.h"

namespace fieldsync::cli {

namespace {
constexpr size_t kMaxLineBytes = 1u << 20;

Status CheckRecord(const Schema& schema, const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("not a JSON object");
  if (!j.contains("table") || !j["table"].is_string()) return Status::InvalidArgument("needs a string \"table\"");
  if (!j.contains("id") || !j["id"].is_string()) return Status::InvalidArgument("needs a string \"id\"");
  const std::string& table = j["table"].get_ref<const std::string&>();
  const TableDef* t = schema.Find(table);
  if (!t) return Status::NotFound("unknown table '" + table + "'");
  if (!ValidRowId(j["id"].get<std::string>())) return Status::InvalidArgument("bad id (1-64 chars of [A-Za-z0-9_-])");
  for (const auto& [k, v] : j.items()) {
    if (k == "table" || k == "id") continue;
    const ColumnDef* c = t->Find(k);
    if (!c) return Status::NotFound("unknown column '" + table + "." + k + "'");
    Status st = Schema::CheckValue(*t, *c, v);
    if (!st.ok()) return st;
  }
  return Status::OK();
}
}  // namespace

Status ReadJsonLines(std::istream& in, const Schema& schema, std::vector<JsonlRecord>* out) {
  std::vector<JsonlRecord> records;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (line.size() > kMaxLineBytes)
      return Status::Limit("line " + std::to_string(n) + ": longer than " + std::to_string(kMaxLineBytes) + " bytes");
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::InvalidArgument("line " + std::to_string(n) + ": not valid JSON");
    Status st = CheckRecord(schema, j);
    if (!st.ok()) return Status(st.code(), "line " + std::to_string(n) + ": " + st.message());
    records.push_back({n, std::move(j)});
  }
  if (in.bad()) return Status::IoError("read error after line " + std::to_string(n));
  *out = std::move(records);
  return Status::OK();
}

json FieldsOf(const json& row) {
  json f = json::object();
  for (const auto& [k, v] : row.items())
    if (k != "table" && k != "id") f[k] = v;
  return f;
}

}  // namespace fieldsync::cli
