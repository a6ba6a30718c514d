// The cross-backend conformance suite for the Log (framework/src/log/log.h): one set of cases that
// every backend must pass, so the runtime can rely on the contract rather than on a backend.
//
// A test binary instantiates the suite once per backend it can reach:
//
//   #include "support/log_conformance.h"
//   namespace leftfold::testing {
//   INSTANTIATE_TEST_SUITE_P(Embedded, LogConformanceTest,
//                            ::testing::Values(EmbeddedLogBackend()), LogBackendName);
//   }
//
// Every case gets a fresh Log from the backend's `open` and unique topic and group names, so cases
// are independent and may run in any order. A backend that truly cannot run a case (the librdkafka
// mock cluster has no transaction markers, say) lists it in `unsupported` with the reason; the
// case is then skipped with that reason, never silently passed.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "log/log.h"

namespace leftfold::testing {

// A Log plus whatever must outlive it (a temp directory, a mock cluster). Members are destroyed in
// reverse order, so `log` goes first.
struct OpenedLog {
  std::shared_ptr<void> keep_alive;
  std::unique_ptr<internal::log::Log> log;
};

// How to get a fresh Log of one backend. Copyable; `open` is called once per test case.
struct LogBackend {
  // Test-name suffix: letters, digits and '_' only.
  std::string name;
  std::function<absl::StatusOr<OpenedLog>()> open;
  // Case name (e.g. "AbortedTransactionsInvisible") -> why this backend cannot run it.
  std::map<std::string, std::string> unsupported;
};

// The embedded backend on a fresh temporary directory (removed when the Log is closed).
LogBackend EmbeddedLogBackend();
// The kafka backend on a fresh in-process librdkafka mock cluster, with the cases the mock cluster
// cannot do listed in `unsupported`.
LogBackend MockClusterLogBackend();
// The kafka backend on a real broker; `brokers` empty fails every case (no silent skip).
LogBackend KafkaLogBackend(std::string brokers);

// So gtest prints a backend by name rather than as bytes.
void PrintTo(const LogBackend& backend, std::ostream* os);

// For INSTANTIATE_TEST_SUITE_P's name generator.
std::string LogBackendName(const ::testing::TestParamInfo<LogBackend>& info);

// Owns one fresh Log per case; the cases are in log_conformance.cc.
class LogConformanceTest : public ::testing::TestWithParam<LogBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  internal::log::Log& log() { return *opened_.log; }
  internal::log::Admin& admin() { return opened_.log->admin(); }

 private:
  OpenedLog opened_;
};

}  // namespace leftfold::testing
