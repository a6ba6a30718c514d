#include "leftfold/process_manager.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "leftfold/logging.h"
#include "log/errors.h"
#include "log/log.h"
#include "topology/topics.h"

namespace leftfold {

absl::Status ProcessContext::Send(const std::string& aggregate_type,
                                  const AggregateId& aggregate_id,
                                  const google::protobuf::Message& command,
                                  const CommandId& command_id, std::string correlation_id) {
  if (aggregate_type.empty() || aggregate_id.value().empty() || command_id.value().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ProcessContext::Send needs an aggregate type, an aggregate id and a "
                     "(deterministic) command id; got type '",
                     aggregate_type, "', id '", aggregate_id.value(), "', command id '",
                     command_id.value(), "'"));
  }
  v1::CommandEnvelope& envelope = sent_.emplace_back();
  envelope.set_command_id(command_id.value());
  envelope.set_aggregate_type(aggregate_type);
  envelope.set_aggregate_id(aggregate_id.value());
  envelope.mutable_payload()->PackFrom(command);
  envelope.set_correlation_id(correlation_id.empty() ? correlation_id_ : std::move(correlation_id));
  // Tracing only: which process sent it and because of which record.
  (*envelope.mutable_metadata())["leftfold.process"] = process_name_;
  (*envelope.mutable_metadata())["leftfold.cause"] = source_;
  *envelope.mutable_submitted_at() = internal::ProtoNow();
  return absl::OkStatus();
}

absl::Status ProcessDefinition::Validate() const {
  std::vector<std::string> problems;
  if (name_.empty() || name_.size() > 200 ||
      name_.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
          std::string::npos) {
    problems.push_back(absl::StrCat("name '", name_, "' must be 1..200 of [A-Za-z0-9._-]"));
  }
  if (handlers_.empty()) problems.push_back("no handler (OnEvent / OnResults)");
  for (const internal::ProcessHandler& h : handlers_) {
    if (h.aggregate_type.empty()) problems.push_back("a handler has an empty aggregate type");
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("process '", name_, "': ", absl::StrJoin(problems, "; ")));
}

namespace internal {
namespace {

using log::Record;
using log::TopicPartition;
using log::TopicPartitionOffset;

// What a subscribed topic carries.
struct Source {
  ProcessHandler::Kind kind;
  std::string aggregate_type;
};

class ProcessManagerImpl final : public ProcessManager {
 public:
  ProcessManagerImpl(std::shared_ptr<Transport> transport, ProcessDefinition definition,
                     ProcessManagerOptions options, std::map<std::string, Source> sources)
      : transport_(std::move(transport)),
        definition_(std::move(definition)),
        options_(std::move(options)),
        sources_(std::move(sources)) {}

  absl::Status Run() override;
  void Stop() override { stop_.store(true); }
  ProcessManagerStats stats() const override {
    return {.handled = handled_.load(),
            .skipped = skipped_.load(),
            .commands_sent = sent_.load(),
            .batches = batches_.load()};
  }
  bool ready() const override { return ready_.load(); }

 private:
  // Runs the handlers for one record, appending what they sent to `out`.
  absl::Status Handle(const Record& record, std::vector<v1::CommandEnvelope>& out);
  // Produces `commands` and waits until the log has them all.
  absl::Status Deliver(log::Producer& producer, const std::vector<v1::CommandEnvelope>& commands);
  absl::StatusOr<std::string> CommandsTopic(const std::string& aggregate_type);

  std::shared_ptr<Transport> transport_;
  ProcessDefinition definition_;
  ProcessManagerOptions options_;
  std::map<std::string, Source> sources_;               // by topic name
  std::map<std::string, std::string> commands_topics_;  // by aggregate type; Run thread only
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::atomic<int64_t> handled_{0}, skipped_{0}, sent_{0}, batches_{0};
};

absl::StatusOr<std::string> ProcessManagerImpl::CommandsTopic(const std::string& aggregate_type) {
  if (auto it = commands_topics_.find(aggregate_type); it != commands_topics_.end()) {
    return it->second;
  }
  // The target's processor may not have run yet; its topics are made the same way it makes them.
  AggregateTopics topics = TopicsFor(transport_->options().topic_prefix, aggregate_type);
  absl::StatusOr<int32_t> partitions =
      EnsureTopics(transport_->log_internal().admin(), topics, transport_->options().partitions);
  if (!partitions.ok()) return partitions.status();
  commands_topics_[aggregate_type] = topics.commands;
  return topics.commands;
}

absl::Status ProcessManagerImpl::Handle(const Record& record,
                                        std::vector<v1::CommandEnvelope>& out) {
  auto found = sources_.find(record.topic);
  if (found == sources_.end()) {  // not subscribed to it: nothing to do with it
    skipped_.fetch_add(1);
    return absl::OkStatus();
  }
  const Source& source = found->second;
  std::string where = absl::StrCat(record.topic, "/", record.partition, "@", record.offset);
  v1::EventEnvelope event;
  v1::CommandResult result;
  const google::protobuf::Message* parsed = nullptr;
  std::string correlation_id;
  std::string event_type;
  if (source.kind == ProcessHandler::Kind::kEvents) {
    if (!event.ParseFromString(record.value)) {
      LogWarning("process", "skipping a malformed event envelope",
                 {{"process", definition_.name()}, {"at", where}});
      skipped_.fetch_add(1);
      return absl::OkStatus();
    }
    const std::string& url = event.payload().type_url();
    event_type = url.substr(url.rfind('/') + 1);
    correlation_id = event.correlation_id();
    parsed = &event;
  } else {
    if (!result.ParseFromString(record.value)) {
      LogWarning("process", "skipping a malformed command result",
                 {{"process", definition_.name()}, {"at", where}});
      skipped_.fetch_add(1);
      return absl::OkStatus();
    }
    correlation_id = result.correlation_id();
    parsed = &result;
  }
  bool any = false;
  for (const ProcessHandler& handler : definition_.handlers()) {
    if (handler.kind != source.kind || handler.aggregate_type != source.aggregate_type) continue;
    if (handler.kind == ProcessHandler::Kind::kEvents && handler.event_type != event_type) continue;
    any = true;
    ProcessContext ctx(definition_.name(), where, correlation_id);
    absl::Status status;
    // The one place a user handler's exception is caught; it becomes a status like any error.
    try {
      status = handler.fn(*parsed, ctx);
    } catch (const std::exception& e) {
      status = absl::InternalError(absl::StrCat("handler threw: ", e.what()));
    } catch (...) {
      status = absl::InternalError("handler threw a non-std exception");
    }
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("process '", definition_.name(), "' handler failed at ",
                                       where, ": ", status.message()));
    }
    for (v1::CommandEnvelope& command : ctx.TakeSent()) out.push_back(std::move(command));
  }
  (any ? handled_ : skipped_).fetch_add(1);
  return absl::OkStatus();
}

absl::Status ProcessManagerImpl::Deliver(log::Producer& producer,
                                         const std::vector<v1::CommandEnvelope>& commands) {
  if (commands.empty()) return absl::OkStatus();
  // Delivery callbacks run on this thread (inside Produce/Flush), so no lock is needed.
  absl::Status first_error;
  int64_t delivered = 0;
  for (const v1::CommandEnvelope& command : commands) {
    absl::StatusOr<std::string> topic = CommandsTopic(command.aggregate_type());
    if (!topic.ok()) return topic.status();
    absl::Status produced = producer.Produce(
        {.topic = *topic, .key = command.aggregate_id(), .value = command.SerializeAsString()},
        [&](absl::StatusOr<TopicPartitionOffset> where) {
          if (where.ok()) {
            ++delivered;
          } else if (first_error.ok()) {
            first_error = where.status();
          }
        });
    if (!produced.ok()) return produced;
  }
  absl::Status flushed = producer.Flush(options_.delivery_timeout);
  if (!flushed.ok()) return flushed;
  if (!first_error.ok()) return first_error;
  if (delivered != static_cast<int64_t>(commands.size())) {
    return absl::DeadlineExceededError(absl::StrCat("only ", delivered, " of ", commands.size(),
                                                    " commands delivered before the timeout"));
  }
  sent_.fetch_add(delivered);
  return absl::OkStatus();
}

absl::Status ProcessManagerImpl::Run() {
  log::Log& log = transport_->log_internal();
  std::string group = options_.group.empty() ? absl::StrCat(transport_->options().topic_prefix,
                                                            definition_.name(), ".process")
                                             : options_.group;
  log::ConsumerOptions consumer_options{.group_id = group,
                                        .isolation = log::Isolation::kReadCommitted,
                                        .instance_id = options_.instance_id};
  absl::StatusOr<std::unique_ptr<log::Consumer>> consumer = log.NewConsumer(consumer_options);
  if (!consumer.ok()) return consumer.status();
  absl::StatusOr<std::unique_ptr<log::Producer>> producer = log.NewProducer({});
  if (!producer.ok()) return producer.status();
  std::vector<std::string> topics;
  for (const auto& [topic, source] : sources_) topics.push_back(topic);
  if (absl::Status s = (*consumer)->Subscribe(topics, {}); !s.ok()) return s;
  LogInfo("process", "started",
          {{"process", definition_.name()},
           {"group", group},
           {"instance_id", options_.instance_id.empty() ? "(dynamic)" : options_.instance_id}});

  absl::Status status;
  while (!stop_.load()) {
    absl::StatusOr<std::vector<Record>> batch =
        (*consumer)->Poll(options_.max_batch, options_.poll_timeout);
    if (!batch.ok()) {
      if (log::ClassifyError(batch.status()) == log::ErrorClass::kRetriable) continue;
      status = batch.status();
      break;
    }
    ready_.store(true);
    if (batch->empty()) continue;

    std::vector<v1::CommandEnvelope> commands;
    std::map<TopicPartition, int64_t> next;
    for (const Record& record : *batch) {
      status = Handle(record, commands);
      if (!status.ok()) break;
      int64_t& n = next[TopicPartition{record.topic, record.partition}];
      n = std::max(n, record.offset + 1);
    }
    if (!status.ok()) break;
    // Offsets only after the commands are in the log: a crash in between re-sends them, and
    // their deterministic ids make the processors ignore the copies.
    status = Deliver(**producer, commands);
    if (!status.ok()) break;
    std::vector<TopicPartitionOffset> offsets;
    for (const auto& [tp, offset] : next) offsets.push_back({tp, offset});
    status = (*consumer)->CommitOffsets(offsets);
    if (!status.ok()) break;
    batches_.fetch_add(1);
  }
  if (!status.ok()) {
    LogError("process", "stopped on error",
             {{"process", definition_.name()}, {"error", status.ToString()}});
  }
  (void)(*consumer)->Close();
  (void)(*producer)->Close();
  return status;
}

}  // namespace
}  // namespace internal

absl::StatusOr<std::unique_ptr<ProcessManager>> ProcessManager::Create(
    std::shared_ptr<Transport> transport, ProcessDefinition definition,
    ProcessManagerOptions options) {
  if (transport == nullptr) return absl::InvalidArgumentError("transport is null");
  if (absl::Status s = definition.Validate(); !s.ok()) return s;
  if (options.max_batch == 0) return absl::InvalidArgumentError("max_batch must be > 0");
  std::map<std::string, internal::Source> sources;
  std::set<std::string> types;
  for (const internal::ProcessHandler& h : definition.handlers()) {
    internal::AggregateTopics topics =
        internal::TopicsFor(transport->options().topic_prefix, h.aggregate_type);
    const std::string& topic =
        h.kind == internal::ProcessHandler::Kind::kEvents ? topics.events : topics.results;
    sources[topic] = internal::Source{h.kind, h.aggregate_type};
    if (types.insert(h.aggregate_type).second) {
      absl::StatusOr<int32_t> partitions = internal::EnsureTopics(
          transport->log_internal().admin(), topics, transport->options().partitions);
      if (!partitions.ok()) return partitions.status();
    }
  }
  return std::make_unique<internal::ProcessManagerImpl>(std::move(transport), std::move(definition),
                                                        std::move(options), std::move(sources));
}

}  // namespace leftfold
