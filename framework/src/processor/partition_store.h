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
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "leftfold/v1/envelope.pb.h"

namespace rocksdb {
class CompactionFilter;
class DB;
}  // namespace rocksdb

namespace leftfold::internal::processor {

class PartitionStore {
 public:
  // A snapshot already serialized for the log: the store keeps the same bytes.
  struct EncodedSnapshot {
    std::string aggregate_id;
    std::string bytes;  // a serialized v1::Snapshot
  };
  // A result in the store's dedup value format (EncodeResult), so the processor serializes each
  // result once, for the log (ResultBytes) and the store.
  struct EncodedResult {
    std::string command_id;
    std::string value;
  };

  struct Update {
    std::vector<v1::Snapshot> snapshots;
    std::vector<v1::CommandResult> results;
    // Written as they are (the live path); never checked against stored versions.
    std::vector<EncodedSnapshot> encoded_snapshots;
    std::vector<EncodedResult> encoded_results;
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
  };

  // Opens or creates the store. A store written in an older on-disk format is wiped (with a
  // warning): it is a cache of the log, and restore fills it again.
  static absl::StatusOr<std::unique_ptr<PartitionStore>> Open(const std::string& dir,
                                                              Options options);
  // The dedup value of `result`: its processed-at time, then the serialized result.
  static std::string EncodeResult(const v1::CommandResult& result);
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
  // One atomic write (see Update::replay).
  absl::Status Write(const Update& update);

  int64_t snapshots_next() const { return snapshots_next_; }
  int64_t results_next() const { return results_next_; }
  // 0 for a new store.
  int32_t definition_version() const { return definition_version_; }

  // Compacts the whole store now, dropping dedup entries older than the window. RocksDB does
  // this on its own as data flows and periodically; this forces it (tests, tools).
  absl::Status Compact();
  // Deletes every snapshot (before a rebuild from events). Keeps the dedup index.
  absl::Status DropSnapshots();

 private:
  PartitionStore() = default;
  absl::Status LoadMeta();

  // Declared before db_: the DB refers to the filter until it is closed.
  std::unique_ptr<rocksdb::CompactionFilter> expiry_filter_;
  std::unique_ptr<rocksdb::DB> db_;
  int64_t snapshots_next_ = 0;
  int64_t results_next_ = 0;
  int32_t definition_version_ = 0;
};

}  // namespace leftfold::internal::processor
