// The one conversion between absl::Status and grpc::Status (gRPC 1.51 ships none). Both use the
// canonical google.rpc.Code numbering, so the code maps one to one; the message is kept.
//
//   grpc::Status s = leftfold::internal::ToGrpcStatus(absl::FailedPreconditionError("no funds"));
//   absl::Status back = leftfold::internal::FromGrpcStatus(s);
//
// Pure functions; thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace leftfold::internal {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);
// A canonical code carried as an int (CommandResult.code); out-of-range values become UNKNOWN.
absl::StatusCode CanonicalCode(int code);

}  // namespace leftfold::internal
