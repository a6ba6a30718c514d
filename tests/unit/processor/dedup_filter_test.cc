// The in-memory filter of a partition store's dedup keys: never a false negative, few false
// positives, generations dropped only once all their keys are past the window, and off for good
// past its limit.
#include "processor/dedup_filter.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace leftfold::internal::processor {
namespace {

uint64_t HashOf(absl::string_view prefix, int i) {
  return DedupFilter::Hash(absl::StrCat(prefix, i));
}

TEST(DedupFilterTest, EveryKeyAddedIsFoundAndFewOthersAre) {
  const absl::Time now = absl::Now();
  DedupFilter filter({.generation_keys = 1 << 16});
  constexpr int kKeys = 200'000;
  for (int i = 0; i < kKeys; ++i) filter.Add(HashOf("d/cmd-", i), now, now);
  EXPECT_EQ(filter.keys(), static_cast<size_t>(kKeys));
  EXPECT_GT(filter.generations(), 1u);
  for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(filter.MayContain(HashOf("d/cmd-", i))) << i;
  int false_positives = 0;
  for (int i = 0; i < kKeys; ++i) false_positives += filter.MayContain(HashOf("d/other-", i));
  // ~0.5% per generation probed; the generations here are mostly full.
  EXPECT_LT(false_positives, kKeys * 3 / 100) << false_positives;
}

TEST(DedupFilterTest, AGenerationGoesOnlyOnceAllItsKeysArePastTheWindow) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  DedupFilter filter({.window = absl::Hours(1), .generation_keys = 64});
  // Generations of 4, 8, 16, 32 and then 64 keys: 124 keys fill five of them.
  for (int i = 0; i < 124; ++i) filter.Add(HashOf("old-", i), t0, t0);
  // One key stamped later than it was written: its generation stays for the stamp's window.
  filter.Add(HashOf("late-", 0), t0 + absl::Hours(3), t0);
  EXPECT_EQ(filter.generations(), 6u);
  // Within the window: a full generation closes, nothing goes.
  for (int i = 0; i < 63; ++i) filter.Add(HashOf("mid-", i), t0, t0 + absl::Minutes(30));
  filter.Add(HashOf("mid-", 63), t0, t0 + absl::Minutes(30));
  EXPECT_EQ(filter.generations(), 7u);
  EXPECT_EQ(filter.keys(), 189u);
  // Two hours on: the first five generations go when the next one is begun; the one with the
  // late stamp stays, and so does every key in it.
  for (int i = 0; i < 64; ++i)
    filter.Add(HashOf("new-", i), t0 + absl::Hours(2), t0 + absl::Hours(2));
  EXPECT_EQ(filter.generations(), 3u);
  EXPECT_EQ(filter.keys(), 189u - 124u + 64u);
  EXPECT_TRUE(filter.MayContain(HashOf("late-", 0)));
  for (int i = 0; i < 64; ++i) {
    EXPECT_TRUE(filter.MayContain(HashOf("mid-", i))) << i;
    EXPECT_TRUE(filter.MayContain(HashOf("new-", i))) << i;
  }
  int old_found = 0;
  for (int i = 0; i < 124; ++i) old_found += filter.MayContain(HashOf("old-", i));
  EXPECT_LT(old_found, 10);
}

TEST(DedupFilterTest, PastItsLimitItTurnsOffAndAnswersMaybe) {
  const absl::Time now = absl::Now();
  DedupFilter filter({.generation_keys = 32, .max_keys = 100});
  int added = 0;
  while (filter.on() && added < 1000) filter.Add(HashOf("k-", added++), now, now);
  EXPECT_FALSE(filter.on());
  EXPECT_LE(added, 101);
  EXPECT_EQ(filter.keys(), 0u);
  EXPECT_EQ(filter.generations(), 0u);
  EXPECT_TRUE(filter.MayContain(HashOf("never-", 1)));
  filter.Add(HashOf("k-", 5000), now, now);  // ignored
  EXPECT_EQ(filter.keys(), 0u);
}

}  // namespace
}  // namespace leftfold::internal::processor
