// A projector with an instance id is a static Kafka group member: killed and restarted with the
// same id, it gets its partitions back at once. Without the id the restart would wait until the
// killed member's session expires (librdkafka's session.timeout.ms, 45 s by default), because a
// killed process never leaves the group.
//
// The first incarnation runs in a child process (this binary, re-executed on a disabled helper
// test) that applies the events and then kills itself with SIGKILL: a real crash, no LeaveGroup.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "projection/runner.h"
#include "store/rocks_view_store.h"
#include "support/test_env.h"
#include "unit/projection/projection_test_util.h"

namespace leftfold::internal::projection {
namespace {

using leftfold::testing::CounterProjector;

// "<type>|<name>|<dir>|<topic>:<partition>:<offset>,..." for the child.
constexpr char kChildEnv[] = "LEFTFOLD_TEST_PROJECTOR_CHILD";
constexpr char kInstanceId[] = "instance-1";
// librdkafka's default session.timeout.ms, which the kafka backend does not change.
constexpr absl::Duration kSessionTimeout = absl::Seconds(45);

int64_t Total(const View& view) {
  auto row = view.Get<bank::v1::Account>("total");
  return row.ok() ? row->balance() : 0;
}

std::string EncodePositions(const std::vector<v1::Position>& positions) {
  std::string out;
  for (const v1::Position& p : positions) {
    absl::StrAppend(&out, out.empty() ? "" : ",", p.topic(), ":", p.partition(), ":", p.offset());
  }
  return out;
}

std::vector<v1::Position> DecodePositions(absl::string_view in) {
  std::vector<v1::Position> out;
  for (absl::string_view item : absl::StrSplit(in, ',', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(item, ':');
    if (parts.size() != 3) continue;
    v1::Position& p = out.emplace_back();
    int32_t partition = 0;
    int64_t offset = 0;
    (void)absl::SimpleAtoi(parts[1], &partition);
    (void)absl::SimpleAtoi(parts[2], &offset);
    p.set_topic(parts[0]);
    p.set_partition(partition);
    p.set_offset(offset);
  }
  return out;
}

// The first incarnation; run only by RestartWithSameInstanceIdGetsPartitionsAtOnce.
TEST(ProjectorStaticMemberTest, DISABLED_ChildAppliesThenCrashes) {
  const char* spec = std::getenv(kChildEnv);
  ASSERT_NE(spec, nullptr) << "a helper of RestartWithSameInstanceIdGetsPartitionsAtOnce";
  std::vector<std::string> fields = absl::StrSplit(spec, '|');
  ASSERT_EQ(fields.size(), 4u);
  auto log = log::OpenLog({.brokers = leftfold::testing::TestBrokers()});
  ASSERT_TRUE(log.ok()) << log.status();
  auto store = store::RocksViewStore::Open(fields[2], fields[1]);
  ASSERT_TRUE(store.ok()) << store.status();
  Runner runner(**log, CounterProjector(fields[1], fields[0]), **store,
                {.max_batch = 100, .instance_id = kInstanceId});
  ASSERT_TRUE(runner.Start().ok());
  absl::Status s = runner.WaitFor(DecodePositions(fields[3]), absl::Now() + absl::Seconds(60));
  ASSERT_TRUE(s.ok()) << s;
  std::raise(SIGKILL);  // a crash: no commit of anything more, no LeaveGroup
}

TEST(ProjectorStaticMemberTest, RestartWithSameInstanceIdGetsPartitionsAtOnce) {
  ASSERT_FALSE(leftfold::testing::TestBrokers().empty()) << "LEFTFOLD_TEST_BROKERS is not set";
  auto events = leftfold::testing::OpenTestEvents(
      "staticprojector", {.brokers = leftfold::testing::TestBrokers(), .partitions = 3});
  ASSERT_TRUE(events.ok()) << events.status();
  const std::string type = events->type, topic = events->topic, dir = events->dir;
  internal::log::Log& log = *events->log;
  const std::string name = leftfold::testing::UniqueName("counter");
  constexpr int kFirst = 120;
  constexpr int kSecond = 60;
  auto first = leftfold::testing::ProduceDeposits(log, type, topic, kFirst, 9);
  ASSERT_TRUE(first.ok()) << first.status();

  int status = leftfold::testing::RunSelfAsChild(
      "ProjectorStaticMemberTest.DISABLED_ChildAppliesThenCrashes",
      {absl::StrCat(kChildEnv, "=", type, "|", name, "|", dir, "|", EncodePositions(*first)),
       absl::StrCat("LEFTFOLD_TEST_BROKERS=", leftfold::testing::TestBrokers())});
  // Killed by its own SIGKILL = it applied the first events; an exit code = it failed first.
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child projector did not get to its crash (status " << status << ")";

  auto second = leftfold::testing::ProduceDeposits(log, type, topic, kSecond, 9, 1000);
  ASSERT_TRUE(second.ok()) << second.status();
  auto store = store::RocksViewStore::Open(dir, name);
  ASSERT_TRUE(store.ok()) << store.status();
  const int64_t before = Total((*store)->committed());
  EXPECT_EQ(before, kFirst);  // the child's view, as its last commit left it

  Runner runner(log, CounterProjector(name, type), **store,
                {.max_batch = 100, .instance_id = kInstanceId});
  const absl::Time start = absl::Now();
  ASSERT_TRUE(runner.Start().ok());
  // Bounded by the session timeout: a restart that waited for it would still pass the wait,
  // and fail the assertion below instead of timing out here.
  absl::Status s = runner.WaitFor(*second, start + kSessionTimeout + absl::Seconds(30));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_LT(took, kSessionTimeout / 3)
      << "the restarted static member waited for the crashed one's session to expire";
  // Resumed from the view's checkpoint: every event exactly once.
  EXPECT_EQ(Total((*store)->committed()), kFirst + kSecond);
  EXPECT_EQ(runner.events_applied(), kSecond);
  EXPECT_TRUE(runner.Stop().ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace leftfold::internal::projection
