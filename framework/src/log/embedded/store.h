// The embedded log's shared state: the RocksDB instance, the topic table, offset assignment,
// consumer-group coordination and change notification. Internal to log/embedded; the Log,
// Producer and Consumer classes (clients.h) are thin owners of a LogStore pointer.
//
//   auto store = LogStore::Open("/tmp/log", EmbeddedOptions{});
//   auto topic = (*store)->FindTopic("t");
//   auto offsets = (*store)->Append(records, /*offsets=*/{}, /*sync=*/true);
//
// Thread-safe. Lock order (never taken the other way round): GroupState::mu, then LogStore::mu_,
// then PartitionState::mu in (topic id, partition) order, then the notify mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "log/embedded/embedded_log.h"
#include "log/log.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace leftfold::internal::log::embedded {

struct PartitionState {
  // Held while offsets are assigned and the batch is written, so offsets are contiguous and
  // written in order.
  absl::Mutex mu;
  // Next offset to assign = the end offset readers see (only committed batches exist).
  std::atomic<int64_t> end{0};
};

struct TopicState {
  std::string name;
  uint32_t id = 0;
  int32_t partition_count = 0;
  std::map<std::string, std::string> configs;
  std::vector<std::unique_ptr<PartitionState>> partitions;
  // Set by DeleteTopics under every partition lock; appends check it under their lock.
  std::atomic<bool> deleted{false};
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

// A record ready to append: topic resolved, value encoded.
struct PendingRecord {
  std::shared_ptr<TopicState> topic;
  int32_t partition = 0;
  std::string value;
  DeliveryCallback on_delivery;
};

// Group offsets to write with an append, fenced by the member's generation (KIP-447).
struct PendingOffsets {
  std::shared_ptr<GroupState> group;
  // Empty: a consumer without group management (Assign); not fenced.
  std::string member_id;
  int64_t generation = -1;
  std::vector<std::pair<std::shared_ptr<TopicState>, TopicPartitionOffset>> offsets;
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

  // Appends `records` and writes `offsets` in ONE WriteBatch: all or nothing. Returns each
  // record's offset, in order. ABORTED when a group offset is fenced; NOT_FOUND when a topic was
  // deleted meanwhile.
  absl::StatusOr<std::vector<int64_t>> Append(const std::vector<PendingRecord>& records,
                                              const std::vector<PendingOffsets>& offsets,
                                              bool sync);
  // Reads records [from, end) of one partition, at most `max`, appending to `out`.
  absl::Status Read(const TopicState& topic, int32_t partition, int64_t from, size_t max,
                    std::vector<Record>* out) const;
  // The group's committed offset, or -1.
  absl::StatusOr<int64_t> CommittedOffset(const std::string& group, const TopicState& topic,
                                          int32_t partition) const;

  // Change notification: bumped on every append, topic change and group change.
  uint64_t ChangeSeq();
  void NotifyChange();
  // Waits until the sequence moves past `seq` or `deadline` passes.
  void WaitForChange(uint64_t seq, absl::Time deadline);

  // The group's state, created on first use; lives as long as the store.
  std::shared_ptr<GroupState> Group(const std::string& name);
  std::string NewMemberId();
  // Recomputes the range assignment; starts a new generation when it changed or `force`.
  void Rebalance(GroupState& group, bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(group.mu);

  // Transactional-id epochs: a new producer bumps the epoch and fences older ones. Returns the
  // id's epoch cell (compare it with `*epoch` to detect fencing without a lock).
  std::shared_ptr<std::atomic<int64_t>> RegisterTransactionalId(const std::string& transactional_id,
                                                                int64_t* epoch);

 private:
  LogStore(std::string dir, const EmbeddedOptions& options)
      : dir_(std::move(dir)), options_(options) {}
  absl::Status Load();
  void RebalanceAllGroups();

  const std::string dir_;
  const EmbeddedOptions options_;
  rocksdb::DB* db_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;  // default CF: topic metadata
  rocksdb::ColumnFamilyHandle* records_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* offsets_cf_ = nullptr;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<TopicState>> topics_ ABSL_GUARDED_BY(mu_);
  uint32_t next_topic_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::shared_ptr<GroupState>> groups_ ABSL_GUARDED_BY(mu_);
  int64_t next_member_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<std::atomic<int64_t>>> epochs_
      ABSL_GUARDED_BY(mu_);

  absl::Mutex notify_mu_;
  absl::CondVar notify_cv_;
  uint64_t seq_ ABSL_GUARDED_BY(notify_mu_) = 0;
};

}  // namespace leftfold::internal::log::embedded
