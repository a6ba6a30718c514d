#include "leftfold/projector.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace leftfold {

EventContext::EventContext(const v1::EventEnvelope& envelope, v1::Position position)
    : envelope_(&envelope),
      aggregate_id_(envelope.aggregate_id()),
      owned_position_(std::move(position)),
      position_(&owned_position_) {}

EventContext::EventContext(const v1::EventEnvelope& envelope, const v1::Position* position)
    : envelope_(&envelope), aggregate_id_(envelope.aggregate_id()), position_(position) {}

// A copy owns its position: it may outlive the event (the runtime's position moves on).
EventContext::EventContext(const EventContext& other)
    : envelope_(other.envelope_),
      aggregate_id_(other.aggregate_id_),
      owned_position_(*other.position_),
      position_(&owned_position_) {}

EventContext& EventContext::operator=(const EventContext& other) {
  if (this == &other) return *this;
  envelope_ = other.envelope_;
  aggregate_id_ = other.aggregate_id_;
  owned_position_ = *other.position_;
  position_ = &owned_position_;
  return *this;
}

absl::Time EventContext::timestamp() const {
  return absl::FromUnixSeconds(envelope_->timestamp().seconds()) +
         absl::Nanoseconds(envelope_->timestamp().nanos());
}

Projector::Projector(std::string name)
    : name_(std::move(name)),
      event_handlers_(std::make_shared<Handlers>()),
      state_handlers_(std::make_shared<Handlers>()) {}

Projector& Projector::From(std::string aggregate_type) {
  event_sources_.push_back(std::move(aggregate_type));
  return *this;
}

Projector& Projector::FromSnapshots(std::string aggregate_type) {
  snapshot_sources_.push_back(std::move(aggregate_type));
  return *this;
}

Projector& Projector::Migrate(Migration migration) {
  migration_ = std::move(migration);
  return *this;
}

Projector& Projector::AddHandler(const std::string& type, std::pair<StoreKind, Handler> handler,
                                 bool state) {
  if (kind_ != StoreKind::kUnset && kind_ != handler.first) {
    errors_.push_back(
        absl::StrCat("handler for ", type, " mixes View and SqlView handlers in one projector"));
  }
  kind_ = handler.first;
  // Copy on write: a Projector copied before this call keeps its own handlers.
  auto& handlers = state ? state_handlers_ : event_handlers_;
  auto copy = std::make_shared<Handlers>(*handlers);
  if (!copy->emplace(type, std::move(handler.second)).second) {
    errors_.push_back(absl::StrCat("two ", state ? "OnState" : "On", " handlers for ", type));
  }
  handlers = std::move(copy);
  return *this;
}

absl::Status Projector::UndecodablePayload(const google::protobuf::Any& payload) {
  return absl::DataLossError(
      absl::StrCat("payload of type ", payload.type_url(), " does not decode"));
}

absl::Status Projector::Validate() const {
  std::vector<std::string> problems = errors_;
  if (name_.empty()) problems.push_back("the projector has no name");
  if (event_sources_.empty() && snapshot_sources_.empty()) {
    problems.push_back("no source: call From(aggregate_type) or FromSnapshots(aggregate_type)");
  }
  if (event_handlers_->empty() && state_handlers_->empty()) {
    problems.push_back("no handler: call On<Event>(fn) or OnState<State>(fn)");
  }
  if (!event_handlers_->empty() && event_sources_.empty()) {
    problems.push_back("On<Event> handlers but no From(aggregate_type)");
  }
  if (!state_handlers_->empty() && snapshot_sources_.empty()) {
    problems.push_back("OnState<State> handlers but no FromSnapshots(aggregate_type)");
  }
  if (migration_ && kind_ == StoreKind::kView) {
    problems.push_back("Migrate() is for SqlView projectors; this one writes a View");
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("projector '", name_, "': ", absl::StrJoin(problems, "; ")));
}

bool Projector::Handles(absl::string_view type_name, bool state) const {
  const auto& handlers = state ? *state_handlers_ : *event_handlers_;
  return handlers.find(type_name) != handlers.end();
}

absl::Status Projector::Dispatch(const EventContext& ctx, const google::protobuf::Any& payload,
                                 bool state, View* view, SqlView* sql) const {
  const absl::string_view url = payload.type_url();
  const size_t slash = url.rfind('/');
  if (slash == absl::string_view::npos) {
    return absl::DataLossError(absl::StrCat("bad payload type url '", url, "'"));
  }
  const absl::string_view type_name = url.substr(slash + 1);
  const auto& handlers = state ? *state_handlers_ : *event_handlers_;
  auto it = handlers.find(type_name);
  if (it == handlers.end()) return absl::OkStatus();
  // The one place a user's exception is caught: it becomes a poison-event error.
  try {
    return it->second(ctx, payload, view, sql);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("handler for ", type_name, " threw: ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat("handler for ", type_name, " threw"));
  }
}

}  // namespace leftfold
