// The snippets of docs/aggregates.md, compiled and run, so the guide cannot drift from the API.
#include "bank/bank_aggregate.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "leftfold/aggregate.h"
#include "leftfold/testing/aggregate_fixture.h"

namespace docs_example {
namespace {

leftfold::Aggregate<bank::v1::Account> AccountAggregate() {
  return leftfold::Aggregate<bank::v1::Account>("bank.account")  // names the topics
      .Version(1)  // bump when an Apply changes meaning: older snapshots are then rebuilt
      .Decide<bank::v1::Withdraw>(
          [](const bank::v1::Account& state, const bank::v1::Withdraw& cmd, leftfold::Emit& emit) {
            if (state.balance() < cmd.amount()) {
              return absl::FailedPreconditionError("insufficient funds");
            }
            bank::v1::Withdrawn withdrawn;
            withdrawn.set_amount(cmd.amount());
            emit(withdrawn);
            return absl::OkStatus();
          })
      .Apply<bank::v1::Withdrawn>([](bank::v1::Account& state, const bank::v1::Withdrawn& e) {
        state.set_balance(state.balance() - e.amount());
      });
}

TEST(Account, Withdraw) {
  leftfold::testing::AggregateFixture f(bank::AccountAggregate());  // the full example
  bank::v1::AccountOpened opened;
  opened.set_owner("ada");
  opened.set_initial_deposit(10);
  bank::v1::Withdraw withdraw;
  withdraw.set_amount(4);
  bank::v1::Withdrawn withdrawn;
  withdrawn.set_amount(4);

  f.Given(opened).When(withdraw).ThenEmits(withdrawn);
  withdraw.set_amount(11);
  f.Given(opened).When(withdraw).ThenRejects(absl::StatusCode::kFailedPrecondition,
                                             "insufficient funds");
}

TEST(Account, BuildValidates) {
  absl::StatusOr<leftfold::AggregateDefinition> def = AccountAggregate().Build();
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->type(), "bank.account");
  bank::v1::Withdraw withdraw;
  withdraw.set_amount(4);
  leftfold::testing::AggregateFixture(AccountAggregate())
      .Given()
      .When(withdraw)
      .ThenRejects(absl::StatusCode::kFailedPrecondition, "insufficient funds");
}

}  // namespace
}  // namespace docs_example
