#include "log/embedded/codec.h"

namespace leftfold::internal::log::embedded {
namespace {

void PutBigEndian(uint64_t v, int bytes, std::string* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBigEndian(std::string_view in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

void PutVarint(uint64_t v, std::string* out) {
  // Encoded on the stack and appended once: push_back per byte re-checks capacity each time.
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    uint8_t byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

void PutBytes(std::string_view bytes, std::string* out) {
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

bool GetBytes(std::string_view* in, std::string* out) {
  uint64_t n = 0;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  out->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

void AppendVarint(uint64_t v, std::string* out) { PutVarint(v, out); }

SegmentReader::SegmentReader(std::string_view value, int64_t first_offset)
    : rest_(value), first_(first_offset) {
  ok_ = GetVarint(&rest_, &count_) && count_ <= rest_.size();  // each record takes >= 1 byte
}

bool SegmentReader::SkipTo(int64_t offset) {
  while (ok_ && read_ < count_ && next_offset() < offset) {
    uint64_t len = 0;
    if (!GetVarint(&rest_, &len) || len > rest_.size()) return ok_ = false;
    rest_.remove_prefix(len);
    ++read_;
  }
  return ok_;
}

bool SegmentReader::Next(Record* out) {
  uint64_t len = 0;
  if (!has_next() || !GetVarint(&rest_, &len) || len > rest_.size() ||
      !DecodeRecordValue(rest_.substr(0, len), out)) {
    return ok_ = false;
  }
  out->offset = next_offset();
  rest_.remove_prefix(len);
  ++read_;
  return true;
}

void AppendRecordKey(uint32_t topic_id, int32_t partition, int64_t offset, std::string* out) {
  PutBigEndian(topic_id, 4, out);
  PutBigEndian(static_cast<uint32_t>(partition), 4, out);
  PutBigEndian(static_cast<uint64_t>(offset), 8, out);
}

std::string RecordKey(uint32_t topic_id, int32_t partition, int64_t offset) {
  std::string key;
  key.reserve(kRecordKeySize);
  AppendRecordKey(topic_id, partition, offset, &key);
  return key;
}

bool ParseRecordKey(std::string_view key, uint32_t* topic_id, int32_t* partition, int64_t* offset) {
  if (key.size() != kRecordKeySize) return false;
  *topic_id = static_cast<uint32_t>(GetBigEndian(key, 4));
  *partition = static_cast<int32_t>(GetBigEndian(key.substr(4), 4));
  *offset = static_cast<int64_t>(GetBigEndian(key.substr(8), 8));
  return true;
}

void EncodeRecordValue(int64_t timestamp_ms, std::string_view key, std::string_view value,
                       const std::vector<Header>& headers, std::string* out) {
  size_t size = 24 + key.size() + value.size();
  for (const Header& h : headers) size += 10 + h.key.size() + h.value.size();
  out->reserve(out->size() + size);
  PutVarint(static_cast<uint64_t>(timestamp_ms), out);
  PutBytes(key, out);
  PutBytes(value, out);
  PutVarint(headers.size(), out);
  for (const Header& h : headers) {
    PutBytes(h.key, out);
    PutBytes(h.value, out);
  }
}

bool DecodeRecordValue(std::string_view in, Record* out) {
  uint64_t ts = 0;
  uint64_t n = 0;
  if (!GetVarint(&in, &ts) || !GetBytes(&in, &out->key) || !GetBytes(&in, &out->value) ||
      !GetVarint(&in, &n) || n > in.size()) {
    return false;
  }
  out->timestamp_ms = static_cast<int64_t>(ts);
  out->headers.resize(n);
  for (Header& h : out->headers) {
    if (!GetBytes(&in, &h.key) || !GetBytes(&in, &h.value)) return false;
  }
  return in.empty();
}

std::string GroupOffsetKey(std::string_view group, uint32_t topic_id, int32_t partition) {
  std::string key;
  PutBytes(group, &key);
  PutBigEndian(topic_id, 4, &key);
  PutBigEndian(static_cast<uint32_t>(partition), 4, &key);
  return key;
}

std::string EncodeOffset(int64_t offset) {
  std::string out;
  PutBigEndian(static_cast<uint64_t>(offset), 8, &out);
  return out;
}

bool DecodeOffset(std::string_view in, int64_t* offset) {
  if (in.size() != 8) return false;
  *offset = static_cast<int64_t>(GetBigEndian(in, 8));
  return true;
}

std::string EncodeTopicMeta(const TopicMeta& meta) {
  std::string out;
  PutVarint(meta.id, &out);
  PutVarint(static_cast<uint32_t>(meta.partitions), &out);
  PutVarint(meta.configs.size(), &out);
  for (const auto& [k, v] : meta.configs) {
    PutBytes(k, &out);
    PutBytes(v, &out);
  }
  return out;
}

bool DecodeTopicMeta(std::string_view in, TopicMeta* meta) {
  uint64_t id = 0, partitions = 0, n = 0;
  if (!GetVarint(&in, &id) || !GetVarint(&in, &partitions) || !GetVarint(&in, &n)) return false;
  meta->id = static_cast<uint32_t>(id);
  meta->partitions = static_cast<int32_t>(partitions);
  meta->configs.clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!GetBytes(&in, &k) || !GetBytes(&in, &v)) return false;
    meta->configs.emplace(std::move(k), std::move(v));
  }
  return in.empty();
}

}  // namespace leftfold::internal::log::embedded
