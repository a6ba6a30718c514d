// Runs write jobs on a thread of its own, one at a time, in the order they were queued, so the
// owner prepares its next batch while the last one is written. Shared by the processor's
// partition-store writer and the RocksDB view store's commit writer.
//
//   BackgroundWriter writer(/*max_pending=*/2);
//   uint64_t seq = writer.Enqueue([batch] { return Write(*batch); });
//   ...                                            // prepare the next batch meanwhile
//   if (absl::Status s = writer.Drain(); !s.ok()) ...
//
// The first failed job's status is kept; jobs queued after it are skipped (not run) until the
// owner takes the error (DrainAndTakeError). The destructor runs what is queued, then joins.
// Thread-safety: every method may be called from the owner thread while the writer runs; the
// jobs run on the writer thread only.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/status/status.h"

namespace leftfold::internal {

class BackgroundWriter {
 public:
  using Job = std::function<absl::Status()>;

  // Enqueue blocks while `max_pending` jobs (the one running included) wait: that bounds memory
  // and how far the writes lag behind.
  // Its thread is named `name` (see NameThisThread).
  BackgroundWriter(size_t max_pending, std::string name);
  ~BackgroundWriter();
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  // Queues a job; returns its sequence number (1, 2, 3...).
  uint64_t Enqueue(Job job);
  // Waits until every queued job ran (or was skipped). Returns the kept error, if any.
  absl::Status Drain();
  // Drain, and forgets the kept error: jobs queued from now on run again.
  absl::Status DrainAndTakeError();
  // The sequence number of the last job done (0 before the first).
  uint64_t applied() const;
  // The kept error.
  absl::Status error() const;

 private:
  void Loop();

  const size_t max_pending_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::pair<uint64_t, Job>> queue_;  // the front stays while it runs
  uint64_t enqueued_ = 0;
  uint64_t applied_ = 0;
  absl::Status error_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is set up
};

}  // namespace leftfold::internal
