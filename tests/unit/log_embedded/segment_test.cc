// The embedded log's segment layout: one RocksDB key per commit's run of offsets of a partition.
// Reading from any offset (mid-segment, across segment boundaries and gaps), segments split at
// their size cap, the end offset found again after a restart, a directory of the first
// (one-key-per-record) layout refused and one of the second (one family of segments for every
// partition) moved into a family per partition.
#include <algorithm>
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
#include "rocksdb/write_batch.h"
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

// The second layout: topic metadata in the default family, every partition's segments in one
// family "segments", committed offsets in "offsets".
void WriteSecondLayout(const std::string& dir) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, {}}, {"segments", {}}, {"offsets", {}}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir, families, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteBatch batch;
  batch.Put(handles[0], "topic/t", EncodeTopicMeta({.id = 3, .partitions = 2}));
  batch.Put(handles[0], "next_topic_id", EncodeOffset(5));
  // Partition 0: offsets 0-1 and (after a gap) 4-6; partition 1: offsets 0-2.
  batch.Put(handles[1], RecordKey(3, 0, 0), EncodeSegment({"a0", "a1"}));
  batch.Put(handles[1], RecordKey(3, 0, 4), EncodeSegment({"a4", "a5", "a6"}));
  batch.Put(handles[1], RecordKey(3, 1, 0), EncodeSegment({"b0", "b1", "b2"}));
  // A deleted topic's records, left without metadata: not carried over.
  batch.Put(handles[1], RecordKey(4, 0, 0), EncodeSegment({"gone"}));
  batch.Put(handles[2], GroupOffsetKey("g", 3, 1), EncodeOffset(2));
  ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &batch).ok());
  for (rocksdb::ColumnFamilyHandle* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
}

std::vector<std::string> Families(const std::string& dir) {
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(SegmentLayoutTest, SharedSegmentsFamilyIsMovedIntoOneFamilyPerPartition) {
  const std::string dir = leftfold::testing::MakeTempDir("embedded-second-layout");
  WriteSecondLayout(dir);
  for (int open = 0; open < 2; ++open) {  // moved once, then read as it is
    auto log = OpenEmbeddedLog({.embedded_dir = dir});
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ(Families(dir), (std::vector<std::string>{"default", "offsets", "p/3/0", "p/3/1"}));
    EXPECT_EQ(*(*log)->admin().EndOffsets("t", Isolation::kReadCommitted),
              (std::vector<int64_t>{7, 3}));
    auto consumer = (*log)->NewConsumer({.group_id = "g"});
    ASSERT_TRUE((*consumer)->Assign({{{"t", 0}, 0}, {{"t", 1}, 0}}).ok());
    auto committed = (*consumer)->Committed({{"t", 1}}, absl::Seconds(5));
    ASSERT_TRUE(committed.ok()) << committed.status();
    ASSERT_EQ(committed->size(), 1u);
    EXPECT_EQ((*committed)[0].offset, 2);
    std::vector<std::string> got;
    while (got.size() < 8) {
      auto batch = (*consumer)->Poll(100, absl::Seconds(5));
      ASSERT_TRUE(batch.ok()) << batch.status();
      ASSERT_FALSE(batch->empty());
      for (const Record& r : *batch) {
        got.push_back(absl::StrCat(r.partition, "@", r.offset, "=", r.value));
      }
    }
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::string>{"0@0=a0", "0@1=a1", "0@4=a4", "0@5=a5", "0@6=a6",
                                             "1@0=b0", "1@1=b1", "1@2=b2"}));
  }
  // Topic ids go on from the stored next id.
  auto log = OpenEmbeddedLog({.embedded_dir = dir});
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->admin().CreateTopics({{.name = "u", .partitions = 1}}).ok());
  EXPECT_EQ(Families(dir),
            (std::vector<std::string>{"default", "offsets", "p/3/0", "p/3/1", "p/5/0"}));
}

TEST(SegmentLayoutTest, FamiliesWithoutATopicAreDropped) {
  const std::string dir = leftfold::testing::MakeTempDir("embedded-drop-families");
  auto log = OpenEmbeddedLog({.embedded_dir = dir});
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->admin().CreateTopics({{.name = "t", .partitions = 2}}).ok());
  EXPECT_EQ(Families(dir), (std::vector<std::string>{"default", "offsets", "p/1/0", "p/1/1"}));
  ASSERT_TRUE((*log)->admin().DeleteTopics({"t"}).ok());
  EXPECT_EQ(Families(dir), (std::vector<std::string>{"default", "offsets"}));
  log->reset();
  {
    // A family whose topic's metadata never got written (a create cut short by a crash).
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"offsets", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* orphan = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "p/9/0", &orphan).ok());
    handles.push_back(orphan);
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    }
    ASSERT_TRUE(db->Close().ok());
  }
  EXPECT_EQ(Families(dir), (std::vector<std::string>{"default", "offsets", "p/9/0"}));
  log = OpenEmbeddedLog({.embedded_dir = dir});
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(Families(dir), (std::vector<std::string>{"default", "offsets"}));
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
