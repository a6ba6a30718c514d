// ParseCommandEnvelope accepts exactly what CommandEnvelope::ParseFromString accepts, and reads
// the same fields.
#include "processor/command_parser.h"

#include <random>
#include <string>
#include <vector>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "leftfold/aggregate.h"
#include "leftfold/v1/envelope.pb.h"

namespace leftfold::internal::processor {
namespace {

v1::CommandEnvelope Full() {
  v1::CommandEnvelope envelope;
  envelope.set_command_id("c-17");
  envelope.set_aggregate_type("bank.account");
  envelope.set_aggregate_id("acct-9");
  envelope.set_expected_version(4);
  envelope.mutable_payload()->set_type_url("type.googleapis.com/bank.v1.Deposit");
  envelope.mutable_payload()->set_value(std::string("\x08\x64\xff\x00", 4));
  (*envelope.mutable_metadata())["who"] = "ops";
  (*envelope.mutable_metadata())["trace"] = "t-1";
  envelope.set_correlation_id("corr-3");
  envelope.mutable_submitted_at()->set_seconds(1764300000);
  envelope.mutable_submitted_at()->set_nanos(5);
  return envelope;
}

// Both readings of `bytes` agree: both refuse them, or both accept them with the same fields.
void ExpectSameAsGenerated(const std::string& bytes) {
  v1::CommandEnvelope generated;
  const bool generated_ok = generated.ParseFromString(bytes);
  ParsedCommand parsed;
  const bool parsed_ok = ParseCommandEnvelope(bytes, parsed);
  ASSERT_EQ(parsed_ok, generated_ok) << "bytes: " << testing::PrintToString(bytes);
  if (!parsed_ok) return;
  const CommandFields& fields = parsed.fields;
  EXPECT_EQ(fields.command_id, generated.command_id());
  EXPECT_EQ(fields.aggregate_type, generated.aggregate_type());
  EXPECT_EQ(fields.aggregate_id, generated.aggregate_id());
  EXPECT_EQ(fields.payload_type_url, generated.payload().type_url());
  EXPECT_EQ(fields.payload_value, generated.payload().value());
  EXPECT_EQ(parsed.correlation_id, generated.correlation_id());
  EXPECT_EQ(parsed.expected_version.has_value(), generated.has_expected_version());
  if (generated.has_expected_version()) {
    EXPECT_EQ(*parsed.expected_version, generated.expected_version());
  }
  EXPECT_EQ(fields.envelope, nullptr);
  EXPECT_EQ(fields.serialized.data(), bytes.data());
}

// An unknown field of each wire type, a group holding a nested group among them.
std::string UnknownFields() {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.WriteTag(100 << 3 | 0);
    out.WriteVarint64(uint64_t{1} << 63);
    out.WriteTag(101 << 3 | 1);
    out.WriteLittleEndian64(7);
    out.WriteTag(102 << 3 | 2);
    out.WriteVarint32(3);
    out.WriteRaw("abc", 3);
    out.WriteTag(103 << 3 | 3);
    out.WriteTag(1 << 3 | 3);
    out.WriteTag(1 << 3 | 4);
    out.WriteTag(103 << 3 | 4);
    out.WriteTag(104 << 3 | 5);
    out.WriteLittleEndian32(9);
    // Known field numbers with another wire type are unknown fields, too.
    out.WriteTag(1 << 3 | 0);
    out.WriteVarint32(5);
    out.WriteTag(4 << 3 | 2);
    out.WriteVarint32(0);
  }
  return bytes;
}

TEST(CommandParserTest, ReadsEveryFieldOfAValidEnvelope) {
  ExpectSameAsGenerated(Full().SerializeAsString());
  ExpectSameAsGenerated("");
  ExpectSameAsGenerated(v1::CommandEnvelope().SerializeAsString());
  ExpectSameAsGenerated(Full().SerializeAsString() + UnknownFields());
  ExpectSameAsGenerated(UnknownFields() + Full().SerializeAsString());
  // Groups nested 50 deep, within protobuf's limit of 100.
  ExpectSameAsGenerated(std::string(50, '\x0b') + std::string(50, '\x0c'));
  ParsedCommand nested;
  EXPECT_TRUE(ParseCommandEnvelope(std::string(50, '\x0b') + std::string(50, '\x0c'), nested));

  ParsedCommand parsed;
  const std::string bytes = Full().SerializeAsString();
  ASSERT_TRUE(ParseCommandEnvelope(bytes, parsed));
  EXPECT_EQ(parsed.fields.command_id, "c-17");
  EXPECT_EQ(parsed.fields.payload_type_url, "type.googleapis.com/bank.v1.Deposit");
  EXPECT_EQ(parsed.expected_version, 4);
}

TEST(CommandParserTest, TheLastOccurrenceWinsAndPayloadsMerge) {
  v1::CommandEnvelope first = Full();
  v1::CommandEnvelope second;
  second.set_command_id("c-18");
  second.mutable_payload()->set_value("later");  // the type URL stays the first's
  second.set_expected_version(-1);
  const std::string bytes = first.SerializeAsString() + second.SerializeAsString();
  ExpectSameAsGenerated(bytes);
  ParsedCommand parsed;
  ASSERT_TRUE(ParseCommandEnvelope(bytes, parsed));
  EXPECT_EQ(parsed.fields.command_id, "c-18");
  EXPECT_EQ(parsed.fields.payload_type_url, "type.googleapis.com/bank.v1.Deposit");
  EXPECT_EQ(parsed.fields.payload_value, "later");
  EXPECT_EQ(parsed.expected_version, -1);
}

TEST(CommandParserTest, RefusesInvalidUtf8WhereProtobufDoes) {
  google::protobuf::LogSilencer quiet;  // protobuf logs each invalid string it parses
  const std::string invalid("ab\xc3(", 4);
  std::vector<std::string> cases;
  for (int field : {1, 2, 3, 7}) {
    v1::CommandEnvelope envelope = Full();
    const google::protobuf::FieldDescriptor* descriptor =
        envelope.GetDescriptor()->FindFieldByNumber(field);
    envelope.GetReflection()->SetString(&envelope, descriptor, invalid);
    cases.push_back(envelope.SerializePartialAsString());
  }
  v1::CommandEnvelope bad_type_url = Full();
  bad_type_url.mutable_payload()->set_type_url(invalid);
  cases.push_back(bad_type_url.SerializePartialAsString());
  v1::CommandEnvelope bad_key = Full();
  (*bad_key.mutable_metadata())[invalid] = "x";
  cases.push_back(bad_key.SerializePartialAsString());
  v1::CommandEnvelope bad_value = Full();
  (*bad_value.mutable_metadata())["x"] = invalid;
  cases.push_back(bad_value.SerializePartialAsString());
  for (const std::string& bytes : cases) {
    ParsedCommand parsed;
    EXPECT_FALSE(ParseCommandEnvelope(bytes, parsed));
    ExpectSameAsGenerated(bytes);
  }
  // Bytes fields may hold anything; multi-byte UTF-8 is valid.
  v1::CommandEnvelope fine = Full();
  fine.mutable_payload()->set_value(invalid);
  fine.set_command_id("größe-€-😀");
  ParsedCommand parsed;
  EXPECT_TRUE(ParseCommandEnvelope(fine.SerializeAsString(), parsed));
  ExpectSameAsGenerated(fine.SerializeAsString());
}

TEST(CommandParserTest, RefusesMalformedWireData) {
  const std::string full = Full().SerializeAsString();
  for (const std::string& bytes : {
           std::string("\x00", 1),      // field number 0
           std::string("\x02\x00", 2),  // field number 0, length-delimited
           std::string("\x0c"),         // an end-group tag at the top
           std::string("\x0b"),         // a group that never ends
           std::string("\x0a\x05"
                       "abc"),                              // a string longer than what is left
           std::string("\x20\x80"),                         // a truncated varint
           std::string("\x2a\x02\x0a\x05"),                 // an Any whose string overruns it
           std::string("\x42\x03\x08\x80\x80"),             // a Timestamp with a truncated varint
           std::string("\x32\x02\x0c\x00", 4),              // an end-group tag in a map entry
           std::string("\x8a\x80\x80\x80\x80\x00", 6),      // a tag in six bytes
           std::string("\x0a\x80\x80\x80\x80\x80\x00", 7),  // a length in six bytes
           std::string("\xa2\x06\x80\x80\x80\x80\x10", 7),  // an unknown field of 2^32 bytes
           std::string("\x1b\x0c", 2),                      // a group ended by another field's end
           std::string(200, '\x0b'),                        // groups nested 200 deep
           full.substr(0, full.size() - 1),
       }) {
    ParsedCommand parsed;
    EXPECT_FALSE(ParseCommandEnvelope(bytes, parsed)) << testing::PrintToString(bytes);
    ExpectSameAsGenerated(bytes);
  }
}

// Mutations of valid envelopes (bytes flipped, dropped, inserted, cut, envelopes joined): both
// readings agree on every one.
TEST(CommandParserTest, AgreesWithTheGeneratedParserOnMutatedEnvelopes) {
  google::protobuf::LogSilencer quiet;
  std::mt19937 random(20261128);
  std::vector<std::string> seeds = {Full().SerializeAsString(),
                                    Full().SerializeAsString() + UnknownFields()};
  v1::CommandEnvelope small;
  small.set_command_id("x");
  small.mutable_payload()->set_type_url("t/u");
  seeds.push_back(small.SerializeAsString());
  int accepted = 0;
  int refused = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes = seeds[random() % seeds.size()];
    const int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const size_t at = random() % bytes.size();
      switch (random() % 6) {
        case 0:
          bytes[at] = static_cast<char>(random());
          break;
        case 1:
          bytes[at] = static_cast<char>(bytes[at] ^ (1 << (random() % 8)));
          break;
        case 2:
          bytes.erase(at, 1);
          break;
        case 3:
          bytes.insert(at, 1, static_cast<char>(random()));
          break;
        case 4:
          bytes.resize(at);
          break;
        case 5:
          bytes += seeds[random() % seeds.size()];
          break;
      }
    }
    ParsedCommand parsed;
    (ParseCommandEnvelope(bytes, parsed) ? accepted : refused) += 1;
    ExpectSameAsGenerated(bytes);
    if (HasFatalFailure() || HasNonfatalFailure()) return;
  }
  // Both outcomes were exercised often.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(refused, 1000);
}

TEST(CommandParserTest, IsValidUtf8AgreesWithProtobuf) {
  std::mt19937 random(7);
  for (int round = 0; round < 20000; ++round) {
    std::string text(random() % 24, '\0');
    for (char& c : text) {
      // Mostly ASCII, some multi-byte lead and continuation bytes.
      const uint32_t r = random();
      c = static_cast<char>(r % 4 == 0 ? 0x80 | (r >> 8) % 0x80 : (r >> 8) % 0x80);
    }
    ASSERT_EQ(IsValidUtf8(text), google::protobuf::internal::IsStructurallyValidUTF8(text))
        << testing::PrintToString(text);
  }
  EXPECT_TRUE(IsValidUtf8("plain ascii, longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("€ and 😀 after eight bytes"));
  EXPECT_FALSE(IsValidUtf8(std::string("long ascii then \xff", 17)));
}

// A handler that asks for the envelope gets it, parsed from the bytes on first use.
TEST(CommandParserTest, TheContextParsesTheEnvelopeOnlyWhenAsked) {
  const std::string bytes = Full().SerializeAsString();
  ParsedCommand parsed;
  ASSERT_TRUE(ParseCommandEnvelope(bytes, parsed));
  CommandContext context(parsed.fields, Version(3));
  EXPECT_EQ(context.command_id().value(), "c-17");
  EXPECT_EQ(context.aggregate_id().value(), "acct-9");
  EXPECT_EQ(context.version(), Version(3));
  const v1::CommandEnvelope& envelope = context.envelope();
  EXPECT_EQ(envelope.metadata().at("who"), "ops");
  EXPECT_EQ(envelope.submitted_at().seconds(), 1764300000);
  EXPECT_EQ(&context.envelope(), &envelope);  // parsed once
}

}  // namespace
}  // namespace leftfold::internal::processor
