// librdkafka plumbing shared by the kafka backend: owning handles, configuration layering and the
// mapping of librdkafka errors onto the retriable / abortable / fatal split of log/errors.h.
//
//   auto conf = BuildConf(RD_KAFKA_PRODUCER, {&defaults, &settings.properties, &options.props});
//   auto rk = NewHandle(RD_KAFKA_PRODUCER, std::move(*conf));
//   absl::Status s = StatusFromError("commit_transaction", rd_kafka_commit_transaction(rk, 1000));
//
// Internal to framework/src/log/kafka. Stateless functions; thread-safe.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "log/log.h"

namespace leftfold::internal::log::kafka {

// One deleter for every librdkafka object we own.
struct RdKafkaDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
  void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); }
  void operator()(rd_kafka_topic_t* p) const { rd_kafka_topic_destroy(p); }
  void operator()(rd_kafka_topic_partition_list_t* p) const {
    rd_kafka_topic_partition_list_destroy(p);
  }
  void operator()(rd_kafka_error_t* p) const { rd_kafka_error_destroy(p); }
  void operator()(rd_kafka_message_t* p) const { rd_kafka_message_destroy(p); }
  void operator()(rd_kafka_headers_t* p) const { rd_kafka_headers_destroy(p); }
  void operator()(const rd_kafka_metadata_t* p) const { rd_kafka_metadata_destroy(p); }
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
  void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
  void operator()(rd_kafka_NewTopic_t* p) const { rd_kafka_NewTopic_destroy(p); }
  void operator()(rd_kafka_DeleteTopic_t* p) const { rd_kafka_DeleteTopic_destroy(p); }
  void operator()(rd_kafka_consumer_group_metadata_t* p) const {
    rd_kafka_consumer_group_metadata_destroy(p);
  }
};

template <typename T>
using RdPtr = std::unique_ptr<T, RdKafkaDeleter>;
using HandlePtr = RdPtr<rd_kafka_t>;
using ConfPtr = RdPtr<rd_kafka_conf_t>;
using PartitionListPtr = RdPtr<rd_kafka_topic_partition_list_t>;
using MetadataPtr = RdPtr<const rd_kafka_metadata_t>;
using GroupMetadataPtr = RdPtr<rd_kafka_consumer_group_metadata_t>;

using Properties = std::map<std::string, std::string>;

// Our own settings travel in kafka_properties under this prefix and are not given to librdkafka.
inline constexpr absl::string_view kOwnPropertyPrefix = "leftfold.";
// How long OpenKafkaLog waits for a broker to answer metadata. Property to override it:
inline constexpr absl::string_view kConnectTimeoutProperty = "leftfold.connect.timeout.ms";
inline constexpr absl::Duration kDefaultConnectTimeout = absl::Seconds(10);
// Bound on admin calls and metadata lookups.
inline constexpr absl::Duration kAdminTimeout = absl::Seconds(30);

// What every client of one Log shares.
struct ClientSettings {
  std::string brokers;
  Properties properties;  // LogOptions.kafka_properties
  absl::Duration connect_timeout = kDefaultConnectTimeout;
  // When set, false means "unknown topic" without asking the cluster (mock cluster only).
  std::function<bool(const std::string&)> topic_known;
};

// Layers the property maps in order (later wins) over bootstrap.servers; skips leftfold.* keys.
absl::StatusOr<ConfPtr> BuildConf(const std::string& brokers,
                                  const std::vector<const Properties*>& layers);

// rd_kafka_new; takes the conf only on success (librdkafka's rule), so it always consumes it.
absl::StatusOr<HandlePtr> NewHandle(rd_kafka_type_t type, ConfPtr conf);

// Millisecond timeouts for librdkafka, clamped to [0, INT_MAX].
int ToMillis(absl::Duration d);

// Producer fencing in all its spellings (KIP-447 / KIP-360).
bool IsFencedCode(rd_kafka_resp_err_t code);

// Maps an rd_kafka_error_t (owned, may be null → OK). Message: "<op>: <librdkafka text> (<NAME>)".
absl::Status StatusFromError(absl::string_view op, rd_kafka_error_t* error);
// Same for a bare error code; `detail` replaces librdkafka's generic text when non-empty.
absl::Status StatusFromCode(absl::string_view op, rd_kafka_resp_err_t code,
                            absl::string_view detail = "");

// Conversions between our TopicPartition(Offset) vectors and librdkafka lists.
PartitionListPtr ToList(const std::vector<TopicPartition>& partitions);
PartitionListPtr ToList(const std::vector<TopicPartitionOffset>& offsets);
std::vector<TopicPartition> PartitionsOf(const rd_kafka_topic_partition_list_t* list);
// Offsets < 0 (librdkafka's INVALID, logical offsets) become -1.
std::vector<TopicPartitionOffset> OffsetsOf(const rd_kafka_topic_partition_list_t* list);
// First per-partition error in the list, as a status.
absl::Status FirstPartitionError(absl::string_view op, const rd_kafka_topic_partition_list_t* list);

// Partition count of `topic` via a metadata request on `rk`: NOT_FOUND when the topic does not
// exist, UNAVAILABLE when the broker does not answer in `timeout`.
absl::StatusOr<int32_t> LookupPartitionCount(rd_kafka_t* rk, const std::string& topic,
                                             absl::Duration timeout);
// The same, consulting settings.topic_known first.
absl::StatusOr<int32_t> LookupPartitionCount(const ClientSettings& settings, rd_kafka_t* rk,
                                             const std::string& topic, absl::Duration timeout);

}  // namespace leftfold::internal::log::kafka
