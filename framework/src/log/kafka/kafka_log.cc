#include "log/kafka/kafka_log.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "log/errors.h"
#include "log/kafka/client.h"
#include "log/kafka/kafka_internal.h"
#include "log/spare_records.h"

namespace leftfold::internal::log::kafka {
namespace {

// Low and high watermark of one partition. Retries until `deadline` the errors that clear up by
// themselves: retriable ones and a handle's lagging view of a fresh topic.
absl::StatusOr<std::pair<int64_t, int64_t>> QueryWatermarks(rd_kafka_t* rk,
                                                            const std::string& topic,
                                                            int32_t partition,
                                                            absl::Time deadline) {
  for (;;) {
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        rk, topic.c_str(), partition, &low, &high, ToMillis(deadline - absl::Now()));
    absl::Status s =
        StatusFromCode(absl::StrCat("watermark offsets of ", topic, "/", partition), err);
    if (s.ok()) return std::pair{low, high};
    // A fresh topic's leaders take a moment to reach every client's metadata, and so does the
    // topic itself: this handle may not know yet a partition that another handle already counted
    // ("Local: Unknown partition"). Seen once as a process manager's fatal error right after the
    // processors created their topics.
    bool lagging = err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                   err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                   err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (!lagging && ClassifyError(s) != ErrorClass::kRetriable) return s;
    if (absl::Now() >= deadline) return s;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

// ---------------------------------------------------------------------------------------------
// Producer

// Delivery callbacks in flight, in slots that do not move (a deque), so each message carries a
// pointer to its slot and a delivered slot is reused: no allocation per record. Only the owner
// thread touches it (OnDelivery runs from rd_kafka_poll/flush inside the producer's own calls).
class DeliverySlots {
 public:
  DeliveryCallback* Take(DeliveryCallback callback) {
    DeliveryCallback* slot;
    if (free_.empty()) {
      slot = &slots_.emplace_back();
    } else {
      slot = free_.back();
      free_.pop_back();
    }
    *slot = std::move(callback);
    return slot;
  }
  // Empties the slot and returns its callback.
  DeliveryCallback Release(DeliveryCallback* slot) {
    DeliveryCallback callback = std::move(*slot);
    *slot = nullptr;
    free_.push_back(slot);
    return callback;
  }

 private:
  std::deque<DeliveryCallback> slots_;
  std::vector<DeliveryCallback*> free_;
};

// The producer's per-handle state that OnDelivery needs (its opaque).
struct DeliveryState {
  DeliverySlots slots;
  // Reused for every delivery (always OK: errors go to the callback as they are): the topic's
  // characters are copied into its capacity.
  absl::StatusOr<TopicPartitionOffset> delivered = TopicPartitionOffset{};
};

// Runs on the owner thread, from rd_kafka_poll/flush inside Produce/Flush/Commit/Abort/Close.
void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message, void* opaque) {
  auto* slot = static_cast<DeliveryCallback*>(message->_private);
  if (slot == nullptr) return;
  auto& state = *static_cast<DeliveryState*>(opaque);
  // Released before the call, which may produce again. A slot only ever holds a callback.
  DeliveryCallback callback = state.slots.Release(slot);
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    callback(StatusFromCode("produce", message->err, rd_kafka_message_errstr(message)));
    return;
  }
  // The record's own offset: where it landed (not "next to read").
  TopicPartitionOffset& where = *state.delivered;
  where.tp.topic.assign(rd_kafka_topic_name(message->rkt));
  where.tp.partition = message->partition;
  where.offset = message->offset;
  callback(state.delivered);
}

class KafkaConsumer;

// One rd_kafka_t at a time; a timed-out transactional call swaps it for a fresh one.
class KafkaProducer final : public Producer {
 public:
  KafkaProducer(std::shared_ptr<const ClientSettings> settings, ProducerOptions options)
      : settings_(std::move(settings)), options_(std::move(options)) {}
  ~KafkaProducer() override { (void)Close(); }

  // Creates the handle and, when transactional, runs init_transactions.
  absl::Status Start() { return CreateAndInit(); }
  int generation() const { return generation_; }
  void OverrideNextCallTimeout(absl::Duration timeout) { next_call_timeout_ = timeout; }

  absl::Status BeginTransaction() override {
    if (absl::Status s = EnsureUsable("begin_transaction", /*needs_txn=*/true); !s.ok()) return s;
    if (in_transaction_) {
      return absl::FailedPreconditionError("begin_transaction: a transaction is already open");
    }
    absl::Status s = TxnResult("begin_transaction", rd_kafka_begin_transaction(rk_.get()));
    if (s.ok()) in_transaction_ = true;
    return s;
  }

  absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                        const Consumer& consumer) override;

  absl::Status CommitTransaction() override {
    if (absl::Status s = EnsureUsable("commit_transaction", true); !s.ok()) return s;
    if (!in_transaction_) {
      return absl::FailedPreconditionError("commit_transaction: no open transaction");
    }
    rd_kafka_error_t* error = rd_kafka_commit_transaction(rk_.get(), CallTimeoutMillis());
    ServeCallbacks();
    absl::Status s = TxnResult("commit_transaction", error);
    if (s.ok()) in_transaction_ = false;
    return s;
  }

  absl::Status AbortTransaction() override {
    if (closed_) return ClosedError("abort_transaction");
    if (!fatal_.ok()) return fatal_;
    if (!transactional()) return NotTransactionalError("abort_transaction");
    // A producer destroyed after a timeout whose re-creation failed: re-creating it
    // (init_transactions) is what aborts the old transaction.
    if (needs_recreate_) return CreateAndInit();
    if (!in_transaction_) return absl::OkStatus();  // nothing open (e.g. already re-created)
    rd_kafka_error_t* error = rd_kafka_abort_transaction(rk_.get(), CallTimeoutMillis());
    ServeCallbacks();
    absl::Status s = TxnResult("abort_transaction", error);
    // After a timed-out abort the fresh producer's init_transactions has aborted the old one.
    if (s.ok() ||
        (!needs_recreate_ && !in_transaction_ && ClassifyError(s) == ErrorClass::kAbortable)) {
      in_transaction_ = false;
      return absl::OkStatus();
    }
    return s;
  }

  absl::Status Produce(OutgoingRecord record, DeliveryCallback on_delivery) override {
    return ProduceCopy(record, std::move(on_delivery));  // librdkafka copies it
  }
  absl::Status ProduceCopy(const OutgoingRecordRef& record, DeliveryCallback on_delivery) override;

  absl::Status Flush(absl::Duration timeout) override {
    if (closed_) return ClosedError("flush");
    if (rk_ == nullptr) return absl::OkStatus();  // destroyed after a timeout: nothing queued
    rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), ToMillis(timeout));
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      return RetriableError(absl::StrCat("flush: ", rd_kafka_outq_len(rk_.get()),
                                         " records/requests still queued after ",
                                         absl::FormatDuration(timeout)));
    }
    return StatusFromCode("flush", err);
  }

  size_t Poll(absl::Duration timeout) override {
    if (closed_ || rk_ == nullptr) return 0;
    rd_kafka_poll(rk_.get(), ToMillis(timeout));
    // Records not yet delivered, plus any request in flight: never 0 while a record waits.
    return static_cast<size_t>(rd_kafka_outq_len(rk_.get()));
  }

  // A yield on the queue rd_kafka_poll serves ends the poll in progress, or else makes the next
  // one return at once. (rd_kafka_yield only works from inside a callback.)
  void Wake() override {
    absl::MutexLock lock(&wake_mu_);
    if (main_queue_ != nullptr) rd_kafka_queue_yield(main_queue_);
  }

  absl::Status Close() override {
    if (closed_) return absl::OkStatus();
    closed_ = true;
    absl::Status status;
    // A transaction left open is aborted by destroying its producer; plain records are flushed.
    if (rk_ != nullptr && !transactional()) {
      if (rd_kafka_flush(rk_.get(), ToMillis(options_.call_timeout)) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = RetriableError(absl::StrCat("close: ", rd_kafka_outq_len(rk_.get()),
                                             " records not delivered before close"));
      }
    }
    DestroyHandle();
    return status;
  }

 private:
  bool transactional() const { return !options_.transactional_id.empty(); }

  static absl::Status ClosedError(absl::string_view op) {
    return absl::FailedPreconditionError(absl::StrCat(op, ": producer is closed"));
  }
  static absl::Status NotTransactionalError(absl::string_view op) {
    return absl::FailedPreconditionError(absl::StrCat(op, ": producer has no transactional_id"));
  }

  absl::Status EnsureUsable(absl::string_view op, bool needs_txn) {
    if (closed_) return ClosedError(op);
    if (!fatal_.ok()) return fatal_;
    if (needs_txn && !transactional()) return NotTransactionalError(op);
    if (needs_recreate_) {
      if (absl::Status s = CreateAndInit(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<HandlePtr> CreateHandle() {
    static const Properties kDefaults = {
        {"linger.ms", "5"},
        {"batch.num.messages", "10000"},
        {"batch.size", "1000000"},
        // Unknown topics are an error, never created by a produce.
        {"allow.auto.create.topics", "false"},
    };
    Properties linger;
    if (options_.linger.has_value()) {
      linger["linger.ms"] = absl::StrCat(absl::ToDoubleMilliseconds(*options_.linger));
    }
    Properties txn;
    if (transactional()) {
      txn["transactional.id"] = options_.transactional_id;
      txn["transaction.timeout.ms"] = absl::StrCat(
          std::max<int64_t>(1000, absl::ToInt64Milliseconds(options_.transaction_timeout)));
      // A transaction begun right after a commit meets the broker still writing the previous
      // one's markers: its first AddOffsets request is answered CONCURRENT_TRANSACTIONS and
      // retried after this backoff. librdkafka's default (100 ms) made that wait most of a
      // consume-transform-produce cycle; 1 ms against 5 halved a processor's send-offsets time
      // at 2,000 commands/s (3 ms against 6.5) for ~10% more client CPU. AddPartitions retries
      // after a fixed 20 ms whatever this says, which is why the processor adds its offsets
      // before its first record.
      txn["retry.backoff.ms"] = "1";
    }
    // Not overridable: exactly-once and Java-compatible key placement are guarantees.
    static const Properties kEnforced = {
        {"enable.idempotence", "true"},
        {"partitioner", "murmur2_random"},
    };
    absl::StatusOr<ConfPtr> conf =
        BuildConf(settings_->brokers, {&kDefaults, &linger, &txn, &settings_->properties,
                                       &options_.kafka_properties, &kEnforced});
    if (!conf.ok()) return conf.status();
    rd_kafka_conf_set_dr_msg_cb(conf->get(), &OnDelivery);
    rd_kafka_conf_set_opaque(conf->get(), &delivery_);
    return NewHandle(RD_KAFKA_PRODUCER, std::move(*conf));
  }

  absl::Status CreateAndInit() {
    DestroyHandle();
    absl::StatusOr<HandlePtr> rk = CreateHandle();
    if (!rk.ok()) return rk.status();
    rk_ = std::move(*rk);
    {
      absl::MutexLock lock(&wake_mu_);
      main_queue_ = rd_kafka_queue_get_main(rk_.get());
    }
    ++generation_;
    needs_recreate_ = false;
    in_transaction_ = false;
    if (!transactional()) return absl::OkStatus();
    rd_kafka_error_t* error = rd_kafka_init_transactions(rk_.get(), CallTimeoutMillis());
    if (error == nullptr) return absl::OkStatus();
    bool timed_out = rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__TIMED_OUT;
    absl::Status s = StatusFromError("init_transactions", error);
    // A half-initialised producer is of no use: drop it and start over on the next call.
    DestroyHandle();
    needs_recreate_ = true;
    if (timed_out) {
      return RetriableError(absl::StrCat(s.message(), "; producer destroyed (generation ",
                                         generation_, "), re-created on the next call"));
    }
    return s;
  }

  // Purges what is queued (their callbacks run here, with an error) and destroys the handle.
  void DestroyHandle() {
    if (rk_ == nullptr) return;
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    absl::Time deadline = absl::Now() + absl::Seconds(1);
    rd_kafka_poll(rk_.get(), 0);
    while (rd_kafka_outq_len(rk_.get()) > 0 && absl::Now() < deadline) rd_kafka_poll(rk_.get(), 10);
    {
      absl::MutexLock lock(&wake_mu_);
      rd_kafka_queue_destroy(main_queue_);  // a reference: released before the handle
      main_queue_ = nullptr;
    }
    topics_.clear();
    rk_.reset();
    in_transaction_ = false;
  }

  // The bound of the next transactional call; a test override applies once.
  int CallTimeoutMillis() {
    absl::Duration d = next_call_timeout_.value_or(options_.call_timeout);
    next_call_timeout_.reset();
    return ToMillis(d);
  }

  void ServeCallbacks() {
    if (rk_ != nullptr) rd_kafka_poll(rk_.get(), 0);
  }
  int produced_since_serve_ = 0;

  // Maps a transactional call's result. A TIMEOUT leaves the transaction's fate unknown to
  // librdkafka (no KIP-890 part 2), and a late EndTxn/AddOffsets could still land in a later
  // transaction: so the producer is destroyed and re-created, and its init_transactions fences
  // the old epoch and completes or aborts whatever the coordinator holds.
  absl::Status TxnResult(absl::string_view op, rd_kafka_error_t* error) {
    if (error == nullptr) return absl::OkStatus();
    if (rd_kafka_error_code(error) != RD_KAFKA_RESP_ERR__TIMED_OUT ||
        rd_kafka_error_is_fatal(error)) {
      absl::Status s = StatusFromError(op, error);
      // Fenced or broken for good: every later call says so, whatever our own state thinks.
      if (ClassifyError(s) == ErrorClass::kFatal) fatal_ = s;
      return s;
    }
    std::string what = absl::StrCat(op, " timed out (", rd_kafka_error_string(error), ")");
    rd_kafka_error_destroy(error);
    absl::Status recreated = CreateAndInit();
    return AbortableError(absl::StrCat(
        what, "; the producer was re-created (generation ", generation_,
        recreated.ok() ? "" : absl::StrCat(", not yet usable: ", recreated.message()),
        ") and the transaction is gone (its outcome is unknown): re-read the committed offsets "
        "and reprocess from there"));
  }

  struct KnownTopic {
    int32_t partitions = 0;
    RdPtr<rd_kafka_topic_t> handle;
  };
  // The topic's partition count and handle; valid until the next call. Produce by handle: by
  // name, librdkafka looks the topic up under its handle-wide write lock for every record.
  absl::StatusOr<const KnownTopic*> Topic(absl::string_view topic) {
    auto it = topics_.find(topic);
    if (it != topics_.end()) return &it->second;
    std::string name(topic);
    absl::StatusOr<int32_t> count =
        LookupPartitionCount(*settings_, rk_.get(), name, kAdminTimeout);
    if (!count.ok()) return count.status();
    RdPtr<rd_kafka_topic_t> handle(rd_kafka_topic_new(rk_.get(), name.c_str(), nullptr));
    if (handle == nullptr) {
      return StatusFromCode(absl::StrCat("topic handle for ", name), rd_kafka_last_error());
    }
    return &topics_.emplace(name, KnownTopic{*count, std::move(handle)}).first->second;
  }

  std::shared_ptr<const ClientSettings> settings_;
  ProducerOptions options_;
  // Declared before rk_: the handle's last deliveries (at its destruction) still use it.
  DeliveryState delivery_;
  HandlePtr rk_;
  // rk_'s main queue (the one rd_kafka_poll serves), for Wake: the one call from other threads.
  absl::Mutex wake_mu_;
  rd_kafka_queue_t* main_queue_ ABSL_GUARDED_BY(wake_mu_) = nullptr;
  // Topics known to exist, so a produce to an unknown one fails at once instead of queueing.
  // Their handles belong to rk_: dropped before it.
  absl::flat_hash_map<std::string, KnownTopic> topics_;
  std::optional<absl::Duration> next_call_timeout_;
  absl::Status fatal_;  // the first fatal error; sticky
  int generation_ = 0;
  bool closed_ = false;
  bool needs_recreate_ = false;
  bool in_transaction_ = false;
};

absl::Status KafkaProducer::ProduceCopy(const OutgoingRecordRef& record,
                                        DeliveryCallback on_delivery) {
  if (absl::Status s = EnsureUsable("produce", false); !s.ok()) return s;
  absl::StatusOr<const KnownTopic*> topic = Topic(record.topic);
  if (!topic.ok()) {
    return absl::Status(topic.status().code(),
                        absl::StrCat("produce to ", record.topic, ": ", topic.status().message()));
  }
  if (record.partition >= (*topic)->partitions) {
    return absl::InvalidArgumentError(absl::StrCat("produce: partition ", record.partition,
                                                   " out of range, topic ", record.topic, " has ",
                                                   (*topic)->partitions));
  }
  // Kept apart from the map entry: a delivery callback run by the poll below may produce to a
  // new topic and move the entries.
  rd_kafka_topic_t* rkt = (*topic)->handle.get();
  RdPtr<rd_kafka_headers_t> headers;
  if (record.headers != nullptr && !record.headers->empty()) {
    headers.reset(rd_kafka_headers_new(record.headers->size()));
    for (const Header& h : *record.headers) {
      rd_kafka_header_add(headers.get(), h.key.data(), static_cast<ssize_t>(h.key.size()),
                          h.value.data(), static_cast<ssize_t>(h.value.size()));
    }
  }
  DeliveryCallback* callback = on_delivery ? delivery_.slots.Take(std::move(on_delivery)) : nullptr;

  // Only a full queue waits, so the clock is read only then (not once per record).
  std::optional<absl::Time> deadline;
  for (;;) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_RKT(rkt),
        RD_KAFKA_V_PARTITION(record.partition < 0 ? RD_KAFKA_PARTITION_UA : record.partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        // A non-null pointer even for "" (a default view has none): the partitioner hashes an
        // empty key like Java does.
        RD_KAFKA_V_KEY(record.key.data() == nullptr ? "" : record.key.data(), record.key.size()),
        // Copied (F_COPY), never written: the non-const pointer is only the macro's type.
        RD_KAFKA_V_VALUE(const_cast<char*>(record.value.data()), record.value.size()),
        RD_KAFKA_V_HEADERS(headers.get()), RD_KAFKA_V_OPAQUE(callback), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      headers.release();  // owned by the message now
      break;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      if (!deadline) deadline = absl::Now() + options_.call_timeout;
      if (absl::Now() < *deadline) {
        rd_kafka_poll(rk_.get(), 10);  // let deliveries drain the queue
        continue;
      }
    }
    if (callback != nullptr) delivery_.slots.Release(callback);  // never called
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
      return absl::InvalidArgumentError(absl::StrCat(
          "produce to ", record.topic, ": record of ", record.key.size() + record.value.size(),
          " bytes exceeds message.max.bytes (", rd_kafka_err2str(err), ")"));
    }
    return StatusFromCode(absl::StrCat("produce to ", record.topic), err);
  }
  // Deliveries are served in Flush and the transaction calls; here only now and then, so a long
  // run of Produce calls without them stays bounded. A poll per record (locks and clock reads in
  // librdkafka) was a visible share of a processor's CPU.
  if (++produced_since_serve_ >= 256) {
    produced_since_serve_ = 0;
    ServeCallbacks();
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Consumer

// Eager assignment (librdkafka's default range,roundrobin): every rebalance revokes the whole
// assignment first, so on_revoked can finish or abort the open transaction before any other
// member may own those partitions. Range also keeps co-partitioned topics together.
// A cooperative-sticky override is handled too (incremental assign/unassign).
class KafkaConsumer final : public Consumer {
 public:
  KafkaConsumer(std::shared_ptr<const ClientSettings> settings, ConsumerOptions options)
      : settings_(std::move(settings)), options_(std::move(options)) {}
  ~KafkaConsumer() override { (void)Close(); }

  absl::Status Start() {
    Properties enforced = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level",
         options_.isolation == Isolation::kReadCommitted ? "read_committed" : "read_uncommitted"},
        {"auto.offset.reset", options_.start_from_earliest ? "earliest" : "latest"},
        // End-of-partition events carry the fetch position past commit/abort markers.
        {"enable.partition.eof", "true"},
        // librdkafka needs a group.id even to assign(); a private one that never joins.
        {"group.id", has_group()
                         ? options_.group_id
                         : absl::StrCat("leftfold-nogroup-", reinterpret_cast<uintptr_t>(this))},
    };
    if (has_group() && !options_.instance_id.empty()) {
      enforced["group.instance.id"] = absl::StrCat(options_.group_id, "-", options_.instance_id);
    }
    // The broker answers a waiting fetch as soon as the partition's readable end moves, commit
    // markers included (measured: a results tail with a 200 ms wait saw results as fast as with
    // 10 ms), so the wait only bounds idle polling and how late an end-of-partition is noticed.
    // 10 ms made every idle consumer cost the broker ~2.5% of a core; Kafka's default 500 ms
    // would make each catch-up to the end (restore, lag) half a second slower (overridable).
    Properties defaults = {{"fetch.wait.max.ms", "100"}};
    absl::StatusOr<ConfPtr> conf =
        BuildConf(settings_->brokers,
                  {&defaults, &settings_->properties, &options_.kafka_properties, &enforced});
    if (!conf.ok()) return conf.status();
    rd_kafka_conf_set_opaque(conf->get(), this);
    rd_kafka_conf_set_rebalance_cb(conf->get(), &KafkaConsumer::OnRebalance);
    absl::StatusOr<HandlePtr> rk = NewHandle(RD_KAFKA_CONSUMER, std::move(*conf));
    if (!rk.ok()) return rk.status();
    rk_ = std::move(*rk);
    // Every callback (rebalance, errors) is served by consumer_poll on the owner thread.
    absl::Status s = StatusFromCode("poll_set_consumer", rd_kafka_poll_set_consumer(rk_.get()));
    if (s.ok()) queue_.reset(rd_kafka_queue_get_consumer(rk_.get()));
    return s;
  }

  // For SendOffsetsToTransaction (KIP-447): null without a group.
  GroupMetadataPtr GroupMetadata() const {
    if (closed_ || !has_group()) return nullptr;
    return GroupMetadataPtr(rd_kafka_consumer_group_metadata(rk_.get()));
  }

  absl::Status Subscribe(const std::vector<std::string>& topics,
                         RebalanceListener listener) override {
    if (closed_) return ClosedError("subscribe");
    if (!has_group()) {
      return absl::FailedPreconditionError("subscribe: consumer has no group_id; use Assign");
    }
    listener_ = std::move(listener);
    PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
    for (const std::string& t : topics) {
      rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    }
    return StatusFromCode("subscribe", rd_kafka_subscribe(rk_.get(), list.get()));
  }

  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) override {
    if (closed_) return ClosedError("assign");
    PartitionListPtr list = ToList(partitions);
    for (int i = 0; i < list->cnt; ++i) {
      // Negative: the committed offset, else auto.offset.reset.
      if (list->elems[i].offset < 0) list->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    }
    absl::Status s = StatusFromCode("assign", rd_kafka_assign(rk_.get(), list.get()));
    if (!s.ok()) return s;
    positions_.clear();
    position_cache_.clear();
    for (const TopicPartitionOffset& p : partitions) {
      if (p.offset >= 0) positions_[p.tp] = p.offset;
    }
    return absl::OkStatus();
  }

  std::vector<TopicPartition> Assignment() const override {
    if (closed_) return {};
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    PartitionListPtr list(raw);
    return PartitionsOf(list.get());
  }

  absl::StatusOr<std::vector<Record>> Poll(size_t max_records, absl::Duration timeout) override;
  void Recycle(std::vector<Record> records) override;

  absl::Status Seek(const TopicPartitionOffset& position) override {
    if (closed_) return ClosedError("seek");
    PartitionListPtr list = ToList(std::vector<TopicPartitionOffset>{position});
    absl::Status s = StatusFromError(
        "seek", rd_kafka_seek_partitions(rk_.get(), list.get(), ToMillis(kAdminTimeout)));
    if (s.ok()) s = FirstPartitionError("seek", list.get());
    if (s.ok()) positions_[position.tp] = position.offset;
    return s;
  }

  absl::Status Pause(const std::vector<TopicPartition>& partitions) override {
    if (closed_) return ClosedError("pause");
    PartitionListPtr list = ToList(partitions);
    absl::Status s = StatusFromCode("pause", rd_kafka_pause_partitions(rk_.get(), list.get()));
    return s.ok() ? FirstPartitionError("pause", list.get()) : s;
  }

  absl::Status Resume(const std::vector<TopicPartition>& partitions) override {
    if (closed_) return ClosedError("resume");
    PartitionListPtr list = ToList(partitions);
    absl::Status s = StatusFromCode("resume", rd_kafka_resume_partitions(rk_.get(), list.get()));
    return s.ok() ? FirstPartitionError("resume", list.get()) : s;
  }

  absl::StatusOr<int64_t> Position(const TopicPartition& partition) const override;

  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartition>& partitions, absl::Duration timeout) override {
    if (closed_) return ClosedError("committed");
    if (!has_group()) return absl::FailedPreconditionError("committed: consumer has no group_id");
    PartitionListPtr list = ToList(partitions);
    absl::Status s =
        StatusFromCode("committed", rd_kafka_committed(rk_.get(), list.get(), ToMillis(timeout)));
    if (!s.ok()) return s;
    return OffsetsOf(list.get());
  }

  absl::Status CommitOffsets(const std::vector<TopicPartitionOffset>& offsets) override {
    if (closed_) return ClosedError("commit_offsets");
    if (!has_group()) {
      return absl::FailedPreconditionError("commit_offsets: consumer has no group_id");
    }
    if (offsets.empty()) return absl::OkStatus();
    PartitionListPtr list = ToList(offsets);
    return StatusFromCode("commit_offsets", rd_kafka_commit(rk_.get(), list.get(), /*async=*/0));
  }

  absl::Status Close() override {
    if (closed_) return absl::OkStatus();
    // Leaves the group; the revoke callback runs here, on the owner thread.
    absl::Status s = StatusFromCode("close", rd_kafka_consumer_close(rk_.get()));
    closed_ = true;
    queue_.reset();
    rk_.reset();
    return s;
  }

 private:
  bool has_group() const { return !options_.group_id.empty(); }
  static absl::Status ClosedError(absl::string_view op) {
    return absl::FailedPreconditionError(absl::StrCat(op, ": consumer is closed"));
  }

  static void OnRebalance(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    static_cast<KafkaConsumer*>(opaque)->HandleRebalance(err, partitions);
  }

  void HandleRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) {
    const bool cooperative =
        std::strcmp(rd_kafka_rebalance_protocol(rk_.get()), "COOPERATIVE") == 0;
    std::vector<TopicPartition> tps = PartitionsOf(partitions);
    absl::Status s;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      s = cooperative ? StatusFromError("incremental_assign",
                                        rd_kafka_incremental_assign(rk_.get(), partitions))
                      : StatusFromCode("assign", rd_kafka_assign(rk_.get(), partitions));
      if (listener_.on_assigned) listener_.on_assigned(tps);
    } else {
      // Revoked (or lost): tell the owner while it still holds the partitions.
      if (listener_.on_revoked) listener_.on_revoked(tps);
      position_cache_.clear();
      for (const TopicPartition& tp : tps) positions_.erase(tp);
      s = cooperative ? StatusFromError("incremental_unassign",
                                        rd_kafka_incremental_unassign(rk_.get(), partitions))
                      : StatusFromCode("unassign", rd_kafka_assign(rk_.get(), nullptr));
    }
    if (!s.ok() && rebalance_error_.ok()) rebalance_error_ = s;
  }

  std::shared_ptr<const ClientSettings> settings_;
  ConsumerOptions options_;
  HandlePtr rk_;
  RebalanceListener listener_;
  // The positions_ entry of a partition, found by librdkafka's topic handle without building a
  // TopicPartition (a string) per record. Entries stay valid until the partition is erased.
  std::pair<const TopicPartition, int64_t>& PositionSlot(rd_kafka_topic_t* rkt, int32_t partition) {
    for (const PositionCacheEntry& e : position_cache_) {
      if (e.rkt == rkt && e.partition == partition) return *e.slot;
    }
    auto it = positions_.try_emplace({rd_kafka_topic_name(rkt), partition}, 0).first;
    position_cache_.push_back({rkt, partition, &*it});
    return *it;
  }

  // Next offsets we know of (Assign, Seek, Poll): librdkafka reports none until a record is read.
  std::map<TopicPartition, int64_t> positions_;
  struct PositionCacheEntry {
    rd_kafka_topic_t* rkt;
    int32_t partition;
    std::pair<const TopicPartition, int64_t>* slot;
  };
  // Cleared whenever positions_ loses entries (Assign, rebalance) and at the start of each Poll.
  std::vector<PositionCacheEntry> position_cache_;
  // The consumer queue (for its length only); released before rk_, declared after it.
  RdPtr<rd_kafka_queue_t> queue_;
  absl::Status rebalance_error_;
  bool closed_ = false;
  SpareRecords spare_;
};

// Fills `r` from a consumed message. The topic name comes from the caller's per-partition cache
// (no strlen per record); headers are parsed only when the message has some.
// Overwrites every field of `r`, which may be a recycled record (see Consumer::Recycle).
void FillRecord(const rd_kafka_message_t* m, const std::string& topic, Record& r) {
  r.topic = topic;
  r.partition = m->partition;
  r.offset = m->offset;
  if (m->key != nullptr) {
    r.key.assign(static_cast<const char*>(m->key), m->key_len);
  } else {
    r.key.clear();
  }
  if (m->payload != nullptr) {
    r.value.assign(static_cast<const char*>(m->payload), m->len);
  } else {
    r.value.clear();
  }
  rd_kafka_timestamp_type_t type;
  r.timestamp_ms = rd_kafka_message_timestamp(m, &type);
  r.headers.clear();
  rd_kafka_headers_t* headers = nullptr;  // owned by the message
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      r.headers.push_back({name, value == nullptr
                                     ? std::string()
                                     : std::string(static_cast<const char*>(value), size)});
    }
  }
}

absl::StatusOr<std::vector<Record>> KafkaConsumer::Poll(size_t max_records,
                                                        absl::Duration timeout) {
  if (closed_) return ClosedError("poll");
  std::vector<Record> records = spare_.Take();  // refilled first: no allocation per record
  size_t filled = 0;
  // Topic handles are only known alive while their partitions are assigned: rebuilt per Poll.
  position_cache_.clear();
  absl::Status error;
  absl::Time deadline = absl::Now() + timeout;
  while (filled < max_records) {
    // Rounded up: librdkafka waits whole milliseconds, and a remainder below one would
    // otherwise become a non-blocking poll, spinning the CPU until the deadline.
    int wait =
        filled == 0 ? ToMillis(absl::Ceil(deadline - absl::Now(), absl::Milliseconds(1))) : 0;
    RdPtr<rd_kafka_message_t> m(rd_kafka_consumer_poll(rk_.get(), wait));
    if (!rebalance_error_.ok()) {
      absl::Status s = std::exchange(rebalance_error_, absl::OkStatus());
      return s;
    }
    if (m == nullptr) {
      if (filled > 0 || absl::Now() >= deadline) break;
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // The fetch position at the end of the partition, past any transaction markers: without
        // it Position() would stop at the last record and never reach EndOffsets().
        if (m->rkt != nullptr && m->offset >= 0) {
          int64_t& pos = positions_[{rd_kafka_topic_name(m->rkt), m->partition}];
          pos = std::max(pos, m->offset);
        }
        continue;
      }
      char reason[512];
      if (rd_kafka_fatal_error(rk_.get(), reason, sizeof(reason)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return FatalError(absl::StrCat("poll: ", reason));
      }
      // Most consumer errors are reports librdkafka recovers from itself; these are not.
      switch (m->err) {
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
          if (error.ok()) error = StatusFromCode("poll", m->err, rd_kafka_message_errstr(m.get()));
          break;
        default:
          break;
      }
      continue;
    }
    // Sized at the first record from what librdkafka has already queued (an idle Poll allocates
    // nothing; a full one does not grow and move its records several times).
    if (filled == 0) {  // never shrinks a spare vector
      size_t queued = queue_ == nullptr ? 0 : rd_kafka_queue_length(queue_.get());
      records.reserve(std::min(max_records, std::max<size_t>(queued + 1, 64)));
    }
    std::pair<const TopicPartition, int64_t>& position = PositionSlot(m->rkt, m->partition);
    FillRecord(m.get(), position.first.topic, SpareRecords::At(records, filled++));
    position.second = m->offset + 1;
  }
  spare_.KeepUnused(records, filled);
  if (records.empty() && !error.ok()) return error;
  return records;
}

void KafkaConsumer::Recycle(std::vector<Record> records) { spare_.Recycle(std::move(records)); }

absl::StatusOr<int64_t> KafkaConsumer::Position(const TopicPartition& partition) const {
  if (closed_) return ClosedError("position");
  if (auto it = positions_.find(partition); it != positions_.end()) return it->second;
  PartitionListPtr list = ToList(std::vector<TopicPartition>{partition});
  if (rd_kafka_position(rk_.get(), list.get()) == RD_KAFKA_RESP_ERR_NO_ERROR &&
      list->elems[0].offset >= 0) {
    return list->elems[0].offset;
  }
  // Nothing read yet: where the first Poll starts, the committed offset or the reset policy.
  if (has_group()) {
    absl::Status s = StatusFromCode(
        "position", rd_kafka_committed(rk_.get(), list.get(), ToMillis(kAdminTimeout)));
    if (!s.ok()) return s;
    if (list->elems[0].offset >= 0) return list->elems[0].offset;
  }
  absl::StatusOr<std::pair<int64_t, int64_t>> marks =
      QueryWatermarks(rk_.get(), partition.topic, partition.partition, absl::Now() + kAdminTimeout);
  if (!marks.ok()) return marks.status();
  return options_.start_from_earliest ? marks->first : marks->second;
}

absl::Status KafkaProducer::SendOffsetsToTransaction(
    const std::vector<TopicPartitionOffset>& offsets, const Consumer& consumer) {
  if (absl::Status s = EnsureUsable("send_offsets_to_transaction", true); !s.ok()) return s;
  const auto* kafka_consumer = dynamic_cast<const KafkaConsumer*>(&consumer);
  if (kafka_consumer == nullptr) {
    return absl::InvalidArgumentError(
        "send_offsets_to_transaction: the consumer is not a kafka-backend consumer");
  }
  GroupMetadataPtr group = kafka_consumer->GroupMetadata();
  if (group == nullptr) {
    return absl::InvalidArgumentError(
        "send_offsets_to_transaction: the consumer is closed or has no group_id");
  }
  if (!in_transaction_) {
    return absl::FailedPreconditionError("send_offsets_to_transaction: no open transaction");
  }
  PartitionListPtr list = ToList(offsets);
  return TxnResult("send_offsets_to_transaction",
                   rd_kafka_send_offsets_to_transaction(rk_.get(), list.get(), group.get(),
                                                        CallTimeoutMillis()));
}

// ---------------------------------------------------------------------------------------------
// Admin

// Thread-safe: librdkafka handles are, and nothing else is mutable.
class KafkaAdmin final : public Admin {
 public:
  KafkaAdmin(std::shared_ptr<const ClientSettings> settings, HandlePtr uncommitted,
             HandlePtr committed, AdminOverrides overrides)
      : settings_(std::move(settings)),
        uncommitted_(std::move(uncommitted)),
        committed_(std::move(committed)),
        overrides_(std::move(overrides)) {}

  rd_kafka_t* handle() const { return uncommitted_.get(); }

  absl::Status CreateTopics(const std::vector<TopicSpec>& topics) override {
    if (topics.empty()) return absl::OkStatus();
    if (overrides_.create_topic) {
      for (const TopicSpec& spec : topics) {
        if (absl::Status s = overrides_.create_topic(spec); !s.ok()) return s;
      }
      return AwaitTopics(topics, /*present=*/true);
    }
    char errstr[512];
    std::vector<RdPtr<rd_kafka_NewTopic_t>> owned;
    std::vector<rd_kafka_NewTopic_t*> raw;
    for (const TopicSpec& spec : topics) {
      // -1: the broker's default replication factor (CreateTopics v4+).
      RdPtr<rd_kafka_NewTopic_t> t(
          rd_kafka_NewTopic_new(spec.name.c_str(), spec.partitions, -1, errstr, sizeof(errstr)));
      if (t == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("create topic ", spec.name, ": ", errstr));
      }
      for (const auto& [name, value] : spec.configs) {
        absl::Status s =
            StatusFromCode(absl::StrCat("create topic ", spec.name, " config ", name),
                           rd_kafka_NewTopic_set_config(t.get(), name.c_str(), value.c_str()));
        if (!s.ok()) return s;
      }
      raw.push_back(t.get());
      owned.push_back(std::move(t));
    }
    RdPtr<rd_kafka_event_t> event;
    if (absl::Status s = RunAdmin(
            RD_KAFKA_ADMIN_OP_CREATETOPICS, "create_topics",
            [&](rd_kafka_AdminOptions_t* o, rd_kafka_queue_t* q) {
              rd_kafka_CreateTopics(handle(), raw.data(), raw.size(), o, q);
            },
            &event);
        !s.ok()) {
      return s;
    }
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        continue;
      }
      const char* why = rd_kafka_topic_result_error_string(results[i]);
      return StatusFromCode(absl::StrCat("create topic ", rd_kafka_topic_result_name(results[i])),
                            err, why == nullptr ? "" : why);
    }
    // Creation is asynchronous on the brokers; callers expect to produce right after.
    return AwaitTopics(topics, true);
  }

  absl::StatusOr<int32_t> PartitionCount(const std::string& topic) override {
    return LookupPartitionCount(*settings_, handle(), topic, kAdminTimeout);
  }

  absl::StatusOr<std::vector<int64_t>> EndOffsets(const std::string& topic,
                                                  Isolation isolation) override {
    absl::StatusOr<int32_t> count = PartitionCount(topic);
    if (!count.ok()) return count.status();
    // ListOffsets carries the client's isolation.level: read_committed answers the LSO.
    rd_kafka_t* rk = isolation == Isolation::kReadCommitted ? committed_.get() : uncommitted_.get();
    std::vector<int64_t> ends;
    ends.reserve(*count);
    absl::Time deadline = absl::Now() + kAdminTimeout;
    for (int32_t p = 0; p < *count; ++p) {
      absl::StatusOr<std::pair<int64_t, int64_t>> marks = QueryWatermarks(rk, topic, p, deadline);
      if (!marks.ok()) return marks.status();
      ends.push_back(marks->second);
    }
    return ends;
  }

  absl::Status DeleteTopics(const std::vector<std::string>& topics) override {
    if (topics.empty()) return absl::OkStatus();
    if (overrides_.delete_topic) {
      for (const std::string& t : topics) {
        if (absl::Status s = overrides_.delete_topic(t); !s.ok()) return s;
      }
      return absl::OkStatus();
    }
    std::vector<RdPtr<rd_kafka_DeleteTopic_t>> owned;
    std::vector<rd_kafka_DeleteTopic_t*> raw;
    for (const std::string& t : topics) {
      owned.emplace_back(rd_kafka_DeleteTopic_new(t.c_str()));
      raw.push_back(owned.back().get());
    }
    RdPtr<rd_kafka_event_t> event;
    if (absl::Status s = RunAdmin(
            RD_KAFKA_ADMIN_OP_DELETETOPICS, "delete_topics",
            [&](rd_kafka_AdminOptions_t* o, rd_kafka_queue_t* q) {
              rd_kafka_DeleteTopics(handle(), raw.data(), raw.size(), o, q);
            },
            &event);
        !s.ok()) {
      return s;
    }
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event.get()), &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        continue;
      }
      const char* why = rd_kafka_topic_result_error_string(results[i]);
      return StatusFromCode(absl::StrCat("delete topic ", rd_kafka_topic_result_name(results[i])),
                            err, why == nullptr ? "" : why);
    }
    std::vector<TopicSpec> specs;
    for (const std::string& t : topics) specs.push_back({.name = t});
    return AwaitTopics(specs, /*present=*/false);
  }

 private:
  template <typename Call>
  absl::Status RunAdmin(rd_kafka_admin_op_t op, absl::string_view name, Call call,
                        RdPtr<rd_kafka_event_t>* event) {
    RdPtr<rd_kafka_AdminOptions_t> options(rd_kafka_AdminOptions_new(handle(), op));
    char errstr[512];
    rd_kafka_AdminOptions_set_request_timeout(options.get(), ToMillis(kAdminTimeout), errstr,
                                              sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(options.get(), ToMillis(kAdminTimeout), errstr,
                                                sizeof(errstr));
    RdPtr<rd_kafka_queue_t> queue(rd_kafka_queue_new(handle()));
    call(options.get(), queue.get());
    event->reset(rd_kafka_queue_poll(queue.get(), ToMillis(kAdminTimeout + absl::Seconds(5))));
    if (*event == nullptr) {
      return RetriableError(
          absl::StrCat(name, ": no answer within ", absl::FormatDuration(kAdminTimeout)));
    }
    rd_kafka_resp_err_t err = rd_kafka_event_error(event->get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return StatusFromCode(name, err, rd_kafka_event_error_string(event->get()));
    }
    return absl::OkStatus();
  }

  // Waits until every topic is visible in metadata (present) or gone (!present).
  absl::Status AwaitTopics(const std::vector<TopicSpec>& topics, bool present) {
    absl::Time deadline = absl::Now() + kAdminTimeout;
    for (const TopicSpec& spec : topics) {
      for (;;) {
        absl::StatusOr<int32_t> count =
            LookupPartitionCount(*settings_, handle(), spec.name, absl::Seconds(5));
        if (present ? count.ok() : absl::IsNotFound(count.status())) break;
        if (absl::Now() >= deadline) {
          return RetriableError(absl::StrCat("topic ", spec.name, " not ",
                                             present ? "visible" : "gone", " after ",
                                             absl::FormatDuration(kAdminTimeout)));
        }
        absl::SleepFor(absl::Milliseconds(50));  // metadata has no change notification
      }
    }
    return absl::OkStatus();
  }

  std::shared_ptr<const ClientSettings> settings_;
  HandlePtr uncommitted_;
  HandlePtr committed_;
  const AdminOverrides overrides_;
};

// ---------------------------------------------------------------------------------------------
// Log

class KafkaLog final : public Log {
 public:
  KafkaLog(std::shared_ptr<const ClientSettings> settings, std::unique_ptr<KafkaAdmin> admin)
      : settings_(std::move(settings)), admin_(std::move(admin)) {}

  absl::StatusOr<std::unique_ptr<Producer>> NewProducer(const ProducerOptions& options) override {
    auto producer = std::make_unique<KafkaProducer>(settings_, options);
    if (absl::Status s = producer->Start(); !s.ok()) return s;
    return producer;
  }

  absl::StatusOr<std::unique_ptr<Consumer>> NewConsumer(const ConsumerOptions& options) override {
    auto consumer = std::make_unique<KafkaConsumer>(settings_, options);
    if (absl::Status s = consumer->Start(); !s.ok()) return s;
    return consumer;
  }

  Admin& admin() override { return *admin_; }
  std::string_view backend() const override { return "kafka"; }

 private:
  std::shared_ptr<const ClientSettings> settings_;
  std::unique_ptr<KafkaAdmin> admin_;
};

absl::StatusOr<HandlePtr> NewAdminHandle(const ClientSettings& settings, Isolation isolation) {
  // A consumer-type handle with no group: admin API, metadata and ListOffsets, which carries
  // this handle's isolation.level.
  Properties own = {{"isolation.level", isolation == Isolation::kReadCommitted
                                            ? "read_committed"
                                            : "read_uncommitted"}};
  absl::StatusOr<ConfPtr> conf = BuildConf(settings.brokers, {&settings.properties, &own});
  if (!conf.ok()) return conf.status();
  return NewHandle(RD_KAFKA_CONSUMER, std::move(*conf));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Log>> OpenKafkaLogWithOverrides(const LogOptions& options,
                                                               AdminOverrides overrides) {
  auto settings = std::make_shared<ClientSettings>();
  settings->brokers = options.brokers;
  settings->properties = options.kafka_properties;
  settings->topic_known = overrides.topic_known;
  if (auto it = options.kafka_properties.find(std::string(kConnectTimeoutProperty));
      it != options.kafka_properties.end()) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(it->second, &ms) || ms < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(kConnectTimeoutProperty, ": not a millisecond count: ", it->second));
    }
    settings->connect_timeout = absl::Milliseconds(ms);
  }
  absl::StatusOr<HandlePtr> uncommitted = NewAdminHandle(*settings, Isolation::kReadUncommitted);
  if (!uncommitted.ok()) return uncommitted.status();
  absl::StatusOr<HandlePtr> committed = NewAdminHandle(*settings, Isolation::kReadCommitted);
  if (!committed.ok()) return committed.status();

  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(uncommitted->get(), 0, nullptr, &raw, ToMillis(settings->connect_timeout));
  MetadataPtr md(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md == nullptr || md->broker_cnt == 0) {
    return absl::UnavailableError(
        absl::StrCat("no kafka broker at ", options.brokers, " answered within ",
                     absl::FormatDuration(settings->connect_timeout), ": ", rd_kafka_err2str(err)));
  }
  auto admin = std::make_unique<KafkaAdmin>(settings, std::move(*uncommitted),
                                            std::move(*committed), std::move(overrides));
  return std::make_unique<KafkaLog>(std::move(settings), std::move(admin));
}

absl::StatusOr<std::unique_ptr<Log>> OpenKafkaLog(const LogOptions& options) {
  return OpenKafkaLogWithOverrides(options, {});
}

void OverrideNextCallTimeout(Producer& producer, absl::Duration timeout) {
  if (auto* kafka = dynamic_cast<KafkaProducer*>(&producer); kafka != nullptr) {
    kafka->OverrideNextCallTimeout(timeout);
  }
}

int ProducerGeneration(const Producer& producer) {
  const auto* kafka = dynamic_cast<const KafkaProducer*>(&producer);
  return kafka == nullptr ? -1 : kafka->generation();
}

}  // namespace leftfold::internal::log::kafka
