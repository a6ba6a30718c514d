// Helpers shared by the kafka backend's tests on the mock cluster (tests/unit/log_kafka) and on a
// real broker (tests/kafka/log_kafka): reading with a deadline instead of sleeping.
//
//   std::vector<Record> got = ReadAtLeast(*consumer, 10, absl::Seconds(30));
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "log/log.h"

namespace leftfold::internal::log::kafka::testing {

// Polls until `n` records arrived or `timeout` passed; a Poll error fails the test.
inline std::vector<Record> ReadAtLeast(Consumer& consumer, size_t n, absl::Duration timeout) {
  std::vector<Record> out;
  absl::Time deadline = absl::Now() + timeout;
  while (out.size() < n && absl::Now() < deadline) {
    absl::StatusOr<std::vector<Record>> batch =
        consumer.Poll(n - out.size(), absl::Milliseconds(200));
    if (!batch.ok()) {
      ADD_FAILURE() << batch.status();
      break;
    }
    for (Record& r : *batch) out.push_back(std::move(r));
  }
  return out;
}

// Polls until `done()` holds or `timeout` passed (rebalances happen inside Poll).
template <typename Done>
bool PollUntil(Consumer& consumer, Done done, absl::Duration timeout,
               std::vector<Record>* records = nullptr) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::StatusOr<std::vector<Record>> batch = consumer.Poll(100, absl::Milliseconds(100));
    if (!batch.ok()) {
      ADD_FAILURE() << batch.status();
      return false;
    }
    if (records != nullptr) {
      for (Record& r : *batch) records->push_back(std::move(r));
    }
  }
  return true;
}

inline std::vector<TopicPartitionOffset> FromStart(const std::string& topic, int partitions) {
  std::vector<TopicPartitionOffset> out;
  for (int p = 0; p < partitions; ++p) out.push_back({{topic, p}, 0});
  return out;
}

}  // namespace leftfold::internal::log::kafka::testing
