// `leftfold topics list|describe|create`: the topics of aggregate types, on a Kafka cluster.
//
// Kafka only: the embedded log is a RocksDB directory that the running server holds locked, and
// the server creates and checks its topics itself at start-up. The Log admin interface has no
// "list all topics" call, so `list` shows the four topics of the given (or the known) types.
#include "topology/topics.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aggregates.h"
#include "cli.h"
#include "log/log.h"

namespace leftfold::cli {
namespace {

namespace lg = internal::log;

int Fail(const GlobalOptions& global, const absl::Status& s) {
  int code = s.code() == absl::StatusCode::kNotFound           ? kNotFound
             : s.code() == absl::StatusCode::kUnavailable      ? kUnavailable
             : s.code() == absl::StatusCode::kDeadlineExceeded ? kDeadline
                                                               : kUsage;
  return ReportLocalError(global, s, code);
}

// One line (or JSON object) per topic: partitions, and end offsets (committed / all).
absl::StatusOr<std::string> Describe(const GlobalOptions& global, lg::Admin& admin,
                                     const std::string& topic) {
  absl::StatusOr<int32_t> partitions = admin.PartitionCount(topic);
  if (!partitions.ok()) return partitions.status();
  absl::StatusOr<std::vector<int64_t>> committed =
      admin.EndOffsets(topic, lg::Isolation::kReadCommitted);
  if (!committed.ok()) return committed.status();
  absl::StatusOr<std::vector<int64_t>> all =
      admin.EndOffsets(topic, lg::Isolation::kReadUncommitted);
  if (!all.ok()) return all.status();
  if (global.json) {
    return absl::StrCat("{\"topic\":\"", topic, "\",\"partitions\":", *partitions,
                        ",\"endOffsetsCommitted\":[", absl::StrJoin(*committed, ","),
                        "],\"endOffsets\":[", absl::StrJoin(*all, ","), "]}");
  }
  int64_t records = 0;
  for (int64_t e : *committed) records += e;
  return absl::StrCat(topic, "  partitions ", *partitions, "  end offsets (read_committed) [",
                      absl::StrJoin(*committed, " "), "]  (all) [", absl::StrJoin(*all, " "),
                      "]  total ", records);
}

}  // namespace

int RunTopics(const GlobalOptions& global, const TopicsOptions& options) {
  if (options.brokers.empty()) {
    return ReportLocalError(
        global,
        absl::FailedPreconditionError(
            "`leftfold topics` works on Kafka only: pass --brokers HOST:PORT (or set "
            "$LEFTFOLD_BROKERS). The embedded log is locked by the running server "
            "(leftfold-dev), which creates and manages its topics itself."),
        kUsage);
  }
  absl::StatusOr<std::unique_ptr<lg::Log>> log = lg::OpenLog({.brokers = options.brokers});
  if (!log.ok()) return Fail(global, log.status());
  lg::Admin& admin = (*log)->admin();

  std::vector<std::string> types = options.aggregate_types;
  if (types.empty() && options.action != "describe") types = KnownAggregateTypes();

  if (options.action == "describe") {
    if (options.topic.empty()) {
      return ReportLocalError(global, absl::InvalidArgumentError("describe needs a TOPIC"), kUsage);
    }
    absl::StatusOr<std::string> line = Describe(global, admin, options.topic);
    if (!line.ok()) return Fail(global, line.status());
    std::cout << *line << std::endl;
    return kOk;
  }
  if (options.action == "create") {
    for (const std::string& type : types) {
      internal::AggregateTopics topics = internal::TopicsFor(global.topic_prefix, type);
      absl::StatusOr<int32_t> n = internal::EnsureTopics(admin, topics, options.partitions);
      if (!n.ok()) return Fail(global, n.status());
      if (global.json) {
        std::cout << "{\"aggregateType\":\"" << type << "\",\"partitions\":" << *n << "}"
                  << std::endl;
      } else {
        std::cout << type << ": topics " << topics.commands << ", " << topics.events << ", "
                  << topics.results << ", " << topics.snapshots << " ready with " << *n
                  << " partitions" << std::endl;
      }
    }
    return kOk;
  }
  // list
  int exit_code = kOk;
  for (const std::string& type : types) {
    internal::AggregateTopics topics = internal::TopicsFor(global.topic_prefix, type);
    for (const std::string& topic :
         {topics.commands, topics.events, topics.results, topics.snapshots}) {
      absl::StatusOr<std::string> line = Describe(global, admin, topic);
      if (line.ok()) {
        std::cout << *line << std::endl;
      } else if (line.status().code() == absl::StatusCode::kNotFound) {
        std::cout << (global.json ? absl::StrCat("{\"topic\":\"", topic, "\",\"missing\":true}")
                                  : absl::StrCat(topic, "  (missing)"))
                  << std::endl;
      } else {
        return Fail(global, line.status());
      }
    }
  }
  return exit_code;
}

}  // namespace leftfold::cli
