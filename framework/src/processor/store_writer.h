// Writes committed batches into the partition stores on a thread of its own, in commit order, so
// the processor decides its next batch while the last one is still being written.
//
//   StoreWriter writer(/*max_pending=*/2);
//   uint64_t seq = writer.Enqueue(std::move(batch));  // after the transaction committed
//   ...                                               // decide the next batch meanwhile
//   if (absl::Status s = writer.Drain(); !s.ok()) ...  // before a store is closed or restored
//
// The stores are caches of the log: a write lost in a crash is replayed by restore from the
// changelog offsets the store recorded. Until a batch is written (applied() >= its sequence
// number) the processor answers reads of its results and states from the batch itself.
//
// Thread-safety: Enqueue, Drain, applied and error may be called from one owner thread while the
// writer thread runs. The PartitionStore objects named in a batch must stay open until Drain
// returns (RocksDB allows the owner's concurrent reads).
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/background_writer.h"
#include "processor/partition_store.h"

namespace leftfold::internal::processor {

class StoreWriter {
 public:
  // Everything one transaction changed, per store.
  using Batch = std::vector<std::pair<PartitionStore*, PartitionStore::Update>>;

  // Enqueue blocks while `max_pending` batches wait, which bounds memory and how far the stores
  // lag behind the log.
  explicit StoreWriter(size_t max_pending);
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Queues one committed batch; returns its sequence number (1, 2, 3...). The batch is shared
  // so the owner can keep reading it until it is written.
  uint64_t Enqueue(std::shared_ptr<const Batch> batch);
  // Waits until every queued batch is written. Returns the first write error, if any.
  absl::Status Drain();
  // The sequence number of the last batch written (0 before the first).
  uint64_t applied() const;
  // The first write error; once set, later batches are dropped (the processor must stop).
  absl::Status error() const;

 private:
  BackgroundWriter writer_;
};

}  // namespace leftfold::internal::processor
