// The embedded log's shared state: the RocksDB instance, the topic table, offset assignment,
// consumer-group coordination and change notification. Internal to log/embedded; the Log,
// Producer and Consumer classes (clients.h) are thin owners of a LogStore pointer.
//
//   auto store = LogStore::Open("/tmp/log", EmbeddedOptions{});
//   auto topic = (*store)->FindTopic("t");
//   auto offsets = (*store)->Append(records, /*offsets=*/{}, /*sync=*/true);
//   // A transaction that must learn its offsets before it commits (Kafka's Flush):
//   auto reserved = (*store)->Reserve(records);      // offsets taken, nothing written yet
//   (*store)->Append(records_with_offsets, group_offsets, true, *reserved);  // or:
//   (*store)->Release(*reserved);                    // abort: the offsets become a gap
//
// Thread-safe. Lock order (never taken the other way round): TransactionalIdState::mu, then
// GroupState::mu, then LogStore::mu_, then PartitionState::mu in (topic id, partition) order,
// then the notify mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "log/embedded/embedded_log.h"
#include "log/log.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
struct ColumnFamilyOptions;
}  // namespace rocksdb

namespace leftfold::internal::log::embedded {

// Offsets of a partition (Kafka's terms): records below `end` (the last stable offset, LSO) are
// readable; [end, next) holds committed records written after an open reservation plus the
// reserved offsets of open transactions; `next` is the high watermark.
struct PartitionState {
  // The partition's column family (owned by the LogStore): its records, keys in offset order.
  rocksdb::ColumnFamilyHandle* family = nullptr;
  // Held while offsets are assigned or released and while a batch is written, so offsets are
  // contiguous and `end` only ever covers written records.
  absl::Mutex mu;
  // Next offset to assign (high watermark). Written under `mu`; read lock-free by Admin.
  std::atomic<int64_t> next{0};
  // Readable end: the first offset of the lowest open reservation, else `next`. Written under
  // `mu`; readers load it without the lock. A reader never passes it, so a transaction that
  // reserved offsets and commits later can never land behind a consumer's position.
  std::atomic<int64_t> end{0};
  // First offsets of the open reservations (transactions that flushed but have not finished).
  std::set<int64_t> open ABSL_GUARDED_BY(mu);

  // Recomputes `end` after `next` or `open` changed.
  void UpdateEnd() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    end.store(open.empty() ? next.load(std::memory_order_relaxed) : *open.begin(),
              std::memory_order_release);
  }
};

struct TopicState {
  std::string name;
  uint32_t id = 0;
  int32_t partition_count = 0;
  std::map<std::string, std::string> configs;
  std::vector<std::unique_ptr<PartitionState>> partitions;
  // Set by DeleteTopics under every partition lock; appends check it under their lock.
  std::atomic<bool> deleted{false};
  // Bumped after every append to (or released reservation of) this topic: readers of other
  // topics sleep on.
  mutable std::atomic<uint64_t> changes{0};
};

struct GroupMember {
  std::vector<std::string> topics;
  // Generation whose assignment the member has claimed; -1 before its first claim.
  int64_t generation = -1;
  std::vector<TopicPartition> owned;
};

// One consumer group. Members claim their target partitions only once the previous owners have
// released them (after their on_revoked), so no partition ever has two owners.
struct GroupState {
  explicit GroupState(std::string group_name) : name(std::move(group_name)) {}
  const std::string name;
  absl::Mutex mu;
  int64_t generation ABSL_GUARDED_BY(mu) = 0;
  std::map<std::string, GroupMember> members ABSL_GUARDED_BY(mu);
  std::map<std::string, std::vector<TopicPartition>> targets ABSL_GUARDED_BY(mu);
  std::map<TopicPartition, std::string> owners ABSL_GUARDED_BY(mu);
};

// A record ready to append: topic and partition resolved. Key, value and headers are the
// producer's own strings (moved in, not encoded): Append gathers them straight into the
// WriteBatch, so the bytes are copied once on their way to RocksDB.
struct PendingRecord {
  std::shared_ptr<TopicState> topic;
  int32_t partition = 0;
  // >= 0: the offset reserved for it (LogStore::Reserve); -1: assigned when appended.
  int64_t offset = -1;
  std::string key;
  std::string value;
  std::vector<Header> headers;
  DeliveryCallback on_delivery;
};

// Contiguous offsets [first, first + count) of one partition, taken by an open transaction.
// Until released (by its commit or abort) readers stop at `first`.
struct Reservation {
  std::shared_ptr<TopicState> topic;
  int32_t partition = 0;
  int64_t first = 0;
  int64_t count = 0;
};

// Group offsets to write with an append, fenced by the member's generation (KIP-447).
struct PendingOffsets {
  std::shared_ptr<GroupState> group;
  // Empty: a consumer without group management (Assign); not fenced.
  std::string member_id;
  int64_t generation = -1;
  std::vector<std::pair<std::shared_ptr<TopicState>, TopicPartitionOffset>> offsets;
};

// One transactional id: its epoch (fencing) and the offsets its current producer has reserved,
// so a new producer with the id can abort the old one's open transaction (as Kafka's
// InitTransactions does) instead of leaving readers stuck at its reservations.
struct TransactionalIdState {
  // Bumped (under `mu`) by each new producer; compared lock-free by the producers.
  std::atomic<int64_t> epoch{0};
  absl::Mutex mu;
  // Open reservations of the producer of the current epoch.
  std::vector<Reservation> reservations ABSL_GUARDED_BY(mu);
};

class LogStore {
 public:
  static absl::StatusOr<std::unique_ptr<LogStore>> Open(const std::string& dir,
                                                        const EmbeddedOptions& options);
  ~LogStore();
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  const EmbeddedOptions& options() const { return options_; }

  // NOT_FOUND for an unknown topic.
  absl::StatusOr<std::shared_ptr<TopicState>> FindTopic(const std::string& name) const;
  absl::Status CreateTopics(const std::vector<TopicSpec>& topics);
  absl::Status DeleteTopics(const std::vector<std::string>& topics);

  // Appends `records` and writes `offsets` in ONE WriteBatch: all or nothing. Each run of
  // consecutive offsets of a partition becomes one segment (one RocksDB key, codec.h). A record
  // with a reserved offset (>= 0) is written there; the others get the partition's next offsets, in
  // order. Every record of the batch gets the same timestamp, the time of the append (Kafka's
  // LogAppendTime): one clock read per batch, not per record. On success, releases `reservations`
  // (they must cover exactly the reserved records) and returns each record's offset, in order.
  // ABORTED when a group offset is fenced; NOT_FOUND when a topic was deleted meanwhile; on any
  // error nothing is written or released.
  absl::StatusOr<std::vector<int64_t>> Append(const std::vector<PendingRecord>& records,
                                              const std::vector<PendingOffsets>& offsets, bool sync,
                                              const std::vector<Reservation>& reservations = {});
  // Takes the next offsets of each partition for `records` (contiguous per partition, in
  // order) without writing anything: offsets[i] is records[i]'s. Readers stop at the first
  // reserved offset until Append (commit) or Release (abort) ends the reservation.
  // NOT_FOUND when a topic was deleted.
  struct Reserved {
    std::vector<int64_t> offsets;
    std::vector<Reservation> reservations;
  };
  absl::StatusOr<Reserved> Reserve(absl::Span<const PendingRecord> records);
  // Ends reservations without writing: their offsets become a gap that readers skip.
  void Release(const std::vector<Reservation>& reservations);
  // Reads records [from, end) of one partition, at most `max`, into `out` from index `*filled`
  // on (overwriting the records there, then appending), advancing `*filled`; `end` is the
  // partition's readable end (LSO) at the time of the read, returned. Offsets without a record
  // (gaps left by aborted or crashed transactions) are skipped.
  absl::StatusOr<int64_t> Read(const TopicState& topic, int32_t partition, int64_t from, size_t max,
                               std::vector<Record>* out, size_t* filled) const;
  // The group's committed offset, or -1.
  absl::StatusOr<int64_t> CommittedOffset(const std::string& group, const TopicState& topic,
                                          int32_t partition) const;

  // Change notification. A reader takes a token of the counters it cares about before it reads,
  // and after finding nothing waits for any of them to move: the store-wide one (topic and group
  // changes: every reader) and one per topic it reads (appends to that topic only). So a record
  // wakes the readers of its topic, not every consumer of the process.
  struct ChangeToken {
    uint64_t store = 0;
    std::vector<std::pair<const TopicState*, uint64_t>> topics;
  };
  uint64_t ChangeSeq();  // the store-wide counter
  ChangeToken Changes(uint64_t store_seq, const std::vector<const TopicState*>& topics);
  void NotifyChange();  // store-wide
  void NotifyAppended(const std::vector<const TopicState*>& topics);
  // Waits until a counter of `token` moves or `deadline` passes. The topics must outlive it.
  void WaitForChange(const ChangeToken& token, absl::Time deadline);

  // The group's state, created on first use; lives as long as the store.
  std::shared_ptr<GroupState> Group(const std::string& name);
  std::string NewMemberId();
  // Recomputes the range assignment; starts a new generation when it changed or `force`.
  void Rebalance(GroupState& group, bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(group.mu);

  // Transactional-id epochs: a new producer bumps the epoch, fences older ones and releases
  // their reservations. Returns the id's state (compare its epoch with `*epoch` to detect
  // fencing without a lock).
  std::shared_ptr<TransactionalIdState> RegisterTransactionalId(const std::string& transactional_id,
                                                                int64_t* epoch);

 private:
  LogStore(std::string dir, const EmbeddedOptions& options);
  absl::Status Load(std::map<std::string, rocksdb::ColumnFamilyHandle*> families,
                    rocksdb::ColumnFamilyHandle* legacy_segments);
  // Copies the records of a directory of the second layout (one "segments" family for every
  // partition) into the partitions' families, then drops it.
  absl::Status MigrateSegments(rocksdb::ColumnFamilyHandle* segments,
                               const std::map<uint32_t, TopicState*>& by_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Creates the families of `topic`'s partitions.
  absl::Status CreateFamilies(TopicState& topic) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops `topic`'s families; their handles live on until the store closes (a reader may be
  // using one).
  void DropFamilies(TopicState& topic) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RebalanceAllGroups();

  const std::string dir_;
  const EmbeddedOptions options_;
  rocksdb::DB* db_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;  // default CF: topic metadata
  rocksdb::ColumnFamilyHandle* offsets_cf_ = nullptr;
  // Options of every partition's family.
  std::unique_ptr<rocksdb::ColumnFamilyOptions> partition_options_;
  // Families of deleted topics, destroyed with the store.
  std::vector<rocksdb::ColumnFamilyHandle*> dropped_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<TopicState>> topics_ ABSL_GUARDED_BY(mu_);
  uint32_t next_topic_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::shared_ptr<GroupState>> groups_ ABSL_GUARDED_BY(mu_);
  int64_t next_member_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<TransactionalIdState>> epochs_
      ABSL_GUARDED_BY(mu_);

  // Waiters block in LockWhen on a condition over the counters; absl::Mutex evaluates those
  // conditions when a notifier unlocks it and wakes only the waiters whose condition holds.
  absl::Mutex notify_mu_;
  uint64_t seq_ ABSL_GUARDED_BY(notify_mu_) = 0;
};

}  // namespace leftfold::internal::log::embedded
