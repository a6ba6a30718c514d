#include "log/log.h"

#include "log/embedded/embedded_log.h"
#include "log/kafka/kafka_log.h"

namespace leftfold::internal::log {

absl::StatusOr<std::unique_ptr<Log>> OpenLog(const LogOptions& options) {
  if (!options.brokers.empty()) return kafka::OpenKafkaLog(options);
  return embedded::OpenEmbeddedLog(options);
}

}  // namespace leftfold::internal::log
