// The bank processor binary under faults: real child processes SIGKILLed, SIGSTOPped, their
// state wiped, the broker restarted, all while a load driver in this process produces a seeded
// command stream. After each scenario every produced command must have a result and the topics,
// read with read_committed, must satisfy CheckInvariants (fault_support.h).
//
// Scenarios 1-4 run against $LEFTFOLD_TEST_BROKERS; scenario 5 starts its own broker (it has to
// stop and start it) on $LEFTFOLD_FAULT_BROKER_PORT (default 19792).
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bank/bank_aggregate.h"
#include "fault_support.h"
#include "gtest/gtest.h"
#include "leftfold/transport.h"
#include "log/log.h"
#include "support/test_env.h"
#include "topology/topics.h"

namespace leftfold::testing::fault {
namespace {

constexpr int32_t kPartitions = 4;
constexpr char kProcessorBinary[] = LEFTFOLD_BANK_PROCESSOR;
constexpr char kSourceDir[] = LEFTFOLD_SOURCE_DIR;

std::string Seconds(absl::Duration d) { return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d)); }

class ProcessorFaultTest : public ::testing::Test {
 protected:
  void TearDown() override {
    bool failed = HasFailure();
    for (auto& child : children_) {
      bool running = child->Running();
      if (failed || !running) {
        std::fprintf(stderr, "---- %s (pid %d, %s) last lines ----\n%s\n",
                     child->log_path().c_str(), child->pid(), child->DescribeExit().c_str(),
                     child->Tail(25).c_str());
      }
      child->KillAndReap();
    }
    driver_.reset();
    watcher_.reset();
    transport_.reset();
    if (!broker_data_.empty()) {
      RunBrokerScript("stop", absl::Seconds(60));
      if (!failed) std::filesystem::remove_all(broker_data_);
    }
    if (!failed && !dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Connects to `brokers`, creates this test's topics (unique prefix) and its scratch dir.
  void Open(const std::string& brokers) {
    ASSERT_FALSE(brokers.empty()) << "LEFTFOLD_TEST_BROKERS is not set (tools/test sets it)";
    brokers_ = brokers;
    prefix_ = UniqueName("fault") + ".";
    if (dir_.empty()) dir_ = MakeTempDir("fault");
    TransportOptions options;
    options.brokers = brokers;
    options.topic_prefix = prefix_;
    options.partitions = kPartitions;
    auto transport = Transport::Open(options);
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    topics_ = internal::TopicsFor(prefix_, bank::kAccountType);
    auto created = internal::EnsureTopics(log().admin(), topics_, kPartitions);
    ASSERT_TRUE(created.ok()) << created.status();
    // Produce only once every partition answers on its leader: an idempotent producer's first
    // request to a partition the broker has not finished creating fails, a later one is
    // accepted with a non-zero first sequence, and the first request's records are lost while
    // reported delivered (KAFKA-15591; seen here: commands topic partition 0 began at
    // baseSequence 3). ListOffsets on every partition is that readiness check.
    for (const std::string& topic :
         {topics_.commands, topics_.events, topics_.results, topics_.snapshots}) {
      ASSERT_TRUE(WaitFor(
          [&] {
            auto ends = log().admin().EndOffsets(topic, internal::log::Isolation::kReadUncommitted);
            return ends.ok() && ends->size() == static_cast<size_t>(kPartitions);
          },
          absl::Seconds(30)))
          << topic << " not ready";
    }
    watcher_ = std::make_unique<ResultWatcher>(log(), topics_.results, kPartitions);
  }

  internal::log::Log& log() { return transport_->log_internal(); }

  LoadDriver& StartLoad(LoadOptions options) {
    driver_ = std::make_unique<LoadDriver>(log(), topics_.commands, options);
    driver_->Start();
    started_ = absl::Now();
    return *driver_;
  }

  // Starts a processor child; its output goes to <dir>/<instance>-<n>.log.
  ChildProcess* StartProcessor(const std::string& instance_id, const std::string& state_dir,
                               const std::vector<std::string>& extra_args = {}) {
    std::vector<std::string> argv = {
        kProcessorBinary, "--brokers", brokers_, "--state-dir", state_dir, "--group",
        prefix_ + "processor", "--instance-id", instance_id, "--topic-prefix", prefix_,
        "--partitions", absl::StrCat(kPartitions), "--transaction-timeout", "10", "--max-batch",
        "200",
        // Fast takeovers: a dead or paused member leaves the group after 6s.
        "--kafka-property", "session.timeout.ms=6000", "--kafka-property",
        "heartbeat.interval.ms=500"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    std::string log_path = absl::StrCat(dir_, "/", instance_id, "-", children_.size(), ".log");
    auto child = ChildProcess::Spawn(argv, log_path);
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return nullptr;
    children_.push_back(*std::move(child));
    return children_.back().get();
  }

  // Polls results until `count` distinct command ids have one (or the timeout).
  bool AwaitResults(size_t count, absl::Duration timeout,
                    const std::function<void()>& tick = nullptr) {
    return WaitFor([&] { return watcher_->distinct() >= count; }, timeout,
                   [&] {
                     watcher_->Poll();
                     if (tick) tick();
                   });
  }

  // Waits until every command id of the driver has a result; `tick` may supervise children and
  // returns false to give up.
  void AwaitAllResults(absl::Duration timeout, const std::function<bool()>& tick = nullptr) {
    absl::Time last_report = absl::Now();
    bool gave_up = false;
    bool all = WaitFor(
        [&] { return gave_up || watcher_->HasAll(driver_->command_ids()); }, timeout,
        [&] {
          while (watcher_->Poll() > 0) {
          }
          if (tick && !tick()) gave_up = true;
          if (absl::Now() - last_report > absl::Seconds(10)) {
            last_report = absl::Now();
            std::fprintf(stderr, "[fault] %s: %zu/%zu results, %lld/%lld commands acked\n",
                         Seconds(absl::Now() - started_).c_str(), watcher_->distinct(),
                         driver_->command_ids().size(), static_cast<long long>(driver_->acked()),
                         static_cast<long long>(driver_->total()));
          }
        });
    ASSERT_FALSE(gave_up);
    ASSERT_TRUE(all) << "missing results, e.g. "
                     << absl::StrJoin(watcher_->Missing(driver_->command_ids(), 10), ", ") << " ("
                     << watcher_->distinct() << "/" << driver_->command_ids().size()
                     << " seen, driver acked " << driver_->acked() << "/" << driver_->total()
                     << ")";
    std::fprintf(stderr, "[fault] all %zu commands have results after %s\n",
                 driver_->command_ids().size(), Seconds(absl::Now() - started_).c_str());
  }

  // SIGTERM and wait for a clean exit.
  void StopGracefully(ChildProcess* child) {
    if (!child->Running()) return;
    child->Signal(SIGTERM);
    std::optional<int> status = child->WaitExit(absl::Seconds(60));
    ASSERT_TRUE(status.has_value()) << child->log_path() << " did not stop on SIGTERM";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << child->log_path() << ": " << child->DescribeExit() << "\n"
        << child->Tail(20);
  }

  void Kill9(ChildProcess* child) {
    ASSERT_TRUE(child->Running()) << child->log_path() << " exited early: " << child->DescribeExit()
                                  << "\n"
                                  << child->Tail(20);
    child->Signal(SIGKILL);
    std::optional<int> status = child->WaitExit(absl::Seconds(10));
    ASSERT_TRUE(status.has_value() && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
        << child->DescribeExit();
  }

  void CheckAll() {
    ASSERT_TRUE(driver_->Finish(absl::Seconds(60)).ok());
    bool use_model = driver_->retries() == 0;
    absl::Time start = absl::Now();
    InvariantReport report = CheckInvariants(log(), topics_, kPartitions, driver_->command_ids(),
                                             use_model ? &driver_->model_outcomes() : nullptr);
    std::fprintf(stderr, "[fault] invariants (%s, model check %s, driver retries %lld): %s\n",
                 Seconds(absl::Now() - start).c_str(), use_model ? "on" : "off",
                 static_cast<long long>(driver_->retries()), report.Summary().c_str());
    EXPECT_TRUE(report.ok()) << report.Summary();
    EXPECT_EQ(report.results - report.duplicate_results, driver_->command_ids().size());
    EXPECT_GT(report.events, 0u);
  }

  // tools/kafka/broker <command> for this test's own broker; waits for the script to finish.
  void RunBrokerScript(const std::string& command, absl::Duration timeout) {
    std::vector<std::string> argv = {"/bin/bash",
                                     absl::StrCat(kSourceDir, "/tools/kafka/broker"),
                                     command,
                                     "--port",
                                     absl::StrCat(broker_port_),
                                     "--data",
                                     broker_data_};
    auto child = ChildProcess::Spawn(argv, absl::StrCat(dir_, "/broker-script.log"));
    ASSERT_TRUE(child.ok()) << child.status();
    std::optional<int> status = (*child)->WaitExit(timeout);
    ASSERT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "broker " << command << ": " << (*child)->DescribeExit() << "\n"
        << (*child)->Tail(30);
  }

  std::string brokers_;
  std::string prefix_;
  std::string dir_;
  std::shared_ptr<Transport> transport_;
  internal::AggregateTopics topics_;
  std::unique_ptr<ResultWatcher> watcher_;
  std::unique_ptr<LoadDriver> driver_;
  std::vector<std::unique_ptr<ChildProcess>> children_;
  absl::Time started_ = absl::Now();
  int broker_port_ = 0;
  std::string broker_data_;
};

// 1. kill -9 during sustained load; restart with the same instance id and state dir.
TEST_F(ProcessorFaultTest, KillAndRestartUnderLoad) {
  ASSERT_NO_FATAL_FAILURE(Open(TestBrokers()));
  std::string state = absl::StrCat(dir_, "/state-a");
  ChildProcess* a = StartProcessor("a", state);
  LoadDriver& driver = StartLoad(
      {.seed = 101, .accounts = 100, .commands = 24000, .rate = 2500, .resubmit_fraction = 0.05});
  ASSERT_TRUE(AwaitResults(driver.command_ids().size() / 3, absl::Seconds(90)));
  int64_t acked_at_kill = driver.acked();
  ASSERT_NO_FATAL_FAILURE(Kill9(a));
  std::fprintf(stderr, "[fault] killed a at %zu results, %lld acked\n", watcher_->distinct(),
               static_cast<long long>(acked_at_kill));
  EXPECT_LT(acked_at_kill, driver.total()) << "the kill should land while load is still coming";
  ChildProcess* a2 = StartProcessor("a", state);
  ASSERT_NO_FATAL_FAILURE(AwaitAllResults(absl::Seconds(180)));
  ASSERT_NO_FATAL_FAILURE(StopGracefully(a2));
  CheckAll();
}

// 1b. The same with two workers in the instance (ProcessorOptions::workers): both workers' open
// transactions die with the process, and the restarted instance's workers fence them.
TEST_F(ProcessorFaultTest, TwoWorkersKilledAndRestartedUnderLoad) {
  ASSERT_NO_FATAL_FAILURE(Open(TestBrokers()));
  std::string state = absl::StrCat(dir_, "/state-a");
  ChildProcess* a = StartProcessor("a", state, {"--workers", "2"});
  LoadDriver& driver = StartLoad(
      {.seed = 111, .accounts = 100, .commands = 24000, .rate = 2500, .resubmit_fraction = 0.05});
  ASSERT_TRUE(AwaitResults(driver.command_ids().size() / 3, absl::Seconds(90)));
  int64_t acked_at_kill = driver.acked();
  ASSERT_NO_FATAL_FAILURE(Kill9(a));
  EXPECT_LT(acked_at_kill, driver.total()) << "the kill should land while load is still coming";
  ChildProcess* a2 = StartProcessor("a", state, {"--workers", "2"});
  ASSERT_NO_FATAL_FAILURE(AwaitAllResults(absl::Seconds(180)));
  ASSERT_NO_FATAL_FAILURE(StopGracefully(a2));
  CheckAll();
}

// 2. Two instances; kill -9 one; the other takes over its partitions and finishes.
TEST_F(ProcessorFaultTest, SurvivorTakesOverKilledInstance) {
  ASSERT_NO_FATAL_FAILURE(Open(TestBrokers()));
  ChildProcess* a = StartProcessor("a", absl::StrCat(dir_, "/state-a"));
  ChildProcess* b = StartProcessor("b", absl::StrCat(dir_, "/state-b"));
  LoadDriver& driver = StartLoad(
      {.seed = 202, .accounts = 100, .commands = 24000, .rate = 2500, .resubmit_fraction = 0.05});
  ASSERT_TRUE(WaitFor(
      [&] {
        std::set<int32_t> pa = OwnedPartitions(*a), pb = OwnedPartitions(*b);
        return !pa.empty() && !pb.empty() && pa.size() + pb.size() == kPartitions;
      },
      absl::Seconds(60), [&] { watcher_->Poll(); }))
      << "both instances should own partitions";
  ASSERT_TRUE(AwaitResults(driver.command_ids().size() / 3, absl::Seconds(90)));
  std::set<int32_t> victim = OwnedPartitions(*a);
  ASSERT_NO_FATAL_FAILURE(Kill9(a));
  absl::Time killed = absl::Now();
  std::fprintf(stderr, "[fault] killed a (partitions %s) at %zu results, %lld acked\n",
               absl::StrJoin(victim, ",").c_str(), watcher_->distinct(),
               static_cast<long long>(driver.acked()));
  ASSERT_TRUE(WaitFor([&] { return OwnedPartitions(*b).size() == kPartitions; }, absl::Seconds(60),
                      [&] { watcher_->Poll(); }))
      << "b should take over every partition";
  std::fprintf(stderr, "[fault] b owns all partitions %s after the kill\n",
               Seconds(absl::Now() - killed).c_str());
  ASSERT_NO_FATAL_FAILURE(AwaitAllResults(absl::Seconds(180), [&] {
    if (b->Running()) return true;
    ADD_FAILURE() << "b exited: " << b->DescribeExit();
    return false;
  }));
  ASSERT_NO_FATAL_FAILURE(StopGracefully(b));
  CheckAll();
}

// 3. kill -9, wipe the state dir, restart: the instance rebuilds its stores from the log.
TEST_F(ProcessorFaultTest, WipedStateRebuildsFromLog) {
  ASSERT_NO_FATAL_FAILURE(Open(TestBrokers()));
  std::string state = absl::StrCat(dir_, "/state-a");
  ChildProcess* a = StartProcessor("a", state);
  // Many resubmissions: ids decided before the wipe must still be answered with their original
  // result, from the dedup index rebuilt out of the results topic.
  LoadDriver& driver = StartLoad(
      {.seed = 303, .accounts = 100, .commands = 24000, .rate = 2500, .resubmit_fraction = 0.15});
  ASSERT_TRUE(AwaitResults(driver.command_ids().size() / 3, absl::Seconds(90)));
  ASSERT_NO_FATAL_FAILURE(Kill9(a));
  std::error_code ec;
  ASSERT_TRUE(std::filesystem::exists(state));
  std::filesystem::remove_all(state, ec);
  ASSERT_FALSE(ec) << ec.message();
  std::fprintf(stderr, "[fault] killed a and wiped %s at %zu results\n", state.c_str(),
               watcher_->distinct());
  ChildProcess* a2 = StartProcessor("a", state);
  ASSERT_NO_FATAL_FAILURE(AwaitAllResults(absl::Seconds(180)));
  EXPECT_EQ(OwnedPartitions(*a2).size(), static_cast<size_t>(kPartitions));
  ASSERT_NO_FATAL_FAILURE(StopGracefully(a2));
  CheckAll();
}

// 4. A zombie: SIGSTOP an instance past its transaction timeout while the other takes over,
// then SIGCONT it. Nothing it writes afterwards may become visible.
TEST_F(ProcessorFaultTest, PausedZombieIsFenced) {
  ASSERT_NO_FATAL_FAILURE(Open(TestBrokers()));
  ChildProcess* zombie = StartProcessor("zombie", absl::StrCat(dir_, "/state-z"));
  ChildProcess* b = StartProcessor("b", absl::StrCat(dir_, "/state-b"));
  LoadDriver& driver = StartLoad(
      {.seed = 404, .accounts = 100, .commands = 30000, .rate = 1000, .resubmit_fraction = 0.05});
  ASSERT_TRUE(WaitFor(
      [&] {
        std::set<int32_t> pz = OwnedPartitions(*zombie), pb = OwnedPartitions(*b);
        return !pz.empty() && !pb.empty() && pz.size() + pb.size() == kPartitions;
      },
      absl::Seconds(60), [&] { watcher_->Poll(); }));
  ASSERT_TRUE(AwaitResults(driver.command_ids().size() / 5, absl::Seconds(90)));
  std::set<int32_t> zombie_partitions = OwnedPartitions(*zombie);
  zombie->Signal(SIGSTOP);
  absl::Time stopped = absl::Now();
  size_t results_at_stop = watcher_->distinct();
  std::fprintf(stderr, "[fault] SIGSTOP zombie (partitions %s) at %zu results\n",
               absl::StrJoin(zombie_partitions, ",").c_str(), results_at_stop);
  // Paused past its transaction timeout (10s) plus the broker's abort sweep (10s), while b takes
  // over and processes.
  ASSERT_TRUE(WaitFor(
      [&] {
        return OwnedPartitions(*b).size() == kPartitions &&
               watcher_->distinct() >= results_at_stop + 3000 &&
               absl::Now() - stopped > absl::Seconds(22);
      },
      absl::Seconds(120), [&] { watcher_->Poll(); }))
      << "b owns " << absl::StrJoin(OwnedPartitions(*b), ",") << ", results "
      << watcher_->distinct();
  std::fprintf(stderr, "[fault] b took over; SIGCONT zombie after %s, at %zu results\n",
               Seconds(absl::Now() - stopped).c_str(), watcher_->distinct());
  int zombie_lines_before = static_cast<int>(zombie->ReadLog().size());
  zombie->Signal(SIGCONT);
  // The zombie must notice: it exits (fenced) or loses its partitions (rebalance).
  bool noticed = WaitFor(
      [&] {
        if (!zombie->Running()) return true;
        std::string after = zombie->ReadLog().substr(static_cast<size_t>(zombie_lines_before));
        return after.find("partition revoked") != std::string::npos ||
               after.find("partition assigned") != std::string::npos;
      },
      absl::Seconds(60), [&] { watcher_->Poll(); });
  std::string zombie_after = zombie->ReadLog().substr(static_cast<size_t>(zombie_lines_before));
  std::fprintf(stderr, "[fault] zombie after SIGCONT (%s):\n%s\n", zombie->DescribeExit().c_str(),
               zombie_after.substr(0, 4000).c_str());
  EXPECT_TRUE(noticed) << "the zombie neither exited nor rebalanced after SIGCONT";
  ASSERT_NO_FATAL_FAILURE(AwaitAllResults(absl::Seconds(180)));
  ASSERT_NO_FATAL_FAILURE(StopGracefully(b));
  if (zombie->Running()) {
    ASSERT_NO_FATAL_FAILURE(StopGracefully(zombie));
  }
  RecordProperty("zombie_exit", zombie->DescribeExit());
  CheckAll();
}

// 5. Restart the broker under load. This test runs its own broker, which it stops and starts.
TEST_F(ProcessorFaultTest, BrokerRestartUnderLoad) {
  const char* port = std::getenv("LEFTFOLD_FAULT_BROKER_PORT");
  broker_port_ = port != nullptr ? std::atoi(port) : 19792;
  dir_ = MakeTempDir("fault");
  broker_data_ = absl::StrCat(dir_, "/kafka");
  absl::Time t0 = absl::Now();
  ASSERT_NO_FATAL_FAILURE(RunBrokerScript("start", absl::Seconds(180)));
  std::fprintf(stderr, "[fault] own broker on port %d up in %s\n", broker_port_,
               Seconds(absl::Now() - t0).c_str());
  ASSERT_NO_FATAL_FAILURE(Open(absl::StrCat("127.0.0.1:", broker_port_)));
  std::string state = absl::StrCat(dir_, "/state-a");
  ChildProcess* a = StartProcessor("a", state);
  LoadDriver& driver = StartLoad(
      {.seed = 505, .accounts = 100, .commands = 24000, .rate = 1500, .resubmit_fraction = 0.05});
  ASSERT_TRUE(AwaitResults(driver.command_ids().size() / 4, absl::Seconds(90)));
  std::fprintf(stderr, "[fault] restarting the broker at %zu results, %lld acked\n",
               watcher_->distinct(), static_cast<long long>(driver.acked()));
  absl::Time down = absl::Now();
  ASSERT_NO_FATAL_FAILURE(RunBrokerScript("stop", absl::Seconds(90)));
  ASSERT_NO_FATAL_FAILURE(RunBrokerScript("start", absl::Seconds(180)));
  std::fprintf(stderr, "[fault] broker back after %s, %lld acked\n",
               Seconds(absl::Now() - down).c_str(), static_cast<long long>(driver.acked()));
  // The test supervises like systemd would: a processor that exits is started again.
  int restarts = 0;
  ChildProcess* current = a;
  ASSERT_NO_FATAL_FAILURE(AwaitAllResults(absl::Seconds(300), [&] {
    if (current->Running()) return true;
    ++restarts;
    std::fprintf(stderr, "[fault] processor exited (%s); restarting it. Last lines:\n%s\n",
                 current->DescribeExit().c_str(), current->Tail(15).c_str());
    current = StartProcessor("a", state);
    return current != nullptr && restarts < 20;
  }));
  std::fprintf(stderr, "[fault] processor restarts after the broker restart: %d\n", restarts);
  RecordProperty("processor_restarts", restarts);
  ASSERT_NO_FATAL_FAILURE(StopGracefully(current));
  CheckAll();
}

}  // namespace
}  // namespace leftfold::testing::fault
