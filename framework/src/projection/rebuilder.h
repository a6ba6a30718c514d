// Rebuilds a projector's RocksDB view from offset 0 next to the live one, then swaps it in.
//
//   Rebuilder rebuilder(log, runner, live_store);
//   absl::Status s = rebuilder.Run([](const RebuildProgress& p) { ... });   // blocks
//
// A second consumer (no group: manual Assign, read_committed) applies the runner's own handlers
// (Runner::Apply) into a shadow store (RocksViewStore::OpenShadow) that keeps its own
// checkpoints, in rounds: each round's target is the live view's checkpoints at its start, so the
// shadow never gets ahead of the live view. When the gap is at most one batch, the live runner is
// paused (Runner::WhilePaused), the shadow catches up to the live checkpoints exactly, and
// RocksViewStore::SwapIn replaces the live database; the runner's next offsets are then still
// right, since the swapped-in checkpoints equal the old ones.
//
// Resuming: the shadow dir outlives a crash or Cancel(); the next Run continues from its
// checkpoints. Events the live runner dead-lettered are skipped (not sent again); with
// dead_letter off, a handler error fails the rebuild, naming the position.
//
// Owned by the caller; the log, the runner and the store must outlive it. Run is called from one
// thread; Cancel is thread-safe (Run then returns CANCELLED, leaving the shadow to resume).
#pragma once

#include <atomic>
#include <functional>

#include "absl/status/status.h"
#include "leftfold/projector.h"
#include "log/log.h"
#include "projection/runner.h"
#include "store/rocks_view_store.h"

namespace leftfold::internal::projection {

class Rebuilder {
 public:
  using ProgressFn = std::function<void(const RebuildProgress&)>;

  Rebuilder(log::Log& log, Runner& runner, store::RocksViewStore& live);
  Rebuilder(const Rebuilder&) = delete;
  Rebuilder& operator=(const Rebuilder&) = delete;

  absl::Status Run(const ProgressFn& on_progress);
  void Cancel() { cancelled_ = true; }

 private:
  // Applies records into the shadow until each partition's shadow checkpoint reaches its target.
  absl::Status CatchUp(store::RocksViewStore& shadow, log::Consumer& consumer,
                       const store::Checkpoints& targets, const ProgressFn& on_progress);
  // The live checkpoints of the runner's topics.
  store::Checkpoints Targets() const;
  void Report(const ProgressFn& on_progress, const store::Checkpoints& shadow_cps,
              const store::Checkpoints& targets, bool swapped, bool force);

  log::Log& log_;
  Runner& runner_;
  store::RocksViewStore& live_;
  std::atomic<bool> cancelled_{false};

  // Progress (Run's thread only).
  absl::Time started_;
  int64_t applied_this_run_ = 0;
  int64_t last_done_ = 0;
  absl::Time last_log_ = absl::InfinitePast();
};

}  // namespace leftfold::internal::projection
