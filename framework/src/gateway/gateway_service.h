// The CommandGateway callback service (Gateway::Impl): validation, the in-flight cap, Execute
// (and ExecuteStream) waiters, the recent-results cache and the subscription hubs. See README.md
// in this folder.
#pragma once

#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/command_producer.h"
#include "gateway/log_tail.h"
#include "gateway/subscriber.h"
#include "leftfold/gateway.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"
#include "topology/topics.h"

namespace leftfold::internal::gateway {

inline constexpr char kCommandIdMetadata[] = "leftfold-command-id";
inline constexpr char kResultMetadata[] = "leftfold-result-bin";
// Initial metadata of a subscription (see ResultFilter in gateway_service.proto).
inline constexpr char kPartitionsMetadata[] = "leftfold-partitions";
inline constexpr char kStartOffsetsMetadata[] = "leftfold-start-offsets";
inline constexpr char kEndOffsetsMetadata[] = "leftfold-end-offsets";

// "topic:partition:offset,..." (the format of kStartOffsetsMetadata / kEndOffsetsMetadata).
std::string FormatOffsets(const std::vector<log::TopicPartitionOffset>& offsets);
// "topic:count,..." for every topic of `offsets` (kPartitionsMetadata).
std::string FormatPartitionCounts(const std::vector<log::TopicPartitionOffset>& offsets);

// A 128-bit random id in UUID layout (8-4-4-4-12 hex).
std::string NewCommandId();

// UNAVAILABLE: the gateway is starting or stopping.
grpc::Status NotAccepting();
// RESOURCE_EXHAUSTED: `max` commands in flight.
grpc::Status Overloaded(size_t max);
// Fills in what the gateway owns (a command id when empty, the submission time).
void NormalizeInPlace(leftfold::v1::CommandEnvelope& c);
// Copies the request, then NormalizeInPlace.
leftfold::v1::CommandEnvelope Normalize(const leftfold::v1::CommandEnvelope& in);

// The gRPC status an Execute answers with for a result (OK for ACCEPTED).
grpc::Status StatusForResult(const leftfold::v1::CommandResult& result);

// Bounded least-recently-used map of results keyed by (aggregate type, command id). Holds each
// result serialized, as read from the log: storing costs no copy of a parsed message, and only
// the rare hit (a retried id, GetResult) parses. Not thread-safe.
class ResultCache {
 public:
  explicit ResultCache(size_t capacity) : capacity_(capacity) {}
  // Keeps the first result of a key (dedup re-publishes the original); a later Put only
  // refreshes its age.
  void Put(std::string key, std::string serialized);
  // The result, parsed; nullopt when unknown (or unparseable).
  std::optional<leftfold::v1::CommandResult> Find(absl::string_view key);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string key;
    std::string serialized;
  };
  size_t capacity_;
  std::list<Entry> entries_;  // front: newest
  // Keys view the entries' own keys (list nodes never move).
  absl::flat_hash_map<absl::string_view, std::list<Entry>::iterator> index_;
};

// One command waiting for its result: an Execute call, or one command of an ExecuteStream.
// Registered under `key` in Gateway::Impl's waiters (and its deadline on the timer) by Dispatch.
// Exactly one of {result, deadline, cancel, shutdown, produce failure} claims it and answers.
// Shared by the waiters map, the timer (weakly), the producer callback and its call or stream.
struct ExecWaiter {
  virtual ~ExecWaiter() = default;

  Gateway::Impl* impl = nullptr;
  std::string key;  // CacheKey(aggregate type, command id)
  std::string command_id;
  std::atomic<bool> claimed{false};

  // Further waiters for the same key (a retried id while the first is in flight): a chain from
  // the one the waiters map holds. Guarded by Gateway::Impl's mu_.
  std::shared_ptr<ExecWaiter> next_same_key;

  bool Claim() { return !claimed.exchange(true); }

  // Only after Claim() returned true. `result` is set when the result arrived (then `status` is
  // StatusForResult of it); otherwise `status` says why there is none. The waiter may move from
  // `*result` (callers pass a copy of their own where several waiters share one result).
  // `serialized` (optional): `*result` as read from the log, for waiters that answer in bytes.
  void Finish(const grpc::Status& status, leftfold::v1::CommandResult* result,
              const std::string* serialized = nullptr);

 protected:
  // Delivers the answer. The caller holds a reference to this waiter.
  virtual void Answer(const grpc::Status& status, leftfold::v1::CommandResult* result,
                      const std::string* serialized) = 0;
};

class CommandStream;

// "aggregate type\x1fcommand id": the key of the waiters map and of the result cache.
std::string CacheKey(const std::string& aggregate_type, const std::string& command_id);

// When a command's wait ends: `wait` from now, but a little before the call's deadline (if
// any), so that our own answer, naming the command, reaches the client before its timeout does.
absl::Time CommandDeadline(absl::Time now, absl::Duration wait, absl::Time call_deadline);

// The call's deadline as an absl::Time; InfiniteFuture when the client set none.
absl::Time CallDeadline(const grpc::CallbackServerContext& ctx);

}  // namespace leftfold::internal::gateway

namespace leftfold {

// CallbackService, except that ExecuteStream is a raw method (grpc::ByteBuffer in and out): a
// streamed command is produced as the bytes it arrived in and a result is answered with the
// bytes it was read as, never re-serialized (see execute_stream.h).
using GatewayServiceBase = leftfold::v1::CommandGateway::WithCallbackMethod_Submit<
    leftfold::v1::CommandGateway::WithCallbackMethod_Execute<
        leftfold::v1::CommandGateway::WithRawCallbackMethod_ExecuteStream<
            leftfold::v1::CommandGateway::WithCallbackMethod_GetResult<
                leftfold::v1::CommandGateway::WithCallbackMethod_SubscribeResults<
                    leftfold::v1::CommandGateway::WithCallbackMethod_SubscribeEvents<
                        leftfold::v1::CommandGateway::Service>>>>>>;

class Gateway::Impl final : public GatewayServiceBase {
 public:
  Impl(std::shared_ptr<Transport> transport, GatewayOptions options);
  ~Impl() override;

  absl::Status Start();
  void BeginShutdown();
  void Stop();
  size_t inflight() const { return inflight_.load(); }

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx,
                                   const leftfold::v1::CommandEnvelope* request,
                                   leftfold::v1::SubmitAck* response) override;
  grpc::ServerUnaryReactor* Execute(grpc::CallbackServerContext* ctx,
                                    const leftfold::v1::CommandEnvelope* request,
                                    leftfold::v1::CommandResult* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ExecuteStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* GetResult(grpc::CallbackServerContext* ctx,
                                      const leftfold::v1::GetResultRequest* request,
                                      leftfold::v1::CommandResult* response) override;
  grpc::ServerWriteReactor<leftfold::v1::CommandResult>* SubscribeResults(
      grpc::CallbackServerContext* ctx, const leftfold::v1::ResultFilter* request) override;
  grpc::ServerWriteReactor<leftfold::v1::EventEnvelope>* SubscribeEvents(
      grpc::CallbackServerContext* ctx, const leftfold::v1::EventFilter* request) override;

  // Called by a waiter when it ends (any way), and by the deadline timer.
  void ReleaseInflight() { inflight_.fetch_sub(1); }
  void Expire(const std::shared_ptr<internal::gateway::ExecWaiter>& waiter);
  void Forget(const std::shared_ptr<internal::gateway::ExecWaiter>& waiter);

  // The command path shared by Execute and ExecuteStream (internal::gateway::CommandStream).
  const GatewayOptions& options() const { return options_; }
  bool accepting() const { return accepting_.load(); }
  // INVALID_ARGUMENT naming the field, or OK.
  absl::Status Validate(const leftfold::v1::CommandEnvelope& c) const;
  // Takes an in-flight slot; false (nothing taken) at max_inflight.
  bool Admit();
  // For a validated, normalized command whose in-flight slot is taken: answers `waiter` from the
  // result cache when the id is known (nothing produced), else registers it for the result,
  // arms its deadline and produces the command. The waiter is answered exactly once, possibly
  // before this returns. `serialized`: `c` as bytes when the caller has them (else empty: `c`
  // is serialized here).
  void Dispatch(const leftfold::v1::CommandEnvelope& c, std::string serialized,
                const std::shared_ptr<internal::gateway::ExecWaiter>& waiter, absl::Time deadline);

 private:
  struct ReplaySource;
  template <typename Msg>
  using SinkPtr = std::shared_ptr<internal::gateway::Sink<Msg>>;

  internal::log::OutgoingRecord ToRecord(const leftfold::v1::CommandEnvelope& c,
                                         std::string serialized) const;
  void OnResult(internal::log::Record& r, const internal::gateway::PositionMap& next);
  void OnEvent(internal::log::Record& r, const internal::gateway::PositionMap& next);
  // Adds a command's deadline to the timer.
  void ArmDeadline(absl::Time deadline,
                   const std::shared_ptr<internal::gateway::ExecWaiter>& waiter);
  template <typename Msg, typename Filter>
  grpc::ServerWriteReactor<Msg>* Subscribe(grpc::CallbackServerContext* ctx, const Filter& filter,
                                           bool events);
  void RunReplay();
  void RunTimer();
  absl::Status EnsureEventsTail();

  const std::shared_ptr<Transport> transport_;
  const GatewayOptions options_;
  internal::log::Log& log_;
  absl::flat_hash_map<std::string, internal::AggregateTopics> routed_;
  std::vector<std::string> results_topics_;
  std::vector<std::string> events_topics_;
  // "topic:count,..." of the results / events topics, for live subscriptions' initial metadata.
  // Written by Start before accepting_ turns true, read-only afterwards.
  absl::flat_hash_map<std::string, int32_t> partition_counts_;

  internal::gateway::CommandProducer producer_;
  std::unique_ptr<internal::gateway::LogTail> results_tail_;
  // Started by the first live event subscription (EnsureEventsTail): a gateway nobody
  // subscribes to events on reads no events.
  absl::Mutex events_tail_mu_;
  std::unique_ptr<internal::gateway::LogTail> events_tail_ ABSL_GUARDED_BY(events_tail_mu_);
  bool events_tail_stopped_ ABSL_GUARDED_BY(events_tail_mu_) = false;

  std::atomic<size_t> inflight_{0};
  std::atomic<bool> accepting_{false};
  bool started_ = false;  // Start/Stop run on the owner's thread
  bool stopped_ = false;

  absl::Mutex mu_;
  // By key (viewing the held waiter's own `key`); further waiters of a key hang on its
  // `next_same_key` chain. One slot per command, no allocation per command.
  absl::flat_hash_map<absl::string_view, std::shared_ptr<internal::gateway::ExecWaiter>> waiters_
      ABSL_GUARDED_BY(mu_);
  internal::gateway::ResultCache cache_ ABSL_GUARDED_BY(mu_);

  absl::Mutex subs_mu_;
  std::vector<SinkPtr<leftfold::v1::CommandResult>> result_subs_ ABSL_GUARDED_BY(subs_mu_);
  std::vector<SinkPtr<leftfold::v1::EventEnvelope>> event_subs_ ABSL_GUARDED_BY(subs_mu_);

  // Subscriptions that start from given positions each read with a consumer of their own, all
  // polled by this one thread, which reads for a subscriber only while it has room (so a replay
  // is paced by its reader instead of overflowing).
  absl::Mutex replay_mu_;
  std::vector<std::unique_ptr<ReplaySource>> replay_pending_ ABSL_GUARDED_BY(replay_mu_);
  bool replay_stop_ ABSL_GUARDED_BY(replay_mu_) = false;
  std::thread replay_thread_;

  // Open ExecuteStreams, told by BeginShutdown to stop reading and end once drained. Pruned of
  // ended ones when a stream opens.
  absl::Mutex streams_mu_;
  std::vector<std::weak_ptr<internal::gateway::CommandStream>> streams_
      ABSL_GUARDED_BY(streams_mu_);

  // Command deadlines (Execute and ExecuteStream): one timer thread for all calls. A min-heap
  // (std::push_heap with Later) in a vector: no allocation per command. Entries of answered
  // commands stay until their deadline or until the heap outgrows twice the commands in flight,
  // when ArmDeadline drops them all at once (amortized O(1) per command, bounded memory).
  struct Deadline {
    absl::Time at;
    std::weak_ptr<internal::gateway::ExecWaiter> waiter;
  };
  struct Later {
    bool operator()(const Deadline& a, const Deadline& b) const { return a.at > b.at; }
  };
  absl::Mutex timer_mu_;
  std::vector<Deadline> deadlines_ ABSL_GUARDED_BY(timer_mu_);
  bool timer_stop_ ABSL_GUARDED_BY(timer_mu_) = false;
  bool timer_kick_ ABSL_GUARDED_BY(timer_mu_) = false;  // an earlier deadline was added
  std::thread timer_thread_;
};

}  // namespace leftfold
