// The projector runtime: a consumer group over the projector's sources (group id = topic prefix +
// projector name, read_committed) that applies each poll batch to the view store and commits the
// view writes together with the checkpoints in one store transaction.
//
//   auto store = store::RocksViewStore::Open(dir, projector.name());
//   Runner runner(*log, projector, **store, {.topic_prefix = ""});
//   absl::Status s = runner.Start();          // validates, subscribes, starts its thread
//   runner.WaitFor(positions, deadline);      // consistency token
//   runner.Stop();
//
// The view store, not Kafka, is the source of truth for positions: on assignment each partition
// is sought to the checkpoint stored in the view store. Kafka's committed offsets follow (at most
// once per offset_hint_interval, after store commits) only so lag tooling sees the group move.
//
// Poison events (undecodable envelope or payload, handler error or exception): by default that
// partition halts (paused; Lag() and halted() name the position), the others go on. With
// dead_letter the event is copied to "<prefix><name>.dlq" (headers say where it came from and
// why) and skipped.
//
// Pipelined: while the handlers run one batch on the polling thread, the next poll's records are
// decoded on a decoder thread, and a RocksDB store writes the previous batch on its writer thread
// (see RocksViewStore). The consumer is used by the polling thread only; records polled before a
// seek of their partition (rewind, new assignment) are dropped, never applied out of order.
//
// Owned by the caller; the log and the store must outlive it. Thread-safe; the polling and
// decoder threads are its own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "leftfold/projector.h"
#include "log/log.h"
#include "store/projection_store.h"

namespace leftfold::internal::projection {

// Default batch sizes (see ProjectorOptions::max_batch for why they differ).
inline constexpr size_t kDefaultViewBatch = 5000;
inline constexpr size_t kDefaultSqlBatch = 250;

struct RunnerOptions {
  // Prepended to topic names (TransportOptions::topic_prefix). Default: none.
  std::string topic_prefix;
  // Partitions for sources that do not exist yet (created like the processor creates them).
  // Default: 4.
  int32_t partitions = 4;
  // See ProjectorOptions.
  bool dead_letter = false;
  size_t max_batch = kDefaultViewBatch;
  absl::Duration poll_timeout = absl::Milliseconds(100);
  // Static group membership (Kafka's group.instance.id); empty: a dynamic member.
  std::string instance_id;
  // How often the consumer group's committed offsets follow the store's checkpoints (a hint for
  // lag tooling only). Default: 1s.
  absl::Duration offset_hint_interval = absl::Seconds(1);
  // Tests only: asked before each store commit; true simulates a crash there (the batch is
  // dropped uncommitted and the runner thread stops at once).
  std::function<bool()> crash_before_commit;
};

class Runner {
 public:
  Runner(log::Log& log, Projector projector, store::ProjectionStore& store, RunnerOptions options);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  absl::Status Start();
  // Leaves the group and joins the thread. Returns the error that stopped the runner, if any.
  absl::Status Stop();

  absl::StatusOr<std::vector<PartitionLag>> Lag() const;
  absl::Status WaitFor(const std::vector<v1::Position>& positions, absl::Time deadline) const;
  // OK while every partition runs; else the first halt reason (naming topic/partition@offset).
  absl::Status halted() const;
  // Events applied (committed) by this runner, and batches committed.
  int64_t events_applied() const { return events_applied_.load(); }
  const Projector& projector() const { return projector_; }
  const std::vector<std::string>& topics() const { return topics_; }
  const RunnerOptions& options() const { return options_; }

  // Runs `fn` while no batch is in flight and none starts (the polling thread waits before its
  // next batch), the store's writes all done (Flush): the rebuilder swaps the store under it.
  // Keep `fn` short: the view stops moving.
  absl::Status WhilePaused(const std::function<absl::Status()>& fn);
  // Runs the projector's handler for one record into `batch` (no checkpoint): shared with the
  // rebuilder so a rebuilt view is made by exactly the same code.
  absl::Status Apply(const log::Record& record, store::Batch& batch) const;

 private:
  // One poll's records and their decoded envelopes. The runner holds two: while the handlers
  // run one batch, the decoder thread decodes the next (the poll stays on the runner's thread).
  struct Polled {
    std::vector<log::Record> records;
    // The records this Polled held before: freed by the decoder thread, not the runner's.
    std::vector<log::Record> retired;
    std::vector<v1::EventEnvelope> envelopes;  // [i] decodes records[i] (reused: buffers kept)
    std::vector<char> decoded;                 // [i]: records[i] decoded
    uint64_t seek_stamp = 0;                   // seeks_ right after the poll
  };
  // Snapshot topics' records are converted into an envelope. False: undecodable.
  bool Decode(const log::Record& record, v1::EventEnvelope* envelope) const;
  void DecodeAll(Polled& polled) const;
  absl::Status ApplyDecoded(const log::Record& record, const v1::EventEnvelope* envelope,
                            const v1::Position& position, store::Batch& batch) const;
  // The decoder thread: decodes what StartDecode hands it.
  void DecoderLoop();
  void StartDecode(Polled* polled);
  void WaitDecode();

  void Run();
  absl::Status RunLoop();
  absl::Status ProcessBatch(Polled& polled);
  absl::Status DeadLetter(const log::Record& record, const absl::Status& error);
  absl::Status SeekToCheckpoints(const std::vector<log::TopicPartition>& tps);
  // Commits the checkpoints of recent batches as the group's offsets, at most once per
  // offset_hint_interval unless `force`.
  void HintGroupOffsets(bool force);

  log::Log& log_;
  Projector projector_;
  store::ProjectionStore& store_;
  RunnerOptions options_;
  std::vector<std::string> topics_;
  std::set<std::string> snapshot_topics_;
  std::string dlq_topic_;

  // Owned by the polling thread.
  std::unique_ptr<log::Consumer> consumer_;
  std::unique_ptr<log::Producer> dlq_producer_;
  std::map<log::TopicPartition, int64_t> next_;              // next offset to apply
  std::set<log::TopicPartition> pending_seek_;               // assigned, not yet sought
  std::map<log::TopicPartition, int64_t> unhinted_offsets_;  // committed to the store only
  absl::Time last_hint_ = absl::InfinitePast();
  // Seeks so far, and per partition the count at its last seek: records polled before a
  // partition's last seek came from its old position and are dropped (a later poll re-reads
  // them from the new one).
  uint64_t seeks_ = 0;
  std::map<log::TopicPartition, uint64_t> sought_at_;
  v1::Position position_;  // the current event's, lent to its EventContext

  // The decoder thread and its one job (a Polled, or null when idle). std::mutex, not
  // absl::Mutex: a plain hand-off between two threads.
  std::thread decoder_;
  std::mutex decode_mu_;
  std::condition_variable decode_cv_;
  Polled* decode_job_ = nullptr;
  bool decode_stop_ = false;

  std::atomic<bool> stop_{false};
  std::atomic<int64_t> events_applied_{0};
  std::thread thread_;

  // Held by the polling thread around each batch (seeks included); WhilePaused takes it.
  absl::Mutex batch_mu_;
  // A failed background write WhilePaused's flush found: the polling thread rewinds for it.
  absl::Status deferred_error_ ABSL_GUARDED_BY(batch_mu_);
  mutable absl::Mutex mu_;
  std::set<log::TopicPartition> assigned_ ABSL_GUARDED_BY(mu_);
  std::map<log::TopicPartition, absl::Status> halted_ ABSL_GUARDED_BY(mu_);
  absl::Status run_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leftfold::internal::projection
