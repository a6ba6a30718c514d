#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/thread_name.h"
#include "log/embedded/clients.h"
#include "log/embedded/codec.h"
#include "log/errors.h"

namespace leftfold::internal::log::embedded {

EmbeddedProducer::EmbeddedProducer(LogStore* store, const ProducerOptions& options)
    : store_(store),
      transactional_(!options.transactional_id.empty()),
      linger_(options.linger.value_or(store->options().linger)),
      transactional_id_(options.transactional_id) {
  if (transactional_) {
    // Like InitTransactions: the newest producer of an id fences every older one.
    txn_state_ = store_->RegisterTransactionalId(transactional_id_, &epoch_);
  } else {
    flusher_ = std::thread([this] {
      NameThisThread("lf-log-flush");
      FlusherLoop();
    });
  }
}

EmbeddedProducer::~EmbeddedProducer() {
  if (!closed_) Shutdown();
}

absl::Status EmbeddedProducer::CheckUsable() {
  if (closed_) return absl::FailedPreconditionError("embedded log: producer is closed");
  if (transactional_ && txn_state_->epoch.load(std::memory_order_acquire) != epoch_) {
    absl::Status fenced = FatalError(
        absl::StrCat("embedded log: producer fenced: a newer producer with transactional id '",
                     transactional_id_, "' was created"));
    if (txn_ != Txn::kNone) DropTransaction(fenced);
    return fenced;
  }
  return absl::OkStatus();
}

absl::Status EmbeddedProducer::CheckInTransaction() {
  absl::Status s = CheckUsable();
  if (!s.ok()) return s;
  if (!transactional_) {
    return absl::FailedPreconditionError(
        "embedded log: transactions need a producer with a transactional_id");
  }
  if (txn_ == Txn::kNone) {
    return absl::FailedPreconditionError("embedded log: no open transaction");
  }
  if (txn_ == Txn::kAbortOnly) return abort_reason_;
  return absl::OkStatus();
}

absl::Status EmbeddedProducer::BeginTransaction() {
  absl::Status s = CheckUsable();
  if (!s.ok()) return s;
  if (!transactional_) {
    return absl::FailedPreconditionError(
        "embedded log: BeginTransaction needs a producer with a transactional_id");
  }
  if (txn_ != Txn::kNone) {
    return absl::FailedPreconditionError("embedded log: a transaction is already open");
  }
  txn_ = Txn::kOpen;
  return absl::OkStatus();
}

absl::StatusOr<const std::shared_ptr<TopicState>*> EmbeddedProducer::Topic(absl::string_view name) {
  // A producer writes a handful of topics (a processor: events, snapshots, results), often
  // interleaved: a short list beats the store's locked map per record.
  for (std::shared_ptr<TopicState>& topic : topics_) {
    if (topic->name != name) continue;
    if (topic->deleted) {
      absl::StatusOr<std::shared_ptr<TopicState>> found = store_->FindTopic(topic->name);
      if (!found.ok()) return found.status();
      topic = *std::move(found);  // staged records keep the old one alive
    }
    return &topic;
  }
  absl::StatusOr<std::shared_ptr<TopicState>> found = store_->FindTopic(std::string(name));
  if (!found.ok()) return found.status();
  if (topics_.size() >= kMaxCachedTopics) topics_.erase(topics_.begin());
  return &topics_.emplace_back(*std::move(found));
}

namespace {

const std::vector<Header>& HeadersOf(const OutgoingRecord& record) { return record.headers; }
const std::vector<Header>& HeadersOf(const OutgoingRecordRef& record) {
  static const std::vector<Header>* const kNone = new std::vector<Header>();
  return record.headers == nullptr ? *kNone : *record.headers;
}

// The record's key, value and headers into `out`'s strings (which keep their capacity when
// copied into).
void TakeBytes(OutgoingRecord&& record, PendingRecord* out) {
  out->key = std::move(record.key);
  out->value = std::move(record.value);
  out->headers = std::move(record.headers);
}
void TakeBytes(const OutgoingRecordRef& record, PendingRecord* out) {
  out->key.assign(record.key.data(), record.key.size());
  out->value.assign(record.value.data(), record.value.size());
  out->headers = HeadersOf(record);
}

}  // namespace

template <typename Record>
absl::Status EmbeddedProducer::Prepare(Record&& record, DeliveryCallback& on_delivery,
                                       PendingRecord* out) {
  absl::StatusOr<const std::shared_ptr<TopicState>*> topic = Topic(record.topic);
  if (!topic.ok()) return topic.status();
  const TopicState& t = ***topic;
  size_t size = record.key.size() + record.value.size();
  for (const Header& h : HeadersOf(record)) size += h.key.size() + h.value.size();
  if (size > store_->options().max_record_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedded log: record of ", size, " bytes for topic '", record.topic,
                     "' exceeds max_record_bytes (", store_->options().max_record_bytes, ")"));
  }
  int32_t partition = record.partition;
  if (partition < 0) {
    partition =
        PartitionForKey(std::string_view(record.key.data(), record.key.size()), t.partition_count);
  } else if (partition >= t.partition_count) {
    return absl::NotFoundError(
        absl::StrCat("embedded log: topic '", record.topic, "' has no partition ", partition));
  }
  // The caller's strings move in (Produce) or are copied (ProduceCopy), then are encoded (and
  // copied) once, into the WriteBatch at the write.
  out->topic = **topic;
  out->partition = partition;
  out->offset = -1;
  TakeBytes(std::forward<Record>(record), out);
  out->on_delivery = std::move(on_delivery);
  return absl::OkStatus();
}

absl::Status EmbeddedProducer::Produce(OutgoingRecord record, DeliveryCallback on_delivery) {
  return ProduceRecord(std::move(record), std::move(on_delivery));
}

absl::Status EmbeddedProducer::ProduceCopy(const OutgoingRecordRef& record,
                                           DeliveryCallback on_delivery) {
  return ProduceRecord(record, std::move(on_delivery));
}

template <typename Record>
absl::Status EmbeddedProducer::ProduceRecord(Record&& record, DeliveryCallback on_delivery) {
  absl::Status s = CheckUsable();
  if (!s.ok()) return s;
  if (transactional_) {
    if (txn_ == Txn::kNone) {
      return absl::FailedPreconditionError(
          "embedded log: Produce on a transactional producer outside a transaction");
    }
    if (txn_ == Txn::kAbortOnly) return abort_reason_;
    // Offsets are assigned by Flush (reserved) or at commit, under the partition locks. Staged
    // in place: no temporary record to move.
    if (spares_.empty()) {
      staged_.emplace_back();
    } else {
      staged_.push_back(std::move(spares_.back()));
      spares_.pop_back();
    }
    s = Prepare(std::forward<Record>(record), on_delivery, &staged_.back());
    if (!s.ok()) staged_.pop_back();
    return s;
  }
  PendingRecord pending;
  s = Prepare(std::forward<Record>(record), on_delivery, &pending);
  if (!s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    if (pending_.empty()) first_pending_ = absl::Now();
    pending_.push_back(std::move(pending));
    // A failed write is reported to the delivery callbacks.
    if (pending_.size() >= store_->options().max_batch_records) {
      WritePendingLocked().IgnoreError();
    }
  }
  RunCompletions();
  return absl::OkStatus();
}

absl::Status EmbeddedProducer::SendOffsetsToTransaction(
    const std::vector<TopicPartitionOffset>& offsets, const Consumer& consumer) {
  absl::Status s = CheckInTransaction();
  if (!s.ok()) return s;
  const auto* embedded = dynamic_cast<const EmbeddedConsumer*>(&consumer);
  if (embedded == nullptr || embedded->store() != store_) {
    return absl::InvalidArgumentError(
        "embedded log: SendOffsetsToTransaction needs a consumer of the same embedded log");
  }
  absl::StatusOr<PendingOffsets> fenced = embedded->FencedOffsets(offsets);
  if (!fenced.ok()) return fenced.status();
  staged_offsets_.push_back(*std::move(fenced));
  return absl::OkStatus();
}

absl::Status EmbeddedProducer::CommitTransaction() {
  absl::Status s = CheckInTransaction();
  if (!s.ok()) return s;
  // Flushed records are written at their reserved offsets, the rest at the next ones; the
  // reservations end with the write.
  absl::StatusOr<std::vector<int64_t>> offsets =
      store_->Append(staged_, staged_offsets_, store_->options().sync_commits, reservations_);
  if (!offsets.ok()) {
    if (ClassifyError(offsets.status()) == ErrorClass::kFatal) {
      DropTransaction(offsets.status());
      return offsets.status();
    }
    // Fenced group generation or a topic deleted meanwhile: this batch can never commit.
    txn_ = Txn::kAbortOnly;
    abort_reason_ = AbortableError(offsets.status().message());
    return abort_reason_;
  }
  ForgetReservations();
  reservations_.clear();
  reserved_count_ = 0;
  std::vector<PendingRecord> committed = std::move(staged_);
  staged_.clear();
  staged_offsets_.clear();
  txn_ = Txn::kNone;
  for (size_t i = 0; i < committed.size(); ++i) {
    PendingRecord& r = committed[i];
    // Flushed records already had theirs (their callbacks were consumed then).
    if (r.on_delivery) r.on_delivery(Delivered(r, (*offsets)[i]));
  }
  // The records become spares, up to as many as this transaction staged (without their
  // callbacks' captures, and without outsized values).
  for (size_t i = 0; i < committed.size() && spares_.size() < committed.size(); ++i) {
    PendingRecord& r = committed[i];
    r.on_delivery = nullptr;
    if (r.value.capacity() > kMaxSpareBytes) r.value = std::string();
    spares_.push_back(std::move(r));
  }
  // The next transaction stages into this capacity instead of growing a vector again (unless a
  // callback already started staging).
  committed.clear();
  if (staged_.empty() && staged_.capacity() < committed.capacity()) staged_.swap(committed);
  return absl::OkStatus();
}

absl::Status EmbeddedProducer::AbortTransaction() {
  absl::Status s = CheckUsable();
  if (!s.ok()) return s;
  if (!transactional_ || txn_ == Txn::kNone) {
    return absl::FailedPreconditionError("embedded log: no open transaction to abort");
  }
  DropTransaction(absl::AbortedError("embedded log: transaction aborted"));
  return absl::OkStatus();
}

void EmbeddedProducer::DropTransaction(const absl::Status& status) {
  // Aborted records keep their offsets in Kafka too, never visible: here a gap.
  ForgetReservations();
  store_->Release(reservations_);
  reservations_.clear();
  reserved_count_ = 0;
  std::vector<PendingRecord> dropped = std::move(staged_);
  staged_.clear();
  staged_offsets_.clear();
  txn_ = Txn::kNone;
  abort_reason_ = absl::OkStatus();
  for (PendingRecord& r : dropped) {
    if (r.on_delivery) r.on_delivery(status);
  }
}

void EmbeddedProducer::ForgetReservations() {
  if (reservations_.empty()) return;
  absl::MutexLock lock(&txn_state_->mu);
  // Once fenced, the list belongs to the newer producer (ours were released when it came).
  if (txn_state_->epoch.load(std::memory_order_relaxed) == epoch_) {
    txn_state_->reservations.clear();
  }
}

absl::Status EmbeddedProducer::ReserveStaged() {
  if (reserved_count_ == staged_.size()) return absl::OkStatus();
  absl::StatusOr<LogStore::Reserved> reserved =
      store_->Reserve(absl::MakeConstSpan(staged_).subspan(reserved_count_));
  if (!reserved.ok()) {
    // A topic deleted meanwhile: this transaction can never commit.
    txn_ = Txn::kAbortOnly;
    abort_reason_ = AbortableError(reserved.status().message());
    return abort_reason_;
  }
  bool fenced = false;
  {
    // Published under the id's lock so a newer producer either sees and releases them, or has
    // already bumped the epoch and we release them ourselves.
    absl::MutexLock lock(&txn_state_->mu);
    if (txn_state_->epoch.load(std::memory_order_relaxed) != epoch_) {
      fenced = true;
    } else {
      txn_state_->reservations.insert(txn_state_->reservations.end(),
                                      reserved->reservations.begin(), reserved->reservations.end());
    }
  }
  if (fenced) {
    store_->Release(reserved->reservations);
    return CheckUsable();  // drops the transaction with the fencing error
  }
  reservations_.insert(reservations_.end(), reserved->reservations.begin(),
                       reserved->reservations.end());
  std::vector<std::pair<DeliveryCallback, size_t>> delivered;  // callback, index in staged_
  delivered.reserve(staged_.size() - reserved_count_);
  for (size_t i = reserved_count_; i < staged_.size(); ++i) {
    PendingRecord& r = staged_[i];
    r.offset = reserved->offsets[i - reserved_count_];
    if (r.on_delivery) {
      delivered.emplace_back(std::move(r.on_delivery), i);
      r.on_delivery = nullptr;
    }
  }
  reserved_count_ = staged_.size();
  // Run after the bookkeeping: a callback may Produce again (staging only: indexes stay valid).
  for (auto& [callback, i] : delivered) callback(Delivered(staged_[i], staged_[i].offset));
  return absl::OkStatus();
}

absl::Status EmbeddedProducer::Flush(absl::Duration /*timeout: writes are synchronous*/) {
  absl::Status s = CheckUsable();
  if (!s.ok()) return s;
  if (transactional_) {
    if (txn_ == Txn::kNone) return absl::OkStatus();
    if (txn_ == Txn::kAbortOnly) return abort_reason_;
    return ReserveStaged();
  }
  {
    absl::MutexLock lock(&mu_);
    s = WritePendingLocked();
  }
  RunCompletions();
  return s;
}

absl::Status EmbeddedProducer::WritePendingLocked() {
  if (pending_.empty()) return absl::OkStatus();
  std::vector<PendingRecord> batch;
  batch.swap(pending_);
  absl::StatusOr<std::vector<int64_t>> offsets =
      store_->Append(batch, {}, store_->options().sync_plain_writes);
  for (size_t i = 0; i < batch.size(); ++i) {
    PendingRecord& r = batch[i];
    if (!r.on_delivery) continue;
    if (offsets.ok()) {
      completed_.emplace_back(std::move(r.on_delivery),
                              TopicPartitionOffset{{r.topic->name, r.partition}, (*offsets)[i]});
    } else {
      completed_.emplace_back(std::move(r.on_delivery), offsets.status());
    }
  }
  // The next batch gathers into this capacity instead of growing a vector again.
  batch.clear();
  if (pending_.empty()) pending_.swap(batch);
  return offsets.status();
}

void EmbeddedProducer::RunCompletions() {
  std::vector<std::pair<DeliveryCallback, absl::StatusOr<TopicPartitionOffset>>> done;
  {
    absl::MutexLock lock(&mu_);
    done.swap(completed_);
  }
  for (auto& [callback, result] : done) callback(std::move(result));
}

const absl::StatusOr<TopicPartitionOffset>& EmbeddedProducer::Delivered(const PendingRecord& record,
                                                                        int64_t offset) {
  TopicPartitionOffset& where = *delivered_;
  where.tp.topic.assign(record.topic->name);  // into the capacity of the last one
  where.tp.partition = record.partition;
  where.offset = offset;
  return delivered_;
}

size_t EmbeddedProducer::Poll(absl::Duration timeout) {
  if (closed_) return 0;
  if (transactional_) return staged_.size() - reserved_count_;
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](EmbeddedProducer* p) { return p->wake_ || !p->completed_.empty(); }, this),
        timeout);
    wake_ = false;
  }
  RunCompletions();
  absl::MutexLock lock(&mu_);
  return pending_.size() + completed_.size();
}

void EmbeddedProducer::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

void EmbeddedProducer::FlusherLoop() {
  absl::MutexLock lock(&mu_);
  for (;;) {
    mu_.Await(absl::Condition(
        +[](EmbeddedProducer* p) { return p->stop_ || !p->pending_.empty(); }, this));
    if (stop_) return;
    // Linger: gather more records before paying for a write.
    mu_.AwaitWithDeadline(absl::Condition(&stop_), first_pending_ + linger_);
    if (stop_) return;
    WritePendingLocked().IgnoreError();  // reported to the delivery callbacks
  }
}

void EmbeddedProducer::Shutdown() {
  closed_ = true;
  if (transactional_) {
    if (txn_ != Txn::kNone) DropTransaction(absl::AbortedError("embedded log: producer closed"));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  flusher_.join();
  {
    absl::MutexLock lock(&mu_);
    WritePendingLocked().IgnoreError();
  }
  RunCompletions();
}

absl::Status EmbeddedProducer::Close() {
  if (closed_) return absl::FailedPreconditionError("embedded log: producer is closed");
  Shutdown();
  return absl::OkStatus();
}

}  // namespace leftfold::internal::log::embedded
