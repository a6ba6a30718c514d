#include "common/proto_time.h"

#include "absl/time/clock.h"

namespace leftfold::internal {

google::protobuf::Timestamp ProtoTime(absl::Time time) {
  // Floor division, so times before the epoch keep 0 <= nanos < 1e9 as Timestamp requires.
  absl::Duration since_epoch = time - absl::UnixEpoch();
  absl::Duration remainder;
  int64_t seconds = absl::IDivDuration(since_epoch, absl::Seconds(1), &remainder);
  if (remainder < absl::ZeroDuration()) {
    seconds -= 1;
    remainder += absl::Seconds(1);
  }
  google::protobuf::Timestamp out;
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(remainder)));
  return out;
}

google::protobuf::Timestamp ProtoNow() { return ProtoTime(absl::Now()); }

}  // namespace leftfold::internal
