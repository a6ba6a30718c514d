// The embedded backend's Producer and Consumer. Internal to log/embedded: callers get them as
// log::Producer / log::Consumer from EmbeddedLog (embedded_log.h).
//
// Both hold a raw LogStore pointer; the Log that owns the store outlives them (log.h contract).
// Each is used by one owner thread. A plain producer also runs one background thread that
// writes lingering batches; its delivery callbacks still run on the owner thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "log/embedded/store.h"
#include "log/log.h"
#include "log/spare_records.h"

namespace leftfold::internal::log::embedded {

class EmbeddedProducer final : public Producer {
 public:
  EmbeddedProducer(LogStore* store, const ProducerOptions& options);
  ~EmbeddedProducer() override;

  absl::Status BeginTransaction() override;
  absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                        const Consumer& consumer) override;
  absl::Status CommitTransaction() override;
  absl::Status AbortTransaction() override;
  absl::Status Produce(OutgoingRecord record, DeliveryCallback on_delivery) override;
  // Copies the key, value and headers (not the topic name) into the staged record.
  absl::Status ProduceCopy(const OutgoingRecordRef& record, DeliveryCallback on_delivery) override;
  absl::Status Flush(absl::Duration timeout) override;
  // Transactional: returns at once (records are delivered by Flush and the commit).
  size_t Poll(absl::Duration timeout) override;
  void Wake() override;
  absl::Status Close() override;

 private:
  enum class Txn { kNone, kOpen, kAbortOnly };

  // FAILED_PRECONDITION when closed; FatalError once a newer producer took the transactional id.
  absl::Status CheckUsable();
  absl::Status CheckInTransaction();
  // The topic named `name` from the producer's cache (refreshed when it was deleted).
  absl::StatusOr<const std::shared_ptr<TopicState>*> Topic(absl::string_view name);
  // Produce and ProduceCopy: `record` is an OutgoingRecord&& (moved from) or an
  // OutgoingRecordRef (copied).
  template <typename Record>
  absl::Status ProduceRecord(Record&& record, DeliveryCallback on_delivery);
  // Checks `record` and moves or copies it (and moves `on_delivery`) into `*out`.
  template <typename Record>
  absl::Status Prepare(Record&& record, DeliveryCallback& on_delivery, PendingRecord* out);
  // Runs the staged records' callbacks with `status`, releases the transaction's reserved
  // offsets (they become a gap) and drops the transaction.
  void DropTransaction(const absl::Status& status);
  // Reserves offsets for the staged records that have none yet and completes their callbacks
  // (Kafka's Flush inside a transaction: a record has its offset before the commit).
  absl::Status ReserveStaged();
  // Forgets this producer's reservations in the transactional id's state (commit or abort).
  void ForgetReservations();
  // A transactional record's delivery, in one reused result (a DeliveryCallback's argument is
  // valid for the call only): no topic name copied per record. Staging never delivers, so a
  // callback that produces again cannot overwrite it under its caller.
  const absl::StatusOr<TopicPartitionOffset>& Delivered(const PendingRecord& record,
                                                        int64_t offset);
  absl::Status WritePendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunCompletions() ABSL_LOCKS_EXCLUDED(mu_);
  void FlusherLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown();

  LogStore* const store_;
  const bool transactional_;
  const absl::Duration linger_;
  const std::string transactional_id_;
  int64_t epoch_ = 0;
  std::shared_ptr<TransactionalIdState> txn_state_;
  bool closed_ = false;
  Txn txn_ = Txn::kNone;
  absl::Status abort_reason_;
  std::vector<PendingRecord> staged_;
  // Records of committed transactions, refilled by later ones (ProduceRecord): their strings
  // keep their capacity, so staging a record allocates nothing. At most one transaction's worth.
  std::vector<PendingRecord> spares_;
  static constexpr size_t kMaxSpareBytes = 64 << 10;  // larger values are not kept
  // staged_[0, reserved_count_) have reserved offsets (flushed); the rest get theirs at commit.
  size_t reserved_count_ = 0;
  std::vector<Reservation> reservations_;
  std::vector<PendingOffsets> staged_offsets_;
  absl::StatusOr<TopicPartitionOffset> delivered_ = TopicPartitionOffset{};
  // Topics this producer wrote to, most recent last: saves the store's lookup per record.
  static constexpr size_t kMaxCachedTopics = 8;
  std::vector<std::shared_ptr<TopicState>> topics_;

  // Plain mode: shared with the flusher thread.
  absl::Mutex mu_;
  std::vector<PendingRecord> pending_ ABSL_GUARDED_BY(mu_);
  absl::Time first_pending_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<DeliveryCallback, absl::StatusOr<TopicPartitionOffset>>> completed_
      ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread flusher_;
};

class EmbeddedConsumer final : public Consumer {
 public:
  EmbeddedConsumer(LogStore* store, const ConsumerOptions& options);
  ~EmbeddedConsumer() override;

  absl::Status Subscribe(const std::vector<std::string>& topics,
                         RebalanceListener listener) override;
  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) override;
  std::vector<TopicPartition> Assignment() const override;
  absl::StatusOr<std::vector<Record>> Poll(size_t max_records, absl::Duration timeout) override;
  void Recycle(std::vector<Record> records) override;
  absl::Status Seek(const TopicPartitionOffset& position) override;
  absl::Status Pause(const std::vector<TopicPartition>& partitions) override;
  absl::Status Resume(const std::vector<TopicPartition>& partitions) override;
  absl::StatusOr<int64_t> Position(const TopicPartition& partition) const override;
  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartition>& partitions, absl::Duration timeout) override;
  absl::Status CommitOffsets(const std::vector<TopicPartitionOffset>& offsets) override;
  absl::Status Close() override;

  // Offsets to commit on this consumer's behalf, fenced by its current group generation.
  absl::StatusOr<PendingOffsets> FencedOffsets(
      const std::vector<TopicPartitionOffset>& offsets) const;
  const LogStore* store() const { return store_; }

 private:
  struct Cursor {
    std::shared_ptr<TopicState> topic;
    int64_t next = 0;
    bool paused = false;
  };

  absl::Status CheckOpen() const;
  // Group protocol step: release revoked partitions (after on_revoked), then claim the new
  // target once its previous owners released it (then on_assigned).
  absl::Status RunRebalance();
  absl::StatusOr<int64_t> StartOffset(const TopicState& topic, int32_t partition) const;
  void Leave(bool run_callbacks);

  LogStore* const store_;
  const ConsumerOptions options_;
  std::shared_ptr<GroupState> group_;  // set when options_.group_id is
  // What FencedOffsets reads: offsets may be committed or sent to a transaction on another
  // thread while the owner polls (see Consumer::CommitOffsets). Only the owner thread writes
  // them, under fence_mu_; it reads them without the lock.
  mutable absl::Mutex fence_mu_;
  std::string member_id_;
  bool subscribed_ = false;
  bool closed_ = false;
  int64_t generation_ = -1;
  RebalanceListener listener_;
  std::map<TopicPartition, Cursor> assigned_;
  size_t next_start_ = 0;  // round robin over partitions, so none starves
  SpareRecords spare_;
};

}  // namespace leftfold::internal::log::embedded
