// The processor's local partition store and its background writer: dedup expiry by compaction,
// the on-disk format check, and ordered asynchronous writes.
#include "processor/partition_store.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "processor/store_writer.h"
#include "rocksdb/db.h"
#include "support/test_env.h"

namespace leftfold::internal::processor {
namespace {

using google::protobuf::util::TimeUtil;

v1::CommandResult ResultAt(const std::string& command_id, absl::Time processed_at) {
  v1::CommandResult result;
  result.set_command_id(command_id);
  result.set_aggregate_id("acct-1");
  result.set_outcome(v1::CommandResult::ACCEPTED);
  result.set_version(3);
  *result.mutable_processed_at() =
      TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(processed_at));
  return result;
}

v1::Snapshot SnapshotOf(const std::string& aggregate_id, int64_t version) {
  v1::Snapshot snapshot;
  snapshot.set_aggregate_type("bank.account");
  snapshot.set_aggregate_id(aggregate_id);
  snapshot.set_version(version);
  return snapshot;
}

TEST(PartitionStoreTest, CompactionDropsResultsOlderThanTheWindowOnly) {
  std::string dir = testing::MakeTempDir("partition-store");
  auto store = PartitionStore::Open(dir, {.dedup_window = absl::Hours(1)});
  ASSERT_TRUE(store.ok()) << store.status();
  PartitionStore::Update update;
  update.results = {ResultAt("old", absl::Now() - absl::Hours(2)),
                    ResultAt("fresh", absl::Now() - absl::Minutes(5))};
  ASSERT_TRUE((*store)->Write(update).ok());

  // Before a compaction both answer (an expired entry only extends deduplication).
  ASSERT_TRUE((*store)->GetResult("old").ok());
  EXPECT_TRUE((*store)->GetResult("old")->has_value());

  ASSERT_TRUE((*store)->Compact().ok());
  auto old = (*store)->GetResult("old");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_FALSE(old->has_value());
  auto fresh = (*store)->GetResult("fresh");
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  ASSERT_TRUE(fresh->has_value());
  EXPECT_EQ((*fresh)->version(), 3);
  EXPECT_EQ((*fresh)->aggregate_id(), "acct-1");
}

// Entries keep their keys and values apart and in order, whatever was added after them (the
// buffer moves as it grows), empty ones included; AddEncodedResult adds what EncodeResult makes.
TEST(PartitionStoreTest, EncodedEntriesKeepEachKeyAndValueAsAdded) {
  PartitionStore::EncodedEntries entries;
  EXPECT_TRUE(entries.empty());
  std::vector<std::pair<std::string, std::string>> added;
  for (int i = 0; i < 300; ++i) {
    added.emplace_back(absl::StrCat("key-", i), std::string(i % 7 == 0 ? 0 : 50 + i, 'a' + i % 26));
    if (i % 2 == 0) {
      entries.Add(added.back().first, added.back().second);
    } else {
      entries.Append(added.back().first,
                     [&](std::string* out) { out->append(added.back().second); });
    }
  }
  v1::CommandResult result = ResultAt("c-9", absl::Now());
  PartitionStore::AddEncodedResult(result, {}, "c-9", entries);
  added.emplace_back("c-9", PartitionStore::EncodeResult(result));
  entries.Add("", "");
  added.emplace_back("", "");

  ASSERT_EQ(entries.size(), added.size());
  EXPECT_FALSE(entries.empty());
  size_t i = 0;
  for (PartitionStore::EncodedEntries::Entry entry : entries) {
    ASSERT_LT(i, added.size());
    EXPECT_EQ(entry.key, added[i].first) << i;
    EXPECT_EQ(entry.value, added[i].second) << i;
    EXPECT_EQ(entries[i].value, added[i].second) << i;
    ++i;
  }
  EXPECT_EQ(i, added.size());
}

// The live path hands over the bytes it sent to the log; reads see the same messages, and
// GetResults (one MultiGet) answers hits and misses in order.
TEST(PartitionStoreTest, EncodedEntriesReadBackAndGetResultsAnswersInOrder) {
  std::string dir = testing::MakeTempDir("partition-store");
  auto store = PartitionStore::Open(dir, {});
  ASSERT_TRUE(store.ok()) << store.status();
  v1::CommandResult result = ResultAt("c-2", absl::Now());
  std::string value = PartitionStore::EncodeResult(result);
  EXPECT_EQ(std::string(PartitionStore::ResultBytes(value)), result.SerializeAsString());
  PartitionStore::Update update;
  update.encoded_snapshots.Add("acct-9", SnapshotOf("acct-9", 4).SerializeAsString());
  update.encoded_results.Add("c-2", value);
  update.results = {ResultAt("c-1", absl::Now())};
  ASSERT_TRUE((*store)->Write(update).ok());

  auto snapshot = (*store)->GetSnapshot("acct-9");
  ASSERT_TRUE(snapshot.ok() && snapshot->has_value());
  EXPECT_EQ((*snapshot)->version(), 4);
  auto found = (*store)->GetResults({"nope", "c-2", "c-1", "also-not"});
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 4u);
  EXPECT_FALSE((*found)[0].has_value());
  ASSERT_TRUE((*found)[1].has_value());
  EXPECT_EQ((*found)[1]->command_id(), "c-2");
  EXPECT_EQ((*found)[1]->SerializeAsString(), result.SerializeAsString());
  ASSERT_TRUE((*found)[2].has_value());
  EXPECT_EQ((*found)[2]->command_id(), "c-1");
  EXPECT_FALSE((*found)[3].has_value());
  auto single = (*store)->GetResult("c-2");
  ASSERT_TRUE(single.ok() && single->has_value());
  EXPECT_EQ((*single)->version(), 3);
}

// Ids that share a long prefix (client-generated ids usually do) and differ only at the end:
// every one reads back as itself, before and after a flush, and near misses stay misses.
TEST(PartitionStoreTest, IdsWithALongCommonPrefixReadBackExactly) {
  std::string dir = testing::MakeTempDir("partition-store");
  auto store = PartitionStore::Open(dir, {});
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string prefix = "client-7-1764190000000-run-";
  PartitionStore::Update update;
  for (int i = 0; i < 500; ++i) {
    update.results.push_back(ResultAt(absl::StrCat(prefix, i), absl::Now()));
    update.snapshots.push_back(SnapshotOf(absl::StrCat(prefix, "acct-", i), i + 1));
  }
  ASSERT_TRUE((*store)->Write(update).ok());
  for (bool flushed : {false, true}) {
    if (flushed) {
      ASSERT_TRUE((*store)->Compact().ok());
    }
    std::vector<std::string> ids;
    for (int i = 0; i < 500; ++i) ids.push_back(absl::StrCat(prefix, i));
    ids.push_back(absl::StrCat(prefix, 500));  // a near miss
    std::vector<absl::string_view> views(ids.begin(), ids.end());
    auto found = (*store)->GetResults(views);
    ASSERT_TRUE(found.ok()) << found.status();
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE((*found)[i].has_value()) << i << " flushed " << flushed;
      EXPECT_EQ((*found)[i]->command_id(), ids[i]);
    }
    EXPECT_FALSE((*found)[500].has_value());
    auto snapshot = (*store)->GetSnapshot(absl::StrCat(prefix, "acct-", 499));
    ASSERT_TRUE(snapshot.ok() && snapshot->has_value());
    EXPECT_EQ((*snapshot)->version(), 500);
  }
}

// Snapshots are updated in place in the memtable when the new value is no larger: a state that
// shrinks, grows back and shrinks again reads back exactly after every write, between writes to
// other keys, and after a flush.
TEST(PartitionStoreTest, ASnapshotRewrittenWithShorterAndLongerValuesReadsBackExactly) {
  std::string dir = testing::MakeTempDir("partition-store");
  auto store = PartitionStore::Open(dir, {});
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<size_t> sizes = {50, 10, 0, 200, 199, 1, 300, 5};
  int64_t version = 0;
  for (size_t size : sizes) {
    ++version;
    v1::Snapshot snapshot = SnapshotOf("acct-1", version);
    snapshot.mutable_state()->set_value(std::string(size, static_cast<char>('a' + version)));
    PartitionStore::Update update;
    update.snapshots.push_back(snapshot);
    update.snapshots.push_back(SnapshotOf(absl::StrCat("other-", version), version));
    ASSERT_TRUE((*store)->Write(update).ok());
    for (bool flushed : {false, true}) {
      if (flushed && version % 3 != 0) continue;  // flush now and then
      if (flushed) {
        ASSERT_TRUE((*store)->Compact().ok());
      }
      auto got = (*store)->GetSnapshot("acct-1");
      ASSERT_TRUE(got.ok() && got->has_value()) << version;
      EXPECT_EQ((*got)->version(), version);
      EXPECT_EQ((*got)->state().value(), snapshot.state().value()) << "size " << size;
    }
  }
  for (int64_t v = 1; v <= version; ++v) {
    auto other = (*store)->GetSnapshot(absl::StrCat("other-", v));
    ASSERT_TRUE(other.ok() && other->has_value()) << v;
    EXPECT_EQ((*other)->version(), v);
  }
}

// Live snapshots of these aggregates at these versions.
PartitionStore::EncodedEntries Encoded(
    std::initializer_list<std::pair<std::string, int64_t>> versions) {
  PartitionStore::EncodedEntries entries;
  for (const auto& [aggregate_id, version] : versions) {
    entries.Add(aggregate_id, SnapshotOf(aggregate_id, version).SerializeAsString());
  }
  return entries;
}

int64_t StoredVersion(PartitionStore& store, const std::string& aggregate_id) {
  auto got = store.GetSnapshot(aggregate_id);
  if (!got.ok() || !got->has_value()) return -1;
  return (*got)->version();
}

// Live snapshots wait in memory, newest per aggregate, and are read from there; they reach
// RocksDB with their offset when the buffer's write limit is reached, and when the store closes.
TEST(PartitionStoreTest, BufferedSnapshotsReadBackAndReachTheStoreWithTheirOffset) {
  std::string dir = testing::MakeTempDir("partition-store");
  {
    auto store = PartitionStore::Open(dir, {.snapshot_buffer_writes = 4});
    ASSERT_TRUE(store.ok()) << store.status();
    PartitionStore::Update first;
    first.encoded_snapshots = Encoded({{"acct-a", 1}, {"acct-b", 1}});
    first.snapshots_next = 10;
    ASSERT_TRUE((*store)->Write(first).ok());
    EXPECT_EQ(StoredVersion(**store, "acct-a"), 1);
    EXPECT_EQ(StoredVersion(**store, "acct-b"), 1);
    EXPECT_EQ(StoredVersion(**store, "acct-c"), -1);
    EXPECT_EQ((*store)->snapshots_next(), 10);

    PartitionStore::Update second;  // 3 writes so far: still buffered
    second.encoded_snapshots = Encoded({{"acct-a", 2}});
    ASSERT_TRUE((*store)->Write(second).ok());
    EXPECT_EQ(StoredVersion(**store, "acct-a"), 2);

    PartitionStore::Update third;  // 5 writes: the buffer goes to RocksDB
    third.encoded_snapshots = Encoded({{"acct-a", 3}, {"acct-c", 1}});
    third.snapshots_next = 12;
    ASSERT_TRUE((*store)->Write(third).ok());
    EXPECT_EQ(StoredVersion(**store, "acct-a"), 3);
    EXPECT_EQ(StoredVersion(**store, "acct-c"), 1);

    PartitionStore::Update fourth;  // buffered again; the close writes it
    fourth.encoded_snapshots = Encoded({{"acct-b", 2}});
    fourth.snapshots_next = 20;
    ASSERT_TRUE((*store)->Write(fourth).ok());
    EXPECT_EQ(StoredVersion(**store, "acct-b"), 2);
    EXPECT_EQ((*store)->snapshots_next(), 20);
  }
  auto store = PartitionStore::Open(dir, {.snapshot_buffer_writes = 4});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(StoredVersion(**store, "acct-a"), 3);
  EXPECT_EQ(StoredVersion(**store, "acct-b"), 2);
  EXPECT_EQ(StoredVersion(**store, "acct-c"), 1);
  EXPECT_EQ((*store)->snapshots_next(), 20);
}

// Writes that bypass the buffer (a changelog replay, decoded snapshots) come after what it
// holds: a replayed older snapshot never replaces a buffered newer one, and a newer direct write
// is not undone when the buffer is written later.
TEST(PartitionStoreTest, WritesPastTheSnapshotBufferKeepTheNewestVersion) {
  std::string dir = testing::MakeTempDir("partition-store");
  {
    auto store = PartitionStore::Open(dir, {.snapshot_buffer_writes = 1000});
    ASSERT_TRUE(store.ok()) << store.status();
    PartitionStore::Update live;
    live.encoded_snapshots = Encoded({{"acct-a", 5}, {"acct-b", 5}});
    ASSERT_TRUE((*store)->Write(live).ok());
    PartitionStore::Update replay;
    replay.replay = true;
    replay.snapshots = {SnapshotOf("acct-a", 3)};
    ASSERT_TRUE((*store)->Write(replay).ok());
    EXPECT_EQ(StoredVersion(**store, "acct-a"), 5);

    PartitionStore::Update again;  // buffered again, then overtaken by a direct write
    again.encoded_snapshots = Encoded({{"acct-b", 6}});
    ASSERT_TRUE((*store)->Write(again).ok());
    PartitionStore::Update direct;
    direct.snapshots = {SnapshotOf("acct-b", 7)};
    ASSERT_TRUE((*store)->Write(direct).ok());
    EXPECT_EQ(StoredVersion(**store, "acct-b"), 7);
    ASSERT_TRUE((*store)->FlushSnapshots().ok());
    EXPECT_EQ(StoredVersion(**store, "acct-b"), 7);
  }
  auto store = PartitionStore::Open(dir, {});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(StoredVersion(**store, "acct-a"), 5);
  EXPECT_EQ(StoredVersion(**store, "acct-b"), 7);
}

// Expects BytewiseOrder(keys) to be a permutation of the keys' indexes that sorts them as
// comparing the keys themselves does (RocksDB's bytewise comparator).
void ExpectBytewiseOrderSorts(const std::vector<std::string>& keys) {
  std::vector<absl::string_view> views(keys.begin(), keys.end());
  std::vector<uint32_t> order = BytewiseOrder(views);
  ASSERT_EQ(order.size(), keys.size());
  std::vector<std::string> got;
  for (uint32_t i : order) got.push_back(keys[i]);
  std::vector<std::string> want = keys;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want) << keys.size() << " keys";
  std::sort(order.begin(), order.end());
  for (size_t i = 0; i < order.size(); ++i) ASSERT_EQ(order[i], i) << "each index once";
}

// BytewiseOrder sorts keys shorter than its 8-byte head, zero bytes, keys one a prefix of
// another, equal heads that differ later, and repeats. MultiGet trusts this order (sorted_input).
TEST(PartitionStoreTest, BytewiseOrderMatchesSortingTheKeys) {
  std::mt19937 random(7);
  std::vector<std::string> keys = {"",
                                   std::string(1, '\0'),
                                   std::string("ab\0", 3),
                                   "ab",
                                   "abcdefgh",
                                   "abcdefgh",
                                   "abcdefghi",
                                   "abcdefgg\xff",
                                   "\xff\xff",
                                   "d/\x01\x02\x03\x04cmd"};
  for (int i = 0; i < 2000; ++i) {
    std::string key = "d/";
    size_t length = random() % 14;
    // Few distinct bytes: many keys share their 8-byte head and differ only after it.
    for (size_t b = 0; b < length; ++b)
      key.push_back(static_cast<char>("\0\x01a\xfe"[random() % 4]));
    keys.push_back(key);
  }
  ExpectBytewiseOrderSorts(keys);

  // Store keys as GetResults and the dedup files sort them (a kind, a 4-byte hash, the id), in
  // sets large enough to be radix sorted and small enough not to be, with repeated ids.
  for (size_t n : {10u, 511u, 512u, 3000u}) {
    std::vector<std::string> ids;
    for (size_t i = 0; i < n; ++i) {
      std::string key = "r/";
      for (int b = 0; b < 4; ++b) key.push_back(static_cast<char>(random()));
      key += "cmd-" + std::to_string(random() % 1000000);
      ids.push_back(key);
      if (i % 100 == 0) ids.push_back(key);
    }
    ExpectBytewiseOrderSorts(ids);
  }
}

// GetResults agrees with GetResult for entries in SST files and in the memtable, for misses,
// and for an id asked twice in one call (a command repeated within a batch).
TEST(PartitionStoreTest, GetResultsAgreesWithGetResultAcrossFilesAndMemtable) {
  std::string dir = testing::MakeTempDir("partition-store");
  auto store = PartitionStore::Open(dir, {});
  ASSERT_TRUE(store.ok()) << store.status();
  for (int chunk = 0; chunk < 3; ++chunk) {
    PartitionStore::Update update;
    for (int i = 0; i < 5000; ++i) {
      update.results.push_back(ResultAt(absl::StrCat("cmd-", chunk, "-", i), absl::Now()));
    }
    ASSERT_TRUE((*store)->Write(update).ok());
    if (chunk == 1) {
      ASSERT_TRUE((*store)->Compact().ok());  // chunks 0 and 1 in SST files
    }
  }
  std::vector<std::string> ids;
  for (int chunk = 0; chunk < 4; ++chunk) {  // chunk 3 was never written
    for (int i = 0; i < 5000; i += 7) ids.push_back(absl::StrCat("cmd-", chunk, "-", i));
  }
  ids.push_back("cmd-1-7");
  ids.push_back("cmd-3-7");
  std::vector<absl::string_view> views(ids.begin(), ids.end());
  auto found = (*store)->GetResults(views);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), ids.size());
  int hits = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto single = (*store)->GetResult(ids[i]);
    ASSERT_TRUE(single.ok()) << single.status();
    ASSERT_EQ((*found)[i].has_value(), single->has_value()) << ids[i];
    if (single->has_value()) {
      ++hits;
      EXPECT_EQ((*found)[i]->command_id(), ids[i]);
    }
  }
  EXPECT_EQ(hits, 3 * 715 + 1);
}

// Dedup entries wait in a buffer and are ingested as an SST file (on a thread of their own) once
// it holds dedup_buffer_bytes: lookups find them wherever they are, an id written again keeps its
// last value, and a reopen (after a clean close) keeps them all with the results offset.
TEST(PartitionStoreTest, BufferedResultsAreIngestedAndReadBackFromEitherPlace) {
  std::string dir = testing::MakeTempDir("partition-store");
  std::vector<std::string> ids;
  {
    auto store = PartitionStore::Open(dir, {.dedup_buffer_bytes = 64 << 10});
    ASSERT_TRUE(store.ok()) << store.status();
    for (int chunk = 0; chunk < 3; ++chunk) {  // ~35 KB each: the second fills the buffer
      PartitionStore::Update update;
      for (int i = 0; i < 500; ++i) {
        ids.push_back(absl::StrCat("order-2026-11-27-", chunk, "-", i));
        update.encoded_results.Add(ids.back(),
                                   PartitionStore::EncodeResult(ResultAt(ids.back(), absl::Now())));
      }
      update.results_next = chunk + 1;
      ASSERT_TRUE((*store)->Write(update).ok());
    }
    PartitionStore::Update again;  // a replayed result for an id already ingested
    v1::CommandResult replayed = ResultAt(ids[3], absl::Now());
    replayed.set_version(9);
    again.results = {replayed};
    ASSERT_TRUE((*store)->Write(again).ok());

    std::vector<absl::string_view> asked(ids.begin(), ids.end());
    asked.push_back("order-2026-11-27-3-0");  // never written
    auto found = (*store)->GetResults(asked);
    ASSERT_TRUE(found.ok()) << found.status();
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_TRUE((*found)[i].has_value()) << ids[i];
      EXPECT_EQ((*found)[i]->command_id(), ids[i]);
      EXPECT_EQ((*found)[i]->version(), i == 3 ? 9 : 3) << ids[i];
    }
    EXPECT_FALSE(found->back().has_value());
    auto single = (*store)->GetResult(ids[1400]);  // still buffered
    ASSERT_TRUE(single.ok() && single->has_value());
    EXPECT_EQ((*single)->command_id(), ids[1400]);
    EXPECT_EQ((*store)->results_next(), 3);
  }
  // The close ingested what was left, and every file moved into the store.
  EXPECT_TRUE(std::filesystem::is_empty(std::filesystem::path(dir) / "ingest"));
  auto store = PartitionStore::Open(dir, {.dedup_buffer_bytes = 64 << 10});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->results_next(), 3);
  std::vector<absl::string_view> asked(ids.begin(), ids.end());
  auto found = (*store)->GetResults(asked);
  ASSERT_TRUE(found.ok()) << found.status();
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE((*found)[i].has_value()) << ids[i];
    EXPECT_EQ((*found)[i]->version(), i == 3 ? 9 : 3) << ids[i];
  }
}

// A reader never misses a written result while buffers are sealed, ingested and dropped on
// the ingest thread: each lookup runs concurrently with writes and ingests.
TEST(PartitionStoreTest, ResultsStayVisibleWhileTheyMoveIntoTheStore) {
  std::string dir = testing::MakeTempDir("partition-store");
  auto store = PartitionStore::Open(dir, {.dedup_buffer_bytes = 32 << 10});
  ASSERT_TRUE(store.ok()) << store.status();
  constexpr int kChunks = 40;
  constexpr int kPerChunk = 250;  // ~17 KB: an ingest every second chunk
  auto id = [](int chunk, int i) { return absl::StrCat("cmd-", chunk, "-", i); };
  std::atomic<int> written{0};
  std::atomic<int> misses{0};
  std::atomic<int> lookups{0};
  std::thread reader([&] {
    while (written.load() < kChunks) {
      int upto = written.load();
      if (upto == 0) continue;
      std::vector<std::string> ids;
      for (int chunk = 0; chunk < upto; ++chunk) ids.push_back(id(chunk, (chunk * 37) % kPerChunk));
      std::vector<absl::string_view> views(ids.begin(), ids.end());
      auto found = (*store)->GetResults(views);
      if (!found.ok()) {
        ++misses;
        continue;
      }
      for (const auto& result : *found) misses += result.has_value() ? 0 : 1;
      ++lookups;
    }
  });
  for (int chunk = 0; chunk < kChunks; ++chunk) {
    PartitionStore::Update update;
    for (int i = 0; i < kPerChunk; ++i)
      update.results.push_back(ResultAt(id(chunk, i), absl::Now()));
    update.results_next = chunk + 1;
    ASSERT_TRUE((*store)->Write(update).ok());
    written.store(chunk + 1);
  }
  reader.join();
  EXPECT_EQ(misses.load(), 0);
  EXPECT_GT(lookups.load(), 0);
  // Everything is in RocksDB after Compact (which ingests first), and still found.
  ASSERT_TRUE((*store)->Compact().ok());
  for (int chunk = 0; chunk < kChunks; chunk += 7) {
    auto single = (*store)->GetResult(id(chunk, kPerChunk - 1));
    ASSERT_TRUE(single.ok() && single->has_value()) << chunk;
  }
}

TEST(PartitionStoreTest, ReopenKeepsSnapshotsResultsAndChangelogOffsets) {
  std::string dir = testing::MakeTempDir("partition-store");
  {
    auto store = PartitionStore::Open(dir, {});
    ASSERT_TRUE(store.ok()) << store.status();
    PartitionStore::Update update;
    update.snapshots = {SnapshotOf("acct-1", 7)};
    update.results = {ResultAt("c-1", absl::Now())};
    update.snapshots_next = 42;
    update.results_next = 17;
    ASSERT_TRUE((*store)->Write(update).ok());
  }
  auto store = PartitionStore::Open(dir, {});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->snapshots_next(), 42);
  EXPECT_EQ((*store)->results_next(), 17);
  auto snapshot = (*store)->GetSnapshot("acct-1");
  ASSERT_TRUE(snapshot.ok() && snapshot->has_value());
  EXPECT_EQ((*snapshot)->version(), 7);
  auto result = (*store)->GetResult("c-1");
  ASSERT_TRUE(result.ok() && result->has_value());
  EXPECT_EQ((*result)->command_id(), "c-1");
}

// A reopened store fills its dedup filter from the entries it holds, on a thread of its own:
// each result written before still answers, while the filter fills and once it is filled
// (of many small generations), and with the filter off (by the option, or past its limit);
// results written after the reopen answer too, and ids never written stay misses. A store
// closed while its filter fills closes.
TEST(PartitionStoreTest, AReopenedStoreAnswersEveryResultItHoldsWithOrWithoutItsFilter) {
  std::string dir = testing::MakeTempDir("partition-store");
  constexpr int kResults = 3000;
  {
    // Small dedup buffers: the results go to RocksDB in several ingested files.
    auto store = PartitionStore::Open(dir, {.dedup_buffer_bytes = 32 << 10});
    ASSERT_TRUE(store.ok()) << store.status();
    for (int at = 0; at < kResults; at += 100) {
      PartitionStore::Update update;
      for (int i = at; i < at + 100; ++i) {
        update.results.push_back(ResultAt(absl::StrCat("c-", i), absl::Now()));
      }
      ASSERT_TRUE((*store)->Write(update).ok());
    }
  }
  ASSERT_TRUE(PartitionStore::Open(dir, {}).ok());  // closed at once, filling or not
  for (size_t filter_keys : {size_t{8} << 20, size_t{0}, size_t{1000}}) {
    SCOPED_TRACE(absl::StrCat("dedup_filter_keys ", filter_keys));
    auto store = PartitionStore::Open(
        dir, {.dedup_filter_keys = filter_keys, .dedup_filter_generation_keys = 256});
    ASSERT_TRUE(store.ok()) << store.status();
    // While the filter may still be filling: every stored result answers.
    for (int i = 0; i < kResults; i += 97) {
      auto early = (*store)->GetResult(absl::StrCat("c-", i));
      ASSERT_TRUE(early.ok() && early->has_value()) << i;
    }
    (*store)->AwaitDedupFilter();
    PartitionStore::Update update;
    const std::string after = absl::StrCat("after-", filter_keys, "-");
    for (int i = 0; i < 100; ++i) {
      update.results.push_back(ResultAt(absl::StrCat(after, i), absl::Now()));
    }
    ASSERT_TRUE((*store)->Write(update).ok());
    std::vector<std::string> ids;
    for (int i = 0; i < kResults; ++i) ids.push_back(absl::StrCat("c-", i));
    for (int i = 0; i < 100; ++i) ids.push_back(absl::StrCat(after, i));
    for (int i = 0; i < kResults; ++i) ids.push_back(absl::StrCat("never-", i));
    std::vector<absl::string_view> views(ids.begin(), ids.end());
    auto found = (*store)->GetResults(views);
    ASSERT_TRUE(found.ok()) << found.status();
    ASSERT_EQ(found->size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i < kResults + 100) {
        ASSERT_TRUE((*found)[i].has_value()) << ids[i];
        EXPECT_EQ((*found)[i]->command_id(), ids[i]);
      } else {
        EXPECT_FALSE((*found)[i].has_value()) << ids[i];
      }
    }
    auto single = (*store)->GetResult("c-2999");
    ASSERT_TRUE(single.ok() && single->has_value());
    auto missing = (*store)->GetResult("never-1");
    ASSERT_TRUE(missing.ok());
    EXPECT_FALSE(missing->has_value());
  }
}

// The first format left keys but no format marker; format 3 kept dedup entries in the default
// column family, where format 4 no longer looks. Either is wiped, and restore starts over.
TEST(PartitionStoreTest, AStoreOfAnOlderFormatIsWipedForRestore) {
  for (const char* format : {"", "3"}) {
    SCOPED_TRACE(absl::StrCat("format '", format, "'"));
    std::string dir = testing::MakeTempDir("partition-store");
    {
      rocksdb::Options options;
      options.create_if_missing = true;
      rocksdb::DB* raw = nullptr;
      ASSERT_TRUE(rocksdb::DB::Open(options, dir, &raw).ok());
      std::unique_ptr<rocksdb::DB> db(raw);
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "s/acct-1", "stale").ok());
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "m/snapshots_next", "99").ok());
      if (*format != '\0') {
        ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "m/format", format).ok());
      }
    }
    auto store = PartitionStore::Open(dir, {});
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->snapshots_next(), 0);  // restore starts from the beginning
    auto snapshot = (*store)->GetSnapshot("acct-1");
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    EXPECT_FALSE(snapshot->has_value());
    // And the wiped store works: a result written now reads back after a reopen.
    PartitionStore::Update update;
    update.results.push_back(ResultAt("c-1", absl::Now()));
    ASSERT_TRUE((*store)->Write(update).ok());
    store->reset();
    store = PartitionStore::Open(dir, {});
    ASSERT_TRUE(store.ok()) << store.status();
    auto result = (*store)->GetResult("c-1");
    ASSERT_TRUE(result.ok() && result->has_value());
  }
}

TEST(StoreWriterTest, WritesBatchesInOrderAndDrainWaitsForThem) {
  std::string dir = testing::MakeTempDir("partition-store");
  auto store = PartitionStore::Open(dir, {});
  ASSERT_TRUE(store.ok()) << store.status();
  StoreWriter writer(/*max_pending=*/2);
  uint64_t last = 0;
  for (int64_t version = 1; version <= 50; ++version) {
    PartitionStore::Update update;
    update.snapshots = {SnapshotOf("acct-1", version)};
    update.snapshots_next = version;
    auto batch = std::make_shared<StoreWriter::Batch>();
    batch->emplace_back(store->get(), std::move(update));
    uint64_t seq = writer.Enqueue(std::move(batch));
    EXPECT_EQ(seq, last + 1);
    last = seq;
  }
  ASSERT_TRUE(writer.Drain().ok());
  EXPECT_EQ(writer.applied(), 50u);
  // The last batch written wins: writes were applied in order.
  EXPECT_EQ((*store)->snapshots_next(), 50);
  auto snapshot = (*store)->GetSnapshot("acct-1");
  ASSERT_TRUE(snapshot.ok() && snapshot->has_value());
  EXPECT_EQ((*snapshot)->version(), 50);
}

}  // namespace
}  // namespace leftfold::internal::processor
