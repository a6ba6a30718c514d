// The embedded backend on its own: topics, produce/consume, transactions, errors, restart.
// (The cross-backend contract is tested by the conformance suite.)
#include "log/embedded/embedded_log.h"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "log/errors.h"
#include "support/test_env.h"

namespace leftfold::internal::log::embedded {
namespace {

class EmbeddedLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = leftfold::testing::MakeTempDir("embedded-log");
    Open();
    ASSERT_TRUE(log_->admin().CreateTopics({{.name = "t", .partitions = 3}}).ok());
  }
  void Open(EmbeddedOptions options = {}) {
    log_.reset();
    auto log = OpenEmbeddedLog({.embedded_dir = dir_}, options);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }
  std::unique_ptr<Producer> NewProducer(const std::string& txn_id = "") {
    auto p = log_->NewProducer({.transactional_id = txn_id});
    EXPECT_TRUE(p.ok());
    return *std::move(p);
  }
  // Every record of the topic, partition by partition.
  std::vector<Record> ReadAll(const std::string& topic) {
    auto consumer = log_->NewConsumer({});
    auto ends = log_->admin().EndOffsets(topic, Isolation::kReadCommitted);
    EXPECT_TRUE(ends.ok()) << ends.status();
    std::vector<Record> all;
    for (int32_t p = 0; p < static_cast<int32_t>(ends->size()); ++p) {
      EXPECT_TRUE((*consumer)->Assign({{{topic, p}, 0}}).ok());
      size_t want = all.size() + (*ends)[p];
      while (all.size() < want) {
        auto batch = (*consumer)->Poll(1000, absl::Seconds(5));
        EXPECT_TRUE(batch.ok());
        if (!batch.ok() || batch->empty()) break;
        all.insert(all.end(), batch->begin(), batch->end());
      }
    }
    return all;
  }

  std::string dir_;
  std::unique_ptr<Log> log_;
};

TEST_F(EmbeddedLogTest, AdminCreatesListsAndDeletesTopics) {
  EXPECT_EQ(log_->backend(), "embedded");
  EXPECT_EQ(*log_->admin().PartitionCount("t"), 3);
  // Existing topics stay as they are.
  ASSERT_TRUE(log_->admin().CreateTopics({{.name = "t", .partitions = 7}, {.name = "u"}}).ok());
  EXPECT_EQ(*log_->admin().PartitionCount("t"), 3);
  EXPECT_EQ(*log_->admin().PartitionCount("u"), 1);
  EXPECT_EQ(log_->admin().PartitionCount("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(log_->admin().EndOffsets("nope", Isolation::kReadCommitted).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(log_->admin().CreateTopics({{.name = "z", .partitions = 0}}).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(log_->admin().DeleteTopics({"u"}).ok());
  EXPECT_EQ(log_->admin().PartitionCount("u").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(log_->admin().DeleteTopics({"u"}).code(), absl::StatusCode::kNotFound);
}

TEST_F(EmbeddedLogTest, DeletedTopicRecreatedStartsEmpty) {
  auto producer = NewProducer();
  ASSERT_TRUE(producer->Produce({.topic = "t", .value = "v", .partition = 0}).ok());
  ASSERT_TRUE(producer->Flush(absl::Seconds(5)).ok());
  ASSERT_TRUE(log_->admin().DeleteTopics({"t"}).ok());
  EXPECT_EQ(producer->Produce({.topic = "t", .value = "v"}).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(log_->admin().CreateTopics({{.name = "t", .partitions = 2}}).ok());
  EXPECT_EQ(*log_->admin().EndOffsets("t", Isolation::kReadCommitted),
            (std::vector<int64_t>{0, 0}));
  Open();  // and stays deleted after a restart
  EXPECT_EQ(*log_->admin().PartitionCount("t"), 2);
  EXPECT_TRUE(ReadAll("t").empty());
}

TEST_F(EmbeddedLogTest, PlainProducerDeliversContiguousOffsetsWithKeyPlacement) {
  auto producer = NewProducer();
  std::vector<absl::StatusOr<TopicPartitionOffset>> delivered;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(producer
                    ->Produce({.topic = "t",
                               .key = absl::StrCat("key-", i),
                               .value = absl::StrCat("value-", i),
                               .headers = {{"h", absl::StrCat(i)}}},
                              [&](auto result) { delivered.push_back(result); })
                    .ok());
  }
  ASSERT_TRUE(producer->Flush(absl::Seconds(5)).ok());
  ASSERT_EQ(delivered.size(), 50u);
  std::map<int32_t, int64_t> next;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(delivered[i].ok()) << delivered[i].status();
    EXPECT_EQ(delivered[i]->tp.partition, PartitionForKey(absl::StrCat("key-", i), 3));
    EXPECT_EQ(delivered[i]->offset, next[delivered[i]->tp.partition]++);
  }
  std::vector<Record> all = ReadAll("t");
  ASSERT_EQ(all.size(), 50u);
  int64_t now = absl::ToUnixMillis(absl::Now());
  for (const Record& r : all) {
    int i = std::stoi(r.key.substr(4));
    EXPECT_EQ(r.topic, "t");
    EXPECT_EQ(r.partition, PartitionForKey(r.key, 3));
    EXPECT_EQ(r.value, absl::StrCat("value-", i));
    EXPECT_EQ(r.headers, (std::vector<Header>{{"h", absl::StrCat(i)}}));
    EXPECT_LE(r.timestamp_ms, now);
    EXPECT_GT(r.timestamp_ms, now - 60'000);
  }
}

TEST_F(EmbeddedLogTest, PlainProducerWritesWithoutFlushAfterLinger) {
  auto producer = NewProducer();
  auto consumer = *log_->NewConsumer({});
  ASSERT_TRUE(consumer->Assign({{{"t", 1}, 0}}).ok());
  ASSERT_TRUE(producer->Produce({.topic = "t", .value = "lonely", .partition = 1}).ok());
  // No Flush: the background linger write makes it visible.
  auto records = consumer->Poll(10, absl::Seconds(10));
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].value, "lonely");
}

// Records given back with Recycle are refilled by later polls: nothing of the records they held
// before may show through (fields the new record lacks included), and spares a smaller poll did
// not need serve the next one.
TEST_F(EmbeddedLogTest, RecycledRecordsAreRefilledWholly) {
  const std::string other = "a-topic-name-longer-than-the-small-string-buffer";
  ASSERT_TRUE(log_->admin().CreateTopics({{.name = other, .partitions = 2}}).ok());
  auto producer = NewProducer();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(producer
                    ->Produce({.topic = other,
                               .key = absl::StrCat("a-key-long-enough-to-be-on-the-heap-", i),
                               .value = std::string(200, static_cast<char>('a' + i)),
                               .headers = {{"h1", "one"}, {"h2", "two"}},
                               .partition = 1})
                    .ok());
  }
  ASSERT_TRUE(producer->Produce({.topic = "t", .value = "v0", .partition = 0}).ok());
  ASSERT_TRUE(producer->Produce({.topic = "t", .key = "k1", .value = "", .partition = 0}).ok());
  ASSERT_TRUE(producer->Produce({.topic = "t", .value = "v2", .partition = 0}).ok());
  ASSERT_TRUE(producer->Flush(absl::Seconds(5)).ok());

  auto consumer = *log_->NewConsumer({});
  ASSERT_TRUE(consumer->Assign({{{other, 1}, 0}}).ok());
  auto first = consumer->Poll(10, absl::Seconds(5));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 4u);
  EXPECT_EQ((*first)[3].value, std::string(200, 'd'));
  consumer->Recycle(*std::move(first));

  ASSERT_TRUE(consumer->Assign({{{"t", 0}, 0}}).ok());
  auto expect = [](const Record& r, int64_t offset, const std::string& key,
                   const std::string& value) {
    EXPECT_EQ(r.topic, "t");
    EXPECT_EQ(r.partition, 0);
    EXPECT_EQ(r.offset, offset);
    EXPECT_EQ(r.key, key);
    EXPECT_EQ(r.value, value);
    EXPECT_TRUE(r.headers.empty()) << r.headers.size() << " headers at " << offset;
    EXPECT_GT(r.timestamp_ms, 0);
  };
  auto two = consumer->Poll(2, absl::Seconds(5));  // two of the four recycled records
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_EQ(two->size(), 2u);
  expect((*two)[0], 0, "", "v0");
  expect((*two)[1], 1, "k1", "");
  auto rest = consumer->Poll(10, absl::Seconds(5));  // from the two left spare
  ASSERT_TRUE(rest.ok()) << rest.status();
  ASSERT_EQ(rest->size(), 1u);
  expect((*rest)[0], 2, "", "v2");
  // Nothing new: an empty poll keeps what is spare and returns nothing.
  consumer->Recycle(*std::move(two));
  auto none = consumer->Poll(10, absl::Milliseconds(10));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(EmbeddedLogTest, TransactionIsInvisibleUntilCommitAndAbortDropsIt) {
  auto producer = NewProducer("txn-a");
  std::vector<absl::StatusOr<TopicPartitionOffset>> delivered;
  auto callback = [&](auto result) { delivered.push_back(result); };
  ASSERT_TRUE(producer->BeginTransaction().ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        producer->Produce({.topic = "t", .value = "aborted", .partition = 0}, callback).ok());
  }
  EXPECT_EQ(*log_->admin().EndOffsets("t", Isolation::kReadUncommitted),
            (std::vector<int64_t>{0, 0, 0}));
  ASSERT_TRUE(producer->AbortTransaction().ok());
  ASSERT_EQ(delivered.size(), 5u);
  for (const auto& d : delivered) EXPECT_EQ(d.status().code(), absl::StatusCode::kAborted);
  delivered.clear();

  ASSERT_TRUE(producer->BeginTransaction().ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        producer->Produce({.topic = "t", .value = absl::StrCat(i), .partition = 0}, callback).ok());
  }
  EXPECT_TRUE(delivered.empty()) << "callbacks fire at commit";
  ASSERT_TRUE(producer->CommitTransaction().ok());
  ASSERT_EQ(delivered.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(delivered[i]->offset, i);  // aborted used no offsets
  std::vector<Record> all = ReadAll("t");
  ASSERT_EQ(all.size(), 3u);
  for (const Record& r : all) EXPECT_NE(r.value, "aborted");
}

TEST_F(EmbeddedLogTest, BadInputGivesClearErrors) {
  Open({.max_record_bytes = 100});
  auto plain = NewProducer();
  EXPECT_EQ(plain->Produce({.topic = "nope"}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(plain->Produce({.topic = "t", .partition = 3}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(plain->Produce({.topic = "t", .value = std::string(101, 'x')}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(plain->Produce({.topic = "t", .value = std::string(100, 'x')}).ok());
  EXPECT_EQ(plain->BeginTransaction().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(plain->Close().ok());
  absl::Status closed = plain->Produce({.topic = "t"});
  EXPECT_EQ(closed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ClassifyError(closed), ErrorClass::kInvalid);
  EXPECT_EQ(plain->Flush(absl::Seconds(1)).code(), absl::StatusCode::kFailedPrecondition);

  auto txn = NewProducer("txn-bad");
  EXPECT_EQ(txn->Produce({.topic = "t"}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(txn->CommitTransaction().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(txn->BeginTransaction().ok());
  EXPECT_EQ(txn->BeginTransaction().code(), absl::StatusCode::kFailedPrecondition);

  auto consumer = *log_->NewConsumer({});
  EXPECT_EQ(consumer->Assign({{{"nope", 0}, 0}}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(consumer->Subscribe({"t"}, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(consumer->Position({"t", 0}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(EmbeddedLogTest, NewProducerWithSameTransactionalIdFencesTheOld) {
  auto old_producer = NewProducer("txn-f");
  std::vector<absl::Status> delivered;
  ASSERT_TRUE(old_producer->BeginTransaction().ok());
  ASSERT_TRUE(old_producer
                  ->Produce({.topic = "t", .value = "zombie"},
                            [&](auto r) { delivered.push_back(r.status()); })
                  .ok());
  auto new_producer = NewProducer("txn-f");
  absl::Status s = old_producer->CommitTransaction();
  EXPECT_EQ(ClassifyError(s), ErrorClass::kFatal) << s;
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_FALSE(delivered[0].ok());
  EXPECT_EQ(ClassifyError(old_producer->BeginTransaction()), ErrorClass::kFatal);
  ASSERT_TRUE(new_producer->BeginTransaction().ok());
  ASSERT_TRUE(new_producer->Produce({.topic = "t", .value = "new"}).ok());
  ASSERT_TRUE(new_producer->CommitTransaction().ok());
  std::vector<Record> all = ReadAll("t");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].value, "new");
}

TEST_F(EmbeddedLogTest, RestartKeepsRecordsOffsetsAndCommittedGroupOffsets) {
  {
    auto producer = NewProducer("txn-r");
    auto consumer = *log_->NewConsumer({.group_id = "g"});
    ASSERT_TRUE(consumer->Assign({{{"t", 2}, 0}}).ok());
    ASSERT_TRUE(producer->BeginTransaction().ok());
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(
          producer->Produce({.topic = "t", .value = absl::StrCat(i), .partition = i % 3}).ok());
    }
    ASSERT_TRUE(producer->SendOffsetsToTransaction({{{"t", 2}, 2}}, *consumer).ok());
    ASSERT_TRUE(producer->CommitTransaction().ok());
    ASSERT_TRUE(consumer->CommitOffsets({{{"t", 1}, 3}}).ok());
    // Staged, never committed: gone with the restart.
    ASSERT_TRUE(producer->BeginTransaction().ok());
    ASSERT_TRUE(producer->Produce({.topic = "t", .value = "staged", .partition = 0}).ok());
  }
  Open();
  EXPECT_EQ(*log_->admin().PartitionCount("t"), 3);
  EXPECT_EQ(*log_->admin().EndOffsets("t", Isolation::kReadCommitted),
            (std::vector<int64_t>{4, 3, 3}));
  std::vector<Record> all = ReadAll("t");
  ASSERT_EQ(all.size(), 10u);
  for (const Record& r : all) EXPECT_NE(r.value, "staged");
  auto consumer = *log_->NewConsumer({.group_id = "g"});
  auto committed = consumer->Committed({{"t", 0}, {"t", 1}, {"t", 2}}, absl::Seconds(1));
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ((*committed)[0].offset, -1);
  EXPECT_EQ((*committed)[1].offset, 3);
  EXPECT_EQ((*committed)[2].offset, 2);
  // Appends continue after the last offset.
  auto producer = NewProducer();
  int64_t offset = -1;
  ASSERT_TRUE(producer
                  ->Produce({.topic = "t", .value = "after", .partition = 0},
                            [&](auto r) { offset = r->offset; })
                  .ok());
  ASSERT_TRUE(producer->Flush(absl::Seconds(5)).ok());
  EXPECT_EQ(offset, 4);
  // Assign without an offset starts at the committed one.
  ASSERT_TRUE(consumer->Assign({{{"t", 1}, -1}}).ok());
  EXPECT_EQ(*consumer->Position({"t", 1}), 3);
}

TEST_F(EmbeddedLogTest, SameDirectoryTwiceInOneProcessIsRefused) {
  auto second = OpenEmbeddedLog({.embedded_dir = dir_});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
}

TEST_F(EmbeddedLogTest, PollWaitsForACommitAndHonoursPauseSeekAndLatest) {
  auto latest = *log_->NewConsumer({.start_from_earliest = false});
  auto producer = NewProducer("txn-p");
  ASSERT_TRUE(producer->BeginTransaction().ok());
  ASSERT_TRUE(producer->Produce({.topic = "t", .value = "old", .partition = 0}).ok());
  ASSERT_TRUE(producer->CommitTransaction().ok());

  auto consumer = *log_->NewConsumer({});
  ASSERT_TRUE(consumer->Assign({{{"t", 0}, 1}}).ok());
  ASSERT_TRUE(latest->Assign({{{"t", 0}, -1}}).ok());
  EXPECT_EQ(*latest->Position({"t", 0}), 1);
  std::thread writer([&] {
    ASSERT_TRUE(producer->BeginTransaction().ok());
    ASSERT_TRUE(producer->Produce({.topic = "t", .value = "new", .partition = 0}).ok());
    ASSERT_TRUE(producer->CommitTransaction().ok());
  });
  auto records = consumer->Poll(10, absl::Seconds(30));  // returns on the commit's notification
  writer.join();
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].value, "new");
  EXPECT_EQ(*consumer->Position({"t", 0}), 2);

  ASSERT_TRUE(consumer->Seek({{"t", 0}, 0}).ok());
  ASSERT_TRUE(consumer->Pause({{"t", 0}}).ok());
  EXPECT_TRUE(consumer->Poll(10, absl::Milliseconds(20))->empty());
  ASSERT_TRUE(consumer->Resume({{"t", 0}}).ok());
  records = consumer->Poll(10, absl::Seconds(5));
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].value, "old");
  ASSERT_TRUE(consumer->Close().ok());
  EXPECT_EQ(consumer->Poll(1, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(EmbeddedLogTest, ConcurrentTransactionalProducersGetContiguousOffsets) {
  constexpr int kThreads = 4, kTxns = 50, kPerTxn = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto producer = *log_->NewProducer({.transactional_id = absl::StrCat("c", t)});
      for (int n = 0; n < kTxns; ++n) {
        if (!producer->BeginTransaction().ok()) ++failures;
        for (int i = 0; i < kPerTxn; ++i) {
          if (!producer
                   ->Produce(
                       {.topic = "t", .key = absl::StrCat(i), .value = absl::StrCat(t, "/", n)})
                   .ok()) {
            ++failures;
          }
        }
        if (!producer->CommitTransaction().ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  std::vector<Record> all = ReadAll("t");
  ASSERT_EQ(all.size(), size_t{kThreads * kTxns * kPerTxn});
  std::map<int32_t, int64_t> next;
  std::map<std::string, int> per_txn;
  // Within a partition, one transaction's records are contiguous (appended under its lock).
  std::map<std::pair<int32_t, std::string>, std::pair<int64_t, int64_t>> span;
  for (const Record& r : all) {
    EXPECT_EQ(r.offset, next[r.partition]++);
    ++per_txn[r.value];
    auto [it, fresh] = span.try_emplace({r.partition, r.value}, r.offset, r.offset);
    if (!fresh) {
      EXPECT_EQ(it->second.second + 1, r.offset) << "interleaved transaction " << r.value;
      it->second.second = r.offset;
    }
  }
  EXPECT_EQ(per_txn.size(), size_t{kThreads * kTxns});
  for (const auto& [txn, count] : per_txn) EXPECT_EQ(count, kPerTxn) << txn;
}

// Quick throughput check for the target (>= 500k appends/s, transactions of 1,000
// 100-byte records). Run: unit_log_embedded_test --gtest_also_run_disabled_tests
//   --gtest_filter='*Throughput*'
// The second pass Flushes before each commit, as the aggregate processor does (offsets reserved
// at the Flush, records written at the commit).
TEST_F(EmbeddedLogTest, DISABLED_TransactionalAppendThroughput) {
  for (auto [sync, flush] : {std::pair{true, false}, std::pair{false, false}, std::pair{true, true},
                             std::pair{false, true}}) {
    Open({.sync_commits = sync});
    auto producer = NewProducer(absl::StrCat("bench", sync, flush));
    std::string value(100, 'v');
    int64_t records = 0;
    absl::Time start = absl::Now();
    std::clock_t cpu_start = std::clock();  // the box is shared: CPU time says more than wall
    while (absl::Now() - start < absl::Seconds(3)) {
      ASSERT_TRUE(producer->BeginTransaction().ok());
      for (int i = 0; i < 1000; ++i) {
        ASSERT_TRUE(
            producer->Produce({.topic = "t", .key = absl::StrCat("k", i % 64), .value = value})
                .ok());
      }
      if (flush) {
        ASSERT_TRUE(producer->Flush(absl::Seconds(5)).ok());
      }
      ASSERT_TRUE(producer->CommitTransaction().ok());
      records += 1000;
    }
    double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    std::printf(
        "sync_commits=%d flush=%d: %.0f appends/s wall (%.0f commits/s), %.0f appends per CPU-s\n",
        sync, flush, records / seconds, records / 1000 / seconds, records / cpu);
  }
}

}  // namespace
}  // namespace leftfold::internal::log::embedded
