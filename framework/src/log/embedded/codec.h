// Byte layout of the embedded log's RocksDB keys and values. Internal to log/embedded.
//
//   std::string key = RecordKey(topic_id, partition, offset);   // sorts by (topic, partition,
//   offset) std::string value; EncodeRecordValue(timestamp_ms, key, value, headers, &value); Record
//   r; bool ok = DecodeRecordValue(value, &r);
//
// Keys use big-endian fixed-width integers so RocksDB's bytewise order is numeric order and a
// prefix scan reads a partition in offset order. Values use varint lengths (compact, no
// per-record schema). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "log/log.h"

namespace leftfold::internal::log::embedded {

// records column family: topic id (4) | partition (4) | offset (8), all big-endian.
inline constexpr size_t kRecordKeySize = 16;
void AppendRecordKey(uint32_t topic_id, int32_t partition, int64_t offset, std::string* out);
std::string RecordKey(uint32_t topic_id, int32_t partition, int64_t offset);
// Decodes a records-CF key; false when `key` is not one.
bool ParseRecordKey(std::string_view key, uint32_t* topic_id, int32_t* partition, int64_t* offset);

// records column family value: varint timestamp | len key | len value | varint n | n x (k, v).
void EncodeRecordValue(int64_t timestamp_ms, std::string_view key, std::string_view value,
                       const std::vector<Header>& headers, std::string* out);
// Fills key, value, headers and timestamp_ms of `out`; false on corrupt input.
bool DecodeRecordValue(std::string_view in, Record* out);

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
