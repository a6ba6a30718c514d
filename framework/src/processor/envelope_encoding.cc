#include "processor/envelope_encoding.h"

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "leftfold/v1/envelope.pb.h"

namespace leftfold::internal::processor {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

// Field numbers, from the generated classes so they cannot drift from envelope.proto.
using Event = v1::EventEnvelope;
using Any = google::protobuf::Any;
using Timestamp = google::protobuf::Timestamp;

size_t StringFieldSize(int field, absl::string_view value) {
  if (value.empty()) return 0;
  return WireFormatLite::TagSize(field, WireFormatLite::TYPE_STRING) +
         WireFormatLite::LengthDelimitedSize(value.size());
}

size_t Int64FieldSize(int field, int64_t value) {
  if (value == 0) return 0;
  return WireFormatLite::TagSize(field, WireFormatLite::TYPE_INT64) +
         WireFormatLite::Int64Size(value);
}

size_t Int32FieldSize(int field, int32_t value) {
  if (value == 0) return 0;
  return WireFormatLite::TagSize(field, WireFormatLite::TYPE_INT32) +
         WireFormatLite::Int32Size(value);
}

size_t MessageFieldSize(int field, size_t size) {
  return WireFormatLite::TagSize(field, WireFormatLite::TYPE_MESSAGE) +
         WireFormatLite::LengthDelimitedSize(size);
}

uint8_t* WriteLength(int field, size_t size, uint8_t* target) {
  target =
      WireFormatLite::WriteTagToArray(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, target);
  return CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(size), target);
}

uint8_t* WriteString(int field, absl::string_view value, uint8_t* target) {
  if (value.empty()) return target;
  target = WriteLength(field, value.size(), target);
  return CodedOutputStream::WriteRawToArray(value.data(), static_cast<int>(value.size()), target);
}

uint8_t* WriteInt64(int field, int64_t value, uint8_t* target) {
  return value == 0 ? target : WireFormatLite::WriteInt64ToArray(field, value, target);
}

uint8_t* WriteInt32(int field, int32_t value, uint8_t* target) {
  return value == 0 ? target : WireFormatLite::WriteInt32ToArray(field, value, target);
}

size_t TimestampSize(const Timestamp& timestamp) {
  return Int64FieldSize(Timestamp::kSecondsFieldNumber, timestamp.seconds()) +
         Int32FieldSize(Timestamp::kNanosFieldNumber, timestamp.nanos());
}

uint8_t* WriteTimestamp(int field, const Timestamp& timestamp, uint8_t* target) {
  target = WriteLength(field, TimestampSize(timestamp), target);
  target = WriteInt64(Timestamp::kSecondsFieldNumber, timestamp.seconds(), target);
  return WriteInt32(Timestamp::kNanosFieldNumber, timestamp.nanos(), target);
}

size_t AnySize(absl::string_view type_url, absl::string_view value) {
  return StringFieldSize(Any::kTypeUrlFieldNumber, type_url) +
         StringFieldSize(Any::kValueFieldNumber, value);
}

uint8_t* WriteAny(int field, absl::string_view type_url, absl::string_view value, uint8_t* target) {
  target = WriteLength(field, AnySize(type_url, value), target);
  target = WriteString(Any::kTypeUrlFieldNumber, type_url, target);
  return WriteString(Any::kValueFieldNumber, value, target);
}

size_t PositionSize(const v1::Position& position, absl::string_view topic) {
  return StringFieldSize(v1::Position::kTopicFieldNumber, topic) +
         Int32FieldSize(v1::Position::kPartitionFieldNumber, position.partition()) +
         Int64FieldSize(v1::Position::kOffsetFieldNumber, position.offset());
}

template <typename Message>
bool HasUnknown(const Message& message) {
  // Looked up once: GetReflection goes through the descriptor pool's once-flag each call.
  static const google::protobuf::Reflection* const reflection = Message::GetReflection();
  return !reflection->GetUnknownFields(message).empty();
}

// Whether the generated serializer must write `result`: it keeps unknown fields, this does not.
bool HasUnknownFields(const v1::CommandResult& result) {
  if (HasUnknown(result)) return true;
  if (result.has_processed_at() && HasUnknown(result.processed_at())) return true;
  for (const v1::Position& position : result.event_positions()) {
    if (HasUnknown(position)) return true;
  }
  return false;
}

// Grows `out` by `size` bytes and returns where they start.
uint8_t* AppendSpace(std::string* out, size_t size) {
  size_t at = out->size();
  out->resize(at + size);
  return reinterpret_cast<uint8_t*>(out->data() + at);
}

}  // namespace

void AppendEventEnvelope(const EventFields& fields, std::string* out) {
  const Any& payload = *fields.payload;
  const Timestamp& timestamp = *fields.timestamp;
  size_t payload_size = AnySize(payload.type_url(), payload.value());
  size_t timestamp_size = TimestampSize(timestamp);
  size_t size = StringFieldSize(Event::kAggregateTypeFieldNumber, fields.aggregate_type) +
                StringFieldSize(Event::kAggregateIdFieldNumber, fields.aggregate_id) +
                Int64FieldSize(Event::kVersionFieldNumber, fields.version) +
                StringFieldSize(Event::kCommandIdFieldNumber, fields.command_id) +
                MessageFieldSize(Event::kPayloadFieldNumber, payload_size) +
                MessageFieldSize(Event::kTimestampFieldNumber, timestamp_size) +
                StringFieldSize(Event::kCorrelationIdFieldNumber, fields.correlation_id);
  uint8_t* target = AppendSpace(out, size);
  // Field number order, as the generated serializer writes them.
  target = WriteString(Event::kAggregateTypeFieldNumber, fields.aggregate_type, target);
  target = WriteString(Event::kAggregateIdFieldNumber, fields.aggregate_id, target);
  target = WriteInt64(Event::kVersionFieldNumber, fields.version, target);
  target = WriteString(Event::kCommandIdFieldNumber, fields.command_id, target);
  target = WriteAny(Event::kPayloadFieldNumber, payload.type_url(), payload.value(), target);
  target = WriteTimestamp(Event::kTimestampFieldNumber, timestamp, target);
  WriteString(Event::kCorrelationIdFieldNumber, fields.correlation_id, target);
}

void AppendSnapshot(const SnapshotFields& fields, std::string* out) {
  using Snapshot = v1::Snapshot;
  size_t state_size = AnySize(fields.state_type_url, fields.state_value);
  size_t size = StringFieldSize(Snapshot::kAggregateTypeFieldNumber, fields.aggregate_type) +
                StringFieldSize(Snapshot::kAggregateIdFieldNumber, fields.aggregate_id) +
                Int64FieldSize(Snapshot::kVersionFieldNumber, fields.version) +
                Int32FieldSize(Snapshot::kDefinitionVersionFieldNumber, fields.definition_version) +
                MessageFieldSize(Snapshot::kStateFieldNumber, state_size) +
                MessageFieldSize(Snapshot::kTimestampFieldNumber, TimestampSize(*fields.timestamp));
  uint8_t* target = AppendSpace(out, size);
  target = WriteString(Snapshot::kAggregateTypeFieldNumber, fields.aggregate_type, target);
  target = WriteString(Snapshot::kAggregateIdFieldNumber, fields.aggregate_id, target);
  target = WriteInt64(Snapshot::kVersionFieldNumber, fields.version, target);
  target = WriteInt32(Snapshot::kDefinitionVersionFieldNumber, fields.definition_version, target);
  target = WriteAny(Snapshot::kStateFieldNumber, fields.state_type_url, fields.state_value, target);
  WriteTimestamp(Snapshot::kTimestampFieldNumber, *fields.timestamp, target);
}

ResultEncoder::ResultEncoder(const v1::CommandResult& result, ResultFill fill)
    : result_(result), fill_(fill), generated_(HasUnknownFields(result)) {
  using Result = v1::CommandResult;
  if (generated_) {
    size_ = result.ByteSizeLong();
    return;
  }
  size_t size = StringFieldSize(Result::kCommandIdFieldNumber, fill_.CommandIdOf(result)) +
                StringFieldSize(Result::kAggregateTypeFieldNumber, AggregateType()) +
                StringFieldSize(Result::kAggregateIdFieldNumber, fill_.AggregateIdOf(result)) +
                Int32FieldSize(Result::kOutcomeFieldNumber, result.outcome()) +
                Int32FieldSize(Result::kCodeFieldNumber, result.code()) +
                StringFieldSize(Result::kMessageFieldNumber, result.message()) +
                Int64FieldSize(Result::kVersionFieldNumber, result.version()) +
                StringFieldSize(Result::kCorrelationIdFieldNumber, fill_.CorrelationIdOf(result)) +
                Int32FieldSize(Result::kEventCountFieldNumber, result.event_count());
  for (const v1::Position& position : result.event_positions()) {
    size += MessageFieldSize(Result::kEventPositionsFieldNumber,
                             PositionSize(position, TopicOf(position)));
  }
  if (const Timestamp* processed_at = fill_.ProcessedAtOf(result)) {
    size += MessageFieldSize(Result::kProcessedAtFieldNumber, TimestampSize(*processed_at));
  }
  size_ = size;
}

void ResultEncoder::Write(char* out) const {
  using Result = v1::CommandResult;
  const v1::CommandResult& result = result_;
  auto* target = reinterpret_cast<uint8_t*>(out);
  if (generated_) {
    result.SerializeWithCachedSizesToArray(target);  // sizes cached by ByteSizeLong
    return;
  }
  target = WriteString(Result::kCommandIdFieldNumber, fill_.CommandIdOf(result), target);
  target = WriteString(Result::kAggregateTypeFieldNumber, AggregateType(), target);
  target = WriteString(Result::kAggregateIdFieldNumber, fill_.AggregateIdOf(result), target);
  // An enum is written as an int32.
  target = WriteInt32(Result::kOutcomeFieldNumber, result.outcome(), target);
  target = WriteInt32(Result::kCodeFieldNumber, result.code(), target);
  target = WriteString(Result::kMessageFieldNumber, result.message(), target);
  target = WriteInt64(Result::kVersionFieldNumber, result.version(), target);
  for (const v1::Position& position : result.event_positions()) {
    absl::string_view topic = TopicOf(position);
    target = WriteLength(Result::kEventPositionsFieldNumber, PositionSize(position, topic), target);
    target = WriteString(v1::Position::kTopicFieldNumber, topic, target);
    target = WriteInt32(v1::Position::kPartitionFieldNumber, position.partition(), target);
    target = WriteInt64(v1::Position::kOffsetFieldNumber, position.offset(), target);
  }
  target = WriteString(Result::kCorrelationIdFieldNumber, fill_.CorrelationIdOf(result), target);
  if (const Timestamp* processed_at = fill_.ProcessedAtOf(result)) {
    target = WriteTimestamp(Result::kProcessedAtFieldNumber, *processed_at, target);
  }
  WriteInt32(Result::kEventCountFieldNumber, result.event_count(), target);
}

}  // namespace leftfold::internal::processor
