// Example read model: account balances of the bank domain, with an owner index.
//
//   Rows (view "account_balances"):
//     "<account id>"                     bank.v1.Account (owner, balance, open, closed)
//     "by_owner/<owner>/<account id>"    bank.v1.Account (same row, for Scan by owner prefix)
//
//   auto runtime = leftfold::ProjectorRuntime::Start(transport, bank::BalancesProjector(),
//                                                    {.store_dir = "data/views/account_balances"});
//   // Scan({.prefix = "by_owner/alice/"}) lists alice's accounts.
#pragma once

#include "leftfold/projector.h"

namespace bank {

leftfold::Projector BalancesProjector();

}  // namespace bank
