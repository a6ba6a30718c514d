// The bank example through the given-when-then fixture: every rule of bank_aggregate.h.
#include "bank/bank_aggregate.h"

#include "gtest/gtest.h"
#include "leftfold/testing/aggregate_fixture.h"

namespace bank {
namespace {

v1::OpenAccount Open(const std::string& owner, int64_t initial) {
  v1::OpenAccount c;
  c.set_owner(owner);
  c.set_initial_deposit(initial);
  return c;
}
v1::AccountOpened Opened(const std::string& owner, int64_t initial) {
  v1::AccountOpened e;
  e.set_owner(owner);
  e.set_initial_deposit(initial);
  return e;
}
v1::Deposit DepositOf(int64_t amount, const std::string& reference = "") {
  v1::Deposit c;
  c.set_amount(amount);
  c.set_reference(reference);
  return c;
}
v1::Deposited DepositedOf(int64_t amount, const std::string& reference = "") {
  v1::Deposited e;
  e.set_amount(amount);
  e.set_reference(reference);
  return e;
}
v1::Withdraw WithdrawOf(int64_t amount) {
  v1::Withdraw c;
  c.set_amount(amount);
  return c;
}
v1::Withdrawn WithdrawnOf(int64_t amount) {
  v1::Withdrawn e;
  e.set_amount(amount);
  return e;
}
v1::Account AccountOf(const std::string& owner, int64_t balance, bool open, bool closed) {
  v1::Account a;
  a.set_owner(owner);
  a.set_balance(balance);
  a.set_open(open);
  a.set_closed(closed);
  return a;
}

class BankAccountTest : public ::testing::Test {
 protected:
  leftfold::testing::AggregateFixture f_{AccountAggregate()};
};

TEST_F(BankAccountTest, DefinitionIsValid) {
  absl::StatusOr<leftfold::AggregateDefinition> def = AccountAggregate().Build();
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->type(), "bank.account");
  EXPECT_EQ(def->version(), 1);
  EXPECT_EQ(def->CommandTypes(),
            (std::vector<std::string>{"bank.v1.OpenAccount", "bank.v1.Deposit", "bank.v1.Withdraw",
                                      "bank.v1.CloseAccount"}));
  EXPECT_EQ(def->EventTypes(),
            (std::vector<std::string>{"bank.v1.AccountOpened", "bank.v1.Deposited",
                                      "bank.v1.Withdrawn", "bank.v1.AccountClosed"}));
  EXPECT_TRUE(AccountDefinition().Validate().ok());
  EXPECT_EQ(AccountAggregate().type(), "bank.account");
}

TEST_F(BankAccountTest, OpenEmitsOpenedAndSetsBalance) {
  f_.Given()
      .When(Open("ada", 100))
      .ThenEmits(Opened("ada", 100))
      .ThenState(AccountOf("ada", 100, /*open=*/true, /*closed=*/false));
}

TEST_F(BankAccountTest, OpenTwiceIsAlreadyExists) {
  f_.Given(Opened("ada", 0))
      .When(Open("ada", 5))
      .ThenRejects(absl::StatusCode::kAlreadyExists, "already open");
}

TEST_F(BankAccountTest, OpenNeedsOwnerAndNonNegativeDeposit) {
  f_.Given().When(Open("", 5)).ThenRejects(absl::StatusCode::kInvalidArgument, "owner");
  f_.Given().When(Open("ada", -1)).ThenRejects(absl::StatusCode::kInvalidArgument, "initial");
}

TEST_F(BankAccountTest, DepositAddsToBalance) {
  f_.Given(Opened("ada", 10), DepositedOf(5))
      .When(DepositOf(7, "salary"))
      .ThenEmits(DepositedOf(7, "salary"))
      .ThenState(AccountOf("ada", 22, true, false));
}

TEST_F(BankAccountTest, DepositMustBePositive) {
  f_.Given(Opened("ada", 10))
      .When(DepositOf(0))
      .ThenRejects(absl::StatusCode::kInvalidArgument, "amount must be > 0");
  f_.Given(Opened("ada", 10)).When(DepositOf(-3)).ThenRejects(absl::StatusCode::kInvalidArgument);
}

TEST_F(BankAccountTest, DepositOnUnopenedAccountIsRejected) {
  f_.Given().When(DepositOf(5)).ThenRejects(absl::StatusCode::kFailedPrecondition, "not open");
}

TEST_F(BankAccountTest, WithdrawWithinBalance) {
  f_.Given(Opened("ada", 10), DepositedOf(5))
      .When(WithdrawOf(15))
      .ThenEmits(WithdrawnOf(15))
      .ThenState(AccountOf("ada", 0, true, false));
}

TEST_F(BankAccountTest, OverdraftIsInsufficientFunds) {
  f_.Given(Opened("ada", 10))
      .When(WithdrawOf(11))
      .ThenRejects(absl::StatusCode::kFailedPrecondition, "insufficient funds");
}

TEST_F(BankAccountTest, CloseNeedsZeroBalance) {
  f_.Given(Opened("ada", 10))
      .When(v1::CloseAccount())
      .ThenRejects(absl::StatusCode::kFailedPrecondition, "balance must be 0");
  f_.Given(Opened("ada", 10), WithdrawnOf(10))
      .When(v1::CloseAccount())
      .ThenEmits(v1::AccountClosed())
      .ThenState(AccountOf("ada", 0, /*open=*/false, /*closed=*/true));
}

TEST_F(BankAccountTest, ClosedAccountRejectsEverything) {
  auto closed = f_.Given(Opened("ada", 0), v1::AccountClosed());
  closed.When(Open("ada", 1)).ThenRejects(absl::StatusCode::kFailedPrecondition, "account closed");
  closed.When(DepositOf(1)).ThenRejects(absl::StatusCode::kFailedPrecondition, "account closed");
  closed.When(WithdrawOf(1)).ThenRejects(absl::StatusCode::kFailedPrecondition, "account closed");
  closed.When(v1::CloseAccount())
      .ThenRejects(absl::StatusCode::kFailedPrecondition, "account closed");
}

}  // namespace
}  // namespace bank
