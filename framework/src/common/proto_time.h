// The current time as a google.protobuf.Timestamp, at the clock's full (sub-second) resolution.
//
//   *event.mutable_timestamp() = leftfold::internal::ProtoNow();
//
// Why not protobuf's own TimeUtil::GetCurrentTime: in protobuf 3.21 it reads time(nullptr), so
// every stamp (event timestamps, results' processed_at) was truncated to the whole second.
// Pure function; thread-safe.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include "absl/time/time.h"

namespace leftfold::internal {

google::protobuf::Timestamp ProtoTime(absl::Time time);
google::protobuf::Timestamp ProtoNow();

}  // namespace leftfold::internal
