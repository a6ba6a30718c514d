// Internals of the kafka backend that its own tests and the mock-cluster Log need, and nothing
// else should: open a Log with admin overrides, read a producer's generation.
//
//   int before = ProducerGeneration(*producer);
//   ... a transactional call times out ...
//   EXPECT_EQ(ProducerGeneration(*producer), before + 1);   // the rd_kafka_t was re-created
//
// Internal to framework/src/log/kafka and tests/{unit,kafka}/log_kafka. Thread-safety: as log.h.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "log/log.h"

namespace leftfold::internal::log::kafka {

// Replaces admin calls a cluster cannot serve (librdkafka's mock cluster has no CreateTopics or
// DeleteTopics API). An empty function means "use the Kafka admin API".
// The mock also creates any topic a metadata request names, so it cannot say "unknown topic":
// `topic_known`, when set, answers that instead (producers and admin consult it first).
struct AdminOverrides {
  // Creates the topic unless it exists (existing: OK, left as it is).
  std::function<absl::Status(const TopicSpec&)> create_topic;
  std::function<absl::Status(const std::string&)> delete_topic;
  std::function<bool(const std::string&)> topic_known;
};

absl::StatusOr<std::unique_ptr<Log>> OpenKafkaLogWithOverrides(const LogOptions& options,
                                                               AdminOverrides overrides);

// How many rd_kafka_t handles the producer has had: 1 after creation, +1 for every re-creation
// after a timed-out transactional call. -1 for a producer of another backend.
int ProducerGeneration(const Producer& producer);

// Tests only: the next transactional call (init/send-offsets/commit/abort) of a kafka producer
// uses `timeout` instead of ProducerOptions.call_timeout, once. No-op for other backends.
void OverrideNextCallTimeout(Producer& producer, absl::Duration timeout);

}  // namespace leftfold::internal::log::kafka
