#include "balances.h"

#include "absl/strings/str_cat.h"
#include "bank/v1/bank.pb.h"

namespace bank {
namespace {

using leftfold::EventContext;
using leftfold::View;

// The current row, or a fresh one for an account seen for the first time.
absl::StatusOr<v1::Account> Load(const EventContext& ctx, const View& view) {
  absl::StatusOr<v1::Account> row = view.Get<v1::Account>(ctx.aggregate_id());
  if (absl::IsNotFound(row.status())) return v1::Account();
  return row;
}

// The row and its index entry move together.
absl::Status Save(const EventContext& ctx, View& view, const v1::Account& row) {
  if (absl::Status s = view.Put(ctx.aggregate_id(), row); !s.ok()) return s;
  if (row.owner().empty()) return absl::OkStatus();
  return view.Put(absl::StrCat("by_owner/", row.owner(), "/", ctx.aggregate_id().value()), row);
}

template <typename E, typename Fn>
auto Update(Fn change) {
  return [change](const EventContext& ctx, const E& e, View& view) -> absl::Status {
    absl::StatusOr<v1::Account> row = Load(ctx, view);
    if (!row.ok()) return row.status();
    change(*row, e);
    return Save(ctx, view, *row);
  };
}

}  // namespace

leftfold::Projector BalancesProjector() {
  return leftfold::Projector("account_balances")
      .From("bank.account")
      .On<v1::AccountOpened>(Update<v1::AccountOpened>([](v1::Account& row, const auto& e) {
        row.set_owner(e.owner());
        row.set_open(true);
        row.set_balance(e.initial_deposit());
      }))
      .On<v1::Deposited>(Update<v1::Deposited>(
          [](v1::Account& row, const auto& e) { row.set_balance(row.balance() + e.amount()); }))
      .On<v1::Withdrawn>(Update<v1::Withdrawn>(
          [](v1::Account& row, const auto& e) { row.set_balance(row.balance() - e.amount()); }))
      .On<v1::AccountClosed>(Update<v1::AccountClosed>([](v1::Account& row, const auto&) {
        row.set_open(false);
        row.set_closed(true);
      }));
}

}  // namespace bank
