// The local RocksDB store of one command partition: the latest snapshot of every aggregate in the
// partition, the recent command results (the deduplication index), and how far the store has
// caught up with the snapshots and results changelogs in the log.
//
//   auto store = PartitionStore::Open("/var/lib/app/state/bank.account/p3");
//   std::optional<v1::Snapshot> s = (*store)->GetSnapshot("acc-1");
//   PartitionStore::Update update;  // filled after a transaction committed
//   (*store)->Write(update);
//
// It only ever holds committed data: the processor writes it after the Kafka transaction that
// carried the same snapshots and results committed, and restore fills it from the committed
// changelog. Owned by the processor thread; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "leftfold/v1/envelope.pb.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace leftfold::internal::processor {

class PartitionStore {
 public:
  struct Update {
    std::vector<v1::Snapshot> snapshots;
    std::vector<v1::CommandResult> results;
    // Next offsets of the changelog partitions covered by this update; -1 leaves them as they are.
    int64_t snapshots_next = -1;
    int64_t results_next = -1;
    // The aggregate definition version the snapshots were folded with; -1 leaves it.
    int32_t definition_version = -1;
    // From a changelog replay: skip snapshots older than the stored ones. The live path writes
    // only newer versions and skips the check (a read per snapshot).
    bool replay = false;
  };

  static absl::StatusOr<std::unique_ptr<PartitionStore>> Open(const std::string& dir);
  ~PartitionStore();

  absl::StatusOr<std::optional<v1::Snapshot>> GetSnapshot(const std::string& aggregate_id) const;
  // A result younger than the dedup window, if this command id was processed.
  absl::StatusOr<std::optional<v1::CommandResult>> GetResult(const std::string& command_id) const;
  // One atomic write (see Update::replay).
  absl::Status Write(const Update& update);

  int64_t snapshots_next() const { return snapshots_next_; }
  int64_t results_next() const { return results_next_; }
  // 0 for a new store.
  int32_t definition_version() const { return definition_version_; }

  // Deletes dedup entries older than `window` (by processed_at). Returns how many.
  absl::StatusOr<int64_t> ExpireResults(absl::Duration window);
  // Deletes every snapshot (before a rebuild from events). Keeps the dedup index.
  absl::Status DropSnapshots();

 private:
  explicit PartitionStore(std::unique_ptr<rocksdb::DB> db);
  absl::Status LoadMeta();

  std::unique_ptr<rocksdb::DB> db_;
  int64_t snapshots_next_ = 0;
  int64_t results_next_ = 0;
  int32_t definition_version_ = 0;
};

}  // namespace leftfold::internal::processor
