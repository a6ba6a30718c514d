// The command gateway on the real broker: Execute round trip and a subscription on one instance
// seeing commands sent through another.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

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

}  // namespace
}  // namespace leftfold
