// The local RocksDB store of one command partition: the latest snapshot of every aggregate in the
// partition, the recent command results (the deduplication index), and how far the store has
// caught up with the snapshots and results changelogs in the log.
//
//   auto store = PartitionStore::Open("/var/lib/app/state/bank.account/p3",
//                                     {.dedup_window = absl::Hours(24)});
//   std::optional<v1::Snapshot> s = (*store)->GetSnapshot("acc-1");
//   PartitionStore::Update update;  // filled after a transaction committed
//   (*store)->Write(update);
//
// It only ever holds committed data: the processor writes it after the Kafka transaction that
// carried the same snapshots and results committed, and restore fills it from the committed
// changelog. Owned by the processor thread; not thread-safe.
//
// Dedup entries older than the window are dropped by a compaction filter (no expiry index to
// write per command); RocksDB's periodic compaction bounds how long an expired entry stays on
// disk. A result read before its entry is compacted away only extends deduplication.
//
// Snapshots of the live path (Update::encoded_snapshots) wait in an in-memory buffer, the newest
// per aggregate, which reads consult first: a hot aggregate is written to RocksDB once per flush
// of the buffer instead of once per batch. The buffer goes to RocksDB in one batch with the
// snapshots changelog offset it reaches (Options::snapshot_buffer_*), and on close; a crash
// loses it, and restore replays the changelog from the last offset written.
//
// Dedup entries (one per command, random keys) bypass the memtable: they collect in an in-memory
// buffer that reads consult first, and a full buffer is sorted and ingested as one SST file.
// Flushing them through the memtable sorted each one into a skip list first, which cost the
// flush thread about a third of the processor thread's CPU. The results changelog offset is
// persisted with the ingestion, so entries lost with the buffer in a crash are replayed by
// restore; closing the store ingests what is buffered.
//
// An in-memory filter of every dedup key held (DedupFilter, filled from the store on a thread
// of its own after open, and with each write) answers most lookups of new command ids, so they
// read neither the buffers nor RocksDB (Options::dedup_filter_keys).
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "leftfold/v1/envelope.pb.h"
#include "processor/dedup_filter.h"
#include "processor/envelope_encoding.h"

namespace rocksdb {
class ColumnFamilyHandle;
class CompactionFilter;
class DB;
struct Options;
}  // namespace rocksdb

namespace leftfold::internal::processor {

// The indexes of `keys` in RocksDB's bytewise order (the default comparator's). Faster than
// sorting the keys themselves when they start with a fixed-size hash, as the store's do: the
// first 8 bytes, compared as one integer, settle almost every comparison.
std::vector<uint32_t> BytewiseOrder(const std::vector<absl::string_view>& keys);

class PartitionStore {
 public:
  // Keys and values already serialized, one after another in one buffer: adding one allocates
  // nothing once the buffer is large enough, and dropping them all is one free (a string per
  // key and value was ~10% of the processor's committer thread in perf).
  //
  //   PartitionStore::EncodedEntries snapshots;
  //   snapshots.Add("acct-1", bytes);
  //   snapshots.Append("acct-2", [&](std::string* out) { AppendSnapshot(fields, out); });
  //   for (PartitionStore::EncodedEntries::Entry e : snapshots) Use(e.key, e.value);
  //
  // An entry's views are valid until the next Add or Append.
  class EncodedEntries {
   public:
    struct Entry {
      absl::string_view key;
      absl::string_view value;
    };
    void Add(absl::string_view key, absl::string_view value) {
      Append(key, [value](std::string* out) { out->append(value.data(), value.size()); });
    }
    // Adds `key` with the value that `append_value(std::string*)` appends to the buffer.
    template <typename AppendValue>
    void Append(absl::string_view key, AppendValue&& append_value) {
      Span& span = spans_.emplace_back();
      span.key_at = bytes_.size();
      span.key_size = key.size();
      bytes_.append(key.data(), key.size());
      span.value_at = bytes_.size();
      append_value(&bytes_);
      span.value_size = bytes_.size() - span.value_at;
    }
    void Reserve(size_t entries, size_t bytes) {
      spans_.reserve(entries);
      bytes_.reserve(bytes);
    }
    size_t size() const { return spans_.size(); }
    bool empty() const { return spans_.empty(); }
    size_t bytes() const { return bytes_.size(); }
    Entry operator[](size_t i) const {
      const Span& span = spans_[i];
      return {absl::string_view(bytes_).substr(span.key_at, span.key_size),
              absl::string_view(bytes_).substr(span.value_at, span.value_size)};
    }

    class Iterator {
     public:
      Iterator(const EncodedEntries* entries, size_t i) : entries_(entries), i_(i) {}
      Entry operator*() const { return (*entries_)[i_]; }
      Iterator& operator++() {
        ++i_;
        return *this;
      }
      bool operator==(const Iterator& other) const { return i_ == other.i_; }

     private:
      const EncodedEntries* entries_;
      size_t i_;
    };
    Iterator begin() const { return {this, 0}; }
    Iterator end() const { return {this, spans_.size()}; }

   private:
    struct Span {
      size_t key_at = 0;
      size_t key_size = 0;
      size_t value_at = 0;
      size_t value_size = 0;
    };
    std::string bytes_;
    std::vector<Span> spans_;
  };

  struct Update {
    std::vector<v1::Snapshot> snapshots;
    std::vector<v1::CommandResult> results;
    // Written as they are (the live path); never checked against stored versions.
    // Aggregate id -> serialized v1::Snapshot, the bytes that went to the log.
    EncodedEntries encoded_snapshots;
    // Command id -> the result in the store's dedup value format (AddEncodedResult), so the
    // processor serializes each result once, for the log (ResultBytes) and the store.
    EncodedEntries encoded_results;
    // Next offsets of the changelog partitions covered by this update; -1 leaves them as they are.
    int64_t snapshots_next = -1;
    int64_t results_next = -1;
    // The aggregate definition version the snapshots were folded with; -1 leaves it.
    int32_t definition_version = -1;
    // From a changelog replay: skip snapshots older than the stored ones. The live path writes
    // only newer versions and skips the check (a read per snapshot).
    bool replay = false;
  };

  struct Options {
    // Results younger than this answer duplicates (ProcessorOptions::dedup_window).
    absl::Duration dedup_window = absl::Hours(24);
    // Dedup entries buffered in memory before they are ingested as one SST file.
    size_t dedup_buffer_bytes = 8 << 20;
    // The live path's snapshots are buffered in memory, the newest per aggregate, and written
    // to RocksDB (with the snapshots offset) after this many snapshot writes or once they take
    // this many bytes: a hot aggregate is then written once per flush, not once per batch.
    // A crash loses the buffer and restore replays the changelog from the last flush, so
    // these also bound that replay.
    size_t snapshot_buffer_writes = 65536;
    size_t snapshot_buffer_bytes = 2 << 20;
    // The in-memory filter of the dedup keys held (DedupFilter): lookups of ids it rules out
    // skip RocksDB. It holds up to this many keys of the window (~12 bits each), is filled
    // from the store when it opens, and turns off (with a log line) past the limit; 0: none.
    size_t dedup_filter_keys = size_t{8} << 20;
    size_t dedup_filter_generation_keys = size_t{1} << 20;
  };

  // Opens or creates the store. A store written in an older on-disk format is wiped (with a
  // warning): it is a cache of the log, and restore fills it again.
  static absl::StatusOr<std::unique_ptr<PartitionStore>> Open(const std::string& dir,
                                                              Options options);
  // The dedup value of `result`: its processed-at time, then the serialized result (with
  // `fill` for the fields it leaves to its encoder).
  static std::string EncodeResult(const v1::CommandResult& result, ResultFill fill = {});
  // Adds EncodeResult(result, fill) to `entries` under `command_id`.
  static void AddEncodedResult(const v1::CommandResult& result, ResultFill fill,
                               absl::string_view command_id, EncodedEntries& entries);
  // The serialized CommandResult inside an EncodeResult value (empty if it is too short).
  static absl::string_view ResultBytes(absl::string_view value);
  // Parses an EncodeResult value.
  static absl::StatusOr<v1::CommandResult> DecodeResult(absl::string_view value);
  ~PartitionStore();

  absl::StatusOr<std::optional<v1::Snapshot>> GetSnapshot(const std::string& aggregate_id) const;
  // A result younger than the dedup window, if this command id was processed.
  absl::StatusOr<std::optional<v1::CommandResult>> GetResult(const std::string& command_id) const;
  // GetResult of many command ids at once (one RocksDB MultiGet): nullopt where an id has none.
  absl::StatusOr<std::vector<std::optional<v1::CommandResult>>> GetResults(
      const std::vector<absl::string_view>& command_ids) const;
  // One atomic write (see Update::replay), except that results go to the dedup buffer first: a
  // crash can lose them and the results offset with them, never one without the other.
  // Not concurrent with itself; concurrent reads are fine.
  absl::Status Write(const Update& update);

  int64_t snapshots_next() const { return snapshots_next_; }
  int64_t results_next() const { return results_next_; }
  // 0 for a new store.
  int32_t definition_version() const { return definition_version_; }

  // Writes the buffered snapshots to RocksDB now (closing the store does too).
  absl::Status FlushSnapshots();
  // Compacts the whole store now (after writing the buffers), dropping dedup entries
  // older than the window. RocksDB does this on its own as data flows and periodically; this
  // forces it (tests, tools).
  absl::Status Compact();
  // Deletes every snapshot (before a rebuild from events). Keeps the dedup index.
  absl::Status DropSnapshots();
  // Waits until the dedup filter is filled from what the store held when it opened (lookups
  // are right either way; tests and tools wait to see the filter at work).
  void AwaitDedupFilter();

 private:
  // Dedup entries not yet in RocksDB: keys and values copied into blocks that never move, so
  // the index can point into them.
  class DedupBuffer {
   public:
    // `hash` is DedupFilter::Hash of the key's command id, as for Find.
    void Put(absl::string_view key, uint64_t hash, absl::string_view value);
    // Put of a value of `value_size` bytes that the caller writes at the returned address
    // before the next call (and before any reader can find the key: under the store's lock).
    char* PutUninitialized(absl::string_view key, uint64_t hash, size_t value_size);
    // DedupFilter::Hash of a key's command id as the index keeps it: computed once for the
    // filter and both buffers.
    static uint32_t Hash(uint64_t filter_hash) { return static_cast<uint32_t>(filter_hash); }
    const absl::string_view* Find(absl::string_view key, uint64_t hash) const;
    // Every entry, in key order (the last value of a key put twice).
    std::vector<std::pair<absl::string_view, absl::string_view>> Sorted() const;
    size_t bytes() const { return bytes_; }
    bool empty() const { return index_.empty(); }

   private:
    // A key in the blocks with its hash. The index grows without reading its keys again: its
    // rehashing read each one from cold memory, half of the store writer's time in perf.
    struct HashedKey {
      const char* data;
      uint32_t size;
      uint32_t hash;
      absl::string_view view() const { return {data, size}; }
    };
    // Every insert and lookup passes a HashedKey: the hash is computed once, by the caller.
    struct KeyHash {
      size_t operator()(const HashedKey& key) const { return key.hash; }
    };
    struct KeyEq {
      bool operator()(const HashedKey& a, const HashedKey& b) const {
        return a.hash == b.hash && a.view() == b.view();
      }
    };

    char* Allocate(size_t size);
    std::vector<std::unique_ptr<char[]>> blocks_;
    size_t block_used_ = 0;
    size_t block_size_ = 0;
    size_t bytes_ = 0;
    absl::flat_hash_map<HashedKey, absl::string_view, KeyHash, KeyEq> index_;
  };

  PartitionStore() = default;
  absl::Status LoadMeta();
  // Hands the filling buffer to a thread that ingests it (after the previous one finished);
  // with `wait`, returns once it is in RocksDB. With nothing buffered it only persists the
  // results offset.
  absl::Status Ingest(bool wait);
  // Runs on the ingest thread: writes `sealed_` as one sorted SST file, ingests it, persists
  // the results changelog offset it covers, then drops it.
  void IngestSealed(int64_t results_next);
  // Persists the results changelog offset on its own, once its entries are in RocksDB.
  absl::Status PutResultsNext(int64_t results_next);
  // The buffered value of `key` (the filling buffer, then the one being ingested), or nullptr.
  // `hash` is DedupFilter::Hash of its command id.
  const absl::string_view* FindBufferedLocked(absl::string_view key, uint64_t hash) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Whether the command id of this DedupFilter::Hash may have an entry: false rules it out.
  bool MayHoldLocked(uint64_t hash) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return filter_ == nullptr || !filter_ready_ || filter_->MayContain(hash);
  }
  // Sets up filter_ (Open): ready at once for an empty results family, else filled on a thread
  // of its own (FillDedupFilterFromStore).
  absl::Status FillDedupFilter(const Options& options);
  // Adds the unexpired keys of the results family to filter_, then marks it ready.
  void FillDedupFilterFromStore(absl::Duration window);
  // Adds a command id (DedupFilter::Hash) with its entry's stamp to filter_, dropping the filter
  // once it turns off.
  void AddToFilterLocked(uint64_t hash, absl::Time stamp, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops filter_ for good, with a log line: every lookup reads the buffers and RocksDB.
  void DropFilterLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for the running ingest, if any; returns its error (sticky).
  absl::Status WaitForIngest();
  // Empties snapshot_buffer_ and its counts.
  void ClearSnapshotBufferLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Declared before db_: the DB refers to the filter until it is closed.
  std::unique_ptr<rocksdb::CompactionFilter> expiry_filter_;
  std::unique_ptr<rocksdb::Options> options_;  // the DB's and its default family's
  // The results family's (with the DB's), for the SST writer of the dedup files.
  std::unique_ptr<rocksdb::Options> results_options_;
  std::unique_ptr<rocksdb::DB> db_;
  // Declared after db_: a family's handle goes before its DB.
  std::unique_ptr<rocksdb::ColumnFamilyHandle> results_;
  std::string ingest_dir_;
  size_t dedup_buffer_bytes_ = 0;
  size_t dedup_filter_keys_ = 0;
  // Dedup entries not in RocksDB yet: `filling_` takes new ones (from Write, the one writer);
  // `sealed_`, when set, is being ingested by `ingesting_`. Reads look in both.
  mutable absl::Mutex mu_;
  DedupBuffer filling_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<DedupBuffer> sealed_ ABSL_GUARDED_BY(mu_);
  // Every dedup key buffered or in RocksDB, within the window; null when off. Consulted once
  // ready: filled from the store when it opened (filling_filter_), and with every write.
  std::unique_ptr<DedupFilter> filter_ ABSL_GUARDED_BY(mu_);
  bool filter_ready_ ABSL_GUARDED_BY(mu_) = false;
  std::future<void> filling_filter_;
  std::atomic<bool> stop_filling_filter_{false};
  absl::Status ingest_error_ ABSL_GUARDED_BY(mu_);
  std::future<void> ingesting_;
  // The results offset `filling_` reaches; persisted once it is ingested (-1: none).
  int64_t unpersisted_results_next_ = -1;
  // Snapshots of the live path not in RocksDB yet: serialized, by aggregate id. GetSnapshot
  // looks here first. Written with the offset they reach (unpersisted_snapshots_next_) when the
  // limits are reached, in the same WriteBatch as the update that reached them.
  absl::flat_hash_map<std::string, std::string> snapshot_buffer_ ABSL_GUARDED_BY(mu_);
  size_t snapshot_buffer_bytes_ = 0;   // keys and values in snapshot_buffer_
  size_t snapshot_buffer_writes_ = 0;  // snapshots put into it since it was last written
  size_t snapshot_buffer_writes_limit_ = 0;
  size_t snapshot_buffer_bytes_limit_ = 0;
  // The snapshots offset the buffer reaches; persisted when it is written (-1: none).
  int64_t unpersisted_snapshots_next_ = -1;
  std::string key_scratch_;
  int64_t snapshots_next_ = 0;
  int64_t results_next_ = 0;
  int32_t definition_version_ = 0;
};

}  // namespace leftfold::internal::processor
