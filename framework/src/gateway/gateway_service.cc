#include "gateway/gateway_service.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "common/status_grpc.h"
#include "common/thread_name.h"
#include "gateway/execute_stream.h"
#include "leftfold/logging.h"

namespace leftfold::internal::gateway {

using leftfold::v1::CommandEnvelope;
using leftfold::v1::CommandResult;
using leftfold::v1::EventEnvelope;

std::string NewCommandId() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (static_cast<uint64_t>(std::random_device{}()) << 32)};
  uint64_t hi = rng();
  uint64_t lo = rng();
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff,
                         lo >> 48, lo & 0xffffffffffffULL);
}

grpc::Status StatusForResult(const CommandResult& r) {
  switch (r.outcome()) {
    case CommandResult::ACCEPTED:
      return grpc::Status::OK;
    case CommandResult::REJECTED: {
      absl::StatusCode code = CanonicalCode(r.code());
      if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
      return ToGrpcStatus(absl::Status(code, r.message()));
    }
    case CommandResult::CONFLICT:
      return grpc::Status(grpc::StatusCode::ABORTED,
                          absl::StrCat("version conflict: ", r.aggregate_type(), " ",
                                       r.aggregate_id(), " is at version ", r.version(),
                                       r.message().empty() ? "" : ": ", r.message()));
    case CommandResult::FAILED: {
      absl::StatusCode code = CanonicalCode(r.code());
      if (code == absl::StatusCode::kOk) code = absl::StatusCode::kInternal;
      return ToGrpcStatus(absl::Status(code, r.message()));
    }
    default:
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat("result without outcome for command ", r.command_id()));
  }
}

std::string FormatOffsets(const std::vector<log::TopicPartitionOffset>& offsets) {
  std::string out;
  for (const log::TopicPartitionOffset& o : offsets) {
    absl::StrAppend(&out, out.empty() ? "" : ",", o.tp.topic, ":", o.tp.partition, ":", o.offset);
  }
  return out;
}

std::string FormatPartitionCounts(const std::vector<log::TopicPartitionOffset>& offsets) {
  std::vector<std::pair<std::string, int32_t>> counts;  // in topic order of `offsets`
  for (const log::TopicPartitionOffset& o : offsets) {
    if (counts.empty() || counts.back().first != o.tp.topic) counts.push_back({o.tp.topic, 0});
    counts.back().second = std::max(counts.back().second, o.tp.partition + 1);
  }
  std::string out;
  for (const auto& [topic, n] : counts)
    absl::StrAppend(&out, out.empty() ? "" : ",", topic, ":", n);
  return out;
}

void ResultCache::Put(std::string key, std::string serialized) {
  if (capacity_ == 0) return;
  if (auto it = index_.find(key); it != index_.end()) {
    // The first result of an id is the one dedup re-publishes; keep it, refresh its age.
    entries_.splice(entries_.begin(), entries_, it->second);
    return;
  }
  entries_.push_front({std::move(key), std::move(serialized)});
  index_.emplace(entries_.front().key, entries_.begin());
  if (entries_.size() > capacity_) {
    index_.erase(entries_.back().key);
    entries_.pop_back();
  }
}

std::optional<CommandResult> ResultCache::Find(absl::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  entries_.splice(entries_.begin(), entries_, it->second);
  CommandResult result;
  if (!result.ParseFromString(it->second->serialized)) return std::nullopt;
  return result;
}

void ExecWaiter::Finish(const grpc::Status& status, CommandResult* result,
                        const std::string* serialized) {
  // Released first: a client that sees the answer may send its next command at once.
  impl->ReleaseInflight();
  Answer(status, result, serialized);
}

std::string CacheKey(const std::string& aggregate_type, const std::string& command_id) {
  return absl::StrCat(aggregate_type, "\x1f", command_id);
}

absl::Time CommandDeadline(absl::Time now, absl::Duration wait, absl::Time call_deadline) {
  absl::Time deadline = now + wait;
  if (call_deadline != absl::InfiniteFuture()) {
    absl::Duration margin = std::min(absl::Milliseconds(200), (call_deadline - now) / 10);
    deadline = std::min(deadline, call_deadline - margin);
  }
  return deadline;
}

absl::Time CallDeadline(const grpc::CallbackServerContext& ctx) {
  return ctx.deadline() == std::chrono::system_clock::time_point::max()
             ? absl::InfiniteFuture()
             : absl::FromChrono(ctx.deadline());
}

namespace {

// The waiter of one Execute call; finishing it finishes the call.
struct UnaryWaiter final : ExecWaiter {
  grpc::ServerUnaryReactor* reactor = nullptr;  // valid until claimed and finished
  grpc::CallbackServerContext* ctx = nullptr;
  CommandResult* response = nullptr;

 protected:
  void Answer(const grpc::Status& status, CommandResult* result,
              const std::string* /*serialized*/) override {
    if (result != nullptr) {
      if (!status.ok()) ctx->AddTrailingMetadata(kResultMetadata, result->SerializeAsString());
      *response = std::move(*result);
    } else if (status.error_code() != grpc::StatusCode::CANCELLED) {
      // No result (deadline, shutdown, the log refused it): name the command for GetResult.
      ctx->AddTrailingMetadata(kCommandIdMetadata, command_id);
    }
    reactor->Finish(status);
  }
};

class ExecuteReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit ExecuteReactor(std::shared_ptr<ExecWaiter> waiter) : waiter_(std::move(waiter)) {}
  void OnCancel() override {
    if (!waiter_->Claim()) return;
    waiter_->impl->Forget(waiter_);
    waiter_->Finish(grpc::Status::CANCELLED, nullptr);
  }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<ExecWaiter> waiter_;
};

std::vector<log::TopicPartitionOffset> FromPositions(
    const google::protobuf::RepeatedPtrField<leftfold::v1::Position>& from) {
  std::vector<log::TopicPartitionOffset> out;
  for (const leftfold::v1::Position& p : from) {
    out.push_back({{p.topic(), p.partition()}, p.offset()});
  }
  return out;
}

}  // namespace
}  // namespace leftfold::internal::gateway

namespace leftfold {

using internal::gateway::ExecWaiter;
using internal::gateway::PositionMap;
using internal::gateway::Sink;
using leftfold::v1::CommandEnvelope;
using leftfold::v1::CommandResult;
using leftfold::v1::EventEnvelope;

struct Gateway::Impl::ReplaySource {
  bool events = false;
  SinkPtr<CommandResult> result_sink;
  SinkPtr<EventEnvelope> event_sink;
  std::vector<std::string> topics;
  std::vector<internal::log::TopicPartitionOffset> from;
  bool from_start = false;
  bool stop_at_end = false;
  std::unique_ptr<internal::log::Consumer> consumer;
  PositionMap next;
  PositionMap start;
  // stop_at_end: the partitions not yet read up to their end offset at subscription time.
  PositionMap pending_ends;
  // stop_at_end: every partition's end offset at subscription time; records at or past it are
  // not delivered (a batch may reach beyond it).
  PositionMap ends;

  // Drops the partitions read up to their end. The consumer's Position (which, unlike the last
  // record, moves past transaction markers) is trusted only once a record of the partition was
  // read: before that the Kafka consumer answers with the high watermark, which would end a
  // replay whose records are not fetched yet. Cost: see README, "Known limits".
  void UpdateCaughtUp() {
    for (auto it = pending_ends.begin(); it != pending_ends.end();) {
      const internal::log::TopicPartition& tp = it->first;
      int64_t end = it->second;
      bool done = start[tp] >= end || next[tp] >= end;
      if (!done && next[tp] > start[tp]) {
        absl::StatusOr<int64_t> pos = consumer->Position(tp);
        done = pos.ok() && *pos >= end;
      }
      it = done ? pending_ends.erase(it) : std::next(it);
    }
  }

  bool done() const { return events ? event_sink->done() : result_sink->done(); }
  size_t room() const { return events ? event_sink->room() : result_sink->room(); }
  void End(const grpc::Status& s) {
    if (events) {
      event_sink->End(s);
    } else {
      result_sink->End(s);
    }
  }
  void EndWhenDrained(const grpc::Status& s) {
    if (events) {
      event_sink->EndWhenDrained(s);
    } else {
      result_sink->EndWhenDrained(s);
    }
  }
  void SendInitialMetadata(const std::vector<std::pair<std::string, std::string>>& metadata) {
    if (events) {
      event_sink->SendInitialMetadata(metadata);
    } else {
      result_sink->SendInitialMetadata(metadata);
    }
  }
};

Gateway::Impl::Impl(std::shared_ptr<Transport> transport, GatewayOptions options)
    : transport_(std::move(transport)),
      options_(std::move(options)),
      log_(transport_->log_internal()),
      producer_(log_),
      cache_(options_.result_cache_size) {
  for (const std::string& type : options_.aggregate_types) {
    internal::AggregateTopics topics =
        internal::TopicsFor(transport_->options().topic_prefix, type);
    results_topics_.push_back(topics.results);
    events_topics_.push_back(topics.events);
    routed_[type] = std::move(topics);
  }
}

Gateway::Impl::~Impl() { Stop(); }

absl::Status Gateway::Impl::Start() {
  if (started_) return absl::FailedPreconditionError("gateway already started");
  started_ = true;
  if (options_.ensure_topics) {
    for (const auto& [type, topics] : routed_) {
      absl::StatusOr<int32_t> n =
          internal::EnsureTopics(log_.admin(), topics, transport_->options().partitions);
      if (!n.ok()) return n.status();
    }
  }
  if (absl::Status s = producer_.Start(); !s.ok()) return s;
  results_tail_ = std::make_unique<internal::gateway::LogTail>(
      log_, results_topics_, options_.results_lookback,
      [this](internal::log::Record& r, const PositionMap& next) { OnResult(r, next); });
  if (absl::Status s = results_tail_->Start(); !s.ok()) return s;
  // Live subscribers must not see the lookback as "new"; a slow log only delays start-up.
  if (!results_tail_->WaitCaughtUp(absl::Seconds(10))) {
    LogWarning("gateway", "results reader not caught up after 10s; starting anyway");
  }
  {
    std::vector<std::string> all = results_topics_;
    all.insert(all.end(), events_topics_.begin(), events_topics_.end());
    // Only informative (live subscriptions' leftfold-partitions): a failure here must not stop a
    // gateway whose tails already started.
    absl::StatusOr<std::vector<internal::log::TopicPartitionOffset>> ends =
        internal::gateway::EndOffsets(log_.admin(), all);
    if (!ends.ok()) {
      LogWarning("gateway", "partition counts unknown; live subscriptions will report 0",
                 {{"error", ends.status().ToString()}});
    } else {
      for (const auto& e : *ends) {
        int32_t& n = partition_counts_[e.tp.topic];
        n = std::max(n, e.tp.partition + 1);
      }
    }
  }
  replay_thread_ = std::thread([this] {
    internal::NameThisThread("lf-gw-replay");
    RunReplay();
  });
  timer_thread_ = std::thread([this] {
    internal::NameThisThread("lf-gw-timer");
    RunTimer();
  });
  accepting_ = true;
  std::string types;
  for (const std::string& t : options_.aggregate_types)
    absl::StrAppend(&types, types.empty() ? "" : ",", t);
  LogInfo("gateway", "started", {{"aggregate_types", types}, {"backend", transport_->backend()}});
  return absl::OkStatus();
}

void Gateway::Impl::BeginShutdown() {
  accepting_ = false;
  grpc::Status bye(grpc::StatusCode::UNAVAILABLE, "gateway is shutting down");
  std::vector<SinkPtr<CommandResult>> rs;
  std::vector<SinkPtr<EventEnvelope>> es;
  {
    absl::MutexLock lock(&subs_mu_);
    rs.swap(result_subs_);
    es.swap(event_subs_);
  }
  for (auto& s : rs) s->End(bye);
  for (auto& s : es) s->End(bye);
  {
    absl::MutexLock lock(&replay_mu_);
    replay_stop_ = true;  // the replay thread ends its streams as it exits
  }
  std::vector<std::weak_ptr<internal::gateway::CommandStream>> streams;
  {
    absl::MutexLock lock(&streams_mu_);
    streams.swap(streams_);
  }
  for (auto& weak : streams) {
    if (auto stream = weak.lock(); stream != nullptr) stream->Shutdown();
  }
}

void Gateway::Impl::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  BeginShutdown();
  if (replay_thread_.joinable()) replay_thread_.join();
  {
    absl::MutexLock lock(&timer_mu_);
    timer_stop_ = true;
  }
  if (timer_thread_.joinable()) timer_thread_.join();
  // Answered or failed: every queued command gets its callback before the producer goes.
  producer_.Stop();
  if (results_tail_ != nullptr) results_tail_->Stop();
  {
    absl::MutexLock lock(&events_tail_mu_);
    events_tail_stopped_ = true;
    if (events_tail_ != nullptr) events_tail_->Stop();
  }
  std::vector<std::shared_ptr<ExecWaiter>> waiting;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, head] : waiters_) {
      for (std::shared_ptr<ExecWaiter> w = head; w != nullptr; w = w->next_same_key) {
        waiting.push_back(w);
      }
    }
    for (auto& w : waiting) w->next_same_key.reset();
    waiters_.clear();
  }
  for (auto& w : waiting) {
    if (!w->Claim()) continue;
    w->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           absl::StrCat("gateway stopped before the result of command ",
                                        w->command_id, " arrived; it may still be applied")),
              nullptr);
  }
  LogInfo("gateway", "stopped");
}

absl::Status Gateway::Impl::Validate(const CommandEnvelope& c) const {
  if (c.aggregate_type().empty()) {
    return absl::InvalidArgumentError("aggregate_type: must be set");
  }
  if (!routed_.contains(c.aggregate_type())) {
    return absl::InvalidArgumentError(
        absl::StrCat("aggregate_type: '", c.aggregate_type(), "' is not routed by this gateway"));
  }
  if (c.aggregate_id().empty()) return absl::InvalidArgumentError("aggregate_id: must be set");
  if (!c.has_payload() || c.payload().type_url().empty()) {
    return absl::InvalidArgumentError(
        "payload: must be set (a google.protobuf.Any with a type_url)");
  }
  if (c.has_expected_version() && c.expected_version() < 0) {
    return absl::InvalidArgumentError("expected_version: must not be negative");
  }
  return absl::OkStatus();
}

bool Gateway::Impl::Admit() {
  if (inflight_.fetch_add(1) >= options_.max_inflight) {
    inflight_.fetch_sub(1);
    return false;
  }
  return true;
}

internal::log::OutgoingRecord Gateway::Impl::ToRecord(const CommandEnvelope& c,
                                                      std::string serialized) const {
  return {.topic = routed_.at(c.aggregate_type()).commands,
          .key = c.aggregate_id(),
          .value = serialized.empty() ? c.SerializeAsString() : std::move(serialized),
          .headers = {{"command_id", c.command_id()}}};
}

namespace internal::gateway {
grpc::Status NotAccepting() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "gateway is not serving (starting or stopping)");
}
grpc::Status Overloaded(size_t max) {
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      absl::StrCat("gateway has ", max, " commands in flight; retry later"));
}
void NormalizeInPlace(CommandEnvelope& c) {
  if (c.command_id().empty()) c.set_command_id(NewCommandId());
  if (!c.has_submitted_at()) {
    *c.mutable_submitted_at() = internal::ProtoNow();
  }
}
CommandEnvelope Normalize(const CommandEnvelope& in) {
  CommandEnvelope c = in;
  NormalizeInPlace(c);
  return c;
}
}  // namespace internal::gateway

using internal::gateway::Normalize;
using internal::gateway::NotAccepting;
using internal::gateway::Overloaded;

grpc::ServerUnaryReactor* Gateway::Impl::Submit(grpc::CallbackServerContext* ctx,
                                                const CommandEnvelope* request,
                                                leftfold::v1::SubmitAck* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!accepting_) {
    reactor->Finish(NotAccepting());
    return reactor;
  }
  if (absl::Status s = Validate(*request); !s.ok()) {
    reactor->Finish(internal::ToGrpcStatus(s));
    return reactor;
  }
  if (!Admit()) {
    reactor->Finish(Overloaded(options_.max_inflight));
    return reactor;
  }
  CommandEnvelope c = Normalize(*request);
  std::string id = c.command_id();
  producer_.Send(
      ToRecord(c, {}), [this, reactor, response,
                        id](const absl::StatusOr<internal::log::TopicPartitionOffset>& where) {
        ReleaseInflight();  // first, as in ExecWaiter::Finish
        if (!where.ok()) {
          reactor->Finish(grpc::Status(
              grpc::StatusCode::UNAVAILABLE,
              absl::StrCat("log refused command ", id, ": ", where.status().ToString())));
        } else {
          response->set_command_id(id);
          response->mutable_position()->set_topic(where->tp.topic);
          response->mutable_position()->set_partition(where->tp.partition);
          response->mutable_position()->set_offset(where->offset);
          reactor->Finish(grpc::Status::OK);
        }
      });
  return reactor;
}

grpc::ServerUnaryReactor* Gateway::Impl::Execute(grpc::CallbackServerContext* ctx,
                                                 const CommandEnvelope* request,
                                                 CommandResult* response) {
  if (!accepting_ || !Validate(*request).ok() || !Admit()) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (!accepting_) {
      reactor->Finish(NotAccepting());
    } else if (absl::Status s = Validate(*request); !s.ok()) {
      reactor->Finish(internal::ToGrpcStatus(s));
    } else {
      reactor->Finish(Overloaded(options_.max_inflight));
    }
    return reactor;
  }
  CommandEnvelope c = Normalize(*request);
  auto waiter = std::make_shared<internal::gateway::UnaryWaiter>();
  waiter->impl = this;
  waiter->ctx = ctx;
  waiter->response = response;
  waiter->command_id = c.command_id();
  waiter->key = internal::gateway::CacheKey(c.aggregate_type(), c.command_id());
  auto* reactor = new internal::gateway::ExecuteReactor(waiter);
  waiter->reactor = reactor;
  Dispatch(c, {}, waiter,
           internal::gateway::CommandDeadline(absl::Now(), options_.max_execute_wait,
                                              internal::gateway::CallDeadline(*ctx)));
  return reactor;
}

internal::gateway::StreamReactor* Gateway::Impl::ExecuteStream(grpc::CallbackServerContext* ctx) {
  auto* reactor = new internal::gateway::ExecuteStreamReactor(this, ctx);
  {
    absl::MutexLock lock(&streams_mu_);
    std::erase_if(streams_, [](const auto& s) { return s.expired(); });
    streams_.push_back(reactor->stream());
  }
  // After registering: a stream that BeginShutdown missed sees accepting_ false here.
  reactor->stream()->Begin();
  return reactor;
}

void Gateway::Impl::Dispatch(const CommandEnvelope& c, std::string serialized,
                             const std::shared_ptr<ExecWaiter>& waiter, absl::Time deadline) {
  // Register before producing: the result may arrive before the log's acknowledgement does.
  std::optional<CommandResult> known;
  {
    absl::MutexLock lock(&mu_);
    known = cache_.Find(waiter->key);
    if (!known.has_value()) {
      auto [it, inserted] = waiters_.try_emplace(waiter->key, waiter);
      if (!inserted) {
        // Behind the head, so the map's key (a view of the head's key) stays valid.
        waiter->next_same_key = std::move(it->second->next_same_key);
        it->second->next_same_key = waiter;
      }
    }
  }
  if (known.has_value()) {
    // Already answered (a retry of the same id): the original result, no resend.
    if (waiter->Claim()) waiter->Finish(internal::gateway::StatusForResult(*known), &*known);
    return;
  }
  ArmDeadline(deadline, waiter);
  producer_.Send(ToRecord(c, std::move(serialized)),
                 [waiter](const absl::StatusOr<internal::log::TopicPartitionOffset>& where) {
                   if (where.ok() || !waiter->Claim()) return;
                   waiter->impl->Forget(waiter);
                   waiter->Finish(
                       grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                    absl::StrCat("log refused command ", waiter->command_id, ": ",
                                                 where.status().ToString())),
                       nullptr);
                 });
}

void Gateway::Impl::ArmDeadline(absl::Time deadline, const std::shared_ptr<ExecWaiter>& waiter) {
  absl::MutexLock lock(&timer_mu_);
  if (deadlines_.size() >= 1024 && deadlines_.size() > 2 * inflight_.load()) {
    // Mostly answered commands: drop them all at once.
    std::erase_if(deadlines_, [](const Deadline& d) {
      std::shared_ptr<ExecWaiter> w = d.waiter.lock();
      return w == nullptr || w->claimed.load();
    });
    std::make_heap(deadlines_.begin(), deadlines_.end(), Later());
  }
  if (deadlines_.empty() || deadline < deadlines_.front().at) timer_kick_ = true;
  deadlines_.push_back({deadline, waiter});
  std::push_heap(deadlines_.begin(), deadlines_.end(), Later());
}

void Gateway::Impl::Forget(const std::shared_ptr<ExecWaiter>& waiter) {
  absl::MutexLock lock(&mu_);
  auto it = waiters_.find(waiter->key);
  if (it == waiters_.end()) return;
  if (it->second == waiter) {
    std::shared_ptr<ExecWaiter> next = std::move(waiter->next_same_key);
    waiters_.erase(it);  // its key viewed `waiter`'s: erased before re-keying on `next`
    if (next != nullptr) waiters_.emplace(next->key, std::move(next));
    return;
  }
  for (ExecWaiter* w = it->second.get(); w->next_same_key != nullptr; w = w->next_same_key.get()) {
    if (w->next_same_key == waiter) {
      w->next_same_key = std::move(waiter->next_same_key);
      return;
    }
  }
}

void Gateway::Impl::Expire(const std::shared_ptr<ExecWaiter>& waiter) {
  if (!waiter->Claim()) return;
  Forget(waiter);
  waiter->Finish(
      grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                   absl::StrCat("no result yet for command ", waiter->command_id,
                                "; it may still be applied: ask GetResult(command_id) later")),
      nullptr);
}

grpc::ServerUnaryReactor* Gateway::Impl::GetResult(grpc::CallbackServerContext* ctx,
                                                   const leftfold::v1::GetResultRequest* request,
                                                   CommandResult* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (request->command_id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "command_id: must be set"));
    return reactor;
  }
  if (!routed_.contains(request->aggregate_type())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 absl::StrCat("aggregate_type: '", request->aggregate_type(),
                                              "' is not routed by this gateway")));
    return reactor;
  }
  std::optional<CommandResult> r;
  {
    absl::MutexLock lock(&mu_);
    r = cache_.Find(internal::gateway::CacheKey(request->aggregate_type(), request->command_id()));
  }
  bool found = r.has_value();
  if (found) *response = std::move(*r);
  reactor->Finish(found ? grpc::Status::OK
                        : grpc::Status(grpc::StatusCode::NOT_FOUND,
                                       absl::StrCat("no result known for command ",
                                                    request->command_id(), " (yet)")));
  return reactor;
}

void Gateway::Impl::OnResult(internal::log::Record& r, const PositionMap& next) {
  CommandResult result;
  if (!result.ParseFromString(r.value)) {
    LogWarning("gateway", "unparseable result skipped",
               {{"topic", r.topic}, {"offset", absl::StrCat(r.offset)}});
    return;
  }
  // Subscribers first: they copy the result, the last waiter below may take it.
  {
    absl::MutexLock lock(&subs_mu_);
    if (!result_subs_.empty()) {
      std::erase_if(result_subs_, [](const auto& s) { return s->done(); });
      internal::log::TopicPartition tp{r.topic, r.partition};
      for (auto& s : result_subs_) {
        if (s->filter().Matches(result)) s->Offer(result, tp, r.offset, next);
      }
    }
  }
  std::string key = internal::gateway::CacheKey(result.aggregate_type(), result.command_id());
  std::shared_ptr<ExecWaiter> waiting;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = waiters_.find(key); it != waiters_.end()) {
      waiting = std::move(it->second);
      waiters_.erase(it);
    }
    // The record's bytes are the serialized result: kept as they are (copied only when waiters
    // answer with them too).
    if (waiting == nullptr) {
      cache_.Put(std::move(key), std::move(r.value));
    } else {
      cache_.Put(std::move(key), std::string(r.value));
    }
  }
  if (waiting == nullptr) return;
  grpc::Status status = internal::gateway::StatusForResult(result);
  while (waiting != nullptr) {
    std::shared_ptr<ExecWaiter> w = std::move(waiting);
    waiting = std::move(w->next_same_key);
    if (!w->Claim()) continue;
    if (waiting == nullptr) {
      w->Finish(status, &result, &r.value);
    } else {
      CommandResult copy = result;
      w->Finish(status, &copy, &r.value);
    }
  }
}

absl::Status Gateway::Impl::EnsureEventsTail() {
  absl::MutexLock lock(&events_tail_mu_);
  if (events_tail_stopped_) return absl::UnavailableError("gateway is shutting down");
  if (events_tail_ != nullptr) return absl::OkStatus();
  // From the end of each events partition as of now, so before the subscription's initial
  // metadata: every event committed after that is read.
  auto tail = std::make_unique<internal::gateway::LogTail>(
      log_, events_topics_, 0,
      [this](internal::log::Record& r, const PositionMap& next) { OnEvent(r, next); });
  if (absl::Status s = tail->Start(); !s.ok()) return s;
  events_tail_ = std::move(tail);
  return absl::OkStatus();
}

void Gateway::Impl::OnEvent(internal::log::Record& r, const PositionMap& next) {
  absl::MutexLock lock(&subs_mu_);
  std::erase_if(event_subs_, [](const auto& s) { return s->done(); });
  if (event_subs_.empty()) return;
  EventEnvelope event;
  if (!event.ParseFromString(r.value)) {
    LogWarning("gateway", "unparseable event skipped",
               {{"topic", r.topic}, {"offset", absl::StrCat(r.offset)}});
    return;
  }
  internal::log::TopicPartition tp{r.topic, r.partition};
  for (auto& s : event_subs_) {
    if (s->filter().Matches(event)) s->Offer(event, tp, r.offset, next);
  }
}

template <typename Msg, typename FilterProto>
grpc::ServerWriteReactor<Msg>* Gateway::Impl::Subscribe(grpc::CallbackServerContext* ctx,
                                                        const FilterProto& filter, bool events) {
  auto* reactor = new internal::gateway::SubscriberReactor<Msg>(
      ctx, internal::gateway::Filter::From(filter), options_.subscriber_buffer);
  if (!accepting_) {
    reactor->sink()->End(NotAccepting());
    return reactor;
  }
  std::vector<std::string> topics;
  for (const std::string& type : filter.aggregate_types()) {
    auto it = routed_.find(type);
    if (it == routed_.end()) {
      reactor->sink()->End(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("aggregate_types: '", type, "' is not routed by this gateway")));
      return reactor;
    }
    topics.push_back(events ? it->second.events : it->second.results);
  }
  if (topics.empty()) topics = events ? events_topics_ : results_topics_;

  if (filter.from().empty() && !filter.from_start()) {
    if (filter.stop_at_end()) {
      reactor->sink()->End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                        "stop_at_end: only for a replay (from or from_start)"));
      return reactor;
    }
    std::string counts;
    for (const std::string& t : topics) {
      auto it = partition_counts_.find(t);
      absl::StrAppend(&counts, counts.empty() ? "" : ",", t, ":",
                      it == partition_counts_.end() ? 0 : it->second);
    }
    if constexpr (std::is_same_v<Msg, EventEnvelope>) {
      if (absl::Status s = EnsureEventsTail(); !s.ok()) {
        reactor->sink()->End(internal::ToGrpcStatus(s));
        return reactor;
      }
    }
    absl::MutexLock lock(&subs_mu_);
    if constexpr (std::is_same_v<Msg, EventEnvelope>) {
      event_subs_.push_back(reactor->sink());
    } else {
      result_subs_.push_back(reactor->sink());
    }
    // Under subs_mu_, so it precedes any write: a client that waits for the initial metadata
    // knows it will see every record read from then on.
    reactor->sink()->SendInitialMetadata({{internal::gateway::kPartitionsMetadata, counts}});
    return reactor;
  }
  auto source = std::make_unique<ReplaySource>();
  source->events = events;
  if constexpr (std::is_same_v<Msg, EventEnvelope>) {
    source->event_sink = reactor->sink();
  } else {
    source->result_sink = reactor->sink();
  }
  source->topics = std::move(topics);
  source->from = internal::gateway::FromPositions(filter.from());
  source->from_start = filter.from_start();
  source->stop_at_end = filter.stop_at_end();
  absl::MutexLock lock(&replay_mu_);
  if (replay_stop_) {
    source->End(NotAccepting());
  } else {
    replay_pending_.push_back(std::move(source));
  }
  return reactor;
}

grpc::ServerWriteReactor<CommandResult>* Gateway::Impl::SubscribeResults(
    grpc::CallbackServerContext* ctx, const leftfold::v1::ResultFilter* request) {
  return Subscribe<CommandResult>(ctx, *request, /*events=*/false);
}

grpc::ServerWriteReactor<EventEnvelope>* Gateway::Impl::SubscribeEvents(
    grpc::CallbackServerContext* ctx, const leftfold::v1::EventFilter* request) {
  return Subscribe<EventEnvelope>(ctx, *request, /*events=*/true);
}

void Gateway::Impl::RunReplay() {
  std::vector<std::unique_ptr<ReplaySource>> active;
  for (;;) {
    {
      absl::MutexLock lock(&replay_mu_);
      if (replay_stop_) break;
      for (auto& p : replay_pending_) active.push_back(std::move(p));
      replay_pending_.clear();
    }
    bool progressed = false;
    for (auto& src : active) {
      if (src->done()) continue;
      if (src->consumer == nullptr) {
        // One read of the end offsets gives both the start (from_start aside) and the
        // subscription-time ends the client is told.
        absl::StatusOr<std::vector<internal::log::TopicPartitionOffset>> ends =
            internal::gateway::EndOffsets(log_.admin(), src->topics);
        absl::StatusOr<std::vector<internal::log::TopicPartitionOffset>> start =
            ends.ok() ? internal::gateway::StartOffsetsFrom(
                            *ends, src->from_start ? internal::gateway::kFromStart : 0, src->from)
                      : ends;
        absl::StatusOr<std::unique_ptr<internal::log::Consumer>> consumer =
            start.ok() ? internal::gateway::OpenAssigned(log_, *start)
                       : absl::StatusOr<std::unique_ptr<internal::log::Consumer>>(start.status());
        if (!consumer.ok()) {
          src->End(internal::ToGrpcStatus(consumer.status()));
          continue;
        }
        src->consumer = *std::move(consumer);
        for (const auto& s : *start) {
          src->next[s.tp] = s.offset;
          src->start[s.tp] = s.offset;
        }
        if (src->stop_at_end) {
          for (const auto& e : *ends) src->pending_ends[e.tp] = src->ends[e.tp] = e.offset;
        }
        src->SendInitialMetadata(
            {{internal::gateway::kPartitionsMetadata,
              internal::gateway::FormatPartitionCounts(*ends)},
             {internal::gateway::kStartOffsetsMetadata, internal::gateway::FormatOffsets(*start)},
             {internal::gateway::kEndOffsetsMetadata, internal::gateway::FormatOffsets(*ends)}});
      }
      if (src->stop_at_end) {
        // Before the poll too: a replay with nothing to read ends at once.
        src->UpdateCaughtUp();
        if (src->pending_ends.empty()) {
          src->EndWhenDrained(grpc::Status::OK);
          continue;
        }
      }
      size_t room = src->room();
      if (room == 0) continue;
      absl::StatusOr<std::vector<internal::log::Record>> batch =
          src->consumer->Poll(std::min<size_t>(room, 500), absl::ZeroDuration());
      if (!batch.ok()) {
        src->End(internal::ToGrpcStatus(batch.status()));
        continue;
      }
      progressed |= !batch->empty();
      for (const internal::log::Record& r : *batch) {
        internal::log::TopicPartition tp{r.topic, r.partition};
        if (src->stop_at_end && r.offset >= src->ends[tp]) continue;
        if (src->events) {
          EventEnvelope e;
          if (e.ParseFromString(r.value) && src->event_sink->filter().Matches(e)) {
            src->event_sink->Offer(e, tp, r.offset, src->next);
          }
        } else {
          CommandResult c;
          if (c.ParseFromString(r.value) && src->result_sink->filter().Matches(c)) {
            src->result_sink->Offer(c, tp, r.offset, src->next);
          }
        }
        src->next[tp] = r.offset + 1;
      }
    }
    std::erase_if(active, [](const auto& s) {
      if (!s->done()) return false;
      if (s->consumer != nullptr) s->consumer->Close().IgnoreError();
      return true;
    });
    if (!progressed) {
      // Idle: wait for a new subscription (or stop), polling the others again shortly.
      absl::MutexLock lock(&replay_mu_);
      replay_mu_.AwaitWithTimeout(
          absl::Condition(
              +[](Impl* impl) { return impl->replay_stop_ || !impl->replay_pending_.empty(); },
              this),
          absl::Milliseconds(active.empty() ? 200 : 10));
    }
  }
  grpc::Status bye(grpc::StatusCode::UNAVAILABLE, "gateway is shutting down");
  absl::MutexLock lock(&replay_mu_);
  for (auto& p : replay_pending_) active.push_back(std::move(p));
  replay_pending_.clear();
  for (auto& src : active) {
    src->End(bye);
    if (src->consumer != nullptr) src->consumer->Close().IgnoreError();
  }
}

void Gateway::Impl::RunTimer() {
  for (;;) {
    std::vector<std::shared_ptr<ExecWaiter>> due;
    {
      absl::MutexLock lock(&timer_mu_);
      if (timer_stop_) return;
      absl::Time now = absl::Now();
      while (!deadlines_.empty() && deadlines_.front().at <= now) {
        std::pop_heap(deadlines_.begin(), deadlines_.end(), Later());
        if (auto w = deadlines_.back().waiter.lock(); w != nullptr) due.push_back(std::move(w));
        deadlines_.pop_back();
      }
      if (due.empty()) {
        // Sleeps until the earliest deadline, or until Execute adds an earlier one.
        absl::Time wake = deadlines_.empty() ? now + absl::Seconds(1) : deadlines_.front().at;
        timer_kick_ = false;
        timer_mu_.AwaitWithDeadline(
            absl::Condition(
                +[](Impl* impl) { return impl->timer_stop_ || impl->timer_kick_; }, this),
            wake);
        continue;
      }
    }
    for (auto& w : due) Expire(w);
  }
}

}  // namespace leftfold
