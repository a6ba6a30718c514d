#include "loadgen.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "bank/v1/bank.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"

namespace leftfold::bench {
namespace {

constexpr char kResultTrailer[] = "leftfold-result-bin";

enum Phase { kPreload = 0, kWarmup = 1, kMeasured = 2 };

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return absl::StrCat("CODE_", static_cast<int>(code));
  }
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// The code Execute would have answered a result with (gateway_service.cc, StatusForResult), so
// stream and unary runs count outcomes alike.
std::string OutcomeCode(const v1::CommandResult& r) {
  switch (r.outcome()) {
    case v1::CommandResult::ACCEPTED:
      return "OK";
    case v1::CommandResult::REJECTED:
      return CodeName(r.code() == 0 ? grpc::StatusCode::UNKNOWN
                                    : static_cast<grpc::StatusCode>(r.code()));
    case v1::CommandResult::CONFLICT:
      return "ABORTED";
    case v1::CommandResult::FAILED:
      return CodeName(r.code() == 0 ? grpc::StatusCode::INTERNAL
                                    : static_cast<grpc::StatusCode>(r.code()));
    default:
      return "INTERNAL";
  }
}

// One command in flight (an Execute call, or one command of a stream). Owned by the Engine from
// Issue until its completion.
struct Call {
  std::optional<grpc::ClientContext> context;  // unary only
  v1::CommandEnvelope request;
  v1::CommandResult response;
  v1::SubmitAck ack;
  absl::Time intended;
  Phase phase;
};

// What a phase has seen so far; guarded by Engine::mu_.
struct PhaseState {
  PhaseReport report;
  std::optional<absl::Time> first_send;
  absl::Time last_send;
  absl::Time last_done;
};

class StreamLane;

// Runs the phases. Completion callbacks run on gRPC's threads; in closed loop each one issues
// the call that replaces it, so no thread is held per call. Thread-safe.
class Engine {
 public:
  explicit Engine(const LoadOptions& options)
      : options_(options), generator_(options.workload, options.seed) {
    for (int i = 0; i < std::max(1, options.channels); ++i) {
      grpc::ChannelArguments args;
      // Distinct arguments keep channels off a shared subchannel: one TCP connection each.
      args.SetInt("leftfold.loadgen.channel", i);
      stubs_.push_back(v1::CommandGateway::NewStub(
          grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args)));
    }
  }

  ~Engine();

  absl::Status WaitReady(const std::string& prefix);

  // Stream mode: opens the ExecuteStreams before the first command, half-closes them and waits
  // for their end after the last.
  void OpenStreams();
  void CloseStreams();
  // A stream's response to `call`, or the end of `call` with its stream (response null,
  // `stream_status` says how the stream ended).
  void OnStreamAnswer(std::unique_ptr<Call> call, const v1::ExecuteStreamResponse* response,
                      const grpc::Status& stream_status, StreamLane* lane);

  // Closed loop over the preload (`count` commands), or over warm-up + measured.
  void RunClosed(bool preload, int64_t preload_count);
  // Open loop over warm-up + measured.
  void RunOpen();

  PhaseReport Report(Phase phase) {
    absl::MutexLock lock(&mu_);
    PhaseState& state = phases_[phase];
    PhaseReport report = state.report;
    if (state.first_send.has_value()) {
      report.elapsed = state.last_done - *state.first_send;
      report.send_window = state.last_send - *state.first_send;
    }
    return report;
  }

  void set_id_prefix(std::string prefix) { id_prefix_ = std::move(prefix); }

 private:
  // Next command of the workload, under mu_.
  v1::CommandEnvelope NextCommand() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::CommandEnvelope command = generator_.Next();
    command.set_command_id(absl::StrCat(id_prefix_, command.command_id()));
    return command;
  }
  // Closed loop: the next call to issue (counted as outstanding), or null when the loop is over.
  std::unique_ptr<Call> NextClosed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Idle() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return outstanding_ == 0; }
  bool BelowCap() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return outstanding_ < options_.max_outstanding;
  }
  void Issue(std::unique_ptr<Call> call);
  void OnDone(Call* call, const grpc::Status& status);
  // Counts `call`'s end; in closed loop (and when `replace`) returns the call that takes its
  // place.
  std::unique_ptr<Call> Record(const Call& call, absl::Time now, bool completed,
                               const std::string& code, const v1::CommandResult* accepted,
                               bool replace);
  void WaitIdle() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &Engine::Idle));
  }

  const LoadOptions& options_;
  std::vector<std::unique_ptr<v1::CommandGateway::Stub>> stubs_;
  std::atomic<uint64_t> next_stub_{0};
  std::string id_prefix_;
  std::vector<std::unique_ptr<StreamLane>> lanes_;  // stream mode; set before the first Issue
  std::atomic<uint64_t> next_lane_{0};

  absl::Mutex mu_;
  WorkloadGenerator generator_ ABSL_GUARDED_BY(mu_);
  PhaseState phases_[3] ABSL_GUARDED_BY(mu_);
  int64_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  // Closed loop plan.
  bool closed_preload_ ABSL_GUARDED_BY(mu_) = false;
  int64_t closed_remaining_preload_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time warmup_end_ ABSL_GUARDED_BY(mu_);
  absl::Time measured_end_ ABSL_GUARDED_BY(mu_);
};

absl::Status Engine::WaitReady(const std::string& prefix) {
  absl::Time give_up = absl::Now() + options_.wait_ready;
  grpc::Status last;
  for (int attempt = 0; absl::Now() < give_up; ++attempt) {
    // The probe opens an account no workload touches; once it exists the answer is a rejection
    // (with a result), which proves the path just as well.
    v1::CommandEnvelope probe;
    probe.set_command_id(absl::StrCat(prefix, "probe-", attempt));
    probe.set_aggregate_type("bank.account");
    probe.set_aggregate_id("loadgen-probe");
    bank::v1::OpenAccount open;
    open.set_owner("leftfold-loadgen");
    open.set_initial_deposit(1);
    probe.mutable_payload()->PackFrom(open);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(std::min(give_up, absl::Now() + absl::Seconds(2))));
    context.set_wait_for_ready(true);
    v1::CommandResult result;
    last = stubs_[0]->Execute(&context, probe, &result);
    if (last.ok() || context.GetServerTrailingMetadata().count(kResultTrailer) > 0) {
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(100));  // a retry pace, not synchronisation
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "no answer from ", options_.target, " within ", absl::FormatDuration(options_.wait_ready),
      ": ", CodeName(last.error_code()), " ", last.error_message()));
}

std::unique_ptr<Call> Engine::NextClosed() {
  Phase phase;
  absl::Time now = absl::Now();
  if (closed_preload_) {
    if (closed_remaining_preload_ <= 0) return nullptr;
    --closed_remaining_preload_;
    phase = kPreload;
  } else if (now < warmup_end_) {
    phase = kWarmup;
  } else if (options_.commands > 0 ? phases_[kMeasured].report.sent < options_.commands
                                   : now < measured_end_) {
    phase = kMeasured;
  } else {
    return nullptr;
  }
  auto call = std::make_unique<Call>();
  call->request = NextCommand();
  call->intended = now;
  call->phase = phase;
  ++outstanding_;
  PhaseState& state = phases_[phase];
  ++state.report.sent;
  if (!state.first_send.has_value()) state.first_send = now;
  state.last_send = now;
  return call;
}

// One ExecuteStream: one write and one read in flight, commands queued behind the write,
// responses matched to their calls by command id. Deleted by the Engine after Await.
class StreamLane final
    : public grpc::ClientBidiReactor<v1::CommandEnvelope, v1::ExecuteStreamResponse> {
 public:
  StreamLane(Engine* engine, v1::CommandGateway::Stub& stub, absl::Duration command_timeout)
      : engine_(engine) {
    context_.AddMetadata(
        "leftfold-command-timeout-ms",
        absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(command_timeout))));
    stub.async()->ExecuteStream(&context_, this);
    StartRead(&response_);
    StartCall();
  }

  void Send(std::unique_ptr<Call> call) {
    {
      absl::MutexLock lock(&mu_);
      if (!ended_) {
        queue_.push_back(std::move(call));
        if (!writing_) WriteNextLocked();
        return;
      }
    }
    engine_->OnStreamAnswer(std::move(call), nullptr, final_status_, this);
  }

  // Half-closes once everything queued is written; the gateway then ends the stream (OK) when
  // it has answered every command.
  void Close() {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    MaybeWritesDoneLocked();
  }
  grpc::Status Await() {
    done_.WaitForNotification();
    return final_status_;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok || ended_) return;  // the stream broke: OnDone fails what is left
    if (!queue_.empty()) {
      WriteNextLocked();
    } else {
      MaybeWritesDoneLocked();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ends; OnDone follows
    v1::ExecuteStreamResponse response = std::move(response_);
    std::unique_ptr<Call> call;
    {
      absl::MutexLock lock(&mu_);
      if (auto it = pending_.find(response.command_id()); it != pending_.end()) {
        call = std::move(it->second.front());
        it->second.pop_front();
        if (it->second.empty()) pending_.erase(it);
      }
      response_.Clear();
      StartRead(&response_);
    }
    if (call != nullptr)
      engine_->OnStreamAnswer(std::move(call), &response, grpc::Status::OK, this);
  }

  void OnDone(const grpc::Status& status) override {
    std::vector<std::unique_ptr<Call>> lost;
    {
      absl::MutexLock lock(&mu_);
      ended_ = true;
      final_status_ = status;
      for (auto& call : queue_) lost.push_back(std::move(call));
      queue_.clear();
      for (auto& [id, calls] : pending_) {
        for (auto& call : calls) lost.push_back(std::move(call));
      }
      pending_.clear();
    }
    for (auto& call : lost) engine_->OnStreamAnswer(std::move(call), nullptr, status, this);
    done_.Notify();  // last touch: the Engine may delete this lane now
  }

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::unique_ptr<Call> call = std::move(queue_.front());
    queue_.pop_front();
    // The call may be answered (and freed) before OnWriteDone: the lane owns what is written.
    write_ = std::move(call->request);
    pending_[write_.command_id()].push_back(std::move(call));
    writing_ = true;
    StartWrite(&write_);
  }
  void MaybeWritesDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!closing_ || writing_ || !queue_.empty() || writes_done_ || ended_) return;
    writes_done_ = true;
    StartWritesDone();
  }

  Engine* const engine_;
  grpc::ClientContext context_;
  v1::ExecuteStreamResponse response_;  // the one outstanding read
  absl::Notification done_;
  grpc::Status final_status_;  // written before done_ / ended_
  absl::Mutex mu_;
  std::deque<std::unique_ptr<Call>> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::deque<std::unique_ptr<Call>>> pending_ ABSL_GUARDED_BY(mu_);
  v1::CommandEnvelope write_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

Engine::~Engine() { CloseStreams(); }

void Engine::OpenStreams() {
  for (int i = 0; i < std::max(1, options_.streams); ++i) {
    lanes_.push_back(
        std::make_unique<StreamLane>(this, *stubs_[i % stubs_.size()], options_.deadline));
  }
}

void Engine::CloseStreams() {
  for (auto& lane : lanes_) lane->Close();
  for (auto& lane : lanes_) {
    grpc::Status s = lane->Await();
    if (!s.ok()) {
      std::fprintf(stderr, "leftfold-loadgen: a stream ended with %s: %s\n",
                   CodeName(s.error_code()).c_str(), s.error_message().c_str());
    }
  }
  lanes_.clear();
}

void Engine::Issue(std::unique_ptr<Call> call) {
  if (!lanes_.empty()) {
    lanes_[next_lane_++ % lanes_.size()]->Send(std::move(call));
    return;
  }
  call->context.emplace();
  call->context->set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  v1::CommandGateway::Stub& stub = *stubs_[next_stub_++ % stubs_.size()];
  Call* raw = call.release();
  if (options_.submit) {
    stub.async()->Submit(&*raw->context, &raw->request, &raw->ack,
                         [this, raw](grpc::Status status) { OnDone(raw, status); });
  } else {
    stub.async()->Execute(&*raw->context, &raw->request, &raw->response,
                          [this, raw](grpc::Status status) { OnDone(raw, status); });
  }
}

void Engine::OnDone(Call* raw, const grpc::Status& status) {
  std::unique_ptr<Call> call(raw);
  absl::Time now = absl::Now();
  bool completed =
      status.ok() || call->context->GetServerTrailingMetadata().count(kResultTrailer) > 0;
  std::unique_ptr<Call> next =
      Record(*call, now, completed, CodeName(status.error_code()),
             status.ok() && !options_.submit ? &call->response : nullptr, /*replace=*/true);
  // Issued from the callback thread, which never blocks on it.
  if (next != nullptr) Issue(std::move(next));
}

void Engine::OnStreamAnswer(std::unique_ptr<Call> call, const v1::ExecuteStreamResponse* response,
                            const grpc::Status& stream_status, StreamLane* lane) {
  absl::Time now = absl::Now();
  std::unique_ptr<Call> next;
  if (response == nullptr) {
    // Lost with its stream: an error under the stream's code; its lane takes no replacement.
    Record(*call, now, false,
           stream_status.ok() ? "STREAM_ENDED" : CodeName(stream_status.error_code()), nullptr,
           /*replace=*/false);
    return;
  }
  if (response->has_result()) {
    const v1::CommandResult& r = response->result();
    next = Record(*call, now, true, OutcomeCode(r),
                  r.outcome() == v1::CommandResult::ACCEPTED ? &r : nullptr, /*replace=*/true);
  } else {
    next = Record(*call, now, false,
                  CodeName(static_cast<grpc::StatusCode>(response->status().code())), nullptr,
                  /*replace=*/true);
  }
  // Closed loop: the replacement goes to the same stream, so each keeps its share of lanes.
  if (next != nullptr) lane->Send(std::move(next));
}

std::unique_ptr<Call> Engine::Record(const Call& call, absl::Time now, bool completed,
                                     const std::string& code, const v1::CommandResult* accepted,
                                     bool replace) {
  std::unique_ptr<Call> next;
  absl::MutexLock lock(&mu_);
  PhaseState& state = phases_[call.phase];
  if (completed) {
    ++state.report.completed;
    ++state.report.outcomes[code];
    state.report.latency.Record(now - call.intended);
    if (accepted != nullptr && accepted->has_processed_at()) {
      absl::Time processed = absl::FromUnixSeconds(accepted->processed_at().seconds()) +
                             absl::Nanoseconds(accepted->processed_at().nanos());
      // Clamped at zero: the two clocks are the same, but a stamp is not a barrier.
      state.report.to_processed.Record(std::max(absl::ZeroDuration(), processed - call.intended));
      state.report.from_processed.Record(std::max(absl::ZeroDuration(), now - processed));
    }
  } else {
    ++state.report.errors;
    ++state.report.error_codes[code];
  }
  state.last_done = std::max(state.last_done, now);
  // Closed loop: this lane's next call, taken before the count drops so WaitIdle cannot see a
  // false zero between two calls of the last lane.
  if (replace && (options_.mode == LoadOptions::Mode::kClosed || closed_preload_)) {
    next = NextClosed();
  }
  --outstanding_;
  return next;
}

void Engine::RunClosed(bool preload, int64_t preload_count) {
  int lanes;
  {
    absl::MutexLock lock(&mu_);
    closed_preload_ = preload;
    closed_remaining_preload_ = preload_count;
    absl::Time now = absl::Now();
    warmup_end_ = now + options_.warmup;
    measured_end_ = warmup_end_ + options_.duration;
    lanes = preload ? options_.preload_concurrency : options_.concurrency;
  }
  for (int i = 0; i < std::max(1, lanes); ++i) {
    std::unique_ptr<Call> call;
    {
      absl::MutexLock lock(&mu_);
      call = NextClosed();
    }
    if (call == nullptr) break;
    Issue(std::move(call));
  }
  WaitIdle();
  absl::MutexLock lock(&mu_);
  closed_preload_ = false;
}

void Engine::RunOpen() {
  const absl::Duration interval = absl::Seconds(1.0 / options_.rate);
  const absl::Time start = absl::Now() + absl::Milliseconds(1);
  const absl::Time warmup_end = start + options_.warmup;
  const absl::Time measured_end = warmup_end + options_.duration;
  absl::Time intended = start;
  for (int64_t i = 0;; ++i) {
    intended = start + i * interval;
    Phase phase = intended < warmup_end ? kWarmup : kMeasured;
    if (phase == kMeasured) {
      absl::MutexLock lock(&mu_);
      if (options_.commands > 0 ? phases_[kMeasured].report.sent >= options_.commands
                                : intended >= measured_end) {
        break;
      }
    }
    absl::Time now = absl::Now();
    if (intended > now) absl::SleepFor(intended - now);
    auto call = std::make_unique<Call>();
    {
      absl::MutexLock lock(&mu_);
      // At the cap the sender waits; the wait is charged to this call's latency (intended time).
      mu_.Await(absl::Condition(this, &Engine::BelowCap));
      call->request = NextCommand();
      call->intended = intended;
      call->phase = phase;
      ++outstanding_;
      PhaseState& state = phases_[phase];
      ++state.report.sent;
      if (!state.first_send.has_value()) state.first_send = intended;
      state.last_send = intended;
      state.report.max_send_lag = std::max(state.report.max_send_lag, absl::Now() - intended);
    }
    Issue(std::move(call));
  }
  WaitIdle();
}

}  // namespace

double PhaseReport::Throughput() const {
  double seconds = absl::ToDoubleSeconds(elapsed);
  return seconds > 0 ? static_cast<double>(completed) / seconds : 0;
}

double PhaseReport::OfferedRate() const {
  double seconds = absl::ToDoubleSeconds(send_window);
  return seconds > 0 && sent > 1 ? static_cast<double>(sent - 1) / seconds : 0;
}

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options) {
  if (options.mode == LoadOptions::Mode::kOpen && !(options.rate > 0)) {
    return absl::InvalidArgumentError("open loop needs --rate > 0");
  }
  if (options.commands <= 0 && options.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("need --commands or --duration");
  }
  if (options.rpc == LoadOptions::Rpc::kStream && options.submit) {
    return absl::InvalidArgumentError("--submit is unary only (there is no SubmitStream)");
  }
  LoadReport report;
  report.id_prefix = options.id_prefix.empty()
                         ? absl::StrCat("lg", getpid(), "-", absl::ToUnixMillis(absl::Now()), "-")
                         : options.id_prefix;
  double cpu0 = CpuSeconds();
  Engine engine(options);
  engine.set_id_prefix(report.id_prefix);
  if (options.wait_ready > absl::ZeroDuration()) {
    if (absl::Status s = engine.WaitReady(report.id_prefix); !s.ok()) return s;
  }
  if (options.rpc == LoadOptions::Rpc::kStream) engine.OpenStreams();
  // Only the uniform workloads open every account up front; Zipf opens lazily inside its mix.
  if (options.preload && options.workload != Workload::kBankZipf) {
    engine.RunClosed(/*preload=*/true,
                     WorkloadGenerator(options.workload, options.seed).accounts());
  }
  if (options.mode == LoadOptions::Mode::kClosed) {
    engine.RunClosed(/*preload=*/false, 0);
  } else {
    engine.RunOpen();
  }
  engine.CloseStreams();
  report.preload = engine.Report(kPreload);
  report.warmup = engine.Report(kWarmup);
  report.measured = engine.Report(kMeasured);
  report.client_cpu_seconds = CpuSeconds() - cpu0;
  return report;
}

namespace {

std::string Counts(const std::map<std::string, int64_t>& counts) {
  if (counts.empty()) return "none";
  return absl::StrJoin(counts, ", ", [](std::string* out, const auto& entry) {
    absl::StrAppend(out, entry.first, " ", entry.second);
  });
}

std::string JsonCounts(const std::map<std::string, int64_t>& counts) {
  return absl::StrCat("{",
                      absl::StrJoin(counts, ",",
                                    [](std::string* out, const auto& entry) {
                                      absl::StrAppend(out, "\"", entry.first, "\":", entry.second);
                                    }),
                      "}");
}

std::string ModeText(const LoadOptions& options) {
  return options.mode == LoadOptions::Mode::kClosed
             ? absl::StrCat("closed loop, concurrency ", options.concurrency)
             : absl::StrFormat("open loop, %.0f commands/s offered", options.rate);
}

std::string RpcText(const LoadOptions& options) {
  if (options.rpc == LoadOptions::Rpc::kStream) {
    return absl::StrCat("ExecuteStream (", options.streams, " streams)");
  }
  return options.submit ? "Submit" : "Execute";
}

}  // namespace

std::string FormatHuman(const LoadOptions& options, const LoadReport& report) {
  const PhaseReport& m = report.measured;
  std::string out =
      absl::StrFormat("leftfold-loadgen: %s %s seed %d -> %s, %s, deadline %s\n", RpcText(options),
                      WorkloadName(options.workload), options.seed, options.target,
                      ModeText(options), absl::FormatDuration(options.deadline));
  if (report.preload.sent > 0) {
    absl::StrAppendFormat(&out, "preload   %d opens in %.2f s (%.0f/s): %s; errors: %s\n",
                          report.preload.sent, absl::ToDoubleSeconds(report.preload.elapsed),
                          report.preload.Throughput(), Counts(report.preload.outcomes),
                          Counts(report.preload.error_codes));
  }
  absl::StrAppendFormat(&out, "warm-up   %d sent, %d completed, %d errors in %.2f s\n",
                        report.warmup.sent, report.warmup.completed, report.warmup.errors,
                        absl::ToDoubleSeconds(report.warmup.elapsed));
  absl::StrAppendFormat(&out, "measured  %d sent, %d completed in %.2f s = %.0f commands/s", m.sent,
                        m.completed, absl::ToDoubleSeconds(m.elapsed), m.Throughput());
  if (options.mode == LoadOptions::Mode::kOpen) {
    absl::StrAppendFormat(&out, " (offered %.0f/s, max send lag %.2f ms)", m.OfferedRate(),
                          absl::ToDoubleMilliseconds(m.max_send_lag));
  }
  absl::StrAppendFormat(
      &out, "\n  latency ms (%s): p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n",
      options.mode == LoadOptions::Mode::kOpen ? "from intended send" : "from send",
      m.latency.QuantileMillis(0.50), m.latency.QuantileMillis(0.99),
      m.latency.QuantileMillis(0.999), m.latency.MaxMillis(), m.latency.MeanMillis());
  if (m.to_processed.count() > 0) {
    absl::StrAppendFormat(&out,
                          "  accepted calls, split at processed_at: to p50 %.2f p99 %.2f | from "
                          "p50 %.2f p99 %.2f ms\n",
                          m.to_processed.QuantileMillis(0.50), m.to_processed.QuantileMillis(0.99),
                          m.from_processed.QuantileMillis(0.50),
                          m.from_processed.QuantileMillis(0.99));
  }
  absl::StrAppendFormat(&out, "  outcomes: %s\n  transport errors: %d (%s)\n  client CPU: %.2f s\n",
                        Counts(m.outcomes), m.errors, Counts(m.error_codes),
                        report.client_cpu_seconds);
  return out;
}

std::string FormatJson(const LoadOptions& options, const LoadReport& report) {
  const PhaseReport& m = report.measured;
  return absl::StrFormat(
      "{\"rpc\":\"%s\",\"streams\":%d,\"workload\":\"%s\",\"seed\":%d,\"target\":\"%s\","
      "\"mode\":\"%s\",\"concurrency\":%d,"
      "\"rate\":%.1f,\"sent\":%d,\"completed\":%d,\"errors\":%d,\"elapsed_s\":%.4f,"
      "\"throughput\":%.1f,\"offered_rate\":%.1f,\"max_send_lag_ms\":%.3f,\"p50_ms\":%.3f,"
      "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f,\"outcomes\":%s,"
      "\"error_codes\":%s,\"preload_sent\":%d,\"preload_completed\":%d,\"warmup_completed\":%d,"
      "\"client_cpu_s\":%.3f,\"to_processed_p50_ms\":%.3f,\"to_processed_p99_ms\":%.3f,"
      "\"from_processed_p50_ms\":%.3f,\"from_processed_p99_ms\":%.3f}",
      options.rpc == LoadOptions::Rpc::kStream ? "execute_stream"
      : options.submit                         ? "submit"
                                               : "execute",
      options.rpc == LoadOptions::Rpc::kStream ? options.streams : 0,
      WorkloadName(options.workload), options.seed, options.target,
      options.mode == LoadOptions::Mode::kClosed ? "closed" : "open",
      options.mode == LoadOptions::Mode::kClosed ? options.concurrency : 0,
      options.mode == LoadOptions::Mode::kOpen ? options.rate : 0.0, m.sent, m.completed, m.errors,
      absl::ToDoubleSeconds(m.elapsed), m.Throughput(), m.OfferedRate(),
      absl::ToDoubleMilliseconds(m.max_send_lag), m.latency.QuantileMillis(0.50),
      m.latency.QuantileMillis(0.99), m.latency.QuantileMillis(0.999), m.latency.MaxMillis(),
      m.latency.MeanMillis(), JsonCounts(m.outcomes), JsonCounts(m.error_codes),
      report.preload.sent, report.preload.completed, report.warmup.completed,
      report.client_cpu_seconds, m.to_processed.QuantileMillis(0.50),
      m.to_processed.QuantileMillis(0.99), m.from_processed.QuantileMillis(0.50),
      m.from_processed.QuantileMillis(0.99));
}

}  // namespace leftfold::bench
