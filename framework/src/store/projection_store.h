// The contract between the projector runtime and a view store: a batch of view writes and the
// projector's checkpoints (per partition, the next offset to apply) commit in ONE local
// transaction, so a view is exactly-once without Kafka transactions. Implemented by
// RocksViewStore (one RocksDB WriteBatch) and PgStore (one SQL transaction).
//
//   std::unique_ptr<ProjectionStore> store = ...;
//   absl::StatusOr<Checkpoints> cps = store->LoadCheckpoints();     // where to seek
//   auto batch = store->Begin();
//   projector.Dispatch(ctx, payload, false, (*batch)->view(), (*batch)->sql());
//   (*batch)->Commit({{tp, next_offset}});     // writes + checkpoints, atomically
//   store->watermarks().WaitFor(positions, deadline);   // consistency tokens
//
// A store serves one projector (its name is the view's name). Begin/Commit are called from the
// runtime's thread only; LoadCheckpoints and watermarks() are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "leftfold/v1/envelope.pb.h"
#include "leftfold/view.h"
#include "log/log.h"

namespace leftfold::internal::store {

// Per partition: the next offset the view has NOT applied yet.
using Checkpoints = std::map<log::TopicPartition, int64_t>;

// The committed checkpoints of a store, in memory, for consistency-token waits. Thread-safe.
class Watermarks {
 public:
  void Advance(const Checkpoints& checkpoints);
  // -1 when the partition has no checkpoint.
  int64_t Get(const log::TopicPartition& tp) const;
  Checkpoints Snapshot() const;
  // Returns once, for every position, the checkpoint of its partition is > its offset (the event
  // is applied). Positions whose topic is not in `topics` are ignored (another projector's).
  // DEADLINE_EXCEEDED, naming the first missing position, when `deadline` passes first.
  absl::Status WaitFor(const std::vector<v1::Position>& positions, absl::Time deadline,
                       const std::vector<std::string>& topics) const;

 private:
  mutable absl::Mutex mu_;
  Checkpoints checkpoints_ ABSL_GUARDED_BY(mu_);
};

// The writes of one poll batch. Destroying it without Commit drops the writes.
class Batch {
 public:
  virtual ~Batch() = default;
  // Exactly one of these is non-null, matching the store.
  virtual View* view() = 0;
  virtual SqlView* sql() = 0;
  // Commits the writes and these checkpoints atomically, then advances the watermarks.
  // On error nothing is committed (PostgreSQL: unless the commit's outcome is unknown, which the
  // caller resolves by re-reading the checkpoints). A store may finish the write in the
  // background (RocksViewStore): the watermarks then advance once it is in the store, the next
  // batches already read its rows, and a failure of that write is returned by the next Commit
  // or Flush (nothing of the failed batch, nor of the batches after it, is then in the store).
  virtual absl::Status Commit(const Checkpoints& checkpoints) = 0;
  // The runtime numbers the events of a batch; writes a store defers (SqlView::Queue) remember
  // the number, so a deferred error still names the event that caused it.
  virtual void StartEvent(size_t index) { (void)index; }
  // After an error from a handler's call or from Commit: the event whose deferred write failed,
  // if the error came from one (that event is the poison one, not the current).
  virtual std::optional<size_t> failed_event() const { return std::nullopt; }
};

class ProjectionStore {
 public:
  virtual ~ProjectionStore() = default;
  virtual absl::StatusOr<Checkpoints> LoadCheckpoints() = 0;
  virtual absl::StatusOr<std::unique_ptr<Batch>> Begin() = 0;
  // Waits until every batch whose Commit returned OK is in the store (a store may write a
  // committed batch in the background, e.g. RocksViewStore); returns the failure of such a write
  // (once), after which the caller must resume from LoadCheckpoints. Runtime thread only.
  virtual absl::Status Flush() { return absl::OkStatus(); }
  // Committed checkpoints (loaded at open, advanced by each commit).
  const Watermarks& watermarks() const { return watermarks_; }

 protected:
  Watermarks watermarks_;
};

}  // namespace leftfold::internal::store
