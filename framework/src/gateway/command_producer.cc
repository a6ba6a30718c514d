#include "gateway/command_producer.h"

#include <utility>
#include <vector>

#include "leftfold/logging.h"

namespace leftfold::internal::gateway {

absl::Status CommandProducer::Start() {
  // A caller waits on every command: send at once (1 ms) rather than wait the backend's 5 ms
  // for a fuller batch; under load, records still batch while a request is in flight.
  absl::StatusOr<std::unique_ptr<log::Producer>> producer =
      log_.NewProducer({.kafka_properties = {{"linger.ms", "1"}}});
  if (!producer.ok()) return producer.status();
  producer_ = *std::move(producer);
  absl::MutexLock lock(&mu_);
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void CommandProducer::Send(log::OutgoingRecord record, log::DeliveryCallback on_delivery) {
  {
    absl::MutexLock lock(&mu_);
    if (started_ && !stopping_) {
      queue_.push_back({std::move(record), std::move(on_delivery)});
      return;
    }
  }
  on_delivery(absl::UnavailableError("gateway producer is not running"));
}

void CommandProducer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
  }
  thread_.join();
  if (producer_ != nullptr) producer_->Close().IgnoreError();
}

void CommandProducer::Run() {
  for (;;) {
    std::deque<Pending> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](CommandProducer* p) { return p->stopping_ || !p->queue_.empty(); }, this));
      if (queue_.empty()) return;  // stopping and drained
      batch.swap(queue_);
    }
    bool queued_any = false;
    for (Pending& p : batch) {
      log::DeliveryCallback cb = std::move(p.on_delivery);
      absl::Status s = producer_->Produce(std::move(p.record), cb);
      if (!s.ok()) {
        cb(s);  // refused at once (bad topic, oversize): the callback will not run
      } else {
        queued_any = true;
      }
    }
    if (queued_any) {
      // Delivery callbacks run inside Flush, on this thread.
      absl::Status s = producer_->Flush(absl::Seconds(30));
      if (!s.ok()) {
        LogWarning("gateway", "producer flush failed", {{"error", s.ToString()}});
      }
    }
  }
}

}  // namespace leftfold::internal::gateway
