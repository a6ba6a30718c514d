#include "absl/strings/str_cat.h"
#include "store/projection_store.h"

namespace leftfold::internal::store {

void Watermarks::Advance(const Checkpoints& checkpoints) {
  absl::MutexLock lock(&mu_);
  for (const auto& [tp, offset] : checkpoints) {
    int64_t& current = checkpoints_.try_emplace(tp, -1).first->second;
    if (offset > current) current = offset;
  }
}

int64_t Watermarks::Get(const log::TopicPartition& tp) const {
  absl::MutexLock lock(&mu_);
  auto it = checkpoints_.find(tp);
  return it == checkpoints_.end() ? -1 : it->second;
}

Checkpoints Watermarks::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return checkpoints_;
}

absl::Status Watermarks::WaitFor(const std::vector<v1::Position>& positions, absl::Time deadline,
                                 const std::vector<std::string>& topics) const {
  std::vector<const v1::Position*> relevant;
  for (const v1::Position& p : positions) {
    for (const std::string& t : topics) {
      if (p.topic() == t) {
        relevant.push_back(&p);
        break;
      }
    }
  }
  if (relevant.empty()) return absl::OkStatus();
  const v1::Position* missing = nullptr;
  // A condition, not a sleep: every Advance re-evaluates it under the lock.
  auto applied = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const v1::Position* p : relevant) {
      auto it = checkpoints_.find({p->topic(), p->partition()});
      if (it == checkpoints_.end() || it->second <= p->offset()) {
        missing = p;
        return false;
      }
    }
    return true;
  };
  absl::MutexLock lock(&mu_);
  if (mu_.AwaitWithDeadline(absl::Condition(&applied), deadline)) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrCat("view has not yet applied ", missing->topic(),
                                                  "/", missing->partition(), "@",
                                                  missing->offset()));
}

}  // namespace leftfold::internal::store
