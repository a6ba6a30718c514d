// Given-when-then tests for aggregates, in memory, no Kafka (GoogleTest).
//
//   TEST(Account, WithdrawEmitsWithdrawn) {
//     leftfold::testing::AggregateFixture f(bank::AccountAggregate());
//     f.Given(opened, deposited).When(withdraw).ThenEmits(withdrawn).ThenState(expected_account);
//     f.Given(opened).When(withdraw_too_much)
//         .ThenRejects(absl::StatusCode::kFailedPrecondition, "insufficient");
//     f.Given().When(cmd).ThenFails("threw");
//   }
//
// Given(events...) folds the events with the definition's Apply (the aggregate's version is then
// the number of events), When(command) runs Decide exactly as the processor does, and each Then...
// adds a non-fatal gtest failure, at the caller's file and line, that shows expected against
// actual as text protos plus a field-by-field diff. ThenEmits has no location parameter of its
// own (its events are variadic); its failures point at the When(...) call.
//
// The fixture validates the definition on construction (a failure if invalid). Objects are
// values for one test thread; a scenario or outcome may be kept and checked several times.
#pragma once

#include <memory>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"
#include "leftfold/aggregate.h"
#include "leftfold/testing/aggregate_checks.h"
#include "leftfold/v1/envelope.pb.h"

namespace leftfold::testing {

// What When(...) returned: the DecideResult, and the checks on it. Each Then... returns *this, so
// checks chain.
class AggregateOutcome {
 public:
  // Expects the command accepted with exactly these events, in order (none: ThenEmits()).
  template <typename... Events>
  AggregateOutcome& ThenEmits(const Events&... events) {
    static_assert((std::is_base_of_v<google::protobuf::Message, Events> && ...),
                  "ThenEmits: every event must be a protobuf message");
    Report(internal::fixture::CheckEmits(result_, {&events...}), where_);
    return *this;
  }
  // Expects a rejection with `code` whose message contains `message_substring`.
  AggregateOutcome& ThenRejects(absl::StatusCode code, absl::string_view message_substring = "",
                                std::source_location where = std::source_location::current()) {
    Report(internal::fixture::CheckRejects(result_, code, message_substring), where);
    return *this;
  }
  // Expects a FAILED result (a broken handler) whose message contains `message_substring`.
  AggregateOutcome& ThenFails(absl::string_view message_substring = "",
                              std::source_location where = std::source_location::current()) {
    Report(internal::fixture::CheckFails(result_, message_substring), where);
    return *this;
  }
  // Expects the command accepted and the state after it equal to `expected`.
  AggregateOutcome& ThenState(const google::protobuf::Message& expected,
                              std::source_location where = std::source_location::current()) {
    Report(internal::fixture::CheckState(result_, expected), where);
    return *this;
  }

  const DecideResult& result() const { return result_; }

 private:
  friend class AggregateScenario;
  AggregateOutcome(DecideResult result, bool skip, std::source_location where)
      : result_(std::move(result)), skip_(skip), where_(where) {}

  void Report(const std::string& failure, std::source_location where) const {
    if (failure.empty() || skip_) return;
    ADD_FAILURE_AT(where.file_name(), where.line()) << absl::StripTrailingAsciiWhitespace(failure);
  }

  DecideResult result_;
  bool skip_;  // Given failed and was reported: more failures would only add noise.
  std::source_location where_;
};

// The aggregate after Given(...): run commands on it with When.
class AggregateScenario {
 public:
  // Runs `command` (any protobuf message) as the payload of a CommandEnvelope.
  AggregateOutcome When(const google::protobuf::Message& command,
                        std::source_location where = std::source_location::current()) const {
    v1::CommandEnvelope envelope;
    envelope.mutable_payload()->PackFrom(command);
    return WhenEnvelope(std::move(envelope), where);
  }
  // Runs a hand-made envelope (malformed payloads, metadata); an empty aggregate type, aggregate
  // id or command id is filled in.
  AggregateOutcome WhenEnvelope(
      v1::CommandEnvelope envelope,
      std::source_location where = std::source_location::current()) const {
    if (!given_failure_.empty()) {
      ADD_FAILURE_AT(where.file_name(), where.line()) << given_failure_;
      return AggregateOutcome(DecideResult{}, /*skip=*/true, where);
    }
    if (envelope.aggregate_type().empty()) envelope.set_aggregate_type(definition_.type());
    if (envelope.aggregate_id().empty()) envelope.set_aggregate_id(aggregate_id_);
    if (envelope.command_id().empty()) envelope.set_command_id("fixture-command");
    return AggregateOutcome(definition_.Decide(*state_, envelope, version_), /*skip=*/false, where);
  }

  // The fold of the Given events.
  const google::protobuf::Message& state() const { return *state_; }

 private:
  friend class AggregateFixture;
  AggregateScenario(AggregateDefinition definition, std::string aggregate_id,
                    const std::vector<const google::protobuf::Message*>& events)
      : definition_(std::move(definition)),
        aggregate_id_(std::move(aggregate_id)),
        state_(definition_.NewState()),
        version_(static_cast<int64_t>(events.size())),
        given_failure_(internal::fixture::FoldGiven(definition_, events, *state_)) {}

  AggregateDefinition definition_;
  std::string aggregate_id_;
  std::shared_ptr<google::protobuf::Message> state_;
  Version version_;
  std::string given_failure_;
};

// Owns the definition under test. Cheap to construct; one per test is usual.
class AggregateFixture {
 public:
  explicit AggregateFixture(AggregateDefinition definition,
                            std::source_location where = std::source_location::current())
      : definition_(std::move(definition)) {
    absl::Status valid = definition_.Validate();
    if (!valid.ok()) ADD_FAILURE_AT(where.file_name(), where.line()) << valid.ToString();
  }

  // The aggregate id commands are sent to. Default: "test-aggregate".
  AggregateFixture& WithAggregateId(std::string aggregate_id) {
    aggregate_id_ = std::move(aggregate_id);
    return *this;
  }

  // The aggregate's past: these events (protobuf messages), folded in order.
  template <typename... Events>
  AggregateScenario Given(const Events&... events) const {
    static_assert((std::is_base_of_v<google::protobuf::Message, Events> && ...),
                  "Given: every event must be a protobuf message");
    return AggregateScenario(definition_, aggregate_id_, {&events...});
  }
  // Same, from a list built at run time.
  AggregateScenario GivenEvents(const std::vector<const google::protobuf::Message*>& events) const {
    return AggregateScenario(definition_, aggregate_id_, events);
  }

  const AggregateDefinition& definition() const { return definition_; }

 private:
  AggregateDefinition definition_;
  std::string aggregate_id_ = "test-aggregate";
};

}  // namespace leftfold::testing
