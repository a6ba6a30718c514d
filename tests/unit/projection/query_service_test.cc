// ViewQuery over gRPC (port 0): Get/Scan of a live view, token waits, Lag.
#include "projection/query_service.h"

#include <filesystem>

#include "bank/v1/bank.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "store/rocks_view_store.h"
#include "support/test_env.h"
#include "topology/topics.h"
#include "unit/projection/projection_test_util.h"

namespace leftfold::internal::projection {
namespace {

TEST(ViewQueryServiceTest, GetScanLagWithConsistencyToken) {
  const std::string dir = leftfold::testing::MakeTempDir("query");
  auto log = log::OpenLog({.embedded_dir = dir + "/log"});
  ASSERT_TRUE(log.ok());
  const std::string type = leftfold::testing::UniqueName("bank.account");
  const std::string topic = TopicsFor("", type).events;
  ASSERT_TRUE(EnsureTopics((*log)->admin(), TopicsFor("", type), 2).ok());
  auto store = store::RocksViewStore::Open(dir + "/view", "counter");
  ASSERT_TRUE(store.ok());
  Runner runner(**log, leftfold::testing::CounterProjector("counter", type), **store, {});
  ASSERT_TRUE(runner.Start().ok());

  ViewQueryService service;
  service.AddProjector(runner, &(*store)->committed());
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = v1::ViewQuery::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));

  auto positions = leftfold::testing::ProduceDeposits(**log, type, topic, 30, 3);
  ASSERT_TRUE(positions.ok());
  {
    // Read-your-writes: with the token, the row reflects all 30 events.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::GetRequest req;
    req.set_view("counter");
    req.set_key("total");
    for (const auto& p : *positions) *req.add_consistency_token() = p;
    v1::GetResponse resp;
    grpc::Status s = stub->Get(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    bank::v1::Account total;
    ASSERT_TRUE(resp.row().UnpackTo(&total));
    EXPECT_EQ(total.balance(), 30);
  }
  {
    // A token the view cannot reach before the deadline.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    v1::GetRequest req;
    req.set_view("counter");
    req.set_key("total");
    v1::Position* p = req.add_consistency_token();
    *p = positions->front();
    p->set_offset(1'000'000);
    v1::GetResponse resp;
    EXPECT_EQ(stub->Get(&ctx, req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_view("counter");
    req.set_key("nope");
    v1::GetResponse resp;
    EXPECT_EQ(stub->Get(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    // Paging through the three account rows, two at a time.
    std::vector<std::string> keys;
    std::string token;
    do {
      grpc::ClientContext ctx;
      v1::ScanRequest req;
      req.set_view("counter");
      req.set_prefix("acct-");
      req.set_limit(2);
      req.set_page_token(token);
      v1::ScanResponse resp;
      ASSERT_TRUE(stub->Scan(&ctx, req, &resp).ok());
      for (const auto& r : resp.rows()) keys.push_back(r.key());
      token = resp.next_page_token();
    } while (!token.empty());
    EXPECT_EQ(keys, (std::vector<std::string>{"acct-0", "acct-1", "acct-2"}));
  }
  {
    grpc::ClientContext ctx;
    v1::LagRequest req;
    req.set_projector("counter");
    v1::LagResponse resp;
    ASSERT_TRUE(stub->Lag(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.partitions_size(), 2);
    for (const auto& l : resp.partitions()) {
      EXPECT_EQ(l.lag(), 0);
      EXPECT_EQ(l.checkpoint(), l.end_offset());
    }
  }
  server->Shutdown();
  runner.Stop().IgnoreError();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace leftfold::internal::projection
