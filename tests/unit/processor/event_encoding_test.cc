// AppendEventEnvelope writes exactly the bytes the generated EventEnvelope serializer writes.
#include "processor/event_encoding.h"

#include <string>
#include <vector>

#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "leftfold/v1/envelope.pb.h"

namespace leftfold::internal::processor {
namespace {

struct Case {
  std::string name;
  std::string aggregate_type;
  std::string aggregate_id;
  int64_t version;
  std::string command_id;
  std::string type_url;
  std::string value;
  int64_t seconds;
  int32_t nanos;
  std::string correlation_id;
};

// The reference: the generated class, fields set as the processor set them before.
std::string Generated(const Case& c) {
  v1::EventEnvelope event;
  event.set_aggregate_type(c.aggregate_type);
  event.set_aggregate_id(c.aggregate_id);
  event.set_version(c.version);
  event.set_command_id(c.command_id);
  event.mutable_payload()->set_type_url(c.type_url);
  event.mutable_payload()->set_value(c.value);
  event.mutable_timestamp()->set_seconds(c.seconds);
  event.mutable_timestamp()->set_nanos(c.nanos);
  event.set_correlation_id(c.correlation_id);
  return event.SerializeAsString();
}

std::string Encoded(const Case& c, std::string prefix = "") {
  google::protobuf::Any payload;
  payload.set_type_url(c.type_url);
  payload.set_value(c.value);
  google::protobuf::Timestamp timestamp;
  timestamp.set_seconds(c.seconds);
  timestamp.set_nanos(c.nanos);
  AppendEventEnvelope({.aggregate_type = c.aggregate_type,
                       .aggregate_id = c.aggregate_id,
                       .version = c.version,
                       .command_id = c.command_id,
                       .payload = &payload,
                       .timestamp = &timestamp,
                       .correlation_id = c.correlation_id},
                      &prefix);
  return prefix;
}

std::vector<Case> Cases() {
  bank::v1::Deposited deposited;
  deposited.set_amount(42);
  deposited.set_reference("dep-7-ref");
  std::string long_value(300, 'v');  // a two-byte length
  return {
      {"typical", "bank.account", "acct-17", 3, "w42-1001", "type.googleapis.com/bank.v1.Deposited",
       deposited.SerializeAsString(), 1795000000, 123456000, "bench-42"},
      {"all_empty", "", "", 0, "", "", "", 0, 0, ""},
      {"empty_payload_and_time", "t", "a", 1, "c", "", "", 0, 0, ""},
      {"negative_version_and_time", "t", "a", -5, "c", "u", "x", -62135596800, 999999999, "r"},
      {"long_fields", std::string(200, 't'), std::string(20000, 'a'), int64_t{1} << 62,
       std::string(128, 'c'), std::string(130, 'u'), long_value, 253402300799, 1,
       std::string(127, 'r')},
      {"unicode", "bänk.äccount", "кто-1", 7, "命令-1", "type.googleapis.com/x.Y", "\0\1\2", 1, 0,
       "ℵ"},
  };
}

TEST(EventEncodingTest, WritesTheGeneratedSerializersBytes) {
  for (const Case& c : Cases()) {
    EXPECT_EQ(Encoded(c), Generated(c)) << c.name;
  }
}

TEST(EventEncodingTest, AppendsAfterWhatIsThere) {
  for (const Case& c : Cases()) {
    std::string out = Encoded(c, "key-bytes");
    ASSERT_EQ(out.substr(0, 9), "key-bytes") << c.name;
    v1::EventEnvelope parsed;
    ASSERT_TRUE(parsed.ParseFromString(out.substr(9))) << c.name;
    EXPECT_EQ(parsed.aggregate_id(), c.aggregate_id) << c.name;
    EXPECT_EQ(parsed.version(), c.version) << c.name;
    EXPECT_EQ(parsed.payload().value(), c.value) << c.name;
    EXPECT_EQ(parsed.timestamp().nanos(), c.nanos) << c.name;
    EXPECT_EQ(parsed.correlation_id(), c.correlation_id) << c.name;
  }
}

}  // namespace
}  // namespace leftfold::internal::processor
