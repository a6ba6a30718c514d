#include "projection/runner.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "leftfold/logging.h"
#include "log/errors.h"
#include "topology/topics.h"

namespace leftfold::internal::projection {
namespace {

constexpr char kComponent[] = "projector";

std::string Where(const log::Record& r) {
  return absl::StrCat(r.topic, "/", r.partition, "@", r.offset);
}

v1::Position PositionOf(const log::Record& r) {
  v1::Position p;
  p.set_topic(r.topic);
  p.set_partition(r.partition);
  p.set_offset(r.offset);
  return p;
}

}  // namespace

Runner::Runner(log::Log& log, Projector projector, store::ProjectionStore& store,
               RunnerOptions options)
    : log_(log), projector_(std::move(projector)), store_(store), options_(std::move(options)) {
  for (const std::string& type : projector_.event_sources()) {
    topics_.push_back(TopicsFor(options_.topic_prefix, type).events);
  }
  for (const std::string& type : projector_.snapshot_sources()) {
    std::string t = TopicsFor(options_.topic_prefix, type).snapshots;
    snapshot_topics_.insert(t);
    topics_.push_back(std::move(t));
  }
  dlq_topic_ = absl::StrCat(options_.topic_prefix, projector_.name(), ".dlq");
}

Runner::~Runner() { Stop().IgnoreError(); }

absl::Status Runner::Start() {
  if (absl::Status s = projector_.Validate(); !s.ok()) return s;
  std::vector<std::string> types = projector_.event_sources();
  types.insert(types.end(), projector_.snapshot_sources().begin(),
               projector_.snapshot_sources().end());
  for (const std::string& type : types) {
    absl::StatusOr<int32_t> n =
        EnsureTopics(log_.admin(), TopicsFor(options_.topic_prefix, type), options_.partitions);
    if (!n.ok()) return n.status();
  }
  if (options_.dead_letter) {
    absl::Status s = log_.admin().CreateTopics(
        {{.name = dlq_topic_, .partitions = 1, .configs = {{"retention.ms", "-1"}}}});
    if (!s.ok()) return s;
    absl::StatusOr<std::unique_ptr<log::Producer>> p = log_.NewProducer({});
    if (!p.ok()) return p.status();
    dlq_producer_ = *std::move(p);
  }
  // The topic prefix namespaces the group too (as the processor's "<prefix><type>.processor"):
  // applications sharing a cluster under different prefixes must not share a projector's group,
  // least of all as static members with the same instance id.
  const std::string group = absl::StrCat(options_.topic_prefix, projector_.name());
  log::ConsumerOptions consumer_options{
      .group_id = group,
      .isolation = log::Isolation::kReadCommitted,
      .start_from_earliest = true,
      .instance_id = options_.instance_id,
  };
  absl::StatusOr<std::unique_ptr<log::Consumer>> c = log_.NewConsumer(consumer_options);
  if (!c.ok()) return c.status();
  consumer_ = *std::move(c);
  log::RebalanceListener listener{
      .on_assigned =
          [this](const std::vector<log::TopicPartition>& tps) {
            {
              absl::MutexLock lock(&mu_);
              for (const auto& tp : tps) {
                assigned_.insert(tp);
                halted_.erase(tp);
              }
            }
            for (const auto& tp : tps) pending_seek_.insert(tp);
            // May fail while the backend is still setting the partition up; then Run retries.
            SeekToCheckpoints(tps).IgnoreError();
          },
      .on_revoked =
          [this](const std::vector<log::TopicPartition>& tps) {
            absl::MutexLock lock(&mu_);
            for (const auto& tp : tps) {
              assigned_.erase(tp);
              halted_.erase(tp);
              next_.erase(tp);
              pending_seek_.erase(tp);
              unhinted_offsets_.erase(tp);  // the new owner seeks to the store's checkpoint
            }
          },
  };
  if (absl::Status s = consumer_->Subscribe(topics_, std::move(listener)); !s.ok()) return s;
  LogInfo(kComponent, "started", {{"projector", projector_.name()}, {"backend", log_.backend()}});
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

absl::Status Runner::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (consumer_) {
    HintGroupOffsets(/*force=*/true);  // the polling thread has ended: this thread owns it now
    consumer_->Close().IgnoreError();
    consumer_.reset();
  }
  if (dlq_producer_) {
    dlq_producer_->Close().IgnoreError();
    dlq_producer_.reset();
  }
  absl::MutexLock lock(&mu_);
  return run_error_;
}

absl::Status Runner::SeekToCheckpoints(const std::vector<log::TopicPartition>& tps) {
  absl::StatusOr<store::Checkpoints> cps = store_.LoadCheckpoints();
  if (!cps.ok()) return cps.status();
  absl::Status first;
  for (const auto& tp : tps) {
    auto it = cps->find(tp);
    int64_t offset = it == cps->end() ? 0 : it->second;
    absl::Status s = consumer_->Seek({tp, offset});
    if (s.ok()) {
      pending_seek_.erase(tp);
      next_[tp] = offset;
    } else if (first.ok()) {
      first = s;
    }
  }
  return first;
}

void Runner::Run() {
  absl::Status s = RunLoop();
  if (!s.ok()) {
    LogError(kComponent, "stopped", {{"projector", projector_.name()}, {"error", s.ToString()}});
  }
  absl::MutexLock lock(&mu_);
  run_error_ = s;
}

absl::Status Runner::RunLoop() {
  absl::Duration backoff = absl::Milliseconds(10);
  while (!stop_) {
    absl::StatusOr<std::vector<log::Record>> records =
        consumer_->Poll(options_.max_batch, options_.poll_timeout);
    if (!records.ok()) {
      if (log::ClassifyError(records.status()) == log::ErrorClass::kFatal) return records.status();
      LogWarning(kComponent, "poll failed",
                 {{"projector", projector_.name()}, {"error", records.status().ToString()}});
      continue;
    }
    absl::Status s;
    {
      // Not across the backoff below: a rebuild's swap waits for this lock.
      absl::MutexLock batch_lock(&batch_mu_);
      if (!pending_seek_.empty()) {
        std::vector<log::TopicPartition> tps(pending_seek_.begin(), pending_seek_.end());
        SeekToCheckpoints(tps).IgnoreError();
      }
      if (records->empty()) continue;
      s = ProcessBatch(*records);
    }
    if (absl::IsCancelled(s)) return absl::OkStatus();  // simulated crash
    if (!s.ok()) {
      // The store refused the batch: nothing of it counts. Rewind to what the store holds.
      LogWarning(kComponent, "batch failed, rewinding to the stored checkpoints",
                 {{"projector", projector_.name()}, {"error", s.ToString()}});
      std::vector<log::TopicPartition> tps;
      for (const auto& [tp, offset] : next_) tps.push_back(tp);
      if (absl::Status seek = SeekToCheckpoints(tps); !seek.ok()) {
        for (const auto& tp : tps) pending_seek_.insert(tp);
      }
      absl::SleepFor(backoff);  // a retry backoff against a failing store, not synchronization
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    backoff = absl::Milliseconds(10);
  }
  return absl::OkStatus();
}

absl::Status Runner::ProcessBatch(std::vector<log::Record>& records) {
  // Drop what this runner must not apply: partitions not yet sought to their checkpoint, halted
  // partitions, and records below the checkpoint (re-delivered after a seek).
  std::vector<const log::Record*> todo;
  {
    absl::MutexLock lock(&mu_);
    for (const log::Record& r : records) {
      log::TopicPartition tp{r.topic, r.partition};
      if (pending_seek_.count(tp) || halted_.count(tp)) continue;
      auto it = next_.find(tp);
      if (it == next_.end() || r.offset < it->second) continue;
      todo.push_back(&r);
    }
  }
  // A poison event aborts the store batch; the batch is then redone without it (skipped into the
  // dead-letter topic, or its partition halted from it on). Handlers are pure, so redoing is safe.
  std::set<size_t> skipped;
  std::map<log::TopicPartition, int64_t> halted_at;  // first offset not to apply
  for (;;) {
    absl::StatusOr<std::unique_ptr<store::Batch>> batch = store_.Begin();
    if (!batch.ok()) return batch.status();
    store::Checkpoints checkpoints;
    size_t failed = todo.size();
    absl::Status error;
    int64_t applied = 0;
    for (size_t i = 0; i < todo.size(); ++i) {
      const log::Record& r = *todo[i];
      log::TopicPartition tp{r.topic, r.partition};
      if (auto h = halted_at.find(tp); h != halted_at.end() && r.offset >= h->second) continue;
      if (!skipped.count(i)) {
        (*batch)->StartEvent(i);
        error = Apply(r, **batch);
        if (!error.ok()) {
          // A deferred (pipelined) write of an earlier event may be what failed.
          failed = std::min((*batch)->failed_event().value_or(i), i);
          break;
        }
        ++applied;
      }
      checkpoints[tp] = r.offset + 1;
    }
    if (failed == todo.size()) {
      if (options_.crash_before_commit && options_.crash_before_commit()) {
        stop_ = true;
        return absl::CancelledError("simulated crash before commit");
      }
      if (checkpoints.empty()) return absl::OkStatus();
      // Counted before the commit makes the batch visible, so a waiter woken by the commit
      // reads a count that includes it.
      events_applied_ += applied;
      absl::Status s = (*batch)->Commit(checkpoints);
      if (s.ok()) {
        for (const auto& [tp, offset] : checkpoints) {
          next_[tp] = offset;
          unhinted_offsets_[tp] = offset;
        }
        HintGroupOffsets(/*force=*/false);
        return absl::OkStatus();
      }
      events_applied_ -= applied;
      // A deferred write failed only at the commit: its event is the poison one. Anything else
      // is the store's failure (the caller rewinds and retries).
      std::optional<size_t> poison = (*batch)->failed_event();
      if (!poison.has_value() || *poison >= todo.size()) return s;
      failed = *poison;
      error = s;
    }
    batch->reset();  // drop the failed attempt's writes
    const log::Record& poison = *todo[failed];
    log::TopicPartition tp{poison.topic, poison.partition};
    if (options_.dead_letter) {
      if (absl::Status s = DeadLetter(poison, error); !s.ok()) return s;
      LogWarning(kComponent, "poison event skipped into the dead-letter topic",
                 {{"projector", projector_.name()},
                  {"position", Where(poison)},
                  {"dlq", dlq_topic_},
                  {"error", error.ToString()}});
      skipped.insert(failed);
      continue;
    }
    absl::Status reason = absl::Status(
        error.code(), absl::StrCat("projector ", projector_.name(), " halted partition ",
                                   Where(poison), ": ", error.message()));
    LogError(kComponent, "poison event: partition halted",
             {{"projector", projector_.name()},
              {"position", Where(poison)},
              {"error", error.ToString()}});
    {
      absl::MutexLock lock(&mu_);
      halted_[tp] = reason;
    }
    halted_at[tp] = poison.offset;
    consumer_->Pause({tp}).IgnoreError();
  }
}

void Runner::HintGroupOffsets(bool force) {
  if (unhinted_offsets_.empty()) return;
  const absl::Time now = absl::Now();
  if (!force && now - last_hint_ < options_.offset_hint_interval) return;
  // Only for lag tooling: the view store's checkpoints stay the source of truth (a restart seeks
  // to them), so the group's offsets may lag behind by up to offset_hint_interval. On Kafka a
  // commit is a synchronous round trip; once per batch it cost a large share of the batch time.
  std::vector<log::TopicPartitionOffset> offsets;
  for (const auto& [tp, offset] : unhinted_offsets_) offsets.push_back({tp, offset});
  consumer_->CommitOffsets(offsets).IgnoreError();
  unhinted_offsets_.clear();
  last_hint_ = now;
}

absl::Status Runner::WhilePaused(const std::function<absl::Status()>& fn) {
  absl::MutexLock lock(&batch_mu_);
  return fn();
}

absl::Status Runner::Apply(const log::Record& record, store::Batch& batch) const {
  const bool state = snapshot_topics_.count(record.topic) > 0;
  // Reused: Clear() keeps the strings' buffers, so parsing an event allocates little.
  thread_local v1::EventEnvelope envelope;
  envelope.Clear();
  if (state) {
    v1::Snapshot snapshot;
    if (!snapshot.ParseFromString(record.value)) {
      return absl::DataLossError("record is not a leftfold.v1.Snapshot");
    }
    envelope.set_aggregate_type(snapshot.aggregate_type());
    envelope.set_aggregate_id(snapshot.aggregate_id());
    envelope.set_version(snapshot.version());
    *envelope.mutable_timestamp() = snapshot.timestamp();
    *envelope.mutable_payload() = std::move(*snapshot.mutable_state());
  } else if (!envelope.ParseFromString(record.value)) {
    return absl::DataLossError("record is not a leftfold.v1.EventEnvelope");
  }
  EventContext ctx(envelope, PositionOf(record));
  return projector_.Dispatch(ctx, envelope.payload(), state, batch.view(), batch.sql());
}

absl::Status Runner::DeadLetter(const log::Record& record, const absl::Status& error) {
  log::OutgoingRecord out{.topic = dlq_topic_,
                          .key = record.key,
                          .value = record.value,
                          .headers = record.headers,
                          .partition = 0};
  out.headers.push_back({"leftfold.dlq.projector", projector_.name()});
  out.headers.push_back({"leftfold.dlq.topic", record.topic});
  out.headers.push_back({"leftfold.dlq.partition", absl::StrCat(record.partition)});
  out.headers.push_back({"leftfold.dlq.offset", absl::StrCat(record.offset)});
  out.headers.push_back({"leftfold.dlq.error", error.ToString()});
  absl::Status delivered = absl::UnknownError("dead-letter record not delivered");
  absl::Status s = dlq_producer_->Produce(
      std::move(out),
      [&delivered](absl::StatusOr<log::TopicPartitionOffset> r) { delivered = r.status(); });
  if (!s.ok()) return s;
  // The skip is committed only once the copy is safe in the dead-letter topic.
  if (absl::Status f = dlq_producer_->Flush(absl::Seconds(30)); !f.ok()) return f;
  return delivered;
}

absl::StatusOr<std::vector<PartitionLag>> Runner::Lag() const {
  std::set<log::TopicPartition> assigned;
  std::map<log::TopicPartition, absl::Status> halted;
  {
    absl::MutexLock lock(&mu_);
    assigned = assigned_;
    halted = halted_;
  }
  std::map<std::string, std::vector<int64_t>> ends;
  std::vector<PartitionLag> out;
  for (const log::TopicPartition& tp : assigned) {
    auto it = ends.find(tp.topic);
    if (it == ends.end()) {
      absl::StatusOr<std::vector<int64_t>> e =
          log_.admin().EndOffsets(tp.topic, log::Isolation::kReadCommitted);
      if (!e.ok()) return e.status();
      it = ends.emplace(tp.topic, *std::move(e)).first;
    }
    PartitionLag lag;
    lag.checkpoint.set_topic(tp.topic);
    lag.checkpoint.set_partition(tp.partition);
    int64_t checkpoint = std::max<int64_t>(store_.watermarks().Get(tp), 0);
    lag.checkpoint.set_offset(checkpoint);
    if (tp.partition < static_cast<int32_t>(it->second.size())) {
      lag.end_offset = it->second[tp.partition];
    }
    lag.lag = std::max<int64_t>(lag.end_offset - checkpoint, 0);
    if (auto h = halted.find(tp); h != halted.end()) lag.halted = h->second;
    out.push_back(std::move(lag));
  }
  return out;
}

absl::Status Runner::WaitFor(const std::vector<v1::Position>& positions,
                             absl::Time deadline) const {
  return store_.watermarks().WaitFor(positions, deadline, topics_);
}

absl::Status Runner::halted() const {
  absl::MutexLock lock(&mu_);
  if (!halted_.empty()) return halted_.begin()->second;
  return run_error_;
}

}  // namespace leftfold::internal::projection
