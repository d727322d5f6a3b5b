// The fixed field-sales workloads of issue 6, generated from seeds so that
// every run (ours, and the peers' in bench/peers/) sees the same shapes.
// Rows are JSON objects {"table": t, "id": id, column: value...}, the form
// ServerStore::WriteRows takes and a WriteBatch is built from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fieldsync/replica.h"

namespace fieldsync::bench {

struct Rows {
  std::vector<json> rows;
  size_t fields = 0;  // column values: the unit of merge
};

// W1: one rep's territory. At scale 1: 1,000 SKUs, 500 accounts (22
// columns), 1,500 contacts, 2,000 visits, 2,000 store checks and 60,000
// store check lines. `prefix` keeps several territories apart on one
// server (W6); `rep` fills the accounts' assigned_rep (empty: none).
Rows MakeTerritory(uint64_t seed, double scale, const std::string& prefix = "", const std::string& rep = "",
                   bool with_skus = true);

// W2: a day's work on `accounts` (the first 8 get a visit with one store
// check of 30 lines; the 8 from `edit_from` get 3 field edits each).
Rows MakeDayOfWork(const std::string& prefix, const std::vector<std::string>& accounts, size_t edit_from,
                   const std::string& rep);

// Turns rows into a WriteBatch of puts (a device's offline edits).
WriteBatch ToBatch(const Rows& rows);

// The raw SQLite reference: the same rows into plain typed tables, one
// transaction, prepared statements, WAL. Returns seconds.
double RawSqliteInsert(const Schema& schema, const Rows& t, const std::string& path);

// zstd (level 3) of the rows as JSON Lines; *raw gets the uncompressed size.
size_t ZstdJsonlBytes(const Rows& t, size_t* raw);

}  // namespace fieldsync::bench
