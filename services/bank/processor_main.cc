// leftfold-bank-processor: hosts the bank account aggregate's processor.
//
//   leftfold-bank-processor --brokers 127.0.0.1:9092 --state-dir /var/lib/bank
//   leftfold-bank-processor --help
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bank/bank_aggregate.h"
#include "common/signals.h"
#include "leftfold/logging.h"
#include "leftfold/processor.h"

int main(int argc, char** argv) {
  leftfold::services::BlockTerminationSignals();
  leftfold::TransportOptions transport_options;
  leftfold::ProcessorOptions options;
  std::string guarantee = "exactly_once";
  size_t max_batch = options.max_batch;
  CLI::App app{"Runs the bank account aggregate's processor (leftfold example)."};
  app.add_option("--brokers", transport_options.brokers,
                 "Kafka bootstrap servers; empty: the embedded log in --data-dir");
  app.add_option("--data-dir", transport_options.embedded_dir, "embedded log directory")
      ->capture_default_str();
  app.add_option("--state-dir", options.state_dir, "RocksDB snapshot stores")
      ->capture_default_str();
  app.add_option("--group", options.group,
                 "consumer group (default: <prefix>bank.account.processor)");
  app.add_option("--instance-id", options.instance_id, "this instance's id (default: host-pid)");
  app.add_option("--topic-prefix", transport_options.topic_prefix, "prefix of every topic name");
  app.add_option("--partitions", transport_options.partitions, "partitions of created topics")
      ->capture_default_str();
  app.add_option("--guarantee", guarantee, "exactly_once or at_least_once")
      ->check(CLI::IsMember({"exactly_once", "at_least_once"}))
      ->capture_default_str();
  app.add_option("--max-batch", max_batch, "commands per transaction")->capture_default_str();
  std::vector<std::string> kafka_properties;
  app.add_option("--kafka-property", kafka_properties,
                 "librdkafka property for every client, KEY=VALUE (repeatable)");
  double transaction_timeout_s = absl::ToDoubleSeconds(options.transaction_timeout);
  app.add_option("--transaction-timeout", transaction_timeout_s,
                 "seconds before the broker aborts a transaction left open")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.transaction_timeout = absl::Seconds(transaction_timeout_s);
  for (const std::string& property : kafka_properties) {
    size_t eq = property.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "--kafka-property wants KEY=VALUE, got '%s'\n", property.c_str());
      return 2;
    }
    transport_options.kafka_properties[property.substr(0, eq)] = property.substr(eq + 1);
  }
  options.max_batch = max_batch;
  options.guarantee = guarantee == "at_least_once"
                          ? leftfold::ProcessorOptions::Guarantee::kAtLeastOnce
                          : leftfold::ProcessorOptions::Guarantee::kExactlyOnce;

  auto transport = leftfold::Transport::Open(transport_options);
  if (!transport.ok()) {
    leftfold::LogError("bank-processor", "cannot open transport",
                       {{"error", transport.status().ToString()}});
    return 1;
  }
  auto processor = leftfold::Processor::Create(*transport, bank::AccountDefinition(), options);
  if (!processor.ok()) {
    leftfold::LogError("bank-processor", "cannot create processor",
                       {{"error", processor.status().ToString()}});
    return 1;
  }
  absl::Status run_status;
  std::thread runner([&] {
    run_status = (*processor)->Run();
    if (!run_status.ok()) kill(getpid(), SIGTERM);  // wake main: the processor stopped on error
  });
  int sig = leftfold::services::WaitForTerminationSignal();
  leftfold::LogInfo("bank-processor", "stopping", {{"signal", absl::StrCat(sig)}});
  (*processor)->Stop();
  runner.join();
  if (!run_status.ok()) {
    leftfold::LogError("bank-processor", "processor failed", {{"error", run_status.ToString()}});
    return 1;
  }
  return 0;
}
