// The gateway's byte-level shortcuts: a streamed command is produced as the bytes it arrived in
// (plus appended fields), a result is answered as the bytes it was read as, and the result cache
// keeps bytes. Each must read back as the message the slow path would have built.
#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>
#include <vector>

#include "gateway/execute_stream.h"
#include "gateway/gateway_service.h"
#include "gtest/gtest.h"
#include "leftfold/v1/envelope.pb.h"
#include "leftfold/v1/gateway_service.pb.h"

namespace leftfold::internal::gateway {
namespace {

using v1::CommandEnvelope;
using v1::CommandResult;
using v1::ExecuteStreamResponse;

CommandEnvelope Envelope() {
  CommandEnvelope c;
  c.set_aggregate_type("bank.account");
  c.set_aggregate_id("acct-1");
  c.mutable_payload()->set_type_url("type.googleapis.com/test.Thing");
  c.mutable_payload()->set_value(std::string(300, 'x'));  // a multi-byte length varint
  (*c.mutable_metadata())["k"] = "v";
  return c;
}

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

TEST(AppendNormalizedTest, AppendedFieldsReadBackAsTheNormalizedEnvelope) {
  CommandEnvelope c = Envelope();
  std::string bytes = c.SerializeAsString();
  NormalizeInPlace(c);
  AppendNormalized(c, /*id_added=*/true, /*time_added=*/true, bytes);
  CommandEnvelope parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.command_id().size(), 36u);
  EXPECT_TRUE(parsed.has_submitted_at());
  EXPECT_EQ(parsed.SerializeAsString(), c.SerializeAsString());
}

TEST(AppendNormalizedTest, OnlyWhatWasMissingIsAppended) {
  CommandEnvelope c = Envelope();
  c.set_command_id("given-id");
  std::string bytes = c.SerializeAsString();
  size_t before = bytes.size();
  NormalizeInPlace(c);  // sets only the submission time
  AppendNormalized(c, /*id_added=*/false, /*time_added=*/true, bytes);
  EXPECT_GT(bytes.size(), before);
  CommandEnvelope parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.command_id(), "given-id");
  EXPECT_EQ(parsed.submitted_at().seconds(), c.submitted_at().seconds());
  EXPECT_EQ(parsed.submitted_at().nanos(), c.submitted_at().nanos());

  std::string unchanged = c.SerializeAsString();
  AppendNormalized(c, false, false, unchanged);
  EXPECT_EQ(unchanged, c.SerializeAsString());
}

TEST(AppendNormalizedTest, TimestampEdgeValuesEncodeAsProtobufDoes) {
  for (auto [seconds, nanos] : std::vector<std::pair<int64_t, int32_t>>{
           {0, 0}, {0, 1}, {1, 0}, {-5, 0}, {-1, 999999999}, {253402300799, 999999999}}) {
    CommandEnvelope c = Envelope();
    c.set_command_id("id");
    std::string bytes = c.SerializeAsString();
    c.mutable_submitted_at()->set_seconds(seconds);
    c.mutable_submitted_at()->set_nanos(nanos);
    AppendNormalized(c, /*id_added=*/false, /*time_added=*/true, bytes);
    CommandEnvelope parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes)) << seconds << "s " << nanos << "ns";
    EXPECT_TRUE(parsed.has_submitted_at());
    EXPECT_EQ(parsed.SerializeAsString(), c.SerializeAsString())
        << seconds << "s " << nanos << "ns";
  }
}

TEST(ResultResponseBytesTest, ParsesAsTheResponseMessage) {
  CommandResult r;
  r.set_command_id("cmd-1");
  r.set_aggregate_type("bank.account");
  r.set_outcome(CommandResult::REJECTED);
  r.set_message(std::string(200, 'm'));
  r.add_event_positions()->set_offset(42);
  ExecuteStreamResponse response;
  ASSERT_TRUE(response.ParseFromString(Bytes(ResultResponseBytes("cmd-1", r.SerializeAsString()))));
  EXPECT_EQ(response.command_id(), "cmd-1");
  ASSERT_TRUE(response.has_result());
  EXPECT_EQ(response.result().SerializeAsString(), r.SerializeAsString());

  ExecuteStreamResponse built;
  built.set_command_id("cmd-1");
  *built.mutable_result() = r;
  EXPECT_EQ(Bytes(ResultResponseBytes("cmd-1", r.SerializeAsString())), built.SerializeAsString());
}

CommandResult Result(const std::string& id, int64_t version) {
  CommandResult r;
  r.set_command_id(id);
  r.set_version(version);
  return r;
}

TEST(ResultCacheTest, KeepsTheFirstResultOfAnIdAndEvictsTheLeastRecentlyUsed) {
  ResultCache cache(2);
  cache.Put("a", Result("a", 1).SerializeAsString());
  cache.Put("a", Result("a", 9).SerializeAsString());  // a re-published duplicate: ignored
  cache.Put("b", Result("b", 2).SerializeAsString());
  ASSERT_TRUE(cache.Find("a").has_value());  // refreshes "a": "b" is now the oldest
  EXPECT_EQ(cache.Find("a")->version(), 1);
  cache.Put("c", Result("c", 3).SerializeAsString());
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.Find("b").has_value());
  ASSERT_TRUE(cache.Find("c").has_value());
  EXPECT_EQ(cache.Find("c")->command_id(), "c");
  EXPECT_TRUE(cache.Find("a").has_value());
}

TEST(ResultCacheTest, ZeroCapacityKeepsNothing) {
  ResultCache cache(0);
  cache.Put("a", Result("a", 1).SerializeAsString());
  EXPECT_FALSE(cache.Find("a").has_value());
}

}  // namespace
}  // namespace leftfold::internal::gateway
