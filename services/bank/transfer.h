// The bank example's money transfer: debit the source account, credit the target, and refund
// the source when the credit is refused. Two parts:
// - the "bank.transfer" aggregate, the record of each transfer's progress (host it in a
//   Processor like the account aggregate);
// - the transfer process manager, which turns transfer events and account results into the
//   next commands (host it in a leftfold::ProcessManager).
//
//   auto accounts = leftfold::Processor::Create(transport, bank::AccountDefinition(), ...);
//   auto transfers = leftfold::Processor::Create(transport, bank::TransferDefinition(), ...);
//   auto process = leftfold::ProcessManager::Create(transport, bank::TransferProcess());
//   // then send RequestTransfer{from, to, amount} to the transfer "t-1".
//
// The steps, each command id derived from the transfer id (so a replayed step is deduplicated):
//   TransferRequested             -> Withdraw(amount) to `from`          id "<t>/debit"
//   result "<t>/debit" ACCEPTED   -> MarkDebited to the transfer          id "<t>/debited"
//   result "<t>/debit" otherwise  -> MarkFailed(reason)                   id "<t>/failed"
//   TransferDebited               -> Deposit(amount) to `to`              id "<t>/credit"
//   result "<t>/credit" ACCEPTED  -> MarkCredited (COMPLETED)             id "<t>/credited"
//   result "<t>/credit" otherwise -> MarkFailed(reason), refund pending   id "<t>/failed"
//   TransferFailed{refund}        -> Deposit(amount) back to `from`       id "<t>/refund"
//   result "<t>/refund" ACCEPTED  -> MarkCompensated (COMPENSATED)        id "<t>/compensated"
// Account commands carry the transfer id as `reference` and as correlation id; the process
// manager recognises its own account results by correlation id + command id prefix. Data for a
// step (accounts, amount) comes from the transfer's events, so the process keeps no state.
// A refused refund (the source closed meanwhile) is logged and leaves the transfer FAILED with
// refund_pending: it needs a human.
//
// Transfer rules: RequestTransfer needs from, to (different) and amount > 0 (INVALID_ARGUMENT),
// once (ALREADY_EXISTS). Each Mark* is accepted only in the status it follows from
// (FAILED_PRECONDITION otherwise). Definitions are immutable and thread-safe.
#pragma once

#include "bank/v1/transfer.pb.h"
#include "leftfold/aggregate.h"
#include "leftfold/process_manager.h"

namespace bank {

inline constexpr char kTransferType[] = "bank.transfer";
inline constexpr char kTransferProcessName[] = "bank.transfer-process";

leftfold::Aggregate<bank::v1::Transfer> TransferAggregate();
leftfold::AggregateDefinition TransferDefinition();

// The process manager driving transfers.
leftfold::ProcessDefinition TransferProcess();

}  // namespace bank
