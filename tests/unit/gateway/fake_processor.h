// A stand-in for the aggregate processor, for gateway tests: reads `T.commands` (every partition,
// from the start) and answers each command with a CommandResult on `T.results` (and events on
// `T.events`), deduplicating by command id like the real one (a duplicate re-publishes the
// original result).
//
// The command's payload (a google.protobuf.StringValue) says what to answer:
//   "accept" / "accept:N"     ACCEPTED with N events (default 1)
//   "reject:CODE"             REJECTED with canonical CODE, message "rejected by test"
//   "conflict"                CONFLICT at the aggregate's current version
//   "fail"                    FAILED, code 13
//   "hold"                    nothing until Release(command_id), then ACCEPTED with 1 event
// metadata["echo"] is copied into the result's message (to make results big).
//
// Owns one thread; Start/Stop/Release from the test thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/any.pb.h"
#include "leftfold/v1/envelope.pb.h"
#include "log/log.h"
#include "topology/topics.h"

namespace leftfold::testing {

class FakeProcessor {
 public:
  FakeProcessor(internal::log::Log& log, const std::string& prefix, const std::string& type)
      : log_(log), topics_(internal::TopicsFor(prefix, type)) {}
  ~FakeProcessor() { Stop(); }

  absl::Status Start();
  void Stop();
  void Release(const std::string& command_id);
  // Commands read (duplicates included) / distinct command ids answered.
  int commands_seen() const { return seen_.load(); }
  int distinct_answered() const;

  static google::protobuf::Any Payload(const std::string& what);

 private:
  void Run();
  void Handle(const v1::CommandEnvelope& c);
  void Answer(const v1::CommandEnvelope& c, bool released);
  void Publish(const v1::CommandResult& r);

  internal::log::Log& log_;
  internal::AggregateTopics topics_;
  std::unique_ptr<internal::log::Consumer> consumer_;
  std::unique_ptr<internal::log::Producer> producer_;
  std::atomic<bool> stop_{false};
  std::atomic<int> seen_{0};
  std::thread thread_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, v1::CommandResult> answered_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, v1::CommandEnvelope> held_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> to_release_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int64_t> versions_;  // processor thread only
};

}  // namespace leftfold::testing
