// The `leftfold` CLI end to end: a real leftfold-dev server (embedded log, temp data dir, free
// port) as a child process, the real `leftfold` binary run against it, stdout and exit codes
// checked. Plus the message-name resolution in-process.
#include "cli.h"

#include <algorithm>
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

  RunResult r = Cli({"inspect", "bank.account", id});
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

// Exact, not idle-guessed: right after the last send, inspect lists every event, and the replay
// ends by itself (the gateway's stop_at_end) long before --timeout.
TEST_F(CliTest, InspectListsExactlyTheCommittedEvents) {
  std::string id = UniqueName("acc");
  ASSERT_EQ(
      Cli({"send", "bank.account", id, "OpenAccount", R"({"owner": "ina"})", "--wait"}).exit_code,
      0);
  constexpr int kDeposits = 20;
  for (int i = 1; i <= kDeposits; ++i) {
    ASSERT_EQ(Cli({"send", "bank.account", id, "Deposit", absl::StrCat(R"({"amount": )", i, "}"),
                   "--wait"})
                  .exit_code,
              0);
  }
  absl::Time start = absl::Now();
  RunResult r = Cli({"--json", "inspect", "bank.account", id, "--timeout", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_LT(absl::Now() - start, absl::Seconds(15)) << "the replay should end by itself";
  // 1 + 2 + ... + 20 = 210.
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(R"("version":)", kDeposits + 1,
                                            R"(,"state":{"owner":"ina","balance":"210")")));
  size_t events = 0;
  for (size_t at = r.out.find("\"aggregateId\":\"" + id); at != std::string::npos;
       at = r.out.find("\"aggregateId\":\"" + id, at + 1)) {
    ++events;
  }
  // One in the header, one per event.
  EXPECT_EQ(events, 1u + kDeposits + 1) << r.out;
}

TEST_F(CliTest, InspectOfAnAggregateWithoutEventsIsExitThree) {
  RunResult r = Cli({"inspect", "bank.account", UniqueName("never")});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
}

TEST_F(CliTest, TailFromStartReplaysTheAggregatesEventsAndResults) {
  std::string id = UniqueName("acc");
  ASSERT_EQ(
      Cli({"send", "bank.account", id, "OpenAccount", R"({"owner": "h"})", "--wait"}).exit_code, 0);
  ASSERT_EQ(Cli({"send", "bank.account", id, "Deposit", R"({"amount": 7})", "--wait"}).exit_code,
            0);

  // --to-end: the replay stops by itself after exactly the existing items (no --count, no idle
  // guess); the exit code says it ended cleanly.
  RunResult events =
      Cli({"tail", "events", "--type", "bank.account", "--id", id, "--from-start", "--to-end"});
  ASSERT_EQ(events.exit_code, 0) << events.out << events.err;
  std::vector<std::string> lines = absl::StrSplit(events.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << events.out;
  EXPECT_THAT(lines[0], HasSubstr("bank.account/" + id + " v1 bank.v1.AccountOpened"));
  EXPECT_THAT(lines[1], HasSubstr(R"(v2 bank.v1.Deposited {"amount":"7","reference":""})"));

  RunResult results = Cli({"--json", "tail", "results", "--type", "bank.account", "--id", id,
                           "--from-start", "--to-end"});
  ASSERT_EQ(results.exit_code, 0) << results.out << results.err;
  lines = absl::StrSplit(results.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << results.out;
  leftfold::v1::CommandResult second;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[1], &second).ok()) << lines[1];
  EXPECT_EQ(second.version(), 2);

  // Without --type the replay covers every routed type; --count still stops early.
  RunResult all = Cli({"tail", "events", "--id", id, "--from-start", "--count", "1"});
  ASSERT_EQ(all.exit_code, 0) << all.out << all.err;
  EXPECT_THAT(all.out, HasSubstr("v1 bank.v1.AccountOpened"));
  EXPECT_EQ(Cli({"tail", "events", "--to-end"}).exit_code, 1);
}

// --- view queries (account_balances of leftfold-dev) ---

// Read-your-writes: get --after the deposit's command id sees the new balance, whatever the
// projector's lag; the same with --token fed what `send --wait` printed.
TEST_F(CliTest, GetAfterACommandSeesItsEffect) {
  std::string id = UniqueName("acc");
  ASSERT_EQ(Cli({"send", "bank.account", id, "OpenAccount",
                 R"({"owner": "ryw", "initialDeposit": 100})", "--wait"})
                .exit_code,
            0);
  std::string deposit = "dep-" + id;
  ASSERT_EQ(Cli({"send", "bank.account", id, "Deposit", R"({"amount": 23})", "--wait",
                 "--command-id", deposit})
                .exit_code,
            0);
  RunResult r = Cli({"get", "account_balances", id, "--after", deposit});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"123")"));
  EXPECT_THAT(r.out, HasSubstr(R"("owner":"ryw")"));

  // The human `send --wait` line as the token.
  RunResult sent = Cli({"send", "bank.account", id, "Withdraw", R"({"amount": 3})", "--wait"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  RunResult by_line = Cli({"--json", "get", "account_balances", id, "--token", sent.out});
  ASSERT_EQ(by_line.exit_code, 0) << by_line.out << by_line.err;
  EXPECT_THAT(by_line.out, HasSubstr(R"("key":")" + id + R"(")"));
  EXPECT_THAT(by_line.out, HasSubstr(R"("@type":"type.googleapis.com/bank.v1.Account")"));
  EXPECT_THAT(by_line.out, HasSubstr(R"("balance":"120")"));

  // The `send --wait --json` result as the token.
  RunResult sent_json =
      Cli({"--json", "send", "bank.account", id, "Deposit", R"({"amount": 5})", "--wait"});
  ASSERT_EQ(sent_json.exit_code, 0) << sent_json.out << sent_json.err;
  RunResult by_json = Cli({"get", "account_balances", id, "--token", sent_json.out});
  ASSERT_EQ(by_json.exit_code, 0) << by_json.out << by_json.err;
  EXPECT_THAT(by_json.out, HasSubstr(R"("balance":"125")"));
}

// --after also waits for a result that does not exist yet (a command sent without --wait).
TEST_F(CliTest, GetAfterASubmittedCommandWaitsForItsResult) {
  std::string id = UniqueName("acc");
  std::string open = "open-" + id;
  ASSERT_EQ(Cli({"send", "bank.account", id, "OpenAccount",
                 R"({"owner": "sub", "initialDeposit": 42})", "--command-id", open})
                .exit_code,
            0);
  RunResult r = Cli({"get", "account_balances", id, "--after", open, "--type", "bank.account"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"42")"));
}

TEST_F(CliTest, GetOfAMissingKeyIsExitThree) {
  RunResult r = Cli({"get", "account_balances", UniqueName("nobody")});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
  RunResult view = Cli({"get", "no_such_view", "k"});
  EXPECT_EQ(view.exit_code, 3) << view.out << view.err;
}

TEST_F(CliTest, GetWaitingForAPositionNeverReachedIsExitFive) {
  RunResult r = Cli({"get", "account_balances", "x", "--token", "bank.account.events:0:999999999",
                     "--timeout", "500ms"});
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  RunResult bad = Cli({"get", "account_balances", "x", "--token", "bank.account.events:zero:1"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("partition is not a number"));
}

TEST_F(CliTest, ScanByOwnerPrefixListsTheOwnersAccounts) {
  std::string owner = UniqueName("owner");
  std::vector<std::string> ids = {UniqueName("a1"), UniqueName("a2")};
  std::string last;
  for (const std::string& id : ids) {
    last = "open-" + id;
    ASSERT_EQ(Cli({"send", "bank.account", id, "OpenAccount",
                   absl::StrCat(R"({"owner": ")", owner, R"(", "initialDeposit": 10})"), "--wait",
                   "--command-id", last})
                  .exit_code,
              0);
  }
  ASSERT_EQ(Cli({"send", "bank.account", UniqueName("other"), "OpenAccount",
                 R"({"owner": "someone-else"})", "--wait"})
                .exit_code,
            0);
  std::string prefix = "by_owner/" + owner + "/";
  // The accounts may live in different partitions: --after waits for one command's partition
  // only, so wait for the first one's too.
  ASSERT_EQ(Cli({"get", "account_balances", ids[0], "--after", "open-" + ids[0]}).exit_code, 0);
  RunResult r = Cli({"--json", "scan", "account_balances", "--prefix", prefix, "--after", last});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << r.out;
  std::vector<std::string> expected = {prefix + ids[0], prefix + ids[1]};
  std::sort(expected.begin(), expected.end());
  EXPECT_THAT(lines[0], HasSubstr(R"("key":")" + expected[0] + R"(")"));
  EXPECT_THAT(lines[1], HasSubstr(R"("key":")" + expected[1] + R"(")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("owner":")" + owner + R"(")"));

  // A page at a time: --limit 1 prints one row and the token of the next page.
  RunResult page = Cli({"--json", "scan", "account_balances", "--prefix", prefix, "--limit", "1"});
  ASSERT_EQ(page.exit_code, 0) << page.out << page.err;
  lines = absl::StrSplit(page.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << page.out;
  EXPECT_THAT(lines[0], HasSubstr(expected[0]));
  const std::string marker = R"({"nextPageToken":")";
  ASSERT_EQ(lines[1].rfind(marker, 0), 0u) << lines[1];
  std::string token = lines[1].substr(marker.size(), lines[1].size() - marker.size() - 2);
  RunResult next =
      Cli({"scan", "account_balances", "--prefix", prefix, "--limit", "1", "--page-token", token});
  ASSERT_EQ(next.exit_code, 0) << next.out << next.err;
  EXPECT_THAT(next.out, HasSubstr(expected[1] + "\t{"));
  EXPECT_THAT(next.out, Not(HasSubstr(expected[0])));

  // --all follows the pages.
  RunResult all = Cli({"scan", "account_balances", "--prefix", prefix, "--limit", "1", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all.out << all.err;
  lines = absl::StrSplit(all.out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 2u) << all.out;
}

// The projector catches up with every event: lag 0 on every partition, eventually (polled with a
// deadline; the last command's --after makes it quick).
TEST_F(CliTest, ProjectorStatusShowsAccountBalancesCaughtUp) {
  std::string id = UniqueName("acc");
  ASSERT_EQ(Cli({"send", "bank.account", id, "OpenAccount", R"({"owner": "lag"})", "--wait",
                 "--command-id", "open-" + id})
                .exit_code,
            0);
  ASSERT_EQ(Cli({"get", "account_balances", id, "--after", "open-" + id}).exit_code, 0);
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  RunResult r;
  bool caught_up = false;
  while (!caught_up && absl::Now() < deadline) {
    r = Cli({"projector", "status"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    caught_up = absl::StrContains(r.out, "account_balances (lag 0)");
  }
  EXPECT_TRUE(caught_up) << r.out;
  // One line per partition of the events topic (leftfold-dev runs with --partitions 3).
  for (int p = 0; p < 3; ++p) {
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("bank.account.events/", p, "  checkpoint ")));
  }
  EXPECT_THAT(r.out, Not(HasSubstr("HALTED")));

  RunResult json = Cli({"--json", "projector", "status", "account_balances"});
  ASSERT_EQ(json.exit_code, 0) << json.out << json.err;
  EXPECT_THAT(json.out, HasSubstr(R"({"projector":"account_balances","partitions":[)"));
  EXPECT_EQ(Cli({"projector", "status", "no_such_projector"}).exit_code, 3);
  RunResult help = Cli({"projector", "--help"});
  EXPECT_THAT(help.out, HasSubstr("rebuild"));
  // Rebuild: a progress bar on stderr, the swap on stdout, the view unchanged.
  RunResult rebuilt = Cli({"projector", "rebuild", "account_balances"});
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt.out << rebuilt.err;
  EXPECT_THAT(rebuilt.err, HasSubstr("100.0%"));
  EXPECT_THAT(rebuilt.out, HasSubstr("account_balances rebuilt"));
  EXPECT_EQ(Cli({"get", "account_balances", id}).exit_code, 0);
  EXPECT_EQ(Cli({"projector", "rebuild", "no_such_projector"}).exit_code, 3);
}

TEST_F(CliTest, TopicsOnTheEmbeddedLogSayTheServerManagesThem) {
  RunResult r = Cli({"topics", "list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--brokers"));
  EXPECT_THAT(r.err, HasSubstr("manages its topics"));
}

// In-process: every form `send` prints a token in is accepted by `get --token`.
TEST(ConsistencyToken, AcceptsWhatSendPrints) {
  auto colon = cli::ParseToken("bank.account.events:1:7,bank.account.events:2:0");
  ASSERT_TRUE(colon.ok()) << colon.status();
  ASSERT_EQ(colon->size(), 2u);
  EXPECT_EQ((*colon)[0].topic(), "bank.account.events");
  EXPECT_EQ((*colon)[0].partition(), 1);
  EXPECT_EQ((*colon)[0].offset(), 7);

  auto line = cli::ParseToken(
      "ACCEPTED bank.account/acc-1 version 2 events 2 positions "
      "bank.account.events/1@5,bank.account.events/1@6 command abc\n");
  ASSERT_TRUE(line.ok()) << line.status();
  ASSERT_EQ(line->size(), 2u);
  EXPECT_EQ((*line)[1].offset(), 6);

  auto json = cli::ParseToken(
      R"({"commandId":"c","outcome":"ACCEPTED","eventPositions":[{"topic":"t.events",)"
      R"("partition":2,"offset":"9"}],"eventCount":1})");
  ASSERT_TRUE(json.ok()) << json.status();
  ASSERT_EQ(json->size(), 1u);
  EXPECT_EQ((*json)[0].partition(), 2);
  EXPECT_EQ((*json)[0].offset(), 9);

  auto array = cli::ParseToken(R"([{"topic":"t.events","partition":0,"offset":"3"}])");
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ((*array)[0].offset(), 3);

  EXPECT_EQ(cli::ParseToken("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cli::ParseToken("t.events:1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cli::ParseToken(R"({"outcome":"REJECTED"})").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cli::ParseToken("REJECTED bank.account/a version 1 FAILED_PRECONDITION: x command c")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
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
