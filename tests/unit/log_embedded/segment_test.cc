// The embedded log's segment layout: one RocksDB key per commit's run of offsets of a partition.
// Reading from any offset (mid-segment, across segment boundaries and gaps), segments split at
// their size cap, the end offset found again after a restart, and a directory of the old
// one-key-per-record layout refused.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "log/embedded/codec.h"
#include "log/embedded/embedded_log.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "support/test_env.h"

namespace leftfold::internal::log::embedded {
namespace {

std::string EncodeSegment(const std::vector<std::string>& values) {
  std::string segment;
  AppendVarint(values.size(), &segment);
  for (const std::string& v : values) {
    std::string record;
    EncodeRecordValue(/*timestamp_ms=*/7, absl::StrCat("k", v), v, {{"h", v}}, &record);
    AppendVarint(record.size(), &segment);
    segment += record;
  }
  return segment;
}

TEST(SegmentReaderTest, ReadsSkipsAndNumbersRecords) {
  const std::string segment = EncodeSegment({"a", "b", "c", "d"});
  SegmentReader reader(segment, /*first_offset=*/10);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(reader.end_offset(), 14);
  ASSERT_TRUE(reader.SkipTo(12));
  Record r;
  ASSERT_TRUE(reader.Next(&r));
  EXPECT_EQ(r.offset, 12);
  EXPECT_EQ(r.value, "c");
  EXPECT_EQ(r.key, "kc");
  EXPECT_EQ(r.timestamp_ms, 7);
  EXPECT_EQ(r.headers, (std::vector<Header>{{"h", "c"}}));
  ASSERT_TRUE(reader.Next(&r));
  EXPECT_EQ(r.offset, 13);
  EXPECT_FALSE(reader.has_next());
  // Skipping below the current position or past the end is harmless.
  EXPECT_TRUE(reader.SkipTo(0));
  EXPECT_TRUE(reader.SkipTo(100));
}

TEST(SegmentReaderTest, RejectsTruncatedSegments) {
  const std::string segment = EncodeSegment({"a", "b"});
  for (size_t cut = 0; cut < segment.size(); ++cut) {
    SegmentReader reader(std::string_view(segment).substr(0, cut), 0);
    Record r;
    bool all_read = reader.ok();
    while (all_read && reader.has_next()) all_read = reader.Next(&r);
    EXPECT_FALSE(all_read && r.offset == 1) << "cut at " << cut;
  }
}

class SegmentLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = leftfold::testing::MakeTempDir("embedded-segments");
    Open();
    ASSERT_TRUE(log_->admin().CreateTopics({{.name = "t", .partitions = 1}}).ok());
  }
  void Open() {
    log_.reset();
    auto log = OpenEmbeddedLog({.embedded_dir = dir_});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }
  // One committed transaction of `n` records with values "<prefix><i>" on partition 0.
  void Commit(const std::string& prefix, int n, size_t value_bytes = 0) {
    auto producer = *log_->NewProducer({.transactional_id = "seg"});
    ASSERT_TRUE(producer->BeginTransaction().ok());
    for (int i = 0; i < n; ++i) {
      std::string value = absl::StrCat(prefix, i);
      value.resize(std::max(value.size(), value_bytes), '.');
      ASSERT_TRUE(producer->Produce({.topic = "t", .value = value, .partition = 0}).ok());
    }
    ASSERT_TRUE(producer->CommitTransaction().ok());
  }
  // Reads [from, end) in Polls of at most `max` records.
  std::vector<Record> ReadFrom(int64_t from, size_t max) {
    auto consumer = *log_->NewConsumer({});
    EXPECT_TRUE(consumer->Assign({{{"t", 0}, from}}).ok());
    int64_t end = (*log_->admin().EndOffsets("t", Isolation::kReadCommitted))[0];
    std::vector<Record> out;
    while (*consumer->Position({"t", 0}) < end) {
      auto batch = consumer->Poll(max, absl::Seconds(5));
      EXPECT_TRUE(batch.ok()) << batch.status();
      if (!batch.ok() || batch->empty()) break;
      EXPECT_LE(batch->size(), max);
      out.insert(out.end(), batch->begin(), batch->end());
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<Log> log_;
};

TEST_F(SegmentLogTest, ReadsFromAnyOffsetAcrossSegmentsAndGaps) {
  Commit("a", 50);  // offsets 0..49, one segment
  {
    // A flushed then aborted transaction: offsets 50..59 become a gap.
    auto producer = *log_->NewProducer({.transactional_id = "gap"});
    ASSERT_TRUE(producer->BeginTransaction().ok());
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(producer->Produce({.topic = "t", .value = "aborted", .partition = 0}).ok());
    }
    ASSERT_TRUE(producer->Flush(absl::Seconds(5)).ok());
    ASSERT_TRUE(producer->AbortTransaction().ok());
  }
  Commit("b", 30);  // offsets 60..89
  std::vector<int64_t> expected;
  for (int64_t o = 0; o < 50; ++o) expected.push_back(o);
  for (int64_t o = 60; o < 90; ++o) expected.push_back(o);

  for (int64_t from : {0, 1, 37, 49, 50, 55, 59, 60, 61, 89}) {
    for (size_t max : {1, 3, 1000}) {
      std::vector<Record> got = ReadFrom(from, max);
      std::vector<int64_t> want;
      for (int64_t o : expected) {
        if (o >= from) want.push_back(o);
      }
      std::vector<int64_t> offsets;
      for (const Record& r : got) {
        offsets.push_back(r.offset);
        EXPECT_EQ(r.value,
                  r.offset < 50 ? absl::StrCat("a", r.offset) : absl::StrCat("b", r.offset - 60));
        EXPECT_EQ(r.topic, "t");
        EXPECT_EQ(r.partition, 0);
      }
      EXPECT_EQ(offsets, want) << "from " << from << " max " << max;
    }
  }
}

TEST_F(SegmentLogTest, LargeTransactionsSplitIntoSegmentsAndSurviveRestart) {
  // 600 records of 1 KiB: more than two 256 KiB segments in one commit.
  Commit("x", 600, 1024);
  Open();
  EXPECT_EQ((*log_->admin().EndOffsets("t", Isolation::kReadCommitted))[0], 600);
  for (int64_t from : {0, 250, 255, 256, 257, 511, 512, 599}) {
    std::vector<Record> got = ReadFrom(from, 7);
    ASSERT_EQ(got.size(), static_cast<size_t>(600 - from)) << "from " << from;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].offset, from + static_cast<int64_t>(i));
      ASSERT_EQ(got[i].value.substr(0, got[i].value.find('.')), absl::StrCat("x", got[i].offset));
      ASSERT_EQ(got[i].value.size(), 1024u);
    }
  }
  // Appends continue after the last segment's end.
  Commit("y", 1);
  std::vector<Record> tail = ReadFrom(600, 10);
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].offset, 600);
  EXPECT_EQ(tail[0].value, "y0");
}

TEST(SegmentLayoutTest, OldOneKeyPerRecordDirectoryIsRefused) {
  const std::string dir = leftfold::testing::MakeTempDir("embedded-old-layout");
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "records", &cf).ok());
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(cf).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  auto log = OpenEmbeddedLog({.embedded_dir = dir});
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(log.status().message().find("old one-key-per-record layout"), std::string::npos)
      << log.status();
}

}  // namespace
}  // namespace leftfold::internal::log::embedded
