// The embedded backend of the Log: durable, single-process, RocksDB on a local directory.
// See log/log.h for the contract.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "log/log.h"

namespace leftfold::internal::log::embedded {

// Opens (creating when missing) the log stored in options.embedded_dir. One process at a time:
// a second process opening the same directory gets FAILED_PRECONDITION (RocksDB's lock).
absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const LogOptions& options);

}  // namespace leftfold::internal::log::embedded
