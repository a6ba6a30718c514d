// The processor's state cache and state pool.
#include "processor/state_cache.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"

namespace leftfold::internal::processor {
namespace {

using bank::v1::Account;

// A shared state comes back to the pool when its last holder lets go, and Take hands it out
// again (same object, strings still allocated); beyond the capacity spare states are freed.
TEST(StatePoolTest, ReleasedStatesAreTakenAgainUpToTheCapacity) {
  StatePool pool(std::make_unique<Account>(), 1);
  std::unique_ptr<google::protobuf::Message> first = pool.Take();
  ASSERT_NE(dynamic_cast<Account*>(first.get()), nullptr);
  static_cast<Account&>(*first).set_owner(std::string(100, 'o'));
  const google::protobuf::Message* first_address = first.get();
  std::shared_ptr<const google::protobuf::Message> shared = pool.Share(std::move(first));
  std::shared_ptr<const google::protobuf::Message> copy = shared;
  shared.reset();
  EXPECT_EQ(pool.free_count(), 0u) << "a copy still holds it";
  copy.reset();
  ASSERT_EQ(pool.free_count(), 1u);

  std::unique_ptr<google::protobuf::Message> again = pool.Take();
  EXPECT_EQ(again.get(), first_address);
  EXPECT_EQ(pool.free_count(), 0u);
  // Its content is whatever it held: callers overwrite it (DecideInto clears it first).
  EXPECT_EQ(static_cast<Account&>(*again).owner(), std::string(100, 'o'));

  std::shared_ptr<const google::protobuf::Message> a = pool.Share(std::move(again));
  std::shared_ptr<const google::protobuf::Message> b = pool.Share(pool.Take());
  a.reset();
  b.reset();
  EXPECT_EQ(pool.free_count(), 1u) << "the second spare state is freed, not kept";
}

// A shared state's control block comes back to the pool with the state, and the next Share
// takes it instead of allocating; beyond the capacity spare blocks are freed.
TEST(StatePoolTest, ControlBlocksAreReusedUpToTheCapacity) {
  StatePool pool(std::make_unique<Account>(), 1);
  std::shared_ptr<const google::protobuf::Message> a = pool.Share(pool.Take());
  std::shared_ptr<const google::protobuf::Message> b = pool.Share(pool.Take());
  EXPECT_EQ(pool.free_block_count(), 0u);
  a.reset();
  EXPECT_EQ(pool.free_block_count(), 1u);
  b.reset();
  EXPECT_EQ(pool.free_block_count(), 1u) << "the second spare block is freed, not kept";

  std::shared_ptr<const google::protobuf::Message> c = pool.Share(pool.Take());
  EXPECT_EQ(pool.free_block_count(), 0u) << "Share took the spare block";
  std::shared_ptr<const google::protobuf::Message> copy = c;
  c.reset();
  EXPECT_EQ(pool.free_block_count(), 0u) << "a copy still holds it";
  EXPECT_EQ(pool.free_count(), 0u);
  copy.reset();
  EXPECT_EQ(pool.free_block_count(), 1u);
  EXPECT_EQ(pool.free_count(), 1u);
}

// The LRU keeps the most recently used entries within its capacity.
TEST(StateCacheTest, EvictsTheLeastRecentlyUsed) {
  StatePool pool(std::make_unique<Account>(), 4);
  StateCache cache(2);
  cache.Put("0/a", {1, pool.Share(pool.Take())});
  cache.Put("0/b", {2, pool.Share(pool.Take())});
  ASSERT_NE(cache.Get("0/a"), nullptr);  // a is now the most recent
  cache.Put("0/c", {3, pool.Share(pool.Take())});
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Get("0/b"), nullptr);
  ASSERT_NE(cache.Get("0/a"), nullptr);
  EXPECT_EQ(cache.Get("0/a")->version, 1);
  EXPECT_EQ(pool.free_count(), 1u) << "b's state went back to the pool";
  cache.Clear();
  EXPECT_EQ(pool.free_count(), 3u);
}

// Get and Put with a hash the caller computed once (the processor's StringKeyHash, absl's hash of
// the key as a string_view) find the same entries as without: the index hashes its std::string
// keys the same way.
TEST(StateCacheTest, TheCallersHashFindsTheSameEntries) {
  StatePool pool(std::make_unique<Account>(), 4);
  StateCache cache(4);
  auto hash = [](absl::string_view key) { return absl::Hash<absl::string_view>{}(key); };
  cache.Put("0/a", hash("0/a"), {1, pool.Share(pool.Take())});
  cache.Put("0/b", {2, pool.Share(pool.Take())});
  ASSERT_NE(cache.Get("0/a"), nullptr);
  EXPECT_EQ(cache.Get("0/a")->version, 1);
  ASSERT_NE(cache.Get("0/b", hash("0/b")), nullptr);
  EXPECT_EQ(cache.Get("0/b", hash("0/b"))->version, 2);
  cache.Put("0/a", hash("0/a"), {3, pool.Share(pool.Take())});  // replaces, no second entry
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Get("0/a", hash("0/a"))->version, 3);
  EXPECT_EQ(cache.Get("0/c", hash("0/c")), nullptr);
}

// In a larger cache an entry goes to the front only when it is out of the front half: one used
// at least once per half a cache of insertions stays, the untouched ones leave oldest first.
TEST(StateCacheTest, AnEntryUsedOftenEnoughIsNeverEvicted) {
  StatePool pool(std::make_unique<Account>(), 64);
  std::vector<std::string> evicted;
  StateCache cache(8, [&](const std::string& key, StateCache::Entry&) { evicted.push_back(key); });
  for (int i = 0; i < 8; ++i) cache.Put(absl::StrCat("0/k", i), {i, pool.Share(pool.Take())});
  ASSERT_NE(cache.Get("0/k0"), nullptr);  // at the back: moves to the front
  for (int i = 8; i < 40; ++i) {
    cache.Put(absl::StrCat("0/k", i), {i, pool.Share(pool.Take())});
    if (i % 3 == 0) {
      ASSERT_NE(cache.Get("0/k0"), nullptr) << "after k" << i;
    }
  }
  EXPECT_EQ(cache.size(), 8u);
  ASSERT_NE(cache.Get("0/k0"), nullptr);
  EXPECT_EQ(cache.Get("0/k0")->version, 0);
  ASSERT_EQ(evicted.size(), 32u);
  for (int i = 1; i < 8; ++i) EXPECT_EQ(evicted[i - 1], absl::StrCat("0/k", i));  // oldest first
  for (int i = 33; i < 40; ++i) EXPECT_NE(cache.Get(absl::StrCat("0/k", i)), nullptr) << i;
}

}  // namespace
}  // namespace leftfold::internal::processor
