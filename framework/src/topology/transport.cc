#include "leftfold/transport.h"

#include "absl/synchronization/mutex.h"
#include "log/log.h"

namespace leftfold {
namespace {

// Debian's Abseil is built without NDEBUG, so absl::Mutex runs its debug-mode deadlock detection
// (a process-wide lock-order graph updated on every Lock and Mutex destruction) in every process
// that links it, gRPC's mutexes included: GraphCycles showed in the gateway's profile on every
// call. Every leftfold process opens a Transport, so this TU is linked into all of them. A program
// that wants the detection back sets absl::SetMutexDeadlockDetectionMode itself, after start.
const bool kMutexDeadlockDetectionOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace

absl::StatusOr<std::shared_ptr<Transport>> Transport::Open(const TransportOptions& options) {
  if (options.partitions < 1) {
    return absl::InvalidArgumentError("TransportOptions.partitions must be at least 1");
  }
  absl::StatusOr<std::unique_ptr<internal::log::Log>> log = internal::log::OpenLog({
      .brokers = options.brokers,
      .embedded_dir = options.embedded_dir,
      .embedded_fsync = options.embedded_fsync,
      .kafka_properties = options.kafka_properties,
  });
  if (!log.ok()) return log.status();
  return std::shared_ptr<Transport>(new Transport(options, *std::move(log)));
}

Transport::Transport(TransportOptions options, std::unique_ptr<internal::log::Log> log)
    : options_(std::move(options)), log_(std::move(log)) {}

Transport::~Transport() = default;

std::string Transport::backend() const { return std::string(log_->backend()); }

}  // namespace leftfold
