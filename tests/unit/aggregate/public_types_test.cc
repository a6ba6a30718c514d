// The small public helpers the aggregate API uses: named id types and the status macros.
#include <string>
#include <unordered_set>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "leftfold/status_macros.h"
#include "leftfold/types.h"

namespace leftfold {
namespace {

static_assert(!std::is_convertible_v<std::string, AggregateId>, "construction must be explicit");
static_assert(!std::is_convertible_v<AggregateId, CommandId>, "distinct ids must not mix");
static_assert(!std::is_convertible_v<int64_t, Version>);

TEST(NamedTypeTest, ComparesAndHashesLikeItsValue) {
  EXPECT_EQ(AggregateId("a"), AggregateId("a"));
  EXPECT_NE(AggregateId("a"), AggregateId("b"));
  EXPECT_LT(Version(1), Version(2));
  EXPECT_EQ(Version().value(), 0);
  absl::flat_hash_set<AggregateId> ids = {AggregateId("a"), AggregateId("a"), AggregateId("b")};
  EXPECT_EQ(ids.size(), 2u);
  std::unordered_set<Version> versions = {Version(1), Version(1)};
  EXPECT_EQ(versions.size(), 1u);
}

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  LEFTFOLD_ASSIGN_OR_RETURN(int half, Half(x));
  LEFTFOLD_ASSIGN_OR_RETURN(auto quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int x) {
  LEFTFOLD_RETURN_IF_ERROR(Half(x).status());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, ReturnEarlyOnError) {
  EXPECT_EQ(Quarter(8).value_or(-1), 2);
  EXPECT_EQ(Quarter(6).status(), absl::InvalidArgumentError("odd"));
  EXPECT_EQ(Quarter(3).status(), absl::InvalidArgumentError("odd"));
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5), absl::InvalidArgumentError("odd"));
}

}  // namespace
}  // namespace leftfold
