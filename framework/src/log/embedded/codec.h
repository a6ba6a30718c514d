// Byte layout of the embedded log's RocksDB keys and values. Internal to log/embedded.
//
//   std::string key = RecordKey(topic_id, partition, first_offset);  // sorts by (topic,
//                                                                     // partition, offset)
//   std::string record;
//   EncodeRecordValue(timestamp_ms, key, value, headers, &record);   // one record
//   // A segment value: AppendVarint(count), then per record AppendVarint(size) + the record.
//   SegmentReader segment(value, first_offset);
//   segment.SkipTo(from);
//   Record r;
//   while (segment.has_next() && segment.Next(&r)) ...
//
// Keys use big-endian fixed-width integers so RocksDB's bytewise order is numeric order and a
// prefix scan reads a partition in offset order. Values use varint lengths (compact, no
// per-record schema). Pure functions, thread-safe (a SegmentReader is used by one thread).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "log/log.h"

namespace leftfold::internal::log::embedded {

// segments column family key: topic id (4) | partition (4) | first offset (8), all big-endian.
// One key holds a segment: the records of consecutive offsets [first, first + count) of one
// partition written by one commit (Kafka's record batch), so the memtable, the WAL and the
// flush pay per segment, not per record.
inline constexpr size_t kRecordKeySize = 16;
void AppendRecordKey(uint32_t topic_id, int32_t partition, int64_t offset, std::string* out);
std::string RecordKey(uint32_t topic_id, int32_t partition, int64_t offset);
// Decodes a records-CF key; false when `key` is not one.
bool ParseRecordKey(std::string_view key, uint32_t* topic_id, int32_t* partition, int64_t* offset);

// One record's encoding inside a segment: varint timestamp | len key | len value | varint n |
// n x (len k, len v).
void EncodeRecordValue(int64_t timestamp_ms, std::string_view key, std::string_view value,
                       const std::vector<Header>& headers, std::string* out);
// Fills key, value, headers and timestamp_ms of `out`; false on corrupt input.
bool DecodeRecordValue(std::string_view in, Record* out);

// segments column family value: varint count | count x (varint len | record encoding).
// Appends the varint to `out` (the store writes segments as gathered slices).
void AppendVarint(uint64_t v, std::string* out);
inline constexpr size_t kMaxVarintBytes = 10;

// Walks one segment's records in offset order.
//   SegmentReader seg(it->value(), first_offset);
//   if (!seg.ok()) ...corrupt...;  seg.SkipTo(from);  while (seg.has_next()) seg.Next(&record);
class SegmentReader {
 public:
  SegmentReader(std::string_view value, int64_t first_offset);
  // False when the header is corrupt.
  bool ok() const { return ok_; }
  int64_t first_offset() const { return first_; }
  // One past the segment's last offset.
  int64_t end_offset() const { return first_ + static_cast<int64_t>(count_); }
  // Offset of the record Next will return.
  int64_t next_offset() const { return first_ + static_cast<int64_t>(read_); }
  bool has_next() const { return ok_ && read_ < count_; }
  // Skips records below `offset` without decoding them; false on corrupt input.
  bool SkipTo(int64_t offset);
  // Decodes the next record into key, value, headers, timestamp_ms and offset of `out`; false on
  // corrupt input.
  bool Next(Record* out);

 private:
  std::string_view rest_;
  int64_t first_;
  uint64_t count_ = 0;
  uint64_t read_ = 0;
  bool ok_ = false;
};

// offsets column family: len group | topic id (4) | partition (4) -> fixed 8-byte offset.
std::string GroupOffsetKey(std::string_view group, uint32_t topic_id, int32_t partition);
std::string EncodeOffset(int64_t offset);
bool DecodeOffset(std::string_view in, int64_t* offset);

// default column family: "topic/" + name -> topic metadata.
struct TopicMeta {
  uint32_t id = 0;
  int32_t partitions = 0;
  std::map<std::string, std::string> configs;
};
std::string EncodeTopicMeta(const TopicMeta& meta);
bool DecodeTopicMeta(std::string_view in, TopicMeta* meta);

}  // namespace leftfold::internal::log::embedded
