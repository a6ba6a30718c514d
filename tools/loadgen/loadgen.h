// The load generator behind `leftfold-loadgen`: sends a canonical workload (tools/bench/workload.h)
// to a leftfold.v1.CommandGateway as Execute calls, or over ExecuteStream calls, with the gRPC
// callback API and measures what the client sees.
//
//   leftfold::bench::LoadOptions options;
//   options.target = "127.0.0.1:50051";
//   options.mode = leftfold::bench::LoadOptions::Mode::kOpen;
//   options.rate = 2000;
//   absl::StatusOr<leftfold::bench::LoadReport> report = leftfold::bench::RunLoad(options);
//   if (report.ok()) std::puts(leftfold::bench::FormatHuman(options, *report).c_str());
//
// Phases: (1) preload: the workload's account opens, closed loop at full speed, not measured, so
// the measured mix is deposits and withdrawals; (2) warm-up for `warmup`, not measured;
// (3) measured: `commands` calls, or as many as fit in `duration`.
//
// Closed loop keeps `concurrency` calls outstanding (maximum throughput). Open loop sends at a
// fixed `rate` by the clock, whatever the responses do, and measures each call's latency from its
// INTENDED send time, so a stalled server or a client that fell behind shows up as latency
// instead of being hidden (no coordinated omission).
//
// "Completed" calls are round trips the gateway answered with a command outcome: OK, or a non-OK
// code carrying the `leftfold-result-bin` trailer (a rejection, e.g. FAILED_PRECONDITION for
// insufficient funds, or ABORTED for a version conflict). Anything else (UNAVAILABLE,
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...) is an error, counted apart and kept out of the
// latency histogram. Over ExecuteStream the same: a response with a result is completed and
// counted under the code Execute would have answered with (OK, FAILED_PRECONDITION, ABORTED,
// ...); a response with a status, or a command lost with its stream, is an error.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "histogram.h"
#include "workload.h"

namespace leftfold::bench {

struct LoadOptions {
  enum class Mode { kClosed, kOpen };
  enum class Rpc { kUnary, kStream };

  // Gateway address. Default: 127.0.0.1:50051.
  std::string target = "127.0.0.1:50051";
  Workload workload = Workload::kBankUniform;
  // Workload seed. Default: 42.
  uint64_t seed = 42;
  Mode mode = Mode::kClosed;
  // Submit instead of Execute: answers once the log has the command, so Execute minus Submit
  // is the processor and result path. Unary only. Default: false.
  bool submit = false;
  // kUnary: one Execute call per command. kStream: commands go over `streams` ExecuteStream
  // calls (one write and one read in flight per stream, responses matched by command id);
  // latency is still per command, from its (intended) send to its response. Default: kUnary.
  Rpc rpc = Rpc::kUnary;
  // Stream mode: ExecuteStream calls (round-robin over the channels). Closed loop spreads the
  // `concurrency` commands over them evenly; open loop sends round-robin. Default: 4.
  int streams = 4;
  // Closed loop: calls kept outstanding. Default: 64.
  int concurrency = 64;
  // Open loop: offered commands/s. Default: 1000.
  double rate = 1000;
  // Measured calls; 0 runs for `duration` instead. Default: 0.
  int64_t commands = 0;
  // Length of the measured phase when `commands` is 0. Default: 10s.
  absl::Duration duration = absl::Seconds(10);
  // Unmeasured load before the measured phase. Default: 2s.
  absl::Duration warmup = absl::Seconds(2);
  // Per-call deadline (from the actual send); in stream mode the per-command timeout
  // (`leftfold-command-timeout-ms`). Default: 5s.
  absl::Duration deadline = absl::Seconds(5);
  // Send the workload's account opens first, unmeasured. Default: true.
  bool preload = true;
  // Outstanding calls during the preload. Default: 64.
  int preload_concurrency = 64;
  // Prepended to every command id, so runs against the same gateway do not hit the processor's
  // deduplication with the seed's ids. Empty: "lg<pid>-<unix ms>-". Default: empty.
  std::string id_prefix;
  // gRPC channels (separate HTTP/2 connections); calls are spread round-robin. Default: 1.
  int channels = 1;
  // Before the preload, wait up to this long for the whole command path to answer (a probe
  // Execute on an account of its own). Zero: do not wait. Default: 0.
  absl::Duration wait_ready = absl::ZeroDuration();
  // Open loop: the most calls in flight; at the cap the sender waits, and the wait counts as
  // latency. Default: 100000.
  int64_t max_outstanding = 100000;
};

struct PhaseReport {
  int64_t sent = 0;
  int64_t completed = 0;
  int64_t errors = 0;
  std::map<std::string, int64_t> outcomes;  // completed calls by gRPC status code name
  std::map<std::string, int64_t> error_codes;
  LatencyHistogram latency;  // completed calls only
  // Execute calls answered OK, split at the result's processed_at (stamped by the processor
  // when it decided the command; same machine, same clock): the way in (send, gateway, Kafka,
  // the processor's poll) and the way back (the rest of its batch and the commit, the
  // gateway's results tail, gRPC).
  LatencyHistogram to_processed, from_processed;
  // First (intended) send of the phase to its last completion.
  absl::Duration elapsed;
  // Open loop: how late the sender got against the schedule (a client bottleneck shows here).
  absl::Duration max_send_lag;
  // First to last (intended) send.
  absl::Duration send_window;

  double Throughput() const;
  double OfferedRate() const;
};

struct LoadReport {
  PhaseReport preload, warmup, measured;
  double client_cpu_seconds = 0;  // this process, whole run
  std::string id_prefix;
};

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options);

std::string FormatHuman(const LoadOptions& options, const LoadReport& report);
// One line of JSON: the measured phase and the settings, for scripts.
std::string FormatJson(const LoadOptions& options, const LoadReport& report);

}  // namespace leftfold::bench
