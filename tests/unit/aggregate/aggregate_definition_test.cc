// AggregateDefinition: dispatch, the outcome of every kind of broken command or handler, Apply
// on stored events, and Validate().
#include <memory>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bank/v1/bank.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "leftfold/aggregate.h"
#include "leftfold/testing/aggregate_fixture.h"

namespace leftfold {
namespace {

using bank::v1::Account;
using Kind = DecideResult::Kind;

v1::CommandEnvelope Envelope(const google::protobuf::Message& payload) {
  v1::CommandEnvelope envelope;
  envelope.set_command_id("c-1");
  envelope.set_aggregate_type("test.account");
  envelope.set_aggregate_id("a-1");
  envelope.mutable_payload()->PackFrom(payload);
  return envelope;
}

bank::v1::Deposit DepositOf(int64_t amount) {
  bank::v1::Deposit d;
  d.set_amount(amount);
  return d;
}

// A small aggregate with concrete-typed handlers, and generic (`auto`) ones for Withdraw.
Aggregate<Account> TestAggregate() {
  return Aggregate<Account>("test.account")
      .Decide<bank::v1::Deposit>(
          [](const Account&, const bank::v1::Deposit& cmd, Emit& emit) -> absl::Status {
            bank::v1::Deposited e;
            e.set_amount(cmd.amount());
            emit(e);
            emit(e);  // twice: the fold must see both
            return absl::OkStatus();
          })
      .Decide<bank::v1::Withdraw>(
          [](const auto& state, const auto& cmd, auto& emit) -> absl::Status {
            if (state.balance() < cmd.amount())
              return absl::FailedPreconditionError("insufficient");
            bank::v1::Withdrawn e;
            e.set_amount(cmd.amount());
            emit(e);
            return absl::OkStatus();
          })
      .Apply<bank::v1::Deposited>([](Account& state, const bank::v1::Deposited& e) {
        state.set_balance(state.balance() + e.amount());
      })
      .Apply<bank::v1::Withdrawn>(
          [](auto& state, const auto& e) { state.set_balance(state.balance() - e.amount()); });
}

TEST(AggregateDefinitionTest, AcceptedFoldsEventsIntoACopy) {
  AggregateDefinition def = TestAggregate();
  ASSERT_TRUE(def.Validate().ok()) << def.Validate();
  Account state;
  state.set_balance(1);
  DecideResult r = def.Decide(state, Envelope(DepositOf(5)));
  ASSERT_EQ(r.kind, Kind::kAccepted) << r.status;
  EXPECT_TRUE(r.status.ok());
  ASSERT_EQ(r.events.size(), 2u);
  bank::v1::Deposited e;
  ASSERT_TRUE(r.events[1].UnpackTo(&e));
  EXPECT_EQ(e.amount(), 5);
  ASSERT_NE(r.new_state, nullptr);
  EXPECT_EQ(static_cast<const Account&>(*r.new_state).balance(), 11);
  EXPECT_EQ(state.balance(), 1) << "Decide must not modify its input state";
}

// DecideInto reuses one result: each call overwrites all of it, as Decide would have returned.
TEST(AggregateDefinitionTest, DecideIntoOverwritesTheWholeResult) {
  AggregateDefinition def = TestAggregate();
  Account state;
  state.set_balance(3);
  bank::v1::Withdraw too_much;
  too_much.set_amount(10);
  bank::v1::Withdraw some;
  some.set_amount(2);
  bank::v1::Deposit seven = DepositOf(7);
  bank::v1::Deposit one = DepositOf(1);
  DecideResult reused;
  // Two events, then a rejection (none), then one event, then two again.
  for (const google::protobuf::Message* command :
       std::initializer_list<const google::protobuf::Message*>{&seven, &too_much, &some, &one}) {
    v1::CommandEnvelope envelope = Envelope(*command);
    if (reused.new_state == nullptr) {
      // A used state left in the result (as a runtime hands back a superseded one) is cleared
      // before it is refilled: none of its fields may leak into the new state.
      auto stale = std::make_unique<Account>();
      stale->set_owner("stale owner");
      stale->set_balance(999);
      reused.new_state = std::move(stale);
    }
    def.DecideInto(state, envelope, Version(4), reused);
    DecideResult fresh = def.Decide(state, envelope, Version(4));
    ASSERT_EQ(reused.kind, fresh.kind) << command->GetTypeName();
    EXPECT_EQ(reused.status, fresh.status);
    ASSERT_EQ(reused.events.size(), fresh.events.size()) << command->ShortDebugString();
    for (size_t i = 0; i < fresh.events.size(); ++i) {
      EXPECT_EQ(reused.events[i].SerializeAsString(), fresh.events[i].SerializeAsString());
    }
    ASSERT_EQ(reused.new_state == nullptr, fresh.new_state == nullptr);
    if (fresh.new_state != nullptr) {
      EXPECT_EQ(reused.new_state->SerializeAsString(), fresh.new_state->SerializeAsString());
    }
  }
}

// Each emitted event is applied and serialized as it is emitted: many events, payloads larger
// than a message's inline strings, and an event emitted as a DynamicMessage (converted through
// the wire format) must all come out exactly.
TEST(AggregateDefinitionTest, ManyLargeAndDynamicEventsArePackedExactly) {
  const std::string big(10000, 'x');
  google::protobuf::DynamicMessageFactory factory;
  const google::protobuf::Message* dynamic_prototype =
      factory.GetPrototype(bank::v1::Deposited::descriptor());
  AggregateDefinition def =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>(
              [&](const Account&, const bank::v1::Deposit& cmd, Emit& emit) -> absl::Status {
                for (int i = 1; i <= 4; ++i) {
                  bank::v1::Deposited e;
                  e.set_amount(cmd.amount() * i);
                  e.set_reference(absl::StrCat(cmd.reference(), "-", i));
                  emit(e);
                }
                std::unique_ptr<google::protobuf::Message> dynamic(dynamic_prototype->New());
                const google::protobuf::Reflection* reflection = dynamic->GetReflection();
                const google::protobuf::Descriptor* descriptor = dynamic->GetDescriptor();
                reflection->SetInt64(dynamic.get(), descriptor->FindFieldByName("amount"), 1000);
                reflection->SetString(dynamic.get(), descriptor->FindFieldByName("reference"),
                                      "dynamic");
                emit(*dynamic);
                return absl::OkStatus();
              })
          .Apply<bank::v1::Deposited>([](Account& state, const bank::v1::Deposited& e) {
            state.set_balance(state.balance() + e.amount());
            state.set_owner(state.owner() + e.reference().substr(0, 1));
          })
          .Definition();
  ASSERT_TRUE(def.Validate().ok()) << def.Validate();
  bank::v1::Deposit deposit = DepositOf(3);
  deposit.set_reference(big);
  for (int round = 0; round < 2; ++round) {  // the second call reuses nothing of the first
    DecideResult r = def.Decide(Account(), Envelope(deposit));
    ASSERT_EQ(r.kind, Kind::kAccepted) << r.status;
    ASSERT_EQ(r.events.size(), 5u);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(r.events[i].type_url(), "type.googleapis.com/bank.v1.Deposited");
      bank::v1::Deposited e;
      ASSERT_TRUE(r.events[i].UnpackTo(&e)) << i;
      if (i < 4) {
        EXPECT_EQ(e.amount(), 3 * (i + 1));
        EXPECT_EQ(e.reference(), absl::StrCat(big, "-", i + 1));
      } else {
        EXPECT_EQ(e.amount(), 1000);
        EXPECT_EQ(e.reference(), "dynamic");
      }
    }
    const auto& state = static_cast<const Account&>(*r.new_state);
    EXPECT_EQ(state.balance(), 3 + 6 + 9 + 12 + 1000);
    EXPECT_EQ(state.owner(), "xxxxd");
  }
}

// Copies `file` and what it imports into `pool`.
void AddWithDependencies(const google::protobuf::FileDescriptor* file,
                         google::protobuf::DescriptorPool& pool) {
  if (pool.FindFileByName(file->name()) != nullptr) return;
  for (int i = 0; i < file->dependency_count(); ++i) AddWithDependencies(file->dependency(i), pool);
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  ASSERT_NE(pool.BuildFile(proto), nullptr) << file->name();
}

// Apply handlers are found by the event's descriptor, or else by its type name: an event built
// from a descriptor of another pool (a DynamicMessage of a copied schema) is applied all the same.
// Events are applied as they are emitted, but a decide that then refuses the command leaves
// nothing: no events, no new state. One that emits nothing and accepts keeps the state as it is.
TEST(AggregateDefinitionTest, EmittedThenRejectedLeavesNothingAndNoEventsKeepsTheState) {
  AggregateDefinition def =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>(
              [](const Account&, const bank::v1::Deposit& cmd, Emit& emit) -> absl::Status {
                bank::v1::Deposited e;
                e.set_amount(cmd.amount());
                emit(e);
                if (cmd.amount() > 100) return absl::OutOfRangeError("too large after all");
                return absl::OkStatus();
              })
          .Decide<bank::v1::Withdraw>(
              [](const Account&, const bank::v1::Withdraw&, Emit&) { return absl::OkStatus(); })
          .Apply<bank::v1::Deposited>([](Account& state, const bank::v1::Deposited& e) {
            state.set_balance(state.balance() + e.amount());
          });
  Account state;
  state.set_balance(7);
  state.set_owner("ann");
  DecideResult reused;
  def.DecideInto(state, Envelope(DepositOf(500)), Version(1), reused);
  EXPECT_EQ(reused.kind, Kind::kRejected);
  EXPECT_EQ(reused.status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(reused.events.empty());
  EXPECT_EQ(reused.new_state, nullptr);

  def.DecideInto(state, Envelope(DepositOf(5)), Version(1), reused);
  ASSERT_EQ(reused.kind, Kind::kAccepted) << reused.status;
  ASSERT_EQ(reused.events.size(), 1u);
  EXPECT_EQ(static_cast<const Account&>(*reused.new_state).balance(), 12);

  bank::v1::Withdraw nothing;
  nothing.set_amount(1);
  def.DecideInto(state, Envelope(nothing), Version(2), reused);
  ASSERT_EQ(reused.kind, Kind::kAccepted) << reused.status;
  EXPECT_TRUE(reused.events.empty());
  ASSERT_NE(reused.new_state, nullptr);
  EXPECT_EQ(reused.new_state->SerializeAsString(), state.SerializeAsString())
      << "accepted without events: the new state is the state";
}

// After an emitted event fails (here: no Apply for it), later events are not applied, and the
// handler's own refusal still wins over that failure.
TEST(AggregateDefinitionTest, TheFirstEmitFailureStandsUnlessDecideRefuses) {
  int applied = 0;
  AggregateDefinition def =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>(
              [](const Account&, const bank::v1::Deposit& cmd, Emit& emit) -> absl::Status {
                emit(bank::v1::Withdrawn());  // no Apply registered for it
                bank::v1::Deposited e;
                e.set_amount(cmd.amount());
                emit(e);
                if (cmd.amount() == 0) return absl::InvalidArgumentError("zero");
                return absl::OkStatus();
              })
          .Apply<bank::v1::Deposited>(
              [&applied](Account&, const bank::v1::Deposited&) { ++applied; });
  DecideResult r = def.Decide(Account(), Envelope(DepositOf(3)));
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_NE(r.status.message().find("Withdrawn"), absl::string_view::npos) << r.status;
  EXPECT_EQ(applied, 0) << "events after the failed one are ignored";
  EXPECT_TRUE(r.events.empty());

  r = def.Decide(Account(), Envelope(DepositOf(0)));
  EXPECT_EQ(r.kind, Kind::kRejected);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
}

// Command payloads are parsed into a message per type and thread, reused: a decide handler that
// runs Decide again (on a command of the same type) gets a payload of its own, and both see the
// amounts they were sent.
TEST(AggregateDefinitionTest, ANestedDecideGetsItsOwnPayload) {
  auto inner = std::make_shared<AggregateDefinition>(TestAggregate());
  int64_t inner_amount = 0;
  AggregateDefinition outer =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>(
              [&](const Account& state, const bank::v1::Deposit& cmd, Emit& emit) -> absl::Status {
                DecideResult nested = inner->Decide(state, Envelope(DepositOf(cmd.amount() + 1)));
                if (nested.kind != Kind::kAccepted) return nested.status;
                bank::v1::Deposited e;
                if (!nested.events[0].UnpackTo(&e)) return absl::InternalError("unpack");
                inner_amount = e.amount();
                bank::v1::Deposited mine;
                mine.set_amount(cmd.amount());  // read after the nested call: must be unchanged
                emit(mine);
                return absl::OkStatus();
              })
          .Apply<bank::v1::Deposited>([](Account& state, const bank::v1::Deposited& e) {
            state.set_balance(state.balance() + e.amount());
          });
  DecideResult r = outer.Decide(Account(), Envelope(DepositOf(40)));
  ASSERT_EQ(r.kind, Kind::kAccepted) << r.status;
  EXPECT_EQ(inner_amount, 41);
  EXPECT_EQ(static_cast<const Account&>(*r.new_state).balance(), 40);
}

TEST(AggregateDefinitionTest, AnEventOfAnotherDescriptorPoolIsFoundByName) {
  google::protobuf::DescriptorPool pool;
  AddWithDependencies(bank::v1::Deposited::descriptor()->file(), pool);
  const google::protobuf::Descriptor* copied = pool.FindMessageTypeByName("bank.v1.Deposited");
  ASSERT_NE(copied, nullptr);
  ASSERT_NE(copied, bank::v1::Deposited::descriptor());
  google::protobuf::DynamicMessageFactory factory(&pool);
  const google::protobuf::Message* prototype = factory.GetPrototype(copied);
  AggregateDefinition def =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>(
              [&](const Account&, const bank::v1::Deposit& cmd, Emit& emit) -> absl::Status {
                std::unique_ptr<google::protobuf::Message> event(prototype->New());
                event->GetReflection()->SetInt64(event.get(), copied->FindFieldByName("amount"),
                                                 cmd.amount());
                emit(*event);
                return absl::OkStatus();
              })
          .Apply<bank::v1::Deposited>([](Account& state, const bank::v1::Deposited& e) {
            state.set_balance(state.balance() + e.amount());
          })
          .Definition();
  DecideResult r = def.Decide(Account(), Envelope(DepositOf(7)));
  ASSERT_EQ(r.kind, Kind::kAccepted) << r.status;
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].type_url(), "type.googleapis.com/bank.v1.Deposited");
  EXPECT_EQ(static_cast<const Account&>(*r.new_state).balance(), 7);
}

TEST(AggregateDefinitionTest, GenericLambdasWork) {
  AggregateDefinition def = TestAggregate();
  Account state;
  state.set_balance(10);
  bank::v1::Withdraw w;
  w.set_amount(4);
  DecideResult r = def.Decide(state, Envelope(w));
  ASSERT_EQ(r.kind, Kind::kAccepted) << r.status;
  EXPECT_EQ(static_cast<const Account&>(*r.new_state).balance(), 6);
  w.set_amount(40);
  r = def.Decide(state, Envelope(w));
  EXPECT_EQ(r.kind, Kind::kRejected);
  EXPECT_EQ(r.status, absl::FailedPreconditionError("insufficient"));
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.new_state, nullptr);
}

TEST(AggregateDefinitionTest, MalformedPayloadIsInvalidArgument) {
  AggregateDefinition def = TestAggregate();
  v1::CommandEnvelope envelope = Envelope(DepositOf(1));
  // Field 1, length-delimited, claims 5 bytes but only 2 follow: cannot parse.
  envelope.mutable_payload()->set_value(
      std::string("\x0a\x05"
                  "ab",
                  4));
  DecideResult r = def.Decide(Account(), envelope);
  EXPECT_EQ(r.kind, Kind::kRejected);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
  EXPECT_NE(r.status.message().find("bank.v1.Deposit"), absl::string_view::npos) << r.status;
}

TEST(AggregateDefinitionTest, UnknownCommandTypeIsUnimplemented) {
  AggregateDefinition def = TestAggregate();
  google::protobuf::StringValue unknown;
  unknown.set_value("x");
  DecideResult r = def.Decide(Account(), Envelope(unknown));
  EXPECT_EQ(r.kind, Kind::kRejected);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnimplemented) << r.status;
  EXPECT_NE(r.status.message().find("google.protobuf.StringValue"), absl::string_view::npos);
}

// Commands are found by their type URL as Any::PackFrom builds it, and by the name after the
// URL's last '/' under any other prefix.
TEST(AggregateDefinitionTest, ACommandTypeIsFoundUnderAnyUrlPrefix) {
  AggregateDefinition def = TestAggregate();
  Account state;
  state.set_balance(10);
  DecideResult packed = def.Decide(state, Envelope(DepositOf(5)));
  ASSERT_EQ(packed.kind, Kind::kAccepted) << packed.status;
  const int64_t balance = static_cast<const Account&>(*packed.new_state).balance();
  ASSERT_GT(balance, 10);
  for (const char* prefix : {"type.googleapis.com", "types.example.com/leftfold", ""}) {
    v1::CommandEnvelope envelope = Envelope(DepositOf(5));
    envelope.mutable_payload()->PackFrom(DepositOf(5), prefix);
    DecideResult r = def.Decide(state, envelope);
    ASSERT_EQ(r.kind, Kind::kAccepted) << envelope.payload().type_url() << ": " << r.status;
    EXPECT_EQ(static_cast<const Account&>(*r.new_state).balance(), balance);
  }
  v1::CommandEnvelope wrong_type = Envelope(DepositOf(5));
  wrong_type.mutable_payload()->set_type_url("type.googleapis.com/bank.v1.NoSuchCommand");
  DecideResult r = def.Decide(state, wrong_type);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnimplemented) << r.status;
  EXPECT_NE(r.status.message().find("bank.v1.NoSuchCommand"), absl::string_view::npos);
}

TEST(AggregateDefinitionTest, MissingPayloadOrWrongAggregateTypeIsInvalidArgument) {
  AggregateDefinition def = TestAggregate();
  v1::CommandEnvelope empty;
  empty.set_aggregate_id("a-1");
  EXPECT_EQ(def.Decide(Account(), empty).status.code(), absl::StatusCode::kInvalidArgument);
  v1::CommandEnvelope other = Envelope(DepositOf(1));
  other.set_aggregate_type("shop.order");
  DecideResult r = def.Decide(Account(), other);
  EXPECT_EQ(r.kind, Kind::kRejected);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
}

TEST(AggregateDefinitionTest, ThrowingDecideFailsWithWhat) {
  AggregateDefinition def =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>(
              [](const Account&, const bank::v1::Deposit&, Emit&) -> absl::Status {
                throw std::runtime_error("boom in decide");
              });
  DecideResult r = def.Decide(Account(), Envelope(DepositOf(1)));
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(r.status.message().find("boom in decide"), absl::string_view::npos) << r.status;

  AggregateDefinition odd =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>(
              [](const Account&, const bank::v1::Deposit&, Emit&) -> absl::Status { throw 42; });
  r = odd.Decide(Account(), Envelope(DepositOf(1)));
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_NE(r.status.message().find("non-standard exception"), absl::string_view::npos);
}

TEST(AggregateDefinitionTest, InternalOrUnknownStatusIsFailedOthersRejected) {
  for (absl::StatusCode code :
       {absl::StatusCode::kInternal, absl::StatusCode::kUnknown, absl::StatusCode::kDataLoss}) {
    AggregateDefinition def =
        Aggregate<Account>("test.account")
            .Decide<bank::v1::Deposit>([code](const Account&, const bank::v1::Deposit&, Emit&) {
              return absl::Status(code, "broken");
            });
    DecideResult r = def.Decide(Account(), Envelope(DepositOf(1)));
    EXPECT_EQ(r.kind, Kind::kFailed) << absl::StatusCodeToString(code);
    EXPECT_EQ(r.status, absl::Status(code, "broken"));
  }
  AggregateDefinition def =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>([](const Account&, const bank::v1::Deposit& d, Emit& emit) {
            emit(d);  // discarded: the command is rejected
            return absl::PermissionDeniedError("no");
          });
  DecideResult r = def.Decide(Account(), Envelope(DepositOf(1)));
  EXPECT_EQ(r.kind, Kind::kRejected);
  EXPECT_EQ(r.status, absl::PermissionDeniedError("no"));
  EXPECT_TRUE(r.events.empty());
}

TEST(AggregateDefinitionTest, EmittingAnEventWithoutApplyFails) {
  AggregateDefinition def =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>([](const Account&, const bank::v1::Deposit&, Emit& emit) {
            emit(bank::v1::AccountClosed());
            return absl::OkStatus();
          });
  DecideResult r = def.Decide(Account(), Envelope(DepositOf(1)));
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_NE(r.status.message().find("bank.v1.AccountClosed"), absl::string_view::npos) << r.status;
  EXPECT_NE(r.status.message().find("no Apply"), absl::string_view::npos) << r.status;
  EXPECT_TRUE(r.events.empty());
}

TEST(AggregateDefinitionTest, ThrowingApplyFailsTheCommand) {
  AggregateDefinition def =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>([](const Account&, const bank::v1::Deposit&, Emit& emit) {
            emit(bank::v1::Deposited());
            return absl::OkStatus();
          })
          .Apply<bank::v1::Deposited>([](Account&, const bank::v1::Deposited&) {
            throw std::logic_error("apply exploded");
          });
  DecideResult r = def.Decide(Account(), Envelope(DepositOf(1)));
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_NE(r.status.message().find("apply exploded"), absl::string_view::npos) << r.status;

  google::protobuf::Any stored;
  stored.PackFrom(bank::v1::Deposited());
  Account state;
  absl::Status s = def.Apply(state, stored);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("apply exploded"), absl::string_view::npos) << s;
}

TEST(AggregateDefinitionTest, ApplyFoldsStoredEvents) {
  AggregateDefinition def = TestAggregate();
  std::unique_ptr<google::protobuf::Message> state = def.NewState();
  bank::v1::Deposited d;
  d.set_amount(7);
  google::protobuf::Any any;
  any.PackFrom(d);
  ASSERT_TRUE(def.Apply(*state, any).ok());
  ASSERT_TRUE(def.Apply(*state, any).ok());
  EXPECT_EQ(static_cast<Account&>(*state).balance(), 14);

  google::protobuf::Any unknown;
  unknown.PackFrom(bank::v1::AccountClosed());
  EXPECT_EQ(def.Apply(*state, unknown).code(), absl::StatusCode::kInvalidArgument);

  google::protobuf::Any garbage = any;
  garbage.set_value(
      std::string("\x0a\x05"
                  "ab",
                  4));
  EXPECT_EQ(def.Apply(*state, garbage).code(), absl::StatusCode::kDataLoss);

  bank::v1::Deposit wrong_state;
  EXPECT_EQ(def.Apply(wrong_state, any).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(static_cast<Account&>(*state).balance(), 14) << "failed applies change nothing";
}

TEST(AggregateDefinitionTest, WrongStateTypeFails) {
  AggregateDefinition def = TestAggregate();
  DecideResult r = def.Decide(bank::v1::Deposit(), Envelope(DepositOf(1)));
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInternal);
}

TEST(AggregateDefinitionTest, DecideCanReadTheCommandContext) {
  AggregateDefinition def =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>([](const Account&, const bank::v1::Deposit&, Emit& emit,
                                        const CommandContext& ctx) {
            bank::v1::Deposited e;
            e.set_amount(ctx.version().value());
            e.set_reference(absl::StrCat(ctx.aggregate_id().value(), "/", ctx.command_id().value(),
                                         "/", ctx.envelope().metadata().at("who")));
            emit(e);
            return absl::OkStatus();
          })
          .Apply<bank::v1::Deposited>([](Account&, const bank::v1::Deposited&) {});
  v1::CommandEnvelope envelope = Envelope(DepositOf(1));
  (*envelope.mutable_metadata())["who"] = "ada";
  DecideResult r = def.Decide(Account(), envelope, Version(41));
  ASSERT_EQ(r.kind, Kind::kAccepted) << r.status;
  bank::v1::Deposited e;
  ASSERT_TRUE(r.events[0].UnpackTo(&e));
  EXPECT_EQ(e.amount(), 41);
  EXPECT_EQ(e.reference(), "a-1/c-1/ada");
}

TEST(AggregateDefinitionTest, ApplyMayReturnAStatus) {
  AggregateDefinition def =
      Aggregate<Account>("test.account")
          .Decide<bank::v1::Deposit>([](const Account&, const bank::v1::Deposit&, Emit& emit) {
            emit(bank::v1::Deposited());
            return absl::OkStatus();
          })
          .Apply<bank::v1::Deposited>([](Account&, const bank::v1::Deposited&) {
            return absl::FailedPreconditionError("invariant broken");
          });
  DecideResult r = def.Decide(Account(), Envelope(DepositOf(1)));
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_NE(r.status.message().find("invariant broken"), absl::string_view::npos) << r.status;
}

TEST(AggregateDefinitionTest, ValidateReportsEveryProblem) {
  auto noop = [](const Account&, const bank::v1::Deposit&, Emit&) { return absl::OkStatus(); };
  absl::Status empty_name =
      Aggregate<Account>("").Decide<bank::v1::Deposit>(noop).Definition().Validate();
  EXPECT_EQ(empty_name.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(empty_name.message().find("type name is empty"), absl::string_view::npos) << empty_name;

  absl::Status bad_name =
      Aggregate<Account>("bank account").Decide<bank::v1::Deposit>(noop).Definition().Validate();
  EXPECT_NE(bad_name.message().find("[A-Za-z0-9._-]"), absl::string_view::npos) << bad_name;

  absl::StatusOr<AggregateDefinition> dup =
      Aggregate<Account>("test.account")
          .Version(0)
          .Decide<bank::v1::Deposit>(noop)
          .Decide<bank::v1::Deposit>(noop)
          .Apply<bank::v1::Deposited>([](auto&, const auto&) {})
          .Apply<bank::v1::Deposited>([](auto&, const auto&) {})
          .Build();
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dup.status().message().find("two Decide<bank.v1.Deposit>"), absl::string_view::npos)
      << dup.status();
  EXPECT_NE(dup.status().message().find("two Apply<bank.v1.Deposited>"), absl::string_view::npos)
      << dup.status();
  EXPECT_NE(dup.status().message().find("version must be >= 1"), absl::string_view::npos)
      << dup.status();

  absl::Status no_decide = Aggregate<Account>("test.account").Definition().Validate();
  EXPECT_NE(no_decide.message().find("no Decide"), absl::string_view::npos) << no_decide;

  EXPECT_TRUE(TestAggregate().Build().ok());
}

TEST(AggregateDefinitionTest, ConcurrentDecidesOnOneDefinition) {
  const AggregateDefinition def = TestAggregate();
  std::vector<std::thread> threads;
  std::vector<int> accepted(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&def, &accepted, t] {
      Account state;
      for (int i = 0; i < 1000; ++i) {
        DecideResult r = def.Decide(state, Envelope(DepositOf(1)));
        if (r.kind == Kind::kAccepted &&
            static_cast<const Account&>(*r.new_state).balance() == state.balance() + 2) {
          ++accepted[t];
          state = static_cast<const Account&>(*r.new_state);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(accepted, std::vector<int>(4, 1000));
}

}  // namespace
}  // namespace leftfold
