#include "absl/strings/str_cat.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "leftfold/testing/projector_fixture.h"

namespace leftfold {
namespace {

// Balances plus an owner index ("by_owner/<owner>/<id>"), the shape of projectors/balances.
Projector Balances() {
  auto load = [](const EventContext& ctx, View& view, bank::v1::Account* row) {
    absl::Status s = view.Get(ctx.aggregate_id(), row);
    return absl::IsNotFound(s) ? absl::OkStatus() : s;
  };
  return Projector("balances")
      .From("bank.account")
      .On<bank::v1::AccountOpened>([load](const EventContext& ctx, const bank::v1::AccountOpened& e,
                                          View& view) -> absl::Status {
        bank::v1::Account row;
        if (absl::Status s = load(ctx, view, &row); !s.ok()) return s;
        row.set_owner(e.owner());
        row.set_open(true);
        row.set_balance(e.initial_deposit());
        if (absl::Status s = view.Put(ctx.aggregate_id(), row); !s.ok()) return s;
        return view.Put(absl::StrCat("by_owner/", e.owner(), "/", ctx.aggregate_id().value()), row);
      })
      .On<bank::v1::Deposited>([load](const EventContext& ctx, const bank::v1::Deposited& e,
                                      View& view) -> absl::Status {
        if (e.amount() < 0) throw std::runtime_error("negative deposit");
        bank::v1::Account row;
        if (absl::Status s = load(ctx, view, &row); !s.ok()) return s;
        row.set_balance(row.balance() + e.amount());
        return view.Put(ctx.aggregate_id(), row);
      })
      .On<bank::v1::Withdrawn>([load](const EventContext& ctx, const bank::v1::Withdrawn& e,
                                      View& view) -> absl::Status {
        bank::v1::Account row;
        if (absl::Status s = load(ctx, view, &row); !s.ok()) return s;
        if (ctx.version() == Version(0)) return absl::InternalError("version must be set");
        row.set_balance(row.balance() - e.amount());
        // Written before failing on purpose: the fixture must roll it back.
        if (absl::Status s = view.Put(ctx.aggregate_id(), row); !s.ok()) return s;
        if (row.balance() < 0) return absl::FailedPreconditionError("overdrawn");
        return absl::OkStatus();
      });
}

TEST(ProjectorFixtureTest, FeedsEventsAndReadsRows) {
  testing::ProjectorFixture fx(Balances());
  bank::v1::AccountOpened opened;
  opened.set_owner("alice");
  opened.set_initial_deposit(10);
  bank::v1::Deposited dep;
  dep.set_amount(5);
  bank::v1::Withdrawn wd;
  wd.set_amount(3);
  ASSERT_TRUE(fx.Given("acct-1", opened).ok());
  ASSERT_TRUE(fx.Given("acct-1", dep).ok());
  ASSERT_TRUE(fx.Given("acct-1", wd).ok());
  ASSERT_TRUE(fx.Given("acct-1", bank::v1::AccountClosed()).ok());  // not handled: skipped
  auto row = fx.Row<bank::v1::Account>("acct-1");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(row->balance(), 12);
  EXPECT_EQ(row->owner(), "alice");
  auto index = fx.Scan({.prefix = "by_owner/alice/"});
  ASSERT_TRUE(index.ok());
  ASSERT_EQ(index->rows.size(), 1u);
  EXPECT_EQ(index->rows[0].key, "by_owner/alice/acct-1");
  EXPECT_EQ(fx.events_fed(), 4);
}

TEST(ProjectorFixtureTest, FailingHandlerLeavesViewUnchanged) {
  testing::ProjectorFixture fx(Balances());
  bank::v1::Withdrawn wd;
  wd.set_amount(3);
  absl::Status s = fx.Given("acct-2", wd);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(absl::IsNotFound(fx.Row<bank::v1::Account>("acct-2").status()));
  bank::v1::Deposited bad;
  bad.set_amount(-1);
  s = fx.Given("acct-2", bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("negative deposit"), std::string::npos) << s;
}

TEST(ProjectorFixtureTest, StateProjectionOverSnapshots) {
  testing::ProjectorFixture fx(
      Projector("rich")
          .FromSnapshots("bank.account")
          .OnState<bank::v1::Account>([](const EventContext& ctx, const bank::v1::Account& state,
                                         View& view) -> absl::Status {
            if (state.balance() >= 100) return view.Put(ctx.aggregate_id(), state);
            return view.Delete(ctx.aggregate_id());
          }));
  bank::v1::Account s;
  s.set_balance(150);
  ASSERT_TRUE(fx.GivenState("a", s, 3).ok());
  EXPECT_TRUE(fx.Row<bank::v1::Account>("a").ok());
  s.set_balance(20);
  ASSERT_TRUE(fx.GivenState("a", s, 4).ok());
  EXPECT_TRUE(absl::IsNotFound(fx.Row<bank::v1::Account>("a").status()));
}

TEST(ProjectorFixtureTest, ValidationNamesTheProblem) {
  absl::Status s = Projector("p").Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("no source"), std::string::npos) << s;
  Projector mixed =
      Projector("m")
          .From("t")
          .On<bank::v1::Deposited>([](const EventContext&, const bank::v1::Deposited&, View&) {})
          .On<bank::v1::Withdrawn>(
              [](const EventContext&, const bank::v1::Withdrawn&, SqlView&) {});
  s = mixed.Validate();
  EXPECT_NE(s.message().find("mixes View and SqlView"), std::string::npos) << s;
}

}  // namespace
}  // namespace leftfold
