// The merge state of one row's fields, packed into one value: the
// `fields` BLOB of fs_row_fields (docs/storage.md section 6). One B-tree
// entry per row instead of one per field (format 1 wrote 650,000 fs_fields
// entries for a bootstrap of 67,000 rows), and since format 3 a few bytes
// per field: a column is named by its number in the file's fs_columns,
// and a stamp by its difference from the field before it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sync/merge.h"
#include "sync/status.h"

namespace fieldsync::store {

// Column name and merge state; the state's `value` is not part of the
// encoding (it lives in the schema table's column).
using FieldList = std::vector<std::pair<std::string, FieldState>>;

// The column names one table's blobs may use, each with its number: the
// file's fs_columns rows for that table. Append-only, so a blob stays
// readable whatever the schema later becomes.
class FieldNames {
 public:
  // The number of `name`, or -1 when it has none.
  int64_t Find(const std::string& name) const;
  // The name numbered `number`, or null.
  const std::string* Name(uint64_t number) const;
  // Gives `name` the next number (or returns the one it has).
  uint32_t Add(const std::string& name);
  size_t size() const { return names_.size(); }

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, uint32_t> numbers_;
};

// Appends the encoding of `fields` to *out, sorted by column name; a name
// given twice keeps its last state. Fields whose `present` is false are
// left out; no present field gives no bytes. InvalidArgument, with *out
// unchanged, for a name `names` does not number.
Status EncodeRowFields(const FieldList& fields, const FieldNames& names, std::string* out);

// Decodes what EncodeRowFields wrote, in name order, each field present
// with a null value. Corruption (and *out cleared) for anything else: a
// truncated entry, a varint over 64 bits, a column number `names` does not
// hold, names out of order, an unknown flag, policy state that is not JSON.
// (It reads, without complaint, a few forms the encoder never writes: a
// node flag for the same node, a base flag for base 0.)
Status DecodeRowFields(std::string_view blob, const FieldNames& names, FieldList* out);

// Format 2's blob (names and stamps written out in full), read only to
// convert a format-2 file; the same rules and errors otherwise.
Status DecodeRowFieldsV2(std::string_view blob, FieldList* out);

}  // namespace fieldsync::store
