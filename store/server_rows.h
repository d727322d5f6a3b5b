// Helpers the ServerStore's files share (server_store.cc, server_scope.cc,
// server_workflow.cc); not part of the store's interface.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "store/database.h"

namespace fieldsync::store::internal {

// An SQL identifier in double quotes (names come from the validated schema).
inline std::string Quote(const std::string& ident) { return "\"" + ident + "\""; }

// Values a push sets for some columns of its rows: (table, row) -> column -> value.
using RowHints = std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>>;

// One column of a row as text: the push's value for it in `hints`, else the
// server's materialized value (null counts as absent).
Status ValueOf(Database& db, const RowHints& hints, const std::string& table, const std::string& row,
               const std::string& column, std::string* value, bool* found);

}  // namespace fieldsync::store::internal
