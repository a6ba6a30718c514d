// `leftfold topics list|describe|create`: the topics of aggregate types, on a Kafka cluster.
//
// Kafka only: the embedded log is a RocksDB directory that the running server holds locked, and
// the server creates and checks its topics itself at start-up. The Log admin interface has no
// "list all topics" call, so `list` shows the four topics of the given (or the known) types.
#include "topology/topics.h"

#include <iostream>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aggregates.h"
#include "cli.h"
#include "log/log.h"
#include "topic_configs.h"

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

constexpr absl::Duration kConfigTimeout = absl::Seconds(10);

// One line (or JSON object) per topic: partitions, and end offsets (committed / all); with
// `configs`, also the topic's own configuration (cleanup.policy, retention.ms, ...).
absl::StatusOr<std::string> Describe(const GlobalOptions& global, lg::Admin& admin,
                                     const std::string& topic,
                                     const std::map<std::string, std::string>* configs = nullptr) {
  absl::StatusOr<int32_t> partitions = admin.PartitionCount(topic);
  if (!partitions.ok()) return partitions.status();
  absl::StatusOr<std::vector<int64_t>> committed =
      admin.EndOffsets(topic, lg::Isolation::kReadCommitted);
  if (!committed.ok()) return committed.status();
  absl::StatusOr<std::vector<int64_t>> all =
      admin.EndOffsets(topic, lg::Isolation::kReadUncommitted);
  if (!all.ok()) return all.status();
  if (global.json) {
    std::string json = absl::StrCat("{\"topic\":\"", topic, "\",\"partitions\":", *partitions,
                                    ",\"endOffsetsCommitted\":[", absl::StrJoin(*committed, ","),
                                    "],\"endOffsets\":[", absl::StrJoin(*all, ","), "]");
    if (configs != nullptr) {
      absl::StrAppend(&json, ",\"configs\":{",
                      absl::StrJoin(*configs, ",",
                                    [](std::string* out, const auto& kv) {
                                      absl::StrAppend(out, "\"", absl::CEscape(kv.first), "\":\"",
                                                      absl::CEscape(kv.second), "\"");
                                    }),
                      "}");
    }
    return json + "}";
  }
  int64_t records = 0;
  for (int64_t e : *committed) records += e;
  std::string line = absl::StrCat(
      topic, "  partitions ", *partitions, "  end offsets (read_committed) [",
      absl::StrJoin(*committed, " "), "]  (all) [", absl::StrJoin(*all, " "), "]  total ", records);
  if (configs != nullptr) {
    absl::StrAppend(
        &line, "  configs ",
        configs->empty() ? "(none)" : absl::StrJoin(*configs, " ", absl::PairFormatter("=")));
  }
  return line;
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
    // Existence first, so an unknown topic is the usual NOT_FOUND from the Log admin.
    if (absl::StatusOr<int32_t> n = admin.PartitionCount(options.topic); !n.ok()) {
      return Fail(global, n.status());
    }
    absl::StatusOr<std::map<std::string, std::string>> configs =
        TopicConfigs(options.brokers, options.topic, kConfigTimeout);
    if (!configs.ok()) return Fail(global, configs.status());
    absl::StatusOr<std::string> line = Describe(global, admin, options.topic, &*configs);
    if (!line.ok()) return Fail(global, line.status());
    std::cout << *line << std::endl;
    return kOk;
  }
  if (options.action == "create") {
    internal::TopicSettings settings;
    if (options.commands_retention > absl::ZeroDuration()) {
      settings.commands_retention = options.commands_retention;
    }
    if (options.results_retention > absl::ZeroDuration()) {
      settings.results_retention = options.results_retention;
    }
    for (const std::string& type : types) {
      internal::AggregateTopics topics = internal::TopicsFor(global.topic_prefix, type);
      absl::StatusOr<int32_t> n =
          internal::EnsureTopics(admin, topics, options.partitions, settings);
      if (!n.ok()) return Fail(global, n.status());
      if (*n != options.partitions) {
        // Existing topics are left as they are: adding partitions would move keys to other
        // partitions, away from their aggregates' events and snapshots.
        std::cerr << "note: " << type << "'s topics already exist with " << *n
                  << " partitions; --create-partitions " << options.partitions
                  << " does not change them" << std::endl;
      }
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
