// Hybrid logical clock: monotonicity, the skew bound, persistence and the hex
// form of timestamps. Every clock here reads an injected physical source over
// a variable the test controls, so no test depends on the wall clock.
#include "sync/hlc.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>

namespace fieldsync {
namespace {

constexpr uint64_t kT0 = 1'700'000'000'000ULL;  // a plausible epoch ms

class HlcTest : public ::testing::Test {
 protected:
  uint64_t phys_ = kT0;
  HybridClock clock_{7, [this] { return phys_; }};
};

TEST_F(HlcTest, NowTracksPhysicalTimeWhenItAdvances) {
  Hlc a = clock_.Now();
  EXPECT_EQ(HlcPhysical(a), kT0);
  EXPECT_EQ(HlcLogical(a), 0u);
  phys_ += 5;
  Hlc b = clock_.Now();
  EXPECT_EQ(b, MakeHlc(kT0 + 5, 0));
  EXPECT_EQ(clock_.last(), b);
}

TEST_F(HlcTest, NowStrictlyIncreasingWhenPhysicalStandsStill) {
  Hlc prev = clock_.Now();
  for (int i = 0; i < 100; ++i) {
    Hlc h = clock_.Now();
    ASSERT_GT(h, prev) << "call " << i;
    EXPECT_EQ(HlcPhysical(h), kT0);  // the counter absorbs it
    prev = h;
  }
}

TEST_F(HlcTest, NowStrictlyIncreasingWhenPhysicalGoesBackwards) {
  phys_ = kT0 + 10'000;
  Hlc prev = clock_.Now();
  phys_ = kT0;  // the device's clock was set back ten seconds
  for (int i = 0; i < 50; ++i) {
    Hlc h = clock_.Now();
    ASSERT_GT(h, prev) << "call " << i;
    prev = h;
    phys_ -= 3;
  }
  EXPECT_GE(HlcPhysical(prev), kT0 + 10'000);
  // Once physical time passes the clock again, it follows physical time.
  phys_ = kT0 + 20'000;
  EXPECT_EQ(clock_.Now(), MakeHlc(kT0 + 20'000, 0));
}

TEST_F(HlcTest, CounterOverflowStillStrictlyIncreasing) {
  Hlc prev = clock_.Now();
  for (int i = 0; i < 65536 + 100; ++i) {
    Hlc h = clock_.Now();
    ASSERT_GT(h, prev) << "call " << i;
    prev = h;
  }
  // The carry moved into the physical part: the clock runs ahead of
  // physical time, but never repeats or goes back.
  EXPECT_GT(HlcPhysical(prev), kT0);
  phys_ += 1;
  EXPECT_GT(clock_.Now(), prev);
}

TEST_F(HlcTest, ObserveRemoteAheadWithinBound) {
  Hlc local = clock_.Now();
  Hlc remote = MakeHlc(kT0 + 60'000, 42);  // one minute ahead
  ASSERT_TRUE(clock_.WithinBound(remote));
  Status st = clock_.Observe(remote);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(clock_.last(), remote);
  Hlc next = clock_.Now();
  EXPECT_GT(next, remote);
  EXPECT_GT(next, local);
  EXPECT_GT(clock_.Now(), next);
}

TEST_F(HlcTest, ObserveRemoteBehindKeepsClock) {
  phys_ += 1000;
  Hlc local = clock_.Now();
  ASSERT_TRUE(clock_.Observe(MakeHlc(kT0, 3)).ok());
  EXPECT_EQ(clock_.last(), local);
  EXPECT_GT(clock_.Now(), local);
}

TEST_F(HlcTest, ObserveAtExactBoundAccepted) {
  Hlc remote = MakeHlc(kT0 + kDefaultMaxDriftMs, 0xFFFF);
  EXPECT_TRUE(clock_.WithinBound(remote));
  EXPECT_TRUE(clock_.Observe(remote).ok());
  EXPECT_EQ(clock_.last(), remote);
}

TEST_F(HlcTest, ObserveRefusesRemoteBeyondDrift) {
  Hlc before = clock_.Now();
  Hlc remote = MakeHlc(kT0 + kDefaultMaxDriftMs + 1, 0);
  EXPECT_FALSE(clock_.WithinBound(remote));
  Status st = clock_.Observe(remote);
  EXPECT_EQ(st.code(), Code::kClockSkew);
  EXPECT_FALSE(st.message().empty());
  EXPECT_EQ(clock_.last(), before);
  Hlc next = clock_.Now();
  EXPECT_LT(next, remote);
  EXPECT_EQ(HlcPhysical(next), kT0);
}

TEST(HlcCustomDrift, SmallMaxDriftIsHonoured) {
  uint64_t phys = kT0;
  HybridClock clock(1, [&] { return phys; }, /*max_drift_ms=*/100);
  EXPECT_EQ(clock.max_drift_ms(), 100u);
  EXPECT_TRUE(clock.Observe(MakeHlc(kT0 + 100, 0)).ok());
  Hlc last = clock.last();
  EXPECT_EQ(clock.Observe(MakeHlc(kT0 + 101, 0)).code(), Code::kClockSkew);
  EXPECT_EQ(clock.last(), last);
  // The bound moves with physical time.
  phys = kT0 + 50;
  EXPECT_TRUE(clock.Observe(MakeHlc(kT0 + 101, 0)).ok());
  EXPECT_EQ(clock.last(), MakeHlc(kT0 + 101, 0));
}

TEST_F(HlcTest, RestoreOnlyMovesForward) {
  Hlc persisted = MakeHlc(kT0 + 5000, 9);
  clock_.Restore(persisted);
  EXPECT_EQ(clock_.last(), persisted);
  EXPECT_GT(clock_.Now(), persisted);
  Hlc now = clock_.last();
  clock_.Restore(MakeHlc(kT0 - 1000, 0));  // older: ignored
  EXPECT_EQ(clock_.last(), now);
}

TEST(HlcRestore, ReopenedClockNeverRepeats) {
  uint64_t phys = kT0 + 1000;
  HybridClock first(3, [&] { return phys; });
  Hlc h1 = first.Now();
  Hlc h2 = first.Now();
  // The device restarts with its wall clock set back.
  phys = kT0;
  HybridClock reopened(3, [&] { return phys; });
  reopened.Restore(first.last());
  Hlc h3 = reopened.Now();
  EXPECT_GT(h3, h2);
  EXPECT_GT(h2, h1);
}

TEST_F(HlcTest, OffsetShiftsPhysical) {
  clock_.SetOffset(2000);
  EXPECT_EQ(clock_.offset(), 2000);
  EXPECT_EQ(clock_.Now(), MakeHlc(kT0 + 2000, 0));
  clock_.SetOffset(-5000);
  Hlc h = clock_.Now();  // physical went back: still increasing
  EXPECT_EQ(h, MakeHlc(kT0 + 2000, 1));
}

TEST(HlcPacking, PhysicalAndLogicalParts) {
  Hlc h = MakeHlc(123456789, 0xABCD);
  EXPECT_EQ(HlcPhysical(h), 123456789u);
  EXPECT_EQ(HlcLogical(h), 0xABCDu);
  EXPECT_LT(MakeHlc(10, 0xFFFF), MakeHlc(11, 0));
  EXPECT_LT(MakeHlc(10, 1), MakeHlc(10, 2));
}

TEST(StampOrder, HlcThenNode) {
  EXPECT_LT((Stamp{5, 9}), (Stamp{6, 1}));
  EXPECT_LT((Stamp{5, 1}), (Stamp{5, 2}));
  EXPECT_EQ((Stamp{5, 2}), (Stamp{5, 2}));
}

TEST(HlcHex, RoundTrip) {
  for (uint64_t v : std::initializer_list<uint64_t>{0, 1, 0xABCDEF, MakeHlc(kT0, 77), ~0ULL,
                                                   0x8000000000000000ULL}) {
    std::string s = ToHex(v);
    EXPECT_EQ(s.size(), 16u) << s;
    uint64_t back = 0xDEAD;
    ASSERT_TRUE(ParseHex(s, &back)) << s;
    EXPECT_EQ(back, v) << s;
  }
  EXPECT_EQ(ToHex(0xABCDEF), "0000000000abcdef");
  EXPECT_EQ(ToHex(~0ULL), "ffffffffffffffff");
}

TEST(HlcHex, ParsesShortAndUpperCase) {
  uint64_t v = 0;
  ASSERT_TRUE(ParseHex("1", &v));
  EXPECT_EQ(v, 1u);
  ASSERT_TRUE(ParseHex("FF", &v));
  EXPECT_EQ(v, 255u);
}

TEST(HlcHex, Rejects) {
  const uint64_t kSentinel = 0x1234;
  for (const char* bad : {"", "00000000000000000", "12345678901234567", "xyz", "12g4",
                          "0x10", " 1", "1 ", "-1", "+1", "ff:ff"}) {
    uint64_t v = kSentinel;
    EXPECT_FALSE(ParseHex(bad, &v)) << "'" << bad << "'";
    EXPECT_EQ(v, kSentinel) << "'" << bad << "' wrote its output";
  }
  std::string with_nul("12\0" "3", 4);
  uint64_t v = kSentinel;
  EXPECT_FALSE(ParseHex(with_nul, &v));
}

}  // namespace
}  // namespace fieldsync
