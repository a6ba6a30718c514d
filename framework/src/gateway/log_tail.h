// Reading topics from the gateway's side: every partition of a set of topics, manually assigned
// (no consumer group, so every gateway instance sees every record), read_committed.
//
//   LogTail tail(log, {"bank.account.results"}, /*lookback=*/1000,
//                [](log::Record& r, const PositionMap& next) { ... });
//   tail.Start();             // from the end (minus lookback) of each partition
//   tail.WaitCaughtUp(absl::Seconds(5));
//   tail.Stop();
//
// LogTail owns one thread and one Consumer; the handler runs on that thread, one record at a
// time, with `next` = the offset after the last record already handed over, per partition (the
// resume point of a subscriber that misses this record). Start/Stop from one thread.
#pragma once

#include <atomic>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "log/log.h"

namespace leftfold::internal::gateway {

using PositionMap = std::map<log::TopicPartition, int64_t>;
// The handler may move from the record (its value, say): the tail is done with it.
using RecordHandler = std::function<void(log::Record&, const PositionMap& next)>;

// The read_committed end offset of every partition of `topics`, in topic then partition order.
absl::StatusOr<std::vector<log::TopicPartitionOffset>> EndOffsets(
    log::Admin& admin, const std::vector<std::string>& topics);

// Start offsets for the partitions of `ends` (as EndOffsets returns them): `from` where listed,
// else the end minus `lookback` (not below 0; kFromStart: offset 0). INVALID_ARGUMENT for a
// `from` naming a topic or partition outside `ends`.
inline constexpr int64_t kFromStart = std::numeric_limits<int64_t>::max();
absl::StatusOr<std::vector<log::TopicPartitionOffset>> StartOffsetsFrom(
    const std::vector<log::TopicPartitionOffset>& ends, int64_t lookback,
    const std::vector<log::TopicPartitionOffset>& from = {});

// EndOffsets, then StartOffsetsFrom.
absl::StatusOr<std::vector<log::TopicPartitionOffset>> StartOffsets(
    log::Admin& admin, const std::vector<std::string>& topics, int64_t lookback,
    const std::vector<log::TopicPartitionOffset>& from = {});

// A consumer assigned at StartOffsets, plus the resume map.
absl::StatusOr<std::unique_ptr<log::Consumer>> OpenAssigned(
    log::Log& log, const std::vector<log::TopicPartitionOffset>& start);

class LogTail {
 public:
  LogTail(log::Log& log, std::vector<std::string> topics, int64_t lookback, RecordHandler handler);
  ~LogTail() { Stop(); }

  absl::Status Start();
  // True once every partition reached the end it had at Start (false on timeout).
  bool WaitCaughtUp(absl::Duration timeout);
  void Stop();

 private:
  void Run();

  log::Log& log_;
  const std::vector<std::string> topics_;
  const int64_t lookback_;
  RecordHandler handler_;
  std::unique_ptr<log::Consumer> consumer_;  // owned by thread_ once started
  std::vector<log::TopicPartitionOffset> targets_;
  PositionMap next_;
  absl::Notification caught_up_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace leftfold::internal::gateway
