// The click counter: its aggregate and its click_totals projector. docs/first-aggregate.md quotes
// the first two tests word for word (first_aggregate_docs_test.cc checks that it still does).
#include "clicks/clicks.h"

#include <map>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "leftfold/testing/aggregate_fixture.h"
#include "leftfold/testing/projector_fixture.h"

namespace {

TEST(Clicks, EveryClickIsCounted) {
  leftfold::testing::AggregateFixture f(clicks::ClicksAggregate());
  clicks::v1::Clicks three;
  three.set_count(3);

  f.Given().When(clicks::v1::Click()).ThenEmits(clicks::v1::Clicked());
  f.Given(clicks::v1::Clicked(), clicks::v1::Clicked())
      .When(clicks::v1::Click())
      .ThenEmits(clicks::v1::Clicked())
      .ThenState(three);
}

TEST(ClickTotals, CountsPerUserAndInTotal) {
  leftfold::testing::ProjectorFixture fx(clicks::ClickTotalsProjector());
  ASSERT_TRUE(fx.Given("ada", clicks::v1::Clicked()).ok());
  ASSERT_TRUE(fx.Given("ada", clicks::v1::Clicked()).ok());
  ASSERT_TRUE(fx.Given("bob", clicks::v1::Clicked()).ok());

  absl::StatusOr<clicks::v1::Clicks> ada = fx.Row<clicks::v1::Clicks>("user/ada");
  absl::StatusOr<clicks::v1::Clicks> total = fx.Row<clicks::v1::Clicks>("total");
  ASSERT_TRUE(ada.ok() && total.ok());
  EXPECT_EQ(ada->count(), 2);
  EXPECT_EQ(total->count(), 3);
}

TEST(Clicks, DefinitionIsValid) {
  absl::StatusOr<leftfold::AggregateDefinition> def = clicks::ClicksAggregate().Build();
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->type(), "clicks.user");
  EXPECT_TRUE(clicks::ClickTotalsProjector().Validate().ok());
}

// Many users, random order: the per-user rows add up to the total row and to what was fed.
TEST(ClickTotals, PerUserRowsAddUpToTheTotal) {
  leftfold::testing::ProjectorFixture fx(clicks::ClickTotalsProjector());
  std::mt19937 rng(7);
  std::map<std::string, int64_t> expected;
  constexpr int kClicks = 500;
  for (int i = 0; i < kClicks; ++i) {
    std::string user = absl::StrCat("u", rng() % 23);
    ASSERT_TRUE(fx.Given(user, clicks::v1::Clicked()).ok());
    ++expected[user];
  }
  std::map<std::string, int64_t> actual;
  int64_t sum = 0;
  leftfold::ScanRange range{.prefix = "user/", .limit = 7};  // small pages: exercises paging
  while (true) {
    absl::StatusOr<leftfold::ScanPage> page = fx.Scan(range);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const leftfold::ViewRow& row : page->rows) {
      clicks::v1::Clicks clicks;
      ASSERT_TRUE(row.To(&clicks).ok());
      actual[row.key.substr(5)] = clicks.count();
      sum += clicks.count();
    }
    if (page->next_page_token.empty()) break;
    range.page_token = page->next_page_token;
  }
  EXPECT_EQ(actual, expected);
  EXPECT_EQ(sum, kClicks);
  absl::StatusOr<clicks::v1::Clicks> total = fx.Row<clicks::v1::Clicks>("total");
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(total->count(), kClicks);
}

// The aggregate's fold and the projector's row agree for one user.
TEST(ClickTotals, RowEqualsTheAggregateState) {
  leftfold::AggregateDefinition def = clicks::ClicksAggregate();
  std::unique_ptr<google::protobuf::Message> state = def.NewState();
  leftfold::testing::ProjectorFixture fx(clicks::ClickTotalsProjector());
  for (int i = 0; i < 5; ++i) {
    google::protobuf::Any event;
    event.PackFrom(clicks::v1::Clicked());
    ASSERT_TRUE(def.Apply(*state, event).ok());
    ASSERT_TRUE(fx.Given("ada", clicks::v1::Clicked()).ok());
  }
  absl::StatusOr<clicks::v1::Clicks> row = fx.Row<clicks::v1::Clicks>("user/ada");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(row->SerializeAsString(), state->SerializeAsString());
  EXPECT_EQ(row->count(), 5);
}

}  // namespace
