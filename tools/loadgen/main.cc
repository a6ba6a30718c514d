// leftfold-loadgen: drives a leftfold command gateway with a canonical workload and reports the
// client-side latency and throughput of Execute (see loadgen.h for the phases and what counts).
//
//   leftfold-loadgen --target 127.0.0.1:50051 --mode closed --concurrency 64 --duration 20
//   leftfold-loadgen --mode open --rate 2000 --duration 20 --warmup 5 --json
//   leftfold-loadgen --rpc stream --streams 4 --concurrency 512 --duration 20
#include <cstdio>

#include "CLI/CLI.hpp"
#include "loadgen.h"

int main(int argc, char** argv) {
  using leftfold::bench::LoadOptions;
  LoadOptions options;
  std::string workload = "bank-uniform";
  std::string mode = "closed";
  std::string rpc = "unary";
  double duration_s = 10, warmup_s = 2, deadline_s = 5, wait_ready_s = 0;
  bool no_preload = false, json = false;

  CLI::App app{
      "leftfold-loadgen: Execute (or ExecuteStream) load on a leftfold command gateway (closed or "
      "open loop)."};
  app.add_option("--target", options.target, "gateway address")->capture_default_str();
  app.add_option("--workload", workload, "bank-uniform, bank-zipf or bank-dup")
      ->capture_default_str();
  app.add_option("--seed", options.seed, "workload seed")->capture_default_str();
  app.add_option("--mode", mode, "closed (fixed concurrency) or open (fixed rate)")
      ->check(CLI::IsMember({"closed", "open"}))
      ->capture_default_str();
  app.add_option("--concurrency", options.concurrency, "closed loop: outstanding calls")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--rate", options.rate, "open loop: offered commands/s")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto* commands = app.add_option("--commands", options.commands, "measured calls");
  app.add_option("--duration", duration_s, "measured seconds (when --commands is not given)")
      ->excludes(commands)
      ->capture_default_str();
  app.add_option("--warmup", warmup_s, "unmeasured seconds before the measured phase")
      ->capture_default_str();
  app.add_option("--deadline", deadline_s, "per-call deadline, seconds")->capture_default_str();
  app.add_flag("--no-preload", no_preload, "do not send the account opens first");
  app.add_option("--preload-concurrency", options.preload_concurrency,
                 "outstanding calls while preloading the opens")
      ->capture_default_str();
  app.add_option("--channels", options.channels, "gRPC connections")->capture_default_str();
  app.add_option("--id-prefix", options.id_prefix,
                 "command id prefix (default: unique per process, so repeated runs are not "
                 "deduplicated)");
  app.add_option("--wait-ready", wait_ready_s,
                 "first wait up to this many seconds for a probe Execute to be answered")
      ->capture_default_str();
  app.add_option("--max-outstanding", options.max_outstanding,
                 "open loop: most calls in flight (the sender waits beyond)")
      ->capture_default_str();
  app.add_flag("--submit", options.submit,
               "send Submit instead of Execute (measures the produce path alone; unary only)");
  app.add_option("--rpc", rpc,
                 "unary (one Execute call per command) or stream (commands over ExecuteStream "
                 "calls)")
      ->check(CLI::IsMember({"unary", "stream"}))
      ->capture_default_str();
  app.add_option("--streams", options.streams,
                 "stream mode: ExecuteStream calls to spread the commands over")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--json", json, "print a one-line JSON summary after the human-readable report");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<leftfold::bench::Workload> parsed = leftfold::bench::ParseWorkload(workload);
  if (!parsed.ok()) {
    std::fprintf(stderr, "leftfold-loadgen: %s\n", parsed.status().ToString().c_str());
    return 2;
  }
  options.workload = *parsed;
  options.mode = mode == "open" ? LoadOptions::Mode::kOpen : LoadOptions::Mode::kClosed;
  options.rpc = rpc == "stream" ? LoadOptions::Rpc::kStream : LoadOptions::Rpc::kUnary;
  options.duration = absl::Seconds(duration_s);
  options.warmup = absl::Seconds(warmup_s);
  options.deadline = absl::Seconds(deadline_s);
  options.wait_ready = absl::Seconds(wait_ready_s);
  options.preload = !no_preload;

  absl::StatusOr<leftfold::bench::LoadReport> report = leftfold::bench::RunLoad(options);
  if (!report.ok()) {
    std::fprintf(stderr, "leftfold-loadgen: %s\n", report.status().ToString().c_str());
    return 1;
  }
  std::fputs(leftfold::bench::FormatHuman(options, *report).c_str(), stdout);
  if (json) std::printf("%s\n", leftfold::bench::FormatJson(options, *report).c_str());
  // Nothing completed means nothing was measured: make scripts notice.
  return report->measured.completed > 0 ? 0 : 1;
}
