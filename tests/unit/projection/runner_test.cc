// The projector runtime on the embedded log: exactly-once views, crash recovery from the
// checkpoint in the view store, consistency-token waits, poison events.
#include "projection/runner.h"

#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "store/rocks_view_store.h"
#include "support/test_env.h"
#include "unit/projection/projection_test_util.h"

namespace leftfold::internal::projection {
namespace {

using leftfold::testing::CounterProjector;
using leftfold::testing::ProduceDeposits;
using leftfold::testing::SumOfAmounts;

// Polls `done` until it holds or `timeout` passes.
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

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto events = leftfold::testing::OpenTestEvents("projector");
    ASSERT_TRUE(events.ok()) << events.status();
    dir_ = events->dir, type_ = events->type, topic_ = events->topic;
    log_ = std::move(events->log);
    OpenStore();
  }
  void TearDown() override {
    store_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  void OpenStore() {
    store_.reset();
    auto store = store::RocksViewStore::Open(dir_ + "/view", "counter");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  int64_t CheckpointSum() {
    absl::StatusOr<store::Checkpoints> cps = store_->LoadCheckpoints();
    if (!cps.ok()) return -1;
    int64_t sum = 0;
    for (const auto& entry : *cps) sum += entry.second;
    return sum;
  }

  std::string dir_, type_, topic_;
  std::unique_ptr<log::Log> log_;
  std::unique_ptr<store::RocksViewStore> store_;
};

TEST_F(RunnerTest, CounterViewEqualsEventsAndTokenWaits) {
  constexpr int kEvents = 500;
  auto positions = ProduceDeposits(*log_, type_, topic_, kEvents, 7);
  ASSERT_TRUE(positions.ok()) << positions.status();
  Runner runner(*log_, CounterProjector("counter", type_), *store_, {.max_batch = 64});
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(runner.WaitFor(*positions, absl::Now() + absl::Seconds(30)).ok());
  EXPECT_EQ(Total(store_->committed()), kEvents);
  int64_t sum = 0;
  for (int a = 0; a < 7; ++a) {
    sum += store_->committed().Get<bank::v1::Account>(absl::StrCat("acct-", a))->balance();
  }
  EXPECT_EQ(sum, SumOfAmounts(kEvents));
  EXPECT_EQ(CheckpointSum(), kEvents);  // plain producer: offsets are contiguous

  // A token for an event not written yet times out...
  v1::Position future = positions->front();
  future.set_offset(1'000'000);
  EXPECT_EQ(runner.WaitFor({future}, absl::Now() + absl::Milliseconds(100)).code(),
            absl::StatusCode::kDeadlineExceeded);
  // ...and a token for an event written while waiting returns once it is applied.
  absl::StatusOr<std::vector<v1::Position>> more;
  std::thread writer([&] { more = ProduceDeposits(*log_, type_, topic_, 1, 1, 1000); });
  writer.join();
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(runner.WaitFor(*more, absl::Now() + absl::Seconds(30)).ok());
  EXPECT_EQ(Total(store_->committed()), kEvents + 1);

  auto lag = runner.Lag();
  ASSERT_TRUE(lag.ok()) << lag.status();
  EXPECT_EQ(lag->size(), 4u);
  for (const PartitionLag& l : *lag) {
    EXPECT_EQ(l.lag, 0) << l.checkpoint.ShortDebugString();
    EXPECT_TRUE(l.halted.ok());
  }
  EXPECT_TRUE(runner.Stop().ok());
}

TEST_F(RunnerTest, CrashBeforeCommitThenResumeAppliesEachEventOnce) {
  constexpr int kEvents = 300;
  auto positions = ProduceDeposits(*log_, type_, topic_, kEvents, 5);
  ASSERT_TRUE(positions.ok());
  std::atomic<int> commits{0};
  {
    Runner runner(*log_, CounterProjector("counter", type_), *store_,
                  {.max_batch = 16, .crash_before_commit = [&] { return ++commits == 6; }});
    ASSERT_TRUE(runner.Start().ok());
    ASSERT_TRUE(Eventually([&] { return commits.load() >= 6; }));
    runner.Stop().IgnoreError();
  }  // the runtime is gone; its sixth batch was never committed
  OpenStore();
  const int64_t applied = Total(store_->committed());
  EXPECT_GT(applied, 0);
  EXPECT_LT(applied, kEvents);
  // The view equals the fold up to the checkpoint: one count per checkpointed event.
  EXPECT_EQ(applied, CheckpointSum());

  Runner resumed(*log_, CounterProjector("counter", type_), *store_, {.max_batch = 16});
  ASSERT_TRUE(resumed.Start().ok());
  ASSERT_TRUE(resumed.WaitFor(*positions, absl::Now() + absl::Seconds(30)).ok());
  EXPECT_EQ(Total(store_->committed()), kEvents);
  EXPECT_EQ(resumed.events_applied(), kEvents - applied);
  int64_t sum = 0;
  for (int a = 0; a < 5; ++a) {
    sum += store_->committed().Get<bank::v1::Account>(absl::StrCat("acct-", a))->balance();
  }
  EXPECT_EQ(sum, SumOfAmounts(kEvents));
}

TEST_F(RunnerTest, PoisonEventHaltsItsPartitionNamingThePosition) {
  constexpr int kEvents = 40;
  auto positions = ProduceDeposits(*log_, type_, topic_, kEvents, 8);
  ASSERT_TRUE(positions.ok());
  const v1::Position poison = (*positions)[12];  // amount 13
  Runner runner(*log_, CounterProjector("counter", type_, /*poison_13=*/true), *store_,
                {.max_batch = 1000});
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(Eventually([&] { return !runner.halted().ok(); }));
  absl::Status halted = runner.halted();
  EXPECT_NE(halted.message().find(
                absl::StrCat(poison.topic(), "/", poison.partition(), "@", poison.offset())),
            std::string::npos)
      << halted;
  EXPECT_NE(halted.message().find("amount 13 refused"), std::string::npos) << halted;
  // Every other partition goes on; the halted one stops right before the poison event.
  std::vector<v1::Position> others;
  int on_halted_before = 0;
  for (const v1::Position& p : *positions) {
    if (p.partition() != poison.partition()) others.push_back(p);
    if (p.partition() == poison.partition() && p.offset() < poison.offset()) ++on_halted_before;
  }
  ASSERT_TRUE(runner.WaitFor(others, absl::Now() + absl::Seconds(30)).ok());
  EXPECT_EQ(runner.WaitFor({poison}, absl::Now() + absl::Milliseconds(100)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(store_->watermarks().Get({poison.topic(), poison.partition()}), poison.offset());
  EXPECT_EQ(Total(store_->committed()), static_cast<int64_t>(others.size()) + on_halted_before);
  auto lag = runner.Lag();
  ASSERT_TRUE(lag.ok());
  bool saw = false;
  for (const PartitionLag& l : *lag) {
    if (l.checkpoint.partition() == poison.partition()) {
      saw = true;
      EXPECT_FALSE(l.halted.ok());
      EXPECT_GT(l.lag, 0);
    }
  }
  EXPECT_TRUE(saw);
}

TEST_F(RunnerTest, PoisonEventGoesToDeadLetterTopicWhenConfigured) {
  constexpr int kEvents = 40;
  auto positions = ProduceDeposits(*log_, type_, topic_, kEvents, 8);
  ASSERT_TRUE(positions.ok());
  // An undecodable record too: garbage bytes where an EventEnvelope belongs.
  auto garbage = leftfold::testing::ProduceRaw(*log_, topic_, {{"acct-0", "\xff\xff not proto"}});
  ASSERT_TRUE(garbage.ok());
  const std::string name = leftfold::testing::UniqueName("counter");
  Runner runner(*log_, CounterProjector(name, type_, /*poison_13=*/true), *store_,
                {.dead_letter = true});
  ASSERT_TRUE(runner.Start().ok());
  std::vector<v1::Position> all = *positions;
  all.push_back(garbage->front());
  ASSERT_TRUE(runner.WaitFor(all, absl::Now() + absl::Seconds(30)).ok());
  EXPECT_TRUE(runner.halted().ok());
  EXPECT_EQ(Total(store_->committed()), kEvents - 1);

  auto consumer = log_->NewConsumer({});
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE((*consumer)->Assign({{{name + ".dlq", 0}, 0}}).ok());
  std::vector<log::Record> dead;
  ASSERT_TRUE(Eventually([&] {
    auto batch = (*consumer)->Poll(10, absl::Milliseconds(50));
    if (batch.ok()) dead.insert(dead.end(), batch->begin(), batch->end());
    return dead.size() >= 2;
  }));
  ASSERT_EQ(dead.size(), 2u);
  std::set<std::string> offsets;
  for (const log::Record& r : dead) {
    for (const log::Header& h : r.headers) {
      if (h.key == "leftfold.dlq.offset") offsets.insert(h.value);
    }
  }
  EXPECT_EQ(offsets, (std::set<std::string>{absl::StrCat((*positions)[12].offset()),
                                            absl::StrCat(garbage->front().offset())}));
  runner.Stop().IgnoreError();
}

TEST_F(RunnerTest, InvalidProjectorIsRefusedAtStart) {
  Runner runner(*log_, Projector("nothing").From(type_), *store_, {});
  absl::Status s = runner.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("no handler"), std::string::npos) << s;
}

}  // namespace
}  // namespace leftfold::internal::projection
