#include "log/errors.h"

#include "gtest/gtest.h"

namespace leftfold::internal::log {
namespace {

TEST(ClassifyError, SplitsRetriableAbortableFatalInvalid) {
  EXPECT_EQ(ClassifyError(absl::OkStatus()), ErrorClass::kOk);
  EXPECT_EQ(ClassifyError(RetriableError("broker down")), ErrorClass::kRetriable);
  EXPECT_EQ(ClassifyError(absl::DeadlineExceededError("slow")), ErrorClass::kRetriable);
  EXPECT_EQ(ClassifyError(AbortableError("txn")), ErrorClass::kAbortable);
  EXPECT_EQ(ClassifyError(FatalError("fenced")), ErrorClass::kFatal);
  // Plain FAILED_PRECONDITION is misuse, not fencing: only the payload makes it fatal.
  EXPECT_EQ(ClassifyError(absl::FailedPreconditionError("closed")), ErrorClass::kInvalid);
  EXPECT_EQ(ClassifyError(absl::NotFoundError("no topic")), ErrorClass::kInvalid);
  EXPECT_EQ(ClassifyError(absl::InvalidArgumentError("too big")), ErrorClass::kInvalid);
}

TEST(ClassifyError, KeepsMessage) {
  EXPECT_EQ(FatalError("fenced by epoch 7").message(), "fenced by epoch 7");
}

}  // namespace
}  // namespace leftfold::internal::log
