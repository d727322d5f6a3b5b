// Deterministic simulation of FieldSync, in the spirit of FoundationDB's
// simulator: the real server logic (Hub + Conversation) and N real client
// Replicas (real SQLite files) run in ONE thread, driven by a seeded
// scheduler, over a simulated network that delays, duplicates and drops
// frames, reorders them across connections (each connection keeps its order,
// as TCP does) and partitions replicas; clients and the server are killed at
// seeded moments (between any two SQL statements, through the store's fault
// hook) and reopened from their files. Time is virtual.
//
// After the faults heal and everyone syncs, Run() checks the invariants:
//   1. every replica's dump equals the server's;
//   2. exactly once: every change a client committed is in the server's log
//      exactly once, and the log holds nothing nobody committed;
//   3. the merge rules decide the final state: deleted rows are gone,
//      counters equal the sum of committed increments, an lww field holds the
//      write with the greatest stamp, a state field the furthest state, an
//      mv field keeps the newest write among its values;
//   4. every stamp in the log lies within the clock bound of its receive time;
//   5. PRAGMA integrity_check passes on every file.
// The same seed replays the same run, byte for byte.
#pragma once

#include <cstdint>
#include <string>

namespace fieldsync::sim {

struct SimConfig {
  uint64_t seed = 1;
  int clients = 3;
  int steps = 150;
  std::string schema_path;  // schema/field_sales.json
  std::string dir;          // scratch directory, created and (on success) removed

  // Fault rates (per frame, per statement, per step).
  double p_drop = 0.03;           // a frame is lost and its connection breaks
  double p_duplicate = 0.03;      // a frame is delivered twice
  double p_delay = 0.05;          // a frame is held back 0.5-6 s, and its connection's later ones (times out)
  double p_statement_crash = 0.002;  // a process dies before an SQL statement
  double p_client_kill = 0.02;    // a client is killed while waiting for a frame
  double p_server_crash = 0.01;   // the server dies after handling a frame
  double p_compact = 0.05;        // the server compacts its log (per step)
  uint64_t device_retention_ms = 20000;  // so devices away for a while fall behind the horizon
  bool skewed_clock = true;       // one client's clock runs 10 minutes ahead
  bool verbose = false;
};

struct SimResult {
  uint64_t writes = 0;            // local writes committed
  uint64_t changes_checked = 0;   // committed changes found exactly once in the log
  uint64_t syncs = 0, failed_syncs = 0;
  uint64_t frames = 0, dropped = 0, duplicated = 0, delayed = 0;
  uint64_t client_crashes = 0, server_crashes = 0, torn = 0;  // torn: crashes mid-transaction
  uint64_t partitions = 0;
  uint64_t compactions = 0, compacted_entries = 0, resyncs = 0;  // resyncs: told to re-bootstrap
  std::string failure;            // empty when every invariant holds

  bool ok() const { return failure.empty(); }
  std::string Summary() const;
};

// Runs one seeded simulation. Never throws; a broken invariant or an
// unexpected error is reported in result.failure.
SimResult RunSimulation(const SimConfig& config);

}  // namespace fieldsync::sim
