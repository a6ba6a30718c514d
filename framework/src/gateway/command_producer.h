// The gateway's single producer: one dedicated thread owns the Log's (single-owner) idempotent
// Producer and drains a queue that any gRPC callback thread may feed; no gRPC thread ever blocks
// on the log. On Kafka records are sent as they come, without waiting for earlier ones to be
// acknowledged: the thread waits in Producer::Poll for deliveries, and Send wakes it when new
// records are queued. On the embedded log, whose Flush is a local write, each batch taken from
// the queue is flushed (group commit: the next batch gathers meanwhile).
//
//   CommandProducer producer(log);
//   producer.Start();
//   producer.Send({.topic = "bank.account.commands", .key = id, .value = bytes},
//                 [](absl::StatusOr<log::TopicPartitionOffset> where) { ... });  // producer thread
//   producer.Stop();   // delivers (or fails) everything queued, joins the thread
//
// Owned by the Gateway; Send is thread-safe; callbacks run on the producer thread and must not
// block.
#pragma once

#include <deque>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "log/log.h"

namespace leftfold::internal::gateway {

class CommandProducer {
 public:
  explicit CommandProducer(log::Log& log) : log_(log) {}
  ~CommandProducer() { Stop(); }

  absl::Status Start();
  // After Stop, callbacks get UNAVAILABLE at once.
  void Send(log::OutgoingRecord record, log::DeliveryCallback on_delivery);
  void Stop();

 private:
  struct Pending {
    log::OutgoingRecord record;
    log::DeliveryCallback on_delivery;
  };
  void Run();

  log::Log& log_;
  std::unique_ptr<log::Producer> producer_;  // used by thread_ only
  std::thread thread_;
  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_each_batch_ = false;  // set by Start, before the thread
};

}  // namespace leftfold::internal::gateway
