// The transfer workflow end to end on the embedded log: the account processor, the transfer
// processor and the transfer process manager in one process, on one Transport.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bank/bank_aggregate.h"
#include "bank/transfer.h"
#include "bank/v1/bank.pb.h"
#include "gtest/gtest.h"
#include "leftfold/process_manager.h"
#include "leftfold/processor.h"
#include "leftfold/transport.h"
#include "log/log.h"
#include "support/test_env.h"
#include "topology/topics.h"

namespace bank {
namespace {

using bank::v1::Account;
using bank::v1::Transfer;
using leftfold::v1::CommandEnvelope;
using leftfold::v1::EventEnvelope;
namespace log = leftfold::internal::log;

constexpr absl::Duration kDeadline = absl::Seconds(30);

// Runs something with Run()/Stop() on a thread of its own.
template <typename T>
class Running {
 public:
  explicit Running(std::unique_ptr<T> runnable) : runnable_(std::move(runnable)) {
    thread_ = std::thread([this] { status_ = runnable_->Run(); });
  }
  ~Running() { (void)Stop(); }
  absl::Status Stop() {
    if (thread_.joinable()) {
      runnable_->Stop();
      thread_.join();
    }
    return status_;
  }
  T& operator*() { return *runnable_; }
  T* operator->() { return runnable_.get(); }

 private:
  std::unique_ptr<T> runnable_;
  std::thread thread_;
  absl::Status status_;
};

class TransferProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    leftfold::TransportOptions options;
    options.embedded_dir = leftfold::testing::MakeTempDir("transfer-log");
    options.topic_prefix = leftfold::testing::UniqueName("t") + ".";
    options.partitions = 2;
    auto transport = leftfold::Transport::Open(options);
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    accounts_dir_ = leftfold::testing::MakeTempDir("accounts");
    transfers_dir_ = leftfold::testing::MakeTempDir("transfers");
    auto producer = transport_->log_internal().NewProducer({});
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
  }

  std::unique_ptr<Running<leftfold::Processor>> StartProcessor(leftfold::AggregateDefinition def,
                                                               const std::string& dir) {
    auto processor = leftfold::Processor::Create(transport_, std::move(def), {.state_dir = dir});
    EXPECT_TRUE(processor.ok()) << processor.status();
    if (!processor.ok()) return nullptr;
    return std::make_unique<Running<leftfold::Processor>>(*std::move(processor));
  }
  void StartAccounts() { accounts_ = StartProcessor(AccountDefinition(), accounts_dir_); }
  void StartTransfers() { transfers_ = StartProcessor(TransferDefinition(), transfers_dir_); }

  std::unique_ptr<Running<leftfold::ProcessManager>> StartProcess(
      leftfold::ProcessManagerOptions options = {}) {
    auto pm = leftfold::ProcessManager::Create(transport_, TransferProcess(), options);
    EXPECT_TRUE(pm.ok()) << pm.status();
    if (!pm.ok()) return nullptr;
    return std::make_unique<Running<leftfold::ProcessManager>>(*std::move(pm));
  }

  void Send(const std::string& type, const std::string& id, const std::string& command_id,
            const google::protobuf::Message& payload) {
    CommandEnvelope command;
    command.set_command_id(command_id);
    command.set_aggregate_type(type);
    command.set_aggregate_id(id);
    command.mutable_payload()->PackFrom(payload);
    std::string topic =
        leftfold::internal::TopicsFor(transport_->options().topic_prefix, type).commands;
    ASSERT_TRUE(
        producer_->Produce({.topic = topic, .key = id, .value = command.SerializeAsString()}).ok());
    ASSERT_TRUE(producer_->Flush(absl::Seconds(10)).ok());
  }
  void OpenAccount(const std::string& id, int64_t balance) {
    v1::OpenAccount open;
    open.set_owner(id);
    open.set_initial_deposit(balance);
    Send(kAccountType, id, "open-" + id, open);
  }
  void RequestTransfer(const std::string& id, const std::string& from, const std::string& to,
                       int64_t amount) {
    v1::RequestTransfer request;
    request.set_from(from);
    request.set_to(to);
    request.set_amount(amount);
    Send(kTransferType, id, "request-" + id, request);
  }

  // Every committed record of `topic` now in the log.
  std::vector<log::Record> ReadAll(const std::string& topic) {
    log::Log& log = transport_->log_internal();
    auto ends = log.admin().EndOffsets(topic, log::Isolation::kReadCommitted);
    EXPECT_TRUE(ends.ok()) << ends.status();
    if (!ends.ok()) return {};
    auto consumer = log.NewConsumer({});
    EXPECT_TRUE(consumer.ok());
    std::vector<log::TopicPartitionOffset> assignment;
    for (int32_t p = 0; p < static_cast<int32_t>(ends->size()); ++p) {
      assignment.push_back({{topic, p}, 0});
    }
    EXPECT_TRUE((*consumer)->Assign(assignment).ok());
    std::vector<log::Record> records;
    absl::Time deadline = absl::Now() + kDeadline;
    // Done when every partition's position has reached the end offset read above.
    while (absl::Now() < deadline) {
      bool done = true;
      for (int32_t p = 0; p < static_cast<int32_t>(ends->size()); ++p) {
        auto position = (*consumer)->Position({topic, p});
        if (!position.ok() || *position < (*ends)[p]) done = false;
      }
      if (done) break;
      auto batch = (*consumer)->Poll(10000, absl::Milliseconds(50));
      if (!batch.ok()) continue;
      for (auto& r : *batch) records.push_back(std::move(r));
    }
    (void)(*consumer)->Close();
    return records;
  }

  std::vector<EventEnvelope> Events(const std::string& type) {
    std::vector<EventEnvelope> out;
    for (const log::Record& r :
         ReadAll(leftfold::internal::TopicsFor(transport_->options().topic_prefix, type).events)) {
      EventEnvelope e;
      EXPECT_TRUE(e.ParseFromString(r.value));
      out.push_back(e);
    }
    return out;
  }

  // The latest state of aggregate `id`, from the snapshots topic; the empty state when none.
  template <typename State>
  State Latest(const std::string& type, const std::string& id) {
    State state;
    int64_t version = -1;
    for (const log::Record& r : ReadAll(
             leftfold::internal::TopicsFor(transport_->options().topic_prefix, type).snapshots)) {
      leftfold::v1::Snapshot s;
      EXPECT_TRUE(s.ParseFromString(r.value));
      if (s.aggregate_id() == id && s.version() > version) {
        version = s.version();
        EXPECT_TRUE(s.state().UnpackTo(&state));
      }
    }
    return state;
  }
  Account AccountState(const std::string& id) { return Latest<Account>(kAccountType, id); }
  Transfer TransferState(const std::string& id) { return Latest<Transfer>(kTransferType, id); }

  // Polls `condition` until it holds or the deadline passes; returns whether it held.
  bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout = kDeadline) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (condition()) return true;
      absl::SleepFor(absl::Milliseconds(20));  // poll interval, not synchronisation
    }
    return condition();
  }
  bool WaitForTransfer(const std::string& id, Transfer::Status status) {
    return WaitFor([&] { return TransferState(id).status() == status; });
  }

  // Events of `account` whose reference is `transfer`, as "Withdrawn:30" / "Deposited:30".
  std::vector<std::string> MoneyMoves(const std::string& account, const std::string& transfer) {
    std::vector<std::string> out;
    for (const EventEnvelope& e : Events(kAccountType)) {
      if (e.aggregate_id() != account) continue;
      v1::Withdrawn w;
      v1::Deposited d;
      if (e.payload().UnpackTo(&w) && e.payload().Is<v1::Withdrawn>() &&
          w.reference() == transfer) {
        out.push_back(absl::StrCat("Withdrawn:", w.amount()));
      } else if (e.payload().Is<v1::Deposited>() && e.payload().UnpackTo(&d) &&
                 d.reference() == transfer) {
        out.push_back(absl::StrCat("Deposited:", d.amount()));
      }
    }
    return out;
  }

  std::shared_ptr<leftfold::Transport> transport_;
  std::string accounts_dir_, transfers_dir_;
  std::unique_ptr<log::Producer> producer_;
  std::unique_ptr<Running<leftfold::Processor>> accounts_, transfers_;
};

using Moves = std::vector<std::string>;

TEST_F(TransferProcessTest, MovesTheMoney) {
  StartAccounts();
  StartTransfers();
  auto pm = StartProcess();
  OpenAccount("alice", 100);
  OpenAccount("bob", 5);
  RequestTransfer("t-1", "alice", "bob", 30);

  ASSERT_TRUE(WaitForTransfer("t-1", Transfer::COMPLETED)) << TransferState("t-1").DebugString();
  EXPECT_EQ(AccountState("alice").balance(), 70);
  EXPECT_EQ(AccountState("bob").balance(), 35);
  EXPECT_EQ(MoneyMoves("alice", "t-1"), (Moves{"Withdrawn:30"}));
  EXPECT_EQ(MoneyMoves("bob", "t-1"), (Moves{"Deposited:30"}));
  EXPECT_TRUE(pm->Stop().ok());
  EXPECT_GE((*pm)->stats().commands_sent, 4);
}

TEST_F(TransferProcessTest, InsufficientFundsFailsWithoutMovingMoney) {
  StartAccounts();
  StartTransfers();
  auto pm = StartProcess();
  OpenAccount("alice", 10);
  OpenAccount("bob", 0);
  RequestTransfer("t-2", "alice", "bob", 50);

  ASSERT_TRUE(WaitForTransfer("t-2", Transfer::FAILED));
  Transfer t = TransferState("t-2");
  EXPECT_NE(t.failure_reason().find("insufficient funds"), std::string::npos) << t.failure_reason();
  EXPECT_FALSE(t.refund_pending());
  EXPECT_EQ(AccountState("alice").balance(), 10);
  EXPECT_EQ(AccountState("bob").balance(), 0);
  EXPECT_TRUE(MoneyMoves("alice", "t-2").empty());
  EXPECT_TRUE(MoneyMoves("bob", "t-2").empty());
  EXPECT_TRUE(pm->Stop().ok());
}

TEST_F(TransferProcessTest, RefusedCreditIsCompensated) {
  StartAccounts();
  StartTransfers();
  auto pm = StartProcess();
  OpenAccount("alice", 100);
  OpenAccount("bob", 0);
  Send(kAccountType, "bob", "close-bob", v1::CloseAccount());
  ASSERT_TRUE(WaitFor([&] { return AccountState("bob").closed(); }));
  RequestTransfer("t-3", "alice", "bob", 40);

  ASSERT_TRUE(WaitForTransfer("t-3", Transfer::COMPENSATED)) << TransferState("t-3").DebugString();
  EXPECT_NE(TransferState("t-3").failure_reason().find("account closed"), std::string::npos);
  EXPECT_EQ(AccountState("alice").balance(), 100);
  EXPECT_EQ(MoneyMoves("alice", "t-3"), (Moves{"Withdrawn:40", "Deposited:40"}));
  EXPECT_TRUE(MoneyMoves("bob", "t-3").empty());
  EXPECT_TRUE(AccountState("bob").closed());
  EXPECT_TRUE(pm->Stop().ok());
}

TEST_F(TransferProcessTest, TargetNeverOpenedIsCompensated) {
  StartAccounts();
  StartTransfers();
  auto pm = StartProcess();
  OpenAccount("alice", 100);
  RequestTransfer("t-4", "alice", "nobody", 25);
  ASSERT_TRUE(WaitForTransfer("t-4", Transfer::COMPENSATED));
  EXPECT_EQ(AccountState("alice").balance(), 100);
  EXPECT_EQ(MoneyMoves("alice", "t-4"), (Moves{"Withdrawn:25", "Deposited:25"}));
}

// The process manager stops after sending the debit and before seeing its result; a new instance
// of the group finishes the transfer. Then a replay of everything (a fresh group, as after lost
// offsets) re-sends every command and changes nothing.
TEST_F(TransferProcessTest, RestartedProcessCompletesExactlyOnce) {
  StartAccounts();
  StartTransfers();
  OpenAccount("alice", 100);
  OpenAccount("bob", 0);
  ASSERT_TRUE(WaitFor([&] { return AccountState("bob").open(); }));
  // With the account processor stopped, the debit waits in bank.account.commands: the first
  // process manager can only get as far as sending it.
  ASSERT_TRUE(accounts_->Stop().ok());
  accounts_.reset();

  auto first = StartProcess();
  RequestTransfer("t-5", "alice", "bob", 30);
  ASSERT_TRUE(WaitFor(
      [&] { return (*first)->stats().commands_sent >= 1 && (*first)->stats().batches >= 1; }));
  ASSERT_TRUE(first->Stop().ok());
  EXPECT_EQ((*first)->stats().commands_sent, 1);  // the debit only
  EXPECT_EQ(TransferState("t-5").status(), Transfer::REQUESTED);
  first.reset();

  StartAccounts();
  ASSERT_TRUE(WaitFor([&] { return AccountState("alice").balance() == 70; }));
  auto second = StartProcess();
  ASSERT_TRUE(WaitForTransfer("t-5", Transfer::COMPLETED));
  EXPECT_EQ(AccountState("alice").balance(), 70);
  EXPECT_EQ(AccountState("bob").balance(), 30);
  ASSERT_TRUE(second->Stop().ok());
  // The second instance resumed from the group's offsets: it did not re-send the debit.
  EXPECT_EQ((*second)->stats().commands_sent, 3);

  // Replay from the start under another group: every step runs again with the same ids.
  size_t transfer_events = Events(kTransferType).size();
  int64_t account_duplicates = (*accounts_)->stats().duplicates;
  int64_t transfer_duplicates = (*transfers_)->stats().duplicates;
  auto replay = StartProcess({.group = leftfold::testing::UniqueName("replay")});
  ASSERT_TRUE(WaitFor([&] {
    return (*accounts_)->stats().duplicates >= account_duplicates + 2 &&
           (*transfers_)->stats().duplicates >= transfer_duplicates + 2;
  }));
  EXPECT_GE((*replay)->stats().commands_sent, 4);
  EXPECT_EQ(AccountState("alice").balance(), 70);
  EXPECT_EQ(AccountState("bob").balance(), 30);
  EXPECT_EQ(MoneyMoves("alice", "t-5"), (Moves{"Withdrawn:30"}));
  EXPECT_EQ(MoneyMoves("bob", "t-5"), (Moves{"Deposited:30"}));
  EXPECT_EQ(Events(kTransferType).size(), transfer_events);
  EXPECT_EQ(TransferState("t-5").status(), Transfer::COMPLETED);
  EXPECT_TRUE(replay->Stop().ok());
}

}  // namespace
}  // namespace bank
