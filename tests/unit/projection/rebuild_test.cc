// View rebuild on the embedded log: the shadow view equals a view built from scratch, queries
// keep working during the rebuild, an interrupted rebuild resumes, a crash in the middle of the
// directory swap is finished at the next open.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bank/v1/bank.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "projection/query_service.h"
#include "projection/rebuilder.h"
#include "projection/runner.h"
#include "store/rocks_view_store.h"
#include "support/test_env.h"
#include "unit/projection/projection_test_util.h"

namespace leftfold::internal::projection {
namespace {

using leftfold::testing::CounterProjector;
using leftfold::testing::ProduceDeposits;

template <typename Fn>
bool Eventually(Fn done, absl::Duration timeout = absl::Seconds(30)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return done();
}

int64_t Total(const View& view) {
  auto row = view.Get<bank::v1::Account>("total");
  return row.ok() ? row->balance() : 0;
}

// Every row, key and stored Any bytes, in key order.
std::vector<std::pair<std::string, std::string>> Dump(const View& view) {
  std::vector<std::pair<std::string, std::string>> out;
  ScanRange range;
  range.limit = 1000;
  for (;;) {
    absl::StatusOr<ScanPage> page = view.Scan(range);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return out;
    for (const ViewRow& r : page->rows) out.emplace_back(r.key, r.value.SerializeAsString());
    if (page->next_page_token.empty()) return out;
    range.page_token = page->next_page_token;
  }
}

int64_t CheckpointSum(store::ProjectionStore& store) {
  absl::StatusOr<store::Checkpoints> cps = store.LoadCheckpoints();
  if (!cps.ok()) return -1;
  int64_t sum = 0;
  for (const auto& entry : *cps) sum += entry.second;
  return sum;
}

// A buggy first version of the counter: the rebuild must replace its rows.
Projector BuggyCounter(const std::string& name, const std::string& type) {
  return Projector(name).From(type).On<bank::v1::Deposited>(
      [](const EventContext&, const bank::v1::Deposited&, View& view) -> absl::Status {
        bank::v1::Account total;
        absl::Status s = view.Get("total", &total);
        if (!s.ok() && !absl::IsNotFound(s)) return s;
        total.set_balance(total.balance() + 1000);
        return view.Put("total", total);
      });
}

class RebuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto events = leftfold::testing::OpenTestEvents("rebuild");
    ASSERT_TRUE(events.ok()) << events.status();
    dir_ = events->dir, type_ = events->type, topic_ = events->topic;
    log_ = std::move(events->log);
    store_ = Open(dir_ + "/view");
  }
  void TearDown() override {
    store_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<store::RocksViewStore> Open(const std::string& dir) {
    auto store = store::RocksViewStore::Open(dir, "counter");
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  // A view built from scratch by a runner of its own, after `events` events.
  std::vector<std::pair<std::string, std::string>> ReferenceRows(int64_t events) {
    auto ref = Open(dir_ + "/reference");
    Runner runner(*log_, CounterProjector("counter_ref", type_), *ref, {.max_batch = 50});
    EXPECT_TRUE(runner.Start().ok());
    EXPECT_TRUE(Eventually([&] { return CheckpointSum(*ref) == events; }));
    EXPECT_TRUE(runner.Stop().ok());
    return Dump(ref->committed());
  }

  std::string dir_, type_, topic_;
  std::unique_ptr<log::Log> log_;
  std::unique_ptr<store::RocksViewStore> store_;
};

TEST_F(RebuildTest, ShadowEqualsFreshViewWhileQueriesAndEventsGoOn) {
  constexpr int kEvents = 2000;
  ASSERT_TRUE(ProduceDeposits(*log_, type_, topic_, kEvents, 7).ok());
  {
    Runner buggy(*log_, BuggyCounter("counter", type_), *store_, {.max_batch = 64});
    ASSERT_TRUE(buggy.Start().ok());
    ASSERT_TRUE(Eventually([&] { return CheckpointSum(*store_) == kEvents; }));
    ASSERT_TRUE(buggy.Stop().ok());
  }
  const View& view = store_->committed();  // the same object across the swap
  ASSERT_EQ(Total(view), int64_t{kEvents} * 1000);

  Runner runner(*log_, CounterProjector("counter", type_), *store_, {.max_batch = 64});
  ASSERT_TRUE(runner.Start().ok());

  std::atomic<bool> done{false};
  std::atomic<int64_t> reads{0}, failures{0};
  std::thread reader([&] {
    while (!done) {
      auto row = view.Get<bank::v1::Account>("total");
      absl::StatusOr<ScanPage> page = view.Scan({.limit = 3});
      if (!row.ok() || !page.ok() || page->rows.empty()) ++failures;
      ++reads;
    }
  });
  std::vector<RebuildProgress> reports;
  Rebuilder rebuilder(*log_, runner, *store_);
  absl::Status s = rebuilder.Run([&](const RebuildProgress& p) {
    // The live view keeps moving during the rebuild: 500 more events once it has begun.
    if (reports.empty()) {
      EXPECT_TRUE(ProduceDeposits(*log_, type_, topic_, 500, 7).ok());
    }
    reports.push_back(p);
  });
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(Eventually([&] { return reads > 100; }));
  done = true;
  reader.join();
  EXPECT_EQ(failures, 0) << "of " << reads << " reads";

  ASSERT_TRUE(Eventually([&] { return CheckpointSum(*store_) == kEvents + 500; }));
  EXPECT_EQ(Total(view), kEvents + 500);
  ASSERT_TRUE(runner.Stop().ok());
  std::vector<std::pair<std::string, std::string>> rebuilt = Dump(view);
  EXPECT_EQ(rebuilt.size(), 8u);  // "total" and 7 accounts
  EXPECT_EQ(rebuilt, ReferenceRows(kEvents + 500));
  EXPECT_FALSE(store::RocksViewStore::HasShadow(dir_ + "/view"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/view.old"));

  ASSERT_GE(reports.size(), 2u);
  for (size_t i = 1; i < reports.size(); ++i) {
    EXPECT_GE(reports[i].events_done, reports[i - 1].events_done);
  }
  EXPECT_TRUE(reports.back().swapped);
  EXPECT_DOUBLE_EQ(reports.back().fraction(), 1.0);
  EXPECT_EQ(reports.front().events_total, kEvents);
  EXPECT_GE(reports.back().events_done, kEvents);
  EXPECT_GT(reports.back().events_per_second, 0);
  EXPECT_EQ(reports.back().eta, absl::ZeroDuration());
}

TEST_F(RebuildTest, InterruptedRebuildResumesAfterRestart) {
  constexpr int kEvents = 3000;
  ASSERT_TRUE(ProduceDeposits(*log_, type_, topic_, kEvents, 5).ok());
  auto runner = std::make_unique<Runner>(*log_, CounterProjector("counter", type_), *store_,
                                         RunnerOptions{.max_batch = 64});
  ASSERT_TRUE(runner->Start().ok());
  ASSERT_TRUE(Eventually([&] { return CheckpointSum(*store_) == kEvents; }));
  const std::vector<std::pair<std::string, std::string>> before = Dump(store_->committed());

  int64_t done_at_cancel = 0;
  {
    auto first = std::make_unique<Rebuilder>(*log_, *runner, *store_);
    absl::Status s = first->Run([&](const RebuildProgress& p) {
      done_at_cancel = p.events_done;
      if (p.events_done >= 1000) first->Cancel();
    });
    EXPECT_TRUE(absl::IsCancelled(s)) << s;
    first.reset();  // the rebuilder is gone mid-way
  }
  ASSERT_GE(done_at_cancel, 1000);
  ASSERT_LT(done_at_cancel, kEvents);
  EXPECT_TRUE(store::RocksViewStore::HasShadow(dir_ + "/view"));

  // A restart: the incomplete shadow must not replace the live view.
  ASSERT_TRUE(runner->Stop().ok());
  runner.reset();
  store_.reset();
  store_ = Open(dir_ + "/view");
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(Dump(store_->committed()), before);
  runner = std::make_unique<Runner>(*log_, CounterProjector("counter", type_), *store_,
                                    RunnerOptions{.max_batch = 64});
  ASSERT_TRUE(runner->Start().ok());

  std::vector<RebuildProgress> reports;
  Rebuilder second(*log_, *runner, *store_);
  absl::Status s = second.Run([&](const RebuildProgress& p) { reports.push_back(p); });
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_FALSE(reports.empty());
  EXPECT_GE(reports.front().events_done, done_at_cancel);  // resumed, not restarted
  EXPECT_TRUE(reports.back().swapped);
  EXPECT_EQ(reports.back().events_done, kEvents);
  EXPECT_EQ(reports.back().events_total, kEvents);
  EXPECT_EQ(Dump(store_->committed()), before);
  EXPECT_FALSE(store::RocksViewStore::HasShadow(dir_ + "/view"));
  ASSERT_TRUE(runner->Stop().ok());
}

TEST_F(RebuildTest, CrashBetweenTheRenamesIsFinishedAtOpen) {
  const std::string dir = dir_ + "/view";
  {
    auto batch = store_->Begin();
    ASSERT_TRUE(batch.ok());
    bank::v1::Account old_row;
    old_row.set_balance(1);
    ASSERT_TRUE((*batch)->view()->Put("k", old_row).ok());
    ASSERT_TRUE((*batch)->Commit({{{topic_, 0}, 1}}).ok());
  }
  {
    auto shadow = store::RocksViewStore::OpenShadow(dir, "counter");
    ASSERT_TRUE(shadow.ok()) << shadow.status();
    auto batch = (*shadow)->Begin();
    ASSERT_TRUE(batch.ok());
    bank::v1::Account new_row;
    new_row.set_balance(2);
    ASSERT_TRUE((*batch)->view()->Put("k", new_row).ok());
    ASSERT_TRUE((*batch)->Commit({{{topic_, 0}, 1}}).ok());
  }
  store_.reset();
  // What SwapIn leaves when the process dies after its first rename.
  std::ofstream(store::RocksViewStore::ShadowDir(dir) + "/LEFTFOLD_REBUILD_COMPLETE") << "complete";
  std::filesystem::rename(dir, dir + ".old");

  store_ = Open(dir);
  ASSERT_NE(store_, nullptr);
  auto row = store_->committed().Get<bank::v1::Account>("k");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(row->balance(), 2);
  EXPECT_FALSE(std::filesystem::exists(dir + ".old"));
  EXPECT_FALSE(store::RocksViewStore::HasShadow(dir));
}

TEST_F(RebuildTest, RebuildRpcStreamsProgressUntilTheSwap) {
  constexpr int kEvents = 1500;
  ASSERT_TRUE(ProduceDeposits(*log_, type_, topic_, kEvents, 4).ok());
  Runner runner(*log_, CounterProjector("counter", type_), *store_, {.max_batch = 64});
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(Eventually([&] { return CheckpointSum(*store_) == kEvents; }));
  const std::vector<std::pair<std::string, std::string>> before = Dump(store_->committed());
  {
    ViewQueryService service;
    service.AddProjector(runner, &store_->committed());
    service.AddRebuild("counter", [&](std::function<void(const RebuildProgress&)> on_progress) {
      Rebuilder rebuilder(*log_, runner, *store_);
      return rebuilder.Run(on_progress);
    });
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    ASSERT_NE(server, nullptr);
    auto stub = v1::ViewQuery::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      v1::RebuildRequest req;
      req.set_projector("counter");
      auto reader = stub->Rebuild(&ctx, req);
      std::vector<v1::RebuildProgress> msgs;
      v1::RebuildProgress msg;
      while (reader->Read(&msg)) msgs.push_back(msg);
      grpc::Status s = reader->Finish();
      ASSERT_TRUE(s.ok()) << s.error_message();
      ASSERT_FALSE(msgs.empty());
      for (size_t i = 1; i < msgs.size(); ++i) {
        EXPECT_GE(msgs[i].events_done(), msgs[i - 1].events_done());
      }
      EXPECT_TRUE(msgs.back().swapped());
      EXPECT_EQ(msgs.back().events_done(), kEvents);
      EXPECT_EQ(msgs.back().events_total(), kEvents);
    }
    {
      grpc::ClientContext ctx;
      v1::RebuildRequest req;
      req.set_projector("nope");
      auto reader = stub->Rebuild(&ctx, req);
      v1::RebuildProgress msg;
      EXPECT_FALSE(reader->Read(&msg));
      EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
    }
    server->Shutdown();
  }
  EXPECT_EQ(Dump(store_->committed()), before);
  ASSERT_TRUE(runner.Stop().ok());
}

}  // namespace
}  // namespace leftfold::internal::projection
