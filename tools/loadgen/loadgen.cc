#include "loadgen.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
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

// One Execute in flight. Owned by the Engine from Issue until its completion callback.
struct Call {
  grpc::ClientContext context;
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

  absl::Status WaitReady(const std::string& prefix);

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
  void WaitIdle() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &Engine::Idle));
  }

  const LoadOptions& options_;
  std::vector<std::unique_ptr<v1::CommandGateway::Stub>> stubs_;
  std::atomic<uint64_t> next_stub_{0};
  std::string id_prefix_;

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

void Engine::Issue(std::unique_ptr<Call> call) {
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  v1::CommandGateway::Stub& stub = *stubs_[next_stub_++ % stubs_.size()];
  Call* raw = call.release();
  if (options_.submit) {
    stub.async()->Submit(&raw->context, &raw->request, &raw->ack,
                         [this, raw](grpc::Status status) { OnDone(raw, status); });
  } else {
    stub.async()->Execute(&raw->context, &raw->request, &raw->response,
                          [this, raw](grpc::Status status) { OnDone(raw, status); });
  }
}

void Engine::OnDone(Call* raw, const grpc::Status& status) {
  std::unique_ptr<Call> call(raw);
  absl::Time now = absl::Now();
  bool completed =
      status.ok() || call->context.GetServerTrailingMetadata().count(kResultTrailer) > 0;
  std::unique_ptr<Call> next;
  {
    absl::MutexLock lock(&mu_);
    PhaseState& state = phases_[call->phase];
    std::string code = CodeName(status.error_code());
    if (completed) {
      ++state.report.completed;
      ++state.report.outcomes[code];
      state.report.latency.Record(now - call->intended);
      if (status.ok() && !options_.submit && call->response.has_processed_at()) {
        absl::Time processed = absl::FromUnixSeconds(call->response.processed_at().seconds()) +
                               absl::Nanoseconds(call->response.processed_at().nanos());
        // Clamped at zero: the two clocks are the same, but a stamp is not a barrier.
        state.report.to_processed.Record(
            std::max(absl::ZeroDuration(), processed - call->intended));
        state.report.from_processed.Record(std::max(absl::ZeroDuration(), now - processed));
      }
    } else {
      ++state.report.errors;
      ++state.report.error_codes[code];
    }
    state.last_done = std::max(state.last_done, now);
    // Closed loop: this lane's next call, taken before the count drops so WaitIdle cannot see a
    // false zero between two calls of the last lane.
    if (options_.mode == LoadOptions::Mode::kClosed || closed_preload_) next = NextClosed();
    --outstanding_;
  }
  // Issued from the callback thread, which never blocks on it.
  if (next != nullptr) Issue(std::move(next));
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

}  // namespace

std::string FormatHuman(const LoadOptions& options, const LoadReport& report) {
  const PhaseReport& m = report.measured;
  std::string out = absl::StrFormat("leftfold-loadgen: %s %s seed %d -> %s, %s, deadline %s\n",
                                    options.submit ? "Submit" : "Execute",
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
      "{\"rpc\":\"%s\",\"workload\":\"%s\",\"seed\":%d,\"target\":\"%s\",\"mode\":\"%s\","
      "\"concurrency\":%d,"
      "\"rate\":%.1f,\"sent\":%d,\"completed\":%d,\"errors\":%d,\"elapsed_s\":%.4f,"
      "\"throughput\":%.1f,\"offered_rate\":%.1f,\"max_send_lag_ms\":%.3f,\"p50_ms\":%.3f,"
      "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f,\"outcomes\":%s,"
      "\"error_codes\":%s,\"preload_sent\":%d,\"preload_completed\":%d,\"warmup_completed\":%d,"
      "\"client_cpu_s\":%.3f,\"to_processed_p50_ms\":%.3f,\"to_processed_p99_ms\":%.3f,"
      "\"from_processed_p50_ms\":%.3f,\"from_processed_p99_ms\":%.3f}",
      options.submit ? "submit" : "execute", WorkloadName(options.workload), options.seed,
      options.target, options.mode == LoadOptions::Mode::kClosed ? "closed" : "open",
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
