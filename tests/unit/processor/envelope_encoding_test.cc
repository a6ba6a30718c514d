// The envelope encoders write exactly the bytes the generated serializers write.
#include "processor/envelope_encoding.h"

#include <string>
#include <vector>

#include "bank/v1/bank.pb.h"
#include "google/protobuf/unknown_field_set.h"
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

TEST(EnvelopeEncodingTest, WritesTheGeneratedSerializersBytes) {
  for (const Case& c : Cases()) {
    EXPECT_EQ(Encoded(c), Generated(c)) << c.name;
  }
}

TEST(EnvelopeEncodingTest, AppendsAfterWhatIsThere) {
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

std::vector<v1::Snapshot> Snapshots() {
  std::vector<v1::Snapshot> snapshots;
  for (const Case& c : Cases()) {
    v1::Snapshot& snapshot = snapshots.emplace_back();
    snapshot.set_aggregate_type(c.aggregate_type);
    snapshot.set_aggregate_id(c.aggregate_id);
    snapshot.set_version(c.version);
    snapshot.set_definition_version(static_cast<int32_t>(c.version % 1000));
    snapshot.mutable_state()->set_type_url(c.type_url);
    snapshot.mutable_state()->set_value(c.value);
    snapshot.mutable_timestamp()->set_seconds(c.seconds);
    snapshot.mutable_timestamp()->set_nanos(c.nanos);
  }
  snapshots.back().set_definition_version(-3);  // a negative int32: ten bytes
  return snapshots;
}

TEST(EnvelopeEncodingTest, SnapshotsAreTheGeneratedSerializersBytes) {
  for (const v1::Snapshot& snapshot : Snapshots()) {
    std::string out = "key";
    AppendSnapshot({.aggregate_type = snapshot.aggregate_type(),
                    .aggregate_id = snapshot.aggregate_id(),
                    .version = snapshot.version(),
                    .definition_version = snapshot.definition_version(),
                    .state_type_url = snapshot.state().type_url(),
                    .state_value = snapshot.state().value(),
                    .timestamp = &snapshot.timestamp()},
                   &out);
    EXPECT_EQ(out, "key" + snapshot.SerializeAsString()) << snapshot.ShortDebugString();
  }
}

std::vector<v1::CommandResult> Results() {
  std::vector<v1::CommandResult> results;
  results.emplace_back();  // all defaults: empty bytes
  v1::CommandResult accepted;
  accepted.set_command_id("w42-1001");
  accepted.set_aggregate_type("bank.account");
  accepted.set_aggregate_id("acct-17");
  accepted.set_outcome(v1::CommandResult::ACCEPTED);
  accepted.set_version(4);
  accepted.set_event_count(2);
  accepted.set_correlation_id("bench-42");
  for (int64_t offset : {int64_t{0}, int64_t{1234567890123}}) {
    v1::Position* position = accepted.add_event_positions();
    position->set_topic("bench1795782124-processor.bank.account.events");
    position->set_partition(offset == 0 ? 0 : 3);
    position->set_offset(offset);
  }
  accepted.mutable_processed_at()->set_seconds(1795782124);
  accepted.mutable_processed_at()->set_nanos(595444000);
  results.push_back(accepted);
  v1::CommandResult rejected;
  rejected.set_command_id("命令-2");
  rejected.set_outcome(v1::CommandResult::REJECTED);
  rejected.set_code(-7);  // not a real code, but an int32 all the same: ten bytes
  rejected.set_message(std::string(300, 'm'));
  rejected.set_version(-1);
  rejected.mutable_processed_at();  // present and empty
  results.push_back(rejected);
  v1::CommandResult unpositioned = accepted;
  unpositioned.mutable_event_positions(0)->clear_topic();  // as staged before delivery
  unpositioned.clear_processed_at();
  results.push_back(unpositioned);
  return results;
}

std::string Written(const v1::CommandResult& result) {
  ResultEncoder encoder(result);
  std::string out(encoder.size(), '\0');
  encoder.Write(out.data());
  return out;
}

TEST(EnvelopeEncodingTest, ResultsAreTheGeneratedSerializersBytes) {
  for (const v1::CommandResult& result : Results()) {
    EXPECT_EQ(Written(result), result.SerializeAsString()) << result.ShortDebugString();
  }
}

TEST(EnvelopeEncodingTest, ResultFillWritesWhatAStagedResultLeavesOut) {
  ResultFill fill{.aggregate_type = "bank.account",
                  .events_topic = "leftfold.bank.account.events",
                  .identity = true,
                  .command_id = "w42-1001",
                  .aggregate_id = "acct-17",
                  .correlation_id = "bench-42"};
  auto written = [&](const v1::CommandResult& result) {
    ResultEncoder encoder(result, fill);
    std::string out(encoder.size(), '\0');
    encoder.Write(out.data());
    return out;
  };
  // As the processor stages it: no identity, no aggregate type, positions without a topic.
  v1::CommandResult staged = Results()[1];
  staged.clear_command_id();
  staged.clear_aggregate_id();
  staged.clear_correlation_id();
  staged.clear_aggregate_type();
  for (v1::Position& position : *staged.mutable_event_positions()) position.clear_topic();
  v1::CommandResult filled = staged;
  filled.set_command_id("w42-1001");
  filled.set_aggregate_id("acct-17");
  filled.set_correlation_id("bench-42");
  filled.set_aggregate_type("bank.account");
  for (v1::Position& position : *filled.mutable_event_positions()) {
    position.set_topic("leftfold.bank.account.events");
  }
  EXPECT_EQ(written(staged), filled.SerializeAsString());
  // An empty correlation id of the command stays empty.
  fill.correlation_id = "";
  filled.clear_correlation_id();
  EXPECT_EQ(written(staged), filled.SerializeAsString());

  // Without `identity`, a result keeps its own ids (a copied original, say), and its own type
  // and topics where it has them.
  fill.identity = false;
  for (const v1::CommandResult& result : Results()) {
    v1::CommandResult expected = result;
    if (expected.aggregate_type().empty()) expected.set_aggregate_type("bank.account");
    for (v1::Position& position : *expected.mutable_event_positions()) {
      if (position.topic().empty()) position.set_topic("leftfold.bank.account.events");
    }
    EXPECT_EQ(written(result), expected.SerializeAsString()) << result.ShortDebugString();
  }
}

TEST(EnvelopeEncodingTest, ResultFillWritesTheBatchTimeWhereAResultHasNone) {
  google::protobuf::Timestamp decided;
  decided.set_seconds(1795782124);
  decided.set_nanos(595444000);
  const ResultFill fill{.processed_at = &decided};
  for (const v1::CommandResult& result : Results()) {
    ResultEncoder encoder(result, fill);
    std::string out(encoder.size(), '\0');
    encoder.Write(out.data());
    v1::CommandResult expected = result;
    if (!expected.has_processed_at()) *expected.mutable_processed_at() = decided;
    EXPECT_EQ(out, expected.SerializeAsString()) << result.ShortDebugString();
    // The time the dedup index stamps its entry with: the one written.
    ASSERT_NE(encoder.processed_at(), nullptr);
    EXPECT_EQ(encoder.processed_at()->SerializeAsString(),
              expected.processed_at().SerializeAsString());
  }
  // Without a fill's time, a result without its own has none.
  v1::CommandResult bare = Results()[1];
  bare.clear_processed_at();
  EXPECT_EQ(ResultEncoder(bare).processed_at(), nullptr);
}

TEST(EnvelopeEncodingTest, ResultsWithUnknownFieldsKeepThem) {
  // A result read back from a newer version's store: fields this build does not know survive,
  // at the top and inside a position or the timestamp.
  for (int where = 0; where < 3; ++where) {
    v1::CommandResult result = Results()[1];
    google::protobuf::Message* holder = &result;
    if (where == 1) holder = result.mutable_event_positions(1);
    if (where == 2) holder = result.mutable_processed_at();
    google::protobuf::UnknownFieldSet* unknown =
        holder->GetReflection()->MutableUnknownFields(holder);
    unknown->AddVarint(99, 12345);
    unknown->AddLengthDelimited(100, "from a newer version");
    std::string written = Written(result);
    EXPECT_EQ(written, result.SerializeAsString()) << where;
    v1::CommandResult parsed;
    ASSERT_TRUE(parsed.ParseFromString(written));
    EXPECT_NE(written.find("from a newer version"), std::string::npos) << where;
  }
}

}  // namespace
}  // namespace leftfold::internal::processor
