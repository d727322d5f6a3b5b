// The merge state of one row's fields, packed into one value: the
// `fields` BLOB of fs_row_fields (docs/storage.md section 6). One B-tree
// entry per row instead of one per field: format 1 wrote 650,000 fs_fields
// entries for a bootstrap of 67,000 rows, and eight for each new store
// check line.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sync/merge.h"
#include "sync/status.h"

namespace fieldsync::store {

// Column name and merge state; the state's `value` is not part of the
// encoding (it lives in the schema table's column).
using FieldList = std::vector<std::pair<std::string, FieldState>>;

// Appends the encoding of `fields` to *out, sorted by column name; a name
// given twice keeps its last state. Fields whose `present` is false are
// left out. InvalidArgument, with *out unchanged, for a name of 0 or more
// than 255 bytes, which the format cannot hold (schema identifiers are
// 1-63 bytes).
Status EncodeRowFields(const FieldList& fields, std::string* out);

// Decodes what EncodeRowFields wrote, in name order, each field present
// with a null value. Corruption (and *out cleared) for anything else:
// a truncated entry, a varint over 64 bits, names out of order, policy
// state that is not JSON.
Status DecodeRowFields(std::string_view blob, FieldList* out);

}  // namespace fieldsync::store
