#include <filesystem>

#include "absl/strings/str_cat.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "store/rocks_view_store.h"
#include "support/test_env.h"

namespace leftfold::internal::store {
namespace {

bank::v1::Account Row(const std::string& owner, int64_t balance) {
  bank::v1::Account a;
  a.set_owner(owner);
  a.set_balance(balance);
  return a;
}

class RocksViewStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = leftfold::testing::MakeTempDir("viewstore");
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto s = RocksViewStore::Open(dir_, "v");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }
  std::string dir_;
  std::unique_ptr<RocksViewStore> store_;
};

TEST_F(RocksViewStoreTest, PutGetDeleteCommitWithCheckpoint) {
  auto batch = store_->Begin();
  ASSERT_TRUE(batch.ok());
  View& view = *(*batch)->view();
  ASSERT_TRUE(view.Put("a", Row("alice", 5)).ok());
  ASSERT_TRUE(view.Put("b", Row("bob", 7)).ok());
  ASSERT_TRUE(view.Delete("b").ok());
  // Read-your-own-batch: pending writes are visible inside the batch only.
  auto a = view.Get<bank::v1::Account>("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->balance(), 5);
  EXPECT_TRUE(absl::IsNotFound(view.Get<bank::v1::Account>("b").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->committed().Get<bank::v1::Account>("a").status()));

  ASSERT_TRUE((*batch)->Commit({{{"t.events", 2}, 41}}).ok());
  // The write goes in on the store's writer thread; Flush waits for it (so do the watermarks).
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(store_->committed().Get<bank::v1::Account>("a")->balance(), 5);
  EXPECT_EQ(store_->watermarks().Get({"t.events", 2}), 41);

  Reopen();
  EXPECT_EQ(store_->committed().Get<bank::v1::Account>("a")->owner(), "alice");
  auto cps = store_->LoadCheckpoints();
  ASSERT_TRUE(cps.ok());
  EXPECT_EQ(*cps, (Checkpoints{{{"t.events", 2}, 41}}));
  EXPECT_EQ(store_->watermarks().Get({"t.events", 2}), 41);
}

TEST_F(RocksViewStoreTest, UncommittedBatchLeavesNoTrace) {
  {
    auto batch = store_->Begin();
    ASSERT_TRUE((*batch)->view()->Put("x", Row("x", 1)).ok());
  }  // dropped: a crash before commit
  Reopen();
  EXPECT_TRUE(absl::IsNotFound(store_->committed().Get<bank::v1::Account>("x").status()));
  EXPECT_TRUE(store_->LoadCheckpoints()->empty());
}

TEST_F(RocksViewStoreTest, CommittedViewIsReadOnlyAndTypeChecked) {
  auto batch = store_->Begin();
  ASSERT_TRUE((*batch)->view()->Put("a", Row("a", 1)).ok());
  ASSERT_TRUE((*batch)->Commit({}).ok());
  ASSERT_TRUE(store_->Flush().ok());
  View& committed = const_cast<View&>(store_->committed());
  EXPECT_EQ(committed.Put("b", Row("b", 1)).code(), absl::StatusCode::kFailedPrecondition);
  bank::v1::Deposited wrong;
  EXPECT_EQ(committed.Get("a", &wrong).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RocksViewStoreTest, ScanPrefixRangeAndPaging) {
  auto batch = store_->Begin();
  View& view = *(*batch)->view();
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(view.Put(absl::StrCat("by_owner/alice/", 100 + i), Row("alice", i)).ok());
  }
  ASSERT_TRUE(view.Put("by_owner/bob/1", Row("bob", 1)).ok());
  ASSERT_TRUE(view.Put("acct-1", Row("alice", 1)).ok());
  // Scans inside the batch merge pending writes.
  auto inside = view.Scan({.prefix = "by_owner/bob/"});
  ASSERT_TRUE(inside.ok());
  ASSERT_EQ(inside->rows.size(), 1u);
  ASSERT_TRUE((*batch)->Commit({}).ok());
  ASSERT_TRUE(store_->Flush().ok());

  const View& committed = store_->committed();
  std::vector<std::string> keys;
  std::string token;
  int pages = 0;
  do {
    auto page = committed.Scan({.prefix = "by_owner/alice/", .limit = 10, .page_token = token});
    ASSERT_TRUE(page.ok()) << page.status();
    for (const ViewRow& r : page->rows) keys.push_back(r.key);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(keys.size(), 25u);
  EXPECT_EQ(keys.front(), "by_owner/alice/100");
  EXPECT_EQ(keys.back(), "by_owner/alice/124");

  auto range = committed.Scan({.start = "by_owner/alice/110", .end = "by_owner/alice/113"});
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range->rows.size(), 3u);
  bank::v1::Account row;
  ASSERT_TRUE(range->rows[0].To(&row).ok());
  EXPECT_EQ(row.balance(), 10);
  EXPECT_TRUE(range->next_page_token.empty());

  auto all = committed.Scan({.limit = 1000});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->rows.size(), 27u);
  EXPECT_EQ(all->rows.front().key, "acct-1");
}

TEST(WatermarksTest, WaitForReturnsOnceAppliedAndTimesOutOtherwise) {
  Watermarks w;
  v1::Position p;
  p.set_topic("t.events");
  p.set_partition(1);
  p.set_offset(9);
  absl::Status s = w.WaitFor({p}, absl::Now() + absl::Milliseconds(50), {"t.events"});
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_NE(s.message().find("t.events/1@9"), std::string::npos) << s;
  w.Advance({{{"t.events", 1}, 9}});  // next offset 9: offset 9 not applied yet
  EXPECT_EQ(w.WaitFor({p}, absl::Now() + absl::Milliseconds(20), {"t.events"}).code(),
            absl::StatusCode::kDeadlineExceeded);
  // Positions on other topics are another projector's business.
  v1::Position other = p;
  other.set_topic("x.events");
  EXPECT_TRUE(w.WaitFor({other}, absl::Now(), {"t.events"}).ok());

  absl::Time start = absl::Now();
  std::thread advancer([&] { w.Advance({{{"t.events", 1}, 10}}); });
  EXPECT_TRUE(w.WaitFor({p}, absl::Now() + absl::Seconds(30), {"t.events"}).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  advancer.join();
}

}  // namespace
}  // namespace leftfold::internal::store
