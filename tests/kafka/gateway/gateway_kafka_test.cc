// The command gateway on the real broker: Execute round trip, a subscription on one instance
// seeing commands sent through another, and a thousand commands over one ExecuteStream.
#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fake_processor.h"
#include "gtest/gtest.h"
#include "leftfold/gateway.h"
#include "leftfold/transport.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"
#include "support/test_env.h"

namespace leftfold {
namespace {

using v1::CommandEnvelope;
using v1::CommandGateway;
using v1::CommandResult;
using v1::ExecuteStreamResponse;

class GatewayKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TestBrokers().empty()) << "LEFTFOLD_TEST_BROKERS is not set";
    auto transport = Transport::Open({.brokers = testing::TestBrokers(), .partitions = 3});
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *transport;
    type_ = testing::UniqueName("gwacct");
  }
  void TearDown() override {
    if (transport_ == nullptr) return;  // SetUp failed (no broker)
    if (processor_) processor_->Stop();
    for (auto& s : servers_) s->Shutdown(absl::Seconds(1));
    std::vector<std::string> topics;
    auto t = internal::TopicsFor("", type_);
    transport_->log_internal()
        .admin()
        .DeleteTopics({t.commands, t.events, t.results, t.snapshots})
        .IgnoreError();
  }
  std::unique_ptr<CommandGateway::Stub> StartGateway() {
    auto server = ServeGateway(transport_, {.aggregate_types = {type_}}, "127.0.0.1:0");
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return nullptr;
    auto stub = CommandGateway::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials()));
    servers_.push_back(*std::move(server));
    return stub;
  }
  void StartProcessor() {
    processor_ = std::make_unique<testing::FakeProcessor>(transport_->log_internal(), "", type_);
    ASSERT_TRUE(processor_->Start().ok());
  }
  CommandEnvelope Command(const std::string& id, const std::string& what) {
    CommandEnvelope c;
    c.set_aggregate_type(type_);
    c.set_aggregate_id(id);
    *c.mutable_payload() = testing::FakeProcessor::Payload(what);
    return c;
  }

  std::shared_ptr<Transport> transport_;
  std::string type_;
  std::vector<std::unique_ptr<GatewayServer>> servers_;
  std::unique_ptr<testing::FakeProcessor> processor_;
};

TEST_F(GatewayKafkaTest, ExecuteRoundTripAndRejection) {
  auto stub = StartGateway();
  ASSERT_NE(stub, nullptr);
  StartProcessor();
  CommandResult r;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = stub->Execute(&ctx, Command("k-1", "accept:2"), &r);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(r.outcome(), CommandResult::ACCEPTED);
  EXPECT_EQ(r.event_positions_size(), 2);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status s = stub->Execute(&ctx, Command("k-1", "reject:9"), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
}

TEST_F(GatewayKafkaTest, SubscriberOnOneInstanceSeesCommandsOfAnother) {
  auto a = StartGateway();
  auto b = StartGateway();
  ASSERT_TRUE(a != nullptr && b != nullptr);
  StartProcessor();
  v1::ResultFilter filter;
  filter.add_aggregate_ids("k-2");
  grpc::ClientContext sub_ctx;
  auto reader = b->SubscribeResults(&sub_ctx, filter);
  reader->WaitForInitialMetadata();
  CommandResult r;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(a->Execute(&ctx, Command("k-2", "accept"), &r).ok());
  CommandResult seen;
  ASSERT_TRUE(reader->Read(&seen));
  EXPECT_EQ(seen.command_id(), r.command_id());
  sub_ctx.TryCancel();
  reader->Finish();
}

// ExecuteStream: a thousand commands through one stream, every one answered with its own
// correct result, applied once each in the order streamed.
TEST_F(GatewayKafkaTest, AThousandCommandsOverOneExecuteStream) {
  constexpr int kCommands = 1000;
  constexpr int kAggregates = 37;
  auto stub = StartGateway();
  StartProcessor();

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto stream = stub->ExecuteStream(&ctx);
  // Every tenth command is rejected; the rest append 1 or 2 events.
  std::map<std::string, std::string> what;  // command id -> payload
  std::thread writer([&] {
    for (int i = 0; i < kCommands; ++i) {
      CommandEnvelope c;
      c.set_command_id(absl::StrCat("ks-", i));
      c.set_aggregate_type(type_);
      c.set_aggregate_id(absl::StrCat("acct-", i % kAggregates));
      *c.mutable_payload() = testing::FakeProcessor::Payload(
          i % 10 == 0 ? "reject:9" : absl::StrCat("accept:", 1 + i % 2));
      if (!stream->Write(c)) return;
    }
    stream->WritesDone();
  });
  for (int i = 0; i < kCommands; ++i) {
    what[absl::StrCat("ks-", i)] = i % 10 == 0 ? "reject" : absl::StrCat(1 + i % 2);
  }
  std::map<std::string, ExecuteStreamResponse> answers;
  ExecuteStreamResponse r;
  while (stream->Read(&r)) {
    EXPECT_TRUE(answers.emplace(r.command_id(), r).second) << "answered twice: " << r.command_id();
  }
  writer.join();
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_EQ(answers.size(), static_cast<size_t>(kCommands));

  // In send order, each aggregate's version after each command is the running total of the
  // events of its accepted commands: every command applied exactly once, in the order streamed.
  std::map<std::string, int64_t> version;
  for (int i = 0; i < kCommands; ++i) {
    std::string id = absl::StrCat("ks-", i);
    SCOPED_TRACE(id);
    const ExecuteStreamResponse& a = answers[id];
    ASSERT_TRUE(a.has_result()) << a.status().code() << " " << a.status().message();
    const CommandResult& result = a.result();
    EXPECT_EQ(result.command_id(), id);
    int64_t& v = version[result.aggregate_id()];
    if (what[id] == "reject") {
      EXPECT_EQ(result.outcome(), CommandResult::REJECTED);
      EXPECT_EQ(result.code(), 9);
    } else {
      EXPECT_EQ(result.outcome(), CommandResult::ACCEPTED);
      EXPECT_EQ(absl::StrCat(result.event_positions_size()), what[id]);
      v += result.event_positions_size();
    }
    EXPECT_EQ(result.version(), v);
  }
  EXPECT_EQ(servers_[0]->gateway().inflight(), 0u);
}

}  // namespace
}  // namespace leftfold
