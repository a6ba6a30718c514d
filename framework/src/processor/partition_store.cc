#include "processor/partition_store.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/thread_name.h"
#include "google/protobuf/util/time_util.h"
#include "leftfold/logging.h"
#include "log/log.h"
#include "processor/envelope_encoding.h"
#include "rocksdb/cache.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace leftfold::internal::processor {
namespace {

// Key space: s/<hash><aggregate id> → Snapshot and m/<name> → meta in the default column
// family; d/<hash><command id> → dedup value (below) in the results family (kResultsFamily). <hash>
// is 4 bytes of Kafka's murmur2 of the id (stable across processes and versions): the memtable
// buckets keys by their first 16 bytes (see StoreOptions), and ids often share a long prefix
// ("lg1234-1764190000-...", "order-2026-11-..."), which put every key of a run into one deep bucket
// and let its bloom filter answer nothing.
constexpr char kSnapshotPrefix[] = "s/";
constexpr char kResultPrefix[] = "d/";
constexpr size_t kKindSize = 2;
constexpr size_t kHashSize = 4;
// Loops over keys scattered in memory ask for the bytes of the one this many ahead
// (BytewiseOrder, the dedup file's writes): ingesting a dedup buffer of 60,000 entries took
// 18% less CPU (docs/benchmarks.md, "Session 16").
constexpr size_t kPrefetchAhead = 8;
// Keys per MultiGet call (see GetResults).
constexpr size_t kMultiGetSlice = 32;
constexpr char kSnapshotsNextKey[] = "m/snapshots_next";
constexpr char kResultsNextKey[] = "m/results_next";
constexpr char kDefinitionVersionKey[] = "m/definition_version";
// Bumped when the layout above changes; a store of another format is wiped and restored.
// 4: dedup entries moved from the default column family into their own (kResultsFamily).
constexpr char kFormatKey[] = "m/format";
constexpr char kFormat[] = "4";
// Snapshots and meta keys live in the default column family, dedup entries in this one.
constexpr char kResultsFamily[] = "results";

// Appends the key of `id` of the given kind (kSnapshotPrefix or kResultPrefix) to `out`.
void AppendKey(std::string& out, const char* kind, absl::string_view id) {
  uint32_t hash = static_cast<uint32_t>(
      log::PartitionForKey(std::string_view(id.data(), id.size()), INT32_MAX));
  char head[kKindSize + kHashSize];
  std::memcpy(head, kind, kKindSize);
  for (size_t i = 0; i < kHashSize; ++i) {
    head[kKindSize + i] = static_cast<char>(hash >> (8 * (kHashSize - 1 - i)));  // big endian
  }
  out.append(head, sizeof(head));
  out.append(id.data(), id.size());
}

std::string Key(const char* kind, absl::string_view id) {
  std::string key;
  key.reserve(kKindSize + kHashSize + id.size());
  AppendKey(key, kind, id);
  return key;
}

// A dedup value is the result's processed-at time (8 bytes, little endian, microseconds since
// the epoch) followed by the serialized CommandResult, so the compaction filter can expire it
// without parsing the result.
constexpr size_t kStampSize = 8;

// Writes the value into `out`, kStampSize + encoder.size() bytes.
void WriteDedupValue(const ResultEncoder& encoder, char* out) {
  const google::protobuf::Timestamp* processed_at = encoder.processed_at();
  uint64_t micros = static_cast<uint64_t>(std::max<int64_t>(
      processed_at == nullptr
          ? 0
          : google::protobuf::util::TimeUtil::TimestampToMicroseconds(*processed_at),
      0));
  for (size_t i = 0; i < kStampSize; ++i) out[i] = static_cast<char>(micros >> (8 * i));
  encoder.Write(out + kStampSize);
}

int64_t DedupStamp(absl::string_view value) {
  uint64_t micros = 0;
  for (size_t i = 0; i < kStampSize; ++i) {
    micros |= static_cast<uint64_t>(static_cast<unsigned char>(value[i])) << (8 * i);
  }
  return static_cast<int64_t>(micros);
}

// A dedup value's stamp as a time (the infinite past for a value too short to have one).
absl::Time StampOf(absl::string_view value) {
  return value.size() >= kStampSize ? absl::FromUnixMicros(DedupStamp(value))
                                    : absl::InfinitePast();
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("state store: ", what, ": ", s.ToString()));
}

// Drops dedup entries whose processed-at time is older than the window.
class DedupExpiryFilter final : public rocksdb::CompactionFilter {
 public:
  explicit DedupExpiryFilter(absl::Duration window) : window_(window) {}

  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& existing_value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    if (!key.starts_with(kResultPrefix) || existing_value.size() < kStampSize) return false;
    int64_t cutoff = absl::ToUnixMicros(absl::Now() - window_);
    return DedupStamp(absl::string_view(existing_value.data(), existing_value.size())) < cutoff;
  }
  const char* Name() const override { return "leftfold.DedupExpiry"; }

 private:
  absl::Duration window_;
};

// The table formats of one store's two column families, which share one block cache (8 MiB, as
// RocksDB's default) rather than one each. Both are bloom-filtered: most lookups (dedup ids,
// snapshots of aggregates not seen yet) miss.
struct StoreTables {
  std::shared_ptr<rocksdb::TableFactory> snapshots;
  std::shared_ptr<rocksdb::TableFactory> results;
};

StoreTables FilteredTables() {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(8 << 20);
  table.whole_key_filtering = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  StoreTables tables;
  tables.snapshots.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Every new command id is looked up in each file of results (one per level its ingests
  // reached, often 6-8), and a false positive reads a data block. At 10 bits a key (~1% per
  // file) that was one block read per ~100 commands, half of a sustained run's reads; 16 bits
  // (~0.1%) cost 0.75 more bytes of filter per id held (docs/benchmarks.md, "Session 10").
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(16));
  // Results are written in bulk (an ingest file of ~60,000 entries) and read one block per
  // duplicate or false positive: 16 KiB blocks cost a quarter of the block flushes and index
  // entries of the default 4 KiB (docs/benchmarks.md, "Session 19").
  table.block_size = 16 << 10;
  tables.results.reset(rocksdb::NewBlockBasedTableFactory(table));
  return tables;
}

// The database, and its default column family: snapshots and meta keys.
rocksdb::Options StoreOptions(std::shared_ptr<rocksdb::TableFactory> tables) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.compression = rocksdb::kLZ4Compression;
  // Many partitions per process: keep each instance's memory small.
  options.write_buffer_size = 16 << 20;
  options.max_open_files = 256;
  options.memtable_prefix_bloom_size_ratio = 0.05;
  options.memtable_whole_key_filtering = true;
  options.table_factory = std::move(tables);
  // Keys are point-looked-up only (no scans): hash them into small skip lists, so an insert
  // into a large memtable does not walk one deep list of random keys. The prefix is the
  // kind, the id's hash and up to 10 bytes of the id; scans would need total_order_seek.
  options.prefix_extractor.reset(rocksdb::NewCappedPrefixTransform(16));
  options.memtable_factory.reset(rocksdb::NewHashSkipListRepFactory(1 << 16));
  options.allow_concurrent_memtable_write = false;  // one writer: the processor thread
  // An aggregate's snapshot is rewritten with every command, at about the same size: update it
  // in place in the memtable (when the new value is no larger) instead of adding a version per
  // command. Flushes then sort and write about half the entries; every flush of the hash
  // memtable sorts all of them into a full-order list first (measured: the flush thread used
  // ~40% of a core behind a 55k commands/s Kafka processor). The cost is that iterators and
  // MultiGet are not point-in-time across keys; nothing here needs that (one key's read is
  // still consistent: RocksDB locks it against the update).
  options.inplace_update_support = true;
  return options;
}

// The results column family: dedup entries, each written once, in sorted files that are
// ingested whole (the dedup buffer), never through the memtable. Keeping them out of the
// snapshots' family matters twice: an ingest checks the file's key range against the family's
// memtable, which for the hash memtable means copying all of it into a sorted list first (40%
// of an ingest's CPU when results shared it with the snapshots); and compactions of snapshots
// no longer rewrite result files, nor the other way round.
rocksdb::ColumnFamilyOptions ResultsOptions(std::shared_ptr<rocksdb::TableFactory> tables,
                                            const rocksdb::CompactionFilter* filter,
                                            absl::Duration window) {
  rocksdb::ColumnFamilyOptions options;
  options.compression = rocksdb::kLZ4Compression;
  options.table_factory = std::move(tables);
  options.compaction_filter = filter;
  // Files that no write-driven compaction reaches are still rewritten (and their expired dedup
  // entries dropped) within half a window: disk stays bounded by about 1.5 windows of results.
  options.periodic_compaction_seconds =
      static_cast<uint64_t>(std::max<int64_t>(absl::ToInt64Seconds(window / 2), 60));
  return options;
}

// Whether the store (or one column family of it) holds any key at all.
absl::StatusOr<bool> IsEmpty(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family = nullptr) {
  rocksdb::ReadOptions read;
  read.total_order_seek = true;
  std::unique_ptr<rocksdb::Iterator> it(
      db.NewIterator(read, family != nullptr ? family : db.DefaultColumnFamily()));
  it->SeekToFirst();
  if (!it->status().ok()) return FromRocks(it->status(), "scan");
  return !it->Valid();
}

}  // namespace

// Fewer keys are sorted by comparisons: a radix pass costs a pass over its 2048 counts.
constexpr size_t kRadixSortMin = 512;

std::vector<uint32_t> BytewiseOrder(const std::vector<absl::string_view>& keys) {
  struct Item {
    uint64_t head;  // the first 8 bytes, big endian, zero-padded
    uint32_t index;
  };
  std::vector<Item> items(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    // A dedup buffer's keys are scattered over its blocks in the index's order.
    if (i + kPrefetchAhead < keys.size()) __builtin_prefetch(keys[i + kPrefetchAhead].data());
    absl::string_view key = keys[i];
    uint64_t head = 0;
    for (size_t b = 0; b < 8; ++b) {
      head = (head << 8) | (b < key.size() ? static_cast<unsigned char>(key[b]) : 0u);
    }
    items[i] = {head, static_cast<uint32_t>(i)};
  }
  // Zero padding keeps the order: where two heads differ, the keys differ at that byte (or the
  // shorter one is a prefix of the other and sorts first); where they are equal, the keys decide.
  auto by_key = [&keys](const Item& a, const Item& b) { return keys[a.index] < keys[b.index]; };
  if (items.size() < kRadixSortMin) {
    std::sort(items.begin(), items.end(), [&by_key](const Item& a, const Item& b) {
      return a.head != b.head ? a.head < b.head : by_key(a, b);
    });
  } else {
    // By the heads, least significant digit first, skipping digits that no two heads differ in
    // (a store's keys share their kind bytes): a few passes over the items instead of ~13
    // comparisons each (callgrind: ~270 instructions a key for std::sort, in every batch's
    // lookups and every dedup file). Stable, so equal heads stay together for the keys to order.
    constexpr int kDigitBits = 11;
    constexpr uint64_t kDigitMask = (uint64_t{1} << kDigitBits) - 1;
    uint64_t all_or = 0;
    uint64_t all_and = ~uint64_t{0};
    for (const Item& item : items) {
      all_or |= item.head;
      all_and &= item.head;
    }
    const uint64_t varying = all_or ^ all_and;
    std::vector<Item> sorted(items.size());
    std::vector<uint32_t> starts(size_t{1} << kDigitBits);
    for (int shift = 0; shift < 64; shift += kDigitBits) {
      if (((varying >> shift) & kDigitMask) == 0) continue;
      std::fill(starts.begin(), starts.end(), 0);
      for (const Item& item : items) ++starts[(item.head >> shift) & kDigitMask];
      uint32_t at = 0;
      for (uint32_t& start : starts) at += std::exchange(start, at);
      for (const Item& item : items) sorted[starts[(item.head >> shift) & kDigitMask]++] = item;
      items.swap(sorted);
    }
    for (size_t begin = 0; begin < items.size();) {
      size_t end = begin + 1;
      while (end < items.size() && items[end].head == items[begin].head) ++end;
      if (end - begin > 1) std::sort(items.begin() + begin, items.begin() + end, by_key);
      begin = end;
    }
  }
  std::vector<uint32_t> order(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) order[i] = items[i].index;
  return order;
}

absl::StatusOr<std::unique_ptr<PartitionStore>> PartitionStore::Open(const std::string& dir,
                                                                     Options store_options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("state store: cannot create ", dir, ": ", ec.message()));
  std::unique_ptr<PartitionStore> store(new PartitionStore());
  store->expiry_filter_ = std::make_unique<DedupExpiryFilter>(store_options.dedup_window);
  StoreTables tables = FilteredTables();
  store->options_ = std::make_unique<rocksdb::Options>(StoreOptions(std::move(tables.snapshots)));
  store->results_options_ = std::make_unique<rocksdb::Options>(
      rocksdb::DBOptions(*store->options_),
      ResultsOptions(std::move(tables.results), store->expiry_filter_.get(),
                     store_options.dedup_window));
  store->dedup_buffer_bytes_ = store_options.dedup_buffer_bytes;
  store->dedup_filter_keys_ = store_options.dedup_filter_keys;
  store->snapshot_buffer_writes_limit_ = store_options.snapshot_buffer_writes;
  store->snapshot_buffer_bytes_limit_ = store_options.snapshot_buffer_bytes;
  // SST files of dedup entries are written here, then moved into the store. One left by a crash
  // between the two is of no use: its entries are replayed from the results changelog.
  store->ingest_dir_ = (std::filesystem::path(dir) / "ingest").string();
  std::filesystem::remove_all(store->ingest_dir_, ec);
  std::filesystem::create_directories(store->ingest_dir_, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("state store: cannot create ", store->ingest_dir_, ": ", ec.message()));
  }
  const rocksdb::Options& options = *store->options_;
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(options)},
      {kResultsFamily, rocksdb::ColumnFamilyOptions(*store->results_options_)}};
  for (int attempt = 0;; ++attempt) {
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    if (absl::Status s =
            FromRocks(rocksdb::DB::Open(rocksdb::DBOptions(options), dir, families, &handles, &raw),
                      absl::StrCat("open ", dir));
        !s.ok()) {
      return s;
    }
    store->db_.reset(raw);
    delete handles[0];  // the default family's: db_->DefaultColumnFamily() serves
    store->results_.reset(handles[1]);
    std::string format;
    rocksdb::Status got = raw->Get(rocksdb::ReadOptions(), kFormatKey, &format);
    if (got.ok() && format == kFormat) break;
    if (!got.ok() && !got.IsNotFound()) return FromRocks(got, "read format");
    absl::StatusOr<bool> empty = IsEmpty(*raw);
    if (!empty.ok()) return empty.status();
    if (*empty) {
      if (absl::Status s =
              FromRocks(raw->Put(rocksdb::WriteOptions(), kFormatKey, kFormat), "write format");
          !s.ok()) {
        return s;
      }
      break;
    }
    if (attempt > 0) return absl::InternalError(absl::StrCat("state store: cannot reset ", dir));
    LogWarning("processor", "state store has an older format: wiping it, restore refills it",
               {{"dir", dir}, {"format", got.ok() ? format : "1"}, {"expected", kFormat}});
    store->results_.reset();
    store->db_.reset();
    if (absl::Status s = FromRocks(rocksdb::DestroyDB(dir, options), absl::StrCat("wipe ", dir));
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = store->LoadMeta(); !s.ok()) return s;
  if (absl::Status s = store->FillDedupFilter(store_options); !s.ok()) return s;
  return store;
}

absl::Status PartitionStore::FillDedupFilter(const Options& options) {
  absl::WriterMutexLock lock(&mu_);
  if (options.dedup_filter_keys == 0) return absl::OkStatus();
  filter_ = std::make_unique<DedupFilter>(
      DedupFilter::Options{.window = options.dedup_window,
                           .generation_keys = options.dedup_filter_generation_keys,
                           .max_keys = options.dedup_filter_keys});
  uint64_t estimate = 0;
  if (db_->GetIntProperty(results_.get(), "rocksdb.estimate-num-keys", &estimate) &&
      estimate > options.dedup_filter_keys) {
    DropFilterLocked();
    return absl::OkStatus();
  }
  absl::StatusOr<bool> empty = IsEmpty(*db_, results_.get());
  if (!empty.ok()) return empty.status();
  if (*empty) {  // a new or emptied store: nothing to read
    filter_ready_ = true;
    return absl::OkStatus();
  }
  // Reading the entries takes ~1 s per million: the partition is not held up for it. Until they
  // are all in, lookups pass the filter by (MayHoldLocked).
  try {
    filling_filter_ = std::async(std::launch::async, [this, window = options.dedup_window] {
      NameThisThread("lf-dedup-fill");
      FillDedupFilterFromStore(window);
    });
  } catch (const std::system_error&) {
    LogWarning("processor", "no thread to fill the dedup filter: every lookup reads the store",
               {{"dir", ingest_dir_}});
    filter_.reset();
  }
  return absl::OkStatus();
}

void PartitionStore::FillDedupFilterFromStore(absl::Duration window) {
  // Every entry the store holds, except those already expired: a lookup of one of them may
  // now miss, as it would once compaction dropped it. An entry written from now on goes into
  // the filter with its write (Write), and one written before is in this iterator's view:
  // results reach RocksDB only through ingests of buffers that Write filled.
  const absl::Time start = absl::Now();
  const absl::Time cutoff = start - window;
  rocksdb::ReadOptions read;
  read.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, results_.get()));
  struct Key {
    uint64_t hash;
    absl::Time stamp;
  };
  std::vector<Key> chunk;  // added under the lock a chunk at a time
  size_t read_entries = 0;
  bool filter_on = true;
  it->SeekToFirst();
  while (filter_on && !stop_filling_filter_.load(std::memory_order_relaxed)) {
    chunk.clear();
    for (; it->Valid() && chunk.size() < 4096; it->Next()) {
      ++read_entries;
      const absl::string_view key(it->key().data(), it->key().size());
      const absl::string_view value(it->value().data(), it->value().size());
      if (key.size() < kKindSize + kHashSize) continue;  // not a dedup key
      const absl::Time stamp = StampOf(value);
      if (stamp < cutoff) continue;
      chunk.push_back({DedupFilter::Hash(key.substr(kKindSize + kHashSize)), stamp});
    }
    absl::WriterMutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (const Key& key : chunk) AddToFilterLocked(key.hash, key.stamp, now);
    filter_on = filter_ != nullptr;
    if (!it->Valid()) break;
  }
  absl::WriterMutexLock lock(&mu_);
  if (filter_ == nullptr || stop_filling_filter_.load(std::memory_order_relaxed)) return;
  if (!it->status().ok()) {
    LogWarning("processor", "dedup filter not filled: every lookup reads the store",
               {{"dir", ingest_dir_}, {"error", it->status().ToString()}});
    filter_.reset();
    return;
  }
  filter_ready_ = true;
  LogInfo("processor", "dedup filter filled from the store",
          {{"dir", ingest_dir_},
           {"entries", absl::StrCat(read_entries)},
           {"in_window", absl::StrCat(filter_->keys())},
           {"ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - start))}});
}

void PartitionStore::AwaitDedupFilter() {
  if (filling_filter_.valid()) filling_filter_.wait();
}

void PartitionStore::AddToFilterLocked(uint64_t hash, absl::Time stamp, absl::Time now) {
  if (filter_ == nullptr) return;
  filter_->Add(hash, stamp, now);
  if (!filter_->on()) DropFilterLocked();
}

void PartitionStore::DropFilterLocked() {
  filter_.reset();
  LogInfo("processor",
          "dedup filter off: the dedup window holds more command ids than "
          "ProcessorOptions::dedup_filter_ids; every lookup reads the store",
          {{"dir", ingest_dir_}, {"dedup_filter_ids", absl::StrCat(dedup_filter_keys_)}});
}

PartitionStore::~PartitionStore() {
  if (db_ == nullptr) return;
  stop_filling_filter_.store(true, std::memory_order_relaxed);
  AwaitDedupFilter();
  // A clean close keeps the buffered snapshots and results (a crash leaves them to restore).
  if (absl::Status s = FlushSnapshots(); !s.ok()) {
    LogWarning("processor", "state store: buffered snapshots not saved, restore replays them",
               {{"dir", ingest_dir_}, {"error", s.ToString()}});
  }
  if (absl::Status s = Ingest(/*wait=*/true); !s.ok()) {
    LogWarning("processor", "state store: buffered results not saved, restore replays them",
               {{"dir", ingest_dir_}, {"error", s.ToString()}});
  }
}

void PartitionStore::DedupBuffer::Put(absl::string_view key, uint64_t hash,
                                      absl::string_view value) {
  std::memcpy(PutUninitialized(key, hash, value.size()), value.data(), value.size());
}

char* PartitionStore::DedupBuffer::PutUninitialized(absl::string_view key, uint64_t hash,
                                                    size_t value_size) {
  char* at = Allocate(key.size() + value_size);
  std::memcpy(at, key.data(), key.size());
  bytes_ += key.size() + value_size;
  // A key put again (a replayed result) points at its new value; the old bytes stay unused.
  index_.insert_or_assign(
      HashedKey{.data = at, .size = static_cast<uint32_t>(key.size()), .hash = Hash(hash)},
      absl::string_view(at + key.size(), value_size));
  return at + key.size();
}

const absl::string_view* PartitionStore::DedupBuffer::Find(absl::string_view key,
                                                           uint64_t hash) const {
  auto it = index_.find(
      HashedKey{.data = key.data(), .size = static_cast<uint32_t>(key.size()), .hash = Hash(hash)});
  return it == index_.end() ? nullptr : &it->second;
}

std::vector<std::pair<absl::string_view, absl::string_view>> PartitionStore::DedupBuffer::Sorted()
    const {
  std::vector<std::pair<absl::string_view, absl::string_view>> unsorted;
  unsorted.reserve(index_.size());
  for (const auto& [key, value] : index_) unsorted.emplace_back(key.view(), value);
  std::vector<absl::string_view> keys;
  keys.reserve(unsorted.size());
  for (const auto& [key, value] : unsorted) keys.push_back(key);
  std::vector<std::pair<absl::string_view, absl::string_view>> entries;
  entries.reserve(unsorted.size());
  for (uint32_t i : BytewiseOrder(keys)) entries.push_back(unsorted[i]);
  return entries;
}

char* PartitionStore::DedupBuffer::Allocate(size_t size) {
  constexpr size_t kBlockSize = 1 << 20;
  if (blocks_.empty() || block_size_ - block_used_ < size) {
    block_size_ = std::max(kBlockSize, size);
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(block_size_));
    block_used_ = 0;
  }
  char* at = blocks_.back().get() + block_used_;
  block_used_ += size;
  return at;
}

const absl::string_view* PartitionStore::FindBufferedLocked(absl::string_view key,
                                                            uint64_t hash) const {
  // Read before RocksDB: an entry leaves `sealed_` only once it is in RocksDB.
  const absl::string_view* found = filling_.Find(key, hash);
  if (found == nullptr && sealed_ != nullptr) found = sealed_->Find(key, hash);
  return found;
}

absl::Status PartitionStore::WaitForIngest() {
  if (ingesting_.valid()) ingesting_.get();
  absl::ReaderMutexLock lock(&mu_);
  return ingest_error_;
}

absl::Status PartitionStore::Ingest(bool wait) {
  if (absl::Status s = WaitForIngest(); !s.ok()) return s;
  int64_t results_next = std::exchange(unpersisted_results_next_, -1);
  bool sealed;
  {
    // No ingest runs (and none failed), so `sealed_` is empty until this sets it.
    absl::WriterMutexLock lock(&mu_);
    if (!filling_.empty()) sealed_ = std::make_unique<DedupBuffer>(std::move(filling_));
    // Not reserved like the last one: a full-size index from the start spreads the first
    // entries' inserts and lookups over megabytes of cold slots (the store writer's CPU per
    // command rose ~15%); growing rehashes stored hashes only.
    filling_ = DedupBuffer();
    sealed = sealed_ != nullptr;
  }
  if (!sealed) {  // nothing buffered: the offset alone (written by this thread)
    return results_next < 0 ? absl::OkStatus() : PutResultsNext(results_next);
  }
  if (!wait) {
    try {
      ingesting_ = std::async(std::launch::async, [this, results_next] {
        NameThisThread("lf-dedup-ingest");
        IngestSealed(results_next);
      });
      return absl::OkStatus();
    } catch (const std::system_error&) {
      // No thread to be had: ingest here.
    }
  }
  IngestSealed(results_next);
  absl::ReaderMutexLock lock(&mu_);
  return ingest_error_;
}

void PartitionStore::IngestSealed(int64_t results_next) {
  std::vector<std::pair<absl::string_view, absl::string_view>> entries;
  {
    // Only this thread changes `sealed_` now, so its entries stay valid without the lock.
    absl::ReaderMutexLock lock(&mu_);
    entries = sealed_->Sorted();
  }
  auto ingest = [&]() -> absl::Status {
    std::string path = (std::filesystem::path(ingest_dir_) / "dedup.sst").string();
    // Uncompressed: compaction compresses it on its way down. Its pages stay cached: the next
    // batches' lookups read its blocks (bloom false positives). With RocksDB's default, which
    // drops a written file from the page cache, they came from disk, on the processing thread:
    // a sustained run's lookups cost 4x a short run's (docs/benchmarks.md, "Session 10").
    rocksdb::Options file_options = *results_options_;
    file_options.compression = rocksdb::kNoCompression;
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), file_options, /*column_family=*/nullptr,
                                  /*invalidate_page_cache=*/false);
    if (absl::Status s = FromRocks(writer.Open(path), "open dedup file"); !s.ok()) return s;
    // In key order, which is not their order in memory: each entry's bytes are asked for a
    // few entries ahead (the writer's first read of a key, its order check, stalled on it).
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i + kPrefetchAhead < entries.size()) {
        const auto& [key, value] = entries[i + kPrefetchAhead];
        __builtin_prefetch(key.data());
        if (!value.empty()) __builtin_prefetch(&value.back());
      }
      const auto& [key, value] = entries[i];
      absl::Status s = FromRocks(writer.Put(rocksdb::Slice(key.data(), key.size()),
                                            rocksdb::Slice(value.data(), value.size())),
                                 "write dedup file");
      if (!s.ok()) return s;
    }
    if (absl::Status s = FromRocks(writer.Finish(), "finish dedup file"); !s.ok()) return s;
    rocksdb::IngestExternalFileOptions options;
    options.move_files = true;
    // Its sequence number goes to the MANIFEST only, not into the file: no rewrite and second
    // sync of a file just synced.
    options.write_global_seqno = false;
    absl::Status s =
        FromRocks(db_->IngestExternalFile(results_.get(), {path}, options), "ingest dedup file");
    std::error_code ec;
    std::filesystem::remove(path, ec);  // a link to the ingested file, or a failed attempt
    if (!s.ok() || results_next < 0) return s;
    // Only now that the entries are in the store may the offset say so.
    return PutResultsNext(results_next);
  };
  absl::Status s = ingest();
  absl::WriterMutexLock lock(&mu_);
  if (s.ok()) {
    sealed_.reset();
  } else if (ingest_error_.ok()) {
    ingest_error_ = s;  // the entries stay readable in `sealed_`
  }
}

absl::Status PartitionStore::PutResultsNext(int64_t results_next) {
  // Outside the WAL: lost in a crash, it only makes restore replay results already stored.
  rocksdb::WriteOptions write_options;
  write_options.disableWAL = true;
  return FromRocks(db_->Put(write_options, kResultsNextKey, absl::StrCat(results_next)),
                   "write results offset");
}

absl::Status PartitionStore::LoadMeta() {
  for (auto [key, field] : {std::pair{kSnapshotsNextKey, &snapshots_next_},
                            std::pair{kResultsNextKey, &results_next_}}) {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &value);
    if (s.IsNotFound()) continue;
    if (absl::Status st = FromRocks(s, "read meta"); !st.ok()) return st;
    if (!absl::SimpleAtoi(value, field)) return absl::DataLossError("state store: bad meta value");
  }
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kDefinitionVersionKey, &value);
  if (s.ok() && !absl::SimpleAtoi(value, &definition_version_)) {
    return absl::DataLossError("state store: bad definition version");
  }
  return s.ok() || s.IsNotFound() ? absl::OkStatus() : FromRocks(s, "read meta");
}

std::string PartitionStore::EncodeResult(const v1::CommandResult& result, ResultFill fill) {
  ResultEncoder encoder(result, fill);
  std::string value(kStampSize + encoder.size(), '\0');
  WriteDedupValue(encoder, value.data());
  return value;
}

void PartitionStore::AddEncodedResult(const v1::CommandResult& result, ResultFill fill,
                                      absl::string_view command_id, EncodedEntries& entries) {
  ResultEncoder encoder(result, fill);
  entries.Append(command_id, [&](std::string* out) {
    size_t at = out->size();
    out->resize(at + kStampSize + encoder.size());
    WriteDedupValue(encoder, out->data() + at);
  });
}

absl::string_view PartitionStore::ResultBytes(absl::string_view value) {
  return value.size() < kStampSize ? absl::string_view() : value.substr(kStampSize);
}

absl::StatusOr<v1::CommandResult> PartitionStore::DecodeResult(absl::string_view value) {
  v1::CommandResult result;
  if (value.size() < kStampSize ||
      !result.ParseFromArray(value.data() + kStampSize,
                             static_cast<int>(value.size() - kStampSize))) {
    return absl::DataLossError("state store: unreadable result");
  }
  return result;
}

absl::StatusOr<std::optional<v1::Snapshot>> PartitionStore::GetSnapshot(
    const std::string& aggregate_id) const {
  std::string value;
  bool buffered = false;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = snapshot_buffer_.find(aggregate_id); it != snapshot_buffer_.end()) {
      value = it->second;
      buffered = true;
    }
  }
  rocksdb::Status s =
      buffered ? rocksdb::Status::OK()
               : db_->Get(rocksdb::ReadOptions(), Key(kSnapshotPrefix, aggregate_id), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (absl::Status st = FromRocks(s, "get snapshot"); !st.ok()) return st;
  v1::Snapshot snapshot;
  if (!snapshot.ParseFromString(value)) {
    return absl::DataLossError(absl::StrCat("state store: unreadable snapshot of ", aggregate_id));
  }
  return snapshot;
}

absl::StatusOr<std::optional<v1::CommandResult>> PartitionStore::GetResult(
    const std::string& command_id) const {
  // The processor reads whole batches with GetResults; this single lookup is the plain one.
  std::string key = Key(kResultPrefix, command_id);
  const uint64_t hash = DedupFilter::Hash(command_id);
  std::string value;
  bool buffered = false;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!MayHoldLocked(hash)) return std::nullopt;
    if (const absl::string_view* found = FindBufferedLocked(key, hash)) {
      value = std::string(*found);
      buffered = true;
    }
  }
  rocksdb::Status s = buffered ? rocksdb::Status::OK()
                               : db_->Get(rocksdb::ReadOptions(), results_.get(), key, &value);
  if (s.IsNotFound()) return std::nullopt;
  if (absl::Status st = FromRocks(s, "get result"); !st.ok()) return st;
  absl::StatusOr<v1::CommandResult> result = DecodeResult(value);
  if (!result.ok()) {
    return absl::DataLossError(absl::StrCat("state store: unreadable result of ", command_id));
  }
  return *std::move(result);
}

absl::StatusOr<std::vector<std::optional<v1::CommandResult>>> PartitionStore::GetResults(
    const std::vector<absl::string_view>& command_ids) const {
  // The keys of the ids the filter lets through, in one buffer reserved up front so the slices
  // stay valid.
  size_t bytes = 0;
  for (absl::string_view id : command_ids) bytes += kKindSize + kHashSize + id.size();
  std::string buffer;
  buffer.reserve(bytes);
  std::vector<rocksdb::Slice> keys(command_ids.size());
  std::vector<std::optional<v1::CommandResult>> results(command_ids.size());
  auto decode = [&](size_t i, absl::string_view value) -> absl::Status {
    absl::StatusOr<v1::CommandResult> result = DecodeResult(value);
    if (!result.ok()) {
      return absl::DataLossError(
          absl::StrCat("state store: unreadable result of ", command_ids[i]));
    }
    results[i] = *std::move(result);
    return absl::OkStatus();
  };
  // The filter, then the buffers, then one MultiGet of the rest.
  std::vector<size_t> missed;
  missed.reserve(keys.size());
  {
    absl::ReaderMutexLock lock(&mu_);
    for (size_t i = 0; i < command_ids.size(); ++i) {
      const uint64_t hash = DedupFilter::Hash(command_ids[i]);
      if (!MayHoldLocked(hash)) continue;  // no result
      const size_t at = buffer.size();
      AppendKey(buffer, kResultPrefix, command_ids[i]);
      keys[i] = rocksdb::Slice(buffer.data() + at, buffer.size() - at);
      const absl::string_view key(keys[i].data(), keys[i].size());
      const absl::string_view* buffered = FindBufferedLocked(key, hash);
      if (buffered == nullptr) {
        missed.push_back(i);
      } else if (absl::Status s = decode(i, *buffered); !s.ok()) {
        return s;
      }
    }
  }
  if (missed.empty()) return results;
  // In key order, so MultiGet need not sort them (sorted_input) with its slower comparisons.
  std::vector<absl::string_view> missed_views;
  missed_views.reserve(missed.size());
  for (size_t i : missed) missed_views.emplace_back(keys[i].data(), keys[i].size());
  std::vector<size_t> sorted_missed;
  sorted_missed.reserve(missed.size());
  for (uint32_t j : BytewiseOrder(missed_views)) sorted_missed.push_back(missed[j]);
  missed = std::move(sorted_missed);
  std::vector<rocksdb::Slice> missed_keys;
  missed_keys.reserve(missed.size());
  for (size_t i : missed) missed_keys.push_back(keys[i]);
  std::vector<rocksdb::PinnableSlice> values(missed.size());
  std::vector<rocksdb::Status> statuses(missed.size());
  // In slices of kMultiGetSlice keys. RocksDB gathers a call's keys in a vector of 32 inline
  // entries that it grows without reserving past them: for a whole batch that regrowth (copies,
  // fresh pages) was ~100 ns a key, ~15% of the lookup (docs/benchmarks.md, "Session 16"). It
  // looks keys up 32 at a time anyway.
  for (size_t at = 0; at < missed.size(); at += kMultiGetSlice) {
    size_t n = std::min(kMultiGetSlice, missed.size() - at);
    db_->MultiGet(rocksdb::ReadOptions(), results_.get(), n, missed_keys.data() + at,
                  values.data() + at, statuses.data() + at, /*sorted_input=*/true);
  }
  for (size_t j = 0; j < missed.size(); ++j) {
    if (statuses[j].IsNotFound()) continue;
    if (absl::Status st = FromRocks(statuses[j], "get results"); !st.ok()) return st;
    absl::Status s = decode(missed[j], absl::string_view(values[j].data(), values[j].size()));
    if (!s.ok()) return s;
  }
  return results;
}

absl::Status PartitionStore::Write(const Update& update) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!ingest_error_.ok()) return ingest_error_;
  }
  // The live path's snapshots are buffered (see snapshot_buffer_); anything else goes to RocksDB
  // after what is buffered, in the same batch, so a key's newest write wins.
  const bool live = !update.replay && update.snapshots.empty();
  bool flush_snapshots = !live;  // what is buffered goes into this batch
  bool snapshots_buffered;       // whether the buffer keeps entries past this write
  // The batch is sized up front for the snapshots it takes, so it does not regrow.
  size_t bytes = 64;
  {
    absl::WriterMutexLock lock(&mu_);
    if (live && !update.encoded_snapshots.empty()) {
      for (EncodedEntries::Entry snapshot : update.encoded_snapshots) {
        auto [it, fresh] = snapshot_buffer_.try_emplace(snapshot.key);
        snapshot_buffer_bytes_ += snapshot.value.size() + (fresh ? snapshot.key.size() : 0);
        snapshot_buffer_bytes_ -= it->second.size();
        it->second.assign(snapshot.value.data(), snapshot.value.size());  // keeps its capacity
      }
      snapshot_buffer_writes_ += update.encoded_snapshots.size();
      flush_snapshots = snapshot_buffer_writes_ >= snapshot_buffer_writes_limit_ ||
                        snapshot_buffer_bytes_ >= snapshot_buffer_bytes_limit_;
    }
    if (flush_snapshots) bytes += snapshot_buffer_bytes_ + 16 * snapshot_buffer_.size();
    snapshots_buffered = !flush_snapshots && !snapshot_buffer_.empty();
  }
  if (!live) {
    bytes += update.encoded_snapshots.bytes() + 16 * update.encoded_snapshots.size();
  }
  rocksdb::WriteBatch batch(bytes);
  // One key buffer: the WriteBatch and the dedup buffer copy the key.
  std::string& key = key_scratch_;
  auto put_snapshot = [&](absl::string_view aggregate_id, absl::string_view value) {
    key.clear();
    AppendKey(key, kSnapshotPrefix, aggregate_id);
    batch.Put(key, rocksdb::Slice(value.data(), value.size()));
  };
  if (flush_snapshots) {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [aggregate_id, value] : snapshot_buffer_) put_snapshot(aggregate_id, value);
  }
  for (const v1::Snapshot& snapshot : update.snapshots) {
    if (update.replay) {
      // A changelog replay may carry an older snapshot than the one stored; never go backwards.
      absl::StatusOr<std::optional<v1::Snapshot>> current = GetSnapshot(snapshot.aggregate_id());
      if (!current.ok()) return current.status();
      if (current->has_value() && (*current)->version() > snapshot.version()) continue;
    }
    batch.Put(Key(kSnapshotPrefix, snapshot.aggregate_id()), snapshot.SerializeAsString());
  }
  if (!live) {
    for (EncodedEntries::Entry snapshot : update.encoded_snapshots) {
      put_snapshot(snapshot.key, snapshot.value);
    }
  }
  bool buffered;  // whether the buffer holds entries (this update's or earlier ones)
  bool full;
  {
    const absl::Time now = absl::Now();
    absl::WriterMutexLock lock(&mu_);
    for (const v1::CommandResult& result : update.results) {
      if (result.command_id().empty()) continue;
      key.clear();
      AppendKey(key, kResultPrefix, result.command_id());
      const uint64_t hash = DedupFilter::Hash(result.command_id());
      // Serialized straight into the buffer: no string per result.
      ResultEncoder encoder(result);
      char* value = filling_.PutUninitialized(key, hash, kStampSize + encoder.size());
      WriteDedupValue(encoder, value);
      AddToFilterLocked(hash, StampOf(absl::string_view(value, kStampSize)), now);
    }
    for (EncodedEntries::Entry result : update.encoded_results) {
      if (result.key.empty()) continue;
      key.clear();
      AppendKey(key, kResultPrefix, result.key);
      const uint64_t hash = DedupFilter::Hash(result.key);
      filling_.Put(key, hash, result.value);
      AddToFilterLocked(hash, StampOf(result.value), now);
    }
    buffered = !filling_.empty() || sealed_ != nullptr;
    // Only this thread adds to `filling_`, so the size holds until the check below.
    full = filling_.bytes() >= dedup_buffer_bytes_;
  }
  // The snapshots offset is persisted with the snapshots it covers: while some are buffered, it
  // waits for them.
  if (update.snapshots_next >= 0) unpersisted_snapshots_next_ = update.snapshots_next;
  if (!snapshots_buffered && unpersisted_snapshots_next_ >= 0) {
    batch.Put(kSnapshotsNextKey, absl::StrCat(std::exchange(unpersisted_snapshots_next_, -1)));
  }
  if (update.results_next >= 0) {
    // Persisted only with the buffered entries it covers (Ingest).
    if (buffered) {
      unpersisted_results_next_ = update.results_next;
    } else {
      batch.Put(kResultsNextKey, absl::StrCat(update.results_next));
    }
  }
  if (update.definition_version >= 0) {
    batch.Put(kDefinitionVersionKey, absl::StrCat(update.definition_version));
  }
  // No WAL: everything here can be rebuilt from the log, the durable copy. After a crash the
  // store is an older consistent state (each batch carries its changelog offsets), and restore
  // replays the log from those offsets.
  rocksdb::WriteOptions write_options;
  write_options.disableWAL = true;
  if (absl::Status s = FromRocks(db_->Write(write_options, &batch), "write"); !s.ok()) {
    return s;
  }
  if (flush_snapshots) {
    // Only now: readers look in the buffer first, then in RocksDB, which has them by now.
    absl::WriterMutexLock lock(&mu_);
    ClearSnapshotBufferLocked();
  }
  if (update.snapshots_next >= 0) snapshots_next_ = update.snapshots_next;
  if (update.results_next >= 0) results_next_ = update.results_next;
  if (update.definition_version >= 0) definition_version_ = update.definition_version;
  return full ? Ingest(/*wait=*/false) : absl::OkStatus();
}

absl::Status PartitionStore::FlushSnapshots() {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (snapshot_buffer_.empty() && unpersisted_snapshots_next_ < 0) return absl::OkStatus();
  }
  return Write(Update{.replay = true});  // not the live path: writes what is buffered
}

absl::Status PartitionStore::Compact() {
  if (absl::Status s = FlushSnapshots(); !s.ok()) return s;
  if (absl::Status s = Ingest(/*wait=*/true); !s.ok()) return s;
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* family : {db_->DefaultColumnFamily(), results_.get()}) {
    if (absl::Status s = FromRocks(db_->CompactRange(options, family, nullptr, nullptr), "compact");
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status PartitionStore::DropSnapshots() {
  std::string begin = kSnapshotPrefix;
  std::string end = "s0";  // '0' follows '/'
  rocksdb::WriteBatch batch;
  batch.DeleteRange(db_->DefaultColumnFamily(), begin, end);
  batch.Put(kSnapshotsNextKey, "0");
  if (absl::Status s = FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "drop snapshots");
      !s.ok()) {
    return s;
  }
  snapshots_next_ = 0;
  unpersisted_snapshots_next_ = -1;
  absl::WriterMutexLock lock(&mu_);
  ClearSnapshotBufferLocked();
  return absl::OkStatus();
}

void PartitionStore::ClearSnapshotBufferLocked() {
  snapshot_buffer_.clear();
  snapshot_buffer_bytes_ = 0;
  snapshot_buffer_writes_ = 0;
}

}  // namespace leftfold::internal::processor
