// Runs the deterministic simulation over a range of seeds on every test run.
// FIELDSYNC_SIM_SEEDS sets how many (default 200); fieldsync_sim runs more.
#include <cstdlib>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/sim/simulation.h"

namespace fieldsync::sim {
namespace {

SimConfig Config(uint64_t seed) {
  SimConfig c;
  c.seed = seed;
  c.schema_path = std::getenv("FIELDSYNC_SCHEMA");
  const char* shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  c.dir = std::string(shm) + "/fieldsync-simtest-" + std::to_string(getpid()) + "-" + std::to_string(seed);
  // One tablet's date runs 10 minutes ahead (SimConfig::skewed_clock): its
  // changes are refused for clock skew and re-stamped.
  return c;
}

TEST(Simulation, SeedsHoldEveryInvariant) {
  const char* env = std::getenv("FIELDSYNC_SIM_SEEDS");
  uint64_t n = env ? std::strtoull(env, nullptr, 10) : 200;
  SimResult total;
  for (uint64_t s = 1; s <= n; ++s) {
    SimResult r = RunSimulation(Config(s));
    ASSERT_TRUE(r.ok()) << "seed " << s << ": " << r.failure << "\nreproduce: build/fieldsync_sim --seed " << s
                        << " --verbose";
    total.writes += r.writes;
    total.changes_checked += r.changes_checked;
    total.server_crashes += r.server_crashes;
    total.client_crashes += r.client_crashes;
    total.dropped += r.dropped;
    total.duplicated += r.duplicated;
    total.torn += r.torn;
    total.compactions += r.compactions;
    total.compacted_entries += r.compacted_entries;
    total.resyncs += r.resyncs;
  }
  // The faults really happened, and the checks really looked at writes.
  EXPECT_GT(total.writes, n * 20);
  EXPECT_EQ(total.changes_checked >= total.writes, true);
  EXPECT_GT(total.server_crashes, 0u);
  EXPECT_GT(total.client_crashes, 0u);
  EXPECT_GT(total.dropped, 0u);
  EXPECT_GT(total.duplicated, 0u);
  EXPECT_GT(total.torn, 0u);
  EXPECT_GT(total.compacted_entries, 0u);
  EXPECT_GT(total.resyncs, 0u);  // devices behind the horizon re-bootstrapped
}

TEST(Simulation, ASeedReplaysExactly) {
  SimResult a = RunSimulation(Config(7));
  SimResult b = RunSimulation(Config(7));
  ASSERT_TRUE(a.ok()) << a.failure;
  EXPECT_EQ(a.Summary(), b.Summary());
  SimResult c = RunSimulation(Config(8));
  EXPECT_NE(a.Summary(), c.Summary());
}

}  // namespace
}  // namespace fieldsync::sim
