// JSON Lines import and export for the CLI: one record per line,
// {"table": "...", "id": "...", <column>: <value>, ...}.
#pragma once

#include <istream>
#include <string>
#include <vector>

#include "sync/schema.h"
#include "sync/status.h"

namespace fieldsync::cli {

struct JsonlRecord {
  size_t line = 0;  // 1-based line number in the input
  json row;         // the whole object, "table" and "id" included
};

// Reads every line and checks it against the schema: valid JSON object,
// known table, a valid string id, known columns, values that fit their
// column. Blank lines are skipped. The first bad line fails the whole read
// with "line N: reason" and *out untouched: an import is all or nothing.
Status ReadJsonLines(std::istream& in, const Schema& schema, std::vector<JsonlRecord>* out);

// The fields of a record without "table" and "id".
json FieldsOf(const json& row);

}  // namespace fieldsync::cli
