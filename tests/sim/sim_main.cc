// fieldsync_sim: runs the deterministic simulation over many seeds.
//   fieldsync_sim [--seeds N] [--start S] [--seed S] [--clients K] [--steps M] [--verbose]
// A failing seed prints itself; `--seed S --verbose` replays it exactly and
// keeps its files.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <unistd.h>

#include "tests/sim/simulation.h"

int main(int argc, char** argv) {
  using fieldsync::sim::SimConfig;
  uint64_t start = 1, count = 1000;
  SimConfig base;
  base.schema_path = FIELDSYNC_SCHEMA_PATH;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> uint64_t { return i + 1 < argc ? std::strtoull(argv[++i], nullptr, 10) : 0; };
    if (a == "--seeds") count = next();
    else if (a == "--start") start = next();
    else if (a == "--seed") { start = next(); count = 1; }
    else if (a == "--clients") base.clients = static_cast<int>(next());
    else if (a == "--steps") base.steps = static_cast<int>(next());
    else if (a == "--verbose") base.verbose = true;
    else if (a == "--no-skew") base.skewed_clock = false;
    else if (a == "--schema" && i + 1 < argc) base.schema_path = argv[++i];
    else {
      std::cerr << "usage: fieldsync_sim [--seeds N] [--start S] [--seed S] [--clients K] [--steps M] [--verbose]\n";
      return 2;
    }
  }
  const char* shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  fieldsync::sim::SimResult total;
  uint64_t failed = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t s = start; s < start + count; ++s) {
    SimConfig c = base;
    c.seed = s;
    c.dir = std::string(shm) + "/fieldsync-sim-" + std::to_string(getpid()) + "-" + std::to_string(s);
    auto r = fieldsync::sim::RunSimulation(c);
    if (!r.ok()) {
      ++failed;
      std::cout << "seed " << s << " FAILED: " << r.failure << "\n  reproduce: fieldsync_sim --seed " << s
                << " --verbose   (files in " << c.dir << ")\n";
    } else if (base.verbose) {
      std::cout << "seed " << s << ": " << r.Summary() << "\n";
    }
    total.writes += r.writes;
    total.changes_checked += r.changes_checked;
    total.syncs += r.syncs;
    total.failed_syncs += r.failed_syncs;
    total.frames += r.frames;
    total.dropped += r.dropped;
    total.duplicated += r.duplicated;
    total.delayed += r.delayed;
    total.client_crashes += r.client_crashes;
    total.server_crashes += r.server_crashes;
    total.torn += r.torn;
    total.partitions += r.partitions;
    total.compactions += r.compactions;
    total.compacted_entries += r.compacted_entries;
    total.resyncs += r.resyncs;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << count - failed << " of " << count << " seeds clean (" << start << ".." << start + count - 1 << ") in "
            << secs << " s: " << total.Summary() << "\n";
  return failed ? 1 : 0;
}
