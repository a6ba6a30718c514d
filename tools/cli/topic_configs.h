// The configuration a Kafka topic was given (its own overrides: cleanup.policy, retention.ms,
// ...), for `leftfold topics describe`. The Log admin interface has no config call (the embedded
// log has no configs), so this one asks Kafka directly with librdkafka's DescribeConfigs.
//
//   absl::StatusOr<std::map<std::string, std::string>> configs =
//       leftfold::cli::TopicConfigs("127.0.0.1:9092", "bank.account.snapshots", absl::Seconds(10));
//   // {"cleanup.policy": "compact"}
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace leftfold::cli {

// The topic-level overrides (not broker or default values), by name. NOT_FOUND for an unknown
// topic, DEADLINE_EXCEEDED when Kafka does not answer within `timeout`.
absl::StatusOr<std::map<std::string, std::string>> TopicConfigs(const std::string& brokers,
                                                                const std::string& topic,
                                                                absl::Duration timeout);

}  // namespace leftfold::cli
