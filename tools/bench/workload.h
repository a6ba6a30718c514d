// The canonical benchmark workloads of shared/BENCHMARKS.md, generated from a seed so every run
// (and every machine) sends the same commands.
//
//   leftfold::bench::WorkloadGenerator gen(leftfold::bench::Workload::kBankUniform, /*seed=*/42);
//   for (int i = 0; i < 100000; ++i) {
//     leftfold::v1::CommandEnvelope command = gen.Next();
//     ...
//   }
//
// Not thread-safe; one generator per producing thread.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "leftfold/v1/envelope.pb.h"

namespace leftfold::bench {

enum class Workload {
  // 10,000 accounts, uniform: one open each, then 70% deposit, 25% withdraw (some rejected for
  // funds), 5% with a stale expected version (conflict).
  kBankUniform,
  // 1,000,000 accounts, Zipf s=0.99, same mix.
  kBankZipf,
  // bank-uniform with 5% of commands resubmitted with an earlier command's id.
  kBankDup,
};

absl::StatusOr<Workload> ParseWorkload(const std::string& name);
std::string WorkloadName(Workload workload);

class WorkloadGenerator {
 public:
  WorkloadGenerator(Workload workload, uint64_t seed);

  v1::CommandEnvelope Next();
  int64_t accounts() const { return accounts_; }

 private:
  int64_t PickAccount();

  Workload workload_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  int64_t accounts_;
  int64_t opened_ = 0;
  int64_t sequence_ = 0;
  std::vector<double> zipf_cdf_;
  std::vector<v1::CommandEnvelope> recent_;  // candidates for resubmission (bank-dup)
};

}  // namespace leftfold::bench
