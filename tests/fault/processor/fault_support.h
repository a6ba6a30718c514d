// Helpers of the processor fault suite: child processes that can be killed and paused, a seeded
// load driver producing bank commands, a results watcher, and the invariant checker that reads
// the aggregate's four topics (read_committed) and says what, if anything, is broken.
//
//   ChildProcess p = *ChildProcess::Spawn({binary, "--brokers", b}, dir + "/p.log");
//   LoadDriver driver(log, topics.commands, {.seed = 1, .commands = 20000, .rate = 2000});
//   driver.Start();
//   ... p.Signal(SIGKILL); p.WaitExit(absl::Seconds(10)); ...
//   InvariantReport report = CheckInvariants(log, topics, 4, driver.command_ids(), &driver);
//   EXPECT_TRUE(report.ok()) << report.Summary();
//
// Everything here is test code: single-threaded unless a class says otherwise.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "leftfold/v1/envelope.pb.h"
#include "log/log.h"
#include "topology/topics.h"

namespace leftfold::testing::fault {

// A child process (fork+exec via posix_spawn) whose stdout and stderr go to a file. The
// destructor SIGKILLs and reaps it if it still runs, so no test leaves a process behind.
class ChildProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(const std::vector<std::string>& argv,
                                                             const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  // Reaps the child if it has exited (non-blocking). False once it has exited.
  bool Running();
  void Signal(int sig);
  // Waits (polling waitpid) until the child exits; its wait status, or nullopt on timeout.
  std::optional<int> WaitExit(absl::Duration timeout);
  // SIGKILL (SIGCONT first, in case it is stopped) and reap.
  void KillAndReap();
  std::optional<int> wait_status() const { return wait_status_; }
  // "running", "exit 0", "signal 9", ...
  std::string DescribeExit() const;

  std::string ReadLog() const;
  int CountInLog(std::string_view needle) const;
  std::string Tail(int lines) const;

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  std::optional<int> wait_status_;
};

// Partitions a processor child currently owns, from its "partition assigned"/"partition revoked"
// log lines (in order).
std::set<int32_t> OwnedPartitions(const ChildProcess& child);

// Polls `condition` every 20ms until true or `timeout`; `tick` (optional) runs each round (e.g.
// to consume results or supervise children). Returns the condition's last value.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
             const std::function<void()>& tick = nullptr);

struct LoadOptions {
  uint64_t seed = 1;
  // Accounts opened first (one OpenAccount each); the rest are deposits and withdrawals.
  int accounts = 100;
  // Records produced in total (including resubmissions).
  int commands = 20000;
  // Records per second.
  double rate = 2000;
  // Fraction of records that resend an earlier command (same id, same payload).
  double resubmit_fraction = 0.0;
  // Fraction of commands carrying an expected version (half right, half wrong per the model).
  double expected_version_fraction = 0.1;
};

// Produces a seeded stream of bank commands with the idempotent producer, at a steady rate, on
// its own thread; a record whose delivery fails is produced again (so it may land twice, which
// command-id deduplication must absorb). Keeps a sequential model of the accounts, so the
// expected outcome of every command is known when the stream is delivered in order.
// Start/Finish from the test thread; acked()/retries() from any thread.
class LoadDriver {
 public:
  LoadDriver(internal::log::Log& log, std::string commands_topic, LoadOptions options);
  ~LoadDriver();

  void Start();
  // Waits until every record is acknowledged by the log (OK) or `timeout`.
  absl::Status Finish(absl::Duration timeout);

  int64_t acked() const { return acked_.load(); }
  int64_t total() const { return static_cast<int64_t>(stream_.size()); }
  // Produce calls or deliveries that failed and were retried.
  int64_t retries() const { return retries_.load(); }
  // Every distinct command id in the stream.
  const std::set<std::string>& command_ids() const { return command_ids_; }
  // What the sequential model says each command id's outcome is (valid if the log holds the
  // stream in produce order per partition, i.e. retries() == 0).
  const std::map<std::string, v1::CommandResult::Outcome>& model_outcomes() const {
    return model_outcomes_;
  }

 private:
  void Generate();
  void Loop();

  internal::log::Log& log_;
  std::string topic_;
  LoadOptions options_;
  std::vector<v1::CommandEnvelope> stream_;
  std::set<std::string> command_ids_;
  std::map<std::string, v1::CommandResult::Outcome> model_outcomes_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<int64_t> acked_{0};
  std::atomic<int64_t> retries_{0};
  std::string error_;  // set by the thread before done_
};

// Follows the results topic (read_committed, every partition from 0) and counts distinct
// command ids. Test thread only.
class ResultWatcher {
 public:
  ResultWatcher(internal::log::Log& log, std::string results_topic, int32_t partitions);
  // One short poll; returns the number of new records.
  size_t Poll();
  size_t distinct() const { return seen_.size(); }
  bool HasAll(const std::set<std::string>& ids) const;
  // Ids of `ids` not seen yet (at most `limit`).
  std::vector<std::string> Missing(const std::set<std::string>& ids, size_t limit) const;

 private:
  std::unique_ptr<internal::log::Consumer> consumer_;
  std::set<std::string> seen_;
};

// Every record of `topic`, all partitions, up to the read_committed end offsets taken at the
// start of the call.
absl::StatusOr<std::vector<internal::log::Record>> ReadTopic(internal::log::Log& log,
                                                             const std::string& topic,
                                                             int32_t partitions,
                                                             absl::Duration timeout);

struct InvariantReport {
  size_t results = 0;
  size_t events = 0;
  size_t snapshots = 0;
  size_t aggregates = 0;
  size_t duplicate_results = 0;  // result records beyond the first per command id
  size_t violation_count = 0;
  std::vector<std::string> violations;  // the first 50
  std::string read_error;

  bool ok() const { return violation_count == 0 && read_error.empty(); }
  std::string Summary() const;
};

// Reads results, events and snapshots with read_committed and checks, for the command ids the
// driver produced:
//  a. each id has >= 1 result; all results of one id agree (outcome, code, version, event
//     count, event positions);
//  b. per aggregate, event versions are 1, 2, 3, ... in log order, no gap, no repeat;
//  c. the latest snapshot per aggregate equals the fold of its events and has its last version;
//  d. no event for a REJECTED/CONFLICT/FAILED command; an ACCEPTED result's event_count equals
//     the number of events with its command id, and its positions point at those events;
//  e. every event's command id has an ACCEPTED result;
//  f. (only when `model` is given) each id's outcome is the sequential model's outcome.
InvariantReport CheckInvariants(
    internal::log::Log& log, const internal::AggregateTopics& topics, int32_t partitions,
    const std::set<std::string>& command_ids,
    const std::map<std::string, v1::CommandResult::Outcome>* model = nullptr);

}  // namespace leftfold::testing::fault
