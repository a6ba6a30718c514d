// Aggregates: the user's decide and apply functions, declared once, validated once.
//
// An aggregate's state is the left fold of its events. The user writes two kinds of pure
// functions over protobuf messages, and the framework does everything else (transport, ordering,
// exactly-once, snapshots):
//   decide(state, command) -> events, or a rejection (a non-OK absl::Status)
//   apply(state, event)    -> state (mutated in place)
//
//   leftfold::Aggregate<bank::v1::Account> AccountAggregate() {
//     return leftfold::Aggregate<bank::v1::Account>("bank.account")
//         .Version(1)  // bump when an Apply changes meaning: older snapshots are then not trusted
//         .Decide<bank::v1::Withdraw>([](const bank::v1::Account& state,
//                                         const bank::v1::Withdraw& cmd,
//                                         leftfold::Emit& emit) -> absl::Status {
//           if (state.balance() < cmd.amount()) {
//             return absl::FailedPreconditionError("insufficient funds");
//           }
//           bank::v1::Withdrawn e;
//           e.set_amount(cmd.amount());
//           emit(e);
//           return absl::OkStatus();
//         })
//         .Apply<bank::v1::Withdrawn>([](bank::v1::Account& state, const bank::v1::Withdrawn& e) {
//           state.set_balance(state.balance() - e.amount());
//         });
//   }
//
// Handler shapes (lambdas may use concrete parameter types or `auto`; the template argument names
// the message type, so `auto` always deduces):
//   Decide<C>:  absl::Status(const State&, const C&, leftfold::Emit&)
//               absl::Status(const State&, const C&, leftfold::Emit&, const
//               leftfold::CommandContext&)
//   Apply<E>:   void(State&, const E&)   or   absl::Status(State&, const E&)
// Handlers must be pure and callable concurrently (no mutable captures): the runtime calls them
// from one thread per partition. A decide's rejection is any non-OK status it returns, and reaches
// the client as that gRPC code; INTERNAL, UNKNOWN and DATA_LOSS instead mean "the handler is
// broken" and become a FAILED result, as does a thrown exception.
//
// The runtime works on the type-erased AggregateDefinition. An Aggregate<State> converts to one
// implicitly (unvalidated; the runtime and the test fixture call Validate() at start-up), or
// explicitly with Build(), which validates:
//   absl::StatusOr<leftfold::AggregateDefinition> def = AccountAggregate().Build();
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/message.h"
#include "leftfold/types.h"
#include "leftfold/v1/envelope.pb.h"

namespace leftfold {

class AggregateDefinition;
struct DecideResult;

// What a decide handler emits events through: `emit(event)` applies the event to the new state
// and records it. Owned by AggregateDefinition::Decide for the duration of one call; not
// thread-safe (one decide). Events take effect only if decide returns OK; a rejected command
// emits nothing.
class Emit {
 public:
  Emit(const Emit&) = delete;
  Emit& operator=(const Emit&) = delete;

  void operator()(const google::protobuf::Message& event);

 private:
  friend class AggregateDefinition;
  // Each event is folded into `out.new_state` (a copy of `state` from the first event on) and
  // serialized into `out.events` when emitted, so no copy of it is kept. The first failure (no
  // Apply, an Apply that fails or throws) is kept, later events are ignored, and decide's
  // outcome is FAILED with it.
  Emit(const AggregateDefinition& definition, const google::protobuf::Message& state,
       DecideResult& out, absl::string_view command_type)
      : definition_(definition), state_(state), out_(out), command_type_(command_type) {}

  const AggregateDefinition& definition_;
  const google::protobuf::Message& state_;
  DecideResult& out_;
  absl::string_view command_type_;
  size_t count_ = 0;  // events emitted (and applied) so far
  absl::Status error_;
};

namespace internal {

// A command as AggregateDefinition::DecideInto reads it: views of the fields deciding needs,
// and the whole envelope for CommandContext::envelope(): `envelope` itself, or else
// `serialized`, its bytes, parsed only when a handler asks. The runtime fills it from the
// command record's bytes without building the message (processor/command_parser.h).
struct CommandFields {
  absl::string_view command_id;
  absl::string_view aggregate_type;
  absl::string_view aggregate_id;
  absl::string_view payload_type_url;
  absl::string_view payload_value;
  const v1::CommandEnvelope* envelope = nullptr;
  absl::string_view serialized;  // when `envelope` is null
};

}  // namespace internal

// What a decide handler may know besides state and command: who the command is for, which
// command it is, and the aggregate's version before it. Lives for one Decide call.
class CommandContext {
 public:
  CommandContext(const v1::CommandEnvelope& envelope, Version version);
  CommandContext(const internal::CommandFields& command, Version version)
      : command_(command), version_(version) {}

  // Copied from the envelope on first use (most handlers never ask).
  const AggregateId& aggregate_id() const {
    if (!aggregate_id_) aggregate_id_.emplace(std::string(command_.aggregate_id));
    return *aggregate_id_;
  }
  const CommandId& command_id() const {
    if (!command_id_) command_id_.emplace(std::string(command_.command_id));
    return *command_id_;
  }
  // Number of events the aggregate had before this command; 0 for a new aggregate.
  Version version() const { return version_; }
  // Metadata, correlation id and submission time, as the client sent them.
  const v1::CommandEnvelope& envelope() const;

 private:
  internal::CommandFields command_;
  mutable std::optional<v1::CommandEnvelope> parsed_;  // of command_.serialized, on first use
  mutable std::optional<AggregateId> aggregate_id_;
  mutable std::optional<CommandId> command_id_;
  Version version_;
};

// The outcome of AggregateDefinition::Decide. Move-only value.
struct DecideResult {
  enum class Kind {
    // decide returned OK: `events` (possibly empty) are the new facts, `new_state` their fold.
    kAccepted,
    // decide refused the command (its non-OK status), or the command was unusable: a payload
    // that cannot be parsed (INVALID_ARGUMENT) or a command type without Decide (UNIMPLEMENTED).
    kRejected,
    // A handler is broken: it threw, returned INTERNAL/UNKNOWN/DATA_LOSS, an Apply failed, or
    // decide emitted an event type without Apply. The command changes nothing.
    kFailed,
  };
  Kind kind = Kind::kFailed;
  // OK iff kAccepted.
  absl::Status status;
  std::vector<google::protobuf::Any> events;
  // Set iff kAccepted.
  std::unique_ptr<google::protobuf::Message> new_state;
};

// "ACCEPTED", "REJECTED" or "FAILED" (as in v1::CommandResult::Outcome).
absl::string_view DecideKindName(DecideResult::Kind kind);

namespace internal {

// The type-erased handlers an Aggregate<State> builds; AggregateDefinition dispatches on them.
// The messages handed to `fn` are always exactly of the registered C++ types (checked in
// aggregate.cc), so the typed wrappers can static_cast.
struct DecideHandler {
  const google::protobuf::Message* prototype;  // the command type's default instance
  std::function<absl::Status(const google::protobuf::Message& state,
                             const google::protobuf::Message& command, Emit& emit,
                             const CommandContext& context)>
      fn;
};
struct ApplyHandler {
  const google::protobuf::Message* prototype;  // the event type's default instance
  std::function<absl::Status(google::protobuf::Message& state,
                             const google::protobuf::Message& event)>
      fn;
};
struct AggregateSpec {
  std::string type;
  int32_t version = 1;
  const google::protobuf::Message* state_prototype = nullptr;
  std::vector<DecideHandler> decides;  // in registration order, duplicates kept for Validate()
  std::vector<ApplyHandler> applies;
};

}  // namespace internal

// One aggregate type, type-erased: what the runtime (processor, restore, fixture) runs.
// Copies share one immutable definition; every method is const and thread-safe, and may be called
// concurrently. None throws: user exceptions are caught here (and only here) and become statuses.
class AggregateDefinition {
 public:
  // Normally made by Aggregate<State> (implicit conversion or Build()).
  explicit AggregateDefinition(internal::AggregateSpec spec);

  // The aggregate type name, e.g. "bank.account"; topics are named after it.
  const std::string& type() const;
  // The definition version (Aggregate::Version); snapshots of another version are not trusted.
  int32_t version() const;
  // A new, empty state (the fold of no events).
  std::unique_ptr<google::protobuf::Message> NewState() const;

  // Runs the command's decide on `state` (the fold of `version` events) and folds the emitted
  // events into a copy of it. `state` is not modified. Dispatch is on the payload's type URL
  // (the part after the last '/': the full message name). See DecideResult::Kind for outcomes;
  // in particular a command whose aggregate_type is set and differs from type() is rejected
  // with INVALID_ARGUMENT, as is a command without payload.
  DecideResult Decide(const google::protobuf::Message& state, const v1::CommandEnvelope& command,
                      Version version = Version(0)) const;
  // Decide into `out`, which it overwrites entirely, reusing its storage: for a runtime that
  // decides many commands, the events' strings keep their capacity from one call to the next,
  // and a `new_state` left in `out` (for example a superseded state handed back) is reused.
  //
  //   DecideResult decided;  // kept across commands
  //   definition.DecideInto(state, command, Version(7), decided);
  void DecideInto(const google::protobuf::Message& state, const v1::CommandEnvelope& command,
                  Version version, DecideResult& out) const;
  // The same for a command that the runtime read as views (see internal::CommandFields).
  void DecideInto(const google::protobuf::Message& state, const internal::CommandFields& command,
                  Version version, DecideResult& out) const;

  // Folds one stored event into `state` (restore, replay). Errors: INVALID_ARGUMENT for an event
  // type without Apply or a state of the wrong type, DATA_LOSS for unparseable bytes, INTERNAL
  // when Apply threw; a non-OK status returned by Apply is passed on with context.
  absl::Status Apply(google::protobuf::Message& state, const google::protobuf::Any& event) const;

  // Checks the definition once, at start-up: a type name usable in topic names
  // ([A-Za-z0-9._-], 1..200 chars), version >= 1, at least one Decide, no two Decides for one
  // command type and no two Applies for one event type. All problems are reported in one
  // INVALID_ARGUMENT. What a decide may emit cannot be inspected: an emitted event type without
  // Apply is a FAILED result at run time (and a test failure in the fixture).
  absl::Status Validate() const;

  // Full message names, in registration order, each once.
  std::vector<std::string> CommandTypes() const;
  std::vector<std::string> EventTypes() const;

 private:
  friend class Emit;
  struct Impl;
  // Emit::operator(): applies `event` to emit.out_.new_state and appends it, serialized.
  absl::Status ApplyEmitted(Emit& emit, const google::protobuf::Message& event) const;
  std::shared_ptr<const Impl> impl_;
};

// The typed builder users write. A value: copy it, return it from a function, convert it.
// Not thread-safe while being built; the AggregateDefinition it produces is.
template <typename State>
class Aggregate {
  static_assert(std::is_base_of_v<google::protobuf::Message, State>,
                "Aggregate<State>: State must be a generated protobuf message type");

 public:
  // `type` names the aggregate type and its topics, e.g. "bank.account".
  explicit Aggregate(std::string type) {
    spec_.type = std::move(type);
    spec_.state_prototype = &State::default_instance();
  }

  // The definition version. Default: 1. Bump it when an Apply changes what a stored event means.
  Aggregate& Version(int32_t version) {
    spec_.version = version;
    return *this;
  }

  // Registers the decide function for command type `Command`.
  template <typename Command, typename F>
  Aggregate& Decide(F handler) {
    static_assert(std::is_base_of_v<google::protobuf::Message, Command>,
                  "Decide<Command>: Command must be a generated protobuf message type");
    constexpr bool kWithContext =
        std::is_invocable_r_v<absl::Status, const F&, const State&, const Command&, Emit&,
                              const CommandContext&>;
    constexpr bool kPlain =
        std::is_invocable_r_v<absl::Status, const F&, const State&, const Command&, Emit&>;
    static_assert(kWithContext || kPlain,
                  "Decide<Command>(f): f must be callable (as const, no mutable state) as "
                  "absl::Status(const State&, const Command&, leftfold::Emit&) or "
                  "absl::Status(const State&, const Command&, leftfold::Emit&, "
                  "const leftfold::CommandContext&)");
    spec_.decides.push_back(internal::DecideHandler{
        &Command::default_instance(),
        [f = std::move(handler)](const google::protobuf::Message& state,
                                 const google::protobuf::Message& command, Emit& emit,
                                 const CommandContext& context) -> absl::Status {
          if constexpr (kWithContext) {
            return f(static_cast<const State&>(state), static_cast<const Command&>(command), emit,
                     context);
          } else {
            (void)context;
            return f(static_cast<const State&>(state), static_cast<const Command&>(command), emit);
          }
        }});
    return *this;
  }

  // Registers the apply function for event type `Event`.
  template <typename Event, typename F>
  Aggregate& Apply(F handler) {
    static_assert(std::is_base_of_v<google::protobuf::Message, Event>,
                  "Apply<Event>: Event must be a generated protobuf message type");
    static_assert(std::is_invocable_v<const F&, State&, const Event&>,
                  "Apply<Event>(f): f must be callable (as const, no mutable state) as "
                  "void(State&, const Event&) or absl::Status(State&, const Event&)");
    using R = std::invoke_result_t<const F&, State&, const Event&>;
    static_assert(std::is_void_v<R> || std::is_convertible_v<R, absl::Status>,
                  "Apply<Event>(f): f must return void or absl::Status");
    spec_.applies.push_back(internal::ApplyHandler{
        &Event::default_instance(),
        [f = std::move(handler)](google::protobuf::Message& state,
                                 const google::protobuf::Message& event) -> absl::Status {
          if constexpr (std::is_void_v<R>) {
            f(static_cast<State&>(state), static_cast<const Event&>(event));
            return absl::OkStatus();
          } else {
            return f(static_cast<State&>(state), static_cast<const Event&>(event));
          }
        }});
    return *this;
  }

  // The aggregate type name given to the constructor.
  const std::string& type() const { return spec_.type; }

  // The definition, unvalidated (the runtime validates it at start-up).
  AggregateDefinition Definition() const { return AggregateDefinition(spec_); }
  operator AggregateDefinition() const { return Definition(); }  // NOLINT: implicit on purpose

  // The definition, validated.
  absl::StatusOr<AggregateDefinition> Build() const {
    AggregateDefinition definition(spec_);
    absl::Status status = definition.Validate();
    if (!status.ok()) return status;
    return definition;
  }

 private:
  internal::AggregateSpec spec_;
};

}  // namespace leftfold
