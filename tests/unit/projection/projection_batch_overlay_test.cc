// The RocksDB view store's batch: the last write of each key wins inside the batch, scans merge
// the batch's writes with the committed rows, and a batch dropped without commit leaves nothing
// behind — not in the database, and not in the store's cache of hot rows.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "store/rocks_view_store.h"
#include "support/test_env.h"

namespace leftfold::internal::store {
namespace {

bank::v1::Account Row(int64_t balance) {
  bank::v1::Account a;
  a.set_balance(balance);
  return a;
}

std::vector<std::string> Keys(const ScanPage& page) {
  std::vector<std::string> keys;
  for (const ViewRow& r : page.rows) keys.push_back(r.key);
  return keys;
}

class BatchOverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = leftfold::testing::MakeTempDir("overlay");
    auto s = RocksViewStore::Open(dir_, "v");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    // Committed: k1..k5 with balance i.
    auto batch = store_->Begin();
    ASSERT_TRUE(batch.ok());
    for (int i = 1; i <= 5; ++i) {
      ASSERT_TRUE((*batch)->view()->Put(absl::StrCat("k", i), Row(i)).ok());
    }
    ASSERT_TRUE((*batch)->Commit({{{"t", 0}, 5}}).ok());
    ASSERT_TRUE(store_->Flush().ok());  // the write goes in on the store's writer thread
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  int64_t Balance(const View& view, const std::string& key) {
    auto row = view.Get<bank::v1::Account>(key);
    return row.ok() ? row->balance() : -1;
  }
  std::string dir_;
  std::unique_ptr<RocksViewStore> store_;
};

TEST_F(BatchOverlayTest, LastWriteWinsAndScansMergeWithCommittedRows) {
  auto batch = store_->Begin();
  ASSERT_TRUE(batch.ok());
  View& view = *(*batch)->view();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(view.Put("k2", Row(100 + i)).ok());
  ASSERT_TRUE(view.Delete("k3").ok());
  ASSERT_TRUE(view.Put("k0", Row(0)).ok());    // before every committed key
  ASSERT_TRUE(view.Put("k45", Row(45)).ok());  // between committed keys
  ASSERT_TRUE(view.Put("k9", Row(9)).ok());    // after them
  ASSERT_TRUE(view.Put("k4", Row(40)).ok());   // shadows a committed row
  ASSERT_TRUE(view.Delete("k9").ok());         // written, then deleted in the same batch
  EXPECT_EQ(Balance(view, "k2"), 109);
  EXPECT_EQ(Balance(view, "k3"), -1);
  EXPECT_EQ(Balance(view, "k9"), -1);

  auto all = view.Scan({.prefix = "k"});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(Keys(*all), (std::vector<std::string>{"k0", "k1", "k2", "k4", "k45", "k5"}));
  bank::v1::Account row;
  ASSERT_TRUE(all->rows[2].To(&row).ok());
  EXPECT_EQ(row.balance(), 109);
  ASSERT_TRUE(all->rows[3].To(&row).ok());
  EXPECT_EQ(row.balance(), 40);

  // Paging across batch and committed rows: the token is the next key, whichever side it is on.
  auto page1 = view.Scan({.prefix = "k", .limit = 4});
  ASSERT_TRUE(page1.ok());
  EXPECT_EQ(Keys(*page1), (std::vector<std::string>{"k0", "k1", "k2", "k4"}));
  EXPECT_EQ(page1->next_page_token, "k45");
  auto page2 = view.Scan({.prefix = "k", .limit = 4, .page_token = page1->next_page_token});
  ASSERT_TRUE(page2.ok());
  EXPECT_EQ(Keys(*page2), (std::vector<std::string>{"k45", "k5"}));
  EXPECT_TRUE(page2->next_page_token.empty());
  auto range = view.Scan({.start = "k2", .end = "k5"});
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(Keys(*range), (std::vector<std::string>{"k2", "k4", "k45"}));

  // Nothing is visible outside the batch before its commit; all of it after.
  EXPECT_EQ(Balance(store_->committed(), "k2"), 2);
  ASSERT_TRUE((*batch)->Commit({{{"t", 0}, 20}}).ok());
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(Balance(store_->committed(), "k2"), 109);
  EXPECT_EQ(Balance(store_->committed(), "k3"), -1);
  EXPECT_EQ(Balance(store_->committed(), "k9"), -1);
  auto committed = store_->committed().Scan({.prefix = "k"});
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ(Keys(*committed), (std::vector<std::string>{"k0", "k1", "k2", "k4", "k45", "k5"}));
}

TEST_F(BatchOverlayTest, DroppedBatchLeavesNothingForTheNextBatch) {
  {
    auto batch = store_->Begin();
    ASSERT_TRUE(batch.ok());
    View& view = *(*batch)->view();
    EXPECT_EQ(Balance(view, "k1"), 1);  // read (and cached) before the writes
    ASSERT_TRUE(view.Put("k1", Row(1000)).ok());
    ASSERT_TRUE(view.Delete("k2").ok());
    ASSERT_TRUE(view.Put("new", Row(7)).ok());
  }  // dropped without commit: a failed batch, redone by the runtime
  auto batch = store_->Begin();
  ASSERT_TRUE(batch.ok());
  View& view = *(*batch)->view();
  EXPECT_EQ(Balance(view, "k1"), 1);
  EXPECT_EQ(Balance(view, "k2"), 2);
  EXPECT_EQ(Balance(view, "new"), -1);
  // A committed batch's writes are what the next batch reads (through the cache, then RocksDB).
  ASSERT_TRUE(view.Put("k1", Row(11)).ok());
  ASSERT_TRUE((*batch)->Commit({{{"t", 0}, 6}}).ok());
  // Possibly before that batch is in RocksDB (the writer thread): the cache answers.
  auto next = store_->Begin();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(Balance(*(*next)->view(), "k1"), 11);
  auto scan = (*next)->view()->Scan({.prefix = "k1"});
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->rows.size(), 1u);
  bank::v1::Account scanned;
  ASSERT_TRUE(scan->rows[0].To(&scanned).ok());
  EXPECT_EQ(scanned.balance(), 11);
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(store_->watermarks().Get({"t", 0}), 6);
  EXPECT_EQ(Balance(store_->committed(), "k1"), 11);
}

}  // namespace
}  // namespace leftfold::internal::store
