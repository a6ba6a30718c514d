// The projector runtime on the real broker: the counter view equals the number of committed
// events (aborted transactions never show), and a restart resumes from the view store.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "projection/runner.h"
#include "store/rocks_view_store.h"
#include "support/test_env.h"
#include "unit/projection/projection_test_util.h"

namespace leftfold::internal::projection {
namespace {

using leftfold::testing::CounterProjector;
using leftfold::testing::MakeEnvelope;

int64_t Total(const View& view) {
  auto row = view.Get<bank::v1::Account>("total");
  return row.ok() ? row->balance() : 0;
}

TEST(KafkaProjectorTest, CounterEqualsCommittedEventsAcrossRestart) {
  ASSERT_FALSE(leftfold::testing::TestBrokers().empty()) << "LEFTFOLD_TEST_BROKERS is not set";
  auto events = leftfold::testing::OpenTestEvents(
      "kafkaprojector", {.brokers = leftfold::testing::TestBrokers(), .partitions = 3});
  ASSERT_TRUE(events.ok()) << events.status();
  const std::string type = events->type, topic = events->topic, dir = events->dir;
  internal::log::Log& log = *events->log;
  const std::string name = leftfold::testing::UniqueName("counter");

  constexpr int kPlain = 300;
  auto positions = leftfold::testing::ProduceDeposits(log, type, topic, kPlain, 11);
  ASSERT_TRUE(positions.ok()) << positions.status();

  // Events the way the aggregate processor writes them: in transactions; one is aborted.
  auto producer = log.NewProducer({.transactional_id = leftfold::testing::UniqueName("tx")});
  ASSERT_TRUE(producer.ok()) << producer.status();
  std::vector<v1::Position> tx_positions;
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE((*producer)->BeginTransaction().ok());
    for (int i = 0; i < 20; ++i) {
      bank::v1::Deposited d;
      d.set_amount(1);
      std::string id = absl::StrCat("tx-", i);
      ASSERT_TRUE((*producer)
                      ->Produce({.topic = topic,
                                 .key = id,
                                 .value = MakeEnvelope(type, id, round + 1, d).SerializeAsString()},
                                [&, round](absl::StatusOr<log::TopicPartitionOffset> r) {
                                  if (!r.ok() || round != 0) return;
                                  v1::Position& p = tx_positions.emplace_back();
                                  p.set_topic(r->tp.topic);
                                  p.set_partition(r->tp.partition);
                                  p.set_offset(r->offset);
                                })
                      .ok());
    }
    if (round == 0) {
      ASSERT_TRUE((*producer)->CommitTransaction().ok());
    } else {
      ASSERT_TRUE((*producer)->Flush(absl::Seconds(30)).ok());
      ASSERT_TRUE((*producer)->AbortTransaction().ok());
    }
  }
  ASSERT_EQ(tx_positions.size(), 20u);
  (*producer)->Close().IgnoreError();

  int64_t first_run = 0;
  {
    auto store = store::RocksViewStore::Open(dir, name);
    ASSERT_TRUE(store.ok()) << store.status();
    Runner runner(log, CounterProjector(name, type), **store, {.max_batch = 100});
    ASSERT_TRUE(runner.Start().ok());
    ASSERT_TRUE(runner.WaitFor(*positions, absl::Now() + absl::Seconds(60)).ok());
    first_run = Total((*store)->committed());
    EXPECT_GE(first_run, kPlain);
    EXPECT_TRUE(runner.Stop().ok());
  }
  // More events while the projector is down; the restart continues from the view's checkpoint.
  auto more = leftfold::testing::ProduceDeposits(log, type, topic, 50, 11, 1000);
  ASSERT_TRUE(more.ok());
  auto store = store::RocksViewStore::Open(dir, name);
  ASSERT_TRUE(store.ok());
  Runner runner(log, CounterProjector(name, type), **store, {.max_batch = 100});
  ASSERT_TRUE(runner.Start().ok());
  std::vector<v1::Position> all = *more;
  all.insert(all.end(), tx_positions.begin(), tx_positions.end());
  ASSERT_TRUE(runner.WaitFor(all, absl::Now() + absl::Seconds(60)).ok());
  // Committed events only, each once: 300 plain + 20 committed + 50 later; the aborted 20 never.
  EXPECT_EQ(Total((*store)->committed()), kPlain + 20 + 50);
  EXPECT_EQ(runner.events_applied(), kPlain + 20 + 50 - first_run);
  auto lag = runner.Lag();
  ASSERT_TRUE(lag.ok()) << lag.status();
  EXPECT_EQ(lag->size(), 3u);
  EXPECT_TRUE(runner.Stop().ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace leftfold::internal::projection
