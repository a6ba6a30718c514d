// The four topics of an aggregate type (DESIGN.md, "Topics"): their names, their configuration,
// and the start-up check that they exist and are co-partitioned.
//
//   AggregateTopics topics = TopicsFor("", "bank.account");   // topics.commands ==
//   "bank.account.commands" absl::Status s = EnsureTopics(log.admin(), topics, /*partitions=*/4);
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "log/log.h"

namespace leftfold::internal {

struct AggregateTopics {
  std::string commands;
  std::string events;
  std::string results;
  std::string snapshots;
};

AggregateTopics TopicsFor(const std::string& prefix, const std::string& aggregate_type);

struct TopicSettings {
  // Default: 7 days. Commands are only needed until processed.
  absl::Duration commands_retention = absl::Hours(24 * 7);
  // Default: 24h. Results back command deduplication, so this is also the dedup window.
  absl::Duration results_retention = absl::Hours(24);
};

// Creates the missing topics (events retained forever, snapshots compacted, ...) and checks that
// all four have the same partition count. Returns that count. FAILED_PRECONDITION, naming the
// topics and counts, when they differ.
absl::StatusOr<int32_t> EnsureTopics(log::Admin& admin, const AggregateTopics& topics,
                                     int32_t partitions, const TopicSettings& settings = {});

}  // namespace leftfold::internal
