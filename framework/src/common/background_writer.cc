#include "common/background_writer.h"

#include <algorithm>

#include "common/thread_name.h"

namespace leftfold::internal {

BackgroundWriter::BackgroundWriter(size_t max_pending, std::string name)
    : max_pending_(std::max<size_t>(max_pending, 1)), thread_([this, name = std::move(name)] {
        NameThisThread(name);
        Loop();
      }) {}

BackgroundWriter::~BackgroundWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

uint64_t BackgroundWriter::Enqueue(Job job) {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return queue_.size() < max_pending_; });
  uint64_t seq = ++enqueued_;
  queue_.emplace_back(seq, std::move(job));
  lock.unlock();
  changed_.notify_all();
  return seq;
}

absl::Status BackgroundWriter::Drain() {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return applied_ == enqueued_; });
  return error_;
}

absl::Status BackgroundWriter::DrainAndTakeError() {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return applied_ == enqueued_; });
  return std::exchange(error_, absl::OkStatus());
}

uint64_t BackgroundWriter::applied() const {
  std::lock_guard lock(mu_);
  return applied_;
}

absl::Status BackgroundWriter::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void BackgroundWriter::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    // The front stays queued while it runs: Enqueue's bound counts it.
    uint64_t seq = queue_.front().first;
    Job& job = queue_.front().second;
    bool skip = !error_.ok();
    lock.unlock();
    absl::Status status = skip ? absl::OkStatus() : job();
    lock.lock();
    if (!status.ok() && error_.ok()) error_ = status;
    queue_.pop_front();
    applied_ = seq;
    changed_.notify_all();
  }
}

}  // namespace leftfold::internal
