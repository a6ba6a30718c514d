// The embedded log's append path: records are laid out (codec.h SegmentGather) and gathered into
// the WriteBatch straight from the producer's strings, stamped with one append time per batch, and
// written through a per-thread scratch batch; producers cache the topics they write to.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "log/embedded/codec.h"
#include "log/embedded/embedded_log.h"
#include "support/test_env.h"

namespace leftfold::internal::log::embedded {
namespace {

struct Sent {
  std::string key, value;
  std::vector<Header> headers;
};

// A segment laid out by SegmentGather, its pieces concatenated.
std::string Gathered(int64_t ts, const std::vector<Sent>& records, size_t* piece_count) {
  size_t bound = kMaxVarintBytes;
  for (const Sent& r : records) {
    bound += SegmentGather<std::string_view>::ScratchBound(r.key, r.value, r.headers);
  }
  std::vector<char> scratch(bound);
  std::vector<std::string_view> pieces;
  SegmentGather<std::string_view> gather(scratch.data(), &pieces, ts);
  gather.Begin(records.size());
  for (const Sent& r : records) gather.Add(r.key, r.value, r.headers);
  gather.End();
  EXPECT_LE(gather.scratch_end() - scratch.data(), static_cast<ptrdiff_t>(bound));
  *piece_count = pieces.size();
  std::string out;
  for (std::string_view p : pieces) out.append(p);
  return out;
}

// The same segment encoded the plain way (what the reader was written against).
std::string Encoded(int64_t ts, const std::vector<Sent>& records) {
  std::string segment;
  AppendVarint(records.size(), &segment);
  for (const Sent& r : records) {
    std::string record;
    EncodeRecordValue(ts, r.key, r.value, r.headers, &record);
    AppendVarint(record.size(), &segment);
    segment += record;
  }
  return segment;
}

TEST(SegmentGatherTest, GatheredSegmentIsByteForByteTheEncodedOne) {
  const std::string big(70'000, 'v');  // three-byte length varints
  const std::string inline_max(SegmentGather<std::string_view>::kInlineBytes, 'i');
  const std::vector<Sent> records = {
      {"", "", {}},
      {"acct-1", "payload", {}},
      {"", big, {{"h", "1"}, {"", ""}, {std::string(200, 'k'), big}}},
      {inline_max + "k", std::string(4 * inline_max.size(), 'x'), {{"trace", "abc"}}},
      {inline_max, inline_max + "!", {}},
  };
  for (int64_t ts : {int64_t{0}, int64_t{127}, int64_t{1764180000000}, INT64_MAX}) {
    for (const Sent& r : records) {
      size_t pieces = 0;
      EXPECT_EQ(Gathered(ts, {r}, &pieces), Encoded(ts, {r})) << ts;
    }
  }
  const int64_t ts = 1764180000000;
  size_t pieces = 0;
  const std::string segment = Gathered(ts, records, &pieces);
  ASSERT_EQ(segment, Encoded(ts, records));
  // Small fields ride along with the framing: only the large keys and values are pieces of
  // their own (each between two framing pieces).
  EXPECT_EQ(pieces, 9u);
  SegmentReader reader(segment, 5);
  for (size_t i = 0; i < records.size(); ++i) {
    Record r;
    ASSERT_TRUE(reader.Next(&r)) << i;
    EXPECT_EQ(r.offset, static_cast<int64_t>(5 + i));
    EXPECT_EQ(r.timestamp_ms, ts);
    EXPECT_EQ(r.key, records[i].key);
    EXPECT_EQ(r.value, records[i].value);
    EXPECT_EQ(r.headers, records[i].headers);
  }
  EXPECT_FALSE(reader.has_next());
}

class AppendPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = leftfold::testing::MakeTempDir("embedded-append");
    auto log = OpenEmbeddedLog({.embedded_dir = dir_});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }
  std::vector<Record> ReadAll(const std::string& topic, int32_t partitions) {
    auto consumer = *log_->NewConsumer({});
    std::vector<TopicPartitionOffset> from_start;
    for (int32_t p = 0; p < partitions; ++p) from_start.push_back({{topic, p}, 0});
    EXPECT_TRUE(consumer->Assign(from_start).ok());
    std::vector<Record> all;
    for (;;) {
      auto batch = consumer->Poll(1000, absl::Milliseconds(50));
      EXPECT_TRUE(batch.ok()) << batch.status();
      if (!batch.ok() || batch->empty()) return all;
      for (Record& r : *batch) all.push_back(std::move(r));
    }
  }

  std::string dir_;
  std::unique_ptr<Log> log_;
};

TEST_F(AppendPathTest, RecordsOfOneCommitCarryTheCommitTimeNotTheProduceTime) {
  ASSERT_TRUE(log_->admin().CreateTopics({{.name = "t", .partitions = 2}}).ok());
  auto producer = *log_->NewProducer({.transactional_id = "ts"});
  ASSERT_TRUE(producer->BeginTransaction().ok());
  int64_t produced_ms = absl::ToUnixMillis(absl::Now());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(
        producer->Produce({.topic = "t", .value = absl::StrCat(i), .partition = i % 2}).ok());
  }
  // Wait (on the clock, with a deadline) until produce time and commit time differ.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::ToUnixMillis(absl::Now()) <= produced_ms + 2 && absl::Now() < deadline) {
  }
  int64_t before_commit = absl::ToUnixMillis(absl::Now());
  ASSERT_GT(before_commit, produced_ms);
  ASSERT_TRUE(producer->CommitTransaction().ok());
  int64_t after_commit = absl::ToUnixMillis(absl::Now());

  std::vector<Record> all = ReadAll("t", 2);
  ASSERT_EQ(all.size(), 10u);
  for (const Record& r : all) {
    EXPECT_EQ(r.timestamp_ms, all[0].timestamp_ms) << "one timestamp per commit";
    EXPECT_GE(r.timestamp_ms, before_commit);
    EXPECT_LE(r.timestamp_ms, after_commit);
  }
}

TEST_F(AppendPathTest, KeysValuesAndHeadersOfEverySizeRoundTripOnEveryWritePath) {
  ASSERT_TRUE(log_->admin().CreateTopics({{.name = "t", .partitions = 1}}).ok());
  std::vector<OutgoingRecord> sent = {
      {.topic = "t"},
      {.topic = "t", .key = "k"},
      {.topic = "t", .value = std::string(200'000, 'v')},
      {.topic = "t",
       .key = std::string(300, 'k'),
       .value = "v",
       .headers = {{"a", ""}, {"", "b"}, {std::string(129, 'h'), std::string(20'000, 'x')}}},
  };
  auto txn = *log_->NewProducer({.transactional_id = "paths"});
  // Flushed (reserved) records, then unflushed ones in the same transaction.
  ASSERT_TRUE(txn->BeginTransaction().ok());
  for (size_t i = 0; i < 2; ++i) ASSERT_TRUE(txn->Produce(sent[i]).ok());
  ASSERT_TRUE(txn->Flush(absl::Seconds(5)).ok());
  for (size_t i = 2; i < sent.size(); ++i) ASSERT_TRUE(txn->Produce(sent[i]).ok());
  ASSERT_TRUE(txn->CommitTransaction().ok());
  // The plain producer's batched write.
  auto plain = *log_->NewProducer({});
  for (const OutgoingRecord& r : sent) ASSERT_TRUE(plain->Produce(r).ok());
  ASSERT_TRUE(plain->Flush(absl::Seconds(5)).ok());

  std::vector<Record> all = ReadAll("t", 1);
  ASSERT_EQ(all.size(), 2 * sent.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const OutgoingRecord& want = sent[i % sent.size()];
    EXPECT_EQ(all[i].offset, static_cast<int64_t>(i));
    EXPECT_EQ(all[i].key, want.key) << i;
    EXPECT_EQ(all[i].value, want.value) << i;
    EXPECT_EQ(all[i].headers, want.headers) << i;
  }
}

TEST_F(AppendPathTest, BatchesLargerThanTheKeptScratchAndSmallOnesAfterThemReadBack) {
  ASSERT_TRUE(log_->admin().CreateTopics({{.name = "t", .partitions = 1}}).ok());
  auto producer = *log_->NewProducer({.transactional_id = "big"});
  // ~12 MB: past what a writing thread keeps between appends (8 MiB), then small ones that
  // reuse (or re-create) the thread's batch.
  const std::string big(900'000, 'b');
  ASSERT_TRUE(producer->BeginTransaction().ok());
  for (int i = 0; i < 14; ++i) {
    ASSERT_TRUE(producer->Produce({.topic = "t", .key = absl::StrCat(i), .value = big}).ok());
  }
  ASSERT_TRUE(producer->CommitTransaction().ok());
  for (int t = 0; t < 3; ++t) {
    ASSERT_TRUE(producer->BeginTransaction().ok());
    ASSERT_TRUE(producer->Produce({.topic = "t", .key = "small", .value = absl::StrCat(t)}).ok());
    ASSERT_TRUE(producer->CommitTransaction().ok());
  }
  std::vector<Record> all = ReadAll("t", 1);
  ASSERT_EQ(all.size(), 17u);
  for (int i = 0; i < 14; ++i) {
    EXPECT_EQ(all[i].key, absl::StrCat(i));
    EXPECT_EQ(all[i].value, big);
  }
  for (int t = 0; t < 3; ++t) EXPECT_EQ(all[14 + t].value, absl::StrCat(t));
}

TEST_F(AppendPathTest, CommittedRecordsRefilledByTheNextTransactionCarryNothingOver) {
  // A transactional producer keeps its committed records and refills them with the next
  // transaction's: nothing of the old ones (key, headers, topic, partition, callback) may
  // survive, and the callbacks' captures are released at the commit.
  ASSERT_TRUE(log_->admin()
                  .CreateTopics({{.name = "a", .partitions = 2}, {.name = "b", .partitions = 1}})
                  .ok());
  auto producer = *log_->NewProducer({.transactional_id = "refill"});
  auto capture = std::make_shared<int>(7);
  int delivered = 0;
  ASSERT_TRUE(producer->BeginTransaction().ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(producer
                    ->Produce({.topic = "a",
                               .key = std::string(40, 'k'),
                               .value = std::string(i == 0 ? 100'000 : 300, 'v'),
                               .headers = {{"h", std::string(50, 'x')}},
                               .partition = 1},
                              [capture, &delivered](auto d) { delivered += d.ok(); })
                    .ok());
  }
  ASSERT_TRUE(producer->CommitTransaction().ok());
  EXPECT_EQ(delivered, 4);
  EXPECT_EQ(capture.use_count(), 1);  // the kept records hold no callbacks
  // Fewer, smaller records to another topic, keyless and without headers; then more than
  // were kept.
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(producer->BeginTransaction().ok());
    for (int i = 0; i < (round == 0 ? 2 : 6); ++i) {
      ASSERT_TRUE(producer->Produce({.topic = "b", .value = absl::StrCat(round, "-", i)}).ok());
    }
    ASSERT_TRUE(producer->CommitTransaction().ok());
  }
  std::vector<Record> b = ReadAll("b", 1);
  ASSERT_EQ(b.size(), 8u);
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b[i].topic, "b");
    EXPECT_EQ(b[i].partition, 0);
    EXPECT_EQ(b[i].key, "");
    EXPECT_TRUE(b[i].headers.empty()) << i;
    EXPECT_EQ(b[i].value, i < 2 ? absl::StrCat("0-", i) : absl::StrCat("1-", i - 2));
  }
  std::vector<Record> a = ReadAll("a", 2);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].value.size(), 100'000u);
}

TEST_F(AppendPathTest, ProducerInterleavingManyTopicsWritesEachWhereItBelongs) {
  // More topics than a producer caches, written round robin in one transaction.
  constexpr int kTopics = 11;
  std::vector<TopicSpec> specs;
  for (int t = 0; t < kTopics; ++t)
    specs.push_back({.name = absl::StrCat("t", t), .partitions = 2});
  ASSERT_TRUE(log_->admin().CreateTopics(specs).ok());
  auto producer = *log_->NewProducer({.transactional_id = "many"});
  std::vector<absl::StatusOr<TopicPartitionOffset>> delivered;
  ASSERT_TRUE(producer->BeginTransaction().ok());
  for (int i = 0; i < 5 * kTopics; ++i) {
    ASSERT_TRUE(producer
                    ->Produce({.topic = absl::StrCat("t", i % kTopics),
                               .value = absl::StrCat(i),
                               .partition = (i / kTopics) % 2},
                              [&](auto d) { delivered.push_back(std::move(d)); })
                    .ok());
  }
  ASSERT_TRUE(producer->CommitTransaction().ok());
  ASSERT_EQ(delivered.size(), 5u * kTopics);
  for (int t = 0; t < kTopics; ++t) {
    std::vector<Record> all = ReadAll(absl::StrCat("t", t), 2);
    ASSERT_EQ(all.size(), 5u) << "topic t" << t;
    std::map<int32_t, int64_t> next;
    for (const Record& r : all) {
      int i = std::stoi(r.value);
      EXPECT_EQ(i % kTopics, t);
      EXPECT_EQ(r.partition, (i / kTopics) % 2);
      EXPECT_EQ(r.offset, next[r.partition]++);
    }
  }
}

TEST_F(AppendPathTest, CachedTopicDeletedAndRecreatedIsWrittenInItsNewIncarnation) {
  ASSERT_TRUE(log_->admin().CreateTopics({{.name = "t", .partitions = 1}}).ok());
  auto producer = *log_->NewProducer({.transactional_id = "again"});
  ASSERT_TRUE(producer->BeginTransaction().ok());
  ASSERT_TRUE(producer->Produce({.topic = "t", .value = "old"}).ok());
  ASSERT_TRUE(producer->CommitTransaction().ok());

  ASSERT_TRUE(log_->admin().DeleteTopics({"t"}).ok());
  ASSERT_TRUE(producer->BeginTransaction().ok());
  EXPECT_EQ(producer->Produce({.topic = "t", .value = "nowhere"}).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(producer->AbortTransaction().ok());

  ASSERT_TRUE(log_->admin().CreateTopics({{.name = "t", .partitions = 2}}).ok());
  ASSERT_TRUE(producer->BeginTransaction().ok());
  ASSERT_TRUE(producer->Produce({.topic = "t", .value = "new", .partition = 1}).ok());
  ASSERT_TRUE(producer->CommitTransaction().ok());
  std::vector<Record> all = ReadAll("t", 2);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].value, "new");
  EXPECT_EQ(all[0].partition, 1);
  EXPECT_EQ(all[0].offset, 0);
}

}  // namespace
}  // namespace leftfold::internal::log::embedded
