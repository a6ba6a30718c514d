#include "gateway/log_tail.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/thread_name.h"
#include "leftfold/logging.h"
#include "log/errors.h"

namespace leftfold::internal::gateway {

absl::StatusOr<std::vector<log::TopicPartitionOffset>> EndOffsets(
    log::Admin& admin, const std::vector<std::string>& topics) {
  std::vector<log::TopicPartitionOffset> out;
  for (const std::string& topic : topics) {
    absl::StatusOr<std::vector<int64_t>> ends =
        admin.EndOffsets(topic, log::Isolation::kReadCommitted);
    if (!ends.ok()) return ends.status();
    for (int32_t p = 0; p < static_cast<int32_t>(ends->size()); ++p) {
      out.push_back({{topic, p}, (*ends)[p]});
    }
  }
  return out;
}

absl::StatusOr<std::vector<log::TopicPartitionOffset>> StartOffsetsFrom(
    const std::vector<log::TopicPartitionOffset>& ends, int64_t lookback,
    const std::vector<log::TopicPartitionOffset>& from) {
  for (const log::TopicPartitionOffset& f : from) {
    bool topic_known = std::any_of(ends.begin(), ends.end(),
                                   [&](const auto& e) { return e.tp.topic == f.tp.topic; });
    if (!topic_known) {
      return absl::InvalidArgumentError(
          absl::StrCat("position topic '", f.tp.topic, "' is not one of the subscribed topics"));
    }
    bool known = std::any_of(ends.begin(), ends.end(), [&](const auto& e) { return e.tp == f.tp; });
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("position ", f.tp.topic, ":", f.tp.partition, " names no partition"));
    }
  }
  std::vector<log::TopicPartitionOffset> out;
  for (const log::TopicPartitionOffset& e : ends) {
    // end - lookback cannot overflow: end >= 0 and lookback <= INT64_MAX.
    log::TopicPartitionOffset tpo{e.tp, std::max<int64_t>(0, e.offset - lookback)};
    for (const log::TopicPartitionOffset& f : from) {
      if (f.tp == tpo.tp) tpo.offset = std::max<int64_t>(0, f.offset);
    }
    out.push_back(std::move(tpo));
  }
  return out;
}

absl::StatusOr<std::vector<log::TopicPartitionOffset>> StartOffsets(
    log::Admin& admin, const std::vector<std::string>& topics, int64_t lookback,
    const std::vector<log::TopicPartitionOffset>& from) {
  absl::StatusOr<std::vector<log::TopicPartitionOffset>> ends = EndOffsets(admin, topics);
  if (!ends.ok()) return ends.status();
  return StartOffsetsFrom(*ends, lookback, from);
}

absl::StatusOr<std::unique_ptr<log::Consumer>> OpenAssigned(
    log::Log& log, const std::vector<log::TopicPartitionOffset>& start) {
  absl::StatusOr<std::unique_ptr<log::Consumer>> consumer =
      log.NewConsumer({.isolation = log::Isolation::kReadCommitted});
  if (!consumer.ok()) return consumer.status();
  if (absl::Status s = (*consumer)->Assign(start); !s.ok()) return s;
  return consumer;
}

LogTail::LogTail(log::Log& log, std::vector<std::string> topics, int64_t lookback,
                 RecordHandler handler)
    : log_(log), topics_(std::move(topics)), lookback_(lookback), handler_(std::move(handler)) {}

namespace {
// A topic created a moment ago may have no leader yet: retry what the log calls retriable.
absl::StatusOr<std::vector<log::TopicPartitionOffset>> StartOffsetsRetrying(
    log::Admin& admin, const std::vector<std::string>& topics, int64_t lookback) {
  absl::Time give_up = absl::Now() + absl::Seconds(30);
  for (;;) {
    absl::StatusOr<std::vector<log::TopicPartitionOffset>> out =
        StartOffsets(admin, topics, lookback);
    if (out.ok() || log::ClassifyError(out.status()) != log::ErrorClass::kRetriable ||
        absl::Now() > give_up) {
      return out;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}
}  // namespace

absl::Status LogTail::Start() {
  absl::StatusOr<std::vector<log::TopicPartitionOffset>> ends =
      StartOffsetsRetrying(log_.admin(), topics_, 0);
  if (!ends.ok()) return ends.status();
  targets_ = *ends;
  absl::StatusOr<std::vector<log::TopicPartitionOffset>> start =
      StartOffsetsRetrying(log_.admin(), topics_, lookback_);
  if (!start.ok()) return start.status();
  absl::StatusOr<std::unique_ptr<log::Consumer>> consumer = OpenAssigned(log_, *start);
  if (!consumer.ok()) return consumer.status();
  consumer_ = *std::move(consumer);
  for (const log::TopicPartitionOffset& s : *start) next_[s.tp] = s.offset;
  thread_ = std::thread([this] {
    NameThisThread("lf-log-tail");
    Run();
  });
  return absl::OkStatus();
}

bool LogTail::WaitCaughtUp(absl::Duration timeout) {
  return caught_up_.WaitForNotificationWithTimeout(timeout);
}

void LogTail::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (consumer_ != nullptr) {
    consumer_->Close().IgnoreError();
    consumer_.reset();
  }
}

void LogTail::Run() {
  while (!stop_) {
    if (!caught_up_.HasBeenNotified()) {
      // The consumer's position (not the last record) also moves past transaction markers.
      bool all = true;
      for (const log::TopicPartitionOffset& t : targets_) {
        absl::StatusOr<int64_t> pos = consumer_->Position(t.tp);
        if (!pos.ok() || *pos < t.offset) all = false;
      }
      if (all) caught_up_.Notify();
    }
    absl::StatusOr<std::vector<log::Record>> batch = consumer_->Poll(500, absl::Milliseconds(100));
    if (!batch.ok()) {
      LogWarning(
          "gateway", "tail poll failed",
          {{"topic", topics_.empty() ? "" : topics_[0]}, {"error", batch.status().ToString()}});
      absl::SleepFor(absl::Milliseconds(100));  // back off a broken log instead of spinning
      continue;
    }
    for (log::Record& r : *batch) {
      // A linear scan of the few partitions: no TopicPartition (a string copy) per record.
      int64_t* next = nullptr;
      for (auto& [tp, offset] : next_) {
        if (tp.partition == r.partition && tp.topic == r.topic) {
          next = &offset;
          break;
        }
      }
      int64_t offset = r.offset;
      if (next == nullptr) next = &next_[log::TopicPartition{r.topic, r.partition}];
      handler_(r, next_);
      *next = offset + 1;
    }
  }
}

}  // namespace leftfold::internal::gateway
