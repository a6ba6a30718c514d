#include "log/embedded/store.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "leftfold/logging.h"
#include "log/embedded/codec.h"
#include "log/errors.h"
#include "log/spare_records.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/perf_level.h"
#include "rocksdb/slice.h"
#include "rocksdb/write_batch.h"

namespace leftfold::internal::log::embedded {
namespace {

constexpr absl::string_view kTopicPrefix = "topic/";
constexpr absl::string_view kNextTopicIdKey = "next_topic_id";
// Each partition's records are a column family of their own, "p/<topic id>/<partition>": its
// keys only ever grow, so flushed files never overlap and compaction moves them down a level
// without rewriting them. (In one family for all partitions every flushed file spanned them all,
// and compactions rewrote the log again and again: 12% of a sustained run's CPU.)
constexpr absl::string_view kPartitionFamilyPrefix = "p/";
// The second layout: every partition's segments in one family. Migrated at open.
constexpr absl::string_view kLegacySegmentsFamily = "segments";
// Records a migration copies per write.
constexpr size_t kMigrationBatchBytes = 32 << 20;

std::string PartitionFamilyName(uint32_t topic_id, int32_t partition) {
  return absl::StrCat(kPartitionFamilyPrefix, topic_id, "/", partition);
}
// A segment closes at the first record that brings it past this many value bytes: big enough to
// make the per-key cost vanish, small enough that a reader starting mid-segment skips little.
constexpr size_t kSegmentBytes = 256 << 10;

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  // A failed RocksDB write leaves the DB read-only until reopened: nothing to retry here.
  return absl::InternalError(absl::StrCat("embedded log: ", what, ": ", s.ToString()));
}

// RocksDB counts every key comparison into a thread-local perf context by default (a TLS lookup
// per comparison in the shared library: ~15% of an append). Nothing reads those counters, so
// each writing thread turns them off once.
void DisablePerfCounters() {
  thread_local bool disabled = false;
  if (!disabled) {
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
    disabled = true;
  }
}

std::string_view View(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

// Buffers one append builds its WriteBatch in, kept per writing thread: a transaction of 2,000
// records is a ~1 MB batch, and allocating (and page-faulting) that afresh per commit showed up
// in profiles. A thread that once wrote a huge batch gives the memory back after it.
struct AppendScratch {
  static constexpr size_t kKeepBytes = size_t{8} << 20;
  rocksdb::WriteBatch batch;
  // Segment framing (codec.h SegmentGather); never reallocated while pieces point into it.
  std::unique_ptr<char[]> bytes;
  size_t bytes_capacity = 0;
  std::vector<rocksdb::Slice> parts;

  void Reset(size_t batch_bytes, size_t scratch_bytes) {
    if (batch.Data().capacity() < batch_bytes) {
      batch = rocksdb::WriteBatch(batch_bytes);
    } else {
      batch.Clear();
    }
    if (bytes_capacity < scratch_bytes) {
      bytes_capacity = std::max(scratch_bytes, 2 * bytes_capacity);
      bytes = std::make_unique_for_overwrite<char[]>(bytes_capacity);
    }
  }
  void Trim() {
    if (batch.Data().capacity() > kKeepBytes) batch = rocksdb::WriteBatch();
    if (bytes_capacity > kKeepBytes) {
      bytes.reset();
      bytes_capacity = 0;
    }
    if (parts.capacity() > kKeepBytes / sizeof(rocksdb::Slice)) {
      std::vector<rocksdb::Slice>().swap(parts);
    }
  }
};

AppendScratch& ThreadScratch() {
  thread_local AppendScratch scratch;
  return scratch;
}

// The distinct partitions of a batch, locked in (topic id, partition) order for as long as this
// lives (or until Unlock). Each slot carries the partition's next offset while locked.
class PartitionLocks {
 public:
  struct Slot {
    uint32_t topic_id;
    int32_t partition;
    TopicState* topic;
    int64_t next;
  };

  PartitionLocks(absl::Span<const PendingRecord> records,
                 const std::vector<Reservation>& reservations) {
    for (const PendingRecord& r : records) {
      // Keys spread a batch over its partitions in no order: look among the few slots seen so
      // far instead of pushing one per record and sorting them all.
      bool seen = false;
      for (size_t i = slots_.size(), checked = 0; i > 0 && checked < kLinearScan; --i, ++checked) {
        if (slots_[i - 1].topic == r.topic.get() && slots_[i - 1].partition == r.partition) {
          seen = true;
          break;
        }
      }
      if (!seen) slots_.push_back({r.topic->id, r.partition, r.topic.get(), 0});
    }
    for (const Reservation& r : reservations) {
      slots_.push_back({r.topic->id, r.partition, r.topic.get(), 0});
    }
    std::sort(slots_.begin(), slots_.end(), Less);
    slots_.erase(std::unique(slots_.begin(), slots_.end(),
                             [](const Slot& a, const Slot& b) {
                               return a.topic_id == b.topic_id && a.partition == b.partition;
                             }),
                 slots_.end());
    for (Slot& slot : slots_) {
      PartitionState& p = *slot.topic->partitions[slot.partition];
      p.mu.Lock();
      slot.next = p.next.load(std::memory_order_relaxed);
    }
  }
  ~PartitionLocks() { Unlock(); }

  void Unlock() {
    if (unlocked_) return;
    unlocked_ = true;
    for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) {
      it->topic->partitions[it->partition]->mu.Unlock();
    }
  }
  absl::Status CheckNotDeleted() const {
    for (const Slot& slot : slots_) {
      if (slot.topic->deleted) {
        return absl::NotFoundError(
            absl::StrCat("embedded log: topic '", slot.topic->name, "' was deleted"));
      }
    }
    return absl::OkStatus();
  }
  // Slot index of each record.
  std::vector<uint32_t> SlotOf(absl::Span<const PendingRecord> records) const {
    std::vector<uint32_t> slot_of(records.size());
    size_t last = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      const PendingRecord& r = records[i];
      if (slots_[last].topic != r.topic.get() || slots_[last].partition != r.partition) {
        Slot probe{r.topic->id, r.partition, nullptr, 0};
        last = std::lower_bound(slots_.begin(), slots_.end(), probe, Less) - slots_.begin();
      }
      slot_of[i] = static_cast<uint32_t>(last);
    }
    return slot_of;
  }
  // Stores each slot's next offset in its partition and recomputes the readable end.
  void Publish() {
    for (const Slot& slot : slots_) {
      PartitionState& p = *slot.topic->partitions[slot.partition];
      p.mu.AssertHeld();
      p.next.store(slot.next, std::memory_order_relaxed);
      p.UpdateEnd();
    }
  }
  size_t size() const { return slots_.size(); }
  Slot& slot(size_t i) { return slots_[i]; }

 private:
  static constexpr size_t kLinearScan = 16;
  static bool Less(const Slot& a, const Slot& b) {
    return std::tie(a.topic_id, a.partition) < std::tie(b.topic_id, b.partition);
  }
  std::vector<Slot> slots_;
  bool unlocked_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LogStore>> LogStore::Open(const std::string& dir,
                                                         const EmbeddedOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("embedded log: cannot create directory ", dir, ": ", ec.message()));
  }
  std::unique_ptr<LogStore> store(new LogStore(dir, options));

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // Producers of different partitions commit concurrently: the WAL write of one write group
  // overlaps the memtable insert of the previous one. Same guarantees (a write is in the WAL
  // and visible when Write returns). Not unordered_write: that gives up snapshot consistency
  // for little gain with our one-writer-per-partition pattern.
  db_options.enable_pipelined_write = true;
  // Every partition has a family (below), each with its memtable: these bound them all
  // together. When the memtables hold 64 MiB, the oldest is flushed: the memory of the one
  // shared family before (at 256 MiB a 1M-aggregate run's peak RSS grew by 140 MiB).
  db_options.db_write_buffer_size = 64 << 20;
  // A WAL file goes once every family with writes in it has flushed them. A family written
  // rarely (the committed offsets, a quiet partition) would keep every WAL since its first
  // write, and a restart would replay them all: past 512 MiB of WAL the families holding the
  // oldest one are flushed.
  db_options.max_total_wal_size = 512 << 20;
  rocksdb::ColumnFamilyOptions meta_options;
  auto partition_options = std::make_unique<rocksdb::ColumnFamilyOptions>();
  // Values are mostly serialized protobufs: compression buys little and costs CPU on the
  // append path. Large memtables mean fewer flushes at 500k appends/s.
  partition_options->compression = rocksdb::kNoCompression;
  partition_options->write_buffer_size = 64 << 20;
  partition_options->max_write_buffer_number = 4;
  partition_options->target_file_size_base = 64 << 20;
  // No memtable_insert_with_hint_prefix_extractor: RocksDB 7.8 reuses the point-key hints for
  // range tombstones and corrupts the memtable; with one key per segment the hint saved nothing
  // measurable anyway.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, dir, &existing).ok() &&
      std::find(existing.begin(), existing.end(), "records") != existing.end()) {
    // A directory of the first layout (one key per record, column family "records") would be
    // misread as segments: refuse it with a clear error instead.
    return absl::FailedPreconditionError(absl::StrCat(
        "embedded log: directory ", dir,
        " holds a log in the old one-key-per-record layout, which this version does not read; "
        "move it away or delete it"));
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = {
      {rocksdb::kDefaultColumnFamilyName, meta_options},
      {"offsets", meta_options},
  };
  for (const std::string& name : existing) {
    if (name == kLegacySegmentsFamily || absl::StartsWith(name, kPartitionFamilyPrefix)) {
      descriptors.emplace_back(name, *partition_options);
    }
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir, descriptors, &handles, &store->db_);
  if (!s.ok()) {
    if (absl::StrContains(s.ToString(), "lock")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "embedded log: directory ", dir,
          " is in use by another process or Log instance (RocksDB lock held): ", s.ToString()));
    }
    return FromRocks(s, absl::StrCat("open ", dir));
  }
  store->meta_cf_ = handles[0];
  store->offsets_cf_ = handles[1];
  store->partition_options_ = std::move(partition_options);
  std::map<std::string, rocksdb::ColumnFamilyHandle*> families;
  rocksdb::ColumnFamilyHandle* legacy_segments = nullptr;
  for (size_t i = 2; i < handles.size(); ++i) {
    if (descriptors[i].name == kLegacySegmentsFamily) {
      legacy_segments = handles[i];
    } else {
      families[descriptors[i].name] = handles[i];
    }
  }
  absl::Status loaded = store->Load(std::move(families), legacy_segments);
  if (!loaded.ok()) return loaded;
  return store;
}

LogStore::LogStore(std::string dir, const EmbeddedOptions& options)
    : dir_(std::move(dir)), options_(options) {}

LogStore::~LogStore() {
  if (db_ == nullptr) return;
  std::vector<rocksdb::ColumnFamilyHandle*> families = {meta_cf_, offsets_cf_};
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, topic] : topics_) {
      for (const auto& partition : topic->partitions) families.push_back(partition->family);
    }
    families.insert(families.end(), dropped_.begin(), dropped_.end());
  }
  for (rocksdb::ColumnFamilyHandle* cf : families) {
    if (cf != nullptr) db_->DestroyColumnFamilyHandle(cf);
  }
  db_->Close();
  delete db_;
}

absl::Status LogStore::Load(std::map<std::string, rocksdb::ColumnFamilyHandle*> families,
                            rocksdb::ColumnFamilyHandle* legacy_segments) {
  absl::MutexLock lock(&mu_);
  std::string next_id;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_cf_, std::string(kNextTopicIdKey), &next_id);
  if (s.ok()) {
    int64_t id = 0;
    if (!DecodeOffset(next_id, &id)) return absl::DataLossError("embedded log: bad next topic id");
    next_topic_id_ = static_cast<uint32_t>(id);
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "read next topic id");
  }

  std::map<uint32_t, TopicState*> by_id;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  for (it->Seek(std::string(kTopicPrefix));
       it->Valid() && it->key().starts_with(std::string(kTopicPrefix)); it->Next()) {
    TopicMeta meta;
    if (!DecodeTopicMeta(View(it->value()), &meta)) {
      return absl::DataLossError(
          absl::StrCat("embedded log: bad metadata of topic ",
                       std::string(View(it->key()).substr(kTopicPrefix.size()))));
    }
    auto topic = std::make_shared<TopicState>();
    topic->name = std::string(View(it->key()).substr(kTopicPrefix.size()));
    topic->id = meta.id;
    topic->partition_count = meta.partitions;
    topic->configs = std::move(meta.configs);
    for (int32_t p = 0; p < meta.partitions; ++p) {
      auto partition = std::make_unique<PartitionState>();
      auto family = families.find(PartitionFamilyName(topic->id, p));
      if (family != families.end()) {
        partition->family = family->second;
        families.erase(family);
      }
      topic->partitions.push_back(std::move(partition));
    }
    by_id[topic->id] = topic.get();
    topics_[topic->name] = std::move(topic);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "load topics");
  // Families no topic names: a deleted topic's, or a create that crashed before its metadata
  // was written.
  for (auto [name, family] : families) {
    rocksdb::Status dropped = db_->DropColumnFamily(family);
    db_->DestroyColumnFamilyHandle(family);
    if (!dropped.ok()) return FromRocks(dropped, absl::StrCat("drop family ", name));
  }
  for (auto [id, topic] : by_id) {
    // A directory of the second layout has none yet.
    if (absl::Status created = CreateFamilies(*topic); !created.ok()) return created;
  }
  if (legacy_segments != nullptr) {
    if (absl::Status migrated = MigrateSegments(legacy_segments, by_id); !migrated.ok()) {
      return migrated;
    }
  }
  for (auto [id, topic] : by_id) {
    for (int32_t p = 0; p < topic->partition_count; ++p) {
      PartitionState& partition = *topic->partitions[p];
      // The end offset is the end of the last stored segment: no separate counter to keep in
      // step.
      std::unique_ptr<rocksdb::Iterator> records(
          db_->NewIterator(rocksdb::ReadOptions(), partition.family));
      records->SeekToLast();
      uint32_t topic_id = 0;
      int32_t part = 0;
      int64_t first = 0;
      if (records->Valid()) {
        if (!ParseRecordKey(View(records->key()), &topic_id, &part, &first) ||
            topic_id != topic->id || part != p) {
          return absl::DataLossError(absl::StrFormat(
              "embedded log: corrupt segment key in the family of %s-%d", topic->name, p));
        }
        SegmentReader segment(View(records->value()), first);
        if (!segment.ok()) {
          return absl::DataLossError(absl::StrFormat(
              "embedded log: corrupt segment at %s-%d offset %d", topic->name, p, first));
        }
        // Reservations of a crashed process are gone: nothing open, so end == next.
        partition.next = segment.end_offset();
        partition.end = segment.end_offset();
      }
      if (!records->status().ok()) return FromRocks(records->status(), "load end offsets");
    }
  }
  return absl::OkStatus();
}

absl::Status LogStore::MigrateSegments(rocksdb::ColumnFamilyHandle* segments,
                                       const std::map<uint32_t, TopicState*>& by_id) {
  LogInfo("embedded-log", "moving the records into one column family per partition (once)",
          {{"dir", dir_}});
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), segments));
  rocksdb::WriteBatch batch;
  auto write = [&]() -> absl::Status {
    if (batch.Count() == 0) return absl::OkStatus();
    // Without the WAL, flushed below before the old family goes: a crash before then leaves it
    // in place, and the next open copies it again (the same keys, the same values).
    rocksdb::WriteOptions options;
    options.disableWAL = true;
    absl::Status s = FromRocks(db_->Write(options, &batch), "migrate segments");
    batch.Clear();
    return s;
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint32_t topic_id = 0;
    int32_t partition = 0;
    int64_t first = 0;
    if (!ParseRecordKey(View(it->key()), &topic_id, &partition, &first)) {
      return absl::DataLossError("embedded log: corrupt segment key in the segments family");
    }
    auto topic = by_id.find(topic_id);
    // A deleted topic's records were range-deleted (the iterator does not see them); any whose
    // topic or partition is unknown all the same are not carried over.
    if (topic == by_id.end() || partition < 0 || partition >= topic->second->partition_count) {
      continue;
    }
    batch.Put(topic->second->partitions[partition]->family, it->key(), it->value());
    if (batch.GetDataSize() >= kMigrationBatchBytes) {
      if (absl::Status s = write(); !s.ok()) return s;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "migrate segments");
  if (absl::Status s = write(); !s.ok()) return s;
  it.reset();
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  for (auto [id, topic] : by_id) {
    for (const auto& p : topic->partitions) families.push_back(p->family);
  }
  if (absl::Status s = FromRocks(db_->Flush(rocksdb::FlushOptions(), families), "migrate flush");
      !s.ok()) {
    return s;
  }
  rocksdb::Status dropped = db_->DropColumnFamily(segments);
  db_->DestroyColumnFamilyHandle(segments);
  return FromRocks(dropped, "drop the segments family");
}

absl::Status LogStore::CreateFamilies(TopicState& topic) {
  std::vector<std::string> names;
  std::vector<int32_t> partitions;
  for (int32_t p = 0; p < topic.partition_count; ++p) {
    if (topic.partitions[p]->family != nullptr) continue;
    names.push_back(PartitionFamilyName(topic.id, p));
    partitions.push_back(p);
  }
  if (names.empty()) return absl::OkStatus();
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = db_->CreateColumnFamilies(*partition_options_, names, &handles);
  // On failure, the handles of the families it did create.
  for (size_t i = 0; i < handles.size(); ++i) {
    topic.partitions[partitions[i]]->family = handles[i];
  }
  return FromRocks(s, absl::StrCat("create the partition families of topic ", topic.name));
}

void LogStore::DropFamilies(TopicState& topic) {
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  for (const auto& p : topic.partitions) {
    if (p->family != nullptr) families.push_back(p->family);
  }
  // On failure the families stay until the next open, which drops the families no topic names.
  (void)db_->DropColumnFamilies(families);
  dropped_.insert(dropped_.end(), families.begin(), families.end());
}

absl::StatusOr<std::shared_ptr<TopicState>> LogStore::FindTopic(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return absl::NotFoundError(absl::StrCat("embedded log: unknown topic '", name, "'"));
  }
  return it->second;
}

absl::Status LogStore::CreateTopics(const std::vector<TopicSpec>& topics) {
  for (const TopicSpec& spec : topics) {
    if (spec.name.empty()) return absl::InvalidArgumentError("embedded log: empty topic name");
    if (spec.partitions <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("embedded log: topic '", spec.name, "' needs at least one partition"));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    rocksdb::WriteBatch batch;
    std::vector<std::shared_ptr<TopicState>> created;
    uint32_t next_id = next_topic_id_;
    for (const TopicSpec& spec : topics) {
      if (topics_.contains(spec.name)) continue;
      bool duplicate = false;
      for (const auto& t : created) duplicate |= t->name == spec.name;
      if (duplicate) continue;
      auto topic = std::make_shared<TopicState>();
      topic->name = spec.name;
      topic->id = next_id++;
      topic->partition_count = spec.partitions;
      topic->configs = spec.configs;
      for (int32_t p = 0; p < spec.partitions; ++p) {
        topic->partitions.push_back(std::make_unique<PartitionState>());
      }
      TopicMeta meta{.id = topic->id, .partitions = spec.partitions, .configs = spec.configs};
      batch.Put(meta_cf_, absl::StrCat(kTopicPrefix, spec.name), EncodeTopicMeta(meta));
      created.push_back(std::move(topic));
    }
    if (created.empty()) return absl::OkStatus();
    // The families first: a crash before the metadata is written leaves families no topic
    // names, which the next open drops.
    absl::Status s;
    for (auto& topic : created) {
      if (s.ok()) s = CreateFamilies(*topic);
    }
    if (s.ok()) {
      batch.Put(meta_cf_, std::string(kNextTopicIdKey), EncodeOffset(next_id));
      rocksdb::WriteOptions write_options;
      write_options.sync = true;
      s = FromRocks(db_->Write(write_options, &batch), "create topics");
    }
    if (!s.ok()) {
      for (auto& topic : created) DropFamilies(*topic);
      return s;
    }
    next_topic_id_ = next_id;
    for (auto& topic : created) topics_[topic->name] = std::move(topic);
  }
  RebalanceAllGroups();
  return absl::OkStatus();
}

absl::Status LogStore::DeleteTopics(const std::vector<std::string>& names) {
  std::vector<std::string> unknown;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& name : names) {
      auto it = topics_.find(name);
      if (it == topics_.end()) {
        unknown.push_back(name);
        continue;
      }
      std::shared_ptr<TopicState> topic = it->second;
      // Under every partition lock, so no append of this topic is half way through.
      for (auto& p : topic->partitions) p->mu.Lock();
      rocksdb::WriteOptions write_options;
      write_options.sync = true;
      rocksdb::Status s = db_->Delete(write_options, meta_cf_, absl::StrCat(kTopicPrefix, name));
      if (s.ok()) topic->deleted = true;
      for (auto& p : topic->partitions) p->mu.Unlock();
      if (!s.ok()) return FromRocks(s, absl::StrCat("delete topic ", name));
      // The records go with their families (a crash before this leaves them to the next open).
      DropFamilies(*topic);
      topics_.erase(it);
    }
  }
  RebalanceAllGroups();
  if (!unknown.empty()) {
    return absl::NotFoundError(
        absl::StrCat("embedded log: unknown topic(s): ", absl::StrJoin(unknown, ", ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> LogStore::Append(
    const std::vector<PendingRecord>& records, const std::vector<PendingOffsets>& offsets,
    bool sync, const std::vector<Reservation>& reservations) {
  // Groups are locked (shared) across the write so a rebalance cannot hand the partitions to
  // another member between the fencing check and the commit.
  std::vector<GroupState*> groups;
  for (const PendingOffsets& o : offsets) groups.push_back(o.group.get());
  std::sort(groups.begin(), groups.end(),
            [](GroupState* a, GroupState* b) { return a->name < b->name; });
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  for (GroupState* g : groups) g->mu.ReaderLock();
  auto unlock_groups = [&] {
    for (auto it = groups.rbegin(); it != groups.rend(); ++it) (*it)->mu.ReaderUnlock();
  };

  for (const PendingOffsets& o : offsets) {
    if (o.member_id.empty()) continue;
    GroupState& g = *o.group;
    auto member = g.members.find(o.member_id);
    bool fenced = member == g.members.end() || member->second.generation != o.generation;
    for (const auto& [topic, tpo] : o.offsets) {
      auto owner = g.owners.find(tpo.tp);
      fenced |= owner == g.owners.end() || owner->second != o.member_id;
    }
    if (fenced) {
      unlock_groups();
      return AbortableError(absl::StrFormat(
          "embedded log: offsets of group '%s' fenced: member %s of generation %d no longer owns "
          "the partitions (rebalanced); abort the transaction and reprocess from the committed "
          "offsets",
          g.name, o.member_id, o.generation));
    }
  }

  PartitionLocks locks(records, reservations);
  auto unlock_all = [&] {
    locks.Unlock();
    unlock_groups();
  };
  if (absl::Status s = locks.CheckNotDeleted(); !s.ok()) {
    unlock_all();
    return s;
  }
  for (const PendingOffsets& o : offsets) {
    for (const auto& [topic, tpo] : o.offsets) {
      if (topic->deleted) {
        unlock_all();
        return absl::NotFoundError(
            absl::StrCat("embedded log: topic '", topic->name, "' was deleted"));
      }
    }
  }
  for (const Reservation& r : reservations) {
    PartitionState& p = *r.topic->partitions[r.partition];
    p.mu.AssertHeld();
    if (!p.open.contains(r.first)) {
      unlock_all();
      return FatalError(absl::StrFormat(
          "embedded log: reserved offsets %d.. of %s-%d were released (producer fenced)", r.first,
          r.topic->name, r.partition));
    }
  }

  std::vector<int64_t> assigned(records.size());
  std::vector<uint32_t> slot_of = locks.SlotOf(records);
  for (size_t i = 0; i < records.size(); ++i) {
    // Reserved records keep their offsets (all below the partition's next offset).
    assigned[i] = records[i].offset >= 0 ? records[i].offset : locks.slot(slot_of[i]).next++;
  }
  // Segments in key order: the memtable skiplist then inserts next to the previous key.
  // Within a partition, staged order is offset order (reserved records come first).
  // A counting sort by slot: stable, one pass.
  std::vector<uint32_t> order(records.size());
  {
    std::vector<uint32_t> start(locks.size() + 1, 0);
    for (uint32_t slot : slot_of) ++start[slot + 1];
    for (size_t i = 1; i < start.size(); ++i) start[i] += start[i - 1];
    for (uint32_t i = 0; i < order.size(); ++i) order[start[slot_of[i]]++] = i;
  }
  // Sized up front: a WriteBatch that grows while 1,000 records go in copies itself ~10 times.
  // The scratch the segments' framing goes into is sized for the worst case: pieces point into
  // it, so it must not move.
  size_t batch_bytes = 64;
  size_t scratch_bytes = 0;
  for (const PendingRecord& r : records) {
    size_t bound = SegmentGather<rocksdb::Slice>::ScratchBound(r.key, r.value, r.headers);
    batch_bytes += r.key.size() + r.value.size() + bound;
    scratch_bytes += bound + kMaxVarintBytes;  // + a segment count, at most one per record
  }
  for (const PendingOffsets& o : offsets) {
    batch_bytes += o.offsets.size() * (o.group->name.size() + 32);
  }
  AppendScratch& scratch = ThreadScratch();
  scratch.Reset(batch_bytes, scratch_bytes);
  rocksdb::WriteBatch& batch = scratch.batch;
  std::vector<rocksdb::Slice>& parts = scratch.parts;
  // One timestamp for the whole append (LogAppendTime): a clock read per record cost more than
  // the rest of its framing.
  const int64_t timestamp_ms = absl::ToUnixMillis(absl::Now());
  // One segment per run of consecutive offsets of one partition, written as gathered pieces
  // (codec.h SegmentGather): the record bytes are copied once, into the batch.
  SegmentGather<rocksdb::Slice> gather(scratch.bytes.get(), &parts, timestamp_ms);
  std::string key;
  for (size_t begin = 0; begin < order.size();) {
    const PendingRecord& head = records[order[begin]];
    size_t end = begin + 1;
    size_t bytes = head.value.size();
    while (end < order.size() && slot_of[order[end]] == slot_of[order[begin]] &&
           assigned[order[end]] == assigned[order[end - 1]] + 1 && bytes < kSegmentBytes) {
      bytes += records[order[end]].value.size();
      ++end;
    }
    key.clear();
    AppendRecordKey(head.topic->id, head.partition, assigned[order[begin]], &key);
    parts.clear();
    gather.Begin(end - begin);
    for (size_t k = begin; k < end; ++k) {
      const PendingRecord& r = records[order[k]];
      gather.Add(r.key, r.value, r.headers);
    }
    gather.End();
    rocksdb::Slice key_slice(key);
    batch.Put(head.topic->partitions[head.partition]->family, rocksdb::SliceParts(&key_slice, 1),
              rocksdb::SliceParts(parts.data(), static_cast<int>(parts.size())));
    begin = end;
  }
  for (const PendingOffsets& o : offsets) {
    for (const auto& [topic, tpo] : o.offsets) {
      batch.Put(offsets_cf_, GroupOffsetKey(o.group->name, topic->id, tpo.tp.partition),
                EncodeOffset(tpo.offset));
    }
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = sync;
  DisablePerfCounters();
  rocksdb::Status s = db_->Write(write_options, &batch);
  scratch.Trim();
  if (s.ok()) {
    for (const Reservation& r : reservations) {
      r.topic->partitions[r.partition]->open.erase(r.first);
    }
    locks.Publish();
  }
  // Slots are sorted by topic: one entry per topic written.
  std::vector<const TopicState*> written;
  for (size_t i = 0; i < locks.size(); ++i) {
    if (written.empty() || written.back() != locks.slot(i).topic) {
      written.push_back(locks.slot(i).topic);
    }
  }
  unlock_all();
  if (!s.ok()) return FromRocks(s, "append");
  NotifyAppended(written);
  return assigned;
}

absl::StatusOr<LogStore::Reserved> LogStore::Reserve(absl::Span<const PendingRecord> records) {
  Reserved reserved;
  if (records.empty()) return reserved;
  PartitionLocks locks(records, {});
  if (absl::Status s = locks.CheckNotDeleted(); !s.ok()) {
    locks.Unlock();
    return s;
  }
  std::vector<uint32_t> slot_of = locks.SlotOf(records);
  std::vector<int64_t> first(locks.size());
  std::vector<const std::shared_ptr<TopicState>*> topic(locks.size());
  for (size_t i = 0; i < locks.size(); ++i) first[i] = locks.slot(i).next;
  reserved.offsets.resize(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    reserved.offsets[i] = locks.slot(slot_of[i]).next++;
    topic[slot_of[i]] = &records[i].topic;
  }
  for (size_t i = 0; i < locks.size(); ++i) {
    PartitionLocks::Slot& slot = locks.slot(i);
    slot.topic->partitions[slot.partition]->open.insert(first[i]);
    reserved.reservations.push_back({.topic = *topic[i],
                                     .partition = slot.partition,
                                     .first = first[i],
                                     .count = slot.next - first[i]});
  }
  locks.Publish();  // `end` stays: it was `next` or an older reservation's first offset
  locks.Unlock();
  return reserved;
}

void LogStore::Release(const std::vector<Reservation>& reservations) {
  if (reservations.empty()) return;
  for (const Reservation& r : reservations) {
    PartitionState& p = *r.topic->partitions[r.partition];
    absl::MutexLock lock(&p.mu);
    p.open.erase(r.first);
    p.UpdateEnd();
  }
  std::vector<const TopicState*> topics;
  for (const Reservation& r : reservations) {
    if (std::find(topics.begin(), topics.end(), r.topic.get()) == topics.end()) {
      topics.push_back(r.topic.get());
    }
  }
  NotifyAppended(topics);  // the readable end may have moved past the gap
}

absl::StatusOr<int64_t> LogStore::Read(const TopicState& topic, int32_t partition, int64_t from,
                                       size_t max, std::vector<Record>* out, size_t* filled) const {
  const PartitionState& state = *topic.partitions[partition];
  int64_t end = state.end.load(std::memory_order_acquire);
  // A deleted topic's family is dropped, though still readable: read nothing, as Kafka would.
  if (from >= end || max == 0 || topic.deleted.load()) return end;
  std::string upper = RecordKey(topic.id, partition, end);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper_slice;
  std::string lower = RecordKey(topic.id, partition, 0);
  rocksdb::Slice lower_slice(lower);
  read_options.iterate_lower_bound = &lower_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, state.family));
  auto corrupt = [&](int64_t at) {
    return absl::DataLossError(
        absl::StrFormat("embedded log: corrupt segment in %s-%d at %d", topic.name, partition, at));
  };
  // The segment holding `from` starts at or before it; past a gap, the next one starts after.
  const std::string from_key = RecordKey(topic.id, partition, from);
  it->SeekForPrev(from_key);
  if (!it->Valid()) it->Seek(from_key);
  size_t n = 0;
  for (; it->Valid() && n < max; it->Next()) {
    uint32_t id = 0;
    int32_t part = 0;
    int64_t first = 0;
    if (!ParseRecordKey(View(it->key()), &id, &part, &first)) return corrupt(-1);
    SegmentReader segment(View(it->value()), first);
    if (!segment.ok() || !segment.SkipTo(from)) return corrupt(first);
    // A segment is one commit's run of offsets and an open reservation never splits one, so a
    // segment that starts below `end` ends at or below it; checked anyway.
    while (segment.has_next() && n < max && segment.next_offset() < end) {
      // Next overwrites every field but these two.
      Record& r = SpareRecords::At(*out, *filled);
      if (!segment.Next(&r)) return corrupt(first);
      r.topic = topic.name;
      r.partition = partition;
      ++*filled;
      ++n;
    }
  }
  if (absl::Status s = FromRocks(it->status(), "read"); !s.ok()) return s;
  return end;
}

absl::StatusOr<int64_t> LogStore::CommittedOffset(const std::string& group, const TopicState& topic,
                                                  int32_t partition) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), offsets_cf_,
                               GroupOffsetKey(group, topic.id, partition), &value);
  if (s.IsNotFound()) return -1;
  if (!s.ok()) return FromRocks(s, "read committed offset");
  int64_t offset = 0;
  if (!DecodeOffset(value, &offset)) return absl::DataLossError("embedded log: bad offset");
  return offset;
}

uint64_t LogStore::ChangeSeq() {
  absl::MutexLock lock(&notify_mu_);
  return seq_;
}

LogStore::ChangeToken LogStore::Changes(uint64_t store_seq,
                                        const std::vector<const TopicState*>& topics) {
  ChangeToken token;
  token.store = store_seq;
  token.topics.reserve(topics.size());
  for (const TopicState* topic : topics) {
    token.topics.emplace_back(topic, topic->changes.load(std::memory_order_acquire));
  }
  return token;
}

void LogStore::NotifyChange() {
  absl::MutexLock lock(&notify_mu_);
  ++seq_;
}

void LogStore::NotifyAppended(const std::vector<const TopicState*>& topics) {
  for (const TopicState* topic : topics) {
    topic->changes.fetch_add(1, std::memory_order_release);
  }
  // The unlock evaluates the waiters' conditions, which now see the new counts.
  absl::MutexLock lock(&notify_mu_);
}

void LogStore::WaitForChange(const ChangeToken& token, absl::Time deadline) {
  auto changed = [this, &token]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (seq_ != token.store) return true;
    for (const auto& [topic, seen] : token.topics) {
      if (topic->changes.load(std::memory_order_acquire) != seen) return true;
    }
    return false;
  };
  notify_mu_.LockWhenWithDeadline(absl::Condition(&changed), deadline);
  notify_mu_.Unlock();
}

std::shared_ptr<GroupState> LogStore::Group(const std::string& name) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<GroupState>& group = groups_[name];
  if (group == nullptr) group = std::make_shared<GroupState>(name);
  return group;
}

std::string LogStore::NewMemberId() {
  absl::MutexLock lock(&mu_);
  // Zero-padded so members sort in join order, which the range assignor uses.
  return absl::StrFormat("member-%08d", next_member_++);
}

void LogStore::Rebalance(GroupState& group, bool force) {
  // Kafka's range assignor, per topic: co-partitioned topics land on the same member.
  std::map<std::string, std::vector<std::string>> subscribers;
  for (const auto& [id, member] : group.members) {
    for (const std::string& topic : member.topics) subscribers[topic].push_back(id);
  }
  std::map<std::string, std::vector<TopicPartition>> targets;
  for (const auto& [id, member] : group.members) targets[id];
  for (const auto& [topic_name, members] : subscribers) {
    absl::StatusOr<std::shared_ptr<TopicState>> topic = FindTopic(topic_name);
    if (!topic.ok()) continue;  // Subscribed before it exists: assigned once created.
    int32_t n = (*topic)->partition_count;
    int32_t m = static_cast<int32_t>(members.size());
    int32_t per = n / m, extra = n % m, next = 0;
    for (int32_t i = 0; i < m; ++i) {
      int32_t count = per + (i < extra ? 1 : 0);
      for (int32_t k = 0; k < count; ++k) targets[members[i]].push_back({topic_name, next++});
    }
  }
  if (!force && targets == group.targets) return;
  group.targets = std::move(targets);
  ++group.generation;
  NotifyChange();
}

void LogStore::RebalanceAllGroups() {
  std::vector<std::shared_ptr<GroupState>> groups;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, group] : groups_) groups.push_back(group);
  }
  for (const auto& group : groups) {
    absl::MutexLock lock(&group->mu);
    Rebalance(*group, /*force=*/false);
  }
}

std::shared_ptr<TransactionalIdState> LogStore::RegisterTransactionalId(
    const std::string& transactional_id, int64_t* epoch) {
  std::shared_ptr<TransactionalIdState> state;
  {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<TransactionalIdState>& cell = epochs_[transactional_id];
    if (cell == nullptr) cell = std::make_shared<TransactionalIdState>();
    state = cell;
  }
  std::vector<Reservation> released;
  {
    absl::MutexLock lock(&state->mu);
    *epoch = state->epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
    released.swap(state->reservations);
  }
  // Like InitTransactions aborting the previous producer's transaction: its offsets become a
  // gap, and its commit (which finds them released) fails as fenced.
  Release(released);
  return state;
}

}  // namespace leftfold::internal::log::embedded
