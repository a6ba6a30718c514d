#include "processor/event_encoding.h"

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

}  // namespace

void AppendEventEnvelope(const EventFields& fields, std::string* out) {
  const Any& payload = *fields.payload;
  const Timestamp& timestamp = *fields.timestamp;
  size_t payload_size = StringFieldSize(Any::kTypeUrlFieldNumber, payload.type_url()) +
                        StringFieldSize(Any::kValueFieldNumber, payload.value());
  size_t timestamp_size = Int64FieldSize(Timestamp::kSecondsFieldNumber, timestamp.seconds()) +
                          Int32FieldSize(Timestamp::kNanosFieldNumber, timestamp.nanos());
  size_t size = StringFieldSize(Event::kAggregateTypeFieldNumber, fields.aggregate_type) +
                StringFieldSize(Event::kAggregateIdFieldNumber, fields.aggregate_id) +
                Int64FieldSize(Event::kVersionFieldNumber, fields.version) +
                StringFieldSize(Event::kCommandIdFieldNumber, fields.command_id) +
                MessageFieldSize(Event::kPayloadFieldNumber, payload_size) +
                MessageFieldSize(Event::kTimestampFieldNumber, timestamp_size) +
                StringFieldSize(Event::kCorrelationIdFieldNumber, fields.correlation_id);
  size_t at = out->size();
  out->resize(at + size);
  auto* target = reinterpret_cast<uint8_t*>(out->data() + at);
  // Field number order, as the generated serializer writes them.
  target = WriteString(Event::kAggregateTypeFieldNumber, fields.aggregate_type, target);
  target = WriteString(Event::kAggregateIdFieldNumber, fields.aggregate_id, target);
  target = WriteInt64(Event::kVersionFieldNumber, fields.version, target);
  target = WriteString(Event::kCommandIdFieldNumber, fields.command_id, target);
  target = WriteLength(Event::kPayloadFieldNumber, payload_size, target);
  target = WriteString(Any::kTypeUrlFieldNumber, payload.type_url(), target);
  target = WriteString(Any::kValueFieldNumber, payload.value(), target);
  target = WriteLength(Event::kTimestampFieldNumber, timestamp_size, target);
  target = WriteInt64(Timestamp::kSecondsFieldNumber, timestamp.seconds(), target);
  target = WriteInt32(Timestamp::kNanosFieldNumber, timestamp.nanos(), target);
  WriteString(Event::kCorrelationIdFieldNumber, fields.correlation_id, target);
}

}  // namespace leftfold::internal::processor
