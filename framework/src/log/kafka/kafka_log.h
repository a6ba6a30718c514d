// The kafka backend of the Log (librdkafka). See log/log.h for the contract.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "log/log.h"

namespace leftfold::internal::log::kafka {

// Connects to options.brokers. Fails with UNAVAILABLE when no broker answers in time.
absl::StatusOr<std::unique_ptr<Log>> OpenKafkaLog(const LogOptions& options);

}  // namespace leftfold::internal::log::kafka
