// `leftfold topics list|describe|create` against the real broker: the CLI binary runs as a child
// process with --brokers $LEFTFOLD_TEST_BROKERS and a topic prefix of its own; stdout, stderr and
// the documented exit codes (docs/cli.md) are checked.
#include <string>
#include <vector>

#include "../../unit/cli/subprocess.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/test_env.h"

namespace leftfold::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class TopicsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(TestBrokers().empty()) << "LEFTFOLD_TEST_BROKERS is not set";
    prefix_ = UniqueName("cli") + ".";
  }

  RunResult Topics(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {LEFTFOLD_CLI_BINARY, "topics"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--brokers", TestBrokers(), "--topic-prefix", prefix_});
    return RunProcess(argv, absl::Seconds(60));
  }

  std::string prefix_;
};

TEST_F(TopicsCliTest, CreateListDescribe) {
  // Not there yet: list marks all four missing (and still exits 0).
  RunResult r = Topics({"list", "--type", "shop.cart"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(prefix_ + "shop.cart.events  (missing)"));

  r = Topics(
      {"create", "--type", "shop.cart", "--create-partitions", "3", "--results-retention", "2h"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("shop.cart: topics " + prefix_ + "shop.cart.commands"));
  EXPECT_THAT(r.out, HasSubstr("ready with 3 partitions"));

  r = Topics({"list", "--type", "shop.cart"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << r.out;
  for (const char* kind : {"commands", "events", "results", "snapshots"}) {
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat(prefix_, "shop.cart.", kind,
                                              "  partitions 3  end offsets (read_committed) "
                                              "[0 0 0]")));
  }
  EXPECT_THAT(r.out, Not(HasSubstr("missing")));

  // describe: the partition count and the configuration create gave each topic.
  r = Topics({"describe", prefix_ + "shop.cart.results"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("partitions 3"));
  EXPECT_THAT(r.out, HasSubstr("retention.ms=7200000"));  // --results-retention 2h
  r = Topics({"describe", prefix_ + "shop.cart.events"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("retention.ms=-1"));  // the event store keeps everything
  r = Topics({"describe", prefix_ + "shop.cart.commands"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("retention.ms=604800000"));  // the default: 7 days
  r = Topics({"describe", prefix_ + "shop.cart.snapshots", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("partitions":3)"));
  EXPECT_THAT(r.out, HasSubstr(R"("configs":{"cleanup.policy":"compact"})"));

  // create again with another count: the existing topics stay as they are, and it says so.
  r = Topics({"create", "--type", "shop.cart", "--create-partitions", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ready with 3 partitions"));
  EXPECT_THAT(r.err, HasSubstr("already exist with 3 partitions; --create-partitions 5 does not "
                               "change them"));
}

TEST_F(TopicsCliTest, BadInputExitCodes) {
  // Zero partitions: a usage error (exit 1) that names the option, before Kafka is asked.
  RunResult r = Topics({"create", "--type", "shop.order", "--create-partitions", "0"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("--create-partitions: a partition count is a whole number from 1"));
  EXPECT_THAT(r.err, HasSubstr("got 0"));
  r = Topics({"list", "--type", "shop.order"});  // and nothing was created
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(prefix_ + "shop.order.commands  (missing)"));

  // An unknown topic: not found, exit 3.
  r = Topics({"describe", prefix_ + "no.such.topic"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("unknown topic " + prefix_ + "no.such.topic"));
  r = Topics({"describe", prefix_ + "no.such.topic", "--json"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("code":"NOT_FOUND")"));

  // describe without a topic, a bad retention: usage errors.
  r = Topics({"describe"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("describe needs a TOPIC"));
  r = Topics({"create", "--type", "shop.order", "--results-retention", "soon"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("not a positive duration"));

  // No broker at all: the documented message, exit 1.
  r = RunProcess({"/usr/bin/env", "-u", "LEFTFOLD_BROKERS", LEFTFOLD_CLI_BINARY, "topics", "list"},
                 absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("works on Kafka only: pass --brokers"));
}

}  // namespace
}  // namespace leftfold::testing
