// The `leftfold` CLI end to end: a real leftfold-dev server (embedded log, temp data dir, free
// port) as a child process, the real `leftfold` binary run against it, stdout and exit codes
// checked. Plus the message-name resolution in-process.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bank/v1/bank.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "leftfold/v1/envelope.pb.h"
#include "leftfold/v1/gateway_service.pb.h"
#include "messages.h"
#include "subprocess.h"
#include "support/test_env.h"

namespace leftfold::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kCliTimeout = absl::Seconds(60);

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("cli_test"));
    int port = FreePort();
    ASSERT_GT(port, 0);
    address_ = new std::string(absl::StrCat("127.0.0.1:", port));
    server_ = new Background({LEFTFOLD_DEV_BINARY, "--listen", *address_, "--data-dir",
                              *dir_ + "/data", "--partitions", "3"},
                             *dir_ + "/server.log");
    ASSERT_GT(server_->pid(), 0);
    // Ready once the gRPC port accepts connections (the gateway starts before the listener).
    auto channel = grpc::CreateChannel(*address_, grpc::InsecureChannelCredentials());
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    bool connected = false;
    while (!connected && absl::Now() < deadline && server_->Running()) {
      connected = channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    }
    ASSERT_TRUE(connected) << "leftfold-dev did not come up at " << *address_ << "; log in "
                           << *dir_ << "/server.log";
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      int status = server_->Terminate(absl::Seconds(30));
      EXPECT_EQ(status, 0) << "leftfold-dev exit status after SIGTERM; log in " << *dir_
                           << "/server.log";
    }
    delete server_;
    server_ = nullptr;
  }

  static RunResult Cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {LEFTFOLD_CLI_BINARY, "--server", *address_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, kCliTimeout);
  }

  static std::string* dir_;
  static std::string* address_;
  static Background* server_;
};

std::string* CliTest::dir_ = nullptr;
std::string* CliTest::address_ = nullptr;
Background* CliTest::server_ = nullptr;

TEST_F(CliTest, OpenAccountWaitIsAcceptedAtVersionOne) {
  std::string id = UniqueName("acc");
  RunResult r = Cli({"send", "bank.account", id, "OpenAccount",
                     R"({"owner": "alice", "initialDeposit": 100})", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ACCEPTED bank.account/" + id + " version 1 events 1"));
  EXPECT_THAT(r.out, HasSubstr("positions bank.account.events/"));
}

TEST_F(CliTest, WithdrawTooLargeIsRejectedWithExitTwo) {
  std::string id = UniqueName("acc");
  ASSERT_EQ(Cli({"send", "bank.account", id, "bank.v1.OpenAccount",
                 R"({"owner": "bob", "initial_deposit": 10})", "--wait"})
                .exit_code,
            0);
  RunResult r = Cli({"send", "bank.account", id, "Withdraw", R"({"amount": 11})", "--wait"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("REJECTED"));
  EXPECT_THAT(r.out, HasSubstr("FAILED_PRECONDITION: insufficient funds"));
  EXPECT_THAT(r.out, HasSubstr("version 1"));
}

TEST_F(CliTest, ExpectedVersionMismatchIsAConflictWithExitTwo) {
  std::string id = UniqueName("acc");
  ASSERT_EQ(
      Cli({"send", "bank.account", id, "OpenAccount", R"({"owner": "c"})", "--wait"}).exit_code, 0);
  RunResult r = Cli({"send", "bank.account", id, "Deposit", R"({"amount": 1})", "--wait",
                     "--expect-version", "5"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("CONFLICT"));
}

TEST_F(CliTest, BadJsonFieldIsExitOneAndNamesTheField) {
  RunResult r = Cli({"send", "bank.account", "x", "Deposit", R"({"amout": 5})", "--wait"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("amout"));
  EXPECT_THAT(r.err, HasSubstr("bank.v1.Deposit"));
}

TEST_F(CliTest, MalformedJsonIsExitOne) {
  RunResult r = Cli({"send", "bank.account", "x", "Deposit", R"({"amount": )"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("bad JSON"));
}

TEST_F(CliTest, UnknownCommandNameIsExitOne) {
  RunResult r = Cli({"send", "bank.account", "x", "Teleport", "{}", "--wait"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("unknown message type 'Teleport'"));
}

TEST_F(CliTest, UsageErrorIsExitOne) {
  RunResult r = Cli({"send", "bank.account"});
  EXPECT_EQ(r.exit_code, 1);
  RunResult help = Cli({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Exit codes"));
}

TEST_F(CliTest, ServerDownIsExitFour) {
  int port = FreePort();
  RunResult r = RunProcess({LEFTFOLD_CLI_BINARY, "--server", absl::StrCat("127.0.0.1:", port),
                            "send", "bank.account", "x", "Deposit", R"({"amount": 5})", "--wait"},
                           kCliTimeout);
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
}

TEST_F(CliTest, DeadlineExceededIsExitFiveAndNamesTheCommand) {
  RunResult r = Cli({"send", "bank.account", UniqueName("acc"), "OpenAccount", R"({"owner": "d"})",
                     "--wait", "--timeout", "1ms", "--command-id", "cli-deadline-1"});
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("cli-deadline-1"));
}

TEST_F(CliTest, JsonOutputParsesAsACommandResult) {
  std::string id = UniqueName("acc");
  RunResult r = Cli({"--json", "send", "bank.account", id, "OpenAccount", R"({"owner": "e"})",
                     "--wait", "--correlation-id", "corr-1"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  leftfold::v1::CommandResult result;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &result).ok()) << r.out;
  EXPECT_EQ(result.outcome(), leftfold::v1::CommandResult::ACCEPTED);
  EXPECT_EQ(result.aggregate_id(), id);
  EXPECT_EQ(result.version(), 1);
  EXPECT_EQ(result.correlation_id(), "corr-1");
  EXPECT_EQ(result.event_positions_size(), 1);

  // Rejections are JSON too, and still exit 2.
  RunResult rejected =
      Cli({"--json", "send", "bank.account", id, "Withdraw", R"({"amount": 1000})", "--wait"});
  EXPECT_EQ(rejected.exit_code, 2);
  leftfold::v1::CommandResult rejection;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(rejected.out, &rejection).ok())
      << rejected.out;
  EXPECT_EQ(rejection.outcome(), leftfold::v1::CommandResult::REJECTED);
  EXPECT_THAT(rejection.message(), HasSubstr("insufficient funds"));
}

TEST_F(CliTest, SubmitPrintsCommandIdAndPositionThenResultIsFound) {
  std::string id = UniqueName("acc");
  RunResult r = Cli({"--json", "send", "bank.account", id, "OpenAccount", R"({"owner": "f"})",
                     "--command-id", "cli-submit-1-" + id});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  leftfold::v1::SubmitAck ack;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &ack).ok()) << r.out;
  EXPECT_EQ(ack.command_id(), "cli-submit-1-" + id);
  EXPECT_EQ(ack.position().topic(), "bank.account.commands");

  // The result arrives asynchronously: poll GetResult (exit 3 until known) with a deadline.
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  RunResult result;
  do {
    result = Cli({"result", "bank.account", "cli-submit-1-" + id});
  } while (result.exit_code == 3 && absl::Now() < deadline);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("ACCEPTED bank.account/" + id + " version 1"));
}

TEST_F(CliTest, UnknownResultIsExitThree) {
  RunResult r = Cli({"result", "bank.account", "no-such-command-id"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
}

TEST_F(CliTest, InspectFoldsTheBalance) {
  std::string id = UniqueName("acc");
  ASSERT_EQ(Cli({"send", "bank.account", id, "OpenAccount",
                 R"({"owner": "gina", "initialDeposit": 100})", "--wait"})
                .exit_code,
            0);
  ASSERT_EQ(Cli({"send", "bank.account", id, "Deposit", R"({"amount": 50})", "--wait"}).exit_code,
            0);
  ASSERT_EQ(Cli({"send", "bank.account", id, "Withdraw", R"({"amount": 30})", "--wait"}).exit_code,
            0);

  RunResult r = Cli({"inspect", "bank.account", id, "--idle", "500ms"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("v1 bank.v1.AccountOpened"));
  EXPECT_THAT(r.out, HasSubstr("v2 bank.v1.Deposited"));
  EXPECT_THAT(r.out, HasSubstr("v3 bank.v1.Withdrawn"));
  EXPECT_THAT(r.out, HasSubstr("state at version 3:"));
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"120")"));

  RunResult at = Cli({"inspect", "bank.account", id, "--at-version", "2"});
  ASSERT_EQ(at.exit_code, 0) << at.out << at.err;
  EXPECT_THAT(at.out, HasSubstr("state at version 2:"));
  EXPECT_THAT(at.out, HasSubstr(R"("balance":"150")"));
  EXPECT_THAT(at.out, Not(HasSubstr("Withdrawn")));

  RunResult json = Cli({"--json", "inspect", "bank.account", id});
  ASSERT_EQ(json.exit_code, 0) << json.out << json.err;
  EXPECT_THAT(json.out, HasSubstr(R"("version":3,"state":{"owner":"gina","balance":"120")"));
}

TEST_F(CliTest, InspectOfAnAggregateWithoutEventsIsExitThree) {
  RunResult r = Cli({"inspect", "bank.account", UniqueName("never"), "--idle", "300ms"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
}

TEST_F(CliTest, TailFromStartReplaysTheAggregatesEventsAndResults) {
  std::string id = UniqueName("acc");
  ASSERT_EQ(
      Cli({"send", "bank.account", id, "OpenAccount", R"({"owner": "h"})", "--wait"}).exit_code, 0);
  ASSERT_EQ(Cli({"send", "bank.account", id, "Deposit", R"({"amount": 7})", "--wait"}).exit_code,
            0);

  RunResult events =
      Cli({"tail", "events", "--type", "bank.account", "--id", id, "--from-start", "--count", "2"});
  ASSERT_EQ(events.exit_code, 0) << events.out << events.err;
  std::vector<std::string> lines = absl::StrSplit(events.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << events.out;
  EXPECT_THAT(lines[0], HasSubstr("bank.account/" + id + " v1 bank.v1.AccountOpened"));
  EXPECT_THAT(lines[1], HasSubstr(R"(v2 bank.v1.Deposited {"amount":"7","reference":""})"));

  RunResult results = Cli({"--json", "tail", "results", "--type", "bank.account", "--id", id,
                           "--from-start", "--count", "2"});
  ASSERT_EQ(results.exit_code, 0) << results.out << results.err;
  lines = absl::StrSplit(results.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << results.out;
  leftfold::v1::CommandResult second;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[1], &second).ok()) << lines[1];
  EXPECT_EQ(second.version(), 2);
}

TEST_F(CliTest, TopicsOnTheEmbeddedLogSayTheServerManagesThem) {
  RunResult r = Cli({"topics", "list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--brokers"));
  EXPECT_THAT(r.err, HasSubstr("manages its topics"));
}

// In-process: the name resolution the send subcommand uses.
TEST(MessageNames, ShortAndFullNamesResolve) {
  // The generated pool knows only the .pb.cc files linked in; the CLI binary links bank's
  // through its aggregate registry, this test binary through this reference.
  ASSERT_NE(bank::v1::Deposit::descriptor(), nullptr);
  auto full = cli::ResolveMessageType("bank.v1.Deposit");
  ASSERT_TRUE(full.ok()) << full.status();
  auto short_name = cli::ResolveMessageType("Deposit");
  ASSERT_TRUE(short_name.ok()) << short_name.status();
  EXPECT_EQ(*full, *short_name);
  EXPECT_EQ(cli::ResolveMessageType("Teleport").status().code(), absl::StatusCode::kNotFound);
  // A suffix that is not a whole name component does not match.
  EXPECT_EQ(cli::ResolveMessageType("osition").status().code(), absl::StatusCode::kNotFound);
}

TEST(MessageNames, AmbiguousShortNameListsTheCandidates) {
  std::map<std::string, std::vector<std::string>> by_short;
  for (const std::string& full : cli::AllMessageNames()) {
    by_short[full.substr(full.rfind('.') + 1)].push_back(full);
  }
  for (const auto& [short_name, fulls] : by_short) {
    if (fulls.size() < 2) continue;
    auto resolved = cli::ResolveMessageType(short_name);
    ASSERT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument) << short_name;
    for (const std::string& f : fulls) {
      EXPECT_THAT(std::string(resolved.status().message()), HasSubstr(f));
    }
    return;
  }
  GTEST_SKIP() << "no two linked messages share a short name";
}

}  // namespace
}  // namespace leftfold::testing
