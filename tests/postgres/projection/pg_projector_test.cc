// The PostgreSQL view store: handler SQL and the checkpoint row commit in one transaction; a
// restarted projector resumes from the checkpoint and applies nothing twice.
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

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

// Balances in table `<table>`, one row per account, plus a count of applied events.
Projector SqlBalances(const std::string& name, const std::string& type, const std::string& table) {
  return Projector(name)
      .From(type)
      .Migrate([table](SqlView& sql) -> absl::Status {
        return sql
            .Exec(absl::StrCat("CREATE TABLE IF NOT EXISTS ", table,
                               " (id text PRIMARY KEY, balance bigint NOT NULL,"
                               " events bigint NOT NULL)"))
            .status();
      })
      .On<bank::v1::Deposited>([table](const EventContext& ctx, const bank::v1::Deposited& e,
                                       SqlView& sql) -> absl::Status {
        return sql
            .Exec(
                absl::StrCat("INSERT INTO ", table,
                             " (id, balance, events) VALUES ($1, $2, 1) ON CONFLICT (id) DO "
                             "UPDATE SET balance = ",
                             table, ".balance + EXCLUDED.balance, events = ", table, ".events + 1"),
                {ctx.aggregate_id(), e.amount()})
            .status();
      });
}

class PgProjectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(PgUri().empty()) << "LEFTFOLD_TEST_PG is not set (tools/test starts PostgreSQL)";
    auto events = leftfold::testing::OpenTestEvents("pgprojector", {.partitions = 3});
    ASSERT_TRUE(events.ok()) << events.status();
    dir_ = events->dir, type_ = events->type, topic_ = events->topic;
    log_ = std::move(events->log);
    name_ = leftfold::testing::UniqueName("pg_balances");
    table_ = absl::StrReplaceAll(name_, {{"-", "_"}});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<store::PgStore> Open() {
    Projector p = SqlBalances(name_, type_, table_);
    auto store = store::PgStore::Open(PgUri(), name_, p.migration());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  // SUM(events), SUM(balance) of the table, and the sum of the checkpoint rows.
  std::tuple<int64_t, int64_t, int64_t> Totals(store::PgStore& store) {
    auto batch = store.Begin();
    auto r = (*batch)->sql()->Exec(
        absl::StrCat(
            "SELECT COALESCE(SUM(events), 0), COALESCE(SUM(balance), 0), (SELECT "
            "COALESCE(SUM(next_offset), 0) FROM leftfold_checkpoints WHERE projector = $1) FROM ",
            table_),
        {name_});
    EXPECT_TRUE(r.ok()) << r.status();
    int64_t a = 0, b = 0, c = 0;
    EXPECT_TRUE(absl::SimpleAtoi(*r->rows[0][0], &a));
    EXPECT_TRUE(absl::SimpleAtoi(*r->rows[0][1], &b));
    EXPECT_TRUE(absl::SimpleAtoi(*r->rows[0][2], &c));
    return {a, b, c};
  }

  std::string dir_, type_, topic_, name_, table_;
  std::unique_ptr<log::Log> log_;
};

TEST_F(PgProjectorTest, RowsAndCheckpointCommitTogetherAndRestartResumes) {
  constexpr int kEvents = 400;
  auto positions = leftfold::testing::ProduceDeposits(*log_, type_, topic_, kEvents, 9);
  ASSERT_TRUE(positions.ok()) << positions.status();
  std::atomic<int> commits{0};
  int64_t applied_before = 0;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    Runner runner(*log_, SqlBalances(name_, type_, table_), *store,
                  {.max_batch = 25, .crash_before_commit = [&] { return ++commits == 5; }});
    ASSERT_TRUE(runner.Start().ok());
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (commits.load() < 5 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    ASSERT_GE(commits.load(), 5);
    runner.Stop().IgnoreError();
    auto [events, balance, checkpoints] = Totals(*store);
    // The table equals the fold up to the checkpoint rows: the fifth batch left nothing.
    EXPECT_EQ(events, checkpoints);
    EXPECT_GT(events, 0);
    EXPECT_LT(events, kEvents);
    applied_before = events;
  }
  auto store = Open();  // a restart: migration again, checkpoints from the table
  ASSERT_NE(store, nullptr);
  Runner runner(*log_, SqlBalances(name_, type_, table_), *store, {.max_batch = 100});
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_TRUE(runner.WaitFor(*positions, absl::Now() + absl::Seconds(60)).ok());
  EXPECT_EQ(runner.events_applied(), kEvents - applied_before);
  runner.Stop().IgnoreError();
  auto [events, balance, checkpoints] = Totals(*store);
  EXPECT_EQ(events, kEvents);
  EXPECT_EQ(balance, leftfold::testing::SumOfAmounts(kEvents));
  EXPECT_EQ(checkpoints, kEvents);
}

// Projectors that start together migrate one after the other: concurrent CREATE TABLE IF NOT
// EXISTS of one new table would fail in all but one session.
TEST_F(PgProjectorTest, ConcurrentOpensMigrateTheSameTable) {
  constexpr int kOpens = 6;
  std::vector<absl::Status> results(kOpens);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpens; ++i) {
    threads.emplace_back([&, i] {
      auto store = store::PgStore::Open(PgUri(), absl::StrCat(name_, "_", i), [&](SqlView& sql) {
        return sql
            .Exec(absl::StrCat("CREATE TABLE IF NOT EXISTS ", table_, " (id text PRIMARY KEY)"))
            .status();
      });
      results[i] = store.status();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kOpens; ++i) EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
}

TEST_F(PgProjectorTest, FailedMigrationIsReported) {
  auto store = store::PgStore::Open(
      PgUri(), name_, [](SqlView& sql) { return sql.Exec("CREATE TABLE broken (").status(); });
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("migration"), std::string::npos) << store.status();
}

}  // namespace
}  // namespace leftfold::internal::projection
