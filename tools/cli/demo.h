// The demo behind the README's first command: a server on a loopback port
// and several reps who edit offline in conflicting ways, then sync.
#pragma once

#include <ostream>
#include <string>

#include "sync/schema.h"

namespace fieldsync::cli {

struct DemoOptions {
  std::string data_dir = "data/demo";
  int reps = 3;        // at least 2
  bool keep = false;   // keep the data directory afterwards
};

// Returns the process exit code: 0 when every replica dumps identically to
// the server and each contested field holds what the merge rules promise.
int RunDemo(const Schema& schema, const DemoOptions& opts, std::ostream& out);

// Two teams on a server with authentication: scoped bootstraps, a
// reassignment with offline work on it, a refused write. 0 when each
// tablet holds exactly its scope and nothing typed was lost.
int RunTerritoryDemo(const Schema& schema, const DemoOptions& opts, std::ostream& out);

}  // namespace fieldsync::cli
