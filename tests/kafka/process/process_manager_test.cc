// The process manager's group membership on the real broker. A process manager killed with
// SIGKILL leaves its member behind in the group; restarted with the same instance id (static
// membership, group.instance.id) it takes its partitions straight back, while a restarted
// dynamic member waits until the broker expires the dead one (session.timeout.ms).
// The process manager runs in a child process (pm_child.cc) so it can really be killed.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "../../unit/cli/subprocess.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "leftfold/v1/envelope.pb.h"
#include "log/log.h"
#include "support/test_env.h"
#include "topology/topics.h"

namespace leftfold::testing {
namespace {

namespace lg = internal::log;

// The first start creates topics and joins a new group.
constexpr absl::Duration kFirstStartTimeout = absl::Seconds(90);
// The broker's default session timeout is 45s; a static member must resume well inside it.
constexpr absl::Duration kStaticResumeBound = absl::Seconds(15);
// The dynamic control runs with a short session timeout, so it costs seconds, not a minute.
constexpr int kControlSessionTimeoutMs = 10000;

class ProcessManagerRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(TestBrokers().empty()) << "LEFTFOLD_TEST_BROKERS is not set";
    dir_ = MakeTempDir("kafka_process");
    prefix_ = UniqueName("pm") + ".";
    auto log = lg::OpenLog({.brokers = TestBrokers()});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    source_ = internal::TopicsFor(prefix_, "pm.source");
    target_ = internal::TopicsFor(prefix_, "pm.target");
    ASSERT_TRUE(internal::EnsureTopics(log_->admin(), source_, 3).ok());
    ASSERT_TRUE(internal::EnsureTopics(log_->admin(), target_, 3).ok());
    auto producer = log_->NewProducer({});
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
    auto reader = log_->NewConsumer({.isolation = lg::Isolation::kReadUncommitted});
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
    ASSERT_TRUE(reader_
                    ->Assign({{{target_.commands, 0}, 0},
                              {{target_.commands, 1}, 0},
                              {{target_.commands, 2}, 0}})
                    .ok());
  }

  void TearDown() override {
    if (child_ != nullptr) child_->Terminate(absl::Seconds(30));
    if (HasFailure()) {
      RunResult logs =
          RunProcess({"/bin/sh", "-c", "tail -n 30 " + dir_ + "/pm-*.log"}, absl::Seconds(10));
      std::fprintf(stderr, "---- process manager logs ----\n%s\n", logs.out.c_str());
    }
  }

  void StartChild(const std::string& instance_id, int session_timeout_ms = 0) {
    ++starts_;
    std::vector<std::string> argv = {LEFTFOLD_PM_CHILD, TestBrokers(), prefix_, instance_id};
    if (session_timeout_ms > 0) argv.push_back(absl::StrCat(session_timeout_ms));
    child_ = std::make_unique<Background>(argv, absl::StrCat(dir_, "/pm-", starts_, ".log"));
    ASSERT_GT(child_->pid(), 0);
  }

  void Kill9() {
    kill(child_->pid(), SIGKILL);
    EXPECT_EQ(child_->Terminate(absl::Seconds(30)), 128 + SIGKILL);
  }

  // One StringValue event of aggregate `id` on the source's events topic.
  void ProduceEvent(const std::string& id) {
    v1::EventEnvelope envelope;
    envelope.set_aggregate_type("pm.source");
    envelope.set_aggregate_id(id);
    envelope.set_version(1);
    google::protobuf::StringValue value;
    value.set_value(id);
    envelope.mutable_payload()->PackFrom(value);
    ASSERT_TRUE(
        producer_
            ->Produce({.topic = source_.events, .key = id, .value = envelope.SerializeAsString()})
            .ok());
    ASSERT_TRUE(producer_->Flush(absl::Seconds(30)).ok());
  }

  // Waits until a command for aggregate `id` is on the target's commands topic; returns how
  // long it took, or InfiniteDuration when `timeout` passed first. Looks for that key, not a
  // count: delivery is at least once, so a killed process manager may re-send older commands.
  absl::Duration AwaitCommandFor(const std::string& id, absl::Duration timeout) {
    absl::Time start = absl::Now();
    while (absl::Now() - start < timeout) {
      absl::StatusOr<std::vector<lg::Record>> batch = reader_->Poll(100, absl::Milliseconds(50));
      if (batch.ok()) {
        for (const lg::Record& record : *batch) {
          if (record.key == id) return absl::Now() - start;
        }
      }
    }
    return absl::InfiniteDuration();
  }

  std::string dir_;
  std::string prefix_;
  int starts_ = 0;
  std::unique_ptr<lg::Log> log_;
  std::unique_ptr<lg::Producer> producer_;
  std::unique_ptr<lg::Consumer> reader_;  // the target's commands topic, no group
  internal::AggregateTopics source_;
  internal::AggregateTopics target_;
  std::unique_ptr<Background> child_;
};

TEST_F(ProcessManagerRestartTest, StaticMemberResumesPromptlyAfterSigkill) {
  ASSERT_NO_FATAL_FAILURE(StartChild("pm-1"));
  ASSERT_NO_FATAL_FAILURE(ProduceEvent("a"));
  ASSERT_LT(AwaitCommandFor("a", kFirstStartTimeout), absl::InfiniteDuration())
      << "the first event never became a command";
  ASSERT_NO_FATAL_FAILURE(Kill9());

  ASSERT_NO_FATAL_FAILURE(StartChild("pm-1"));
  ASSERT_NO_FATAL_FAILURE(ProduceEvent("b"));
  absl::Duration took = AwaitCommandFor("b", absl::Seconds(90));
  std::fprintf(stderr, "static member: SIGKILL, restart to next command: %s\n",
               absl::FormatDuration(took).c_str());
  EXPECT_LT(took, kStaticResumeBound) << "the restarted process manager waited for the session "
                                         "timeout: is group.instance.id set?";
  EXPECT_EQ(child_->Terminate(absl::Seconds(30)), 0);
}

// The control: without an instance id the same restart waits for the dead member's session to
// expire, which is what makes the test above meaningful.
TEST_F(ProcessManagerRestartTest, DynamicMemberWaitsForTheSessionTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartChild("-", kControlSessionTimeoutMs));
  ASSERT_NO_FATAL_FAILURE(ProduceEvent("a"));
  ASSERT_LT(AwaitCommandFor("a", kFirstStartTimeout), absl::InfiniteDuration())
      << "the first event never became a command";
  ASSERT_NO_FATAL_FAILURE(Kill9());

  ASSERT_NO_FATAL_FAILURE(StartChild("-", kControlSessionTimeoutMs));
  ASSERT_NO_FATAL_FAILURE(ProduceEvent("b"));
  absl::Duration took = AwaitCommandFor("b", absl::Seconds(90));
  std::fprintf(stderr, "dynamic member: SIGKILL, restart to next command: %s\n",
               absl::FormatDuration(took).c_str());
  ASSERT_LT(took, absl::InfiniteDuration());
  // Most of the session timeout passes before the group rebalances (less what the restart took).
  EXPECT_GT(took, absl::Milliseconds(kControlSessionTimeoutMs / 2));
  EXPECT_EQ(child_->Terminate(absl::Seconds(30)), 0);
}

}  // namespace
}  // namespace leftfold::testing
