// Runs a bank account processor on a Transport for tests, feeds it commands and reads back what
// it wrote to the log. Header-only so the unit (embedded) and kafka suites share it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bank/bank_aggregate.h"
#include "gtest/gtest.h"
#include "leftfold/processor.h"
#include "leftfold/transport.h"
#include "log/log.h"
#include "support/test_env.h"
#include "topology/topics.h"

namespace leftfold::testing {

inline v1::CommandEnvelope BankCommand(const std::string& command_id, const std::string& account,
                                       const google::protobuf::Message& payload,
                                       std::optional<int64_t> expected_version = std::nullopt) {
  v1::CommandEnvelope command;
  command.set_command_id(command_id);
  command.set_aggregate_type(bank::kAccountType);
  command.set_aggregate_id(account);
  command.mutable_payload()->PackFrom(payload);
  if (expected_version) command.set_expected_version(*expected_version);
  return command;
}

inline bank::v1::OpenAccount Open(const std::string& owner, int64_t initial = 0) {
  bank::v1::OpenAccount open;
  open.set_owner(owner);
  open.set_initial_deposit(initial);
  return open;
}
inline bank::v1::Deposit DepositOf(int64_t amount) {
  bank::v1::Deposit d;
  d.set_amount(amount);
  return d;
}
inline bank::v1::Withdraw WithdrawOf(int64_t amount) {
  bank::v1::Withdraw w;
  w.set_amount(amount);
  return w;
}

class ProcessorHarness {
 public:
  // `brokers` empty: the embedded backend in a temp dir.
  explicit ProcessorHarness(const std::string& brokers, int32_t partitions = 2) {
    TransportOptions options;
    options.brokers = brokers;
    options.embedded_dir = MakeTempDir("log");
    options.topic_prefix = UniqueName("t") + ".";
    options.partitions = partitions;
    auto transport = Transport::Open(options);
    EXPECT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    topics_ = internal::TopicsFor(options.topic_prefix, bank::kAccountType);
    state_dir_ = MakeTempDir("state");
  }
  ~ProcessorHarness() { (void)StopProcessor(); }

  Transport& transport() { return *transport_; }
  const internal::AggregateTopics& topics() const { return topics_; }
  const std::string& state_dir() const { return state_dir_; }

  void StartProcessor(ProcessorOptions options = {},
                      AggregateDefinition definition = bank::AccountDefinition()) {
    if (options.state_dir == ProcessorOptions{}.state_dir) options.state_dir = state_dir_;
    auto processor = Processor::Create(transport_, std::move(definition), options);
    ASSERT_TRUE(processor.ok()) << processor.status();
    processor_ = *std::move(processor);
    thread_ = std::thread([this] { run_status_ = processor_->Run(); });
  }

  // Returns what Run returned.
  absl::Status StopProcessor() {
    if (processor_ == nullptr) return absl::OkStatus();
    processor_->Stop();
    thread_.join();
    processor_.reset();
    return run_status_;
  }

  Processor& processor() { return *processor_; }

  void Send(const std::vector<v1::CommandEnvelope>& commands) {
    if (producer_ == nullptr) {
      auto producer = transport_->log_internal().NewProducer({});
      ASSERT_TRUE(producer.ok()) << producer.status();
      producer_ = *std::move(producer);
    }
    for (const v1::CommandEnvelope& command : commands)
      SendRaw(command.aggregate_id(), command.SerializeAsString());
    ASSERT_TRUE(producer_->Flush(absl::Seconds(30)).ok());
  }

  void SendRaw(const std::string& key, const std::string& value) {
    if (producer_ == nullptr) {
      auto producer = transport_->log_internal().NewProducer({});
      ASSERT_TRUE(producer.ok()) << producer.status();
      producer_ = *std::move(producer);
    }
    ASSERT_TRUE(producer_->Produce({.topic = topics_.commands, .key = key, .value = value}).ok());
  }

  // Every record of `topic`, all partitions, once at least `min_count` are there (or the
  // deadline passed: the caller's assertions then show what is missing).
  std::vector<internal::log::Record> ReadAll(const std::string& topic, size_t min_count,
                                             absl::Duration timeout = absl::Seconds(60)) {
    auto& log = transport_->log_internal();
    absl::Time deadline = absl::Now() + timeout;
    std::vector<internal::log::Record> records;
    auto consumer = log.NewConsumer({});
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    std::vector<internal::log::TopicPartitionOffset> assignment;
    for (int32_t p = 0; p < transport_->options().partitions; ++p)
      assignment.push_back({{topic, p}, 0});
    EXPECT_TRUE((*consumer)->Assign(assignment).ok());
    while (absl::Now() < deadline) {
      auto batch = (*consumer)->Poll(10000, absl::Milliseconds(100));
      if (!batch.ok()) continue;
      for (auto& r : *batch) records.push_back(std::move(r));
      if (records.size() >= min_count) {
        // Drain what else is already there, then stop.
        auto rest = (*consumer)->Poll(10000, absl::Milliseconds(200));
        if (rest.ok()) {
          for (auto& r : *rest) records.push_back(std::move(r));
        }
        break;
      }
    }
    (void)(*consumer)->Close();
    return records;
  }

  // Results by command id (the last one for each id); all_results() then has every one, in log
  // order per partition.
  std::map<std::string, v1::CommandResult> Results(size_t min_count) {
    std::map<std::string, v1::CommandResult> out;
    all_results_.clear();
    for (const auto& r : ReadAll(topics_.results, min_count)) {
      v1::CommandResult result;
      EXPECT_TRUE(result.ParseFromString(r.value));
      out[result.command_id()] = result;
      all_results_.push_back(result);
    }
    return out;
  }
  const std::vector<v1::CommandResult>& all_results() const { return all_results_; }

  std::vector<v1::EventEnvelope> Events(size_t min_count) {
    std::vector<v1::EventEnvelope> out;
    for (const auto& r : ReadAll(topics_.events, min_count)) {
      v1::EventEnvelope e;
      EXPECT_TRUE(e.ParseFromString(r.value));
      out.push_back(e);
    }
    return out;
  }

  // Latest snapshot per aggregate id.
  std::map<std::string, v1::Snapshot> Snapshots(size_t min_count) {
    std::map<std::string, v1::Snapshot> out;
    for (const auto& r : ReadAll(topics_.snapshots, min_count)) {
      v1::Snapshot s;
      EXPECT_TRUE(s.ParseFromString(r.value));
      if (!out.contains(s.aggregate_id()) || out[s.aggregate_id()].version() < s.version()) {
        out[s.aggregate_id()] = s;
      }
    }
    return out;
  }

 private:
  std::shared_ptr<Transport> transport_;
  internal::AggregateTopics topics_;
  std::string state_dir_;
  std::unique_ptr<internal::log::Producer> producer_;
  std::unique_ptr<Processor> processor_;
  std::thread thread_;
  absl::Status run_status_;
  std::vector<v1::CommandResult> all_results_;
};

}  // namespace leftfold::testing
