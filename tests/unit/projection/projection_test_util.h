// Helpers shared by the projection tests (unit, kafka, postgres): produce event envelopes to an
// aggregate's events topic and a counter projector whose view proves exactly-once application.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bank/v1/bank.pb.h"
#include "leftfold/projector.h"
#include "leftfold/v1/envelope.pb.h"
#include "log/log.h"
#include "support/test_env.h"
#include "topology/topics.h"

namespace leftfold::testing {

inline v1::EventEnvelope MakeEnvelope(const std::string& type, const std::string& id,
                                      int64_t version, const google::protobuf::Message& payload) {
  v1::EventEnvelope e;
  e.set_aggregate_type(type);
  e.set_aggregate_id(id);
  e.set_version(version);
  e.set_command_id(absl::StrCat("cmd-", id, "-", version));
  e.mutable_payload()->PackFrom(payload);
  e.mutable_timestamp()->set_seconds(1700000000 + version);
  return e;
}

// A fresh temp directory, a log (the embedded one under <dir>/log, or Kafka at `brokers`) and a
// unique aggregate type whose topics exist in it: where the projection tests start.
struct TestEvents {
  std::string dir, type, topic;  // `topic`: the type's events topic
  std::unique_ptr<internal::log::Log> log;
};
struct TestEventsOptions {
  std::string brokers;  // empty: the embedded log
  int32_t partitions = 4;
};
inline absl::StatusOr<TestEvents> OpenTestEvents(const std::string& prefix,
                                                 const TestEventsOptions& options = {}) {
  TestEvents out;
  out.dir = MakeTempDir(prefix);
  absl::StatusOr<std::unique_ptr<internal::log::Log>> log =
      options.brokers.empty() ? internal::log::OpenLog({.embedded_dir = out.dir + "/log"})
                              : internal::log::OpenLog({.brokers = options.brokers});
  if (!log.ok()) return log.status();
  out.log = *std::move(log);
  out.type = UniqueName("bank.account");
  internal::AggregateTopics topics = internal::TopicsFor("", out.type);
  out.topic = topics.events;
  absl::StatusOr<int32_t> ensured =
      internal::EnsureTopics(out.log->admin(), topics, options.partitions);
  if (!ensured.ok()) return ensured.status();
  return out;
}

// Produces `records` (key, value) to `topic` with a plain producer; returns where each landed.
inline absl::StatusOr<std::vector<v1::Position>> ProduceRaw(
    internal::log::Log& log, const std::string& topic,
    const std::vector<std::pair<std::string, std::string>>& records) {
  absl::StatusOr<std::unique_ptr<internal::log::Producer>> producer = log.NewProducer({});
  if (!producer.ok()) return producer.status();
  absl::Mutex mu;
  std::vector<v1::Position> positions;
  absl::Status failed;
  for (const auto& [key, value] : records) {
    absl::Status s =
        (*producer)->Produce({.topic = topic, .key = key, .value = value},
                             [&](absl::StatusOr<internal::log::TopicPartitionOffset> r) {
                               absl::MutexLock lock(&mu);
                               if (!r.ok()) {
                                 failed = r.status();
                                 return;
                               }
                               v1::Position& p = positions.emplace_back();
                               p.set_topic(r->tp.topic);
                               p.set_partition(r->tp.partition);
                               p.set_offset(r->offset);
                             });
    if (!s.ok()) return s;
  }
  if (absl::Status s = (*producer)->Flush(absl::Seconds(30)); !s.ok()) return s;
  (*producer)->Close().IgnoreError();
  absl::MutexLock lock(&mu);
  if (!failed.ok()) return failed;
  return positions;
}

// `n` Deposited events of amount 1..n over `accounts` accounts, in version order per account.
inline absl::StatusOr<std::vector<v1::Position>> ProduceDeposits(internal::log::Log& log,
                                                                 const std::string& type,
                                                                 const std::string& topic, int n,
                                                                 int accounts,
                                                                 int first_version = 1) {
  std::vector<std::pair<std::string, std::string>> records;
  for (int i = 0; i < n; ++i) {
    std::string id = absl::StrCat("acct-", i % accounts);
    bank::v1::Deposited d;
    d.set_amount(i + 1);
    records.emplace_back(
        id, MakeEnvelope(type, id, first_version + i / accounts, d).SerializeAsString());
  }
  return ProduceRaw(log, topic, records);
}

// Counts every Deposited event in row "total" (Account.balance) and sums amounts per account.
// Applying any event twice, or losing one, shows in the totals. Amount 13 is poison when
// `poison_13` is set.
inline Projector CounterProjector(const std::string& name, const std::string& type,
                                  bool poison_13 = false) {
  return Projector(name).From(type).On<bank::v1::Deposited>(
      [poison_13](const EventContext& ctx, const bank::v1::Deposited& e,
                  View& view) -> absl::Status {
        if (poison_13 && e.amount() == 13) return absl::InvalidArgumentError("amount 13 refused");
        bank::v1::Account total;
        absl::Status s = view.Get("total", &total);
        if (!s.ok() && !absl::IsNotFound(s)) return s;
        total.set_balance(total.balance() + 1);
        if (s = view.Put("total", total); !s.ok()) return s;
        bank::v1::Account row;
        s = view.Get(ctx.aggregate_id(), &row);
        if (!s.ok() && !absl::IsNotFound(s)) return s;
        row.set_owner(ctx.aggregate_id().value());
        row.set_balance(row.balance() + e.amount());
        return view.Put(ctx.aggregate_id(), row);
      });
}

inline int64_t SumOfAmounts(int n) { return static_cast<int64_t>(n) * (n + 1) / 2; }

}  // namespace leftfold::testing
