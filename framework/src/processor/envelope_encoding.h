// The processor's encoding of what it publishes: the bytes of a leftfold.v1.EventEnvelope, a
// Snapshot and a CommandResult, written straight from their fields.
//
//   std::string bytes;
//   AppendEventEnvelope({.aggregate_type = "bank.account", .aggregate_id = "acct-1",
//                        .version = 2, .command_id = "c-7", .payload = &any,
//                        .timestamp = &now}, &bytes);
//   // bytes == the same EventEnvelope's SerializeAsString()
//
// The generated serializers check every string field for UTF-8 again, and the processor built
// a message per event and per snapshot only to serialize it (callgrind: 1.7k instructions per
// event on the processing thread; 1.1k per result and 1.4k per snapshot on the committer's).
// These strings were checked when their command was parsed, or come from the aggregate's
// definition, so each envelope is written once, with protobuf's own wire-format writers, in its
// serializer's field order: byte for byte what the generated code writes (the tests compare).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "leftfold/v1/envelope.pb.h"

namespace leftfold::internal::processor {

// The fields of an EventEnvelope the processor sets; `metadata` is never set by it.
struct EventFields {
  absl::string_view aggregate_type;
  absl::string_view aggregate_id;
  int64_t version = 0;
  absl::string_view command_id;
  // Always written (as a set message field), even when empty.
  const google::protobuf::Any* payload = nullptr;
  const google::protobuf::Timestamp* timestamp = nullptr;
  absl::string_view correlation_id;
};

// Appends the serialized EventEnvelope: byte for byte what EventEnvelope::AppendToString writes
// for a message with these fields (proto3: empty strings and zero numbers left out, the payload
// and the timestamp present). `payload` and `timestamp` must not be null.
void AppendEventEnvelope(const EventFields& fields, std::string* out);

// The fields of a Snapshot; `state` is present, packed from these two.
struct SnapshotFields {
  absl::string_view aggregate_type;
  absl::string_view aggregate_id;
  int64_t version = 0;
  int32_t definition_version = 0;
  absl::string_view state_type_url;
  absl::string_view state_value;
  const google::protobuf::Timestamp* timestamp = nullptr;  // present; must not be null
};

// Appends the serialized Snapshot with these fields (as AppendEventEnvelope does for events).
void AppendSnapshot(const SnapshotFields& fields, std::string* out);

// What a staged result leaves to its encoder. Deciding a command then sets five strings fewer
// in its result (each an arena string with a cleanup entry, the topic also an allocation, being
// longer than the small-string buffer); the bytes are those of the filled-in message.
struct ResultFill {
  // The same in every result of a processor: written where the message leaves them empty.
  absl::string_view aggregate_type;  // for result.aggregate_type()
  absl::string_view events_topic;    // for an event position's topic
  // With `identity`, these are written in place of the message's own fields, which it leaves
  // empty: they are its command's (a view of the command, not a copy).
  bool identity = false;
  absl::string_view command_id;
  absl::string_view aggregate_id;
  absl::string_view correlation_id;
  // Written where the result has no processed_at (a staged result leaves it to the encoder:
  // the time its batch was decided, the same for its commands).
  const google::protobuf::Timestamp* processed_at = nullptr;

  // What is written for `result`'s processed_at: its own, else the fill's (null: none).
  const google::protobuf::Timestamp* ProcessedAtOf(const v1::CommandResult& result) const {
    return result.has_processed_at() ? &result.processed_at() : processed_at;
  }
  // What is written for `result`'s ids: these with `identity`, else the result's own.
  absl::string_view CommandIdOf(const v1::CommandResult& result) const {
    return identity ? command_id : result.command_id();
  }
  absl::string_view AggregateIdOf(const v1::CommandResult& result) const {
    return identity ? aggregate_id : result.aggregate_id();
  }
  absl::string_view CorrelationIdOf(const v1::CommandResult& result) const {
    return identity ? correlation_id : result.correlation_id();
  }
};

// A result's serialized form, sized once:
//
//   ResultEncoder encoder(result);
//   std::string bytes(encoder.size(), '\0');
//   encoder.Write(bytes.data());  // == result.SerializeAsString()
//
// A result that carries unknown fields (one read back from a newer version's store, say) is
// left to the generated serializer, which keeps them (and no fill applies: its fields came
// with its bytes).
class ResultEncoder {
 public:
  explicit ResultEncoder(const v1::CommandResult& result, ResultFill fill = {});
  size_t size() const { return size_; }
  // The processed_at it writes (the result's, else the fill's), or null.
  const google::protobuf::Timestamp* processed_at() const {
    return generated_ ? (result_.has_processed_at() ? &result_.processed_at() : nullptr)
                      : fill_.ProcessedAtOf(result_);
  }
  // Writes size() bytes into `out`. The result must not change in between.
  void Write(char* out) const;

 private:
  absl::string_view AggregateType() const {
    return result_.aggregate_type().empty() ? fill_.aggregate_type : result_.aggregate_type();
  }
  absl::string_view TopicOf(const v1::Position& position) const {
    return position.topic().empty() ? fill_.events_topic : position.topic();
  }

  const v1::CommandResult& result_;
  const ResultFill fill_;
  bool generated_;
  size_t size_;
};

}  // namespace leftfold::internal::processor
