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
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "log/log.h"

namespace leftfold::internal::log::embedded {

// Segment key, in the partition's own column family (store.cc): topic id (4) | partition (4) |
// first offset (8), all big-endian.
// One key holds a segment: the records of consecutive offsets [first, first + count) of one
// partition written by one commit (Kafka's record batch), so the memtable, the WAL and the
// flush pay per segment, not per record.
inline constexpr size_t kRecordKeySize = 16;
void AppendRecordKey(uint32_t topic_id, int32_t partition, int64_t offset, std::string* out);
std::string RecordKey(uint32_t topic_id, int32_t partition, int64_t offset);
// Decodes a segment key; false when `key` is not one.
bool ParseRecordKey(std::string_view key, uint32_t* topic_id, int32_t* partition, int64_t* offset);

// One record's encoding inside a segment: varint timestamp | len key | len value | varint n |
// n x (len k, len v).
void EncodeRecordValue(int64_t timestamp_ms, std::string_view key, std::string_view value,
                       const std::vector<Header>& headers, std::string* out);
// Fills key, value, headers and timestamp_ms of `out`; false on corrupt input.
bool DecodeRecordValue(std::string_view in, Record* out);

// Segment value: varint count | count x (varint len | record encoding).
// Appends the varint to `out` (the store writes segments as gathered slices).
void AppendVarint(uint64_t v, std::string* out);
inline constexpr size_t kMaxVarintBytes = 10;

// Varints written straight into a buffer with room for kMaxVarintBytes: returns the end.
inline char* EncodeVarint(uint64_t v, char* p) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
inline size_t VarintLength(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Lays out one segment value as pieces for a gathered write (RocksDB SliceParts), so that a
// record's bytes are copied once, into the WriteBatch, instead of being encoded into a value
// first. Framing, headers and keys or values up to kInlineBytes are copied into a scratch buffer
// (a few large pieces beat many tiny ones: each piece costs the WriteBatch a call); larger keys
// and values are pieces of their own, pointing at the caller's strings. The pieces concatenated
// are byte for byte AppendVarint(count) + per record AppendVarint(len) + EncodeRecordValue.
//
//   std::vector<rocksdb::Slice> pieces;
//   SegmentGather<rocksdb::Slice> gather(scratch, &pieces, timestamp_ms);  // one per write
//   gather.Begin(n);  for (...) gather.Add(key, value, headers);  gather.End();
//
// `Piece` is constructible from (const char*, size_t). The scratch, keys and values must stay
// unchanged while the pieces are used. One thread.
template <typename Piece>
class SegmentGather {
 public:
  static constexpr size_t kInlineBytes = 512;

  // Scratch bytes one record may take; reserve their sum plus kMaxVarintBytes per segment.
  static size_t ScratchBound(std::string_view key, std::string_view value,
                             const std::vector<Header>& headers) {
    size_t n = 5 * kMaxVarintBytes;
    if (key.size() <= kInlineBytes) n += key.size();
    if (value.size() <= kInlineBytes) n += value.size();
    for (const Header& h : headers) n += 2 * kMaxVarintBytes + h.key.size() + h.value.size();
    return n;
  }

  // Every record gets `timestamp_ms` (the embedded log stamps a whole write with one time), so
  // its varint is encoded once here.
  SegmentGather(char* scratch, std::vector<Piece>* pieces, int64_t timestamp_ms)
      : at_(scratch), open_(scratch), pieces_(pieces) {
    ts_size_ = static_cast<size_t>(EncodeVarint(static_cast<uint64_t>(timestamp_ms), ts_) - ts_);
  }

  // Starts a segment of `count` records.
  void Begin(uint64_t count) { at_ = EncodeVarint(count, at_); }

  void Add(std::string_view key, std::string_view value, const std::vector<Header>& headers) {
    // The record's length leads: computed from the sizes, nothing is encoded twice.
    size_t size = ts_size_ + VarintLength(key.size()) + key.size() + VarintLength(value.size()) +
                  value.size() + VarintLength(headers.size());
    for (const Header& h : headers) {
      size +=
          VarintLength(h.key.size()) + h.key.size() + VarintLength(h.value.size()) + h.value.size();
    }
    at_ = EncodeVarint(size, at_);
    std::memcpy(at_, ts_, kMaxVarintBytes);  // fixed size: a plain store; the bound has room
    at_ += ts_size_;
    at_ = EncodeVarint(key.size(), at_);
    Bytes(key);
    at_ = EncodeVarint(value.size(), at_);
    Bytes(value);
    at_ = EncodeVarint(headers.size(), at_);
    for (const Header& h : headers) {
      at_ = EncodeVarint(h.key.size(), at_);
      Copy(h.key);
      at_ = EncodeVarint(h.value.size(), at_);
      Copy(h.value);
    }
  }

  // Ends the segment: its pieces are the ones added since Begin. The next segment continues in
  // the scratch after this one.
  void End() { Close(); }

  // First scratch byte not used yet.
  char* scratch_end() const { return at_; }

 private:
  void Copy(std::string_view bytes) {
    if (!bytes.empty()) std::memcpy(at_, bytes.data(), bytes.size());
    at_ += bytes.size();
  }
  void Bytes(std::string_view bytes) {
    if (bytes.size() <= kInlineBytes) return Copy(bytes);
    Close();
    pieces_->emplace_back(bytes.data(), bytes.size());
  }
  void Close() {
    if (at_ != open_) pieces_->emplace_back(open_, static_cast<size_t>(at_ - open_));
    open_ = at_;
  }

  char ts_[kMaxVarintBytes];
  size_t ts_size_ = 0;
  char* at_;    // next scratch byte
  char* open_;  // start of the scratch piece not yet closed
  std::vector<Piece>* pieces_;
};

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
