#include "log/errors.h"

#include "absl/strings/cord.h"

namespace leftfold::internal::log {
namespace {
// FAILED_PRECONDITION also means "misuse"; the payload tells a fatal one apart.
constexpr absl::string_view kFatalPayload = "leftfold.dev/log-error-fatal";
}  // namespace

absl::Status RetriableError(absl::string_view message) { return absl::UnavailableError(message); }

absl::Status AbortableError(absl::string_view message) { return absl::AbortedError(message); }

absl::Status FatalError(absl::string_view message) {
  absl::Status status = absl::FailedPreconditionError(message);
  status.SetPayload(kFatalPayload, absl::Cord("1"));
  return status;
}

ErrorClass ClassifyError(const absl::Status& status) {
  if (status.ok()) return ErrorClass::kOk;
  if (status.GetPayload(kFatalPayload).has_value()) return ErrorClass::kFatal;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
      return ErrorClass::kRetriable;
    case absl::StatusCode::kAborted:
      return ErrorClass::kAbortable;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
      return ErrorClass::kFatal;
    default:
      return ErrorClass::kInvalid;
  }
}

}  // namespace leftfold::internal::log
