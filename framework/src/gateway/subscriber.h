// One SubscribeResults / SubscribeEvents stream: a filter, a bounded queue and the gRPC write
// reactor that drains it, one message in flight at a time.
//
// The readers (results/events tails, the replay pump) Offer() records; gRPC's OnWriteDone takes
// the next one. A full queue ends the stream with RESOURCE_EXHAUSTED and the positions to resume
// from, so a subscriber that does not read costs at most `capacity` messages and never slows the
// reader or the other subscribers.
//
// Lifetime: the reactor is created by the RPC handler and deleted by gRPC's OnDone (which comes
// only after Finish). Readers hold a shared_ptr<Sink<Msg>>; the sink calls Finish exactly once and
// never touches the reactor after it, so readers may keep offering to a finished sink harmlessly
// and drop it when `done()`.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gateway/log_tail.h"
#include "leftfold/v1/envelope.pb.h"
#include "leftfold/v1/gateway_service.pb.h"

namespace leftfold::internal::gateway {

inline constexpr char kResumeMetadata[] = "leftfold-resume-bin";

// ResultFilter / EventFilter, compiled. Works for CommandResult and EventEnvelope alike.
struct Filter {
  absl::flat_hash_set<std::string> aggregate_types;
  absl::flat_hash_set<std::string> aggregate_ids;
  absl::flat_hash_set<std::string> command_ids;
  std::string correlation_id;

  template <typename Proto>
  static Filter From(const Proto& f) {
    Filter out;
    out.aggregate_types.insert(f.aggregate_types().begin(), f.aggregate_types().end());
    out.aggregate_ids.insert(f.aggregate_ids().begin(), f.aggregate_ids().end());
    out.command_ids.insert(f.command_ids().begin(), f.command_ids().end());
    out.correlation_id = f.correlation_id();
    return out;
  }

  template <typename Msg>
  bool Matches(const Msg& m) const {
    return (aggregate_types.empty() || aggregate_types.contains(m.aggregate_type())) &&
           (aggregate_ids.empty() || aggregate_ids.contains(m.aggregate_id())) &&
           (command_ids.empty() || command_ids.contains(m.command_id())) &&
           (correlation_id.empty() || correlation_id == m.correlation_id());
  }
};

inline std::string DescribePositions(const leftfold::v1::Positions& positions) {
  std::string out;
  for (const leftfold::v1::Position& p : positions.positions()) {
    absl::StrAppend(&out, out.empty() ? "" : ",", p.topic(), ":", p.partition(), ":", p.offset());
  }
  return out;
}

// Thread-safe.
template <typename Msg>
class Sink {
 public:
  Sink(grpc::ServerWriteReactor<Msg>* reactor, grpc::CallbackServerContext* ctx, Filter filter,
       size_t capacity)
      : reactor_(reactor), ctx_(ctx), filter_(std::move(filter)), capacity_(capacity) {}

  const Filter& filter() const { return filter_; }

  // Queues `msg` (read at `tp`/`offset`; `next` = the reader's resume map before this record).
  // Ends the stream with RESOURCE_EXHAUSTED when the queue is full.
  void Offer(const Msg& msg, const log::TopicPartition& tp, int64_t offset,
             const PositionMap& next) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (queue_.size() >= capacity_) {
      FinishLocked(OverflowLocked(tp, offset, next));
      return;
    }
    queue_.push_back({msg, tp, offset});
    if (!writing_) WriteNextLocked();
  }

  // Tells the client the subscription is live: everything read after this call reaches it.
  // `metadata` goes with it (leftfold-partitions, leftfold-end-offsets, ...).
  void SendInitialMetadata(const std::vector<std::pair<std::string, std::string>>& metadata = {}) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    for (const auto& [key, value] : metadata) ctx_->AddInitialMetadata(key, value);
    reactor_->StartSendInitialMetadata();
  }

  // How many more messages fit (the replay pump reads no more than this).
  size_t room() const {
    absl::MutexLock lock(&mu_);
    return finished_ ? 0 : capacity_ - std::min(capacity_, queue_.size());
  }
  bool done() const {
    absl::MutexLock lock(&mu_);
    return finished_;
  }

  // Ends the stream (shutdown, client cancel, a reader error). No-op once ended.
  void End(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (!finished_) FinishLocked(status);
  }

  // Ends the stream with `status` once everything queued so far has been written (a replay that
  // reached its end offsets). Nothing may be offered afterwards. No-op once ended.
  void EndWhenDrained(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (!writing_ && queue_.empty()) {
      FinishLocked(status);
    } else {
      drained_status_ = status;
    }
  }

  // From the reactor's OnWriteDone.
  void WriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (finished_) return;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "stream write failed"));
      return;
    }
    if (!queue_.empty()) {
      WriteNextLocked();
    } else if (drained_status_.has_value()) {
      FinishLocked(*drained_status_);
    }
  }

 private:
  struct Item {
    Msg msg;
    log::TopicPartition tp;
    int64_t offset;
  };

  // StartWrite and Finish are called under mu_ so that a concurrent Finish (and the OnDone that
  // deletes the reactor) can never interleave with them; gRPC runs the resulting reactions on its
  // own threads, never inline (the reactor is not inlineable).
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    current_ = std::move(queue_.front().msg);
    current_tp_ = queue_.front().tp;
    current_offset_ = queue_.front().offset;
    queue_.pop_front();
    writing_ = true;
    reactor_->StartWrite(&current_);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    queue_.clear();
    reactor_->Finish(status);
  }

  // The stream ends here; everything not yet written (the message in flight included, since
  // its delivery is unknown) is to be read again from the returned positions.
  grpc::Status OverflowLocked(const log::TopicPartition& tp, int64_t offset,
                              const PositionMap& next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    PositionMap resume = next;
    auto lower = [&resume](const log::TopicPartition& t, int64_t o) {
      auto it = resume.find(t);
      if (it == resume.end() || o < it->second) resume[t] = o;
    };
    lower(tp, offset);
    for (const Item& item : queue_) lower(item.tp, item.offset);
    if (writing_) lower(current_tp_, current_offset_);
    leftfold::v1::Positions positions;
    for (const auto& [t, o] : resume) {
      leftfold::v1::Position* p = positions.add_positions();
      p->set_topic(t.topic);
      p->set_partition(t.partition);
      p->set_offset(o);
    }
    ctx_->AddTrailingMetadata(kResumeMetadata, positions.SerializeAsString());
    return grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("subscriber fell more than ", capacity_, " messages behind; resume from ",
                     DescribePositions(positions)));
  }

  mutable absl::Mutex mu_;
  grpc::ServerWriteReactor<Msg>* const reactor_;  // valid until Finish
  grpc::CallbackServerContext* ctx_;
  const Filter filter_;
  const size_t capacity_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Set by EndWhenDrained: how the stream ends once the queue is empty.
  std::optional<grpc::Status> drained_status_ ABSL_GUARDED_BY(mu_);
  // The message being written; untouched until OnWriteDone.
  Msg current_ ABSL_GUARDED_BY(mu_);
  log::TopicPartition current_tp_ ABSL_GUARDED_BY(mu_);
  int64_t current_offset_ ABSL_GUARDED_BY(mu_) = 0;
};

// The reactor gRPC drives; forwards to its Sink. Deletes itself in OnDone.
template <typename Msg>
class SubscriberReactor final : public grpc::ServerWriteReactor<Msg> {
 public:
  SubscriberReactor(grpc::CallbackServerContext* ctx, Filter filter, size_t capacity)
      : sink_(std::make_shared<Sink<Msg>>(this, ctx, std::move(filter), capacity)) {}
  const std::shared_ptr<Sink<Msg>>& sink() const { return sink_; }

  void OnWriteDone(bool ok) override { sink_->WriteDone(ok); }
  void OnCancel() override { sink_->End(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<Sink<Msg>> sink_;
};

}  // namespace leftfold::internal::gateway
