// The runner's pipelining: the RocksDB store writes a committed batch in the background while
// the next batch runs, and the runner polls and decodes the next batch meanwhile. A background
// write that fails must make the runner rewind to the store's checkpoints before any batch goes
// on top of it, so that every event still counts exactly once.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "projection/runner.h"
#include "store/rocks_view_store.h"
#include "support/test_env.h"
#include "unit/projection/projection_test_util.h"

namespace leftfold::internal::projection {
namespace {

constexpr char kChildEnv[] = "LEFTFOLD_TEST_PIPELINE_CHILD";

using leftfold::testing::CounterProjector;
using leftfold::testing::ProduceDeposits;
using leftfold::testing::SumOfAmounts;

// A RocksViewStore whose `lose_at`-th commit is acknowledged but never written, the way a
// background write that fails looks to the runner: Commit returns OK, the failure comes with
// the next Commit or Flush.
class LosingStore : public store::ProjectionStore {
 public:
  LosingStore(store::RocksViewStore& inner, int lose_at) : inner_(inner), lose_at_(lose_at) {}

  absl::StatusOr<store::Checkpoints> LoadCheckpoints() override { return inner_.LoadCheckpoints(); }
  absl::StatusOr<std::unique_ptr<store::Batch>> Begin() override {
    absl::StatusOr<std::unique_ptr<store::Batch>> b = inner_.Begin();
    if (!b.ok()) return b.status();
    return std::unique_ptr<store::Batch>(new LosingBatch(*this, *std::move(b)));
  }
  absl::Status Flush() override {
    if (!lost_.ok()) return std::exchange(lost_, absl::OkStatus());
    absl::Status s = inner_.Flush();
    watermarks_.Advance(inner_.watermarks().Snapshot());
    return s;
  }
  int commits() const { return commits_.load(); }

 private:
  class LosingBatch : public store::Batch {
   public:
    LosingBatch(LosingStore& store, std::unique_ptr<store::Batch> inner)
        : store_(store), inner_(std::move(inner)) {}
    View* view() override { return inner_->view(); }
    SqlView* sql() override { return inner_->sql(); }
    absl::Status Commit(const store::Checkpoints& checkpoints) override {
      if (!store_.lost_.ok()) return std::exchange(store_.lost_, absl::OkStatus());
      if (++store_.commits_ == store_.lose_at_) {
        store_.lost_ = absl::UnavailableError("background write failed");
        return absl::OkStatus();  // acknowledged, never written
      }
      absl::Status s = inner_->Commit(checkpoints);
      if (s.ok()) s = store_.Flush();
      return s;
    }

   private:
    LosingStore& store_;
    std::unique_ptr<store::Batch> inner_;
  };

  store::RocksViewStore& inner_;
  const int lose_at_;
  std::atomic<int> commits_{0};
  absl::Status lost_;  // runner thread only
};

class RunnerPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto events = leftfold::testing::OpenTestEvents("pipeline");
    ASSERT_TRUE(events.ok()) << events.status();
    dir_ = events->dir, type_ = events->type, topic_ = events->topic;
    log_ = std::move(events->log);
    auto store = store::RocksViewStore::Open(dir_ + "/view", "counter");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void TearDown() override {
    store_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  int64_t Balance(const std::string& key) {
    auto row = store_->committed().Get<bank::v1::Account>(key);
    return row.ok() ? row->balance() : 0;
  }

  std::string dir_, type_, topic_;
  std::unique_ptr<log::Log> log_;
  std::unique_ptr<store::RocksViewStore> store_;
};

TEST_F(RunnerPipelineTest, LostBackgroundWriteIsReappliedExactlyOnce) {
  constexpr int kEvents = 400;
  auto positions = ProduceDeposits(*log_, type_, topic_, kEvents, 5);
  ASSERT_TRUE(positions.ok()) << positions.status();
  LosingStore losing(*store_, /*lose_at=*/3);
  Runner runner(*log_, CounterProjector("counter", type_), losing, {.max_batch = 16});
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(runner.WaitFor(*positions, absl::Now() + absl::Seconds(30)).ok());
  ASSERT_TRUE(runner.Stop().ok());
  EXPECT_GT(losing.commits(), 3);  // the lost batch was followed by more
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(Balance("total"), kEvents);
  int64_t sum = 0;
  for (int a = 0; a < 5; ++a) sum += Balance(absl::StrCat("acct-", a));
  EXPECT_EQ(sum, SumOfAmounts(kEvents));
}

TEST_F(RunnerPipelineTest, LargeBatchesOverlapWritesAndStayExact) {
  // Batches big enough for the decoder thread, rows rewritten in every batch (the background
  // write of batch N and the reads of batch N+1 touch the same keys).
  constexpr int kEvents = 5000;
  auto positions = ProduceDeposits(*log_, type_, topic_, kEvents, 3);
  ASSERT_TRUE(positions.ok()) << positions.status();
  Runner runner(*log_, CounterProjector("counter", type_), *store_, {.max_batch = 200});
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(runner.WaitFor(*positions, absl::Now() + absl::Seconds(30)).ok());
  // The token answered: the rows are in RocksDB and visible to queries, no Flush needed.
  EXPECT_EQ(Balance("total"), kEvents);
  int64_t sum = 0;
  for (int a = 0; a < 3; ++a) sum += Balance(absl::StrCat("acct-", a));
  EXPECT_EQ(sum, SumOfAmounts(kEvents));
  EXPECT_EQ(runner.events_applied(), kEvents);
  ASSERT_TRUE(runner.Stop().ok());
}

// Run only by KillMinus9WhileBatchesAreInFlightResumesExactlyOnce: projects until some events
// are applied, then SIGKILLs itself while the pipeline is full (a batch's write in flight on the
// store's writer thread, the next batch's handlers running, the one after being decoded).
TEST(RunnerPipelineChild, DISABLED_CrashChild) {
  const char* spec = std::getenv(kChildEnv);
  ASSERT_NE(spec, nullptr) << "a helper of KillMinus9WhileBatchesAreInFlightResumesExactlyOnce";
  std::vector<std::string> fields = absl::StrSplit(spec, '|');
  ASSERT_EQ(fields.size(), 3u);
  int64_t kill_after = 0;
  ASSERT_TRUE(absl::SimpleAtoi(fields[2], &kill_after));
  auto log = log::OpenLog({.embedded_dir = fields[0] + "/log"});
  ASSERT_TRUE(log.ok()) << log.status();
  auto store = store::RocksViewStore::Open(fields[0] + "/view", "counter");
  ASSERT_TRUE(store.ok()) << store.status();
  Runner runner(**log, CounterProjector("counter", fields[1]), **store, {.max_batch = 200});
  ASSERT_TRUE(runner.Start().ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (runner.events_applied() < kill_after && absl::Now() < deadline) {
    std::this_thread::yield();  // a busy watch: the kill must land while batches flow
  }
  std::raise(SIGKILL);
}

TEST_F(RunnerPipelineTest, KillMinus9WhileBatchesAreInFlightResumesExactlyOnce) {
  constexpr int kEvents = 20000;
  auto positions = ProduceDeposits(*log_, type_, topic_, kEvents, 11);
  ASSERT_TRUE(positions.ok()) << positions.status();
  // The child opens the same log and view store: one process at a time.
  store_.reset();
  log_.reset();
  int status = leftfold::testing::RunSelfAsChild(
      "RunnerPipelineChild.DISABLED_CrashChild",
      {absl::StrCat(kChildEnv, "=", dir_, "|", type_, "|", kEvents / 3)});
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child projector did not get to its crash (status " << status << ")";

  auto log = log::OpenLog({.embedded_dir = dir_ + "/log"});
  ASSERT_TRUE(log.ok()) << log.status();
  log_ = *std::move(log);
  auto store = store::RocksViewStore::Open(dir_ + "/view", "counter");
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
  // What the crash left: the view is the fold of exactly the checkpointed events.
  auto cps = store_->LoadCheckpoints();
  ASSERT_TRUE(cps.ok()) << cps.status();
  int64_t checkpointed = 0;
  for (const auto& [tp, offset] : *cps) checkpointed += offset;
  const int64_t applied = Balance("total");
  EXPECT_EQ(applied, checkpointed);
  EXPECT_GT(applied, 0);
  EXPECT_LT(applied, kEvents);

  Runner resumed(*log_, CounterProjector("counter", type_), *store_, {.max_batch = 200});
  ASSERT_TRUE(resumed.Start().ok());
  ASSERT_TRUE(resumed.WaitFor(*positions, absl::Now() + absl::Seconds(60)).ok());
  EXPECT_EQ(Balance("total"), kEvents);
  EXPECT_EQ(resumed.events_applied(), kEvents - applied);
  int64_t sum = 0;
  for (int a = 0; a < 11; ++a) sum += Balance(absl::StrCat("acct-", a));
  EXPECT_EQ(sum, SumOfAmounts(kEvents));
  ASSERT_TRUE(resumed.Stop().ok());
}

}  // namespace
}  // namespace leftfold::internal::projection
