#include "bank/transfer.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bank/bank_aggregate.h"
#include "bank/v1/bank.pb.h"
#include "leftfold/logging.h"

namespace bank {
namespace {

using bank::v1::Transfer;
using leftfold::AggregateId;
using leftfold::CommandId;
using leftfold::ProcessContext;

absl::Status RequireStatus(const Transfer& state, Transfer::Status expected, const char* command) {
  if (state.status() == expected) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(command, " needs status ",
                                                    Transfer::Status_Name(expected), ", is ",
                                                    Transfer::Status_Name(state.status())));
}

// The id of the command of step `step` of transfer `transfer`: the same every time it is sent.
CommandId StepId(const std::string& transfer, const char* step) {
  return CommandId(absl::StrCat(transfer, "/", step));
}

absl::Status SendToTransfer(ProcessContext& ctx, const std::string& transfer,
                            const google::protobuf::Message& command, const char* step) {
  return ctx.Send(kTransferType, AggregateId(transfer), command, StepId(transfer, step), transfer);
}

// Deposit or Withdraw (both have amount and reference) to an account, for transfer `transfer`.
template <typename Command>
absl::Status SendToAccount(ProcessContext& ctx, const std::string& transfer,
                           const std::string& account, int64_t amount, const char* step) {
  Command command;
  command.set_amount(amount);
  command.set_reference(transfer);
  return ctx.Send(kAccountType, AggregateId(account), command, StepId(transfer, step), transfer);
}

absl::Status OnAccountResult(const leftfold::v1::CommandResult& result, ProcessContext& ctx) {
  const std::string& transfer = result.correlation_id();
  // Not ours: an account command no transfer sent.
  if (transfer.empty() || !absl::StartsWith(result.command_id(), transfer + "/")) {
    return absl::OkStatus();
  }
  const std::string step = result.command_id().substr(transfer.size() + 1);
  const bool accepted = result.outcome() == leftfold::v1::CommandResult::ACCEPTED;
  v1::MarkFailed failed;
  failed.set_reason(absl::StrCat(step, " refused: ", result.message()));
  if (step == "debit") {
    if (accepted) return SendToTransfer(ctx, transfer, v1::MarkDebited(), "debited");
    return SendToTransfer(ctx, transfer, failed, "failed");
  }
  if (step == "credit") {
    if (accepted) return SendToTransfer(ctx, transfer, v1::MarkCredited(), "credited");
    return SendToTransfer(ctx, transfer, failed, "failed");
  }
  if (step == "refund") {
    if (accepted) return SendToTransfer(ctx, transfer, v1::MarkCompensated(), "compensated");
    leftfold::LogError("transfer", "refund refused; the transfer needs manual repair",
                       {{"transfer", transfer}, {"reason", result.message()}});
  }
  return absl::OkStatus();
}

}  // namespace

leftfold::Aggregate<Transfer> TransferAggregate() {
  return leftfold::Aggregate<Transfer>(kTransferType)
      .Version(1)
      .Decide<v1::RequestTransfer>([](const Transfer& state, const v1::RequestTransfer& cmd,
                                      leftfold::Emit& emit) {
        if (state.status() != Transfer::STATUS_UNSPECIFIED) {
          return absl::AlreadyExistsError("transfer already requested");
        }
        if (cmd.from().empty() || cmd.to().empty()) {
          return absl::InvalidArgumentError("from and to are required");
        }
        if (cmd.from() == cmd.to()) {
          return absl::InvalidArgumentError("from and to must differ");
        }
        if (cmd.amount() <= 0) {
          return absl::InvalidArgumentError(absl::StrCat("amount must be > 0, got ", cmd.amount()));
        }
        v1::TransferRequested requested;
        requested.set_from(cmd.from());
        requested.set_to(cmd.to());
        requested.set_amount(cmd.amount());
        emit(requested);
        return absl::OkStatus();
      })
      .Decide<v1::MarkDebited>([](const Transfer& state, const v1::MarkDebited&,
                                  leftfold::Emit& emit) {
        if (absl::Status s = RequireStatus(state, Transfer::REQUESTED, "MarkDebited"); !s.ok()) {
          return s;
        }
        v1::TransferDebited debited;
        debited.set_from(state.from());
        debited.set_to(state.to());
        debited.set_amount(state.amount());
        emit(debited);
        return absl::OkStatus();
      })
      .Decide<v1::MarkCredited>(
          [](const Transfer& state, const v1::MarkCredited&, leftfold::Emit& emit) {
            if (absl::Status s = RequireStatus(state, Transfer::DEBITED, "MarkCredited"); !s.ok()) {
              return s;
            }
            emit(v1::TransferCompleted());
            return absl::OkStatus();
          })
      .Decide<v1::MarkFailed>(
          [](const Transfer& state, const v1::MarkFailed& cmd, leftfold::Emit& emit) {
            if (state.status() != Transfer::REQUESTED && state.status() != Transfer::DEBITED) {
              return absl::FailedPreconditionError(
                  absl::StrCat("MarkFailed needs status REQUESTED or DEBITED, is ",
                               Transfer::Status_Name(state.status())));
            }
            v1::TransferFailed failed;
            failed.set_reason(cmd.reason());
            // Money left the source only once the transfer is DEBITED: only then is it owed back.
            failed.set_refund_required(state.status() == Transfer::DEBITED);
            failed.set_from(state.from());
            failed.set_amount(state.amount());
            emit(failed);
            return absl::OkStatus();
          })
      .Decide<v1::MarkCompensated>([](const Transfer& state, const v1::MarkCompensated&,
                                      leftfold::Emit& emit) {
        if (absl::Status s = RequireStatus(state, Transfer::FAILED, "MarkCompensated"); !s.ok()) {
          return s;
        }
        if (!state.refund_pending()) {
          return absl::FailedPreconditionError("MarkCompensated: no refund is pending");
        }
        emit(v1::TransferCompensated());
        return absl::OkStatus();
      })
      .Apply<v1::TransferRequested>([](Transfer& state, const v1::TransferRequested& e) {
        state.set_from(e.from());
        state.set_to(e.to());
        state.set_amount(e.amount());
        state.set_status(Transfer::REQUESTED);
      })
      .Apply<v1::TransferDebited>(
          [](Transfer& state, const v1::TransferDebited&) { state.set_status(Transfer::DEBITED); })
      .Apply<v1::TransferCompleted>([](Transfer& state, const v1::TransferCompleted&) {
        state.set_status(Transfer::COMPLETED);
      })
      .Apply<v1::TransferFailed>([](Transfer& state, const v1::TransferFailed& e) {
        state.set_status(Transfer::FAILED);
        state.set_failure_reason(e.reason());
        state.set_refund_pending(e.refund_required());
      })
      .Apply<v1::TransferCompensated>([](Transfer& state, const v1::TransferCompensated&) {
        state.set_status(Transfer::COMPENSATED);
        state.set_refund_pending(false);
      });
}

leftfold::AggregateDefinition TransferDefinition() { return TransferAggregate(); }

leftfold::ProcessDefinition TransferProcess() {
  using leftfold::v1::EventEnvelope;
  return leftfold::ProcessDefinition(kTransferProcessName)
      .OnEvent<v1::TransferRequested>(
          kTransferType,
          [](const EventEnvelope& envelope, const v1::TransferRequested& e, ProcessContext& ctx) {
            return SendToAccount<v1::Withdraw>(ctx, envelope.aggregate_id(), e.from(), e.amount(),
                                               "debit");
          })
      .OnEvent<v1::TransferDebited>(
          kTransferType,
          [](const EventEnvelope& envelope, const v1::TransferDebited& e, ProcessContext& ctx) {
            return SendToAccount<v1::Deposit>(ctx, envelope.aggregate_id(), e.to(), e.amount(),
                                              "credit");
          })
      .OnEvent<v1::TransferFailed>(
          kTransferType,
          [](const EventEnvelope& envelope, const v1::TransferFailed& e, ProcessContext& ctx) {
            if (!e.refund_required()) return absl::OkStatus();
            return SendToAccount<v1::Deposit>(ctx, envelope.aggregate_id(), e.from(), e.amount(),
                                              "refund");
          })
      .OnResults(kAccountType, OnAccountResult);
}

}  // namespace bank
