// leftfold-gateway: serves leftfold.v1.CommandGateway for the given aggregate types over Kafka
// (--brokers) or the embedded log (--data-dir). SIGTERM/SIGINT: graceful shutdown, draining
// in-flight calls for up to --drain.
//
//   leftfold-gateway --brokers 127.0.0.1:9092 --aggregate-types bank.account --listen 0.0.0.0:50051
#include <CLI/CLI.hpp>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/kafka_properties.h"
#include "common/signals.h"
#include "leftfold/gateway.h"
#include "leftfold/logging.h"
#include "leftfold/transport.h"

int main(int argc, char** argv) {
  CLI::App app{"leftfold command gateway: gRPC in, <T>.commands out, results and events back"};
  std::string listen = "127.0.0.1:50051";
  std::string brokers;
  std::string data_dir = "leftfold-data";
  std::vector<std::string> types;
  std::string prefix;
  size_t max_inflight = 10000;
  size_t subscriber_buffer = 10000;
  size_t max_stream_pending = 1024;
  int partitions = 4;
  double execute_timeout_s = 30;
  double drain_s = 10;
  std::string log_level = "info";
  std::vector<std::string> kafka_property_args;
  app.add_option("--listen", listen, "gRPC listen address host:port")->capture_default_str();
  app.add_option("--brokers", brokers,
                 "Kafka bootstrap servers; empty: embedded log in --data-dir");
  app.add_option("--data-dir", data_dir, "Embedded log directory parent (uses <dir>/log)")
      ->capture_default_str();
  app.add_option("--aggregate-types", types, "Aggregate types routed, comma separated")
      ->required()
      ->delimiter(',');
  app.add_option("--topic-prefix", prefix, "Prefix of every topic name");
  app.add_option("--partitions", partitions, "Partitions of topics created when missing")
      ->capture_default_str();
  app.add_option("--max-inflight", max_inflight, "Commands in flight before RESOURCE_EXHAUSTED")
      ->capture_default_str();
  app.add_option("--max-stream-pending", max_stream_pending,
                 "ExecuteStream: commands one stream may have unanswered before it is not read")
      ->capture_default_str();
  app.add_option("--subscriber-buffer", subscriber_buffer,
                 "Messages a stream subscriber may lag before it is cut off")
      ->capture_default_str();
  app.add_option("--execute-timeout", execute_timeout_s, "Longest Execute wait, seconds")
      ->capture_default_str();
  app.add_option("--drain", drain_s, "Graceful shutdown: seconds in-flight calls get")
      ->capture_default_str();
  app.add_option("--kafka-property", kafka_property_args,
                 "librdkafka property for every client, KEY=VALUE (repeatable)");
  app.add_option("--log-level", log_level, "debug|info|warning|error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::map<std::string, std::string> kafka_properties;
  if (!leftfold::services::ParseKafkaProperties(kafka_property_args, kafka_properties)) return 2;

  if (log_level == "debug") leftfold::SetLogLevel(leftfold::LogLevel::kDebug);
  if (log_level == "warning") leftfold::SetLogLevel(leftfold::LogLevel::kWarning);
  if (log_level == "error") leftfold::SetLogLevel(leftfold::LogLevel::kError);

  // Before any thread starts, so only the wait below receives them.
  leftfold::services::BlockTerminationSignals();

  auto transport = leftfold::Transport::Open({.brokers = brokers,
                                              .embedded_dir = data_dir + "/log",
                                              .topic_prefix = prefix,
                                              .partitions = partitions,
                                              .kafka_properties = kafka_properties});
  if (!transport.ok()) {
    leftfold::LogError("gateway", "cannot open transport",
                       {{"error", transport.status().ToString()}});
    return 1;
  }
  auto server = leftfold::ServeGateway(*transport,
                                       {.aggregate_types = types,
                                        .max_inflight = max_inflight,
                                        .max_execute_wait = absl::Seconds(execute_timeout_s),
                                        .max_stream_pending = max_stream_pending,
                                        .subscriber_buffer = subscriber_buffer},
                                       listen);
  if (!server.ok()) {
    leftfold::LogError("gateway", "cannot start", {{"error", server.status().ToString()}});
    return 1;
  }
  leftfold::LogInfo("gateway", "ready",
                    {{"listen", listen},
                     {"port", absl::StrCat((*server)->port())},
                     {"aggregate_types", absl::StrJoin(types, ",")},
                     {"backend", (*transport)->backend()}});
  int sig = leftfold::services::WaitForTerminationSignal();
  leftfold::LogInfo("gateway", "signal received, draining", {{"signal", absl::StrCat(sig)}});
  (*server)->Shutdown(absl::Seconds(drain_s));
  leftfold::LogInfo("gateway", "bye");
  return 0;
}
