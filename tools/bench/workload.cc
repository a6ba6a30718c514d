#include "workload.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "bank/v1/bank.pb.h"

namespace leftfold::bench {

absl::StatusOr<Workload> ParseWorkload(const std::string& name) {
  if (name == "bank-uniform") return Workload::kBankUniform;
  if (name == "bank-zipf") return Workload::kBankZipf;
  if (name == "bank-dup") return Workload::kBankDup;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown workload '", name, "' (bank-uniform, bank-zipf, bank-dup)"));
}

std::string WorkloadName(Workload workload) {
  switch (workload) {
    case Workload::kBankUniform:
      return "bank-uniform";
    case Workload::kBankZipf:
      return "bank-zipf";
    case Workload::kBankDup:
      return "bank-dup";
  }
  return "?";
}

WorkloadGenerator::WorkloadGenerator(Workload workload, uint64_t seed)
    : workload_(workload),
      seed_(seed),
      rng_(seed),
      accounts_(workload == Workload::kBankZipf ? 1000000 : 10000) {
  if (workload_ == Workload::kBankZipf) {
    // Cumulative Zipf(s=0.99) weights over ranks 1..N; accounts are ranks shuffled by a hash.
    zipf_cdf_.resize(accounts_);
    double sum = 0;
    for (int64_t k = 0; k < accounts_; ++k) {
      sum += 1.0 / std::pow(static_cast<double>(k + 1), 0.99);
      zipf_cdf_[k] = sum;
    }
    for (double& c : zipf_cdf_) c /= sum;
  }
}

int64_t WorkloadGenerator::PickAccount() {
  if (workload_ != Workload::kBankZipf) {
    return std::uniform_int_distribution<int64_t>(0, accounts_ - 1)(rng_);
  }
  double u = std::uniform_real_distribution<double>(0, 1)(rng_);
  int64_t rank = std::lower_bound(zipf_cdf_.begin(), zipf_cdf_.end(), u) - zipf_cdf_.begin();
  // Spread hot ranks over the key space so they are not all in one partition.
  return static_cast<int64_t>((static_cast<uint64_t>(rank) * 2654435761u) % accounts_);
}

v1::CommandEnvelope WorkloadGenerator::Next() {
  int64_t n = sequence_++;
  if (workload_ == Workload::kBankDup && !recent_.empty() &&
      std::uniform_int_distribution<int>(0, 99)(rng_) < 5) {
    return recent_[std::uniform_int_distribution<size_t>(0, recent_.size() - 1)(rng_)];
  }
  v1::CommandEnvelope command;
  command.set_command_id(absl::StrCat("w", seed_, "-", n));
  command.set_aggregate_type("bank.account");
  command.set_correlation_id(absl::StrCat("bench-", seed_));
  int64_t account;
  // Accounts are opened first (all of them for uniform workloads; lazily on first touch for
  // the million-account Zipf one, whose opens are part of the mix).
  bool open = false;
  if (workload_ != Workload::kBankZipf && opened_ < accounts_) {
    account = opened_++;
    open = true;
  } else {
    account = PickAccount();
  }
  command.set_aggregate_id(absl::StrCat("acct-", account));
  int roll = std::uniform_int_distribution<int>(0, 99)(rng_);
  if (open || (workload_ == Workload::kBankZipf && roll < 2)) {
    bank::v1::OpenAccount payload;
    payload.set_owner(absl::StrCat("owner-", account % 1000, "-benchmark-customer"));
    payload.set_initial_deposit(100);
    command.mutable_payload()->PackFrom(payload);
  } else if (roll < 70) {
    bank::v1::Deposit payload;
    payload.set_amount(std::uniform_int_distribution<int64_t>(1, 100)(rng_));
    payload.set_reference(absl::StrCat("dep-", n, "-ref"));
    command.mutable_payload()->PackFrom(payload);
  } else if (roll < 95) {
    bank::v1::Withdraw payload;
    // Mostly affordable: accounts open with 100 and grow; early on the tail overdraws.
    payload.set_amount(std::uniform_int_distribution<int64_t>(1, 120)(rng_));
    payload.set_reference(absl::StrCat("wd-", n, "-ref"));
    command.mutable_payload()->PackFrom(payload);
  } else {
    bank::v1::Deposit payload;
    payload.set_amount(1);
    command.mutable_payload()->PackFrom(payload);
    command.set_expected_version(0);  // stale: the account was opened at version 1
  }
  if (workload_ == Workload::kBankDup) {
    if (recent_.size() < 1024) {
      recent_.push_back(command);
    } else {
      recent_[std::uniform_int_distribution<size_t>(0, recent_.size() - 1)(rng_)] = command;
    }
  }
  return command;
}

}  // namespace leftfold::bench
