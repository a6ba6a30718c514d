// The PostgreSQL store pipelines Queue()d statements; an error that surfaces only later (at a
// following Exec, or at the commit) must still make the event that queued the statement the
// poison one: its partition halts exactly there, and everything before it commits.
#include <cstdlib>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "projection/runner.h"
#include "store/pg_store.h"
#include "support/test_env.h"
#include "unit/projection/projection_test_util.h"

namespace leftfold::internal::projection {
namespace {

std::string PgUri() {
  const char* uri = std::getenv("LEFTFOLD_TEST_PG");
  return uri == nullptr ? "" : uri;
}

// One row per event; the table refuses amount 13. With `exec_every`, every such event also runs a
// synchronous Exec, which is where a queued statement's error shows first.
Projector Ledger(const std::string& name, const std::string& type, const std::string& table,
                 int exec_every) {
  return Projector(name)
      .From(type)
      .Migrate([table](SqlView& sql) -> absl::Status {
        return sql
            .Exec(absl::StrCat("CREATE TABLE IF NOT EXISTS ", table,
                               " (amount bigint PRIMARY KEY CHECK (amount <> 13))"))
            .status();
      })
      .On<bank::v1::Deposited>([table, exec_every](const EventContext&,
                                                   const bank::v1::Deposited& e,
                                                   SqlView& sql) -> absl::Status {
        absl::Status s =
            sql.Queue(absl::StrCat("INSERT INTO ", table, " (amount) VALUES ($1)"), {e.amount()});
        if (!s.ok()) return s;
        if (exec_every > 0 && e.amount() % exec_every == 0) {
          return sql.Exec(absl::StrCat("SELECT count(*) FROM ", table)).status();
        }
        return absl::OkStatus();
      });
}

class PgPipelineTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(PgUri().empty()) << "LEFTFOLD_TEST_PG is not set (tools/test starts PostgreSQL)";
    auto events = leftfold::testing::OpenTestEvents("pgpipeline", {.partitions = 1});
    ASSERT_TRUE(events.ok()) << events.status();
    dir_ = events->dir, type_ = events->type, topic_ = events->topic;
    log_ = std::move(events->log);
    name_ = leftfold::testing::UniqueName("pg_ledger");
    table_ = absl::StrReplaceAll(name_, {{"-", "_"}});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_, type_, topic_, name_, table_;
  std::unique_ptr<log::Log> log_;
};

TEST_P(PgPipelineTest, DeferredErrorHaltsAtTheEventThatQueuedTheStatement) {
  constexpr int kEvents = 40;
  auto positions = leftfold::testing::ProduceDeposits(*log_, type_, topic_, kEvents, 7);
  ASSERT_TRUE(positions.ok()) << positions.status();
  Projector projector = Ledger(name_, type_, table_, GetParam());
  auto store = store::PgStore::Open(PgUri(), name_, projector.migration());
  ASSERT_TRUE(store.ok()) << store.status();
  Runner runner(*log_, projector, **store, {.max_batch = 100});
  ASSERT_TRUE(runner.Start().ok());
  // Amount 13 is the event at offset 12 (one partition, amounts 1..n in order).
  v1::Position before_poison;
  before_poison.set_topic(topic_);
  before_poison.set_partition(0);
  before_poison.set_offset(11);
  ASSERT_TRUE(runner.WaitFor({before_poison}, absl::Now() + absl::Seconds(30)).ok());
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (runner.halted().ok() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  absl::Status halted = runner.halted();
  ASSERT_FALSE(halted.ok()) << "the partition should halt on amount 13";
  EXPECT_NE(halted.message().find(absl::StrCat(topic_, "/0@12")), std::string::npos) << halted;
  EXPECT_EQ((*store)->watermarks().Get({topic_, 0}), 12);
  runner.Stop().IgnoreError();

  // Exactly the events before the poison one, each once.
  auto batch = (*store)->Begin();
  ASSERT_TRUE(batch.ok()) << batch.status();
  auto r = (*batch)->sql()->Exec(absl::StrCat("SELECT count(*), max(amount) FROM ", table_));
  ASSERT_TRUE(r.ok()) << r.status();
  int64_t count = 0, max = 0;
  ASSERT_TRUE(absl::SimpleAtoi(*r->rows[0][0], &count));
  ASSERT_TRUE(absl::SimpleAtoi(*r->rows[0][1], &max));
  EXPECT_EQ(count, 12);
  EXPECT_EQ(max, 12);
}

// 0: the error shows only at the commit; 5: at the Exec of amount 15, two events later.
INSTANTIATE_TEST_SUITE_P(WhereTheErrorShows, PgPipelineTest, ::testing::Values(0, 5));

}  // namespace
}  // namespace leftfold::internal::projection
