#include "common/status_grpc.h"

#include <string>

namespace leftfold::internal {

absl::StatusCode CanonicalCode(int code) {
  // 0..16 are the canonical codes both libraries define (OK .. UNAUTHENTICATED).
  if (code < 0 || code > 16) return absl::StatusCode::kUnknown;
  return static_cast<absl::StatusCode>(code);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(CanonicalCode(static_cast<int>(status.code()))),
                      std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(CanonicalCode(static_cast<int>(status.error_code())), status.error_message());
}

}  // namespace leftfold::internal
