// The command gateway over the embedded log: gRPC on port 0, a fake processor answering commands.
#include "leftfold/gateway.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fake_processor.h"
#include "gateway_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "leftfold/transport.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"
#include "log/log.h"
#include "support/test_env.h"
#include "topology/topics.h"

namespace leftfold {
namespace {

using ::testing::HasSubstr;
using v1::CommandEnvelope;
using v1::CommandGateway;
using v1::CommandResult;

using testing::Eventually;

std::string TrailingValue(const grpc::ClientContext& ctx, const std::string& key) {
  auto md = ctx.GetServerTrailingMetadata();
  auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

class GatewayTest : public testing::GatewayFixture {
 protected:
  CommandEnvelope Command(const std::string& aggregate_id, const std::string& what) {
    CommandEnvelope c;
    c.set_aggregate_type(type_);
    c.set_aggregate_id(aggregate_id);
    *c.mutable_payload() = testing::FakeProcessor::Payload(what);
    return c;
  }

  grpc::Status Execute(CommandGateway::Stub& stub, const CommandEnvelope& c, CommandResult* out,
                       grpc::ClientContext* ctx = nullptr) {
    grpc::ClientContext local;
    if (ctx == nullptr) {
      ctx = &local;
      ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    }
    return stub.Execute(ctx, c, out);
  }
};

TEST_F(GatewayTest, ExecuteAcceptedReturnsResultWithEventPositions) {
  auto stub = StartGateway();
  StartProcessor();
  CommandResult r;
  grpc::Status s = Execute(*stub, Command("a-1", "accept:2"), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.outcome(), CommandResult::ACCEPTED);
  EXPECT_EQ(r.aggregate_id(), "a-1");
  EXPECT_EQ(r.command_id().size(), 36u);  // generated, UUID layout
  EXPECT_EQ(r.version(), 2);
  ASSERT_EQ(r.event_positions_size(), 2);
  EXPECT_EQ(r.event_positions(0).topic(), topics_.events);
}

TEST_F(GatewayTest, RejectionsMapToTheirGrpcCodesWithTheResultAttached) {
  auto stub = StartGateway();
  StartProcessor();
  struct Case {
    std::string what;
    grpc::StatusCode code;
    CommandResult::Outcome outcome;
    std::string message;
  };
  std::vector<Case> cases = {
      {"reject:9", grpc::StatusCode::FAILED_PRECONDITION, CommandResult::REJECTED,
       "rejected by test"},
      {"reject:5", grpc::StatusCode::NOT_FOUND, CommandResult::REJECTED, "rejected by test"},
      {"reject:3", grpc::StatusCode::INVALID_ARGUMENT, CommandResult::REJECTED, "rejected by test"},
      {"conflict", grpc::StatusCode::ABORTED, CommandResult::CONFLICT, "is at version 0"},
      {"fail", grpc::StatusCode::INTERNAL, CommandResult::FAILED, "handler failed"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    CommandResult r;
    grpc::Status s = Execute(*stub, Command("b-1", c.what), &r, &ctx);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
    CommandResult attached;
    ASSERT_TRUE(attached.ParseFromString(TrailingValue(ctx, "leftfold-result-bin")));
    EXPECT_EQ(attached.outcome(), c.outcome);
    EXPECT_EQ(attached.aggregate_id(), "b-1");
  }
}

TEST_F(GatewayTest, InvalidEnvelopesAreRejectedBeforeTheLog) {
  auto stub = StartGateway();
  struct Case {
    std::function<void(CommandEnvelope&)> spoil;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](CommandEnvelope& c) { c.clear_aggregate_type(); }, "aggregate_type"},
      {[](CommandEnvelope& c) { c.set_aggregate_type("not.routed"); }, "aggregate_type"},
      {[](CommandEnvelope& c) { c.clear_aggregate_id(); }, "aggregate_id"},
      {[](CommandEnvelope& c) { c.clear_payload(); }, "payload"},
      {[](CommandEnvelope& c) { c.set_expected_version(-1); }, "expected_version"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    CommandEnvelope bad = Command("c-1", "accept");
    c.spoil(bad);
    CommandResult r;
    grpc::Status s = Execute(*stub, bad, &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr(c.field));
    grpc::ClientContext ctx;
    v1::SubmitAck ack;
    s = stub->Submit(&ctx, bad, &ack);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr(c.field));
  }
  EXPECT_EQ(CommandsInLog(), 0);
}

TEST_F(GatewayTest, SubmitAnswersWithTheCommandsPosition) {
  auto stub = StartGateway();
  CommandEnvelope c = Command("d-1", "accept");
  c.set_command_id("my-id-1");
  grpc::ClientContext ctx;
  v1::SubmitAck ack;
  grpc::Status s = stub->Submit(&ctx, c, &ack);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(ack.command_id(), "my-id-1");
  EXPECT_EQ(ack.position().topic(), topics_.commands);
  EXPECT_EQ(ack.position().partition(), internal::log::PartitionForKey("d-1", 2));
  EXPECT_EQ(CommandsInLog(), 1);
}

TEST_F(GatewayTest, DuplicateCommandIdGetsTheOriginalResult) {
  auto stub = StartGateway();
  auto& processor = StartProcessor();
  CommandEnvelope c = Command("e-1", "accept");
  c.set_command_id("dup-1");
  CommandResult first;
  ASSERT_TRUE(Execute(*stub, c, &first).ok());
  // A second gateway has no cached copy: the command goes to the log again and the processor
  // re-publishes the original result.
  auto other = StartGateway({.results_lookback = 0});
  CommandResult again;
  ASSERT_TRUE(Execute(*other, c, &again).ok());
  CommandResult third;
  ASSERT_TRUE(Execute(*stub, c, &third).ok());
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(third.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(first.version(), 1);
  EXPECT_EQ(processor.distinct_answered(), 1);
  EXPECT_TRUE(Eventually([&] { return processor.commands_seen() == 2; }));
}

TEST_F(GatewayTest, DuplicatesInFlightEachGetTheResultAndExpireAlone) {
  // Four Executes of one held id wait together (one waiter chain); the first (the chain's head)
  // and the third (a middle link) expire on their short deadlines, then the result answers the
  // other two.
  auto stub = StartGateway();
  auto& processor = StartProcessor();
  CommandEnvelope c = Command("h-1", "hold");
  c.set_command_id("dup-held");
  struct Call {
    grpc::ClientContext ctx;
    CommandResult result;
    grpc::Status status;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < 4; ++i) {
    auto call = std::make_unique<Call>();
    bool short_deadline = i == 0 || i == 2;
    call->ctx.set_deadline(
        std::chrono::system_clock::now() +
        (short_deadline ? std::chrono::milliseconds(1500) : std::chrono::milliseconds(20000)));
    Call* raw = call.get();
    call->thread =
        std::thread([&stub, &c, raw] { raw->status = stub->Execute(&raw->ctx, c, &raw->result); });
    calls.push_back(std::move(call));
    // Dispatched (so registered) before the next one.
    ASSERT_TRUE(Eventually([&] { return processor.commands_seen() == i + 1; }));
  }
  calls[0]->thread.join();
  calls[2]->thread.join();
  EXPECT_EQ(calls[0]->status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(calls[2]->status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  processor.Release("dup-held");
  calls[1]->thread.join();
  calls[3]->thread.join();
  ASSERT_TRUE(calls[1]->status.ok()) << calls[1]->status.error_message();
  ASSERT_TRUE(calls[3]->status.ok()) << calls[3]->status.error_message();
  EXPECT_EQ(calls[1]->result.command_id(), "dup-held");
  EXPECT_EQ(calls[1]->result.SerializeAsString(), calls[3]->result.SerializeAsString());
  EXPECT_EQ(processor.distinct_answered(), 1);
}

TEST_F(GatewayTest, DeadlineThenGetResult) {
  auto stub = StartGateway();
  auto& processor = StartProcessor();
  CommandEnvelope c = Command("f-1", "hold");
  c.set_command_id("slow-1");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(800));
  CommandResult r;
  grpc::Status s = stub->Execute(&ctx, c, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(s.error_message(), HasSubstr("slow-1"));
  EXPECT_EQ(TrailingValue(ctx, "leftfold-command-id"), "slow-1");

  v1::GetResultRequest req;
  req.set_command_id("slow-1");
  req.set_aggregate_type(type_);
  {
    grpc::ClientContext g;
    CommandResult none;
    EXPECT_EQ(stub->GetResult(&g, req, &none).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  processor.Release("slow-1");
  CommandResult late;
  EXPECT_TRUE(Eventually([&] {
    grpc::ClientContext g;
    return stub->GetResult(&g, req, &late).ok();
  }));
  EXPECT_EQ(late.outcome(), CommandResult::ACCEPTED);
  EXPECT_EQ(late.command_id(), "slow-1");
}

TEST_F(GatewayTest, TwoInstancesSeeEachOthersResults) {
  auto a = StartGateway();
  auto b = StartGateway();
  StartProcessor();
  v1::ResultFilter filter;
  filter.add_aggregate_ids("g-1");
  grpc::ClientContext sub_ctx;
  auto reader = b->SubscribeResults(&sub_ctx, filter);
  reader->WaitForInitialMetadata();  // the subscription is live

  v1::EventFilter efilter;
  efilter.add_aggregate_ids("g-1");
  grpc::ClientContext ev_ctx;
  auto events = b->SubscribeEvents(&ev_ctx, efilter);
  events->WaitForInitialMetadata();

  CommandResult r;
  ASSERT_TRUE(Execute(*a, Command("g-2", "accept"), &r).ok());  // filtered out
  ASSERT_TRUE(Execute(*a, Command("g-1", "accept:2"), &r).ok());
  CommandResult seen;
  ASSERT_TRUE(reader->Read(&seen));
  EXPECT_EQ(seen.command_id(), r.command_id());
  v1::EventEnvelope e1, e2;
  ASSERT_TRUE(events->Read(&e1));
  ASSERT_TRUE(events->Read(&e2));
  EXPECT_EQ(e1.command_id(), r.command_id());
  EXPECT_EQ(e1.version(), 1);
  EXPECT_EQ(e2.version(), 2);
  sub_ctx.TryCancel();
  ev_ctx.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(events->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(GatewayTest, SlowSubscriberIsCutOffWithoutHurtingAFastOne) {
  constexpr int kCommands = 200;
  auto stub = StartGateway({.subscriber_buffer = 32});
  StartProcessor();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);  // keep the slow client's receive window small
  auto slow_stub = CommandGateway::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", servers_[0]->port()), grpc::InsecureChannelCredentials(), args));

  v1::ResultFilter filter;
  grpc::ClientContext slow_ctx, fast_ctx;
  auto slow = slow_stub->SubscribeResults(&slow_ctx, filter);
  slow->WaitForInitialMetadata();
  auto fast = stub->SubscribeResults(&fast_ctx, filter);
  fast->WaitForInitialMetadata();

  // The fast subscriber reads on its own thread while the commands go in, as a fast client
  // does, and it is never more than kAhead results behind: each submit waits for that. Without
  // the bound a busy machine could leave its reading thread unscheduled until it, too, had
  // overflowed the 32-message buffer (the slow one is cut off at 32 either way).
  constexpr size_t kAhead = 8;
  absl::Mutex mu;
  std::set<std::string> fast_seen;  // guarded by mu
  std::thread fast_reader([&] {
    CommandResult seen;
    while (fast->Read(&seen)) {
      absl::MutexLock lock(&mu);
      fast_seen.insert(seen.command_id());
      if (fast_seen.size() >= static_cast<size_t>(kCommands)) break;
    }
  });
  std::string echo(16 * 1024, 'x');  // big results fill the slow client's window quickly
  std::set<std::string> submitted;
  bool fast_fell_behind = false;
  for (int i = 0; i < kCommands && !fast_fell_behind; ++i) {
    {
      absl::MutexLock lock(&mu);
      auto caught_up = [&fast_seen, want = submitted.size()] {
        return fast_seen.size() + kAhead >= want;
      };
      fast_fell_behind = !mu.AwaitWithTimeout(absl::Condition(&caught_up), absl::Seconds(30));
    }
    if (fast_fell_behind) {
      fast_ctx.TryCancel();  // ends the reader's Read
      break;
    }
    CommandEnvelope c = Command(absl::StrCat("h-", i % 7), "accept");
    (*c.mutable_metadata())["echo"] = echo;
    grpc::ClientContext ctx;
    v1::SubmitAck ack;
    grpc::Status submit = stub->Submit(&ctx, c, &ack);
    EXPECT_TRUE(submit.ok()) << submit.error_message();
    if (!submit.ok()) fast_ctx.TryCancel();  // the reader would wait for it forever
    submitted.insert(ack.command_id());
  }
  fast_reader.join();
  ASSERT_FALSE(fast_fell_behind) << "the fast subscriber saw " << fast_seen.size() << " of "
                                 << submitted.size() << " results in 30 s";
  EXPECT_EQ(fast_seen, submitted);
  CommandResult r;

  // Only now does the slow one read: it got a bounded prefix, then RESOURCE_EXHAUSTED.
  std::set<std::string> slow_seen;
  while (slow->Read(&r)) slow_seen.insert(r.command_id());
  grpc::Status s = slow->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("resume from"));
  EXPECT_LT(slow_seen.size(), submitted.size());
  v1::Positions resume;
  ASSERT_TRUE(resume.ParseFromString(TrailingValue(slow_ctx, "leftfold-resume-bin")));
  ASSERT_GT(resume.positions_size(), 0);

  // Resuming from the positions delivers the rest.
  v1::ResultFilter from;
  *from.mutable_from() = resume.positions();
  grpc::ClientContext resume_ctx;
  auto resumed = stub->SubscribeResults(&resume_ctx, from);
  while (slow_seen.size() < submitted.size() && resumed->Read(&r)) slow_seen.insert(r.command_id());
  EXPECT_EQ(slow_seen, submitted);
  fast_ctx.TryCancel();
  resume_ctx.TryCancel();
  fast->Finish();
  resumed->Finish();
}

TEST_F(GatewayTest, OverloadAnswersResourceExhausted) {
  auto stub = StartGateway({.max_inflight = 1});
  auto& processor = StartProcessor();
  CommandEnvelope held = Command("i-1", "hold");
  held.set_command_id("held-1");
  std::thread t([&] {
    CommandResult r;
    EXPECT_TRUE(Execute(*stub, held, &r).ok());
  });
  ASSERT_TRUE(Eventually([&] { return servers_[0]->gateway().inflight() == 1; }));
  CommandResult r;
  grpc::Status s = Execute(*stub, Command("i-2", "accept"), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  processor.Release("held-1");
  t.join();
  EXPECT_TRUE(Execute(*stub, Command("i-3", "accept"), &r).ok());
}

TEST_F(GatewayTest, ShutdownDrainsInFlightExecuteAndEndsStreams) {
  auto stub = StartGateway();
  auto& processor = StartProcessor();
  grpc::ClientContext sub_ctx;
  auto reader = stub->SubscribeResults(&sub_ctx, v1::ResultFilter());
  reader->WaitForInitialMetadata();

  CommandEnvelope held = Command("j-1", "hold");
  held.set_command_id("drain-1");
  std::atomic<bool> done{false};
  grpc::Status exec_status;
  CommandResult exec_result;
  std::thread exec([&] {
    exec_status = Execute(*stub, held, &exec_result);
    done = true;
  });
  ASSERT_TRUE(Eventually([&] { return servers_[0]->gateway().inflight() == 1; }));
  ASSERT_TRUE(Eventually([&] { return processor.commands_seen() == 1; }));
  std::thread stopper([&] { servers_[0]->Shutdown(absl::Seconds(10)); });
  // The stream ends at once; the Execute stays until its result comes.
  CommandResult ignored;
  while (reader->Read(&ignored)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(done.load());
  processor.Release("drain-1");
  stopper.join();
  exec.join();
  EXPECT_TRUE(exec_status.ok()) << exec_status.error_message();
  EXPECT_EQ(exec_result.command_id(), "drain-1");
  // After shutdown nothing is served.
  grpc::ClientContext late;
  late.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::SubmitAck ack;
  EXPECT_FALSE(stub->Submit(&late, Command("j-2", "accept"), &ack).ok());
}

std::string InitialValue(const grpc::ClientContext& ctx, const std::string& key) {
  auto md = ctx.GetServerInitialMetadata();
  auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

// from_start replays every partition from 0; the initial metadata names the partition count and
// the subscription-time ends; stop_at_end ends the stream exactly there, so a command executed
// after the subscription opened is not part of the replay.
TEST_F(GatewayTest, FromStartReplayStopsAtTheSubscriptionTimeEndOffsets) {
  auto stub = StartGateway();
  StartProcessor();
  std::set<std::string> before;
  for (int i = 0; i < 6; ++i) {
    CommandResult r;
    ASSERT_TRUE(Execute(*stub, Command(absl::StrCat("k-", i), "accept:2"), &r).ok());
    before.insert(r.command_id());
  }
  auto ends = transport_->log_internal().admin().EndOffsets(
      topics_.events, internal::log::Isolation::kReadCommitted);
  ASSERT_TRUE(ends.ok()) << ends.status();
  ASSERT_EQ(ends->size(), 2u);

  v1::EventFilter filter;
  filter.add_aggregate_types(type_);
  filter.set_from_start(true);
  filter.set_stop_at_end(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = stub->SubscribeEvents(&ctx, filter);
  reader->WaitForInitialMetadata();
  EXPECT_EQ(InitialValue(ctx, "leftfold-partitions"), topics_.events + ":2");
  EXPECT_EQ(InitialValue(ctx, "leftfold-start-offsets"),
            absl::StrCat(topics_.events, ":0:0,", topics_.events, ":1:0"));
  EXPECT_EQ(
      InitialValue(ctx, "leftfold-end-offsets"),
      absl::StrCat(topics_.events, ":0:", (*ends)[0], ",", topics_.events, ":1:", (*ends)[1]));

  // Written after the replay started: past its end offsets, so not part of it.
  CommandResult after;
  ASSERT_TRUE(Execute(*stub, Command("k-0", "accept"), &after).ok());

  std::map<std::string, int> events_per_command;
  v1::EventEnvelope e;
  while (reader->Read(&e)) ++events_per_command[e.command_id()];
  grpc::Status s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(events_per_command.size(), before.size());
  for (const std::string& id : before) EXPECT_EQ(events_per_command[id], 2) << id;
  EXPECT_FALSE(events_per_command.contains(after.command_id()));
}

// `from` overrides from_start per partition; a replay of nothing ends at once.
TEST_F(GatewayTest, FromOverridesFromStartAndAnEmptyReplayEndsAtOnce) {
  auto stub = StartGateway();
  StartProcessor();
  std::map<int32_t, std::set<std::string>> by_partition;
  for (int i = 0; i < 8; ++i) {
    std::string id = absl::StrCat("m-", i);
    CommandResult r;
    ASSERT_TRUE(Execute(*stub, Command(id, "accept"), &r).ok());
    by_partition[internal::log::PartitionForKey(id, 2)].insert(r.command_id());
  }
  ASSERT_EQ(by_partition.size(), 2u) << "the ids should cover both partitions";
  auto ends = transport_->log_internal().admin().EndOffsets(
      topics_.results, internal::log::Isolation::kReadCommitted);
  ASSERT_TRUE(ends.ok()) << ends.status();

  // Partition 0 starts at its end: only partition 1's results come.
  v1::ResultFilter filter;
  filter.set_from_start(true);
  filter.set_stop_at_end(true);
  v1::Position* from = filter.add_from();
  from->set_topic(topics_.results);
  from->set_partition(0);
  from->set_offset((*ends)[0]);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = stub->SubscribeResults(&ctx, filter);
  std::set<std::string> seen;
  CommandResult r;
  while (reader->Read(&r)) seen.insert(r.command_id());
  grpc::Status s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(seen, by_partition[1]);
  EXPECT_EQ(InitialValue(ctx, "leftfold-start-offsets"),
            absl::StrCat(topics_.results, ":0:", (*ends)[0], ",", topics_.results, ":1:0"));

  // Both partitions from their end: nothing to read, the stream ends OK without any item.
  v1::ResultFilter empty;
  empty.set_stop_at_end(true);
  for (int32_t p = 0; p < 2; ++p) {
    v1::Position* f = empty.add_from();
    f->set_topic(topics_.results);
    f->set_partition(p);
    f->set_offset((*ends)[p]);
  }
  grpc::ClientContext empty_ctx;
  empty_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto none = stub->SubscribeResults(&empty_ctx, empty);
  EXPECT_FALSE(none->Read(&r));
  EXPECT_TRUE(none->Finish().ok());
}

TEST_F(GatewayTest, LiveSubscriptionTellsThePartitionCountAndRefusesStopAtEnd) {
  auto stub = StartGateway();
  grpc::ClientContext ctx;
  auto live = stub->SubscribeEvents(&ctx, v1::EventFilter());
  live->WaitForInitialMetadata();
  EXPECT_EQ(InitialValue(ctx, "leftfold-partitions"), topics_.events + ":2");
  ctx.TryCancel();
  live->Finish();

  v1::EventFilter bad;
  bad.set_stop_at_end(true);
  grpc::ClientContext bad_ctx;
  auto refused = stub->SubscribeEvents(&bad_ctx, bad);
  v1::EventEnvelope e;
  EXPECT_FALSE(refused->Read(&e));
  EXPECT_EQ(refused->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace leftfold
