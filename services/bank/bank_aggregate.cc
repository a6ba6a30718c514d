#include "bank/bank_aggregate.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace bank {
namespace {

using bank::v1::Account;

// The checks every command but OpenAccount starts with.
absl::Status RequireOpen(const Account& state) {
  if (state.closed()) return absl::FailedPreconditionError("account closed");
  if (!state.open()) return absl::FailedPreconditionError("account not open");
  return absl::OkStatus();
}

absl::Status RequirePositive(int64_t amount) {
  if (amount <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("amount must be > 0, got ", amount));
  }
  return absl::OkStatus();
}

}  // namespace

leftfold::Aggregate<Account> AccountAggregate() {
  return leftfold::Aggregate<Account>(kAccountType)
      .Version(1)
      .Decide<v1::OpenAccount>(
          [](const Account& state, const v1::OpenAccount& cmd, leftfold::Emit& emit) {
            if (state.closed()) return absl::FailedPreconditionError("account closed");
            if (state.open()) return absl::AlreadyExistsError("account already open");
            if (cmd.owner().empty()) return absl::InvalidArgumentError("owner is required");
            if (cmd.initial_deposit() < 0) {
              return absl::InvalidArgumentError("initial deposit must be >= 0");
            }
            v1::AccountOpened opened;
            opened.set_owner(cmd.owner());
            opened.set_initial_deposit(cmd.initial_deposit());
            emit(opened);
            return absl::OkStatus();
          })
      .Decide<v1::Deposit>([](const Account& state, const v1::Deposit& cmd, leftfold::Emit& emit) {
        if (absl::Status s = RequireOpen(state); !s.ok()) return s;
        if (absl::Status s = RequirePositive(cmd.amount()); !s.ok()) return s;
        v1::Deposited deposited;
        deposited.set_amount(cmd.amount());
        deposited.set_reference(cmd.reference());
        emit(deposited);
        return absl::OkStatus();
      })
      .Decide<v1::Withdraw>(
          [](const Account& state, const v1::Withdraw& cmd, leftfold::Emit& emit) {
            if (absl::Status s = RequireOpen(state); !s.ok()) return s;
            if (absl::Status s = RequirePositive(cmd.amount()); !s.ok()) return s;
            if (state.balance() < cmd.amount()) {
              return absl::FailedPreconditionError(absl::StrCat(
                  "insufficient funds: balance ", state.balance(), ", requested ", cmd.amount()));
            }
            v1::Withdrawn withdrawn;
            withdrawn.set_amount(cmd.amount());
            withdrawn.set_reference(cmd.reference());
            emit(withdrawn);
            return absl::OkStatus();
          })
      .Decide<v1::CloseAccount>(
          [](const Account& state, const v1::CloseAccount&, leftfold::Emit& emit) {
            if (absl::Status s = RequireOpen(state); !s.ok()) return s;
            if (state.balance() != 0) {
              return absl::FailedPreconditionError(
                  absl::StrCat("balance must be 0 to close, is ", state.balance()));
            }
            emit(v1::AccountClosed());
            return absl::OkStatus();
          })
      .Apply<v1::AccountOpened>([](Account& state, const v1::AccountOpened& e) {
        state.set_owner(e.owner());
        state.set_balance(e.initial_deposit());
        state.set_open(true);
      })
      .Apply<v1::Deposited>([](Account& state, const v1::Deposited& e) {
        state.set_balance(state.balance() + e.amount());
      })
      .Apply<v1::Withdrawn>([](Account& state, const v1::Withdrawn& e) {
        state.set_balance(state.balance() - e.amount());
      })
      .Apply<v1::AccountClosed>([](Account& state, const v1::AccountClosed&) {
        state.set_open(false);
        state.set_closed(true);
      });
}

leftfold::AggregateDefinition AccountDefinition() { return AccountAggregate(); }

}  // namespace bank
