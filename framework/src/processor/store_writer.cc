#include "processor/store_writer.h"

namespace leftfold::internal::processor {

StoreWriter::StoreWriter(size_t max_pending)
    : max_pending_(std::max<size_t>(max_pending, 1)), thread_([this] { Loop(); }) {}

StoreWriter::~StoreWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

uint64_t StoreWriter::Enqueue(std::shared_ptr<const Batch> batch) {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return queue_.size() < max_pending_; });
  uint64_t seq = ++enqueued_;
  queue_.emplace_back(seq, std::move(batch));
  lock.unlock();
  changed_.notify_all();
  return seq;
}

absl::Status StoreWriter::Drain() {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return applied_ == enqueued_; });
  return error_;
}

uint64_t StoreWriter::applied() const {
  std::lock_guard lock(mu_);
  return applied_;
}

absl::Status StoreWriter::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void StoreWriter::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    // The front stays queued while it is written: Enqueue's bound counts it.
    auto [seq, batch] = queue_.front();
    bool skip = !error_.ok();
    lock.unlock();
    absl::Status status;
    if (!skip) {
      for (const auto& [store, update] : *batch) {
        status = store->Write(update);
        if (!status.ok()) break;
      }
    }
    lock.lock();
    if (!status.ok() && error_.ok()) error_ = status;
    queue_.pop_front();
    applied_ = seq;
    changed_.notify_all();
  }
}

}  // namespace leftfold::internal::processor
