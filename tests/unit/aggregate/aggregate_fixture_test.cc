// The fixture itself: each Then... passes when it should and, when it should not, reports a
// readable failure (expected vs actual as text protos, with the field diff).
#include "leftfold/testing/aggregate_fixture.h"

#include <stdexcept>

#include "bank/bank_aggregate.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace leftfold {
namespace {

using bank::v1::Account;
using testing::AggregateFixture;

bank::v1::AccountOpened Opened(int64_t initial) {
  bank::v1::AccountOpened e;
  e.set_owner("ada");
  e.set_initial_deposit(initial);
  return e;
}
bank::v1::Withdraw WithdrawOf(int64_t amount) {
  bank::v1::Withdraw c;
  c.set_amount(amount);
  return c;
}
bank::v1::Withdrawn WithdrawnOf(int64_t amount) {
  bank::v1::Withdrawn e;
  e.set_amount(amount);
  return e;
}

TEST(AggregateFixtureTest, ThenEmitsShowsTheFieldDiff) {
  AggregateFixture f(bank::AccountAggregate());
  EXPECT_NONFATAL_FAILURE(f.Given(Opened(10)).When(WithdrawOf(5)).ThenEmits(WithdrawnOf(6)),
                          "modified: amount: 6 -> 5");
  EXPECT_NONFATAL_FAILURE(f.Given(Opened(10)).When(WithdrawOf(5)).ThenEmits(WithdrawnOf(6)),
                          "Expected events:\n  [0] bank.v1.Withdrawn { amount: 6 }\n"
                          "Actual events:\n  [0] bank.v1.Withdrawn { amount: 5 }");
}

TEST(AggregateFixtureTest, ThenEmitsCountsEvents) {
  AggregateFixture f(bank::AccountAggregate());
  EXPECT_NONFATAL_FAILURE(f.Given(Opened(10)).When(WithdrawOf(5)).ThenEmits(),
                          "expected 0 event(s), got 1");
  EXPECT_NONFATAL_FAILURE(
      f.Given(Opened(10)).When(WithdrawOf(5)).ThenEmits(WithdrawnOf(5), WithdrawnOf(5)),
      "expected 2 event(s), got 1");
}

TEST(AggregateFixtureTest, ThenEmitsNamesAWrongEventType) {
  AggregateFixture f(bank::AccountAggregate());
  EXPECT_NONFATAL_FAILURE(f.Given(Opened(10)).When(WithdrawOf(5)).ThenEmits(bank::v1::Deposited()),
                          "[0] expected bank.v1.Deposited, got bank.v1.Withdrawn { amount: 5 }");
}

TEST(AggregateFixtureTest, ThenEmitsOnARejectionSaysWhy) {
  AggregateFixture f(bank::AccountAggregate());
  EXPECT_NONFATAL_FAILURE(
      f.Given(Opened(1)).When(WithdrawOf(5)).ThenEmits(WithdrawnOf(5)),
      "Expected the command to be accepted, but it was REJECTED: FAILED_PRECONDITION: "
      "insufficient funds");
}

TEST(AggregateFixtureTest, ThenRejectsChecksCodeAndMessage) {
  AggregateFixture f(bank::AccountAggregate());
  f.Given(Opened(1)).When(WithdrawOf(5)).ThenRejects(absl::StatusCode::kFailedPrecondition);
  EXPECT_NONFATAL_FAILURE(
      f.Given(Opened(1)).When(WithdrawOf(5)).ThenRejects(absl::StatusCode::kInvalidArgument),
      "Actual rejection: FAILED_PRECONDITION: insufficient funds");
  EXPECT_NONFATAL_FAILURE(f.Given(Opened(1))
                              .When(WithdrawOf(5))
                              .ThenRejects(absl::StatusCode::kFailedPrecondition, "overdrawn"),
                          "containing \"overdrawn\"");
  EXPECT_NONFATAL_FAILURE(
      f.Given(Opened(10)).When(WithdrawOf(5)).ThenRejects(absl::StatusCode::kFailedPrecondition),
      "but it was ACCEPTED with 1 event(s)\nActual events:\n  [0] bank.v1.Withdrawn { amount: 5 }");
}

TEST(AggregateFixtureTest, ThenStateShowsTheDiff) {
  AggregateFixture f(bank::AccountAggregate());
  Account expected;
  expected.set_owner("ada");
  expected.set_balance(4);
  expected.set_open(true);
  EXPECT_NONFATAL_FAILURE(f.Given(Opened(10)).When(WithdrawOf(5)).ThenState(expected),
                          "modified: balance: 4 -> 5");
  expected.set_balance(5);
  f.Given(Opened(10)).When(WithdrawOf(5)).ThenState(expected);
}

TEST(AggregateFixtureTest, ThenFailsAndItsFailures) {
  AggregateFixture f(Aggregate<Account>("test.account")
                         .Decide<bank::v1::Withdraw>(
                             [](const Account&, const bank::v1::Withdraw&, Emit&) -> absl::Status {
                               throw std::runtime_error("kaput");
                             }));
  f.Given().When(WithdrawOf(1)).ThenFails("kaput");
  EXPECT_NONFATAL_FAILURE(f.Given().When(WithdrawOf(1)).ThenFails("other"),
                          "Actual failure: INTERNAL: decide of bank.v1.Withdraw threw: kaput");
  AggregateFixture bank(bank::AccountAggregate());
  EXPECT_NONFATAL_FAILURE(bank.Given(Opened(10)).When(WithdrawOf(5)).ThenFails(),
                          "Expected the command to FAIL");
}

TEST(AggregateFixtureTest, EmitWithoutApplyIsAFailure) {
  AggregateFixture f(
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Withdraw>([](const Account&, const bank::v1::Withdraw& w, Emit& emit) {
            emit(WithdrawnOf(w.amount()));
            return absl::OkStatus();
          }));
  EXPECT_NONFATAL_FAILURE(f.Given().When(WithdrawOf(1)).ThenEmits(WithdrawnOf(1)),
                          "has no Apply for it");
}

TEST(AggregateFixtureTest, GivenWithAnEventWithoutApplyIsReportedOnce) {
  AggregateFixture f(bank::AccountAggregate());
  EXPECT_NONFATAL_FAILURE(
      f.Given(Opened(1), bank::v1::Deposit()).When(WithdrawOf(1)).ThenEmits(WithdrawnOf(1)),
      "Given event [1] bank.v1.Deposit { } could not be applied");
}

TEST(AggregateFixtureTest, InvalidDefinitionIsReported) {
  EXPECT_NONFATAL_FAILURE(AggregateFixture f(Aggregate<Account>("")), "type name is empty");
}

TEST(AggregateFixtureTest, FailureIsReportedAtTheCallersLine) {
  AggregateFixture f(bank::AccountAggregate());
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    const int line = __LINE__ + 1;
    f.Given().When(WithdrawOf(1)).ThenRejects(absl::StatusCode::kNotFound);
    ASSERT_EQ(results.size(), 1);
    EXPECT_EQ(results.GetTestPartResult(0).line_number(), line);
    EXPECT_NE(
        std::string(results.GetTestPartResult(0).file_name()).find("aggregate_fixture_test.cc"),
        std::string::npos);
  }
}

TEST(AggregateFixtureTest, WhenEnvelopeRunsRawCommands) {
  AggregateFixture f(bank::AccountAggregate());
  v1::CommandEnvelope envelope;
  envelope.mutable_payload()->PackFrom(WithdrawOf(1));
  envelope.mutable_payload()->set_value(
      std::string("\x0a\x05"
                  "ab",
                  4));
  f.Given(Opened(10))
      .WhenEnvelope(envelope)
      .ThenRejects(absl::StatusCode::kInvalidArgument, "malformed bank.v1.Withdraw");
  v1::CommandEnvelope unknown;
  unknown.mutable_payload()->PackFrom(Opened(1));  // an event is no command
  f.Given().WhenEnvelope(unknown).ThenRejects(absl::StatusCode::kUnimplemented,
                                              "no Decide for command type bank.v1.AccountOpened");
}

}  // namespace
}  // namespace leftfold
