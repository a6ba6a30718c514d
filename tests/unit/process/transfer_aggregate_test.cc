// The transfer aggregate's rules and the transfer process's handlers, in memory (no log).
#include <string>

#include "bank/bank_aggregate.h"
#include "bank/transfer.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "leftfold/process_manager.h"

namespace bank {
namespace {

using bank::v1::Transfer;
using leftfold::v1::CommandEnvelope;
using leftfold::v1::CommandResult;

CommandEnvelope Command(const google::protobuf::Message& payload) {
  CommandEnvelope command;
  command.set_command_id("c");
  command.set_aggregate_type(kTransferType);
  command.set_aggregate_id("t-1");
  command.mutable_payload()->PackFrom(payload);
  return command;
}

v1::RequestTransfer Request(std::string from, std::string to, int64_t amount) {
  v1::RequestTransfer r;
  r.set_from(std::move(from));
  r.set_to(std::move(to));
  r.set_amount(amount);
  return r;
}

// Folds `commands` from the empty state; every one must be accepted.
Transfer Fold(const std::vector<CommandEnvelope>& commands) {
  leftfold::AggregateDefinition def = TransferDefinition();
  std::unique_ptr<google::protobuf::Message> state = def.NewState();
  for (const CommandEnvelope& c : commands) {
    leftfold::DecideResult r = def.Decide(*state, c);
    EXPECT_EQ(r.kind, leftfold::DecideResult::Kind::kAccepted) << r.status;
    if (r.kind == leftfold::DecideResult::Kind::kAccepted) state = std::move(r.new_state);
  }
  return static_cast<const Transfer&>(*state);
}

TEST(TransferAggregate, ValidatesTheRequest) {
  ASSERT_TRUE(TransferAggregate().Build().ok());
  leftfold::AggregateDefinition def = TransferDefinition();
  auto empty = def.NewState();
  EXPECT_EQ(def.Decide(*empty, Command(Request("a", "a", 5))).status.code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(def.Decide(*empty, Command(Request("a", "b", 0))).status.code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(def.Decide(*empty, Command(Request("", "b", 5))).status.code(),
            absl::StatusCode::kInvalidArgument);
  Transfer requested = Fold({Command(Request("a", "b", 5))});
  EXPECT_EQ(requested.status(), Transfer::REQUESTED);
  EXPECT_EQ(def.Decide(requested, Command(Request("a", "b", 5))).status.code(),
            absl::StatusCode::kAlreadyExists);
  // Steps out of order are refused.
  EXPECT_EQ(def.Decide(requested, Command(v1::MarkCredited())).status.code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(def.Decide(requested, Command(v1::MarkCompensated())).status.code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(TransferAggregate, HappyPathAndCompensation) {
  Transfer done = Fold(
      {Command(Request("a", "b", 5)), Command(v1::MarkDebited()), Command(v1::MarkCredited())});
  EXPECT_EQ(done.status(), Transfer::COMPLETED);

  Transfer refused = Fold({Command(Request("a", "b", 5)), Command(v1::MarkFailed())});
  EXPECT_EQ(refused.status(), Transfer::FAILED);
  EXPECT_FALSE(refused.refund_pending());  // nothing was debited
  EXPECT_EQ(TransferDefinition().Decide(refused, Command(v1::MarkCompensated())).status.code(),
            absl::StatusCode::kFailedPrecondition);

  Transfer owed =
      Fold({Command(Request("a", "b", 5)), Command(v1::MarkDebited()), Command(v1::MarkFailed())});
  EXPECT_EQ(owed.status(), Transfer::FAILED);
  EXPECT_TRUE(owed.refund_pending());
  Transfer compensated = Fold({Command(Request("a", "b", 5)), Command(v1::MarkDebited()),
                               Command(v1::MarkFailed()), Command(v1::MarkCompensated())});
  EXPECT_EQ(compensated.status(), Transfer::COMPENSATED);
  EXPECT_FALSE(compensated.refund_pending());
}

// The process's handlers, called directly: each step sends the one command, with its derived id.
TEST(TransferProcess, StepsSendDeterministicCommands) {
  leftfold::ProcessDefinition process = TransferProcess();
  ASSERT_TRUE(process.Validate().ok());
  auto run = [&](const google::protobuf::Message& record, const std::string& aggregate_type,
                 const std::string& event_type) {
    leftfold::ProcessContext ctx("test", "here", "");
    for (const auto& h : process.handlers()) {
      if (h.aggregate_type == aggregate_type && h.event_type == event_type) {
        EXPECT_TRUE(h.fn(record, ctx).ok());
      }
    }
    return ctx.TakeSent();
  };

  leftfold::v1::EventEnvelope requested;
  requested.set_aggregate_id("t-1");
  v1::TransferRequested r;
  r.set_from("a");
  r.set_to("b");
  r.set_amount(7);
  requested.mutable_payload()->PackFrom(r);
  auto sent = run(requested, kTransferType, "bank.v1.TransferRequested");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].command_id(), "t-1/debit");
  EXPECT_EQ(sent[0].aggregate_type(), kAccountType);
  EXPECT_EQ(sent[0].aggregate_id(), "a");
  EXPECT_EQ(sent[0].correlation_id(), "t-1");
  v1::Withdraw withdraw;
  ASSERT_TRUE(sent[0].payload().UnpackTo(&withdraw));
  EXPECT_EQ(withdraw.amount(), 7);
  EXPECT_EQ(withdraw.reference(), "t-1");
  // Same input, same output: what makes a replay harmless.
  auto again = run(requested, kTransferType, "bank.v1.TransferRequested");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].command_id(), sent[0].command_id());

  CommandResult credit_refused;
  credit_refused.set_command_id("t-1/credit");
  credit_refused.set_correlation_id("t-1");
  credit_refused.set_outcome(CommandResult::REJECTED);
  credit_refused.set_message("account closed");
  sent = run(credit_refused, kAccountType, "");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].command_id(), "t-1/failed");
  EXPECT_EQ(sent[0].aggregate_type(), kTransferType);
  v1::MarkFailed failed;
  ASSERT_TRUE(sent[0].payload().UnpackTo(&failed));
  EXPECT_NE(failed.reason().find("account closed"), std::string::npos);

  // An account result no transfer caused is none of its business.
  CommandResult unrelated;
  unrelated.set_command_id("deposit-9");
  unrelated.set_outcome(CommandResult::ACCEPTED);
  EXPECT_TRUE(run(unrelated, kAccountType, "").empty());
}

TEST(ProcessContext, SendNeedsIds) {
  leftfold::ProcessContext ctx("test", "here", "corr");
  EXPECT_EQ(
      ctx.Send("bank.account", leftfold::AggregateId("a"), v1::Deposit(), leftfold::CommandId(""))
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ctx.Send("", leftfold::AggregateId("a"), v1::Deposit(), leftfold::CommandId("x")).code(),
      absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(
      ctx.Send("bank.account", leftfold::AggregateId("a"), v1::Deposit(), leftfold::CommandId("x"))
          .ok());
  ASSERT_EQ(ctx.sent().size(), 1u);
  EXPECT_EQ(ctx.sent()[0].correlation_id(), "corr");  // inherited from the record
}

TEST(ProcessDefinition, ValidateRejectsBadDefinitions) {
  EXPECT_EQ(leftfold::ProcessDefinition("x").Validate().code(),
            absl::StatusCode::kInvalidArgument);  // no handler
  EXPECT_EQ(
      leftfold::ProcessDefinition("bad name")
          .OnResults("bank.account", [](const CommandResult&,
                                        leftfold::ProcessContext&) { return absl::OkStatus(); })
          .Validate()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bank
