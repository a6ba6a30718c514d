#include "common/proto_time.h"

#include <gtest/gtest.h>

#include "absl/time/clock.h"

namespace leftfold::internal {
namespace {

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

TEST(ProtoTime, KeepsSubSecondPrecision) {
  absl::Time t = absl::FromUnixMicros(1'764'000'123'456'789);
  google::protobuf::Timestamp p = ProtoTime(t);
  EXPECT_EQ(p.seconds(), 1'764'000'123);
  EXPECT_EQ(p.nanos(), 456'789'000);
  EXPECT_EQ(FromProto(p), t);
}

TEST(ProtoTime, TimesBeforeTheEpochKeepNanosPositive) {
  google::protobuf::Timestamp p = ProtoTime(absl::UnixEpoch() - absl::Milliseconds(1500));
  EXPECT_EQ(p.seconds(), -2);
  EXPECT_EQ(p.nanos(), 500'000'000);
}

TEST(ProtoTime, NowLiesBetweenTwoClockReadings) {
  // A clock truncated to whole seconds (protobuf's TimeUtil::GetCurrentTime) fails this unless
  // `before` falls exactly on a second.
  absl::Time before = absl::Now();
  google::protobuf::Timestamp now = ProtoNow();
  absl::Time after = absl::Now();
  EXPECT_LE(before, FromProto(now));
  EXPECT_GE(after, FromProto(now));
}

}  // namespace
}  // namespace leftfold::internal
