#include "topology/topics.h"

#include "absl/strings/str_cat.h"

namespace leftfold::internal {

AggregateTopics TopicsFor(const std::string& prefix, const std::string& aggregate_type) {
  std::string base = absl::StrCat(prefix, aggregate_type);
  return {.commands = absl::StrCat(base, ".commands"),
          .events = absl::StrCat(base, ".events"),
          .results = absl::StrCat(base, ".results"),
          .snapshots = absl::StrCat(base, ".snapshots")};
}

absl::StatusOr<int32_t> EnsureTopics(log::Admin& admin, const AggregateTopics& topics,
                                     int32_t partitions, const TopicSettings& settings) {
  auto millis = [](absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d)); };
  std::vector<log::TopicSpec> specs = {
      {topics.commands,
       partitions,
       {{"cleanup.policy", "delete"}, {"retention.ms", millis(settings.commands_retention)}}},
      {topics.events, partitions, {{"cleanup.policy", "delete"}, {"retention.ms", "-1"}}},
      {topics.results,
       partitions,
       {{"cleanup.policy", "delete"}, {"retention.ms", millis(settings.results_retention)}}},
      {topics.snapshots, partitions, {{"cleanup.policy", "compact"}}},
  };
  if (absl::Status s = admin.CreateTopics(specs); !s.ok()) return s;

  std::string counts;
  int32_t first = -1;
  bool mismatch = false;
  for (const log::TopicSpec& spec : specs) {
    absl::StatusOr<int32_t> count = admin.PartitionCount(spec.name);
    if (!count.ok()) return count.status();
    if (first < 0) first = *count;
    mismatch |= *count != first;
    absl::StrAppend(&counts, counts.empty() ? "" : ", ", spec.name, "=", *count);
  }
  // A producer's first request to a partition whose leader is not ready yet can lose records
  // (KAFKA-15591: the retry is accepted at a later sequence). Return only once every partition
  // answers on its leader; EndOffsets retries until then.
  for (const log::TopicSpec& spec : specs) {
    absl::StatusOr<std::vector<int64_t>> ends =
        admin.EndOffsets(spec.name, log::Isolation::kReadUncommitted);
    if (!ends.ok()) return ends.status();
  }
  if (mismatch) {
    return absl::FailedPreconditionError(
        absl::StrCat("topics of one aggregate type must have the same partition count (they are "
                     "co-partitioned by aggregate id); found ",
                     counts));
  }
  return first;
}

}  // namespace leftfold::internal
