// ExecuteStream over the embedded log: gRPC on port 0, the fake processor answering commands.
// The contract under test is the "ExecuteStream contract" of gateway_service.proto.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fake_processor.h"
#include "gateway_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "leftfold/gateway.h"
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
using v1::ExecuteStreamResponse;
using Stream = grpc::ClientReaderWriter<CommandEnvelope, ExecuteStreamResponse>;

using testing::Eventually;

class ExecuteStreamTest : public testing::GatewayFixture {
 protected:
  CommandEnvelope Command(const std::string& command_id, const std::string& aggregate_id,
                          const std::string& what) {
    CommandEnvelope c;
    c.set_command_id(command_id);
    c.set_aggregate_type(type_);
    c.set_aggregate_id(aggregate_id);
    *c.mutable_payload() = testing::FakeProcessor::Payload(what);
    return c;
  }

  // A stream with a 20 s call deadline (and the given per-command timeout, when set).
  std::unique_ptr<Stream> Open(CommandGateway::Stub& stub, grpc::ClientContext& ctx,
                               const std::string& command_timeout_ms = "") {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!command_timeout_ms.empty()) {
      ctx.AddMetadata("leftfold-command-timeout-ms", command_timeout_ms);
    }
    return stub.ExecuteStream(&ctx);
  }

  // Reads responses until the stream ends; keyed by command id (each id answered once unless
  // `all` collects repeats).
  static std::map<std::string, ExecuteStreamResponse> ReadAll(
      Stream& stream, std::vector<ExecuteStreamResponse>* all = nullptr) {
    std::map<std::string, ExecuteStreamResponse> out;
    ExecuteStreamResponse r;
    while (stream.Read(&r)) {
      if (all != nullptr) all->push_back(r);
      EXPECT_TRUE(out.emplace(r.command_id(), r).second || all != nullptr)
          << "answered twice: " << r.command_id();
    }
    return out;
  }

  size_t Inflight() { return servers_[0]->gateway().inflight(); }
};

TEST_F(ExecuteStreamTest, EveryCommandIsAnsweredWithItsResultThenTheStreamEndsOk) {
  constexpr int kCommands = 300;
  auto stub = StartGateway();
  StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  std::map<std::string, int> events_of;  // command id -> events requested
  for (int i = 0; i < kCommands; ++i) {
    std::string id = absl::StrCat("s-", i);
    events_of[id] = 1 + i % 3;
    ASSERT_TRUE(stream->Write(
        Command(id, absl::StrCat("acct-", i % 17), absl::StrCat("accept:", events_of[id]))));
  }
  ASSERT_TRUE(stream->WritesDone());
  auto answers = ReadAll(*stream);
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_EQ(answers.size(), static_cast<size_t>(kCommands));
  for (const auto& [id, events] : events_of) {
    SCOPED_TRACE(id);
    ASSERT_TRUE(answers.contains(id));
    const ExecuteStreamResponse& r = answers[id];
    ASSERT_TRUE(r.has_result()) << r.status().message();
    EXPECT_EQ(r.result().command_id(), id);
    EXPECT_EQ(r.result().outcome(), CommandResult::ACCEPTED);
    EXPECT_EQ(r.result().event_positions_size(), events);
  }
  // The last version of each aggregate is the sum of its commands' events: every command was
  // applied exactly once.
  std::map<std::string, int64_t> expected_version, max_version;
  for (int i = 0; i < kCommands; ++i) {
    expected_version[absl::StrCat("acct-", i % 17)] += 1 + i % 3;
  }
  for (const auto& [id, r] : answers) {
    int64_t& v = max_version[r.result().aggregate_id()];
    v = std::max(v, r.result().version());
  }
  EXPECT_EQ(max_version, expected_version);
  EXPECT_EQ(CommandsInLog(), kCommands);
  EXPECT_EQ(Inflight(), 0u);
}

TEST_F(ExecuteStreamTest, CommandsOfAStreamAreAppliedInTheOrderSent) {
  constexpr int kCommands = 200;
  auto stub = StartGateway();
  StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  // All to one aggregate, none waiting for the previous: the fake processor numbers them as it
  // applies them, so command i must end at version i + 1.
  for (int i = 0; i < kCommands; ++i) {
    ASSERT_TRUE(stream->Write(Command(absl::StrCat("o-", i), "acct-order", "accept")));
  }
  ASSERT_TRUE(stream->WritesDone());
  auto answers = ReadAll(*stream);
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(answers.size(), static_cast<size_t>(kCommands));
  for (int i = 0; i < kCommands; ++i) {
    const ExecuteStreamResponse& r = answers[absl::StrCat("o-", i)];
    ASSERT_TRUE(r.has_result()) << i;
    EXPECT_EQ(r.result().version(), i + 1) << "command o-" << i << " applied out of order";
  }
}

TEST_F(ExecuteStreamTest, ABadEnvelopeFailsAloneAndTheOthersSucceed) {
  auto stub = StartGateway();
  StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  for (int i = 0; i < 5; ++i) {
    CommandEnvelope c = Command(absl::StrCat("b-", i), "acct-b", "accept");
    if (i == 2) c.clear_aggregate_id();
    ASSERT_TRUE(stream->Write(c));
  }
  CommandEnvelope unrouted = Command("b-unrouted", "acct-b", "accept");
  unrouted.set_aggregate_type("not.routed");
  ASSERT_TRUE(stream->Write(unrouted));
  ASSERT_TRUE(stream->WritesDone());
  auto answers = ReadAll(*stream);
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(answers.size(), 6u);
  for (const std::string& bad : {std::string("b-2"), std::string("b-unrouted")}) {
    SCOPED_TRACE(bad);
    ASSERT_TRUE(answers[bad].has_status());
    EXPECT_EQ(answers[bad].status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_THAT(answers["b-2"].status().message(), HasSubstr("aggregate_id"));
  EXPECT_THAT(answers["b-unrouted"].status().message(), HasSubstr("aggregate_type"));
  for (const char* good : {"b-0", "b-1", "b-3", "b-4"}) {
    SCOPED_TRACE(good);
    ASSERT_TRUE(answers[good].has_result());
    EXPECT_EQ(answers[good].result().outcome(), CommandResult::ACCEPTED);
  }
  EXPECT_EQ(CommandsInLog(), 4);  // the bad ones never reached the log
}

TEST_F(ExecuteStreamTest, AGeneratedCommandIdIsReturned) {
  auto stub = StartGateway();
  StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  ASSERT_TRUE(stream->Write(Command("", "acct-g", "accept")));
  ASSERT_TRUE(stream->WritesDone());
  ExecuteStreamResponse r;
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.command_id().size(), 36u);  // UUID layout
  ASSERT_TRUE(r.has_result());
  EXPECT_EQ(r.result().command_id(), r.command_id());
  EXPECT_FALSE(stream->Read(&r));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ExecuteStreamTest, BytesThatAreNoEnvelopeFailAloneAndTheStreamGoesOn) {
  auto stub = StartGateway();
  StartProcessor();
  // A raw client: the typed one cannot send bytes that do not parse.
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", servers_[0]->port()),
                                     grpc::InsecureChannelCredentials());
  grpc::internal::RpcMethod method("/leftfold.v1.CommandGateway/ExecuteStream",
                                   grpc::internal::RpcMethod::BIDI_STREAMING);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel.get(), method, &ctx));
  auto bytes = [](const std::string& s) {
    grpc::Slice slice(s);
    return grpc::ByteBuffer(&slice, 1);
  };
  ASSERT_TRUE(
      stream->Write(bytes("\x0a\x7f"
                          "truncated")));  // a length past the end
  ASSERT_TRUE(stream->Write(bytes(Command("ok-1", "acct-r", "accept").SerializeAsString())));
  ASSERT_TRUE(stream->WritesDone());
  std::vector<ExecuteStreamResponse> all;
  grpc::ByteBuffer buffer;
  while (stream->Read(&buffer)) {
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(buffer.Dump(&slices).ok());
    std::string s;
    for (const auto& slice : slices)
      s.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    ASSERT_TRUE(all.emplace_back().ParseFromString(s));
  }
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(all.size(), 2u);
  // The bad one is answered at once (no log round trip), so first.
  EXPECT_EQ(all[0].command_id(), "");
  EXPECT_EQ(all[0].status().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(all[1].command_id(), "ok-1");
  ASSERT_TRUE(all[1].has_result());
  EXPECT_EQ(all[1].result().outcome(), CommandResult::ACCEPTED);
  EXPECT_EQ(all[1].result().command_id(), "ok-1");
}

TEST_F(ExecuteStreamTest, ADuplicateCommandIdGetsTheOriginalResult) {
  auto stub = StartGateway();
  auto& processor = StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  // Twice back to back (the second sent while the first is pending), then once more after the
  // first answer (from the gateway's result cache).
  ASSERT_TRUE(stream->Write(Command("dup-1", "acct-d", "accept:2")));
  ASSERT_TRUE(stream->Write(Command("dup-1", "acct-d", "accept:2")));
  std::vector<ExecuteStreamResponse> all;
  ExecuteStreamResponse r;
  ASSERT_TRUE(stream->Read(&r));
  all.push_back(r);
  ASSERT_TRUE(stream->Write(Command("dup-1", "acct-d", "accept:2")));
  ASSERT_TRUE(stream->WritesDone());
  while (stream->Read(&r)) all.push_back(r);
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(all.size(), 3u);
  for (const ExecuteStreamResponse& a : all) {
    EXPECT_EQ(a.command_id(), "dup-1");
    ASSERT_TRUE(a.has_result());
    EXPECT_EQ(a.result().SerializeAsString(), all[0].result().SerializeAsString());
  }
  EXPECT_EQ(all[0].result().version(), 2);
  EXPECT_EQ(processor.distinct_answered(), 1);
}

TEST_F(ExecuteStreamTest, ARejectionIsAResultNotAStreamError) {
  auto stub = StartGateway();
  StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  ASSERT_TRUE(stream->Write(Command("r-1", "acct-r", "reject:9")));
  ASSERT_TRUE(stream->Write(Command("r-2", "acct-r", "conflict")));
  ASSERT_TRUE(stream->Write(Command("r-3", "acct-r", "accept")));
  ASSERT_TRUE(stream->WritesDone());
  auto answers = ReadAll(*stream);
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(answers.size(), 3u);
  ASSERT_TRUE(answers["r-1"].has_result());
  EXPECT_EQ(answers["r-1"].result().outcome(), CommandResult::REJECTED);
  EXPECT_EQ(answers["r-1"].result().code(), 9);  // FAILED_PRECONDITION
  EXPECT_EQ(answers["r-1"].result().message(), "rejected by test");
  ASSERT_TRUE(answers["r-2"].has_result());
  EXPECT_EQ(answers["r-2"].result().outcome(), CommandResult::CONFLICT);
  ASSERT_TRUE(answers["r-3"].has_result());
  EXPECT_EQ(answers["r-3"].result().outcome(), CommandResult::ACCEPTED);
}

TEST_F(ExecuteStreamTest, ACommandWithoutResultTimesOutAloneWithItsId) {
  auto stub = StartGateway();
  auto& processor = StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx, "300");
  absl::Time start = absl::Now();
  ASSERT_TRUE(stream->Write(Command("slow-1", "acct-t", "hold")));
  ASSERT_TRUE(stream->Write(Command("fast-1", "acct-u", "accept")));
  std::map<std::string, ExecuteStreamResponse> answers;
  ExecuteStreamResponse r;
  while (answers.size() < 2 && stream->Read(&r)) answers[r.command_id()] = r;
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  ASSERT_TRUE(answers["fast-1"].has_result());
  ASSERT_TRUE(answers["slow-1"].has_status());
  EXPECT_EQ(answers["slow-1"].status().code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(answers["slow-1"].status().message(), HasSubstr("slow-1"));
  EXPECT_EQ(Inflight(), 0u);

  // The stream goes on; the late result is there for GetResult.
  ASSERT_TRUE(stream->Write(Command("fast-2", "acct-u", "accept")));
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.command_id(), "fast-2");
  EXPECT_TRUE(r.has_result());
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_FALSE(stream->Read(&r));
  EXPECT_TRUE(stream->Finish().ok());
  processor.Release("slow-1");
  v1::GetResultRequest req;
  req.set_command_id("slow-1");
  req.set_aggregate_type(type_);
  CommandResult late;
  EXPECT_TRUE(Eventually([&] {
    grpc::ClientContext g;
    return stub->GetResult(&g, req, &late).ok();
  }));
}

TEST_F(ExecuteStreamTest, CommandsOfAnUnservedTypeTimeOutWithTheirIds) {
  // Routed by the gateway but no processor runs: nothing ever answers.
  auto stub = StartGateway();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx, "200");
  ASSERT_TRUE(stream->Write(Command("lost-1", "acct-l", "accept")));
  ASSERT_TRUE(stream->Write(Command("lost-2", "acct-m", "accept")));
  ASSERT_TRUE(stream->WritesDone());
  auto answers = ReadAll(*stream);
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(answers.size(), 2u);
  for (const auto& [id, a] : answers) {
    ASSERT_TRUE(a.has_status()) << id;
    EXPECT_EQ(a.status().code(), grpc::StatusCode::DEADLINE_EXCEEDED) << id;
  }
}

TEST_F(ExecuteStreamTest, PendingCommandsAreAnsweredBeforeTheCallsDeadline) {
  auto stub = StartGateway();
  StartProcessor();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1500));
  auto stream = stub->ExecuteStream(&ctx);  // no per-command timeout: the 30 s default
  ASSERT_TRUE(stream->Write(Command("cd-1", "acct-cd", "hold")));
  // Before the call expires, the gateway answers the held command itself, naming it.
  ExecuteStreamResponse r;
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.command_id(), "cd-1");
  ASSERT_TRUE(r.has_status());
  EXPECT_EQ(r.status().code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(stream->Read(&r));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(Inflight(), 0u);
}

TEST_F(ExecuteStreamTest, AMalformedTimeoutEndsTheStreamAtOnce) {
  auto stub = StartGateway();
  for (std::string bad : {"soon", "0", "-5"}) {
    SCOPED_TRACE(bad);
    grpc::ClientContext ctx;
    auto stream = Open(*stub, ctx, bad);
    ExecuteStreamResponse r;
    EXPECT_FALSE(stream->Read(&r));
    grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("leftfold-command-timeout-ms"));
  }
}

TEST_F(ExecuteStreamTest, HalfCloseEndsTheStreamOnlyAfterEveryAnswer) {
  auto stub = StartGateway();
  auto& processor = StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->Write(Command(absl::StrCat("hc-", i), "acct-h", "hold")));
  }
  ASSERT_TRUE(stream->WritesDone());
  ASSERT_TRUE(Eventually([&] { return processor.commands_seen() == 3; }));
  // All three are held after the half-close: the stream stays open for their answers.
  EXPECT_EQ(Inflight(), 3u);
  std::vector<std::string> order;
  for (int i = 2; i >= 0; --i) {
    std::string id = absl::StrCat("hc-", i);
    processor.Release(id);
    ExecuteStreamResponse r;
    ASSERT_TRUE(stream->Read(&r));
    EXPECT_EQ(r.command_id(), id);  // completion order, not request order
    EXPECT_TRUE(r.has_result());
  }
  ExecuteStreamResponse none;
  EXPECT_FALSE(stream->Read(&none));
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Inflight(), 0u);
}

TEST_F(ExecuteStreamTest, TheGatewayReadsNoMoreThanThePendingCap) {
  auto stub = StartGateway({.max_stream_pending = 4});
  auto& processor = StartProcessor();
  std::atomic<bool> stop_sampling{false};
  std::atomic<size_t> max_inflight{0};
  std::thread sampler([&] {
    while (!stop_sampling) {
      size_t n = Inflight();
      if (n > max_inflight) max_inflight = n;
      absl::SleepFor(absl::Microseconds(200));
    }
  });
  absl::Cleanup join_sampler = [&] {
    stop_sampling = true;
    sampler.join();
  };
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(stream->Write(Command(absl::StrCat("cap-", i), "acct-c", "hold")));
  }
  ASSERT_TRUE(stream->Write(Command("fifth", "acct-f", "accept")));
  ASSERT_TRUE(Eventually([&] { return processor.commands_seen() == 4 && Inflight() == 4; }))
      << "seen " << processor.commands_seen() << " in flight " << Inflight();
  // Freeing one slot lets the fifth in: its answer comes right after the released one's.
  // Without the cap it would have been read at once and answered before any release.
  processor.Release("cap-0");
  ExecuteStreamResponse r;
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.command_id(), "cap-0");
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.command_id(), "fifth");
  EXPECT_TRUE(r.has_result());
  for (int i = 1; i < 4; ++i) processor.Release(absl::StrCat("cap-", i));
  ASSERT_TRUE(stream->WritesDone());
  auto rest = ReadAll(*stream);
  EXPECT_EQ(rest.size(), 3u);
  EXPECT_TRUE(stream->Finish().ok());
  std::move(join_sampler).Invoke();
  EXPECT_LE(max_inflight.load(), 4u);
  EXPECT_EQ(processor.commands_seen(), 5);
}

TEST_F(ExecuteStreamTest, OverTheInflightCapACommandGetsResourceExhaustedAlone) {
  auto stub = StartGateway({.max_inflight = 1});
  auto& processor = StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  ASSERT_TRUE(stream->Write(Command("o-held", "acct-o", "hold")));
  ASSERT_TRUE(Eventually([&] { return Inflight() == 1; }));
  ASSERT_TRUE(stream->Write(Command("o-over", "acct-p", "accept")));
  ExecuteStreamResponse r;
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.command_id(), "o-over");
  ASSERT_TRUE(r.has_status());
  EXPECT_EQ(r.status().code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  processor.Release("o-held");
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.command_id(), "o-held");
  EXPECT_TRUE(r.has_result());
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_FALSE(stream->Read(&r));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ExecuteStreamTest, ShutdownAnswersWhatWasReadThenEndsUnavailable) {
  auto stub = StartGateway();
  auto& processor = StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  ASSERT_TRUE(stream->Write(Command("sd-1", "acct-s", "hold")));
  ASSERT_TRUE(Eventually([&] { return processor.commands_seen() == 1; }));
  std::thread stopper([&] { servers_[0]->Shutdown(absl::Seconds(10)); });
  processor.Release("sd-1");
  ExecuteStreamResponse r;
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.command_id(), "sd-1");
  EXPECT_TRUE(r.has_result());
  EXPECT_FALSE(stream->Read(&r));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  stopper.join();
}

TEST_F(ExecuteStreamTest, ACancelledStreamFreesItsInflightSlots) {
  auto stub = StartGateway();
  auto& processor = StartProcessor();
  grpc::ClientContext ctx;
  auto stream = Open(*stub, ctx);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->Write(Command(absl::StrCat("cx-", i), "acct-x", "hold")));
  }
  ASSERT_TRUE(Eventually([&] { return processor.commands_seen() == 3 && Inflight() == 3; }));
  ctx.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return Inflight() == 0; }));
}

}  // namespace
}  // namespace leftfold
