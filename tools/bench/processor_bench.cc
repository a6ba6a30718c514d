// leftfold_processor_bench: commands/s through the aggregate processor alone (commands
// pre-loaded), against the passthrough baseline of shared/BENCHMARKS.md measured in the same run
// on the same backend: consume each command and produce three records (event, result, snapshot)
// in the same transactional pattern, with no decoding, no state and no fold.
//
//   leftfold_processor_bench --backend embedded --commands 200000 --runs 3
//   leftfold_processor_bench --backend kafka --brokers 127.0.0.1:9092 --mode exactly_once
//
//   leftfold_processor_bench --scenario restore --commands 1000000
//   leftfold_processor_bench --scenario memory --commands 1000000   # 1M distinct aggregates
//
// Prints one line per run and a summary (median, min, max, ratio to the passthrough median).
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bank/bank_aggregate.h"
#include "common/thread_name.h"
#include "leftfold/logging.h"
#include "leftfold/processor.h"
#include "log/errors.h"
#include "log/log.h"
#include "topology/topics.h"
#include "workload.h"

namespace leftfold::bench {
namespace {

using internal::log::Record;

struct Config {
  std::string backend = "embedded";
  std::string brokers;
  std::string mode = "exactly_once";
  std::string workload = "bank-uniform";
  int64_t commands = 200000;
  int runs = 3;
  int partitions = 4;
  size_t max_batch = ProcessorOptions{}.max_batch;
  size_t workers = 1;
  uint64_t seed = 42;
  std::string dir = "/tmp/leftfold-processor-bench";
  std::string scenario = "throughput";
  std::string only;       // "processor" or "passthrough": run one leg alone (for profiling)
  bool progress = false;  // a line per second on stderr while a leg runs
  bool keep = false;      // leave the scratch directory (RocksDB LOGs) for inspection
};

struct RunResult {
  double per_second = 0;
  double cpu_seconds = 0;
  // CPU µs per command by thread name, from the first command on; "other" is the rest of the
  // process (threads that ended meanwhile, such as the dedup ingests).
  std::vector<std::pair<std::string, double>> thread_micros;
};

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of each live thread of this process by thread id, with its name
// (/proc/self/task/<tid>/stat: "tid (name) state ..." with utime and stime 11 and 12 fields
// after the state).
std::map<int, std::pair<std::string, double>> ThreadCpuSeconds() {
  std::map<int, std::pair<std::string, double>> threads;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
    long long utime = 0, stime = 0;
    if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
        !absl::SimpleAtoi(fields[12], &stime)) {
      continue;
    }
    int tid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &tid)) continue;
    threads[tid] = {stat.substr(open + 1, close - open - 1), (utime + stime) / ticks};
  }
  return threads;
}

// What each thread name spent since `before` (ThreadCpuSeconds), in µs per command, largest
// first, with the rest of `process_seconds` as "other".
std::vector<std::pair<std::string, double>> ThreadMicros(
    const std::map<int, std::pair<std::string, double>>& before, double process_seconds,
    int64_t commands) {
  std::map<std::string, double> by_name;
  double named = 0;
  for (const auto& [tid, thread] : ThreadCpuSeconds()) {
    auto it = before.find(tid);
    double spent = thread.second - (it == before.end() ? 0 : it->second.second);
    by_name[thread.first] += spent;
    named += spent;
  }
  by_name["other"] += std::max(0.0, process_seconds - named);
  std::vector<std::pair<std::string, double>> micros;
  for (const auto& [name, seconds] : by_name) {
    if (seconds > 0) micros.emplace_back(name, seconds * 1e6 / static_cast<double>(commands));
  }
  std::sort(micros.begin(), micros.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  return micros;
}

// Steady state only: a leg's throughput and CPU per 100k commands from its first command (after
// the group join and restore) until `done` reaches the run's count. `started` and `done` are
// progress probes, polled, not synchronisation; the clock stops early once `failed` holds, and
// the caller reports that failure instead.
RunResult TimeFromFirstCommand(const Config& config, const std::function<bool()>& started,
                               const std::function<int64_t()>& done,
                               const std::atomic<bool>& failed) {
  while (!started() && !failed.load()) absl::SleepFor(absl::Milliseconds(1));
  std::map<int, std::pair<std::string, double>> threads0 = ThreadCpuSeconds();
  double cpu0 = CpuSeconds();
  absl::Time start = absl::Now();
  absl::Time last_report = start;
  int64_t last_done = 0;
  double last_cpu = cpu0;
  while (done() < config.commands && !failed.load()) {
    // Waking every millisecond cost the measured process ~1% (each wakeup preempts a busy
    // thread on a 2-core machine): every 10 ms until the last 2% of the commands, then every
    // millisecond, so the end time is still read within about a millisecond.
    absl::SleepFor(absl::Milliseconds(done() < config.commands / 50 * 49 ? 10 : 1));
    if (absl::Time now = absl::Now(); config.progress && now - last_report >= absl::Seconds(1)) {
      int64_t now_done = done();
      double cpu = CpuSeconds();
      double seconds = absl::ToDoubleSeconds(now - last_report);
      std::fprintf(stderr, "  %6.1f s: %lld of %lld, %.0f commands/s, CPU %.2f s / 100k\n",
                   absl::ToDoubleSeconds(now - start), static_cast<long long>(now_done),
                   static_cast<long long>(config.commands), (now_done - last_done) / seconds,
                   now_done > last_done ? (cpu - last_cpu) * 100000.0 / (now_done - last_done) : 0);
      last_report = now;
      last_done = now_done;
      last_cpu = cpu;
    }
  }
  absl::Duration took = absl::Now() - start;
  double cpu = CpuSeconds() - cpu0;
  return RunResult{config.commands / absl::ToDoubleSeconds(took),
                   cpu * 100000.0 / static_cast<double>(config.commands),
                   ThreadMicros(threads0, cpu, config.commands)};
}

long PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

// Produces `count` records made by `make(i)` (key, value) to `topic`, waiting for delivery.
absl::Status ProduceAll(Transport& transport, const std::string& topic, int64_t count,
                        const std::function<std::pair<std::string, std::string>(int64_t)>& make) {
  auto producer = transport.log_internal().NewProducer({});
  if (!producer.ok()) return producer.status();
  absl::Status failure;
  for (int64_t i = 0; i < count; ++i) {
    auto [key, value] = make(i);
    absl::Status s =
        (*producer)->Produce({.topic = topic, .key = std::move(key), .value = std::move(value)},
                             [&failure](absl::StatusOr<internal::log::TopicPartitionOffset> r) {
                               if (!r.ok() && failure.ok()) failure = r.status();
                             });
    if (!s.ok()) return s;
  }
  if (absl::Status s = (*producer)->Flush(absl::Minutes(10)); !s.ok()) return s;
  return failure;
}

// The configured workload's commands.
absl::Status Preload(Transport& transport, const std::string& topic, const Config& config) {
  absl::StatusOr<Workload> workload = ParseWorkload(config.workload);
  if (!workload.ok()) return workload.status();
  WorkloadGenerator generator(*workload, config.seed);
  return ProduceAll(transport, topic, config.commands, [&generator](int64_t) {
    v1::CommandEnvelope command = generator.Next();
    return std::pair(command.aggregate_id(), command.SerializeAsString());
  });
}

void RemoveScratch(const Config& config) {
  if (config.keep) return;
  std::error_code ignored;
  std::filesystem::remove_all(config.dir, ignored);
}

absl::StatusOr<std::shared_ptr<Transport>> OpenTransport(const Config& config, int run,
                                                         const std::string& what) {
  TransportOptions options;
  options.brokers = config.backend == "kafka" ? config.brokers : "";
  options.embedded_dir = absl::StrCat(config.dir, "/", what, "-", run, "/log");
  options.partitions = config.partitions;
  options.topic_prefix = absl::StrCat("bench", absl::ToUnixMillis(absl::Now()), "-", what, ".");
  std::filesystem::remove_all(absl::StrCat(config.dir, "/", what, "-", run));
  return Transport::Open(options);
}

// A bank account processor on a fresh transport (topics created), not yet running.
struct BenchProcessor {
  std::shared_ptr<Transport> transport;
  std::unique_ptr<Processor> processor;
  internal::AggregateTopics topics;
};

absl::StatusOr<BenchProcessor> SetUpProcessor(const Config& config, int run,
                                              const std::string& what, ProcessorOptions options) {
  auto transport = OpenTransport(config, run, what);
  if (!transport.ok()) return transport.status();
  options.state_dir = absl::StrCat(config.dir, "/", what, "-", run, "/state");
  auto processor = Processor::Create(*transport, bank::AccountDefinition(), options);
  if (!processor.ok()) return processor.status();
  internal::AggregateTopics topics =
      internal::TopicsFor((*transport)->options().topic_prefix, bank::kAccountType);
  return BenchProcessor{*std::move(transport), *std::move(processor), std::move(topics)};
}

// The processor with the bank aggregate, from the first command to the last committed result.
absl::StatusOr<RunResult> RunProcessor(const Config& config, int run) {
  ProcessorOptions options;
  options.max_batch = config.max_batch;
  options.workers = config.workers;
  options.guarantee = config.mode == "at_least_once" ? ProcessorOptions::Guarantee::kAtLeastOnce
                                                     : ProcessorOptions::Guarantee::kExactlyOnce;
  absl::StatusOr<BenchProcessor> bench = SetUpProcessor(config, run, "processor", options);
  if (!bench.ok()) return bench.status();
  std::unique_ptr<Processor>& processor = bench->processor;
  if (absl::Status s = Preload(*bench->transport, bench->topics.commands, config); !s.ok()) {
    return s;
  }

  absl::Status run_status;  // read once the thread is joined
  std::atomic<bool> failed{false};
  std::thread thread([&] {
    internal::NameThisThread("lf-process");  // as an application would name it
    run_status = processor->Run();
    if (!run_status.ok()) failed.store(true);
  });
  RunResult result = TimeFromFirstCommand(
      config, [&] { return processor->stats().commands > 0; },
      [&] { return processor->stats().committed; }, failed);
  processor->Stop();
  thread.join();
  if (!run_status.ok()) return run_status;
  return result;
}

long CurrentRssMiB() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long pages = 0, resident = 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
}

// Restore: a fresh instance (empty state dir) catching up with `commands` snapshots.
absl::Status RunRestore(const Config& config) {
  absl::StatusOr<BenchProcessor> bench = SetUpProcessor(config, 0, "restore", {});
  if (!bench.ok()) return bench.status();
  std::unique_ptr<Processor>& processor = bench->processor;
  bank::v1::Account account;
  account.set_owner("owner-of-a-restored-account");
  account.set_balance(1234);
  account.set_open(true);
  absl::Time produce_start = absl::Now();
  absl::Status produced = ProduceAll(
      *bench->transport, bench->topics.snapshots, config.commands, [&account](int64_t i) {
        v1::Snapshot snapshot;
        snapshot.set_aggregate_type(bank::kAccountType);
        snapshot.set_aggregate_id(absl::StrCat("acct-", i));
        snapshot.set_version(3);
        snapshot.set_definition_version(1);
        snapshot.mutable_state()->PackFrom(account);
        return std::pair(snapshot.aggregate_id(), snapshot.SerializeAsString());
      });
  if (!produced.ok()) return produced;
  std::printf("preloaded %lld snapshots in %.1f s\n", static_cast<long long>(config.commands),
              absl::ToDoubleSeconds(absl::Now() - produce_start));
  absl::Time start = absl::Now();
  absl::Status run_status;
  std::thread thread([&] { run_status = processor->Run(); });
  while (!processor->ready() && run_status.ok()) absl::SleepFor(absl::Milliseconds(5));
  absl::Duration took = absl::Now() - start;
  int64_t restored = processor->stats().restored_snapshots;
  processor->Stop();
  thread.join();
  if (!run_status.ok()) return run_status;
  std::printf("restore: %lld snapshots in %.2f s (%.0f snapshots/s), backend=%s partitions=%d\n",
              static_cast<long long>(restored), absl::ToDoubleSeconds(took),
              restored / absl::ToDoubleSeconds(took), config.backend.c_str(), config.partitions);
  return absl::OkStatus();
}

// Memory: the processor over a many-aggregate workload with the default cache; RSS sampled.
absl::Status RunMemory(const Config& config) {
  ProcessorOptions options;
  options.max_batch = config.max_batch;
  absl::StatusOr<BenchProcessor> bench = SetUpProcessor(config, 0, "memory", options);
  if (!bench.ok()) return bench.status();
  std::unique_ptr<Processor>& processor = bench->processor;
  // One open per account: `commands` distinct aggregates, far more than the cache holds.
  absl::Status produced =
      ProduceAll(*bench->transport, bench->topics.commands, config.commands, [](int64_t i) {
        bank::v1::OpenAccount open;
        open.set_owner(absl::StrCat("owner-", i % 1000, "-benchmark-customer"));
        open.set_initial_deposit(100);
        v1::CommandEnvelope command;
        command.set_command_id(absl::StrCat("m-", i));
        command.set_aggregate_type(bank::kAccountType);
        command.set_aggregate_id(absl::StrCat("acct-", i));
        command.mutable_payload()->PackFrom(open);
        return std::pair(command.aggregate_id(), command.SerializeAsString());
      });
  if (!produced.ok()) return produced;
  long before = CurrentRssMiB();
  long peak = before;
  absl::Status run_status;
  absl::Time start = absl::Now();
  std::thread thread([&] { run_status = processor->Run(); });
  while (processor->stats().committed < config.commands && run_status.ok()) {
    peak = std::max(peak, CurrentRssMiB());
    absl::SleepFor(absl::Milliseconds(20));  // sampling interval, not synchronisation
  }
  absl::Duration took = absl::Now() - start;
  processor->Stop();
  thread.join();
  if (!run_status.ok()) return run_status;
  std::printf(
      "memory: %lld distinct aggregates opened (cache %zu states) in %.1f s; RSS before "
      "%ld MiB, peak while processing %ld MiB\n",
      static_cast<long long>(config.commands), options.cache_size, absl::ToDoubleSeconds(took),
      before, peak);
  return absl::OkStatus();
}

// Progress shared by the passthrough's loops.
struct PassthroughProgress {
  std::atomic<int64_t> done{0};
  std::atomic<bool> started{false};
  std::atomic<bool> failed{false};
};

// One passthrough loop (a group member of its own, like one processor worker): consume, produce
// three records per command, commit with the offsets, until all loops together did `commands`.
absl::Status PassthroughLoop(internal::log::Log& log, const internal::AggregateTopics& topics,
                             const Config& config, size_t worker, PassthroughProgress& progress) {
  bool transactional = config.mode != "at_least_once";
  auto producer = log.NewProducer(
      {.transactional_id =
           transactional ? absl::StrCat(topics.commands, "-passthrough-w", worker) : ""});
  if (!producer.ok()) return producer.status();
  auto consumer = log.NewConsumer({.group_id = absl::StrCat(topics.commands, "-passthrough")});
  if (!consumer.ok()) return consumer.status();
  if (absl::Status s = (*consumer)->Subscribe({topics.commands}, {}); !s.ok()) return s;

  while (progress.done.load() < config.commands && !progress.failed.load()) {
    auto batch = (*consumer)->Poll(config.max_batch, absl::Milliseconds(2));
    if (!batch.ok()) return batch.status();
    if (batch->empty()) continue;
    progress.started.store(true);  // the clock starts at the first command, after the join
    std::map<int32_t, int64_t> next;
    for (const Record& r : *batch) next[r.partition] = r.offset + 1;
    std::vector<internal::log::TopicPartitionOffset> offsets;
    for (auto [p, o] : next) offsets.push_back({{topics.commands, p}, o});
    if (transactional) {
      // The processor's order: offsets first, then the records (see ProcessBatch).
      if (absl::Status s = (*producer)->BeginTransaction(); !s.ok()) return s;
      if (absl::Status s = (*producer)->SendOffsetsToTransaction(offsets, **consumer); !s.ok()) {
        return s;
      }
    }
    for (const Record& r : *batch) {
      for (const std::string* topic : {&topics.events, &topics.results, &topics.snapshots}) {
        absl::Status s = (*producer)->Produce(
            {.topic = *topic, .key = r.key, .value = r.value, .partition = r.partition});
        if (!s.ok()) return s;
      }
    }
    if (transactional) {
      if (absl::Status s = (*producer)->CommitTransaction(); !s.ok()) return s;
    } else {
      if (absl::Status s = (*producer)->Flush(absl::Seconds(30)); !s.ok()) return s;
      if (absl::Status s = (*consumer)->CommitOffsets(offsets); !s.ok()) return s;
    }
    progress.done.fetch_add(static_cast<int64_t>(batch->size()));
  }
  return (*consumer)->Close();
}

// The practical limit: consume, produce three records per command, commit with the offsets;
// with --workers N, N such loops in parallel (each a group member with its own transactions),
// so the processor's workers are measured against the same parallelism.
absl::StatusOr<RunResult> RunPassthrough(const Config& config, int run) {
  auto transport = OpenTransport(config, run, "passthrough");
  if (!transport.ok()) return transport.status();
  internal::log::Log& log = (*transport)->log_internal();
  internal::AggregateTopics topics =
      internal::TopicsFor((*transport)->options().topic_prefix, bank::kAccountType);
  absl::StatusOr<int32_t> partitions =
      internal::EnsureTopics(log.admin(), topics, config.partitions);
  if (!partitions.ok()) return partitions.status();
  if (absl::Status s = Preload(**transport, topics.commands, config); !s.ok()) return s;

  PassthroughProgress progress;
  std::vector<absl::Status> statuses(config.workers);
  std::vector<std::thread> loops;
  for (size_t w = 0; w < config.workers; ++w) {
    loops.emplace_back([&, w] {
      statuses[w] = PassthroughLoop(log, topics, config, w, progress);
      if (!statuses[w].ok()) progress.failed.store(true);
    });
  }
  RunResult result = TimeFromFirstCommand(
      config, [&] { return progress.started.load(); }, [&] { return progress.done.load(); },
      progress.failed);
  for (std::thread& t : loops) t.join();
  for (const absl::Status& s : statuses) {
    if (!s.ok()) return s;
  }
  return result;
}

struct Summary {
  double median, min, max, cpu_median;
};

Summary Summarize(std::vector<RunResult> results) {
  std::vector<double> rates, cpus;
  for (const RunResult& r : results) {
    rates.push_back(r.per_second);
    cpus.push_back(r.cpu_seconds);
  }
  std::sort(rates.begin(), rates.end());
  std::sort(cpus.begin(), cpus.end());
  return {rates[rates.size() / 2], rates.front(), rates.back(), cpus[cpus.size() / 2]};
}

int Main(int argc, char** argv) {
  Config config;
  CLI::App app{"Aggregate processor throughput vs the passthrough baseline (same run)."};
  app.add_option("--backend", config.backend, "embedded or kafka")
      ->check(CLI::IsMember({"embedded", "kafka"}))
      ->capture_default_str();
  app.add_option("--brokers", config.brokers, "Kafka bootstrap servers (backend kafka)");
  app.add_option("--mode", config.mode, "exactly_once or at_least_once")
      ->check(CLI::IsMember({"exactly_once", "at_least_once"}))
      ->capture_default_str();
  app.add_option("--workload", config.workload, "bank-uniform, bank-zipf or bank-dup")
      ->capture_default_str();
  app.add_option("--commands", config.commands, "commands per run")->capture_default_str();
  app.add_option("--runs", config.runs, "measured runs (after one warm-up)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--partitions", config.partitions, "partitions per topic")->capture_default_str();
  app.add_option("--max-batch", config.max_batch, "commands per transaction")
      ->capture_default_str();
  app.add_option("--workers", config.workers,
                 "processor worker threads (ProcessorOptions::workers) and passthrough loops")
      ->capture_default_str();
  app.add_option("--seed", config.seed, "workload seed")->capture_default_str();
  app.add_option("--dir", config.dir, "scratch directory (embedded log, state)")
      ->capture_default_str();
  app.add_option("--scenario", config.scenario,
                 "throughput (vs passthrough), restore (--commands snapshots into a fresh "
                 "instance) or memory (peak RSS, default cache)")
      ->check(CLI::IsMember({"throughput", "restore", "memory"}))
      ->capture_default_str();
  app.add_option("--only", config.only,
                 "run one leg alone, processor or passthrough, and print its figures without a "
                 "ratio (for profiling one side)")
      ->check(CLI::IsMember({"processor", "passthrough"}));
  app.add_flag("--progress", config.progress,
               "print each second how far a leg is, its rate and CPU per 100k commands (stderr)");
  app.add_flag("--keep", config.keep,
               "leave the scratch directory behind (its RocksDB LOG files show flushes and "
               "compactions)");
  CLI11_PARSE(app, argc, argv);
  if (config.backend == "kafka" && config.brokers.empty()) {
    std::fprintf(stderr, "--backend kafka needs --brokers\n");
    return 2;
  }
  // Quiet by default; LEFTFOLD_LOG_LEVEL=debug shows per-batch stage timings.
  if (std::getenv("LEFTFOLD_LOG_LEVEL") == nullptr) SetLogLevel(LogLevel::kWarning);
  if (config.scenario != "throughput") {
    absl::Status s = config.scenario == "restore" ? RunRestore(config) : RunMemory(config);
    RemoveScratch(config);
    if (!s.ok()) {
      std::fprintf(stderr, "%s failed: %s\n", config.scenario.c_str(), s.ToString().c_str());
      return 1;
    }
    return 0;
  }

  std::vector<RunResult> processor, passthrough;
  for (int run = 0; run <= config.runs; ++run) {
    // Alternate which goes first, so neither always meets the broker right after a preload.
    absl::StatusOr<RunResult> base = RunResult{}, proc = RunResult{};
    for (int leg = 0; leg < 2; ++leg) {
      bool passthrough_leg = (leg == 0) == (run % 2 == 0);
      if (!config.only.empty() && config.only != (passthrough_leg ? "passthrough" : "processor")) {
        continue;
      }
      if (passthrough_leg) {
        base = RunPassthrough(config, run);
      } else {
        proc = RunProcessor(config, run);
      }
    }
    if (!base.ok()) {
      std::fprintf(stderr, "passthrough failed: %s\n", base.status().ToString().c_str());
      return 1;
    }
    if (!proc.ok()) {
      std::fprintf(stderr, "processor failed: %s\n", proc.status().ToString().c_str());
      return 1;
    }
    if (config.only.empty()) {
      std::printf("%s run %d: processor %.0f commands/s, passthrough %.0f commands/s (%.0f%%)\n",
                  run == 0 ? "warm-up" : "measured", run, proc->per_second, base->per_second,
                  100.0 * proc->per_second / base->per_second);
    } else {
      const RunResult& leg = config.only == "processor" ? *proc : *base;
      std::printf("%s run %d: %s %.0f commands/s, CPU %.2f s / 100k commands\n",
                  run == 0 ? "warm-up" : "measured", run, config.only.c_str(), leg.per_second,
                  leg.cpu_seconds);
      if (!leg.thread_micros.empty()) {
        std::string threads;
        for (const auto& [name, micros] : leg.thread_micros) {
          absl::StrAppend(&threads, threads.empty() ? "" : ", ", name, " ",
                          absl::StrFormat("%.2f", micros));
        }
        std::printf("  CPU µs per command by thread: %s\n", threads.c_str());
      }
    }
    std::fflush(stdout);
    if (run == 0) continue;
    processor.push_back(*proc);
    passthrough.push_back(*base);
  }
  if (!config.only.empty()) {
    Summary leg = Summarize(config.only == "processor" ? processor : passthrough);
    std::printf("%s alone: median %.0f commands/s (%.0f-%.0f), CPU %.2f s / 100k commands\n",
                config.only.c_str(), leg.median, leg.min, leg.max, leg.cpu_median);
    RemoveScratch(config);
    return 0;
  }
  Summary p = Summarize(processor), b = Summarize(passthrough);
  std::printf(
      "\nbackend=%s mode=%s workload=%s commands=%lld partitions=%d max_batch=%zu workers=%zu "
      "runs=%d\n",
      config.backend.c_str(), config.mode.c_str(), config.workload.c_str(),
      static_cast<long long>(config.commands), config.partitions, config.max_batch, config.workers,
      config.runs);
  std::printf("| what | median cmd/s | min | max | CPU s / 100k cmds |\n|---|---|---|---|---|\n");
  std::printf("| processor | %.0f | %.0f | %.0f | %.2f |\n", p.median, p.min, p.max, p.cpu_median);
  std::printf("| passthrough | %.0f | %.0f | %.0f | %.2f |\n", b.median, b.min, b.max,
              b.cpu_median);
  // Runs are paired (same broker state, back to back), so the median of the per-run ratios is
  // the steadier figure on a noisy machine.
  std::vector<double> ratios;
  for (size_t i = 0; i < processor.size(); ++i) {
    ratios.push_back(processor[i].per_second / passthrough[i].per_second);
  }
  std::sort(ratios.begin(), ratios.end());
  std::printf(
      "processor / passthrough: %.0f%% (medians), %.0f%% (median of per-run ratios, %.0f%%-%.0f%%)"
      "   peak RSS: %ld MiB\n",
      100.0 * p.median / b.median, 100.0 * ratios[ratios.size() / 2], 100.0 * ratios.front(),
      100.0 * ratios.back(), PeakRssMiB());
  RemoveScratch(config);
  return 0;
}

}  // namespace
}  // namespace leftfold::bench

int main(int argc, char** argv) { return leftfold::bench::Main(argc, argv); }
