// Dispatch for every aggregate: the one place user decide/apply handlers run and the one place
// their exceptions are caught (STYLE.md, "Errors").
#include "leftfold/aggregate.h"

#include <deque>
#include <exception>
#include <memory>
#include <typeinfo>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace leftfold {
namespace {

using google::protobuf::Message;

// "type.googleapis.com/bank.v1.Withdraw" -> "bank.v1.Withdraw" (the Any convention).
absl::string_view TypeNameFromUrl(absl::string_view url) {
  size_t slash = url.rfind('/');
  return slash == absl::string_view::npos ? url : url.substr(slash + 1);
}

// Codes that say "the handler is broken", not "the command is wrong".
bool IsHandlerFailure(absl::StatusCode code) {
  return code == absl::StatusCode::kInternal || code == absl::StatusCode::kUnknown ||
         code == absl::StatusCode::kDataLoss;
}

// A rejected or failed outcome: no events, no new state.
void Finish(DecideResult& out, DecideResult::Kind kind, absl::Status status) {
  out.kind = kind;
  out.status = std::move(status);
  out.events.clear();
  out.new_state.reset();
}

// Sets out.new_state to a copy of `state`. A new_state left in `out` (by the caller, or by the
// last call when it was not moved out) is reused: cleared, its strings keep their capacity, so
// copying allocates nothing. MergeFrom into it, not CopyFrom: protobuf as built here runs
// CopyFrom's check that the source is not a descendant of the target by reflection (~4% of an
// embedded processor's thread in perf).
void CopyState(const Message& state, DecideResult& out) {
  if (out.new_state == nullptr || typeid(*out.new_state) != typeid(state)) {
    out.new_state.reset(state.New());
  } else {
    out.new_state->Clear();
  }
  out.new_state->MergeFrom(state);
}

bool ValidTypeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Runs one apply handler on an event of exactly its C++ type; catches what it throws.
absl::Status RunApply(const internal::ApplyHandler& handler, Message& state, const Message& event) {
  // The type's name only for an error: finding the descriptor is a virtual call and more.
  auto event_type = [&handler] { return handler.prototype->GetDescriptor()->full_name(); };
  absl::Status status;
  try {
    status = handler.fn(state, event);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("apply of ", event_type(), " threw: ", e.what()));
  } catch (...) {
    return absl::InternalError(
        absl::StrCat("apply of ", event_type(), " threw a non-standard exception"));
  }
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("apply of ", event_type(), " failed: ", status.message()));
  }
  return absl::OkStatus();
}

// The command payload messages of this thread, one per command type, parsed in place by every
// Decide call (their strings keep their capacity): a message per call, even on an arena, cost
// more than the handler that reads it (callgrind: ~400 instructions per command for the arena
// alone). A payload in use (a decide handler that calls Decide again) is not handed out twice.
class PayloadLease {
 public:
  explicit PayloadLease(const Message& prototype) {
    thread_local std::deque<Slot> slots;  // a deque: a leased slot stays put as others are added
    const std::type_info& type = typeid(prototype);
    Slot* found = nullptr;
    for (Slot& slot : slots) {  // the same type_info object: no name comparison
      if (slot.type == &type) {
        found = &slot;
        break;
      }
    }
    for (size_t i = 0; found == nullptr && i < slots.size(); ++i) {
      if (*slots[i].type == type) found = &slots[i];  // another copy of it (a shared library's)
    }
    if (found == nullptr) {
      found = &slots.emplace_back(Slot{&type, std::unique_ptr<Message>(prototype.New())});
    }
    if (!found->in_use) {
      slot_ = found;
      slot_->in_use = true;
      message_ = slot_->message.get();
    } else {
      own_.reset(prototype.New());
      message_ = own_.get();
    }
  }
  PayloadLease(const PayloadLease&) = delete;
  PayloadLease& operator=(const PayloadLease&) = delete;
  ~PayloadLease() {
    if (slot_ != nullptr) slot_->in_use = false;
  }
  Message* get() const { return message_; }

 private:
  struct Slot {
    const std::type_info* type;
    std::unique_ptr<Message> message;
    bool in_use = false;
  };
  Slot* slot_ = nullptr;
  std::unique_ptr<Message> own_;  // when this thread's payload of the type is leased already
  Message* message_ = nullptr;
};

}  // namespace

absl::string_view DecideKindName(DecideResult::Kind kind) {
  switch (kind) {
    case DecideResult::Kind::kAccepted:
      return "ACCEPTED";
    case DecideResult::Kind::kRejected:
      return "REJECTED";
    case DecideResult::Kind::kFailed:
      return "FAILED";
  }
  return "UNKNOWN";
}

void Emit::operator()(const Message& event) {
  if (!error_.ok()) return;  // the first failure stands
  error_ = definition_.ApplyEmitted(*this, event);
}

struct AggregateDefinition::Impl {
  internal::AggregateSpec spec;
  // Point into `spec`, which never changes after construction. The first registration wins;
  // Validate() reports duplicates.
  absl::flat_hash_map<std::string, const internal::DecideHandler*> decide_by_type;
  // The same by "type.googleapis.com/<command type>", the URL Any::PackFrom builds: a command
  // packed so is found without cutting the name out of its URL first.
  struct Decide {
    const internal::DecideHandler* handler;
    absl::string_view type;  // the registered full name (owned by its descriptor)
  };
  absl::flat_hash_map<std::string, Decide> decide_by_url;
  struct Apply {
    const internal::ApplyHandler* handler;
    // "type.googleapis.com/<event type>", as Any::PackFrom would build it for every event.
    std::string type_url;
  };
  absl::flat_hash_map<std::string, Apply> apply_by_type;
  // The same, by the descriptor of the registered type: an event of that type (the usual case)
  // is found without hashing its name. Points into `apply_by_type`, complete once constructed.
  absl::flat_hash_map<const google::protobuf::Descriptor*, const Apply*> apply_by_descriptor;

  // The same, by the registered C++ class: an event of exactly that class (the usual case) is
  // found without the virtual call for its descriptor. Points into `apply_by_type`.
  absl::flat_hash_map<const std::type_info*, const Apply*> apply_by_class;

  const Apply* FindApply(const Message& event) const {
    if (auto it = apply_by_class.find(&typeid(event)); it != apply_by_class.end()) {
      return it->second;
    }
    const google::protobuf::Descriptor* descriptor = event.GetDescriptor();
    if (auto it = apply_by_descriptor.find(descriptor); it != apply_by_descriptor.end()) {
      return it->second;
    }
    // A descriptor of another pool (a DynamicMessage, say) with a registered name.
    auto it = apply_by_type.find(descriptor->full_name());
    return it == apply_by_type.end() ? nullptr : &it->second;
  }

  // Guards the static_casts of the typed wrappers: a message of another C++ class (even a
  // DynamicMessage of the same descriptor) must never reach them.
  bool IsState(const Message& state) const {
    return typeid(state) == typeid(*spec.state_prototype);
  }
};

AggregateDefinition::AggregateDefinition(internal::AggregateSpec spec) {
  auto impl = std::make_shared<Impl>();
  impl->spec = std::move(spec);
  for (const internal::DecideHandler& h : impl->spec.decides) {
    const std::string& name = h.prototype->GetDescriptor()->full_name();
    if (impl->decide_by_type.try_emplace(name, &h).second) {
      impl->decide_by_url.try_emplace(absl::StrCat("type.googleapis.com/", name),
                                      Impl::Decide{&h, name});
    }
  }
  for (const internal::ApplyHandler& h : impl->spec.applies) {
    const std::string& name = h.prototype->GetDescriptor()->full_name();
    impl->apply_by_type.try_emplace(name,
                                    Impl::Apply{&h, absl::StrCat("type.googleapis.com/", name)});
  }
  for (const auto& [name, apply] : impl->apply_by_type) {
    impl->apply_by_descriptor.try_emplace(apply.handler->prototype->GetDescriptor(), &apply);
    impl->apply_by_class.try_emplace(&typeid(*apply.handler->prototype), &apply);
  }
  impl_ = std::move(impl);
}

const std::string& AggregateDefinition::type() const { return impl_->spec.type; }

int32_t AggregateDefinition::version() const { return impl_->spec.version; }

std::unique_ptr<Message> AggregateDefinition::NewState() const {
  return std::unique_ptr<Message>(impl_->spec.state_prototype->New());
}

DecideResult AggregateDefinition::Decide(const Message& state, const v1::CommandEnvelope& command,
                                         Version version) const {
  DecideResult result;
  DecideInto(state, command, version, result);
  return result;
}

namespace {

// The views DecideInto reads of a whole envelope (the fixture's and the public API's way in).
internal::CommandFields FieldsOf(const v1::CommandEnvelope& envelope) {
  return {.command_id = envelope.command_id(),
          .aggregate_type = envelope.aggregate_type(),
          .aggregate_id = envelope.aggregate_id(),
          .payload_type_url = envelope.payload().type_url(),
          .payload_value = envelope.payload().value(),
          .envelope = &envelope};
}

}  // namespace

CommandContext::CommandContext(const v1::CommandEnvelope& envelope, Version version)
    : CommandContext(FieldsOf(envelope), version) {}

const v1::CommandEnvelope& CommandContext::envelope() const {
  if (command_.envelope != nullptr) return *command_.envelope;
  if (!parsed_.has_value()) {
    // The runtime handed over bytes that parsed (as views) already: this parse succeeds too.
    parsed_.emplace();
    if (!parsed_->ParseFromArray(command_.serialized.data(),
                                 static_cast<int>(command_.serialized.size()))) {
      parsed_->Clear();
    }
  }
  return *parsed_;
}

void AggregateDefinition::DecideInto(const Message& state, const v1::CommandEnvelope& command,
                                     Version version, DecideResult& out) const {
  DecideInto(state, FieldsOf(command), version, out);
}

void AggregateDefinition::DecideInto(const Message& state, const internal::CommandFields& command,
                                     Version version, DecideResult& out) const {
  const internal::AggregateSpec& spec = impl_->spec;
  if (!impl_->IsState(state)) {
    return Finish(out, DecideResult::Kind::kFailed,
                  absl::InternalError(absl::StrCat("aggregate ", spec.type, ": state is a ",
                                                   state.GetTypeName(), ", expected ",
                                                   spec.state_prototype->GetTypeName())));
  }
  if (!command.aggregate_type.empty() && command.aggregate_type != spec.type) {
    return Finish(
        out, DecideResult::Kind::kRejected,
        absl::InvalidArgumentError(absl::StrCat("command for aggregate type ",
                                                command.aggregate_type, " sent to ", spec.type)));
  }
  if (command.payload_type_url.empty()) {
    return Finish(out, DecideResult::Kind::kRejected,
                  absl::InvalidArgumentError("command has no payload"));
  }
  absl::string_view command_type;
  const internal::DecideHandler* found = nullptr;
  if (auto by_url = impl_->decide_by_url.find(command.payload_type_url);
      by_url != impl_->decide_by_url.end()) {
    found = by_url->second.handler;
    command_type = by_url->second.type;
  } else {  // another URL prefix
    command_type = TypeNameFromUrl(command.payload_type_url);
    auto by_type = impl_->decide_by_type.find(command_type);
    if (by_type != impl_->decide_by_type.end()) found = by_type->second;
  }
  if (found == nullptr) {
    return Finish(out, DecideResult::Kind::kRejected,
                  absl::UnimplementedError(absl::StrCat(
                      "aggregate ", spec.type, " has no Decide for command type ", command_type)));
  }
  const internal::DecideHandler& handler = *found;
  PayloadLease payload(*handler.prototype);
  if (!payload.get()->ParseFromArray(command.payload_value.data(),
                                     static_cast<int>(command.payload_value.size()))) {
    return Finish(out, DecideResult::Kind::kRejected,
                  absl::InvalidArgumentError(absl::StrCat(
                      "malformed ", command_type, " payload: ", command.payload_value.size(),
                      " bytes do not parse")));
  }

  CommandContext context(command, version);
  Emit emit(*this, state, out, command_type);
  absl::Status status;
  try {
    status = handler.fn(state, *payload.get(), emit, context);
  } catch (const std::exception& e) {
    return Finish(
        out, DecideResult::Kind::kFailed,
        absl::InternalError(absl::StrCat("decide of ", command_type, " threw: ", e.what())));
  } catch (...) {
    return Finish(out, DecideResult::Kind::kFailed,
                  absl::InternalError(
                      absl::StrCat("decide of ", command_type, " threw a non-standard exception")));
  }
  if (!status.ok()) {
    // Decided before the status is moved into the call (argument order is unspecified).
    DecideResult::Kind kind = IsHandlerFailure(status.code()) ? DecideResult::Kind::kFailed
                                                              : DecideResult::Kind::kRejected;
    return Finish(out, kind, std::move(status));
  }
  if (!emit.error_.ok()) return Finish(out, DecideResult::Kind::kFailed, std::move(emit.error_));
  if (emit.count_ == 0) CopyState(state, out);  // accepted without events: the same state
  out.events.resize(emit.count_);
  out.kind = DecideResult::Kind::kAccepted;
  out.status = absl::OkStatus();
}

absl::Status AggregateDefinition::ApplyEmitted(Emit& emit, const Message& event) const {
  const internal::AggregateSpec& spec = impl_->spec;
  const Impl::Apply* apply = impl_->FindApply(event);
  if (apply == nullptr) {
    return absl::InternalError(absl::StrCat("decide of ", emit.command_type_, " emitted ",
                                            event.GetTypeName(), ", but aggregate ", spec.type,
                                            " has no Apply for it"));
  }
  const internal::ApplyHandler& apply_handler = *apply->handler;
  const Message* typed = &event;
  std::unique_ptr<Message> converted;
  if (typeid(event) != typeid(*apply_handler.prototype)) {
    // Same descriptor, other C++ class (a DynamicMessage): convert through the wire format.
    converted.reset(apply_handler.prototype->New());
    if (!converted->ParseFromString(event.SerializeAsString())) {
      return absl::InternalError(absl::StrCat("emitted ", event.GetTypeName(), " does not parse"));
    }
    typed = converted.get();
  }
  DecideResult& out = emit.out_;
  if (emit.count_ == 0) CopyState(emit.state_, out);  // the first event folds into a copy
  absl::Status applied = RunApply(apply_handler, *out.new_state, *typed);
  if (!applied.ok()) {
    return absl::InternalError(
        absl::StrCat("decide of ", emit.command_type_, " accepted, but ", applied.message()));
  }
  // Any::PackFrom, with the type URL built once per type. The events kept from the last call
  // keep their strings' capacity: no allocation per event once they are large enough.
  if (out.events.size() <= emit.count_) out.events.resize(emit.count_ + 1);
  google::protobuf::Any& packed = out.events[emit.count_++];
  packed.set_type_url(apply->type_url);
  typed->SerializeToString(packed.mutable_value());
  return absl::OkStatus();
}

absl::Status AggregateDefinition::Apply(Message& state, const google::protobuf::Any& event) const {
  const internal::AggregateSpec& spec = impl_->spec;
  if (!impl_->IsState(state)) {
    return absl::InvalidArgumentError(absl::StrCat("aggregate ", spec.type, ": state is a ",
                                                   state.GetTypeName(), ", expected ",
                                                   spec.state_prototype->GetTypeName()));
  }
  absl::string_view event_type = TypeNameFromUrl(event.type_url());
  auto it = impl_->apply_by_type.find(event_type);
  if (it == impl_->apply_by_type.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("aggregate ", spec.type, " has no Apply for event type ",
                     event_type.empty() ? "(empty type URL)" : event_type));
  }
  const internal::ApplyHandler& handler = *it->second.handler;
  std::unique_ptr<Message> typed(handler.prototype->New());
  if (!typed->ParseFromString(event.value())) {
    return absl::DataLossError(absl::StrCat("stored ", event_type, " event: ", event.value().size(),
                                            " bytes do not parse"));
  }
  return RunApply(handler, state, *typed);
}

absl::Status AggregateDefinition::Validate() const {
  const internal::AggregateSpec& spec = impl_->spec;
  std::vector<std::string> errors;
  if (spec.type.empty()) {
    errors.push_back("the aggregate type name is empty");
  } else if (spec.type.size() > 200) {
    errors.push_back(absl::StrCat("the aggregate type name is ", spec.type.size(),
                                  " characters long (at most 200: it names Kafka topics)"));
  } else {
    for (char c : spec.type) {
      if (!ValidTypeChar(c)) {
        errors.push_back(
            absl::StrCat("the aggregate type name \"", spec.type,
                         "\" may contain only [A-Za-z0-9._-] (it names Kafka topics)"));
        break;
      }
    }
  }
  if (spec.state_prototype == nullptr) errors.push_back("no state type");
  if (spec.version < 1) {
    errors.push_back(absl::StrCat("the definition version must be >= 1, not ", spec.version));
  }
  if (spec.decides.empty()) errors.push_back("no Decide handler: it accepts no command");
  absl::flat_hash_set<std::string> seen;
  for (const internal::DecideHandler& h : spec.decides) {
    const std::string& name = h.prototype->GetDescriptor()->full_name();
    if (!seen.insert(name).second) errors.push_back(absl::StrCat("two Decide<", name, ">"));
  }
  seen.clear();
  for (const internal::ApplyHandler& h : spec.applies) {
    const std::string& name = h.prototype->GetDescriptor()->full_name();
    if (!seen.insert(name).second) errors.push_back(absl::StrCat("two Apply<", name, ">"));
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("aggregate definition \"", spec.type,
                                                 "\" is invalid: ", absl::StrJoin(errors, "; ")));
}

std::vector<std::string> AggregateDefinition::CommandTypes() const {
  std::vector<std::string> types;
  absl::flat_hash_set<std::string> seen;
  for (const internal::DecideHandler& h : impl_->spec.decides) {
    const std::string& name = h.prototype->GetDescriptor()->full_name();
    if (seen.insert(name).second) types.push_back(name);
  }
  return types;
}

std::vector<std::string> AggregateDefinition::EventTypes() const {
  std::vector<std::string> types;
  absl::flat_hash_set<std::string> seen;
  for (const internal::ApplyHandler& h : impl_->spec.applies) {
    const std::string& name = h.prototype->GetDescriptor()->full_name();
    if (seen.insert(name).second) types.push_back(name);
  }
  return types;
}

}  // namespace leftfold
