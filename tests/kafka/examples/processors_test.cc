// The example domains' processor binaries end to end on the real broker: leftfold-gateway and
// leftfold-clicks-processor / leftfold-invoices-processor run as separate child processes on
// Kafka ($LEFTFOLD_TEST_BROKERS, a topic prefix of their own), the real `leftfold` CLI drives
// them through the gateway (the bank with --with-transfers, its transfers' process manager
// included); results, folded state, structured logs, a clean SIGTERM exit and a
// restart after SIGKILL with the same --instance-id (static membership: no session-timeout
// wait) are checked.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "../../unit/cli/subprocess.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "poll.h"
#include "support/test_env.h"

namespace leftfold::testing {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kCliTimeout = absl::Seconds(90);
// The first start joins a fresh group on new topics.
constexpr absl::Duration kReadyTimeout = absl::Seconds(90);
// The broker's default session timeout is 45s: a restarted dynamic member would wait for it, a
// static one gets its partitions back at once. A restart must answer well inside this.
constexpr absl::Duration kStaticRestartBound = absl::Seconds(25);

std::string ReadFile(const std::string& path) {
  RunResult r = RunProcess({"/bin/cat", path}, absl::Seconds(10));
  return r.out;
}

// A gateway routing one aggregate type and that type's processor binary, as two children.
class ProcessorBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(TestBrokers().empty()) << "LEFTFOLD_TEST_BROKERS is not set";
    dir_ = MakeTempDir("kafka_processor_bin");
    prefix_ = UniqueName("pb") + ".";
  }

  void StartGateway(const std::string& type) {
    int port = FreePort();
    ASSERT_GT(port, 0);
    address_ = absl::StrCat("127.0.0.1:", port);
    gateway_ = std::make_unique<Background>(
        std::vector<std::string>{LEFTFOLD_GATEWAY_BINARY, "--listen", address_, "--brokers",
                                 TestBrokers(), "--topic-prefix", prefix_, "--aggregate-types",
                                 type, "--partitions", "3"},
        dir_ + "/gateway.log");
    ASSERT_GT(gateway_->pid(), 0);
  }

  // Starts `binary` with a fixed instance id; its log is processor-<n>.log.
  void StartProcessor(const std::string& binary, const std::vector<std::string>& extra = {}) {
    ++processor_starts_;
    std::vector<std::string> argv = {
        binary,          TestBrokers(),   "--topic-prefix", prefix_,        "--state-dir",
        dir_ + "/state", "--instance-id", "it-1",           "--partitions", "3"};
    argv.insert(argv.begin() + 1, "--brokers");
    argv.insert(argv.end(), extra.begin(), extra.end());
    processor_ = std::make_unique<Background>(argv, ProcessorLog());
    ASSERT_GT(processor_->pid(), 0);
  }

  std::string ProcessorLog() const {
    return absl::StrCat(dir_, "/processor-", processor_starts_, ".log");
  }

  RunResult Cli(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {LEFTFOLD_CLI_BINARY, "--server", address_, "--topic-prefix",
                                     prefix_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, kCliTimeout);
  }

  // Sends a command with `send --wait` until it is answered (exit 0 or 2) or `timeout` passes:
  // the processor has joined its group and the command -> result path works.
  RunResult SendUntilAnswered(const std::vector<std::string>& send, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    std::vector<std::string> args = {"send"};
    args.insert(args.end(), send.begin(), send.end());
    args.insert(args.end(), {"--wait", "--timeout", "5s"});
    RunResult r;
    do {
      if (!processor_->Running()) {
        ADD_FAILURE() << "processor exited: " << ReadFile(ProcessorLog());
        return r;
      }
      r = Cli(args);
    } while (r.exit_code != 0 && r.exit_code != 2 && absl::Now() < deadline);
    return r;
  }

  // Polls `inspect TYPE ID` until its output contains `want` (a process manager works
  // asynchronously); returns the last run.
  RunResult InspectUntil(const std::string& type, const std::string& id, const std::string& want) {
    return RunUntilOutputContains(
        [&] {
          return Cli({"inspect", type, id, "--timeout", "30s"});
        },
        want, absl::Seconds(60));
  }

  // SIGTERM: the processor must exit 0 and say so in its structured log.
  void StopProcessorCleanly(const std::string& component) {
    EXPECT_EQ(processor_->Terminate(absl::Seconds(60)), 0) << ReadFile(ProcessorLog());
    std::string log = ReadFile(ProcessorLog());
    // key=value lines on stderr (leftfold/logging.h).
    const std::string prefix = absl::StrCat("component=", component, " msg=");
    EXPECT_THAT(log, HasSubstr(prefix + R"("started" aggregate_type=)"));
    EXPECT_THAT(log, HasSubstr("instance_id=it-1"));
    EXPECT_THAT(log, HasSubstr(prefix + R"("stopping" signal=15)"));
    EXPECT_THAT(log, HasSubstr(prefix + R"("stopped")"));
  }

  void TearDown() override {
    if (gateway_ != nullptr) gateway_->Terminate(absl::Seconds(30));
    if (HasFailure()) {
      std::fprintf(stderr, "---- gateway log ----\n%s\n---- last processor log ----\n%s\n",
                   ReadFile(dir_ + "/gateway.log").c_str(), ReadFile(ProcessorLog()).c_str());
    }
  }

  std::string dir_;
  std::string prefix_;
  std::string address_;
  int processor_starts_ = 0;
  std::unique_ptr<Background> gateway_;
  std::unique_ptr<Background> processor_;
};

TEST_F(ProcessorBinaryTest, ClicksProcessorCountsAndRestartsPromptly) {
  ASSERT_NO_FATAL_FAILURE(StartGateway("clicks.user"));
  ASSERT_NO_FATAL_FAILURE(StartProcessor(LEFTFOLD_CLICKS_PROCESSOR));
  const std::string user = UniqueName("user");
  RunResult r = SendUntilAnswered(
      {"clicks.user", user, "Click", "{}", "--command-id", "click-" + user + "-0"}, kReadyTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ACCEPTED clicks.user/" + user + " version 1"));
  for (int i = 1; i < 3; ++i) {
    r = Cli({"send", "clicks.user", user, "Click", "{}", "--wait", "--timeout", "30s",
             "--command-id", absl::StrCat("click-", user, "-", i)});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("version ", i + 1)));
  }
  r = Cli({"inspect", "clicks.user", user, "--timeout", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("state at version 3:"));
  EXPECT_THAT(r.out, HasSubstr(R"("count":"3")"));
  // SIGKILL: no LeaveGroup, the broker still counts the dead member in. Restarted with the same
  // --instance-id it is a static member that takes its partitions straight back, instead of
  // waiting for the session timeout (45s) as a new dynamic member would.
  kill(processor_->pid(), SIGKILL);
  EXPECT_EQ(processor_->Terminate(absl::Seconds(30)), 128 + SIGKILL);
  absl::Time restarted = absl::Now();
  ASSERT_NO_FATAL_FAILURE(StartProcessor(LEFTFOLD_CLICKS_PROCESSOR));
  r = SendUntilAnswered(
      {"clicks.user", user, "Click", "{}", "--command-id", "click-" + user + "-3"}, kReadyTimeout);
  absl::Duration took = absl::Now() - restarted;
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("version 4"));  // the state survived the kill
  EXPECT_LT(took, kStaticRestartBound) << "restart after SIGKILL took " << took;
  std::fprintf(stderr, "clicks processor: SIGKILL, restart to first answer: %s\n",
               absl::FormatDuration(took).c_str());
  StopProcessorCleanly("clicks-processor");
}

TEST_F(ProcessorBinaryTest, InvoicesProcessorComputesTotalsAndRejects) {
  ASSERT_NO_FATAL_FAILURE(StartGateway("invoices.invoice"));
  ASSERT_NO_FATAL_FAILURE(StartProcessor(LEFTFOLD_INVOICES_PROCESSOR));
  const std::string id = UniqueName("inv");
  RunResult r =
      SendUntilAnswered({"invoices.invoice", id, "CreateInvoice",
                         R"({"customer": "acme", "currency": "EUR", "dueDate": "2027-01-31"})",
                         "--command-id", "create-" + id},
                        kReadyTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ACCEPTED invoices.invoice/" + id + " version 1"));
  // 3 x 5.00 at 10%: subtotal 1500, tax 150, total 1650 cents.
  r = Cli(
      {"send", "invoices.invoice", id, "AddLineItem",
       R"({"item": {"id": "l1", "description": "nut", "quantity": 3, "unitPrice": 500, "taxRateBp": 1000}})",
       "--wait", "--timeout", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = Cli({"send", "invoices.invoice", id, "SendInvoice", "{}", "--wait", "--timeout", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("version 3"));
  // A sent invoice takes no more line items: a rejection, exit 2.
  r = Cli({"send", "invoices.invoice", id, "AddLineItem",
           R"({"item": {"id": "l2", "description": "bolt", "quantity": 1, "unitPrice": 100}})",
           "--wait", "--timeout", "30s"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("REJECTED invoices.invoice/" + id));

  r = Cli({"inspect", "invoices.invoice", id, "--timeout", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("state at version 3:"));
  EXPECT_THAT(r.out, HasSubstr(R"("status":"INVOICE_STATUS_SENT")"));
  EXPECT_THAT(r.out, HasSubstr(R"("total":"1650")"));
  StopProcessorCleanly("invoices-processor");
}

// The bank as its own process: accounts, and with --with-transfers the transfer aggregate and
// its process manager, so a transfer completes, and one to a closed account is compensated.
TEST_F(ProcessorBinaryTest, BankProcessorRunsTransfers) {
  ASSERT_NO_FATAL_FAILURE(StartGateway("bank.account,bank.transfer"));
  ASSERT_NO_FATAL_FAILURE(StartProcessor(LEFTFOLD_BANK_PROCESSOR, {"--with-transfers"}));
  const std::string a = UniqueName("a");
  const std::string b = UniqueName("b");
  RunResult r = SendUntilAnswered(
      {"bank.account", a, "OpenAccount", R"({"owner": "ann", "initialDeposit": 100})"},
      kReadyTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = Cli({"send", "bank.account", b, "OpenAccount", R"({"owner": "ben"})", "--wait", "--timeout",
           "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string t_ok = UniqueName("t-ok");
  r = SendUntilAnswered(
      {"bank.transfer", t_ok, "RequestTransfer",
       absl::StrCat(R"({"from": ")", a, R"(", "to": ")", b, R"(", "amount": 30})")},
      kReadyTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = InspectUntil("bank.transfer", t_ok, R"("status":"COMPLETED")");
  EXPECT_THAT(r.out, HasSubstr(R"("status":"COMPLETED")")) << r.err;
  r = InspectUntil("bank.account", b, R"("balance":"30")");
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"30")")) << r.err;

  // To a closed account: debited, the credit is refused, the source is refunded.
  r = Cli(
      {"send", "bank.account", b, "Withdraw", R"({"amount": 30})", "--wait", "--timeout", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = Cli({"send", "bank.account", b, "CloseAccount", "{}", "--wait", "--timeout", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string t_bad = UniqueName("t-bad");
  r = Cli({"send", "bank.transfer", t_bad, "RequestTransfer",
           absl::StrCat(R"({"from": ")", a, R"(", "to": ")", b, R"(", "amount": 20})"), "--wait",
           "--timeout", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = InspectUntil("bank.transfer", t_bad, R"("status":"COMPENSATED")");
  EXPECT_THAT(r.out, HasSubstr(R"("status":"COMPENSATED")")) << r.err;
  // COMPENSATED follows the refund's result: opened, debited 30, debited 20, refunded 20.
  r = Cli({"inspect", "bank.account", a, "--timeout", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("state at version 4:"));
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"70")"));

  StopProcessorCleanly("bank-processor");
  EXPECT_THAT(ReadFile(ProcessorLog()), HasSubstr("processors=2 process_managers=1"));
}

// Every flag the binaries share is in --help (the issue's "answer --help with every flag").
TEST(ProcessorBinaryHelpTest, HelpListsEveryFlag) {
  for (const char* binary :
       {LEFTFOLD_CLICKS_PROCESSOR, LEFTFOLD_INVOICES_PROCESSOR, LEFTFOLD_BANK_PROCESSOR}) {
    RunResult r = RunProcess({binary, "--help"}, absl::Seconds(10));
    EXPECT_EQ(r.exit_code, 0) << binary;
    for (const char* flag : {"--brokers", "--group", "--state-dir", "--instance-id", "--data-dir",
                             "--topic-prefix", "--partitions", "--guarantee", "--max-batch",
                             "--kafka-property", "--transaction-timeout", "--log-level"}) {
      EXPECT_THAT(r.out, HasSubstr(flag)) << binary;
    }
  }
  RunResult r = RunProcess({LEFTFOLD_BANK_PROCESSOR, "--help"}, absl::Seconds(10));
  EXPECT_THAT(r.out, HasSubstr("--with-transfers"));
}

}  // namespace
}  // namespace leftfold::testing
