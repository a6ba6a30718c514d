#include "gtest/gtest.h"
#include "log/log.h"

namespace leftfold::internal::log {
namespace {

// Vectors produced by the Java client's default partitioner
// (Utils.toPositive(Utils.murmur2(key)) % 1000), so both backends place keys as Java does.
TEST(PartitionForKey, MatchesJavaClientPlacement) {
  EXPECT_EQ(PartitionForKey("", 1000), 681);
  EXPECT_EQ(PartitionForKey("a", 1000), 524);
  EXPECT_EQ(PartitionForKey("ab", 1000), 434);
  EXPECT_EQ(PartitionForKey("abc", 1000), 107);
  EXPECT_EQ(PartitionForKey("123456789", 1000), 566);
  EXPECT_EQ(PartitionForKey(std::string_view("\x00 ", 2), 1000), 742);
}

TEST(PartitionForKey, StaysInRange) {
  for (int i = 0; i < 1000; ++i) {
    int32_t p = PartitionForKey(std::to_string(i), 7);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, 7);
  }
}

}  // namespace
}  // namespace leftfold::internal::log
