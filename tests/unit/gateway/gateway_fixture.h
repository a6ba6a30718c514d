// What the gateway's unit tests share: an embedded log in a temporary folder, gateways on port 0
// and fake processors answering their commands.
//
//   class MyTest : public leftfold::testing::GatewayFixture {};
//   TEST_F(MyTest, Something) {
//     auto stub = StartGateway();        // routes type_
//     auto& processor = StartProcessor();
//     ...
//   }
//
// Everything started is stopped in TearDown.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fake_processor.h"
#include "gtest/gtest.h"
#include "leftfold/gateway.h"
#include "leftfold/transport.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"
#include "log/log.h"
#include "support/test_env.h"
#include "topology/topics.h"

namespace leftfold::testing {

// Polls `cond` until it holds or `timeout` passes.
inline bool Eventually(const std::function<bool()>& cond,
                       absl::Duration timeout = absl::Seconds(20)) {
  absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return cond();
}

class GatewayFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("gateway");
    auto transport = Transport::Open({.embedded_dir = dir_ + "/log", .partitions = 2});
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *transport;
    type_ = UniqueName("acct");
    topics_ = internal::TopicsFor("", type_);
  }

  void TearDown() override {
    for (auto& p : processors_) p->Stop();
    for (auto& s : servers_) s->Shutdown(absl::Seconds(1));
  }

  // Starts one gateway instance (routing type_ unless the options name types); returns its stub.
  std::unique_ptr<v1::CommandGateway::Stub> StartGateway(GatewayOptions options = {}) {
    if (options.aggregate_types.empty()) options.aggregate_types = {type_};
    auto server = ServeGateway(transport_, options, "127.0.0.1:0");
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return nullptr;
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                                       grpc::InsecureChannelCredentials());
    servers_.push_back(*std::move(server));
    return v1::CommandGateway::NewStub(channel);
  }

  FakeProcessor& StartProcessor() {
    processors_.push_back(std::make_unique<FakeProcessor>(transport_->log_internal(), "", type_));
    EXPECT_TRUE(processors_.back()->Start().ok());
    return *processors_.back();
  }

  // Commands in type_'s commands topic, committed or not.
  int64_t CommandsInLog() {
    auto ends = transport_->log_internal().admin().EndOffsets(
        topics_.commands, internal::log::Isolation::kReadUncommitted);
    EXPECT_TRUE(ends.ok()) << ends.status();
    int64_t sum = 0;
    for (int64_t e : *ends) sum += e;
    return sum;
  }

  std::string dir_;
  std::shared_ptr<Transport> transport_;
  std::string type_;
  internal::AggregateTopics topics_;
  std::vector<std::unique_ptr<GatewayServer>> servers_;
  std::vector<std::unique_ptr<FakeProcessor>> processors_;
};

}  // namespace leftfold::testing
