#include "common/processor_main.h"

#include <signal.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/kafka_properties.h"
#include "common/signals.h"
#include "leftfold/logging.h"
#include "leftfold/processor.h"
#include "leftfold/transport.h"

namespace leftfold::services {
int ProcessorMain(int argc, char** argv, const ProcessorBinary& binary) {
  BlockTerminationSignals();
  const std::string type = binary.definition.type();
  TransportOptions transport_options;
  ProcessorOptions options;
  std::string guarantee = "exactly_once";
  size_t max_batch = options.max_batch;
  std::string log_level = "info";
  CLI::App app{binary.description};
  app.add_option("--brokers", transport_options.brokers,
                 "Kafka bootstrap servers; empty: the embedded log in --data-dir");
  app.add_option("--data-dir", transport_options.embedded_dir, "embedded log directory")
      ->capture_default_str();
  app.add_option("--state-dir", options.state_dir, "RocksDB snapshot stores")
      ->capture_default_str();
  app.add_option("--group", options.group,
                 absl::StrCat("consumer group (default: <prefix>", type, ".processor)"));
  app.add_option("--instance-id", options.instance_id,
                 "this instance's id; a stable one makes it a static group member that gets its "
                 "partitions back at once after a restart (default: host-pid, dynamic)");
  app.add_option("--topic-prefix", transport_options.topic_prefix, "prefix of every topic name");
  app.add_option("--partitions", transport_options.partitions, "partitions of created topics")
      ->capture_default_str();
  app.add_option("--guarantee", guarantee, "exactly_once or at_least_once")
      ->check(CLI::IsMember({"exactly_once", "at_least_once"}))
      ->capture_default_str();
  app.add_option("--max-batch", max_batch, "commands per transaction")->capture_default_str();
  app.add_option("--workers", options.workers,
                 "processing threads, each a group member with its own transactions and a share "
                 "of the partitions")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  std::vector<std::string> kafka_properties;
  app.add_option("--kafka-property", kafka_properties,
                 "librdkafka property for every client, KEY=VALUE (repeatable)");
  double transaction_timeout_s = absl::ToDoubleSeconds(options.transaction_timeout);
  app.add_option("--transaction-timeout", transaction_timeout_s,
                 "seconds before the broker aborts a transaction left open")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug|info|warning|error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
  bool with_extras = false;
  if (!binary.extras_flag.empty()) {
    app.add_flag(absl::StrCat("--with-", binary.extras_flag), with_extras, binary.extras_help);
  }
  CLI11_PARSE(app, argc, argv);
  if (!ParseKafkaProperties(kafka_properties, transport_options.kafka_properties)) return 2;
  if (log_level == "debug") SetLogLevel(LogLevel::kDebug);
  if (log_level == "warning") SetLogLevel(LogLevel::kWarning);
  if (log_level == "error") SetLogLevel(LogLevel::kError);
  options.transaction_timeout = absl::Seconds(transaction_timeout_s);
  options.max_batch = max_batch;
  options.guarantee = guarantee == "at_least_once" ? ProcessorOptions::Guarantee::kAtLeastOnce
                                                   : ProcessorOptions::Guarantee::kExactlyOnce;
  const std::string& component = binary.component;

  auto transport = Transport::Open(transport_options);
  if (!transport.ok()) {
    LogError(component, "cannot open transport", {{"error", transport.status().ToString()}});
    return 1;
  }
  std::vector<std::unique_ptr<Processor>> processors;
  std::vector<std::unique_ptr<ProcessManager>> processes;
  std::vector<AggregateDefinition> definitions = {binary.definition};
  if (with_extras) {
    definitions.insert(definitions.end(), binary.extra_aggregates.begin(),
                       binary.extra_aggregates.end());
  }
  for (const AggregateDefinition& definition : definitions) {
    ProcessorOptions processor_options = options;
    // --group names the main aggregate's group; a shared one would also share its
    // transactional ids, and the processors would fence each other.
    if (definition.type() != type) processor_options.group.clear();
    auto processor = Processor::Create(*transport, definition, processor_options);
    if (!processor.ok()) {
      LogError(component, "cannot create processor",
               {{"aggregate_type", definition.type()}, {"error", processor.status().ToString()}});
      return 1;
    }
    processors.push_back(*std::move(processor));
  }
  if (with_extras) {
    for (const ProcessDefinition& definition : binary.extra_processes) {
      auto process =
          ProcessManager::Create(*transport, definition, {.instance_id = options.instance_id});
      if (!process.ok()) {
        LogError(component, "cannot create process manager",
                 {{"process", definition.name()}, {"error", process.status().ToString()}});
        return 1;
      }
      processes.push_back(*std::move(process));
    }
  }
  LogInfo(component, "started",
          {{"aggregate_type", type},
           {"backend", (*transport)->backend()},
           {"group", options.group.empty()
                         ? absl::StrCat(transport_options.topic_prefix, type, ".processor")
                         : options.group},
           {"instance_id", options.instance_id.empty() ? "(host-pid)" : options.instance_id},
           {"processors", absl::StrCat(processors.size())},
           {"process_managers", absl::StrCat(processes.size())}});

  // One thread per component; the first to fail wakes main, which stops them all.
  std::vector<absl::Status> statuses(processors.size() + processes.size());
  std::vector<std::thread> threads;
  auto run = [&statuses](size_t slot, auto* component_to_run) {
    return std::thread([&statuses, slot, component_to_run] {
      statuses[slot] = component_to_run->Run();
      if (!statuses[slot].ok()) kill(getpid(), SIGTERM);
    });
  };
  for (size_t i = 0; i < processors.size(); ++i) threads.push_back(run(i, processors[i].get()));
  for (size_t i = 0; i < processes.size(); ++i) {
    threads.push_back(run(processors.size() + i, processes[i].get()));
  }
  int sig = WaitForTerminationSignal();
  LogInfo(component, "stopping", {{"signal", absl::StrCat(sig)}});
  for (auto& processor : processors) processor->Stop();
  for (auto& process : processes) process->Stop();
  for (std::thread& thread : threads) thread.join();
  int exit_code = 0;
  for (const absl::Status& status : statuses) {
    if (status.ok()) continue;
    LogError(component, "stopped on error", {{"error", status.ToString()}});
    exit_code = 1;
  }
  if (exit_code == 0) LogInfo(component, "stopped");
  return exit_code;
}

}  // namespace leftfold::services
