#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "log/embedded/clients.h"
#include "log/errors.h"

namespace leftfold::internal::log::embedded {
namespace {

absl::Status NotAssigned(const TopicPartition& tp) {
  return absl::FailedPreconditionError(
      absl::StrCat("embedded log: partition ", tp.topic, "-", tp.partition, " is not assigned"));
}

}  // namespace

EmbeddedConsumer::EmbeddedConsumer(LogStore* store, const ConsumerOptions& options)
    : store_(store), options_(options) {
  if (!options_.group_id.empty()) group_ = store_->Group(options_.group_id);
}

EmbeddedConsumer::~EmbeddedConsumer() {
  // Leaves the group so the others rebalance, but runs no user callback from a destructor:
  // the listener may capture objects already gone.
  if (!closed_) Leave(/*run_callbacks=*/false);
}

absl::Status EmbeddedConsumer::CheckOpen() const {
  if (closed_) return absl::FailedPreconditionError("embedded log: consumer is closed");
  return absl::OkStatus();
}

absl::Status EmbeddedConsumer::Subscribe(const std::vector<std::string>& topics,
                                         RebalanceListener listener) {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  if (group_ == nullptr) {
    return absl::InvalidArgumentError("embedded log: Subscribe needs a consumer with a group_id");
  }
  if (!subscribed_ && !assigned_.empty()) {
    return absl::FailedPreconditionError(
        "embedded log: Subscribe after a manual Assign; use one or the other");
  }
  listener_ = std::move(listener);
  if (member_id_.empty()) {
    std::string id = store_->NewMemberId();
    absl::MutexLock fence(&fence_mu_);
    member_id_ = std::move(id);
  }
  std::vector<std::string> sorted = topics;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  absl::MutexLock lock(&group_->mu);
  group_->members[member_id_].topics = std::move(sorted);
  store_->Rebalance(*group_, /*force=*/true);
  absl::MutexLock fence(&fence_mu_);
  subscribed_ = true;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> EmbeddedConsumer::StartOffset(const TopicState& topic,
                                                      int32_t partition) const {
  if (group_ != nullptr) {
    absl::StatusOr<int64_t> committed = store_->CommittedOffset(group_->name, topic, partition);
    if (!committed.ok() || *committed >= 0) return committed;
  }
  if (options_.start_from_earliest) return 0;  // no retention yet: the log starts at 0
  return topic.partitions[partition]->end.load(std::memory_order_acquire);
}

absl::Status EmbeddedConsumer::RunRebalance() {
  if (!subscribed_) return absl::OkStatus();
  std::vector<TopicPartition> revoked;
  {
    absl::ReaderMutexLock lock(&group_->mu);
    const GroupMember& me = group_->members.at(member_id_);
    if (me.generation == group_->generation) return absl::OkStatus();
    revoked = me.owned;
  }
  if (!revoked.empty()) {
    // Before the partitions move: the owner finishes or aborts its in-flight work here.
    if (listener_.on_revoked) listener_.on_revoked(revoked);
    {
      absl::MutexLock lock(&group_->mu);
      GroupMember& me = group_->members.at(member_id_);
      for (const TopicPartition& tp : me.owned) {
        auto owner = group_->owners.find(tp);
        if (owner != group_->owners.end() && owner->second == member_id_) {
          group_->owners.erase(owner);
        }
      }
      me.owned.clear();
    }
    assigned_.clear();
    store_->NotifyChange();  // the new owners may be waiting for these partitions
  }

  std::vector<TopicPartition> claimed;
  {
    absl::MutexLock lock(&group_->mu);
    GroupMember& me = group_->members.at(member_id_);
    if (me.generation == group_->generation) return absl::OkStatus();
    const std::vector<TopicPartition>& target = group_->targets[member_id_];
    for (const TopicPartition& tp : target) {
      auto owner = group_->owners.find(tp);
      // Still held by a member that has not run its on_revoked yet: claim on a later Poll.
      if (owner != group_->owners.end() && owner->second != member_id_) return absl::OkStatus();
    }
    std::map<TopicPartition, Cursor> cursors;
    for (const TopicPartition& tp : target) {
      absl::StatusOr<std::shared_ptr<TopicState>> topic = store_->FindTopic(tp.topic);
      if (!topic.ok()) continue;  // deleted meanwhile; the next rebalance drops it
      absl::StatusOr<int64_t> start = StartOffset(**topic, tp.partition);
      if (!start.ok()) return start.status();
      cursors[tp] = Cursor{.topic = *std::move(topic), .next = *start};
    }
    for (const TopicPartition& tp : target) group_->owners[tp] = member_id_;
    me.owned = target;
    me.generation = group_->generation;
    absl::MutexLock fence(&fence_mu_);
    generation_ = me.generation;
    assigned_ = std::move(cursors);
    claimed = target;
  }
  if (!claimed.empty() && listener_.on_assigned) listener_.on_assigned(claimed);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Record>> EmbeddedConsumer::Poll(size_t max_records,
                                                           absl::Duration timeout) {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  absl::Time deadline = absl::Now() + timeout;
  std::vector<Record> out = spare_.Take();  // refilled first: no allocation per record
  size_t filled = 0;
  std::vector<const TopicState*> topics;
  for (;;) {
    // The store-wide count before the rebalance (a group change after it wakes the wait), the
    // topics' counts after it (the partitions it just claimed) and before the reads.
    uint64_t store_seq = store_->ChangeSeq();
    s = RunRebalance();
    if (!s.ok()) return s;
    topics.clear();
    for (const auto& [tp, cursor] : assigned_) {  // ordered by topic
      if (topics.empty() || topics.back() != cursor.topic.get())
        topics.push_back(cursor.topic.get());
    }
    LogStore::ChangeToken seen = store_->Changes(store_seq, topics);
    if (!assigned_.empty()) {
      std::vector<std::pair<int32_t, Cursor*>> cursors;
      cursors.reserve(assigned_.size());
      // Sized once for what is readable now (records, not offsets: gaps make it an upper
      // bound), instead of growing a vector of 2,000 Records ~11 times.
      size_t readable = 0;
      for (auto& [tp, cursor] : assigned_) {
        cursors.emplace_back(tp.partition, &cursor);
        int64_t end = cursor.topic->partitions[tp.partition]->end.load(std::memory_order_relaxed);
        if (!cursor.paused && end > cursor.next) readable += static_cast<size_t>(end - cursor.next);
      }
      out.reserve(std::min(readable, max_records));  // never shrinks a spare vector
      size_t start = next_start_++ % cursors.size();
      for (size_t i = 0; i < cursors.size() && filled < max_records; ++i) {
        auto [partition, cursor] = cursors[(start + i) % cursors.size()];
        if (cursor->paused || cursor->topic->deleted) continue;
        size_t before = filled, room = max_records - filled;
        absl::StatusOr<int64_t> end =
            store_->Read(*cursor->topic, partition, cursor->next, room, &out, &filled);
        if (!end.ok()) return end.status();
        if (filled - before == room) {
          cursor->next = out[filled - 1].offset + 1;
        } else {
          // Read everything up to the readable end: the position moves past any trailing gap
          // (aborted or crashed transactions), like Kafka's past aborted batches and markers.
          cursor->next = std::max(cursor->next, *end);
        }
      }
    }
    if (filled > 0 || absl::Now() >= deadline) {
      spare_.KeepUnused(out, filled);
      return out;
    }
    store_->WaitForChange(seen, deadline);
  }
}

void EmbeddedConsumer::Recycle(std::vector<Record> records) { spare_.Recycle(std::move(records)); }

absl::Status EmbeddedConsumer::Assign(const std::vector<TopicPartitionOffset>& partitions) {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  if (subscribed_) {
    return absl::FailedPreconditionError(
        "embedded log: Assign on a subscribed consumer; use one or the other");
  }
  std::map<TopicPartition, Cursor> cursors;
  for (const TopicPartitionOffset& tpo : partitions) {
    absl::StatusOr<std::shared_ptr<TopicState>> topic = store_->FindTopic(tpo.tp.topic);
    if (!topic.ok()) return topic.status();
    if (tpo.tp.partition < 0 || tpo.tp.partition >= (*topic)->partition_count) {
      return absl::NotFoundError(absl::StrCat("embedded log: topic '", tpo.tp.topic,
                                              "' has no partition ", tpo.tp.partition));
    }
    int64_t next = tpo.offset;
    if (next < 0) {  // no explicit offset: the committed one, else earliest/latest
      absl::StatusOr<int64_t> start = StartOffset(**topic, tpo.tp.partition);
      if (!start.ok()) return start.status();
      next = *start;
    }
    cursors[tpo.tp] = Cursor{.topic = *std::move(topic), .next = next};
  }
  assigned_ = std::move(cursors);
  return absl::OkStatus();
}

std::vector<TopicPartition> EmbeddedConsumer::Assignment() const {
  std::vector<TopicPartition> out;
  for (const auto& [tp, cursor] : assigned_) out.push_back(tp);
  return out;
}

absl::Status EmbeddedConsumer::Seek(const TopicPartitionOffset& position) {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  if (position.offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedded log: Seek to negative offset ", position.offset));
  }
  auto it = assigned_.find(position.tp);
  if (it == assigned_.end()) return NotAssigned(position.tp);
  it->second.next = position.offset;
  return absl::OkStatus();
}

absl::Status EmbeddedConsumer::Pause(const std::vector<TopicPartition>& partitions) {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  for (const TopicPartition& tp : partitions) {
    auto it = assigned_.find(tp);
    if (it == assigned_.end()) return NotAssigned(tp);
    it->second.paused = true;
  }
  return absl::OkStatus();
}

absl::Status EmbeddedConsumer::Resume(const std::vector<TopicPartition>& partitions) {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  for (const TopicPartition& tp : partitions) {
    auto it = assigned_.find(tp);
    if (it == assigned_.end()) return NotAssigned(tp);
    it->second.paused = false;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> EmbeddedConsumer::Position(const TopicPartition& partition) const {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  auto it = assigned_.find(partition);
  if (it == assigned_.end()) return NotAssigned(partition);
  return it->second.next;
}

absl::StatusOr<std::vector<TopicPartitionOffset>> EmbeddedConsumer::Committed(
    const std::vector<TopicPartition>& partitions, absl::Duration /*timeout: local read*/) {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  if (group_ == nullptr) {
    return absl::InvalidArgumentError("embedded log: Committed needs a consumer with a group_id");
  }
  std::vector<TopicPartitionOffset> out;
  for (const TopicPartition& tp : partitions) {
    int64_t offset = -1;
    absl::StatusOr<std::shared_ptr<TopicState>> topic = store_->FindTopic(tp.topic);
    if (topic.ok() && tp.partition >= 0 && tp.partition < (*topic)->partition_count) {
      absl::StatusOr<int64_t> committed =
          store_->CommittedOffset(group_->name, **topic, tp.partition);
      if (!committed.ok()) return committed.status();
      offset = *committed;
    }
    out.push_back({tp, offset});
  }
  return out;
}

absl::StatusOr<PendingOffsets> EmbeddedConsumer::FencedOffsets(
    const std::vector<TopicPartitionOffset>& offsets) const {
  PendingOffsets pending{.group = group_};
  {
    absl::MutexLock fence(&fence_mu_);
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    if (subscribed_) pending.member_id = member_id_;
    pending.generation = generation_;
  }
  if (group_ == nullptr) {
    return absl::InvalidArgumentError("embedded log: committing offsets needs a group_id");
  }
  for (const TopicPartitionOffset& tpo : offsets) {
    absl::StatusOr<std::shared_ptr<TopicState>> topic = store_->FindTopic(tpo.tp.topic);
    if (!topic.ok()) return topic.status();
    if (tpo.tp.partition < 0 || tpo.tp.partition >= (*topic)->partition_count) {
      return absl::NotFoundError(absl::StrCat("embedded log: topic '", tpo.tp.topic,
                                              "' has no partition ", tpo.tp.partition));
    }
    if (tpo.offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("embedded log: negative offset ", tpo.offset, " to commit"));
    }
    pending.offsets.emplace_back(*std::move(topic), tpo);
  }
  return pending;
}

absl::Status EmbeddedConsumer::CommitOffsets(const std::vector<TopicPartitionOffset>& offsets) {
  absl::StatusOr<PendingOffsets> pending = FencedOffsets(offsets);
  if (!pending.ok()) return pending.status();
  std::vector<PendingOffsets> all;
  all.push_back(*std::move(pending));
  return store_->Append({}, all, store_->options().sync_commits).status();
}

void EmbeddedConsumer::Leave(bool run_callbacks) {
  assigned_.clear();
  if (!subscribed_) return;
  {
    absl::MutexLock fence(&fence_mu_);
    subscribed_ = false;
  }
  if (run_callbacks && listener_.on_revoked) {
    std::vector<TopicPartition> owned;
    {
      absl::ReaderMutexLock lock(&group_->mu);
      owned = group_->members.at(member_id_).owned;
    }
    if (!owned.empty()) listener_.on_revoked(owned);
  }
  absl::MutexLock lock(&group_->mu);
  for (auto it = group_->owners.begin(); it != group_->owners.end();) {
    it = it->second == member_id_ ? group_->owners.erase(it) : std::next(it);
  }
  group_->members.erase(member_id_);
  group_->targets.erase(member_id_);
  store_->Rebalance(*group_, /*force=*/true);
}

absl::Status EmbeddedConsumer::Close() {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  Leave(/*run_callbacks=*/true);
  absl::MutexLock fence(&fence_mu_);
  closed_ = true;
  return absl::OkStatus();
}

}  // namespace leftfold::internal::log::embedded
