// The example services end to end on the real broker: leftfold-dev runs as a child process on
// Kafka ($LEFTFOLD_TEST_BROKERS, a topic prefix of its own per test, a temp data dir, a free port)
// and the real `leftfold` CLI drives it as another child process; stdout and exit codes are
// checked. Covers the bank (accounts, a completed transfer, a compensated one), clicks, invoices,
// and a SIGKILL + restart of the server on the same data dir.
#include <signal.h>

#include <functional>
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
using ::testing::Not;

// Bounds one CLI process; the CLI's own --timeout values are below it.
constexpr absl::Duration kCliTimeout = absl::Seconds(90);
// Kafka group joins (and, after a SIGKILL, the dead member's session expiry) take seconds.
constexpr absl::Duration kReadyTimeout = absl::Seconds(120);
// A transfer runs through three or four commands and the process manager.
constexpr absl::Duration kTransferTimeout = absl::Seconds(60);

// One leftfold-dev child on the test broker, and the CLI pointed at it. Owned by one test.
class DevServer {
 public:
  DevServer(std::string prefix, std::string dir)
      : prefix_(std::move(prefix)), dir_(std::move(dir)) {}

  // Starts the server (a fresh port each time) and waits until every aggregate's processor has
  // answered a command: any result, accepted or rejected, proves the command -> result path.
  ::testing::AssertionResult Start() {
    int port = FreePort();
    if (port <= 0) return ::testing::AssertionFailure() << "no free port";
    address_ = absl::StrCat("127.0.0.1:", port);
    ++starts_;
    server_ = std::make_unique<Background>(
        std::vector<std::string>{LEFTFOLD_DEV_BINARY, "--listen", address_, "--brokers",
                                 TestBrokers(), "--topic-prefix", prefix_, "--data-dir",
                                 dir_ + "/data", "--partitions", "3"},
        log_path());
    if (server_->pid() <= 0) return ::testing::AssertionFailure() << "cannot spawn leftfold-dev";
    // Commands each aggregate answers whatever its state (exit 0 or 2 both mean "answered").
    const std::vector<std::vector<std::string>> probes = {
        {"clicks.user", "probe", "clicks.v1.Click", "{}"},
        {"bank.account", "probe", "bank.v1.Withdraw", R"({"amount": 1})"},
        {"bank.transfer", "probe", "bank.v1.RequestTransfer", "{}"},
        {"invoices.invoice", "probe", "invoices.v1.SendInvoice", "{}"},
    };
    absl::Time deadline = absl::Now() + kReadyTimeout;
    for (const auto& probe : probes) {
      RunResult r;
      do {
        if (!server_->Running()) {
          return ::testing::AssertionFailure() << "leftfold-dev exited; log " << log_path();
        }
        r = Cli({"send", probe[0], probe[1], probe[2], probe[3], "--wait", "--timeout", "5s"});
      } while (r.exit_code != 0 && r.exit_code != 2 && absl::Now() < deadline);
      if (r.exit_code != 0 && r.exit_code != 2) {
        return ::testing::AssertionFailure()
               << probe[0] << " never answered (last exit " << r.exit_code << ": " << r.out << r.err
               << "); log " << log_path();
      }
    }
    return ::testing::AssertionSuccess();
  }

  // SIGKILL, no chance to flush or commit anything; returns the decoded exit status.
  int Kill9() {
    kill(server_->pid(), SIGKILL);
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (server_->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    return server_->Terminate(absl::Seconds(1));  // already reaped: returns the status
  }

  int Terminate() { return server_->Terminate(absl::Seconds(60)); }

  RunResult Cli(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {LEFTFOLD_CLI_BINARY, "--server", address_, "--topic-prefix",
                                     prefix_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, kCliTimeout);
  }

  // `send --wait` with a generous deadline (the first command of a partition may wait for a
  // rebalance) and a chosen command id.
  RunResult Send(const std::string& type, const std::string& id, const std::string& command,
                 const std::string& json, const std::string& command_id) const {
    return Cli({"send", type, id, command, json, "--wait", "--timeout", "60s", "--command-id",
                command_id});
  }

  // `get VIEW KEY --after CMD --type T`: read-your-writes.
  RunResult GetAfter(const std::string& view, const std::string& key, const std::string& after,
                     const std::string& type) const {
    return Cli({"get", view, key, "--after", after, "--type", type, "--timeout", "60s"});
  }

  // Polls `inspect TYPE ID` until its output contains `want` or the deadline passes; returns the
  // last run.
  RunResult InspectUntil(const std::string& type, const std::string& id, const std::string& want,
                         absl::Duration timeout) const {
    return RunUntilOutputContains(
        [&] {
          return Cli({"inspect", type, id, "--timeout", "30s"});
        },
        want, timeout);
  }

  std::string log_path() const { return absl::StrCat(dir_, "/server-", starts_, ".log"); }

 private:
  std::string prefix_;
  std::string dir_;
  std::string address_;
  int starts_ = 0;
  std::unique_ptr<Background> server_;
};

class ExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(TestBrokers().empty()) << "LEFTFOLD_TEST_BROKERS is not set";
    dir_ = MakeTempDir("kafka_examples");
    server_ = std::make_unique<DevServer>(UniqueName("e2e") + ".", dir_);
    ASSERT_TRUE(server_->Start());
  }

  // Every test ends with a clean SIGTERM shutdown.
  void StopServer() {
    EXPECT_EQ(server_->Terminate(), 0)
        << "leftfold-dev exit status after SIGTERM; log " << server_->log_path();
  }

  std::string dir_;
  std::unique_ptr<DevServer> server_;
};

TEST_F(ExamplesTest, BankAccountsAndTransfers) {
  DevServer& s = *server_;
  const std::string a = UniqueName("alice");
  const std::string b = UniqueName("bob");
  const std::string c = UniqueName("carol");

  RunResult r = s.Send("bank.account", a, "OpenAccount",
                       R"({"owner": "alice", "initialDeposit": 100})", "open-" + a);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ACCEPTED bank.account/" + a + " version 1 events 1"));
  r = s.Send("bank.account", b, "OpenAccount", R"({"owner": "bob"})", "open-" + b);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = s.Send("bank.account", a, "Deposit", R"({"amount": 50})", "dep-" + a);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("version 2"));

  r = s.Send("bank.account", a, "Withdraw", R"({"amount": 1000})", "overdraw-" + a);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("REJECTED"));
  EXPECT_THAT(r.out, HasSubstr("insufficient funds"));

  // Read-your-writes: the view has applied the deposit when `get --after` answers.
  r = s.GetAfter("account_balances", a, "dep-" + a, "bank.account");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"150")"));

  // A transfer that completes.
  const std::string t1 = UniqueName("t-ok");
  r = s.Send("bank.transfer", t1, "RequestTransfer",
             absl::StrCat(R"({"from": ")", a, R"(", "to": ")", b, R"(", "amount": 30})"),
             "req-" + t1);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = s.InspectUntil("bank.transfer", t1, R"("status":"COMPLETED")", kTransferTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("status":"COMPLETED")")) << r.err;
  r = s.GetAfter("account_balances", a, t1 + "/debit", "bank.account");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"120")"));
  r = s.GetAfter("account_balances", b, t1 + "/credit", "bank.account");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"30")"));

  // A transfer to a closed account: debited, credit refused, source refunded.
  r = s.Send("bank.account", c, "OpenAccount", R"({"owner": "carol"})", "open-" + c);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = s.Send("bank.account", c, "CloseAccount", "{}", "close-" + c);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string t2 = UniqueName("t-closed");
  r = s.Send("bank.transfer", t2, "RequestTransfer",
             absl::StrCat(R"({"from": ")", a, R"(", "to": ")", c, R"(", "amount": 20})"),
             "req-" + t2);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = s.InspectUntil("bank.transfer", t2, R"("status":"COMPENSATED")", kTransferTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("status":"COMPENSATED")")) << r.err;
  EXPECT_THAT(r.out, HasSubstr("bank.v1.TransferFailed"));
  r = s.GetAfter("account_balances", a, t2 + "/refund", "bank.account");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"120")"));
  // The source's history shows the debit and the refund.
  r = s.Cli({"inspect", "bank.account", a});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"120")"));
  EXPECT_THAT(r.out, HasSubstr(R"({"amount":"20","reference":")" + t2 + "\"}"));
  r = s.GetAfter("account_balances", c, "close-" + c, "bank.account");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("closed":true)"));
  EXPECT_THAT(r.out, Not(HasSubstr(R"("balance":"20")")));

  StopServer();
}

TEST_F(ExamplesTest, FiveClicksAreCounted) {
  DevServer& s = *server_;
  const std::string user = UniqueName("user");
  for (int i = 0; i < 5; ++i) {
    RunResult r = s.Send("clicks.user", user, "Click", "{}", absl::StrCat("click-", user, "-", i));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("version ", i + 1)));
  }
  RunResult r = s.GetAfter("click_totals", "user/" + user, "click-" + user + "-4", "clicks.user");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("count":"5")"));
  StopServer();
}

TEST_F(ExamplesTest, InvoiceIsSentAndListedByStatus) {
  DevServer& s = *server_;
  const std::string id = UniqueName("inv");
  RunResult r = s.Send("invoices.invoice", id, "CreateInvoice",
                       R"({"currency": "EUR", "dueDate": "2027-01-31"})", "create-" + id);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // 2 x 10.00 at 19%: subtotal 2000, tax 380, total 2380 cents.
  r = s.Send(
      "invoices.invoice", id, "AddLineItem",
      R"({"item": {"id": "l1", "description": "widget", "quantity": 2, "unitPrice": 1000, "taxRateBp": 1900}})",
      "line-" + id);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = s.Send("invoices.invoice", id, "SetCustomer", R"({"customer": "acme"})", "cust-" + id);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = s.Send("invoices.invoice", id, "SendInvoice", "{}", "send-" + id);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("version 4"));

  r = s.Cli({"inspect", "invoices.invoice", id});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("state at version 4:"));
  EXPECT_THAT(r.out, HasSubstr(R"("status":"INVOICE_STATUS_SENT")"));
  EXPECT_THAT(r.out, HasSubstr(R"("total":"2380")"));
  EXPECT_THAT(r.out, HasSubstr(R"("customer":"acme")"));

  r = s.Cli({"scan", "invoice_list", "--prefix", "by_status/SENT/", "--after", "send-" + id,
             "--type", "invoices.invoice", "--timeout", "60s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("by_status/SENT/0000000000000002380/" + id + "\t"));
  EXPECT_THAT(r.out, HasSubstr(R"("customer":"acme")"));
  StopServer();
}

TEST_F(ExamplesTest, KilledServerRestartsWithResultsAndBalancesIntact) {
  DevServer& s = *server_;
  const std::string a = UniqueName("acc");
  RunResult r = s.Send("bank.account", a, "OpenAccount",
                       R"({"owner": "kim", "initialDeposit": 70})", "open-" + a);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  RunResult deposit = s.Send("bank.account", a, "Deposit", R"({"amount": 5})", "dep-" + a);
  ASSERT_EQ(deposit.exit_code, 0) << deposit.out << deposit.err;
  ASSERT_THAT(deposit.out, HasSubstr("ACCEPTED bank.account/" + a + " version 2"));
  r = s.GetAfter("account_balances", a, "dep-" + a, "bank.account");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_THAT(r.out, HasSubstr(R"("balance":"75")"));

  EXPECT_EQ(s.Kill9(), 128 + SIGKILL);
  ASSERT_TRUE(s.Start());

  // The re-sent command is deduplicated: the original result, same version and positions.
  RunResult again = s.Send("bank.account", a, "Deposit", R"({"amount": 5})", "dep-" + a);
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(again.out, deposit.out);
  EXPECT_THAT(again.out, HasSubstr("version 2"));

  r = s.GetAfter("account_balances", a, "dep-" + a, "bank.account");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"75")"));
  r = s.Cli({"inspect", "bank.account", a});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("state at version 2:"));
  EXPECT_THAT(r.out, Not(HasSubstr("v3 ")));

  // And the restarted server still takes new commands.
  r = s.Send("bank.account", a, "Withdraw", R"({"amount": 75})", "wd-" + a);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("version 3"));
  r = s.GetAfter("account_balances", a, "wd-" + a, "bank.account");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("balance":"0")"));
  StopServer();
}

}  // namespace
}  // namespace leftfold::testing
