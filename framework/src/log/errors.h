// How a caller of the Log reacts to a failed call: the retriable / abortable / fatal split that
// librdkafka's transactional API has, carried on absl::Status.
//
//   absl::Status s = producer.CommitTransaction();
//   switch (ClassifyError(s)) {
//     case ErrorClass::kOk: break;
//     case ErrorClass::kRetriable: /* call again */ break;
//     case ErrorClass::kAbortable: producer.AbortTransaction(); /* rewind, redo the batch */ break;
//     case ErrorClass::kFatal: /* fenced or broken: stop this instance's work */ break;
//     case ErrorClass::kInvalid: /* bad input: report it; retrying will not help */ break;
//   }
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace leftfold::internal::log {

enum class ErrorClass {
  kOk,
  // Transient (broker unreachable, timeout): the same call may succeed if repeated.
  kRetriable,
  // The open transaction cannot commit: abort it and reprocess from the last committed offsets.
  kAbortable,
  // This producer/consumer must stop (fenced by a newer instance, or unrecoverable).
  kFatal,
  // Bad input or misuse (unknown topic, oversize record, closed client).
  kInvalid,
};

absl::Status RetriableError(absl::string_view message);  // UNAVAILABLE
absl::Status AbortableError(absl::string_view message);  // ABORTED
absl::Status FatalError(absl::string_view message);      // FAILED_PRECONDITION + fatal payload
ErrorClass ClassifyError(const absl::Status& status);

}  // namespace leftfold::internal::log
