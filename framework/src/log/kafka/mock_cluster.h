// A kafka-backend Log on librdkafka's in-process mock cluster: tests of the kafka backend (and the
// cross-backend conformance suite) run with no broker.
//
//   auto log = OpenKafkaLogOnMockCluster(/*brokers=*/3);
//   (*log)->admin().CreateTopics({{.name = "t", .partitions = 4}});
//   rd_kafka_mock_cluster_t* cluster = MockClusterOf(**log);   // inject errors, RTTs
//   rd_kafka_mock_broker_set_rtt(cluster, 1, 500);
//
// The returned Log owns the mock cluster; producers/consumers/admin it hands out must be destroyed
// before it. Thread-safety is as for any Log.
//
// What the mock cluster (librdkafka 2.0.2) lacks, so tests must not expect it:
// - no CreateTopics/DeleteTopics API: admin().CreateTopics goes through rd_kafka_mock_topic_create
//   (configs are ignored), admin().DeleteTopics returns UNIMPLEMENTED;
// - no transaction markers and no last stable offset: an ABORTED transaction's records ARE visible
//   to read_committed consumers, and EndOffsets(kReadCommitted) is the high watermark. Visibility
//   of commit/abort is only testable on a real broker (tests/kafka/log_kafka).
#pragma once

#include <librdkafka/rdkafka.h>
// rdkafka.h must come first.
#include <librdkafka/rdkafka_mock.h>

#include <memory>

#include "absl/status/statusor.h"
#include "log/log.h"

namespace leftfold::internal::log::kafka {

// Starts a mock cluster of `brokers` brokers and opens a kafka Log on it. `options.brokers` is
// ignored (replaced by the mock's bootstrap servers); `options.kafka_properties` apply.
absl::StatusOr<std::unique_ptr<Log>> OpenKafkaLogOnMockCluster(int brokers,
                                                               const LogOptions& options = {});

// The mock cluster behind a Log from OpenKafkaLogOnMockCluster, or nullptr for any other Log.
// Valid as long as the Log.
rd_kafka_mock_cluster_t* MockClusterOf(Log& log);

}  // namespace leftfold::internal::log::kafka
