#include "gateway/command_producer.h"

#include <utility>
#include <vector>

#include "common/thread_name.h"
#include "leftfold/logging.h"

namespace leftfold::internal::gateway {

absl::Status CommandProducer::Start() {
  // The embedded log's Flush is a local write with no round trip to overlap: one per batch is
  // cheapest (records gather while it runs). On Kafka records go out without waiting for the
  // acknowledgement of earlier ones, after 1 ms rather than the default 5 (a caller waits on
  // every command; requests still fill up while earlier ones are in flight).
  flush_each_batch_ = log_.backend() == "embedded";
  absl::StatusOr<std::unique_ptr<log::Producer>> producer =
      log_.NewProducer({.linger = absl::Milliseconds(1)});
  if (!producer.ok()) return producer.status();
  producer_ = *std::move(producer);
  absl::MutexLock lock(&mu_);
  started_ = true;
  thread_ = std::thread([this] {
    NameThisThread("lf-cmd-produce");
    Run();
  });
  return absl::OkStatus();
}

void CommandProducer::Send(log::OutgoingRecord record, log::DeliveryCallback on_delivery) {
  {
    absl::MutexLock lock(&mu_);
    if (started_ && !stopping_) {
      queue_.push_back({std::move(record), std::move(on_delivery)});
      // The thread takes the whole queue at once: only the first record needs to wake it.
      if (queue_.size() == 1) producer_->Wake();
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
    producer_->Wake();
  }
  thread_.join();
  if (producer_ != nullptr) producer_->Close().IgnoreError();
}

void CommandProducer::Run() {
  std::deque<Pending> batch;
  size_t waiting = 0;  // records produced whose delivery callbacks have not run yet
  for (;;) {
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      // With deliveries outstanding the thread waits in Poll instead (Send wakes it).
      if (waiting == 0) {
        mu_.Await(absl::Condition(
            +[](CommandProducer* p) { return p->stopping_ || !p->queue_.empty(); }, this));
      }
      batch.swap(queue_);
      stopping = stopping_;
    }
    for (Pending& p : batch) {
      absl::Status s = producer_->Produce(std::move(p.record), p.on_delivery);
      if (!s.ok()) p.on_delivery(s);  // refused at once (bad topic, oversize): no callback later
    }
    batch.clear();
    if (stopping || flush_each_batch_) {
      // Delivery callbacks run inside Flush, on this thread.
      if (absl::Status s = producer_->Flush(absl::Seconds(30)); !s.ok()) {
        LogWarning("gateway", "producer flush failed", {{"error", s.ToString()}});
      }
      // Send refuses new records once stopping_ is set: this batch was the last one.
      if (stopping) return;
      continue;
    }
    // Delivery callbacks run here, on this thread, while later records are already on their way.
    waiting = producer_->Poll(absl::Milliseconds(100));
  }
}

}  // namespace leftfold::internal::gateway
