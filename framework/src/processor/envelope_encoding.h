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

// A result's serialized form, sized once:
//
//   ResultEncoder encoder(result);
//   std::string bytes(encoder.size(), '\0');
//   encoder.Write(bytes.data());  // == result.SerializeAsString()
//
// A result that carries unknown fields (one read back from a newer version's store, say) is
// left to the generated serializer, which keeps them.
//
// Fields that are the same in every result of a processor may be left empty in the message and
// given here instead: the processor stages its results without them, so deciding a command
// sets two strings fewer (each an arena string and a cleanup entry; the topic, longer than the
// small-string buffer, also an allocation). The bytes are those of the filled-in message.
struct ResultDefaults {
  absl::string_view aggregate_type;  // written when result.aggregate_type() is empty
  absl::string_view events_topic;    // written for an event position whose topic is empty
};

class ResultEncoder {
 public:
  explicit ResultEncoder(const v1::CommandResult& result, ResultDefaults defaults = {});
  size_t size() const { return size_; }
  // Writes size() bytes into `out`. The result must not change in between.
  void Write(char* out) const;

 private:
  absl::string_view AggregateType() const {
    return result_.aggregate_type().empty() ? defaults_.aggregate_type : result_.aggregate_type();
  }
  absl::string_view TopicOf(const v1::Position& position) const {
    return position.topic().empty() ? defaults_.events_topic : position.topic();
  }

  const v1::CommandResult& result_;
  const ResultDefaults defaults_;
  bool generated_;
  size_t size_;
};

}  // namespace leftfold::internal::processor
