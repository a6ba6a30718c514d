// The bank example's account aggregate: open, deposit, withdraw, close.
//
//   absl::StatusOr<leftfold::AggregateDefinition> def = bank::AccountAggregate().Build();
//   // host it in a processor, or test it:
//   leftfold::testing::AggregateFixture f(bank::AccountAggregate());
//   f.Given(opened).When(withdraw_too_much)
//       .ThenRejects(absl::StatusCode::kFailedPrecondition, "insufficient funds");
//
// Rules (each rejection's code is what the client sees as the gRPC status):
// - A closed account rejects every command with FAILED_PRECONDITION "account closed"; this is
//   checked first.
// - OpenAccount: ALREADY_EXISTS when already open; INVALID_ARGUMENT for an empty owner or a
//   negative initial deposit. Emits AccountOpened (the initial deposit is the opening balance).
// - Deposit / Withdraw / CloseAccount on an account never opened: FAILED_PRECONDITION
//   "account not open".
// - Deposit, Withdraw: amount must be > 0 (INVALID_ARGUMENT). Withdraw more than the balance:
//   FAILED_PRECONDITION "insufficient funds". Emit Deposited / Withdrawn.
// - CloseAccount: the balance must be exactly 0 (FAILED_PRECONDITION "balance must be 0"), so no
//   money disappears with a closed account. Emits AccountClosed.
//
// The definition is immutable and thread-safe; build it once.
#pragma once

#include "bank/v1/bank.pb.h"
#include "leftfold/aggregate.h"

namespace bank {

// The aggregate type name, and so the prefix of its topics ("bank.account.commands", ...).
inline constexpr char kAccountType[] = "bank.account";

// The typed definition (e.g. to hand to the test fixture).
leftfold::Aggregate<bank::v1::Account> AccountAggregate();

// The same, type-erased, for the runtime.
leftfold::AggregateDefinition AccountDefinition();

}  // namespace bank
