// The Log: the one transport interface the runtime (processors, projectors, gateway) talks to.
//
// Two backends implement it: `kafka` (librdkafka, framework/src/log/kafka) and `embedded`
// (RocksDB on a local directory, framework/src/log/embedded). Nothing above this folder may
// include librdkafka or use RocksDB as a log.
//
//   auto log = OpenLog(LogOptions{.brokers = "127.0.0.1:9092"});   // or {} for embedded
//   auto producer = (*log)->NewProducer({.transactional_id = "bank.account-0"});
//   auto consumer = (*log)->NewConsumer({.group_id = "bank.account"});
//   (*consumer)->Subscribe({"bank.account.commands"}, listener);
//   for (;;) {
//     auto batch = (*consumer)->Poll(1000, absl::Milliseconds(100));
//     (*producer)->BeginTransaction();
//     ... (*producer)->Produce(...) ...
//     (*producer)->SendOffsetsToTransaction(NextOffsets(*batch), **consumer);
//     absl::Status s = (*producer)->CommitTransaction();
//     switch (ClassifyError(s)) { ... }   // retriable / abortable / fatal
//   }
//
// Errors: every call returns absl::Status; ClassifyError() (errors.h) tells the caller whether to
// retry the call, abort the transaction and retry the batch, or stop (fenced).
//
// Threading: a Producer and a Consumer are each used by one thread at a time (the owner);
// delivery callbacks run on the thread that calls Produce/Flush/Commit. Admin is thread-safe.
// The exception: a consumer's offsets may be committed (CommitOffsets, SendOffsetsToTransaction)
// from another thread while its owner polls it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace leftfold::internal::log {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  friend auto operator<=>(const TopicPartition&, const TopicPartition&) = default;
};

// `offset` is the next offset to read (Kafka's committed-offset convention).
struct TopicPartitionOffset {
  TopicPartition tp;
  int64_t offset = 0;
  friend auto operator<=>(const TopicPartitionOffset&, const TopicPartitionOffset&) = default;
};

struct Header {
  std::string key;
  std::string value;
  friend bool operator==(const Header&, const Header&) = default;
};

// A record read from the log.
struct Record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::vector<Header> headers;
  int64_t timestamp_ms = 0;
};

// A record to write. With partition < 0 the key picks the partition with Kafka's murmur2
// partitioner (the Java client's placement), so Java and Go peers agree on where a key lives.
struct OutgoingRecord {
  std::string topic;
  std::string key;
  std::string value;
  std::vector<Header> headers;
  int32_t partition = -1;
};

// A record by reference, for ProduceCopy: it need outlive only the call. An OutgoingRecord
// converts to one; a caller whose bytes are already in a buffer of its own sends views of them
// (no copy into an OutgoingRecord first).
struct OutgoingRecordRef {
  OutgoingRecordRef() = default;
  // Implicit: ProduceCopy(record) with an OutgoingRecord reads like Produce(record).
  OutgoingRecordRef(const OutgoingRecord& record)  // NOLINT(google-explicit-constructor)
      : topic(record.topic),
        key(record.key),
        value(record.value),
        headers(record.headers.empty() ? nullptr : &record.headers),
        partition(record.partition) {}

  absl::string_view topic;
  absl::string_view key;
  absl::string_view value;
  const std::vector<Header>* headers = nullptr;  // none when null
  int32_t partition = -1;
};

// Result of one Produce: where the record landed, or why it failed. The argument is valid for the
// call only (a backend may reuse it for the next record).
using DeliveryCallback = std::function<void(const absl::StatusOr<TopicPartitionOffset>&)>;

struct ProducerOptions {
  // Empty: a plain idempotent producer. Set: a transactional producer (one id per processor
  // instance and partition set, stable across restarts so a restarted instance fences its zombie).
  std::string transactional_id;
  // Default: 60s. The broker aborts a transaction left open this long.
  absl::Duration transaction_timeout = absl::Seconds(60);
  // Default: 30s. Bound on init/commit/abort/send-offsets calls; on expiry the kafka backend
  // re-creates its producer (see errors.h).
  absl::Duration call_timeout = absl::Seconds(30);
  // How long a plain producer's record may wait for others to share its write (Kafka linger.ms).
  // Default: the backend's (Kafka 5 ms; embedded EmbeddedLogOptions::linger). Flush and the
  // transaction calls send at once whatever it says. A linger.ms in kafka_properties wins.
  std::optional<absl::Duration> linger;
  // Passed through under librdkafka's property names (linger.ms, batch.size, ...). Kafka only.
  std::map<std::string, std::string> kafka_properties;
};

enum class Isolation { kReadCommitted, kReadUncommitted };

struct ConsumerOptions {
  // Empty: no group; use Assign() only.
  std::string group_id;
  // Default: read_committed, so aborted transactions are never seen.
  Isolation isolation = Isolation::kReadCommitted;
  // Where to start a partition with no committed offset. Default: earliest.
  bool start_from_earliest = true;
  // Non-empty (with a group): a static group member, so a restart with the same id gets its
  // partitions back at once instead of after the session timeout. Kafka: group.instance.id
  // "<group_id>-<instance_id>" (scoped by the group, so one id can serve a host's processors,
  // projectors and process managers). The embedded backend has no session timeout to skip.
  std::string instance_id;
  // Passed through under librdkafka's property names. Kafka only.
  std::map<std::string, std::string> kafka_properties;
};

// Called from inside Consumer::Poll on the polling thread.
struct RebalanceListener {
  std::function<void(const std::vector<TopicPartition>&)> on_assigned;
  // Called before the partitions are taken away: finish or abort in-flight work here.
  std::function<void(const std::vector<TopicPartition>&)> on_revoked;
};

class Consumer;

// Owned by its creator; not thread-safe (one owner thread).
class Producer {
 public:
  virtual ~Producer() = default;

  // Transactional producers only.
  virtual absl::Status BeginTransaction() = 0;
  // Adds the consumer's positions to the open transaction, fenced by its group generation
  // (KIP-447): a zombie from an older generation cannot commit. May run on another thread than
  // the consumer's owner while the owner polls it (not while it closes).
  virtual absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                                const Consumer& consumer) = 0;
  // Commits everything produced since BeginTransaction, plus the offsets. Waits for delivery.
  virtual absl::Status CommitTransaction() = 0;
  virtual absl::Status AbortTransaction() = 0;

  // Queues a record. `on_delivery` (optional) runs once the log has accepted or refused it.
  // Returns an error at once for bad input (unknown topic, oversize record, closed producer).
  virtual absl::Status Produce(OutgoingRecord record, DeliveryCallback on_delivery = nullptr) = 0;
  // Produce of a record the caller keeps: the log copies what it needs before returning, so the
  // caller can refill one record object for the next (on Kafka, which copies records into its own
  // buffers anyway, no allocation per record). By default, Produce of a copy.
  virtual absl::Status ProduceCopy(const OutgoingRecordRef& record,
                                   DeliveryCallback on_delivery = nullptr) {
    OutgoingRecord copy{
        .topic = std::string(record.topic),
        .key = std::string(record.key),
        .value = std::string(record.value),
        .headers = record.headers == nullptr ? std::vector<Header>() : *record.headers,
        .partition = record.partition};
    return Produce(std::move(copy), std::move(on_delivery));
  }
  // Waits until every queued record is delivered or failed.
  virtual absl::Status Flush(absl::Duration timeout) = 0;
  // Runs the callbacks of the records delivered so far without sending anything early (Flush and
  // the transaction calls run them too). When none is ready it waits up to `timeout` for one, or
  // until Wake. Returns how many records are still waiting for delivery. For a producer that
  // keeps sending while earlier records are in flight:
  //
  //   producer->Produce(record, on_delivery);     // repeatedly, as records come
  //   size_t waiting = producer->Poll(absl::Milliseconds(100));
  virtual size_t Poll(absl::Duration timeout) = 0;
  // Thread-safe, unlike the rest: makes a Poll in progress, or else the next one, return at once
  // (another thread has a record for the owner to produce).
  virtual void Wake() = 0;
  // After Close every call fails with FAILED_PRECONDITION.
  virtual absl::Status Close() = 0;
};

// Owned by its creator; not thread-safe (one owner thread).
class Consumer {
 public:
  virtual ~Consumer() = default;

  virtual absl::Status Subscribe(const std::vector<std::string>& topics,
                                 RebalanceListener listener) = 0;
  // Manual assignment, no group management (restore from a changelog, rebuild a view).
  virtual absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) = 0;
  virtual std::vector<TopicPartition> Assignment() const = 0;

  // Up to `max_records` records, waiting at most `timeout` for the first. Rebalance callbacks run
  // inside this call. An empty batch is not an error.
  virtual absl::StatusOr<std::vector<Record>> Poll(size_t max_records, absl::Duration timeout) = 0;
  // Gives back records a Poll returned, once their owner is done with them: a backend may refill
  // them in a later Poll, whose strings then keep their capacity (no allocation per record).
  // Optional; the default drops them.
  virtual void Recycle(std::vector<Record> records) { (void)records; }

  virtual absl::Status Seek(const TopicPartitionOffset& position) = 0;
  virtual absl::Status Pause(const std::vector<TopicPartition>& partitions) = 0;
  virtual absl::Status Resume(const std::vector<TopicPartition>& partitions) = 0;
  // Next offset Poll will return for the partition.
  virtual absl::StatusOr<int64_t> Position(const TopicPartition& partition) const = 0;
  // The group's committed offsets; -1 where none is committed.
  virtual absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartition>& partitions, absl::Duration timeout) = 0;
  // Commits offsets outside any transaction (at_least_once mode). Like
  // Producer::SendOffsetsToTransaction, may run on another thread while the owner polls (not
  // while it closes): a processor commits a batch's offsets on its committer thread.
  virtual absl::Status CommitOffsets(const std::vector<TopicPartitionOffset>& offsets) = 0;
  // Leaves the group (revocation callback fires) and releases resources.
  virtual absl::Status Close() = 0;
};

struct TopicSpec {
  std::string name;
  int32_t partitions = 1;
  // e.g. {"cleanup.policy", "compact"}, {"retention.ms", "-1"}.
  std::map<std::string, std::string> configs;
};

// Thread-safe.
class Admin {
 public:
  virtual ~Admin() = default;
  // Creates the topics that do not exist; existing ones are left as they are (not an error).
  virtual absl::Status CreateTopics(const std::vector<TopicSpec>& topics) = 0;
  // NOT_FOUND for an unknown topic.
  virtual absl::StatusOr<int32_t> PartitionCount(const std::string& topic) = 0;
  // Per partition, in order: the high watermark (kReadUncommitted) or the last stable offset
  // (kReadCommitted), i.e. the offset after the last readable record.
  virtual absl::StatusOr<std::vector<int64_t>> EndOffsets(const std::string& topic,
                                                          Isolation isolation) = 0;
  virtual absl::Status DeleteTopics(const std::vector<std::string>& topics) = 0;
};

// One backend instance. Outlives every producer, consumer and admin it hands out.
class Log {
 public:
  virtual ~Log() = default;
  virtual absl::StatusOr<std::unique_ptr<Producer>> NewProducer(const ProducerOptions& options) = 0;
  virtual absl::StatusOr<std::unique_ptr<Consumer>> NewConsumer(const ConsumerOptions& options) = 0;
  virtual Admin& admin() = 0;
  // "kafka" or "embedded".
  virtual std::string_view backend() const = 0;
};

struct LogOptions {
  // Non-empty: the kafka backend with these bootstrap servers. Empty: the embedded backend.
  std::string brokers;
  // Embedded backend: its directory (created when missing). Default: ./leftfold-data/log.
  std::string embedded_dir = "leftfold-data/log";
  // Embedded backend: fsync every commit (survive power loss, not only a process crash).
  // Default: false.
  bool embedded_fsync = false;
  // Kafka backend: passed to every client under librdkafka's property names.
  std::map<std::string, std::string> kafka_properties;
};

absl::StatusOr<std::unique_ptr<Log>> OpenLog(const LogOptions& options);

// Kafka's default partitioner (murmur2 of the key, positive, modulo the partition count), the
// placement the Java client uses. Both backends use it.
int32_t PartitionForKey(std::string_view key, int32_t partition_count);

}  // namespace leftfold::internal::log
