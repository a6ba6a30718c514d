// The aggregate processor's behaviour, one suite for both backends. Instantiate with
//   INSTANTIATE_TEST_SUITE_P(Embedded, ProcessorTest, ::testing::Values(std::string()));
// or with the real broker's address.
#pragma once

#include <filesystem>
#include <optional>
#include <set>

#include "support/processor_harness.h"

namespace leftfold::testing {

class ProcessorTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string brokers() const { return GetParam() == "kafka" ? TestBrokers() : ""; }
};

// Folds a bank account's events the way the aggregate does, to check snapshots against.
inline bank::v1::Account FoldAccount(const std::vector<v1::EventEnvelope>& events,
                                     const std::string& id) {
  AggregateDefinition def = bank::AccountDefinition();
  auto state = def.NewState();
  for (const auto& e : events) {
    if (e.aggregate_id() != id) continue;
    EXPECT_TRUE(def.Apply(*state, e.payload()).ok());
  }
  bank::v1::Account account;
  account.CopyFrom(*state);
  return account;
}

// Per aggregate: versions 1..n, each once, in offset order within the partition.
inline void ExpectContiguousVersions(const std::vector<v1::EventEnvelope>& events) {
  std::map<std::string, int64_t> last;
  for (const auto& e : events) {
    EXPECT_EQ(e.version(), last[e.aggregate_id()] + 1)
        << "aggregate " << e.aggregate_id() << " command " << e.command_id();
    last[e.aggregate_id()] = e.version();
  }
}

TEST_P(ProcessorTest, AcceptsRejectsAndPublishesEventsResultsSnapshots) {
  ProcessorHarness h(brokers());
  h.StartProcessor();
  h.Send({BankCommand("c1", "acc-1", Open("alice", 100)), BankCommand("c2", "acc-1", DepositOf(50)),
          BankCommand("c3", "acc-1", WithdrawOf(500)),  // insufficient funds
          BankCommand("c4", "acc-2", DepositOf(5)),     // never opened
          BankCommand("c5", "acc-1", WithdrawOf(30))});
  auto results = h.Results(5);
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results["c1"].outcome(), v1::CommandResult::ACCEPTED);
  EXPECT_EQ(results["c1"].version(), 1);
  EXPECT_EQ(results["c2"].version(), 2);
  EXPECT_EQ(results["c3"].outcome(), v1::CommandResult::REJECTED);
  EXPECT_EQ(results["c3"].code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_NE(results["c3"].message().find("insufficient funds"), std::string::npos);
  EXPECT_EQ(results["c4"].outcome(), v1::CommandResult::REJECTED);
  EXPECT_EQ(results["c5"].outcome(), v1::CommandResult::ACCEPTED);
  EXPECT_EQ(results["c5"].version(), 3);
  for (const auto& [id, result] : results) {
    // Staged without it (the encoder writes it): accepted and rejected results alike.
    EXPECT_EQ(result.aggregate_type(), bank::kAccountType) << id;
    EXPECT_EQ(result.aggregate_id(), id == "c4" ? "acc-2" : "acc-1") << id;
  }

  auto events = h.Events(3);
  ASSERT_EQ(events.size(), 3u);
  ExpectContiguousVersions(events);
  std::set<std::string> event_commands;
  for (const auto& e : events) event_commands.insert(e.command_id());
  EXPECT_EQ(event_commands, (std::set<std::string>{"c1", "c2", "c5"}));

  // Each accepted result points at its events.
  ASSERT_EQ(results["c5"].event_positions_size(), 1);
  EXPECT_EQ(results["c5"].event_positions(0).topic(), h.topics().events);

  auto snapshots = h.Snapshots(1);
  ASSERT_TRUE(snapshots.contains("acc-1"));
  EXPECT_FALSE(snapshots.contains("acc-2"));
  bank::v1::Account state;
  ASSERT_TRUE(snapshots["acc-1"].state().UnpackTo(&state));
  EXPECT_EQ(state.balance(), 120);
  EXPECT_EQ(snapshots["acc-1"].version(), 3);
  EXPECT_EQ(state.SerializeAsString(), FoldAccount(events, "acc-1").SerializeAsString());
  EXPECT_TRUE(h.StopProcessor().ok());
}

// Results are sent with their events once the processor has learnt an events partition's
// offsets (two transactions); every position it predicted must be the real one.
TEST_P(ProcessorTest, ResultPositionsPointAtTheirEventsAcrossManyTransactions) {
  ProcessorHarness h(brokers());
  h.StartProcessor();
  // One command per transaction first (each waits for its result), then a burst.
  h.Send({BankCommand("p0", "acc-1", Open("alice", 100))});
  for (int i = 1; i <= 6; ++i) {
    h.Send({BankCommand(absl::StrCat("p", i), "acc-1", DepositOf(i))});
    ASSERT_EQ(h.Results(static_cast<size_t>(i) + 1).size(), static_cast<size_t>(i) + 1);
  }
  std::vector<v1::CommandEnvelope> burst;
  for (int i = 7; i < 40; ++i) {
    burst.push_back(BankCommand(absl::StrCat("p", i), absl::StrCat("acc-", i % 3), DepositOf(i)));
  }
  h.Send(burst);
  auto results = h.Results(40);
  ASSERT_EQ(results.size(), 40u);

  std::map<std::pair<int32_t, int64_t>, std::string> event_at;
  for (const auto& record : h.ReadAll(h.topics().events, 1)) {
    v1::EventEnvelope event;
    ASSERT_TRUE(event.ParseFromString(record.value));
    event_at[{record.partition, record.offset}] = event.command_id();
  }
  int accepted = 0;
  for (const auto& [id, result] : results) {
    if (result.outcome() != v1::CommandResult::ACCEPTED) continue;
    ++accepted;
    ASSERT_EQ(result.event_positions_size(), result.event_count()) << id;
    for (const v1::Position& p : result.event_positions()) {
      EXPECT_EQ(p.topic(), h.topics().events) << id;
      auto at = event_at.find({p.partition(), p.offset()});
      ASSERT_NE(at, event_at.end()) << id << " points at " << p.partition() << "@" << p.offset()
                                    << ", which holds no committed event";
      EXPECT_EQ(at->second, id) << id << " points at an event of " << at->second;
    }
  }
  EXPECT_EQ(accepted, 7 + 11);  // acc-0 and acc-2 were never opened: their deposits are rejected
  // Predictions held: no batch had to be aborted for a missed offset.
  EXPECT_EQ(h.processor().stats().aborted_transactions, 0);
}

TEST_P(ProcessorTest, DuplicateCommandIdGetsOriginalResultAndNoSecondEvent) {
  ProcessorHarness h(brokers());
  h.StartProcessor();
  // A repeat gets the original result as it was, correlation id included.
  auto with_correlation = [](v1::CommandEnvelope command, const char* correlation_id) {
    command.set_correlation_id(correlation_id);
    return command;
  };
  h.Send({BankCommand("open", "acc-1", Open("bob", 10)),
          with_correlation(BankCommand("d1", "acc-1", DepositOf(5)), "first")});
  ASSERT_EQ(h.Results(2).size(), 2u);
  // Same id again, in a later batch and twice within one batch.
  h.Send({with_correlation(BankCommand("d1", "acc-1", DepositOf(5)), "again"),
          with_correlation(BankCommand("d1", "acc-1", DepositOf(5)), "again")});
  h.Results(4);
  int d1_results = 0;
  std::set<std::string> d1_positions;
  for (const auto& r : h.all_results()) {
    if (r.command_id() != "d1") continue;
    ++d1_results;
    EXPECT_EQ(r.outcome(), v1::CommandResult::ACCEPTED);
    EXPECT_EQ(r.version(), 2);
    EXPECT_EQ(r.correlation_id(), "first");
    EXPECT_EQ(r.aggregate_id(), "acc-1");
    EXPECT_EQ(r.aggregate_type(), bank::kAccountType);
    ASSERT_EQ(r.event_positions_size(), 1);
    EXPECT_EQ(r.event_positions(0).topic(), h.topics().events);
    d1_positions.insert(r.event_positions(0).SerializeAsString());
  }
  EXPECT_EQ(d1_positions.size(), 1u) << "every copy must point at the one original event";
  EXPECT_EQ(d1_results, 3);
  EXPECT_EQ(h.Events(2).size(), 2u);
  EXPECT_EQ(h.processor().stats().duplicates, 2);

  // An original and its repeat in one batch.
  h.Send({with_correlation(BankCommand("d2", "acc-1", DepositOf(7)), "first"),
          with_correlation(BankCommand("d2", "acc-1", DepositOf(7)), "again")});
  h.Results(6);
  int d2_results = 0;
  for (const auto& r : h.all_results()) {
    if (r.command_id() != "d2") continue;
    ++d2_results;
    EXPECT_EQ(r.version(), 3);
    EXPECT_EQ(r.correlation_id(), "first");
    EXPECT_EQ(r.aggregate_id(), "acc-1");
    EXPECT_EQ(r.aggregate_type(), bank::kAccountType);
  }
  EXPECT_EQ(d2_results, 2);
  EXPECT_EQ(h.Events(3).size(), 3u);
  EXPECT_EQ(h.processor().stats().duplicates, 3);
}

// One command per batch, all waiting before the processor starts: every batch is decided while
// the one before it commits, so its state, its version and a repeated command id must come from
// that committing batch (nothing of it is in the cache or the store yet).
TEST_P(ProcessorTest, EachBatchSeesTheBatchCommittingBeforeIt) {
  ProcessorHarness h(brokers());
  h.StartProcessor();  // creates the topics
  ASSERT_TRUE(h.StopProcessor().ok());
  h.Send({BankCommand("o", "acc-1", Open("dana", 10)), BankCommand("d1", "acc-1", DepositOf(1)),
          BankCommand("d1", "acc-1", DepositOf(1)), BankCommand("d2", "acc-1", DepositOf(2)),
          BankCommand("w", "acc-1", WithdrawOf(100)), BankCommand("d3", "acc-1", DepositOf(3)),
          BankCommand("d3", "acc-1", DepositOf(3))});
  ProcessorOptions options;
  options.max_batch = 1;
  const int64_t started = absl::ToUnixSeconds(absl::Now());
  h.StartProcessor(options);
  auto results = h.Results(7);
  ASSERT_EQ(h.all_results().size(), 7u);
  // Every result says when its batch was decided; a repeat's, its original's (compared below).
  for (const auto& r : h.all_results()) {
    EXPECT_TRUE(r.has_processed_at()) << r.ShortDebugString();
    EXPECT_GE(r.processed_at().seconds(), started) << r.ShortDebugString();
    EXPECT_LE(r.processed_at().seconds(), absl::ToUnixSeconds(absl::Now())) << r.ShortDebugString();
  }
  EXPECT_EQ(results["o"].version(), 1);
  EXPECT_EQ(results["d1"].version(), 2);
  EXPECT_EQ(results["d2"].version(), 3);
  EXPECT_EQ(results["w"].outcome(), v1::CommandResult::REJECTED);
  EXPECT_EQ(results["d3"].version(), 4);
  std::map<std::string, std::set<std::string>> copies;
  for (const auto& r : h.all_results()) copies[r.command_id()].insert(r.SerializeAsString());
  EXPECT_EQ(copies["d1"].size(), 1u) << "the repeated d1 must get the original result";
  EXPECT_EQ(copies["d3"].size(), 1u) << "the repeated d3 must get the original result";

  auto events = h.Events(4);
  ASSERT_EQ(events.size(), 4u);
  ExpectContiguousVersions(events);
  auto snapshots = h.Snapshots(1);
  bank::v1::Account state;
  ASSERT_TRUE(snapshots["acc-1"].state().UnpackTo(&state));
  EXPECT_EQ(state.balance(), 16);
  EXPECT_EQ(state.SerializeAsString(), FoldAccount(events, "acc-1").SerializeAsString());
  EXPECT_EQ(h.processor().stats().duplicates, 2);
  // The last commit is counted once the processor awaited it (its results are visible before).
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (h.processor().stats().transactions < 7 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(h.processor().stats().transactions, 7) << "one transaction per batch of one";
  EXPECT_EQ(h.processor().stats().aborted_transactions, 0);
}

// Small batches, all waiting before the processor starts, each going out on the committer's
// thread while the next is decided. Exactly once, once a batch's event offsets are predicted,
// the next batch predicts its own from them; at least once, the next batch waits for the one
// going out before copying one of its results (their positions come with the deliveries).
// Either way every position must hold its event, a repeat in the next batch must get the
// original result, and exactly once no prediction may miss.
void ExpectSmallBatchesOverlapCorrectly(const std::string& brokers,
                                        ProcessorOptions::Guarantee guarantee,
                                        std::optional<size_t> cache_size = std::nullopt) {
  ProcessorHarness h(brokers);
  h.StartProcessor();  // creates the topics
  ASSERT_TRUE(h.StopProcessor().ok());
  std::vector<v1::CommandEnvelope> commands;
  for (int a = 0; a < 4; ++a) {
    commands.push_back(
        BankCommand(absl::StrCat("open-", a), absl::StrCat("acc-", a), Open("erin", 0)));
  }
  for (int i = 0; i < 160; ++i) {
    std::string account = absl::StrCat("acc-", i % 4);
    commands.push_back(BankCommand(absl::StrCat("d", i), account, DepositOf(1)));
    if (i % 10 == 9) {
      // The same id again, a few commands on: in this batch or the next, whose predecessor may
      // still be going out.
      commands.push_back(BankCommand(absl::StrCat("d", i - 4), account, DepositOf(1)));
    }
  }
  h.Send(commands);
  ProcessorOptions options;
  options.max_batch = 4;
  options.guarantee = guarantee;
  if (cache_size.has_value()) options.cache_size = *cache_size;
  h.StartProcessor(options);
  auto results = h.Results(commands.size());
  ASSERT_EQ(h.all_results().size(), commands.size());
  ASSERT_EQ(results.size(), 164u);

  auto events = h.Events(164);
  {
    std::map<std::string, int> per_id;
    for (const auto& e : events) ++per_id[e.command_id()];
    for (const auto& [id, n] : per_id) EXPECT_EQ(n, 1) << id << " has " << n << " events";
  }
  ASSERT_EQ(events.size(), 164u) << "one event per distinct command, none for a repeat";
  ExpectContiguousVersions(events);
  std::map<std::pair<int32_t, int64_t>, std::string> event_at;
  for (const auto& record : h.ReadAll(h.topics().events, 164)) {
    v1::EventEnvelope event;
    ASSERT_TRUE(event.ParseFromString(record.value));
    event_at[{record.partition, record.offset}] = event.command_id();
  }
  std::map<std::string, std::set<std::string>> copies;
  for (const auto& r : h.all_results()) {
    EXPECT_EQ(r.outcome(), v1::CommandResult::ACCEPTED) << r.command_id() << ": " << r.message();
    copies[r.command_id()].insert(r.SerializeAsString());
    ASSERT_EQ(r.event_positions_size(), 1) << r.command_id();
    const v1::Position& p = r.event_positions(0);
    auto at = event_at.find({p.partition(), p.offset()});
    ASSERT_NE(at, event_at.end()) << r.command_id() << " points at " << p.partition() << "@"
                                  << p.offset() << ", which holds no event";
    EXPECT_EQ(at->second, r.command_id());
  }
  for (const auto& [id, distinct] : copies) {
    EXPECT_EQ(distinct.size(), 1u) << id << ": a repeat must get the original result";
  }
  auto snapshots = h.Snapshots(4);
  for (int a = 0; a < 4; ++a) {
    std::string id = absl::StrCat("acc-", a);
    bank::v1::Account state;
    ASSERT_TRUE(snapshots[id].state().UnpackTo(&state));
    EXPECT_EQ(state.balance(), 40) << id;
    EXPECT_EQ(state.SerializeAsString(), FoldAccount(events, id).SerializeAsString()) << id;
  }
  EXPECT_EQ(h.processor().stats().duplicates, 16);
  EXPECT_EQ(h.processor().stats().aborted_transactions, 0) << "a prediction missed";
}

TEST_P(ProcessorTest, PredictedBatchesGoOutWhileTheNextIsDecided) {
  ExpectSmallBatchesOverlapCorrectly(brokers(), ProcessorOptions::Guarantee::kExactlyOnce);
}

TEST_P(ProcessorTest, AtLeastOnceBatchesGoOutWhileTheNextIsDecided) {
  ExpectSmallBatchesOverlapCorrectly(brokers(), ProcessorOptions::Guarantee::kAtLeastOnce);
}

// With no state cache, or one state, states leave the cache (or never enter it) before the
// store writer wrote them: each must still be read back, never an older one from the store.
TEST_P(ProcessorTest, StatesTheCacheLetGoBeforeTheyWereStoredAreStillRead) {
  for (size_t cache_size : {0, 1}) {
    SCOPED_TRACE(absl::StrCat("cache_size ", cache_size));
    ExpectSmallBatchesOverlapCorrectly(brokers(), ProcessorOptions::Guarantee::kExactlyOnce,
                                       cache_size);
  }
}

// At least once: records are delivered, then the offsets committed outside any transaction.
// Results still carry their events' positions, repeats still get the original result, and a
// restart resumes after the committed offsets.
TEST_P(ProcessorTest, AtLeastOnceDeliversThenCommitsAndStillDeduplicates) {
  ProcessorHarness h(brokers());
  ProcessorOptions options;
  options.guarantee = ProcessorOptions::Guarantee::kAtLeastOnce;
  h.StartProcessor(options);
  h.Send({BankCommand("o", "acc-1", Open("erin", 10)), BankCommand("d1", "acc-1", DepositOf(1))});
  ASSERT_EQ(h.Results(2).size(), 2u);
  h.Send({BankCommand("d1", "acc-1", DepositOf(1)), BankCommand("d2", "acc-1", DepositOf(2))});
  auto results = h.Results(4);
  ASSERT_EQ(h.all_results().size(), 4u);
  EXPECT_EQ(results["o"].version(), 1);
  EXPECT_EQ(results["d1"].version(), 2);
  EXPECT_EQ(results["d2"].version(), 3);
  std::set<std::string> d1_copies;
  for (const auto& r : h.all_results()) {
    if (r.command_id() == "d1") d1_copies.insert(r.SerializeAsString());
  }
  EXPECT_EQ(d1_copies.size(), 1u) << "the repeated d1 must get the original result";

  std::map<std::pair<int32_t, int64_t>, std::string> event_at;
  for (const auto& record : h.ReadAll(h.topics().events, 3)) {
    v1::EventEnvelope event;
    ASSERT_TRUE(event.ParseFromString(record.value));
    event_at[{record.partition, record.offset}] = event.command_id();
  }
  EXPECT_EQ(event_at.size(), 3u);
  for (const char* id : {"o", "d1", "d2"}) {
    ASSERT_EQ(results[id].event_positions_size(), 1) << id;
    const v1::Position& p = results[id].event_positions(0);
    EXPECT_EQ((event_at[{p.partition(), p.offset()}]), id);
    // Filled in on delivery (nothing is predicted at least once), its topic by the encoder.
    EXPECT_EQ(p.topic(), h.topics().events) << id;
    EXPECT_EQ(results[id].aggregate_type(), bank::kAccountType) << id;
  }

  // A restart resumes after the committed offsets: only the new command is decided.
  ASSERT_TRUE(h.StopProcessor().ok());
  h.StartProcessor(options);
  h.Send({BankCommand("d3", "acc-1", DepositOf(3))});
  results = h.Results(5);
  EXPECT_EQ(results["d3"].version(), 4);
  EXPECT_EQ(h.all_results().size(), 5u);
  EXPECT_EQ(h.processor().stats().commands, 1);
}

TEST_P(ProcessorTest, StaleExpectedVersionIsAConflict) {
  ProcessorHarness h(brokers());
  h.StartProcessor();
  h.Send({BankCommand("o", "acc-9", Open("carol", 1)),
          BankCommand("ok", "acc-9", DepositOf(1), /*expected_version=*/1),
          BankCommand("stale", "acc-9", DepositOf(1), /*expected_version=*/1)});
  auto results = h.Results(3);
  EXPECT_EQ(results["ok"].outcome(), v1::CommandResult::ACCEPTED);
  EXPECT_EQ(results["stale"].outcome(), v1::CommandResult::CONFLICT);
  EXPECT_EQ(results["stale"].version(), 2);
  EXPECT_EQ(results["stale"].code(), static_cast<int>(absl::StatusCode::kAborted));
}

TEST_P(ProcessorTest, MalformedAndUnknownCommandsAreRejectedAndThePartitionGoesOn) {
  ProcessorHarness h(brokers(), /*partitions=*/1);
  h.StartProcessor();
  h.SendRaw("acc-1", "\xff\xff not a protobuf");
  v1::CommandEnvelope unknown = BankCommand("u", "acc-1", Open("x"));
  unknown.mutable_payload()->set_type_url("type.googleapis.com/bank.v1.NoSuchCommand");
  h.Send({unknown, BankCommand("after", "acc-1", Open("dave", 3))});
  auto results = h.Results(3);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[""].outcome(), v1::CommandResult::REJECTED);
  EXPECT_EQ(results[""].code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(results["u"].code(), static_cast<int>(absl::StatusCode::kUnimplemented));
  EXPECT_EQ(results["after"].outcome(), v1::CommandResult::ACCEPTED);
}

// Batches of one command alternate between the processor's two batch slots, so each command is
// parsed into the message that held the command two before it. Nothing of that one may show:
// not its payload, expected version or correlation id.
TEST_P(ProcessorTest, AParsedCommandKeepsNothingOfTheOneBeforeItInItsPlace) {
  ProcessorHarness h(brokers(), /*partitions=*/1);
  h.StartProcessor();  // creates the topics
  ASSERT_TRUE(h.StopProcessor().ok());
  v1::CommandEnvelope open = BankCommand("o", "acc-1", Open("fay", 10), /*expected_version=*/0);
  open.set_correlation_id("corr-o");
  (*open.mutable_metadata())["k"] = "v";
  open.mutable_submitted_at()->set_seconds(1764200000);
  v1::CommandEnvelope deposit = BankCommand("d1", "acc-1", DepositOf(5), /*expected_version=*/1);
  deposit.set_correlation_id("corr-d1");
  v1::CommandEnvelope no_payload = BankCommand("np", "acc-1", DepositOf(1));
  no_payload.clear_payload();
  h.Send({open, deposit, no_payload, BankCommand("d2", "acc-1", DepositOf(1)),
          BankCommand("d3", "acc-1", DepositOf(1))});
  ProcessorOptions options;
  options.max_batch = 1;
  h.StartProcessor(options);
  auto results = h.Results(5);
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results["o"].correlation_id(), "corr-o");
  EXPECT_EQ(results["d1"].version(), 2);
  EXPECT_EQ(results["np"].outcome(), v1::CommandResult::REJECTED);
  EXPECT_EQ(results["np"].code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(results["np"].correlation_id(), "") << "the correlation id of 'o' leaked";
  EXPECT_EQ(results["d2"].outcome(), v1::CommandResult::ACCEPTED)
      << "the expected version of 'd1' leaked: " << results["d2"].message();
  EXPECT_EQ(results["d2"].version(), 3);
  EXPECT_EQ(results["d3"].version(), 4);
}

TEST_P(ProcessorTest, ThrowingHandlerBecomesFailedResult) {
  ProcessorHarness h(brokers(), 1);
  AggregateDefinition throwing =
      Aggregate<bank::v1::Account>(bank::kAccountType)
          .Decide<bank::v1::OpenAccount>([](const bank::v1::Account&,
                                            const bank::v1::OpenAccount& open,
                                            Emit& emit) -> absl::Status {
            if (open.owner() == "boom") throw std::runtime_error("handler exploded");
            bank::v1::AccountOpened e;
            e.set_owner(open.owner());
            emit(e);
            return absl::OkStatus();
          })
          .Apply<bank::v1::AccountOpened>(
              [](bank::v1::Account& s, const bank::v1::AccountOpened& e) {
                s.set_owner(e.owner());
              });
  h.StartProcessor({}, throwing);
  h.Send({BankCommand("b", "acc-1", Open("boom")), BankCommand("fine", "acc-2", Open("erin"))});
  auto results = h.Results(2);
  EXPECT_EQ(results["b"].outcome(), v1::CommandResult::FAILED);
  EXPECT_NE(results["b"].message().find("handler exploded"), std::string::npos);
  EXPECT_EQ(results["fine"].outcome(), v1::CommandResult::ACCEPTED);
}

TEST_P(ProcessorTest, RestartAndWipedStoreContinueFromTheLog) {
  ProcessorHarness h(brokers());
  h.StartProcessor();
  h.Send({BankCommand("o", "acc-1", Open("frank", 10)), BankCommand("d", "acc-1", DepositOf(10))});
  ASSERT_EQ(h.Results(2).size(), 2u);
  ASSERT_TRUE(h.StopProcessor().ok());

  // Wipe the local stores: snapshots and the dedup index must come back from the log.
  std::filesystem::remove_all(h.state_dir());
  h.StartProcessor();
  h.Send({BankCommand("d", "acc-1", DepositOf(10)),  // duplicate of an old command
          BankCommand("w", "acc-1", WithdrawOf(15))});
  h.Results(4);
  std::map<std::string, std::vector<v1::CommandResult>> by_id;
  for (const auto& r : h.all_results()) by_id[r.command_id()].push_back(r);
  ASSERT_EQ(by_id["d"].size(), 2u);
  EXPECT_EQ(by_id["d"][1].version(), 2) << "the duplicate must get the original result";
  ASSERT_EQ(by_id["w"].size(), 1u);
  EXPECT_EQ(by_id["w"][0].outcome(), v1::CommandResult::ACCEPTED);
  EXPECT_EQ(by_id["w"][0].version(), 3);
  auto events = h.Events(3);
  EXPECT_EQ(events.size(), 3u);
  ExpectContiguousVersions(events);
  EXPECT_EQ(FoldAccount(events, "acc-1").balance(), 5);
  EXPECT_GT(h.processor().stats().restored_snapshots, 0);
}

TEST_P(ProcessorTest, NewDefinitionVersionRebuildsStatesFromEvents) {
  ProcessorHarness h(brokers(), 1);
  h.StartProcessor();
  h.Send({BankCommand("o", "acc-1", Open("gina", 10)), BankCommand("d", "acc-1", DepositOf(10))});
  ASSERT_EQ(h.Results(2).size(), 2u);
  ASSERT_TRUE(h.StopProcessor().ok());

  // Version 2 of the definition counts deposits twice: only a rebuild from events shows it.
  AggregateDefinition v2 =
      Aggregate<bank::v1::Account>(bank::kAccountType)
          .Version(2)
          .Decide<bank::v1::Deposit>(
              [](const bank::v1::Account&, const bank::v1::Deposit& d, Emit& emit) -> absl::Status {
                bank::v1::Deposited e;
                e.set_amount(d.amount());
                emit(e);
                return absl::OkStatus();
              })
          .Apply<bank::v1::AccountOpened>(
              [](bank::v1::Account& s, const bank::v1::AccountOpened& e) {
                s.set_owner(e.owner());
                s.set_balance(e.initial_deposit());
              })
          .Apply<bank::v1::Deposited>([](bank::v1::Account& s, const bank::v1::Deposited& e) {
            s.set_balance(s.balance() + 2 * e.amount());
          });
  h.StartProcessor({}, v2);
  h.Send({BankCommand("d2", "acc-1", DepositOf(1), /*expected_version=*/2)});
  auto results = h.Results(3);
  ASSERT_EQ(results["d2"].outcome(), v1::CommandResult::ACCEPTED) << results["d2"].message();
  EXPECT_EQ(results["d2"].version(), 3);
  auto snapshots = h.Snapshots(2);
  bank::v1::Account state;
  ASSERT_TRUE(snapshots["acc-1"].state().UnpackTo(&state));
  EXPECT_EQ(snapshots["acc-1"].definition_version(), 2);
  EXPECT_EQ(state.balance(), 10 + 2 * 10 + 2 * 1);
}

// ProcessorOptions::workers: each worker is a group member of its own and owns some of the
// partitions; every command still gets exactly one result and its events once, in order.
TEST_P(ProcessorTest, WorkersSplitThePartitionsAndProcessEachCommandOnce) {
  ProcessorHarness h(brokers(), /*partitions=*/4);
  ProcessorOptions options;
  options.workers = 2;
  h.StartProcessor(options);
  std::vector<v1::CommandEnvelope> opens, deposits;
  for (int a = 0; a < 12; ++a) {
    opens.push_back(BankCommand(absl::StrCat("o", a), absl::StrCat("acc-", a), Open("w", 0)));
  }
  h.Send(opens);
  for (int i = 0; i < 96; ++i) {
    deposits.push_back(
        BankCommand(absl::StrCat("d", i), absl::StrCat("acc-", i % 12), DepositOf(1)));
  }
  // Half now, half later, plus a duplicate of an early command in the later half.
  h.Send(std::vector<v1::CommandEnvelope>(deposits.begin(), deposits.begin() + 48));
  ASSERT_EQ(h.Results(60).size(), 60u);
  std::vector<v1::CommandEnvelope> rest(deposits.begin() + 48, deposits.end());
  rest.push_back(BankCommand("d0", "acc-0", DepositOf(1)));
  h.Send(rest);
  auto results = h.Results(109);
  ASSERT_EQ(results.size(), 108u);
  for (const auto& [id, result] : results) {
    EXPECT_EQ(result.outcome(), v1::CommandResult::ACCEPTED) << id << " " << result.message();
  }
  std::map<std::string, int> copies;
  for (const auto& r : h.all_results()) ++copies[r.command_id()];
  for (const auto& [id, n] : copies) EXPECT_EQ(n, id == "d0" ? 2 : 1) << id;
  auto events = h.Events(108);
  ASSERT_EQ(events.size(), 108u) << "one event per command, none for the duplicate";
  ExpectContiguousVersions(events);
  auto snapshots = h.Snapshots(12);
  ASSERT_EQ(snapshots.size(), 12u);
  for (const auto& [id, snapshot] : snapshots) EXPECT_EQ(snapshot.version(), 9) << id;
  ProcessorStats stats = h.processor().stats();
  EXPECT_EQ(stats.committed, 109);
  EXPECT_EQ(stats.duplicates, 1);
  EXPECT_TRUE(h.StopProcessor().ok());
}

}  // namespace leftfold::testing
