#include "common/proto_time.h"

#include <google/protobuf/util/time_util.h>

#include "absl/time/clock.h"

namespace leftfold::internal {

google::protobuf::Timestamp ProtoTime(absl::Time time) {
  // Normalized by protobuf: 0 <= nanos < 1e9, also before the epoch.
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(time));
}

google::protobuf::Timestamp ProtoNow() { return ProtoTime(absl::Now()); }

}  // namespace leftfold::internal
