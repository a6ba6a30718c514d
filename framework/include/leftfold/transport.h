// The connection every leftfold component shares: Kafka brokers, or the embedded log on local
// disk when no brokers are given.
//
//   auto transport = leftfold::Transport::Open({.brokers = "127.0.0.1:9092"});
//   if (!transport.ok()) return transport.status();
//   // hand *transport to processors, projectors and the gateway of this process
//
// Open it once per process: the embedded log's directory can be open in one process at a time.
// Thread-safe; shared by every component that was given it, and kept alive by them.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace leftfold {
namespace internal::log {
class Log;
}  // namespace internal::log

struct TransportOptions {
  // "host:port,...": the kafka backend. Empty: the embedded backend. Default: empty.
  std::string brokers;
  // Embedded backend: where the log lives. Default: "leftfold-data/log".
  std::string embedded_dir = "leftfold-data/log";
  // Embedded backend: fsync every commit, so commits survive an OS crash or power loss too, not
  // only a crash of the process. Default: false (as a Kafka broker, which leaves it to the OS).
  bool embedded_fsync = false;
  // Prepended to every topic name ("acme." makes "acme.bank.account.events"). Default: none.
  std::string topic_prefix;
  // Partitions of the topics leftfold creates when they are missing. Default: 4.
  int32_t partitions = 4;
  // librdkafka properties for every Kafka client (e.g. "security.protocol"). Default: none.
  std::map<std::string, std::string> kafka_properties;
};

class Transport {
 public:
  static absl::StatusOr<std::shared_ptr<Transport>> Open(const TransportOptions& options);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  const TransportOptions& options() const { return options_; }
  // "kafka" or "embedded".
  std::string backend() const;

  // For the framework's own components.
  internal::log::Log& log_internal() const { return *log_; }

 private:
  Transport(TransportOptions options, std::unique_ptr<internal::log::Log> log);
  TransportOptions options_;
  std::unique_ptr<internal::log::Log> log_;
};

}  // namespace leftfold
