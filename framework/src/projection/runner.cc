#include "projection/runner.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/thread_name.h"
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
              sought_at_.erase(tp);
              unhinted_offsets_.erase(tp);  // the new owner seeks to the store's checkpoint
            }
          },
  };
  if (absl::Status s = consumer_->Subscribe(topics_, std::move(listener)); !s.ok()) return s;
  LogInfo(kComponent, "started", {{"projector", projector_.name()}, {"backend", log_.backend()}});
  decoder_ = std::thread([this] {
    NameThisThread("lf-proj-decode");
    DecoderLoop();
  });
  thread_ = std::thread([this] {
    NameThisThread("lf-projector");
    Run();
  });
  return absl::OkStatus();
}

absl::Status Runner::Stop() {
  stop_ = true;
  if (thread_.joinable()) {
    thread_.join();
    // The last batch's background write (a failure only means a restart re-applies it).
    if (absl::Status s = store_.Flush(); !s.ok()) {
      LogWarning(kComponent, "last batch not stored; a restart re-applies it",
                 {{"projector", projector_.name()}, {"error", s.ToString()}});
    }
  }
  if (decoder_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(decode_mu_);
      decode_stop_ = true;
    }
    decode_cv_.notify_all();
    decoder_.join();
  }
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
      sought_at_[tp] = ++seeks_;
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
  // Two stages: while the handlers run batch `ready` on this thread, the next poll's records are
  // decoded on the decoder thread into `next`. The consumer is only used from this thread.
  Polled polled[2];
  Polled* ready = &polled[0];
  Polled* next = &polled[1];
  bool have_ready = false;
  while (!stop_) {
    // With a batch ready, poll without waiting: the ready batch must not wait for new records.
    absl::StatusOr<std::vector<log::Record>> records = consumer_->Poll(
        options_.max_batch, have_ready ? absl::ZeroDuration() : options_.poll_timeout);
    bool have_next = false;
    if (!records.ok()) {
      if (log::ClassifyError(records.status()) == log::ErrorClass::kFatal) return records.status();
      LogWarning(kComponent, "poll failed",
                 {{"projector", projector_.name()}, {"error", records.status().ToString()}});
    } else if (!records->empty()) {
      // Swaps, no move-assign: freeing the previous batch's records is the decoder's job.
      next->retired.swap(next->records);
      next->records.swap(*records);
      next->seek_stamp = seeks_;
      StartDecode(next);
      have_next = true;
    }
    absl::Status s;
    {
      // Not across the backoff below: a rebuild's swap waits for this lock.
      absl::MutexLock batch_lock(&batch_mu_);
      if (!pending_seek_.empty()) {
        std::vector<log::TopicPartition> tps(pending_seek_.begin(), pending_seek_.end());
        SeekToCheckpoints(tps).IgnoreError();
      }
      if (!deferred_error_.ok()) {
        // A background write failed (found by WhilePaused): no batch may go on top of it; the
        // ready one is dropped with the rewind below and polled again.
        s = std::exchange(deferred_error_, absl::OkStatus());
      } else if (have_ready) {
        s = ProcessBatch(*ready);
      } else if (!have_next) {
        // Idle: make sure the last batch's background write went in (else rewind now, not at
        // the next event).
        s = store_.Flush();
      }
    }
    if (have_next) WaitDecode();
    std::swap(ready, next);
    have_ready = have_next;
    if (absl::IsCancelled(s)) return absl::OkStatus();  // simulated crash
    if (!s.ok()) {
      // The store refused the batch: nothing of it counts. Rewind to what the store holds (the
      // seeks also void the records polled meanwhile, which came after the refused batch).
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

bool Runner::Decode(const log::Record& record, v1::EventEnvelope* envelope) const {
  if (snapshot_topics_.count(record.topic) == 0) {
    // ParseFromString clears first; a reused envelope keeps its strings' buffers.
    return envelope->ParseFromString(record.value);
  }
  envelope->Clear();
  v1::Snapshot snapshot;
  if (!snapshot.ParseFromString(record.value)) return false;
  envelope->set_aggregate_type(snapshot.aggregate_type());
  envelope->set_aggregate_id(snapshot.aggregate_id());
  envelope->set_version(snapshot.version());
  *envelope->mutable_timestamp() = snapshot.timestamp();
  *envelope->mutable_payload() = std::move(*snapshot.mutable_state());
  return true;
}

void Runner::DecodeAll(Polled& polled) const {
  polled.retired.clear();
  const size_t n = polled.records.size();
  if (polled.envelopes.size() < n) polled.envelopes.resize(n);
  polled.decoded.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    polled.decoded[i] = Decode(polled.records[i], &polled.envelopes[i]) ? 1 : 0;
  }
}

void Runner::DecoderLoop() {
  std::unique_lock<std::mutex> lock(decode_mu_);
  for (;;) {
    decode_cv_.wait(lock, [this] { return decode_stop_ || decode_job_ != nullptr; });
    if (decode_job_ == nullptr) return;  // stopping, nothing in hand
    Polled* job = decode_job_;
    lock.unlock();
    DecodeAll(*job);
    lock.lock();
    decode_job_ = nullptr;
    decode_cv_.notify_all();
  }
}

void Runner::StartDecode(Polled* polled) {
  // A thread hand-off costs more than decoding a few records here.
  constexpr size_t kMinOffloaded = 64;
  if (polled->records.size() < kMinOffloaded || !decoder_.joinable()) {
    DecodeAll(*polled);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(decode_mu_);
    decode_job_ = polled;
  }
  decode_cv_.notify_all();
}

void Runner::WaitDecode() {
  std::unique_lock<std::mutex> lock(decode_mu_);
  decode_cv_.wait(lock, [this] { return decode_job_ == nullptr; });
}

absl::Status Runner::ProcessBatch(Polled& polled) {
  const std::vector<log::Record>& records = polled.records;
  // Drop what this runner must not apply: partitions not yet sought to their checkpoint, halted
  // partitions, records polled before their partition's last seek, and records below the
  // checkpoint (re-delivered after a seek). Decided once per run of one partition's records.
  std::vector<size_t> todo;
  todo.reserve(records.size());
  {
    absl::MutexLock lock(&mu_);
    const log::Record* run = nullptr;  // first record of the current partition run
    bool usable = false;
    int64_t next = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      const log::Record& r = records[i];
      if (run == nullptr || r.partition != run->partition || r.topic != run->topic) {
        run = &r;
        log::TopicPartition tp{r.topic, r.partition};
        auto it = next_.find(tp);
        auto sought = sought_at_.find(tp);
        usable = !pending_seek_.count(tp) && !halted_.count(tp) && it != next_.end() &&
                 sought != sought_at_.end() && sought->second <= polled.seek_stamp;
        next = usable ? it->second : 0;
      }
      if (usable && r.offset >= next) todo.push_back(i);
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
    // The current partition run: its checkpoint entry, and its halt offset if any.
    const log::Record* run = nullptr;
    int64_t* checkpoint = nullptr;
    int64_t halt = std::numeric_limits<int64_t>::max();
    for (size_t i = 0; i < todo.size(); ++i) {
      const log::Record& r = records[todo[i]];
      if (run == nullptr || r.partition != run->partition || r.topic != run->topic) {
        run = &r;
        log::TopicPartition tp{r.topic, r.partition};
        auto h = halted_at.find(tp);
        halt = h == halted_at.end() ? std::numeric_limits<int64_t>::max() : h->second;
        checkpoint = &checkpoints.try_emplace(std::move(tp), 0).first->second;
        if (position_.topic() != r.topic) position_.set_topic(r.topic);
        position_.set_partition(r.partition);
      }
      if (r.offset >= halt) continue;
      if (!skipped.count(i)) {
        (*batch)->StartEvent(i);
        position_.set_offset(r.offset);
        error = ApplyDecoded(r, polled.decoded[todo[i]] ? &polled.envelopes[todo[i]] : nullptr,
                             position_, **batch);
        if (!error.ok()) {
          // A deferred (pipelined) write of an earlier event may be what failed.
          failed = std::min((*batch)->failed_event().value_or(i), i);
          break;
        }
        ++applied;
      }
      *checkpoint = r.offset + 1;
    }
    // A partition whose every record in this batch was held back by a halt has no checkpoint.
    for (auto it = checkpoints.begin(); it != checkpoints.end();) {
      it = it->second == 0 ? checkpoints.erase(it) : std::next(it);
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
    const log::Record& poison = records[todo[failed]];
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
  // The last batch may still be on its way into the store: the watermarks (the rebuilder's
  // targets) and the store must hold it before `fn` looks.
  if (absl::Status s = store_.Flush(); !s.ok()) {
    deferred_error_ = s;  // the polling thread rewinds for it
    return s;
  }
  return fn();
}

absl::Status Runner::Apply(const log::Record& record, store::Batch& batch) const {
  // Reused: a parse keeps the strings' buffers, so decoding an event allocates little.
  thread_local v1::EventEnvelope envelope;
  const bool decoded = Decode(record, &envelope);
  return ApplyDecoded(record, decoded ? &envelope : nullptr, PositionOf(record), batch);
}

absl::Status Runner::ApplyDecoded(const log::Record& record, const v1::EventEnvelope* envelope,
                                  const v1::Position& position, store::Batch& batch) const {
  const bool state = snapshot_topics_.count(record.topic) > 0;
  if (envelope == nullptr) {
    return absl::DataLossError(state ? "record is not a leftfold.v1.Snapshot"
                                     : "record is not a leftfold.v1.EventEnvelope");
  }
  EventContext ctx(*envelope, &position);
  return projector_.Dispatch(ctx, envelope->payload(), state, batch.view(), batch.sql());
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
